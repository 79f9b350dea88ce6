/*
 * hyperbuf.h -- a dynamic, contiguous byte buffer with two faces.
 *
 *   Direct mode:  a growable uint8_t buffer.  Index it, append bytes and
 *                 integers, read them back through a cursor.
 *   Visitor mode: many threads or tasks share one buffer.  A caller takes a
 *                 ticket by casting the buffer to a type; the callback runs
 *                 when the ticket comes up and sees the contents as an array
 *                 of that type.  Waiting never spins or blocks a thread unless
 *                 the caller asks for it (hb_block_on).
 *
 * Conventions used throughout:
 *   - 0 (HB_OK) is success, negative HB_E* codes are failures, and the one
 *     positive status, HB_PENDING, means "not yet".
 *   - A failing call leaves the buffer exactly as it was: length, capacity,
 *     cursor and bytes.
 *   - "Invalidates" lists the pointers a call may make stale.  Any call that
 *     may grow the buffer invalidates pointers from hb_data() and from views.
 *
 * Synchronization (who may overlap with whom):
 *
 *   call                          | may run concurrently with
 *   ------------------------------+-----------------------------------------
 *   direct-mode calls on b        | nothing else on b; and never while a
 *                                 | visitor of b is live (debug builds abort)
 *   hb_cast / hb_cast_mut on b    | each other and every visitor call on b,
 *                                 | from any thread (tickets follow the order
 *                                 | in which these calls take effect)
 *   hb_visit, hb_poll,            | calls on *other* visitors; on the same
 *   hb_block_on, hb_try_visit     | visitor only with hb_cancel
 *   hb_cancel(v)                  | anything, from any thread, including a
 *                                 | driver of v blocked or polling elsewhere
 *   hb_free(b)                    | nothing on b (returns HB_EBUSY while any
 *                                 | visitor of b is live)
 *
 * No call waits for another visitor's callback except hb_block_on.  A
 * driver or hb_cancel may wait out, briefly, what another thread is still
 * doing to the same visitor: calling its waker, or cancelling it.
 */
#ifndef HYPERBUF_H
#define HYPERBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/*  Export, version, compiler helpers                                        */
/* ======================================================================== */

#if defined(__GNUC__) && !defined(HB_STATIC_BUILD)
#define HB_EXTERN __attribute__((visibility("default")))
#else
#define HB_EXTERN
#endif

#define HB_VERSION_MAJOR 0
#define HB_VERSION_MINOR 1
#define HB_VERSION_PATCH 0
#define HB_VERSION_HEX                                                       \
  ((HB_VERSION_MAJOR << 16) | (HB_VERSION_MINOR << 8) | HB_VERSION_PATCH)

/** @return the library's version as "MAJOR.MINOR.PATCH"; never NULL. */
HB_EXTERN const char *hb_version_string(void);

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

/* ======================================================================== */
/*  Errors                                                                   */
/* ======================================================================== */

/* One list generates the codes, hb_strerror() and hb_err_name(). */
#define HB_ERRNO_MAP(XX)                                                     \
  XX(ENOMEM, -1, "out of memory")                                            \
  XX(EINVAL, -2, "invalid argument")                                         \
  XX(ERANGE, -3, "size or position out of range")                            \
  XX(EAGAIN, -4, "not ready; try again later")                               \
  XX(ECANCELED, -5, "visitor was cancelled")                                 \
  XX(EBUSY, -6, "busy: visitors are live or the visitor is running")         \
  XX(ESTATE, -7, "visitor is in the wrong state for this call")              \
  XX(EDEADLK, -8, "waiting here would deadlock")                             \
  XX(EIO, -9, "system I/O error (see errno)")                                \
  XX(EOF, -10, "end of file: the peer closed the stream")

enum {
  HB_OK = 0,
#define HB__ERR_ENUM(name, code, msg) HB_##name = (code),
  HB_ERRNO_MAP(HB__ERR_ENUM)
#undef HB__ERR_ENUM
  HB_PENDING = 1 /* hb_poll: the visitor waits; its waker will be called */
};

/**
 * Explain a status code in a short English sentence.
 * @return a static string; unknown codes give "unknown error".
 */
HB_EXTERN const char *hb_strerror(int code);

/**
 * The symbolic name of a status code, like "HB_ENOMEM".
 * @return a static string; unknown codes give "HB_UNKNOWN".
 */
HB_EXTERN const char *hb_err_name(int code);

/* ======================================================================== */
/*  Types                                                                    */
/* ======================================================================== */

typedef struct hb_buf hb_buf;
typedef struct hb_visitor hb_visitor;
typedef struct hb_view hb_view; /* what a callback sees; opaque */

/** A cast type: the element size, its alignment and its name. */
typedef struct {
  size_t size, align;
  const char *name;
} hb_type;

#ifdef __cplusplus
#define HB_TYPE(T) (hb_type{sizeof(T), HB__ALIGNOF(T), #T})
#else
#define HB_TYPE(T) ((hb_type){sizeof(T), HB__ALIGNOF(T), #T})
#endif

/**
 * A visit callback.  It runs with the buffer in the state its ticket allows:
 * shared for a read ticket, exclusive for a write ticket.  It must not block
 * and must not call direct-mode functions on the buffer.
 * @return >= 0 commits; < 0 aborts (a write visit's appends are rolled back).
 *         The value is handed back through the drivers' *result.
 */
typedef int (*hb_visit_fn)(hb_view *view, void *ctx);

/**
 * A waker: how a waiting visitor tells its owner that it can now run.
 *
 * Duties (like Rust's RawWakerVTable):
 *   - wake(arg) is called at most once per hb_poll that returned HB_PENDING,
 *     from the thread that made the visitor runnable or cancelled it, after
 *     the library has released its internal locks.
 *   - It must be cheap and thread-safe, must not block, and must not drive
 *     the visitor itself: it only arranges for hb_poll to be called again.
 *   - arg must stay valid until the visitor has finished.  A driver or
 *     hb_cancel that finds a wake call still in flight on another thread
 *     waits for it to return before it reports the visitor finished, so
 *     no wake(arg) can come after that report.
 */
typedef struct {
  void (*wake)(void *arg);
  void *arg;
} hb_waker;

/**
 * Called when a detached visit is over (see hb_visit_detached).
 * status is HB_OK (the callback ran; result holds what it returned) or
 * HB_ECANCELED (result is 0).  After it returns the library no longer
 * touches v, which may then be reused or freed.
 */
typedef void (*hb_done_fn)(hb_visitor *v, int status, int result, void *arg);

/* ======================================================================== */
/*  The buffer (direct mode)                                                 */
/* ======================================================================== */

/*
 * struct hb_buf is visible only so that the hot calls below can be inlined.
 * Every field is private: read them through the accessors, never write them.
 * A buffer is created only by hb_new, hb_new_aligned or hb_wrap.
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

/*
 * Growth policy: when an append needs more room the capacity at least
 * doubles (amortized O(1) appends), never below what was asked for, with a
 * floor of 64 bytes.  Growth keeps the buffer's alignment.  Capacity is
 * never larger than PTRDIFF_MAX.
 */

/**
 * Create an empty buffer with room for at least `capacity` bytes.  The
 * buffer's header and its first `capacity` bytes share one allocation.
 * Alignment of hb_data() is _Alignof(max_align_t).
 * @return the buffer, or NULL if memory ran out or capacity > PTRDIFF_MAX.
 */
HB_EXTERN hb_buf *hb_new(size_t capacity);

/**
 * Like hb_new, with hb_data() aligned to max(align, _Alignof(max_align_t))
 * for the buffer's whole life, growth included.
 * @return the buffer, or NULL if align is zero or not a power of two, or on
 *         the failures of hb_new.
 */
HB_EXTERN hb_buf *hb_new_aligned(size_t capacity, size_t align);

/**
 * Create a buffer holding a copy of the n bytes at src (src may be NULL
 * when n is 0).  The cursor is at 0.
 * @return the buffer, or NULL on the failures of hb_new or if src is NULL
 *         while n > 0.
 */
HB_EXTERN hb_buf *hb_wrap(const void *src, size_t n);

/** hb_wrap of a whole array object (not a pointer). */
#define HB_WRAP(array) hb_wrap((array), sizeof(array))

/**
 * Free a buffer and its bytes.  NULL is fine.
 * Requires: no other call on b or on its visitors is in progress.  Every
 * visitor of b must be finished (a driver returned HB_OK or HB_ECANCELED,
 * hb_cancel returned HB_OK, or its hb_done_fn was called): the library
 * stops touching b before it reports a visitor finished.
 * @return HB_OK, or HB_EBUSY (nothing freed) while any visitor of b is live.
 */
HB_EXTERN int hb_free(hb_buf *b);

/** @return the number of bytes stored (read or not). */
static inline size_t hb_len(const hb_buf *b) { return b->len; }

/** @return the number of bytes the buffer can hold without growing. */
static inline size_t hb_capacity(const hb_buf *b) { return b->cap; }

/** @return the alignment of hb_data(b), a power of two >= 16 on x86-64. */
HB_EXTERN size_t hb_align(const hb_buf *b);

/**
 * Direct access to the bytes: hb_data(b)[0 .. hb_len(b)) are stored, and
 * [hb_len(b) .. hb_capacity(b)) is spare room.
 * @return the pointer; stale after any call that may grow the buffer.
 */
static inline uint8_t *hb_data(hb_buf *b) { return b->data; }

/* Debug builds (NDEBUG undefined) abort when a direct-mode call that changes
 * the buffer is made while a visitor of it is live, naming the call. */
HB_EXTERN void hb__misuse(const hb_buf *b, const char *call);
#define HB__LIVE_MASK UINT64_C(0xffffffff) /* low word: live tickets/waiters */
#ifdef NDEBUG
#define HB__CHECK_DIRECT(b) ((void)0)
#else
#define HB__CHECK_DIRECT(b)                                                  \
  (HB__UNLIKELY((__atomic_load_n(&(b)->lock, __ATOMIC_RELAXED) &             \
                 HB__LIVE_MASK) |                                            \
                __atomic_load_n(&(b)->held, __ATOMIC_RELAXED))               \
       ? hb__misuse((b), __func__)                                           \
       : (void)0)
#endif

/* Out of line, cold: make room for n more bytes (see the growth policy). */
HB_EXTERN int hb__grow(hb_buf *b, size_t n);

/**
 * Make sure at least `additional` more bytes fit without growing.
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_ERANGE if len + additional overflows or exceeds
 *         PTRDIFF_MAX; HB_ENOMEM if allocation fails.  On error nothing
 *         changes.
 */
static inline int hb_reserve(hb_buf *b, size_t additional) {
  HB__CHECK_DIRECT(b);
  if (HB__LIKELY(b->cap - b->len >= additional)) return HB_OK;
  return hb__grow(b, additional);
}

/**
 * Set the length to len.  Growing fills the new bytes with `fill`;
 * shrinking pulls the cursor back to len if it was beyond it.  Capacity
 * never shrinks.
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_ERANGE or HB_ENOMEM as hb_reserve (nothing changes).
 */
HB_EXTERN int hb_resize(hb_buf *b, size_t len, uint8_t fill);

/** Set length and cursor to 0; the capacity stays. */
static inline void hb_clear(hb_buf *b) {
  HB__CHECK_DIRECT(b);
  b->len = 0;
  b->cursor = 0;
}

/**
 * Append n bytes copied from src (src may be NULL when n is 0; src may
 * point into the buffer itself).
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_EINVAL if src is NULL while n > 0; HB_ERANGE or
 *         HB_ENOMEM as hb_reserve (nothing changes in any case).
 */
static inline int hb_put(hb_buf *b, const void *src, size_t n);

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

/**
 * Append one byte.
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_ERANGE or HB_ENOMEM as hb_reserve (nothing changes).
 */
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

/* hb_put_{u16,u32,u64}_{le,be}: append an integer in the named byte order.
 * Same contract as hb_put_u8.  The f32/f64 forms store the IEEE-754 bits. */
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

/* ======================================================================== */
/*  Cursor reads                                                             */
/* ======================================================================== */

/*
 * The buffer's model (like Netty's ByteBuf): hb_len counts every byte
 * stored; a separate read cursor serves the hb_get* calls, and
 * hb_remaining = hb_len - cursor.  Reading does not remove bytes:
 * hb_compact does.
 */

/** @return hb_len(b) minus the cursor: the bytes the hb_get* calls can read. */
static inline size_t hb_remaining(const hb_buf *b) {
  return b->len - b->cursor;
}

/**
 * Copy n bytes at the cursor into dst and advance the cursor by n.
 * @return HB_OK; HB_EINVAL if dst is NULL while n > 0; HB_ERANGE if fewer
 *         than n bytes remain.  On error nothing is consumed or copied.
 */
static inline int hb_get(hb_buf *b, void *dst, size_t n);

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

/**
 * Read one byte at the cursor into *out and advance.
 * @return HB_OK; HB_ERANGE at the end (nothing consumed, *out untouched).
 */
static inline int hb_get_u8(hb_buf *b, uint8_t *out) {
  HB__CHECK_DIRECT(b);
  return hb__get_n(b, out, 1);
}

/* hb_get_{u16,u32,u64}_{le,be}: read an integer stored in the named byte
 * order.  Same contract as hb_get_u8: HB_ERANGE if too few bytes remain,
 * nothing consumed and *out untouched.  f32/f64 read IEEE-754 bits. */
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

/**
 * Move the cursor forward by n bytes without copying them.
 * @return HB_OK; HB_ERANGE if fewer than n bytes remain (nothing moves).
 */
HB_EXTERN int hb_advance(hb_buf *b, size_t n);

/**
 * Drop the bytes before the cursor: the remaining bytes move to the front,
 * the length shrinks by the old cursor, and the cursor becomes 0.
 * Invalidates: offsets into hb_data() (the bytes move); never reallocates.
 */
HB_EXTERN void hb_compact(hb_buf *b);

/* ======================================================================== */
/*  Visitor mode                                                             */
/* ======================================================================== */

/*
 * A visitor is caller-owned storage for one visit: declare it on the stack
 * or in a struct, zero-initialised (HB_VISITOR_INIT).  Life cycle:
 *
 *   idle --cast--> cast --hb_visit--> armed --(turn comes, driven)--> running
 *     ^                 \                 \                             |
 *     |                  `--hb_cancel-----`--hb_cancel--> finished <-----'
 *     `--------------- (a finished visitor may be cast again) ----'
 *
 * A visitor may be reused or freed only once it is finished: it has run
 * (a driver returned HB_OK) or it was cancelled (hb_cancel returned HB_OK,
 * or a driver returned HB_ECANCELED), or its hb_done_fn has been called.
 */
struct hb_visitor {
  /* public */
  void *data; /* free for the caller's use; the library never touches it */

  /* private: the library's; zero is the idle state */
  hb_visitor *next, *prev; /* wait-queue link, under the buffer's mutex */
  hb_buf *buf;
  hb_type type;
  hb_visit_fn fn;
  void *ctx;
  size_t reserve;
  hb_waker waker;        /* registered by hb_poll, under the mutex */
  hb_done_fn done;       /* detached visits */
  void *done_arg;
  uint32_t state;        /* phase and flags (atomic; see src/visitor.c) */
  uint32_t cookie;       /* from v's address while it was ever cast here:
                            what makes leftover bytes no visitor (atomic) */
  uint32_t armed;        /* set by hb_visit; the driving thread's alone */
  int result;            /* what the callback returned */
  void *reserved[4];
};

/** An idle visitor.  All-zero storage is the same. */
#ifdef __cplusplus
#define HB_VISITOR_INIT {}
#else
#define HB_VISITOR_INIT {0}
#endif

/**
 * Take a read ticket on b for elements of type t.  Tickets are handed out in
 * call order; a read visitor runs after every earlier write visitor has
 * finished, concurrently with neighbouring readers.
 * Requires: v is idle or finished.
 * @return HB_OK; HB_EINVAL (no ticket taken) if b or v is NULL, t.size is 0,
 *         t.align is not a power of two or exceeds hb_align(b), or t.size is
 *         not a multiple of t.align; HB_ESTATE if v is cast, armed or running.
 */
HB_EXTERN int hb_cast(hb_visitor *v, hb_buf *b, hb_type t);

/**
 * Take a write ticket: like hb_cast, and the visit runs alone, after every
 * earlier visitor, read or write, has finished.
 * @return as hb_cast.
 */
HB_EXTERN int hb_cast_mut(hb_visitor *v, hb_buf *b, hb_type t);

#define HB_CAST(v, b, T) hb_cast((v), (b), HB_TYPE(T))
#define HB_CAST_MUT(v, b, T) hb_cast_mut((v), (b), HB_TYPE(T))

/**
 * Arm a cast visitor with its callback.  A write visitor gets `reserve`
 * spare bytes before its callback runs, so appends within them never move
 * the data; a read visitor ignores `reserve`.  Nothing runs yet: a driver
 * (hb_poll, hb_block_on, hb_try_visit) runs the callback when its turn has
 * come.
 * @return HB_OK; HB_EINVAL if fn is NULL; HB_ERANGE if reserve >
 *         PTRDIFF_MAX (v stays cast, unarmed); HB_ESTATE unless v is cast
 *         and unarmed (idle, armed, running and finished visitors included).
 */
HB_EXTERN int hb_visit(hb_visitor *v, size_t reserve, hb_visit_fn fn,
                       void *ctx);

/**
 * Arm a visitor to run by itself: the callback runs on whichever thread
 * makes it runnable (the one finishing or cancelling the visitor ahead of
 * it), or here, now, if its turn has already come; then done(v, status,
 * result, done_arg) is called on the same thread.  No driver is needed (or
 * allowed: the drivers return HB_ESTATE).  hb_cancel works until it runs.
 * done may be NULL.  The callback must be short: it runs inside another
 * caller's hb_* call.
 * @return as hb_visit.
 */
HB_EXTERN int hb_visit_detached(hb_visitor *v, size_t reserve, hb_visit_fn fn,
                                void *ctx, hb_done_fn done, void *done_arg);

/**
 * Poll an armed visitor as a future.  If its turn has come the callback
 * runs now, on this thread.  Otherwise the waker is stored (replacing any
 * earlier one) and will be called once when the turn comes or the visitor
 * is cancelled; call hb_poll again then.
 * @return HB_OK (ran; *result holds the callback's return, if result is not
 *         NULL; polling again returns HB_OK and the same result);
 *         HB_PENDING; HB_ECANCELED; HB_ESTATE if v is idle, only cast, or
 *         detached; HB_EBUSY if v is running (a poll from inside its own
 *         callback).
 */
HB_EXTERN int hb_poll(hb_visitor *v, hb_waker w, int *result);

/**
 * Park this thread until the visitor has run (on this thread) or has been
 * cancelled.  A waker stored by an earlier hb_poll is dropped (not called):
 * from here on this thread waits on the visitor itself.  Waiting spins for
 * up to about 25 us (less when the buffer's recent waits were short or
 * long), then sleeps on a futex:
 * when threads hand a buffer back and forth, a waiter that sleeps turns
 * every hand-off into a wake-up at the scheduler's pace (measured here:
 * ~1.3 us per visit sleeping, ~0.1-0.4 us spinning).
 * @return HB_OK (ran; *result as hb_poll); HB_ECANCELED; HB_ESTATE as
 *         hb_poll; HB_EDEADLK if called from inside a callback on the same
 *         buffer for a visitor whose turn has not come (it never could).
 */
HB_EXTERN int hb_block_on(hb_visitor *v, int *result);

/**
 * Run the visitor now if its turn has come; never waits.
 * @return HB_OK (ran; *result as hb_poll); HB_EAGAIN (not its turn; it
 *         stays armed); HB_ECANCELED; HB_ESTATE as hb_poll.
 */
HB_EXTERN int hb_try_visit(hb_visitor *v, int *result);

/**
 * Give the ticket up: the visitor is finished without running, and the
 * queue behind it moves on.  A waker stored by hb_poll is called.  Safe
 * from any thread, also while another thread is blocked on v.
 * @return HB_OK; HB_EBUSY if v is running; HB_ESTATE if v is idle or
 *         finished (a second cancel included).
 */
HB_EXTERN int hb_cancel(hb_visitor *v);

/**
 * Cast, visit and run in one call, on this thread: visitor mode as a lock.
 * The read ticket is taken in order, like hb_cast's; if its turn has come,
 * fn runs at once, otherwise this thread waits for it as in hb_block_on.
 * The visitor is internal, so nobody can cancel it, and when nobody holds
 * a conflicting ticket or waits the call costs one atomic operation to
 * take the ticket and one to give it back.
 *
 * Biased buffers: the first thread to make a one-call visit on a buffer
 * gets the buffer biased to it, if no visitor of the buffer is live then
 * (casts that already finished do not matter).  Its one-call
 * visits then take no atomic read-modify-write at all, until any other
 * visitor (another thread's, or a caller-owned one of its own) comes; that
 * caster pays once, a few microseconds (a process-wide memory barrier),
 * and the buffer is shared from then on.  Order and exclusion are as
 * without the bias.  Off under ThreadSanitizer, which cannot see the
 * barrier, and where the kernel lacks membarrier(2).
 *
 *     int n;
 *     if (HB_READ_NOW(buf, struct packet, count_packets, &stats, &n) != HB_OK) ...
 *
 * @return HB_OK (fn ran; *result, if result is not NULL, holds what it
 *         returned); HB_EINVAL if t is a bad type (see hb_cast) or fn is
 *         NULL; HB_EDEADLK if called from inside a callback on b when the
 *         ticket cannot be granted at once (it never could be).  No ticket
 *         is taken on error.
 */
HB_EXTERN int hb_read_now(hb_buf *b, hb_type t, hb_visit_fn fn, void *ctx,
                          int *result);

/**
 * The write form of hb_read_now: exclusive, after every earlier visitor,
 * with `reserve` spare bytes made before fn runs (as hb_visit).  A negative
 * return from fn rolls its appends back; if the reservation cannot be had
 * fn does not run and *result is HB_ENOMEM.
 * @return as hb_read_now; HB_ERANGE if reserve > PTRDIFF_MAX.
 */
HB_EXTERN int hb_write_now(hb_buf *b, hb_type t, size_t reserve,
                           hb_visit_fn fn, void *ctx, int *result);

#define HB_READ_NOW(b, T, fn, ctx, resultp)                                  \
  hb_read_now((b), HB_TYPE(T), (fn), (ctx), (resultp))
#define HB_WRITE_NOW(b, T, reserve, fn, ctx, resultp)                        \
  hb_write_now((b), HB_TYPE(T), (reserve), (fn), (ctx), (resultp))

/* ======================================================================== */
/*  Views (inside a callback only)                                          */
/* ======================================================================== */

/*
 * A view sees all hb_len bytes of the buffer (the cursor is direct mode's
 * alone) as an array of the cast type.  It is valid only inside its
 * callback.  Appending may grow the buffer beyond the reservation, which
 * makes array pointers taken earlier in the callback stale: fetch them
 * again.  Rolling back an aborted write visit restores the length only:
 * in-place edits made through the array are not undone.
 */

/** @return the number of whole elements of the cast type. */
HB_EXTERN size_t hb_view_len(const hb_view *view);

/**
 * The contents as a read-only array; *count (if not NULL) gets hb_view_len.
 * @return the array (non-NULL even when empty).
 */
HB_EXTERN const void *hb_view_read_array(hb_view *view, size_t *count);

/**
 * The contents as a writable array (write visitors only).
 * @return the array; NULL (and *count = 0) in a read visitor.
 */
HB_EXTERN void *hb_view_write_array(hb_view *view, size_t *count);

/** The same memory as bytes; *nbytes gets every byte, partial elements too. */
HB_EXTERN const uint8_t *hb_view_read_bytes(hb_view *view, size_t *nbytes);

/** Writable bytes (write visitors only); NULL and *nbytes = 0 otherwise. */
HB_EXTERN uint8_t *hb_view_write_bytes(hb_view *view, size_t *nbytes);

/**
 * Append one element of the cast type (copied from elem).
 * Invalidates: array pointers taken earlier in this callback, if it grows.
 * @return HB_OK; HB_ESTATE in a read visitor; HB_EINVAL if the length is
 *         not a whole number of elements or elem is NULL; HB_ERANGE or
 *         HB_ENOMEM as hb_reserve (nothing appended).
 */
HB_EXTERN int hb_view_append(hb_view *view, const void *elem);

/** Append count elements; all or nothing.  @return as hb_view_append. */
HB_EXTERN int hb_view_append_all(hb_view *view, const void *elems,
                                 size_t count);

/** Append raw bytes (write visitors only).  @return as hb_view_append,
 *  without the whole-element rule. */
HB_EXTERN int hb_view_append_bytes(hb_view *view, const void *src, size_t n);

/** @return the bytes appended so far in this visit. */
HB_EXTERN size_t hb_view_bytes_written(const hb_view *view);

/** The cast type of the visit. */
HB_EXTERN hb_type hb_view_type(const hb_view *view);

/* Typed access: NULL (and *count = 0) if sizeof(T) is not the cast size. */
HB_EXTERN const void *hb__view_array_checked(hb_view *view, size_t size,
                                             size_t *count, int write);
#define HB_READ_ARRAY(view, T, countp)                                       \
  ((const T *)hb__view_array_checked((view), sizeof(T), (countp), 0))
#define HB_WRITE_ARRAY(view, T, countp)                                      \
  ((T *)hb__view_array_checked((view), sizeof(T), (countp), 1))

/* ======================================================================== */
/*  Wakers, event loops and I/O                                              */
/* ======================================================================== */

/*
 * These calls connect visitors to event loops and move bytes between a
 * buffer and a file descriptor (a socket, a pipe, a file).
 *
 * I/O status convention: every call returns an int status and reports the
 * bytes moved through an optional size_t out-parameter (NULL is fine),
 * which is set on every return (0 unless the status is HB_OK).
 *   HB_OK      bytes moved (possibly fewer than asked: short reads/writes)
 *   HB_EAGAIN  the descriptor is non-blocking and not ready; nothing moved
 *   HB_EOF     read() returned 0: the peer closed its end; nothing moved
 *   HB_EIO     the system call failed; errno says why; nothing moved
 * EINTR is retried inside the calls.  Writes to a socket use MSG_NOSIGNAL,
 * so a closed peer gives HB_EIO with errno EPIPE, not SIGPIPE.
 */

/**
 * Read once from fd into the buffer's spare capacity, like evbuffer_read:
 * reserve `max` bytes (growing if needed), read() up to `max` into them,
 * and commit what arrived by extending the length.  One read() per call;
 * call again until HB_EAGAIN (edge-triggered epoll) or once per readiness
 * (level-triggered).  The reserve/read/commit loop this replaces:
 *
 *     hb_reserve(b, max);
 *     n = read(fd, hb_data(b) + hb_len(b), max);    (EINTR: again)
 *     if (n > 0) hb_resize(b, hb_len(b) + n, 0);    (but without the fill)
 *
 * Requires: no visitor of b is live (direct mode; use hb_view_read_fd
 * inside a write visitor).
 * Invalidates: hb_data() and view pointers, if it grows (it may grow even
 * when nothing is read).
 * @return HB_OK (*nread >= 1 bytes appended); HB_EAGAIN; HB_EOF; HB_EIO;
 *         HB_EINVAL if max is 0; HB_ERANGE or HB_ENOMEM as hb_reserve.
 *         On every error the length and bytes are unchanged.
 */
HB_EXTERN int hb_read_fd(hb_buf *b, int fd, size_t max, size_t *nread);

/**
 * Write the bytes between the cursor and the end to fd and advance the
 * cursor past what was written.  Short writes are continued until
 * everything is written or the descriptor would block, so on a blocking
 * descriptor HB_OK means all of hb_remaining(b) went out.  The bytes stay
 * stored (hb_len is unchanged); hb_compact drops them.
 * Requires: no visitor of b is live (use hb_view_write_fd inside one).
 * @return HB_OK (*nwritten bytes written, 0 if nothing remained, fewer
 *         than hb_remaining if the descriptor would then block); HB_EAGAIN
 *         (nothing could be written); HB_EIO (errno set; the cursor stays
 *         past any bytes written before the error, *nwritten counts them).
 */
HB_EXTERN int hb_write_fd(hb_buf *b, int fd, size_t *nwritten);

/**
 * hb_read_fd from inside a write visitor: append up to `max` bytes read
 * once from fd.  No whole-element rule (a socket delivers any number of
 * bytes; hb_view_len counts whole elements).  The bytes count in
 * hb_view_bytes_written and are rolled back if the callback aborts.
 * Invalidates: array pointers taken earlier in this callback, if the
 * append goes beyond the visit's reservation.
 * @return as hb_read_fd; HB_ESTATE in a read visitor.
 */
HB_EXTERN int hb_view_read_fd(hb_view *view, int fd, size_t max,
                              size_t *nread);

/**
 * Write the buffer's bytes [offset, length) to fd from inside a read or a
 * write visitor, continuing short writes as hb_write_fd does.  Views have
 * no cursor, so the caller tracks offset (add *nwritten to it).
 * @return as hb_write_fd; HB_ERANGE if offset is beyond the length.
 */
HB_EXTERN int hb_view_write_fd(hb_view *view, int fd, size_t offset,
                               size_t *nwritten);

/**
 * Drop the first n bytes of the buffer from inside a write visitor (like
 * evbuffer_drain or hb_compact): the rest moves to the front and the
 * length shrinks by n.  Only bytes that were stored when the visit began
 * can be dropped, so the bytes appended in this visit stay intact and
 * countable.  Like in-place edits, a drain is NOT undone if the callback
 * aborts (only the appended bytes are rolled back).  Direct mode's cursor
 * moves back with the bytes (to 0 if it pointed into the dropped part).
 * Invalidates: array pointers and offsets taken earlier in this callback.
 * @return HB_OK; HB_ESTATE in a read visitor; HB_ERANGE if n exceeds the
 *         bytes left of those stored when the visit began (the length then,
 *         less what earlier drains in this visit dropped; nothing dropped).
 */
HB_EXTERN int hb_view_drain(hb_view *view, size_t n);

/*
 * A coalescing file-descriptor waker, for epoll, poll, select and io_uring
 * loops (like libuv's uv_async_send): hb_poll stores its hb_waker; when the
 * visitor may run, the waker makes `fd` readable; the loop drains the
 * waker and calls hb_poll again on the visitors that wait on it.  Any
 * number of wakes between two drains write the descriptor only once: a
 * pending flag is set, and only its 0 -> 1 transition writes.  One
 * hb_fd_waker may serve many visitors (poll each of them after a drain).
 *
 *     hb_fd_waker w;  hb_fd_waker_init(&w);
 *     epoll_ctl(ep, EPOLL_CTL_ADD, w.fd, &(struct epoll_event){EPOLLIN});
 *     if (hb_poll(&v, hb_fd_waker_get(&w), &res) == HB_PENDING)
 *       for (;;) {
 *         epoll_wait(ep, ...);           (w.fd readable)
 *         hb_fd_waker_drain(&w);         (drain first, then poll)
 *         if (hb_poll(&v, hb_fd_waker_get(&w), &res) != HB_PENDING) break;
 *       }
 *
 * Zero-initialised storage is not a valid waker: call hb_fd_waker_init.
 */
typedef struct hb_fd_waker {
  /* read-only */
  int fd;          /* readable while a wake is pending: watch this one */
  /* private */
  int wfd;         /* the end the wakers write: fd (eventfd) or a pipe's */
  uint32_t pending; /* 1 between a wake's write and the next drain (atomic) */
  uint32_t reserved;
} hb_fd_waker;

/**
 * Create the waker's descriptor: an eventfd (non-blocking, close-on-exec),
 * or a non-blocking pipe where eventfd is unavailable.
 * @return HB_OK; HB_EINVAL if w is NULL; HB_EIO (errno set) if neither
 *         could be created (w->fd is then -1).
 */
HB_EXTERN int hb_fd_waker_init(hb_fd_waker *w);

/**
 * The hb_waker to hand to hb_poll.  Its wake is thread-safe, never blocks
 * and allocates nothing.  w must stay initialised until every visitor
 * polled with it has finished.
 * @return the waker (fn + arg; arg is w).
 */
HB_EXTERN hb_waker hb_fd_waker_get(hb_fd_waker *w);

/**
 * Wake by hand (what the hb_waker does): make fd readable unless a wake
 * is already pending.  Thread-safe; never blocks.
 */
HB_EXTERN void hb_fd_waker_wake(hb_fd_waker *w);

/**
 * Consume pending wakes: empty the descriptor, then clear the pending
 * flag, in that order, so a wake racing with the drain is either seen by
 * the hb_poll calls that follow it or makes fd readable again.  Call it
 * from the loop thread before polling the visitors.
 * @return 1 if a wake was pending, 0 if not.
 */
HB_EXTERN int hb_fd_waker_drain(hb_fd_waker *w);

/**
 * Close the descriptor(s).  Requires: no visitor still holds the waker.
 * @return HB_OK; HB_EIO (errno set) if close failed (the descriptors are
 *         released anyway).
 */
HB_EXTERN int hb_fd_waker_close(hb_fd_waker *w);

/**
 * A non-coalescing waker over a descriptor the caller owns: each wake
 * writes the 8-byte value 1 to fd, which increments an eventfd, or makes a
 * non-blocking pipe readable (pass the pipe's write end).  A full pipe is
 * not an error: it is readable anyway.
 * @return the waker (arg is the descriptor, carried in the pointer).
 */
HB_EXTERN hb_waker hb_waker_eventfd(int fd);

#ifdef HB_HAVE_LIBUV
#include <uv.h>

/*
 * libuv adapter (built when libuv is present; HB_HAVE_LIBUV is then defined
 * for users of the library).  hb_uv_visit drives a visitor from a uv loop:
 * the waker is a uv_async_t, and both the visit callback and `done` run on
 * the loop thread, inside uv_run.  While the visit is outstanding the
 * async handle keeps the loop alive.
 */
typedef struct hb_uv_req hb_uv_req;

/**
 * Called on the loop thread when the visit is over: status HB_OK (the
 * callback ran; result is what it returned) or HB_ECANCELED (result 0).
 * The library no longer touches req or its visitor: both may be reused or
 * freed.
 */
typedef void (*hb_uv_done_fn)(hb_uv_req *req, int status, int result);

struct hb_uv_req {
  /* public */
  void *data;           /* free for the caller's use */
  /* read-only */
  hb_visitor *visitor;  /* the visitor being driven */
  /* private */
  uv_async_t async;
  hb_uv_done_fn done;
  int status, result;
  void *reserved[2];
};

/**
 * Arm the cast visitor v (as hb_visit) and drive it from loop: it is
 * polled on the loop thread, first on the next loop iteration and then
 * each time its waker fires; when it has run or been cancelled, the async
 * handle is closed and done(req, status, result) is called.  Nothing runs
 * before hb_uv_visit returns.  Cancel with hb_cancel(v) from any thread.
 * Requires: called on the loop's thread (it initialises a uv handle);
 * req stays valid until done has been called.
 * @return HB_OK; the errors of hb_visit (nothing started); HB_EIO if the
 *         async handle could not be created (v is then cancelled).
 */
HB_EXTERN int hb_uv_visit(uv_loop_t *loop, hb_uv_req *req, hb_visitor *v,
                          size_t reserve, hb_visit_fn fn, void *ctx,
                          hb_uv_done_fn done);

/**
 * A waker that calls uv_async_send(async), for loops that poll visitors
 * from their own async callback.  async must stay open until every
 * visitor polled with it has finished.
 * @return the waker (arg is async).
 */
HB_EXTERN hb_waker hb_uv_waker(uv_async_t *async);
#endif /* HB_HAVE_LIBUV */

/* ======================================================================== */
/*  Allocator and statistics                                                 */
/* ======================================================================== */

typedef void *(*hb_malloc_fn)(size_t size);
typedef void *(*hb_realloc_fn)(void *ptr, size_t size);
typedef void (*hb_free_fn)(void *ptr);

/**
 * Replace the allocator used for every later allocation (like
 * uv_replace_allocator).  Call it before creating buffers: memory is freed
 * with the allocator in force when it is freed.  The functions must return
 * memory aligned for max_align_t, like malloc.
 * @return HB_OK; HB_EINVAL if any function is NULL (nothing changes).
 */
HB_EXTERN int hb_set_allocator(hb_malloc_fn m, hb_realloc_fn r, hb_free_fn f);

/** Counters a user can read; a snapshot, each exact at its own moment. */
typedef struct {
  uint64_t visits_run;       /* callbacks run, read and write */
  uint64_t visits_cancelled; /* visitors cancelled */
  uint64_t visits_aborted;   /* write callbacks that returned < 0 */
  uint64_t reserve_failed;   /* visits finished with HB_ENOMEM, not run */
  uint64_t growths;          /* reallocations of the data */
  uint64_t bytes_moved;      /* bytes copied by those reallocations */
  uint64_t longest_queue;    /* most visitors ever waiting at once */
} hb_stats;

/**
 * Read b's counters into *out.  Safe while visitors are live.
 * @return HB_OK; HB_EINVAL if b or out is NULL.
 */
HB_EXTERN int hb_stats_get(hb_buf *b, hb_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* HYPERBUF_H */
