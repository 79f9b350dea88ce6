/*
 * waker.c -- wakers that make a file descriptor readable, for event loops.
 *
 * hb_fd_waker coalesces like libuv's uv_async_send (src/unix/async.c): a
 * wake sets `pending` and writes the descriptor only on its 0 -> 1
 * transition, so a burst of wakes costs one system call and the loop sees
 * one readiness event.
 *
 * Why no wake is lost.  A waker is called after the visitor's state change
 * that made it runnable (see hb_waker's duties).  The loop drains in this
 * order: (1) read the descriptor empty, (2) exchange pending to 0, (3) poll
 * its visitors.  Take a wake W racing with a drain:
 *   - W's exchange comes before (2) in pending's modification order.  Then
 *     (2) reads W's 1 or a later value, and its ACQUIRE pairs with W's
 *     RELEASE exchange: W's state change happens-before (3), whose polls
 *     see it.  Whether W's write landed before or after (1) only decides
 *     whether the next epoll_wait returns once more, spuriously.
 *   - W's exchange comes after (2).  W reads 0 and writes the descriptor,
 *     so the loop's next epoll_wait returns and drains again.
 * Draining in the other order, (2) before (1), could lose W: W sees 0,
 * writes, and (1) eats W's write while leaving pending at 1, after which no
 * wake would ever write again.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

int hb__fd_waker_init_pipe(hb_fd_waker *w); /* tests force the fallback */

/* An initialised waker carries this in `reserved`; zeroed (or closed)
 * storage does not, so its descriptors -- 0, standard input, for zeroed
 * storage -- are never written, read or closed.  A constant, not derived
 * from w's address: copying an initialised waker is fine. */
#define HB__FD_WAKER_LIVE 0x68627766u /* "hbwf" */

static inline int hb__fd_waker_live(const hb_fd_waker *w) {
  return w != NULL && w->reserved == HB__FD_WAKER_LIVE;
}

int hb__fd_waker_init_pipe(hb_fd_waker *w) {
  int p[2];
  w->pending = 0;
  w->reserved = 0;
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
    w->fd = w->wfd = -1;
    return HB_EIO;
  }
  w->fd = p[0];
  w->wfd = p[1];
  w->reserved = HB__FD_WAKER_LIVE;
  return HB_OK;
}

int hb_fd_waker_init(hb_fd_waker *w) {
  if (w == NULL) return HB_EINVAL;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd >= 0) {
    w->fd = w->wfd = fd;
    w->pending = 0;
    w->reserved = HB__FD_WAKER_LIVE;
    return HB_OK;
  }
  return hb__fd_waker_init_pipe(w);
}

/* Make fd readable.  8 bytes of value 1 suit both kinds: an eventfd adds
 * 1 to its counter, a pipe gets 8 bytes.  EAGAIN means an eventfd counter
 * at its maximum or a full pipe, readable either way; EINTR is retried. */
static void hb__signal_fd(int fd) {
  uint64_t one = 1;
  while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void hb_fd_waker_wake(hb_fd_waker *w) {
  if (!hb__fd_waker_live(w)) return; /* never initialised: nothing to wake */
  /* RELEASE: the caller's state change happens-before the drain's ACQUIRE
   * exchange that reads this 1 (see the top of the file).  ACQUIRE: a wake
   * that finds 1 is ordered after the write that set it. */
  if (__atomic_exchange_n(&w->pending, 1, __ATOMIC_ACQ_REL) == 0)
    hb__signal_fd(w->wfd);
}

static void hb__fd_waker_wake_cb(void *arg) {
  hb_fd_waker_wake((hb_fd_waker *)arg);
}

hb_waker hb_fd_waker_get(hb_fd_waker *w) {
  hb_waker k = {hb__fd_waker_wake_cb, w};
  if (!hb__fd_waker_live(w)) k.wake = NULL, k.arg = NULL; /* "no waker" */
  return k;
}

int hb_fd_waker_drain(hb_fd_waker *w) {
  if (!hb__fd_waker_live(w)) return HB_EINVAL;
  /* (1) empty the descriptor: one read empties an eventfd; a pipe may
   * hold several 8-byte tokens if wakes raced with earlier drains. */
  uint64_t buf[8];
  ssize_t n;
  do {
    n = read(w->fd, buf, sizeof buf);
  } while (n > 0 || (n < 0 && errno == EINTR));
  /* (2) then clear the flag; ACQUIRE pairs with the wakes' RELEASE. */
  return (int)__atomic_exchange_n(&w->pending, 0, __ATOMIC_ACQ_REL);
}

int hb_fd_waker_close(hb_fd_waker *w) {
  if (!hb__fd_waker_live(w)) return HB_EINVAL;
  w->reserved = 0;
  int rc = HB_OK;
  if (w->wfd >= 0 && w->wfd != w->fd && close(w->wfd) != 0) rc = HB_EIO;
  if (w->fd >= 0 && close(w->fd) != 0) rc = HB_EIO;
  w->fd = w->wfd = -1;
  return rc;
}

static void hb__eventfd_wake_cb(void *arg) {
  hb__signal_fd((int)(intptr_t)arg);
}

hb_waker hb_waker_eventfd(int fd) {
  hb_waker k = {hb__eventfd_wake_cb, (void *)(intptr_t)fd};
  return k;
}
