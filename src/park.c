/*
 * park.c -- hb_block_on, and how a driver waits for its visitor's turn
 * without a waker: PARKED.
 *
 * PARKING
 *
 *   hb_block_on (and hb_*_now when it must queue, src/now.c) needs no
 *   waker: it marks its queued visitor PARKED by CAS and waits on the
 *   visitor's state word.  The dispatcher grants a PARKED visitor with
 *   one fetch_add that sets GRANTED and claims it RUNNING for its driver
 *   (hb__grant, src/lock.c), so the driver runs it at once, without a
 *   claim of its own, and makes a futex
 *   wake only if the waiter had gone to sleep (SLEEPER); hb_cancel's wake
 *   after CANCELLED covers a cancel.  A cancelled PARKED visitor's
 *   canceller waits, before it returns, until the driver has cleared
 *   PARKED, its last touch: cancel, free the buffer, join is safe.  The
 *   waiter spins first -- HB__PARK_QUICK pauses without reading the
 *   clock, then up to HB__PARK_SPIN_NS by the clock -- because when two
 *   threads hand the buffer back and forth, sleeping would make every
 *   hand-off wait for a wake-up (a convoy).  Past that budget it sleeps
 *   and uses no CPU.  The
 *   grant's fetch_add is the granter's last touch of the visitor; the futex
 *   wake after it touches only the kernel's hash table.
 */
#include "visit.h"

#include <time.h>

#define HB__PARK_SPIN_NS 25000 /* the most a waiter spins before it sleeps */
#define HB__PARK_SPIN_MIN_NS 1000 /* and the least */
#define HB__PARK_QUICK 64 /* pauses spun before the clock is first read */

static uint64_t hb__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* How long to spin before sleeping, from the buffer's recent waits.  A
 * spin pays off only when the wait ends within it: threads handing the
 * buffer back and forth wait well under a microsecond (once they spin),
 * while a worker waiting for the next batch from a socket waits tens of
 * microseconds and its spin would only take the CPU from the threads that
 * make progress.  So: spin about twice the average wait, within
 * [HB__PARK_SPIN_MIN_NS, HB__PARK_SPIN_NS], and only the minimum when the
 * average wait is longer than a spin could cover.  Before any wait was
 * measured, spin the most. */
static uint64_t hb__spin_budget(const hb__buf *e) {
  uint64_t avg = __atomic_load_n(&e->wait_avg_ns, __ATOMIC_RELAXED);
  if (avg == 0) return HB__PARK_SPIN_NS;
  if (avg > HB__PARK_SPIN_NS) return HB__PARK_SPIN_MIN_NS;
  uint64_t b = 2 * avg;
  return b < HB__PARK_SPIN_MIN_NS ? HB__PARK_SPIN_MIN_NS
                                  : b > HB__PARK_SPIN_NS ? HB__PARK_SPIN_NS : b;
}

/* Fold one measured wait into the average (weight 1/8).  Only a driver
 * holding the visit may: the buffer of a cancelled one may be gone. */
void hb__note_wait(hb__buf *e, uint64_t waited_ns) {
  if (waited_ns > UINT32_MAX / 2) waited_ns = UINT32_MAX / 2;
  int64_t avg = __atomic_load_n(&e->wait_avg_ns, __ATOMIC_RELAXED);
  /* A short wait into a short (or not yet measured) average changes no
   * budget that matters: leave the line alone.  Two threads handing the
   * buffer back and forth would otherwise store to it at every hand-off,
   * and move it between their cores each time. */
  if (waited_ns < HB__PARK_SPIN_MIN_NS && avg <= HB__PARK_SPIN_MIN_NS) return;
  avg += ((int64_t)waited_ns - avg) / 8;
  __atomic_store_n(&e->wait_avg_ns, (uint32_t)(avg > 0 ? avg : 1),
                   __ATOMIC_RELAXED);
}

/* Is a PARKED visitor's wait over: granted, or cancelled (CANCELLING or
 * CANCELLED; the driver then waits the canceller out as usual)? */
static bool hb__turn_came(uint32_t s) {
  return (s & HB__V_GRANTED) || hb__phase(s) != HB__V_CAST;
}

/* The spin of every wait for a turn, within the budget: HB__PARK_QUICK
 * pauses that read no clock and no buffer field -- a hand-off between two
 * threads that both want the buffer ends within them, and such a wait
 * reports 1 ns (hb__note_wait then leaves a short average alone) -- then
 * up to hb__spin_budget(e) by the clock, read every 32 pauses (a pause
 * costs 10 to 140 cycles, by CPU).  True once came(w, arg); false past
 * the budget.  *waited_ns: how long it spun.  Inlined into each caller
 * with its own `came`, so the loop makes no indirect call. */
static inline __attribute__((always_inline)) bool
hb__spin(bool (*came)(const void *, uint64_t), const void *w, uint64_t arg,
         const hb__buf *e, uint64_t *waited_ns) {
  unsigned i = 0;
  for (; i < HB__PARK_QUICK; i++) {
    if (came(w, arg)) {
      *waited_ns = 1;
      return true;
    }
    hb__cpu_relax();
  }
  uint64_t start = hb__now_ns(), budget = hb__spin_budget(e);
  for (; !came(w, arg); i++) {
    hb__cpu_relax();
    if ((i & 31) == 0 && hb__now_ns() - start >= budget) {
      *waited_ns = hb__now_ns() - start;
      return false;
    }
  }
  *waited_ns = hb__now_ns() - start;
  return true;
}

/* hb__spin's test for a PARKED visitor (w: the visitor).  ACQUIRE
 * (hb__load_state): pairs with the grant's RELEASE fetch_or. */
static inline bool hb__state_came(const void *w, uint64_t arg) {
  (void)arg;
  return hb__turn_came(hb__load_state(w));
}

/* Wait until a PARKED visitor's turn has come, or it was cancelled: spin
 * first (hb__spin), then sleep on the state word.  The dispatcher's grant
 * wakes a SLEEPER (hb__grant), and so does hb_cancel (its futex wake after
 * CANCELLED).  The spin matters: when two threads hand the buffer back and
 * forth (FIFO tickets make every contended visit a hand-off), a waiter
 * that went to sleep must be woken for its turn, and the other thread's
 * next ticket then waits for that wake-up -- a convoy at the scheduler's
 * pace (~1.3 us per visit measured, against ~0.17 us spinning).  How long
 * follows the buffer's recent waits (hb__spin_budget). */
uint64_t hb__wait_turn(hb_visitor *v, hb__buf *e) {
  uint64_t waited;
  if (hb__spin(hb__state_came, v, 0, e, &waited)) return waited;
  uint64_t slept = hb__now_ns();
  hb__sleep_until(&v->state, HB__V_SLEEPER, hb__turn_came);
  /* Not noted here: if v was cancelled, its buffer may be freed as soon
   * as the driver lets go of PARKED (hb__drive_present). */
  return waited + (hb__now_ns() - slept);
}

/* hb_block_on's deadlock check for a thread that ever held a bias: is it
 * inside a biased visit of v's buffer?  Announced as hb_poll announces
 * itself (DRIVER), so that the buffer stays while we read it; then leave
 * as hb_poll does.  HB_EDEADLK, HB_EAGAIN (no deadlock: go on waiting),
 * or, if v was granted or cancelled meanwhile, what driving it gives. */
static int hb__biased_deadlock(hb_visitor *v, int *result) {
  if (!hb__announce(v, 0, HB__V_DRIVER)) return HB_EAGAIN; /* not queued */
  hb__buf *e = hb__ext(v->buf);
  bool deadlock = hb__inside_visit_of(&e->pub);
  uint32_t s;
  /* Clear DRIVER under the mutex a cancel of a queued visitor takes. */
  if (hb__mark_queued(e, v, &s, HB__V_DRIVER, 0, false))
    return deadlock ? HB_EDEADLK : HB_EAGAIN;
  return hb__drive_present(v, HB__V_DRIVER, 0, result);
}

int hb_block_on(hb_visitor *v, int *result) {
  if (v == NULL) return HB_EINVAL;
  /* A visitor whose turn has not come, inside a callback or done of the
   * same buffer, waits for the ticket this thread is running; inside a
   * waker, which must not block, for whatever this thread would do next.
   * Either way: HB_EDEADLK, at once. */
  uint32_t s = hb__vstate(v);
  if (hb__queued(s) && v->armed && !(s & HB__V_DETACHED)) {
    /* Nothing announces this driver yet, so another thread may cancel v
     * and free its buffer right now: decide from this thread's own state
     * (hb__calls, the frames) without reading the buffer.  Only a thread
     * that ever held a bias may be in a biased visit, which shows in the
     * buffer alone: it looks there announced (hb__biased_deadlock). */
    if (hb__calls != NULL || hb__inside_frame_of(v->buf)) {
      /* In the NEXT slot, its turn may have come unseen: look first. */
      int rc = (s & HB__V_NEXT) ? hb__next_resolve(v, result) : HB_EAGAIN;
      return rc == HB_EAGAIN ? HB_EDEADLK : rc;
    }
    if (HB__UNLIKELY(hb__ever_biased)) {
      int rc = hb__biased_deadlock(v, result);
      if (rc != HB_EAGAIN) return rc;
    }
  }
  for (;;) {
    int rc = hb__try_run(v, result);
    if (rc != HB_EAGAIN) return rc;
    /* What this thread's flushes hold claimed could be what we wait for:
     * run it first, before PARKED makes a cancel wait for us. */
    if (hb__flushing != NULL) hb__run_pending();
    /* Not its turn: mark it PARKED (by CAS, no mutex: the granter's CAS
     * sees it), replacing any waker hb_poll stored.  PARKED is also the
     * announcement that keeps hb_cancel from returning -- and the buffer
     * from being freed -- while we still look; then wait on the state
     * word, and claim or leave (hb__drive_present). */
    if (!hb__announce(v, HB__V_WAKER, HB__V_PARKED)) continue;
    if (hb__load_state(v) & HB__V_NEXT) return hb__next_drive(v, result);
    uint64_t waited = hb__wait_turn(v, hb__ext(v->buf));
    return hb__drive_present(v, HB__V_PARKED, waited, result);
  }
}

/* ---- the NEXT slot's wait (src/next.c) -----------------------------------
 *
 * The NEXT waiter spins on the lock word itself, with hb__wait_turn's
 * spin (hb__spin), until EPOCH flips.  Past the budget the waiter moves
 * into the queue (src/next.c) and sleeps there without spinning again
 * (hb__sleep_turn), so one wait never spins more than one budget. */
/* hb__spin's test for the NEXT waiter (w: the lock word, arg: the EPOCH
 * it saw when it took the slot).  ACQUIRE: pairs with the RELEASE of the
 * RMW that hands the lock over (hb__handoff_next's callers). */
static inline bool hb__epoch_came(const void *w, uint64_t e0) {
  return (__atomic_load_n((const uint64_t *)w, __ATOMIC_ACQUIRE) &
          HB__W_EPOCH) != e0;
}

bool hb__spin_epoch(const uint64_t *lock, uint64_t e0, const hb__buf *e,
                    uint64_t *waited_ns) {
  return hb__spin(hb__epoch_came, lock, e0, e, waited_ns);
}

/* hb__spin's test for a caller-owned visitor in the NEXT slot (w: the
 * visitor): the hand-off's flip (hb__next_came), or NEXT gone from its
 * state (a demotion; the state's ACQUIRE load pairs with its CAS). */
static inline bool hb__nextv_came(const void *w, uint64_t arg) {
  (void)arg;
  uint32_t s = hb__load_state(w);
  return !(s & HB__V_NEXT) || hb__next_came(w, s);
}

bool hb__next_spin(const hb_visitor *v, const hb__buf *e,
                   uint64_t *waited_ns) {
  return hb__spin(hb__nextv_came, v, 0, e, waited_ns);
}

void hb__sleep_turn(hb_visitor *v) {
  hb__sleep_until(&v->state, HB__V_SLEEPER, hb__turn_came);
}
