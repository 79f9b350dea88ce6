/*
 * visitor.c -- visitor mode: tickets, the wait queue, drivers and views.
 *
 * THE LOCK
 *
 * A buffer's visitors share a fair reader-writer lock built from two parts:
 *
 *   1. The lock word (hb_buf.lock, 64 bits, atomic), which alone decides the
 *      uncontended cases with one atomic read-modify-write each:
 *
 *        bit  0       HB__W_WRITER   a write ticket is granted
 *        bit  1       HB__W_WAITERS  the wait queue is not empty
 *        bits 2..31   readers        granted read tickets (HB__W_READER each)
 *        bit  32      HB__W_BIASED   the buffer is biased (see BIAS below)
 *        bits 33..63  done reads     finished read visits, a wrapping counter
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
 *   grant of a PARKED visitor is a fetch_or.  Once granted, the only changes are claims by CAS: a driver claims
 *   CAST -> RUNNING, hb_cancel claims CAST -> CANCELLING; exactly one wins.
 *   A cancelled visitor passes through CANCELLING while the canceller still
 *   uses the buffer (releasing its ticket, or dispatching the queue behind
 *   it), so a driver that sees CANCELLED may free the buffer at once;
 *   drivers that see CANCELLING sleep on the state word until it ends.
 *   hb_visit's "armed" flag is a separate field: only the visitor's owner
 *   touches it.
 *
 * BIAS
 *
 *   Most buffers are only ever visited by one thread, and there even the
 *   two atomic instructions of an uncontended visit are most of its cost.
 *   So the first thread to make a one-call visit (hb_read_now /
 *   hb_write_now) on a buffer gets the buffer biased to it, if nothing of
 *   the buffer is live then, as the JVM once biased its monitors: it
 *   claims bias_owner by CAS, then sets BIASED in the lock word by CAS,
 *   and every other caster's fast path fails on BIASED.
 *   The biased thread's one-call visits then take no atomic RMW:
 *
 *     store held = READ or WRITE; compiler barrier; load the lock word:
 *     BIASED still set -> run the callback; store held = 0 (RELEASE);
 *     compiler barrier; load the lock word: BIASED still set -> done.
 *
 *   Any other cast (another thread's, or a caller-owned visitor of the
 *   biased thread's own, whose driver may be anywhere) revokes the bias
 *   for good, under the mutex: it clears BIASED and sets WAITERS in one
 *   CAS, runs membarrier(2) -- a full barrier on every thread of the
 *   process, so the biased thread's store-then-load above is ordered as
 *   if it had a fence of its own -- and then reads held.  Either the
 *   biased thread's load saw BIASED gone, or its store is visible to the
 *   revoker.  If held is set, the revoker adds that hold to the lock word
 *   as a granted ticket ("moved"); then it publishes its decision in
 *   bias_decision.  A biased thread that sees BIASED gone waits for the
 *   decision (microseconds): on "moved" it holds a real ticket, and gives
 *   it back with an ordinary release, which dispatches whoever queued
 *   meanwhile; otherwise it takes the shared path like anybody.
 *
 *   Order is kept: a visit the revoker saw is ahead of the revoker's cast,
 *   one it did not see comes after it, through the lock word.  A buffer is
 *   never biased again once revoked.  Biased visits push no deadlock
 *   frame; hb__inside_visit_of reads held instead.  Off under
 *   ThreadSanitizer (it cannot see membarrier's ordering) and where
 *   membarrier is missing; a debug build's direct-mode checks and hb_free
 *   read held too.  tests/model/bias.pml model-checks the protocol with
 *   store buffers (`make model`).
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
 *   by the canceller while the visitor is still CANCELLING, to the same end.)
 *
 *   hb_poll's registration and the grant both happen under the mutex, so
 *   either the poll sees GRANTED, or the granter sees WAKER and calls the
 *   waker (AtomicWaker's register/recheck, with a lock instead of a CAS loop
 *   because the slow path needs the queue lock anyway).
 *
 *   hb_block_on (and hb_*_now when it must queue) needs no waker: it marks
 *   its queued visitor PARKED under the mutex and waits on the visitor's
 *   state word.  The dispatcher grants a PARKED visitor with one fetch_or
 *   of GRANTED, and makes a futex wake only if the waiter had gone to
 *   sleep (SLEEPER); hb_cancel's wake after CANCELLED covers a cancel.
 *   The waiter spins first, up to HB__PARK_SPIN_NS: when two threads hand
 *   the buffer back and forth, sleeping would make every hand-off wait for
 *   a wake-up (a convoy).  The grant's fetch_or is the granter's last touch
 *   of the visitor; the futex wake after it touches only the kernel's hash
 *   table.
 */
#include "internal.h"

#include <stdbool.h>
#include <time.h>

/* ---- the lock word --------------------------------------------------------
 */
#define HB__W_WRITER UINT64_C(0x1)     /* a write ticket is granted */
#define HB__W_WAITERS UINT64_C(0x2)    /* the wait queue is not empty */
#define HB__W_READER UINT64_C(0x4)     /* one granted read ticket */
#define HB__W_READERS UINT64_C(0xfffffffc) /* mask: granted read tickets */
#define HB__W_BIASED (UINT64_C(1) << 32) /* biased to one thread (BIAS) */
#define HB__W_DONE (UINT64_C(1) << HB__DONE_SHIFT) /* a finished read visit */

/* ---- a visitor's state ----------------------------------------------------
 */
#define HB__V_PHASE 0xfu
#define HB__V_IDLE 0u
#define HB__V_CAST 1u
#define HB__V_RUNNING 2u
#define HB__V_RAN 3u
#define HB__V_CANCELLING 4u
#define HB__V_CANCELLED 5u
#define HB__V_GRANTED 0x10u  /* its turn has come */
#define HB__V_WRITE 0x20u    /* a write ticket */
#define HB__V_WAKER 0x80u    /* v->waker is to be called (under mu) */
#define HB__V_DETACHED 0x100u /* run by whoever grants it */
#define HB__V_WAKING 0x200u   /* its waker is being called: wait it out */
#define HB__V_SLEEPER 0x400u  /* somebody sleeps on the state word */
#define HB__V_PARKED 0x800u   /* its driver waits on the state word */

static inline uint32_t hb__phase(uint32_t s) { return s & HB__V_PHASE; }
static inline uint32_t hb__with_phase(uint32_t s, uint32_t phase) {
  return (s & ~HB__V_PHASE) | phase;
}
static inline uint32_t hb__load_state(const hb_visitor *v) {
  return __atomic_load_n(&v->state, __ATOMIC_ACQUIRE);
}
static inline void hb__store_state(hb_visitor *v, uint32_t s) {
  __atomic_store_n(&v->state, s, __ATOMIC_RELEASE);
}
static inline bool hb__claim(hb_visitor *v, uint32_t *s, uint32_t phase) {
  return __atomic_compare_exchange_n(&v->state, s, hb__with_phase(*s, phase),
                                     false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE);
}

bool hb__load_granted(const hb_visitor *v) {
  return (hb__load_state(v) & HB__V_GRANTED) != 0;
}

/* ---- what to do once the mutex is released --------------------------------
 */
#define HB__WAKE_BATCH 16
typedef struct {
  hb_waker wakers[HB__WAKE_BATCH];
  hb_visitor *whose[HB__WAKE_BATCH]; /* marked WAKING until called */
  int n;
  hb_visitor *detached; /* claimed RUNNING; linked through ->next, FIFO */
  hb_visitor *detached_tail;
} hb__wakelist;

/* Not "= {0}": zeroing 16 wakers would cost every visit a memset. */
#define HB__WAKELIST_INIT(wl) ((wl).n = 0, (wl).detached = NULL)

/* Call each waker, then let its visitor's driver go on: until WAKING is
 * cleared the drivers and hb_cancel wait, so nobody finishes the visitor
 * (and frees the waker's arg) while its waker is still being called.
 * Clearing WAKING is our last touch of the visitor; the futex wake after it
 * only hands the address to the kernel. */
static void hb__call_wakers(hb__wakelist *wl) {
  for (int i = 0; i < wl->n; i++) {
    wl->wakers[i].wake(wl->wakers[i].arg);
    uint32_t *st = &wl->whose[i]->state;
    uint32_t old = __atomic_fetch_and(st, ~(HB__V_WAKING | HB__V_SLEEPER),
                                      __ATOMIC_RELEASE);
    if (old & HB__V_SLEEPER) hb__futex_wake_all(st);
  }
  wl->n = 0;
}

/* ---- callbacks in flight on this thread, for deadlock detection -----------
 */
typedef struct hb__frame {
  const hb_buf *buf;
  struct hb__frame *prev;
} hb__frame;
#if defined(__GNUC__)
#define HB__TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define HB__TLS_MODEL
#endif
static _Thread_local hb__frame *hb__frames HB__TLS_MODEL;

/* This thread's token for the bias: the address of a thread-local. */
static _Thread_local char hb__me HB__TLS_MODEL;
static inline const void *hb__self(void) { return &hb__me; }

/* Is this thread inside a callback on b?  Biased visits push no frame;
 * they show in b->held, which only the biased thread sets. */
static bool hb__inside_visit_of(const hb_buf *b) {
  for (const hb__frame *f = hb__frames; f != NULL; f = f->prev)
    if (f->buf == b) return true;
  const hb__buf *e = (const hb__buf *)b;
  return __atomic_load_n(&b->held, __ATOMIC_RELAXED) != 0 &&
         __atomic_load_n(&e->bias_thread, __ATOMIC_RELAXED) == hb__self();
}

/* ---- the wait queue (under e->mu) -----------------------------------------
 */
static void hb__queue_push(hb__buf *e, hb_visitor *v) {
  v->next = NULL;
  v->prev = e->tail;
  if (e->tail != NULL)
    e->tail->next = v;
  else
    e->head = v;
  e->tail = v;
  e->qlen++;
  if (e->qlen > e->longest_queue) HB__BUMP(e->longest_queue, 1);
}

static void hb__queue_unlink(hb__buf *e, hb_visitor *v) {
  if (v->prev != NULL)
    v->prev->next = v->next;
  else
    e->head = v->next;
  if (v->next != NULL)
    v->next->prev = v->prev;
  else
    e->tail = v->prev;
  v->next = v->prev = NULL;
  e->qlen--;
}

/* Grant a queued visitor (under mu).  A detached one is claimed RUNNING here,
 * so that hb_cancel cannot take it from the thread that will run it. */
static void hb__grant(hb_visitor *v, hb__wakelist *wl) {
  uint32_t s = hb__load_state(v);
  if (s & HB__V_PARKED) {
    /* Its driver (hb_block_on, or hb_*_now's own visitor) waits for GRANTED
     * on the state word itself: the grant is the wake-up, with no waker and
     * no WAKING.  An RMW, as that thread may be setting SLEEPER.  The
     * visitor may be gone once GRANTED is seen; the futex wake only hands
     * its address to the kernel. */
    if (__atomic_fetch_or(&v->state, HB__V_GRANTED, __ATOMIC_RELEASE) &
        HB__V_SLEEPER)
      hb__futex_wake_all(&v->state);
    return;
  }
  uint32_t n = (s & ~HB__V_WAKER) | HB__V_GRANTED;
  if (s & HB__V_DETACHED) {
    n = hb__with_phase(n, HB__V_RUNNING);
    v->next = NULL; /* run them in ticket order */
    if (wl->detached == NULL)
      wl->detached = v;
    else
      wl->detached_tail->next = v;
    wl->detached_tail = v;
  } else if (s & HB__V_WAKER) {
    n |= HB__V_WAKING;
    wl->whose[wl->n] = v;
    wl->wakers[wl->n++] = v->waker;
  }
  hb__store_state(v, n); /* pairs with the ACQUIRE loads in the drivers */
}

/* Grant from the head of the queue what the lock word allows (under mu).
 * When the waker batch fills, it is called with the mutex dropped. */
static void hb__dispatch(hb__buf *e, hb__wakelist *wl) {
  uint64_t *lock = &e->pub.lock;
  for (;;) {
    hb_visitor *v = e->head;
    if (v == NULL) {
      __atomic_fetch_and(lock, ~HB__W_WAITERS, __ATOMIC_RELEASE);
      return;
    }
    uint64_t w = __atomic_load_n(lock, __ATOMIC_ACQUIRE);
    if (hb__load_state(v) & HB__V_WRITE) {
      if (w & (HB__W_WRITER | HB__W_READERS)) return;
      __atomic_fetch_add(lock, HB__W_WRITER, __ATOMIC_ACQ_REL);
    } else {
      if (w & HB__W_WRITER) return;
      __atomic_fetch_add(lock, HB__W_READER, __ATOMIC_ACQ_REL);
    }
    hb__queue_unlink(e, v);
    hb__grant(v, wl);
    if (wl->n == HB__WAKE_BATCH) {
      hb__mutex_unlock(&e->mu);
      hb__call_wakers(wl);
      hb__mutex_lock(&e->mu);
    }
  }
}

static void hb__release_slow(hb__buf *e, hb__wakelist *wl) {
  hb__mutex_lock(&e->mu);
  hb__dispatch(e, wl);
  hb__mutex_unlock(&e->mu);
}

/* Give a granted ticket back.  `ran` counts a finished read visit.  What the
 * dispatcher hands out is left in wl for the caller to run after. */
static void hb__release(hb__buf *e, bool write, bool ran, hb__wakelist *wl) {
  uint64_t *lock = &e->pub.lock;
  uint64_t old;
  if (write) {
    /* RELEASE: the visit's writes happen before the next grant's ACQUIRE. */
    old = __atomic_fetch_sub(lock, HB__W_WRITER, __ATOMIC_RELEASE);
    if (old & HB__W_WAITERS) hb__release_slow(e, wl);
    return;
  }
  uint64_t delta = ran ? HB__W_DONE - HB__W_READER : (uint64_t)0 - HB__W_READER;
  old = __atomic_fetch_add(lock, delta, __ATOMIC_RELEASE);
  if (ran && (old >> HB__DONE_SHIFT) == (UINT64_MAX >> HB__DONE_SHIFT))
    __atomic_fetch_add(&e->read_wraps, 1, __ATOMIC_RELEASE);
  if ((old & HB__W_WAITERS) && (old & HB__W_READERS) == HB__W_READER)
    hb__release_slow(e, wl);
}

/* ---- running a visit ------------------------------------------------------
 */

/* Run fn under a granted ticket: the reservation, the view, the callback,
 * the rollback of an aborted write.  The ticket stays held. */
static inline int hb__run_fn(hb_buf *b, const hb_type *t, bool write,
                             size_t reserve, hb_visit_fn fn, void *ctx,
                             bool track) {
  hb__buf *e = hb__ext(b);
  size_t size = t->size;
  hb_view view = {b, t, b->len, size, write,
                  (size & (size - 1)) == 0 ? (unsigned)__builtin_ctzll(size)
                                           : HB__NO_SHIFT};
  hb__frame frame = {b, hb__frames};
  int r;

  if (write && hb__reserve(b, reserve) != HB_OK) {
    r = HB_ENOMEM; /* the turn came but the room could not be had */
    HB__BUMP(e->reserve_failed, 1);
  } else {
    if (track) hb__frames = &frame;
    r = fn(&view, ctx);
    if (track) hb__frames = frame.prev;
    if (write) {
      if (r < 0) {
        b->len = view.start_len; /* roll the appends back */
        HB__BUMP(e->aborted, 1);
      }
      HB__BUMP(e->writes_run, 1);
    }
  }
  return r;
}

/* Run a visitor already claimed RUNNING; leave what it unblocked in wl. */
static int hb__run_claimed(hb_visitor *v, uint32_t s, hb__wakelist *wl) {
  bool write = (s & HB__V_WRITE) != 0;
  int r = hb__run_fn(v->buf, &v->type, write, v->reserve, v->fn, v->ctx,
                     true);
  v->result = r;
  hb__release(hb__ext(v->buf), write, true, wl);
  /* The ticket is back; from here on, only v. */
  hb__store_state(v, hb__with_phase(s, HB__V_RAN));
  return r;
}

/* Run the detached visitors collected in wl, and call the wakers, until
 * nothing is left: running one may unblock more. */
static void hb__flush_slow(hb__wakelist *wl) {
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

static inline void hb__flush(hb__wakelist *wl) {
  if (wl->n != 0 || wl->detached != NULL) hb__flush_slow(wl);
}

/* Give back a finished visit's ticket held by no visitor (hb_*_now's), and
 * do what the release unblocked. */
static void hb__release_now(hb__buf *e, bool write) {
  hb__wakelist wl;
  HB__WAKELIST_INIT(wl);
  hb__release(e, write, true, &wl);
  hb__flush(&wl);
}

#define HB__SETTLE_SPINS 256

/* Sleep on *word until done(its value), and return that value.  Before
 * each sleep, `sleeper` is set in the word by CAS, so that whoever changes
 * the word next knows to make a futex wake.  The waits on a visitor's
 * state (settling, a PARKED turn) and on a bias decision all end here. */
static inline uint32_t hb__sleep_until(uint32_t *word, uint32_t sleeper,
                                       bool (*done)(uint32_t)) {
  uint32_t s = __atomic_load_n(word, __ATOMIC_ACQUIRE);
  while (!done(s)) {
    if (!(s & sleeper) &&
        !__atomic_compare_exchange_n(word, &s, s | sleeper, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
      continue; /* s was reloaded */
    hb__futex_wait(word, s | sleeper);
    s = __atomic_load_n(word, __ATOMIC_ACQUIRE);
  }
  return s;
}

/* Spin up to HB__SETTLE_SPINS pauses for done(*word), then sleep for it:
 * for waits that usually end within nanoseconds. */
static inline uint32_t hb__settle_until(uint32_t *word, uint32_t sleeper,
                                        bool (*done)(uint32_t)) {
  for (int i = 0; i < HB__SETTLE_SPINS; i++) {
    uint32_t s = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    if (done(s)) return s;
    hb__cpu_relax();
  }
  return hb__sleep_until(word, sleeper, done);
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
static int hb__try_run(hb_visitor *v, int *result) {
  for (;;) {
    uint32_t s;
    int rc = hb__driver_check(v, &s, result);
    if (rc != HB_PENDING) return rc;
    if (!(s & HB__V_GRANTED)) return HB_EAGAIN;
    if (hb__claim(v, &s, HB__V_RUNNING)) {
      hb__wakelist wl;
      HB__WAKELIST_INIT(wl);
      int r = hb__run_claimed(v, s, &wl);
      hb__flush(&wl);
      if (result != NULL) *result = r;
      return HB_OK;
    }
    /* lost the claim to hb_cancel: look again */
  }
}

/* ---- the bias -------------------------------------------------------------
 *
 * (See BIAS at the top.)  held: what the biased thread's visit in progress
 * holds.  bias_decision: what the revoker found, published once.
 */
#define HB__HELD_READ 1u
#define HB__HELD_WRITE 2u
#define HB__DECIDE_PENDING 0u
#define HB__DECIDE_KEPT 1u   /* nothing held: the lock word was right as is */
#define HB__DECIDE_MOVED 2u  /* the holder's ticket was moved into the word */
#define HB__DECIDE_MASK 3u
#define HB__DECIDE_SLEEPER 4u /* the biased thread sleeps on the word */

static const char hb__shared_tag;
#define HB__BIAS_SHARED ((const void *)&hb__shared_tag)

#if defined(__SANITIZE_THREAD__)
#define HB__BIAS_ON 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HB__BIAS_ON 0
#endif
#endif
#ifndef HB__BIAS_ON
#define HB__BIAS_ON 1 /* ThreadSanitizer cannot see membarrier's ordering */
#endif

bool hb__bias_available(void) { return HB__BIAS_ON && hb__asym_fence_ready(); }

bool hb__is_biased(const hb_buf *b) {
  return (__atomic_load_n(&b->lock, __ATOMIC_ACQUIRE) & HB__W_BIASED) != 0;
}

bool hb__bias_moved(const hb_buf *b) {
  const hb__buf *e = (const hb__buf *)b;
  return (__atomic_load_n(&e->bias_decision, __ATOMIC_ACQUIRE) &
          HB__DECIDE_MASK) == HB__DECIDE_MOVED;
}

/* Bias the buffer to this thread if nothing of it is live and it was never
 * biased or shared: called by a one-call visit that finds bias_owner NULL.
 * The owner is claimed first and BIASED set second, so a revoker (who acts
 * only on BIASED) always finds the owner's token.  Two atomic operations,
 * once per buffer; racing callers lose the first and take the shared path. */
static void hb__bias_try(hb__buf *e) {
  uint64_t *lock = &e->pub.lock;
  const void *none = NULL;
  if (!__atomic_compare_exchange_n(&e->bias_owner, &none, hb__self(), false,
                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    return;
  __atomic_store_n(&e->bias_thread, hb__self(), __ATOMIC_RELAXED);
  uint64_t w = __atomic_load_n(lock, __ATOMIC_RELAXED);
  bool ok = HB__BIAS_ON && !(w & HB__LIVE_MASK) && hb__asym_fence_ready() &&
            __atomic_compare_exchange_n(lock, &w, w | HB__W_BIASED, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
  if (!ok) __atomic_store_n(&e->bias_owner, HB__BIAS_SHARED, __ATOMIC_RELAXED);
}

/* End the bias (under mu, BIASED set): from now on the buffer is shared.
 * WAITERS goes up with BIASED's fall, so no caster takes the fast path
 * before the biased thread's hold, if any, is in the lock word. */
static void hb__unbias(hb__buf *e) {
  uint64_t *lock = &e->pub.lock;
  uint64_t w = __atomic_load_n(lock, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(lock, &w,
                                      (w & ~HB__W_BIASED) | HB__W_WAITERS,
                                      false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_RELAXED)) {
  }
  const void *owner = __atomic_load_n(&e->bias_owner, __ATOMIC_RELAXED);
  __atomic_store_n(&e->bias_owner, HB__BIAS_SHARED, __ATOMIC_RELAXED);
  /* The biased thread stores held, then loads the lock word, with only a
   * compiler barrier between; the fence makes that a full barrier.  So
   * either its load sees BIASED gone (and it waits for our decision), or
   * its store of held is visible to the load below.  Its own revocation
   * (a caller-owned cast, or a nested one) needs no fence. */
  if (owner != hb__self()) hb__asym_fence();
  uint32_t held = __atomic_load_n(&e->pub.held, __ATOMIC_ACQUIRE);
  if (held != 0)
    __atomic_fetch_add(lock, held == HB__HELD_WRITE ? HB__W_WRITER
                                                    : HB__W_READER,
                       __ATOMIC_ACQ_REL);
  uint32_t old = __atomic_exchange_n(
      &e->bias_decision, held != 0 ? HB__DECIDE_MOVED : HB__DECIDE_KEPT,
      __ATOMIC_RELEASE);
  if (old & HB__DECIDE_SLEEPER) hb__futex_wake_all(&e->bias_decision);
  /* The queue is empty (while BIASED, every slow-path caster came here
   * first): WAITERS has done its job. */
  __atomic_fetch_and(lock, ~HB__W_WAITERS, __ATOMIC_RELEASE);
}

/* The biased thread found BIASED gone: wait for the revoker's decision
 * (published within microseconds, under the mutex it holds). */
static bool hb__decided(uint32_t d) {
  return (d & HB__DECIDE_MASK) != HB__DECIDE_PENDING;
}

static uint32_t hb__bias_decision(hb__buf *e) {
  return hb__settle_until(&e->bias_decision, HB__DECIDE_SLEEPER,
                          hb__decided) &
         HB__DECIDE_MASK;
}

/* A one-call visit by the thread b is biased to.  Returns false, having
 * done nothing, when the visit must take the shared path instead. */
static bool hb__visit_biased(hb_buf *b, const hb_type *t, bool write,
                             size_t reserve, hb_visit_fn fn, void *ctx,
                             int *result) {
  hb__buf *e = hb__ext(b);
  if (__atomic_load_n(&b->held, __ATOMIC_RELAXED) != 0)
    return false; /* nested in our own visit: the shared path sorts it out */
  __atomic_store_n(&b->held, write ? HB__HELD_WRITE : HB__HELD_READ,
                   __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the revoker's fence does the rest */
  bool moved = false;
  /* ACQUIRE: on weakly ordered CPUs the callback's loads stay after it. */
  if (HB__UNLIKELY(!(__atomic_load_n(&b->lock, __ATOMIC_ACQUIRE) &
                     HB__W_BIASED))) {
    /* Revoked as we came: either our hold was seen and moved into the
     * lock word (so the ticket is ours), or we go the shared way. */
    if (hb__bias_decision(e) != HB__DECIDE_MOVED) {
      __atomic_store_n(&b->held, 0, __ATOMIC_RELAXED);
      return false;
    }
    moved = true;
  }
  int r = hb__run_fn(b, t, write, reserve, fn, ctx, false);
  /* RELEASE: a revoker that reads 0 here sees everything the visit did. */
  __atomic_store_n(&b->held, 0, __ATOMIC_RELEASE);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (!moved &&
      HB__UNLIKELY(!(__atomic_load_n(&b->lock, __ATOMIC_RELAXED) &
                     HB__W_BIASED)))
    moved = hb__bias_decision(e) == HB__DECIDE_MOVED;
  if (moved) {
    hb__release_now(e, write); /* our hold is a ticket in the lock word */
  } else if (!write) {
    HB__BUMP(e->bias_reads, 1);
  }
  if (result != NULL) *result = r;
  return true;
}

/* ---- casting --------------------------------------------------------------
 */

static bool hb__type_ok(const hb_buf *b, hb_type t) {
  return b != NULL && t.size != 0 && t.align != 0 &&
         (t.align & (t.align - 1)) == 0 &&
         t.align <= ((const hb__buf *)b)->align &&
         t.size % t.align == 0;
}

/* The uncontended grant: one CAS, while nothing conflicting is granted and
 * nobody waits.  ACQUIRE pairs with the RELEASE of the last ticket's
 * hb__release, so the visit sees what earlier writers wrote. */
static inline bool hb__grant_fast(hb_buf *b, bool write) {
  uint64_t w = __atomic_load_n(&b->lock, __ATOMIC_RELAXED);
  uint64_t busy = write ? HB__LIVE_MASK | HB__W_BIASED
                        : HB__W_WRITER | HB__W_WAITERS | HB__W_BIASED;
  while (!(w & busy)) {
    uint64_t n = w + (write ? HB__W_WRITER : HB__W_READER);
    if (__atomic_compare_exchange_n(&b->lock, &w, n, true, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
      return true;
  }
  return false;
}

/* The slow path of a cast, for v in state s (CAST, and WRITE for a write
 * ticket): announce a waiter, then decide with the word as it was --
 * granted at once, or queued.  Returns whether it was granted. */
static bool hb__cast_slow(hb__buf *e, hb_visitor *v, uint32_t s) {
  uint64_t *lock = &e->pub.lock;
  bool write = (s & HB__V_WRITE) != 0;
  hb__mutex_lock(&e->mu);
  if (__atomic_load_n(lock, __ATOMIC_RELAXED) & HB__W_BIASED) hb__unbias(e);
  uint64_t w = __atomic_fetch_or(lock, HB__W_WAITERS, __ATOMIC_ACQ_REL);
  bool free_now = write ? !(w & (HB__W_WRITER | HB__W_READERS))
                        : !(w & HB__W_WRITER);
  bool granted = e->head == NULL && free_now;
  if (granted) {
    /* Nobody waits and the lock allows it: take it and drop WAITERS in the
     * same add (only this thread could have set it: the queue is empty and
     * we hold the mutex). */
    uint64_t d = (write ? HB__W_WRITER : HB__W_READER) - HB__W_WAITERS;
    __atomic_fetch_add(lock, d, __ATOMIC_ACQ_REL);
    hb__store_state(v, s | HB__V_GRANTED);
  } else {
    hb__store_state(v, s); /* queued: cast and not granted */
    hb__queue_push(e, v);
  }
  hb__mutex_unlock(&e->mu);
  return granted;
}

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
  uint32_t s = HB__V_CAST | (write ? HB__V_WRITE : 0u);

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
    hb__mutex_lock(&e->mu);
    s = hb__load_state(v);
    if (hb__phase(s) == HB__V_CAST && !(s & HB__V_GRANTED)) {
      hb__store_state(v, s | HB__V_DETACHED);
      hb__mutex_unlock(&e->mu);
      return HB_OK;
    }
    hb__mutex_unlock(&e->mu);
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
    hb__mutex_lock(&e->mu);
    uint32_t s = hb__load_state(v);
    if (hb__phase(s) == HB__V_CAST && !(s & HB__V_GRANTED)) {
      if (w.wake != NULL) {
        v->waker = w;
        hb__store_state(v, s | HB__V_WAKER);
      }
      hb__mutex_unlock(&e->mu);
      return HB_PENDING;
    }
    hb__mutex_unlock(&e->mu);
    /* granted or cancelled meanwhile: go round */
  }
}

#define HB__PARK_SPIN_NS 25000 /* the most a waiter spins before it sleeps */
#define HB__PARK_SPIN_MIN_NS 1000 /* and the least */

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

/* Fold one measured wait into the average (weight 1/8). */
static void hb__note_wait(hb__buf *e, uint64_t waited_ns) {
  if (waited_ns > UINT32_MAX / 2) waited_ns = UINT32_MAX / 2;
  int64_t avg = __atomic_load_n(&e->wait_avg_ns, __ATOMIC_RELAXED);
  avg += ((int64_t)waited_ns - avg) / 8;
  __atomic_store_n(&e->wait_avg_ns, (uint32_t)(avg > 0 ? avg : 1),
                   __ATOMIC_RELAXED);
}

/* Is a PARKED visitor's wait over: granted, or cancelled (CANCELLING or
 * CANCELLED; the driver then waits the canceller out as usual)? */
static bool hb__turn_came(uint32_t s) {
  return (s & HB__V_GRANTED) || hb__phase(s) != HB__V_CAST;
}

/* Wait until a PARKED visitor's turn has come, or it was cancelled: spin
 * first, then sleep on the state word.  The dispatcher's grant wakes a
 * SLEEPER (hb__grant), and so does hb_cancel (its futex wake after
 * CANCELLED).  The spin matters: when two threads hand the buffer back and
 * forth (FIFO tickets make every contended visit a hand-off), a waiter
 * that went to sleep must be woken for its turn, and the other thread's
 * next ticket then waits for that wake-up -- a convoy at the scheduler's
 * pace (~1.3 us per visit measured, against ~0.17 us spinning).  How long
 * follows the buffer's recent waits (hb__spin_budget).  The clock is read
 * every 32 pauses: a pause costs 10 to 140 cycles, by CPU. */
static void hb__wait_turn(hb_visitor *v, hb__buf *e) {
  uint64_t start = hb__now_ns(), budget = hb__spin_budget(e);
  for (unsigned i = 1; !hb__turn_came(hb__load_state(v)); i++) {
    hb__cpu_relax();
    if ((i & 31) == 0 && hb__now_ns() - start >= budget) {
      hb__sleep_until(&v->state, HB__V_SLEEPER, hb__turn_came);
      break;
    }
  }
  /* v is granted or being cancelled, not finished: the buffer is alive. */
  hb__note_wait(e, hb__now_ns() - start);
}

int hb_block_on(hb_visitor *v, int *result) {
  if (v == NULL) return HB_EINVAL;
  /* Inside a callback of the same buffer, a visitor whose turn has not come
   * never will: it waits for the ticket this thread is running. */
  uint32_t s = hb__load_state(v);
  if (hb__phase(s) == HB__V_CAST && v->armed &&
      !(s & (HB__V_GRANTED | HB__V_DETACHED)) && hb__inside_visit_of(v->buf))
    return HB_EDEADLK;
  for (;;) {
    int rc = hb__try_run(v, result);
    if (rc != HB_EAGAIN) return rc;
    /* Not its turn: mark it PARKED under the mutex the granter holds (so
     * either we see GRANTED here, or the granter sees PARKED), replacing
     * any waker hb_poll stored; then wait on the state word. */
    hb__buf *e = hb__ext(v->buf);
    hb__mutex_lock(&e->mu);
    s = hb__load_state(v);
    bool queued = hb__phase(s) == HB__V_CAST && !(s & HB__V_GRANTED);
    if (queued) hb__store_state(v, (s & ~HB__V_WAKER) | HB__V_PARKED);
    hb__mutex_unlock(&e->mu);
    if (queued) hb__wait_turn(v, e);
  }
}

/* ---- cast, visit and run in one call --------------------------------------
 *
 * The visitor of hb_read_now / hb_write_now never leaves this function, so
 * nobody can cancel it: when the ticket is granted at once there is no
 * claim to make, and the visit costs the grant's CAS and the release's add
 * (or, on a buffer biased to this thread, no atomic RMW at all: see BIAS).
 * Otherwise a visitor on this stack takes its place in the queue, marked
 * PARKED: this thread waits on its state word, and the dispatcher's grant
 * is the whole wake-up -- one RMW on the waiter's line where hb_block_on
 * needs a waker call, its WAKING round and a claim.
 */
static int hb__visit_now(hb_buf *b, hb_type t, bool write, size_t reserve,
                         hb_visit_fn fn, void *ctx, int *result) {
  if (!hb__type_ok(b, t) || fn == NULL) return HB_EINVAL;
  if (reserve > (size_t)PTRDIFF_MAX) return HB_ERANGE;
  hb__buf *e = hb__ext(b);
  const void *owner = __atomic_load_n(&e->bias_owner, __ATOMIC_RELAXED);
  if (HB__UNLIKELY(owner == NULL)) {
    hb__bias_try(e);
    owner = __atomic_load_n(&e->bias_owner, __ATOMIC_RELAXED);
  }
  if (owner == hb__self() &&
      hb__visit_biased(b, &t, write, reserve, fn, ctx, result))
    return HB_OK;
  bool granted = hb__grant_fast(b, write);
  if (!granted &&
      (__atomic_load_n(&b->lock, __ATOMIC_RELAXED) & HB__W_BIASED)) {
    /* Biased to another thread, or to this one inside its own visit: end
     * the bias first, so the deadlock check below sees the real holders. */
    hb__mutex_lock(&e->mu);
    if (__atomic_load_n(&b->lock, __ATOMIC_RELAXED) & HB__W_BIASED)
      hb__unbias(e);
    hb__mutex_unlock(&e->mu);
    granted = hb__grant_fast(b, write);
  }
  if (!granted) {
    /* Inside a callback on b, a ticket that is not granted at once never
     * will be: it would wait for the one this thread is running. */
    if (hb__inside_visit_of(b)) return HB_EDEADLK;
    /* Queue a visitor of our own and wait for its grant on its state word:
     * nobody else can see it, so no claim, waker or WAKING is needed.  The
     * granter's last touch of it is the grant itself. */
    hb_visitor v = HB_VISITOR_INIT;
    v.buf = b;
    uint32_t s = HB__V_CAST | HB__V_PARKED | (write ? HB__V_WRITE : 0u);
    if (!hb__cast_slow(e, &v, s)) hb__wait_turn(&v, e);
  }
  int r = hb__run_fn(b, &t, write, reserve, fn, ctx, true);
  hb__release_now(e, write);
  if (result != NULL) *result = r;
  return HB_OK;
}

int hb_read_now(hb_buf *b, hb_type t, hb_visit_fn fn, void *ctx,
                int *result) {
  return hb__visit_now(b, t, false, 0, fn, ctx, result);
}

int hb_write_now(hb_buf *b, hb_type t, size_t reserve, hb_visit_fn fn,
                 void *ctx, int *result) {
  return hb__visit_now(b, t, true, reserve, fn, ctx, result);
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
      hb__release(e, (s & HB__V_WRITE) != 0, false, &wl);
      hb__store_state(v, hb__with_phase(s, HB__V_CANCELLED));
      hb__futex_wake_all(&v->state); /* drivers waiting out CANCELLING */
    } else {
      hb__mutex_lock(&e->mu);
      uint32_t now = hb__load_state(v);
      if (now != s) { /* granted, or waker registered, meanwhile */
        hb__mutex_unlock(&e->mu);
        continue;
      }
      hb__queue_unlink(e, v);
      hb_waker own = (s & HB__V_WAKER) ? v->waker : (hb_waker){NULL, NULL};
      __atomic_fetch_add(&e->cancelled, 1, __ATOMIC_RELAXED);
      /* CANCELLING, not CANCELLED, until we are done with the buffer: the
       * dispatch below may drop the mutex to call a full batch of wakers,
       * and a driver that saw CANCELLED could let the owner free it. */
      s = hb__with_phase(s & ~HB__V_WAKER, HB__V_CANCELLING);
      hb__store_state(v, s);
      /* Those behind it may be free to go now (a writer left the head). */
      hb__dispatch(e, &wl);
      hb__mutex_unlock(&e->mu);
      /* Its own waker is called while it is still CANCELLING, so no driver
       * can finish it (and free the waker's arg) before the call returns. */
      if (own.wake != NULL) own.wake(own.arg);
      hb__store_state(v, hb__with_phase(s, HB__V_CANCELLED));
      hb__futex_wake_all(&v->state); /* drivers waiting out CANCELLING */
    }
    if ((s & HB__V_DETACHED) && done != NULL) done(v, HB_ECANCELED, 0, done_arg);
    hb__flush(&wl);
    return HB_OK;
  }
}

/* ---- views ----------------------------------------------------------------
 */

size_t hb_view_len(const hb_view *view) {
  if (HB__LIKELY(view->shift != HB__NO_SHIFT))
    return view->buf->len >> view->shift;
  return view->buf->len / view->size;
}

hb_type hb_view_type(const hb_view *view) { return *view->type; }

const void *hb_view_read_array(hb_view *view, size_t *count) {
  if (count != NULL) *count = hb_view_len(view);
  return view->buf->data;
}

void *hb_view_write_array(hb_view *view, size_t *count) {
  if (!view->write) {
    if (count != NULL) *count = 0;
    return NULL;
  }
  if (count != NULL) *count = hb_view_len(view);
  return view->buf->data;
}

const uint8_t *hb_view_read_bytes(hb_view *view, size_t *nbytes) {
  if (nbytes != NULL) *nbytes = view->buf->len;
  return view->buf->data;
}

uint8_t *hb_view_write_bytes(hb_view *view, size_t *nbytes) {
  if (!view->write) {
    if (nbytes != NULL) *nbytes = 0;
    return NULL;
  }
  if (nbytes != NULL) *nbytes = view->buf->len;
  return view->buf->data;
}

const void *hb__view_array_checked(hb_view *view, size_t size, size_t *count,
                                   int write) {
  if (size != view->size) {
    if (count != NULL) *count = 0;
    return NULL;
  }
  return write ? hb_view_write_array(view, count)
               : hb_view_read_array(view, count);
}

int hb_view_append_bytes(hb_view *view, const void *src, size_t n) {
  if (!view->write) return HB_ESTATE;
  if (src == NULL && n > 0) return HB_EINVAL;
  return hb__put_bytes(view->buf, src, n);
}

int hb_view_append_all(hb_view *view, const void *elems, size_t count) {
  if (!view->write) return HB_ESTATE;
  if (elems == NULL && count > 0) return HB_EINVAL;
  if (hb_view_len(view) * view->size != view->buf->len) return HB_EINVAL;
  if (count > (size_t)PTRDIFF_MAX / view->size) return HB_ERANGE;
  return hb__put_bytes(view->buf, elems, count * view->size);
}

int hb_view_append(hb_view *view, const void *elem) {
  if (view->write && elem == NULL) return HB_EINVAL;
  return hb_view_append_all(view, elem, 1);
}

size_t hb_view_bytes_written(const hb_view *view) {
  return view->buf->len - view->start_len;
}
