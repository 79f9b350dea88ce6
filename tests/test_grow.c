/*
 * test_grow.c -- direct mode, growth: hb_reserve and the growth policy,
 * hb_resize, hb_clear, and the alignment kept through every growth.
 * hb__check(b) runs after every step that changes a buffer.
 */
#include "hb_test.h"

/* ---- reserve, resize, clear --------------------------------------------- */

static void reserve(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);

  /* Nothing to do: no change at all. */
  assert_rc_unchanged(b, hb_reserve(b, 0), HB_OK);

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
  assert_rc_unchanged(b, hb_reserve(b, hb_capacity(b) - hb_len(b)), HB_OK);

  /* Out of range: HB_ERANGE, and length, capacity, cursor and bytes stay. */
  size_t bad[] = {SIZE_MAX, SIZE_MAX - 5, (size_t)PTRDIFF_MAX,
                  (size_t)PTRDIFF_MAX - hb_len(b) + 1,
                  (size_t)PTRDIFF_MAX + 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_rc_unchanged(b, hb_reserve(b, bad[i]), HB_ERANGE);
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
  assert_rc_unchanged(b, hb_resize(b, 300, 0), HB_OK);

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
    assert_rc_unchanged(b, hb_resize(b, bad[i], 0xEE), HB_ERANGE);
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

/* ---- alignment through growth ------------------------------------------ */

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
      cmocka_unit_test(reserve),
      cmocka_unit_test(growth_policy),
      cmocka_unit_test(resize),
      cmocka_unit_test(clear),
      cmocka_unit_test(aligned_growth),
  };
  return hb_test_main("grow", tests);
}
