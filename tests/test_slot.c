/*
 * test_slot.c -- the per-thread slot of src/slot.c: small buffers freed and
 * made again on the same thread are recycled (a few at a time: the slot
 * is a stack), only if visitor mode never touched them, and every buffer
 * made starts
 * as clean as a fresh one whatever visitor mode did to it before.  Taking
 * an unvisited buffer back resets only its length, capacity and cursor, so
 * each kind of visit that dirties the header is tried here; a debug build
 * also checks the whole header (hb__slot_verify).
 */
#include "hb_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOT_ON 0 /* off under AddressSanitizer */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOT_ON 0
#endif
#endif
#ifndef SLOT_ON
#define SLOT_ON 1
#endif

static int nop(hb_view *view, void *ctx) {
  (void)view;
  return (int)(intptr_t)ctx;
}

static int append3(hb_view *view, void *ctx) {
  (void)ctx;
  return hb_view_append_bytes(view, "abc", 3) == HB_OK ? -1 : 0; /* abort */
}

/* A freshly made buffer: nothing stored, no visit counted, not biased. */
static void assert_clean(hb_buf *b, size_t cap) {
  hb__check(b);
  assert_int_equal(hb_len(b), 0);
  assert_int_equal(hb_remaining(b), 0);
  assert_int_equal(hb_capacity(b), cap);
  assert_int_equal(b->lock, 0);
  assert_int_equal(b->held, 0);
  assert_false(hb__is_biased(b));
  hb_stats st;
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.visits_run, 0);
  assert_int_equal(st.visits_cancelled, 0);
  assert_int_equal(st.visits_aborted, 0);
  assert_int_equal(st.reserve_failed, 0);
  assert_int_equal(st.growths, 0);
  assert_int_equal(st.longest_queue, 0);
}

/* What each case does to the buffer before it is freed. */
static void dirty(hb_buf *b, int how) {
  hb_visitor v = HB_VISITOR_INIT, w = HB_VISITOR_INIT;
  int res;
  switch (how) {
  case 0: /* direct mode only */
    assert_int_equal(hb_put(b, "xyz", 3), HB_OK);
    assert_int_equal(hb_advance(b, 2), HB_OK);
    break;
  case 1: /* a read visit through a caller-owned visitor (no bias) */
    assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&v, 0, nop, NULL), HB_OK);
    assert_int_equal(hb_block_on(&v, &res), HB_OK);
    break;
  case 2: /* one-call visits: biased where the build can */
    assert_int_equal(hb_read_now(b, HB_TYPE(uint8_t), nop, NULL, &res),
                     HB_OK);
    assert_int_equal(hb_write_now(b, HB_TYPE(uint8_t), 8, nop, NULL, &res),
                     HB_OK);
    break;
  case 3: /* an aborted write visit */
    assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&v, 0, append3, NULL), HB_OK);
    assert_int_equal(hb_block_on(&v, &res), HB_OK);
    assert_int_equal(res, -1);
    break;
  default: /* a queued visitor cancelled behind a writer */
    assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
    assert_int_equal(HB_CAST(&w, b, uint8_t), HB_OK);
    assert_int_equal(hb_cancel(&w), HB_OK);
    assert_int_equal(hb_cancel(&v), HB_OK);
    break;
  }
}

static void recycled_buffer_starts_clean(void **state) {
  (void)state;
  for (int how = 0; how < 5; how++) {
    hb_buf *b = hb_new(100); /* the last round's c, from the slot */
    assert_non_null(b);
    dirty(b, how);
    uint8_t *old = (uint8_t *)b;
    assert_int_equal(hb_free(b), HB_OK);
    hb_buf *c = hb_new(100); /* the kept one: b */
    assert_non_null(c);
    /* Only a buffer visitor mode never touched is kept; the others are
     * freed (and c may or may not reuse the memory). */
    if (SLOT_ON && how == 0 && (uint8_t *)c != old)
      fail_msg("case %d: not recycled", how);
    assert_clean(c, 100);
    /* And it works as a fresh one: direct mode, then a visit. */
    assert_int_equal(hb_put(c, "hello", 5), HB_OK);
    int res = 7;
    assert_int_equal(hb_write_now(c, HB_TYPE(uint8_t), 0, nop, NULL, &res),
                     HB_OK);
    assert_int_equal(res, 0);
    assert_int_equal(hb_len(c), 5);
    assert_int_equal(hb_free(c), HB_OK);
  }
}

/* A buffer that asks for more than the slot's buffer holds, or one that
 * grew, is not served from (or kept in) the slot. */
static void slot_keeps_only_small_unmoved_buffers(void **state) {
  (void)state;
  hb_buf *b = hb_new(64);
  assert_non_null(b);
  uint8_t *small = (uint8_t *)b;
  assert_int_equal(hb_free(b), HB_OK);
  hb_buf *big = hb_new(300); /* more than the 64 kept */
  assert_non_null(big);
  assert_true((uint8_t *)big != small);
  assert_clean(big, 300);
  assert_int_equal(hb_reserve(big, 4096), HB_OK); /* its bytes move out */
  hb_buf *again = hb_new(64); /* the kept one */
  assert_non_null(again);
  if (SLOT_ON) assert_ptr_equal((uint8_t *)again, small);
  assert_clean(again, 64);
  assert_int_equal(hb_free(big), HB_OK);
  assert_int_equal(hb_free(again), HB_OK);
}

/* A few made before any is freed (a batch): each freed one is kept and
 * made again, in the reverse order (the slot is a stack). */
static void slot_keeps_a_batch(void **state) {
  (void)state;
  enum { N = 4 };
  hb_buf *b[N];
  uint8_t *kept[N];
  for (int i = 0; i < N; i++) assert_non_null(b[i] = hb_new(120));
  for (int i = 0; i < N; i++) {
    kept[i] = (uint8_t *)b[i];
    assert_int_equal(hb_put_u8(b[i], (uint8_t)i), HB_OK);
    assert_int_equal(hb_free(b[i]), HB_OK);
  }
  for (int i = N - 1; i >= 0; i--) {
    hb_buf *c = hb_new(120);
    assert_non_null(c);
    if (SLOT_ON) assert_ptr_equal((uint8_t *)c, kept[i]);
    assert_clean(c, 120);
    b[i] = c;
  }
  for (int i = 0; i < N; i++) assert_int_equal(hb_free(b[i]), HB_OK);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recycled_buffer_starts_clean),
      cmocka_unit_test(slot_keeps_only_small_unmoved_buffers),
      cmocka_unit_test(slot_keeps_a_batch),
  };
  return hb_test_main("slot", tests);
}
