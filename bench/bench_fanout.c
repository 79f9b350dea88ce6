/*
 * bench_fanout.c -- W7, fan-out (issue 12): one producer, 4 consumers that
 * each see every record, 64-byte records, 2^22 records by default.
 *
 *   hyperbuf       a stream (src/stream.c): the producer appends a batch
 *                  per write visit (hb_write_now); each consumer is a
 *                  registered hb_consumer whose read visitor waits for the
 *                  next record (hb_cast_consumer + hb_block_on), verifies
 *                  every record its view shows and releases them.  The
 *                  library drops what all four released.
 *   mutex-condvar  the plain way: one array behind a pthread mutex, the
 *                  producer appends a batch and broadcasts on a condition
 *                  variable; each consumer waits on it, then verifies the
 *                  new records under the mutex (the producer may move or
 *                  reallocate the array) and advances its position; the
 *                  producer drops what every consumer passed.
 *
 * Both bound the buffer to the same lag (FO_LIMIT bytes of records not yet
 * released by the slowest consumer): the producer waits for room (a
 * condition variable; HyperBuf: the stream's room waker, on an eventfd).
 * Both producers make records in batches of 64 and, while they cannot
 * append (HyperBuf: the write visitor's turn has not come, hb_try_visit;
 * mutex: pthread_mutex_trylock fails), make the next batches, up to
 * FO_STAGE records, which the next append takes at once; then they wait.
 * Same records, same verification.
 *
 * Prints bench.h's CSV lines (workload W7-fanout, unit ns/record, lower is
 * better: time from the first append to the last consumer's last record,
 * per record) on stdout; on stderr each consumer's throughput and the
 * peak buffer size (the most unreleased bytes at once).
 * Environment: HB_BENCH_FANOUT_RECORDS (default 4194304),
 *              HB_BENCH_FANOUT_BATCH (records per write, default 64),
 *              HB_BENCH_FANOUT_ONLY (one implementation alone, for perf),
 *              HB_BENCH_FANOUT_WANT (records a consumer waits for, default
 *              1: both kinds of consumer wake for any new record).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#ifdef HB_BENCH_STREAM
#include <poll.h>
#include <sys/resource.h>

#include "hyperbuf.h"
#endif

#define FO_CONSUMERS 4
#ifndef FO_STAGE
#define FO_STAGE 1024 /* HyperBuf's producer: most records made ahead */
#endif
#ifndef FO_LIMIT
#define FO_LIMIT (1u << 20)
#endif /* most unreleased bytes: 16384 records */

/* One record, 64 bytes; check ties the payload to seq. */
struct fo_record {
  uint64_t seq;
  uint64_t check;
  uint64_t payload[6];
};

static void fo_make(struct fo_record *r, uint64_t seq) {
  r->seq = seq;
  uint64_t h = seq * 0x9e3779b97f4a7c15u;
  for (int i = 0; i < 6; i++) {
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9u;
    r->payload[i] = h;
  }
  r->check = h ^ seq;
}

/* Both producers' step: make the next batch into tmp[*staged ..] if
 * records are left and the stage has room.  @return whether it did. */
static int fo_stage(struct fo_record *tmp, size_t *staged, uint64_t *seq,
                    uint64_t records, size_t batch, size_t stage) {
  if (*seq >= records || *staged + batch > stage) return 0;
  size_t n = records - *seq < batch ? (size_t)(records - *seq) : batch;
  for (size_t i = 0; i < n; i++) fo_make(&tmp[*staged + i], *seq + i);
  *staged += n;
  *seq += n;
  return 1;
}

/* Verify n records that should carry seq, seq+1, ...; returns the bad ones
 * and adds the payloads into *sum (the sink). */
static uint64_t fo_verify(const struct fo_record *r, size_t n, uint64_t seq,
                          uint64_t *sum) {
  uint64_t bad = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t x = 0;
    for (int k = 0; k < 6; k++) x ^= r[i].payload[k];
    s += x;
    bad +=
        (r[i].seq != seq + i) | (r[i].check != (r[i].payload[5] ^ r[i].seq));
  }
  *sum += s;
  return bad;
}

struct fo_result {
  double seconds;                  /* first append to last record seen */
  double consumer_s[FO_CONSUMERS]; /* each consumer's own run */
  uint64_t seen[FO_CONSUMERS];     /* records each consumer verified */
  uint64_t bad, sum;
  size_t peak; /* most unreleased bytes at once */
  int ok;
};

/* A consumer waits until this many new records are there (or the end):
 * HyperBuf's reader with hb_cast_consumer's threshold, holding no ticket
 * meanwhile; the mutex version's in its condition-variable loop. */
static uint64_t fo_want = 1;

static uint64_t env_u64(const char *name, uint64_t dflt) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? strtoull(v, NULL, 10) : dflt;
}

/* ---- the plain version: mutex + condition variable broadcast ------------ */

struct mx_fan;

struct mx_cons {
  struct mx_fan *f;
  pthread_t thread;
  uint64_t next; /* record index: all below verified (under mu) */
  uint64_t seen, bad, sum;
  double t0, t1;
};

struct mx_fan {
  pthread_mutex_t mu;
  pthread_cond_t more;    /* broadcast: records appended, or the end */
  pthread_cond_t room;    /* signalled: a consumer advanced */
  struct fo_record *data; /* records [base, base + len) */
  size_t len, cap;
  uint64_t base;
  int done, producer_waits;
  size_t peak;
  struct mx_cons c[FO_CONSUMERS];
};

static uint64_t mx_low(const struct mx_fan *f) {
  uint64_t low = UINT64_MAX;
  for (int i = 0; i < FO_CONSUMERS; i++)
    if (f->c[i].next < low) low = f->c[i].next;
  return low;
}

static void *mx_cons_main(void *arg) {
  struct mx_cons *c = arg;
  struct mx_fan *f = c->f;
  c->t0 = (double)bench_now_ns() * 1e-9;
  pthread_mutex_lock(&f->mu);
  for (;;) {
    uint64_t end = f->base + f->len;
    while (end - c->next < fo_want && !f->done) {
      pthread_cond_wait(&f->more, &f->mu);
      end = f->base + f->len;
    }
    if (end == c->next) break; /* done, and everything seen */
    size_t n = (size_t)(end - c->next);
    c->bad += fo_verify(f->data + (c->next - f->base), n, c->next, &c->sum);
    c->seen += n;
    c->next = end;
    if (f->producer_waits) pthread_cond_signal(&f->room);
  }
  pthread_mutex_unlock(&f->mu);
  c->t1 = (double)bench_now_ns() * 1e-9;
  return NULL;
}

static int mx_fanout(uint64_t records, size_t batch, struct fo_result *r) {
  memset(r, 0, sizeof *r);
  struct mx_fan *f = calloc(1, sizeof *f);
  size_t stage = FO_STAGE > batch ? FO_STAGE : batch;
  struct fo_record *tmp = malloc(stage * sizeof *tmp);
  if (f == NULL || tmp == NULL) return -1;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->more, NULL);
  pthread_cond_init(&f->room, NULL);
  f->cap = FO_LIMIT / sizeof(struct fo_record);
  f->data = malloc(f->cap * sizeof *f->data);
  if (f->data == NULL) return -1;
  uint64_t t0 = bench_now_ns();
  for (int i = 0; i < FO_CONSUMERS; i++) {
    f->c[i].f = f;
    pthread_create(&f->c[i].thread, NULL, mx_cons_main, &f->c[i]);
  }
  size_t limit = FO_LIMIT / sizeof(struct fo_record);
  /* The same policy as HyperBuf's producer: while the mutex is taken (a
   * consumer verifies under it), make more records, up to FO_STAGE. */
  size_t staged = 0;
  for (uint64_t seq = 0; seq < records || staged > 0;) {
    if (fo_stage(tmp, &staged, &seq, records, batch, stage)) {
      if (pthread_mutex_trylock(&f->mu) != 0) continue;
    } else {
      pthread_mutex_lock(&f->mu);
    }
    /* Drop what every consumer passed; wait while the slowest lags. */
    for (;;) {
      uint64_t low = mx_low(f);
      if (low > f->base) {
        size_t drop = (size_t)(low - f->base);
        memmove(f->data, f->data + drop, (f->len - drop) * sizeof *f->data);
        f->len -= drop;
        f->base = low;
      }
      if (f->len + staged <= limit) break;
      f->producer_waits = 1;
      pthread_cond_wait(&f->room, &f->mu);
      f->producer_waits = 0;
    }
    memcpy(f->data + f->len, tmp, staged * sizeof *tmp);
    f->len += staged;
    if (f->len * sizeof *f->data > f->peak)
      f->peak = f->len * sizeof *f->data;
    pthread_mutex_unlock(&f->mu);
    pthread_cond_broadcast(&f->more);
    staged = 0;
  }
  pthread_mutex_lock(&f->mu);
  f->done = 1;
  pthread_mutex_unlock(&f->mu);
  pthread_cond_broadcast(&f->more);
  r->ok = 1;
  for (int i = 0; i < FO_CONSUMERS; i++) {
    pthread_join(f->c[i].thread, NULL);
    r->seen[i] = f->c[i].seen;
    r->bad += f->c[i].bad;
    r->sum += f->c[i].sum;
    r->consumer_s[i] = f->c[i].t1 - f->c[i].t0;
    if (f->c[i].seen != records) r->ok = 0;
  }
  r->seconds = (double)(bench_now_ns() - t0) * 1e-9;
  r->peak = f->peak;
  r->ok = r->ok && r->bad == 0;
  free(f->data);
  free(tmp);
  pthread_cond_destroy(&f->room);
  pthread_cond_destroy(&f->more);
  pthread_mutex_destroy(&f->mu);
  free(f);
  return 0;
}

#ifdef HB_BENCH_STREAM
/* ---- HyperBuf: a stream with 4 registered consumers ---------------------- */

struct hb_cons {
  hb_buf *b;
  hb_consumer c;
  hb_visitor v;
  pthread_t thread;
  uint64_t seen, bad, sum;
  int done;
  double t0, t1;
};

static int hb_cons_cb(hb_view *view, void *ctx) {
  struct hb_cons *c = ctx;
  size_t n;
  const struct fo_record *r = HB_READ_ARRAY(view, struct fo_record, &n);
  uint64_t off = hb_view_offset(view);
  c->bad += fo_verify(r, n, off / sizeof *r, &c->sum);
  c->seen += n;
  hb_consumer_release(&c->c, off + n * sizeof *r);
  if (hb_view_eof(view)) c->done = 1;
  return 0;
}

static void *hb_cons_main(void *arg) {
  struct hb_cons *c = arg;
  c->t0 = (double)bench_now_ns() * 1e-9;
  while (!c->done) {
    if (HB_CAST_CONSUMER(&c->v, &c->c, struct fo_record,
                         fo_want * sizeof(struct fo_record)) != HB_OK ||
        hb_visit(&c->v, 0, hb_cons_cb, c) != HB_OK ||
        hb_block_on(&c->v, NULL) != HB_OK) {
      c->bad++;
      break;
    }
  }
  c->t1 = (double)bench_now_ns() * 1e-9;
  return NULL;
}

/* What the producer has made and not yet appended; the callback runs on
 * the producer's thread (hb_try_visit / hb_block_on), so it appends
 * whatever is staged when the turn comes. */
struct hb_batch {
  const struct fo_record *r;
  const size_t *n;
};

static int hb_append_cb(hb_view *w, void *ctx) {
  const struct hb_batch *bt = ctx;
  return hb_view_append_all(w, bt->r, *bt->n);
}

static int hb_fanout(uint64_t records, size_t batch, struct fo_result *r) {
  memset(r, 0, sizeof *r);
  hb_buf *b = hb_new(FO_LIMIT);
  struct hb_cons *cs = calloc(FO_CONSUMERS, sizeof *cs);
  size_t stage = FO_STAGE > batch ? FO_STAGE : batch;
  struct fo_record *tmp = malloc(stage * sizeof *tmp);
  hb_fd_waker room;
  if (b == NULL || cs == NULL || tmp == NULL ||
      hb_stream_open(b, FO_LIMIT) != HB_OK ||
      hb_fd_waker_init(&room) != HB_OK ||
      hb_stream_room_waker(b, hb_fd_waker_get(&room)) != HB_OK)
    return -1;
  uint64_t t0 = bench_now_ns();
  for (int i = 0; i < FO_CONSUMERS; i++) {
    cs[i].b = b;
    hb_consumer_add(b, &cs[i].c);
    pthread_create(&cs[i].thread, NULL, hb_cons_main, &cs[i]);
  }
  /* The producer never blocks while it has records to make: its write
   * visitor waits for its turn (behind the consumers' read tickets) while
   * it makes the next batches, up to FO_STAGE records; then it parks. */
  hb_visitor w = HB_VISITOR_INIT;
  size_t staged = 0;
  int armed = 0;
  struct hb_batch bt = {tmp, &staged};
  for (uint64_t seq = 0; seq < records || staged > 0;) {
    fo_stage(tmp, &staged, &seq, records, batch, stage);
    if (!armed) {
      if (HB_CAST_MUT(&w, b, struct fo_record) != HB_OK ||
          hb_visit(&w, stage * sizeof *tmp, hb_append_cb, &bt) != HB_OK)
        return -1;
      armed = 1;
    }
    int result, st;
    if (seq < records && staged + batch <= stage)
      st = hb_try_visit(&w, &result); /* not our turn: make more */
    else
      st = hb_block_on(&w, &result); /* staging full, or nothing left */
    if (st == HB_EAGAIN) continue;
    if (st != HB_OK) return -1;
    armed = 0;
    if (result == HB_ENOSPC) {
      /* Full: sleep until the room waker says the slowest caught up. */

      struct pollfd pf = {room.fd, POLLIN, 0};
      poll(&pf, 1, -1);
      hb_fd_waker_drain(&room);
      continue;
    }
    if (result != HB_OK) return -1;
    staged = 0;
  }
  hb_stream_close(b);
  r->ok = 1;
  for (int i = 0; i < FO_CONSUMERS; i++) {
    pthread_join(cs[i].thread, NULL);
    r->seen[i] = cs[i].seen;
    r->bad += cs[i].bad;
    r->sum += cs[i].sum;
    r->consumer_s[i] = cs[i].t1 - cs[i].t0;
    if (cs[i].seen != records) r->ok = 0;
  }
  r->seconds = (double)(bench_now_ns() - t0) * 1e-9;
  hb_stream_info in;
  hb_stream_info_get(b, &in);
  r->peak = in.peak;
  r->ok = r->ok && r->bad == 0 && in.end == records * sizeof *tmp;
  for (int i = 0; i < FO_CONSUMERS; i++) hb_consumer_remove(&cs[i].c);
  hb_free(b);
  hb_fd_waker_close(&room);
  free(tmp);
  free(cs);
  return 0;
}

/* ---- idle cost: 4 consumers waiting 1 s on an idle stream ---------------- */

static pthread_barrier_t idle_gate;

static void *idle_main(void *arg) {
  struct hb_cons *c = arg;
  pthread_barrier_wait(&idle_gate);
  while (!c->done) {
    if (HB_CAST_CONSUMER(&c->v, &c->c, struct fo_record,
                         sizeof(struct fo_record)) != HB_OK ||
        hb_visit(&c->v, 0, hb_cons_cb, c) != HB_OK ||
        hb_block_on(&c->v, NULL) != HB_OK)
      break;
  }
  return NULL;
}

static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* CPU microseconds the process used while 4 consumers waited for 1 s
 * (from the moment they were released to cast, to the end of the second;
 * this thread sleeps meanwhile). */
static double hb_idle_cost(void) {
  hb_buf *b = hb_new(4096);
  struct hb_cons cs[FO_CONSUMERS];
  memset(cs, 0, sizeof cs);
  if (b == NULL || hb_stream_open(b, 0) != HB_OK) return -1;
  pthread_barrier_init(&idle_gate, NULL, FO_CONSUMERS + 1);
  for (int i = 0; i < FO_CONSUMERS; i++) {
    hb_consumer_add(b, &cs[i].c);
    pthread_create(&cs[i].thread, NULL, idle_main, &cs[i]);
  }
  double c0 = cpu_us();
  pthread_barrier_wait(&idle_gate);
  struct timespec ts = {1, 0};
  while (nanosleep(&ts, &ts) != 0) {
  }
  double used = cpu_us() - c0;
  hb_stream_info in;
  hb_stream_info_get(b, &in);
  if (in.waiting != FO_CONSUMERS) used = -1; /* they must all be waiting */
  hb_stream_close(b);
  for (int i = 0; i < FO_CONSUMERS; i++) {
    pthread_join(cs[i].thread, NULL);
    hb_consumer_remove(&cs[i].c);
  }
  pthread_barrier_destroy(&idle_gate);
  hb_free(b);
  return used;
}
#endif /* HB_BENCH_STREAM */

/* ---- the run ------------------------------------------------------------ */

static void fo_report(const char *impl, uint64_t records,
                      const struct fo_result *r) {
  bench_print("W7-fanout", impl, "ns/record",
              r->seconds * 1e9 / (double)records, r->sum);
  fprintf(stderr,
          "  %-14s %8.2f M records/s in all; peak buffer %zu B;"
          " per consumer (M records/s):",
          impl, (double)records / r->seconds / 1e6, r->peak);
  for (int i = 0; i < FO_CONSUMERS; i++)
    fprintf(stderr, " %.2f", (double)r->seen[i] / r->consumer_s[i] / 1e6);
  fprintf(stderr, "\n");
}

typedef int (*fo_impl_fn)(uint64_t records, size_t batch,
                          struct fo_result *r);

static int fo_measure(const char *impl, fo_impl_fn fn, uint64_t records,
                      size_t batch, struct fo_result *r) {
  /* HB_BENCH_FANOUT_ONLY=impl runs that one alone (for perf); the other
   * then reports a zero result. */
  const char *only = getenv("HB_BENCH_FANOUT_ONLY");
  if (only != NULL && *only != '\0' && strcmp(only, impl) != 0) {
    memset(r, 0, sizeof *r);
    r->seconds = 1;
    return 0;
  }
  if (fn(records, batch, r) != 0 || !r->ok) {
    fprintf(stderr, "bench_fanout: %s: FAILED (%" PRIu64 " bad)\n", impl,
            r->bad);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  int fan = bench_want(argc, argv, "W7-fanout");
  int idle_too = bench_want(argc, argv, "W7-idle");
  if (!fan && !idle_too) return 0;
  uint64_t records = env_u64("HB_BENCH_FANOUT_RECORDS", UINT64_C(1) << 22);
  size_t batch = (size_t)env_u64("HB_BENCH_FANOUT_BATCH", 64);
  fo_want = env_u64("HB_BENCH_FANOUT_WANT", 1);
  if (fo_want == 0 || fo_want > FO_LIMIT / sizeof(struct fo_record) / 2)
    fo_want = 1;
  if (records == 0) records = UINT64_C(1) << 22;
  if (batch == 0 || batch > FO_LIMIT / sizeof(struct fo_record) / 2)
    batch = 64;
  struct fo_result mx;
  if (!fan) goto idle;
#ifdef HB_BENCH_STREAM
  struct fo_result hb;
  /* Warm-up: a short run of each (threads, page faults), then the
   * measured ones. */
  if (fo_measure("hyperbuf", hb_fanout, records / 16 + 1, batch, &hb) ||
      fo_measure("mutex-condvar", mx_fanout, records / 16 + 1, batch, &mx) ||
      fo_measure("hyperbuf", hb_fanout, records, batch, &hb) ||
      fo_measure("mutex-condvar", mx_fanout, records, batch, &mx))
    return 1;
#else
  if (fo_measure("mutex-condvar", mx_fanout, records / 16 + 1, batch, &mx) ||
      fo_measure("mutex-condvar", mx_fanout, records, batch, &mx))
    return 1;
#endif
  fprintf(stderr,
          "W7-fanout  %" PRIu64
          " records x %zu B, %d consumers, "
          "batches of %zu, lag bound %u B\n",
          records, sizeof(struct fo_record), FO_CONSUMERS, batch, FO_LIMIT);
#ifdef HB_BENCH_STREAM
  fo_report("hyperbuf", records, &hb);
#endif
  fo_report("mutex-condvar", records, &mx);
#ifdef HB_BENCH_STREAM
  fprintf(stderr, "  ratio hyperbuf/mutex-condvar throughput: %.2f\n",
          mx.seconds / hb.seconds);
#endif
idle:
#ifdef HB_BENCH_STREAM
  if (idle_too) {
    double idle = hb_idle_cost();
    if (idle < 0) {
      fprintf(stderr, "bench_fanout: idle: FAILED\n");
      return 1;
    }
    bench_print("W7-idle", "hyperbuf", "us-cpu", idle, 0);
    fprintf(stderr,
            "W7-idle  4 consumers waiting 1 s on an idle stream: "
            "%.0f us of CPU in all (getrusage)\n",
            idle);
  }
#endif
  return 0;
}
