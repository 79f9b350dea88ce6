/*
 * fail_alloc.h -- a failing allocator for the allocation-failure tests
 * (test_oom.c, test_alloc_sweep.c), installed through hb_set_allocator.
 *
 * arm(k) makes the k-th allocation from now on (malloc or realloc, counted
 * from 0) return NULL; `injected` tells whether that happened.  A sweep
 * arms k = 0, 1, 2, ... until a call succeeds with nothing injected.  Use
 * fail_alloc_setup / fail_alloc_teardown as a cmocka test's setup and
 * teardown: they install the hook and put malloc/realloc/free back.
 */
#ifndef HB_TEST_FAIL_ALLOC_H
#define HB_TEST_FAIL_ALLOC_H

#include <stdlib.h>

#include "hyperbuf.h"

static long fail_at = -1; /* index of the allocation to fail; -1: none */
static long allocs;       /* allocations seen since the last arm() */
static int injected;      /* a failure was injected since the last arm() */
static long frees;        /* frees through the hook, ever */

static int should_fail(void) {
  if (allocs++ == fail_at) {
    injected = 1;
    return 1;
  }
  return 0;
}
static void *fail_malloc(size_t n) { return should_fail() ? NULL : malloc(n); }
static void *fail_realloc(void *p, size_t n) {
  return should_fail() ? NULL : realloc(p, n);
}
static void fail_free(void *p) {
  frees++;
  free(p);
}

static void arm(long k) {
  fail_at = k;
  allocs = 0;
  injected = 0;
}
static void disarm(void) { fail_at = -1; }

static int fail_alloc_setup(void **state) {
  (void)state;
  disarm();
  return hb_set_allocator(fail_malloc, fail_realloc, fail_free) == HB_OK ? 0
                                                                         : -1;
}
static int fail_alloc_teardown(void **state) {
  (void)state;
  disarm();
  return hb_set_allocator(malloc, realloc, free) == HB_OK ? 0 : -1;
}

#endif /* HB_TEST_FAIL_ALLOC_H */
