/*
 * next.h -- the NEXT slot's calls (src/next.c has the protocol, rules 1 to
 * 7, and src/park.c the spins), for the one-call waiter and for a
 * caller-owned visitor.  Included by visit.h, at its end; include visit.h,
 * not this.
 */
#ifndef HB_NEXT_H
#define HB_NEXT_H

#include "visit.h"

/* The NEXT slot (src/park.c, src/next.c): spin within the park budget
 * until the lock word's EPOCH differs from e0 (true), or give up past it
 * (false); then
 * sleep until a PARKED visitor's turn came, without spinning again.
 * hb__next_wait: a one-call visit whose fast path failed waits in the
 * NEXT slot; false, having taken nothing, if it may not (queue instead),
 * true once its ticket is granted. */
bool hb__spin_epoch(const uint64_t *lock, uint64_t e0, const hb__buf *e,
                    uint64_t *waited_ns);
void hb__sleep_turn(hb_visitor *v);
bool hb__next_wait(hb__buf *e, bool write);

/* A caller-owned visitor in the NEXT slot (src/next.c, rules 6 and 7).
 * hb__next_cast: v (its fields filled, state s = CAST | mode, not yet
 * stored) takes the slot, or the plain grant if the lock was freed
 * meanwhile, and its state is stored; false, with nothing taken or
 * stored, if it may not (the ordinary slow cast then).
 * hb__next_demote: under the mutex, v's state in *s with NEXT: move v to
 * the queue's head, or grant it if the hand-off came; *s is updated.
 * hb__next_spin: hb_block_on's spin for a NEXT visitor, true once EPOCH
 * flipped or NEXT left v's state, false past the budget.
 * hb__next_drive: hb_block_on on a NEXT visitor announced PARKED.
 * hb__next_resolve: has a NEXT visitor's turn come?  Demote it: run it if
 * so (a driver's status), else HB_EAGAIN with v queued. */
bool hb__next_cast(hb__buf *e, hb_visitor *v, uint32_t s);
void hb__next_demote(hb__buf *e, hb_visitor *v, uint32_t *s);
bool hb__next_spin(const hb_visitor *v, const hb__buf *e,
                   uint64_t *waited_ns);
int hb__next_drive(hb_visitor *v, int *result);
int hb__next_resolve(hb_visitor *v, int *result);

/* The EPOCH a NEXT visitor's cast saw, from its state s (NEXT_E). */
static inline uint64_t hb__next_e0(uint32_t s) {
  return (s & HB__V_NEXT_E) ? HB__W_EPOCH : 0;
}

/* Has the hand-off come for v, a NEXT visitor in state s: has EPOCH moved
 * from what its cast saw?  ACQUIRE pairs with the hand-off's RELEASE RMW.
 * Only while v is live: it reads v's buffer. */
static inline bool hb__next_came(const hb_visitor *v, uint32_t s) {
  const hb_buf *b = __atomic_load_n(&v->buf, __ATOMIC_RELAXED);
  return (__atomic_load_n(&b->lock, __ATOMIC_ACQUIRE) & HB__W_EPOCH) !=
         hb__next_e0(s);
}

#endif /* HB_NEXT_H */
