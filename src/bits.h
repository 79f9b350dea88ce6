/*
 * bits.h -- every bit of the visitor side's atomic words, one per line:
 * the lock word (hb_buf.lock), a visitor's state (hb_visitor.state), and
 * the bias words (hb_buf.held, hb__buf.bias_decision).  Derived masks
 * follow each group.  Who sets which bit, and how, is in the comments of
 * src/lock.c (the lock word), src/visitor.c (the state: its transition
 * table) and src/bias.c (the bias).
 */
#ifndef HB_BITS_H
#define HB_BITS_H

#include "hyperbuf.h"

#include <stdint.h>

/* ---- the lock word: hb_buf.lock (64 bits) ---------------------------------
 */
#define HB__W_WRITER (UINT64_C(1) << 0)  /* a write ticket is granted */
#define HB__W_WAITERS (UINT64_C(1) << 1) /* the wait queue is not empty */
#define HB__W_READER (UINT64_C(1) << 2)  /* one granted read ticket: the unit
                                            of the count in bits 2..28 */
#define HB__W_RBIAS (UINT64_C(1) << 29)  /* read-biased: one-call readers
                                            announce themselves in the
                                            reader table (src/rbias.c), not
                                            here; live, and no writer */
#define HB__W_NEXT (UINT64_C(1) << 30)   /* a one-call waiter holds the next
                                            turn, ahead of the queue (the
                                            NEXT slot, src/next.c) */
#define HB__W_NEXT_W (UINT64_C(1) << 31) /* ... and it wants to write (set
                                            only beside NEXT) */
#define HB__W_BIASED (UINT64_C(1) << 32) /* biased to one thread (bias.c) */
#define HB__W_EPOCH (UINT64_C(1) << 33)  /* flips at every hand-off to the
                                            NEXT waiter: its grant signal */
#define HB__W_RWANT (UINT64_C(1) << 34)  /* read-mostly: a one-call reader
                                            arms RBIAS (src/rbarm.c) */
#define HB__DONE_SHIFT 35                /* bits 35..63: finished reads */
#define HB__W_DONE (UINT64_C(1) << HB__DONE_SHIFT) /* one finished read visit:
                                            the unit of a wrapping count for
                                            hb_stats (carries: read_wraps) */

/* Derived masks. */
#define HB__W_READERS ((UINT64_C(1) << 29) - HB__W_READER) /* bits 2..28 */
#define HB__W_READERS_FULL (UINT64_C(1) << 28) /* the count's top bit: 2^26
                                        read tickets granted.  In the read
                                        mode's conflict mask, so that more
                                        readers wait instead of carrying
                                        the count into RBIAS at 2^27 (about
                                        13 GB of visitors: possible) */
#define HB__W_NEXT_BITS (HB__W_NEXT | HB__W_NEXT_W)
#define HB__W_LIVE (HB__W_WRITER | HB__W_WAITERS | HB__W_READERS |           \
                    HB__W_RBIAS | HB__W_NEXT_BITS) /* zero: no visitor is
                                        live (hb_free, debug checks of
                                        direct mode) */
#define HB__W_MILESTONE (UINT64_C(255) << HB__DONE_SHIFT) /* all clear after
                                        a read's release: every 256th read
                                        (the carry among them), when the
                                        read bias's want is decided */

/* The public header's inline direct-mode checks test the same live half. */
_Static_assert(HB__LIVE_MASK == HB__W_LIVE,
               "HB__LIVE_MASK (hyperbuf.h) must be the lock word's live half");
_Static_assert(HB__W_READERS == UINT64_C(0x1ffffffc),
               "the read count fills bits 2..28");
_Static_assert(HB__W_LIVE == UINT64_C(0xffffffff),
               "the live half is the word's low 32 bits");

/* ---- a visitor's state: hb_visitor.state (32 bits) ------------------------
 */
#define HB__V_PHASE 0xfu             /* mask: bits 0..3, the phase, one of: */
#define HB__V_IDLE 0u                /*   never cast (all-zero storage) */
#define HB__V_CAST 1u                /*   holds a ticket, granted or not */
#define HB__V_RUNNING 2u             /*   claimed by the thread running it */
#define HB__V_RAN 3u                 /*   finished: it ran */
#define HB__V_CANCELLING 4u          /*   claimed by hb_cancel, still busy */
#define HB__V_CANCELLED 5u           /*   finished: it did not run */
#define HB__V_GRANTED (1u << 4)      /* its turn has come */
#define HB__V_WRITE (1u << 5)        /* a write ticket */
#define HB__V_DRIVER (1u << 6)       /* hb_poll is registering: hb_cancel
                                        waits for it to leave */
#define HB__V_WAKER (1u << 7)        /* v->waker is to be called (under mu) */
#define HB__V_DETACHED (1u << 8)     /* run by whoever grants it */
#define HB__V_WAKING (1u << 9)       /* its waker is being called: wait */
#define HB__V_SLEEPER (1u << 10)     /* somebody sleeps on the state word */
#define HB__V_PARKED (1u << 11)      /* its driver waits on the state word
                                        (hb_cancel waits for it to leave) */
#define HB__V_STREAM (1u << 12)      /* stream: waits in its stream's list
                                        for data, not in the FIFO queue
                                        (src/stream.c); changed under mu */
#define HB__V_NEXT (1u << 13)        /* waits in the lock word's NEXT slot,
                                        not in the FIFO queue (src/next.c) */
#define HB__V_NEXT_E (1u << 14)      /* with NEXT: the EPOCH bit its cast
                                        saw when it took the slot */

/* Derived masks. */
#define HB__V_PRESENT (HB__V_DRIVER | HB__V_PARKED) /* a driver that will
                                        still look at v: a cancel returns
                                        only once both are clear */
#define HB__V_GRANT_PARKED (HB__V_GRANTED + HB__V_RUNNING - HB__V_CAST)
                                     /* added by the grant of a PARKED
                                        visitor: GRANTED, and CAST ->
                                        RUNNING (its driver's claim) */
#define HB__V_BUSY (HB__V_PRESENT | HB__V_WAKING) /* somebody is still on v:
                                        a finished visitor is castable only
                                        without these */

/* ---- the bias: hb_buf.held and hb__buf.bias_decision (32 bits each) -------
 */
#define HB__HELD_READ 1u             /* held: a biased read visit runs */
#define HB__HELD_WRITE 2u            /* held: a biased write visit runs */
#define HB__DECIDE_PENDING 0u        /* decision: not yet revoked */
#define HB__DECIDE_KEPT 1u           /* nothing held: the lock word was
                                        right as is */
#define HB__DECIDE_MOVED 2u          /* the holder's ticket was moved into
                                        the lock word */
#define HB__DECIDE_SLEEPER 4u        /* the biased thread sleeps on the
                                        decision word */

/* Derived masks. */
#define HB__DECIDE_MASK 3u           /* the decision without SLEEPER */

#endif /* HB_BITS_H */
