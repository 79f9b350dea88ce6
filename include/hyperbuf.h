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
 *                                 | visitor of b is live (checked builds abort)
 *   hb_cast / hb_cast_mut on b    | each other and every visitor call on b,
 *                                 | from any thread (tickets follow the order
 *                                 | in which these calls take effect)
 *   hb_read_now / hb_write_now    | as hb_cast (they take a ticket in order)
 *     on b                        |
 *   hb_visit, hb_visit_detached,  | calls on *other* visitors; on the same
 *   hb_poll, hb_block_on,         | visitor only with hb_cancel
 *   hb_try_visit                  |
 *   hb_cancel(v)                  | anything, from any thread, including a
 *                                 | driver of v blocked or polling elsewhere
 *                                 | and another hb_cancel(v)
 *   hb_stats_get(b)               | anything on b but hb_free (a snapshot)
 *   hb_stream_open(b)             | nothing on b (direct mode)
 *   hb_cast_from, hb_stream_close,| each other and every visitor call on b,
 *   hb_consumer_* on stream b     | from any thread, callbacks included (a
 *                                 | consumer's own calls: one at a time)
 *   hb_free(b)                    | nothing on b (returns HB_EBUSY while any
 *                                 | visitor of b is live, a reader waits for
 *                                 | data or a consumer is registered)
 *   hb_fd_waker_wake, its hb_waker| each other and hb_fd_waker_drain, from
 *                                 | any thread
 *   hb_fd_waker_drain(w)          | wakes; one drain at a time (the loop's)
 *   hb_fd_waker_init / _close(w)  | nothing on w
 *
 * No call waits for another visitor's callback, waker or done except
 * hb_block_on (and hb_*_now) waiting for its own turn.  A driver or
 * hb_cancel may wait out, briefly, what another thread is still doing to
 * the same visitor: calling its waker, cancelling it, or (hb_cancel) a
 * driver of it parked or registering elsewhere leaving it.
 *
 * Re-entrancy: visit callbacks, wakers and detached dones may call any
 * library function on any visitor or buffer, and every such call returns
 * at once.  Where waiting could only be waiting for the calling thread
 * itself, the answer is an error instead: HB_EBUSY for the visitor whose
 * callback is running, HB_EDEADLK for a driver called from inside the
 * visitor's own waker, and HB_EDEADLK for hb_block_on / hb_*_now where
 * they would wait inside a waker (which must not block) or inside a
 * callback or done on the same buffer.  A waker cancelling its own
 * granted visitor, or a sibling granted with it, cancels it; a done
 * driving a visitor its release made runnable runs it.  Re-arming a
 * detached visitor from its done runs in constant stack space.
 *
 * Shutdown: once hb_cancel(v) has returned HB_OK (or HB_ESTATE for a
 * finished v), or a driver has reported v finished, the library touches
 * neither v nor its buffer on v's behalf -- a hb_block_on(v) parked on
 * another thread included (hb_cancel waits for it to let go).  So "cancel
 * every visitor, free the buffer, then join the threads" is safe.  (A
 * driver call on v that is only starting on another thread, not yet
 * parked or registering, may still read v's state word once to learn
 * that it was cancelled -- never the buffer -- so v's own storage should
 * outlive the threads that drive it, as it does when they own it.)
 *
 * Checked builds (the library's build decides, for every call alike):
 *   HB_CHECKED, defined by <hyperbuf/config.h> which the library's build
 *   generates and installs, is 1 when the library was built without NDEBUG
 *   (a debug build) and 0 otherwise.  With 1, every direct-mode call that
 *   changes the buffer or its cursor -- inline (hb_put*, hb_get*,
 *   hb_reserve, hb_clear, hb_advance, hb_spare, hb_commit, hb_writer_begin,
 *   hb_writer_commit) or not (hb_resize, hb_compact, hb_read_fd,
 *   hb_write_fd) -- aborts with a message naming the call when
 *   a visitor of the buffer is live.  With 0 none checks and none pays for
 *   a check.  The application's own NDEBUG plays no part: an application
 *   built with assertions on over a release install still gets the
 *   unchecked inline calls.
 *
 * Headers:
 *   <hyperbuf.h>      this file: the C API, nothing outside the C library
 *   <hyperbuf_uv.h>   the libuv adapter (links -lhyperbuf-uv; includes
 *                     <uv.h>, which nothing else here does)
 *   <hyperbuf.hpp>    C++ RAII wrappers and a C++20 awaitable
 *   <hyperbuf/...>    included by the above; never include them yourself
 *
 * The sections below: export and version, status codes, types, direct mode
 * (the buffer, appends, cursor reads, file descriptors), visitor mode,
 * views, wakers, allocator and statistics.  Inline bodies and internals
 * (every hb__ and HB__ name) live in <hyperbuf/inline.h>, included last.
 */
/** @file hyperbuf.h
 *  The C API: direct mode, visitor mode, views, wakers.  The opening
 *  comment of the header has the conventions, the synchronization table
 *  and the rule for checked builds. */
#ifndef HYPERBUF_H
#define HYPERBUF_H

#include <stddef.h>
#include <stdint.h>

#include "hyperbuf/config.h" /* HB_CHECKED: see "Checked builds" above */

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/*  Export and version                                                       */
/* ======================================================================== */

/** Marks the library's exported functions (default visibility in the
 *  shared library, which hides everything else). */
#if defined(__GNUC__) && !defined(HB_STATIC_BUILD)
#define HB_EXTERN __attribute__((visibility("default")))
#else
#define HB_EXTERN
#endif

#define HB_VERSION_MAJOR 0 /**< incompatible API changes */
#define HB_VERSION_MINOR 1 /**< compatible additions */
#define HB_VERSION_PATCH 0 /**< fixes */
/** The version as one number, 0xMMmmpp, for preprocessor comparisons. */
#define HB_VERSION_HEX                                                       \
  ((HB_VERSION_MAJOR << 16) | (HB_VERSION_MINOR << 8) | HB_VERSION_PATCH)

/** @return the library's version as "MAJOR.MINOR.PATCH"; never NULL. */
HB_EXTERN const char *hb_version_string(void);

/* ======================================================================== */
/*  Status codes                                                             */
/* ======================================================================== */

/** The status codes every call returns: HB_OK, the HB_E* failures (< 0)
 *  and HB_PENDING. */
enum {
  HB_OK = 0,         /**< success */
  HB_ENOMEM = -1,    /**< out of memory */
  HB_EINVAL = -2,    /**< invalid argument */
  HB_ERANGE = -3,    /**< size or position out of range */
  HB_EAGAIN = -4,    /**< not ready; try again later */
  HB_ECANCELED = -5, /**< visitor was cancelled */
  HB_EBUSY = -6,     /**< busy: visitors are live or the visitor is running */
  HB_ESTATE = -7,    /**< visitor is in the wrong state for this call */
  HB_EDEADLK = -8,   /**< waiting here would deadlock */
  HB_EIO = -9,       /**< system I/O error (see errno) */
  HB_EOF = -10,      /**< end of file: the peer closed the stream */
  HB_ECLOSED = -11,  /**< the stream is closed: no more writes */
  HB_ENOSPC = -12,   /**< the stream is full: a consumer lags by its limit */
  HB_PENDING = 1     /**< hb_poll: the visitor waits; its waker will be
                          called */
};

/**
 * The failure codes as XX(name, code, message) rows, one per HB_E* code,
 * for switch statements and tables (hb_strerror and hb_err_name are made
 * from it).  <hyperbuf/inline.h> checks at compile time that every row
 * agrees with the enum above.
 */
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
  XX(EOF, -10, "end of file: the peer closed the stream")                   \
  XX(ECLOSED, -11, "the stream is closed: no more writes")                   \
  XX(ENOSPC, -12, "the stream is full: a consumer lags by its limit")

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

/** A buffer: made by hb_new, hb_new_aligned or hb_wrap; see direct mode. */
typedef struct hb_buf hb_buf;
/** A visitor: caller-owned storage for one visit; see visitor mode. */
typedef struct hb_visitor hb_visitor;
/** What a visit callback sees of the buffer; opaque; see views. */
typedef struct hb_view hb_view;

/** A cast type: the element size, its alignment and its name. */
typedef struct {
  size_t size;      /**< sizeof the element type */
  size_t align;     /**< its alignment, a power of two dividing size */
  const char *name; /**< its name, for messages */
} hb_type;

/** The hb_type of the type T, as HB_CAST and the *_now macros pass it. */
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
 *     the visitor itself: it only arranges for hb_poll to be called again
 *     (a driver called on the visitor from inside its own waker returns
 *     HB_EDEADLK).  It may cancel the visitor, or any other.
 *   - arg must stay valid until the visitor has finished.  A driver or
 *     hb_cancel that finds a wake call still in flight on another thread
 *     waits for it to return before it reports the visitor finished, so
 *     no wake(arg) can come after that report.
 */
typedef struct {
  void (*wake)(void *arg); /**< called with arg when the visitor may run */
  void *arg;               /**< the waker's own state */
} hb_waker;

/**
 * Called when a detached visit is over (see hb_visit_detached).
 * status is HB_OK (the visit completed: result holds what the callback
 * returned, or HB_ENOMEM if its reservation could not be had and it did
 * not run) or HB_ECANCELED (result is 0).  It is called after the wakers
 * of the visitors v's release made runnable, so it may drive or cancel
 * them.  It runs as if inside a visit of v's buffer: hb_block_on and
 * hb_*_now there answer HB_EDEADLK rather than wait for a turn on it.
 * After it returns the library no longer touches v, which may then be
 * reused or freed (or cast and armed again, here: see hb_visit_detached).
 */
typedef void (*hb_done_fn)(hb_visitor *v, int status, int result, void *arg);

/* ======================================================================== */
/*  The buffer (direct mode)                                                 */
/* ======================================================================== */

/*
 * A buffer is created only by hb_new, hb_new_aligned or hb_wrap, and is
 * reached only through a pointer.  Its struct is in <hyperbuf/inline.h>,
 * visible only so that the hot calls can be inlined; every field is
 * private.
 */

/*
 * Growth policy: when an append needs more room the capacity at least
 * doubles (amortized O(1) appends), never below what was asked for, with a
 * floor of 64 bytes.  Growth keeps the buffer's alignment.  Capacity is
 * never larger than PTRDIFF_MAX.
 */

/**
 * Create an empty buffer with room for at least `capacity` bytes.  The
 * buffer's header and its first `capacity` bytes share one allocation,
 * laid out so that the lock word and the first 16 bytes share a cache
 * line.  The hb_buf pointer points inside that allocation (as an sds
 * string does), so a leak checker reports a buffer still live at exit as
 * "possibly lost" rather than "still reachable": free buffers before exit.
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
static inline size_t hb_len(const hb_buf *b);

/** @return the number of bytes the buffer can hold without growing. */
static inline size_t hb_capacity(const hb_buf *b);

/** @return the alignment of hb_data(b), a power of two >= 16 on x86-64. */
HB_EXTERN size_t hb_align(const hb_buf *b);

/**
 * Direct access to the bytes: hb_data(b)[0 .. hb_len(b)) are stored, and
 * [hb_len(b) .. hb_capacity(b)) is spare room.
 * @return the pointer; stale after any call that may grow the buffer.
 */
static inline uint8_t *hb_data(hb_buf *b);

/**
 * Make sure at least `additional` more bytes fit without growing.
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_ERANGE if len + additional overflows or exceeds
 *         PTRDIFF_MAX; HB_ENOMEM if allocation fails.  On error nothing
 *         changes.
 */
static inline int hb_reserve(hb_buf *b, size_t additional);

/**
 * Set the length to len.  Growing fills the new bytes with `fill`;
 * shrinking pulls the cursor back to len if it was beyond it.  Capacity
 * never shrinks.
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_ERANGE or HB_ENOMEM as hb_reserve (nothing changes).
 */
HB_EXTERN int hb_resize(hb_buf *b, size_t len, uint8_t fill);

/** Set length and cursor to 0; the capacity stays. */
static inline void hb_clear(hb_buf *b);

/**
 * Append n bytes copied from src (src may be NULL when n is 0; src may
 * point into the buffer itself).
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_EINVAL if src is NULL while n > 0; HB_ERANGE or
 *         HB_ENOMEM as hb_reserve (nothing changes in any case).
 */
static inline int hb_put(hb_buf *b, const void *src, size_t n);

/**
 * Append one byte.
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_ERANGE or HB_ENOMEM as hb_reserve (nothing changes).
 */
static inline int hb_put_u8(hb_buf *b, uint8_t v);

/*
 * Integers in a named byte order (le: least significant byte first, be:
 * most significant first) and IEEE-754 floats by their bits.  Each is one
 * capacity compare and a store in the common case, and each has
 * hb_put_u8's contract: HB_OK, or HB_ERANGE / HB_ENOMEM with nothing
 * changed.
 */

/** Append v as 2 bytes, little-endian.  @return as hb_put_u8. */
static inline int hb_put_u16_le(hb_buf *b, uint16_t v);
/** Append v as 2 bytes, big-endian.  @return as hb_put_u8. */
static inline int hb_put_u16_be(hb_buf *b, uint16_t v);
/** Append v as 4 bytes, little-endian.  @return as hb_put_u8. */
static inline int hb_put_u32_le(hb_buf *b, uint32_t v);
/** Append v as 4 bytes, big-endian.  @return as hb_put_u8. */
static inline int hb_put_u32_be(hb_buf *b, uint32_t v);
/** Append v as 8 bytes, little-endian.  @return as hb_put_u8. */
static inline int hb_put_u64_le(hb_buf *b, uint64_t v);
/** Append v as 8 bytes, big-endian.  @return as hb_put_u8. */
static inline int hb_put_u64_be(hb_buf *b, uint64_t v);
/** Append the 4 bytes of v's IEEE-754 bits, little-endian.
 *  @return as hb_put_u8. */
static inline int hb_put_f32_le(hb_buf *b, float v);
/** Append the 4 bytes of v's IEEE-754 bits, big-endian.
 *  @return as hb_put_u8. */
static inline int hb_put_f32_be(hb_buf *b, float v);
/** Append the 8 bytes of v's IEEE-754 bits, little-endian.
 *  @return as hb_put_u8. */
static inline int hb_put_f64_le(hb_buf *b, double v);
/** Append the 8 bytes of v's IEEE-754 bits, big-endian.
 *  @return as hb_put_u8. */
static inline int hb_put_f64_be(hb_buf *b, double v);

/* ======================================================================== */
/*  Spare room, then commit                                                  */
/* ======================================================================== */

/*
 * For code that produces bytes in place -- read(2) or recvmsg(2), a TLS
 * library's decrypt, a compressor, an io_uring completion, a codec that
 * writes its length prefix after the payload: ask for room, let the
 * producer fill it, then commit what it wrote (libevent's
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
 * hb_view_spare and hb_view_commit (views section) do the same inside a
 * write visit.
 */

/**
 * Point *spare at n or more bytes of spare room just after the stored
 * bytes, growing the buffer first if fewer than n are spare.  The caller
 * writes into them, then hb_commit appends those it wrote.
 * Invalidates: hb_data(), view pointers and earlier spare pointers, if it
 * grows.
 * @return HB_OK (*spare is hb_data(b) + hb_len(b), with at least n bytes
 *         up to hb_capacity(b)); HB_EINVAL if spare is NULL; HB_ERANGE or
 *         HB_ENOMEM as hb_reserve (*spare untouched, nothing changes).
 */
static inline int hb_spare(hb_buf *b, size_t n, uint8_t **spare);

/**
 * Append the first k bytes of the spare room, as the caller wrote them
 * since hb_spare.  k should be at most the n asked of hb_spare; the
 * library checks only that k bytes are spare (bytes the caller did not
 * write are indeterminate, and committing them stores whatever is there).
 * Never grows.  Invalidates nothing.
 * @return HB_OK; HB_ERANGE if k > hb_capacity(b) - hb_len(b) (nothing
 *         changes).
 */
static inline int hb_commit(hb_buf *b, size_t k);

/* ======================================================================== */
/*  The writer session                                                       */
/* ======================================================================== */

/*
 * A loop of hb_put_u8 stores the buffer's length after every byte: the
 * compiler must assume a byte store may overwrite it (character types
 * alias everything), so each put leaves the length in memory, and that
 * second store per byte costs 3x here (bench/ISSUE14.md, W2).  A writer
 * keeps the write position and the end of the room in the caller's
 * locals, where no byte store can reach them, and stores the length once,
 * at hb_writer_commit: a header or varint encoder then runs at the speed
 * of a hand-written array.  Declare the writer as a local and pass it
 * only to these calls: that is what lets the compiler keep it in
 * registers (its slow paths work on a copy).
 *
 *     hb_writer w;
 *     hb_writer_begin(&w, b);
 *     for (...) if (hb_writer_put_u8(&w, byte) != HB_OK) goto fail;
 *     hb_writer_commit(&w);                   (hb_len(b) grows here)
 *
 * Requires: from hb_writer_begin until the last hb_writer_commit, no other
 * call on b (direct or visitor mode) and no other writer on b.  Bytes put
 * but not committed are not stored: hb_len(b) does not count them, and a
 * writer may be dropped without a commit (its bytes are then spare room
 * again).  Growth keeps them.  A failed put changes neither the writer nor
 * the buffer.
 */

/** A writer session on one buffer; caller storage, fields private. */
typedef struct hb_writer hb_writer;

/** Start a writer on b, at its end.  Allocates nothing; cannot fail. */
static inline void hb_writer_begin(hb_writer *w, hb_buf *b);

/**
 * Put one byte.
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_ERANGE or HB_ENOMEM as hb_reserve (the writer and the
 *         buffer are unchanged).
 */
static inline int hb_writer_put_u8(hb_writer *w, uint8_t v);

/**
 * Put n bytes copied from src (src may be NULL when n is 0, and may point
 * into the buffer's own bytes).
 * Invalidates: hb_data() and view pointers, if it grows.
 * @return HB_OK; HB_EINVAL if src is NULL while n > 0; HB_ERANGE or
 *         HB_ENOMEM as hb_reserve (nothing changes in any case).
 */
static inline int hb_writer_put(hb_writer *w, const void *src, size_t n);

/** Put v as 2 bytes, little-endian.  @return as hb_writer_put_u8. */
static inline int hb_writer_put_u16_le(hb_writer *w, uint16_t v);
/** Put v as 2 bytes, big-endian.  @return as hb_writer_put_u8. */
static inline int hb_writer_put_u16_be(hb_writer *w, uint16_t v);
/** Put v as 4 bytes, little-endian.  @return as hb_writer_put_u8. */
static inline int hb_writer_put_u32_le(hb_writer *w, uint32_t v);
/** Put v as 4 bytes, big-endian.  @return as hb_writer_put_u8. */
static inline int hb_writer_put_u32_be(hb_writer *w, uint32_t v);
/** Put v as 8 bytes, little-endian.  @return as hb_writer_put_u8. */
static inline int hb_writer_put_u64_le(hb_writer *w, uint64_t v);
/** Put v as 8 bytes, big-endian.  @return as hb_writer_put_u8. */
static inline int hb_writer_put_u64_be(hb_writer *w, uint64_t v);

/** @return the bytes put since hb_writer_begin (or the last commit) and not
 *          yet committed. */
static inline size_t hb_writer_pending(const hb_writer *w);

/**
 * Store the bytes put so far: hb_len(b) grows by hb_writer_pending(w).
 * The writer may go on putting, and commit again.  Invalidates nothing.
 * @return the number of bytes committed.
 */
static inline size_t hb_writer_commit(hb_writer *w);

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
static inline size_t hb_remaining(const hb_buf *b);

/**
 * Copy n bytes at the cursor into dst and advance the cursor by n.
 * @return HB_OK; HB_EINVAL if dst is NULL while n > 0; HB_ERANGE if fewer
 *         than n bytes remain.  On error nothing is consumed or copied.
 */
static inline int hb_get(hb_buf *b, void *dst, size_t n);

/**
 * Read one byte at the cursor into *out and advance.
 * @return HB_OK; HB_ERANGE at the end (nothing consumed, *out untouched).
 */
static inline int hb_get_u8(hb_buf *b, uint8_t *out);

/*
 * Integers stored in a named byte order, and IEEE-754 floats by their
 * bits, read at the cursor.  Each has hb_get_u8's contract: HB_OK and the
 * cursor advanced, or HB_ERANGE if too few bytes remain, with nothing
 * consumed and *out untouched.
 */

/** Read 2 bytes as a little-endian integer.  @return as hb_get_u8. */
static inline int hb_get_u16_le(hb_buf *b, uint16_t *out);
/** Read 2 bytes as a big-endian integer.  @return as hb_get_u8. */
static inline int hb_get_u16_be(hb_buf *b, uint16_t *out);
/** Read 4 bytes as a little-endian integer.  @return as hb_get_u8. */
static inline int hb_get_u32_le(hb_buf *b, uint32_t *out);
/** Read 4 bytes as a big-endian integer.  @return as hb_get_u8. */
static inline int hb_get_u32_be(hb_buf *b, uint32_t *out);
/** Read 8 bytes as a little-endian integer.  @return as hb_get_u8. */
static inline int hb_get_u64_le(hb_buf *b, uint64_t *out);
/** Read 8 bytes as a big-endian integer.  @return as hb_get_u8. */
static inline int hb_get_u64_be(hb_buf *b, uint64_t *out);
/** Read 4 bytes as little-endian IEEE-754 bits.  @return as hb_get_u8. */
static inline int hb_get_f32_le(hb_buf *b, float *out);
/** Read 4 bytes as big-endian IEEE-754 bits.  @return as hb_get_u8. */
static inline int hb_get_f32_be(hb_buf *b, float *out);
/** Read 8 bytes as little-endian IEEE-754 bits.  @return as hb_get_u8. */
static inline int hb_get_f64_le(hb_buf *b, double *out);
/** Read 8 bytes as big-endian IEEE-754 bits.  @return as hb_get_u8. */
static inline int hb_get_f64_be(hb_buf *b, double *out);

/**
 * Move the cursor forward by n bytes without copying them: the way to
 * consume what was read in place (hb_data(b) + hb_len(b) -
 * hb_remaining(b), or hb_peek_iov).  Inline, so a parse loop's cursor
 * does not go through a call per packet (bench/ISSUE14.md, W3-fresh).
 * @return HB_OK; HB_ERANGE if fewer than n bytes remain (nothing moves).
 */
static inline int hb_advance(hb_buf *b, size_t n);

/**
 * Drop the bytes before the cursor: the remaining bytes move to the front,
 * the length shrinks by the old cursor, and the cursor becomes 0.
 * Invalidates: offsets into hb_data() (the bytes move); never reallocates.
 */
HB_EXTERN void hb_compact(hb_buf *b);

/* ======================================================================== */
/*  File descriptors (direct mode)                                           */
/* ======================================================================== */

/*
 * These calls move bytes between a buffer and a file descriptor (a socket,
 * a pipe, a file); the views section has the same inside a visitor.
 *
 * I/O status convention: every call returns an int status and reports the
 * bytes moved through an optional size_t out-parameter (NULL is fine),
 * which is set on every return (0 unless the status is HB_OK).
 *   HB_OK      bytes moved (possibly fewer than asked: short reads/writes)
 *   HB_EAGAIN  the descriptor is non-blocking and not ready; nothing moved
 *   HB_EOF     read() returned 0: the peer closed its end; nothing moved
 *   HB_EIO     the system call failed; errno says why; nothing moved
 * EINTR is retried inside the calls.  Writes to a socket use MSG_NOSIGNAL,
 * so a closed peer gives HB_EIO with errno EPIPE, not SIGPIPE -- or with
 * ECONNRESET first, when the peer reset the connection (a TCP peer that
 * closed with data unread does); treat both as "the peer is gone".
 */

/**
 * Read once from fd into the buffer's spare capacity, like evbuffer_read:
 * reserve `max` bytes (growing if needed), read() up to `max` into them,
 * and commit what arrived by extending the length.  One read() per call;
 * call again until HB_EAGAIN (edge-triggered epoll) or once per readiness
 * (level-triggered).  The spare-room loop this replaces (use that one
 * for recvmsg, io_uring or a TLS library's reads):
 *
 *     uint8_t *room;
 *     hb_spare(b, max, &room);
 *     n = read(fd, room, max);                      (EINTR: again)
 *     if (n > 0) hb_commit(b, (size_t)n);
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

/* <sys/uio.h> defines it; include that to call hb_peek_iov. */
struct iovec;

/**
 * The unread bytes -- from the cursor to the end -- as iovec entries, in
 * order, for writev(2) or sendmsg(2) (like evbuffer_peek).  The buffer is
 * contiguous, so that is one entry today; callers that pass room for more
 * keep working if the buffer becomes a ring.  The entries point into the
 * buffer: nothing is consumed (hb_advance does that).
 * Invalidates nothing; the entries are stale after any call that may grow,
 * compact or clear b.
 * @return the number of entries filled, 0 (nothing unread) to iovcnt;
 *         HB_EINVAL if iov is NULL or iovcnt < 1.
 */
HB_EXTERN int hb_peek_iov(const hb_buf *b, struct iovec *iov, int iovcnt);

/**
 * Write the bytes between the cursor and the end to fd and advance the
 * cursor past what was written: hb_peek_iov's entries, in one sendmsg(2)
 * (writev(2) if fd is not a socket) per try.  Short writes are continued
 * until
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

/* ======================================================================== */
/*  Visitor mode                                                             */
/* ======================================================================== */

/*
 * A visitor is caller-owned storage for one visit: declare it on the stack
 * or in a struct.  Any storage may be cast: zeroed, HB_VISITOR_INIT, a
 * finished visitor, or bytes never initialised at all -- leftover bytes
 * cannot fake a live visitor (short of a one-in-2^32 match: every cast
 * stores a cookie derived from the visitor's address), and valgrind or
 * MemorySanitizer see no use of them.  A live visitor must not be moved or
 * copied: a copy is no visitor (its calls answer as on an idle one).
 * Life cycle:
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
/** Caller-owned storage for one visit (see the life cycle above). */
struct hb_visitor {
  void *data; /**< free for the caller's use; the library never touches it */

  /** @privatesection */
  /* private: the library's; zero is the idle state */
  hb_visitor *next, *prev; /* wait-queue link, under the buffer's mutex */
  uint32_t state;        /* phase and flags (atomic; see src/visitor.c);
                            beside the links, which a grant also touches */
  uint32_t cookie;       /* from v's address while it was ever cast here:
                            what makes leftover bytes no visitor (atomic);
                            right after state (src/visitor.c reads both) */
  hb_buf *buf;
  hb_type type;
  hb_visit_fn fn;
  void *ctx;
  size_t reserve;
  hb_waker waker;        /* registered by hb_poll, under the mutex */
  hb_done_fn done;       /* detached visits */
  void *done_arg;
  uint32_t armed;        /* set by hb_visit; the driving thread's alone */
  int result;            /* what the callback returned */
  void *reserved[4];
};

/** An idle visitor.  All-zero storage, or any never cast, is the same. */
#ifdef __cplusplus
#define HB_VISITOR_INIT {}
#else
#define HB_VISITOR_INIT {0}
#endif

/**
 * Take a read ticket on b for elements of type t.  Tickets are handed out in
 * call order; a read visitor runs after every earlier write visitor has
 * finished, concurrently with neighbouring readers (up to 2^26 of them at
 * once: a reader beyond that waits its turn, as behind a writer).
 * Requires: v is idle (any storage never cast) or finished.
 * @return HB_OK; HB_EINVAL (no ticket taken) if b or v is NULL, t.size is 0,
 *         t.align is not a power of two or exceeds hb_align(b), or t.size is
 *         not a multiple of t.align; HB_ESTATE if v is live: cast, armed,
 *         running, or still being finished (its waker or cancel in flight).
 */
HB_EXTERN int hb_cast(hb_visitor *v, hb_buf *b, hb_type t);

/**
 * Take a write ticket: like hb_cast, and the visit runs alone, after every
 * earlier visitor, read or write, has finished.
 * @return as hb_cast.
 */
HB_EXTERN int hb_cast_mut(hb_visitor *v, hb_buf *b, hb_type t);

/** hb_cast for the type T: HB_CAST(&v, buf, struct packet). */
#define HB_CAST(v, b, T) hb_cast((v), (b), HB_TYPE(T))
/** hb_cast_mut for the type T. */
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
 * caller's hb_* call.  Called from inside a callback, waker or done that
 * this library is running for a detached visit or a waker, a visitor whose
 * turn has come runs once that callout has returned, on this thread (so
 * re-arming from done, round after round, takes no stack).
 * @return as hb_visit.
 */
HB_EXTERN int hb_visit_detached(hb_visitor *v, size_t reserve, hb_visit_fn fn,
                                void *ctx, hb_done_fn done, void *done_arg);

/**
 * Poll an armed visitor as a future.  If its turn has come the callback
 * runs now, on this thread.  Otherwise the waker is stored (replacing any
 * earlier one) and will be called once when the turn comes or the visitor
 * is cancelled; call hb_poll again then.
 * @return HB_OK (the visit completed: *result, if result is not NULL,
 *         holds the callback's return -- or HB_ENOMEM, when the
 *         reservation could not be had and the callback did not run;
 *         polling again returns HB_OK and the same result);
 *         HB_PENDING; HB_ECANCELED; HB_ESTATE if v is idle, only cast, or
 *         detached (whatever became of it); HB_EBUSY if v is running (a
 *         poll from inside its own callback); HB_EDEADLK from inside v's
 *         own waker.
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
 * ~1.3 us per visit sleeping, ~0.1-0.4 us spinning).  A visitor waited on
 * here is running from the moment its turn comes (the release that grants
 * it claims it for this thread): a cancel from then on is HB_EBUSY.
 * @return HB_OK (completed; *result as hb_poll); HB_ECANCELED; HB_ESTATE,
 *         HB_EBUSY as hb_poll; HB_EDEADLK from inside v's own waker, or
 *         for a visitor whose turn has not come from inside any waker or
 *         from inside a callback or done on the same buffer (it never
 *         could come, or the wait would block a waker).
 */
HB_EXTERN int hb_block_on(hb_visitor *v, int *result);

/**
 * Run the visitor now if its turn has come; never waits.
 * @return HB_OK (completed; *result as hb_poll); HB_EAGAIN (not its turn;
 *         it stays armed); HB_ECANCELED; HB_ESTATE, HB_EBUSY and HB_EDEADLK
 *         as hb_poll.
 */
HB_EXTERN int hb_try_visit(hb_visitor *v, int *result);

/**
 * Give the ticket up: the visitor is finished without running, and the
 * queue behind it moves on.  A waker stored by hb_poll is called.  Safe
 * from any thread, also while another thread is blocked on v: that
 * thread's hb_block_on returns HB_ECANCELED, and has let go of v and its
 * buffer before this call returns.  Works from inside v's own waker (and
 * a sibling's).  A detached visitor's done is called (HB_ECANCELED).
 * @return HB_OK; HB_EBUSY if v is running; HB_ESTATE if v is idle or
 *         finished (a second cancel included: it returns once the first
 *         is over).
 */
HB_EXTERN int hb_cancel(hb_visitor *v);

/**
 * Cast, visit and run in one call, on this thread: visitor mode as a lock.
 * The read ticket is taken in order, like hb_cast's; if its turn has come,
 * fn runs at once, otherwise this thread waits for it, spinning and then
 * sleeping as in hb_block_on.  The visitor is internal, so nobody can
 * cancel it, and when nobody holds a conflicting ticket or waits the call
 * costs one atomic operation to take the ticket and one to give it back.
 * The first such waiter while nobody is queued waits in the lock word
 * itself (as a ticket lock's waiters do), so two threads taking turns on
 * a buffer pay two atomic operations per visit and move only the lock's
 * cache line and the data between them; others queue behind it in cast
 * order, and past its spin budget it sleeps at the queue's head.
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
 * Read-mostly buffers: once one-call reads from more than one thread far
 * outnumber the writes (at most 1 write per 16 reads), hb_read_now and
 * hb_try_read_now stop writing the lock's cache line.  Each reader
 * announces itself in a slot of a small table of the buffer's own (a
 * 64-byte line per slot, 2 x the online CPUs, 4 to 64 slots, allocated
 * once; if that allocation fails the buffer simply goes without), so
 * readers on different cores share no written line.  The next writer
 * ends it (one scan of the table) and waits for the readers already in,
 * as it would for any reader; a later read turns it back on.  Nothing
 * else changes: order, exclusion, HB_EDEADLK, the try forms and hb_stats
 * are exactly as without it.  HB_NO_RBIAS=1 in the environment turns it
 * off.  Cost: a read through the table is two atomic operations on the
 * reader's own line and about 50 instructions more than the lock word's
 * path, which pays off once readers run on different cores at the same
 * time (two readers pinned to the two cores of a VM, 1% writes: 15 to 17.5
 * ns per visit instead of 34 to 36); one thread alone never turns it on.
 *
 *     int n;
 *     if (HB_READ_NOW(buf, struct packet, count, &stats, &n) != HB_OK) ...
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

/** hb_read_now for the type T. */
#define HB_READ_NOW(b, T, fn, ctx, resultp)                                  \
  hb_read_now((b), HB_TYPE(T), (fn), (ctx), (resultp))
/** hb_write_now for the type T. */
#define HB_WRITE_NOW(b, T, reserve, fn, ctx, resultp)                        \
  hb_write_now((b), HB_TYPE(T), (reserve), (fn), (ctx), (resultp))

/**
 * hb_read_now if the turn is free: fn runs at once, on this thread, when
 * a read ticket can be granted right now -- no write ticket is held and
 * nobody waits (waiters keep their order: a try never overtakes one).
 * Otherwise nothing happens: no ticket is taken, no place in the queue,
 * no waiting, and the call returns HB_EAGAIN.  Never waits, so never
 * deadlocks either, also inside a callback on b.  On a buffer biased to
 * another thread the call ends the bias first (as any other visitor
 * would), and may then find the turn free.
 *
 *     if (HB_TRY_READ_NOW(buf, struct packet, count_packets, &stats, NULL)
 *         == HB_EAGAIN) ... do something else, come back later ...
 *
 * @return HB_OK (fn ran; *result as in hb_read_now); HB_EAGAIN (the turn
 *         was not free; fn did not run and nothing changed); HB_EINVAL as
 *         hb_read_now.
 */
HB_EXTERN int hb_try_read_now(hb_buf *b, hb_type t, hb_visit_fn fn,
                              void *ctx, int *result);

/**
 * The write form of hb_try_read_now: fn runs at once when no ticket at
 * all is held and nobody waits, with `reserve` spare bytes as in
 * hb_write_now; otherwise HB_EAGAIN, and nothing is taken or queued.
 * @return as hb_try_read_now; HB_ERANGE if reserve > PTRDIFF_MAX.
 */
HB_EXTERN int hb_try_write_now(hb_buf *b, hb_type t, size_t reserve,
                               hb_visit_fn fn, void *ctx, int *result);

/** hb_try_read_now for the type T. */
#define HB_TRY_READ_NOW(b, T, fn, ctx, resultp)                              \
  hb_try_read_now((b), HB_TYPE(T), (fn), (ctx), (resultp))
/** hb_try_write_now for the type T. */
#define HB_TRY_WRITE_NOW(b, T, reserve, fn, ctx, resultp)                    \
  hb_try_write_now((b), HB_TYPE(T), (reserve), (fn), (ctx), (resultp))

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

/**
 * hb_spare inside a write visit: point *spare at n or more bytes of spare
 * room after the buffer's bytes, growing beyond the visit's reservation if
 * needed.
 * Invalidates: array pointers and earlier spare pointers taken in this
 * callback, if it grows.
 * @return HB_OK; HB_ESTATE in a read visit; HB_EINVAL if spare is NULL;
 *         HB_ERANGE or HB_ENOMEM as hb_reserve (nothing changes).
 */
HB_EXTERN int hb_view_spare(hb_view *view, size_t n, uint8_t **spare);

/**
 * hb_commit inside a write visit: append the first k bytes of the spare
 * room.  No whole-element rule, as hb_view_append_bytes.  The bytes count
 * in hb_view_bytes_written, and an aborted visit (the callback returns
 * < 0) rolls them back with its other appends.
 * @return HB_OK; HB_ESTATE in a read visit; HB_ERANGE if k bytes are not
 *         spare (nothing changes).
 */
HB_EXTERN int hb_view_commit(hb_view *view, size_t k);

/** The cast type of the visit. */
HB_EXTERN hb_type hb_view_type(const hb_view *view);

/** hb_view_read_array typed as `const T *`: NULL (and *countp = 0) if
 *  sizeof(T) is not the cast size. */
#define HB_READ_ARRAY(view, T, countp)                                       \
  ((const T *)hb__view_array_checked((view), sizeof(T), (countp), 0))
/** hb_view_write_array typed as `T *`: NULL (and *countp = 0) in a read
 *  visitor or if sizeof(T) is not the cast size. */
#define HB_WRITE_ARRAY(view, T, countp)                                      \
  ((T *)hb__view_array_checked((view), sizeof(T), (countp), 1))

/* Views and file descriptors: the I/O status convention of hb_read_fd. */

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
 * On a stream (see Streams) consumers release and the library drops.
 * @return HB_OK; HB_ESTATE in a read visitor or on a stream; HB_ERANGE if
 *         n exceeds the bytes left of those stored when the visit began
 *         (the length then, less what earlier drains in this visit
 *         dropped; nothing dropped).
 */
HB_EXTERN int hb_view_drain(hb_view *view, size_t n);

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
 *       HB_CAST_CONSUMER(&v, &c, struct packet, sizeof(struct packet));
 *       hb_visit(&v, 0, eat, &c);            (eat: hb_view_offset, the
 *       hb_block_on(&v, NULL);                array, hb_consumer_release,
 *     }                                       hb_view_eof)
 *
 * States.  A stream is open from hb_stream_open, closed from
 * hb_stream_close on (readers get the end mark, writes fail), and a plain
 * buffer again once freed.  A consumer is unregistered (zeroed, or
 * removed) or registered.  A visitor cast with hb_cast_from is, besides
 * the usual states, "waiting": cast, holding no ticket; then granted (a
 * read ticket, in FIFO order right after the write that satisfied it),
 * then finished as any visitor.
 *
 * Invalidation.  Offsets never change.  View pointers are valid inside
 * their callback only, as always.  The bytes move (compaction to the
 * front, growth) only at the start of a write visit, before its callback,
 * while no view exists.  While the stream is open, direct mode must not
 * move the cursor or the bytes (hb_get*, hb_advance, hb_compact,
 * hb_clear, a shrinking hb_resize): the cursor marks the dropped prefix,
 * and after the close hb_remaining(b) is what some consumer left.
 *
 * Synchronization: every call below may be made from any thread, inside
 * callbacks too, except hb_stream_open (direct mode: no visitor of b
 * live).  None of them waits for a visit: at most for the buffer's
 * short internal mutex (hb_consumer_release only when a writer waits for
 * room, for the room waker).
 */

/**
 * A registered consumer: caller-owned storage, like hb_visitor.  Must not
 * be moved or copied while registered.
 */
typedef struct hb_consumer {
  void *data; /**< free for the caller's use; the library never touches it */

  /** @privatesection */
  /* private: the library's; zero is unregistered */
  struct hb_consumer *next, *prev; /* the stream's list, under its mutex */
  hb_buf *buf;
  uint64_t pos;   /* released below this offset (atomic) */
  uint32_t state; /* registered or not */
  uint32_t reserved32;
  void *reserved[2];
} hb_consumer;

/** An unregistered consumer.  All-zero storage is the same. */
#ifdef __cplusplus
#define HB_CONSUMER_INIT {}
#else
#define HB_CONSUMER_INIT {0}
#endif

/** What hb_stream_info reports; a snapshot, each field exact when read. */
typedef struct {
  uint64_t begin;       /**< offset of the first byte still stored */
  uint64_t end;         /**< offset one past the last committed byte */
  uint64_t low;         /**< the lowest consumer position (end if none) */
  size_t peak;          /**< most bytes stored (not yet dropped) after a
                             write's commit: the buffer's high-water mark */
  uint64_t compactions; /**< times the live bytes were moved to the front */
  uint64_t bytes_moved; /**< bytes those moves copied */
  uint32_t consumers;   /**< registered consumers */
  uint32_t waiting;     /**< read visitors waiting for data */
  int closed;           /**< hb_stream_close was called */
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

/** hb_cast_from for the type T: HB_CAST_FROM(&v, buf, struct packet, 0, 64). */
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

/** hb_cast_consumer for the type T: HB_CAST_CONSUMER(&v, &c, struct packet,
 *  sizeof(struct packet)). */
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

/* ======================================================================== */
/*  Wakers and event loops                                                   */
/* ======================================================================== */

/*
 * hb_poll takes an hb_waker (see Types); these make wakers for event
 * loops.  The libuv adapter is in <hyperbuf_uv.h>.
 */

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
 * It is refused, not used: on storage not initialised (or closed), wake
 * does nothing, hb_fd_waker_get gives no waker ({NULL, NULL}), and drain
 * and close answer HB_EINVAL -- descriptor 0 is never read, written or
 * closed.
 */
/** A coalescing file-descriptor waker (see above). */
typedef struct hb_fd_waker {
  /* read-only */
  int fd; /**< readable while a wake is pending: watch this one */
  /** @privatesection */
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
 * @return the waker (fn + arg; arg is w); {NULL, NULL} (no waker) if w was
 *         never initialised or is closed.
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
 * @return 1 if a wake was pending, 0 if not; HB_EINVAL if w was never
 *         initialised or is closed (nothing read).
 */
HB_EXTERN int hb_fd_waker_drain(hb_fd_waker *w);

/**
 * Close the descriptor(s).  Requires: no visitor still holds the waker.
 * @return HB_OK; HB_EIO (errno set) if close failed (the descriptors are
 *         released anyway); HB_EINVAL if w was never initialised or is
 *         already closed (nothing closed).
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

/* ======================================================================== */
/*  Allocator and statistics                                                 */
/* ======================================================================== */

/** An allocator's malloc.  @return memory aligned for max_align_t, or
 *  NULL. */
typedef void *(*hb_malloc_fn)(size_t size);
/** An allocator's realloc.  @return as realloc. */
typedef void *(*hb_realloc_fn)(void *ptr, size_t size);
/** An allocator's free. */
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
  uint64_t visits_run;       /**< callbacks run, read and write */
  uint64_t visits_cancelled; /**< visitors cancelled */
  uint64_t visits_aborted;   /**< write callbacks that returned < 0 */
  uint64_t reserve_failed;   /**< visits finished with HB_ENOMEM, not run */
  uint64_t growths;          /**< reallocations of the data */
  uint64_t bytes_moved;      /**< bytes copied by those reallocations */
  uint64_t longest_queue;    /**< most visitors ever in the wait queue at
                                  once (the one waiting in the lock word's
                                  NEXT slot, ahead of it, not counted) */
} hb_stats;

/**
 * Read b's counters into *out.  Safe while visitors are live.
 * @return HB_OK; HB_EINVAL if b or out is NULL.
 */
HB_EXTERN int hb_stats_get(hb_buf *b, hb_stats *out);

/* Below the API: the inline bodies and the internals they need. */
#include "hyperbuf/inline.h"

#ifdef __cplusplus
}
#endif
#endif /* HYPERBUF_H */
