/*
 * test_edges.c -- visitor mode at its edges (issue 10): storage that was
 * never initialised, detached `done` callbacks that call the library,
 * wakers that cancel or poll, cancel-free-join shutdown, the race of
 * hb_cancel with hb_visit, detached re-arming from `done`, and a zeroed
 * hb_fd_waker.  Scenarios that could hang or crash run in a child process
 * under a watchdog (tests/isolate.h), so each one fails on its own.
 * The re-entrancy matrix is tests/test_reentry.c.
 */
#include "hb_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hyperbuf.h"
#include "isolate.h"

/* ---- helpers ------------------------------------------------------------- */

static int cb_five(hb_view *view, void *ctx) {
  (void)view;
  (void)ctx;
  return 5;
}

static int cb_count(hb_view *view, void *ctx) {
  (void)view;
  (*(int *)ctx)++;
  return 0;
}

static void count_wake(void *arg) {
  __atomic_fetch_add((int *)arg, 1, __ATOMIC_RELAXED);
}

static hb_waker counter_waker(int *n) { return (hb_waker){count_wake, n}; }

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Run body in a child under the watchdog; say how it ended.
 * @return 1 if it failed, 0 if it passed. */
static int run_isolated(const char *what, void (*body)(void *), void *arg) {
  int rc = isolate(what, body, arg, 10);
  printf("  %s: %s", what, isolate_verdict(rc));
  if (rc != 0) printf(" (child status %d)", rc);
  printf("\n");
  return rc != 0;
}

/* ---- 1. any storage may be cast ----------------------------------------- */

/* What a visitor filled with `fill` goes through: every call on the
 * never-cast storage is HB_ESTATE (it is idle, whatever the bytes say);
 * the cast succeeds and a live visitor's re-cast is refused; it runs; a
 * second such visitor queues behind it, is woken and runs. */
static void garbage_storage(void *arg) {
  int fill = *(int *)arg;
  hb_buf *b = hb_new(64);
  CHILD_CHECK(b != NULL);
  hb_visitor v, q;
  memset(&v, fill, sizeof v);
  memset(&q, fill, sizeof q);
  int result = -1, woken = 0, runs = 0;

  CHILD_CHECK_INT(hb_visit(&v, 0, cb_five, NULL), HB_ESTATE);
  CHILD_CHECK_INT(hb_visit_detached(&v, 0, cb_five, NULL, NULL, NULL),
                  HB_ESTATE);
  CHILD_CHECK_INT(hb_try_visit(&v, &result), HB_ESTATE);
  CHILD_CHECK_INT(hb_poll(&v, counter_waker(&woken), &result), HB_ESTATE);
  CHILD_CHECK_INT(hb_block_on(&v, &result), HB_ESTATE);
  CHILD_CHECK_INT(hb_cancel(&v), HB_ESTATE);
  CHILD_CHECK_INT(result, -1);
  CHILD_CHECK_INT(woken, 0);

  CHILD_CHECK_INT(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(HB_CAST(&v, b, uint8_t), HB_ESTATE); /* live */
  CHILD_CHECK_INT(HB_CAST(&q, b, uint8_t), HB_OK);     /* queued behind */
  CHILD_CHECK_INT(HB_CAST_MUT(&q, b, uint8_t), HB_ESTATE);
  CHILD_CHECK_INT(hb_visit(&q, 0, cb_count, &runs), HB_OK);
  CHILD_CHECK_INT(hb_poll(&q, counter_waker(&woken), &result), HB_PENDING);
  CHILD_CHECK_INT(hb_try_visit(&q, &result), HB_EAGAIN);
  CHILD_CHECK_INT(hb_visit(&v, 0, cb_five, NULL), HB_OK);
  CHILD_CHECK_INT(HB_CAST(&v, b, uint8_t), HB_ESTATE); /* armed: live */
  CHILD_CHECK_INT(hb_try_visit(&v, &result), HB_OK);
  CHILD_CHECK_INT(result, 5);
  CHILD_CHECK_INT(woken, 1);
  CHILD_CHECK_INT(hb_poll(&q, counter_waker(&woken), &result), HB_OK);
  CHILD_CHECK_INT(runs, 1);
  CHILD_CHECK_INT(hb_cancel(&v), HB_ESTATE); /* finished */
  CHILD_CHECK_INT(hb_cancel(&q), HB_ESTATE);
  CHILD_CHECK_INT(hb_free(b), HB_OK);
}

static void any_storage_casts(void **state) {
  (void)state;
  int failed = 0;
  char what[64];
  for (int fill = 0; fill < 256; fill++) {
    snprintf(what, sizeof what, "storage filled with 0x%02x", fill);
    int rc = isolate(what, garbage_storage, &fill, 2);
    if (rc != 0) {
      failed++;
      printf("  %s: %s (status %d)\n", what, isolate_verdict(rc), rc);
    }
  }
  printf("any_storage_casts: %d of 256 fill bytes failed\n", failed);
  assert_int_equal(failed, 0);
}

/* Storage nobody ever wrote: valgrind (`make valgrind`) reports any
 * decision the library takes on it; elsewhere this is a plain visit. */
static void uninitialised_storage(void **state) {
  (void)state;
  hb_buf *b = hb_new(64);
  hb_visitor *v = malloc(sizeof *v); /* never written */
  assert_non_null(v);
  int result = -1;
  assert_int_equal(HB_CAST(v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(v, 0, cb_five, NULL), HB_OK);
  assert_int_equal(hb_try_visit(v, &result), HB_OK);
  assert_int_equal(result, 5);
  free(v);
  assert_int_equal(hb_free(b), HB_OK);
}

/* A live visitor moved to other storage is not a visitor there: calls on
 * the copy are refused, and the original still works. */
static void copied_visitor_is_not_live(void **state) {
  (void)state;
  hb_buf *b = hb_new(64);
  hb_visitor v = HB_VISITOR_INIT, *copy = malloc(sizeof *copy);
  int result = -1;
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, cb_five, NULL), HB_OK);
  memcpy(copy, &v, sizeof v);
  assert_int_equal(hb_try_visit(copy, &result), HB_ESTATE);
  assert_int_equal(hb_cancel(copy), HB_ESTATE);
  assert_int_equal(hb_try_visit(&v, &result), HB_OK);
  assert_int_equal(result, 5);
  free(copy);
  assert_int_equal(hb_free(b), HB_OK);
}

/* The same for a write visitor, on hb_try_visit's uncontended path (a
 * granted, armed visitor is claimed there before anything else is
 * looked at): the copy's call neither runs the callback nor gives the
 * original's ticket back -- a reader cast after it still waits. */
static void copied_writer_does_not_run(void **state) {
  (void)state;
  hb_buf *b = hb_new(64);
  hb_visitor v = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  hb_visitor *copy = malloc(sizeof *copy);
  int runs = 0, result = -1;
  assert_non_null(copy);
  assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, cb_count, &runs), HB_OK);
  memcpy(copy, &v, sizeof v);
  assert_int_equal(hb_try_visit(copy, &result), HB_ESTATE);
  assert_int_equal(runs, 0);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&r, 0, cb_count, &runs), HB_OK);
  assert_int_equal(hb_try_visit(&r, &result), HB_EAGAIN); /* v holds it */
  assert_int_equal(hb_try_visit(&v, &result), HB_OK);
  assert_int_equal(runs, 1);
  assert_int_equal(hb_try_visit(&r, &result), HB_OK);
  assert_int_equal(runs, 2);
  free(copy);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- 2. done runs after the wakers its release made due ----------------- */

typedef struct {
  hb_visitor *granted; /* the visitor the release made runnable */
  int *woken;          /* its waker's count */
  int woken_at_done;   /* that count when done ran */
  int rc, result, status, calls;
} done_probe;

/* A done that drives the visitor its own release just granted. */
static void done_drives(hb_visitor *v, int status, int result, void *arg) {
  (void)v;
  (void)result;
  done_probe *d = arg;
  d->calls++;
  d->status = status;
  d->woken_at_done = __atomic_load_n(d->woken, __ATOMIC_RELAXED);
  d->rc = hb_try_visit(d->granted, &d->result);
}

/* What all three paths must show: done ran once with `status`, after the
 * granted visitor's waker, and could run that visitor (it ran once). */
static void check_done_after_waker(const done_probe *dp, int status,
                                   int runs) {
  CHILD_CHECK_INT(dp->calls, 1);
  CHILD_CHECK_INT(dp->status, status);
  CHILD_CHECK_INT(dp->woken_at_done, 1); /* the waker came first */
  CHILD_CHECK_INT(dp->rc, HB_OK);        /* and done could run it */
  CHILD_CHECK_INT(runs, 1);
}

/* The run-now path of hb_visit_detached: d is granted at once, r waits
 * behind it with a waker. */
static void done_after_wakers_run_now(void *arg) {
  (void)arg;
  hb_buf *b = hb_new(64);
  hb_visitor d = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  int woken = 0, runs = 0, result;
  done_probe dp = {.granted = &r, .woken = &woken, .rc = 99};
  CHILD_CHECK_INT(HB_CAST_MUT(&d, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(HB_CAST(&r, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(hb_visit(&r, 0, cb_count, &runs), HB_OK);
  CHILD_CHECK_INT(hb_poll(&r, counter_waker(&woken), &result), HB_PENDING);
  CHILD_CHECK_INT(hb_visit_detached(&d, 0, cb_five, NULL, done_drives, &dp),
                  HB_OK);
  check_done_after_waker(&dp, HB_OK, runs);
  CHILD_CHECK_INT(woken, 1);
  CHILD_CHECK_INT(hb_free(b), HB_OK);
}

/* The flush after a release: w0's visit ends, the flush runs d, d's
 * release grants r. */
static void done_after_wakers_flush(void *arg) {
  (void)arg;
  hb_buf *b = hb_new(64);
  hb_visitor w0 = HB_VISITOR_INIT, d = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  int woken = 0, runs = 0, result;
  done_probe dp = {.granted = &r, .woken = &woken, .rc = 99};
  CHILD_CHECK_INT(HB_CAST_MUT(&w0, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(HB_CAST_MUT(&d, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(HB_CAST(&r, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(hb_visit_detached(&d, 0, cb_five, NULL, done_drives, &dp),
                  HB_OK);
  CHILD_CHECK_INT(hb_visit(&r, 0, cb_count, &runs), HB_OK);
  CHILD_CHECK_INT(hb_poll(&r, counter_waker(&woken), &result), HB_PENDING);
  CHILD_CHECK_INT(hb_visit(&w0, 0, cb_five, NULL), HB_OK);
  CHILD_CHECK_INT(hb_try_visit(&w0, &result), HB_OK);
  check_done_after_waker(&dp, HB_OK, runs);
  CHILD_CHECK_INT(hb_free(b), HB_OK);
}

/* hb_cancel of a queued detached writer: the readers behind it join the
 * reader already granted. */
static void done_after_wakers_cancel(void *arg) {
  (void)arg;
  hb_buf *b = hb_new(64);
  hb_visitor r0 = HB_VISITOR_INIT, d = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  int woken = 0, runs = 0, result;
  done_probe dp = {.granted = &r, .woken = &woken, .rc = 99};
  CHILD_CHECK_INT(HB_CAST(&r0, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(HB_CAST_MUT(&d, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(HB_CAST(&r, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(hb_visit_detached(&d, 0, cb_five, NULL, done_drives, &dp),
                  HB_OK);
  CHILD_CHECK_INT(hb_visit(&r, 0, cb_count, &runs), HB_OK);
  CHILD_CHECK_INT(hb_poll(&r, counter_waker(&woken), &result), HB_PENDING);
  CHILD_CHECK_INT(hb_cancel(&d), HB_OK);
  check_done_after_waker(&dp, HB_ECANCELED, runs);
  CHILD_CHECK_INT(hb_cancel(&r0), HB_OK);
  CHILD_CHECK_INT(hb_free(b), HB_OK);
}

/* From another thread: a try_visit of the granted visitor does not wait
 * for done to return.  done waits (up to 5 s, a hang detector, not a speed
 * target) for that thread's try_visit to come back. */
typedef struct {
  hb_visitor *r;
  sem_t ran;
  int rc, waited_ok;
} cross_probe;

static void *cross_driver(void *arg) {
  cross_probe *c = arg;
  while (!hb__load_granted(c->r)) sleep_us(50);
  int result;
  c->rc = hb_try_visit(c->r, &result);
  sem_post(&c->ran);
  return NULL;
}

static void done_waits_for_driver(hb_visitor *v, int status, int result,
                                  void *arg) {
  (void)v;
  (void)status;
  (void)result;
  cross_probe *c = arg;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  int rc;
  while ((rc = sem_timedwait(&c->ran, &until)) != 0 && errno == EINTR) {
  }
  c->waited_ok = rc == 0;
}

static void done_does_not_block_other_drivers(void *arg) {
  (void)arg;
  hb_buf *b = hb_new(64);
  hb_visitor d = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  int woken = 0, runs = 0, result;
  cross_probe c = {.r = &r, .rc = 99};
  sem_init(&c.ran, 0, 0);
  CHILD_CHECK_INT(HB_CAST_MUT(&d, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(HB_CAST(&r, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(hb_visit(&r, 0, cb_count, &runs), HB_OK);
  CHILD_CHECK_INT(hb_poll(&r, counter_waker(&woken), &result), HB_PENDING);
  pthread_t t;
  CHILD_CHECK_INT(pthread_create(&t, NULL, cross_driver, &c), 0);
  CHILD_CHECK_INT(
      hb_visit_detached(&d, 0, cb_five, NULL, done_waits_for_driver, &c),
      HB_OK);
  pthread_join(t, NULL);
  CHILD_CHECK_INT(c.waited_ok, 1);
  CHILD_CHECK_INT(c.rc, HB_OK);
  CHILD_CHECK_INT(runs, 1);
  CHILD_CHECK_INT(hb_free(b), HB_OK);
}

static void done_after_wakers(void **state) {
  (void)state;
  int failed = 0;
  failed += run_isolated("done: hb_visit_detached's run-now path",
                         done_after_wakers_run_now, NULL);
  failed += run_isolated("done: the flush after a release",
                         done_after_wakers_flush, NULL);
  failed += run_isolated("done: hb_cancel of a queued detached visitor",
                         done_after_wakers_cancel, NULL);
  failed += run_isolated("done: another thread's hb_try_visit",
                         done_does_not_block_other_drivers, NULL);
  assert_int_equal(failed, 0);
}

/* ---- 3. wakers that cancel or poll ----------------------------------------
 * w0 holds the write ticket; readers r1 and r2 queue behind it with
 * wakers; w0's visit ends and grants both in one batch. */

typedef struct {
  hb_visitor *target;
  int (*call)(hb_visitor *v);
  int rc, calls;
} waker_probe;

static void probe_wake(void *arg) {
  waker_probe *p = arg;
  p->calls++;
  if (p->calls == 1) p->rc = p->call(p->target);
}

static int call_cancel(hb_visitor *v) { return hb_cancel(v); }
static int call_try(hb_visitor *v) {
  int result;
  return hb_try_visit(v, &result);
}
static int call_poll(hb_visitor *v) {
  int result;
  return hb_poll(v, (hb_waker){NULL, NULL}, &result);
}

typedef struct {
  int target_sibling; /* the probe acts on r2, not on its own r1 */
  int (*call)(hb_visitor *v);
  int want_rc;
  int want_r1; /* r1's final driver status */
  int want_r2;
} waker_case;

static void waker_calls_back(void *arg) {
  const waker_case *c = arg;
  hb_buf *b = hb_new(64);
  hb_visitor w0 = HB_VISITOR_INIT, r1 = HB_VISITOR_INIT, r2 = HB_VISITOR_INIT;
  int runs = 0, woken2 = 0, result;
  waker_probe p = {.target = c->target_sibling ? &r2 : &r1,
                   .call = c->call,
                   .rc = 99};
  CHILD_CHECK_INT(HB_CAST_MUT(&w0, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(HB_CAST(&r1, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(HB_CAST(&r2, b, uint8_t), HB_OK);
  CHILD_CHECK_INT(hb_visit(&r1, 0, cb_count, &runs), HB_OK);
  CHILD_CHECK_INT(hb_visit(&r2, 0, cb_count, &runs), HB_OK);
  CHILD_CHECK_INT(hb_poll(&r1, (hb_waker){probe_wake, &p}, &result),
                  HB_PENDING);
  CHILD_CHECK_INT(hb_poll(&r2, counter_waker(&woken2), &result), HB_PENDING);
  CHILD_CHECK_INT(hb_visit(&w0, 0, cb_five, NULL), HB_OK);
  CHILD_CHECK_INT(hb_try_visit(&w0, &result), HB_OK);
  CHILD_CHECK_INT(p.calls, 1);
  CHILD_CHECK_INT(p.rc, c->want_rc);
  CHILD_CHECK_INT(woken2, 1); /* r2's waker: called once, cancelled or not */
  CHILD_CHECK_INT(hb_try_visit(&r1, &result), c->want_r1);
  CHILD_CHECK_INT(hb_try_visit(&r2, &result), c->want_r2);
  CHILD_CHECK_INT(hb_free(b), HB_OK);
}

static void waker_cancels_or_polls(void **state) {
  (void)state;
  static const waker_case own_cancel = {0, call_cancel, HB_OK, HB_ECANCELED,
                                        HB_OK};
  static const waker_case sib_cancel = {1, call_cancel, HB_OK, HB_OK,
                                        HB_ECANCELED};
  static const waker_case own_try = {0, call_try, HB_EDEADLK, HB_OK, HB_OK};
  static const waker_case own_poll = {0, call_poll, HB_EDEADLK, HB_OK, HB_OK};
  int failed = 0;
  failed += run_isolated("a waker cancels its own visitor", waker_calls_back,
                         (void *)&own_cancel);
  failed += run_isolated("a waker cancels a sibling granted with it",
                         waker_calls_back, (void *)&sib_cancel);
  failed += run_isolated("a waker try_visits its own visitor",
                         waker_calls_back, (void *)&own_try);
  failed += run_isolated("a waker polls its own visitor", waker_calls_back,
                         (void *)&own_poll);
  assert_int_equal(failed, 0);
}

/* ---- 4. cancel, free the buffer, join ------------------------------------
 * A thread waits on v in hb_block_on (or polls it); the main thread
 * cancels v and the writer ahead of it and frees the buffer at once, then
 * joins.  ASan and valgrind see any touch of the freed buffer. */

typedef struct {
  hb_visitor *v;
  int use_poll;
  int rc;
} waiter_arg;

static void *waiter(void *arg) {
  waiter_arg *w = arg;
  int result;
  if (w->use_poll) {
    while ((w->rc = hb_poll(w->v, (hb_waker){NULL, NULL}, &result)) ==
           HB_PENDING) {
    }
  } else {
    w->rc = hb_block_on(w->v, &result);
  }
  return NULL;
}

static void cancel_free_join_rounds(int use_poll, int rounds) {
  for (int i = 0; i < rounds; i++) {
    hb_buf *b = hb_new(64);
    hb_visitor w = HB_VISITOR_INIT, v = HB_VISITOR_INIT;
    assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
    assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&v, 0, cb_five, NULL), HB_OK);
    waiter_arg a = {.v = &v, .use_poll = use_poll, .rc = 99};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter, &a), 0);
    /* Let the waiter get going: spinning, or asleep on the futex. */
    sleep_us(use_poll ? (i % 3) * 20 : (i % 2) * 2000);
    assert_int_equal(hb_cancel(&v), HB_OK);
    assert_int_equal(hb_cancel(&w), HB_OK);
    assert_int_equal(hb_free(b), HB_OK);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, HB_ECANCELED);
  }
}

static void cancel_free_join_block_on(void **state) {
  (void)state;
  watchdog_arm("cancel_free_join_block_on", 60);
  cancel_free_join_rounds(0, 20);
  watchdog_disarm();
}

/* The same with the visitor's storage freed too, right after the cancel
 * returned, while the waiter (parked: waited for) is still to wake. */
static void cancel_free_join_storage(void **state) {
  (void)state;
  watchdog_arm("cancel_free_join_storage", 60);
  for (int i = 0; i < 10; i++) {
    hb_buf *b = hb_new(64);
    hb_visitor w = HB_VISITOR_INIT, *v = malloc(sizeof *v);
    assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
    assert_int_equal(HB_CAST(v, b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(v, 0, cb_five, NULL), HB_OK);
    waiter_arg a = {.v = v, .use_poll = 0, .rc = 99};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter, &a), 0);
    while (!hb__load_parked(v)) sleep_us(100);
    if (i & 1) sleep_us(1000); /* asleep on the futex, not spinning */
    assert_int_equal(hb_cancel(v), HB_OK);
    free(v);
    assert_int_equal(hb_cancel(&w), HB_OK);
    assert_int_equal(hb_free(b), HB_OK);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, HB_ECANCELED);
  }
  watchdog_disarm();
}

static void cancel_free_join_poll(void **state) {
  (void)state;
  watchdog_arm("cancel_free_join_poll", 60);
  cancel_free_join_rounds(1, 300);
  watchdog_disarm();
}

/* ---- 5. hb_cancel against hb_visit and hb_visit_detached -----------------
 * One thread casts, arms (plainly or detached) and drives v round after
 * round; another cancels it all along.  Every round ends exactly once,
 * ran or cancelled; ThreadSanitizer sees any unordered access. */

enum { RACE_ROUNDS = 3000 };

typedef struct {
  hb_buf *b;
  hb_visitor v;
  int stop;
  int ran, cancelled, done_calls;
} race_arg;

static void race_done(hb_visitor *v, int status, int result, void *arg) {
  (void)v;
  (void)result;
  race_arg *a = arg;
  a->done_calls++;
  if (status == HB_OK)
    a->ran++;
  else
    a->cancelled++;
}

static void *race_canceller(void *arg) {
  race_arg *a = arg;
  while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
    int rc = hb_cancel(&a->v);
    if (rc != HB_OK && rc != HB_ESTATE && rc != HB_EBUSY) abort();
  }
  return NULL;
}

static void cancel_races_visit(void **state) {
  (void)state;
  watchdog_arm("cancel_races_visit", 120);
  race_arg *a = calloc(1, sizeof *a);
  a->b = hb_new(64);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, race_canceller, a), 0);
  int result;
  for (int i = 0; i < RACE_ROUNDS; i++) {
    assert_int_equal(HB_CAST(&a->v, a->b, uint8_t), HB_OK);
    int rc;
    if (i & 1) {
      rc = hb_visit(&a->v, 0, cb_five, NULL);
      /* HB_ESTATE: cancelled before arming; a driver waits the cancel out
       * and says so (the visitor is finished only then). */
      if (rc == HB_ESTATE) assert_int_equal(hb_try_visit(&a->v, &result),
                                            HB_ECANCELED);
      else if (rc == HB_OK) rc = hb_block_on(&a->v, &result);
      if (rc == HB_OK) a->ran++;
      else if (rc == HB_ECANCELED || rc == HB_ESTATE) a->cancelled++;
      else fail_msg("round %d: %d", i, rc);
    } else {
      int before = a->done_calls;
      rc = hb_visit_detached(&a->v, 0, cb_five, NULL, race_done, a);
      if (rc == HB_ESTATE) { /* cancelled before arming, as above */
        assert_int_equal(hb_try_visit(&a->v, &result), HB_ECANCELED);
        a->cancelled++;
      } else {
        assert_int_equal(rc, HB_OK);
      }
      if (rc == HB_OK) {
        /* granted at once, so it ran (or was cancelled) here */
        assert_int_equal(a->done_calls, before + 1);
      }
    }
  }
  __atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
  pthread_join(t, NULL);
  assert_int_equal(a->ran + a->cancelled, RACE_ROUNDS);
  assert_int_equal(hb_free(a->b), HB_OK);
  free(a);
  watchdog_disarm();
}

/* ---- 6. re-arming a detached visitor from its done ----------------------- */

enum { REARM_ROUNDS = 20000 };
#define REARM_STACK_LIMIT (64 * 1024) /* far below 20000 nested rounds */

typedef struct {
  hb_buf *b;
  int rounds;
  uintptr_t lo, hi; /* the stack addresses done ran at */
  int failed;
} rearm_arg;

static void rearm_done(hb_visitor *v, int status, int result, void *arg) {
  (void)result;
  rearm_arg *a = arg;
  char here;
  uintptr_t sp = (uintptr_t)&here;
  if (a->rounds == 0 || sp < a->lo) a->lo = sp;
  if (a->rounds == 0 || sp > a->hi) a->hi = sp;
  if (status != HB_OK) a->failed = 1;
  if (++a->rounds >= REARM_ROUNDS || a->hi - a->lo > REARM_STACK_LIMIT) return;
  if (HB_CAST_MUT(v, a->b, uint8_t) != HB_OK ||
      hb_visit_detached(v, 0, cb_five, NULL, rearm_done, a) != HB_OK)
    a->failed = 1;
}

static void detached_rearm_constant_stack(void **state) {
  (void)state;
  rearm_arg a = {.b = hb_new(64)};
  hb_visitor v = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST_MUT(&v, a.b, uint8_t), HB_OK);
  assert_int_equal(hb_visit_detached(&v, 0, cb_five, NULL, rearm_done, &a),
                   HB_OK);
  printf("detached re-arm: %d rounds, done's stack spread %zu bytes\n",
         a.rounds, (size_t)(a.hi - a.lo));
  assert_int_equal(a.failed, 0);
  assert_true(a.hi - a.lo <= REARM_STACK_LIMIT);
  assert_int_equal(a.rounds, REARM_ROUNDS);
  assert_int_equal(hb_free(a.b), HB_OK);
}

/* ---- 7. a zero-initialised hb_fd_waker ------------------------------------
 * With descriptor 0 standing in for standard input (one end of a socket
 * pair holding a byte), a zeroed waker must neither write to nor read
 * from it, nor close it. */

static void zeroed_fd_waker(void *arg) {
  (void)arg;
  int sv[2];
  CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
  CHILD_CHECK(dup2(sv[0], 0) == 0);
  CHILD_CHECK(write(sv[1], "x", 1) == 1); /* "standard input" holds a byte */
  hb_fd_waker w;
  memset(&w, 0, sizeof w);
  hb_fd_waker_wake(&w);
  hb_waker k = hb_fd_waker_get(&w);
  if (k.wake != NULL) k.wake(k.arg);
  CHILD_CHECK(hb_fd_waker_drain(&w) < 0); /* refused */
  CHILD_CHECK(hb_fd_waker_close(&w) < 0);
  CHILD_CHECK(fcntl(0, F_GETFD) != -1); /* not closed */
  char c = 0;
  CHILD_CHECK(read(0, &c, 1) == 1 && c == 'x'); /* not eaten */
  uint64_t junk;
  CHILD_CHECK(read(sv[1], &junk, sizeof junk) < 0 && errno == EAGAIN);
}

static void zeroed_fd_waker_refused(void **state) {
  (void)state;
  assert_int_equal(run_isolated("a zeroed hb_fd_waker", zeroed_fd_waker, NULL),
                   0);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(any_storage_casts),
      cmocka_unit_test(uninitialised_storage),
      cmocka_unit_test(copied_visitor_is_not_live),
      cmocka_unit_test(copied_writer_does_not_run),
      cmocka_unit_test(done_after_wakers),
      cmocka_unit_test(waker_cancels_or_polls),
      cmocka_unit_test(cancel_free_join_block_on),
      cmocka_unit_test(cancel_free_join_storage),
      cmocka_unit_test(cancel_free_join_poll),
      cmocka_unit_test(cancel_races_visit),
      cmocka_unit_test(detached_rearm_constant_stack),
      cmocka_unit_test(zeroed_fd_waker_refused),
  };
  return hb_test_main("edges", tests);
}
