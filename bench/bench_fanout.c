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
 * Same records, same batches, same verification.
 *
 * Prints bench.h's CSV lines (workload W7-fanout, unit ns/record, lower is
 * better: time from the first append to the last consumer's last record,
 * per record) on stdout; on stderr each consumer's throughput and the
 * peak buffer size (the most unreleased bytes at once).
 * Environment: HB_BENCH_FANOUT_RECORDS (default 4194304),
 *              HB_BENCH_FANOUT_BATCH (records per write, default 64).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define FO_CONSUMERS 4
#define FO_LIMIT (1u << 20) /* most unreleased bytes: 16384 records */

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

/* Verify n records that should carry seq, seq+1, ...; returns the bad ones
 * and adds the payloads into *sum (the sink). */
static uint64_t fo_verify(const struct fo_record *r, size_t n, uint64_t seq,
                          uint64_t *sum) {
  uint64_t bad = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t x = 0;
    for (int k = 0; k < 6; k++) x ^= r[i].payload[k];
    s += x;
    bad += (r[i].seq != seq + i) | (r[i].check != (r[i].payload[5] ^ r[i].seq));
  }
  *sum += s;
  return bad;
}

struct fo_result {
  double seconds;                    /* first append to last record seen */
  double consumer_s[FO_CONSUMERS];   /* each consumer's own run */
  uint64_t seen[FO_CONSUMERS];       /* records each consumer verified */
  uint64_t bad, sum;
  size_t peak;                       /* most unreleased bytes at once */
  int ok;
};

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
  pthread_cond_t more; /* broadcast: records appended, or the end */
  pthread_cond_t room; /* signalled: a consumer advanced */
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
    while (end == c->next && !f->done) {
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
  struct fo_record *tmp = malloc(batch * sizeof *tmp);
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
  for (uint64_t seq = 0; seq < records;) {
    size_t n = records - seq < batch ? (size_t)(records - seq) : batch;
    for (size_t i = 0; i < n; i++) fo_make(&tmp[i], seq + i);
    pthread_mutex_lock(&f->mu);
    /* Drop what every consumer passed; wait while the slowest lags. */
    for (;;) {
      uint64_t low = mx_low(f);
      if (low > f->base) {
        size_t drop = (size_t)(low - f->base);
        memmove(f->data, f->data + drop, (f->len - drop) * sizeof *f->data);
        f->len -= drop;
        f->base = low;
      }
      if (f->len + n <= limit) break;
      f->producer_waits = 1;
      pthread_cond_wait(&f->room, &f->mu);
      f->producer_waits = 0;
    }
    memcpy(f->data + f->len, tmp, n * sizeof *tmp);
    f->len += n;
    if (f->len * sizeof *f->data > f->peak) f->peak = f->len * sizeof *f->data;
    pthread_mutex_unlock(&f->mu);
    pthread_cond_broadcast(&f->more);
    seq += n;
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

/* ---- the run ------------------------------------------------------------ */

static void fo_report(const char *impl, uint64_t records,
                      const struct fo_result *r) {
  bench_print("W7-fanout", impl, "ns/record",
              r->seconds * 1e9 / (double)records, r->sum);
  fprintf(stderr, "  %-14s %8.2f M records/s in all; peak buffer %zu B;"
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
  if (fn(records, batch, r) != 0 || !r->ok) {
    fprintf(stderr, "bench_fanout: %s: FAILED (%" PRIu64 " bad)\n", impl,
            r->bad);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (!bench_want(argc, argv, "W7-fanout")) return 0;
  uint64_t records = env_u64("HB_BENCH_FANOUT_RECORDS", UINT64_C(1) << 22);
  size_t batch = (size_t)env_u64("HB_BENCH_FANOUT_BATCH", 64);
  if (records == 0) records = UINT64_C(1) << 22;
  if (batch == 0 || batch > FO_LIMIT / sizeof(struct fo_record) / 2)
    batch = 64;
  struct fo_result mx;
  /* Warm-up: a short run (threads, page faults), then the measured one. */
  if (fo_measure("mutex-condvar", mx_fanout, records / 16 + 1, batch, &mx) ||
      fo_measure("mutex-condvar", mx_fanout, records, batch, &mx))
    return 1;
  fprintf(stderr, "W7-fanout  %" PRIu64 " records x %zu B, %d consumers, "
                  "batches of %zu, lag bound %u B\n",
          records, sizeof(struct fo_record), FO_CONSUMERS, batch, FO_LIMIT);
  fo_report("mutex-condvar", records, &mx);
  return 0;
}
