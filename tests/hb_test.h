/*
 * hb_test.h -- what every cmocka test program here includes first.
 *
 *   - cmocka's headers, in the order cmocka.h needs them;
 *   - the library's internal header (tests look at fields and call the
 *     hb__check invariant check);
 *   - hb_snap / assert_unchanged / assert_rc_unchanged: a call that fails
 *     leaves the buffer as it found it (hb_snap.h);
 *   - is_aligned, patterned (a buffer of n pattern bytes), assert_pattern;
 *   - hb_excl: the exclusion a concurrency test's callbacks check;
 *   - hb_test_main(name, tests): the program's main.  Its first argument,
 *     or else HB_TEST_FILTER, is a glob (* and ?) over test names: only
 *     the tests it matches run, and a filter matching none fails.
 *     `--list` prints the names.  For example
 *         build/test/tests/test_get get_past_end
 *         HB_TEST_FILTER='oom_put*' build/test/tests/test_oom
 */
#ifndef HB_TEST_H
#define HB_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include "hb_snap.h"

/* b is as the snapshot s found it, and passes the invariant check. */
static inline void assert_unchanged(hb_buf *b, const hb_snap *s) {
  char why[160];
  hb__check(b);
  const char *d = hb_snap_diff(b, s, why, sizeof why);
  if (d != NULL) fail_msg("%s", d);
}

/* `call` returns rc and leaves b as it found it: a refused call, or one
 * with nothing to do. */
#define assert_rc_unchanged(b, call, rc)                                     \
  do {                                                                       \
    hb_snap snap_ = hb_snap_take(b);                                         \
    assert_int_equal((call), (rc));                                          \
    assert_unchanged((b), &snap_);                                           \
  } while (0)

/* ---- buffers for direct-mode tests ------------------------------------- */

static inline int is_aligned(const void *p, size_t align) {
  return ((uintptr_t)p & (align - 1)) == 0;
}

/* A buffer holding `n` bytes of the pattern i * 7 + 1. */
static inline hb_buf *patterned(size_t n) {
  hb_buf *b = hb_new(0);
  assert_non_null(b);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(hb_put_u8(b, (uint8_t)(i * 7 + 1)), HB_OK);
  hb__check(b);
  return b;
}

/* b holds the pattern of patterned(), from its byte `from` on, n bytes. */
static inline void assert_pattern(hb_buf *b, size_t from, size_t n) {
  for (size_t i = from; i < from + n; i++)
    assert_int_equal(hb_data(b)[i - from], (uint8_t)(i * 7 + 1));
}

/* ---- exclusion, for the concurrency tests ------------------------------ */

/* What a concurrency test's callbacks check and count: a writer runs
 * alone, a reader beside no writer.  A callback enters, may dwell, then
 * leaves; a breach sets bad.  Every field is atomic. */
typedef struct {
  int inside_w, inside_r;
  long writes, reads;
  int bad;
} hb_excl;

static inline void hb_excl_enter(hb_excl *x, bool write) {
  bool breach =
      write ? __atomic_fetch_add(&x->inside_w, 1, __ATOMIC_ACQ_REL) != 0 ||
                  __atomic_load_n(&x->inside_r, __ATOMIC_ACQUIRE) != 0
            : (__atomic_fetch_add(&x->inside_r, 1, __ATOMIC_ACQ_REL),
               __atomic_load_n(&x->inside_w, __ATOMIC_ACQUIRE) != 0);
  if (breach) __atomic_store_n(&x->bad, 1, __ATOMIC_RELAXED);
}

static inline void hb_excl_leave(hb_excl *x, bool write) {
  __atomic_fetch_add(write ? &x->writes : &x->reads, 1, __ATOMIC_RELAXED);
  __atomic_fetch_sub(write ? &x->inside_w : &x->inside_r, 1,
                     __ATOMIC_ACQ_REL);
}

/* ---- main -------------------------------------------------------------- */

static inline int hb_test_run(int argc, char **argv, const char *name,
                              const struct CMUnitTest *tests, size_t n) {
  const char *filter = argc > 1 ? argv[1] : getenv("HB_TEST_FILTER");
  if (filter != NULL && strcmp(filter, "--list") == 0) {
    for (size_t i = 0; i < n; i++) printf("%s\n", tests[i].name);
    return 0;
  }
  if (filter == NULL || filter[0] == '\0')
    return _cmocka_run_group_tests(name, tests, n, NULL, NULL);
  size_t matched = 0;
  for (size_t i = 0; i < n; i++)
    matched += fnmatch(filter, tests[i].name, 0) == 0;
  if (matched == 0) {
    fprintf(stderr, "%s: no test matches '%s' (--list names them)\n", name,
            filter);
    return 1;
  }
  cmocka_set_test_filter(filter);
  return _cmocka_run_group_tests(name, tests, n, NULL, NULL);
}

/* In main(int argc, char **argv): return hb_test_main("direct", tests); */
#define hb_test_main(name, tests)                                            \
  hb_test_run(argc, argv, (name), (tests), sizeof(tests) / sizeof((tests)[0]))

#endif /* HB_TEST_H */
