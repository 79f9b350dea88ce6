/*
 * detached.c -- detached mode and the flush: running a claimed visit for
 * its done (hb__run_claimed), calling done, the flush that calls wakers
 * and runs detached visitors (hb__flush_slow, a trampoline),
 * hb__run_pending, and hb_visit_detached.  A visitor's states and the
 * transition table are at the top of src/visitor.c; hb_cancel's side of
 * a detached visitor is in src/cancel.c.
 *
 * RE-ENTRANCY
 *
 *   Wakers, callbacks and dones run outside the mutex, and a call made
 *   from them never waits for its own thread:
 *   - A visitor WAKING with its waker due in this thread's flush
 *     (hb__flushing): the call calls that waker at once, takes it off the
 *     chain, and goes on.  One whose waker this thread is calling
 *     (hb__calls): drivers answer HB_EDEADLK; hb_cancel cancels it and
 *     takes the call's last touch (clearing WAKING) over.
 *   - done is called after the wakers its visitor's release made due.
 *   - hb_visit_detached inside a flush hands its visitor to that flush (a
 *     trampoline), so re-arming from done takes constant stack.
 *   - hb_block_on and hb_*_now answer HB_EDEADLK where they would wait
 *     inside a waker, or inside a callback or done on the same buffer.
 *
 * hb_visit_detached against the grant and hb_cancel
 *
 *   Queued: marked DETACHED under the mutex, so the dispatcher either
 *   sees the mark (and claims it RUNNING for hb__flush_slow to run) or
 *   granted it before, and hb_visit_detached runs it itself after a claim.
 *   A cancel that wins that claim did not see DETACHED, so done is called
 *   by hb_visit_detached, once the cancel has settled.
 */
#include "visit.h"

#include <stdbool.h>

/* ---- running a visit ------------------------------------------------------
 */

/* Run a visitor already claimed RUNNING; leave what it unblocked in wl. */
static int hb__run_claimed(hb_visitor *v, uint32_t s, hb__wakelist *wl) {
  bool write = (s & HB__V_WRITE) != 0;
  int r = hb__run_visitor(v, write);
  v->result = r;
  hb__release(hb__ext(v->buf), hb__mode_of(write), true, wl);
  /* The ticket is back; from here on, only v. */
  hb__store_state(v, hb__with_phase(s, HB__V_RAN));
  return r;
}

/* Call a detached visitor's done.  It runs as if inside a visit of b: a
 * wait there for a turn on b (hb_block_on, hb_*_now) could be a wait for
 * the very call done runs in, so it is HB_EDEADLK instead. */
static void hb__call_done(hb_visitor *v, hb_buf *b, hb_done_fn done,
                          int status, int r, void *arg) {
  if (done == NULL) return;
  hb__frame frame = {b, hb__frames};
  hb__frames = &frame;
  done(v, status, r, arg);
  hb__frames = frame.prev;
}

/* Run one detached visitor claimed RUNNING (taken off wl's chain), then
 * call the wakers its release made due, and only then done: a done that
 * drives or cancels the visitors it unblocked finds them settled. */
static void hb__run_detached(hb_visitor *v, hb__wakelist *wl) {
  v->next = NULL;
  hb_done_fn done = v->done;
  void *arg = v->done_arg;
  hb_buf *b = v->buf;
  uint32_t s = hb__with_phase(hb__load_state(v), HB__V_CAST);
  int r = hb__run_claimed(v, s, wl);
  hb__call_wakers(wl);
  hb__call_done(v, b, done, HB_OK, r, arg);
}

/* Call the wakers and run the detached visitors collected in wl until
 * nothing is left: running one may unblock more.  With dc, a cancelled
 * detached visitor dv's done is called right after the first wakers
 * (those the cancel made due) and before any detached visitor runs: one of
 * those could otherwise find dv finished and cast it again before its done
 * was called.
 *
 * A trampoline: if a flush already runs on this thread -- this one is
 * inside one of its wakers, callbacks or dones -- the detached visitors go
 * to that flush, which runs them once the current callout returns.  So a
 * done that re-arms its visitor, round after round, runs in constant
 * stack; the wakers are called here, at once. */
void hb__flush_done(hb__wakelist *wl, hb_visitor *dv,
                    const hb__done_call *dc) {
  hb__wakelist *outer = hb__flushing;
  if (outer != NULL && wl->detached != NULL) {
    if (outer->detached == NULL)
      outer->detached = wl->detached;
    else
      outer->detached_tail->next = wl->detached;
    outer->detached_tail = wl->detached_tail;
    wl->detached = NULL;
  }
  wl->up = outer;
  hb__flushing = wl;
  if (dc != NULL) {
    hb__call_wakers(wl);
    hb__call_done(dv, dc->buf, dc->done, HB_ECANCELED, 0, dc->arg);
  }
  for (;;) {
    hb__call_wakers(wl);
    hb_visitor *v = wl->detached;
    if (v == NULL) break;
    wl->detached = v->next;
    hb__run_detached(v, wl);
  }
  hb__flushing = outer;
}

void hb__flush_slow(hb__wakelist *wl) { hb__flush_done(wl, NULL, NULL); }

void hb__run_pending(void) {
  bool again = true;
  while (again) {
    again = false;
    for (hb__wakelist *wl = hb__flushing; wl != NULL; wl = wl->up) {
      hb_visitor *v = wl->detached;
      if (v == NULL) continue;
      wl->detached = v->next;
      hb__run_detached(v, wl);
      again = true;
      break; /* the chain of flushes may have changed */
    }
  }
}

/* ---- hb_visit_detached ---------------------------------------------------
 */

int hb_visit_detached(hb_visitor *v, size_t reserve, hb_visit_fn fn,
                      void *ctx, hb_done_fn done, void *done_arg) {
  int rc = hb__arm(v, reserve, fn, ctx);
  if (rc != HB_OK) return rc;
  /* Read by another thread only once DETACHED is set: under the mutex
   * (queued) or by the thread that claims it RUNNING, which is this one. */
  v->done = done;
  v->done_arg = done_arg;

  hb__buf *e = hb__ext(v->buf);
  uint32_t s = hb__load_state(v);
  if (!(s & HB__V_GRANTED)) {
    /* Queued: mark it detached under the mutex, so that the dispatcher
     * either sees the mark and runs it, or granted it before and we do. */
    if (hb__mark_queued(e, v, &s, 0, HB__V_DETACHED, false)) return HB_OK;
  }
  /* Its turn has come: run it -- unless a cancel that did not yet see it
   * detached claimed it first; then done is ours to call. */
  for (;;) {
    if (hb__phase(s) != HB__V_CAST) {
      hb__wait_settled(v);
      /* Detached all the same, for the drivers' answer (HB_ESTATE). */
      __atomic_fetch_or(&v->state, HB__V_DETACHED, __ATOMIC_RELAXED);
      hb__call_done(v, &e->pub, done, HB_ECANCELED, 0, done_arg);
      return HB_OK;
    }
    if (hb__claim(v, &s, HB__V_RUNNING)) break;
  }
  __atomic_fetch_or(&v->state, HB__V_DETACHED, __ATOMIC_RELAXED);
  /* Run it through a flush of its own: here, or -- inside a flush already
   * running on this thread -- by that flush, after the current callout. */
  v->next = NULL;
  hb__wakelist wl = {.detached = v, .detached_tail = v};
  hb__flush_slow(&wl);
  return HB_OK;
}
