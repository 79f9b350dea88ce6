/*
 * test_soak.c -- a bounded soak of visitor mode: several threads, one
 * packet buffer, every record checksummed, every count reconciled.
 *
 * HB_SOAK_SECONDS sets the duration (default 2, at most 60): `make test`
 * runs it briefly in each build, CI's soak step runs it longer.
 *
 * Each thread loops until the deadline, choosing at random:
 *   - a write visit that appends 1..8 records of 32 bytes (its own id, a
 *     per-writer sequence number and a checksum); one in six aborts after
 *     appending records marked ABORTED, which must be rolled back;
 *   - a write visit that drains every record stored when it began (the
 *     consumer side of a pipeline, which keeps the buffer bounded);
 *   - a read visit that checks every record: its checksum, no ABORTED
 *     mark, and per writer, contiguous sequence numbers (a rolled-back or
 *     lost append would break the run);
 *   - a cast that is cancelled instead of armed, or an armed detached
 *     visit raced by an immediate hb_cancel (which may win or lose).
 * Visits are driven by hb_block_on, by hb_poll with an eventfd waker that
 * the thread sleeps on, by hb_try_visit with yields, or detached.  Inside
 * each callback an occupancy counter witnesses the lock: a writer is alone,
 * readers never overlap a writer.
 *
 * At the end: records committed - records drained == records stored; the
 * library's counters equal ours (visits run, cancelled, aborted); every
 * cast ended as run or cancelled.  The totals are printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define NTHREADS 4
#define REC 32
#define ABORTED 0xdeadu
#define COMMITTED 0x600du

typedef struct {
  uint32_t writer, seq, mark, crc;
  uint8_t payload[16];
} record;

_Static_assert(sizeof(record) == REC, "record is 32 bytes");

static uint32_t rec_crc(const record *r) {
  uint32_t h = 2166136261u; /* FNV-1a over everything but crc */
  const uint8_t *p = (const uint8_t *)r;
  for (size_t i = 0; i < REC; i++) {
    if (i >= offsetof(record, crc) && i < offsetof(record, crc) + 4) continue;
    h = (h ^ p[i]) * 16777619u;
  }
  return h;
}

/* ---- shared state ------------------------------------------------------- */

static hb_buf *buf;
static int occupancy; /* >0: readers inside; -1: a writer inside (atomic) */
static uint32_t next_seq[NTHREADS]; /* per writer, under the write ticket */

typedef struct {
  uint64_t ops, casts, runs, reads, writes, aborts, drains, cancels,
      cancel_lost, detached, polls_pending, records_committed,
      records_aborted, records_drained, records_checked, reserve_failed;
} totals;

static totals all;
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
  int id;
  uint64_t rng;
  int efd; /* this thread's eventfd: wakers and detached completions */
  totals t;
} worker;

static uint32_t rnd(worker *w) {
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 7;
  w->rng ^= w->rng << 17;
  return (uint32_t)(w->rng >> 16);
}

static void efd_wake(void *arg) {
  uint64_t one = 1;
  if (write(*(int *)arg, &one, sizeof one) != (ssize_t)sizeof one) abort();
}

static void efd_wait(int fd) {
  uint64_t v;
  if (read(fd, &v, sizeof v) != (ssize_t)sizeof v) abort();
}

/* ---- callbacks ---------------------------------------------------------- */

typedef struct {
  worker *w;
  int kind; /* 0 append, 1 append+abort, 2 drain */
  int n;
} write_job;

static void enter(int writer) {
  if (writer) {
    int zero = 0;
    if (!__atomic_compare_exchange_n(&occupancy, &zero, -1, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      fail_msg("writer entered with occupancy %d", zero);
  } else {
    int prev = __atomic_fetch_add(&occupancy, 1, __ATOMIC_ACQ_REL);
    if (prev < 0) fail_msg("reader entered beside a writer (%d)", prev);
  }
}

static void leave(int writer) {
  if (writer)
    __atomic_store_n(&occupancy, 0, __ATOMIC_RELEASE);
  else
    __atomic_fetch_sub(&occupancy, 1, __ATOMIC_ACQ_REL);
}

static uint64_t check_records(hb_view *view) {
  size_t n;
  const uint8_t *p = hb_view_read_bytes(view, &n);
  if (n % REC != 0) fail_msg("length %zu is not whole records", n);
  if (hb_view_len(view) != n / REC) fail_msg("view_len");
  int64_t last[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) last[i] = -1;
  for (size_t off = 0; off < n; off += REC) {
    record r;
    memcpy(&r, p + off, REC);
    if (r.crc != rec_crc(&r)) fail_msg("checksum at byte %zu", off);
    if (r.mark != COMMITTED) fail_msg("an aborted record is visible");
    if (r.writer >= NTHREADS) fail_msg("writer id %u", r.writer);
    if (last[r.writer] >= 0 && r.seq != (uint32_t)last[r.writer] + 1)
      fail_msg("writer %u: seq %u after %lld", r.writer, r.seq,
               (long long)last[r.writer]);
    last[r.writer] = r.seq;
  }
  return n / REC;
}

static int read_cb(hb_view *view, void *ctx) {
  worker *w = ctx;
  enter(0);
  w->t.records_checked += check_records(view);
  size_t wn;
  if (hb_view_write_bytes(view, &wn) != NULL) fail_msg("reader can write");
  leave(0);
  w->t.runs++;
  w->t.reads++;
  return 0;
}

static int write_cb(hb_view *view, void *ctx) {
  write_job *j = ctx;
  worker *w = j->w;
  enter(1);
  w->t.runs++;
  w->t.writes++;
  check_records(view);
  if (j->kind == 2) {
    size_t n;
    hb_view_read_bytes(view, &n);
    if (hb_view_drain(view, n) != HB_OK) fail_msg("drain");
    w->t.drains++;
    w->t.records_drained += n / REC;
    leave(1);
    return 0;
  }
  int abort_it = j->kind == 1;
  for (int i = 0; i < j->n; i++) {
    record r;
    r.writer = (uint32_t)w->id;
    r.seq = next_seq[w->id] + (uint32_t)i;
    r.mark = abort_it ? ABORTED : COMMITTED;
    for (int k = 0; k < 16; k++) r.payload[k] = (uint8_t)rnd(w);
    r.crc = rec_crc(&r);
    if (hb_view_append(view, &r) != HB_OK) fail_msg("append");
  }
  if (hb_view_bytes_written(view) != (size_t)j->n * REC)
    fail_msg("bytes_written");
  leave(1);
  if (abort_it) {
    w->t.aborts++;
    w->t.records_aborted += (uint64_t)j->n;
    return -100; /* any negative aborts; not an HB_E* code, to tell apart */
  }
  next_seq[w->id] += (uint32_t)j->n;
  w->t.records_committed += (uint64_t)j->n;
  return j->n;
}

static void on_done(hb_visitor *v, int status, int result, void *arg) {
  (void)v;
  (void)result;
  worker *w = arg;
  if (status != HB_OK && status != HB_ECANCELED) fail_msg("done %d", status);
  efd_wake(&w->efd);
}

/* ---- one iteration ------------------------------------------------------ */

static void drive(worker *w, hb_visitor *v, int how) {
  int res = 0, rc;
  switch (how) {
  case 0: rc = hb_block_on(v, &res); break;
  case 1:
    while ((rc = hb_poll(v, (hb_waker){efd_wake, &w->efd}, &res)) ==
           HB_PENDING) {
      w->t.polls_pending++;
      efd_wait(w->efd);
    }
    break;
  default:
    while ((rc = hb_try_visit(v, &res)) == HB_EAGAIN) sched_yield();
    break;
  }
  if (rc != HB_OK) fail_msg("driver %d returned %s", how, hb_err_name(rc));
  if (res == HB_ENOMEM) w->t.reserve_failed++;
}

static void step(worker *w) {
  hb_visitor v = HB_VISITOR_INIT;
  uint32_t r = rnd(w) % 100;
  int write = r < 45;
  write_job job = {w, 0, 1 + (int)(rnd(w) % 8)};
  if (write) {
    uint32_t k = rnd(w) % 12;
    job.kind = k < 2 ? 1 : k == 2 ? 2 : 0;
  }
  w->t.ops++;
  int rc = write ? HB_CAST_MUT(&v, buf, record) : HB_CAST(&v, buf, record);
  if (rc != HB_OK) fail_msg("cast: %s", hb_err_name(rc));
  w->t.casts++;
  hb_visit_fn fn = write ? write_cb : read_cb;
  void *ctx = write ? (void *)&job : (void *)w;
  size_t reserve = (size_t)job.n * REC;

  if (r >= 90 && r < 95) { /* cast, then give the ticket up */
    if (rnd(w) & 1) {
      if (hb_visit(&v, reserve, fn, ctx) != HB_OK) fail_msg("visit");
    }
    if (hb_cancel(&v) != HB_OK) fail_msg("cancel");
    w->t.cancels++;
    return;
  }
  if (r >= 95 || (r % 7) == 0) { /* detached, maybe raced by a cancel */
    w->t.detached++;
    if (hb_visit_detached(&v, reserve, fn, ctx, on_done, w) != HB_OK)
      fail_msg("visit_detached");
    if (r >= 95) {
      rc = hb_cancel(&v);
      if (rc == HB_OK)
        w->t.cancels++;
      else if (rc == HB_EBUSY || rc == HB_ESTATE)
        w->t.cancel_lost++; /* it ran (or is running) first */
      else
        fail_msg("cancel of a detached visit: %s", hb_err_name(rc));
    }
    efd_wait(w->efd); /* its done callback: v's storage is free after */
    return;
  }
  if (hb_visit(&v, reserve, fn, ctx) != HB_OK) fail_msg("visit");
  drive(w, &v, (int)(rnd(w) % 3));
}

static double deadline;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  while (now() < deadline) step(w);
  pthread_mutex_lock(&all_mu);
  uint64_t *dst = (uint64_t *)&all;
  const uint64_t *src = (const uint64_t *)&w->t;
  for (size_t i = 0; i < sizeof all / sizeof(uint64_t); i++) dst[i] += src[i];
  pthread_mutex_unlock(&all_mu);
  return NULL;
}

static void soak(void **state) {
  (void)state;
  double secs = 2;
  const char *env = getenv("HB_SOAK_SECONDS");
  if (env != NULL) secs = atof(env);
  if (secs < 0.1) secs = 0.1;
  if (secs > 60) secs = 60;

  buf = hb_new(0);
  assert_non_null(buf);
  worker ws[NTHREADS];
  pthread_t th[NTHREADS];
  deadline = now() + secs;
  for (int i = 0; i < NTHREADS; i++) {
    ws[i] = (worker){.id = i, .rng = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1)};
    ws[i].efd = eventfd(0, EFD_CLOEXEC);
    assert_true(ws[i].efd >= 0);
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    close(ws[i].efd);
  }

  /* Reconcile. */
  hb__check(buf);
  assert_int_equal(hb_len(buf) % REC, 0);
  assert_int_equal(hb_len(buf) / REC,
                   all.records_committed - all.records_drained);
  hb_stats st;
  assert_int_equal(hb_stats_get(buf, &st), HB_OK);
  assert_int_equal(st.visits_run, all.runs);
  assert_int_equal(st.visits_cancelled, all.cancels);
  assert_int_equal(st.visits_aborted, all.aborts);
  assert_int_equal(st.reserve_failed, all.reserve_failed);
  assert_int_equal(all.casts, all.runs + all.cancels + all.reserve_failed);
  assert_int_equal(occupancy, 0);
  uint64_t stored = 0;
  for (int i = 0; i < NTHREADS; i++) stored += next_seq[i];
  assert_int_equal(stored, all.records_committed);
  print_message(
      "soak: %.1fs, %d threads: %llu operations, %llu visits run (%llu "
      "reads, %llu writes: %llu aborted, %llu drains), %llu cancelled "
      "(%llu cancels lost to the run), %llu detached, %llu pending polls; "
      "records: %llu committed, %llu rolled back, %llu drained, %llu "
      "checked; longest queue %llu\n",
      secs, NTHREADS, (unsigned long long)all.ops,
      (unsigned long long)all.runs, (unsigned long long)all.reads,
      (unsigned long long)all.writes, (unsigned long long)all.aborts,
      (unsigned long long)all.drains, (unsigned long long)all.cancels,
      (unsigned long long)all.cancel_lost, (unsigned long long)all.detached,
      (unsigned long long)all.polls_pending,
      (unsigned long long)all.records_committed,
      (unsigned long long)all.records_aborted,
      (unsigned long long)all.records_drained,
      (unsigned long long)all.records_checked,
      (unsigned long long)st.longest_queue);
  assert_int_equal(hb_free(buf), HB_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(soak)};
  return cmocka_run_group_tests_name("soak", tests, NULL, NULL);
}
