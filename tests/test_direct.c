/*
 * test_direct.c -- the buffer in direct mode: every call's success path and
 * every error it can return, exact byte layouts, and alignment through
 * growth.  hb__check(b) runs after every step that changes a buffer.
 */
#include "hb_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static int is_aligned(const void *p, size_t align) {
  return ((uintptr_t)p & (align - 1)) == 0;
}

/* A buffer holding `n` bytes of the pattern i * 7 + 1. */
static hb_buf *patterned(size_t n) {
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(hb_put_u8(b, (uint8_t)(i * 7 + 1)), HB_OK);
  hb__check(b);
  return b;
}

static void assert_pattern(hb_buf *b, size_t from, size_t n) {
  for (size_t i = from; i < from + n; i++)
    assert_int_equal(hb_data(b)[i - from], (uint8_t)(i * 7 + 1));
}

/* ---- creation ----------------------------------------------------------- */

static void new_empty(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  hb__check(b);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(hb_capacity(b), 0);
  assert_int_equal(hb_remaining(b), 0);
  assert_int_equal(hb_align(b), _Alignof(max_align_t));
  assert_non_null(hb_data(b));
  assert_true(is_aligned(hb_data(b), hb_align(b)));
  assert_int_equal(hb_free(b), HB_OK);
}

static void new_with_capacity(void **state) {
  (void)state;
  hb_buf *b = hb_new(100);
  assert_non_null(b);
  hb__check(b);
  assert_int_equal(hb_len(b), 0);
  assert_true(hb_capacity(b) >= 100);
  assert_true(is_aligned(hb_data(b), hb_align(b)));
  /* The first `capacity` bytes need no growth. */
  uint8_t *before = hb_data(b);
  for (int i = 0; i < 100; i++) assert_int_equal(hb_put_u8(b, 0xAA), HB_OK);
  hb__check(b);
  assert_ptr_equal(hb_data(b), before);
  hb_stats st;
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.growths, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

static void new_huge_capacity(void **state) {
  (void)state;
  /* Each is above PTRDIFF_MAX once the header is counted: refused before
   * any allocation is tried. */
  assert_null(hb_new(SIZE_MAX));
  assert_null(hb_new((size_t)PTRDIFF_MAX + 1));
  assert_null(hb_new((size_t)PTRDIFF_MAX));
  assert_null(hb_new_aligned(SIZE_MAX, 64));
  assert_null(hb_new_aligned((size_t)PTRDIFF_MAX, 4096));
}

static void new_aligned(void **state) {
  (void)state;
  /* Zero and non-powers of two are refused. */
  assert_null(hb_new_aligned(16, 0));
  assert_null(hb_new_aligned(16, 3));
  assert_null(hb_new_aligned(16, 24));
  assert_null(hb_new_aligned(16, 100));
  assert_null(hb_new_aligned(16, SIZE_MAX));
  /* A power of two too large to pad for is refused too. */
  assert_null(hb_new_aligned(0, (size_t)1 << (sizeof(size_t) * 8 - 1)));

  /* Small alignments round up to max_align_t. */
  size_t small[] = {1, 2, 4, 8, _Alignof(max_align_t)};
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
    hb_buf *b = hb_new_aligned(10, small[i]);
    assert_non_null(b);
    hb__check(b);
    assert_int_equal(hb_align(b), _Alignof(max_align_t));
    assert_int_equal(hb_free(b), HB_OK);
  }
  size_t big[] = {32, 64, 128, 4096, 65536};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    hb_buf *b = hb_new_aligned(10, big[i]);
    assert_non_null(b);
    hb__check(b);
    assert_int_equal(hb_align(b), big[i]);
    assert_true(is_aligned(hb_data(b), big[i]));
    assert_true(hb_capacity(b) >= 10);
    assert_int_equal(hb_len(b), 0);
    assert_int_equal(hb_free(b), HB_OK);
  }
}

static void wrap(void **state) {
  (void)state;
  const uint8_t src[] = {1, 2, 3, 4, 5};
  hb_buf *b = hb_wrap(src, sizeof src);
  assert_non_null(b);
  hb__check(b);
  assert_int_equal(hb_len(b), 5);
  assert_true(hb_capacity(b) >= 5);
  assert_int_equal(hb_remaining(b), 5);
  assert_int_equal(hb_align(b), _Alignof(max_align_t));
  assert_memory_equal(hb_data(b), src, 5);
  assert_ptr_not_equal(hb_data(b), src); /* a copy */
  assert_int_equal(hb_free(b), HB_OK);

  /* NULL is fine with n == 0; with n > 0 it is refused. */
  b = hb_wrap(NULL, 0);
  assert_non_null(b);
  hb__check(b);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(hb_free(b), HB_OK);
  assert_null(hb_wrap(NULL, 1));

  /* Sizes out of range. */
  assert_null(hb_wrap(src, SIZE_MAX));
  assert_null(hb_wrap(src, (size_t)PTRDIFF_MAX));
}

static void wrap_macro(void **state) {
  (void)state;
  uint32_t words[3] = {0x01020304, 0x05060708, 0x090a0b0c};
  hb_buf *b = HB_WRAP(words);
  assert_non_null(b);
  hb__check(b);
  assert_int_equal(hb_len(b), sizeof words);
  assert_memory_equal(hb_data(b), words, sizeof words);
  assert_int_equal(hb_free(b), HB_OK);

  char text[] = "hello";
  b = HB_WRAP(text);
  assert_non_null(b);
  assert_int_equal(hb_len(b), 6); /* the terminator too */
  assert_string_equal((const char *)hb_data(b), "hello");
  assert_int_equal(hb_free(b), HB_OK);
}

static void free_null(void **state) {
  (void)state;
  assert_int_equal(hb_free(NULL), HB_OK);
}

/* ---- reserve, resize, clear --------------------------------------------- */

static void reserve(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);

  /* Nothing to do: no change at all. */
  hb_snap s = hb_snap_take(b);
  assert_int_equal(hb_reserve(b, 0), HB_OK);
  assert_unchanged(b, &s);

  /* Growth: at least what was asked, with a floor of 64. */
  assert_int_equal(hb_reserve(b, 10), HB_OK);
  hb__check(b);
  assert_int_equal(hb_capacity(b), 64);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(hb_reserve(b, 1000), HB_OK);
  hb__check(b);
  assert_int_equal(hb_capacity(b), 1000); /* asked > doubled */
  assert_int_equal(hb_len(b), 0);

  /* Within capacity: the data does not move. */
  assert_int_equal(hb_put(b, "abcdef", 6), HB_OK);
  assert_int_equal(hb_get_u8(b, &(uint8_t){0}), HB_OK); /* cursor 1 */
  hb__check(b);
  s = hb_snap_take(b);
  assert_int_equal(hb_reserve(b, hb_capacity(b) - hb_len(b)), HB_OK);
  assert_unchanged(b, &s);

  /* Out of range: HB_ERANGE, and length, capacity, cursor and bytes stay. */
  size_t bad[] = {SIZE_MAX, SIZE_MAX - 5, (size_t)PTRDIFF_MAX,
                  (size_t)PTRDIFF_MAX - hb_len(b) + 1,
                  (size_t)PTRDIFF_MAX + 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    s = hb_snap_take(b);
    assert_int_equal(hb_reserve(b, bad[i]), HB_ERANGE);
    assert_unchanged(b, &s);
  }

  /* Growth keeps the bytes and the cursor. */
  assert_int_equal(hb_reserve(b, 5000), HB_OK);
  hb__check(b);
  assert_true(hb_capacity(b) - hb_len(b) >= 5000);
  assert_int_equal(hb_len(b), 6);
  assert_int_equal(hb_remaining(b), 5);
  assert_memory_equal(hb_data(b), "abcdef", 6);
  assert_int_equal(hb_free(b), HB_OK);
}

static void growth_policy(void **state) {
  (void)state;
  /* Capacity at least doubles: from 100, the 101st byte gives 200. */
  hb_buf *b = hb_new(100);
  assert_non_null(b);
  for (int i = 0; i < 100; i++) assert_int_equal(hb_put_u8(b, 1), HB_OK);
  assert_int_equal(hb_capacity(b), 100);
  assert_int_equal(hb_put_u8(b, 2), HB_OK);
  hb__check(b);
  assert_int_equal(hb_capacity(b), 200);
  assert_int_equal(hb_free(b), HB_OK);
}

static void resize(void **state) {
  (void)state;
  hb_buf *b = hb_new(4);
  assert_non_null(b);

  /* Grow: the new bytes get the fill, across a growth. */
  assert_int_equal(hb_put(b, "xy", 2), HB_OK);
  assert_int_equal(hb_resize(b, 300, 0x5A), HB_OK);
  hb__check(b);
  assert_int_equal(hb_len(b), 300);
  assert_true(hb_capacity(b) >= 300);
  assert_memory_equal(hb_data(b), "xy", 2);
  for (size_t i = 2; i < 300; i++) assert_int_equal(hb_data(b)[i], 0x5A);

  /* Same length: nothing changes. */
  hb_snap s = hb_snap_take(b);
  assert_int_equal(hb_resize(b, 300, 0), HB_OK);
  assert_unchanged(b, &s);

  /* Shrink with the cursor before the new end: the cursor stays. */
  assert_int_equal(hb_advance(b, 10), HB_OK);
  size_t cap = hb_capacity(b);
  assert_int_equal(hb_resize(b, 100, 0), HB_OK);
  hb__check(b);
  assert_int_equal(hb_len(b), 100);
  assert_int_equal(hb_capacity(b), cap); /* never shrinks */
  assert_int_equal(b->cursor, 10);
  assert_int_equal(hb_remaining(b), 90);

  /* Shrink below the cursor: the cursor is pulled back to the length. */
  assert_int_equal(hb_advance(b, 80), HB_OK);
  assert_int_equal(hb_resize(b, 50, 0), HB_OK);
  hb__check(b);
  assert_int_equal(hb_len(b), 50);
  assert_int_equal(b->cursor, 50);
  assert_int_equal(hb_remaining(b), 0);

  /* Grow again: the cursor stays, the new bytes are readable. */
  assert_int_equal(hb_resize(b, 52, 0x11), HB_OK);
  hb__check(b);
  uint16_t v = 0;
  assert_int_equal(hb_get_u16_be(b, &v), HB_OK);
  assert_int_equal(v, 0x1111);

  /* To zero. */
  assert_int_equal(hb_resize(b, 0, 0), HB_OK);
  hb__check(b);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(b->cursor, 0);

  /* Overflow: HB_ERANGE and nothing changes. */
  assert_int_equal(hb_resize(b, 8, 0x33), HB_OK);
  assert_int_equal(hb_advance(b, 3), HB_OK);
  size_t bad[] = {SIZE_MAX, (size_t)PTRDIFF_MAX + 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    s = hb_snap_take(b);
    assert_int_equal(hb_resize(b, bad[i], 0xEE), HB_ERANGE);
    assert_unchanged(b, &s);
  }
  assert_int_equal(hb_free(b), HB_OK);
}

static void clear(void **state) {
  (void)state;
  hb_buf *b = patterned(200);
  assert_int_equal(hb_advance(b, 7), HB_OK);
  size_t cap = hb_capacity(b);
  uint8_t *data = hb_data(b);
  hb_clear(b);
  hb__check(b);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(hb_remaining(b), 0);
  assert_int_equal(b->cursor, 0);
  assert_int_equal(hb_capacity(b), cap);
  assert_ptr_equal(hb_data(b), data);
  /* Usable again without growing. */
  assert_int_equal(hb_put_u32_le(b, 7), HB_OK);
  hb__check(b);
  assert_ptr_equal(hb_data(b), data);
  assert_int_equal(hb_len(b), 4);
  hb_clear(b); /* clearing an empty-cursor buffer twice is fine */
  hb_clear(b);
  hb__check(b);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- appends ------------------------------------------------------------ */

static void put(void **state) {
  (void)state;
  hb_buf *b = hb_new(8);
  assert_non_null(b);
  assert_int_equal(hb_put(b, "hello", 5), HB_OK);
  hb__check(b);
  assert_int_equal(hb_len(b), 5);
  assert_int_equal(hb_put(b, ", world", 7), HB_OK); /* grows */
  hb__check(b);
  assert_int_equal(hb_len(b), 12);
  assert_memory_equal(hb_data(b), "hello, world", 12);

  /* Zero bytes, NULL source: fine, no change. */
  hb_snap s = hb_snap_take(b);
  assert_int_equal(hb_put(b, NULL, 0), HB_OK);
  assert_int_equal(hb_put(b, "zz", 0), HB_OK);
  assert_unchanged(b, &s);

  /* NULL with bytes to copy: HB_EINVAL, no change. */
  s = hb_snap_take(b);
  assert_int_equal(hb_put(b, NULL, 3), HB_EINVAL);
  assert_unchanged(b, &s);

  /* Sizes out of range: HB_ERANGE, no change. */
  s = hb_snap_take(b);
  assert_int_equal(hb_put(b, "x", SIZE_MAX), HB_ERANGE);
  assert_unchanged(b, &s);
  s = hb_snap_take(b);
  assert_int_equal(hb_put(b, "x", (size_t)PTRDIFF_MAX), HB_ERANGE);
  assert_unchanged(b, &s);

  /* A large put from empty: one growth to exactly the size asked. */
  uint8_t big[5000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i ^ (i >> 8));
  hb_buf *c = hb_new(0);
  assert_non_null(c);
  assert_int_equal(hb_put(c, big, sizeof big), HB_OK);
  hb__check(c);
  assert_int_equal(hb_len(c), sizeof big);
  assert_memory_equal(hb_data(c), big, sizeof big);
  assert_int_equal(hb_free(c), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

/* hb_put with src inside the buffer itself, where the put grows (moves)
 * the data: the copy must come from the moved bytes. */
static void put_from_self_one(hb_buf *b) {
  for (int round = 0; round < 8; round++) {
    size_t len = hb_len(b);
    /* Make the buffer exactly full, so the put must grow. */
    assert_int_equal(hb_resize(b, hb_capacity(b), 0), HB_OK);
    for (size_t i = len; i < hb_len(b); i++) hb_data(b)[i] = (uint8_t)(i * 3);
    len = hb_len(b);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, hb_data(b), len);
    size_t cap = hb_capacity(b);

    assert_int_equal(hb_put(b, hb_data(b), len), HB_OK); /* the whole */
    hb__check(b);
    assert_true(hb_capacity(b) > cap);
    assert_int_equal(hb_len(b), 2 * len);
    assert_memory_equal(hb_data(b), copy, len);
    assert_memory_equal(hb_data(b) + len, copy, len);

    /* A slice from the middle, as a second growth may need. */
    assert_int_equal(hb_resize(b, hb_capacity(b), 0x77), HB_OK);
    size_t l2 = hb_len(b);
    assert_int_equal(hb_put(b, hb_data(b) + 1, len / 2), HB_OK);
    hb__check(b);
    assert_int_equal(hb_len(b), l2 + len / 2);
    assert_memory_equal(hb_data(b) + l2, copy + 1, len / 2);
    free(copy);
  }
  /* Without growth, an overlapping put is a memmove. */
  size_t len = hb_len(b);
  assert_int_equal(hb_reserve(b, 16), HB_OK);
  uint8_t *data = hb_data(b);
  uint8_t tail[8];
  memcpy(tail, hb_data(b) + len - 8, 8);
  assert_int_equal(hb_put(b, hb_data(b) + len - 8, 8), HB_OK);
  hb__check(b);
  assert_ptr_equal(hb_data(b), data);
  assert_memory_equal(hb_data(b) + len, tail, 8);
}

static void put_from_self(void **state) {
  (void)state;
  hb_buf *b = hb_new(16); /* inline, then separate (realloc) */
  assert_non_null(b);
  assert_int_equal(hb_put(b, "0123456789abcdef", 16), HB_OK);
  put_from_self_one(b);
  assert_int_equal(hb_free(b), HB_OK);

  b = hb_new_aligned(16, 4096); /* every growth is malloc + copy */
  assert_non_null(b);
  assert_int_equal(hb_put(b, "0123456789abcdef", 16), HB_OK);
  put_from_self_one(b);
  assert_int_equal(hb_free(b), HB_OK);
}

static void put_u8(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  for (size_t i = 0; i < 1000; i++) {
    assert_int_equal(hb_put_u8(b, (uint8_t)(i * 7 + 1)), HB_OK);
    hb__check(b);
    assert_int_equal(hb_len(b), i + 1);
  }
  assert_pattern(b, 0, 1000);
  assert_int_equal(hb_put_u8(b, 0), HB_OK);
  assert_int_equal(hb_put_u8(b, 0xFF), HB_OK);
  hb__check(b);
  assert_int_equal(hb_data(b)[1000], 0);
  assert_int_equal(hb_data(b)[1001], 0xFF);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Every fixed-size put, exact bytes.  Starting from capacity 0 so that the
 * first put and later ones cross growths. */
static void put_layouts(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  static const uint8_t want[] = {
      0x34, 0x12,                                     /* u16 le 0x1234 */
      0x12, 0x34,                                     /* u16 be 0x1234 */
      0x04, 0x03, 0x02, 0x01,                         /* u32 le */
      0x01, 0x02, 0x03, 0x04,                         /* u32 be */
      0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* u64 le */
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* u64 be */
      0x00, 0x00, 0x80, 0x3F,                         /* f32 le 1.0 */
      0x3F, 0x80, 0x00, 0x00,                         /* f32 be 1.0 */
      0x00, 0x00, 0x20, 0xC0,                         /* f32 le -2.5 */
      0xC0, 0x20, 0x00, 0x00,                         /* f32 be -2.5 */
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F, /* f64 le 1.0 */
      0x3F, 0xF0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* f64 be 1.0 */
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xC0, /* f64 le -2.5 */
      0xC0, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* f64 be -2.5 */
      0x18, 0x2D, 0x44, 0x54, 0xFB, 0x21, 0x09, 0x40, /* f64 le pi */
      0xAB,                                           /* u8 */
      0xFF, 0xFF,                                     /* u16 le max */
      0x00, 0x00, 0x00, 0x00,                         /* u32 be 0 */
      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, /* u64 be max */
  };
  size_t n = 0;
#define PUT(call, size)                                                      \
  do {                                                                       \
    assert_int_equal((call), HB_OK);                                         \
    hb__check(b);                                                            \
    n += (size);                                                             \
    assert_int_equal(hb_len(b), n);                                          \
    assert_memory_equal(hb_data(b), want, n);                                \
  } while (0)
  PUT(hb_put_u16_le(b, 0x1234), 2);
  PUT(hb_put_u16_be(b, 0x1234), 2);
  PUT(hb_put_u32_le(b, 0x01020304), 4);
  PUT(hb_put_u32_be(b, 0x01020304), 4);
  PUT(hb_put_u64_le(b, UINT64_C(0x0102030405060708)), 8);
  PUT(hb_put_u64_be(b, UINT64_C(0x0102030405060708)), 8);
  PUT(hb_put_f32_le(b, 1.0f), 4);
  PUT(hb_put_f32_be(b, 1.0f), 4);
  PUT(hb_put_f32_le(b, -2.5f), 4);
  PUT(hb_put_f32_be(b, -2.5f), 4);
  PUT(hb_put_f64_le(b, 1.0), 8);
  PUT(hb_put_f64_be(b, 1.0), 8);
  PUT(hb_put_f64_le(b, -2.5), 8);
  PUT(hb_put_f64_be(b, -2.5), 8);
  PUT(hb_put_f64_le(b, 3.141592653589793), 8);
  PUT(hb_put_u8(b, 0xAB), 1);
  PUT(hb_put_u16_le(b, UINT16_MAX), 2);
  PUT(hb_put_u32_be(b, 0), 4);
  PUT(hb_put_u64_be(b, UINT64_MAX), 8);
#undef PUT
  assert_int_equal(n, sizeof want);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- cursor reads ------------------------------------------------------- */

/* Decoding a known pattern, each call from a fresh cursor. */
static void get_decode(void **state) {
  (void)state;
  static const uint8_t pat[] = {0x01, 0x02, 0x03, 0x04,
                                0x05, 0x06, 0x07, 0x08};
  hb_buf *b;
#define DECODE(T, fn, want)                                                  \
  do {                                                                       \
    b = HB_WRAP(pat);                                                        \
    assert_non_null(b);                                                      \
    T out_;                                                                  \
    assert_int_equal(fn(b, &out_), HB_OK);                                   \
    hb__check(b);                                                            \
    assert_int_equal(out_, (want));                                          \
    assert_int_equal(hb_remaining(b), sizeof pat - sizeof(T));               \
    assert_int_equal(hb_len(b), sizeof pat); /* reads remove nothing */      \
    assert_int_equal(hb_free(b), HB_OK);                                     \
  } while (0)
  DECODE(uint8_t, hb_get_u8, 0x01);
  DECODE(uint16_t, hb_get_u16_le, 0x0201);
  DECODE(uint16_t, hb_get_u16_be, 0x0102);
  DECODE(uint32_t, hb_get_u32_le, 0x04030201);
  DECODE(uint32_t, hb_get_u32_be, 0x01020304);
  DECODE(uint64_t, hb_get_u64_le, UINT64_C(0x0807060504030201));
  DECODE(uint64_t, hb_get_u64_be, UINT64_C(0x0102030405060708));
#undef DECODE

  /* Floats from their IEEE-754 bytes. */
  static const uint8_t fl[] = {
      0x00, 0x00, 0x80, 0x3F,                         /* f32 le 1.0 */
      0xC0, 0x20, 0x00, 0x00,                         /* f32 be -2.5 */
      0x18, 0x2D, 0x44, 0x54, 0xFB, 0x21, 0x09, 0x40, /* f64 le pi */
      0xC0, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* f64 be -2.5 */
  };
  b = HB_WRAP(fl);
  assert_non_null(b);
  float f = 0;
  double d = 0;
  assert_int_equal(hb_get_f32_le(b, &f), HB_OK);
  assert_true(f == 1.0f);
  assert_int_equal(hb_get_f32_be(b, &f), HB_OK);
  assert_true(f == -2.5f);
  assert_int_equal(hb_get_f64_le(b, &d), HB_OK);
  assert_true(d == 3.141592653589793);
  assert_int_equal(hb_get_f64_be(b, &d), HB_OK);
  assert_true(d == -2.5);
  hb__check(b);
  assert_int_equal(hb_remaining(b), 0);
  /* f32 le/be with the other orders too. */
  assert_int_equal(hb_free(b), HB_OK);
  static const uint8_t fl2[] = {0x00, 0x00, 0x20, 0xC0, 0x3F, 0x80, 0x00,
                                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                0xF0, 0x3F, 0x3F, 0xF0, 0x00, 0x00, 0x00,
                                0x00, 0x00, 0x00};
  b = HB_WRAP(fl2);
  assert_non_null(b);
  assert_int_equal(hb_get_f32_le(b, &f), HB_OK);
  assert_true(f == -2.5f);
  assert_int_equal(hb_get_f32_be(b, &f), HB_OK);
  assert_true(f == 1.0f);
  assert_int_equal(hb_get_f64_le(b, &d), HB_OK);
  assert_true(d == 1.0);
  assert_int_equal(hb_get_f64_be(b, &d), HB_OK);
  assert_true(d == 1.0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Every put read back by its get, extremes included, across growths. */
static void get_round_trip(void **state) {
  (void)state;
  hb_buf *b = hb_new(3);
  assert_non_null(b);
  static const uint64_t vals[] = {0,          1,          0x7F,
                                  0x80,       0xFF,       0x1234,
                                  0xFFFF,     0x12345678, 0xFFFFFFFF,
                                  UINT64_C(0x0123456789ABCDEF), UINT64_MAX};
  static const double dv[] = {0.0, -0.0, 1.0, -2.5, 1e-300, 3.4e38,
                              INFINITY, -INFINITY};
  size_t nv = sizeof vals / sizeof vals[0], nd = sizeof dv / sizeof dv[0];
  for (size_t i = 0; i < nv; i++) {
    uint64_t v = vals[i];
    assert_int_equal(hb_put_u8(b, (uint8_t)v), HB_OK);
    assert_int_equal(hb_put_u16_le(b, (uint16_t)v), HB_OK);
    assert_int_equal(hb_put_u16_be(b, (uint16_t)v), HB_OK);
    assert_int_equal(hb_put_u32_le(b, (uint32_t)v), HB_OK);
    assert_int_equal(hb_put_u32_be(b, (uint32_t)v), HB_OK);
    assert_int_equal(hb_put_u64_le(b, v), HB_OK);
    assert_int_equal(hb_put_u64_be(b, v), HB_OK);
    hb__check(b);
  }
  for (size_t i = 0; i < nd; i++) {
    assert_int_equal(hb_put_f32_le(b, (float)dv[i]), HB_OK);
    assert_int_equal(hb_put_f32_be(b, (float)dv[i]), HB_OK);
    assert_int_equal(hb_put_f64_le(b, dv[i]), HB_OK);
    assert_int_equal(hb_put_f64_be(b, dv[i]), HB_OK);
    hb__check(b);
  }
  assert_int_equal(hb_len(b), nv * 29 + nd * 24);
  for (size_t i = 0; i < nv; i++) {
    uint64_t v = vals[i];
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    assert_int_equal(hb_get_u8(b, &u8), HB_OK);
    assert_int_equal(u8, (uint8_t)v);
    assert_int_equal(hb_get_u16_le(b, &u16), HB_OK);
    assert_int_equal(u16, (uint16_t)v);
    assert_int_equal(hb_get_u16_be(b, &u16), HB_OK);
    assert_int_equal(u16, (uint16_t)v);
    assert_int_equal(hb_get_u32_le(b, &u32), HB_OK);
    assert_int_equal(u32, (uint32_t)v);
    assert_int_equal(hb_get_u32_be(b, &u32), HB_OK);
    assert_int_equal(u32, (uint32_t)v);
    assert_int_equal(hb_get_u64_le(b, &u64), HB_OK);
    assert_int_equal(u64, v);
    assert_int_equal(hb_get_u64_be(b, &u64), HB_OK);
    assert_int_equal(u64, v);
    hb__check(b);
  }
  for (size_t i = 0; i < nd; i++) {
    float f, fw = (float)dv[i];
    double d;
    assert_int_equal(hb_get_f32_le(b, &f), HB_OK);
    assert_memory_equal(&f, &fw, sizeof f); /* bit-exact, -0.0 too */
    assert_int_equal(hb_get_f32_be(b, &f), HB_OK);
    assert_memory_equal(&f, &fw, sizeof f);
    assert_int_equal(hb_get_f64_le(b, &d), HB_OK);
    assert_memory_equal(&d, &dv[i], sizeof d);
    assert_int_equal(hb_get_f64_be(b, &d), HB_OK);
    assert_memory_equal(&d, &dv[i], sizeof d);
    hb__check(b);
  }
  assert_int_equal(hb_remaining(b), 0);

  /* A quiet NaN keeps its payload bits. */
  uint64_t nan_bits = UINT64_C(0x7FF8000000012345);
  double nan_in, nan_out;
  memcpy(&nan_in, &nan_bits, sizeof nan_in);
  assert_int_equal(hb_put_f64_be(b, nan_in), HB_OK);
  assert_int_equal(hb_get_f64_be(b, &nan_out), HB_OK);
  assert_memory_equal(&nan_out, &nan_bits, sizeof nan_out);

  /* hb_get of a byte run. */
  assert_int_equal(hb_put(b, "payload", 7), HB_OK);
  char got[8] = {0};
  assert_int_equal(hb_get(b, got, 7), HB_OK);
  hb__check(b);
  assert_string_equal(got, "payload");
  assert_int_equal(hb_remaining(b), 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* A read past the end: HB_ERANGE, nothing consumed, *out untouched. */
static void get_past_end(void **state) {
  (void)state;
  static const uint8_t three[] = {0xA1, 0xB2, 0xC3};
  hb_buf *b = HB_WRAP(three);
  assert_non_null(b);
  hb_snap s;
#define SHORT(T, fn)                                                         \
  do {                                                                       \
    T out_;                                                                  \
    memset(&out_, 0x5C, sizeof out_);                                        \
    s = hb_snap_take(b);                                                     \
    assert_int_equal(fn(b, &out_), HB_ERANGE);                               \
    assert_unchanged(b, &s);                                                 \
    T sentinel_;                                                             \
    memset(&sentinel_, 0x5C, sizeof sentinel_);                              \
    assert_memory_equal(&out_, &sentinel_, sizeof out_);                     \
  } while (0)
  /* 3 bytes remain: every 4- and 8-byte read is short. */
  SHORT(uint32_t, hb_get_u32_le);
  SHORT(uint32_t, hb_get_u32_be);
  SHORT(uint64_t, hb_get_u64_le);
  SHORT(uint64_t, hb_get_u64_be);
  SHORT(float, hb_get_f32_le);
  SHORT(float, hb_get_f32_be);
  SHORT(double, hb_get_f64_le);
  SHORT(double, hb_get_f64_be);
  uint8_t run[4];
  memset(run, 0x5C, sizeof run);
  s = hb_snap_take(b);
  assert_int_equal(hb_get(b, run, 4), HB_ERANGE);
  assert_unchanged(b, &s);
  assert_memory_equal(run, "\x5C\x5C\x5C\x5C", 4);
  s = hb_snap_take(b);
  assert_int_equal(hb_get(b, run, SIZE_MAX), HB_ERANGE);
  assert_unchanged(b, &s);

  /* Take two; 1 byte remains: 16-bit reads are short. */
  uint16_t v16 = 0;
  assert_int_equal(hb_get_u16_be(b, &v16), HB_OK);
  hb__check(b);
  assert_int_equal(v16, 0xA1B2);
  SHORT(uint16_t, hb_get_u16_le);
  SHORT(uint16_t, hb_get_u16_be);
  SHORT(uint32_t, hb_get_u32_be);

  /* Take the last; then even a byte is short. */
  uint8_t v8 = 0;
  assert_int_equal(hb_get_u8(b, &v8), HB_OK);
  hb__check(b);
  assert_int_equal(v8, 0xC3);
  assert_int_equal(hb_remaining(b), 0);
  SHORT(uint8_t, hb_get_u8);
  SHORT(uint16_t, hb_get_u16_le);
  SHORT(uint64_t, hb_get_u64_be);
  SHORT(double, hb_get_f64_le);
#undef SHORT

  /* hb_get: zero bytes are fine (dst may be NULL); NULL with n > 0 is
   * HB_EINVAL, with nothing consumed. */
  assert_int_equal(hb_get(b, NULL, 0), HB_OK);
  assert_int_equal(hb_put(b, "q", 1), HB_OK);
  s = hb_snap_take(b);
  assert_int_equal(hb_get(b, NULL, 1), HB_EINVAL);
  assert_unchanged(b, &s);
  assert_int_equal(hb_free(b), HB_OK);
}

static void advance(void **state) {
  (void)state;
  hb_buf *b = patterned(10);
  hb_snap s = hb_snap_take(b);
  assert_int_equal(hb_advance(b, 0), HB_OK);
  assert_unchanged(b, &s);
  assert_int_equal(hb_advance(b, 4), HB_OK);
  hb__check(b);
  assert_int_equal(hb_remaining(b), 6);
  uint8_t v;
  assert_int_equal(hb_get_u8(b, &v), HB_OK);
  assert_int_equal(v, (uint8_t)(4 * 7 + 1));
  /* Past the end: nothing moves. */
  size_t bad[] = {6, 7, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    s = hb_snap_take(b);
    assert_int_equal(hb_advance(b, bad[i]), HB_ERANGE);
    assert_unchanged(b, &s);
  }
  /* Exactly to the end. */
  assert_int_equal(hb_advance(b, 5), HB_OK);
  hb__check(b);
  assert_int_equal(hb_remaining(b), 0);
  assert_int_equal(hb_len(b), 10);
  s = hb_snap_take(b);
  assert_int_equal(hb_advance(b, 1), HB_ERANGE);
  assert_unchanged(b, &s);
  assert_int_equal(hb_free(b), HB_OK);
}

static void remaining(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  assert_int_equal(hb_remaining(b), 0);
  assert_int_equal(hb_put_u32_be(b, 1), HB_OK);
  assert_int_equal(hb_remaining(b), 4);
  assert_int_equal(hb_put_u16_be(b, 2), HB_OK);
  assert_int_equal(hb_remaining(b), 6);
  uint32_t v;
  assert_int_equal(hb_get_u32_be(b, &v), HB_OK);
  assert_int_equal(hb_remaining(b), 2);
  assert_int_equal(hb_len(b), 6); /* len counts what was read too */
  assert_int_equal(hb_remaining(b), hb_len(b) - b->cursor);
  hb__check(b);
  assert_int_equal(hb_free(b), HB_OK);
}

static void compact(void **state) {
  (void)state;
  hb_buf *b = patterned(100);
  uint8_t *data = hb_data(b);
  size_t cap = hb_capacity(b);

  /* Cursor at 0: nothing to drop. */
  hb_snap s = hb_snap_take(b);
  hb_compact(b);
  assert_unchanged(b, &s);

  /* Cursor in the middle: the rest moves to the front. */
  assert_int_equal(hb_advance(b, 30), HB_OK);
  hb_compact(b);
  hb__check(b);
  assert_int_equal(hb_len(b), 70);
  assert_int_equal(b->cursor, 0);
  assert_int_equal(hb_remaining(b), 70);
  assert_int_equal(hb_capacity(b), cap);
  assert_ptr_equal(hb_data(b), data); /* never reallocates */
  assert_pattern(b, 30, 70);

  /* Overlapping move (cursor below half the length). */
  assert_int_equal(hb_advance(b, 1), HB_OK);
  hb_compact(b);
  hb__check(b);
  assert_int_equal(hb_len(b), 69);
  assert_pattern(b, 31, 69);

  /* Cursor at the end: empty. */
  assert_int_equal(hb_advance(b, 69), HB_OK);
  hb_compact(b);
  hb__check(b);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(hb_remaining(b), 0);
  assert_int_equal(hb_capacity(b), cap);

  /* Empty buffer: fine. */
  hb_compact(b);
  hb__check(b);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- errors, version, allocator, statistics ----------------------------- */

static void errors(void **state) {
  (void)state;
  int seen = 0;
#define CHECK_CODE(name, code, msg)                                          \
  do {                                                                       \
    assert_int_equal(HB_##name, (code));                                     \
    assert_true(HB_##name < 0);                                              \
    assert_string_equal(hb_strerror(HB_##name), (msg));                      \
    assert_string_equal(hb_err_name(HB_##name), "HB_" #name);                \
    seen++;                                                                  \
  } while (0);
  HB_ERRNO_MAP(CHECK_CODE)
#undef CHECK_CODE
  assert_true(seen >= 8);
  /* The codes DESIGN.md names all exist and differ. */
  int codes[] = {HB_ENOMEM, HB_EINVAL, HB_ERANGE,  HB_EAGAIN,
                 HB_ECANCELED, HB_EBUSY, HB_ESTATE};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    for (size_t j = i + 1; j < sizeof codes / sizeof codes[0]; j++)
      assert_int_not_equal(codes[i], codes[j]);

  assert_int_equal(HB_OK, 0);
  assert_true(HB_PENDING > 0);
  assert_string_equal(hb_err_name(HB_OK), "HB_OK");
  assert_string_equal(hb_err_name(HB_PENDING), "HB_PENDING");
  assert_non_null(hb_strerror(HB_OK));
  assert_non_null(hb_strerror(HB_PENDING));
  assert_string_not_equal(hb_strerror(HB_OK), "unknown error");
  assert_string_not_equal(hb_strerror(HB_PENDING), "unknown error");

  int unknown[] = {-1000, -11, 2, 12345, INT32_MIN, INT32_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    assert_string_equal(hb_strerror(unknown[i]), "unknown error");
    assert_string_equal(hb_err_name(unknown[i]), "HB_UNKNOWN");
  }
}

static void version(void **state) {
  (void)state;
  char want[64];
  snprintf(want, sizeof want, "%d.%d.%d", HB_VERSION_MAJOR, HB_VERSION_MINOR,
           HB_VERSION_PATCH);
  assert_non_null(hb_version_string());
  assert_string_equal(hb_version_string(), want);
  assert_int_equal(HB_VERSION_HEX, (HB_VERSION_MAJOR << 16) |
                                       (HB_VERSION_MINOR << 8) |
                                       HB_VERSION_PATCH);
}

static void set_allocator_null(void **state) {
  (void)state;
  assert_int_equal(hb_set_allocator(NULL, realloc, free), HB_EINVAL);
  assert_int_equal(hb_set_allocator(malloc, NULL, free), HB_EINVAL);
  assert_int_equal(hb_set_allocator(malloc, realloc, NULL), HB_EINVAL);
  assert_int_equal(hb_set_allocator(NULL, NULL, NULL), HB_EINVAL);
  /* Nothing changed: allocation still works. */
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  assert_int_equal(hb_reserve(b, 100), HB_OK);
  hb__check(b);
  assert_int_equal(hb_free(b), HB_OK);
  assert_int_equal(hb_set_allocator(malloc, realloc, free), HB_OK);
}

static void stats(void **state) {
  (void)state;
  hb_stats st;
  assert_int_equal(hb_stats_get(NULL, &st), HB_EINVAL);

  /* hb_new_aligned(.., 64) grows by malloc + copy, so bytes_moved is exact:
   * 0 -> 64 -> 128 -> 256 -> 512 -> 1024 moves 0+64+128+256+512 bytes. */
  hb_buf *b = hb_new_aligned(0, 64);
  assert_non_null(b);
  assert_int_equal(hb_stats_get(b, NULL), HB_EINVAL);
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.growths, 0);
  assert_int_equal(st.bytes_moved, 0);
  assert_int_equal(st.visits_run, 0);
  assert_int_equal(st.visits_cancelled, 0);
  assert_int_equal(st.visits_aborted, 0);
  assert_int_equal(st.reserve_failed, 0);
  assert_int_equal(st.longest_queue, 0);
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(hb_put_u8(b, (uint8_t)i), HB_OK);
  }
  hb__check(b);
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.growths, 5);
  assert_int_equal(st.bytes_moved, 64 + 128 + 256 + 512);
  /* A failed growth counts nothing. */
  assert_int_equal(hb_reserve(b, SIZE_MAX), HB_ERANGE);
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.growths, 5);
  assert_int_equal(hb_free(b), HB_OK);

  /* Default alignment: growths are counted the same way; bytes moved is at
   * most what was stored (realloc may grow in place). */
  b = hb_new(0);
  assert_non_null(b);
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(hb_put_u8(b, (uint8_t)i), HB_OK);
  }
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.growths, 5);
  assert_true(st.bytes_moved <= 64 + 128 + 256 + 512);
  assert_int_equal(st.visits_run, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* hb_data() keeps the buffer's alignment through every growth, whatever
 * the growth path (puts, reserve, resize, a large put). */
static void aligned_growth_one(size_t align, size_t initial) {
  hb_buf *b = hb_new_aligned(initial, align);
  assert_non_null(b);
  hb__check(b);
  assert_int_equal(hb_align(b), align);
  assert_true(is_aligned(hb_data(b), align));
  size_t last = hb_capacity(b), growths = 0;
  for (size_t i = 0; i < 200000; i++) {
    assert_int_equal(hb_put_u8(b, (uint8_t)(i * 7 + 1)), HB_OK);
    if (hb_capacity(b) != last) {
      hb__check(b);
      assert_true(is_aligned(hb_data(b), align));
      assert_int_equal(hb_align(b), align);
      assert_pattern(b, 0, i + 1);
      last = hb_capacity(b);
      growths++;
    }
  }
  assert_true(growths >= 5);
  assert_pattern(b, 0, 200000);
  /* Other growth paths. */
  assert_int_equal(hb_reserve(b, 1000000), HB_OK);
  hb__check(b);
  assert_true(is_aligned(hb_data(b), align));
  assert_int_equal(hb_resize(b, hb_capacity(b) + 1, 0), HB_OK);
  hb__check(b);
  assert_true(is_aligned(hb_data(b), align));
  assert_int_equal(hb_resize(b, hb_capacity(b), 0), HB_OK);
  assert_int_equal(hb_put_u64_le(b, 1), HB_OK);
  hb__check(b);
  assert_true(is_aligned(hb_data(b), align));
  assert_pattern(b, 0, 200000);
  assert_int_equal(hb_free(b), HB_OK);
}

static void aligned_growth(void **state) {
  (void)state;
  aligned_growth_one(64, 0);
  aligned_growth_one(64, 1);
  aligned_growth_one(64, 100);
  aligned_growth_one(4096, 0);
  aligned_growth_one(4096, 5000);
  aligned_growth_one(_Alignof(max_align_t), 0);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(new_empty),
      cmocka_unit_test(new_with_capacity),
      cmocka_unit_test(new_huge_capacity),
      cmocka_unit_test(new_aligned),
      cmocka_unit_test(wrap),
      cmocka_unit_test(wrap_macro),
      cmocka_unit_test(free_null),
      cmocka_unit_test(reserve),
      cmocka_unit_test(growth_policy),
      cmocka_unit_test(resize),
      cmocka_unit_test(clear),
      cmocka_unit_test(put),
      cmocka_unit_test(put_from_self),
      cmocka_unit_test(put_u8),
      cmocka_unit_test(put_layouts),
      cmocka_unit_test(get_decode),
      cmocka_unit_test(get_round_trip),
      cmocka_unit_test(get_past_end),
      cmocka_unit_test(advance),
      cmocka_unit_test(remaining),
      cmocka_unit_test(compact),
      cmocka_unit_test(errors),
      cmocka_unit_test(version),
      cmocka_unit_test(set_allocator_null),
      cmocka_unit_test(stats),
      cmocka_unit_test(aligned_growth),
  };
  return hb_test_main("direct", tests);
}
