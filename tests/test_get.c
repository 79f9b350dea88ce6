/*
 * test_get.c -- direct mode, cursor reads: the fixed-width gets (decoding,
 * round trips, short reads that leave buffer and output alone),
 * hb_advance, hb_remaining and hb_compact.
 * hb__check(b) runs after every step that changes a buffer.
 */
#include "hb_test.h"

#include <math.h>

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
  assert_rc_unchanged(b, hb_get(b, run, 4), HB_ERANGE);
  assert_memory_equal(run, "\x5C\x5C\x5C\x5C", 4);
  assert_rc_unchanged(b, hb_get(b, run, SIZE_MAX), HB_ERANGE);

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
  assert_rc_unchanged(b, hb_get(b, NULL, 1), HB_EINVAL);
  assert_int_equal(hb_free(b), HB_OK);
}

static void advance(void **state) {
  (void)state;
  hb_buf *b = patterned(10);
  assert_rc_unchanged(b, hb_advance(b, 0), HB_OK);
  assert_int_equal(hb_advance(b, 4), HB_OK);
  hb__check(b);
  assert_int_equal(hb_remaining(b), 6);
  uint8_t v;
  assert_int_equal(hb_get_u8(b, &v), HB_OK);
  assert_int_equal(v, (uint8_t)(4 * 7 + 1));
  /* Past the end: nothing moves. */
  size_t bad[] = {6, 7, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_rc_unchanged(b, hb_advance(b, bad[i]), HB_ERANGE);
  }
  /* Exactly to the end. */
  assert_int_equal(hb_advance(b, 5), HB_OK);
  hb__check(b);
  assert_int_equal(hb_remaining(b), 0);
  assert_int_equal(hb_len(b), 10);
  assert_rc_unchanged(b, hb_advance(b, 1), HB_ERANGE);
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

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(get_decode),
      cmocka_unit_test(get_round_trip),
      cmocka_unit_test(get_past_end),
      cmocka_unit_test(advance),
      cmocka_unit_test(remaining),
      cmocka_unit_test(compact),
  };
  return hb_test_main("get", tests);
}
