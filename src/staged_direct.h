/*
 * staged_direct.h -- TEMPORARY: issue 14's new direct-mode calls, kept out
 * of include/ until the header reorganisation (tag m-header) has landed;
 * then this block moves into the public header and this file goes.
 */
#ifndef HB_STAGED_DIRECT_H
#define HB_STAGED_DIRECT_H

#include "hyperbuf.h"

#include <sys/uio.h>

/* ======================================================================== */
/*  Spare room, then commit                                                  */
/* ======================================================================== */

/*
 * For code that produces bytes in place -- read(2) or recvmsg(2), a TLS
 * library's decrypt, a compressor, an io_uring completion: ask for room,
 * let the producer fill it, then commit what it wrote (libevent's
 * evbuffer_reserve_space + evbuffer_commit_space, sds's sdsMakeRoomFor +
 * sdsIncrLen, bytes' chunk_mut + advance_mut):
 *
 *     uint8_t *room;
 *     if (hb_spare(b, 4096, &room) != HB_OK) ...      (may grow b)
 *     ssize_t n = read(fd, room, 4096);
 *     if (n > 0) hb_commit(b, (size_t)n);             (cannot fail here)
 *
 * Nothing is stored until hb_commit: the spare bytes are not part of
 * hb_len, and a spare area never committed is simply spare room again.
 */

/* Out of line, cold: hb_spare when the room must grow. */
HB_EXTERN int hb__spare_slow(hb_buf *b, size_t n, uint8_t **spare);

/**
 * Point *spare at n or more bytes of spare room just after the stored
 * bytes, growing the buffer first if fewer than n are spare.  The caller
 * writes into them, then hb_commit appends those it wrote.
 * Invalidates: hb_data(), view pointers and earlier spare pointers, if it
 * grows.
 * @return HB_OK (*spare points at hb_data(b) + hb_len(b), with at least n
 *         bytes up to hb_capacity(b)); HB_EINVAL if spare is NULL;
 *         HB_ERANGE or HB_ENOMEM as hb_reserve (*spare untouched, nothing
 *         changes).
 */
static inline int hb_spare(hb_buf *b, size_t n, uint8_t **spare) {
  HB__CHECK_DIRECT(b);
  if (HB__LIKELY(spare != NULL && b->cap - b->len >= n)) {
    *spare = b->data + b->len;
    return HB_OK;
  }
  return hb__spare_slow(b, n, spare);
}

/**
 * Append the first k bytes of the spare room, as written by the caller
 * since hb_spare.  k is at most the n asked of hb_spare; the library checks
 * only that k bytes are spare (bytes beyond the caller's writes are
 * indeterminate: committing them stores whatever is there).  Never grows.
 * @return HB_OK; HB_ERANGE if k > hb_capacity(b) - hb_len(b) (nothing
 *         changes).
 */
static inline int hb_commit(hb_buf *b, size_t k) {
  HB__CHECK_DIRECT(b);
  if (HB__UNLIKELY(b->cap - b->len < k)) return HB_ERANGE;
  b->len += k;
  return HB_OK;
}

/**
 * hb_spare inside a write visit: room for n or more bytes after the
 * buffer's bytes (growing beyond the visit's reservation if needed).
 * Invalidates: array pointers taken earlier in this callback, and earlier
 * spare pointers, if it grows.
 * @return HB_OK; HB_ESTATE in a read visit; HB_EINVAL if spare is NULL;
 *         HB_ERANGE or HB_ENOMEM as hb_reserve (nothing changes).
 */
HB_EXTERN int hb_view_spare(hb_view *view, size_t n, uint8_t **spare);

/**
 * hb_commit inside a write visit: append k bytes of the spare room.  No
 * whole-element rule, as hb_view_append_bytes.  The bytes count in
 * hb_view_bytes_written, and an aborted visit (the callback returns < 0)
 * rolls them back with its other appends.
 * @return HB_OK; HB_ESTATE in a read visit; HB_ERANGE if k bytes are not
 *         spare (nothing changes).
 */
HB_EXTERN int hb_view_commit(hb_view *view, size_t k);

/* ======================================================================== */
/*  The writer session: many small appends at the hand-written speed         */
/* ======================================================================== */

/*
 * A loop of hb_put_u8 stores the buffer's length after every byte: the
 * compiler must assume a byte store may overwrite it (character types
 * alias everything), so each put leaves the length in memory.  A writer
 * keeps the write position and the end of the room in the caller's
 * locals, where no byte store can reach them, and stores the length once,
 * at hb_writer_commit.  Declare it as a local and do not take its address
 * beyond these calls: that is what lets the compiler keep it in registers.
 *
 *     hb_writer w;
 *     hb_writer_begin(&w, b);
 *     for (...) if (hb_writer_put_u8(&w, byte) != HB_OK) goto fail;
 *     hb_writer_commit(&w);                   (hb_len(b) grows here)
 *
 * Requires: from hb_writer_begin until the last hb_writer_commit, no other
 * call on b (direct or visitor mode) and no other writer on b.  Bytes put
 * but not committed are not stored: hb_len(b) does not count them, and a
 * writer may be dropped without a commit (its bytes are then spare room).
 * Growth keeps them.  The writer's pointers, like hb_data's, are stale
 * after any other call that may grow b.
 */
typedef struct hb_writer {
  /* private */
  uint8_t *pos; /* where the next byte goes */
  uint8_t *end; /* the end of the room: hb_data(b) + hb_capacity(b) */
  hb_buf *buf;
} hb_writer;

/** Start a writer on b at its end.  Allocates nothing; cannot fail. */
static inline void hb_writer_begin(hb_writer *w, hb_buf *b) {
  HB__CHECK_DIRECT(b);
  w->buf = b;
  w->pos = b->data + b->len;
  w->end = b->data + b->cap;
}

/* Out of line, cold: grow for n more bytes, keeping the uncommitted ones.
 * Called on a copy of the writer, so the caller's writer never has its
 * address taken and can live in registers. */
HB_EXTERN int hb__writer_grow(hb_writer *w, size_t n);

static inline int hb__writer_room(hb_writer *w, size_t n) {
  hb_writer t = *w;
  int rc = hb__writer_grow(&t, n);
  *w = t;
  return rc;
}

/**
 * Put one byte.
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_ERANGE or HB_ENOMEM as hb_reserve (the writer and the
 *         buffer are unchanged).
 */
static inline int hb_writer_put_u8(hb_writer *w, uint8_t v) {
  if (HB__UNLIKELY(w->pos == w->end)) {
    int rc = hb__writer_room(w, 1);
    if (rc != HB_OK) return rc;
  }
  *w->pos++ = v;
  return HB_OK;
}

/* Out of line: every case of hb_writer_put the inline fast path leaves
 * (growth, overlap with the room it copies to, a NULL src), with its
 * contract; on a copy of the writer, as hb__writer_grow. */
HB_EXTERN int hb__writer_put_slow(hb_writer *w, const void *src, size_t n);

/**
 * Put n bytes copied from src (src may be NULL when n is 0, and may point
 * into the buffer's own bytes).
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_EINVAL if src is NULL while n > 0; HB_ERANGE or
 *         HB_ENOMEM as hb_reserve (nothing changes in any case).
 */
static inline int hb_writer_put(hb_writer *w, const void *src, size_t n) {
  uintptr_t s = (uintptr_t)src, d = (uintptr_t)w->pos;
  /* As hb_put: it fits and src does not overlap the room, so memcpy,
   * which becomes a few moves for a constant n.  The PTRDIFF_MAX bound
   * costs nothing then, and keeps GCC quiet about huge constant sizes. */
  if (HB__LIKELY(n < (size_t)PTRDIFF_MAX &&
                 (size_t)(w->end - w->pos) >= n && src != NULL &&
                 (s + n <= d || d + n <= s))) {
    memcpy(w->pos, src, n);
    w->pos += n;
    return HB_OK;
  }
  hb_writer t = *w;
  int rc = hb__writer_put_slow(&t, src, n);
  *w = t;
  return rc;
}

/* hb_writer_put_{u16,u32,u64}_{le,be}: put an integer in the named byte
 * order, for header and varint encoders.  Same contract as hb_writer_put
 * (src is never NULL here): HB_OK, or HB_ERANGE / HB_ENOMEM with the
 * writer and the buffer unchanged. */
#define HB__WRITER_PUT_INT(bits, order, ORD)                                 \
  static inline int hb_writer_put_u##bits##_##order(hb_writer *w,            \
                                                    uint##bits##_t v) {      \
    uint##bits##_t x = (uint##bits##_t)HB__##ORD##bits(v);                   \
    return hb_writer_put(w, &x, sizeof x);                                   \
  }
HB__WRITER_PUT_INT(16, le, LE)
HB__WRITER_PUT_INT(16, be, BE)
HB__WRITER_PUT_INT(32, le, LE)
HB__WRITER_PUT_INT(32, be, BE)
HB__WRITER_PUT_INT(64, le, LE)
HB__WRITER_PUT_INT(64, be, BE)
#undef HB__WRITER_PUT_INT

/** @return the bytes put since hb_writer_begin and not yet committed. */
static inline size_t hb_writer_pending(const hb_writer *w) {
  return (size_t)(w->pos - (w->buf->data + w->buf->len));
}

/**
 * Store the bytes put so far: hb_len(b) grows by hb_writer_pending(w).
 * The writer may go on putting (and commit again).
 * @return the number of bytes committed.
 */
static inline size_t hb_writer_commit(hb_writer *w) {
  hb_buf *b = w->buf;
  size_t n = (size_t)(w->pos - (b->data + b->len));
  HB__CHECK_DIRECT(b);
  b->len += n;
  return n;
}

/* ======================================================================== */
/*  Gather export                                                            */
/* ======================================================================== */

/**
 * The unread bytes -- from the cursor to the end -- as iovec entries, in
 * order, for writev(2) or sendmsg(2) (like evbuffer_peek).  The buffer is
 * contiguous, so that is one entry today; callers that pass room for more
 * keep working if the buffer becomes a ring.  The entries point into the
 * buffer: nothing is consumed (hb_advance does that).
 * Invalidates: nothing.  The entries are stale after any call that may
 * grow, compact or clear b.
 * @return the number of entries filled, 0 (nothing unread) to iovcnt;
 *         HB_EINVAL if iov is NULL or iovcnt < 1.
 */
HB_EXTERN int hb_peek_iov(const hb_buf *b, struct iovec *iov, int iovcnt);

#endif /* HB_STAGED_DIRECT_H */
