/*
 * cancel.c -- hb_cancel, and settling: waiting out what another call is
 * still doing to a visitor (an hb_cancel's CANCELLING, a waker call's
 * WAKING), which the drivers and hb_visit_detached do too.  A visitor's
 * states and the transition table are at the top of src/visitor.c; the
 * cancel-against-run claim race is there under THE RACES.
 *
 * hb_cancel of a queued visitor against the grant
 *
 *   Decided under the mutex (hb__mark_queued): queued still, it is marked
 *   CANCELLING, unlinked, and the queue behind it dispatched; granted
 *   meanwhile, hb_cancel goes round to the claim race (src/visitor.c).
 *   It stays CANCELLING while hb_cancel uses the buffer; its own waker is
 *   called after, with CANCELLED|WAKING, so a driver elsewhere waits for
 *   the call to return before it reports the visitor finished.
 *
 * SHUTDOWN: cancel, free the buffer, join
 *
 *   A driver that must wait first announces itself on the visitor, by CAS
 *   while it is queued: hb_block_on with PARKED, hb_poll's registration
 *   with DRIVER.  Only then does it touch the buffer (the mutex, the spin
 *   budget).  A cancel's CANCELLED store returns the old state: if a flag
 *   is there, the canceller waits until the driver clears it -- the
 *   driver's last touch of v -- before it returns.  No driver can announce
 *   itself on a cancelled visitor.  The wait-time average is noted only by
 *   the driver that won the claim (hb__drive_present).
 */
#include "visit.h"

#include <stdbool.h>

/* ---- settling: what another call is still doing to v ---------------------
 */

static bool hb__settled(uint32_t s) { return !hb__unsettled(s); }

/* Wait out what another thread is still doing to v: an hb_cancel using
 * the buffer (CANCELLING), or a granter calling v's waker (WAKING).  Both
 * are short; we sleep on the state word, flagging SLEEPER so the waker's
 * caller knows to wake us. */
uint32_t hb__wait_settled(hb_visitor *v) {
  /* WAKING usually ends within nanoseconds (a waker must be cheap), and so
   * does a cancel's use of the buffer: spin a little first. */
  return hb__settle_until(&v->state, HB__V_SLEEPER, hb__settled);
}

/* The call of v's waker this thread is making, if any. */
static hb__calling *hb__calling_of(const hb_visitor *v) {
  for (hb__calling *c = hb__calls; c != NULL; c = c->up)
    if (c->v == v) return c;
  return NULL;
}

/* If v's waker is due in one of this thread's flushes, take it off that
 * chain and call it now: waiting for it would be waiting for ourselves. */
static void hb__call_due_waker(hb_visitor *v) {
  for (hb__wakelist *wl = hb__flushing; wl != NULL; wl = wl->up) {
    hb_visitor *prev = NULL;
    for (hb_visitor *x = wl->wake; x != NULL; prev = x, x = x->next) {
      if (x != v) continue;
      if (prev == NULL)
        wl->wake = x->next;
      else
        prev->next = x->next;
      if (wl->wake_tail == x) wl->wake_tail = prev;
      hb__call_waker(v);
      return;
    }
  }
}

/* v in state s is unsettled.  Wait it out -- unless this thread is the one
 * calling v's waker: then *mine is that call, and s comes back as it is. */
uint32_t hb__settle(hb_visitor *v, uint32_t s, hb__calling **mine) {
  *mine = NULL;
  if (s & HB__V_WAKING) {
    if ((*mine = hb__calling_of(v)) != NULL) return s;
    hb__call_due_waker(v);
  }
  return hb__wait_settled(v);
}

/* ---- cancelling -----------------------------------------------------------
 */

/* The canceller is done with the buffer: CANCELLING -> CANCELLED, adding
 * `add` (WAKING, for its own waker still to call) and dropping `drop` (the
 * WAKING of a waker call it took over).  An RMW: drivers set their flags
 * and SLEEPER meanwhile.  Returns the state it replaced. */
static uint32_t hb__finish_cancel(hb_visitor *v, uint32_t add, uint32_t drop) {
  uint32_t s = hb__load_state(v), n;
  do {
    n = (hb__with_phase(s, HB__V_CANCELLED) & ~(HB__V_SLEEPER | drop)) | add;
    /* RELEASE pairs with the drivers' ACQUIRE loads. */
  } while (!__atomic_compare_exchange_n(&v->state, &s, n, false,
                                        __ATOMIC_RELEASE, __ATOMIC_ACQUIRE));
  if (s & HB__V_SLEEPER) hb__futex_wake_all(&v->state);
  return s;
}

int hb_cancel(hb_visitor *v) {
  if (v == NULL) return HB_EINVAL;
  for (;;) {
    uint32_t s = hb__vstate(v);
    hb__calling *mine = NULL;
    if (HB__UNLIKELY(hb__unsettled(s))) s = hb__settle(v, s, &mine);
    switch (hb__phase(s)) {
    case HB__V_CAST:
      break;
    case HB__V_RUNNING:
      return HB_EBUSY;
    case HB__V_CANCELLED:
      /* Another cancel may still wait for a driver to leave.  HB_ESTATE
       * says "finished" (the buffer may go), so wait with it -- unless
       * this is that cancel's own waker calling (mine).  Found by
       * tests/model/visitor.pml. */
      if (mine == NULL && (s & HB__V_PRESENT))
        hb__settle_until(&v->state, HB__V_SLEEPER, hb__absent);
      return HB_ESTATE;
    default:
      return HB_ESTATE; /* idle, or ran */
    }
    hb_buf *b = __atomic_load_n(&v->buf, __ATOMIC_RELAXED);
    hb__buf *e = hb__ext(b);
    hb_done_fn done = NULL;
    void *done_arg = NULL;
    uint32_t own_waker = 0, took_over = 0;
    hb__wakelist wl;
    HB__WAKELIST_INIT(wl);

    if (s & HB__V_GRANTED) {
      /* Its turn has come: claim it against a driver, then hand the ticket
       * back as a visit that did not run. */
      if (!hb__claim(v, &s, HB__V_CANCELLING)) continue;
      if (mine != NULL) {
        /* We are inside v's own waker: the call's last touch (clearing
         * WAKING) is ours now. */
        mine->v = NULL;
        took_over = HB__V_WAKING;
      }
      __atomic_fetch_add(&e->cancelled, 1, __ATOMIC_RELAXED);
      hb__release(e, hb__mode_of_state(s), false, &wl);
    } else {
      /* CANCELLING, not CANCELLED, until we are done with the buffer, so
       * that no driver reports it finished (and lets the buffer be freed)
       * while we still dispatch. */
      const uint32_t clear = HB__V_WAKER | HB__V_PHASE;
      if (!hb__mark_queued(e, v, &s, clear, HB__V_CANCELLING, true))
        continue; /* granted meanwhile */
      /* Still queued, maybe marked meanwhile (WAKER, PARKED, DETACHED):
       * what we act on is the state found under the mutex, where done and
       * done_arg were written before DETACHED. */
      if (s & HB__V_DETACHED) {
        done = v->done;
        done_arg = v->done_arg;
      }
      own_waker = s & HB__V_WAKER;
      if (s & HB__V_STREAM)
        hb__stream_unlink(e, v); /* stream: waiting for data, not queued */
      else
        hb__queue_unlink(e, v);
      __atomic_fetch_add(&e->cancelled, 1, __ATOMIC_RELAXED);
      /* Those behind it may be free to go now (a writer left the head). */
      hb__dispatch(e, &wl, 0);
      hb__mutex_unlock(&e->mu);
    }
    /* Done with the buffer.  Its own waker, if due, is called first, with
     * WAKING set so no driver elsewhere reports v finished (and lets the
     * waker's arg go) before the call returns; then the wakers and
     * detached visitors the release unblocked. */
    uint32_t old = hb__finish_cancel(v, own_waker ? HB__V_WAKING : 0u,
                                     took_over);
    if (own_waker) hb__push_wake(&wl, v, true);
    if (done != NULL) {
      /* detached (no driver can be present): done after the wakers */
      hb__done_call dc = {b, done, done_arg};
      hb__flush_done(&wl, v, &dc);
      return HB_OK;
    }
    hb__flush(&wl);
    /* A driver that announced itself (hb_block_on parked, hb_poll
     * registering) still looks at v: wait for it to leave, so that once we
     * return nothing touches v or the buffer on v's behalf.  No driver can
     * announce itself after CANCELLED. */
    if (old & HB__V_PRESENT)
      hb__settle_until(&v->state, HB__V_SLEEPER, hb__absent);
    return HB_OK;
  }
}
