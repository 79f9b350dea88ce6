/*
 * bias.h -- the bias (src/bias.c has the protocol and its comment): the
 * claim and the revocation, and, inline here because it is hb_*_now's hot
 * path, the biased thread's own one-call visit.
 */
#ifndef HB_BIAS_H
#define HB_BIAS_H

#include "visit.h"

/* Bias the buffer to this thread if nothing of it is live and it was never
 * biased or shared. */
void hb__bias_try(hb__buf *e);

/* End the bias (under mu, BIASED set): from now on the buffer is shared. */
void hb__unbias(hb__buf *e);

/* stream: never bias e again (under mu; src/stream.c). */
void hb__bias_forbid(hb__buf *e);

/* The biased thread found BIASED gone: wait for the revoker's decision,
 * HB__DECIDE_KEPT or HB__DECIDE_MOVED. */
uint32_t hb__bias_decision(hb__buf *e);

/* A one-call visit by the thread b is biased to.  Returns false, having
 * done nothing, when the visit must take the shared path instead. */
/* Always inlined: out of line (as GCC chose once hb__visit_now's four
 * copies grew) it costs the biased W4 visit ~2 ns of its ~11. */
static inline __attribute__((always_inline)) bool
hb__visit_biased(hb_buf *b, const hb_type *t, bool write, size_t reserve,
                 hb_visit_fn fn, void *ctx, int *result) {
  hb__buf *e = hb__ext(b);
  if (__atomic_load_n(&b->held, __ATOMIC_RELAXED) != 0)
    return false; /* nested in our own visit: the shared path sorts it out */
  __atomic_store_n(&b->held, hb__mode_of(write)->held, __ATOMIC_RELAXED);
  /* A compiler barrier only: the revoker's fence does the rest. */
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
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
  int r = hb__run_fn(b, t, write, reserve, fn, ctx, false, 0);
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

#endif /* HB_BIAS_H */
