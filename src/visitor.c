/*
 * visitor.c -- a visitor's life cycle: arm and the drivers
 * hb_try_visit and hb_poll; the state transition table of every
 * visitor-mode file.  (The cast is in src/cast.c, the lock it takes in
 * src/lock.c and src/next.c, hb_block_on in
 * src/park.c, the one-call form in src/now.c, detached mode and the flush
 * in src/detached.c, hb_cancel and settling in src/cancel.c.)
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
 *          registering its waker), NEXT with NEXT_E (its place is the
 *          lock word's NEXT slot, src/next.c: queued, but not in the
 *          list).  PARKED and DRIVER are announcements: a cancel returns
 *          only once they are gone.
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
 *   IDLE|RAN|CANCELLED     owner,               store REL,     the drivers'
 *     -> queued +NEXT      hb__next_cast        after its CAS  ACQUIRE loads
 *     (+NEXT_E)            on the lock word
 *   queued +NEXT ->        its driver,          CAS ACQ_REL,   the demotion's
 *     RUNNING|GRANTED      hb__next_drive       after EPOCH    CAS; hb_cancel
 *     -NEXT -PARKED                             flipped        via it
 *   queued +NEXT ->        demotion, in         CAS, under mu, the driver's
 *     queued -NEXT; then   mark_queued          then the lock  claim above
 *     +GRANTED (PARKED:    (hb__next_demote)    word's CAS
 *     RUNNING) if handed
 *     off
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
 *   queued PARKED ->       dispatcher,          fetch_add REL, hb__wait_turn
 *     RUNNING|GRANTED      hb__grant            under mu       ACQUIRE loads
 *     (the driver's claim)
 *   waited on -> +SLEEPER  the waiter,          CAS ACQUIRE,   the RMW that
 *                          hb__sleep_until      no mutex       ends the wait
 *   WAKING -> -WAKING      granter,             fetch_and REL  hb__wait_
 *     -SLEEPER             hb__call_waker                      settled's loads
 *   GRANTED +DRIVER ->     its driver,          CAS ACQ_REL    hb_cancel's
 *     RUNNING -DRIVER      hb__drive_present                   claim
 *   RUNNING +PARKED ->     its driver,          store RLX      none: nobody
 *     -PARKED -SLEEPER     hb__drive_present                   else writes it
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
 * hb_cancel of a queued visitor against the grant, and SHUTDOWN (cancel,
 * free the buffer, join): see the top of src/cancel.c.
 *
 * RE-ENTRANCY, and hb_visit_detached against the grant and hb_cancel: see
 * the top of src/detached.c.
 *
 * hb_block_on against the grant: see PARKING in src/park.c.
 *
 * THE UNCONTENDED VISIT (hb_cast + hb_visit + hb_try_visit, issue 13)
 *
 *   Three atomic RMWs, each deciding a race a plain store would lose:
 *   the grant's CAS on the lock word (against other casters, releasers
 *   and the dispatcher: two casts must not both see a free word), the
 *   claim CAST|GRANTED -> RUNNING on v's state (against hb_cancel from
 *   another thread, which claims the same state -> CANCELLING: without
 *   it a cancel could give the ticket back, or return and let the buffer
 *   be freed, under a running callback), and the release's CAS on the
 *   lock word (against a caster setting WAITERS and other readers'
 *   releases: a lost bit is a lost wake-up).  No fence: the state's
 *   RELEASE stores and ACQUIRE loads are plain moves on x86.  Measured on
 *   the W4 loop, the claim costs 2-3 cycles; the rest of the path is the
 *   three calls and the callback.  Only an asymmetric fence (as the bias
 *   uses, src/bias.c) in hb_cancel could replace the claim with a plain
 *   store, for a membarrier per cancel of a granted visitor.
 *
 *   Its floor.  A model of the least this API's shape allows (three
 *   out-of-line calls, these three RMWs, the stores of the visitor's
 *   fields, the view and the frame, the callback through a pointer, and
 *   no other check) ran a W4 write pair in 161 instructions and 13.3 ns
 *   on this AMD EPYC VM (12.8 without the claim), where this path takes
 *   214 and 15.0 and the one-call shared path 9.2: 1.5 times that is just
 *   above the floor, the pthread_rwlock read pair's 7.3 far below it.
 */
#include "visit.h"

#include <stdbool.h>


_Thread_local hb__wakelist *hb__flushing HB__TLS_MODEL;
_Thread_local hb__calling *hb__calls HB__TLS_MODEL;

bool hb__load_granted(const hb_visitor *v) {
  uint32_t s = hb__load_state(v);
  if (s & HB__V_NEXT) return hb__next_came(v, s); /* src/next.c */
  return (s & HB__V_GRANTED) != 0;
}

bool hb__load_parked(const hb_visitor *v) {
  return (hb__load_state(v) & HB__V_PARKED) != 0;
}

/* ---- running a visit ------------------------------------------------------
 */

/* The release of hb__run_here when somebody waits: with a wakelist, out
 * of line, so that the uncontended run needs no frame for one. */
static __attribute__((noinline)) void
hb__run_here_wake(hb_visitor *v, hb__buf *e, uint32_t s, bool write) {
  hb__wakelist wl;
  HB__WAKELIST_INIT(wl);
  hb__release(e, hb__mode_of(write), true, &wl);
  /* The ticket is back; from here on, only v. */
  hb__store_state(v, hb__with_phase(s, HB__V_RAN));
  hb__flush(&wl);
}

/* s, known to be in phase `from`, moved to phase `to`: one add, where
 * hb__with_phase is a mask and an or (the uncontended path knows the
 * phase it finds). */
static inline uint32_t hb__phase_step(uint32_t s, uint32_t from,
                                      uint32_t to) {
  return s - from + to;
}

/* Run a claimed visitor here and do what its release unblocked: as
 * hb__run_claimed (src/detached.c) + hb__flush, with the uncontended
 * release an inline CAS (hb__release_fast) rather than a call.  One copy
 * per mode (hb__run_here), so that the mode is a constant in each.
 *
 * Of this function's own values, nothing but v and result is kept across
 * the callback (each value kept costs the frame a callee-saved register,
 * pushed and popped at every visit; hb__call_fn keeps the thread-local's
 * address, and a write's buffer, for after it): *result is stored as soon
 * as fn returns, and the buffer and the state are loaded again after it.
 * (Two pushes fewer, bought by keeping the view, the frame, result and
 * the thread-local's address in one struct on the stack, reloaded after
 * fn: three instructions more, no store fewer, and 0.3-0.6 ns more per W4
 * pair, so not done.)  The state is as the claim left
 * it: while v is RUNNING, no other thread changes it (a cancel answers
 * HB_EBUSY and a driver HB_EBUSY, a cast HB_ESTATE, all without an RMW;
 * nobody sleeps on a RUNNING state word). */
static inline __attribute__((always_inline)) int
hb__run_here_as(hb_visitor *v, int *result, bool write) {
  int r = hb__run_visitor(v, write);
  if (result != NULL) *result = r;
  hb__buf *e = hb__ext(v->buf);
  uint32_t s = hb__load_state(v);
  /* v->result after the release: one store fewer for its CAS to wait
   * for.  The RAN store publishes it (RELEASE) to later drivers. */
  if (HB__LIKELY(hb__release_fast(e, hb__mode_of(write)))) {
    v->result = r;
    /* only v now */
    hb__store_state(v, hb__phase_step(s, HB__V_RUNNING, HB__V_RAN));
  } else {
    v->result = r;
    hb__run_here_wake(v, e, s, write);
  }
  return HB_OK;
}

static __attribute__((noinline)) int hb__run_here_read(hb_visitor *v,
                                                       int *result) {
  return hb__run_here_as(v, result, false);
}

static __attribute__((noinline)) HB__NO_SLP int
hb__run_here_write(hb_visitor *v, int *result) {
  return hb__run_here_as(v, result, true);
}

static inline int hb__run_here(hb_visitor *v, uint32_t s, int *result) {
  return (s & HB__V_WRITE) ? hb__run_here_write(v, result)
                           : hb__run_here_read(v, result);
}

int hb__run_claimed_here(hb_visitor *v, uint32_t s, int *result) {
  return hb__run_here(v, s, result);
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

/* hb__try_run's general way: any state, the claim retried after a loss. */
static __attribute__((noinline)) int hb__try_run_slow(hb_visitor *v,
                                                      int *result) {
  for (;;) {
    uint32_t s;
    int rc = hb__driver_check(v, &s, result);
    if (rc != HB_PENDING) return rc;
    if (!(s & HB__V_GRANTED)) return HB_EAGAIN;
    if (hb__claim(v, &s, HB__V_RUNNING)) return hb__run_here(v, s, result);
    /* lost the claim to hb_cancel: look again */
  }
}

/* Try to run an armed visitor whose turn has come.  Returns HB_EAGAIN when
 * it has not come, or a final status.
 *
 * The uncontended case first: armed, granted, nothing else on it (no
 * waker call, cancel or driver).  hb__arm stores v's cookie as armed, so
 * one compare shows v armed and cast at this very address (a copy's
 * armed is its original's cookie).  Its claim is made before this frame
 * saves a register, so that the locked instruction waits for as few
 * stores as can be, and the run is a tail call.  The claim is the one of
 * THE RACES above: it pairs with hb_cancel's (src/cancel.c), and exactly
 * one of the two wins.  Anything else takes the general way. */
static inline __attribute__((always_inline)) int
hb__try_run_here(hb_visitor *v, int *result,
                 int (*slow)(hb_visitor *, int *)) {
  uint32_t s = hb__load_state(v);
  /* hb__claim's CAS, the new state computed from the phase found */
  if (HB__LIKELY((s & ~HB__V_WRITE) == (HB__V_CAST | HB__V_GRANTED) &&
                 v->armed == hb__cookie(v)) &&
      HB__LIKELY(__atomic_compare_exchange_n(
          &v->state, &s, hb__phase_step(s, HB__V_CAST, HB__V_RUNNING), false,
          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)))
    return hb__run_here(v, s, result);
  return slow(v, result);
}

int hb__try_run(hb_visitor *v, int *result) {
  return hb__try_run_here(v, result, hb__try_run_slow);
}

/* hb_try_visit's general way: hb__try_run's, and the look for a visitor
 * in the NEXT slot. */
static __attribute__((noinline)) int hb__try_visit_slow(hb_visitor *v,
                                                        int *result) {
  int rc = hb__try_run_slow(v, result);
  if (rc != HB_EAGAIN || !(hb__load_state(v) & HB__V_NEXT)) return rc;
  return hb__next_resolve(v, result);
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
    case HB__V_RUNNING: {
      /* PARKED, and granted: the grant claimed v for us (hb__grant).
       * Nobody else writes a RUNNING visitor's state (a cancel, a second
       * driver, a cast all answer without an RMW; nobody sleeps on it), so
       * a plain store drops our flag -- a store, which the callback need
       * not wait for, where a CAS would wait for the line the grant took. */
      uint32_t n = s & ~(flag | HB__V_SLEEPER);
      __atomic_store_n(&v->state, n, __ATOMIC_RELAXED);
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

/* ---- arming (hb__arm: src/visit.h) ----------------------------------------
 */

int hb_visit(hb_visitor *v, size_t reserve, hb_visit_fn fn, void *ctx) {
  return hb__arm(v, reserve, fn, ctx);
}

/* ---- drivers --------------------------------------------------------------
 */

int hb_try_visit(hb_visitor *v, int *result) {
  if (v == NULL) return HB_EINVAL;
  return hb__try_run_here(v, result, hb__try_visit_slow);
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
