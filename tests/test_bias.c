/*
 * test_bias.c -- biased buffers (see BIAS in src/bias.c): one thread's
 * one-call visits without atomic instructions, and the revocation when any
 * other visitor comes.  Skipped where the bias is off (ThreadSanitizer, or
 * a kernel without membarrier); the rest of the suite covers the shared
 * path there.
 */
#include <pthread.h>
#include "hb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hyperbuf.h"
#include "expect_abort.h"

static void need_bias(void) {
  if (!hb__bias_available()) skip();
}

static hb_buf *counter_buf(void) {
  hb_buf *b = hb_new(64);
  assert_non_null(b);
  assert_int_equal(hb_put_u64_le(b, 0), HB_OK);
  return b;
}

/* ---- callbacks on a uint64_t counter, with an exclusion check ------------ */

typedef struct {
  int writers, readers; /* inside their callbacks now (atomic) */
  int violations;       /* a writer beside anybody (atomic) */
  uint64_t seen;        /* the last value a read saw */
} excl;

static int cb_inc(hb_view *view, void *arg) {
  excl *x = arg;
  if (__atomic_fetch_add(&x->writers, 1, __ATOMIC_SEQ_CST) != 0 ||
      __atomic_load_n(&x->readers, __ATOMIC_SEQ_CST) != 0)
    __atomic_fetch_add(&x->violations, 1, __ATOMIC_SEQ_CST);
  size_t n;
  uint64_t *c = HB_WRITE_ARRAY(view, uint64_t, &n);
  /* read, then write: a second writer in between would lose an increment */
  uint64_t v = c[0];
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  c[0] = v + 1;
  __atomic_fetch_sub(&x->writers, 1, __ATOMIC_SEQ_CST);
  return 0;
}

static int cb_get(hb_view *view, void *arg) {
  excl *x = arg;
  __atomic_fetch_add(&x->readers, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&x->writers, __ATOMIC_SEQ_CST) != 0)
    __atomic_fetch_add(&x->violations, 1, __ATOMIC_SEQ_CST);
  size_t n;
  const uint64_t *c = HB_READ_ARRAY(view, uint64_t, &n);
  assert_int_equal(n, 1);
  uint64_t v = c[0];
  __atomic_fetch_sub(&x->readers, 1, __ATOMIC_SEQ_CST);
  return (int)(v & 0x7fffffff);
}

static uint64_t stored(hb_buf *b) {
  uint64_t v;
  memcpy(&v, hb_data(b), sizeof v);
  return v;
}

static uint64_t visits_run(hb_buf *b) {
  hb_stats st;
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  return st.visits_run;
}

/* ---- one thread ---------------------------------------------------------- */

static void one_thread_keeps_the_bias(void **state) {
  (void)state;
  need_bias();
  hb_buf *b = counter_buf();
  excl x = {0};
  assert_false(hb__is_biased(b));
  for (int i = 0; i < 1000; i++) {
    int r = -1;
    assert_int_equal(HB_WRITE_NOW(b, uint64_t, 0, cb_inc, &x, &r), HB_OK);
    assert_int_equal(r, 0);
    if (i % 10 == 9) {
      assert_int_equal(HB_READ_NOW(b, uint64_t, cb_get, &x, &r), HB_OK);
      assert_int_equal(r, i + 1);
    }
  }
  assert_true(hb__is_biased(b));
  /* nothing live between visits: direct mode may touch the buffer */
  assert_int_equal(b->lock & HB__LIVE_MASK, 0);
  assert_int_equal(b->held, 0);
  assert_int_equal(hb_put_u8(b, 7), HB_OK);
  assert_int_equal(hb_len(b), 9);
  assert_int_equal(stored(b), 1000);
  assert_int_equal(visits_run(b), 1100);
  assert_int_equal(x.violations, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* An aborted biased write rolls back like any other. */
static int cb_append_then_abort(hb_view *view, void *arg) {
  (void)arg;
  uint64_t v = 99;
  assert_int_equal(hb_view_append(view, &v), HB_OK);
  return -5;
}

static void biased_abort_rolls_back(void **state) {
  (void)state;
  need_bias();
  hb_buf *b = counter_buf();
  int r = 0;
  assert_int_equal(HB_WRITE_NOW(b, uint64_t, 64, cb_append_then_abort, NULL,
                                &r),
                   HB_OK);
  assert_true(hb__is_biased(b));
  assert_int_equal(r, -5);
  assert_int_equal(hb_len(b), 8);
  assert_true(hb_capacity(b) >= 8 + 64); /* the reservation stays */
  hb_stats st;
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.visits_aborted, 1);
  assert_int_equal(hb_free(b), HB_OK);
}

static void caller_owned_cast_ends_the_bias(void **state) {
  (void)state;
  need_bias();
  hb_buf *b = counter_buf();
  excl x = {0};
  assert_int_equal(HB_WRITE_NOW(b, uint64_t, 0, cb_inc, &x, NULL), HB_OK);
  assert_true(hb__is_biased(b));
  hb_visitor v = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST_MUT(&v, b, uint64_t), HB_OK);
  assert_false(hb__is_biased(b));
  assert_true(hb__load_granted(&v));
  assert_int_equal(hb_visit(&v, 0, cb_inc, &x), HB_OK);
  assert_int_equal(hb_try_visit(&v, NULL), HB_OK);
  /* shared for good: one-call visits go through the lock word now */
  int r = -1;
  assert_int_equal(HB_READ_NOW(b, uint64_t, cb_get, &x, &r), HB_OK);
  assert_int_equal(r, 2);
  assert_false(hb__is_biased(b));
  assert_int_equal(b->lock & HB__LIVE_MASK, 0);
  assert_int_equal(visits_run(b), 3);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Inside its own biased visit, the thread gets the same answers as on a
 * shared buffer: a ticket that must wait for this visit is refused or
 * stays queued, and nothing hangs. */
typedef struct {
  hb_buf *b;
  int rc_read_now, rc_write_now, rc_free, rc_cast, rc_try, rc_block,
      rc_cancel;
  int granted;
} nest;

static int cb_nest(hb_view *view, void *arg) {
  nest *n = arg;
  hb_visitor v = HB_VISITOR_INIT;
  n->rc_read_now = HB_READ_NOW(n->b, uint64_t, cb_get, &(excl){0}, NULL);
  n->rc_write_now = HB_WRITE_NOW(n->b, uint64_t, 0, cb_inc, &(excl){0}, NULL);
  n->rc_free = hb_free(n->b);
  n->rc_cast = HB_CAST(&v, n->b, uint64_t);
  n->granted = hb__load_granted(&v);
  (void)hb_visit(&v, 0, cb_get, &(excl){0});
  n->rc_try = hb_try_visit(&v, NULL);
  n->rc_block = hb_block_on(&v, NULL);
  n->rc_cancel = hb_cancel(&v);
  size_t k;
  HB_WRITE_ARRAY(view, uint64_t, &k)[0] = 41;
  return 0;
}

static void nested_calls_inside_a_biased_visit(void **state) {
  (void)state;
  need_bias();
  hb_buf *b = counter_buf();
  nest n = {.b = b};
  int r = -1;
  assert_int_equal(HB_WRITE_NOW(b, uint64_t, 0, cb_nest, &n, &r), HB_OK);
  assert_int_equal(r, 0);
  assert_int_equal(n.rc_read_now, HB_EDEADLK);
  assert_int_equal(n.rc_write_now, HB_EDEADLK);
  assert_int_equal(n.rc_free, HB_EBUSY);
  assert_int_equal(n.rc_cast, HB_OK);
  assert_false(n.granted); /* behind the running write */
  assert_int_equal(n.rc_try, HB_EAGAIN);
  assert_int_equal(n.rc_block, HB_EDEADLK);
  assert_int_equal(n.rc_cancel, HB_OK);
  /* the nested cast ended the bias; the write's ticket went back */
  assert_false(hb__is_biased(b));
  assert_int_equal(b->lock & HB__LIVE_MASK, 0);
  assert_int_equal(b->held, 0);
  assert_int_equal(stored(b), 41);
  assert_int_equal(HB_READ_NOW(b, uint64_t, cb_get, &(excl){0}, &r), HB_OK);
  assert_int_equal(r, 41);
  assert_int_equal(hb_free(b), HB_OK);
}

#if HB_CHECKED
/* A debug build still catches a direct-mode call inside a biased visit. */
static int cb_direct_call(hb_view *view, void *arg) {
  (void)view;
  (void)hb_put_u8(arg, 1);
  return 0;
}

static void write_now_with_direct_call(void *unused) {
  (void)unused;
  hb_buf *b = hb_new(8);
  (void)HB_WRITE_NOW(b, uint8_t, 0, cb_direct_call, b, NULL);
}

static void direct_call_inside_biased_visit_aborts(void **state) {
  (void)state;
  need_bias();
  expect_abort(write_now_with_direct_call, NULL, "hb_put_u8");
}
#endif

/* ---- two threads --------------------------------------------------------- */

/* The biased thread is inside a read visit when another thread comes: a
 * reader joins it at once (the read moved into the lock word), a writer
 * waits for it to end. */
typedef struct {
  hb_buf *b;
  int inside, go;      /* the biased reader's progress (atomic) */
  int order;           /* a sequence for the events below (atomic) */
  int read_done_at, write_at, second_read_inside_at;
} handover;

static void wait_flag(int *flag) {
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    assert_true(now.tv_sec - start.tv_sec < 10); /* fail, do not hang */
    sched_yield();
  }
}

static int cb_hold_read(hb_view *view, void *arg) {
  (void)view;
  handover *h = arg;
  __atomic_store_n(&h->inside, 1, __ATOMIC_RELEASE);
  wait_flag(&h->go);
  h->read_done_at = __atomic_add_fetch(&h->order, 1, __ATOMIC_SEQ_CST);
  return 0;
}

static int cb_second_read(hb_view *view, void *arg) {
  (void)view;
  handover *h = arg;
  /* the biased read is still inside its callback */
  if (__atomic_load_n(&h->inside, __ATOMIC_ACQUIRE) &&
      !__atomic_load_n(&h->go, __ATOMIC_ACQUIRE))
    h->second_read_inside_at = __atomic_add_fetch(&h->order, 1,
                                                  __ATOMIC_SEQ_CST);
  return 0;
}

static int cb_mark_write(hb_view *view, void *arg) {
  (void)view;
  handover *h = arg;
  h->write_at = __atomic_add_fetch(&h->order, 1, __ATOMIC_SEQ_CST);
  return 0;
}

static void *biased_reader(void *arg) {
  handover *h = arg;
  /* the first one-call visit on the buffer: biased to this thread */
  if (HB_READ_NOW(h->b, uint64_t, cb_hold_read, h, NULL) != HB_OK) abort();
  return NULL;
}

static void *late_writer(void *arg) {
  handover *h = arg;
  if (HB_WRITE_NOW(h->b, uint64_t, 0, cb_mark_write, h, NULL) != HB_OK)
    abort();
  return NULL;
}

static void revoked_while_a_read_runs(void **state) {
  (void)state;
  need_bias();
  handover h = {.b = counter_buf()};
  pthread_t tr, tw;
  assert_int_equal(pthread_create(&tr, NULL, biased_reader, &h), 0);
  wait_flag(&h.inside);
  assert_true(hb__is_biased(h.b));
  /* this thread's read revokes the bias and runs beside the biased one */
  assert_int_equal(HB_READ_NOW(h.b, uint64_t, cb_second_read, &h, NULL),
                   HB_OK);
  assert_false(hb__is_biased(h.b));
  assert_int_equal(h.second_read_inside_at, 1);
  /* a writer must wait for the biased read, whose ticket is in the word */
  assert_int_equal(pthread_create(&tw, NULL, late_writer, &h), 0);
  struct timespec pause = {0, 50 * 1000 * 1000};
  nanosleep(&pause, NULL);
  assert_int_equal(__atomic_load_n(&h.write_at, __ATOMIC_SEQ_CST), 0);
  __atomic_store_n(&h.go, 1, __ATOMIC_RELEASE);
  assert_int_equal(pthread_join(tr, NULL), 0);
  assert_int_equal(pthread_join(tw, NULL), 0);
  assert_int_equal(h.read_done_at, 2);
  assert_int_equal(h.write_at, 3);
  assert_int_equal(h.b->lock & HB__LIVE_MASK, 0);
  assert_int_equal(visits_run(h.b), 3);
  assert_int_equal(hb_free(h.b), HB_OK);
}

/* Many revocations at random moments of a biased thread's stream of
 * visits: no increment lost, no writer beside anybody, counts add up. */
#define RACE_ROUNDS 300
#define RACE_LATE_VISITS 16

typedef struct {
  hb_buf *b;
  excl x;
  int stop;              /* the late thread is done (atomic) */
  int started;           /* the biased thread's visits so far (atomic) */
  unsigned wait_for;     /* visits the late thread lets pass first */
  int slow;              /* some biased writes are slow */
  uint64_t writes[2], reads[2];
} race;

/* A write that takes longer than the revoker's barrier, in every other
 * round: revocations then find it in flight and move its ticket. */
static void spin_ns(long ns) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do
    clock_gettime(CLOCK_MONOTONIC, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) <
         ns);
}

static int cb_inc_slow(hb_view *view, void *arg) {
  spin_ns(50000); /* membarrier took 0.4 to 10 us when measured */
  return cb_inc(view, arg);
}

static void *race_biased(void *arg) {
  race *r = arg;
  for (unsigned i = 0; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); i++) {
    int rc = (i % 4 == 3)
                 ? HB_READ_NOW(r->b, uint64_t, cb_get, &r->x, NULL)
                 : HB_WRITE_NOW(r->b, uint64_t, 0,
                                r->slow && i % 8 == 1 ? cb_inc_slow : cb_inc,
                                &r->x, NULL);
    if (rc != HB_OK) abort();
    if (i % 4 == 3)
      r->reads[0]++;
    else
      r->writes[0]++;
    __atomic_store_n(&r->started, (int)i + 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static void *race_late(void *arg) {
  race *r = arg;
  while ((unsigned)__atomic_load_n(&r->started, __ATOMIC_ACQUIRE) <
         r->wait_for)
    sched_yield();
  /* then a moment more, so the revocation lands anywhere in a visit */
  spin_ns(r->wait_for * 131 % 8000);
  for (int i = 0; i < RACE_LATE_VISITS; i++) {
    int rc = (i & 1) ? HB_READ_NOW(r->b, uint64_t, cb_get, &r->x, NULL)
                     : HB_WRITE_NOW(r->b, uint64_t, 0, cb_inc, &r->x, NULL);
    if (rc != HB_OK) abort();
    if (i & 1)
      r->reads[1]++;
    else
      r->writes[1]++;
  }
  __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void revocations_race_biased_visits(void **state) {
  (void)state;
  need_bias();
  unsigned seed = 12345;
  uint64_t revoked_in_flight = 0;
  for (int round = 0; round < RACE_ROUNDS; round++) {
    race r = {.b = counter_buf()};
    seed = seed * 1103515245u + 12345u;
    r.wait_for = 1 + (seed >> 16) % 64;
    r.slow = round & 1;
    pthread_t a, l;
    assert_int_equal(pthread_create(&a, NULL, race_biased, &r), 0);
    assert_int_equal(pthread_create(&l, NULL, race_late, &r), 0);
    assert_int_equal(pthread_join(a, NULL), 0);
    assert_int_equal(pthread_join(l, NULL), 0);
    assert_int_equal(r.x.violations, 0);
    assert_int_equal(stored(r.b), r.writes[0] + r.writes[1]);
    assert_int_equal(visits_run(r.b),
                     r.writes[0] + r.writes[1] + r.reads[0] + r.reads[1]);
    assert_false(hb__is_biased(r.b));
    assert_int_equal(r.b->lock & HB__LIVE_MASK, 0);
    assert_int_equal(r.b->held, 0);
    if (hb__bias_moved(r.b)) revoked_in_flight++;
    assert_int_equal(hb_free(r.b), HB_OK);
  }
  /* the race was run both ways: some revocations caught a biased visit in
   * flight, some found the biased thread between visits */
  printf("revocations that moved a visit in flight: %llu of %d\n",
         (unsigned long long)revoked_in_flight, RACE_ROUNDS);
  assert_true(revoked_in_flight > 0);
  assert_true(revoked_in_flight < RACE_ROUNDS);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(one_thread_keeps_the_bias),
      cmocka_unit_test(biased_abort_rolls_back),
      cmocka_unit_test(caller_owned_cast_ends_the_bias),
      cmocka_unit_test(nested_calls_inside_a_biased_visit),
#if HB_CHECKED
      cmocka_unit_test(direct_call_inside_biased_visit_aborts),
#endif
      cmocka_unit_test(revoked_while_a_read_runs),
      cmocka_unit_test(revocations_race_biased_visits),
  };
  return hb_test_main("bias", tests);
}
