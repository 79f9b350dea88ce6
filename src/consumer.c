/*
 * consumer.c -- the stream face's consumers: registering, releasing, and
 * the drop and compaction decision at a write visit's start.  The API,
 * the waiting readers and their grant after a commit are in src/stream.c;
 * its opening comment is the first half of this one.
 *
 * REPRESENTATION: ONE CONTIGUOUS ARRAY, A DEAD PREFIX, LAZY COMPACTION
 *
 *   The bytes stay where visitor mode keeps them: hb_data(b)[0 .. len).
 *   `base` is the offset of hb_data(b)[0].  The buffer's cursor marks the
 *   dead prefix: [0, cursor) are bytes every consumer released, not yet
 *   reclaimed, so the first stored offset is base + cursor and the end is
 *   base + len.  At the start of each write visit (exclusive access: no
 *   view exists) the cursor moves up to the lowest consumer position, and
 *   then, only if the reservation does not fit in the spare room and the
 *   dead prefix is at least as long as the live bytes -- or the live bytes
 *   are a few (HB__STREAM_SMALL: a few moves, and the next write lands in
 *   memory the cache holds) -- the live bytes move to the front (base +=
 *   the cursor rounded down to the buffer's alignment, so every view's
 *   array stays aligned for its type).  Why this and not a ring:
 *     - views are arrays of the cast type (a struct packet * over the
 *       bytes): a ring would split a view at the wrap, or need a doubly
 *       mapped ring, whose growth is a remap and whose size is page-bound;
 *     - the move copies only live bytes, and only when they are at most as
 *       many as the dead ones, so each released byte pays for at most one
 *       byte moved: O(1) amortized per byte, never a copy of what is still
 *       unreleased on every visit (what hb_view_drain did to the old
 *       packet pipeline);
 *     - when consumers keep up (the common case) the live part is a
 *       partial record or two, the move is a few bytes, and the array
 *       stays at the size of one burst: no growth in the steady state.
 *   After the stream is closed and its visitors have finished, direct
 *   mode sees the model it knows: hb_remaining(b) is what some consumer
 *   did not release, from the cursor on.  While a stream is open, direct
 *   mode must not move the cursor or the bytes (hb_get*, hb_advance,
 *   hb_compact, hb_clear, a shrinking hb_resize): that renumbers offsets.
 *
 * CONSUMERS AND DROPPING
 *
 *   Consumers are an intrusive list under the buffer's mutex; a position
 *   is an atomic uint64.  Release is one atomic max (a CAS loop, RELEASE:
 *   the consumer's reads of the bytes happen before the writer that
 *   reclaims them, whose ACQUIRE load of the position pairs with it).  The
 *   drop -- moving the cursor, and the compaction -- happens only at a
 *   write visit's start, under the write ticket, so no view can see bytes
 *   move; and the minimum is taken under the mutex, so a consumer being
 *   added (whose first position is the first stored byte, read under the
 *   same mutex) is never dropped past.
 */
#include "stream.h"

#include <stdbool.h>
#include <string.h>

/* Compact even with room to spare when the live bytes are this few: the
 * copy is a few moves, and the next write lands at the front again, in
 * memory the cache still holds. */
#define HB__STREAM_SMALL 256

#define HB__C_REGISTERED 1u /* hb_consumer.state */

/* ---- the drop, the room waker, the limit ----------------------------------
 */

/* Take the room waker if it is due (under mu). */
hb_waker hb__stream_room_due(hb__stream *st, uint64_t low) {
  hb_waker w = {NULL, NULL};
  if (!__atomic_load_n(&st->full, __ATOMIC_SEQ_CST)) return w;
  uint64_t end = __atomic_load_n(&st->end, __ATOMIC_ACQUIRE);
  if (st->limit != 0 && end - low > st->limit / 2 &&
      !__atomic_load_n(&st->closed, __ATOMIC_ACQUIRE))
    return w;
  __atomic_store_n(&st->full, 0, __ATOMIC_SEQ_CST);
  return st->room;
}

uint64_t hb__stream_low(hb__stream *st, uint64_t end) {
  uint64_t low = end;
  for (hb_consumer *c = st->chead; c != NULL; c = c->next) {
    /* ACQUIRE pairs with the RELEASE CAS of hb_consumer_release: the
     * consumer's reads of the bytes below come before we reclaim them. */
    uint64_t p = __atomic_load_n(&c->pos, __ATOMIC_SEQ_CST);
    if (p < low) low = p;
  }
  return low;
}

/* Move the dead prefix up to the lowest consumer position (write ticket
 * and mutex held).  Without consumers nothing is ever dropped. */
static void hb__stream_drop(hb__buf *e, hb__stream *st) {
  if (st->chead == NULL) return;
  hb_buf *b = &e->pub;
  uint64_t low = hb__stream_low(st, st->base + b->len);
  size_t dead = (size_t)(low - st->base); /* <= len: positions <= end */
  if (dead > b->cursor) b->cursor = dead;
}

/* At a write visit's start (write ticket held): drop below the lowest
 * consumer position, compact if due, apply the limit. */
int hb__stream_write_start(hb__buf *e, hb__stream *st, size_t reserve) {
  hb_buf *b = &e->pub;
  if (__atomic_load_n(&st->closed, __ATOMIC_ACQUIRE)) return HB_ECLOSED;
  int rc = HB_OK;
  hb__mutex_lock(&e->mu);
  hb__stream_drop(e, st);
  size_t live = b->len - b->cursor;
  if (st->limit != 0 && (reserve > st->limit || live > st->limit - reserve)) {
    /* Full.  Announce it, then look again: a release that came after our
     * look saw `full` and will call the room waker; one that came before
     * is in this second look (Dekker: full stored, then positions loaded,
     * seq_cst; the release stores its position, then loads full). */
    __atomic_store_n(&st->full, 1, __ATOMIC_SEQ_CST);
    hb__stream_drop(e, st);
    live = b->len - b->cursor;
    if (reserve > st->limit || live > st->limit - reserve)
      rc = HB_ENOSPC;
    else
      __atomic_store_n(&st->full, 0, __ATOMIC_SEQ_CST);
  }
  __atomic_store_n(&st->begin, st->base + b->cursor, __ATOMIC_RELEASE);
  hb__mutex_unlock(&e->mu);
  if (rc != HB_OK) return rc;

  /* Compaction (see REPRESENTATION): move the live bytes to the front when
   * they are few, or when the reservation needs room and they are no more
   * than the dead ones.  The move keeps base a multiple of the buffer's
   * alignment, so every view's array stays aligned for its type.  No view
   * exists (we hold the write ticket); begin does not change. */
  size_t cut = b->cursor & ~(e->align - 1);
  if (cut != 0 && (live <= HB__STREAM_SMALL ||
                   (b->cap - b->len < reserve && b->cursor >= live))) {
    size_t keep = b->len - cut;
    memmove(b->data, b->data + cut, keep);
    b->len = keep;
    b->cursor -= cut;
    st->base += cut;
    HB__BUMP(st->compactions, 1);
    HB__BUMP(st->bytes_moved, keep);
  }
  return HB_OK;
}

/* ---- consumers --------------------------------------------------------------
 */

int hb_consumer_add(hb_buf *b, hb_consumer *c) {
  hb__stream *st = hb__st(b);
  if (st == NULL || c == NULL) return HB_EINVAL;
  if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == HB__C_REGISTERED)
    return HB_ESTATE;
  hb__buf *e = hb__ext(b);
  hb__mutex_lock(&e->mu);
  c->buf = b;
  /* begin is changed under this mutex (hb__stream_write_start), so the
   * next drop sees c before it could pass this position. */
  __atomic_store_n(&c->pos, __atomic_load_n(&st->begin, __ATOMIC_ACQUIRE),
                   __ATOMIC_RELAXED);
  c->prev = NULL;
  c->next = st->chead;
  if (st->chead != NULL) st->chead->prev = c;
  st->chead = c;
  st->nconsumers++;
  __atomic_store_n(&c->state, HB__C_REGISTERED, __ATOMIC_RELEASE);
  hb__mutex_unlock(&e->mu);
  return HB_OK;
}

static bool hb__consumer_ok(const hb_consumer *c) {
  return c != NULL &&
         __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == HB__C_REGISTERED &&
         c->buf != NULL && hb__ext(c->buf)->stream != NULL;
}

uint64_t hb_consumer_pos(const hb_consumer *c) {
  return c == NULL ? 0 : __atomic_load_n(&c->pos, __ATOMIC_ACQUIRE);
}

int hb_consumer_remove(hb_consumer *c) {
  if (!hb__consumer_ok(c)) return HB_ESTATE;
  hb__buf *e = hb__ext(c->buf);
  hb__stream *st = e->stream;
  hb__mutex_lock(&e->mu);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    st->chead = c->next;
  if (c->next != NULL) c->next->prev = c->prev;
  c->next = c->prev = NULL;
  st->nconsumers--;
  __atomic_store_n(&c->state, 0, __ATOMIC_RELEASE);
  hb_waker room = hb__stream_room_due(
      st, hb__stream_low(st, __atomic_load_n(&st->end, __ATOMIC_ACQUIRE)));
  hb__mutex_unlock(&e->mu);
  if (room.wake != NULL) room.wake(room.arg);
  return HB_OK;
}

int hb_consumer_release(hb_consumer *c, uint64_t upto) {
  if (!hb__consumer_ok(c)) return HB_ESTATE;
  hb__buf *e = hb__ext(c->buf);
  hb__stream *st = e->stream;
  if (upto > __atomic_load_n(&st->end, __ATOMIC_ACQUIRE)) return HB_ERANGE;
  uint64_t p = __atomic_load_n(&c->pos, __ATOMIC_RELAXED);
  /* RELEASE (seq_cst): our reads of the bytes below upto come before the
   * writer's ACQUIRE load of the position in hb__stream_low, which may
   * then reclaim them.  seq_cst for the Dekker with `full` below. */
  while (p < upto &&
         !__atomic_compare_exchange_n(&c->pos, &p, upto, true,
                                      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
  }
  if (__atomic_load_n(&st->full, __ATOMIC_SEQ_CST)) {
    hb__mutex_lock(&e->mu);
    hb_waker room = hb__stream_room_due(
        st, hb__stream_low(st, __atomic_load_n(&st->end, __ATOMIC_ACQUIRE)));
    hb__mutex_unlock(&e->mu);
    if (room.wake != NULL) room.wake(room.arg);
  }
  return HB_OK;
}

int hb_cast_consumer(hb_visitor *v, hb_consumer *c, hb_type t, size_t min) {
  if (!hb__consumer_ok(c)) return HB_ESTATE;
  return hb_cast_from(v, c->buf, t, hb_consumer_pos(c), min);
}
