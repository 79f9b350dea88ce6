/*
 * test_nextv.c -- a caller-owned visitor in the NEXT slot (src/next.c,
 * rules 6 and 7): a cast that finds the lock held and nobody queued waits
 * in the lock word; the hand-off needs nobody to touch the visitor, and
 * every call on it finds out whether its turn came -- hb_block_on by
 * spinning and claiming, the others by demoting it into the queue (or to
 * granted, if the hand-off came).  Order, cancel and shutdown stay as for
 * a queued visitor.
 */
#include "hb_test.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "bits.h"
#include "visit.h"
#include "hyperbuf.h"

static int cb_count(hb_view *view, void *ctx) {
  (void)view;
  __atomic_fetch_add((int *)ctx, 1, __ATOMIC_RELAXED);
  return 0;
}

static uint64_t lock_word(const hb_buf *b) {
  return __atomic_load_n(&b->lock, __ATOMIC_ACQUIRE);
}

static uint32_t qlen(hb_buf *b) {
  hb__buf *e = hb__ext(b);
  hb__mutex_lock(&e->mu);
  uint32_t n = e->qlen;
  hb__mutex_unlock(&e->mu);
  return n;
}

static bool in_slot(const hb_visitor *v) {
  return (hb__load_state(v) & HB__V_NEXT) != 0;
}

static void sleep_ms(long ms) {
  struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&d, &d) != 0) {
  }
}

/* A writer w granted, and r (a reader) cast behind it into the slot; both
 * armed with cb_count, r only if `arm`. */
static hb_buf *held_with(hb_visitor *w, hb_visitor *r, int *calls, bool arm) {
  hb_buf *b = hb_new(16);
  assert_non_null(b);
  assert_int_equal(HB_CAST_MUT(w, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(w, 0, cb_count, calls), HB_OK);
  assert_int_equal(HB_CAST(r, b, uint8_t), HB_OK);
  if (arm) assert_int_equal(hb_visit(r, 0, cb_count, calls), HB_OK);
  assert_true(in_slot(r));
  assert_int_equal(lock_word(b) & HB__W_LIVE, HB__W_WRITER | HB__W_NEXT);
  assert_int_equal(qlen(b), 0);
  return b;
}

static hb_buf *held_with_r_in_slot(hb_visitor *w, hb_visitor *r, int *calls) {
  return held_with(w, r, calls, true);
}

/* The slot goes first, then the queue in order: r1 from the slot, w2 after
 * r1, r3 after w2. */
static void the_slot_is_first_in_line(void **state) {
  (void)state;
  int calls = 0;
  hb_visitor w, r1, w2, r3;
  hb_buf *b = held_with_r_in_slot(&w, &r1, &calls);
  assert_int_equal(HB_CAST_MUT(&w2, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r3, b, uint8_t), HB_OK);
  assert_false(in_slot(&w2));
  assert_int_equal(qlen(b), 2);
  assert_int_equal(hb_visit(&w2, 0, cb_count, &calls), HB_OK);
  assert_int_equal(hb_visit(&r3, 0, cb_count, &calls), HB_OK);
  assert_int_equal(hb_try_visit(&r1, NULL), HB_EAGAIN);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_true(hb__load_granted(&r1));
  assert_false(hb__load_granted(&w2));
  assert_false(hb__load_granted(&r3));
  hb__check(b);
  assert_int_equal(hb_try_visit(&r1, NULL), HB_OK);
  assert_true(hb__load_granted(&w2));
  assert_false(hb__load_granted(&r3));
  assert_int_equal(hb_try_visit(&w2, NULL), HB_OK);
  assert_int_equal(hb_try_visit(&r3, NULL), HB_OK);
  assert_int_equal(calls, 4);
  assert_int_equal(lock_word(b) & HB__W_LIVE, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* The hand-off puts r's ticket in the lock word without touching r; its
 * own try then finds it there (rule 7: granted), and runs. */
static void try_finds_the_handoff(void **state) {
  (void)state;
  int calls = 0;
  hb_visitor w, r;
  hb_buf *b = held_with_r_in_slot(&w, &r, &calls);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_int_equal(lock_word(b) & HB__W_LIVE, HB__W_READER);
  assert_true(in_slot(&r)); /* nobody told r */
  int res = -1;
  assert_int_equal(hb_try_visit(&r, &res), HB_OK);
  assert_int_equal(res, 0);
  assert_int_equal(calls, 2);
  assert_int_equal(lock_word(b) & HB__W_LIVE, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* A try before the hand-off moves r to the queue's head, from where the
 * ordinary grant reaches it; a cancel after the hand-off gives the ticket
 * it holds in the word back. */
static void try_before_and_cancel_after(void **state) {
  (void)state;
  int calls = 0;
  hb_visitor w, r;
  hb_buf *b = held_with_r_in_slot(&w, &r, &calls);
  assert_int_equal(hb_try_visit(&r, NULL), HB_EAGAIN);
  assert_false(in_slot(&r));
  assert_int_equal(qlen(b), 1);
  assert_int_equal(lock_word(b) & HB__W_LIVE, HB__W_WRITER | HB__W_WAITERS);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_true(hb__load_granted(&r));
  assert_int_equal(hb_try_visit(&r, NULL), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);

  b = held_with_r_in_slot(&w, &r, &calls);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_int_equal(hb_cancel(&r), HB_OK);
  assert_int_equal(lock_word(b) & HB__W_LIVE, 0);
  assert_int_equal(hb_cancel(&r), HB_ESTATE);
  hb_stats st;
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.visits_cancelled, 1);
  assert_int_equal(calls, 3);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Inside a sibling reader's callback, hb_block_on on a reader whose
 * hand-off came unseen (its state still says NEXT) runs it: its turn has
 * come, so there is nothing to deadlock on. */
typedef struct {
  hb_visitor *r;
  int rc;
} sibling_ctx;

static int block_on_sibling(hb_view *view, void *arg) {
  (void)view;
  sibling_ctx *c = arg;
  c->rc = hb_block_on(c->r, NULL);
  return 0;
}

static void block_on_inside_a_sibling_runs_it(void **state) {
  (void)state;
  int calls = 0;
  hb_visitor w, r, x;
  hb_buf *b = held_with_r_in_slot(&w, &r, &calls);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK); /* r's ticket, unseen */
  assert_true(in_slot(&r));
  sibling_ctx c = {&r, -1};
  assert_int_equal(HB_CAST(&x, b, uint8_t), HB_OK); /* beside r */
  assert_int_equal(hb_visit(&x, 0, block_on_sibling, &c), HB_OK);
  assert_int_equal(hb_try_visit(&x, NULL), HB_OK);
  assert_int_equal(c.rc, HB_OK);
  assert_int_equal(calls, 2);
  assert_int_equal(lock_word(b) & HB__W_LIVE, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* hb_poll needs a waker called: the slot's hand-off calls none, so the
 * poll moves r to the queue first, and the grant calls its waker. */
static void count_wake(void *arg) { ++*(int *)arg; }

static void poll_moves_it_to_the_queue(void **state) {
  (void)state;
  int calls = 0, wakes = 0;
  hb_visitor w, r;
  hb_buf *b = held_with_r_in_slot(&w, &r, &calls);
  assert_int_equal(hb_poll(&r, (hb_waker){count_wake, &wakes}, NULL),
                   HB_PENDING);
  assert_false(in_slot(&r));
  assert_int_equal(qlen(b), 1);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_int_equal(wakes, 1);
  assert_int_equal(hb_poll(&r, (hb_waker){count_wake, &wakes}, NULL), HB_OK);
  assert_int_equal(calls, 2);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Detached from the slot: run by the release that grants it. */
static void done_note(hb_visitor *v, int status, int result, void *arg) {
  (void)v;
  (void)result;
  *(int *)arg = status == HB_OK ? 1 : -1;
}

static void detached_from_the_slot(void **state) {
  (void)state;
  int calls = 0, done = 0;
  hb_visitor w, r;
  hb_buf *b = held_with(&w, &r, &calls, false);
  assert_int_equal(hb_visit_detached(&r, 0, cb_count, &calls, done_note, &done),
                   HB_OK);
  assert_false(in_slot(&r));
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_int_equal(done, 1);
  assert_int_equal(calls, 2);
  assert_int_equal(hb_free(b), HB_OK);
}

/* hb_block_on on another thread, the release here: the driver runs r,
 * spinning in the slot or (past its budget) from the queue. */
typedef struct {
  hb_visitor *r;
  int rc;
} drive_ctx;

static void *block_on_r(void *arg) {
  drive_ctx *d = arg;
  d->rc = hb_block_on(d->r, NULL);
  return NULL;
}

static void block_on_runs_on_the_handoff(void **state) {
  (void)state;
  for (int late = 0; late < 2; late++) {
    int calls = 0;
    hb_visitor w, r;
    hb_buf *b = held_with_r_in_slot(&w, &r, &calls);
    drive_ctx d = {&r, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, block_on_r, &d), 0);
    while (!hb__load_parked(&r)) {
    }
    if (late) sleep_ms(5); /* past the spin budget: from the queue */
    assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(d.rc, HB_OK);
    assert_int_equal(calls, 2);
    assert_int_equal(lock_word(b) & HB__W_LIVE, 0);
    assert_int_equal(hb_free(b), HB_OK);
  }
}

/* SHUTDOWN with the driver in the slot: the cancel returns only once the
 * driver has let go, so the buffer may be freed at once; under ASan a
 * touch after that is a report.  While it spins, and after it moved to
 * the queue and went to sleep. */
static void cancel_free_join_with_the_driver_in_the_slot(void **state) {
  (void)state;
  for (int late = 0; late < 2; late++) {
    int calls = 0;
    hb_visitor w, r;
    hb_buf *b = held_with_r_in_slot(&w, &r, &calls);
    drive_ctx d = {&r, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, block_on_r, &d), 0);
    while (!hb__load_parked(&r)) {
    }
    if (late) sleep_ms(5);
    assert_int_equal(hb_cancel(&r), HB_OK);
    assert_false(hb__load_parked(&r)); /* the driver has let go */
    assert_int_equal(hb_cancel(&w), HB_OK);
    assert_int_equal(hb_free(b), HB_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(d.rc, HB_ECANCELED);
    assert_int_equal(calls, 0);
  }
}

/* Threads casting, visiting and driving futures on one buffer in every
 * way -- hb_block_on, hb_try_visit in a loop, hb_poll with a waker, a
 * cancel at once -- so that the slot's hand-off, its claims and its
 * demotions meet: writers alone, every visit run or cancelled exactly
 * once, the counts in hb_stats, the lock free at the end.  A hang (a lost
 * turn) is caught by the alarm. */
#define MIX_THREADS 3
#define MIX_ROUNDS 30000
typedef struct {
  hb_buf *b;
  pthread_barrier_t start;
  hb_excl x;    /* the visits that ran */
  long cancels; /* atomic */
  long slotted; /* atomic: casts that took the slot */
  int bad;      /* atomic: a call failed (2, 3) */
} mix_ctx;

/* A while inside, so that the others find the turn taken. */
static void mix_dwell(void) {
  for (volatile int i = 0; i < 300; i++) {
  }
}

static int mix_visit(hb_view *view, void *arg, bool write) {
  (void)view;
  mix_ctx *c = arg;
  hb_excl_enter(&c->x, write);
  mix_dwell();
  hb_excl_leave(&c->x, write);
  return 0;
}

static int mix_write(hb_view *view, void *arg) {
  return mix_visit(view, arg, true);
}

static int mix_read(hb_view *view, void *arg) {
  return mix_visit(view, arg, false);
}

static void flag_wake(void *arg) {
  __atomic_store_n((int *)arg, 1, __ATOMIC_RELEASE);
}

static void *mix_thread(void *arg) {
  mix_ctx *c = arg;
  unsigned seed = (unsigned)(uintptr_t)&seed;
  pthread_barrier_wait(&c->start);
  for (int i = 0; i < MIX_ROUNDS; i++) {
    seed = seed * 1103515245u + 12345u;
    unsigned pick = (seed >> 16) % 20;
    bool write = (seed >> 8) & 1;
    hb_visitor v;
    int rc = write ? HB_CAST_MUT(&v, c->b, uint8_t) : HB_CAST(&v, c->b, uint8_t);
    if (rc == HB_OK && in_slot(&v))
      __atomic_fetch_add(&c->slotted, 1, __ATOMIC_RELAXED);
    if (rc == HB_OK)
      rc = hb_visit(&v, 0, write ? mix_write : mix_read, c);
    if (rc != HB_OK) {
      __atomic_store_n(&c->bad, 2, __ATOMIC_RELAXED);
      break;
    }
    if (pick < 1) { /* cancel at once; it may have been granted */
      rc = hb_cancel(&v);
      if (rc == HB_OK) __atomic_fetch_add(&c->cancels, 1, __ATOMIC_RELAXED);
      else rc = hb_block_on(&v, NULL);
    } else if (pick < 3) { /* try until it runs */
      while ((rc = hb_try_visit(&v, NULL)) == HB_EAGAIN) sched_yield();
    } else if (pick < 5) { /* poll, woken */
      int woke = 0;
      while ((rc = hb_poll(&v, (hb_waker){flag_wake, &woke}, NULL)) ==
             HB_PENDING) {
        while (!__atomic_load_n(&woke, __ATOMIC_ACQUIRE)) sched_yield();
        woke = 0;
      }
    } else {
      rc = hb_block_on(&v, NULL);
    }
    if (rc != HB_OK) {
      __atomic_store_n(&c->bad, 3, __ATOMIC_RELAXED);
      break;
    }
  }
  return NULL;
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "test_nextv: a test hung (a lost turn)\n";
  if (write(2, msg, sizeof msg - 1) < 0) {
  }
  _exit(1);
}

static void futures_in_every_way(void **state) {
  (void)state;
  mix_ctx c = {.b = hb_new(16)};
  assert_non_null(c.b);
  assert_int_equal(pthread_barrier_init(&c.start, NULL, MIX_THREADS), 0);
  signal(SIGALRM, on_alarm);
  alarm(120);
  pthread_t t[MIX_THREADS];
  for (int i = 0; i < MIX_THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, mix_thread, &c), 0);
  for (int i = 0; i < MIX_THREADS; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  alarm(0);
  pthread_barrier_destroy(&c.start);
  assert_int_equal(c.bad, 0);
  assert_int_equal(c.x.bad, 0);
  print_message("%ld of %d casts took the slot\n", c.slotted,
                MIX_THREADS * MIX_ROUNDS);
  long runs = c.x.writes + c.x.reads;
  assert_int_equal(runs + c.cancels, (long)MIX_THREADS * MIX_ROUNDS);
  hb_stats st;
  assert_int_equal(hb_stats_get(c.b, &st), HB_OK);
  assert_int_equal(st.visits_run, (uint64_t)runs);
  assert_int_equal(st.visits_cancelled, (uint64_t)c.cancels);
  assert_int_equal(lock_word(c.b) & HB__W_LIVE, 0);
  assert_int_equal(qlen(c.b), 0);
  assert_int_equal(hb_free(c.b), HB_OK);
}

/* The race of rule 7 against the claim, round after round: the driver
 * spins in the slot on one thread; on another, the holder's release hands
 * off and a cancel follows at once, whose demotion races the driver's
 * claim.  Exactly one of "ran" and "cancelled" in every round, the two
 * answers agreeing, the lock free, and the buffer freed at once (ASan sees
 * a touch after that).  Two threads, so that both run on a 2-core
 * machine. */
#define RACE_ROUNDS 3000
typedef struct {
  hb_buf *b;
  hb_visitor w, r;
  int arrived; /* atomic: a spinning start line (a sleeping barrier would
                  wake the threads tens of microseconds apart) */
  int calls, drive_rc, cancel_rc;
  unsigned delay, release_delay;
} race_ctx;

static void race_pause(unsigned n) {
  for (volatile unsigned i = 0; i < n; i++) {
  }
}

static void race_start(race_ctx *c) {
  __atomic_fetch_add(&c->arrived, 1, __ATOMIC_ACQ_REL);
  while (__atomic_load_n(&c->arrived, __ATOMIC_ACQUIRE) < 2) sched_yield();
}

static void *race_driver(void *arg) {
  race_ctx *c = arg;
  race_start(c);
  c->drive_rc = hb_block_on(&c->r, NULL);
  return NULL;
}

static void *race_canceller(void *arg) {
  race_ctx *c = arg;
  race_start(c);
  race_pause(c->release_delay);
  if (hb_try_visit(&c->w, NULL) != HB_OK) abort(); /* hands off to r */
  race_pause(c->delay);
  c->cancel_rc = hb_cancel(&c->r);
  return NULL;
}

static void cancel_races_the_claim(void **state) {
  (void)state;
  unsigned seed = 12345u;
  int cancelled = 0;
  signal(SIGALRM, on_alarm);
  alarm(120);
  for (int i = 0; i < RACE_ROUNDS; i++) {
    race_ctx c = {.drive_rc = -100, .cancel_rc = -100};
    c.b = held_with(&c.w, &c.r, &c.calls, true);
    seed = seed * 1103515245u + 12345u;
    c.delay = (seed >> 16) % 400;
    c.release_delay = (seed >> 4) % 2000;
    pthread_t d, k;
    assert_int_equal(pthread_create(&d, NULL, race_driver, &c), 0);
    assert_int_equal(pthread_create(&k, NULL, race_canceller, &c), 0);
    assert_int_equal(pthread_join(k, NULL), 0);
    assert_int_equal(pthread_join(d, NULL), 0);
    if (c.cancel_rc == HB_OK) {
      cancelled++;
      assert_int_equal(c.drive_rc, HB_ECANCELED);
      assert_int_equal(c.calls, 1); /* w's only */
    } else {
      if (c.cancel_rc != HB_EBUSY && c.cancel_rc != HB_ESTATE)
        fail_msg("round %d: hb_cancel answered %d", i, c.cancel_rc);
      assert_int_equal(c.drive_rc, HB_OK);
      assert_int_equal(c.calls, 2);
    }
    assert_int_equal(lock_word(c.b) & HB__W_LIVE, 0);
    assert_int_equal(hb_free(c.b), HB_OK);
  }
  alarm(0);
  print_message("%d of %d rounds cancelled, the others ran\n", cancelled,
                RACE_ROUNDS);
}

/* A cancel that waits for the visitor's parked driver to leave, while that
 * driver, told "cancelled", casts the same visitor again at once and parks
 * on it: the cancel must not sleep on the new visit, whose driver drops
 * SLEEPER when its grant claims it (hb__drive_present) and wakes nobody.
 * Found by an adversarial program cancelling other threads' visitors; hung
 * in most of 50 rounds before the fix (caught by the alarm). */
#define RECAST_ROUNDS 50
typedef struct {
  hb_buf *b;
  hb_visitor h, v;
  int calls, first_rc, second_rc, cancel_rc;
  int recast; /* atomic: the driver's second visit is cast and armed */
} recast_ctx;

static void *recast_driver(void *arg) {
  recast_ctx *c = arg;
  c->first_rc = hb_block_on(&c->v, NULL);
  if (HB_CAST_MUT(&c->v, c->b, uint8_t) != HB_OK ||
      hb_visit(&c->v, 0, cb_count, &c->calls) != HB_OK)
    abort();
  __atomic_store_n(&c->recast, 1, __ATOMIC_RELEASE);
  c->second_rc = hb_block_on(&c->v, NULL);
  return NULL;
}

static void *recast_canceller(void *arg) {
  recast_ctx *c = arg;
  c->cancel_rc = hb_cancel(&c->v);
  return NULL;
}

static void a_late_cancel_outlives_a_recast(void **state) {
  (void)state;
  signal(SIGALRM, on_alarm);
  alarm(60);
  for (int i = 0; i < RECAST_ROUNDS; i++) {
    recast_ctx c = {.b = hb_new(16)};
    assert_non_null(c.b);
    assert_int_equal(HB_CAST_MUT(&c.h, c.b, uint8_t), HB_OK); /* holds */
    assert_int_equal(hb_visit(&c.h, 0, cb_count, &c.calls), HB_OK);
    assert_int_equal(HB_CAST_MUT(&c.v, c.b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&c.v, 0, cb_count, &c.calls), HB_OK);
    pthread_t d, k;
    assert_int_equal(pthread_create(&d, NULL, recast_driver, &c), 0);
    while (!hb__load_parked(&c.v)) sched_yield();
    sleep_ms(1); /* past its spin: asleep */
    assert_int_equal(pthread_create(&k, NULL, recast_canceller, &c), 0);
    while (!__atomic_load_n(&c.recast, __ATOMIC_ACQUIRE)) sched_yield();
    sleep_ms(2); /* the canceller and the new driver both asleep */
    assert_int_equal(hb_try_visit(&c.h, NULL), HB_OK); /* hands off to v */
    assert_int_equal(pthread_join(d, NULL), 0);
    assert_int_equal(pthread_join(k, NULL), 0);
    assert_int_equal(c.cancel_rc, HB_OK);
    assert_int_equal(c.first_rc, HB_ECANCELED);
    assert_int_equal(c.second_rc, HB_OK);
    assert_int_equal(c.calls, 2); /* h's and v's second visit */
    assert_int_equal(lock_word(c.b) & HB__W_LIVE, 0);
    assert_int_equal(hb_free(c.b), HB_OK);
  }
  alarm(0);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_slot_is_first_in_line),
      cmocka_unit_test(try_finds_the_handoff),
      cmocka_unit_test(try_before_and_cancel_after),
      cmocka_unit_test(block_on_inside_a_sibling_runs_it),
      cmocka_unit_test(poll_moves_it_to_the_queue),
      cmocka_unit_test(detached_from_the_slot),
      cmocka_unit_test(block_on_runs_on_the_handoff),
      cmocka_unit_test(cancel_free_join_with_the_driver_in_the_slot),
      cmocka_unit_test(futures_in_every_way),
      cmocka_unit_test(cancel_races_the_claim),
      cmocka_unit_test(a_late_cancel_outlives_a_recast),
  };
  return hb_test_main("nextv", tests);
}
