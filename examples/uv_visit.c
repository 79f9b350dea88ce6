/*
 * uv_visit.c -- visitors driven by a libuv loop (built when libuv is
 * present).
 *
 * A worker thread holds a write ticket for a while (it fills the buffer with
 * numbers, a little at a time).  The loop thread takes a read ticket behind
 * it and hands it to hb_uv_visit: the loop keeps serving its other work --
 * here a timer that ticks every 10 ms -- and when the writer finishes, the
 * visitor's waker (a uv_async_t) wakes the loop, and the read callback runs
 * on the loop thread, inside uv_run.
 */
#include <hyperbuf_uv.h>

#include <pthread.h>
#include <stdio.h>
#include <uv.h>

static pthread_t loop_thread;
static int ticks;

static int fill(hb_view *w, void *ctx) {
  (void)ctx;
  for (uint32_t i = 1; i <= 100; i++) {
    if (hb_view_append(w, &i) != HB_OK) return -1;
    if (i % 25 == 0) uv_sleep(10); /* a slow producer */
  }
  return 0;
}

static int sum(hb_view *r, void *ctx) {
  size_t n;
  const uint32_t *a = HB_READ_ARRAY(r, uint32_t, &n);
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) total += a[i];
  printf("reader: %zu numbers, sum %llu, on the %s thread\n", n,
         (unsigned long long)total,
         pthread_equal(pthread_self(), loop_thread) ? "loop" : "other");
  *(uint64_t *)ctx = total;
  return 0;
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  ticks++;
}

static void on_done(hb_uv_req *req, int status, int result) {
  printf("reader: done (%s, result %d) after %d timer ticks\n",
         hb_strerror(status), result, ticks);
  uv_timer_stop(req->data);
  uv_close((uv_handle_t *)req->data, NULL);
}

static void *run_writer(void *writer) {
  int rc = hb_block_on(writer, NULL);
  printf("writer: %s on a worker thread\n", hb_strerror(rc));
  return NULL;
}

int main(void) {
  loop_thread = pthread_self();
  uv_loop_t *loop = uv_default_loop();
  hb_buf *b = hb_new(0);
  if (b == NULL) return 1;

  hb_visitor writer = HB_VISITOR_INIT, reader = HB_VISITOR_INIT;
  if (HB_CAST_MUT(&writer, b, uint32_t) != HB_OK ||
      HB_CAST(&reader, b, uint32_t) != HB_OK ||
      hb_visit(&writer, 0, fill, NULL) != HB_OK)
    return 1;

  uv_timer_t timer;
  uv_timer_init(loop, &timer);
  uv_timer_start(&timer, on_tick, 10, 10);

  uint64_t total = 0;
  hb_uv_req req = {.data = &timer};
  if (hb_uv_visit(loop, &req, &reader, 0, sum, &total, on_done) != HB_OK)
    return 1;

  pthread_t t;
  pthread_create(&t, NULL, run_writer, &writer);
  uv_run(loop, UV_RUN_DEFAULT); /* returns once the visit and timer are done */
  pthread_join(t, NULL);

  int ok = total == 5050;
  printf("loop: finished, sum %s\n", ok ? "correct" : "WRONG");
  uv_loop_close(loop);
  return hb_free(b) == HB_OK && ok ? 0 : 1;
}
