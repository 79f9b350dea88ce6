/*
 * hyperbuf_stream.h -- DRAFT of the "Streams" section of hyperbuf.h
 * (issue 12).  It moves into hyperbuf.h, after the views section, once the
 * header's reorganisation (tag m-header) is merged; until then the library,
 * its tests, examples and benchmarks include it after hyperbuf.h.
 * The design is the top comment of src/stream.c.
 */
#ifndef HYPERBUF_STREAM_H
#define HYPERBUF_STREAM_H

#include "hyperbuf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/*  Streams: readers that wait for data, consumers that release it          */
/* ======================================================================== */

/*
 * A stream is a buffer whose bytes have stable offsets: the first byte
 * ever stored is offset 0, and dropping bytes from the front does not
 * renumber the rest.  Write visitors append as usual.  A read visitor cast
 * with hb_cast_from waits, holding no ticket, until the bytes it asks for
 * are there: it is granted right after the write visit that commits them,
 * as if it had been cast just after that writer, so it never holds up the
 * writers behind it and never runs to find nothing new.  Registered
 * consumers (fan-out: each sees every byte) release what they are done
 * with, and the library drops the bytes every consumer released, at the
 * start of a write visit, when no view can see them move.
 *
 *     hb_stream_open(b, 1 << 20);          (lag bounded to 1 MiB)
 *     hb_consumer c;  hb_consumer_add(b, &c);
 *     for (;;) {                             (a consumer thread)
 *       hb_cast_consumer(&v, &c, HB_TYPE(struct packet), sizeof(struct packet));
 *       hb_visit(&v, 0, eat, &c);            (eat: hb_view_offset, the
 *       hb_block_on(&v, NULL);                array, hb_consumer_release,
 *     }                                       hb_view_eof)
 *
 * Synchronization: every call below may be made from any thread, inside
 * callbacks too, except hb_stream_open (direct mode: no visitor of b
 * live).  None of them waits for a visit: at most for the buffer's
 * short internal mutex (hb_consumer_release only when a writer waits for
 * room, for the room waker).
 */

/** Stream error codes (to join HB_ERRNO_MAP with m-header). */
#define HB_ECLOSED (-11) /* the stream is closed: no more writes */
#define HB_ENOSPC (-12)  /* the stream is full: a consumer lags by its limit */

/**
 * A registered consumer: caller-owned storage, like hb_visitor.  Must not
 * be moved or copied while registered.
 */
typedef struct hb_consumer {
  /* public */
  void *data; /* free for the caller's use; the library never touches it */
  /* private */
  struct hb_consumer *next, *prev; /* the stream's list, under its mutex */
  hb_buf *buf;
  uint64_t pos;   /* released below this offset (atomic) */
  uint32_t state; /* registered or not */
  uint32_t reserved32;
  void *reserved[2];
} hb_consumer;

#define HB_CONSUMER_INIT {0}

/** What hb_stream_info reports; a snapshot, each field exact when read. */
typedef struct {
  uint64_t begin;       /* offset of the first byte still stored */
  uint64_t end;         /* offset one past the last committed byte */
  uint64_t low;         /* the lowest consumer position (end if none) */
  size_t peak;          /* most unreleased bytes at the start of a write */
  uint64_t compactions; /* times the live bytes were moved to the front */
  uint64_t bytes_moved; /* bytes those moves copied */
  uint32_t consumers;   /* registered consumers */
  uint32_t waiting;     /* read visitors waiting for data */
  int closed;           /* hb_stream_close was called */
} hb_stream_info;

/**
 * Make b a stream.  The bytes b holds become offsets 0 .. hb_len(b).
 * limit > 0 bounds the unreleased bytes: a write visit whose reservation
 * would take them above limit completes without its callback, *result ==
 * HB_ENOSPC (see hb_stream_room_waker).  0 means no bound.  A biased
 * buffer stops being biased.  While the stream is open, direct mode must
 * not move the cursor or the bytes (the cursor marks the dropped prefix).
 * Requires: no visitor of b is live.
 * @return HB_OK; HB_EINVAL if b is NULL; HB_ESTATE if b is a stream
 *         already; HB_ENOMEM (b unchanged).
 */
HB_EXTERN int hb_stream_open(hb_buf *b, size_t limit);

/**
 * End the stream.  Every read visitor waiting for data is granted at once
 * (as if cast now) and its view reports hb_view_eof; later write casts fail
 * with HB_ECLOSED, and write tickets cast before but not yet run complete
 * without their callback, *result == HB_ECLOSED.  Called inside a write
 * callback, that visit's appends are kept: they are the stream's last.
 * @return HB_OK; HB_EINVAL if b is not a stream; HB_ESTATE if closed.
 */
HB_EXTERN int hb_stream_close(hb_buf *b);

/**
 * Take a read ticket that waits for data: the visit runs once the stream
 * holds at least `min` bytes past `offset`, or is closed.  Until then v
 * holds no ticket: casts behind it do not wait for it.  Its view starts at
 * `offset`, or at the first byte still stored if that is later
 * (hb_view_offset tells).  If the bytes are there already, or min is 0, or
 * the stream is closed, it is an ordinary hb_cast.  Driven like any
 * visitor (hb_poll, hb_block_on, hb_try_visit, detached, hb_uv_visit);
 * hb_cancel works while it waits.  Once granted it holds a read ticket
 * like any reader, until it is run or cancelled: a thread must not make a
 * blocking write (hb_write_now, hb_block_on on a writer) on the stream
 * while its own granted reader waits to be run -- the write would wait for
 * that ticket.  Run it first, or drive both without blocking.
 * @return as hb_cast; HB_EINVAL also if b is not a stream; HB_ERANGE if
 *         offset + min overflows.
 */
HB_EXTERN int hb_cast_from(hb_visitor *v, hb_buf *b, hb_type t,
                           uint64_t offset, size_t min);

#define HB_CAST_FROM(v, b, T, offset, min)                                   \
  hb_cast_from((v), (b), HB_TYPE(T), (offset), (min))

/**
 * Register c as a consumer of stream b.  Its position is the first byte
 * still stored; bytes at or past it are not dropped until c releases them
 * or is removed.
 * Requires: c is not registered (zeroed, HB_CONSUMER_INIT, or removed).
 * @return HB_OK; HB_EINVAL if b is not a stream or c is NULL; HB_ESTATE if
 *         c is registered.
 */
HB_EXTERN int hb_consumer_add(hb_buf *b, hb_consumer *c);

/** @return c's position: every byte below it is released. */
HB_EXTERN uint64_t hb_consumer_pos(const hb_consumer *c);

/**
 * Release the bytes below `upto`: c's position moves there.  A position
 * only moves forward (a lower upto changes nothing).  Inside or outside a
 * visit; the bytes are dropped later, at a write visit's start, once every
 * consumer has released them.
 * @return HB_OK; HB_ESTATE if c is not registered; HB_ERANGE if upto is
 *         past the stream's end (nothing changes).
 */
HB_EXTERN int hb_consumer_release(hb_consumer *c, uint64_t upto);

/**
 * Cast a read visitor that waits for `min` bytes past c's position:
 * hb_cast_from(v, c's stream, t, hb_consumer_pos(c), min).
 * @return as hb_cast_from; HB_ESTATE if c is not registered.
 */
HB_EXTERN int hb_cast_consumer(hb_visitor *v, hb_consumer *c, hb_type t,
                               size_t min);

#define HB_CAST_CONSUMER(v, c, T, min)                                       \
  hb_cast_consumer((v), (c), HB_TYPE(T), (min))

/**
 * Unregister c: its unreleased bytes stop holding the buffer.  c may then
 * be reused or freed.  Visitors cast through c are not affected.  Every
 * consumer must be removed before hb_free(b), which is HB_EBUSY until
 * then (as while a reader waits for data).
 * @return HB_OK; HB_ESTATE if c is not registered.
 */
HB_EXTERN int hb_consumer_remove(hb_consumer *c);

/**
 * The writer's cue after HB_ENOSPC: w.wake(w.arg) is called once, after a
 * write visit failed with HB_ENOSPC, when releases have brought the
 * unreleased bytes down to limit / 2 (or a consumer was removed, or the
 * stream closed).  It is called from the releasing thread, with no lock
 * held; it must be cheap, like any waker.  Replaces an earlier one; a
 * waker with wake == NULL removes it.
 * @return HB_OK; HB_EINVAL if b is not a stream.
 */
HB_EXTERN int hb_stream_room_waker(hb_buf *b, hb_waker w);

/** @return HB_OK and *out filled; HB_EINVAL if b is not a stream. */
HB_EXTERN int hb_stream_info_get(hb_buf *b, hb_stream_info *out);

/** @return the stream offset of the view's first byte (0 on a buffer that
 *          is not a stream). */
HB_EXTERN uint64_t hb_view_offset(const hb_view *view);

/** @return 1 if the stream was closed when this visit began: no byte will
 *          follow the view's last; 0 otherwise. */
HB_EXTERN int hb_view_eof(const hb_view *view);

#ifdef __cplusplus
}
#endif
#endif /* HYPERBUF_STREAM_H */
