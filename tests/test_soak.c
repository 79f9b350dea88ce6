/*
 * test_soak.c -- a bounded soak of visitor mode: several threads, two
 * packet buffers, every record checksummed, every count reconciled.
 *
 * HB_SOAK_SECONDS sets the duration (default 2, at most 60): `make test`
 * runs it briefly in each build, CI's soak step runs it longer.
 *
 * Buffer 1 starts life biased (see BIAS in src/bias.c): thread 0 alone
 * makes one-call visits on it (hb_read_now / hb_write_now) while the other
 * threads wait at a gate; then it opens the gate and keeps up its one-call
 * visits on buffer 1 while each other thread's first visit is a cast on
 * buffer 1, so the bias is revoked under load -- usually with a biased
 * visit in flight, whose hold moves into the lock word.  Where the bias is
 * available (not under ThreadSanitizer), buffer 1 must be biased after the
 * solo phase and not at the end.
 *
 * Then each thread loops until the deadline, on a buffer chosen at random,
 * choosing at random:
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
 * the thread sleeps on, by hb_try_visit with yields, or detached -- or, for
 * about a fifth of the visits, made in one call (hb_read_now, or
 * hb_write_now with a reservation for its appends), with the same
 * callbacks: appends, aborts and drains.  Inside each callback an
 * occupancy counter witnesses the lock: a writer is alone, readers never
 * overlap a writer.
 *
 * At the end, per buffer: records committed - records drained == records
 * stored; the library's counters equal ours (visits run, cancelled,
 * aborted, reservations failed); every cast and every one-call visit ended
 * as run or cancelled.  The totals are printed.
 */
#include "hb_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>


#define NTHREADS 4
#define NBUF 2
#define BIASED_BUF 1 /* starts life with thread 0's one-call visits */
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

typedef struct {
  hb_buf *b;
  int occupancy; /* >0: readers inside; -1: a writer inside (atomic) */
  uint32_t next_seq[NTHREADS]; /* per writer, under the write ticket */
} shared;

static shared bufs[NBUF];

typedef struct {
  uint64_t ops, casts, nows, now_reads, now_writes, runs, reads, writes,
      aborts, drains, cancels, cancel_lost, detached, polls_pending,
      records_committed, records_aborted, records_drained, records_checked,
      reserve_failed;
} totals;

static totals all[NBUF];
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;

/* The start: thread 0's solo one-call visits on BIASED_BUF, then the gate
 * opens for the others. */
static int gate_open;           /* atomic */
static uint64_t solo_visits;    /* before the gate opened */
static uint64_t overlap_visits; /* after it */
static int biased_after_solo;
static int revoked_in_flight; /* the gate visit saw the bias go */
static int moved_in_flight;   /* and then its hold moved, still inside */
static double revoke_wait;    /* how long the gate visit waited for it */

static double now(void);

typedef struct {
  int id;
  uint64_t rng;
  int efd; /* this thread's eventfd: wakers and detached completions */
  totals t[NBUF];
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
  shared *s;
  totals *t;
  int kind; /* writes: 0 append, 1 append+abort, 2 drain */
  int n;
  int gate; /* thread 0's visit that opens the gate (see solo_start) */
} job;

/* Inside the gate visit: let the others in, and wait (a while at most)
 * until one of their casts has revoked the bias, with this visit still in
 * flight.  The revoker clears BIASED first and reads our hold only after
 * its process-wide barrier, so we stay inside until it has decided: with
 * the visit still in flight it must find the hold and move it into the
 * lock word.  (Leaving at once would be correct too -- the revoker would
 * then find nothing held -- but would test less.) */
static void gate_linger(job *j) {
  double t0 = now();
  __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
  if (!biased_after_solo) return;
  while (hb__is_biased(j->s->b) && now() - t0 < 1.0) sched_yield();
  revoked_in_flight = !hb__is_biased(j->s->b);
  revoke_wait = now() - t0;
  double t1 = now();
  while (revoked_in_flight && !hb__bias_moved(j->s->b) && now() - t1 < 1.0)
    sched_yield();
  moved_in_flight = hb__bias_moved(j->s->b);
}

static void enter(shared *s, int writer) {
  if (writer) {
    int zero = 0;
    if (!__atomic_compare_exchange_n(&s->occupancy, &zero, -1, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      fail_msg("writer entered with occupancy %d", zero);
  } else {
    int prev = __atomic_fetch_add(&s->occupancy, 1, __ATOMIC_ACQ_REL);
    if (prev < 0) fail_msg("reader entered beside a writer (%d)", prev);
  }
}

static void leave(shared *s, int writer) {
  if (writer)
    __atomic_store_n(&s->occupancy, 0, __ATOMIC_RELEASE);
  else
    __atomic_fetch_sub(&s->occupancy, 1, __ATOMIC_ACQ_REL);
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
  job *j = ctx;
  enter(j->s, 0);
  if (j->gate) gate_linger(j);
  j->t->records_checked += check_records(view);
  size_t wn;
  if (hb_view_write_bytes(view, &wn) != NULL) fail_msg("reader can write");
  if (hb_view_drain(view, 0) != HB_ESTATE) fail_msg("reader can drain");
  leave(j->s, 0);
  j->t->runs++;
  j->t->reads++;
  return 0;
}

static int write_cb(hb_view *view, void *ctx) {
  job *j = ctx;
  worker *w = j->w;
  shared *s = j->s;
  enter(s, 1);
  if (j->gate) gate_linger(j);
  j->t->runs++;
  j->t->writes++;
  check_records(view);
  if (j->kind == 2) {
    size_t n;
    hb_view_read_bytes(view, &n);
    if (hb_view_drain(view, n + 1) != HB_ERANGE) fail_msg("drain too much");
    if (hb_view_drain(view, n) != HB_OK) fail_msg("drain");
    if (hb_view_bytes_written(view) != 0) fail_msg("drain counted");
    j->t->drains++;
    j->t->records_drained += n / REC;
    leave(s, 1);
    return 0;
  }
  int abort_it = j->kind == 1;
  for (int i = 0; i < j->n; i++) {
    record r;
    r.writer = (uint32_t)w->id;
    r.seq = s->next_seq[w->id] + (uint32_t)i;
    r.mark = abort_it ? ABORTED : COMMITTED;
    for (int k = 0; k < 16; k++) r.payload[k] = (uint8_t)rnd(w);
    r.crc = rec_crc(&r);
    if (hb_view_append(view, &r) != HB_OK) fail_msg("append");
  }
  if (hb_view_bytes_written(view) != (size_t)j->n * REC)
    fail_msg("bytes_written");
  leave(s, 1);
  if (abort_it) {
    j->t->aborts++;
    j->t->records_aborted += (uint64_t)j->n;
    return -100; /* any negative aborts; not an HB_E* code, to tell apart */
  }
  s->next_seq[w->id] += (uint32_t)j->n;
  j->t->records_committed += (uint64_t)j->n;
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

static void drive(worker *w, totals *t, hb_visitor *v, int how) {
  int res = 0, rc;
  switch (how) {
  case 0: rc = hb_block_on(v, &res); break;
  case 1:
    while ((rc = hb_poll(v, (hb_waker){efd_wake, &w->efd}, &res)) ==
           HB_PENDING) {
      t->polls_pending++;
      efd_wait(w->efd);
    }
    break;
  default:
    while ((rc = hb_try_visit(v, &res)) == HB_EAGAIN) sched_yield();
    break;
  }
  if (rc != HB_OK) fail_msg("driver %d returned %s", how, hb_err_name(rc));
  if (res == HB_ENOMEM) t->reserve_failed++;
}

/* A random job: a read (r >= 45) or a write of one of the three kinds. */
static job make_job(worker *w, int which, uint32_t r, int *write) {
  job j = {w, &bufs[which], &w->t[which], 0, 1 + (int)(rnd(w) % 8), 0};
  *write = r < 45;
  if (*write) {
    uint32_t k = rnd(w) % 12;
    j.kind = k < 2 ? 1 : k == 2 ? 2 : 0;
  }
  return j;
}

/* hb_read_now / hb_write_now: cast, visit and run in one call. */
static void one_call(worker *w, int which, int write, job *j) {
  totals *t = &w->t[which];
  int res = 0x5eed, rc;
  t->nows++;
  if (write) {
    t->now_writes++;
    rc = HB_WRITE_NOW(bufs[which].b, record, (size_t)j->n * REC, write_cb, j,
                      &res);
  } else {
    t->now_reads++;
    rc = HB_READ_NOW(bufs[which].b, record, read_cb, j, &res);
  }
  if (rc != HB_OK) fail_msg("one-call visit: %s", hb_err_name(rc));
  if (res == HB_ENOMEM) t->reserve_failed++;
}

static void step_on(worker *w, int which, int force_cast) {
  hb_visitor v = HB_VISITOR_INIT;
  uint32_t r = rnd(w) % 100;
  int write;
  job j = make_job(w, which, r, &write);
  totals *t = &w->t[which];
  t->ops++;
  if (!force_cast && rnd(w) % 5 == 0) {
    one_call(w, which, write, &j);
    return;
  }
  hb_buf *b = bufs[which].b;
  int rc = write ? HB_CAST_MUT(&v, b, record) : HB_CAST(&v, b, record);
  if (rc != HB_OK) fail_msg("cast: %s", hb_err_name(rc));
  t->casts++;
  hb_visit_fn fn = write ? write_cb : read_cb;
  size_t reserve = (size_t)j.n * REC;

  if (r >= 90 && r < 95) { /* cast, then give the ticket up */
    if (rnd(w) & 1) {
      if (hb_visit(&v, reserve, fn, &j) != HB_OK) fail_msg("visit");
    }
    if (hb_cancel(&v) != HB_OK) fail_msg("cancel");
    t->cancels++;
    return;
  }
  if (r >= 95 || (r % 7) == 0) { /* detached, maybe raced by a cancel */
    t->detached++;
    if (hb_visit_detached(&v, reserve, fn, &j, on_done, w) != HB_OK)
      fail_msg("visit_detached");
    if (r >= 95) {
      rc = hb_cancel(&v);
      if (rc == HB_OK)
        t->cancels++;
      else if (rc == HB_EBUSY || rc == HB_ESTATE)
        t->cancel_lost++; /* it ran (or is running) first */
      else
        fail_msg("cancel of a detached visit: %s", hb_err_name(rc));
    }
    efd_wait(w->efd); /* its done callback: v's storage is free after */
    return;
  }
  if (hb_visit(&v, reserve, fn, &j) != HB_OK) fail_msg("visit");
  drive(w, t, &v, (int)(rnd(w) % 3));
}

/* ---- the stream (issue 12) ----------------------------------------------
 *
 * A third buffer is a stream with a lag limit.  Every thread is one of its
 * registered consumers, and about one step in eight is a stream step: a
 * consumer's read visitor cast to wait for the next record (driven by
 * hb_block_on, hb_poll on the eventfd, or detached; or cancelled while it
 * waits), and, when no record is there yet, a write of 1..8 records of
 * its own first (whose commit grants the waiter, and maybe the other
 * threads' waiters).  Each consumer checks every record it sees once,
 * per writer in sequence, releases all of it (or half: the rest is seen
 * again and must not be counted twice).  At the end the stream is closed
 * and each consumer must have counted every committed record exactly
 * once. */
#define STREAM_LIMIT (64 * 1024)

static hb_buf *sbuf;
static uint64_t s_committed;          /* atomic: records in the stream */
static uint32_t s_seq[NTHREADS];      /* per writer, under the write ticket */

typedef struct {
  hb_consumer c;
  uint64_t counted_upto, count, bad, visits, cancels, full;
  uint32_t next_seq[NTHREADS];
  int half;
} sconsumer;

static sconsumer scons[NTHREADS];

typedef struct {
  int writer, n;
} sjob;

static int s_write_cb(hb_view *view, void *ctx) {
  sjob *j = ctx;
  for (int i = 0; i < j->n; i++) {
    record r = {(uint32_t)j->writer, s_seq[j->writer]++, COMMITTED, 0, {0}};
    memset(r.payload, (int)(r.seq & 0xff), sizeof r.payload);
    r.crc = rec_crc(&r);
    if (hb_view_append(view, &r) != HB_OK) return -1;
  }
  return 0;
}

static int s_read_cb(hb_view *view, void *ctx) {
  sconsumer *c = ctx;
  size_t n;
  const record *r = HB_READ_ARRAY(view, record, &n);
  uint64_t off = hb_view_offset(view);
  c->visits++;
  if (off > c->counted_upto) c->bad++; /* bytes lost under us */
  for (size_t i = 0; i < n; i++) {
    uint64_t at = off + i * REC;
    if (at < c->counted_upto) continue; /* seen before a half release */
    if (r[i].crc != rec_crc(&r[i]) || r[i].writer >= NTHREADS ||
        r[i].seq != c->next_seq[r[i].writer]++)
      c->bad++;
    c->count++;
    c->counted_upto = at + REC;
  }
  uint64_t upto = off + (c->half && n > 1 ? n / 2 : n) * REC;
  if (hb_consumer_release(&c->c, upto) != HB_OK) c->bad++;
  return 0;
}

static void s_job(worker *w, sjob *j) {
  j->writer = w->id;
  j->n = 1 + (int)(rnd(w) % 8);
}

static void s_count(int res, const sjob *j) {
  if (res == HB_ENOSPC) return;
  if (res != 0) fail_msg("stream write result %d", res);
  __atomic_fetch_add(&s_committed, (uint64_t)j->n, __ATOMIC_RELAXED);
}

/* One stream step.  A thread never blocks on its waiting reader (every
 * thread might, with nobody left to write), and never makes a blocking
 * write while its own reader may hold a granted ticket (the write would
 * wait for that ticket, which only this thread can finish). */
static void stream_step(worker *w) {
  sconsumer *c = &scons[w->id];
  hb_visitor v = HB_VISITOR_INIT, wr = HB_VISITOR_INIT;
  sjob j;
  s_job(w, &j);
  c->half = rnd(w) % 8 == 0;
  int how = (int)(rnd(w) % 4), res = 0;
  if (HB_CAST_CONSUMER(&v, &c->c, record, REC) != HB_OK) fail_msg("s cast");
  if (how == 3) { /* detached: runs on whichever thread's write grants it */
    if (hb_visit_detached(&v, 0, s_read_cb, c, on_done, w) != HB_OK)
      fail_msg("s detached");
    if (HB_WRITE_NOW(sbuf, record, (size_t)j.n * REC, s_write_cb, &j, &res) !=
        HB_OK)
      fail_msg("s write");
    s_count(res, &j);
    if (res == HB_ENOSPC && hb_cancel(&v) == HB_OK) c->cancels++;
    efd_wait(w->efd); /* its done: ran, or cancelled */
    return;
  }
  if (hb_visit(&v, 0, s_read_cb, c) != HB_OK) fail_msg("s visit");
  if (hb__load_granted(&v)) { /* the record is there: any driver */
    drive(w, &w->t[0], &v, how);
    return;
  }
  if (how == 2) { /* cancel it while it waits (or just after a grant) */
    if (hb_cancel(&v) != HB_OK) fail_msg("s cancel");
    c->cancels++;
    return;
  }
  /* A write visitor beside it, both driven without blocking: the reader
   * is granted right after the write commits (or after another's). */
  if (HB_CAST_MUT(&wr, sbuf, record) == HB_OK) {
    if (hb_visit(&wr, (size_t)j.n * REC, s_write_cb, &j) != HB_OK)
      fail_msg("s write visit");
  }
  int rdone = 0, wdone = 0;
  for (int spins = 0; !rdone || !wdone; spins++) {
    int rc;
    if (!wdone) {
      rc = hb_try_visit(&wr, &res);
      if (rc == HB_OK) {
        wdone = 1;
        s_count(res, &j);
        if (res == HB_ENOSPC && !rdone && hb_cancel(&v) == HB_OK) {
          c->cancels++;
          c->full++;
          rdone = 1;
        }
      } else if (rc != HB_EAGAIN) {
        fail_msg("s try writer: %s", hb_err_name(rc));
      }
    }
    if (!rdone) {
      rc = how == 1 ? hb_poll(&v, (hb_waker){NULL, NULL}, NULL)
                    : hb_try_visit(&v, NULL);
      if (rc == HB_OK) rdone = 1;
      else if (rc != HB_EAGAIN && rc != HB_PENDING)
        fail_msg("s try reader: %s", hb_err_name(rc));
    }
    if (spins > 64) sched_yield();
  }
}

static double deadline;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Thread 0's start: one-call visits alone on BIASED_BUF (biased to it),
 * then one more that opens the gate from inside its callback and lingers
 * there until the others' first casts have revoked the bias, then more
 * one-call visits on BIASED_BUF beside the others' first visits. */
static void solo_start(worker *w) {
  double solo_end = now() + (deadline - now()) * 0.05;
  if (solo_end > now() + 0.2) solo_end = now() + 0.2;
  int write;
  job j;
  do {
    j = make_job(w, BIASED_BUF, rnd(w) % 100, &write);
    w->t[BIASED_BUF].ops++;
    one_call(w, BIASED_BUF, write, &j);
    solo_visits++;
  } while (now() < solo_end || solo_visits < 100);
  biased_after_solo = hb__is_biased(bufs[BIASED_BUF].b);
  j = make_job(w, BIASED_BUF, rnd(w) % 100, &write);
  j.gate = 1;
  w->t[BIASED_BUF].ops++;
  one_call(w, BIASED_BUF, write, &j);
  for (; overlap_visits < 1000 && now() < deadline; overlap_visits++) {
    j = make_job(w, BIASED_BUF, rnd(w) % 100, &write);
    w->t[BIASED_BUF].ops++;
    one_call(w, BIASED_BUF, write, &j);
  }
}

static void *worker_main(void *arg) {
  worker *w = arg;
  if (w->id == 0) {
    solo_start(w);
  } else {
    while (!__atomic_load_n(&gate_open, __ATOMIC_ACQUIRE)) sched_yield();
    step_on(w, BIASED_BUF, 1); /* a cast: revokes the bias if still there */
  }
  while (now() < deadline) {
    if (rnd(w) % 8 == 0)
      stream_step(w);
    else
      step_on(w, (int)(rnd(w) % NBUF), 0);
  }
  pthread_mutex_lock(&all_mu);
  for (int k = 0; k < NBUF; k++) {
    uint64_t *dst = (uint64_t *)&all[k];
    const uint64_t *src = (const uint64_t *)&w->t[k];
    for (size_t i = 0; i < sizeof all[k] / sizeof(uint64_t); i++)
      dst[i] += src[i];
  }
  pthread_mutex_unlock(&all_mu);
  return NULL;
}

static void reconcile(int k, double secs) {
  shared *s = &bufs[k];
  totals *a = &all[k];
  hb__check(s->b);
  assert_int_equal(hb_len(s->b) % REC, 0);
  assert_int_equal(hb_len(s->b) / REC,
                   a->records_committed - a->records_drained);
  hb_stats st;
  assert_int_equal(hb_stats_get(s->b, &st), HB_OK);
  assert_int_equal(st.visits_run, a->runs);
  assert_int_equal(st.visits_cancelled, a->cancels);
  assert_int_equal(st.visits_aborted, a->aborts);
  assert_int_equal(st.reserve_failed, a->reserve_failed);
  assert_int_equal(a->casts + a->nows,
                   a->runs + a->cancels + a->reserve_failed);
  assert_int_equal(s->occupancy, 0);
  uint64_t stored = 0;
  for (int i = 0; i < NTHREADS; i++) stored += s->next_seq[i];
  assert_int_equal(stored, a->records_committed);
  print_message(
      "soak: buffer %d, %.1fs, %d threads: %llu operations, %llu visits run "
      "(%llu reads, %llu writes: %llu aborted, %llu drains), %llu one-call "
      "visits (%llu reads, %llu writes), %llu cancelled (%llu cancels lost "
      "to the run), %llu detached, %llu pending polls; records: %llu "
      "committed, %llu rolled back, %llu drained, %llu checked; longest "
      "queue %llu\n",
      k, secs, NTHREADS, (unsigned long long)a->ops,
      (unsigned long long)a->runs, (unsigned long long)a->reads,
      (unsigned long long)a->writes, (unsigned long long)a->aborts,
      (unsigned long long)a->drains, (unsigned long long)a->nows,
      (unsigned long long)a->now_reads, (unsigned long long)a->now_writes,
      (unsigned long long)a->cancels, (unsigned long long)a->cancel_lost,
      (unsigned long long)a->detached, (unsigned long long)a->polls_pending,
      (unsigned long long)a->records_committed,
      (unsigned long long)a->records_aborted,
      (unsigned long long)a->records_drained,
      (unsigned long long)a->records_checked,
      (unsigned long long)st.longest_queue);
}

/* Close the stream, let each consumer see the rest, count. */
static void reconcile_stream(void) {
  assert_int_equal(hb_stream_close(sbuf), HB_OK);
  uint64_t total = __atomic_load_n(&s_committed, __ATOMIC_RELAXED);
  hb_stream_info in;
  assert_int_equal(hb_stream_info_get(sbuf, &in), HB_OK);
  assert_int_equal(in.end, total * REC);
  assert_int_equal(in.waiting, 0);
  assert_true(in.peak <= STREAM_LIMIT + 8 * REC);
  for (int i = 0; i < NTHREADS; i++) {
    sconsumer *c = &scons[i];
    c->half = 0;
    hb_visitor v = HB_VISITOR_INIT;
    assert_int_equal(HB_CAST_CONSUMER(&v, &c->c, record, REC), HB_OK);
    assert_int_equal(hb_visit(&v, 0, s_read_cb, c), HB_OK);
    assert_int_equal(hb_try_visit(&v, NULL), HB_OK); /* closed: at once */
    assert_int_equal(c->bad, 0);
    assert_int_equal(c->count, total); /* every record exactly once */
    for (int k = 0; k < NTHREADS; k++)
      assert_int_equal(c->next_seq[k], s_seq[k]);
    assert_int_equal(hb_consumer_remove(&c->c), HB_OK);
  }
  unsigned long long visits = 0, cancels = 0, full = 0;
  for (int i = 0; i < NTHREADS; i++) {
    visits += scons[i].visits;
    cancels += scons[i].cancels;
    full += scons[i].full;
  }
  print_message("soak: stream: %llu records committed, seen by each of %d "
                "consumers exactly once in %llu visits; %llu waiting "
                "readers cancelled, %llu writes found it full; peak %zu B, "
                "%llu compactions\n",
                (unsigned long long)total, NTHREADS, visits, cancels, full,
                in.peak, (unsigned long long)in.compactions);
  assert_int_equal(hb_free(sbuf), HB_OK);
}

static void soak(void **state) {
  (void)state;
  double secs = 2;
  const char *env = getenv("HB_SOAK_SECONDS");
  if (env != NULL) secs = atof(env);
  if (secs < 0.1) secs = 0.1;
  if (secs > 60) secs = 60;

  for (int k = 0; k < NBUF; k++) {
    bufs[k].b = hb_new(0);
    assert_non_null(bufs[k].b);
  }
  sbuf = hb_new(4096);
  assert_non_null(sbuf);
  assert_int_equal(hb_stream_open(sbuf, STREAM_LIMIT), HB_OK);
  for (int i = 0; i < NTHREADS; i++)
    assert_int_equal(hb_consumer_add(sbuf, &scons[i].c), HB_OK);
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

  /* The bias of BIASED_BUF: on after the solo phase, revoked at the end
   * (the other threads' first visits were casts on it). */
  int avail = hb__bias_available();
  hb_buf *bb = bufs[BIASED_BUF].b;
  if (!avail)
    print_message(
        "soak: buffer %d: bias off in this build; %llu one-call "
        "visits alone, then %llu beside the others' first\n",
        BIASED_BUF, (unsigned long long)solo_visits,
        (unsigned long long)overlap_visits + 1);
  else
    print_message(
        "soak: buffer %d: %llu one-call visits alone (biased: "
        "%s), then one that let the others in and saw the bias "
        "revoked under it after %.1f us: %s, its hold moved into "
        "the lock word: %s; %llu more one-call visits beside the "
        "others' first\n",
        BIASED_BUF, (unsigned long long)solo_visits,
        biased_after_solo ? "yes" : "no", revoke_wait * 1e6,
        revoked_in_flight ? "yes" : "no", moved_in_flight ? "yes" : "no",
        (unsigned long long)overlap_visits);
  if (avail) assert_true(biased_after_solo);
  if (revoked_in_flight) assert_true(moved_in_flight);
  assert_false(hb__is_biased(bb));

  for (int k = 0; k < NBUF; k++) reconcile(k, secs);
  for (int k = 0; k < NBUF; k++) assert_int_equal(hb_free(bufs[k].b), HB_OK);
  reconcile_stream();
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(soak)};
  return hb_test_main("soak", tests);
}
