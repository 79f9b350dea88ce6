/*
 * test_handoff.c -- the contended hand-off (src/lock.c, THE HAND-OFF): a
 * writer leaving with waiters grants the head in the same lock-word RMW;
 * WAITERS falls with the last waiter's grant; hb_try_*_now runs when the
 * turn is free and otherwise takes nothing; a waiter past its spin budget
 * sleeps and uses no CPU.
 */
#include "hb_test.h"

#include <pthread.h>
#include <sys/resource.h>
#include <time.h>

#include "bits.h"
#include "hyperbuf.h"

static int cb_nop(hb_view *view, void *ctx) {
  (void)view;
  (void)ctx;
  return 0;
}

static uint64_t lock_word(const hb_buf *b) {
  return __atomic_load_n(&b->lock, __ATOMIC_ACQUIRE);
}

/* W (granted), then X and r queued behind it: W's release hands the lock
 * to X -- one writer granted, WAITERS still up for r -- and X's hands it
 * to r, dropping WAITERS with the last waiter's grant. */
static void writer_hands_off_to_the_head(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w = HB_VISITOR_INIT, x = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST_MUT(&x, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_true(hb__load_granted(&w));
  assert_false(hb__load_granted(&x));
  assert_int_equal(lock_word(b) & HB__W_LIVE, HB__W_WRITER | HB__W_WAITERS);
  for (hb_visitor *v = &w; v != NULL; v = v == &w ? &x : v == &x ? &r : NULL)
    assert_int_equal(hb_visit(v, 0, cb_nop, NULL), HB_OK);

  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_true(hb__load_granted(&x));
  assert_false(hb__load_granted(&r));
  assert_int_equal(lock_word(b) & HB__W_LIVE, HB__W_WRITER | HB__W_WAITERS);
  hb__check(b);

  assert_int_equal(hb_try_visit(&x, NULL), HB_OK);
  assert_true(hb__load_granted(&r));
  assert_int_equal(lock_word(b) & HB__W_LIVE, HB__W_READER);
  hb__check(b);

  assert_int_equal(hb_try_visit(&r, NULL), HB_OK);
  assert_int_equal(lock_word(b) & HB__W_LIVE, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* A writer whose head waiter is cancelled before it leaves: the release
 * finds the queue empty and frees the lock (WAITERS down, nothing held). */
static void writer_release_after_the_queue_emptied(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(hb_cancel(&r), HB_OK);
  assert_int_equal(lock_word(b) & HB__W_LIVE, HB__W_WRITER);
  assert_int_equal(hb_visit(&w, 0, cb_nop, NULL), HB_OK);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_int_equal(lock_word(b) & HB__W_LIVE, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- hb_try_read_now / hb_try_write_now ----------------------------------
 */
static int cb_count(hb_view *view, void *ctx) {
  (void)view;
  (*(int *)ctx)++;
  return 7;
}

/* The turn free: fn runs, its result comes back, the ticket is returned. */
static void try_now_runs_when_the_turn_is_free(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  int calls = 0, res = 0;
  assert_int_equal(HB_TRY_WRITE_NOW(b, uint8_t, 8, cb_count, &calls, &res),
                   HB_OK);
  assert_int_equal(res, 7);
  assert_true(hb_capacity(b) - hb_len(b) >= 8);
  assert_int_equal(HB_TRY_READ_NOW(b, uint8_t, cb_count, &calls, &res), HB_OK);
  assert_int_equal(calls, 2);
  assert_int_equal(lock_word(b) & HB__W_LIVE, 0);
  /* A shared buffer (a caller-owned visitor ends any bias) too. */
  hb_visitor v = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
  assert_int_equal(HB_TRY_READ_NOW(b, uint8_t, cb_count, &calls, &res), HB_OK);
  assert_int_equal(calls, 3); /* readers share */
  assert_int_equal(hb_cancel(&v), HB_OK);
  assert_int_equal(HB_TRY_WRITE_NOW(b, uint8_t, 0, cb_count, &calls, &res),
                   HB_OK);
  assert_int_equal(calls, 4);
  assert_int_equal(hb_try_read_now(b, HB_TYPE(uint8_t), NULL, NULL, NULL),
                   HB_EINVAL);
  assert_int_equal(hb_free(b), HB_OK);
}

/* The turn taken: HB_EAGAIN, fn not run, and the lock word and the queue
 * exactly as they were -- no ticket, no place in line. */
static void try_now_takes_no_place_in_the_queue(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  int calls = 0;
  hb_visitor r = HB_VISITOR_INIT, w = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK); /* a reader holds */
  uint64_t word = lock_word(b);
  assert_int_equal(HB_TRY_WRITE_NOW(b, uint8_t, 0, cb_count, &calls, NULL),
                   HB_EAGAIN);
  assert_int_equal(lock_word(b), word);

  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK); /* a writer waits */
  word = lock_word(b);
  uint32_t qlen = hb__ext(b)->qlen;
  assert_int_equal(qlen, 1);
  /* A read would be compatible with the reader, but a writer waits: the
   * try does not overtake it. */
  assert_int_equal(HB_TRY_READ_NOW(b, uint8_t, cb_count, &calls, NULL),
                   HB_EAGAIN);
  assert_int_equal(HB_TRY_WRITE_NOW(b, uint8_t, 0, cb_count, &calls, NULL),
                   HB_EAGAIN);
  assert_int_equal(calls, 0);
  assert_int_equal(lock_word(b), word);
  assert_int_equal(hb__ext(b)->qlen, qlen);
  hb__check(b);

  assert_int_equal(hb_cancel(&r), HB_OK); /* the writer's turn */
  assert_true(hb__load_granted(&w));
  assert_int_equal(HB_TRY_READ_NOW(b, uint8_t, cb_count, &calls, NULL),
                   HB_EAGAIN);
  assert_int_equal(hb_cancel(&w), HB_OK);
  assert_int_equal(HB_TRY_READ_NOW(b, uint8_t, cb_count, &calls, NULL), HB_OK);
  assert_int_equal(calls, 1);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Inside a callback on b the turn is this thread's own: a try says
 * HB_EAGAIN where hb_*_now would say HB_EDEADLK. */
typedef struct {
  int inner_rc, inner_calls;
} nest_ctx;

static int try_inside(hb_view *view, void *arg) {
  nest_ctx *n = arg;
  n->inner_rc = HB_TRY_READ_NOW(view->buf, uint8_t, cb_count,
                                &n->inner_calls, NULL);
  return 0;
}

static void try_now_inside_a_callback_is_eagain(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  nest_ctx n = {0, 0};
  int res = -1;
  /* The first one-call visit may bias b to this thread: the nested try
   * must refuse on the biased path too. */
  assert_int_equal(HB_WRITE_NOW(b, uint8_t, 0, try_inside, &n, &res), HB_OK);
  assert_int_equal(n.inner_rc, HB_EAGAIN);
  assert_int_equal(n.inner_calls, 0);
  /* and once more, shared by then (or still biased without the bias) */
  assert_int_equal(HB_WRITE_NOW(b, uint8_t, 0, try_inside, &n, &res), HB_OK);
  assert_int_equal(n.inner_rc, HB_EAGAIN);
  assert_int_equal(lock_word(b) & HB__W_LIVE, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- a parked waiter uses no CPU ------------------------------------------
 *
 * The holder's callback keeps the write ticket for HOLD_MS while a second
 * thread waits for a read ticket in hb_read_now.  The waiter's CPU time
 * over the whole wait (getrusage(RUSAGE_THREAD) before and after, on the
 * waiter itself) must stay far below the wait: a waiter that kept
 * spinning would use about all of it.  The bound is generous (a tenth of
 * the wait, against a spin budget of 25 us plus the wake-up), so that a
 * loaded machine cannot make the test fail; it is a bound on CPU, not on
 * time. */
#define HOLD_MS 300

typedef struct {
  hb_buf *b;
  int inside; /* atomic: the holder's callback runs */
  int queued; /* atomic: the waiter is about to call hb_read_now */
  uint64_t waiter_cpu_us;
  uint64_t waited_us;
} park_ctx;

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t thread_cpu_us(void) {
  struct rusage ru;
  assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void sleep_ms(long ms) {
  struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&d, &d) != 0) {
  }
}

static int hold(hb_view *view, void *arg) {
  (void)view;
  park_ctx *c = arg;
  __atomic_store_n(&c->inside, 1, __ATOMIC_RELEASE);
  /* Wait (sleeping) until the waiter is on its way, then hold on. */
  while (!__atomic_load_n(&c->queued, __ATOMIC_ACQUIRE)) sleep_ms(1);
  sleep_ms(HOLD_MS);
  return 0;
}

static void *holder(void *arg) {
  park_ctx *c = arg;
  int res = -1;
  assert_int_equal(HB_WRITE_NOW(c->b, uint8_t, 0, hold, c, &res), HB_OK);
  assert_int_equal(res, 0);
  return NULL;
}

static void parked_waiter_uses_no_cpu(void **state) {
  (void)state;
  park_ctx c = {.b = hb_new(16)};
  assert_non_null(c.b);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, holder, &c), 0);
  while (!__atomic_load_n(&c.inside, __ATOMIC_ACQUIRE)) sleep_ms(1);

  uint64_t cpu0 = thread_cpu_us(), t0 = now_us();
  __atomic_store_n(&c.queued, 1, __ATOMIC_RELEASE);
  int res = -1;
  assert_int_equal(HB_READ_NOW(c.b, uint8_t, cb_nop, NULL, &res), HB_OK);
  c.waited_us = now_us() - t0;
  c.waiter_cpu_us = thread_cpu_us() - cpu0;
  assert_int_equal(pthread_join(t, NULL), 0);

  assert_true(c.waited_us >= (HOLD_MS - 50) * 1000u); /* it did wait */
  if (c.waiter_cpu_us * 10 > c.waited_us)
    fail_msg("the waiter used %llu us of CPU in a %llu us wait",
             (unsigned long long)c.waiter_cpu_us,
             (unsigned long long)c.waited_us);
  assert_int_equal(hb_free(c.b), HB_OK);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(writer_hands_off_to_the_head),
      cmocka_unit_test(writer_release_after_the_queue_emptied),
      cmocka_unit_test(try_now_runs_when_the_turn_is_free),
      cmocka_unit_test(try_now_takes_no_place_in_the_queue),
      cmocka_unit_test(try_now_inside_a_callback_is_eagain),
      cmocka_unit_test(parked_waiter_uses_no_cpu),
  };
  return hb_test_main("handoff", tests);
}
