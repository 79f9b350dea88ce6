/*
 * rbias.h -- the read bias (src/rbias.c has the protocol and its
 * comment): the one-call read through the reader table, the revocation
 * every writer makes under the mutex, and the calls of hb_free, the
 * checked build and hb_stream_open.
 */
#ifndef HB_RBIAS_H
#define HB_RBIAS_H

#include "visit.h"

/* A one-call read (hb_read_now, hb_try_read_now: `wait`) that saw RWANT:
 * through the reader table if the bias is armed or can be, else the
 * ordinary shared path (hb__now_locked).  Returns what hb_read_now does. */
int hb__rbias_read(hb_buf *b, const hb_type *t, hb_visit_fn fn, void *ctx,
                   int *result, bool wait);

/* The ordinary shared one-call path without the read bias: the fast
 * grant, else hb__now_slow's wait (or HB_EAGAIN), then the visit
 * (src/now.c). */
int hb__now_locked(hb_buf *b, const hb_type *t, bool write, size_t reserve,
                   hb_visit_fn fn, void *ctx, int *result, bool wait);

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

#endif /* HB_RBIAS_H */
