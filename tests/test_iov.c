/*
 * test_iov.c -- gather export (issue 14): hb_peek_iov's entries, and
 * hb_write_fd, which sends them with one sendmsg/writev, continuing short
 * writes across entries.
 */
#include "hb_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void peek_exports_the_unread_bytes(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  struct iovec iov[3];
  memset(iov, 0xa5, sizeof iov);
  assert_int_equal(hb_peek_iov(b, iov, 3), 0); /* nothing stored */
  assert_int_equal(hb_put(b, "header,payload", 14), HB_OK);
  assert_int_equal(hb_peek_iov(b, iov, 3), 1);
  assert_ptr_equal(iov[0].iov_base, hb_data(b));
  assert_int_equal(iov[0].iov_len, 14);
  assert_int_equal(hb_advance(b, 7), HB_OK);
  assert_int_equal(hb_peek_iov(b, iov, 1), 1);
  assert_ptr_equal(iov[0].iov_base, hb_data(b) + 7);
  assert_int_equal(iov[0].iov_len, 7);
  assert_int_equal(hb_remaining(b), 7); /* nothing consumed */
  assert_int_equal(hb_advance(b, 7), HB_OK);
  assert_int_equal(hb_peek_iov(b, iov, 3), 0); /* all read */
  assert_int_equal(hb_peek_iov(b, NULL, 3), HB_EINVAL);
  assert_int_equal(hb_peek_iov(b, iov, 0), HB_EINVAL);
  assert_int_equal(hb_peek_iov(b, iov, -1), HB_EINVAL);
  assert_int_equal(hb_free(b), HB_OK);
}

/* What hb_peek_iov exports is what writev sends. */
static void peek_feeds_writev(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  assert_int_equal(hb_put(b, "skip:keep", 9), HB_OK);
  assert_int_equal(hb_advance(b, 5), HB_OK);
  struct iovec iov[2];
  int n = hb_peek_iov(b, iov, 2);
  assert_int_equal(n, 1);
  assert_int_equal(writev(p[1], iov, n), 4);
  char got[8] = {0};
  assert_int_equal(read(p[0], got, sizeof got), 4);
  assert_memory_equal(got, "keep", 4);
  assert_int_equal(hb_free(b), HB_OK);
  close(p[0]);
  close(p[1]);
}

static uint8_t pattern(size_t i) { return (uint8_t)(i * 7u + i / 251u); }

/* A non-blocking socket with a small send buffer takes the bytes in short
 * writes: hb_write_fd reports each, moves the cursor by it, and the bytes
 * arrive whole and in order. */
static void write_fd_continues_short_writes(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int sz = 4096;
  assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz),
                   0);
  assert_int_equal(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK),
                   0);
  enum { N = 1 << 20 };
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  for (size_t i = 0; i < N; i++)
    assert_int_equal(hb_put_u8(b, pattern(i)), HB_OK);
  uint8_t *got = malloc(N);
  assert_non_null(got);
  size_t sent = 0, recvd = 0;
  int would_block = 0;
  while (recvd < N) {
    size_t w = 12345;
    int rc = hb_write_fd(b, sv[0], &w);
    if (rc == HB_EAGAIN) {
      assert_int_equal(w, 0);
      would_block++;
    } else {
      assert_int_equal(rc, HB_OK);
      sent += w;
      assert_int_equal(N - hb_remaining(b), sent);
    }
    ssize_t r = read(sv[1], got + recvd, N - recvd);
    assert_true(r > 0);
    recvd += (size_t)r;
  }
  assert_int_equal(sent, N);
  assert_true(would_block + 1 < N / 4096); /* not one byte at a time */
  for (size_t i = 0; i < N; i++)
    if (got[i] != pattern(i)) fail_msg("byte %zu differs", i);
  size_t w = 1;
  assert_int_equal(hb_write_fd(b, sv[0], &w), HB_OK); /* nothing left */
  assert_int_equal(w, 0);
  free(got);
  assert_int_equal(hb_free(b), HB_OK);
  close(sv[0]);
  close(sv[1]);
}

/* Not a socket: the ENOTSOCK answer switches to writev, once. */
static void write_fd_to_a_pipe(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  hb_buf *b = HB_WRAP("pipe bytes");
  assert_non_null(b);
  size_t w = 0;
  assert_int_equal(hb_write_fd(b, p[1], &w), HB_OK);
  assert_int_equal(w, sizeof "pipe bytes");
  assert_int_equal(hb_remaining(b), 0);
  char got[16];
  assert_int_equal(read(p[0], got, sizeof got), (ssize_t)sizeof "pipe bytes");
  assert_string_equal(got, "pipe bytes");
  assert_int_equal(hb_free(b), HB_OK);
  close(p[0]);
  close(p[1]);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(peek_exports_the_unread_bytes),
      cmocka_unit_test(peek_feeds_writev),
      cmocka_unit_test(write_fd_continues_short_writes),
      cmocka_unit_test(write_fd_to_a_pipe),
  };
  return hb_test_main("iov", tests);
}
