/*
 * lock.c -- the visitor lock: the lock word, the wait queue, the grant,
 * the dispatcher and the release, and the wakelist they fill.
 *
 * THE LOCK
 *
 * A buffer's visitors share a fair reader-writer lock built from two parts:
 *
 *   1. The lock word (hb_buf.lock, 64 bits, atomic), which alone decides the
 *      uncontended cases with one atomic read-modify-write each (the
 *      bits, one per line, are in src/bits.h):
 *
 *        bit  0       HB__W_WRITER   a write ticket is granted
 *        bit  1       HB__W_WAITERS  the wait queue is not empty
 *        bits 2..28   readers        granted read tickets (HB__W_READER each)
 *        bit  29      HB__W_RBIAS    read-biased: one-call readers use the
 *                                    reader table (src/rbias.c)
 *        bit  30      HB__W_NEXT     a one-call waiter holds the next turn
 *        bit  31      HB__W_NEXT_W   ... for a write (src/next.c)
 *        bit  32      HB__W_BIASED   the buffer is biased (see src/bias.c)
 *        bit  33      HB__W_EPOCH    flips at each hand-off to the NEXT waiter
 *        bit  34      HB__W_RWANT    read-mostly: a reader arms RBIAS
 *        bits 35..63  done reads     finished read visits, a wrapping counter
 *                                    for hb_stats (carries go to read_wraps)
 *
 *      The low half is the "live" mask: zero means no visitor is live, which
 *      is what hb_free and the debug checks of direct mode test.
 *
 *   2. An intrusive FIFO wait queue of visitors (their next/prev links), under
 *      a small futex mutex.  Visitors join at the tail; the dispatcher grants
 *      from the head: a writer once nothing is granted, a run of readers once
 *      no writer is.  This is a ticket lock in spirit -- order is call order --
 *      with reader batching: readers between two writers run together.
 *
 *   Fast paths (no mutex): a read cast succeeds by CAS while neither WRITER
 *   nor WAITERS is set; a write cast while the whole live half is zero.  Once
 *   anybody waits, WAITERS is set and every later cast queues behind the
 *   waiter, so nobody overtakes and nobody starves.  Releasing is one atomic
 *   add; only a release that sees WAITERS (and is the last reader, or a
 *   writer) takes the mutex to run the dispatcher.
 *
 *   WAITERS is set by a queuing caster *before* it reads the word (fetch_or
 *   returns it), and releases read it with the same RMW that releases, so a
 *   release either sees WAITERS and dispatches, or happened before the
 *   caster's fetch_or and the caster sees the freed lock in its return value.
 *   No wake-up is lost in between.
 *
 * THE HAND-OFF
 *
 *   A writer that leaves while somebody waits does not free the lock and let
 *   the waiter take it: it takes the mutex with its ticket still held, and the
 *   dispatcher's one CAS on the lock word gives that ticket back and grants the
 *   head (and drops WAITERS if the head was the last waiter).  The grant itself
 *   is one fetch_add on the waiter's own state word -- GRANTED, and the claim
 *   RUNNING made for its driver, who then runs it with no RMW of its own --
 *   which its driver, and only its driver, watches (src/park.c), as an MCS or
 *   CLH waiter watches its own queue node and TBB's queuing_rw_mutex waiter its
 *   own scoped_lock.  A reader cannot hand off that way: only its releasing RMW
 *   tells it that it is the last reader (two leaving together would each see
 *   the other), so it releases first and dispatches if it was the last.
 *
 *   Atomic RMWs of one contended hand-off between two threads (the writer
 *   leaves, the reader waits, and the writer casts again at once):
 *   the releaser's mutex lock, the dispatcher's CAS, the grant's fetch_add
 *   and the mutex unlock (4), then its next cast's mutex lock, fetch_or of
 *   WAITERS and unlock (3).  (It was 6 + 3: a release add, the grant's
 *   add, a separate clearing of WAITERS.)
 *
 *   A HAND-OFF, LINE BY LINE.  The cache lines one hand-off through the
 *   queue moves between the two cores:
 *     1. the lock line: pub (data/len/cap, which every visit reads, and the
 *        lock word), which starts a line, with the first 16 inline bytes
 *        of the buffer behind it (src/internal.h), and the queue's line
 *        before it: the mutex, the queue length, its head and tail -- two
 *        lines in all;
 *     2. the waiter's own state word, written once by the grant and read
 *        by its spinning driver, and beside it (struct hb_visitor) its
 *        queue links, which the unlink reads and clears: 20 bytes, one
 *        line of the waiter's (two when a 16-byte aligned visitor puts
 *        them across a line boundary, one time in four);
 *     3. the data itself (the buffer's bytes), which move to the
 *        grantee's core whatever the lock does.
 *   So 3 at the least, and 3 to 5 as laid out (4 typically; 3 for a small
 *   buffer whose data is on the lock line).  Three is
 *   the least a queued lock with local spinning can move: the grant must
 *   land where the waiter alone watches (else every waiter's line is
 *   invalidated by every grant, the flaw of a ticket lock on many cores),
 *   the queue must be reachable by every caster (the lock line), and the
 *   data must move.
 *   A ticket lock such as ck_tflock folds 1 and 2 into one line -- its
 *   waiters watch the lock word itself -- which is why it beats any
 *   queued lock with two threads (ck's own MCS lock, 2 lines plus the
 *   data, measured 62.6 ns/op in W5 where ck_tflock took 30.8: one run
 *   of `bench_lock W5` on the 2-core EPYC VM at load 0.6) and loses to
 *   one on many cores.  A two-thread W5 run on a FIFO queued lock is
 *   bounded below by that MCS figure, not by ck_tflock's -- which is why
 *   the one-call form's first waiter does not queue but waits in the lock
 *   word (src/next.c): the lock line and the data, one line for a small
 *   buffer.
 *
 *   Spin budgets: nothing here spins unbounded.  A PARKED waiter (and a
 *   waiter in the NEXT slot, which past that budget parks without
 *   spinning again) spins
 *   HB__PARK_QUICK (64) pauses, then at most HB__PARK_SPIN_NS (25 us) by
 *   the clock, less when the buffer's waits run long (src/park.c), then
 *   sleeps on its state word (futex): a waiter past its budget uses no
 *   CPU until the grant (tests/test_handoff.c measures it with
 *   getrusage).  The mutex spins 100 pauses before it sleeps (src/sync.c),
 *   and waits for CANCELLING/WAKING to end 256 (hb__settle_until).
 *
 *   Readers on many cores all RMW the one lock word, whose line then
 *   moves between them at every read visit.  So a read-mostly buffer's
 *   one-call readers announce themselves in a per-buffer table of hashed
 *   slots instead (the read bias, src/rbias.c: BRAVO, Dice & Kogan,
 *   USENIX ATC '19), two RMWs on their own slot's line and a load of the
 *   lock line, which stays shared; a writer revokes the bias under the
 *   mutex and moves the announced readers into the lock word as one read
 *   share, so this queue does the waiting.  W8's two readers (pinned to
 *   the two cores of the EPYC VM) and 1% writer, bench_lock W8 three
 *   times each way, interleaved: 15.0 to 17.5 ns per visit, where the
 *   lock word took 34.3 to 36.3 and pthread_rwlock takes 22.6 to 26.1.
 *   With the readers on one core no line moves either way, and the
 *   table read's ~40 instructions more show instead.
 *
 *   THE NEXT SLOT, the one-call waiter's place in the lock word itself,
 *   ahead of this queue: src/next.c.
 *
 * WAKING
 *
 *   The dispatcher grants under the mutex and collects what to do into an
 *   hb__wakelist: wakers to call and detached visitors (claimed RUNNING under
 *   the mutex) to run, in ticket order.  It calls and runs them only after
 *   unlocking.  A granted visitor whose waker is due carries WAKING until the
 *   call has returned: drivers and hb_cancel wait while it is set, so the
 *   owner cannot finish the visitor -- and free it, or the waker's arg --
 *   under a waker still running.  Clearing WAKING is the granter's last
 *   touch of the visitor.  (A cancelled queued visitor's own waker is called
 *   by the canceller with CANCELLED|WAKING, to the same end.)  The list has
 *   no bound -- its chains run through the granted visitors' own links --
 *   so the dispatcher never drops the mutex to call wakers half-way.
 *
 *   A PARKED visitor (src/park.c) is granted and claimed with one
 *   fetch_add instead, and woken by futex only if its driver went to sleep
 *   (SLEEPER).
 */
#include "visit.h"
#include "bias.h"
#include "rbias.h"

/* Queue v's waker on wl's chain (v is marked WAKING). */
void hb__push_wake(hb__wakelist *wl, hb_visitor *v, bool front) {
  if (wl->wake == NULL) {
    v->next = NULL;
    wl->wake = wl->wake_tail = v;
  } else if (front) {
    v->next = wl->wake;
    wl->wake = v;
  } else {
    v->next = NULL;
    wl->wake_tail->next = v;
    wl->wake_tail = v;
  }
}

/* Call v's waker, then let its visitor's driver go on: until WAKING is
 * cleared the drivers and hb_cancel wait, so nobody finishes the visitor
 * (and frees the waker's arg) while its waker is still being called.
 * Clearing WAKING is our last touch of the visitor -- unless the waker
 * itself cancelled v (hb_cancel then took that touch over, clearing
 * call.v); the futex wake after it only hands the address to the kernel. */
void hb__call_waker(hb_visitor *v) {
  hb_waker w = v->waker;
  hb__calling call = {v, hb__calls};
  hb__calls = &call;
  w.wake(w.arg);
  hb__calls = call.up;
  if (call.v == NULL) return;
  uint32_t *st = &v->state;
  /* RELEASE pairs with the ACQUIRE loads of hb__wait_settled's waiters. */
  uint32_t old = __atomic_fetch_and(st, ~(HB__V_WAKING | HB__V_SLEEPER),
                                    __ATOMIC_RELEASE);
  if (old & HB__V_SLEEPER) hb__futex_wake_all(st);
}

/* Call the wakers due in wl, in ticket order.  A re-entrant call from a
 * waker may take a later one off the chain (calling it itself). */
void hb__call_wakers(hb__wakelist *wl) {
  hb_visitor *v;
  while ((v = wl->wake) != NULL) {
    wl->wake = v->next;
    hb__call_waker(v);
  }
}

/* ---- the wait queue (under e->mu) -----------------------------------------
 */
/* Queue v at the tail, or at the head (`front`: the NEXT waiter that
 * moves into the queue, src/next.c, was ahead of everybody there). */
void hb__queue_push(hb__buf *e, hb_visitor *v, bool front) {
  if (front)
    hb__list_splice_front(&e->head, &e->tail, v, v);
  else
    hb__list_push(&e->head, &e->tail, v);
  e->qlen++;
  if (e->qlen > e->longest_queue) HB__BUMP(e->longest_queue, 1);
}

void hb__queue_unlink(hb__buf *e, hb_visitor *v) {
  hb__list_unlink(&e->head, &e->tail, v);
  e->qlen--;
}

/* ---- granting and releasing -----------------------------------------------
 */

/* Grant a queued visitor (under mu).  A detached one is claimed RUNNING here,
 * so that hb_cancel cannot take it from the thread that will run it.
 * Drivers announce themselves (PARKED, DRIVER) and sleepers flag SLEEPER
 * by CAS without the mutex, so the grant is a CAS loop too. */
static void hb__grant(hb_visitor *v, hb__wakelist *wl) {
  uint32_t s = hb__load_state(v), n;
  do {
    if (s & HB__V_PARKED) {
      /* Its driver (hb_block_on, or hb_*_now's own visitor) waits for
       * GRANTED on the state word itself: the grant is the wake-up, with
       * no waker and no WAKING.  It is the driver's claim too: the phase
       * goes CAST -> RUNNING in the same RMW (the add cannot carry: CAST
       * is 1, RUNNING 2, GRANTED clear), because the driver is there to
       * run it -- so it need not claim by an RMW of its own, on a line
       * this RMW has just taken from it, and a cancel from here on
       * answers HB_EBUSY.  The visitor may be gone once GRANTED is seen;
       * the futex wake only hands its address to the kernel.  RELEASE
       * pairs with the ACQUIRE loads of hb__wait_turn. */
      if (__atomic_fetch_add(&v->state, HB__V_GRANT_PARKED, __ATOMIC_RELEASE) &
          HB__V_SLEEPER)
        hb__futex_wake_all(&v->state);
      return;
    }
    n = (s & ~HB__V_WAKER) | HB__V_GRANTED;
    if (s & HB__V_DETACHED)
      n = hb__with_phase(n, HB__V_RUNNING);
    else if (s & HB__V_WAKER)
      n |= HB__V_WAKING;
    /* RELEASE pairs with the ACQUIRE loads in the drivers. */
  } while (!__atomic_compare_exchange_n(&v->state, &s, n, false,
                                        __ATOMIC_RELEASE, __ATOMIC_ACQUIRE));
  if (s & HB__V_DETACHED) {
    v->next = NULL; /* run them in ticket order */
    if (wl->detached == NULL)
      wl->detached = v;
    else
      wl->detached_tail->next = v;
    wl->detached_tail = v;
  } else if (s & HB__V_WAKER) {
    hb__push_wake(wl, v, false);
  }
}

/* Grant from the head of the queue what the lock word allows (under mu).
 * `pending` is a release not yet in the lock word (the hand-off of
 * hb__release: a writer leaving while others wait), folded into the first
 * RMW below, so that the word goes from "held by the releaser" straight to
 * "held by the next waiter" -- one RMW, no moment at which the lock looks
 * free.  Nobody can take it in between anyway (every fast path fails on
 * WAITERS), but the RMW saved is one of the few a hand-off pays.  Nothing
 * is called here: wl takes any number of wakers. */
void hb__dispatch(hb__buf *e, hb__wakelist *wl, uint64_t pending) {
  uint64_t *lock = &e->pub.lock;
  /* ACQUIRE pairs with the RELEASE of hb__release's add (a reader that
   * left without dispatching) and of the last grant's CAS. */
  uint64_t w = __atomic_load_n(lock, __ATOMIC_ACQUIRE);
  for (;;) {
    hb_visitor *v = e->head;
    /* Its state is loaded (the mode), then RMW'd (the grant), and its
     * links beside it are written (the unlink): fetch it exclusive. */
    if (v != NULL) HB__PREFETCH_RMW(&v->state);
    /* The NEXT waiter, if its turn came with our release, is ahead of
     * the whole queue: its grant goes in first, in this same RMW. */
    uint64_t n = hb__handoff_next(w + pending);
    bool change = n != w; /* our release, or a NEXT grant, must go in */
    const hb__mode *m = NULL;
    if (v == NULL) {
      if (!change && !(w & HB__W_WAITERS)) return;
      n &= ~HB__W_WAITERS; /* nobody waits any more */
    } else {
      m = hb__mode_of_state(hb__load_state(v));
      if (n & m->conflict) {
        if (!change) return;
        v = NULL; /* the head must wait: only our release goes in */
      } else {
        n += m->ticket;
        /* The last waiter: WAITERS falls with its grant, in one RMW. */
        if (v->next == NULL) n &= ~HB__W_WAITERS;
      }
    }
    /* RELEASE: what the releaser's visit wrote happens before the grant;
     * ACQUIRE: the grantee's predecessors' releases (readers' adds) are
     * seen by the grantee through our fetch_or on its state (RELEASE). */
    if (!__atomic_compare_exchange_n(lock, &w, n, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
      continue; /* a reader left (its add), or a caster set WAITERS */
    w = n;
    pending = 0;
    if (v == NULL) return;
    hb__queue_unlink(e, v);
    hb__grant(v, wl);
    if (e->head == NULL) return;
  }
}

/* Give a granted ticket of mode m back.  `ran` counts a finished visit.
 * What the dispatcher hands out is left in wl for the caller to run after.
 * Only the last holder to leave (a writer; the last reader) dispatches.
 *
 * A writer that sees WAITERS hands the lock over: it takes the mutex while
 * still holding its ticket, and the dispatcher's one CAS gives the ticket
 * back and grants the head.  A reader cannot know it is the last one but
 * by its own RMW (two readers leaving together would each see the other),
 * so a reader releases first and dispatches if it was the last. */
void hb__release(hb__buf *e, const hb__mode *m, bool ran, hb__wakelist *wl) {
  uint64_t *lock = &e->pub.lock;
  uint64_t delta = (ran ? m->done : 0) - m->ticket;
  if (ran && m->ticket == HB__W_WRITER && e->stream != NULL)
    hb__stream_commit(e); /* stream: publish the end, admit the waiters */
  HB__PREFETCH_RMW(lock);
  if (m->done == 0 &&
      (__atomic_load_n(lock, __ATOMIC_RELAXED) & HB__W_WAITERS)) {
    /* A writer: nobody else changes the word but casters setting WAITERS
     * (under the mutex we take) and the dispatcher (likewise). */
    hb__mutex_lock(&e->mu);
    hb__dispatch(e, wl, delta);
    hb__mutex_unlock(&e->mu);
    return;
  }
  if (hb__release_word(e, m, ran)) {
    hb__mutex_lock(&e->mu);
    hb__dispatch(e, wl, 0);
    hb__mutex_unlock(&e->mu);
  }
}

/* hb__release's RMW: a ticket of mode m back into the lock word (a done
 * read counted if `ran`), with the NEXT hand-off.  Returns whether the
 * caller must dispatch (under mu): the last holder left a waiting queue --
 * unless a NEXT writer took the lock in the RMW (it dispatches when it
 * leaves).
 * Also the read bias's give-back of its collective share (src/rbias.c). */
bool hb__release_word(hb__buf *e, const hb__mode *m, bool ran) {
  uint64_t *lock = &e->pub.lock;
  uint64_t delta = (ran ? m->done : 0) - m->ticket;
  /* RELEASE: the visit's writes happen before the next grant's ACQUIRE
   * (a NEXT waiter's spin included: a CAS, not an add, so that the hand-off
   * to it goes in with the release). */
  uint64_t old = __atomic_load_n(lock, __ATOMIC_RELAXED), n;
  do
    n = hb__handoff_next(old + delta);
  while (!__atomic_compare_exchange_n(lock, &old, n, true, __ATOMIC_RELEASE,
                                      __ATOMIC_RELAXED));
  /* A counted read: every 256th is a milestone (hb__release_fast). */
  if (ran && m->done != 0 && !(n & HB__W_MILESTONE))
    hb__read_milestone(lock, old);
  return (old & HB__W_WAITERS) && (old & m->holders) == m->ticket &&
         !(n & HB__W_WRITER);
}

void hb__release_now_slow(hb__buf *e, bool write) {
  hb__wakelist wl;
  HB__WAKELIST_INIT(wl);
  hb__release(e, hb__mode_of(write), true, &wl);
  hb__flush(&wl);
}

/* ---- marking a queued visitor --------------------------------------------
 *
 * hb_poll (WAKER), hb_block_on (PARKED), hb_visit_detached (DETACHED) and
 * hb_cancel (CANCELLING) all mark a visitor that has not been granted, and
 * all race with the grant the same way: they decide under the mutex the
 * dispatcher grants under.  A visitor in the NEXT slot is demoted first
 * (src/next.c, rule 7), so every mark sees it in the list or granted.
 */
bool hb__mark_queued(hb__buf *e, hb_visitor *v, uint32_t *s, uint32_t clear,
                     uint32_t set, bool hold) {
  hb__mutex_lock(&e->mu);
  *s = hb__load_state(v);
  /* In the NEXT slot: into the list first, or granted (src/next.c). */
  if (HB__UNLIKELY(*s & HB__V_NEXT) && hb__queued(*s))
    hb__next_demote(e, v, s);
  bool queued;
  /* A CAS, as drivers and sleepers set their flags without the mutex.
   * RELEASE pairs with hb__grant's ACQUIRE load under the same mutex. */
  while ((queued = hb__queued(*s)) &&
         !__atomic_compare_exchange_n(&v->state, s, (*s & ~clear) | set,
                                      false, __ATOMIC_RELEASE,
                                      __ATOMIC_ACQUIRE)) {
  }
  if (!queued || !hold) hb__mutex_unlock(&e->mu);
  return queued;
}

/* hb__announce (visit.h): a driver's flag on a queued visitor, without the
 * mutex.  RELEASE pairs with hb__grant's ACQUIRE loads; ACQUIRE on failure
 * so the caller's next look sees what the grant or cancel published. */
bool hb__announce(hb_visitor *v, uint32_t clear, uint32_t flag) {
  uint32_t s = hb__load_state(v);
  while (hb__queued(s))
    if (__atomic_compare_exchange_n(&v->state, &s, (s & ~clear) | flag,
                                    false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
      return true;
  return false;
}

/* ---- the slow path of a cast ----------------------------------------------
 */

/* For v in state s (CAST, and WRITE for a write ticket): announce a
 * waiter, then decide with the word as it was -- granted at once, or
 * queued.  Returns whether it was granted. */
bool hb__cast_slow(hb__buf *e, hb_visitor *v, uint32_t s) {
  uint64_t *lock = &e->pub.lock;
  const hb__mode *m = hb__mode_of_state(s);
  hb__wakelist wl; /* the read bias's give-back may dispatch */
  HB__WAKELIST_INIT(wl);
  hb__mutex_lock(&e->mu);
  uint64_t w0 = __atomic_load_n(lock, __ATOMIC_RELAXED);
  if (w0 & HB__W_BIASED) hb__unbias(e);
  /* Any mode: so that WAITERS never shows beside RBIAS (src/rbias.c). */
  if (w0 & HB__W_RBIAS) hb__rbias_revoke(e, &wl);
  /* The acquire side pairs with the RELEASE of the hb__release that freed
   * the lock, so a visit granted here sees what the last writer wrote. */
  uint64_t w = __atomic_fetch_or(lock, HB__W_WAITERS, __ATOMIC_ACQ_REL);
  bool granted = e->head == NULL && !(w & m->conflict);
  if (granted) {
    /* Nobody waits and the lock allows it: take it and drop WAITERS in the
     * same add (only this thread could have set it: the queue is empty and
     * we hold the mutex).  ACQ_REL as hb__dispatch's grant; the ACQUIRE
     * that matters was the fetch_or's above. */
    __atomic_fetch_add(lock, m->ticket - HB__W_WAITERS, __ATOMIC_ACQ_REL);
    hb__store_state(v, s | HB__V_GRANTED);
  } else {
    hb__store_state(v, s); /* queued: cast and not granted */
    hb__queue_push(e, v, false);
  }
  hb__mutex_unlock(&e->mu);
  hb__flush(&wl);
  return granted;
}
