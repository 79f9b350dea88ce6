/*
 * test_errors.c -- direct mode, the rest: error codes and their names,
 * the version, hb_set_allocator's checks and hb_stats_get.
 */
#include "hb_test.h"

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

  int unknown[] = {-1000, -13, 2, 12345, INT32_MIN, INT32_MAX};
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

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(errors),
      cmocka_unit_test(version),
      cmocka_unit_test(set_allocator_null),
      cmocka_unit_test(stats),
  };
  return hb_test_main("errors", tests);
}
