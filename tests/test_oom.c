/*
 * test_oom.c -- allocation failure, every allocation point in turn.
 *
 * A counting allocator installed with hb_set_allocator fails the k-th
 * allocation (malloc or realloc) it sees.  For each allocating call we walk
 * k = 0, 1, 2, ... on a fresh buffer until the call succeeds without a
 * failure injected.  Each injected failure must give HB_ENOMEM (NULL for
 * the constructors) and leave the buffer exactly as it was: length,
 * capacity, cursor, bytes, the hb_data() pointer and the growth counters.
 * After a failure the same call, with memory available again, must work.
 */
#include "hb_test.h"

#include <stdlib.h>
#include <string.h>

#include "fail_alloc.h"

/* ---- the walk ----------------------------------------------------------- */

/* How to build the buffer before the call (allocations not failing). */
typedef struct {
  size_t capacity, align; /* hb_new_aligned(capacity, align) */
  size_t fill;            /* then this many pattern bytes */
  size_t cursor;          /* then advance this far */
} fixture;

static hb_buf *make(const fixture *f) {
  disarm();
  hb_buf *b = hb_new_aligned(f->capacity, f->align);
  assert_non_null(b);
  for (size_t i = 0; i < f->fill; i++)
    assert_int_equal(hb_put_u8(b, (uint8_t)(i * 13 + 5)), HB_OK);
  assert_int_equal(hb_advance(b, f->cursor), HB_OK);
  hb__check(b);
  return b;
}

typedef int (*op_fn)(hb_buf *b);

/* Walk every allocation point of op on buffers built by f.  The call must
 * allocate at least once (min_points).  Then check what the successful
 * call did with check_ok, if given.  @return the number of failure points. */
static long walk(const fixture *f, op_fn op, long min_points,
                 void (*check_ok)(hb_buf *b, const hb_snap *before)) {
  for (long k = 0;; k++) {
    hb_buf *b = make(f);
    hb_snap s = hb_snap_take(b);
    arm(k);
    int rc = op(b);
    disarm();
    if (injected) {
      assert_int_equal(rc, HB_ENOMEM);
      assert_unchanged(b, &s);
      /* Still usable: the same call works with memory available. */
      assert_int_equal(op(b), HB_OK);
      hb__check(b);
      if (check_ok) check_ok(b, &s);
    } else {
      assert_int_equal(rc, HB_OK);
      hb__check(b);
      if (check_ok) check_ok(b, &s);
      assert_true(k >= min_points);
      assert_int_equal(hb_free(b), HB_OK);
      return k;
    }
    assert_int_equal(hb_free(b), HB_OK);
    assert_true(k < 100); /* no call allocates this often */
  }
}

/* After a successful append: the old bytes are intact and the data is
 * aligned; the cursor did not move. */
static void kept(hb_buf *b, const hb_snap *s) {
  assert_true(hb_len(b) >= s->len);
  assert_int_equal(b->cursor, s->cursor);
  assert_true(hb_snap_bytes_at(b, 0, s));
  assert_int_equal(((uintptr_t)hb_data(b)) & (hb_align(b) - 1), 0);
}

/* The fixtures: inline (first growth leaves the header allocation),
 * separate (grows an allocation of its own), each at default and large
 * alignment, each exactly full so that any append must grow. */
#define MAXA _Alignof(max_align_t)
static const fixture inline_full = {16, MAXA, 16, 3};
static const fixture separate_full = {0, MAXA, 128, 5}; /* cap 0->64->128 */
static const fixture inline_a64 = {16, 64, 16, 2};
static const fixture separate_a64 = {0, 64, 128, 1};
static const fixture inline_a4096 = {16, 4096, 16, 0};
static const fixture separate_a4096 = {0, 4096, 64, 7};
static const fixture empty0 = {0, MAXA, 0, 0};
static const fixture *const all_fixtures[] = {
    &inline_full, &separate_full, &inline_a64,  &separate_a64,
    &inline_a4096, &separate_a4096, &empty0,
};
#define N_FIXTURES (sizeof all_fixtures / sizeof all_fixtures[0])

/* Each allocating call, as an op. */
static const uint8_t payload[300] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static int op_reserve(hb_buf *b) { return hb_reserve(b, 200); }
static int op_reserve_big(hb_buf *b) { return hb_reserve(b, 100000); }
static int op_resize(hb_buf *b) { return hb_resize(b, hb_len(b) + 500, 0xAB); }
static int op_put(hb_buf *b) { return hb_put(b, payload, sizeof payload); }
static int op_put_self(hb_buf *b) { return hb_put(b, hb_data(b), hb_len(b)); }
static int op_put_u8(hb_buf *b) { return hb_put_u8(b, 0x42); }
static int op_put_u16_le(hb_buf *b) { return hb_put_u16_le(b, 0x1234); }
static int op_put_u16_be(hb_buf *b) { return hb_put_u16_be(b, 0x1234); }
static int op_put_u32_le(hb_buf *b) { return hb_put_u32_le(b, 0x01020304); }
static int op_put_u32_be(hb_buf *b) { return hb_put_u32_be(b, 0x01020304); }
static int op_put_u64_le(hb_buf *b) { return hb_put_u64_le(b, 1); }
static int op_put_u64_be(hb_buf *b) { return hb_put_u64_be(b, 1); }
static int op_put_f32_le(hb_buf *b) { return hb_put_f32_le(b, 1.5f); }
static int op_put_f32_be(hb_buf *b) { return hb_put_f32_be(b, 1.5f); }
static int op_put_f64_le(hb_buf *b) { return hb_put_f64_le(b, -2.0); }
static int op_put_f64_be(hb_buf *b) { return hb_put_f64_be(b, -2.0); }

static void walk_all_fixtures(op_fn op) {
  for (size_t i = 0; i < N_FIXTURES; i++) walk(all_fixtures[i], op, 1, kept);
}

/* ---- tests -------------------------------------------------------------- */

static void oom_new(void **state) {
  (void)state;
  size_t caps[] = {0, 1, 100, 100000};
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    long k;
    for (k = 0;; k++) {
      arm(k);
      hb_buf *b = hb_new(caps[i]);
      disarm();
      if (!injected) {
        assert_non_null(b);
        hb__check(b);
        assert_true(hb_capacity(b) >= caps[i]);
        assert_int_equal(hb_free(b), HB_OK);
        break;
      }
      assert_null(b);
    }
    assert_int_equal(k, 1); /* one allocation: header and bytes together */
  }
}

static void oom_new_aligned(void **state) {
  (void)state;
  size_t aligns[] = {1, 16, 64, 4096};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    long k;
    for (k = 0;; k++) {
      arm(k);
      hb_buf *b = hb_new_aligned(100, aligns[i]);
      disarm();
      if (!injected) {
        assert_non_null(b);
        hb__check(b);
        assert_int_equal(((uintptr_t)hb_data(b)) & (hb_align(b) - 1), 0);
        assert_int_equal(hb_free(b), HB_OK);
        break;
      }
      assert_null(b);
    }
    assert_true(k >= 1);
  }
}

static void oom_wrap(void **state) {
  (void)state;
  static const uint8_t arr[] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
  long k;
  for (k = 0;; k++) {
    arm(k);
    hb_buf *b = hb_wrap(payload, sizeof payload);
    disarm();
    if (!injected) {
      assert_non_null(b);
      hb__check(b);
      assert_int_equal(hb_len(b), sizeof payload);
      assert_memory_equal(hb_data(b), payload, sizeof payload);
      assert_int_equal(hb_free(b), HB_OK);
      break;
    }
    assert_null(b);
  }
  assert_true(k >= 1);
  for (k = 0;; k++) {
    arm(k);
    hb_buf *b = HB_WRAP(arr);
    disarm();
    if (!injected) {
      assert_non_null(b);
      assert_int_equal(hb_len(b), sizeof arr);
      assert_memory_equal(hb_data(b), arr, sizeof arr);
      assert_int_equal(hb_free(b), HB_OK);
      break;
    }
    assert_null(b);
  }
  assert_true(k >= 1);
}

static void oom_reserve(void **state) {
  (void)state;
  walk_all_fixtures(op_reserve);
  walk_all_fixtures(op_reserve_big);
}

static void oom_resize(void **state) {
  (void)state;
  walk_all_fixtures(op_resize);
}

static void oom_put(void **state) {
  (void)state;
  walk_all_fixtures(op_put);
}

/* src inside the buffer while growth moves it: on failure nothing moved,
 * on success the second half repeats the first. */
static void doubled(hb_buf *b, const hb_snap *s) {
  kept(b, s);
  assert_int_equal(hb_len(b), 2 * s->len);
  assert_true(hb_snap_bytes_at(b, s->len, s));
}
static void oom_put_self(void **state) {
  (void)state;
  for (size_t i = 0; i < N_FIXTURES; i++) {
    if (all_fixtures[i]->fill == 0) continue; /* nothing to copy */
    walk(all_fixtures[i], op_put_self, 1, doubled);
  }
}

static void oom_put_fixed(void **state) {
  (void)state;
  op_fn ops[] = {op_put_u8,     op_put_u16_le, op_put_u16_be, op_put_u32_le,
                 op_put_u32_be, op_put_u64_le, op_put_u64_be, op_put_f32_le,
                 op_put_f32_be, op_put_f64_le, op_put_f64_be};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    walk_all_fixtures(ops[i]);
}

/* Many growths in a row: every allocation of a long run of puts is failed
 * in turn; the buffer holds exactly the puts that succeeded before it. */
static void oom_put_run(void **state) {
  (void)state;
  size_t aligns[] = {MAXA, 64, 4096};
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    for (long k = 0;; k++) {
      disarm();
      hb_buf *b = hb_new_aligned(0, aligns[a]);
      assert_non_null(b);
      arm(k);
      uint32_t i;
      int rc = HB_OK;
      for (i = 0; i < 5000 && rc == HB_OK; i++) {
        uint8_t *data = hb_data(b);
        size_t len = hb_len(b), cap = hb_capacity(b);
        rc = hb_put_u32_be(b, i);
        if (rc != HB_OK) {
          assert_int_equal(rc, HB_ENOMEM);
          assert_ptr_equal(hb_data(b), data);
          assert_int_equal(hb_len(b), len);
          assert_int_equal(hb_capacity(b), cap);
        }
      }
      disarm();
      hb__check(b);
      uint32_t stored = (uint32_t)(hb_len(b) / 4);
      assert_int_equal(hb_len(b), (size_t)stored * 4);
      for (uint32_t j = 0; j < stored; j++) {
        uint32_t v;
        assert_int_equal(hb_get_u32_be(b, &v), HB_OK);
        assert_int_equal(v, j);
      }
      int done = !injected;
      assert_int_equal(hb_free(b), HB_OK);
      if (done) {
        assert_int_equal(stored, 5000);
        assert_true(k >= 5); /* 0 -> 64 -> ... -> 32768: nine growths */
        break;
      }
    }
  }
}

/* The allocator is really used: allocations and frees go through it. */
static void allocator_used(void **state) {
  (void)state;
  arm(-1);
  long f0 = frees;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  assert_int_equal(hb_reserve(b, 1000), HB_OK);
  assert_int_equal(allocs, 2);
  assert_int_equal(hb_free(b), HB_OK);
  assert_int_equal(frees - f0, 2);
}

int main(int argc, char **argv) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fail_alloc_setup, fail_alloc_teardown)
  const struct CMUnitTest tests[] = {
      T(oom_new),      T(oom_new_aligned), T(oom_wrap),
      T(oom_reserve),  T(oom_resize),      T(oom_put),
      T(oom_put_self), T(oom_put_fixed),   T(oom_put_run),
      T(allocator_used),
  };
#undef T
  return hb_test_main("oom", tests);
}
