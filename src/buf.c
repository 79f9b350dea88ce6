/*
 * buf.c -- direct mode: the allocator, a buffer's layout, growth, appends
 * and cursor reads.
 *
 * The protocol held here is the layout and its growth policy; hb_new's and
 * hb_free's fast paths, which recycle buffers through a per-thread slot
 * instead of the allocator, are in src/slot.c and call in here for a fresh
 * allocation (hb_new_aligned) or to release one (hb__free_memory).
 *
 * Layout.  hb_new makes one allocation: the hb__buf header, placed so that
 * its public part (last in it) starts a cache line, then the first
 * `capacity` bytes at the buffer's alignment, right behind the public part:
 * the lock word and the first 16 bytes share a line (src/internal.h says
 * why).  The header never moves (the
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

#include <stdio.h>
#include <stdlib.h>

/* ---- allocator ---------------------------------------------------------- */

static struct {
  hb_malloc_fn m;
  hb_realloc_fn r;
  hb_free_fn f;
} hb__alloc = {malloc, realloc, free};
bool hb__alloc_standard = true;

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
  hb__alloc_standard = m == malloc && r == realloc && f == free;
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

/* What hb_new_aligned allocates before the inline bytes: room to place
 * the header 64-aligned (the allocator's alignment is max_align_t), the
 * header up to the end of its public part, then the bytes (internal.h). */
#define HB__PLACE_SLACK (64 - HB__MAX_ALIGN)
#define HB__HDR_SIZE                                                         \
  (HB__PLACE_SLACK + offsetof(hb__buf, pub) + sizeof(hb_buf))

void hb__misuse(const hb_buf *b, const char *call) {
  /* The read bias alone (no reader in its table) is no live visitor: end
   * it and carry on (src/rbias.c). */
  if (__atomic_load_n(&b->held, __ATOMIC_RELAXED) == 0 &&
      (hb__rbias_quiesce(hb__ext((hb_buf *)b)) & HB__W_LIVE) == 0)
    return;
  fprintf(stderr,
          "hyperbuf: %s() called on buffer %p while a visitor of it is live;"
          " direct-mode calls must wait until every visitor has run or been"
          " cancelled\n",
          call, (const void *)b);
  abort();
}

/* ---- creation ----------------------------------------------------------- */

/* Set up the header in a fresh allocation: 64-aligned in it. */
static inline hb_buf *hb__init(void *mem, size_t capacity, size_t align) {
  size_t shift = (size_t)(-(uintptr_t)mem & 63);
  hb__buf *e = (hb__buf *)((uint8_t *)mem + shift);
  /* Zero the header only; the bytes stay uninitialised, like malloc's.
   * The inline bytes start in the struct's tail padding: zero up to them. */
  hb__zero(e, (size_t)(HB__INLINE_AT(e) - (uint8_t *)e));
  e->shift = (uint8_t)shift;
  e->align = align;
  e->pub.data = hb__align_up(HB__INLINE_AT(e), align);
  e->pub.cap = capacity;
  return &e->pub;
}

hb_buf *hb_new_aligned(size_t capacity, size_t align) {
  if (align == 0 || (align & (align - 1)) != 0) return NULL;
  if (align < HB__MAX_ALIGN) align = HB__MAX_ALIGN;
  size_t total = hb__add(hb__add(HB__HDR_SIZE, hb__pad(align)), capacity);
  if (total == SIZE_MAX) return NULL;
  void *mem = hb__malloc(total);
  if (mem == NULL) return NULL;
  return hb__init(mem, capacity, align);
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

/* hb_free's cold part (src/slot.c), out of line so that its fast path --
 * nothing live, the slot takes the buffer -- needs no stack frame. */
int hb__free_memory(hb__buf *e) {
  hb__free(e->raw);
  if (e->rb_tab != NULL) hb__rbias_free(e);
  hb__free((uint8_t *)e - e->shift);
  return HB_OK;
}

size_t hb_align(const hb_buf *b) { return hb__cext(b)->align; }

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
                    hb__rbias_reads(e) +
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
