/*
 * check.c -- the buffer's invariant checker, for tests.
 *
 * Tests call hb__check(b) after every step that changes a buffer, the way
 * libevent's regression suite validates an evbuffer: a broken invariant is
 * caught at the step that broke it, not later when something crashes.
 * Each failure names the invariant and prints both sides, then aborts.
 *
 * The layout it checks is the one src/buf.c builds: the hb__buf header,
 * its public part starting a cache line, then the inline bytes at the
 * buffer's alignment right behind that part (src/internal.h); after the
 * first growth the bytes live in `raw`, rounded up to the alignment inside
 * an allocation over-sized by (align - max_align).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>


static void hb__check_fail(const hb_buf *b, const char *what,
                           const char *lhs, uintmax_t l, const char *rhs,
                           uintmax_t r) {
  fprintf(stderr,
          "hyperbuf: invariant broken on buffer %p: %s\n"
          "  %s = %ju (0x%jx)\n"
          "  %s = %ju (0x%jx)\n",
          (const void *)b, what, lhs, l, l, rhs, r, r);
  abort();
}

/* Require `cond`, which relates the values l and r. */
#define HB__REQUIRE(cond, what, l, r)                                        \
  do {                                                                       \
    if (!(cond))                                                             \
      hb__check_fail(b, what, #l, (uintmax_t)(l), #r, (uintmax_t)(r));       \
  } while (0)

void hb__check(hb_buf *b) {
  if (b == NULL) {
    fprintf(stderr, "hyperbuf: hb__check(NULL)\n");
    abort();
  }
  hb__buf *e = hb__ext(b);
  size_t align = e->align;
  uintptr_t data = (uintptr_t)b->data;

  /* The alignment: a power of two, at least max_align_t's. */
  HB__REQUIRE(align != 0 && (align & (align - 1)) == 0,
              "alignment is a power of two", align, align & (align - 1));
  HB__REQUIRE(align >= HB__MAX_ALIGN, "alignment >= _Alignof(max_align_t)",
              align, HB__MAX_ALIGN);

  /* Sizes and the cursor. */
  HB__REQUIRE(b->cursor <= b->len, "cursor <= len", b->cursor, b->len);
  HB__REQUIRE(b->len <= b->cap, "len <= cap", b->len, b->cap);
  HB__REQUIRE(b->cap <= (size_t)PTRDIFF_MAX, "cap <= PTRDIFF_MAX", b->cap,
              PTRDIFF_MAX);

  /* The data pointer: aligned, and where buf.c put it. */
  HB__REQUIRE(b->data != NULL, "data is not NULL", data, 0);
  HB__REQUIRE((data & (align - 1)) == 0, "data is aligned to hb_align(b)",
              data, align);
  size_t pad = align - HB__MAX_ALIGN;
  HB__REQUIRE(((uintptr_t)b & 63) == 0, "the public part starts a line",
              (uintptr_t)b & 63, 0);
  uintptr_t base = e->raw == NULL
                       ? (uintptr_t)HB__INLINE_AT(e) /* inline bytes */
                       : (uintptr_t)e->raw;                 /* grown */
  HB__REQUIRE(data >= base,
              e->raw == NULL ? "inline data starts after the header"
                             : "data starts inside raw",
              data, base);
  HB__REQUIRE(data - base <= pad,
              e->raw == NULL
                  ? "inline data is at most (align - max_align) past the header"
                  : "data is at most (align - max_align) into raw",
              data - base, pad);
  HB__REQUIRE(b->cap <= (size_t)PTRDIFF_MAX - (data - base),
              "padding + cap <= PTRDIFF_MAX", b->cap, data - base);

  /* Outside visitor mode the lock word must show no live visitor, and the
   * wait queue must agree with itself.  Tests call this only from direct
   * mode, so the fields are stable; the mutex keeps it honest anyway. */
  hb__mutex_lock(&e->mu);
  uintptr_t head = (uintptr_t)e->head, tail = (uintptr_t)e->tail;
  uint32_t qlen = e->qlen;
  hb__mutex_unlock(&e->mu);
  HB__REQUIRE((head == 0) == (tail == 0),
              "wait-queue head and tail are both NULL or both set", head,
              tail);
  HB__REQUIRE(head != 0 || qlen == 0, "an empty wait queue has qlen 0",
              head, qlen);
  uint64_t live =
      __atomic_load_n(&b->lock, __ATOMIC_ACQUIRE) & HB__W_LIVE;
  HB__REQUIRE(live != 0 || head == 0,
              "no queued visitor without a live ticket", live, head);

  /* Statistics that growth keeps. */
  HB__REQUIRE(e->growths != 0 || e->raw == NULL,
              "data moved out of the header only by a growth", e->growths,
              (uintptr_t)e->raw);
}
