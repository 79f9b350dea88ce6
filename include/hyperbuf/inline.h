/*
 * hyperbuf/inline.h -- the inline bodies of <hyperbuf.h> and the internals
 * they need.  Included by <hyperbuf.h> at its end (inside its extern "C");
 * never include it yourself.  Every name here is hb__ / HB__ and private:
 * the API and its documentation are in <hyperbuf.h>.
 */
#ifndef HYPERBUF_INLINE_H
#define HYPERBUF_INLINE_H

#ifndef HYPERBUF_H
#error "include <hyperbuf.h>, not <hyperbuf/inline.h>"
#endif

#include <string.h> /* memcpy, expanded inline for constant sizes */

/* ---- compiler helpers --------------------------------------------------- */

#if defined(__GNUC__)
#define HB__LIKELY(x) __builtin_expect(!!(x), 1)
#define HB__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define HB__LIKELY(x) (x)
#define HB__UNLIKELY(x) (x)
#endif

#ifdef __cplusplus
#define HB__ALIGNOF(T) alignof(T)
#define HB__RESTRICT __restrict
#else
#define HB__ALIGNOF(T) _Alignof(T)
#define HB__RESTRICT restrict
#endif

#ifdef __cplusplus
#define HB__STATIC_ASSERT(c, msg) static_assert(c, msg)
#else
#define HB__STATIC_ASSERT(c, msg) _Static_assert(c, msg)
#endif

/* HB_ERRNO_MAP and the status enum are written out separately (so each
 * code can be found by name); here they are held to agree. */
#define HB__ERR_AGREE(name, code, msg)                                       \
  HB__STATIC_ASSERT(HB_##name == (code), "HB_ERRNO_MAP: HB_" #name);
HB_ERRNO_MAP(HB__ERR_AGREE)
#undef HB__ERR_AGREE

/* ---- the buffer --------------------------------------------------------- */

/*
 * struct hb_buf is visible only so that the hot calls below can be inlined.
 * Every field is private: read them through the accessors, never write them.
 */
struct hb_buf {
  /* private */
  uint8_t *data;   /* the bytes; aligned to the buffer's alignment */
  size_t len;      /* bytes stored */
  size_t cap;      /* bytes available at data */
  size_t cursor;   /* read position for the hb_get* calls, <= len */
  uint64_t lock;   /* visitor lock word (atomic; see src/visitor.c) */
  uint32_t held;   /* the biased thread's one-call visit in progress
                      (atomic; see "BIAS" in src/visitor.c) */
};

static inline size_t hb_len(const hb_buf *b) { return b->len; }
static inline size_t hb_capacity(const hb_buf *b) { return b->cap; }
static inline uint8_t *hb_data(hb_buf *b) { return b->data; }

/* Checked builds (HB_CHECKED, from the library's <hyperbuf/config.h>, never
 * the application's NDEBUG) abort when a direct-mode call that changes the
 * buffer is made while a visitor of it is live, naming the call.  The
 * library's out-of-line calls use this same macro, so inline and
 * out-of-line calls check alike. */
HB_EXTERN void hb__misuse(const hb_buf *b, const char *call);
#define HB__LIVE_MASK UINT64_C(0xffffffff) /* low word: live tickets/waiters */
#if HB_CHECKED
#define HB__CHECK_DIRECT(b)                                                  \
  (HB__UNLIKELY((__atomic_load_n(&(b)->lock, __ATOMIC_RELAXED) &             \
                 HB__LIVE_MASK) |                                            \
                __atomic_load_n(&(b)->held, __ATOMIC_RELAXED))               \
       ? hb__misuse((b), __func__)                                           \
       : (void)0)
#else
#define HB__CHECK_DIRECT(b) ((void)0)
#endif

/* Out of line, cold: make room for n more bytes (see the growth policy). */
HB_EXTERN int hb__grow(hb_buf *b, size_t n);

static inline int hb_reserve(hb_buf *b, size_t additional) {
  HB__CHECK_DIRECT(b);
  if (HB__LIKELY(b->cap - b->len >= additional)) return HB_OK;
  return hb__grow(b, additional);
}

static inline void hb_clear(hb_buf *b) {
  HB__CHECK_DIRECT(b);
  b->len = 0;
  b->cursor = 0;
}

/* The fixed-size puts: one capacity compare and a store in the common case.
 * `restrict` says the store does not alias *b within one put.  Across the
 * puts of a loop GCC 12 still reloads data and cap and stores len after
 * every byte (a uint8_t store may alias anything), so a put_u8 loop costs
 * two stores per byte where a hand-written loop with its fields in locals
 * costs one (bench/: W2). */
static inline int hb__put_n(hb_buf *HB__RESTRICT b, const void *src,
                            size_t n) {
  size_t len = b->len;
  if (HB__UNLIKELY(b->cap - len < n)) {
    int rc = hb__grow(b, n);
    if (rc != HB_OK) return rc;
  }
  memcpy(b->data + len, src, n);
  b->len = len + n;
  return HB_OK;
}

/* Out of line: every case of hb_put the inline fast path leaves (growth,
 * overlap with the destination, a NULL src), with hb_put's contract. */
HB_EXTERN int hb__put_slow(hb_buf *b, const void *src, size_t n);

/* hb_put's fast path: it fits, and src does not overlap the spare room it
 * is copied to.  Then memcpy, which the compiler expands into a few moves
 * for a constant n (it does not expand memmove): appending a fixed-size
 * record costs about what the record's copy costs. */
static inline int hb_put(hb_buf *b, const void *src, size_t n) {
  HB__CHECK_DIRECT(b);
  size_t len = b->len;
  uintptr_t d = (uintptr_t)(b->data + len), s = (uintptr_t)src;
  /* No buffer holds PTRDIFF_MAX bytes; the bound costs nothing for a
   * constant n and keeps GCC from warning about the memcpy below for
   * huge constant sizes that can only fail. */
  if (HB__LIKELY(n < (size_t)PTRDIFF_MAX && b->cap - len >= n &&
                 src != NULL && (s + n <= d || d + n <= s))) {
    memcpy(b->data + len, src, n);
    b->len = len + n;
    return HB_OK;
  }
  return hb__put_slow(b, src, n);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HB__LE16(x) __builtin_bswap16(x)
#define HB__LE32(x) __builtin_bswap32(x)
#define HB__LE64(x) __builtin_bswap64(x)
#define HB__BE16(x) (x)
#define HB__BE32(x) (x)
#define HB__BE64(x) (x)
#else
#define HB__LE16(x) (x)
#define HB__LE32(x) (x)
#define HB__LE64(x) (x)
#define HB__BE16(x) __builtin_bswap16(x)
#define HB__BE32(x) __builtin_bswap32(x)
#define HB__BE64(x) __builtin_bswap64(x)
#endif

static inline int hb_put_u8(hb_buf *HB__RESTRICT b, uint8_t v) {
  HB__CHECK_DIRECT(b);
  size_t len = b->len;
  if (HB__UNLIKELY(len == b->cap)) {
    int rc = hb__grow(b, 1);
    if (rc != HB_OK) return rc;
  }
  b->data[len] = v;
  b->len = len + 1;
  return HB_OK;
}

/* hb_put_{u16,u32,u64}_{le,be} and hb_put_{f32,f64}_{le,be}, declared one
 * by one in <hyperbuf.h>. */
#define HB__PUT_INT(bits, order, ORD)                                        \
  static inline int hb_put_u##bits##_##order(hb_buf *b, uint##bits##_t v) { \
    HB__CHECK_DIRECT(b);                                                     \
    uint##bits##_t x = (uint##bits##_t)HB__##ORD##bits(v);                   \
    return hb__put_n(b, &x, sizeof x);                                       \
  }
HB__PUT_INT(16, le, LE)
HB__PUT_INT(16, be, BE)
HB__PUT_INT(32, le, LE)
HB__PUT_INT(32, be, BE)
HB__PUT_INT(64, le, LE)
HB__PUT_INT(64, be, BE)
#undef HB__PUT_INT

#define HB__PUT_FLOAT(name, ftype, bits, order, ORD)                         \
  static inline int hb_put_##name##_##order(hb_buf *b, ftype v) {            \
    HB__CHECK_DIRECT(b);                                                     \
    uint##bits##_t u;                                                        \
    memcpy(&u, &v, sizeof u);                                                \
    u = (uint##bits##_t)HB__##ORD##bits(u);                                  \
    return hb__put_n(b, &u, sizeof u);                                       \
  }
HB__PUT_FLOAT(f32, float, 32, le, LE)
HB__PUT_FLOAT(f32, float, 32, be, BE)
HB__PUT_FLOAT(f64, double, 64, le, LE)
HB__PUT_FLOAT(f64, double, 64, be, BE)
#undef HB__PUT_FLOAT

/* ---- spare room, then commit -------------------------------------------- */

/* Out of line, cold: hb_spare when the room must grow (or spare is NULL). */
HB_EXTERN int hb__spare_slow(hb_buf *b, size_t n, uint8_t **spare);

static inline int hb_spare(hb_buf *b, size_t n, uint8_t **spare) {
  HB__CHECK_DIRECT(b);
  if (HB__LIKELY(spare != NULL && b->cap - b->len >= n)) {
    *spare = b->data + b->len;
    return HB_OK;
  }
  return hb__spare_slow(b, n, spare);
}

static inline int hb_commit(hb_buf *b, size_t k) {
  HB__CHECK_DIRECT(b);
  if (HB__UNLIKELY(b->cap - b->len < k)) return HB_ERANGE;
  b->len += k;
  return HB_OK;
}

/* ---- the writer session ------------------------------------------------- */

struct hb_writer {
  /* private */
  uint8_t *pos; /* where the next byte goes */
  uint8_t *end; /* the end of the room: hb_data(b) + hb_capacity(b) */
  hb_buf *buf;
};

static inline void hb_writer_begin(hb_writer *w, hb_buf *b) {
  HB__CHECK_DIRECT(b);
  w->buf = b;
  w->pos = b->data + b->len;
  w->end = b->data + b->cap;
}

/* Out of line, cold: grow for n more bytes, keeping the uncommitted ones;
 * and every case of hb_writer_put its fast path leaves (growth, overlap
 * with the room, a NULL src).  Both are called on a copy of the writer, so
 * the caller's writer never has its address taken and can stay in
 * registers: a byte store through w->pos cannot alias it. */
HB_EXTERN int hb__writer_grow(hb_writer *w, size_t n);
HB_EXTERN int hb__writer_put_slow(hb_writer *w, const void *src, size_t n);

static inline int hb_writer_put_u8(hb_writer *w, uint8_t v) {
  if (HB__UNLIKELY(w->pos == w->end)) {
    hb_writer t = *w;
    int rc = hb__writer_grow(&t, 1);
    *w = t;
    if (rc != HB_OK) return rc;
  }
  *w->pos++ = v;
  return HB_OK;
}

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

/* hb_writer_put_{u16,u32,u64}_{le,be}, declared one by one in
 * <hyperbuf.h>. */
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

static inline size_t hb_writer_pending(const hb_writer *w) {
  return (size_t)(w->pos - (w->buf->data + w->buf->len));
}

static inline size_t hb_writer_commit(hb_writer *w) {
  hb_buf *b = w->buf;
  HB__CHECK_DIRECT(b);
  size_t n = (size_t)(w->pos - (b->data + b->len));
  b->len += n;
  return n;
}

/* ---- cursor reads ------------------------------------------------------- */

static inline size_t hb_remaining(const hb_buf *b) {
  return b->len - b->cursor;
}

static inline int hb__get_n(hb_buf *b, void *dst, size_t n) {
  size_t cur = b->cursor;
  if (HB__UNLIKELY(b->len - cur < n)) return HB_ERANGE;
  memcpy(dst, b->data + cur, n);
  b->cursor = cur + n;
  return HB_OK;
}

/* Out of line: hb_get's error cases (a NULL dst, too few bytes). */
HB_EXTERN int hb__get_slow(hb_buf *b, void *dst, size_t n);

/* hb_get's fast path, inline so that a constant n becomes a few moves. */
static inline int hb_get(hb_buf *b, void *dst, size_t n) {
  HB__CHECK_DIRECT(b);
  size_t cur = b->cursor;
  if (HB__LIKELY(n < (size_t)PTRDIFF_MAX && b->len - cur >= n &&
                 dst != NULL)) {
    memcpy(dst, b->data + cur, n);
    b->cursor = cur + n;
    return HB_OK;
  }
  return hb__get_slow(b, dst, n);
}

static inline int hb_advance(hb_buf *b, size_t n) {
  HB__CHECK_DIRECT(b);
  if (HB__UNLIKELY(b->len - b->cursor < n)) return HB_ERANGE;
  b->cursor += n;
  return HB_OK;
}

static inline int hb_get_u8(hb_buf *b, uint8_t *out) {
  HB__CHECK_DIRECT(b);
  return hb__get_n(b, out, 1);
}

/* hb_get_{u16,u32,u64}_{le,be} and hb_get_{f32,f64}_{le,be}, declared one
 * by one in <hyperbuf.h>. */
#define HB__GET_INT(bits, order, ORD)                                        \
  static inline int hb_get_u##bits##_##order(hb_buf *b,                      \
                                             uint##bits##_t *out) {          \
    HB__CHECK_DIRECT(b);                                                     \
    uint##bits##_t x;                                                        \
    int rc = hb__get_n(b, &x, sizeof x);                                     \
    if (rc == HB_OK) *out = (uint##bits##_t)HB__##ORD##bits(x);              \
    return rc;                                                               \
  }
HB__GET_INT(16, le, LE)
HB__GET_INT(16, be, BE)
HB__GET_INT(32, le, LE)
HB__GET_INT(32, be, BE)
HB__GET_INT(64, le, LE)
HB__GET_INT(64, be, BE)
#undef HB__GET_INT

#define HB__GET_FLOAT(name, ftype, bits, order, ORD)                         \
  static inline int hb_get_##name##_##order(hb_buf *b, ftype *out) {         \
    HB__CHECK_DIRECT(b);                                                     \
    uint##bits##_t u;                                                        \
    int rc = hb__get_n(b, &u, sizeof u);                                     \
    if (rc == HB_OK) {                                                       \
      u = (uint##bits##_t)HB__##ORD##bits(u);                                \
      memcpy(out, &u, sizeof u);                                             \
    }                                                                        \
    return rc;                                                               \
  }
HB__GET_FLOAT(f32, float, 32, le, LE)
HB__GET_FLOAT(f32, float, 32, be, BE)
HB__GET_FLOAT(f64, double, 64, le, LE)
HB__GET_FLOAT(f64, double, 64, be, BE)
#undef HB__GET_FLOAT

/* ---- views -------------------------------------------------------------- */

/*
 * struct hb_view is visible only so that HB_READ_ARRAY / HB_WRITE_ARRAY can
 * be inlined into the callback.  Every field is private.  The library's
 * driver builds it on its stack for each visit (src/visit.h).
 */
struct hb_view {
  /* private */
  hb_buf *buf;
  const hb_type *type; /* the cast type (the visitor's, or hb_*_now's) */
  size_t start_len;    /* length when the visit began: the rollback point */
  size_t size;         /* cast element size */
  size_t skip;         /* stream: bytes of hb_data() before the view's
                          first byte (its window; 0 but on a stream) */
  int write;           /* a write visit */
  int eof;             /* stream: it was closed when the visit began */
};

/* HB_READ_ARRAY / HB_WRITE_ARRAY: the array if sizeof(T) is the cast size
 * (and, for write, the visit is a write visit), else NULL and *count = 0.
 * The library exports hb__view_array_checked, which programs built before
 * this inline body call; the macro below makes the two macros of
 * <hyperbuf.h> expand to the inline body instead.  Inline, the size is a
 * constant: the count's division becomes a shift or a multiply, and
 * disappears with the count when the callback never reads it.  Out of
 * line, the call, its argument set-up and that division cost a W4 visit
 * ~20 instructions of ~140. */
HB_EXTERN const void *hb__view_array_checked(hb_view *view, size_t size,
                                             size_t *count, int write);

/* n / size, a shift for the power-of-two sizes most types have (a
 * division costs tens of cycles); for a constant size both fold away. */
static inline size_t hb__div_size(size_t n, size_t size) {
#if defined(__GNUC__)
  if (HB__LIKELY((size & (size - 1)) == 0))
    return n >> __builtin_ctzll(size);
#endif
  return n / size;
}

static inline const void *hb__view_array(hb_view *view, size_t size,
                                         size_t *count, int write) {
  if (HB__UNLIKELY(size != view->size || (write && !view->write))) {
    if (count != NULL) *count = 0;
    return NULL;
  }
  if (count != NULL) *count = hb__div_size(view->buf->len - view->skip, size);
  return view->buf->data + view->skip;
}
#define hb__view_array_checked(view, size, count, write)                     \
  hb__view_array((view), (size), (count), (write))

#endif /* HYPERBUF_INLINE_H */
