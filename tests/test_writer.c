/*
 * test_writer.c -- the writer session (issue 14): hb_writer_begin, the
 * puts, hb_writer_pending and hb_writer_commit; growth keeping uncommitted
 * bytes, a dropped writer storing nothing, and allocation failure at every
 * growth changing neither the writer nor the buffer.
 */
#include "hb_test.h"

#include "fail_alloc.h"

static uint8_t pattern(size_t i) { return (uint8_t)(i * 53u + 11u); }

static void expect_pattern(hb_buf *b, size_t from, size_t n) {
  for (size_t i = 0; i < n; i++)
    assert_int_equal(hb_data(b)[from + i], pattern(i));
}

static void bytes_are_stored_at_commit(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  assert_int_equal(hb_put(b, "hdr", 3), HB_OK);
  hb_writer w;
  hb_writer_begin(&w, b);
  assert_int_equal(hb_writer_pending(&w), 0);
  for (size_t i = 0; i < 5000; i++) { /* grows many times from 64 */
    assert_int_equal(hb_writer_put_u8(&w, pattern(i)), HB_OK);
    if (i == 99) {
      assert_int_equal(hb_len(b), 3); /* not stored before the commit */
      assert_int_equal(hb_writer_pending(&w), 100);
    }
  }
  assert_int_equal(hb_writer_pending(&w), 5000);
  assert_int_equal(hb_writer_commit(&w), 5000);
  assert_int_equal(hb_len(b), 5003);
  assert_int_equal(hb_writer_pending(&w), 0);
  assert_memory_equal(hb_data(b), "hdr", 3);
  expect_pattern(b, 3, 5000);
  hb__check(b);
  /* The writer goes on after a commit. */
  assert_int_equal(hb_writer_put(&w, "tail", 4), HB_OK);
  assert_int_equal(hb_writer_commit(&w), 4);
  assert_int_equal(hb_len(b), 5007);
  assert_memory_equal(hb_data(b) + 5003, "tail", 4);
  assert_int_equal(hb_free(b), HB_OK);
}

static void dropped_writer_stores_nothing(void **state) {
  (void)state;
  hb_buf *b = hb_new(8);
  assert_non_null(b);
  assert_int_equal(hb_put_u8(b, 1), HB_OK);
  {
    hb_writer w;
    hb_writer_begin(&w, b);
    for (int i = 0; i < 100; i++)
      assert_int_equal(hb_writer_put_u8(&w, 0xee), HB_OK); /* grows */
  } /* never committed */
  assert_int_equal(hb_len(b), 1);
  assert_int_equal(hb_data(b)[0], 1);
  assert_true(hb_capacity(b) >= 101); /* the growth itself stays */
  hb__check(b);
  assert_int_equal(hb_free(b), HB_OK);
}

static void put_copies_and_checks(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  assert_int_equal(hb_put(b, "0123456789", 10), HB_OK);
  hb_writer w;
  hb_writer_begin(&w, b);
  assert_int_equal(hb_writer_put(&w, NULL, 0), HB_OK);
  assert_int_equal(hb_writer_put(&w, NULL, 1), HB_EINVAL);
  assert_int_equal(hb_writer_pending(&w), 0);
  /* From the buffer's own bytes, when the put must grow: growth moves
   * them, the copy must follow. */
  for (int i = 0; i < 8; i++) {
    size_t have = hb_len(b) + hb_writer_pending(&w);
    const uint8_t *src = hb_data(b) + 2;
    size_t n = hb_capacity(b) - have + 1; /* one more than fits */
    if (n > have - 2) n = have - 2;
    uint8_t *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, src, n);
    assert_int_equal(hb_writer_put(&w, src, n), HB_OK);
    assert_memory_equal(w.pos - n, copy, n);
    free(copy);
  }
  /* Overlapping the destination: src runs on into the room it fills
   * (which this test has written, so nothing indeterminate is read). */
  while (w.end - w.pos < 6) assert_int_equal(hb_writer_put_u8(&w, 'p'), HB_OK);
  memset(w.pos, 'z', (size_t)(w.end - w.pos));
  uint8_t *at = w.pos;
  uint8_t want[6];
  memcpy(want, at - 3, 3);
  memset(want + 3, 'z', 3);
  assert_int_equal(hb_writer_put(&w, at - 3, 6), HB_OK);
  assert_memory_equal(at, want, 6);
  hb_writer_commit(&w);
  hb__check(b);
  assert_memory_equal(hb_data(b), "0123456789", 10);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Growth fails at every allocation in turn, at a put of either kind:
 * HB_ENOMEM; the writer (position and end) and the buffer (data, length,
 * capacity, the committed and the uncommitted bytes) are as they were;
 * the same put then works. */
static void allocation_failure_changes_nothing(void **state) {
  (void)state;
  static const size_t aligns[] = {16, 128};
  for (size_t a = 0; a < 2; a++) {
    for (int kind = 0; kind < 2; kind++) {
      for (long k = 0;; k++) {
        disarm();
        hb_buf *b = hb_new_aligned(16, aligns[a]);
        assert_non_null(b);
        assert_int_equal(hb_put(b, "abcd", 4), HB_OK);
        hb_writer w;
        hb_writer_begin(&w, b);
        while (w.pos != w.end) /* fill the room exactly */
          assert_int_equal(hb_writer_put_u8(&w, pattern(hb_writer_pending(&w))),
                           HB_OK);
        size_t pending = hb_writer_pending(&w);
        hb_writer before = w;
        hb_snap snap = hb_snap_take(b);
        arm(k);
        int rc = kind ? hb_writer_put(&w, "xyz", 3) : hb_writer_put_u8(&w, 9);
        int failed = injected;
        disarm();
        if (!failed) {
          assert_int_equal(rc, HB_OK);
          assert_int_equal(hb_writer_pending(&w), pending + (kind ? 3 : 1));
          hb_writer_commit(&w);
          assert_memory_equal(hb_data(b), "abcd", 4);
          expect_pattern(b, 4, pending);
          assert_int_equal(hb_free(b), HB_OK);
          break;
        }
        assert_int_equal(rc, HB_ENOMEM);
        assert_ptr_equal(w.pos, before.pos);
        assert_ptr_equal(w.end, before.end);
        assert_unchanged(b, &snap);
        expect_pattern(b, 4, pending); /* the uncommitted bytes too */
        /* Memory is back: the same put works, and commits. */
        assert_int_equal(kind ? hb_writer_put(&w, "xyz", 3)
                              : hb_writer_put_u8(&w, 9),
                         HB_OK);
        assert_int_equal(hb_writer_commit(&w), pending + (kind ? 3 : 1));
        expect_pattern(b, 4, pending);
        assert_int_equal(hb_free(b), HB_OK);
      }
    }
  }
}

/* The integer puts store the named byte order, the same bytes as the
 * buffer's own hb_put_u*_{le,be}. */
static void integers_in_byte_order(void **state) {
  (void)state;
  hb_buf *b = hb_new(0), *ref = hb_new(0);
  assert_non_null(b);
  assert_non_null(ref);
  hb_writer w;
  hb_writer_begin(&w, b);
  for (int i = 0; i < 40; i++) { /* enough to grow on the way */
    uint64_t v = 0x0123456789abcdefu * (uint64_t)(i + 1);
    assert_int_equal(hb_writer_put_u16_le(&w, (uint16_t)v), HB_OK);
    assert_int_equal(hb_writer_put_u16_be(&w, (uint16_t)v), HB_OK);
    assert_int_equal(hb_writer_put_u32_le(&w, (uint32_t)v), HB_OK);
    assert_int_equal(hb_writer_put_u32_be(&w, (uint32_t)v), HB_OK);
    assert_int_equal(hb_writer_put_u64_le(&w, v), HB_OK);
    assert_int_equal(hb_writer_put_u64_be(&w, v), HB_OK);
    assert_int_equal(hb_put_u16_le(ref, (uint16_t)v), HB_OK);
    assert_int_equal(hb_put_u16_be(ref, (uint16_t)v), HB_OK);
    assert_int_equal(hb_put_u32_le(ref, (uint32_t)v), HB_OK);
    assert_int_equal(hb_put_u32_be(ref, (uint32_t)v), HB_OK);
    assert_int_equal(hb_put_u64_le(ref, v), HB_OK);
    assert_int_equal(hb_put_u64_be(ref, v), HB_OK);
  }
  assert_int_equal(hb_writer_commit(&w), 40 * 28);
  assert_int_equal(hb_len(b), hb_len(ref));
  assert_memory_equal(hb_data(b), hb_data(ref), hb_len(b));
  static const uint8_t be[4] = {0x12, 0x34, 0x56, 0x78};
  hb_writer_begin(&w, b);
  assert_int_equal(hb_writer_put_u32_be(&w, 0x12345678u), HB_OK);
  hb_writer_commit(&w);
  assert_memory_equal(hb_data(b) + hb_len(b) - 4, be, 4);
  assert_int_equal(hb_free(b), HB_OK);
  assert_int_equal(hb_free(ref), HB_OK);
}

static void range_error_changes_nothing(void **state) {
  (void)state;
  hb_buf *b = hb_new(8);
  assert_non_null(b);
  hb_writer w;
  hb_writer_begin(&w, b);
  assert_int_equal(hb_writer_put_u8(&w, 1), HB_OK);
  hb_writer before = w;
  static const uint8_t one = 1;
  assert_int_equal(hb_writer_put(&w, &one, (size_t)PTRDIFF_MAX), HB_ERANGE);
  assert_int_equal(hb_writer_put(&w, &one, SIZE_MAX), HB_ERANGE);
  assert_ptr_equal(w.pos, before.pos);
  assert_ptr_equal(w.end, before.end);
  assert_int_equal(hb_writer_commit(&w), 1);
  assert_int_equal(hb_len(b), 1);
  assert_int_equal(hb_free(b), HB_OK);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bytes_are_stored_at_commit),
      cmocka_unit_test(dropped_writer_stores_nothing),
      cmocka_unit_test(put_copies_and_checks),
      cmocka_unit_test_setup_teardown(allocation_failure_changes_nothing,
                                      fail_alloc_setup, fail_alloc_teardown),
      cmocka_unit_test(integers_in_byte_order),
      cmocka_unit_test(range_error_changes_nothing),
  };
  return hb_test_main("writer", tests);
}
