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
 *       min overflows.
 *
 *   hb_stream_close(b)   end of stream, from any thread, inside a write
 *       callback too.  Every waiting reader is granted at once (as if cast
 *       now) and sees hb_view_eof(view) == 1; later write casts (hb_cast_mut,
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
 *                                   holding the buffer.
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
 * REPRESENTATION: ONE CONTIGUOUS ARRAY, A DEAD PREFIX, LAZY COMPACTION
 *
 *   The bytes stay where visitor mode keeps them: hb_data(b)[0 .. len).
 *   `base` is the offset of hb_data(b)[0].  The buffer's cursor marks the
 *   dead prefix: [0, cursor) are bytes every consumer released, not yet
 *   reclaimed, so the first stored offset is base + cursor and the end is
 *   base + len.  At the start of each write visit (exclusive access: no
 *   view exists) the cursor moves up to the lowest consumer position, and
 *   then, only if the reservation does not fit in the spare room and the
 *   dead prefix is at least as long as the live bytes, the live bytes move
 *   to the front (base += cursor; cursor = 0).  When nothing is live the
 *   move is free (length 0).  Why this and not a ring:
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
 *     - The end is published in `end` (atomic) by the commit under the
 *       mutex; hb_cast_from reads it under the same mutex, so either the
 *       cast sees the new end (and takes an ordinary ticket) or the commit
 *       sees the new waiter.  A commit with no waiter skips the mutex:
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
 *   hb_free is HB_EBUSY while any reader waits.
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
 *
 *   Streams are never biased (hb_stream_open ends a bias): a biased
 *   thread's write would commit without the release hook.
 */
#include "internal.h"
