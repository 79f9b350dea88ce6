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
 */
#include "visit.h"


/* Past its spin budget, the NEXT waiter (its lock-word bits last seen with
 * EPOCH e0) gives the slot up for the head of the queue, where it sleeps as
 * a PARKED visitor on its own state word (v, on hb__next_wait's stack).
 * Its CAS races the hand-off's on the lock word: if the hand-off won, EPOCH
 * has flipped and the ticket is ours already. */
static void hb__next_expire(hb__buf *e, hb_visitor *v, uint64_t e0) {
  uint64_t *lock = &e->pub.lock;
  hb__mutex_lock(&e->mu);
  /* ACQUIRE pairs with the hand-off's RELEASE, if it came meanwhile. */
  uint64_t w = __atomic_load_n(lock, __ATOMIC_ACQUIRE);
  do {
    if ((w & HB__W_EPOCH) != e0) {
      hb__mutex_unlock(&e->mu);
      return; /* handed over at the last moment */
    }
    /* WAITERS goes up as NEXT falls: the release that frees the lock now
     * dispatches, and grants us first.  RELEASE: our visitor's state and
     * links, stored under the mutex, are published with it as with any
     * caster's fetch_or of WAITERS. */
  } while (!__atomic_compare_exchange_n(
      lock, &w, (w & ~HB__W_NEXT_BITS) | HB__W_WAITERS, false,
      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
  hb__queue_push(e, v, true);
  hb__mutex_unlock(&e->mu);
  hb__sleep_turn(v);
}

bool hb__next_wait(hb__buf *e, bool write) {
  uint64_t *lock = &e->pub.lock;
  const hb__mode *m = hb__mode_of(write);
  uint64_t w = __atomic_load_n(lock, __ATOMIC_RELAXED), n;
  do {
    /* The slot is for a queue of one: with anybody queued (or the slot
     * taken, or the bias still to end) the caller queues behind them. */
    if (w & (HB__W_WAITERS | HB__W_BIASED | HB__W_NEXT)) return false;
    if (!(w & m->conflict))
      n = w + m->ticket; /* freed meanwhile: the plain grant */
    else
      n = w | HB__W_NEXT | (write ? HB__W_NEXT_W : 0);
    /* ACQUIRE: for the plain grant, as hb__grant_fast's CAS. */
  } while (!__atomic_compare_exchange_n(lock, &w, n, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED));
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
