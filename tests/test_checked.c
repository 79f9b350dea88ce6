/*
 * test_checked.c -- the library's build decides whether direct-mode calls
 * check for a live visitor, for inline and out-of-line calls alike; the
 * application's NDEBUG plays no part (DESIGN.md, "checked builds").
 *
 * tests/CMakeLists.txt builds this file twice, each time against a build of
 * the library with its own generated hyperbuf/config.h, and with the
 * application's NDEBUG set the other way:
 *
 *   test_checked0   no NDEBUG here, library unchecked (HB_CHECKED 0):
 *                   every call below must do its work without aborting
 *   test_checked1   NDEBUG here, library checked (HB_CHECKED 1):
 *                   every call below must abort, naming itself
 *
 * With the old rule (inline calls follow the application's NDEBUG) both
 * fail: test_checked0's inline calls abort, test_checked1's do not.
 */
#include "hb_test.h"

#include <unistd.h>

#include "expect_abort.h"

#ifndef HB_TEST_EXPECT_CHECKED
#error "built by tests/CMakeLists.txt with HB_TEST_EXPECT_CHECKED=0 or 1"
#endif
/* The point of the test: this file's NDEBUG says the opposite of the
 * library's choice. */
#if defined(NDEBUG) != HB_TEST_EXPECT_CHECKED
#error "test_checked0 is built without NDEBUG, test_checked1 with it"
#endif

/* What the generated header says must be what the build was asked for. */
static void config_header_says(void **state) {
  (void)state;
  assert_int_equal(HB_CHECKED, HB_TEST_EXPECT_CHECKED);
}

/* One direct-mode call, made on a buffer with 16 bytes stored, the cursor
 * at 4, and a live (cast) visitor. */
typedef struct {
  const char *name;
  int (*call)(hb_buf *b, int fd);
} direct_call;

static int c_put(hb_buf *b, int fd) { (void)fd; return hb_put(b, "ab", 2); }
static int c_put_u8(hb_buf *b, int fd) { (void)fd; return hb_put_u8(b, 1); }
static int c_put_u16_le(hb_buf *b, int fd) {
  (void)fd;
  return hb_put_u16_le(b, 1);
}
static int c_put_u32_be(hb_buf *b, int fd) {
  (void)fd;
  return hb_put_u32_be(b, 1);
}
static int c_put_u64_le(hb_buf *b, int fd) {
  (void)fd;
  return hb_put_u64_le(b, 1);
}
static int c_put_f64_be(hb_buf *b, int fd) {
  (void)fd;
  return hb_put_f64_be(b, 1.5);
}
static int c_get(hb_buf *b, int fd) {
  char x[2];
  (void)fd;
  return hb_get(b, x, sizeof x);
}
static int c_get_u8(hb_buf *b, int fd) {
  uint8_t x;
  (void)fd;
  return hb_get_u8(b, &x);
}
static int c_get_u16_be(hb_buf *b, int fd) {
  uint16_t x;
  (void)fd;
  return hb_get_u16_be(b, &x);
}
static int c_get_u32_le(hb_buf *b, int fd) {
  uint32_t x;
  (void)fd;
  return hb_get_u32_le(b, &x);
}
static int c_get_f32_le(hb_buf *b, int fd) {
  float x;
  (void)fd;
  return hb_get_f32_le(b, &x);
}
static int c_reserve(hb_buf *b, int fd) {
  (void)fd;
  return hb_reserve(b, 4096);
}
static int c_clear(hb_buf *b, int fd) {
  (void)fd;
  hb_clear(b);
  return HB_OK;
}
static int c_resize(hb_buf *b, int fd) {
  (void)fd;
  return hb_resize(b, 8, 0);
}
static int c_advance(hb_buf *b, int fd) {
  (void)fd;
  return hb_advance(b, 2);
}
static int c_compact(hb_buf *b, int fd) {
  (void)fd;
  hb_compact(b);
  return HB_OK;
}
static int c_write_fd(hb_buf *b, int fd) { return hb_write_fd(b, fd, NULL); }

static const direct_call calls[] = {
    {"hb_put", c_put},           {"hb_put_u8", c_put_u8},
    {"hb_put_u16_le", c_put_u16_le}, {"hb_put_u32_be", c_put_u32_be},
    {"hb_put_u64_le", c_put_u64_le}, {"hb_put_f64_be", c_put_f64_be},
    {"hb_get", c_get},           {"hb_get_u8", c_get_u8},
    {"hb_get_u16_be", c_get_u16_be}, {"hb_get_u32_le", c_get_u32_le},
    {"hb_get_f32_le", c_get_f32_le}, {"hb_reserve", c_reserve},
    {"hb_clear", c_clear},       {"hb_resize", c_resize},
    {"hb_advance", c_advance},   {"hb_compact", c_compact},
    {"hb_write_fd", c_write_fd},
};

/* The call on a buffer with 16 bytes stored, the cursor at 4, and a live
 * (cast) visitor; then, if the call came back, the visitor is cancelled
 * and the buffer freed. */
static void call_with_live_visitor(void *arg) {
  const direct_call *c = arg;
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  assert_int_equal(hb_put(b, "0123456789abcdef", 16), HB_OK);
  assert_int_equal(hb_advance(b, 4), HB_OK);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  hb_visitor v = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
  int rc = c->call(b, fds[1]);
  print_message("%-14s ran, %s\n", c->name, hb_err_name(rc));
  assert_int_equal(rc, HB_OK);
  assert_int_equal(hb_cancel(&v), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
  close(fds[0]);
  close(fds[1]);
}

static void each_call_follows_the_library(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    char named[64];
    snprintf(named, sizeof named, "%s()", calls[i].name);
    if (HB_TEST_EXPECT_CHECKED) /* aborts, and the message names it */
      expect_abort(call_with_live_visitor, (void *)&calls[i], named);
    else /* runs here (an abort would end the test) and does its work */
      call_with_live_visitor((void *)&calls[i]);
  }
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(config_header_says),
      cmocka_unit_test(each_call_follows_the_library),
  };
  return hb_test_main(HB_TEST_EXPECT_CHECKED ? "checked1" : "checked0",
                      tests);
}
