/*
 * uv.c -- a consumer of the libuv adapter (hyperbuf_uv.h, -lhyperbuf-uv):
 * a read visitor queued behind a write ticket is driven from a uv loop;
 * cancelling the writer makes its turn come, and the read callback then
 * runs on the loop thread, inside uv_run.
 */
#include <hyperbuf_uv.h>

#include <stdio.h>

static int count_bytes(hb_view *r, void *ctx) {
  (void)ctx;
  return (int)hb_view_len(r);
}

static int done_status = -100, done_result = -100;

static void done(hb_uv_req *req, int status, int result) {
  (void)req;
  done_status = status;
  done_result = result;
}

static void cancel_writer(uv_timer_t *t) {
  hb_cancel(t->data); /* the reader's turn comes: its waker fires */
  uv_close((uv_handle_t *)t, NULL);
}

int main(void) {
  hb_buf *b = hb_wrap("hello", 5);
  if (b == NULL) return 1;
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  hb_uv_req req;
  uv_loop_t *loop = uv_default_loop();
  uv_timer_t timer;
  if (HB_CAST_MUT(&w, b, uint8_t) != HB_OK ||
      HB_CAST(&r, b, uint8_t) != HB_OK ||
      hb_uv_visit(loop, &req, &r, 0, count_bytes, NULL, done) != HB_OK)
    return 2;
  uv_timer_init(loop, &timer);
  timer.data = &w;
  uv_timer_start(&timer, cancel_writer, 5, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  if (done_status != HB_OK || done_result != 5) {
    fprintf(stderr, "uv: status %d result %d\n", done_status, done_result);
    return 3;
  }
  printf("uv: the read visit ran on the loop and saw %d bytes\n", done_result);
  uv_loop_close(loop);
  return hb_free(b) == HB_OK ? 0 : 4;
}
