/*
 * stream.h -- the stream face's internals (src/stream.c: open, close,
 * waiting readers and their grant; src/consumer.c: consumers, the drop
 * and compaction), and the hooks the visitor sources call.  Each hook is
 * one line at its call site, marked "stream:", and costs a load and a
 * branch on a buffer that is not a stream (e->stream == NULL).
 */
#ifndef HB_STREAM_H
#define HB_STREAM_H

#include "internal.h"

#include <stdbool.h>
#include <string.h>

/* HB__V_STREAM (src/bits.h) marks a visitor waiting in its stream's list.
 * Set and cleared under the buffer's mutex, cleared by RMW: a PARKED
 * driver may be setting SLEEPER by CAS meanwhile. */
#include "bits.h"

/* The stream state of a buffer: one allocation, made by hb_stream_open. */
typedef struct hb__stream {
  uint64_t base;   /* offset of hb_data(b)[0]; under the write ticket,
                      read under any ticket */
  uint64_t end;    /* atomic: offset past the last committed byte */
  uint64_t begin;  /* atomic: first stored offset, base + cursor; changed
                      under the write ticket and the mutex */
  uint32_t nwait;  /* atomic: read visitors in the waiting list */
  uint32_t closed; /* atomic: hb_stream_close was called */
  uint32_t full;   /* atomic: a write failed with HB_ENOSPC, room waker due */
  uint32_t nconsumers;       /* under the mutex */
  size_t limit;              /* 0: unbounded */
  hb_visitor *whead, *wtail; /* waiting readers, cast order; under mu */
  hb_consumer *chead;        /* registered consumers; under mu */
  hb_waker room;             /* under mu */
  /* statistics (atomic stores by the write-ticket holder) */
  size_t peak;
  uint64_t compactions, bytes_moved;
} hb__stream;

/* A visitor's stream fields live in its reserved words: the offset its
 * view starts at (0 for a plain cast: the first stored byte) and the end
 * offset it waits for.  memcpy, as the words are void pointers. */
typedef struct {
  uint64_t from, want;
} hb__vstream;

static inline hb__vstream hb__vs_get(const hb_visitor *v) {
  hb__vstream s;
  memcpy(&s, v->reserved, sizeof s);
  return s;
}
static inline void hb__vs_set(hb_visitor *v, hb__vstream s) {
  memcpy(v->reserved, &s, sizeof s);
}

/* b's stream state, or NULL: not a stream (or b == NULL). */
static inline hb__stream *hb__st(hb_buf *b) {
  return b == NULL ? NULL : hb__ext(b)->stream;
}

static inline bool hb__stream_closed(const hb__buf *e) {
  return e->stream != NULL &&
         __atomic_load_n(&e->stream->closed, __ATOMIC_ACQUIRE) != 0;
}

/* ---- between stream.c and consumer.c ---- */

/* The lowest consumer position, or end without consumers (under mu):
 * the drop, and hb_stream_info_get's `low`. */
uint64_t hb__stream_low(hb__stream *st, uint64_t end);

/* The room waker if it is due, else {NULL, NULL}; clears `full` when it
 * takes it (under mu; the caller calls it after unlocking).  From a
 * consumer's release and remove, and from close, whose waker is due
 * whatever the lag. */
hb_waker hb__stream_room_due(hb__stream *st, uint64_t low);

/* hb__stream_enter of a write visit (write ticket held): HB_ECLOSED,
 * HB_ENOSPC (the limit), or drop what every consumer released, publish
 * `begin`, compact if due, HB_OK. */
int hb__stream_write_start(hb__buf *e, hb__stream *st, size_t reserve);

/* ---- the hooks ---- */

/* hb__run_fn, under the visit's ticket, before the callback: for a write,
 * drop what every consumer released and compact (see REPRESENTATION in
 * src/consumer.c); then the view's window.  Returns HB_OK, or the
 * *result of a write that must not run (HB_ECLOSED, HB_ENOSPC). */
int hb__stream_enter(hb__buf *e, hb_view *view, bool write, size_t reserve,
                     uint64_t from);

/* hb__release, by a write-ticket holder after its visit, before it gives
 * the ticket back: publish the end and move the satisfied waiters to the
 * queue's head. */
void hb__stream_commit(hb__buf *e);

/* hb_cancel of a visitor in the waiting list (HB__V_STREAM), under mu. */
void hb__stream_unlink(hb__buf *e, hb_visitor *v);

/* hb_free: HB_EBUSY while readers wait or consumers are registered;
 * otherwise free the stream state. */
int hb__stream_free(hb__buf *e);

#endif /* HB_STREAM_H */
