/*
 * test_spare.c -- spare room, then commit (issue 14): hb_spare + hb_commit
 * in direct mode, hb_view_spare + hb_view_commit inside visits (rollback of
 * an aborted visit included), and every allocation failure on the way.
 */
#include "hb_test.h"

#include "fail_alloc.h"

static uint8_t pattern(size_t i) { return (uint8_t)(i * 29u + 3u); }

static void fill(uint8_t *p, size_t from, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = pattern(from + i);
}

static void expect_pattern(hb_buf *b) {
  for (size_t i = 0; i < hb_len(b); i++)
    assert_int_equal(hb_data(b)[i], pattern(i));
}

/* ---- direct mode -------------------------------------------------------- */

static void spare_points_after_the_bytes(void **state) {
  (void)state;
  hb_buf *b = hb_new(32);
  assert_non_null(b);
  assert_int_equal(hb_put_u8(b, pattern(0)), HB_OK);
  uint8_t *room = NULL;
  assert_int_equal(hb_spare(b, 8, &room), HB_OK);
  assert_ptr_equal(room, hb_data(b) + 1);
  assert_int_equal(hb_len(b), 1); /* nothing stored yet */
  assert_true(hb_capacity(b) - hb_len(b) >= 8);
  fill(room, 1, 5);
  assert_int_equal(hb_commit(b, 5), HB_OK); /* fewer than asked */
  assert_int_equal(hb_len(b), 6);
  hb__check(b);
  expect_pattern(b);
  assert_int_equal(hb_free(b), HB_OK);
}

static void spare_grows_and_keeps_the_bytes(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  size_t len = 0;
  for (int round = 0; round < 12; round++) { /* up to 4 KiB asked at once */
    size_t want = (size_t)1 << round;
    uint8_t *room;
    assert_int_equal(hb_spare(b, want, &room), HB_OK);
    assert_ptr_equal(room, hb_data(b) + len);
    assert_true(hb_capacity(b) - hb_len(b) >= want);
    fill(room, len, want);
    assert_int_equal(hb_commit(b, want), HB_OK);
    len += want;
    hb__check(b);
  }
  assert_int_equal(hb_len(b), len);
  expect_pattern(b);
  assert_int_equal(hb_free(b), HB_OK);
}

static void spare_and_commit_errors_change_nothing(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  assert_non_null(b);
  assert_int_equal(hb_put(b, "abc", 3), HB_OK);
  uint8_t *room = (uint8_t *)&room;
  size_t cap = hb_capacity(b);
  assert_rc_unchanged(b, hb_spare(b, 1, NULL), HB_EINVAL);
  assert_rc_unchanged(b, hb_spare(b, (size_t)PTRDIFF_MAX, &room), HB_ERANGE);
  assert_rc_unchanged(b, hb_spare(b, SIZE_MAX, &room), HB_ERANGE);
  assert_ptr_equal(room, (uint8_t *)&room); /* untouched */
  /* Committing more than is spare: nothing moves. */
  assert_rc_unchanged(b, hb_commit(b, cap - 3 + 1), HB_ERANGE);
  assert_rc_unchanged(b, hb_commit(b, SIZE_MAX), HB_ERANGE);
  /* Committing exactly the spare room works; zero is fine too. */
  assert_int_equal(hb_commit(b, 0), HB_OK);
  assert_int_equal(hb_commit(b, cap - 3), HB_OK);
  assert_int_equal(hb_len(b), cap);
  hb__check(b);
  assert_int_equal(hb_free(b), HB_OK);
}

/* A spare area never committed is spare room again: the next put lands on
 * it, and the cursor never saw it. */
static void uncommitted_spare_is_not_stored(void **state) {
  (void)state;
  hb_buf *b = hb_new(8);
  assert_non_null(b);
  uint8_t *room;
  assert_int_equal(hb_spare(b, 8, &room), HB_OK);
  memset(room, 0xee, 8);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(hb_remaining(b), 0);
  assert_int_equal(hb_put_u8(b, 7), HB_OK);
  assert_int_equal(hb_data(b)[0], 7);
  assert_int_equal(hb_len(b), 1);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Every allocation hb_spare makes fails in turn: HB_ENOMEM, and the buffer
 * (length, capacity, bytes, data pointer) is as it was; then it works. */
static void spare_allocation_failure(void **state) {
  (void)state;
  static const size_t aligns[] = {16, 64};
  for (size_t a = 0; a < 2; a++) {
    for (long k = 0;; k++) {
      disarm();
      hb_buf *b = hb_new_aligned(8, aligns[a]);
      assert_non_null(b);
      assert_int_equal(hb_put(b, "12345", 5), HB_OK);
      hb_snap snap = hb_snap_take(b);
      uint8_t *room = NULL;
      arm(k);
      int rc = hb_spare(b, 100, &room);
      int failed = injected;
      disarm();
      if (!failed) {
        assert_int_equal(rc, HB_OK);
        assert_ptr_equal(room, hb_data(b) + 5);
        assert_memory_equal(hb_data(b), "12345", 5);
        assert_int_equal(hb_free(b), HB_OK);
        break;
      }
      assert_int_equal(rc, HB_ENOMEM);
      assert_null(room);
      assert_unchanged(b, &snap);
      assert_int_equal(hb_spare(b, 100, &room), HB_OK); /* memory is back */
      assert_int_equal(hb_free(b), HB_OK);
    }
  }
}

/* ---- inside visits ------------------------------------------------------ */

typedef struct {
  size_t ask, commit; /* hb_view_spare(ask), then hb_view_commit(commit) */
  int ret;            /* what the callback returns */
  int spare_rc, commit_rc;
  size_t written;     /* hb_view_bytes_written after the commit */
} visit_plan;

static int spare_visit(hb_view *view, void *ctx) {
  visit_plan *p = ctx;
  uint8_t *room = NULL;
  size_t start = hb_view_bytes_written(view);
  size_t len;
  (void)hb_view_read_bytes(view, &len);
  p->spare_rc = hb_view_spare(view, p->ask, &room);
  if (p->spare_rc == HB_OK) fill(room, len, p->commit);
  p->commit_rc = hb_view_commit(view, p->commit);
  p->written = hb_view_bytes_written(view) - start;
  return p->ret;
}

static void view_commit_counts_and_commits(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  visit_plan p = {.ask = 300, .commit = 200, .ret = 0};
  int res = -1;
  assert_int_equal(hb_write_now(b, HB_TYPE(uint8_t), 0, spare_visit, &p, &res),
                   HB_OK);
  assert_int_equal(res, 0);
  assert_int_equal(p.spare_rc, HB_OK);
  assert_int_equal(p.commit_rc, HB_OK);
  assert_int_equal(p.written, 200);
  assert_int_equal(hb_len(b), 200);
  expect_pattern(b);
  hb__check(b);
  assert_int_equal(hb_free(b), HB_OK);
}

/* An aborted visit takes its committed bytes back, as its other appends. */
static void aborted_visit_rolls_the_commit_back(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  assert_int_equal(hb_put(b, "\x03\x20\x3d", 3), HB_OK); /* pattern(0..2) */
  expect_pattern(b);
  visit_plan p = {.ask = 1000, .commit = 1000, .ret = -1};
  int res = 0;
  assert_int_equal(hb_write_now(b, HB_TYPE(uint8_t), 0, spare_visit, &p, &res),
                   HB_OK);
  assert_int_equal(res, -1);
  assert_int_equal(p.commit_rc, HB_OK);
  assert_int_equal(p.written, 1000); /* it was there inside the visit */
  assert_int_equal(hb_len(b), 3);    /* and is gone after the abort */
  expect_pattern(b);
  hb__check(b);
  /* The same through a caller-owned visitor. */
  hb_visitor v = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, spare_visit, &p), HB_OK);
  assert_int_equal(hb_block_on(&v, &res), HB_OK);
  assert_int_equal(res, -1);
  assert_int_equal(hb_len(b), 3);
  assert_int_equal(hb_free(b), HB_OK);
}

static int read_visit_tries(hb_view *view, void *ctx) {
  int *rcs = ctx;
  uint8_t *room = (uint8_t *)&room;
  rcs[0] = hb_view_spare(view, 1, &room);
  rcs[1] = hb_view_commit(view, 0);
  rcs[2] = room == (uint8_t *)&room; /* untouched */
  return 0;
}

static int null_spare(hb_view *view, void *ctx) {
  int *rc = ctx;
  *rc = hb_view_spare(view, 1, NULL);
  return 0;
}

static int commit_too_much(hb_view *view, void *ctx) {
  int *rc = ctx;
  uint8_t *room;
  if (hb_view_spare(view, 4, &room) != HB_OK) return -2;
  hb_buf *b = view->buf; /* what the library sees: the whole spare room */
  *rc = hb_view_commit(view, b->cap - b->len + 1);
  return 0;
}

static void view_errors(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  assert_non_null(b);
  int rcs[3] = {0, 0, 0}, res;
  assert_int_equal(hb_read_now(b, HB_TYPE(uint8_t), read_visit_tries, rcs,
                               &res),
                   HB_OK);
  assert_int_equal(rcs[0], HB_ESTATE);
  assert_int_equal(rcs[1], HB_ESTATE);
  assert_true(rcs[2]);
  int rc = 0;
  assert_int_equal(hb_write_now(b, HB_TYPE(uint8_t), 0, null_spare, &rc,
                                &res),
                   HB_OK);
  assert_int_equal(rc, HB_EINVAL);
  assert_int_equal(hb_write_now(b, HB_TYPE(uint8_t), 0, commit_too_much, &rc,
                                &res),
                   HB_OK);
  assert_int_equal(res, 0);
  assert_int_equal(rc, HB_ERANGE);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* hb_view_spare's growth failing: HB_ENOMEM inside the visit, nothing
 * appended, and the visit goes on (the callback decides). */
static void view_spare_allocation_failure(void **state) {
  (void)state;
  for (long k = 0;; k++) {
    disarm();
    hb_buf *b = hb_new(4);
    assert_non_null(b);
    assert_int_equal(hb_put(b, "\x03\x20", 2), HB_OK);
    uint8_t *data = hb_data(b);
    visit_plan p = {.ask = 500, .commit = 500, .ret = 0};
    int res = -1;
    arm(k);
    int rc = hb_write_now(b, HB_TYPE(uint8_t), 0, spare_visit, &p, &res);
    int failed = injected;
    disarm();
    assert_int_equal(rc, HB_OK);
    if (!failed) {
      assert_int_equal(p.spare_rc, HB_OK);
      assert_int_equal(hb_len(b), 502);
      expect_pattern(b);
      assert_int_equal(hb_free(b), HB_OK);
      break;
    }
    assert_int_equal(p.spare_rc, HB_ENOMEM);
    assert_int_equal(p.commit_rc, HB_ERANGE); /* 500 were never spare */
    assert_int_equal(p.written, 0);
    assert_ptr_equal(hb_data(b), data);
    assert_int_equal(hb_len(b), 2);
    expect_pattern(b);
    hb__check(b);
    assert_int_equal(hb_free(b), HB_OK);
  }
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(spare_points_after_the_bytes),
      cmocka_unit_test(spare_grows_and_keeps_the_bytes),
      cmocka_unit_test(spare_and_commit_errors_change_nothing),
      cmocka_unit_test(uncommitted_spare_is_not_stored),
      cmocka_unit_test_setup_teardown(spare_allocation_failure,
                                      fail_alloc_setup, fail_alloc_teardown),
      cmocka_unit_test(view_commit_counts_and_commits),
      cmocka_unit_test(aborted_visit_rolls_the_commit_back),
      cmocka_unit_test(view_errors),
      cmocka_unit_test_setup_teardown(view_spare_allocation_failure,
                                      fail_alloc_setup, fail_alloc_teardown),
  };
  return hb_test_main("spare", tests);
}
