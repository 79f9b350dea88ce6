/*
 * visitor.c -- a visitor's life cycle: cast, arm, the drivers hb_try_visit
 * and hb_poll, detached mode, and hb_cancel.  (The lock they take is in
 * src/lock.c, hb_block_on in src/park.c, the one-call form in src/now.c.)
 *
 * A VISITOR'S STATE (hb_visitor.state, atomic)
 *
 *   phase (low 4 bits): IDLE -> CAST -> RUNNING -> RAN
 *                                   \-> CANCELLING -> CANCELLED
 *   flags: GRANTED (its turn has come), WRITE,
 *          WAKER (hb_poll stored a waker), DETACHED (hb_visit_detached),
 *          WAKING (its waker is being called), SLEEPER (a thread sleeps on
 *          the state word: waiting for CANCELLING or WAKING to end, or a
 *          PARKED visitor's driver waiting for its turn), PARKED (its
 *          driver, hb_block_on or hb_*_now, waits on the state word).
 *
 *   A visitor is in the wait queue exactly while it is CAST and not GRANTED.
 *   While a visitor is not granted, every change to its state happens under
 *   the buffer's mutex (enqueue, grant, waker registration, cancel, detach)
 *   -- but for SLEEPER, which a PARKED visitor's driver sets by CAS, so the
 *   grant of a PARKED visitor is a fetch_or.  Once granted, the only
 *   changes are claims by CAS: a driver claims CAST -> RUNNING, hb_cancel
 *   claims CAST -> CANCELLING; exactly one wins.
 *   A cancelled visitor passes through CANCELLING while the canceller still
 *   uses the buffer (releasing its ticket, or dispatching the queue behind
 *   it), so a driver that sees CANCELLED may free the buffer at once;
 *   drivers that see CANCELLING sleep on the state word until it ends.
 *   hb_visit's "armed" flag is a separate field: only the visitor's owner
 *   touches it.
 *
 *   The header's states are these phases: idle = IDLE; cast = CAST with
 *   armed 0; armed = CAST with armed 1 (granted or not); running =
 *   RUNNING; finished = RAN or CANCELLED (CANCELLING is on its way there:
 *   drivers wait it out, a second hb_cancel reports HB_ESTATE).
 *
 * THE TRANSITIONS (bits: src/bits.h; "queued" = CAST and not GRANTED)
 *
 *   from -> to             who, where           how            pairs with
 *   ---------------------  -------------------  -------------  ------------
 *   IDLE|RAN|CANCELLED     owner, hb__cast      store REL      the driver's
 *     -> CAST|GRANTED      after the fast CAS                  ACQUIRE load
 *   IDLE|RAN|CANCELLED     owner or hb_*_now,   store, under   hb__grant's
 *     -> queued, or        hb__cast_slow        mu             load under mu
 *     CAST|GRANTED
 *   queued -> +WAKER       hb_poll              mark_queued    hb__grant
 *   queued -> +PARKED      hb_block_on          mark_queued    hb__grant
 *     -WAKER
 *   queued -> +DETACHED    hb_visit_detached    mark_queued    hb__grant
 *   queued -> CANCELLING   hb_cancel            mark_queued    hb__grant;
 *     -WAKER                                                   drivers'
 *                                                              ACQUIRE loads
 *   queued -> +GRANTED     dispatcher,          store REL,     drivers'
 *     -WAKER (+WAKING if   hb__grant            under mu       ACQUIRE loads
 *     WAKER was set)
 *   queued DETACHED ->     dispatcher,          store REL,     hb__flush_slow
 *     RUNNING|GRANTED      hb__grant            under mu       (same thread)
 *   queued PARKED ->       dispatcher,          fetch_or REL,  hb__wait_turn
 *     +GRANTED             hb__grant            under mu       ACQUIRE loads
 *   waited on -> +SLEEPER  the waiter,          CAS ACQUIRE,   the RMW that
 *                          hb__sleep_until      no mutex       ends the wait
 *   WAKING -> -WAKING      granter,             fetch_and REL  hb__wait_
 *     -SLEEPER             hb__call_wakers                     settled's loads
 *   CAST|GRANTED ->        driver, hb__try_run  CAS ACQ_REL    hb_cancel's
 *     RUNNING              / hb_visit_detached  (hb__claim)    claim
 *   CAST|GRANTED ->        hb_cancel            CAS ACQ_REL    the driver's
 *     CANCELLING                                (hb__claim)    claim
 *   RUNNING -> +DETACHED   hb_visit_detached,   fetch_or RLX   none: v is
 *                          after its claim                     its own
 *   RUNNING -> RAN         the runner,          store REL,     drivers'
 *                          hb__run_claimed      after release  ACQUIRE loads
 *   CANCELLING ->          hb_cancel            store REL,     drivers'
 *     CANCELLED                                 futex wake     ACQUIRE loads
 *
 *   mark_queued is hb__mark_queued (src/lock.c): a plain store under mu,
 *   where it meets hb__grant, which decides under the same mutex.  Every
 *   row after the grant but the SLEEPER, WAKING and DETACHED ones is a
 *   claim or the claimer finishing; those three are the exceptions to
 *   "once granted, the only changes are claims by CAS".
 *
 * THE RACES, OPERATION BY OPERATION
 *
 * hb_cast / hb_cast_mut
 *
 *   The fast CAS (hb__grant_fast) fails on WAITERS, so a cast never
 *   overtakes a queued one, and on BIASED, so it never races the biased
 *   thread's visit; hb__cast_slow then revokes the bias first.  The
 *   lock-word race with a release is THE LOCK's WAITERS argument
 *   (src/lock.c).
 *
 * hb_poll against the grant
 *
 *   hb_poll's registration and the grant both happen under the mutex, so
 *   either the poll sees GRANTED, or the granter sees WAKER and calls the
 *   waker (AtomicWaker's register/recheck, with a lock instead of a CAS loop
 *   because the slow path needs the queue lock anyway).
 *
 * hb_try_visit / hb_poll / hb_block_on against hb_cancel (running a
 * granted visitor)
 *
 *   Both claim CAST|GRANTED by CAS: the driver to RUNNING (hb__try_run),
 *   the cancel to CANCELLING.  Exactly one wins.  A losing driver reloads,
 *   sees CANCELLING, sleeps until CANCELLED (hb__wait_settled) and reports
 *   HB_ECANCELED; a losing cancel reloads, sees RUNNING and reports
 *   HB_EBUSY.  Both first wait out WAKING, so neither finishes a visitor
 *   whose waker is still being called.
 *
 * hb_cancel of a queued visitor against the grant
 *
 *   Decided under the mutex (hb__mark_queued): queued still, it is marked
 *   CANCELLING, unlinked, and the queue behind it dispatched; granted
 *   meanwhile, hb_cancel goes round to the claim race above.  It stays
 *   CANCELLING while hb_cancel uses the buffer and calls the visitor's own
 *   waker, so a driver that sees CANCELLED may free both at once.
 *
 * hb_visit_detached against the grant and hb_cancel
 *
 *   Queued: marked DETACHED under the mutex, so the dispatcher either
 *   sees the mark (and claims it RUNNING for hb__flush_slow to run) or
 *   granted it before, and hb_visit_detached runs it itself after a claim.
 *   A cancel that wins that claim did not see DETACHED, so done is called
 *   by hb_visit_detached, once the cancel has settled.
 *
 * hb_block_on against the grant: see PARKING in src/park.c.
 */
#include "visit.h"

#include <stdbool.h>

bool hb__load_granted(const hb_visitor *v) {
  return (hb__load_state(v) & HB__V_GRANTED) != 0;
}

/* ---- running a visit ------------------------------------------------------
 */

/* Run a visitor already claimed RUNNING; leave what it unblocked in wl. */
static int hb__run_claimed(hb_visitor *v, uint32_t s, hb__wakelist *wl) {
  bool write = (s & HB__V_WRITE) != 0;
  int r = hb__run_fn(v->buf, &v->type, write, v->reserve, v->fn, v->ctx,
                     true);
  v->result = r;
  hb__release(hb__ext(v->buf), hb__mode_of(write), true, wl);
  /* The ticket is back; from here on, only v. */
  hb__store_state(v, hb__with_phase(s, HB__V_RAN));
  return r;
}

/* The rest of hb__run_claimed when somebody waits: release (it may
 * dispatch), mark v RAN, then do what the release unblocked. */
static __attribute__((noinline)) void hb__finish_claimed_slow(hb_visitor *v,
                                                              uint32_t s) {
  hb__wakelist wl;
  HB__WAKELIST_INIT(wl);
  hb__release(hb__ext(v->buf), hb__mode_of_state(s), true, &wl);
  hb__store_state(v, hb__with_phase(s, HB__V_RAN));
  hb__flush(&wl);
}

/* Run the detached visitors collected in wl, and call the wakers, until
 * nothing is left: running one may unblock more. */
void hb__flush_slow(hb__wakelist *wl) {
  for (;;) {
    hb__call_wakers(wl);
    hb_visitor *v = wl->detached;
    if (v == NULL) return;
    wl->detached = v->next;
    v->next = NULL;
    hb_done_fn done = v->done;
    void *arg = v->done_arg;
    uint32_t s = hb__with_phase(hb__load_state(v), HB__V_CAST);
    int r = hb__run_claimed(v, s, wl);
    if (done != NULL) done(v, HB_OK, r, arg);
  }
}

static inline bool hb__unsettled(uint32_t s) {
  return hb__phase(s) == HB__V_CANCELLING || (s & HB__V_WAKING);
}
static bool hb__settled(uint32_t s) { return !hb__unsettled(s); }

/* Wait out what another thread is still doing to v: an hb_cancel using
 * the buffer (CANCELLING), or a granter calling v's waker (WAKING).  Both
 * are short; we sleep on the state word, flagging SLEEPER so the waker's
 * caller knows to wake us. */
static uint32_t hb__wait_settled(hb_visitor *v) {
  /* WAKING usually ends within nanoseconds (a waker must be cheap), and so
   * does a cancel's use of the buffer: spin a little first. */
  return hb__settle_until(&v->state, HB__V_SLEEPER, hb__settled);
}

/* The drivers' common entry: HB_OK/HB_ECANCELED/HB_ESTATE/HB_EBUSY when the
 * state alone answers, or HB_PENDING when it is armed and not finished. */
static int hb__driver_check(hb_visitor *v, uint32_t *sp, int *result) {
  uint32_t s = hb__load_state(v);
  if (HB__UNLIKELY(hb__unsettled(s))) s = hb__wait_settled(v);
  *sp = s;
  switch (hb__phase(s)) {
  case HB__V_RAN:
    if (s & HB__V_DETACHED) return HB_ESTATE;
    if (result != NULL) *result = v->result;
    return HB_OK;
  case HB__V_CANCELLED:
    return HB_ECANCELED;
  case HB__V_RUNNING:
    return (s & HB__V_DETACHED) ? HB_ESTATE : HB_EBUSY;
  case HB__V_CAST:
    if (!v->armed || (s & HB__V_DETACHED)) return HB_ESTATE;
    return HB_PENDING;
  default:
    return HB_ESTATE;
  }
}

/* Try to run an armed visitor whose turn has come.  Returns HB_EAGAIN when
 * it has not come, or a final status. */
int hb__try_run(hb_visitor *v, int *result) {
  for (;;) {
    uint32_t s;
    int rc = hb__driver_check(v, &s, result);
    if (rc != HB_PENDING) return rc;
    if (!(s & HB__V_GRANTED)) return HB_EAGAIN;
    if (hb__claim(v, &s, HB__V_RUNNING)) {
      /* hb__run_claimed, with the uncontended release inline and the
       * wakelist only on the slow way (its frame costs the fast one). */
      bool write = (s & HB__V_WRITE) != 0;
      int r = hb__run_fn(v->buf, &v->type, write, v->reserve, v->fn, v->ctx,
                         true);
      v->result = r;
      if (hb__release_fast(hb__ext(v->buf), hb__mode_of(write)))
        hb__store_state(v, hb__with_phase(s, HB__V_RAN)); /* only v now */
      else
        hb__finish_claimed_slow(v, s);
      if (result != NULL) *result = r;
      return HB_OK;
    }
    /* lost the claim to hb_cancel: look again */
  }
}

/* ---- casting --------------------------------------------------------------
 */

static int hb__cast(hb_visitor *v, hb_buf *b, hb_type t, bool write) {
  if (v == NULL || !hb__type_ok(b, t)) return HB_EINVAL;
  uint32_t phase = hb__phase(hb__load_state(v));
  if (phase != HB__V_IDLE && phase != HB__V_RAN && phase != HB__V_CANCELLED)
    return HB_ESTATE;

  /* Only what is read before hb_visit: the rest is written where it is
   * first needed (links on enqueue, waker on registration, done on
   * detaching, result on running), which keeps the stores in front of the
   * CAS below few -- a locked instruction waits for them to drain. */
  v->buf = b;
  v->type = t;
  v->armed = 0;
  uint32_t s = HB__V_CAST | hb__mode_of(write)->vflag;

  if (hb__grant_fast(b, write)) {
    hb__store_state(v, s | HB__V_GRANTED);
    return HB_OK;
  }
  hb__cast_slow(hb__ext(b), v, s);
  return HB_OK;
}

int hb_cast(hb_visitor *v, hb_buf *b, hb_type t) {
  return hb__cast(v, b, t, false);
}

int hb_cast_mut(hb_visitor *v, hb_buf *b, hb_type t) {
  return hb__cast(v, b, t, true);
}

/* ---- arming ---------------------------------------------------------------
 */

static int hb__arm(hb_visitor *v, size_t reserve, hb_visit_fn fn,
                   void *ctx) {
  if (v == NULL) return HB_EINVAL;
  uint32_t s = hb__load_state(v);
  if (hb__phase(s) != HB__V_CAST || v->armed) return HB_ESTATE;
  if (fn == NULL) return HB_EINVAL;
  if (reserve > (size_t)PTRDIFF_MAX) return HB_ERANGE;
  v->fn = fn;
  v->ctx = ctx;
  v->reserve = reserve;
  v->done = NULL;
  v->armed = 1;
  return HB_OK;
}

int hb_visit(hb_visitor *v, size_t reserve, hb_visit_fn fn, void *ctx) {
  return hb__arm(v, reserve, fn, ctx);
}

int hb_visit_detached(hb_visitor *v, size_t reserve, hb_visit_fn fn,
                      void *ctx, hb_done_fn done, void *done_arg) {
  int rc = hb__arm(v, reserve, fn, ctx);
  if (rc != HB_OK) return rc;
  v->done = done;
  v->done_arg = done_arg;

  hb__buf *e = hb__ext(v->buf);
  uint32_t s = hb__load_state(v);
  if (!(s & HB__V_GRANTED)) {
    /* Queued: mark it detached under the mutex, so that the dispatcher
     * either sees the mark and runs it, or granted it before and we do. */
    if (hb__mark_queued(e, v, &s, 0, HB__V_DETACHED, false)) return HB_OK;
  }
  /* Its turn has come: run it here -- unless a cancel that did not yet see
   * it detached claimed it first; then done is ours to call. */
  for (;;) {
    if (hb__phase(s) != HB__V_CAST) {
      hb__wait_settled(v);
      if (done != NULL) done(v, HB_ECANCELED, 0, done_arg);
      return HB_OK;
    }
    if (hb__claim(v, &s, HB__V_RUNNING)) break;
  }
  __atomic_fetch_or(&v->state, HB__V_DETACHED, __ATOMIC_RELAXED);
  s |= HB__V_DETACHED;
  hb__wakelist wl;
  HB__WAKELIST_INIT(wl);
  int r = hb__run_claimed(v, s, &wl);
  if (done != NULL) done(v, HB_OK, r, done_arg);
  hb__flush(&wl);
  return HB_OK;
}

/* ---- drivers --------------------------------------------------------------
 */

int hb_try_visit(hb_visitor *v, int *result) {
  if (v == NULL) return HB_EINVAL;
  return hb__try_run(v, result);
}

int hb_poll(hb_visitor *v, hb_waker w, int *result) {
  if (v == NULL) return HB_EINVAL;
  for (;;) {
    int rc = hb__try_run(v, result);
    if (rc != HB_EAGAIN) return rc;

    /* Not its turn: register the waker, re-checking under the mutex the
     * granter holds when it reads it. */
    hb__buf *e = hb__ext(v->buf);
    uint32_t s;
    uint32_t mark = w.wake != NULL ? HB__V_WAKER : 0u;
    if (hb__mark_queued(e, v, &s, 0, mark, true)) {
      if (mark) v->waker = w; /* under the mutex the granter reads it under */
      hb__mutex_unlock(&e->mu);
      return HB_PENDING;
    }
    /* granted or cancelled meanwhile: go round */
  }
}

/* ---- cancelling -----------------------------------------------------------
 */

int hb_cancel(hb_visitor *v) {
  if (v == NULL) return HB_EINVAL;
  for (;;) {
    uint32_t s = hb__load_state(v);
    if (HB__UNLIKELY(s & HB__V_WAKING)) s = hb__wait_settled(v);
    switch (hb__phase(s)) {
    case HB__V_CAST:
      break;
    case HB__V_RUNNING:
      return HB_EBUSY;
    default:
      return HB_ESTATE; /* idle, finished, or another cancel under way */
    }
    hb_buf *b = v->buf;
    hb__buf *e = hb__ext(b);
    hb_done_fn done = v->done;
    void *done_arg = v->done_arg;
    hb__wakelist wl;
    HB__WAKELIST_INIT(wl);

    if (s & HB__V_GRANTED) {
      /* Its turn has come: claim it against a driver, then hand the ticket
       * back as a visit that did not run. */
      if (!hb__claim(v, &s, HB__V_CANCELLING)) continue;
      __atomic_fetch_add(&e->cancelled, 1, __ATOMIC_RELAXED);
      hb__release(e, hb__mode_of_state(s), false, &wl);
      hb__store_state(v, hb__with_phase(s, HB__V_CANCELLED));
      hb__futex_wake_all(&v->state); /* drivers waiting out CANCELLING */
    } else {
      /* CANCELLING, not CANCELLED, until we are done with the buffer: the
       * dispatch below may drop the mutex to call a full batch of wakers,
       * and a driver that saw CANCELLED could let the owner free it. */
      const uint32_t clear = HB__V_WAKER | HB__V_PHASE;
      if (!hb__mark_queued(e, v, &s, clear, HB__V_CANCELLING, true))
        continue; /* granted meanwhile */
      /* Still queued, maybe marked meanwhile (WAKER, PARKED, DETACHED):
       * what we act on is the state found under the mutex. */
      done = v->done;
      done_arg = v->done_arg;
      hb__queue_unlink(e, v);
      hb_waker own = (s & HB__V_WAKER) ? v->waker : (hb_waker){NULL, NULL};
      __atomic_fetch_add(&e->cancelled, 1, __ATOMIC_RELAXED);
      s = (s & ~clear) | HB__V_CANCELLING;
      /* Those behind it may be free to go now (a writer left the head). */
      hb__dispatch(e, &wl, 0);
      hb__mutex_unlock(&e->mu);
      /* Its own waker is called while it is still CANCELLING, so no driver
       * can finish it (and free the waker's arg) before the call returns. */
      if (own.wake != NULL) own.wake(own.arg);
      hb__store_state(v, hb__with_phase(s, HB__V_CANCELLED));
      hb__futex_wake_all(&v->state); /* drivers waiting out CANCELLING */
    }
    if ((s & HB__V_DETACHED) && done != NULL)
      done(v, HB_ECANCELED, 0, done_arg);
    hb__flush(&wl);
    return HB_OK;
  }
}
