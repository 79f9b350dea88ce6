/*
 * test_uv.c -- the libuv adapter: a visitor's turn wakes the loop through
 * uv_async_t and its callback runs on the loop thread.  Built only when
 * libuv is present (tests/CMakeLists.txt).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "hyperbuf_uv.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

struct seen {
  pthread_t cb_thread;   /* where the visit callback ran */
  pthread_t done_thread; /* where done ran */
  int ran, done, status, result;
  size_t len;            /* what the reader saw */
};

static int reader_cb(hb_view *view, void *ctx) {
  struct seen *s = ctx;
  s->cb_thread = pthread_self();
  s->ran++;
  s->len = hb_view_len(view);
  return 42;
}

static void on_done(hb_uv_req *req, int status, int result) {
  struct seen *s = req->data;
  s->done_thread = pthread_self();
  s->done++;
  s->status = status;
  s->result = result;
}

/* The loop runs on its own thread: it arms a read visitor through the
 * adapter and runs until the visit is over (the async handle then closes
 * and nothing keeps the loop alive). */
struct loop_job {
  hb_visitor *v;
  struct seen seen;
  pthread_t loop_thread;
  int armed;      /* atomic: hb_uv_visit has returned */
  int ran_early;  /* the callback ran inside hb_uv_visit (it must not) */
};

static void *loop_main(void *arg) {
  struct loop_job *j = arg;
  uv_loop_t loop;
  hb_uv_req req;
  assert_int_equal(uv_loop_init(&loop), 0);
  j->loop_thread = pthread_self();
  req.data = &j->seen;
  assert_int_equal(hb_uv_visit(&loop, &req, j->v, 0, reader_cb, &j->seen,
                               on_done),
                   HB_OK);
  assert_ptr_equal(req.visitor, j->v);
  j->ran_early = j->seen.ran;
  __atomic_store_n(&j->armed, 1, __ATOMIC_RELEASE);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  return NULL;
}

static int append_cb(hb_view *view, void *ctx) {
  (void)ctx;
  return hb_view_append_bytes(view, "abcdef", 6);
}

static void wait_armed(struct loop_job *j) {
  while (!__atomic_load_n(&j->armed, __ATOMIC_ACQUIRE)) sleep_ms(1);
}

/* A writer ahead of the reader runs on this thread; the reader's callback
 * then runs on the loop thread and sees the writer's bytes. */
static void callback_runs_on_loop_thread(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r, b, uint16_t), HB_OK);
  struct loop_job j = {.v = &r};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, loop_main, &j), 0);
  wait_armed(&j);
  sleep_ms(20); /* let the loop poll once and wait */
  assert_int_equal(hb_visit(&w, 0, append_cb, NULL), HB_OK);
  assert_int_equal(hb_block_on(&w, NULL), HB_OK);
  pthread_join(t, NULL);

  assert_int_equal(j.ran_early, 0);
  assert_int_equal(j.seen.ran, 1);
  assert_int_equal(j.seen.done, 1);
  assert_int_equal(j.seen.status, HB_OK);
  assert_int_equal(j.seen.result, 42);
  assert_int_equal(j.seen.len, 3);
  assert_true(pthread_equal(j.seen.cb_thread, j.loop_thread));
  assert_true(pthread_equal(j.seen.done_thread, j.loop_thread));
  assert_false(pthread_equal(j.seen.cb_thread, pthread_self()));
  assert_int_equal(hb_free(b), HB_OK);
}

/* Nothing ahead: the turn has come, but the callback still runs inside
 * uv_run, never inside hb_uv_visit. */
static void immediate_turn_runs_in_loop(void **state) {
  (void)state;
  hb_buf *b = HB_WRAP("xy");
  hb_visitor r = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  struct loop_job j = {.v = &r};
  loop_main(&j); /* on this thread */
  assert_int_equal(j.ran_early, 0);
  assert_int_equal(j.seen.ran, 1);
  assert_int_equal(j.seen.len, 3);
  assert_int_equal(j.seen.status, HB_OK);
  assert_true(pthread_equal(j.seen.cb_thread, pthread_self()));
  assert_int_equal(hb_free(b), HB_OK);
}

/* Cancelled from another thread while waiting: done gets HB_ECANCELED on
 * the loop thread and the callback never runs. */
static void cancel_from_other_thread(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  struct loop_job j = {.v = &r};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, loop_main, &j), 0);
  wait_armed(&j);
  sleep_ms(20);
  assert_int_equal(hb_cancel(&r), HB_OK);
  pthread_join(t, NULL);
  assert_int_equal(j.seen.ran, 0);
  assert_int_equal(j.seen.done, 1);
  assert_int_equal(j.seen.status, HB_ECANCELED);
  assert_int_equal(j.seen.result, 0);
  assert_true(pthread_equal(j.seen.done_thread, j.loop_thread));
  assert_int_equal(hb_cancel(&w), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

static void bad_arguments_start_nothing(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  hb_buf *b = hb_new(0);
  hb_visitor r = HB_VISITOR_INIT;
  hb_uv_req req;
  /* Not cast: HB_ESTATE. */
  assert_int_equal(hb_uv_visit(&loop, &req, &r, 0, reader_cb, NULL, on_done),
                   HB_ESTATE);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(hb_uv_visit(&loop, &req, &r, 0, NULL, NULL, on_done),
                   HB_EINVAL);
  assert_int_equal(hb_uv_visit(NULL, &req, &r, 0, reader_cb, NULL, on_done),
                   HB_EINVAL);
  /* Nothing keeps the loop alive. */
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(hb_cancel(&r), HB_OK);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* hb_uv_waker with the caller's own async handle, serving two visitors. */
struct own {
  hb_visitor *v[2];
  int finished[2];
  int left;
  struct seen seen;
};

static void own_async_cb(uv_async_t *a) {
  struct own *o = a->data;
  for (int i = 0; i < 2; i++) {
    if (o->finished[i]) continue;
    int res = 0;
    int st = hb_poll(o->v[i], hb_uv_waker(a), &res);
    if (st == HB_PENDING) continue;
    assert_int_equal(st, HB_OK);
    assert_int_equal(res, 42);
    o->finished[i] = 1;
    o->left--;
  }
  if (o->left == 0) uv_close((uv_handle_t *)a, NULL);
}

static void *run_writer_later(void *arg) {
  sleep_ms(20);
  assert_int_equal(hb_block_on((hb_visitor *)arg, NULL), HB_OK);
  return NULL;
}

static void own_async_handle(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_async_t async;
  assert_int_equal(uv_loop_init(&loop), 0);
  hb_buf *b = hb_new(0);
  hb_visitor w = HB_VISITOR_INIT, r1 = HB_VISITOR_INIT, r2 = HB_VISITOR_INIT;
  struct own o = {{&r1, &r2}, {0, 0}, 2, {0}};
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r1, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r2, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w, 0, append_cb, NULL), HB_OK);
  assert_int_equal(hb_visit(&r1, 0, reader_cb, &o.seen), HB_OK);
  assert_int_equal(hb_visit(&r2, 0, reader_cb, &o.seen), HB_OK);
  assert_int_equal(uv_async_init(&loop, &async, own_async_cb), 0);
  async.data = &o;
  uv_async_send(&async); /* first poll inside the loop */
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, run_writer_later, &w), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  pthread_join(t, NULL);
  assert_int_equal(o.seen.ran, 2);
  assert_int_equal(o.seen.len, 6);
  assert_true(pthread_equal(o.seen.cb_thread, pthread_self()));
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(hb_free(b), HB_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(callback_runs_on_loop_thread),
      cmocka_unit_test(immediate_turn_runs_in_loop),
      cmocka_unit_test(cancel_from_other_thread),
      cmocka_unit_test(bad_arguments_start_nothing),
      cmocka_unit_test(own_async_handle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
