/*
 * bench_lock.c -- W4 and W5, the lock workloads, for HyperBuf's visitor mode
 * and the C locks: pthread_mutex and pthread_rwlock (Rust's locks are in
 * bench/rust).
 *
 *   W4 uncontended  one thread: a write visit that increments a counter
 *                   (W4-write) or a read visit that reads it (W4-read);
 *                   for the locks, lock + the same access + unlock.
 *                   ns per pair.  HyperBuf's pair is the whole visit,
 *                   cast + visit + complete: "hyperbuf" in one call
 *                   (hb_write_now / hb_read_now), "hyperbuf future" as a
 *                   caller-owned visitor (hb_cast[_mut] + hb_visit +
 *                   hb_try_visit), which may also be polled or cancelled.
 *   W5 contended    two threads, one incrementing the counter under the
 *                   write side, one reading it under the read side, until
 *                   a fixed total of operations is done (claimed in chunks
 *                   of 64 from a shared budget, so an unfair lock shows as
 *                   a lopsided share).  ns per operation (wall time / total),
 *                   and each thread's share.  "hyperbuf": hb_write_now /
 *                   hb_read_now, which wait their turn in the queue;
 *                   "hyperbuf future": hb_cast + hb_visit + hb_block_on.
 *                   "FIFO floor (hand-off)": no lock, the two threads
 *                   alternate strictly through one cache line -- the least
 *                   any FIFO lock pays per operation when two threads
 *                   always want it (see w5_handoff).
 *
 * Usage: bench_lock [workload-prefix...]   (prints CSV; see bench.h)
 */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>

#include <hyperbuf.h>

#define W4_BATCH 1024
#define W5_TOTAL (1u << 20)
#define W5_CHUNK 64

#define CHECK(x)                                                             \
  do {                                                                       \
    if (!(x)) {                                                              \
      fprintf(stderr, "bench_lock: %s failed at line %d\n", #x, __LINE__);   \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* The protected state of the C locks: the lock and the counter share a
 * cache line, as they would in a struct. */
typedef struct {
  pthread_mutex_t mu;
  pthread_rwlock_t rw;
  uint64_t counter;
} locked;

/* ---- the operations, one macro per (implementation, side) ----
 * `L` is a locked * (or a hb_buf * for HyperBuf), `SUM` a uint64_t. */
#define MUTEX_WRITE(L, SUM)                                                  \
  do {                                                                       \
    pthread_mutex_lock(&(L)->mu);                                            \
    (L)->counter++;                                                          \
    pthread_mutex_unlock(&(L)->mu);                                          \
  } while (0)
#define MUTEX_READ(L, SUM)                                                   \
  do {                                                                       \
    pthread_mutex_lock(&(L)->mu);                                            \
    (SUM) += (L)->counter;                                                   \
    pthread_mutex_unlock(&(L)->mu);                                          \
  } while (0)
#define RWLOCK_WRITE(L, SUM)                                                 \
  do {                                                                       \
    pthread_rwlock_wrlock(&(L)->rw);                                         \
    (L)->counter++;                                                          \
    pthread_rwlock_unlock(&(L)->rw);                                         \
  } while (0)
#define RWLOCK_READ(L, SUM)                                                  \
  do {                                                                       \
    pthread_rwlock_rdlock(&(L)->rw);                                         \
    (SUM) += (L)->counter;                                                   \
    pthread_rwlock_unlock(&(L)->rw);                                         \
  } while (0)

#ifdef HB_BENCH_VISITOR
/* HyperBuf: the counter is the buffer's first (and only) uint64_t, seen
 * through the view as a uint64_t array. */
static int hb_inc(hb_view *view, void *ctx) {
  (void)ctx;
  size_t n;
  uint64_t *c = HB_WRITE_ARRAY(view, uint64_t, &n);
  c[0]++;
  return 0;
}
static int hb_read(hb_view *view, void *ctx) {
  size_t n;
  const uint64_t *c = HB_READ_ARRAY(view, uint64_t, &n);
  *(uint64_t *)ctx += c[0];
  return 0;
}
/* One visit, driven to completion: hb_try_visit when the turn has come
 * (always, uncontended), hb_block_on otherwise. */
static inline void hb_do(hb_visitor *v, hb_buf *b, int write, uint64_t *sum,
                         int block) {
  int rc = write ? hb_cast_mut(v, b, HB_TYPE(uint64_t))
                 : hb_cast(v, b, HB_TYPE(uint64_t));
  if (rc != HB_OK) abort();
  if (hb_visit(v, 0, write ? hb_inc : hb_read, sum) != HB_OK) abort();
  int res;
  rc = block ? HB_EAGAIN : hb_try_visit(v, &res);
  if (rc == HB_EAGAIN) rc = hb_block_on(v, &res);
  if (rc != HB_OK || res != 0) abort();
}
/* The one-call form: cast, visit and complete in hb_write_now/hb_read_now
 * (it waits like hb_block_on when the turn has not come). */
static inline void hb_now(hb_buf *b, int write, uint64_t *sum) {
  int res;
  int rc = write ? HB_WRITE_NOW(b, uint64_t, 0, hb_inc, sum, &res)
                 : HB_READ_NOW(b, uint64_t, hb_read, sum, &res);
  if (rc != HB_OK || res != 0) abort();
}
#define HB_WRITE_NOW_OP(L, SUM) hb_now((L), 1, &(SUM))
#define HB_READ_NOW_OP(L, SUM) hb_now((L), 0, &(SUM))
#define HB_WRITE_TRY(L, SUM) hb_do(&vis, (L), 1, &(SUM), 0)
#define HB_READ_TRY(L, SUM) hb_do(&vis, (L), 0, &(SUM), 0)
#define HB_WRITE_BLOCK(L, SUM) hb_do(&vis, (L), 1, &(SUM), 1)
#define HB_READ_BLOCK(L, SUM) hb_do(&vis, (L), 0, &(SUM), 1)
#endif

/* ======================================================================== */
/*  W4                                                                       */
/* ======================================================================== */

/* A unit: W4_BATCH operations, then one read (the checksum). */
#define W4_UNIT(name, T, OP, READ)                                           \
  static uint64_t name(void *ctx, uint64_t it) {                             \
    (void)it;                                                                \
    T *l = ctx;                                                              \
    uint64_t sum = 0;                                                        \
    hb_visitor vis = HB_VISITOR_INIT;                                        \
    (void)vis;                                                               \
    for (unsigned k = 0; k < W4_BATCH; k++) OP(l, sum);                      \
    READ(l, sum);                                                            \
    return sum;                                                              \
  }
W4_UNIT(w4_mutex_write, locked, MUTEX_WRITE, MUTEX_READ)
W4_UNIT(w4_mutex_read, locked, MUTEX_READ, MUTEX_READ)
W4_UNIT(w4_rwlock_write, locked, RWLOCK_WRITE, RWLOCK_READ)
W4_UNIT(w4_rwlock_read, locked, RWLOCK_READ, RWLOCK_READ)
#ifdef HB_BENCH_VISITOR
W4_UNIT(w4_hb_write, hb_buf, HB_WRITE_NOW_OP, HB_READ_NOW_OP)
W4_UNIT(w4_hb_read, hb_buf, HB_READ_NOW_OP, HB_READ_NOW_OP)
W4_UNIT(w4_hbf_write, hb_buf, HB_WRITE_TRY, HB_READ_TRY)
W4_UNIT(w4_hbf_read, hb_buf, HB_READ_TRY, HB_READ_TRY)
#endif

/* ======================================================================== */
/*  W5                                                                       */
/* ======================================================================== */

typedef struct {
  void *lock;
  atomic_long budget; /* operations not yet claimed */
  pthread_barrier_t start;
  uint64_t ops[2];    /* per thread: 0 writer, 1 reader */
  uint64_t t0[2], t1[2]; /* per thread: start and end (ns) */
  uint64_t sum;       /* what the reader saw */
} w5_shared;

/* Claim a chunk of the budget; 0 when it is spent. */
static inline int w5_claim(w5_shared *s) {
  return atomic_fetch_sub_explicit(&s->budget, W5_CHUNK,
                                   memory_order_relaxed) > 0;
}

#define W5_THREAD(name, T, OP, side)                                         \
  static void *name(void *arg) {                                             \
    w5_shared *s = arg;                                                      \
    T *l = s->lock;                                                          \
    uint64_t sum = 0, ops = 0;                                               \
    hb_visitor vis = HB_VISITOR_INIT;                                        \
    (void)vis;                                                               \
    pthread_barrier_wait(&s->start);                                         \
    s->t0[side] = bench_now_ns();                                            \
    while (w5_claim(s)) {                                                    \
      for (unsigned k = 0; k < W5_CHUNK; k++) OP(l, sum);                    \
      ops += W5_CHUNK;                                                       \
    }                                                                        \
    s->t1[side] = bench_now_ns();                                            \
    s->ops[side] = ops;                                                      \
    if (side == 1) s->sum = sum;                                             \
    return NULL;                                                             \
  }
W5_THREAD(w5_mutex_w, locked, MUTEX_WRITE, 0)
W5_THREAD(w5_mutex_r, locked, MUTEX_READ, 1)
W5_THREAD(w5_rwlock_w, locked, RWLOCK_WRITE, 0)
W5_THREAD(w5_rwlock_r, locked, RWLOCK_READ, 1)
#ifdef HB_BENCH_VISITOR
W5_THREAD(w5_hb_w, hb_buf, HB_WRITE_NOW_OP, 0)
W5_THREAD(w5_hb_r, hb_buf, HB_READ_NOW_OP, 1)
W5_THREAD(w5_hbf_w, hb_buf, HB_WRITE_BLOCK, 0)
W5_THREAD(w5_hbf_r, hb_buf, HB_READ_BLOCK, 1)
#endif

/* The floor under any FIFO lock here: the two threads take strict turns
 * through one shared cache line (the writer on even turns, the reader on
 * odd ones), so every operation waits for the other core to see the last
 * one -- which is what FIFO order makes of two threads that always want
 * the buffer.  No lock at all, just the hand-off. */
typedef struct {
  _Alignas(64) uint64_t turn;
  uint64_t counter;
} handoff;

static void *w5_handoff(w5_shared *s, int side) {
  handoff *h = s->lock;
  uint64_t n = (uint64_t)atomic_load(&s->budget) / 2, sum = 0;
  uint64_t base = __atomic_load_n(&h->turn, __ATOMIC_ACQUIRE); /* runs add up */
  pthread_barrier_wait(&s->start);
  s->t0[side] = bench_now_ns();
  for (uint64_t i = 0; i < n; i++) {
    uint64_t mine = base + 2 * i + (uint64_t)side;
    while (__atomic_load_n(&h->turn, __ATOMIC_ACQUIRE) != mine)
      bench_relax();
    if (side == 0)
      h->counter++;
    else
      sum += h->counter;
    __atomic_store_n(&h->turn, mine + 1, __ATOMIC_RELEASE);
  }
  s->t1[side] = bench_now_ns();
  s->ops[side] = n;
  if (side == 1) s->sum = sum;
  return NULL;
}
static void *w5_handoff_w(void *arg) { return w5_handoff(arg, 0); }
static void *w5_handoff_r(void *arg) { return w5_handoff(arg, 1); }

/* One contended run of `total` operations; returns the wall time in ns,
 * from the first thread's start to the last one's end, as the threads saw
 * it (the main thread may not even be scheduled in between). */
static uint64_t w5_once(w5_shared *s, void *lock, long total,
                        void *(*wr)(void *), void *(*rd)(void *)) {
  s->lock = lock;
  atomic_store(&s->budget, total);
  s->ops[0] = s->ops[1] = 0;
  CHECK(pthread_barrier_init(&s->start, NULL, 3) == 0);
  pthread_t tw, tr;
  CHECK(pthread_create(&tw, NULL, wr, s) == 0);
  CHECK(pthread_create(&tr, NULL, rd, s) == 0);
  pthread_barrier_wait(&s->start);
  pthread_join(tw, NULL);
  pthread_join(tr, NULL);
  pthread_barrier_destroy(&s->start);
  uint64_t t0 = s->t0[0] < s->t0[1] ? s->t0[0] : s->t0[1];
  uint64_t t1 = s->t1[0] > s->t1[1] ? s->t1[0] : s->t1[1];
  return t1 - t0;
}

static void w5_run(const char *impl, void *lock, uint64_t *counter,
                   void *(*wr)(void *), void *(*rd)(void *)) {
  w5_shared s;
  w5_once(&s, lock, W5_TOTAL / 8, wr, rd); /* warm-up */
  uint64_t ns = w5_once(&s, lock, W5_TOTAL, wr, rd);
  uint64_t total = s.ops[0] + s.ops[1];
  printf("W5,%s,ns/op,%.4f,%llu,%.3f,%.3f\n", impl, (double)ns / (double)total,
         (unsigned long long)(s.sum + *counter),
         (double)s.ops[0] / (double)total, (double)s.ops[1] / (double)total);
  fflush(stdout);
}

int main(int argc, char **argv) {
  static locked lk = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_RWLOCK_INITIALIZER,
                      0};
#ifdef HB_BENCH_VISITOR
  /* A buffer per HyperBuf row: a buffer visited only through hb_*_now by
   * one thread is biased to it, and a caller-owned visitor (the "future"
   * rows) or a second thread ends that for good -- as a program that
   * shares a buffer would.  So each row gets the buffer it would have. */
  hb_buf *bufs[6];
  for (int i = 0; i < 6; i++) {
    bufs[i] = hb_new(64);
    CHECK(bufs[i] != NULL && hb_put_u64_le(bufs[i], 0) == HB_OK);
  }
#endif
  if (bench_want(argc, argv, "W4-write")) {
#ifdef HB_BENCH_VISITOR
    bench_run("W4-write", "hyperbuf", "ns/pair", W4_BATCH, w4_hb_write,
              bufs[0]);
    bench_run("W4-write", "hyperbuf future", "ns/pair", W4_BATCH,
              w4_hbf_write, bufs[1]);
#endif
    bench_run("W4-write", "pthread_mutex", "ns/pair", W4_BATCH,
              w4_mutex_write, &lk);
    bench_run("W4-write", "pthread_rwlock", "ns/pair", W4_BATCH,
              w4_rwlock_write, &lk);
  }
  if (bench_want(argc, argv, "W4-read")) {
#ifdef HB_BENCH_VISITOR
    bench_run("W4-read", "hyperbuf", "ns/pair", W4_BATCH, w4_hb_read,
              bufs[2]);
    bench_run("W4-read", "hyperbuf future", "ns/pair", W4_BATCH, w4_hbf_read,
              bufs[3]);
#endif
    bench_run("W4-read", "pthread_mutex", "ns/pair", W4_BATCH, w4_mutex_read,
              &lk);
    bench_run("W4-read", "pthread_rwlock", "ns/pair", W4_BATCH,
              w4_rwlock_read, &lk);
  }
  if (bench_want(argc, argv, "W5")) {
#ifdef HB_BENCH_VISITOR
    uint64_t hb_counter = 0; /* the buffer's counter is checked by the sum */
    w5_run("hyperbuf", bufs[4], &hb_counter, w5_hb_w, w5_hb_r);
    w5_run("hyperbuf future", bufs[5], &hb_counter, w5_hbf_w, w5_hbf_r);
#endif
    w5_run("pthread_mutex", &lk, &lk.counter, w5_mutex_w, w5_mutex_r);
    w5_run("pthread_rwlock", &lk, &lk.counter, w5_rwlock_w, w5_rwlock_r);
    static handoff ho;
    w5_run("FIFO floor (hand-off)", &ho, &ho.counter, w5_handoff_w,
           w5_handoff_r);
  }
#ifdef HB_BENCH_VISITOR
  for (int i = 0; i < 6; i++) CHECK(hb_free(bufs[i]) == HB_OK);
#endif
  return 0;
}
