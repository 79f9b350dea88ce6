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

/* The one-call visit's rare paths (src/now.c), each called last, so that
 * the fast path keeps nothing live across the call.  hb__now_shared: the
 * shared path (the fast grant, else wait or, without `wait`, HB_EAGAIN),
 * and the visit.  The biased thread found BIASED gone:
 * hb__biased_revoked, before its visit: wait for the revoker's decision;
 * on "moved" run the visit on the ticket moved to it and give that back,
 * else take the shared path; hb__biased_after, after it (*result stored):
 * give the moved ticket back, or count the read as a biased one.
 * hb__biased_grow: a biased write whose room must grow first, from there
 * on (held set, BIASED seen). */
int hb__now_shared(hb_buf *b, const hb_type *t, bool write, size_t reserve,
                   hb_visit_fn fn, void *ctx, int *result, bool wait);
int hb__biased_revoked(hb_buf *b, const hb_type *t, bool write,
                       size_t reserve, hb_visit_fn fn, void *ctx,
                       int *result, bool wait);
int hb__biased_after(hb_buf *b, bool write);
int hb__biased_grow(hb_buf *b, const hb_type *t, size_t reserve,
                    hb_visit_fn fn, void *ctx, int *result);

/* A one-call visit's frame: the view, the deadlock frame (on the shared
 * path) and what is needed only once fn has returned.  All of it comes
 * back from here after fn, and so does b (view.buf): kept in registers
 * across the call instead, b, result and &hb__frames cost the visit a
 * callee-saved register each -- a move, a push and a pop -- and the
 * biased path, in the same function, pays for the shared path's too. */
typedef struct {
  hb_view view;
  hb__frame frame;
  /* &hb__frames (a load from the GOT and an add): stored here, it costs
   * the shared W4 pair 2 instructions more than in a register, and saves
   * the biased pair the 2 of that register's push and pop */
  hb__frame **frames;
  int *result;
} hb__now_frame;

/* Run fn on a view of *b built in f, with the deadlock frame if `track`;
 * returns what fn returned, and *b read back from the view (one load:
 * the counter's store may alias the frame, so every read of f->view.buf
 * after it would be a load of its own). */
static inline __attribute__((always_inline)) int
hb__now_call(hb__now_frame *f, hb_buf **pb, const hb_type *t, bool write,
             hb_visit_fn fn, void *ctx, bool track) {
  hb_buf *b = *pb;
  hb__view_init(&f->view, b, t, write);
  if (track) {
    f->frames = &hb__frames;
    f->frame = (hb__frame){b, *f->frames};
    *f->frames = &f->frame;
  }
  int r = fn(&f->view, ctx);
  if (track) *f->frames = f->frame.prev;
  *pb = b = f->view.buf;
  hb__after_fn(b, &f->view, write, r);
  return r;
}

/* A one-call write's room is short of reserve.  len + reserve cannot
 * wrap: len <= cap <= PTRDIFF_MAX (an invariant, src/check.c), and
 * hb__visit_now refused a reserve above PTRDIFF_MAX.  One instruction
 * fewer than cap - len < reserve. */
static inline bool hb__room_short(const hb_buf *b, size_t reserve) {
  return b->len + reserve > b->cap;
}

/* The end of a biased visit: fn returned r. */
static inline __attribute__((always_inline)) int
hb__biased_end(hb_buf *b, bool write, int r, int *result) {
  if (result != NULL) *result = r;
  /* RELEASE: a revoker that reads 0 here sees everything the visit did. */
  __atomic_store_n(&b->held, 0, __ATOMIC_RELEASE);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (HB__UNLIKELY(!(__atomic_load_n(&b->lock, __ATOMIC_RELAXED) &
                     HB__W_BIASED)))
    return hb__biased_after(b, write); /* revoked during the visit */
  if (!write) HB__COUNT(hb__ext(b)->bias_reads);
  return HB_OK;
}

/* A one-call visit by the thread b is biased to (`wait` as in
 * hb__now_shared, should the visit have to take the shared path). */
/* Always inlined: out of line (as GCC chose once hb__visit_now's four
 * copies grew) it cost the biased W4 visit ~2 ns, when the visit took ~11. */
static inline __attribute__((always_inline)) int
hb__visit_biased(hb_buf *b, const hb_type *t, bool write, size_t reserve,
                 hb_visit_fn fn, void *ctx, int *result, bool wait) {
  if (__atomic_load_n(&b->held, __ATOMIC_RELAXED) != 0)
    /* nested in our own visit: the shared path sorts it out */
    return hb__now_shared(b, t, write, reserve, fn, ctx, result, wait);
  __atomic_store_n(&b->held, hb__mode_of(write)->held, __ATOMIC_RELAXED);
  /* A compiler barrier only: the revoker's fence does the rest. */
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  /* ACQUIRE: on weakly ordered CPUs the callback's loads stay after it. */
  if (HB__UNLIKELY(!(__atomic_load_n(&b->lock, __ATOMIC_ACQUIRE) &
                     HB__W_BIASED)))
    /* Revoked as we came: either our hold was seen and moved into the
     * lock word (so the ticket is ours), or we go the shared way. */
    return hb__biased_revoked(b, t, write, reserve, fn, ctx, result, wait);
  /* No stream: hb_stream_open, which may only be called while nothing
   * else is done on b, ends the bias for good (hb__bias_forbid) before it
   * sets e->stream, and bias_owner is no longer this thread's from then
   * on.  So neither hb_write_now's HB_ECLOSED check nor the window. */
  if (write && HB__UNLIKELY(hb__room_short(b, reserve)))
    return hb__biased_grow(b, t, reserve, fn, ctx, result);
  hb__now_frame f;
  f.result = result;
  int r = hb__now_call(&f, &b, t, write, fn, ctx, false);
  return hb__biased_end(b, write, r, f.result);
}

#endif /* HB_BIAS_H */
