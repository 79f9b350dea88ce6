/*
 * bias.c -- the bias: a buffer only one thread visits costs that thread
 * no atomic read-modify-write per one-call visit.
 *
 * BIAS
 *
 *   Most buffers are only ever visited by one thread, and there even the
 *   two atomic instructions of an uncontended visit are most of its cost.
 *   So the first thread to make a one-call visit (hb_read_now /
 *   hb_write_now) on a buffer gets the buffer biased to it, if nothing of
 *   the buffer is live then, as the JVM once biased its monitors: it
 *   claims bias_owner by CAS, then sets BIASED in the lock word by CAS,
 *   and every other caster's fast path fails on BIASED (hb__bias_try).
 *   The biased thread's one-call visits then take no atomic RMW
 *   (hb__visit_biased, src/bias.h):
 *
 *     store held = READ or WRITE; compiler barrier; load the lock word:
 *     BIASED still set -> run the callback; store held = 0 (RELEASE);
 *     compiler barrier; load the lock word: BIASED still set -> done.
 *
 *   Any other cast (another thread's, or a caller-owned visitor of the
 *   biased thread's own, whose driver may be anywhere) revokes the bias
 *   for good, under the mutex (hb__unbias): it clears BIASED and sets
 *   WAITERS in one CAS, runs membarrier(2) -- a full barrier on every
 *   thread of the process, so the biased thread's store-then-load above
 *   is ordered as if it had a fence of its own -- and then reads held.
 *   Either the biased thread's load saw BIASED gone, or its store is
 *   visible to the revoker.  If held is set, the revoker adds that hold to
 *   the lock word as a granted ticket ("moved"); then it publishes its
 *   decision in bias_decision.  A biased thread that sees BIASED gone
 *   waits for the decision (microseconds, hb__bias_decision): on "moved"
 *   it holds a real ticket, and gives it back with an ordinary release,
 *   which dispatches whoever queued meanwhile; otherwise it takes the
 *   shared path like anybody.
 *
 *   Order is kept: a visit the revoker saw is ahead of the revoker's cast,
 *   one it did not see comes after it, through the lock word.  A buffer is
 *   never biased again once revoked.  Biased visits push no deadlock
 *   frame; hb__inside_visit_of reads held instead.  Off under
 *   ThreadSanitizer (it cannot see membarrier's ordering) and where
 *   membarrier is missing; a debug build's direct-mode checks and hb_free
 *   read held too.  tests/model/bias.pml model-checks the protocol with
 *   store buffers (`make model`).
 */
#include "bias.h"

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

bool hb__bias_shared(const hb__buf *e) {
  return __atomic_load_n(&e->bias_owner, __ATOMIC_RELAXED) == HB__BIAS_SHARED;
}

/* The test hooks' ACQUIRE loads pair with the RELEASE sides of
 * hb__bias_try's CAS, hb__unbias's CAS and its exchange of the decision. */
bool hb__is_biased(const hb_buf *b) {
  return (__atomic_load_n(&b->lock, __ATOMIC_ACQUIRE) & HB__W_BIASED) != 0;
}

bool hb__bias_moved(const hb_buf *b) {
  const hb__buf *e = hb__cext(b);
  return (__atomic_load_n(&e->bias_decision, __ATOMIC_ACQUIRE) &
          HB__DECIDE_MASK) == HB__DECIDE_MOVED;
}

/* Called by a one-call visit that finds bias_owner NULL.  The owner is
 * claimed first and BIASED set second, so a revoker (who acts only on
 * BIASED) always finds the owner's token.  Two atomic operations, once per
 * buffer; racing callers lose the first and take the shared path. */
void hb__bias_try(hb__buf *e) {
  uint64_t *lock = &e->pub.lock;
  const void *none = NULL;
  if (!__atomic_compare_exchange_n(&e->bias_owner, &none, hb__self(), false,
                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    return;
  __atomic_store_n(&e->bias_thread, hb__self(), __ATOMIC_RELAXED);
  hb__ever_biased = true; /* hb__inside_visit_of must look at held now */
  uint64_t w = __atomic_load_n(lock, __ATOMIC_RELAXED);
  /* ACQUIRE: pairs with the RELEASE of the last ticket's hb__release, so
   * the biased visits see what earlier visits wrote.  RELEASE: pairs with
   * hb__unbias's CAS, which then sees bias_owner and bias_thread. */
  bool ok = HB__BIAS_ON && !(w & HB__W_LIVE) && hb__asym_fence_ready() &&
            __atomic_compare_exchange_n(lock, &w, w | HB__W_BIASED, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
  if (!ok) __atomic_store_n(&e->bias_owner, HB__BIAS_SHARED, __ATOMIC_RELAXED);
}

/* WAITERS goes up with BIASED's fall, so no caster takes the fast path
 * before the biased thread's hold, if any, is in the lock word. */
void hb__unbias(hb__buf *e) {
  uint64_t *lock = &e->pub.lock;
  uint64_t w = __atomic_load_n(lock, __ATOMIC_RELAXED);
  /* ACQUIRE: pairs with hb__bias_try's CAS (the owner's token).  RELEASE:
   * pairs with the biased thread's ACQUIRE load of the lock word in
   * hb__visit_biased, which finds BIASED gone. */
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
  /* ACQUIRE: pairs with hb__visit_biased's RELEASE store of held = 0, so a
   * finished biased visit's writes are seen by the visits after ours. */
  uint32_t held = __atomic_load_n(&e->pub.held, __ATOMIC_ACQUIRE);
  /* The moved ticket: the biased thread gives it back with hb__release_now,
   * whose RELEASE pairs with the next grant's ACQUIRE, as for any ticket. */
  if (held != 0)
    __atomic_fetch_add(lock, hb__mode_of(held == HB__HELD_WRITE)->ticket,
                       __ATOMIC_ACQ_REL);
  /* RELEASE: pairs with hb__bias_decision's ACQUIRE loads, so a biased
   * thread told MOVED finds its ticket in the lock word. */
  uint32_t old = __atomic_exchange_n(
      &e->bias_decision, held != 0 ? HB__DECIDE_MOVED : HB__DECIDE_KEPT,
      __ATOMIC_RELEASE);
  if (old & HB__DECIDE_SLEEPER) hb__futex_wake_all(&e->bias_decision);
  /* The queue is empty (while BIASED, every slow-path caster came here
   * first): WAITERS has done its job.  RELEASE pairs with the next fast
   * path's ACQUIRE CAS, as hb__dispatch's clearing does. */
  __atomic_fetch_and(lock, ~HB__W_WAITERS, __ATOMIC_RELEASE);
}

/* Published within microseconds, under the mutex the revoker holds. */
static bool hb__decided(uint32_t d) {
  return (d & HB__DECIDE_MASK) != HB__DECIDE_PENDING;
}

uint32_t hb__bias_decision(hb__buf *e) {
  return hb__settle_until(&e->bias_decision, HB__DECIDE_SLEEPER,
                          hb__decided) &
         HB__DECIDE_MASK;
}

/* stream: never bias b from now on (under mu): end a bias it has, and
 * mark it shared if it was never tried.  A stream's writes must commit
 * through hb__release (src/stream.c), which a biased write skips. */
void hb__bias_forbid(hb__buf *e) {
  if (__atomic_load_n(&e->pub.lock, __ATOMIC_RELAXED) & HB__W_BIASED)
    hb__unbias(e);
  const void *none = NULL;
  __atomic_compare_exchange_n(&e->bias_owner, &none, HB__BIAS_SHARED, false,
                              __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}
