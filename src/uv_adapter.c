/*
 * uv_adapter.c -- drive visitors from a libuv loop: libhyperbuf-uv, built
 * with libuv only (HB_WITH_LIBUV), over the public API alone.
 *
 * The waker is a uv_async_t: uv_async_send is libuv's one thread-safe call,
 * it coalesces, and its callback runs on the loop thread.  So whichever
 * thread makes the visitor runnable only sends; the loop thread polls, and
 * the visit callback runs there.
 *
 * hb_uv_visit never polls synchronously: it sends the async once, so the
 * first poll, and with it a callback whose turn has already come, happens
 * inside uv_run like every later one.  The done callback is called from
 * the async handle's close callback, the point after which libuv no longer
 * touches the handle, so done may free the request.
 *
 * Why no wake can land in a freed request: the loop polls only from the
 * async callback, and a stored waker is called once per HB_PENDING poll.
 * So when a poll returns a final status, the only wake there can have been
 * is the uv_async_send that caused this callback, and libuv runs the
 * callback only after that send has finished (uv__async_spin).  This holds
 * because each request owns its async handle; a caller sharing one handle
 * between visitors (hb_uv_waker) must keep it open until all are over.
 */
#include "hyperbuf_uv.h"

#include <stddef.h>

static void hb__uv_wake(void *arg) { uv_async_send((uv_async_t *)arg); }

hb_waker hb_uv_waker(uv_async_t *async) {
  hb_waker k = {hb__uv_wake, async};
  return k;
}

static hb_uv_req *hb__uv_req_of(uv_handle_t *h) {
  return (hb_uv_req *)(void *)((char *)h - offsetof(hb_uv_req, async));
}

static void hb__uv_closed(uv_handle_t *h) {
  hb_uv_req *req = hb__uv_req_of(h);
  if (req->done != NULL) req->done(req, req->status, req->result);
}

static void hb__uv_async_cb(uv_async_t *async) {
  hb_uv_req *req = hb__uv_req_of((uv_handle_t *)async);
  int result = 0;
  int st = hb_poll(req->visitor, hb_uv_waker(async), &result);
  if (st == HB_PENDING) return; /* the waker will send again */
  req->status = st;
  req->result = st == HB_OK ? result : 0;
  uv_close((uv_handle_t *)async, hb__uv_closed);
}

int hb_uv_visit(uv_loop_t *loop, hb_uv_req *req, hb_visitor *v,
                size_t reserve, hb_visit_fn fn, void *ctx,
                hb_uv_done_fn done) {
  if (loop == NULL || req == NULL || v == NULL) return HB_EINVAL;
  int rc = hb_visit(v, reserve, fn, ctx);
  if (rc != HB_OK) return rc;
  req->visitor = v;
  req->done = done;
  req->status = HB_OK;
  req->result = 0;
  if (uv_async_init(loop, &req->async, hb__uv_async_cb) != 0) {
    hb_cancel(v);
    return HB_EIO;
  }
  uv_async_send(&req->async);
  return HB_OK;
}
