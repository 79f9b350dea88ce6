/*
 * test_concurrent.c -- visitor mode across threads.  Every test is bounded:
 * waits that could hang on a bug time out and fail instead.  Run under
 * ThreadSanitizer by `make test`.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include "hb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hyperbuf.h"

/* ---- a barrier with a deadline ------------------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int need, arrived;
} rendezvous;

static void rv_init(rendezvous *r, int need) {
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  r->need = need;
  r->arrived = 0;
}

/* 0 when all `need` parties arrived within 5 s, ETIMEDOUT otherwise. */
static int rv_wait(rendezvous *r) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 5;
  int rc = 0;
  pthread_mutex_lock(&r->mu);
  r->arrived++;
  pthread_cond_broadcast(&r->cv);
  while (r->arrived < r->need && rc == 0)
    rc = pthread_cond_timedwait(&r->cv, &r->mu, &dl);
  pthread_mutex_unlock(&r->mu);
  return rc;
}

/* ---- two readers inside their callbacks at the same moment --------------- */

static int occupancy, max_occupancy;

static int cb_meet(hb_view *view, void *arg) {
  (void)view;
  int now = __atomic_add_fetch(&occupancy, 1, __ATOMIC_SEQ_CST);
  int m = __atomic_load_n(&max_occupancy, __ATOMIC_SEQ_CST);
  while (now > m && !__atomic_compare_exchange_n(&max_occupancy, &m, now, 0,
                                                 __ATOMIC_SEQ_CST,
                                                 __ATOMIC_SEQ_CST)) {
  }
  int rc = rv_wait(arg); /* both must be inside at once to get past this */
  __atomic_sub_fetch(&occupancy, 1, __ATOMIC_SEQ_CST);
  return rc == 0 ? 0 : -1;
}

typedef struct {
  hb_visitor v;
  int status, result;
} job;

static void *drive_block_on(void *arg) {
  job *j = arg;
  j->status = hb_block_on(&j->v, &j->result);
  return NULL;
}

static void two_readers_meet_inside(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  rendezvous rv;
  rv_init(&rv, 2);
  job j[2];
  memset(j, 0, sizeof j);
  occupancy = max_occupancy = 0;
  pthread_t t[2];
  for (int i = 0; i < 2; i++) {
    assert_int_equal(HB_CAST(&j[i].v, b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&j[i].v, 0, cb_meet, &rv), HB_OK);
  }
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&t[i], NULL, drive_block_on, &j[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(j[i].status, HB_OK);
    assert_int_equal(j[i].result, 0);
  }
  assert_int_equal(max_occupancy, 2);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- FIFO whichever thread drives first ---------------------------------- */

static char order_log[16];
static int order_n;
static pthread_mutex_t order_mu = PTHREAD_MUTEX_INITIALIZER;

static int cb_mark(hb_view *view, void *arg) {
  (void)view;
  pthread_mutex_lock(&order_mu);
  order_log[order_n++] = *(const char *)arg;
  pthread_mutex_unlock(&order_mu);
  return 0;
}

static void fifo_whichever_thread_drives_first(void **state) {
  (void)state;
  static const char marks[] = "ABCDEFGH";
  /* writers only, so the order is total */
  for (int round = 0; round < 20; round++) {
    hb_buf *b = hb_new(16);
    job j[8];
    memset(j, 0, sizeof j);
    memset(order_log, 0, sizeof order_log);
    order_n = 0;
    for (int i = 0; i < 8; i++) {
      assert_int_equal(HB_CAST_MUT(&j[i].v, b, uint8_t), HB_OK);
      assert_int_equal(hb_visit(&j[i].v, 0, cb_mark, (void *)&marks[i]),
                       HB_OK);
    }
    /* start the drivers in reverse order: the last ticket blocks first */
    pthread_t t[8];
    for (int i = 7; i >= 0; i--)
      assert_int_equal(pthread_create(&t[i], NULL, drive_block_on, &j[i]), 0);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 8; i++) assert_int_equal(j[i].status, HB_OK);
    assert_string_equal(order_log, "ABCDEFGH");
    assert_int_equal(hb_free(b), HB_OK);
  }
}

/* ---- poll from another thread, woken through a waker --------------------- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int woken;
  int calls;
} cv_waker;

static void cv_wake(void *arg) {
  cv_waker *w = arg;
  pthread_mutex_lock(&w->mu);
  w->woken = 1;
  w->calls++;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static int cv_wait(cv_waker *w) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 5;
  int rc = 0;
  pthread_mutex_lock(&w->mu);
  while (!w->woken && rc == 0)
    rc = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
  w->woken = 0;
  pthread_mutex_unlock(&w->mu);
  return rc;
}

typedef struct {
  hb_visitor *v;
  cv_waker wk;
  pthread_t caller;
  int status, result, ran_here;
} poll_job;

static int cb_where(hb_view *view, void *arg) {
  (void)view;
  poll_job *p = arg;
  p->ran_here = !pthread_equal(pthread_self(), p->caller);
  return 11;
}

static void *drive_poll(void *arg) {
  poll_job *p = arg;
  hb_waker w = {cv_wake, &p->wk};
  for (;;) {
    p->status = hb_poll(p->v, w, &p->result);
    if (p->status != HB_PENDING) break;
    if (cv_wait(&p->wk) != 0) {
      p->status = -1000; /* timed out */
      break;
    }
  }
  return NULL;
}

static void poll_from_another_thread(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  poll_job pj;
  memset(&pj, 0, sizeof pj);
  pthread_mutex_init(&pj.wk.mu, NULL);
  pthread_cond_init(&pj.wk.cv, NULL);
  pj.v = &r;
  pj.caller = pthread_self();
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&r, 0, cb_where, &pj), HB_OK);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, drive_poll, &pj), 0);
  /* let the poller register its waker, then release the writer */
  struct timespec ms = {0, 20 * 1000 * 1000};
  nanosleep(&ms, NULL);
  int result;
  assert_int_equal(hb_visit(&w, 0, cb_where, &(poll_job){.caller = pthread_self()}), HB_OK);
  assert_int_equal(hb_try_visit(&w, &result), HB_OK);
  pthread_join(t, NULL);
  assert_int_equal(pj.status, HB_OK);
  assert_int_equal(pj.result, 11);
  assert_int_equal(pj.ran_here, 1); /* ran on the polling thread */
  assert_true(pj.wk.calls <= 1);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- hb_cancel from another thread wakes a blocked driver ---------------- */

static int cb_fail(hb_view *view, void *arg) {
  (void)view;
  (void)arg;
  return -1;
}

/* A writer w cast first, and behind it j's reader, armed with fn. */
static void writer_then_reader(hb_buf *b, hb_visitor *w, job *j,
                               hb_visit_fn fn) {
  memset(j, 0, sizeof *j);
  assert_int_equal(HB_CAST_MUT(w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&j->v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&j->v, 0, fn, NULL), HB_OK);
}

static void cancel_wakes_blocked_thread(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w = HB_VISITOR_INIT;
  job j;
  writer_then_reader(b, &w, &j, cb_fail);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, drive_block_on, &j), 0);
  struct timespec ms = {0, 20 * 1000 * 1000};
  nanosleep(&ms, NULL);
  assert_int_equal(hb_cancel(&j.v), HB_OK);
  pthread_join(t, NULL);
  assert_int_equal(j.status, HB_ECANCELED);
  assert_int_equal(hb_cancel(&w), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

/* hb_block_on replaces a waker an earlier hb_poll stored: the thread now
 * waits on the visitor itself, and the old waker is never called. */
static int dropped_wakes;
static void count_dropped(void *arg) {
  (void)arg;
  __atomic_fetch_add(&dropped_wakes, 1, __ATOMIC_SEQ_CST);
}

static int cb_one(hb_view *view, void *arg) {
  (void)view;
  (void)arg;
  return 1;
}

static void block_on_replaces_stored_waker(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w = HB_VISITOR_INIT;
  job j;
  writer_then_reader(b, &w, &j, cb_one);
  assert_int_equal(hb_poll(&j.v, (hb_waker){count_dropped, NULL}, NULL),
                   HB_PENDING);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, drive_block_on, &j), 0);
  struct timespec ms = {0, 20 * 1000 * 1000};
  nanosleep(&ms, NULL); /* long enough for it to be asleep */
  assert_int_equal(hb_visit(&w, 0, cb_one, NULL), HB_OK);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK); /* grants the reader */
  pthread_join(t, NULL);
  assert_int_equal(j.status, HB_OK);
  assert_int_equal(j.result, 1);
  assert_int_equal(__atomic_load_n(&dropped_wakes, __ATOMIC_SEQ_CST), 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- detached visits run on the thread that grants them ------------------ */

typedef struct {
  pthread_t ran_on;
  int ran;
} where_ctx;

static int cb_note_thread(hb_view *view, void *arg) {
  (void)view;
  where_ctx *w = arg;
  w->ran_on = pthread_self();
  w->ran++;
  return 0;
}

typedef struct {
  hb_visitor *v;
  pthread_t self;
} writer_job;

static void *run_writer(void *arg) {
  writer_job *wj = arg;
  wj->self = pthread_self();
  hb_try_visit(wj->v, NULL);
  return NULL;
}

static void detached_runs_on_granting_thread(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w = HB_VISITOR_INIT, d = HB_VISITOR_INIT;
  where_ctx wc = {0};
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&d, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w, 0, cb_note_thread, &(where_ctx){0}), HB_OK);
  assert_int_equal(hb_visit_detached(&d, 0, cb_note_thread, &wc, NULL, NULL),
                   HB_OK);
  writer_job wj = {&w, pthread_self()};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, run_writer, &wj), 0);
  pthread_join(t, NULL);
  assert_int_equal(wc.ran, 1);
  assert_true(pthread_equal(wc.ran_on, wj.self));
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- a driver never finishes a visitor while its waker is being called -- */

typedef struct {
  int entered, returned;
} slow_waker;

static void slow_wake(void *arg) {
  slow_waker *w = arg;
  __atomic_store_n(&w->entered, 1, __ATOMIC_SEQ_CST);
  struct timespec ms = {0, 50 * 1000 * 1000};
  nanosleep(&ms, NULL);
  __atomic_store_n(&w->returned, 1, __ATOMIC_SEQ_CST);
}

static void *run_writer_visit(void *arg) {
  hb_try_visit(arg, NULL);
  return NULL;
}

static void *cancel_visit(void *arg) {
  hb_cancel(arg);
  return NULL;
}

static void no_finish_while_waker_runs(void **state) {
  (void)state;
  for (int by_cancel = 0; by_cancel < 2; by_cancel++) {
    hb_buf *b = hb_new(16);
    hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
    slow_waker sw = {0, 0};
    hb_waker wk = {slow_wake, &sw};
    assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
    assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&w, 0, cb_note_thread, &(where_ctx){0}), HB_OK);
    assert_int_equal(hb_visit(&r, 0, cb_note_thread, &(where_ctx){0}), HB_OK);
    assert_int_equal(hb_poll(&r, wk, NULL), HB_PENDING);
    pthread_t t;
    /* another thread grants r (the writer finishes) or cancels r */
    assert_int_equal(pthread_create(&t, NULL,
                                    by_cancel ? cancel_visit : run_writer_visit,
                                    by_cancel ? (void *)&r : (void *)&w),
                     0);
    while (!__atomic_load_n(&sw.entered, __ATOMIC_SEQ_CST)) sched_yield();
    /* the waker is running: a poll now must wait for it to return */
    int rc = hb_poll(&r, wk, NULL);
    assert_int_equal(__atomic_load_n(&sw.returned, __ATOMIC_SEQ_CST), 1);
    assert_int_equal(rc, by_cancel ? HB_ECANCELED : HB_OK);
    pthread_join(t, NULL);
    if (by_cancel) assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
    assert_int_equal(hb_free(b), HB_OK);
  }
}

/* ---- hb_write_now waits for the tickets before it ---------------------- */

typedef struct {
  hb_buf *b;
  int ran, status;
} now_job;

static int cb_mark_ran(hb_view *view, void *arg) {
  (void)view;
  __atomic_store_n(&((now_job *)arg)->ran, 1, __ATOMIC_SEQ_CST);
  return 0;
}

static void *write_now_thread(void *arg) {
  now_job *j = arg;
  j->status = HB_WRITE_NOW(j->b, uint8_t, 0, cb_mark_ran, j, NULL);
  return NULL;
}

static void write_now_waits_its_turn(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor r = HB_VISITOR_INIT;
  now_job j = {b, 0, -1000};
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK); /* granted, not run */
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, write_now_thread, &j), 0);
  struct timespec ms = {0, 30 * 1000 * 1000};
  nanosleep(&ms, NULL);
  assert_int_equal(__atomic_load_n(&j.ran, __ATOMIC_SEQ_CST), 0);
  assert_int_equal(hb_visit(&r, 0, cb_note_thread, &(where_ctx){0}), HB_OK);
  assert_int_equal(hb_try_visit(&r, NULL), HB_OK); /* lets the writer go */
  pthread_join(t, NULL);
  assert_int_equal(j.status, HB_OK);
  assert_int_equal(j.ran, 1);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- stress: mixed visits, random cancels and aborts, checksums ---------- */

typedef struct {
  uint64_t seq;
  uint64_t value;
  uint64_t check;
} record;

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  return x;
}

typedef struct {
  hb_buf *b;
  unsigned seed;
  int iters;
  /* counts kept by this thread */
  uint64_t writes, aborts, reads, cancels, records, bad;
  uint64_t nows; /* iterations that gave a ticket up for a one-call visit */
} worker;

typedef struct {
  worker *w;
  int n;
  int abort_it;
} write_ctx;

static int cb_stress_write(hb_view *v, void *arg) {
  write_ctx *c = arg;
  size_t n;
  const record *all = HB_READ_ARRAY(v, record, &n);
  if (all == NULL) return -99;
  uint64_t next = n; /* records are numbered 0, 1, 2, ... */
  for (int i = 0; i < c->n; i++) {
    record r;
    r.seq = next + (uint64_t)i;
    r.value = mix(r.seq ^ (uint64_t)c->w->seed);
    r.check = mix(r.seq) ^ r.value;
    if (hb_view_append(v, &r) != HB_OK) return -98;
  }
  return c->abort_it ? -1 : c->n;
}

static int cb_stress_read(hb_view *v, void *arg) {
  worker *w = arg;
  size_t n;
  const record *all = HB_READ_ARRAY(v, record, &n);
  size_t nb;
  (void)hb_view_read_bytes(v, &nb);
  if (nb != n * sizeof(record)) w->bad++;
  for (size_t i = 0; i < n; i++)
    if (all[i].seq != i || (mix(all[i].seq) ^ all[i].value) != all[i].check)
      w->bad++;
  return (int)(n & 0x3fffffff);
}

static void *stress_thread(void *arg) {
  worker *w = arg;
  unsigned s = w->seed;
  for (int i = 0; i < w->iters; i++) {
    hb_visitor v = HB_VISITOR_INIT;
    int kind = rand_r(&s) % 10;
    int result = 0, rc;
    if (kind < 4) { /* write 1..3 records, sometimes abort */
      write_ctx c = {w, 1 + rand_r(&s) % 3, rand_r(&s) % 5 == 0};
      assert_int_equal(HB_CAST_MUT(&v, w->b, record), HB_OK);
      assert_int_equal(hb_visit(&v, sizeof(record) * 2, cb_stress_write, &c),
                       HB_OK);
      if (rand_r(&s) % 8 == 0) {
        rc = hb_cancel(&v);
        assert_int_equal(rc, HB_OK);
        w->cancels++;
        continue;
      }
      if (rand_r(&s) % 3 == 0) {
        /* the one-call form for this write: give the ticket back unused
         * and take a new one (order is by cast, so this is a later one) */
        assert_int_equal(hb_cancel(&v), HB_OK);
        w->cancels++;
        w->nows++;
        rc = hb_write_now(w->b, HB_TYPE(record), sizeof(record) * 2,
                          cb_stress_write, &c, &result);
      } else {
        rc = hb_block_on(&v, &result);
      }
      assert_int_equal(rc, HB_OK);
      if (result < 0) {
        assert_int_equal(result, -1);
        w->aborts++;
      } else {
        w->records += (uint64_t)result;
      }
      w->writes++;
    } else { /* read and verify everything */
      assert_int_equal(HB_CAST(&v, w->b, record), HB_OK);
      assert_int_equal(hb_visit(&v, 0, cb_stress_read, w), HB_OK);
      if (rand_r(&s) % 8 == 0) {
        assert_int_equal(hb_cancel(&v), HB_OK);
        w->cancels++;
        continue;
      }
      int how = rand_r(&s) % 3;
      if (how == 0) {
        rc = hb_block_on(&v, &result);
      } else if (how == 1) {
        assert_int_equal(hb_cancel(&v), HB_OK);
        w->cancels++;
        w->nows++;
        rc = hb_read_now(w->b, HB_TYPE(record), cb_stress_read, w, &result);
      } else {
        poll_job pj;
        memset(&pj, 0, sizeof pj);
        pj.v = &v;
        pthread_mutex_init(&pj.wk.mu, NULL);
        pthread_cond_init(&pj.wk.cv, NULL);
        drive_poll(&pj);
        rc = pj.status;
        pthread_mutex_destroy(&pj.wk.mu);
        pthread_cond_destroy(&pj.wk.cv);
      }
      assert_int_equal(rc, HB_OK);
      w->reads++;
    }
  }
  return NULL;
}

static void stress_mixed_visits(void **state) {
  (void)state;
  enum { THREADS = 4, ITERS = 3000 };
  hb_buf *b = hb_new(0);
  worker w[THREADS];
  pthread_t t[THREADS];
  memset(w, 0, sizeof w);
  for (int i = 0; i < THREADS; i++) {
    w[i].b = b;
    w[i].seed = 0x9e3779b9u * (unsigned)(i + 1);
    w[i].iters = ITERS;
    assert_int_equal(pthread_create(&t[i], NULL, stress_thread, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);

  uint64_t writes = 0, aborts = 0, reads = 0, cancels = 0, records = 0,
           bad = 0, nows = 0;
  for (int i = 0; i < THREADS; i++) {
    writes += w[i].writes;
    aborts += w[i].aborts;
    reads += w[i].reads;
    cancels += w[i].cancels;
    records += w[i].records;
    bad += w[i].bad;
    nows += w[i].nows;
  }
  assert_int_equal(bad, 0);
  assert_int_equal(writes + reads + cancels, (uint64_t)THREADS * ITERS + nows);
  assert_true(nows > 0);
  /* the buffer holds exactly the committed records, all intact */
  assert_int_equal(hb_len(b), records * sizeof(record));
  const record *all = (const record *)hb_data(b);
  for (uint64_t i = 0; i < records; i++) {
    assert_int_equal(all[i].seq, i);
    assert_int_equal(mix(all[i].seq) ^ all[i].value, all[i].check);
  }
  hb_stats st;
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.visits_run, writes + reads);
  assert_int_equal(st.visits_cancelled, cancels);
  assert_int_equal(st.visits_aborted, aborts);
  print_message("stress: %llu writes (%llu aborted), %llu reads, %llu "
                "cancels, %llu records, longest queue %llu\n",
                (unsigned long long)writes, (unsigned long long)aborts,
                (unsigned long long)reads, (unsigned long long)cancels,
                (unsigned long long)records,
                (unsigned long long)st.longest_queue);
  assert_int_equal(hb_free(b), HB_OK);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(two_readers_meet_inside),
      cmocka_unit_test(fifo_whichever_thread_drives_first),
      cmocka_unit_test(poll_from_another_thread),
      cmocka_unit_test(cancel_wakes_blocked_thread),
      cmocka_unit_test(block_on_replaces_stored_waker),
      cmocka_unit_test(no_finish_while_waker_runs),
      cmocka_unit_test(write_now_waits_its_turn),
      cmocka_unit_test(detached_runs_on_granting_thread),
      cmocka_unit_test(stress_mixed_visits),
  };
  return hb_test_main("concurrent", tests);
}
