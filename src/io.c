/*
 * io.c -- moving bytes between a buffer and a file descriptor.
 *
 * Reading is reserve, then read() into the spare capacity, then commit
 * (sds's sdsMakeRoomFor + sdsIncrLen, libevent's evbuffer_reserve_space +
 * evbuffer_commit_space): the bytes land where they will stay, with no
 * bounce buffer.  The length changes only after read() succeeded, so an
 * error or EOF leaves the buffer's length and bytes as they were (only its
 * capacity may have grown).
 *
 * Writing gathers: hb_peek_iov exports the unread bytes as iovec entries
 * (one today; more if the buffer becomes a ring) and one sendmsg/writev
 * sends them all.  Short writes are continued until everything is out or
 * the descriptor would block, and what went out is reported even if an
 * error follows, since those bytes cannot be taken back.
 *
 * The view forms do the same inside a visitor.  A write view appends by
 * moving buf->len, exactly as hb_view_append does, so hb_view_bytes_written
 * counts the bytes and an abort rolls them back to view->start_len.
 * hb_view_drain moves start_len down with the bytes it drops, so both stay
 * right after a drain: the rollback point is where the old bytes now end.
 */
#include "internal.h"
#include "stream.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* read() once, retrying EINTR.  Returns bytes read (>= 1) or a status. */
static int hb__read_once(int fd, uint8_t *dst, size_t max, size_t *got) {
  ssize_t n;
  do {
    n = read(fd, dst, max);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    *got = (size_t)n;
    return HB_OK;
  }
  if (n == 0) return HB_EOF;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return HB_EAGAIN;
  return HB_EIO;
}

/* One gathering write, retrying EINTR.  Sockets go through
 * sendmsg(MSG_NOSIGNAL) so a closed peer is EPIPE, not a process-killing
 * SIGPIPE; other descriptors answer ENOTSOCK once and get writev() from
 * then on (per call). */
static ssize_t hb__writev_some(int fd, struct iovec *iov, int cnt,
                               int *not_sock) {
  ssize_t w;
  for (;;) {
    if (!*not_sock) {
      struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
      w = sendmsg(fd, &msg, MSG_NOSIGNAL);
      if (w < 0 && errno == ENOTSOCK) {
        *not_sock = 1;
        continue;
      }
    } else {
      w = writev(fd, iov, cnt);
    }
    if (w >= 0 || errno != EINTR) return w;
  }
}

/* Write the cnt entries at iov to fd until done or the descriptor would
 * block; iov is consumed (entries are advanced past what went out).
 * *done gets what went out.  HB_OK if anything went out (or nothing was
 * to be written). */
static int hb__writev_all(int fd, struct iovec *iov, int cnt, size_t *done) {
  size_t off = 0;
  int not_sock = 0;
  while (cnt > 0 && iov->iov_len == 0) iov++, cnt--;
  while (cnt > 0) {
    ssize_t w = hb__writev_some(fd, iov, cnt, &not_sock);
    if (w < 0) {
      *done = off;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return off > 0 ? HB_OK : HB_EAGAIN;
      return HB_EIO;
    }
    off += (size_t)w;
    for (size_t left = (size_t)w; cnt > 0; iov++, cnt--) {
      if (left < iov->iov_len) {
        iov->iov_base = (uint8_t *)iov->iov_base + left;
        iov->iov_len -= left;
        break;
      }
      left -= iov->iov_len;
    }
  }
  *done = off;
  return HB_OK;
}

/* Reserve, read once, commit.  Shared by the direct and the view forms. */
static int hb__read_into(hb_buf *b, int fd, size_t max, size_t *nread) {
  size_t got = 0;
  int rc;
  if (max == 0) {
    rc = HB_EINVAL;
  } else if ((rc = hb__reserve(b, max)) == HB_OK) {
    /* reserve guarantees len + max <= PTRDIFF_MAX <= SSIZE_MAX. */
    rc = hb__read_once(fd, b->data + b->len, max, &got);
    if (rc == HB_OK) b->len += got;
  }
  if (nread != NULL) *nread = got;
  return rc;
}

int hb_read_fd(hb_buf *b, int fd, size_t max, size_t *nread) {
  HB__CHECK_DIRECT(b);
  return hb__read_into(b, fd, max, nread);
}

int hb_peek_iov(const hb_buf *b, struct iovec *iov, int iovcnt) {
  if (iov == NULL || iovcnt < 1) return HB_EINVAL;
  size_t n = b->len - b->cursor;
  if (n == 0) return 0;
  iov[0].iov_base = b->data + b->cursor;
  iov[0].iov_len = n;
  return 1;
}

/* Room for the entries hb_peek_iov may export (one while the buffer is
 * contiguous). */
#define HB__WRITE_IOV 4

int hb_write_fd(hb_buf *b, int fd, size_t *nwritten) {
  HB__CHECK_DIRECT(b);
  struct iovec iov[HB__WRITE_IOV];
  int cnt = hb_peek_iov(b, iov, HB__WRITE_IOV);
  size_t done = 0;
  int rc = hb__writev_all(fd, iov, cnt, &done);
  b->cursor += done;
  if (nwritten != NULL) *nwritten = done;
  return rc;
}

int hb_view_read_fd(hb_view *view, int fd, size_t max, size_t *nread) {
  if (!view->write) {
    if (nread != NULL) *nread = 0;
    return HB_ESTATE;
  }
  return hb__read_into(view->buf, fd, max, nread);
}

int hb_view_write_fd(hb_view *view, int fd, size_t offset,
                     size_t *nwritten) {
  hb_buf *b = view->buf;
  size_t done = 0;
  int rc = HB_ERANGE;
  if (offset <= b->len) {
    struct iovec iov = {b->data + offset, b->len - offset};
    rc = hb__writev_all(fd, &iov, 1, &done);
  }
  if (nwritten != NULL) *nwritten = done;
  return rc;
}

int hb_view_drain(hb_view *view, size_t n) {
  if (!view->write) return HB_ESTATE;
  if (hb__ext(view->buf)->stream != NULL)
    return HB_ESTATE; /* stream: consumers release, the library drops */
  if (n > view->start_len) return HB_ERANGE;
  if (n == 0) return HB_OK;
  hb_buf *b = view->buf;
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  view->start_len -= n; /* the rollback point moves with the bytes */
  b->cursor = b->cursor > n ? b->cursor - n : 0;
  return HB_OK;
}
