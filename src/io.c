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
 * Writing continues short writes until everything is out or the descriptor
 * would block, and reports what went out even if an error follows, since
 * those bytes cannot be taken back.
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

/* One write, retrying EINTR.  Sockets go through send(MSG_NOSIGNAL) so a
 * closed peer is EPIPE, not a process-killing SIGPIPE; other descriptors
 * answer ENOTSOCK once and get write() from then on (per call). */
static ssize_t hb__write_some(int fd, const uint8_t *src, size_t n,
                              int *not_sock) {
  ssize_t w;
  for (;;) {
    if (!*not_sock) {
      w = send(fd, src, n, MSG_NOSIGNAL);
      if (w < 0 && errno == ENOTSOCK) {
        *not_sock = 1;
        continue;
      }
    } else {
      w = write(fd, src, n);
    }
    if (w >= 0 || errno != EINTR) return w;
  }
}

/* Write src[0..n) to fd until done or the descriptor would block.
 * *done gets what went out.  HB_OK if anything went out (or n is 0). */
static int hb__write_all(int fd, const uint8_t *src, size_t n, size_t *done) {
  size_t off = 0;
  int not_sock = 0;
  while (off < n) {
    ssize_t w = hb__write_some(fd, src + off, n - off, &not_sock);
    if (w < 0) {
      *done = off;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return off > 0 ? HB_OK : HB_EAGAIN;
      return HB_EIO;
    }
    off += (size_t)w;
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

int hb_write_fd(hb_buf *b, int fd, size_t *nwritten) {
  HB__CHECK_DIRECT(b);
  size_t done = 0;
  int rc = hb__write_all(fd, b->data + b->cursor, b->len - b->cursor, &done);
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
  if (offset <= b->len)
    rc = hb__write_all(fd, b->data + offset, b->len - offset, &done);
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
