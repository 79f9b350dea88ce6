/*
 * hyperbuf_uv.h -- the libuv adapter, in its own library: link with
 * -lhyperbuf-uv (pkg-config hyperbuf-uv, CMake hyperbuf::uv).  It exists
 * when the library was built with libuv (CMake option HB_WITH_LIBUV).  Only
 * this header includes <uv.h>; <hyperbuf.h> never does.  Under a strict
 * -std=c11, <uv.h> needs the POSIX types: compile with
 * -D_POSIX_C_SOURCE=200809L (or -D_GNU_SOURCE), as for libuv itself.
 *
 * hb_uv_visit drives a visitor from a uv loop:
 * the waker is a uv_async_t, and both the visit callback and `done` run on
 * the loop thread, inside uv_run.  While the visit is outstanding the
 * async handle keeps the loop alive.
 */
/** @file hyperbuf_uv.h
 *  The libuv adapter: drive visitors from a uv loop (-lhyperbuf-uv). */
#ifndef HYPERBUF_UV_H
#define HYPERBUF_UV_H

#include "hyperbuf.h"

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One visit driven from a uv loop (see struct hb_uv_req). */
typedef struct hb_uv_req hb_uv_req;

/**
 * Called on the loop thread when the visit is over: status HB_OK (the
 * callback ran; result is what it returned) or HB_ECANCELED (result 0).
 * The library no longer touches req or its visitor: both may be reused or
 * freed.
 */
typedef void (*hb_uv_done_fn)(hb_uv_req *req, int status, int result);

/** One visit driven from a uv loop: caller-owned storage, given to
 *  hb_uv_visit and left alone until its done callback. */
struct hb_uv_req {
  /* public */
  void *data;           /**< free for the caller's use */
  /* read-only */
  hb_visitor *visitor;  /**< the visitor being driven */
  /** @privatesection */
  uv_async_t async;
  hb_uv_done_fn done;
  int status, result;
  void *reserved[2];
};

/**
 * Arm the cast visitor v (as hb_visit) and drive it from loop: it is
 * polled on the loop thread, first on the next loop iteration and then
 * each time its waker fires; when it has run or been cancelled, the async
 * handle is closed and done(req, status, result) is called.  Nothing runs
 * before hb_uv_visit returns.  Cancel with hb_cancel(v) from any thread.
 * Requires: called on the loop's thread (it initialises a uv handle);
 * req stays valid until done has been called.
 * @return HB_OK; the errors of hb_visit (nothing started); HB_EIO if the
 *         async handle could not be created (v is then cancelled).
 */
HB_EXTERN int hb_uv_visit(uv_loop_t *loop, hb_uv_req *req, hb_visitor *v,
                          size_t reserve, hb_visit_fn fn, void *ctx,
                          hb_uv_done_fn done);

/**
 * A waker that calls uv_async_send(async), for loops that poll visitors
 * from their own async callback.  async must stay open until every
 * visitor polled with it has finished.
 * @return the waker (arg is async).
 */
HB_EXTERN hb_waker hb_uv_waker(uv_async_t *async);

#ifdef __cplusplus
}
#endif
#endif /* HYPERBUF_UV_H */
