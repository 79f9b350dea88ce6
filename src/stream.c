/*
 * stream.c -- the stream face: readers that wait for data and consume it.
 *
 * A buffer opened as a stream (hb_stream_open) is a byte stream that write
 * visitors append to and read visitors consume, each byte once per
 * registered consumer.  Four things are added to visitor mode; the
 * semantics are ../shared/DESIGN.md's ("Streams"), the names are ours.
 *
 * API, STATES, ERRORS
 *
 *   hb_stream_open(b, limit)   b becomes a stream: offsets start at 0 for
 *       its first stored byte.  limit > 0 bounds the unreleased bytes (the
 *       slowest consumer's lag); 0 is unbounded.  Direct mode, no visitor
 *       live.  HB_ESTATE if already a stream, HB_ENOMEM (the stream state
 *       is one allocation, made here and never again).
 *
 *   hb_cast_from(v, b, t, offset, min)   a read ticket that waits for
 *       data: the visit runs once the stream holds at least `min` bytes
 *       past `offset` (end >= offset + min), or is closed.  Its view starts
 *       at `offset` (or at the first byte still stored, if that is later)
 *       and hb_view_offset(view) says where.  min == 0, or data already
 *       there, or a closed stream: exactly an hb_cast (a FIFO ticket).
 *       HB_EINVAL as hb_cast, or b is not a stream; HB_ERANGE if offset +
 *       min overflows; HB_EINVAL if offset is not a multiple of the type's
 *       alignment (offsets map to addresses aligned alike).
 *
 *   hb_stream_close(b)   end of stream, from any thread, inside a write
 *       callback too.  Every waiting reader is granted at once (as if cast
 *       just after the ticket held now, if any) and sees hb_view_eof(view)
 *       == 1; later write casts (hb_cast_mut,
 *       hb_write_now) fail with HB_ECLOSED; a write ticket cast before the
 *       close but not yet run completes without its callback, *result ==
 *       HB_ECLOSED.  The write visit that calls close keeps its appends:
 *       they are the last bytes.  A second close is HB_ESTATE.
 *
 *   Consumers (hb_consumer, caller-owned like hb_visitor):
 *     hb_consumer_add(b, c)         register; c's position is the first
 *                                   byte still stored.
 *     hb_cast_consumer(v, c, t, min) hb_cast_from(v, b, t, position, min).
 *     hb_consumer_release(c, upto)  c is done with the bytes below upto:
 *                                   its position moves there.  Inside or
 *                                   outside a visit; positions only move
 *                                   forward (a lower upto is ignored);
 *                                   HB_ERANGE beyond the stream's end.
 *     hb_consumer_remove(c)         unregister: its unreleased bytes stop
 *                                   holding the buffer.  hb_free(b) is
 *                                   HB_EBUSY while any is registered.
 *   The library drops the bytes below every consumer's position (below all
 *   positions: the minimum), with no bookkeeping by the caller.  A stream
 *   without consumers drops nothing.
 *
 *   A stopped consumer bounds the buffer: with limit > 0, a write visit
 *   whose reservation would take the unreleased bytes above limit FAILS
 *   CLEANLY -- it completes without its callback, driver status HB_OK,
 *   *result == HB_ENOSPC, nothing appended (as a failed reservation gives
 *   HB_ENOMEM today).  Why fail, not wait: a writer that waited for room
 *   at the head of the FIFO would also hold up every plain ticket behind
 *   it, and the usual producer is an event loop whose bytes can stay in
 *   the kernel's socket buffer, where TCP's own flow control pushes back.
 *   hb_stream_room_waker(b, w) gives such a writer its cue: w is called
 *   once, after an HB_ENOSPC, when releases have brought the lag down to
 *   limit / 2.  Appends beyond a visit's reservation are not held to the
 *   limit (the limit is checked once per visit, at its start).
 *
 *   Invalidation.  Offsets never change: dropping bytes does not renumber
 *   the rest.  Pointers from views are valid inside their callback only,
 *   as always; bytes move (compaction, growth) only at the start of a
 *   write visit, before its callback, when no view exists.
 *
 * REPRESENTATION (one contiguous array, a dead prefix, lazy compaction)
 * and CONSUMERS AND DROPPING open src/consumer.c, with the code they
 * describe.
 *
 * WAITING OUTSIDE THE FIFO
 *
 *   A read visitor whose data is not there yet holds no ticket.  It waits
 *   in the stream's own intrusive list (through the visitor's next/prev
 *   links, free while it is not in the FIFO queue; flag HB__V_STREAM in
 *   its state says which list), under the buffer's mutex, like a queued
 *   visitor: hb_poll stores its waker there, hb_block_on marks it PARKED,
 *   hb_visit_detached marks it DETACHED, hb_cancel unlinks it -- the
 *   drivers see "cast, not granted" and need nothing new.  So:
 *
 *     - It never holds up writers: the lock word does not know it exists.
 *       Casts behind it take the fast paths as if it were not there.
 *     - It is granted right after the write visit whose commit satisfies
 *       it, and never before: every write visit, after its callback and
 *       before it gives its ticket back (hb__release, the one hook in the
 *       dispatcher), publishes the new end and moves the satisfied waiters
 *       to the HEAD of the FIFO queue, setting WAITERS.  Everything in the
 *       queue was cast after that writer (it holds the ticket), so the
 *       head is exactly "as if cast just after that writer".  The writer's
 *       own release then sees WAITERS and dispatches: the waiters are
 *       granted by the ordinary grant (PARKED: the fetch_or and a futex
 *       wake if asleep; a waker: called after unlocking; detached: run by
 *       the releasing thread), together with any readers right behind.
 *       An aborted write commits nothing (its length is rolled back), so
 *       it satisfies nobody.
 *     - The end is published in `end` (atomic) by the commit; hb_cast_from
 *       first reads it without the mutex (the end only grows: bytes seen
 *       there stay there, and the cast is an ordinary ticket), and else
 *       reads it again under the mutex the commit takes when readers wait,
 *       so either the cast sees the new end or the commit sees the new
 *       waiter.  A commit with no waiter skips the mutex:
 *       it stores `end` and then loads `nwait`, the cast adds to `nwait`
 *       and then loads `end`, all seq_cst, so one of them sees the other
 *       (Dekker; the two pairs are named where they are).
 *     - Idle costs nothing: a waiter in hb_block_on spins for at most its
 *       bounded budget, then sleeps on its state word; one under hb_poll,
 *       the fd waker or libuv is not even scheduled.
 *
 *   Close takes the mutex, marks the stream closed and moves every waiter
 *   to the queue's head, then dispatches: with no writer granted they are
 *   granted at once; a writer that holds the ticket (close called inside
 *   its callback, or racing with it) dispatches them when it releases.
 *   hb_free is HB_EBUSY while any reader waits or any consumer is
 *   registered (a consumer points at its stream).
 *
 *   Streams are never biased (hb_stream_open ends a bias): a biased
 *   thread's write would commit without the release hook.
 */
#include "stream.h"
#include "bias.h"
#include "rbias.h"

#include <stdbool.h>
#include <string.h>
/* ---- open, close, info ---------------------------------------------------
 */

int hb_stream_open(hb_buf *b, size_t limit) {
  if (b == NULL) return HB_EINVAL;
  hb__buf *e = hb__ext(b);
  if (e->stream != NULL) return HB_ESTATE;
  hb__stream *st = hb__malloc(sizeof *st);
  if (st == NULL) return HB_ENOMEM;
  memset(st, 0, sizeof *st);
  st->limit = limit;
  /* The bytes held now are offsets 0 .. len, all live: the cursor, which
   * marks the dropped prefix from here on, starts at 0. */
  b->cursor = 0;
  st->end = b->len;
  hb__wakelist wl;
  HB__WAKELIST_INIT(wl);
  hb__mutex_lock(&e->mu);
  hb__bias_forbid(e); /* a biased write would commit past the hook */
  hb__rbias_forbid(e, &wl); /* readers of a stream take tickets */
  e->stream = st;
  hb__mutex_unlock(&e->mu);
  hb__flush(&wl);
  return HB_OK;
}

/* Move the waiting readers whose bytes are there (want <= end), or all of
 * them, to the head of the FIFO queue, in their cast order: as if cast
 * just after the ticket now held (a writer's, at commit; at close, any).
 * A one-call visitor waiting in the lock word's NEXT slot (src/next.c) is
 * granted before them all the same: it came while that ticket was held,
 * and the slot is ahead of the whole queue.  Readers that wait for data
 * hold no place in the order until their data comes, so this keeps every
 * promise (none of them starves: they run right after the slot's visit).
 * Under mu.  Returns how many moved. */
static unsigned hb__stream_admit(hb__buf *e, hb__stream *st, uint64_t end,
                                 bool all) {
  hb_visitor *first = NULL, *last = NULL;
  unsigned n = 0;
  for (hb_visitor *v = st->whead, *next; v != NULL; v = next) {
    next = v->next;
    if (!all && hb__vs_get(v).want > end) continue;
    hb__stream_unlink(e, v);
    /* Into the chain that goes in front of the queue's head. */
    hb__list_push(&first, &last, v);
    /* Now a queued reader like any other (RMW: see HB__V_STREAM). */
    __atomic_fetch_and(&v->state, ~HB__V_STREAM, __ATOMIC_RELEASE);
    n++;
  }
  if (n == 0) return 0;
  hb__list_splice_front(&e->head, &e->tail, first, last);
  e->qlen += n;
  if (e->qlen > e->longest_queue)
    HB__BUMP(e->longest_queue, e->qlen - e->longest_queue);
  /* The queue is not empty: whoever releases next dispatches.  Pairs with
   * the fetch_add of hb__release, which reads WAITERS as it releases. */
  __atomic_fetch_or(&e->pub.lock, HB__W_WAITERS, __ATOMIC_ACQ_REL);
  return n;
}

int hb_stream_close(hb_buf *b) {
  hb__stream *st = hb__st(b);
  if (st == NULL) return HB_EINVAL;
  hb__buf *e = hb__ext(b);
  hb__wakelist wl;
  HB__WAKELIST_INIT(wl);
  hb__mutex_lock(&e->mu);
  if (st->closed) {
    hb__mutex_unlock(&e->mu);
    return HB_ESTATE;
  }
  /* RELEASE pairs with the ACQUIRE loads of hb__stream_closed. */
  __atomic_store_n(&st->closed, 1, __ATOMIC_RELEASE);
  /* Every waiter to the queue's head, then grant what the lock allows: with
   * a writer holding the ticket, its release dispatches them. */
  if (hb__stream_admit(e, st, 0, true) != 0) hb__dispatch(e, &wl, 0);
  hb_waker room = hb__stream_room_due(st, 0);
  hb__mutex_unlock(&e->mu);
  if (room.wake != NULL) room.wake(room.arg);
  hb__flush(&wl);
  return HB_OK;
}

int hb_stream_info_get(hb_buf *b, hb_stream_info *out) {
  hb__stream *st = hb__st(b);
  if (st == NULL || out == NULL) return HB_EINVAL;
  hb__buf *e = hb__ext(b);
  hb__mutex_lock(&e->mu);
  out->end = __atomic_load_n(&st->end, __ATOMIC_ACQUIRE);
  out->begin = __atomic_load_n(&st->begin, __ATOMIC_ACQUIRE);
  out->low = st->chead != NULL ? hb__stream_low(st, out->end) : out->end;
  out->consumers = st->nconsumers;
  out->waiting = __atomic_load_n(&st->nwait, __ATOMIC_RELAXED);
  out->closed = (int)__atomic_load_n(&st->closed, __ATOMIC_RELAXED);
  hb__mutex_unlock(&e->mu);
  out->peak = __atomic_load_n(&st->peak, __ATOMIC_RELAXED);
  out->compactions = __atomic_load_n(&st->compactions, __ATOMIC_RELAXED);
  out->bytes_moved = __atomic_load_n(&st->bytes_moved, __ATOMIC_RELAXED);
  return HB_OK;
}

int hb_stream_room_waker(hb_buf *b, hb_waker w) {
  hb__stream *st = hb__st(b);
  if (st == NULL) return HB_EINVAL;
  hb__buf *e = hb__ext(b);
  hb__mutex_lock(&e->mu);
  st->room = w;
  hb__mutex_unlock(&e->mu);
  return HB_OK;
}

/* ---- waiting readers -------------------------------------------------------
 */

void hb__stream_unlink(hb__buf *e, hb_visitor *v) {
  hb__stream *st = e->stream;
  hb__list_unlink(&st->whead, &st->wtail, v);
  __atomic_fetch_sub(&st->nwait, 1, __ATOMIC_RELAXED);
}

int hb_cast_from(hb_visitor *v, hb_buf *b, hb_type t, uint64_t offset,
                 size_t min) {
  hb__stream *st = hb__st(b);
  if (st == NULL || v == NULL) return HB_EINVAL;
  if (offset > UINT64_MAX - min) return HB_ERANGE;
  if (t.align != 0 && offset % t.align != 0) return HB_EINVAL;
  uint64_t want = offset + min;
  hb__buf *e = hb__ext(b);
  /* hb_cast's checks first: an error takes no ticket and waits for none. */
  if (!hb__type_ok(b, t)) return HB_EINVAL;
  uint32_t s0 = hb__vstate(v), phase = hb__phase(s0);
  if ((phase != HB__V_IDLE && phase != HB__V_RAN &&
       phase != HB__V_CANCELLED) ||
      (s0 & HB__V_BUSY))
    return HB_ESTATE;
  /* The bytes already there (end only grows): an ordinary ticket, without
   * the mutex.  ACQUIRE pairs with the commit's store of end. */
  if (min == 0 || __atomic_load_n(&st->end, __ATOMIC_ACQUIRE) >= want ||
      __atomic_load_n(&st->closed, __ATOMIC_ACQUIRE)) {
    int rc = hb_cast(v, b, t);
    if (rc == HB_OK) hb__vs_set(v, (hb__vstream){offset, want});
    return rc;
  }
  hb__mutex_lock(&e->mu);
  /* Dekker with hb__stream_commit: nwait up, then end read, both seq_cst;
   * the commit stores end, then reads nwait.  One of us sees the other. */
  __atomic_fetch_add(&st->nwait, 1, __ATOMIC_SEQ_CST);
  uint64_t end = __atomic_load_n(&st->end, __ATOMIC_SEQ_CST);
  if (end >= want || __atomic_load_n(&st->closed, __ATOMIC_ACQUIRE)) {
    __atomic_fetch_sub(&st->nwait, 1, __ATOMIC_RELAXED);
    hb__mutex_unlock(&e->mu);
    int rc = hb_cast(v, b, t); /* the data is there: an ordinary ticket */
    if (rc == HB_OK) hb__vs_set(v, (hb__vstream){offset, want});
    return rc;
  }
  /* Wait in the stream's list, holding no ticket.  As the FIFO queue's
   * waiters, it is CAST and not GRANTED, and changes under mu. */
  /* As hb__cast: the cookie first (hb__vstate), buf atomic (hb_cancel). */
  __atomic_store_n(&v->cookie, hb__cookie(v), __ATOMIC_RELAXED);
  __atomic_store_n(&v->buf, b, __ATOMIC_RELAXED);
  v->type = t;
  v->armed = 0;
  hb__vs_set(v, (hb__vstream){offset, want});
  hb__list_push(&st->whead, &st->wtail, v);
  hb__store_state(v, HB__V_CAST | HB__V_STREAM);
  hb__mutex_unlock(&e->mu);
  return HB_OK;
}

/* ---- the hooks in a visit ---------------------------------------------------
 */

int hb__stream_enter(hb__buf *e, hb_view *view, bool write, size_t reserve,
                     uint64_t from) {
  hb__stream *st = e->stream;
  hb_buf *b = &e->pub;
  if (write) {
    int rc = hb__stream_write_start(e, st, reserve);
    if (rc != HB_OK) return rc;
    view->start_len = b->len; /* the rollback point, after compaction */
  }
  /* The window: from `from`, but never into the dropped prefix, and at an
   * offset aligned for the type (the prefix may end anywhere). */
  size_t a = view->type->align;
  size_t skip = (b->cursor + a - 1) & ~(a - 1);
  if (from > st->base && from - st->base > skip)
    skip = from - st->base > b->len ? b->len : (size_t)(from - st->base);
  if (skip > b->len) skip = b->len;
  view->skip = skip;
  view->eof = (int)__atomic_load_n(&st->closed, __ATOMIC_ACQUIRE);
  return HB_OK;
}

void hb__stream_commit(hb__buf *e) {
  hb__stream *st = e->stream;
  hb_buf *b = &e->pub;
  uint64_t end = st->base + b->len;
  size_t stored = b->len - b->cursor;
  if (stored > st->peak) HB__BUMP(st->peak, stored - st->peak);
  /* Dekker with hb_cast_from (see there): end first, then nwait. */
  __atomic_store_n(&st->end, end, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&st->nwait, __ATOMIC_SEQ_CST) == 0) return;
  hb__mutex_lock(&e->mu);
  hb__stream_admit(e, st, end,
                   __atomic_load_n(&st->closed, __ATOMIC_ACQUIRE));
  hb__mutex_unlock(&e->mu);
  /* Our release sees WAITERS and dispatches them with the queue. */
}

/* ---- views and the end -----------------------------------------------------
 */

uint64_t hb_view_offset(const hb_view *view) {
  const hb__stream *st = hb__cext(view->buf)->stream;
  return st == NULL ? 0 : st->base + view->skip;
}

int hb_view_eof(const hb_view *view) { return view->eof; }

int hb__stream_free(hb__buf *e) {
  hb__stream *st = e->stream;
  hb__mutex_lock(&e->mu);
  bool busy = st->nwait != 0 || st->nconsumers != 0;
  hb__mutex_unlock(&e->mu);
  if (busy) return HB_EBUSY;
  e->stream = NULL;
  hb__free(st);
  return HB_OK;
}
