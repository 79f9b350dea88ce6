/*
 * visit.h -- what the visitor-mode sources share: the visitor's state
 * word, the wakelist, this thread's callbacks in flight, and the hot
 * paths every visit takes (inline here, so hb_*_now and the drivers
 * compile as they did when they shared one file).
 *
 * Which protocol lives where:
 *   src/lock.c     the lock word, the wait queue, grant/dispatch/release,
 *                  the wakelist (THE LOCK, WAKING)
 *   src/word.h     the ticket modes and the lock word's uncontended grant
 *                  and release (inline, included below the wakelist)
 *   src/rbias.c    the read bias: one-call readers in a reader table
 *   src/rbarm.c    ... when a buffer is read-mostly, and arming it
 *   src/next.c     the NEXT slot: a one-call waiter or a caller-owned
 *                  visitor in the lock word (its calls: src/next.h,
 *                  included at the end of this header)
 *   src/run.h      running a visit under its ticket (inline, included
 *                  at the end of this header)
 *   src/bias.c     claiming and revoking the bias (BIAS); the biased
 *                  thread's side is hb__visit_biased in src/bias.h
 *   src/cast.c     hb_cast / hb_cast_mut, recognising any storage
 *   src/visitor.c  the visitor's life cycle: arm, the drivers
 *                  hb_try_visit / hb_poll, and the state transition table
 *   src/detached.c detached mode and the flush (hb__flush_slow, done,
 *                  hb_visit_detached; RE-ENTRANCY)
 *   src/cancel.c   hb_cancel and settling (hb__settle; SHUTDOWN)
 *   src/park.c     hb_block_on and the PARKED wait for a turn
 *   src/now.c      hb_read_now / hb_write_now, the one-call form
 *   src/view.c     what a callback does with its hb_view
 *   src/sync.c     the futex, the mutex, the sleep-on-a-word loop
 */
#ifndef HB_VISIT_H
#define HB_VISIT_H

#include "internal.h"
#include "stream.h"

#include <stdbool.h>

/* No SLP vectorisation in a function of the caller-owned visit (GCC 12+
 * does it at -O2): it builds pairs of 8-byte fields (the cast's type, the
 * view) in vector registers, for one 16-byte store where two would do,
 * at three instructions more each.  Measured on the W4 loop (AMD EPYC,
 * one process running both builds interleaved): hb_cast's and the write
 * run's costs a pair 0.6 ns; the read run's, no difference either way. */
#if defined(__GNUC__) && !defined(__clang__)
#define HB__NO_SLP __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define HB__NO_SLP
#endif

/* ---- a visitor's state (its bits: src/bits.h) -----------------------------
 *
 * Every load of the state is ACQUIRE and every store RELEASE: a store
 * publishes what was written before it (v->waker, v->result, the links)
 * to the next ACQUIRE load of the state.  Which store pairs with which
 * load is the "pairs with" column of the transition table at the top of
 * src/visitor.c.
 */
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

/* ---- recognising a visitor -----------------------------------------------
 *
 * Any storage may be cast, initialised or not, so the library must not take
 * leftover bytes for a live visitor.  Every cast stores v's cookie, a hash
 * of v's own address; the state word counts only next to the right cookie,
 * and otherwise v is idle.  Leftover bytes fake a visitor one time in 2^32
 * (and a visitor moved or copied elsewhere is no visitor there).  Zero is
 * never a cookie, so all-zero storage is idle too.
 */
static inline uint32_t hb__cookie(const hb_visitor *v) {
  /* Odd, and v is at least 2-aligned: never 0.  An XOR, not a hash: one
   * instruction on every call's path, and as unlikely as any 32-bit value
   * to be what leftover bytes hold there. */
  return (uint32_t)(uintptr_t)v ^ UINT32_C(0x9e3779b9);
}

/* Memcheck (valgrind) and MemorySanitizer report any decision taken on
 * storage nobody wrote; deciding that it is no visitor is the point of a
 * cast, so hb_cast tells them the state and cookie words are defined
 * (src/visitor.c).  The other calls do not: on storage never cast they are
 * the caller's mistake, which the report then shows. */
/* Hidden, so that hb_cast reads it with one RIP-relative load, not
 * through the GOT (as hb__alloc_standard, src/internal.h); pointer-wide,
 * so that hb_cast tests it or'ed with the buffer's stream pointer. */
extern uintptr_t hb__on_valgrind __attribute__((visibility("hidden")));
void hb__defined_slow(const hb_visitor *v);
#if defined(__has_feature)
#if __has_feature(memory_sanitizer)
#define HB__MSAN 1
#endif
#endif
static inline void hb__defined(const hb_visitor *v) {
#ifdef HB__MSAN
  hb__defined_slow(v);
#else
  if (HB__UNLIKELY(hb__on_valgrind)) hb__defined_slow(v);
#endif
}

/* v's state as a public call sees it: 0 (idle) unless v carries its
 * cookie (on storage never written, call hb__defined first).  The state
 * is loaded first (ACQUIRE), so the cookie read after it is at least as
 * new as the cast that published that state (the cast stores the cookie
 * before its RELEASE store of the state). */
static inline uint32_t hb__vstate(const hb_visitor *v) {
  uint32_t s = __atomic_load_n(&v->state, __ATOMIC_ACQUIRE);
  if (HB__UNLIKELY(__atomic_load_n(&v->cookie, __ATOMIC_RELAXED) !=
                   hb__cookie(v)))
    return HB__V_IDLE;
  return s;
}

/* ---- what to do once the mutex is released (src/lock.c) -------------------
 *
 * The dispatcher grants under the mutex and leaves here what the grants
 * call for, to be done after unlocking: visitors whose wakers are due
 * (marked WAKING) and detached visitors to run (claimed RUNNING), each a
 * FIFO chain in ticket order through the visitors' own ->next links,
 * which a granted visitor no longer needs for the queue.  No allocation,
 * no bound.
 *
 * A flush in progress on this thread is on the thread's stack of flushes
 * (hb__flushing, innermost first): a call that finds a visitor WAKING
 * looks there first, because the waker it would wait for may be one this
 * very thread is due to call (it then calls it at once) or is calling
 * (hb__calls: then waiting would be waiting for itself).
 */
typedef struct hb__wakelist {
  hb_visitor *wake, *wake_tail;         /* WAKING, wakers due */
  hb_visitor *detached, *detached_tail; /* claimed RUNNING */
  struct hb__wakelist *up; /* the flush this one runs inside, if any */
} hb__wakelist;

#define HB__WAKELIST_INIT(wl) ((wl).wake = NULL, (wl).detached = NULL)

/* A waker call in progress on this thread (hb__calls, innermost first).
 * A re-entrant hb_cancel of that very visitor takes the call's last touch
 * over: it sets v to NULL, and the caller leaves the visitor alone. */
typedef struct hb__calling {
  hb_visitor *v;
  struct hb__calling *up;
} hb__calling;

/* ---- callbacks in flight on this thread, for deadlock detection (now.c) ---
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
extern _Thread_local hb__frame *hb__frames HB__TLS_MODEL;

/* The flushes (src/detached.c) and waker calls in progress on this thread. */
extern _Thread_local hb__wakelist *hb__flushing HB__TLS_MODEL;
extern _Thread_local hb__calling *hb__calls HB__TLS_MODEL;

/* This thread's token for the bias: the address of a thread-local, or on
 * x86-64 the thread pointer, as unique among live threads and one load
 * (%fs:0, which the ABI makes hold its own address) where the
 * thread-local's address is two (its offset from the GOT, then the add). */
extern _Thread_local char hb__me HB__TLS_MODEL;
#if defined(__x86_64__) && defined(__has_builtin)
#if __has_builtin(__builtin_thread_pointer)
#define HB__SELF_IS_TP 1
#endif
#endif
static inline const void *hb__self(void) {
#ifdef HB__SELF_IS_TP
  return __builtin_thread_pointer();
#else
  return &hb__me;
#endif
}

/* Is this thread inside a callback on b? (src/now.c)  hb__inside_frame_of
 * looks only at this thread's frames (biased visits push none), and reads
 * nothing of b; hb__inside_visit_of also finds a biased visit, reading b
 * if this thread ever held a bias (hb__ever_biased). */
extern _Thread_local bool hb__ever_biased HB__TLS_MODEL;
bool hb__inside_frame_of(const hb_buf *b);
bool hb__inside_visit_of(const hb_buf *b);

/* ---- the ticket modes and the lock word's fast paths: src/word.h ---------
 */
#include "word.h"

/* ---- running a visit: src/run.h, included at the end ----------------------
 */

/* Try to run an armed visitor whose turn has come (src/visitor.c).
 * Returns HB_EAGAIN when it has not come, or a final status. */
int hb__try_run(hb_visitor *v, int *result);

/* Run the detached visitors collected in wl, and call the wakers, until
 * nothing is left (src/detached.c). */
void hb__flush_slow(hb__wakelist *wl);

/* hb__flush_slow, calling a cancelled detached visitor dv's done (dc)
 * right after the wakers the cancel made due (src/detached.c). */
typedef struct {
  hb_buf *buf;
  hb_done_fn done;
  void *arg;
} hb__done_call;
void hb__flush_done(hb__wakelist *wl, hb_visitor *dv, const hb__done_call *dc);

static inline void hb__flush(hb__wakelist *wl) {
  /* Every caller set both fields (HB__WAKELIST_INIT, then maybe the
   * dispatcher); cppcheck 2.10's cross-file check misses the macro's
   * stores once hb__run_here initialises its wakelist on one branch only. */
  // cppcheck-suppress ctuuninitvar
  if (wl->wake != NULL || wl->detached != NULL) hb__flush_slow(wl);
}

/* ---- waiting (src/park.c) -------------------------------------------------
 */

/* Wait until a PARKED visitor's turn has come, or it was cancelled.
 * Returns how long it waited, in ns, for hb__note_wait -- which only the
 * driver that then claims the visit may call: a cancelled visitor's buffer
 * may be freed. */
uint64_t hb__wait_turn(hb_visitor *v, hb__buf *e);
void hb__note_wait(hb__buf *e, uint64_t waited_ns);

/* ---- arming, settling (src/visitor.c, src/cancel.c) ----------------------
 */

static inline int hb__arm(hb_visitor *v, size_t reserve, hb_visit_fn fn,
                          void *ctx) {
  if (v == NULL) return HB_EINVAL;
  uint32_t s = hb__vstate(v);
  if (hb__phase(s) != HB__V_CAST || v->armed) return HB_ESTATE;
  if (fn == NULL) return HB_EINVAL;
  if (reserve > (size_t)PTRDIFF_MAX) return HB_ERANGE;
  v->fn = fn;
  v->ctx = ctx;
  v->reserve = reserve;
  /* Not 1 but v's cookie (never 0), which v carries (hb__vstate said
   * so): one compare then proves both that v is armed and that it is a
   * visitor at this address (hb__try_run_here). */
  v->armed = hb__cookie(v);
  return HB_OK;
}

static inline bool hb__unsettled(uint32_t s) {
  return hb__phase(s) == HB__V_CANCELLING || (s & HB__V_WAKING);
}
static inline bool hb__not_cancelling(uint32_t s) {
  return hb__phase(s) != HB__V_CANCELLING;
}
/* A cancel's wait for the cancelled visit's driver (hb_cancel): over once
 * that driver has let go -- or once v is cast again, which its owner may do
 * as soon as the driver has let go.  What a new visit's driver announces
 * is not ours to wait for, and sleeping on it (SLEEPER set on the new
 * visit's state) no one would wake: a driver drops SLEEPER without a wake
 * when its grant claims v (hb__drive_present).  Found by an adversarial
 * program that cancels other threads' visitors. */
static inline bool hb__absent(uint32_t s) {
  return !(s & HB__V_PRESENT) || hb__phase(s) != HB__V_CANCELLED;
}
uint32_t hb__wait_settled(hb_visitor *v); /* sleep until settled */
/* Settle v, unsettled in s, unless *mine: this thread calls v's waker. */
uint32_t hb__settle(hb_visitor *v, uint32_t s, hb__calling **mine);

/* ---- re-entrant calls (src/detached.c, src/visitor.c) ---------------------
 */

/* Would waiting here wait for this very thread?  Inside a waker (which
 * must not block) always; inside a callback or done on b, for b. */
static inline bool hb__waiting_deadlocks(const hb_buf *b) {
  return hb__calls != NULL || hb__inside_visit_of(b);
}

/* Before this thread waits: run the detached visitors its flushes hold
 * claimed (the wait may be for them).  src/detached.c */
void hb__run_pending(void);

/* Drive v, which carries this driver's `flag` (PARKED or DRIVER) and is
 * no longer queued: claim and run it, or see it cancelled and leave.
 * Clearing the flag is the driver's last touch of v.  waited_ns: to note
 * for the buffer once the claim is won. */
int hb__drive_present(hb_visitor *v, uint32_t flag, uint64_t waited_ns,
                      int *result);

/* Run v, claimed RUNNING by this driver (state s), and do what its release
 * unblocked (src/visitor.c). */
int hb__run_claimed_here(hb_visitor *v, uint32_t s, int *result);

/* Set `flag` on v while it is queued, by CAS without the mutex; the
 * announcement that keeps a cancel from returning (and the buffer from
 * being freed) until the flag is cleared.  `clear` goes in the same CAS.
 * Returns false, having done nothing, if v is not queued. */
bool hb__announce(hb_visitor *v, uint32_t clear, uint32_t flag);

#include "run.h"  /* running a visit: uses all of the above */
#include "next.h" /* the NEXT slot: likewise */

#endif /* HB_VISIT_H */
