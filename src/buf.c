/*
 * buf.c -- direct mode: creation, growth, appends and cursor reads.
 *
 * Layout.  hb_new makes one allocation: the hb__buf header, then the first
 * `capacity` bytes at the buffer's alignment.  The header never moves (the
 * caller holds its address), so the first growth moves the data out into an
 * allocation of its own (`raw`), and later growths realloc that one.  The
 * inline bytes are then unused; a buffer that never grows, the common case
 * for small messages, costs one malloc and one free.
 *
 * Alignment.  The allocator returns max_align_t-aligned memory.  For larger
 * alignments we over-allocate by (align - max_align) and round the data
 * pointer up; such a buffer grows by malloc + copy + free, because realloc
 * may hand back a block with a different misalignment.
 *
 * Every failing call checks before it changes anything, so an error leaves
 * length, capacity, cursor and bytes as they were.
 */
#include "internal.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- allocator ---------------------------------------------------------- */

static struct {
  hb_malloc_fn m;
  hb_realloc_fn r;
  hb_free_fn f;
  bool standard; /* all three are the C library's: the slot may be used */
} hb__alloc = {malloc, realloc, free, true};

void *hb__malloc(size_t n) { return hb__alloc.m(n); }
void *hb__realloc(void *p, size_t n) { return hb__alloc.r(p, n); }
void hb__free(void *p) {
  if (p != NULL) hb__alloc.f(p);
}

int hb_set_allocator(hb_malloc_fn m, hb_realloc_fn r, hb_free_fn f) {
  if (m == NULL || r == NULL || f == NULL) return HB_EINVAL;
  hb__alloc.m = m;
  hb__alloc.r = r;
  hb__alloc.f = f;
  hb__alloc.standard = m == malloc && r == realloc && f == free;
  return HB_OK;
}

/* ---- helpers ------------------------------------------------------------ */

static size_t hb__pad(size_t align) {
  return align > HB__MAX_ALIGN ? align - HB__MAX_ALIGN : 0;
}

static uint8_t *hb__align_up(void *p, size_t align) {
  /* Step forward from p rather than casting an integer back to a pointer,
   * so the result keeps p's provenance. */
  size_t mis = (size_t)((uintptr_t)p & (align - 1));
  return (uint8_t *)p + ((align - mis) & (align - 1));
}

/* a + b, or SIZE_MAX if the sum overflows or exceeds PTRDIFF_MAX. */
static size_t hb__add(size_t a, size_t b) {
  if (a > (size_t)PTRDIFF_MAX || b > (size_t)PTRDIFF_MAX - a) return SIZE_MAX;
  return a + b;
}

/* memset(p, 0, n) for a small constant n, as plain vector stores.  GCC
 * expands a constant memset above 128 bytes (the header is larger) into
 * `rep stos`, whose start-up alone took 85% of hb_new's time in the W1
 * benchmark (a create-write-free loop); pieces of 64 bytes are expanded
 * into stores. */
static inline void hb__zero(void *dst, size_t n) {
  unsigned char *p = dst;
  for (; n > 64; p += 64, n -= 64) memset(p, 0, 64);
  memset(p, 0, n);
}

#define HB__HDR_SIZE                                                         \
  ((sizeof(hb__buf) + HB__MAX_ALIGN - 1) & ~(HB__MAX_ALIGN - 1))

void hb__misuse(const hb_buf *b, const char *call) {
  fprintf(stderr,
          "hyperbuf: %s() called on buffer %p while a visitor of it is live;"
          " direct-mode calls must wait until every visitor has run or been"
          " cancelled\n",
          call, (const void *)b);
  abort();
}

/* ---- a per-thread slot for a few small freed buffers ---------------------
 *
 * Code that creates a small buffer, fills it and frees it, over and over
 * (one per message, say), would pay malloc + free every time.  hb_free
 * keeps up to HB__SLOT_N such buffers of a thread in that thread's slot
 * instead, a stack, and hb_new on the thread takes the one on top back if
 * it fits: no allocator call at all.  Several, because messages are often
 * made a few at a time before any is freed (a batch, a scatter list): with
 * one kept buffer, making two then freeing two hit it only half the time
 * and cost more than malloc (bench/ISSUE14.md, W1-live).  The rules that
 * keep this invisible:
 *
 *   - Only with the default allocator (malloc/realloc/free): a custom one
 *     sees every allocation and every free, as the OOM tests need.  The slot
 *     therefore only ever holds memory from malloc, released with free.
 *   - Only buffers whose bytes never left the header's allocation (raw ==
 *     NULL), at the default alignment, with at most HB__SLOT_MAX bytes.
 *     hb_new reports exactly the capacity asked for, as without the slot.
 *   - Only buffers visitor mode never touched, so that taking one back
 *     resets its length, capacity and cursor only: zeroing the whole
 *     ~190-byte header again was a tenth of an hb_new + hb_free pair.
 *     "Never touched" is read off the fields every finished visit leaves
 *     non-zero for good (hb__unvisited); debug builds check the whole
 *     header against it.  A visited buffer is freed as without the slot.
 *   - At most HB__SLOT_N buffers of at most HB__SLOT_MAX bytes each
 *     (~5.6 KiB with their headers) stay kept per thread.
 *   - Thread exit frees the slot (a pthread key destructor), and so does
 *     process exit for the exiting thread (a destructor function): leak
 *     checkers find nothing.  After either, that thread stops using it.
 *   - Off under AddressSanitizer, which must see every free to catch a use
 *     of a buffer after hb_free.
 */
#if defined(__SANITIZE_ADDRESS__)
#define HB__SLOT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HB__SLOT 0
#endif
#endif
#ifndef HB__SLOT
#define HB__SLOT 1
#endif
#define HB__SLOT_MAX 512
#define HB__SLOT_N 8

#if HB__SLOT
#include <pthread.h>

enum { HB__SLOT_NEW, HB__SLOT_ON, HB__SLOT_OFF };
static _Thread_local struct {
  hb__buf *e[HB__SLOT_N];  /* the kept buffers, [0, n); the top is n - 1 */
  size_t cap[HB__SLOT_N];  /* their capacities */
  unsigned n;
  int state;     /* HB__SLOT_*: ON once the thread-exit hook is set */
} hb__slot __attribute__((tls_model("initial-exec")));

static pthread_key_t hb__slot_key;
static pthread_once_t hb__slot_once = PTHREAD_ONCE_INIT;
static bool hb__slot_key_ok;

static void hb__slot_drop(void *unused) {
  (void)unused;
  while (hb__slot.n > 0) free(hb__slot.e[--hb__slot.n]);
  hb__slot.state = HB__SLOT_OFF;
}

static void hb__slot_key_init(void) {
  hb__slot_key_ok = pthread_key_create(&hb__slot_key, hb__slot_drop) == 0;
}

__attribute__((destructor)) static void hb__slot_exit(void) {
  hb__slot_drop(NULL);
}

/* One flag, set by hb_set_allocator, rather than three comparisons of
 * function pointers on every hb_new and hb_free. */
static inline bool hb__alloc_is_default(void) { return hb__alloc.standard; }

/* The thread's first use of its slot: set the thread-exit hook.  Out of
 * line, so hb_free's fast path needs no stack frame.  @return whether the
 * slot may be used on this thread. */
static __attribute__((noinline)) bool hb__slot_arm(void) {
  if (hb__slot.state == HB__SLOT_OFF) return false;
  pthread_once(&hb__slot_once, hb__slot_key_init);
  /* Any non-NULL value makes the destructor run at thread exit. */
  if (!hb__slot_key_ok || pthread_setspecific(hb__slot_key, &hb__slot) != 0) {
    hb__slot.state = HB__SLOT_OFF;
    return false;
  }
  hb__slot.state = HB__SLOT_ON;
  return true;
}

/* Has visitor mode never touched e?  Every visit that ever finished left
 * one of these non-zero for good, and hb_free lets only buffers with every
 * visitor finished go: a read counts in the lock word's done bits (their
 * carries in read_wraps), a biased buffer has bias_owner set and BIASED in
 * the lock word, a write counts in writes_run, aborted or reserve_failed,
 * a cancel in cancelled.  Then the queue, the mutex, the bias fields and
 * the other counters are still zero too. */
static inline bool hb__unvisited(const hb__buf *e, uint64_t lock) {
  return (lock | (uintptr_t)e->bias_owner | e->writes_run | e->aborted |
          e->reserve_failed | e->cancelled | e->read_wraps) == 0;
}

#ifndef NDEBUG
/* What hb__unvisited stands for: every header word after the public part
 * (but align; raw is NULL in the slot) still zero, and held too. */
static void hb__slot_verify(const hb__buf *e) {
  const unsigned char *p = (const unsigned char *)e;
  uint64_t w;
  for (size_t off = sizeof e->pub; off + sizeof w <= sizeof *e;
       off += sizeof w) {
    memcpy(&w, p + off, sizeof w);
    if (off != offsetof(hb__buf, align) && w != 0) {
      fprintf(stderr,
              "hyperbuf: buffer %p in the slot looks unvisited but its "
              "header word at offset %zu is 0x%llx (src/buf.c, "
              "hb__unvisited)\n",
              (const void *)e, off, (unsigned long long)w);
      abort();
    }
  }
  if (e->pub.held != 0) abort();
}
#endif

/* Keep e in this thread's slot, armed (HB__SLOT_ON); false if it cannot
 * be kept. */
static inline __attribute__((always_inline)) bool hb__slot_put(hb__buf *e,
                                                       uint64_t lock) {
  unsigned n = hb__slot.n;
  if (e->raw != NULL || e->align != HB__MAX_ALIGN ||
      e->pub.cap > HB__SLOT_MAX || n == HB__SLOT_N ||
      !hb__alloc_is_default() || !hb__unvisited(e, lock))
    return false;
#ifndef NDEBUG
  hb__slot_verify(e);
#endif
  hb__slot.e[n] = e;
  hb__slot.cap[n] = e->pub.cap;
  hb__slot.n = n + 1;
  return true;
}
#endif /* HB__SLOT */

/* ---- creation ----------------------------------------------------------- */

/* Set up the header of a fresh (or recycled) allocation. */
static inline hb_buf *hb__init(hb__buf *e, size_t capacity, size_t align) {
  /* Zero the header only; the bytes stay uninitialised, like malloc's. */
  hb__zero(e, sizeof *e);
  e->align = align;
  e->pub.data = hb__align_up((uint8_t *)e + HB__HDR_SIZE, align);
  e->pub.cap = capacity;
  return &e->pub;
}

hb_buf *hb_new_aligned(size_t capacity, size_t align) {
  if (align == 0 || (align & (align - 1)) != 0) return NULL;
  if (align < HB__MAX_ALIGN) align = HB__MAX_ALIGN;
  size_t total = hb__add(hb__add(HB__HDR_SIZE, hb__pad(align)), capacity);
  if (total == SIZE_MAX) return NULL;
  hb__buf *e = hb__malloc(total);
  if (e == NULL) return NULL;
  return hb__init(e, capacity, align);
}

hb_buf *hb_new(size_t capacity) {
#if HB__SLOT
  unsigned n = hb__slot.n;
  if (n > 0 && capacity <= hb__slot.cap[n - 1] && hb__alloc_is_default()) {
    hb__buf *e = hb__slot.e[n - 1];
    hb__slot.n = n - 1;
    /* Unvisited (hb__slot_put): data, align and the zeroes are as hb__init
     * left them. */
    e->pub.len = 0;
    e->pub.cap = capacity;
    e->pub.cursor = 0;
    return &e->pub;
  }
#endif
  return hb_new_aligned(capacity, HB__MAX_ALIGN);
}

hb_buf *hb_wrap(const void *src, size_t n) {
  if (src == NULL && n > 0) return NULL; /* bad input: an error, no crash */
  hb_buf *b = hb_new(n);
  if (b != NULL && n > 0) {
    memcpy(b->data, src, n);
    b->len = n;
  }
  return b;
}

/* hb_free's cold parts, out of line so that its fast path -- nothing
 * live, the slot takes the buffer -- needs no stack frame. */
static __attribute__((noinline)) int hb__free_memory(hb__buf *e) {
  hb__free(e->raw);
  hb__free(e);
  return HB_OK;
}

#if HB__SLOT
/* The thread's first hb_free (or a thread whose slot is off). */
static __attribute__((noinline)) int hb__free_unarmed(hb__buf *e,
                                                      uint64_t lock) {
  if (hb__slot_arm() && hb__slot_put(e, lock)) return HB_OK;
  return hb__free_memory(e);
}
#endif

/* Nothing of e is live: keep it in the slot, or free it. */
static inline __attribute__((always_inline)) int hb__free_tail(hb__buf *e,
                                                               uint64_t lock) {
  if (HB__UNLIKELY(e->stream != NULL) && hb__stream_free(e) != HB_OK)
    return HB_EBUSY; /* stream: readers wait for data, or consumers remain */
#if HB__SLOT
  if (HB__UNLIKELY(hb__slot.state != HB__SLOT_ON))
    return hb__free_unarmed(e, lock);
  if (hb__slot_put(e, lock)) return HB_OK;
#else
  (void)lock;
#endif
  return hb__free_memory(e);
}

/* A visitor still live, or a thread still inside the wait queue's mutex:
 * take the mutex, which waits such a thread out, and look again. */
static __attribute__((noinline)) int hb__free_slow(hb__buf *e) {
  hb__mutex_lock(&e->mu);
  uint64_t lock = __atomic_load_n(&e->pub.lock, __ATOMIC_ACQUIRE);
  hb__mutex_unlock(&e->mu);
  if ((lock & HB__LIVE_MASK) != 0) return HB_EBUSY;
  return hb__free_tail(e, lock);
}

int hb_free(hb_buf *b) {
  if (b == NULL) return HB_OK;
  hb__buf *e = hb__ext(b);
  /* A thread may still be inside a wait-queue critical section although
   * no visitor is live any more (the dispatcher clears WAITERS under the
   * mutex, then unlocks it).  Fast path, no atomic read-modify-write: the
   * lock word shows nothing live, and then -- in this order -- the mutex is
   * free.  The ACQUIRE load of the lock word pairs with the RELEASE of
   * whatever made it zero (hb__release, hb__dispatch's fetch_and); a
   * dispatcher that did so while holding the mutex locked it before, so the
   * second load sees it still held, or its unlock (the RELEASE exchange in
   * hb__mutex_unlock, its last touch of *e).  Otherwise take the mutex
   * (hb__free_slow): that waits such a thread out, exactly as before. */
  if (__atomic_load_n(&b->held, __ATOMIC_RELAXED) != 0)
    return HB_EBUSY; /* inside this thread's own biased visit */
  uint64_t lock = __atomic_load_n(&b->lock, __ATOMIC_ACQUIRE);
  if (HB__UNLIKELY((lock & HB__LIVE_MASK) != 0 ||
                   __atomic_load_n(&e->mu.word, __ATOMIC_ACQUIRE) != 0))
    return hb__free_slow(e);
  return hb__free_tail(e, lock);
}

size_t hb_align(const hb_buf *b) { return ((const hb__buf *)b)->align; }

/* ---- growth ------------------------------------------------------------- */

int hb__grow(hb_buf *b, size_t n) {
  hb__buf *e = hb__ext(b);
  size_t need = hb__add(b->len, n);
  if (need == SIZE_MAX) return HB_ERANGE;
  if (need <= b->cap) return HB_OK;

  size_t cap = b->cap <= (size_t)PTRDIFF_MAX / 2 ? b->cap * 2
                                                 : (size_t)PTRDIFF_MAX;
  if (cap < need) cap = need;
  if (cap < 64) cap = 64;
  size_t pad = hb__pad(e->align);
  if (hb__add(cap, pad) == SIZE_MAX) cap = need; /* fall back to the minimum */
  if (hb__add(cap, pad) == SIZE_MAX) return HB_ERANGE;

  uint8_t *data;
  if (e->raw != NULL && pad == 0) {
    void *raw = hb__realloc(e->raw, cap);
    if (raw == NULL) return HB_ENOMEM;
    data = raw;
    if (raw != e->raw) HB__BUMP(e->bytes_moved, b->len);
    e->raw = raw;
  } else {
    void *raw = hb__malloc(cap + pad);
    if (raw == NULL) return HB_ENOMEM;
    data = hb__align_up(raw, e->align);
    if (b->len > 0) memcpy(data, b->data, b->len);
    HB__BUMP(e->bytes_moved, b->len);
    hb__free(e->raw);
    e->raw = raw;
  }
  HB__BUMP(e->growths, 1);
  b->data = data;
  b->cap = cap;
  return HB_OK;
}

/* ---- appends ------------------------------------------------------------ */

int hb__put_bytes(hb_buf *b, const void *src, size_t n) {
  if (n == 0) return HB_OK;
  if (b->cap - b->len < n) {
    /* src may point into our own bytes, which growth moves. */
    const uint8_t *s = src;
    int inside = s >= b->data && s < b->data + b->cap;
    size_t off = inside ? (size_t)(s - b->data) : 0;
    int rc = hb__grow(b, n);
    if (rc != HB_OK) return rc;
    if (inside) src = b->data + off;
  }
  memmove(b->data + b->len, src, n);
  b->len += n;
  return HB_OK;
}

/* hb_put's slow path (the inline part in hyperbuf.h checked misuse). */
int hb__put_slow(hb_buf *b, const void *src, size_t n) {
  if (src == NULL && n > 0) return HB_EINVAL;
  return hb__put_bytes(b, src, n);
}

int hb_resize(hb_buf *b, size_t len, uint8_t fill) {
  HB__CHECK_DIRECT(b);
  if (len <= b->len) {
    b->len = len;
    if (b->cursor > len) b->cursor = len;
    return HB_OK;
  }
  int rc = hb__reserve(b, len - b->len);
  if (rc != HB_OK) return rc;
  memset(b->data + b->len, fill, len - b->len);
  b->len = len;
  return HB_OK;
}

/* ---- cursor ------------------------------------------------------------- */

/* hb_get's slow path (the inline part in hyperbuf.h checked misuse). */
int hb__get_slow(hb_buf *b, void *dst, size_t n) {
  if (n == 0) return HB_OK;
  if (dst == NULL) return HB_EINVAL;
  return hb__get_n(b, dst, n);
}

void hb_compact(hb_buf *b) {
  HB__CHECK_DIRECT(b);
  size_t rest = b->len - b->cursor;
  if (b->cursor == 0) return;
  if (rest > 0) memmove(b->data, b->data + b->cursor, rest);
  b->len = rest;
  b->cursor = 0;
}

/* ---- statistics --------------------------------------------------------- */

int hb_stats_get(hb_buf *b, hb_stats *out) {
  if (b == NULL || out == NULL) return HB_EINVAL;
  hb__buf *e = hb__ext(b);
  /* Completed reads are counted in the lock word's top bits (one atomic
   * add per read visit, the same one that releases the ticket); carries out
   * of them are counted in read_wraps.  Re-read until both agree.  A biased
   * thread's reads are in bias_reads. */
  uint64_t wraps, word;
  do {
    wraps = __atomic_load_n(&e->read_wraps, __ATOMIC_ACQUIRE);
    word = __atomic_load_n(&b->lock, __ATOMIC_ACQUIRE);
  } while (wraps != __atomic_load_n(&e->read_wraps, __ATOMIC_ACQUIRE));
  hb__mutex_lock(&e->mu);
#define HB__READ(f) __atomic_load_n(&e->f, __ATOMIC_RELAXED)
  out->visits_run = HB__READ(writes_run) + HB__READ(bias_reads) +
                    (wraps << (64 - HB__DONE_SHIFT)) + (word >> HB__DONE_SHIFT);
  out->visits_cancelled = HB__READ(cancelled);
  out->visits_aborted = HB__READ(aborted);
  out->reserve_failed = HB__READ(reserve_failed);
  out->growths = HB__READ(growths);
  out->bytes_moved = HB__READ(bytes_moved);
  out->longest_queue = HB__READ(longest_queue);
#undef HB__READ
  hb__mutex_unlock(&e->mu);
  return HB_OK;
}
