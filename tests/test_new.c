/*
 * test_new.c -- direct mode, creation: hb_new, hb_new_aligned, hb_wrap,
 * HB_WRAP and hb_free, each with every error it can return.
 * hb__check(b) runs after every step that changes a buffer.
 */
#include "hb_test.h"

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

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(new_empty),
      cmocka_unit_test(new_with_capacity),
      cmocka_unit_test(new_huge_capacity),
      cmocka_unit_test(new_aligned),
      cmocka_unit_test(wrap),
      cmocka_unit_test(wrap_macro),
      cmocka_unit_test(free_null),
  };
  return hb_test_main("new", tests);
}
