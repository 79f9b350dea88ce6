/*
 * test_stream_uv.c -- a stream's waiting reader driven by a libuv loop
 * (hb_uv_visit, issue 12): the loop sleeps in uv_run until the write that
 * brings the reader's bytes; the callback runs on the loop thread.  Built
 * with libuv only.
 */
#include "hb_test.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "hyperbuf_uv.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

typedef struct {
  int calls;
  uint64_t offset;
  size_t n;
  int eof;
  pthread_t thread;
} seen_ctx;

static int seen_cb(hb_view *r, void *ctx) {
  seen_ctx *s = ctx;
  s->calls++;
  hb_view_read_bytes(r, &s->n);
  s->offset = hb_view_offset(r);
  s->eof = hb_view_eof(r);
  s->thread = pthread_self();
  return 0;
}

static int put10(hb_view *w, void *ctx) {
  (void)ctx;
  uint8_t x[10] = {0};
  return hb_view_append_bytes(w, x, sizeof x);
}

struct bg_writer {
  hb_buf *b;
  int delay_ms, n;
};

static void *bg_write(void *arg) {
  struct bg_writer *w = arg;
  for (int i = 0; i < w->n; i++) {
    sleep_ms(w->delay_ms);
    int result = -1;
    assert_int_equal(
        hb_write_now(w->b, HB_TYPE(uint8_t), 10, put10, NULL, &result),
        HB_OK);
    assert_int_equal(result, 0);
  }
  return NULL;
}

static hb_buf *new_stream(size_t cap, size_t limit) {
  hb_buf *b = hb_new(cap);
  assert_non_null(b);
  assert_int_equal(hb_stream_open(b, limit), HB_OK);
  return b;
}

static void uv_done(hb_uv_req *req, int status, int result) {
  (void)result;
  *(int *)req->data = status == HB_OK ? 1 : -1;
}

static void libuv_waiting_reader(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  hb_visitor v = HB_VISITOR_INIT;
  hb_uv_req req;
  seen_ctx s = {0};
  int done = 0;
  req.data = &done;
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 0, 20), HB_OK);
  assert_int_equal(hb_uv_visit(&loop, &req, &v, 0, seen_cb, &s, uv_done),
                   HB_OK);
  struct bg_writer w = {b, 5, 2};
  pthread_t t;
  pthread_create(&t, NULL, bg_write, &w);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  pthread_join(t, NULL);
  assert_int_equal(done, 1);
  assert_int_equal(s.calls, 1); /* granted once, by the second write */
  assert_int_equal(s.n, 20);
  assert_true(pthread_equal(s.thread, pthread_self())); /* the loop's */
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(hb_free(b), HB_OK);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(libuv_waiting_reader),
  };
  return hb_test_main("stream_uv", tests);
}
