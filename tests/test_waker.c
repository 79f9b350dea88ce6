/*
 * test_waker.c -- the eventfd/pipe waker: coalescing, draining, and waking
 * an epoll loop when a visitor's turn comes or it is cancelled.
 */
#include "hb_test.h"

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "hyperbuf.h"

int hb__fd_waker_init_pipe(hb_fd_waker *w); /* src/waker.c, for tests */

/* Wait up to ms for fd to become readable.  @return 1 readable, 0 not. */
static int wait_readable(int fd, int ms) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  assert_true(ep >= 0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
  struct epoll_event out;
  int n;
  do {
    n = epoll_wait(ep, &out, 1, ms);
  } while (n < 0 && errno == EINTR);
  close(ep);
  return n;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- the waker alone ---------------------------------------------------- */

static void coalesce(hb_fd_waker *w, int is_eventfd) {
  assert_int_equal(wait_readable(w->fd, 0), 0);
  assert_int_equal(hb_fd_waker_drain(w), 0); /* nothing pending */
  hb_waker k = hb_fd_waker_get(w);
  for (int i = 0; i < 5; i++) k.wake(k.arg);
  hb_fd_waker_wake(w);
  assert_int_equal(wait_readable(w->fd, 0), 1);
  if (is_eventfd) {
    /* Six wakes, one write: the counter says 1. */
    uint64_t count = 0;
    assert_int_equal(read(w->fd, &count, sizeof count), sizeof count);
    assert_int_equal(count, 1);
  }
  assert_int_equal(hb_fd_waker_drain(w), 1);
  assert_int_equal(wait_readable(w->fd, 0), 0);
  /* After a drain the next wake writes again. */
  hb_fd_waker_wake(w);
  assert_int_equal(wait_readable(w->fd, 0), 1);
  assert_int_equal(hb_fd_waker_drain(w), 1);
  assert_int_equal(wait_readable(w->fd, 0), 0);
}

static void eventfd_coalesces(void **state) {
  (void)state;
  hb_fd_waker w;
  assert_int_equal(hb_fd_waker_init(&w), HB_OK);
  assert_true(w.fd >= 0);
  coalesce(&w, 1);
  assert_int_equal(hb_fd_waker_close(&w), HB_OK);
  assert_int_equal(w.fd, -1);
}

static void pipe_coalesces(void **state) {
  (void)state;
  hb_fd_waker w;
  assert_int_equal(hb__fd_waker_init_pipe(&w), HB_OK);
  assert_true(w.fd >= 0 && w.wfd >= 0 && w.fd != w.wfd);
  coalesce(&w, 0);
  assert_int_equal(hb_fd_waker_close(&w), HB_OK);
}

static void init_null(void **state) {
  (void)state;
  assert_int_equal(hb_fd_waker_init(NULL), HB_EINVAL);
}

static void raw_eventfd_waker(void **state) {
  (void)state;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  assert_true(fd >= 0);
  hb_waker k = hb_waker_eventfd(fd);
  k.wake(k.arg);
  k.wake(k.arg);
  uint64_t count = 0;
  assert_int_equal(read(fd, &count, sizeof count), sizeof count);
  assert_int_equal(count, 2); /* not coalescing */
  close(fd);
}

/* Many threads wake while the loop drains: every round of wakes is seen. */
struct storm {
  hb_fd_waker *w;
  uint32_t *round;   /* atomic: the round the loop is waiting for */
  uint32_t *acked;   /* atomic: threads that woke in this round */
  int rounds;
};

static void *storm_thread(void *arg) {
  struct storm *s = arg;
  for (int r = 1; r <= s->rounds; r++) {
    while (__atomic_load_n(s->round, __ATOMIC_ACQUIRE) < (uint32_t)r)
      usleep(200);
    __atomic_fetch_add(s->acked, 1, __ATOMIC_ACQ_REL);
    hb_fd_waker_wake(s->w);
  }
  return NULL;
}

static void storm_no_lost_wake(void **state) {
  (void)state;
  enum { T = 4, R = 200 };
  hb_fd_waker w;
  assert_int_equal(hb_fd_waker_init(&w), HB_OK);
  uint32_t round = 0, acked = 0;
  struct storm s = {&w, &round, &acked, R};
  pthread_t t[T];
  for (int i = 0; i < T; i++)
    assert_int_equal(pthread_create(&t[i], NULL, storm_thread, &s), 0);
  for (int r = 1; r <= R; r++) {
    __atomic_store_n(&round, (uint32_t)r, __ATOMIC_RELEASE);
    /* Wait (never spin) until all T wakes of this round are seen: each
     * one's acked increment is visible after the drain that follows it. */
    for (;;) {
      assert_int_equal(wait_readable(w.fd, 10000), 1); /* else: lost */
      hb_fd_waker_drain(&w);
      if (__atomic_load_n(&acked, __ATOMIC_ACQUIRE) == (uint32_t)(r * T))
        break;
    }
  }
  for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
  hb_fd_waker_close(&w);
}

/* ---- with visitors ------------------------------------------------------ */

static int nop_cb(hb_view *view, void *ctx) {
  (void)view;
  int *ran = ctx;
  __atomic_fetch_add(ran, 1, __ATOMIC_RELAXED);
  return 7;
}

struct later {
  hb_visitor *v;
  int cancel; /* cancel v instead of running it */
};

static void *run_later(void *arg) {
  struct later *l = arg;
  sleep_ms(30);
  if (l->cancel)
    assert_int_equal(hb_cancel(l->v), HB_OK);
  else
    assert_int_equal(hb_block_on(l->v, NULL), HB_OK);
  return NULL;
}

/* A reader waits behind a writer; the writer runs on another thread; the
 * waker makes epoll_wait return, and the reader runs on this thread. */
static void epoll_wakes_when_turn_comes(int cancel_writer) {
  hb_buf *b = hb_new(64);
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  int wran = 0, rran = 0;
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w, 0, nop_cb, &wran), HB_OK);
  assert_int_equal(hb_visit(&r, 0, nop_cb, &rran), HB_OK);

  hb_fd_waker fw;
  assert_int_equal(hb_fd_waker_init(&fw), HB_OK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fw.fd};
  assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, fw.fd, &ev), 0);

  int res = 0;
  assert_int_equal(hb_poll(&r, hb_fd_waker_get(&fw), &res), HB_PENDING);
  struct later l = {&w, cancel_writer};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, run_later, &l), 0);

  int polls = 0, st;
  do {
    struct epoll_event out;
    int n = epoll_wait(ep, &out, 1, 10000);
    if (n < 0 && errno == EINTR) continue;
    assert_int_equal(n, 1); /* 10 s without a wake: lost */
    assert_int_equal(out.data.fd, fw.fd);
    hb_fd_waker_drain(&fw);
    polls++;
    st = hb_poll(&r, hb_fd_waker_get(&fw), &res);
  } while (st == HB_PENDING);
  assert_int_equal(st, HB_OK);
  assert_int_equal(res, 7);
  assert_int_equal(rran, 1);
  assert_int_equal(wran, cancel_writer ? 0 : 1);
  assert_true(polls >= 1);
  pthread_join(t, NULL);

  close(ep);
  hb_fd_waker_close(&fw);
  assert_int_equal(hb_free(b), HB_OK);
}

static void epoll_wakes_after_writer(void **state) {
  (void)state;
  epoll_wakes_when_turn_comes(0);
}

static void epoll_wakes_after_cancel_ahead(void **state) {
  (void)state;
  epoll_wakes_when_turn_comes(1);
}

/* Cancelling the waiting visitor itself calls its waker too. */
static void *cancel_later(void *arg) {
  sleep_ms(20);
  assert_int_equal(hb_cancel((hb_visitor *)arg), HB_OK);
  return NULL;
}

static void epoll_wakes_on_own_cancel(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  int ran = 0;
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&r, 0, nop_cb, &ran), HB_OK);
  hb_fd_waker fw;
  assert_int_equal(hb_fd_waker_init(&fw), HB_OK);
  assert_int_equal(hb_poll(&r, hb_fd_waker_get(&fw), NULL), HB_PENDING);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, cancel_later, &r), 0);
  assert_int_equal(wait_readable(fw.fd, 10000), 1);
  hb_fd_waker_drain(&fw);
  pthread_join(t, NULL);
  assert_int_equal(hb_poll(&r, hb_fd_waker_get(&fw), NULL), HB_ECANCELED);
  assert_int_equal(ran, 0);
  assert_int_equal(hb_cancel(&w), HB_OK);
  hb_fd_waker_close(&fw);
  assert_int_equal(hb_free(b), HB_OK);
}

/* One waker, many visitors: after each drain, poll them all. */
static void one_waker_many_visitors(void **state) {
  (void)state;
  enum { N = 8 };
  hb_buf *b = hb_new(0);
  hb_visitor w = HB_VISITOR_INIT, r[N];
  int ran = 0, wran = 0;
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w, 0, nop_cb, &wran), HB_OK);
  hb_fd_waker fw;
  assert_int_equal(hb_fd_waker_init(&fw), HB_OK);
  for (int i = 0; i < N; i++) {
    r[i] = (hb_visitor)HB_VISITOR_INIT;
    assert_int_equal(HB_CAST(&r[i], b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&r[i], 0, nop_cb, &ran), HB_OK);
    assert_int_equal(hb_poll(&r[i], hb_fd_waker_get(&fw), NULL), HB_PENDING);
  }
  pthread_t t;
  struct later l = {&w, 0};
  assert_int_equal(pthread_create(&t, NULL, run_later, &l), 0);
  int done = 0, waits = 0;
  int finished[N] = {0};
  while (done < N) {
    assert_int_equal(wait_readable(fw.fd, 10000), 1);
    waits++;
    hb_fd_waker_drain(&fw);
    for (int i = 0; i < N; i++) {
      if (finished[i]) continue;
      int st = hb_poll(&r[i], hb_fd_waker_get(&fw), NULL);
      if (st == HB_OK) {
        finished[i] = 1;
        done++;
      } else {
        assert_int_equal(st, HB_PENDING);
      }
    }
  }
  pthread_join(t, NULL);
  assert_int_equal(ran, N);
  assert_true(waits >= 1 && waits <= N);
  hb_fd_waker_close(&fw);
  assert_int_equal(hb_free(b), HB_OK);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(eventfd_coalesces),
      cmocka_unit_test(pipe_coalesces),
      cmocka_unit_test(init_null),
      cmocka_unit_test(raw_eventfd_waker),
      cmocka_unit_test(storm_no_lost_wake),
      cmocka_unit_test(epoll_wakes_after_writer),
      cmocka_unit_test(epoll_wakes_after_cancel_ahead),
      cmocka_unit_test(epoll_wakes_on_own_cancel),
      cmocka_unit_test(one_waker_many_visitors),
  };
  return hb_test_main("waker", tests);
}
