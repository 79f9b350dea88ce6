/*
 * next.c -- the NEXT slot: the one-call waiter's place in the lock word,
 * ahead of the wait queue (src/lock.c), its wait and its expiry.
 *
 *   The queue's hand-off (src/lock.c, THE HAND-OFF) moves the lock line,
 *   the waiter's own line and the mutex between the cores, several times
 *   per visit, and two threads that take turns pay it at every visit: 93
 *   ns per operation in W5 where ck_tflock, whose waiters watch the lock
 *   word itself, took 36 (bench/RESULTS.md before this slot, 2-core EPYC
 *   VM).  So the lock word holds a queue of its own, one place long, for
 *   the waiters that are threads anyway: hb_read_now / hb_write_now.  The
 *   protocol, rule by rule:
 *
 *   1. Take.  A one-call visit whose fast path failed takes the slot by
 *      CAS, w -> w | NEXT (| NEXT_W for a write), only while the word has
 *      none of WAITERS, BIASED and NEXT: with anybody queued it queues
 *      behind them, so it never overtakes a queued visitor.
 *   2. Nobody overtakes it.  NEXT is in both modes' conflict masks
 *      (hb__mode), so no fast path, slow cast or dispatch grants anybody
 *      while the slot is taken; later casters queue (WAITERS).
 *   3. Hand-off.  Every RMW that gives a ticket back folds in
 *      hb__handoff_next (visit.h): if the slot's waiter conflicts with
 *      nothing left, its ticket goes in, NEXT and NEXT_W fall and EPOCH
 *      flips, in that same RMW -- the inline release's CAS, hb__release's
 *      (a CAS loop, not an add, for this), and the dispatcher's CAS, which
 *      grants the slot before the queue's head (and the head's readers
 *      beside a reader from the slot).  So NEXT set => a holder exists: the
 *      lock never looks free while the slot waits.
 *   4. Wait.  The waiter spins on the lock word until EPOCH differs from
 *      what it saw when it took the slot (ACQUIRE loads; the hand-off's RMW
 *      is RELEASE).  Not "NEXT clear": the releaser may take the slot again
 *      at once, before the waiter looks.  EPOCH cannot flip twice unseen:
 *      the next hand-off needs the waiter's own release first.
 *   5. Expiry.  Past the park budget (src/park.c: HB__PARK_QUICK pauses,
 *      then the buffer's spin budget by the clock) the waiter gives the slot
 *      up under the mutex: one CAS clears NEXT and sets WAITERS, and it
 *      sleeps as a PARKED visitor at the queue's head -- ahead of whoever
 *      queued behind the slot.  That CAS races the hand-off's on the same
 *      word; a flipped EPOCH means the hand-off won.
 *
 *   Between two threads taking turns, a visit is then two RMWs on one line,
 *   as with ck_tflock: the release that hands off, and the next cast's CAS
 *   into the slot.  Lines moved per hand-off: the lock line and the data --
 *   one line when the data are a small buffer's first 16 bytes, which share
 *   the lock word's line (src/internal.h), as the lock and counter of the
 *   ck and pthread peers in bench/bench_lock.c do; two otherwise.  That is
 *   the least any lock can move: the grant must reach the waiter and the
 *   data must move.  With more than one waiter the queue takes
 *   over, whose waiters each watch a line of their own.
 *   tests/model/handoff.pml checks the slot together with the queue.
 *
 * A CALLER-OWNED VISITOR IN THE SLOT
 *
 *   A visitor cast with hb_cast / hb_cast_mut takes the slot the same way
 *   (rule 1, at the cast: hb__next_cast), marked NEXT in its state with
 *   the EPOCH it saw (NEXT_E): in every state test it is queued, cast and
 *   not granted, but its place is the slot, not the list.  The hand-off
 *   (rule 3) does not change: the releaser never touches the visitor, so
 *   the visitor's own calls find out whether its turn has come.  While its
 *   state has NEXT, "EPOCH differs from NEXT_E" means "its ticket is in
 *   the word" (rule 4: EPOCH cannot flip again before it gives that ticket
 *   back).
 *
 *   6. Driving.  hb_block_on announces itself PARKED (so a cancel waits
 *      for it, and the buffer stays, while it spins), then spins until
 *      EPOCH flips or NEXT leaves its state, and claims the visitor by one
 *      CAS expecting NEXT (hb__next_drive, below).  hb_try_visit and
 *      every call that needs the visitor in the list (hb_poll's waker,
 *      hb_visit_detached, hb_cancel), and hb_block_on past its budget,
 *      first demote it (rule 7).
 *   7. Demotion (hb__next_demote, under the mutex, inside
 *      hb__mark_queued): first NEXT leaves the visitor's state, by CAS --
 *      after which a driver's claim expecting NEXT fails -- then, on the
 *      lock word, either the slot is given up for the queue's head as in
 *      rule 5 (EPOCH unchanged), or the hand-off has come and the visitor
 *      is granted as the dispatcher would grant it (PARKED: claimed for
 *      its driver).  The state's CAS first freezes the visitor: the
 *      demotion and a driver's claim race on that one CAS, and the only
 *      EPOCH flip the lock-word step can then meet is the visitor's own
 *      hand-off (under the mutex, with WAITERS up, nobody takes NEXT or
 *      dispatches).  The lock word first, the demotion would act before
 *      winning the visitor: a driver could claim and run it on the
 *      hand-off's flip, and the demotion grant it again -- or, once its
 *      release had handed off to the next waiter and EPOCH was back where
 *      it was, queue a visitor that had run (tests/model/nextv.pml,
 *      BUG_DEMOTE_WORD_FIRST).
 *
 *   So two threads taking turns with cast + visit + hb_block_on pay the
 *   one-call form's two RMWs on the lock line, and two on their own
 *   visitors' lines (PARKED, the claim), which no other core touches.
 *   tests/model/nextv.pml checks rules 6 and 7 against cancel and free.
 */
#include "visit.h"

/* Give the slot up for the queue's head (rules 5 and 7, under the mutex):
 * one CAS clears NEXT and sets WAITERS, so the release that frees the lock
 * dispatches and grants the head first.  False, with nothing done, if the
 * hand-off came first (EPOCH is no longer e0): the ticket is ours.
 * ACQUIRE pairs with the hand-off's RELEASE; RELEASE publishes what was
 * stored under the mutex (the visitor's state and links), as any caster's
 * fetch_or of WAITERS does. */
static bool hb__next_leave(uint64_t *lock, uint64_t e0) {
  uint64_t w = __atomic_load_n(lock, __ATOMIC_ACQUIRE);
  do
    if ((w & HB__W_EPOCH) != e0) return false;
  while (!__atomic_compare_exchange_n(
      lock, &w, (w & ~HB__W_NEXT_BITS) | HB__W_WAITERS, false,
      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
  return true;
}

/* Rule 1, for both kinds of waiter: take the slot by one CAS, or take the
 * plain grant if the lock was freed meanwhile.  False, with nothing taken,
 * if the slot may not be taken (anybody queued, the slot taken, or a
 * bias still to end: the caller queues behind them).  *was: the word
 * before the CAS -- its mode's conflict set if the slot was taken, and
 * then its EPOCH the one to wait for a flip of. */
static bool hb__next_take(uint64_t *lock, const hb__mode *m, bool write,
                          uint64_t *was) {
  uint64_t w = __atomic_load_n(lock, __ATOMIC_RELAXED), n;
  do {
    /* RBIAS: the read bias to revoke first (hb__cast_slow, I2) */
    if (w & (HB__W_WAITERS | HB__W_BIASED | HB__W_NEXT | HB__W_RBIAS))
      return false;
    if (!(w & m->conflict))
      n = w + m->ticket; /* freed meanwhile: the plain grant */
    else
      n = w | HB__W_NEXT | (write ? HB__W_NEXT_W : 0);
    /* ACQUIRE: for the plain grant, as hb__grant_fast's CAS. */
  } while (!__atomic_compare_exchange_n(lock, &w, n, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED));
  *was = w;
  return true;
}

bool hb__next_cast(hb__buf *e, hb_visitor *v, uint32_t s) {
  const hb__mode *m = hb__mode_of_state(s);
  uint64_t w;
  if (!hb__next_take(&e->pub.lock, m, (s & HB__V_WRITE) != 0, &w))
    return false;
  if (!(w & m->conflict))
    s |= HB__V_GRANTED;
  else
    s |= HB__V_NEXT | ((w & HB__W_EPOCH) ? HB__V_NEXT_E : 0);
  hb__store_state(v, s); /* publishes the cast's fields to v's drivers */
  return true;
}

void hb__next_demote(hb__buf *e, hb_visitor *v, uint32_t *s) {
  uint64_t e0 = hb__next_e0(*s);
  /* First the state (rule 7).  RELEASE/ACQUIRE: as hb__mark_queued's. */
  do
    if (!(*s & HB__V_NEXT)) return; /* claimed by its driver meanwhile */
  while (!__atomic_compare_exchange_n(&v->state, s,
                                      *s & ~(HB__V_NEXT | HB__V_NEXT_E),
                                      false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE));
  *s &= ~(HB__V_NEXT | HB__V_NEXT_E);
  if (hb__next_leave(&e->pub.lock, e0)) {
    hb__queue_push(e, v, true); /* first in line, as it was */
    return;
  }
  /* The hand-off came: the ticket is v's.  Grant it as hb__grant would:
   * a NEXT visitor has no waker and is not detached (those calls demote
   * it first), so GRANTED, or for a PARKED one its driver's claim too.
   * RELEASE pairs with the drivers' ACQUIRE loads. */
  uint32_t add = (*s & HB__V_PARKED) ? HB__V_GRANT_PARKED : HB__V_GRANTED;
  uint32_t old = __atomic_fetch_add(&v->state, add, __ATOMIC_ACQ_REL);
  *s = old + add;
  if (old & HB__V_SLEEPER) hb__futex_wake_all(&v->state);
}


/* Past its spin budget, the NEXT waiter (its lock-word bits last seen with
 * EPOCH e0) gives the slot up for the head of the queue, where it sleeps as
 * a PARKED visitor on its own state word (v, on hb__next_wait's stack).
 * Its CAS races the hand-off's on the lock word: if the hand-off won, EPOCH
 * has flipped and the ticket is ours already. */
static void hb__next_expire(hb__buf *e, hb_visitor *v, uint64_t e0) {
  hb__mutex_lock(&e->mu);
  if (!hb__next_leave(&e->pub.lock, e0)) {
    hb__mutex_unlock(&e->mu);
    return; /* handed over at the last moment */
  }
  hb__queue_push(e, v, true);
  hb__mutex_unlock(&e->mu);
  hb__sleep_turn(v);
}

bool hb__next_wait(hb__buf *e, bool write) {
  uint64_t *lock = &e->pub.lock;
  const hb__mode *m = hb__mode_of(write);
  uint64_t w;
  if (!hb__next_take(lock, m, write, &w)) return false;
  if (!(w & m->conflict)) return true;
  uint64_t e0 = w & HB__W_EPOCH, waited;
  if (hb__spin_epoch(lock, e0, e, &waited)) {
    hb__note_wait(e, waited); /* the visit is ours: e stays */
    return true;
  }
  hb_visitor v = HB_VISITOR_INIT;
  v.buf = &e->pub;
  hb__store_state(&v, HB__V_CAST | HB__V_PARKED | m->vflag);
  hb__next_expire(e, &v, e0);
  hb__note_wait(e, waited);
  return true;
}

/* hb_block_on on a visitor in the NEXT slot, announced PARKED (rule 6):
 * spin until EPOCH flips or NEXT leaves its state; on the flip, claim it
 * by one CAS expecting NEXT -- which fails once a demotion has begun --
 * and run it.  Otherwise, or past the budget (demoted by us
 * then), wait as any PARKED visitor: the queue's grant, or the demotion's,
 * or a cancel. */
int hb__next_drive(hb_visitor *v, int *result) {
  hb__buf *e = hb__ext(v->buf);
  uint64_t waited;
  if (hb__next_spin(v, e, &waited)) {
    uint32_t s = hb__load_state(v);
    /* NEXT still set: what the spin saw was the hand-off's flip. */
    uint32_t n = hb__with_phase(s & ~(HB__V_NEXT | HB__V_NEXT_E |
                                      HB__V_PARKED),
                                HB__V_RUNNING) |
                 HB__V_GRANTED;
    /* ACQ_REL, as hb__claim: pairs with hb_cancel's claim and the
     * demotion's CAS, one of which wins. */
    if ((s & HB__V_NEXT) &&
        __atomic_compare_exchange_n(&v->state, &s, n, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      hb__note_wait(e, waited);
      return hb__run_claimed_here(v, n, result);
    }
  } else {
    uint32_t unused;
    hb__mark_queued(e, v, &unused, 0, 0, false); /* demoted (rule 7) */
  }
  waited += hb__wait_turn(v, e);
  return hb__drive_present(v, HB__V_PARKED, waited, result);
}

/* A visitor in the NEXT slot, whose turn shows only in the lock word:
 * look there by demoting it (rule 7) -- granted if the
 * hand-off came, and then run, else queued at the head, where the grant
 * will show in its state (HB_EAGAIN).  Announced as hb_poll announces
 * itself, so that the buffer stays while we look. */
int hb__next_resolve(hb_visitor *v, int *result) {
  if (!hb__announce(v, 0, HB__V_DRIVER)) return hb__try_run(v, result);
  uint32_t s;
  if (hb__mark_queued(hb__ext(v->buf), v, &s, HB__V_DRIVER, 0, false))
    return HB_EAGAIN; /* queued now, DRIVER cleared under the mutex */
  return hb__drive_present(v, HB__V_DRIVER, 0, result);
}
