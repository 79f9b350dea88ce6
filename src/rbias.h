/*
 * rbias.h -- the read bias (src/rbias.c has the protocol and its
 * comment, src/rbarm.c when it is armed): the one-call read through the
 * reader table, the revocation every writer makes under the mutex, and
 * the calls of hb_free, the checked build and hb_stream_open.
 */
#ifndef HB_RBIAS_H
#define HB_RBIAS_H

#include "visit.h"

/* A one-call read (hb_read_now, hb_try_read_now: `wait`) that saw RWANT:
 * through the reader table if the bias is armed or can be, else the
 * ordinary shared path (hb__now_locked).  Returns what hb_read_now does. */
int hb__rbias_read(hb_buf *b, const hb_type *t, hb_visit_fn fn, void *ctx,
                   int *result, bool wait);

/* The ordinary shared one-call read without the read bias: the fast
 * grant, else hb__now_slow's wait (or HB_EAGAIN), then the visit
 * (src/now.c).  With hb__rbias_read's arguments, so that every way to it
 * is a jump, not a call with a frame. */
int hb__now_locked(hb_buf *b, const hb_type *t, hb_visit_fn fn, void *ctx,
                   int *result, bool wait);

/* Revoke the read bias if RBIAS is set (under mu): the readers announced
 * in the table are moved into the lock word as one collective read share,
 * which the last of them gives back.  What the give-back dispatches is
 * left in wl, for the caller to flush after unlocking. */
void hb__rbias_revoke(hb__buf *e, hb__wakelist *wl);

/* hb__rbias_revoke under a mutex of its own, then the flush: a one-call
 * writer's (hb__now_slow). */
void hb__rbias_end(hb__buf *e);

/* stream: revoke, and never arm again (under mu, before e->stream is set;
 * src/stream.c). */
void hb__rbias_forbid(hb__buf *e, hb__wakelist *wl);

/* ---- shared by src/rbias.c (the protocol) and src/rbarm.c (arming) ---- */

/* The line before the first slot: what only the revoker (under mu) and
 * hb_free use. */
typedef struct {
  _Alignas(64) void *raw; /* the allocation the table is in */
  uint64_t sum_seen;      /* the slots' reads at the last revocation */
} hb__rbhead;
_Static_assert(sizeof(hb__rbhead) == sizeof(hb__rbslot), "a line each");
static inline hb__rbhead *hb__rb_head(hb__rbslot *t) {
  return (hb__rbhead *)(void *)t - 1;
}

/* This thread's slot: a multiplicative hash of its token (thread pointers
 * differ by whole stacks, so the low bits alone would collide). */
static inline uint64_t hb__rb_hash(void) {
  return (uint64_t)(uintptr_t)hb__self() * UINT64_C(0x9e3779b97f4a7c15);
}
static inline hb__rbslot *hb__rb_slot(hb__rbslot *t, unsigned shift) {
  return &t[hb__rb_hash() >> shift];
}

/* Set or clear RWANT, a hint (src/rbarm.c). */
void hb__rb_want(hb__buf *e, bool want);

/* R0: a reader saw RWANT without RBIAS: arm the bias where I1 and I3
 * allow, allocating the table the first time (src/rbarm.c). */
void hb__rbias_arm(hb__buf *e);

#endif /* HB_RBIAS_H */
