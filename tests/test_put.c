/*
 * test_put.c -- direct mode, appends: hb_put (also from the buffer's own
 * bytes), hb_put_u8 and the exact byte layout of every fixed-width put.
 * hb__check(b) runs after every step that changes a buffer.
 */
#include "hb_test.h"

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
  assert_rc_unchanged(b, hb_put(b, NULL, 3), HB_EINVAL);

  /* Sizes out of range: HB_ERANGE, no change. */
  assert_rc_unchanged(b, hb_put(b, "x", SIZE_MAX), HB_ERANGE);
  assert_rc_unchanged(b, hb_put(b, "x", (size_t)PTRDIFF_MAX), HB_ERANGE);

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

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(put),
      cmocka_unit_test(put_from_self),
      cmocka_unit_test(put_u8),
      cmocka_unit_test(put_layouts),
  };
  return hb_test_main("put", tests);
}
