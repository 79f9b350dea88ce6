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
 *          PARKED visitor's driver waiting for its turn, or a canceller
 *          waiting for a driver to leave), PARKED (its driver, hb_block_on
 *          or hb_*_now, waits on the state word), DRIVER (hb_poll is
 *          registering its waker).  PARKED and DRIVER are announcements:
 *          a cancel returns only once they are gone.
 *
 *   The state counts only next to v's cookie (hb__vstate, src/visit.h):
 *   storage that was never cast here is idle whatever its bytes say.
 *
 *   A visitor is in the wait queue exactly while it is CAST and not GRANTED.
 *   While a visitor is not granted, the changes that decide against the
 *   grant happen under the buffer's mutex (enqueue, grant, waker
 *   registration, cancel, detach); drivers announce themselves (PARKED,
 *   DRIVER) and sleepers flag SLEEPER by CAS without it, so every write of
 *   a queued visitor's state is an RMW.  Once granted, the only changes
 *   are claims by CAS: a driver claims CAST -> RUNNING, hb_cancel claims
 *   CAST -> CANCELLING; exactly one wins.
 *   A cancelled visitor passes through CANCELLING while the canceller still
 *   uses the buffer (releasing its ticket, or dispatching the queue behind
 *   it), so a driver that sees CANCELLED may free the buffer at once;
 *   drivers that see CANCELLING sleep on the state word until it ends.  A
 *   driver that announced itself clears its flag as its last touch, and
 *   the canceller waits for that before it returns (SHUTDOWN below).
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
 *   queued -> +DRIVER      hb_poll              CAS, no mutex  hb__grant's
 *                          (hb__announce)                      CAS
 *   queued -> +WAKER       hb_poll              mark_queued    hb__grant
 *     -DRIVER
 *   queued -> +PARKED      hb_block_on          CAS, no mutex  hb__grant's
 *     -WAKER               (hb__announce)                      CAS
 *   queued -> +DETACHED    hb_visit_detached    mark_queued    hb__grant
 *   queued -> CANCELLING   hb_cancel            mark_queued    hb__grant;
 *     -WAKER                                                   drivers'
 *                                                              ACQUIRE loads
 *   queued -> +GRANTED     dispatcher,          CAS REL,       drivers'
 *     -WAKER (+WAKING if   hb__grant            under mu       ACQUIRE loads
 *     WAKER was set)
 *   queued DETACHED ->     dispatcher,          CAS REL,       hb__flush_slow
 *     RUNNING|GRANTED      hb__grant            under mu       (same thread)
 *   queued PARKED ->       dispatcher,          fetch_or REL,  hb__wait_turn
 *     +GRANTED             hb__grant            under mu       ACQUIRE loads
 *   waited on -> +SLEEPER  the waiter,          CAS ACQUIRE,   the RMW that
 *                          hb__sleep_until      no mutex       ends the wait
 *   WAKING -> -WAKING      granter,             fetch_and REL  hb__wait_
 *     -SLEEPER             hb__call_waker                      settled's loads
 *   GRANTED +PARKED or     its driver,          CAS ACQ_REL    hb_cancel's
 *     +DRIVER -> RUNNING   hb__drive_present                   claim
 *     -PARKED -DRIVER
 *   CANCELLED +PARKED or   its driver,          fetch_and REL  the
 *     +DRIVER -> -PARKED   hb__drive_present                   canceller's
 *     -DRIVER -SLEEPER                                         wait
 *   CAST|GRANTED ->        driver, hb__try_run  CAS ACQ_REL    hb_cancel's
 *     RUNNING              / hb_visit_detached  (hb__claim)    claim
 *   CAST|GRANTED ->        hb_cancel            CAS ACQ_REL    the driver's
 *     CANCELLING                                (hb__claim)    claim
 *   RUNNING -> +DETACHED   hb_visit_detached,   fetch_or RLX   none: v is
 *                          after its claim                     its own
 *   RUNNING -> RAN         the runner,          store REL,     drivers'
 *                          hb__run_claimed      after release  ACQUIRE loads
 *   CANCELLING ->          hb_cancel,           CAS REL,       drivers'
 *     CANCELLED (+WAKING   hb__finish_cancel    futex wake     ACQUIRE loads
 *     for its own waker)
 *
 *   mark_queued is hb__mark_queued (src/lock.c): a CAS under mu, where it
 *   meets hb__grant, which decides under the same mutex.  Every
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
 *   CANCELLING while hb_cancel uses the buffer; its own waker is called
 *   after, with CANCELLED|WAKING, so a driver elsewhere waits for the call
 *   to return before it reports the visitor finished.
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
 *
 * hb_block_on against the grant: see PARKING in src/park.c.
 */
#include "visit.h"

#include <stdbool.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HB__HAVE_MEMCHECK 1
#endif
#endif
#ifdef HB__MSAN
#include <sanitizer/msan_interface.h>
#endif

_Thread_local hb__wakelist *hb__flushing HB__TLS_MODEL;
_Thread_local hb__calling *hb__calls HB__TLS_MODEL;

/* Set once, before main, and only read after: no race. */
int hb__on_valgrind;

#ifdef HB__HAVE_MEMCHECK
__attribute__((constructor)) static void hb__detect_valgrind(void) {
  hb__on_valgrind = RUNNING_ON_VALGRIND != 0;
}
#endif

void hb__defined_slow(const hb_visitor *v) {
  /* state and cookie are adjacent (include/hyperbuf.h) */
  (void)v;
#ifdef HB__HAVE_MEMCHECK
  VALGRIND_MAKE_MEM_DEFINED(&v->state, sizeof v->state + sizeof v->cookie);
#endif
#ifdef HB__MSAN
  __msan_unpoison(&v->state, sizeof v->state + sizeof v->cookie);
#endif
}

bool hb__load_granted(const hb_visitor *v) {
  return (hb__load_state(v) & HB__V_GRANTED) != 0;
}

bool hb__load_parked(const hb_visitor *v) {
  return (hb__load_state(v) & HB__V_PARKED) != 0;
}

/* ---- running a visit ------------------------------------------------------
 */

/* Run a visitor already claimed RUNNING; leave what it unblocked in wl. */
static int hb__run_claimed(hb_visitor *v, uint32_t s, hb__wakelist *wl) {
  bool write = (s & HB__V_WRITE) != 0;
  int r = hb__run_fn(v->buf, &v->type, write, v->reserve, v->fn, v->ctx,
                     true, hb__vs_get(v).from);
  v->result = r;
  hb__release(hb__ext(v->buf), hb__mode_of(write), true, wl);
  /* The ticket is back; from here on, only v. */
  hb__store_state(v, hb__with_phase(s, HB__V_RAN));
  return r;
}

/* Run a claimed visitor here and do what its release unblocked: as
 * hb__run_claimed + hb__flush, with the uncontended release an inline CAS
 * (hb__release_fast) rather than a call. */
static int hb__run_here(hb_visitor *v, uint32_t s, int *result) {
  bool write = (s & HB__V_WRITE) != 0;
  hb__buf *e = hb__ext(v->buf);
  int r = hb__run_fn(v->buf, &v->type, write, v->reserve, v->fn, v->ctx,
                     true, hb__vs_get(v).from);
  v->result = r;
  if (hb__release_fast(e, hb__mode_of(write))) {
    hb__store_state(v, hb__with_phase(s, HB__V_RAN)); /* only v now */
  } else {
    hb__wakelist wl;
    HB__WAKELIST_INIT(wl);
    hb__release(e, hb__mode_of(write), true, &wl);
    /* The ticket is back; from here on, only v. */
    hb__store_state(v, hb__with_phase(s, HB__V_RAN));
    hb__flush(&wl);
  }
  if (result != NULL) *result = r;
  return HB_OK;
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

/* A cancelled detached visitor's done, for hb__flush_done. */
typedef struct {
  hb_buf *buf;
  hb_done_fn done;
  void *arg;
} hb__done_call;

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
static void hb__flush_done(hb__wakelist *wl, hb_visitor *dv,
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

/* ---- settling: what another call is still doing to v ---------------------
 */

static inline bool hb__unsettled(uint32_t s) {
  return hb__phase(s) == HB__V_CANCELLING || (s & HB__V_WAKING);
}
static bool hb__settled(uint32_t s) { return !hb__unsettled(s); }
static bool hb__not_cancelling(uint32_t s) {
  return hb__phase(s) != HB__V_CANCELLING;
}
static bool hb__absent(uint32_t s) { return !(s & HB__V_PRESENT); }

/* Wait out what another thread is still doing to v: an hb_cancel using
 * the buffer (CANCELLING), or a granter calling v's waker (WAKING).  Both
 * are short; we sleep on the state word, flagging SLEEPER so the waker's
 * caller knows to wake us. */
static uint32_t hb__wait_settled(hb_visitor *v) {
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
static uint32_t hb__settle(hb_visitor *v, uint32_t s, hb__calling **mine) {
  *mine = NULL;
  if (s & HB__V_WAKING) {
    if ((*mine = hb__calling_of(v)) != NULL) return s;
    hb__call_due_waker(v);
  }
  return hb__wait_settled(v);
}

/* ---- the drivers' common parts --------------------------------------------
 */

/* The drivers' common entry: HB_OK/HB_ECANCELED/HB_ESTATE/HB_EBUSY when the
 * state alone answers, HB_EDEADLK from inside v's own waker, or HB_PENDING
 * when it is armed and not finished. */
static int hb__driver_check(hb_visitor *v, uint32_t *sp, int *result) {
  uint32_t s = hb__vstate(v);
  if (HB__UNLIKELY(hb__unsettled(s))) {
    hb__calling *mine;
    s = hb__settle(v, s, &mine);
    if (mine != NULL) return HB_EDEADLK; /* its waker is this very call */
  }
  *sp = s;
  switch (hb__phase(s)) {
  case HB__V_RAN:
    if (s & HB__V_DETACHED) return HB_ESTATE;
    if (result != NULL) *result = v->result;
    return HB_OK;
  case HB__V_CANCELLED:
    /* The drivers have no part in a detached visit, whatever became of
     * it (its done says). */
    return (s & HB__V_DETACHED) ? HB_ESTATE : HB_ECANCELED;
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
    if (hb__claim(v, &s, HB__V_RUNNING)) return hb__run_here(v, s, result);
    /* lost the claim to hb_cancel: look again */
  }
}

int hb__drive_present(hb_visitor *v, uint32_t flag, uint64_t waited_ns,
                      int *result) {
  hb__buf *e = hb__ext(v->buf);
  for (;;) {
    uint32_t s = hb__load_state(v);
    if (s & HB__V_WAKING) {
      hb__calling *mine;
      s = hb__settle(v, s, &mine); /* a granter elsewhere, or our flush */
    }
    switch (hb__phase(s)) {
    case HB__V_CAST: {
      /* Granted (the caller saw it leave the queue).  The claim drops our
       * flag: a cancel can no longer win, nobody waits for us. */
      uint32_t n = hb__with_phase(s & ~(flag | HB__V_SLEEPER), HB__V_RUNNING);
      if (!__atomic_compare_exchange_n(&v->state, &s, n, false,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        continue;
      /* Only now is the buffer ours to write: a cancelled visitor's may
       * already be freed. */
      if (waited_ns != 0) hb__note_wait(e, waited_ns);
      return hb__run_here(v, n, result);
    }
    case HB__V_CANCELLING:
      hb__settle_until(&v->state, HB__V_SLEEPER, hb__not_cancelling);
      continue;
    default: {
      /* CANCELLED: the canceller is done with the buffer and waits for our
       * flag to go.  Clearing it is our last touch of v.  RELEASE pairs
       * with the ACQUIRE loads of the canceller's wait (hb__absent). */
      uint32_t old = __atomic_fetch_and(&v->state, ~(flag | HB__V_SLEEPER),
                                        __ATOMIC_RELEASE);
      if (old & HB__V_SLEEPER) hb__futex_wake_all(&v->state);
      return HB_ECANCELED;
    }
    }
  }
}

/* ---- casting --------------------------------------------------------------
 */

static int hb__cast(hb_visitor *v, hb_buf *b, hb_type t, bool write) {
  if (v == NULL || !hb__type_ok(b, t)) return HB_EINVAL;
  /* Castable: idle, or finished with nobody still on it.  A state that
   * says so needs no cookie check (without the cookie it is idle, which is
   * castable too); only one that says "live" must prove it is v's. */
  hb__defined(v);
  uint32_t s0 = __atomic_load_n(&v->state, __ATOMIC_ACQUIRE);
  uint32_t phase = hb__phase(s0);
  if (HB__UNLIKELY((phase != HB__V_IDLE && phase != HB__V_RAN &&
                    phase != HB__V_CANCELLED) ||
                   (s0 & HB__V_BUSY)) &&
      hb__vstate(v) != HB__V_IDLE)
    return HB_ESTATE;

  /* Only what is read before hb_visit: the rest is written where it is
   * first needed (links on enqueue, waker on registration, done on
   * detaching, result on running), which keeps the stores in front of the
   * CAS below few -- a locked instruction waits for them to drain (the
   * cookie is stored after it, before the state that publishes it).  The
   * cookie and buf are atomic: hb_cancel may read them from any thread. */
  if (HB__UNLIKELY(hb__ext(b)->stream != NULL)) { /* stream */
    if (write && hb__stream_closed(hb__ext(b))) return HB_ECLOSED;
    hb__vs_set(v, (hb__vstream){0, 0}); /* a plain cast: from the start */
  }
  __atomic_store_n(&v->buf, b, __ATOMIC_RELAXED);
  v->type = t;
  v->armed = 0;
  uint32_t s = HB__V_CAST | hb__mode_of(write)->vflag;

  if (hb__grant_fast(b, write)) {
    __atomic_store_n(&v->cookie, hb__cookie(v), __ATOMIC_RELAXED);
    hb__store_state(v, s | HB__V_GRANTED);
    return HB_OK;
  }
  __atomic_store_n(&v->cookie, hb__cookie(v), __ATOMIC_RELAXED);
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
  uint32_t s = hb__vstate(v);
  if (hb__phase(s) != HB__V_CAST || v->armed) return HB_ESTATE;
  if (fn == NULL) return HB_EINVAL;
  if (reserve > (size_t)PTRDIFF_MAX) return HB_ERANGE;
  v->fn = fn;
  v->ctx = ctx;
  v->reserve = reserve;
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
    /* Not its turn.  Announce this driver (DRIVER) before touching the
     * buffer: a cancel then waits for it to leave, so the buffer cannot be
     * freed under the registration. */
    if (!hb__announce(v, 0, HB__V_DRIVER)) continue; /* no longer queued */
    hb__buf *e = hb__ext(v->buf);
    uint32_t s;
    uint32_t mark = w.wake != NULL ? HB__V_WAKER : 0u;
    /* Register the waker, re-checking under the mutex the granter holds;
     * DRIVER can go there, as a cancel of a queued visitor needs the
     * mutex too. */
    if (hb__mark_queued(e, v, &s, HB__V_DRIVER, mark, true)) {
      if (mark) v->waker = w; /* read by the waker's caller after the grant */
      hb__mutex_unlock(&e->mu);
      return HB_PENDING;
    }
    /* granted or cancelled meanwhile, with DRIVER still set */
    return hb__drive_present(v, HB__V_DRIVER, 0, result);
  }
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
