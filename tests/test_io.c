/*
 * test_io.c -- hb_read_fd / hb_write_fd and their in-visitor forms, over
 * socketpairs and pipes (no network).
 */
#include "hb_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "hyperbuf.h"

/* ---- helpers ------------------------------------------------------------ */

static void pair(int sv[2]) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  assert_true(fl >= 0);
  assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void write_exact(int fd, const void *src, size_t n) {
  const char *p = src;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    assert_true(w > 0);
    p += w;
    n -= (size_t)w;
  }
}

static void read_exact(int fd, void *dst, size_t n) {
  char *p = dst;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    assert_true(r > 0);
    p += r;
    n -= (size_t)r;
  }
}

static uint8_t pattern(size_t i) { return (uint8_t)(i * 131u + 7u); }

/* ---- hb_read_fd --------------------------------------------------------- */

static void read_partial(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  write_exact(sv[1], "0123456789", 10);
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  size_t n = 99;
  assert_int_equal(hb_read_fd(b, sv[0], 4, &n), HB_OK);
  hb__check(b);
  assert_int_equal(n, 4);
  assert_int_equal(hb_len(b), 4);
  assert_int_equal(hb_read_fd(b, sv[0], 4, &n), HB_OK);
  hb__check(b);
  assert_int_equal(n, 4);
  /* A short read: only 2 bytes are there. */
  assert_int_equal(hb_read_fd(b, sv[0], 100, &n), HB_OK);
  hb__check(b);
  assert_int_equal(n, 2);
  assert_int_equal(hb_len(b), 10);
  assert_memory_equal(hb_data(b), "0123456789", 10);
  /* The cursor is untouched: reads append. */
  assert_int_equal(hb_remaining(b), 10);
  assert_int_equal(hb_free(b), HB_OK);
  close(sv[0]);
  close(sv[1]);
}

static void read_eagain(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  set_nonblock(sv[0]);
  hb_buf *b = HB_WRAP("abc");
  size_t n = 99;
  assert_int_equal(hb_read_fd(b, sv[0], 64, &n), HB_EAGAIN);
  hb__check(b);
  assert_int_equal(n, 0);
  assert_int_equal(hb_len(b), 4);
  assert_memory_equal(hb_data(b), "abc", 4);
  /* Data arrives: it reads, then EAGAIN again. */
  write_exact(sv[1], "xy", 2);
  assert_int_equal(hb_read_fd(b, sv[0], 64, &n), HB_OK);
  hb__check(b);
  assert_int_equal(n, 2);
  assert_int_equal(hb_read_fd(b, sv[0], 64, NULL), HB_EAGAIN);
  hb__check(b);
  assert_int_equal(hb_len(b), 6);
  assert_memory_equal(hb_data(b) + 4, "xy", 2);
  hb_free(b);
  close(sv[0]);
  close(sv[1]);
}

static void read_eof(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  write_exact(sv[1], "end", 3);
  close(sv[1]);
  hb_buf *b = hb_new(16);
  size_t n;
  assert_int_equal(hb_read_fd(b, sv[0], 64, &n), HB_OK);
  hb__check(b);
  assert_int_equal(n, 3);
  assert_int_equal(hb_read_fd(b, sv[0], 64, &n), HB_EOF);
  hb__check(b);
  assert_int_equal(n, 0);
  assert_int_equal(hb_read_fd(b, sv[0], 64, &n), HB_EOF);
  hb__check(b);
  assert_int_equal(hb_len(b), 3);
  assert_memory_equal(hb_data(b), "end", 3);
  hb_free(b);
  close(sv[0]);
}

static void read_grows_keeps_bytes(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  hb_buf *b = hb_new(0);
  assert_int_equal(hb_put(b, "head", 4), HB_OK);
  enum { N = 200000 };
  uint8_t *src = malloc(N);
  for (size_t i = 0; i < N; i++) src[i] = pattern(i);
  /* A writer thread is not needed: the socket buffer takes 200 KB in
   * pieces; read whatever is there, refilling as we go. */
  set_nonblock(sv[1]);
  size_t sent = 0, got = 0;
  while (got < N) {
    if (sent < N) {
      ssize_t w = write(sv[1], src + sent, N - sent);
      if (w > 0) sent += (size_t)w;
    }
    size_t n;
    int rc = hb_read_fd(b, sv[0], 65536, &n);
    hb__check(b);
    assert_int_equal(rc, HB_OK);
    got += n;
    assert_true(hb_capacity(b) >= hb_len(b));
  }
  assert_int_equal(hb_len(b), 4 + N);
  assert_memory_equal(hb_data(b), "head", 4);
  assert_memory_equal(hb_data(b) + 4, src, N);
  free(src);
  hb_free(b);
  close(sv[0]);
  close(sv[1]);
}

static void read_errors_change_nothing(void **state) {
  (void)state;
  hb_buf *b = HB_WRAP("abc");
  size_t n = 99;
  assert_int_equal(hb_read_fd(b, 0, 0, &n), HB_EINVAL);
  hb__check(b);
  assert_int_equal(n, 0);
  errno = 0;
  assert_int_equal(hb_read_fd(b, -1, 16, &n), HB_EIO);
  hb__check(b);
  assert_int_equal(errno, EBADF);
  assert_int_equal(n, 0);
  assert_int_equal(hb_read_fd(b, 0, (size_t)PTRDIFF_MAX, &n), HB_ERANGE);
  hb__check(b);
  assert_int_equal(hb_read_fd(b, 0, SIZE_MAX, &n), HB_ERANGE);
  hb__check(b);
  assert_int_equal(hb_len(b), 4);
  assert_memory_equal(hb_data(b), "abc", 4);
  hb_free(b);
}

/* EINTR: a signal without SA_RESTART interrupts a blocking read, which
 * hb_read_fd retries until the data arrives. */
static volatile sig_atomic_t alarms;
static void on_alarm(int sig) {
  (void)sig;
  alarms++;
}

static void *late_writer(void *arg) {
  int fd = *(int *)arg;
  usleep(150 * 1000);
  write_exact(fd, "late", 4);
  return NULL;
}

static void read_retries_eintr(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm; /* no SA_RESTART */
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
  alarms = 0;
  struct itimerval it = {{0, 0}, {0, 30 * 1000}};
  assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, late_writer, &sv[1]), 0);
  hb_buf *b = hb_new(0);
  size_t n;
  assert_int_equal(hb_read_fd(b, sv[0], 16, &n), HB_OK);
  hb__check(b);
  assert_int_equal(n, 4);
  assert_memory_equal(hb_data(b), "late", 4);
  pthread_join(t, NULL);
  assert_int_equal(alarms, 1);
  sigaction(SIGALRM, &old, NULL);
  hb_free(b);
  close(sv[0]);
  close(sv[1]);
}

/* ---- hb_write_fd -------------------------------------------------------- */

static void write_short_then_eagain(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  set_nonblock(sv[0]);
  set_nonblock(sv[1]);
  int small = 4096;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  enum { N = 1 << 20 };
  hb_buf *b = hb_new(N);
  for (size_t i = 0; i < N; i++) hb_put_u8(b, pattern(i));
  uint8_t *got = malloc(N);
  size_t sent = 0, recvd = 0, n, shorts = 0;
  while (recvd < N) {
    int rc = hb_write_fd(b, sv[0], &n);
    hb__check(b);
    if (sent < N) {
      if (rc == HB_OK) {
        assert_true(n > 0);
        sent += n;
        assert_int_equal(hb_remaining(b), N - sent);
        assert_int_equal(hb_len(b), N); /* the bytes stay stored */
        if (sent < N) {
          /* A short write: the socket is full, so the next call would
           * block and says so without writing anything. */
          shorts++;
          assert_int_equal(hb_write_fd(b, sv[0], &n), HB_EAGAIN);
          hb__check(b);
          assert_int_equal(n, 0);
          assert_int_equal(hb_remaining(b), N - sent);
        }
      } else {
        assert_int_equal(rc, HB_EAGAIN);
        assert_int_equal(n, 0);
      }
    } else {
      assert_int_equal(rc, HB_OK); /* nothing left: 0 bytes, fine */
      assert_int_equal(n, 0);
    }
    ssize_t r;
    while ((r = read(sv[1], got + recvd, N - recvd)) > 0) recvd += (size_t)r;
  }
  assert_true(shorts > 1);
  assert_int_equal(sent, N);
  assert_memory_equal(got, hb_data(b), N);
  free(got);
  hb_free(b);
  close(sv[0]);
  close(sv[1]);
}

struct sink {
  int fd;
  size_t want;
  uint8_t *got;
};

static void *sink_thread(void *arg) {
  struct sink *s = arg;
  read_exact(s->fd, s->got, s->want);
  return NULL;
}

static void write_blocking_all_bytes(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  enum { N = 3 << 20 };
  hb_buf *b = hb_new(0);
  for (size_t i = 0; i < N; i++) hb_put_u8(b, pattern(i));
  assert_int_equal(hb_advance(b, 100), HB_OK); /* from the cursor */
  struct sink s = {sv[1], N - 100, malloc(N)};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, sink_thread, &s), 0);
  size_t n;
  assert_int_equal(hb_write_fd(b, sv[0], &n), HB_OK);
  hb__check(b);
  assert_int_equal(n, N - 100);
  assert_int_equal(hb_remaining(b), 0);
  pthread_join(t, NULL);
  assert_memory_equal(s.got, hb_data(b) + 100, N - 100);
  hb_compact(b);
  assert_int_equal(hb_len(b), 0);
  free(s.got);
  hb_free(b);
  close(sv[0]);
  close(sv[1]);
}

static void write_pipe_and_epipe(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  hb_buf *b = HB_WRAP("pipe!");
  size_t n;
  assert_int_equal(hb_write_fd(b, p[1], &n), HB_OK); /* not a socket */
  assert_int_equal(n, 6);
  char out[6];
  read_exact(p[0], out, 6);
  assert_memory_equal(out, "pipe!", 6);
  close(p[0]);
  close(p[1]);

  /* A closed peer: EPIPE as HB_EIO, and no SIGPIPE kills us. */
  int sv[2];
  pair(sv);
  close(sv[1]);
  hb_buf *c = HB_WRAP("lost");
  errno = 0;
  assert_int_equal(hb_write_fd(c, sv[0], &n), HB_EIO);
  hb__check(c);
  assert_int_equal(errno, EPIPE);
  assert_int_equal(n, 0);
  assert_int_equal(hb_remaining(c), 5);
  close(sv[0]);
  hb_free(b);
  hb_free(c);
}

/* ---- in-visitor forms --------------------------------------------------- */

struct vio {
  int fd;
  size_t max;
  int rc;       /* what hb_view_read_fd said */
  size_t n;
  size_t written;
  int ret;      /* what the callback returns */
};

static int read_cb(hb_view *view, void *ctx) {
  struct vio *io = ctx;
  io->rc = hb_view_read_fd(view, io->fd, io->max, &io->n);
  io->written = hb_view_bytes_written(view);
  return io->ret;
}

static void view_read_commit_and_abort(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  set_nonblock(sv[0]);
  hb_buf *b = HB_WRAP("abcd");
  hb_visitor v = HB_VISITOR_INIT;
  struct vio io = {sv[0], 64, 0, 0, 0, 0};

  /* Commit: the bytes land after the old ones. */
  write_exact(sv[1], "12345678", 8);
  assert_int_equal(HB_CAST_MUT(&v, b, uint32_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, read_cb, &io), HB_OK);
  int res = -1;
  assert_int_equal(hb_block_on(&v, &res), HB_OK);
  assert_int_equal(res, 0);
  assert_int_equal(io.rc, HB_OK);
  assert_int_equal(io.n, 8);
  assert_int_equal(io.written, 8);
  assert_int_equal(hb_len(b), 13);
  assert_memory_equal(hb_data(b), "abcd\0" "12345678", 13);

  /* Abort: the bytes read are rolled back (and gone from the socket). */
  write_exact(sv[1], "XYZ", 3);
  io.ret = -1;
  assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, read_cb, &io), HB_OK);
  assert_int_equal(hb_block_on(&v, &res), HB_OK);
  assert_int_equal(res, -1);
  assert_int_equal(io.rc, HB_OK);
  assert_int_equal(io.n, 3);
  assert_int_equal(io.written, 3);
  assert_int_equal(hb_len(b), 13);
  assert_memory_equal(hb_data(b), "abcd\0" "12345678", 13);

  /* Nothing there: HB_EAGAIN inside the visitor, nothing appended. */
  io.ret = 0;
  assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, read_cb, &io), HB_OK);
  assert_int_equal(hb_block_on(&v, &res), HB_OK);
  assert_int_equal(io.rc, HB_EAGAIN);
  assert_int_equal(io.n, 0);
  assert_int_equal(io.written, 0);

  /* EOF inside the visitor. */
  close(sv[1]);
  assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, read_cb, &io), HB_OK);
  assert_int_equal(hb_block_on(&v, &res), HB_OK);
  assert_int_equal(io.rc, HB_EOF);
  assert_int_equal(hb_len(b), 13);

  /* A read visitor may not append. */
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, read_cb, &io), HB_OK);
  assert_int_equal(hb_block_on(&v, &res), HB_OK);
  assert_int_equal(io.rc, HB_ESTATE);
  assert_int_equal(io.n, 0);

  hb__check(b);
  assert_int_equal(hb_free(b), HB_OK);
  close(sv[0]);
}

/* Growth beyond the reservation inside the visitor keeps the old bytes. */
static void view_read_grows(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  hb_buf *b = hb_new(0);
  for (int i = 0; i < 100; i++) hb_put_u8(b, pattern((size_t)i));
  uint8_t src[5000];
  for (size_t i = 0; i < sizeof src; i++) src[i] = pattern(i + 100);
  write_exact(sv[1], src, sizeof src);
  hb_visitor v = HB_VISITOR_INIT;
  struct vio io = {sv[0], sizeof src, 0, 0, 0, 0};
  assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 16, read_cb, &io), HB_OK);
  assert_int_equal(hb_block_on(&v, NULL), HB_OK);
  assert_int_equal(io.rc, HB_OK);
  assert_int_equal(hb_len(b), 100 + io.n);
  for (size_t i = 0; i < hb_len(b); i++)
    assert_int_equal(hb_data(b)[i], pattern(i));
  hb__check(b);
  hb_free(b);
  close(sv[0]);
  close(sv[1]);
}

struct vwrite {
  int fd;
  size_t offset;
  int rc;
  size_t n;
};

static int write_cb(hb_view *view, void *ctx) {
  struct vwrite *w = ctx;
  w->rc = hb_view_write_fd(view, w->fd, w->offset, &w->n);
  return 0;
}

static void view_write_from_offset(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  hb_buf *b = HB_WRAP("hello, world");
  hb_visitor v = HB_VISITOR_INIT;
  struct vwrite w = {sv[0], 7, 0, 0};
  char out[16];

  /* A read visitor may write bytes out. */
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, write_cb, &w), HB_OK);
  assert_int_equal(hb_block_on(&v, NULL), HB_OK);
  assert_int_equal(w.rc, HB_OK);
  assert_int_equal(w.n, 6);
  read_exact(sv[1], out, 6);
  assert_memory_equal(out, "world", 6);

  /* So may a write visitor; the offset is the caller's. */
  w.offset = 0;
  assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, write_cb, &w), HB_OK);
  assert_int_equal(hb_block_on(&v, NULL), HB_OK);
  assert_int_equal(w.rc, HB_OK);
  assert_int_equal(w.n, 13);
  read_exact(sv[1], out, 13);
  assert_memory_equal(out, "hello, world", 13);

  /* At the end: nothing to write.  Beyond it: HB_ERANGE. */
  w.offset = 13;
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, write_cb, &w), HB_OK);
  assert_int_equal(hb_block_on(&v, NULL), HB_OK);
  assert_int_equal(w.rc, HB_OK);
  assert_int_equal(w.n, 0);
  w.offset = 14;
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, write_cb, &w), HB_OK);
  assert_int_equal(hb_block_on(&v, NULL), HB_OK);
  assert_int_equal(w.rc, HB_ERANGE);
  assert_int_equal(w.n, 0);

  /* The cursor is direct mode's: untouched by view writes. */
  assert_int_equal(hb_remaining(b), 13);
  hb_free(b);
  close(sv[0]);
  close(sv[1]);
}

struct vdrain {
  size_t n;
  int rc, rc2;
  size_t written;
  int ret;
};

static int drain_cb(hb_view *view, void *ctx) {
  struct vdrain *d = ctx;
  assert_int_equal(hb_view_append_bytes(view, "NEW", 3), HB_OK);
  d->rc = hb_view_drain(view, d->n);
  d->rc2 = hb_view_drain(view, 1000); /* more than was there: refused */
  d->written = hb_view_bytes_written(view);
  return d->ret;
}

static void view_drain(void **state) {
  (void)state;
  hb_buf *b = HB_WRAP("0123456789"); /* 11 bytes with the NUL */
  assert_int_equal(hb_advance(b, 6), HB_OK);
  hb_visitor v = HB_VISITOR_INIT;
  struct vdrain d = {4, 0, 0, 0, 0};
  assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, drain_cb, &d), HB_OK);
  assert_int_equal(hb_block_on(&v, NULL), HB_OK);
  assert_int_equal(d.rc, HB_OK);
  assert_int_equal(d.rc2, HB_ERANGE);
  assert_int_equal(d.written, 3); /* the appended bytes still count */
  assert_int_equal(hb_len(b), 10);
  assert_memory_equal(hb_data(b), "456789\0NEW", 10);
  assert_int_equal(hb_remaining(b), 8); /* the cursor moved with its byte */
  assert_int_equal(hb_data(b)[10 - hb_remaining(b)], '6');
  hb__check(b);

  /* An abort rolls the append back but not the drain (documented). */
  d.n = 2;
  d.ret = -5;
  assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, drain_cb, &d), HB_OK);
  int res;
  assert_int_equal(hb_block_on(&v, &res), HB_OK);
  assert_int_equal(res, -5);
  assert_int_equal(hb_len(b), 8);
  assert_memory_equal(hb_data(b), "6789\0NEW", 8);
  hb__check(b);
  hb_free(b);
}

static int drain_read_cb(hb_view *view, void *ctx) {
  (void)ctx;
  return hb_view_drain(view, 1);
}

static void view_drain_read_visitor(void **state) {
  (void)state;
  hb_buf *b = HB_WRAP("ab");
  hb_visitor v = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, drain_read_cb, NULL), HB_OK);
  int res = 0;
  assert_int_equal(hb_block_on(&v, &res), HB_OK);
  assert_int_equal(res, HB_ESTATE);
  assert_int_equal(hb_len(b), 3);
  hb_free(b);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_DFL); /* prove MSG_NOSIGNAL, not an ignored signal */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(read_partial),
      cmocka_unit_test(read_eagain),
      cmocka_unit_test(read_eof),
      cmocka_unit_test(read_grows_keeps_bytes),
      cmocka_unit_test(read_errors_change_nothing),
      cmocka_unit_test(read_retries_eintr),
      cmocka_unit_test(write_short_then_eagain),
      cmocka_unit_test(write_blocking_all_bytes),
      cmocka_unit_test(write_pipe_and_epipe),
      cmocka_unit_test(view_read_commit_and_abort),
      cmocka_unit_test(view_read_grows),
      cmocka_unit_test(view_write_from_offset),
      cmocka_unit_test(view_drain),
      cmocka_unit_test(view_drain_read_visitor),
  };
  return hb_test_main("io", tests);
}
