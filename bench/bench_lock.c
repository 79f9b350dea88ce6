/*
 * bench_lock.c -- the lock workloads W4, W5, W5w and W8 for HyperBuf's
 * visitor mode and the C and C++ locks: pthread_mutex, pthread_rwlock and
 * the fair locks -- Concurrency Kit's ck_tflock (task-fair reader-writer),
 * ticket and MCS spinlocks, and oneTBB's tbb::queuing_rw_mutex (through
 * bench_fair_tbb.cc).  Rust's locks are in bench/rust.
 *
 *   W4 uncontended  one thread: a write visit that increments a counter
 *                   (W4-write) or a read visit that reads it (W4-read);
 *                   for the locks, lock + the same access + unlock (the
 *                   mutexes and spinlocks have one side: their read pair
 *                   is the write pair with a load).  ns per pair.
 *                   HyperBuf's pair is the whole visit, cast + visit +
 *                   complete: "hyperbuf" in one call (hb_write_now /
 *                   hb_read_now), "hyperbuf future" as a caller-owned
 *                   visitor (hb_cast[_mut] + hb_visit + hb_try_visit),
 *                   which may also be polled or cancelled.  "hyperbuf"
 *                   runs on a buffer biased to the thread (no atomic RMW),
 *                   "hyperbuf shared" on one that is not (two RMWs).
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
 *   W5w             W5 with private work between a thread's visits: the
 *                   same calibrated loop of ~100 ns (bench_work) for every
 *                   row, so a lock that lets one thread run in streaks
 *                   gains less from it than in W5.
 *   W8 readers      reader scaling: as many reader threads as the machine
 *                   has cores, reading back to back, and one writer whose
 *                   writes are 1% of the visits (it paces itself against
 *                   the reads claimed, yielding its CPU in between).
 *                   ns per visit (wall time / all visits).  Reader i is
 *                   pinned to the i-th CPU the process may use: left to
 *                   the scheduler, a 2-core VM ran both readers on one
 *                   core in some runs and not in others, and the row
 *                   swung 5x (no line moves between two readers on one
 *                   core).  Printed so that larger machines show how a
 *                   lock's read side scales.
 *
 * Every peer's lock word and counter share one cache line (a struct of
 * their own, 64-byte aligned), as they would in a program; HyperBuf's lock
 * word is in the buffer's header and the counter in its bytes.
 *
 * Usage: bench_lock [workload-prefix...]   (prints CSV; see bench.h)
 */
#include "bench.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include <ck_spinlock.h>
#include <ck_tflock.h>

#include <hyperbuf.h>

#define W4_BATCH 1024
#define W5_TOTAL (1u << 20)
#define W5_CHUNK 64
#define W5W_WORK_NS 100 /* W5w's private work between visits */
#define W8_MS 100 /* W8 runs this long (plus a quarter of it to warm up) */
#define W8_READS_PER_WRITE 99 /* the writer's visits are 1% of them all */
#define W8_MAX_READERS 256

#define CHECK(x)                                                             \
  do {                                                                       \
    if (!(x)) {                                                              \
      fprintf(stderr, "bench_lock: %s failed at line %d\n", #x, __LINE__);   \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* The protected state of each peer: the lock and the counter in one cache
 * line of their own, as they would be in a struct. */
typedef struct { _Alignas(64) pthread_mutex_t lk; uint64_t counter; } mutexed;
typedef struct { _Alignas(64) pthread_rwlock_t lk; uint64_t counter; } rwlocked;
typedef struct { _Alignas(64) ck_tflock_ticket_t lk; uint64_t counter; } tflocked;
typedef struct { _Alignas(64) ck_spinlock_ticket_t lk; uint64_t counter; } ticketed;
typedef struct { _Alignas(64) ck_spinlock_mcs_t lk; uint64_t counter; } mcsed;

/* oneTBB's queuing_rw_mutex with its counter (bench_fair_tbb.cc). */
void *bench_tbb_new(void);
void bench_tbb_free(void *l);
uint64_t *bench_tbb_counter(void *l);
void bench_tbb_write(void *l);
uint64_t bench_tbb_read(void *l);
typedef struct tbb_locked tbb_locked; /* opaque */

/* ---- the operations, one macro per (implementation, side) ----
 * `L` points at the implementation's state (an hb_buf * for HyperBuf),
 * `SUM` is a uint64_t. */
/* Lock, touch the counter, unlock.  `node_` is an MCS queue node on the
 * acquiring thread's stack (unused by the other locks). */
#define GUARDED(L, LOCK, UNLOCK, ACCESS)                                     \
  do {                                                                       \
    ck_spinlock_mcs_context_t node_;                                         \
    (void)node_;                                                             \
    LOCK(&(L)->lk);                                                          \
    ACCESS;                                                                  \
    UNLOCK(&(L)->lk);                                                        \
  } while (0)
#define MCS_LOCK_(lk) ck_spinlock_mcs_lock((lk), &node_)
#define MCS_UNLOCK_(lk) ck_spinlock_mcs_unlock((lk), &node_)
#define MUTEX_WRITE(L, SUM)                                                  \
  GUARDED(L, pthread_mutex_lock, pthread_mutex_unlock, (L)->counter++)
#define MUTEX_READ(L, SUM)                                                   \
  GUARDED(L, pthread_mutex_lock, pthread_mutex_unlock, (SUM) += (L)->counter)
#define RWLOCK_WRITE(L, SUM)                                                 \
  GUARDED(L, pthread_rwlock_wrlock, pthread_rwlock_unlock, (L)->counter++)
#define RWLOCK_READ(L, SUM)                                                  \
  GUARDED(L, pthread_rwlock_rdlock, pthread_rwlock_unlock,                   \
          (SUM) += (L)->counter)
#define TFLOCK_WRITE(L, SUM)                                                 \
  GUARDED(L, ck_tflock_ticket_write_lock, ck_tflock_ticket_write_unlock,     \
          (L)->counter++)
#define TFLOCK_READ(L, SUM)                                                  \
  GUARDED(L, ck_tflock_ticket_read_lock, ck_tflock_ticket_read_unlock,       \
          (SUM) += (L)->counter)
#define TICKET_WRITE(L, SUM)                                                 \
  GUARDED(L, ck_spinlock_ticket_lock, ck_spinlock_ticket_unlock,             \
          (L)->counter++)
#define TICKET_READ(L, SUM)                                                  \
  GUARDED(L, ck_spinlock_ticket_lock, ck_spinlock_ticket_unlock,             \
          (SUM) += (L)->counter)
#define MCS_WRITE(L, SUM) GUARDED(L, MCS_LOCK_, MCS_UNLOCK_, (L)->counter++)
#define MCS_READ(L, SUM)                                                     \
  GUARDED(L, MCS_LOCK_, MCS_UNLOCK_, (SUM) += (L)->counter)
#define TBB_WRITE(L, SUM) bench_tbb_write(L)
#define TBB_READ(L, SUM) ((SUM) += bench_tbb_read(L))

/* The same implementations in one list, for the rows of every workload:
 * X(id, printed name, state type, write op, read op, has a read side). */
#define PEERS(X)                                                             \
  X(mutex, "pthread_mutex", mutexed, MUTEX_WRITE, MUTEX_READ, 0)             \
  X(rwlock, "pthread_rwlock", rwlocked, RWLOCK_WRITE, RWLOCK_READ, 1)        \
  X(tflock, "ck_tflock", tflocked, TFLOCK_WRITE, TFLOCK_READ, 1)             \
  X(ticket, "ck ticket spinlock", ticketed, TICKET_WRITE, TICKET_READ, 0)    \
  X(mcs, "ck MCS spinlock", mcsed, MCS_WRITE, MCS_READ, 0)                   \
  X(tbb, "tbb queuing_rw_mutex", tbb_locked, TBB_WRITE, TBB_READ, 1)

/* ---- W5w's private work ----------------------------------------------------
 * A dependent chain of multiply-adds the compiler cannot drop or fold, of
 * work_iters steps, calibrated once per run to take W5W_WORK_NS: the same
 * loop, of the same length, after every visit of every W5w row. */
static unsigned work_iters;

static inline uint64_t bench_work(unsigned n) {
  uint64_t x = n;
  for (unsigned i = 0; i < n; i++) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    __asm__ __volatile__("" : "+r"(x));
  }
  return x;
}

static void bench_work_calibrate(void) {
  const unsigned n = 1u << 20;
  uint64_t best = UINT64_MAX;
  for (int k = 0; k < 5; k++) {
    uint64_t t0 = bench_now_ns();
    bench_sink += bench_work(n);
    uint64_t t = bench_now_ns() - t0;
    if (t < best) best = t;
  }
  double per = (double)best / n;
  work_iters = (unsigned)(W5W_WORK_NS / per + 0.5);
  if (work_iters == 0) work_iters = 1;
  fprintf(stderr, "bench_lock: W5w work: %u steps = %.0f ns\n", work_iters,
          work_iters * per);
}

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
#define W4_PEER(id, name, T, WR, RD, RW)                                         \
  W4_UNIT(w4_##id##_write, T, WR, RD)                                        \
  W4_UNIT(w4_##id##_read, T, RD, RD)
PEERS(W4_PEER)
#ifdef HB_BENCH_VISITOR
W4_UNIT(w4_hb_write, hb_buf, HB_WRITE_NOW_OP, HB_READ_NOW_OP)
W4_UNIT(w4_hb_read, hb_buf, HB_READ_NOW_OP, HB_READ_NOW_OP)
W4_UNIT(w4_hbf_write, hb_buf, HB_WRITE_TRY, HB_READ_TRY)
W4_UNIT(w4_hbf_read, hb_buf, HB_READ_TRY, HB_READ_TRY)
#endif

/* ======================================================================== */
/*  W5 and W5w                                                               */
/* ======================================================================== */

typedef struct {
  void *lock;
  atomic_long budget; /* operations not yet claimed */
  unsigned work;      /* bench_work steps after each visit (W5w), or 0 */
  pthread_barrier_t start;
  uint64_t ops[2];    /* per thread: 0 writer, 1 reader */
  uint64_t t0[2], t1[2]; /* per thread: start and end (ns) */
  uint64_t sum;       /* what the reader saw */
  uint64_t worked;    /* what the work loops made (kept from the optimiser) */
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
    uint64_t sum = 0, ops = 0, worked = 0;                                   \
    unsigned work = s->work;                                                 \
    hb_visitor vis = HB_VISITOR_INIT;                                        \
    (void)vis;                                                               \
    pthread_barrier_wait(&s->start);                                         \
    s->t0[side] = bench_now_ns();                                            \
    while (w5_claim(s)) {                                                    \
      for (unsigned k = 0; k < W5_CHUNK; k++) {                              \
        OP(l, sum);                                                          \
        if (work) worked += bench_work(work);                                \
      }                                                                      \
      ops += W5_CHUNK;                                                       \
    }                                                                        \
    s->t1[side] = bench_now_ns();                                            \
    s->ops[side] = ops;                                                      \
    if (side == 1) s->sum = sum;                                             \
    __atomic_fetch_add(&s->worked, worked, __ATOMIC_RELAXED);                \
    return NULL;                                                             \
  }
#define W5_PEER(id, name, T, WR, RD, RW)                                         \
  W5_THREAD(w5_##id##_w, T, WR, 0)                                           \
  W5_THREAD(w5_##id##_r, T, RD, 1)
PEERS(W5_PEER)
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
  uint64_t n = (uint64_t)atomic_load(&s->budget) / 2, sum = 0, worked = 0;
  unsigned work = s->work;
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
    if (work) worked += bench_work(work);
  }
  s->t1[side] = bench_now_ns();
  s->ops[side] = n;
  if (side == 1) s->sum = sum;
  __atomic_fetch_add(&s->worked, worked, __ATOMIC_RELAXED);
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

static void w5_run(const char *workload, unsigned work, const char *impl,
                   void *lock, uint64_t *counter, void *(*wr)(void *),
                   void *(*rd)(void *)) {
  w5_shared s = {.work = work};
  w5_once(&s, lock, W5_TOTAL / 8, wr, rd); /* warm-up */
  uint64_t ns, total;
  const char *bursts = getenv("HB_BENCH_BURSTS");
  if (bursts != NULL && atoi(bursts) > 0) {
    /* For studying a change on a loaded machine (not `make bench`): the
     * fastest of n short runs in which both threads ran (each short
     * enough to fit in a time slice) shows the lock, not the scheduler. */
    double best = 1e300;
    for (int i = atoi(bursts); i > 0; i--) {
      uint64_t t = w5_once(&s, lock, W5_TOTAL / 64, wr, rd);
      double per = (double)t / (double)(s.ops[0] + s.ops[1]);
      double w = (double)s.ops[0] / (double)(s.ops[0] + s.ops[1]);
      if (w > 0.45 && w < 0.55 && per < best) best = per; /* both ran */
    }
    total = s.ops[0] + s.ops[1];
    ns = (uint64_t)(best * (double)total);
  } else {
    ns = w5_once(&s, lock, W5_TOTAL, wr, rd);
    total = s.ops[0] + s.ops[1];
  }
  bench_sink += s.worked;
  printf("%s,%s,ns/op,%.4f,%llu,%.3f,%.3f\n", workload, impl,
         (double)ns / (double)total, (unsigned long long)(s.sum + *counter),
         (double)s.ops[0] / (double)total, (double)s.ops[1] / (double)total);
  fflush(stdout);
}

/* ======================================================================== */
/*  W8                                                                       */
/* ======================================================================== */

typedef struct {
  void *lock;
  atomic_long reads;   /* reads claimed so far, all readers together */
  atomic_int stop;     /* set by the main thread when the time is up */
  int readers;
  pthread_barrier_t start;
  uint64_t writes;     /* the writer's visits */
  uint64_t t0, t1;     /* first start, last end (ns) */
  uint64_t sum;        /* what the readers saw, together */
} w8_shared;

static inline void w8_times(w8_shared *s, uint64_t t0, uint64_t t1) {
  uint64_t o = __atomic_load_n(&s->t0, __ATOMIC_RELAXED);
  while ((o == 0 || t0 < o) &&
         !__atomic_compare_exchange_n(&s->t0, &o, t0, false, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
  }
  o = __atomic_load_n(&s->t1, __ATOMIC_RELAXED);
  while (t1 > o && !__atomic_compare_exchange_n(&s->t1, &o, t1, false,
                                                __ATOMIC_RELAXED,
                                                __ATOMIC_RELAXED)) {
  }
}

/* Readers read in chunks, counting each chunk in `reads`, until the main
 * thread says stop (a time limit, not a count: with more threads than
 * cores a spinning lock may stall for whole time slices, and a fixed count
 * could then take minutes).  The writer writes once per
 * W8_READS_PER_WRITE reads counted, and yields its CPU in between, so a
 * machine with no core to spare still runs every reader. */
#define W8_THREADS(id, T, WR, RD)                                            \
  static void *w8_##id##_r(void *arg) {                                      \
    w8_shared *s = arg;                                                      \
    T *l = s->lock;                                                          \
    uint64_t sum = 0;                                                        \
    hb_visitor vis = HB_VISITOR_INIT;                                        \
    (void)vis;                                                               \
    pthread_barrier_wait(&s->start);                                         \
    uint64_t t0 = bench_now_ns();                                            \
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {          \
      for (unsigned k = 0; k < W5_CHUNK; k++) RD(l, sum);                    \
      atomic_fetch_add_explicit(&s->reads, W5_CHUNK, memory_order_relaxed);  \
    }                                                                        \
    w8_times(s, t0, bench_now_ns());                                         \
    __atomic_fetch_add(&s->sum, sum, __ATOMIC_RELAXED);                      \
    return NULL;                                                             \
  }                                                                          \
  static void *w8_##id##_w(void *arg) {                                      \
    w8_shared *s = arg;                                                      \
    T *l = s->lock;                                                          \
    uint64_t sum = 0, writes = 0;                                            \
    hb_visitor vis = HB_VISITOR_INIT;                                        \
    (void)vis;                                                               \
    pthread_barrier_wait(&s->start);                                         \
    uint64_t t0 = bench_now_ns();                                            \
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {          \
      long done = atomic_load_explicit(&s->reads, memory_order_relaxed);     \
      if ((uint64_t)done < writes * W8_READS_PER_WRITE) {                    \
        sched_yield();                                                       \
        continue;                                                            \
      }                                                                      \
      WR(l, sum);                                                            \
      writes++;                                                              \
    }                                                                        \
    w8_times(s, t0, bench_now_ns());                                         \
    s->writes = writes;                                                      \
    return NULL;                                                             \
  }
#define W8_PEER(id, name, T, WR, RD, RW) W8_THREADS(id, T, WR, RD)
PEERS(W8_PEER)
#ifdef HB_BENCH_VISITOR
W8_THREADS(hb, hb_buf, HB_WRITE_NOW_OP, HB_READ_NOW_OP)
W8_THREADS(hbf, hb_buf, HB_WRITE_BLOCK, HB_READ_BLOCK)
#endif

static int w8_readers(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > W8_MAX_READERS ? W8_MAX_READERS : (int)n;
}

/* Pin thread t to the i-th CPU this process may run on (best effort: a
 * machine that refuses it runs the row unpinned). */
static void w8_pin(pthread_t t, int i) {
  cpu_set_t all, one;
  if (sched_getaffinity(0, sizeof all, &all) != 0 || CPU_COUNT(&all) == 0)
    return;
  int k = i % CPU_COUNT(&all);
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, &all) || k-- != 0) continue;
    CPU_ZERO(&one);
    CPU_SET(c, &one);
    (void)pthread_setaffinity_np(t, sizeof one, &one);
    return;
  }
}

/* One run of `ms` milliseconds; returns the wall time in ns. */
static uint64_t w8_once(w8_shared *s, void *lock, unsigned ms,
                        void *(*wr)(void *), void *(*rd)(void *)) {
  s->lock = lock;
  atomic_store(&s->reads, 0);
  atomic_store(&s->stop, 0);
  s->t0 = s->t1 = 0;
  s->writes = 0;
  s->sum = 0;
  CHECK(pthread_barrier_init(&s->start, NULL, (unsigned)s->readers + 2) == 0);
  pthread_t t[W8_MAX_READERS + 1];
  CHECK(pthread_create(&t[0], NULL, wr, s) == 0);
  for (int i = 1; i <= s->readers; i++) {
    CHECK(pthread_create(&t[i], NULL, rd, s) == 0);
    w8_pin(t[i], i - 1); /* before the barrier lets it read */
  }
  pthread_barrier_wait(&s->start);
  struct timespec d = {0, (long)ms * 1000000L};
  nanosleep(&d, NULL);
  atomic_store(&s->stop, 1);
  for (int i = 0; i <= s->readers; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&s->start);
  return s->t1 - s->t0;
}

static void w8_run(const char *impl, void *lock, uint64_t *counter,
                   void *(*wr)(void *), void *(*rd)(void *)) {
  w8_shared s = {.readers = w8_readers()};
  w8_once(&s, lock, W8_MS / 4, wr, rd); /* warm-up */
  uint64_t ns = w8_once(&s, lock, W8_MS, wr, rd);
  double visits = (double)atomic_load(&s.reads) + (double)s.writes;
  printf("W8,%s,ns/op,%.4f,%llu,,\n", impl, ns / visits,
         (unsigned long long)(s.sum + *counter));
  fprintf(stderr, "bench_lock: W8 %s: %d readers, writes %.2f%% of visits\n",
          impl, s.readers, 100.0 * (double)s.writes / visits);
  fflush(stdout);
}

/* ======================================================================== */

int main(int argc, char **argv) {
  static mutexed mutex = {PTHREAD_MUTEX_INITIALIZER, 0};
  static rwlocked rwlock = {PTHREAD_RWLOCK_INITIALIZER, 0};
  static tflocked tflock = {CK_TFLOCK_TICKET_INITIALIZER, 0};
  static ticketed ticket = {CK_SPINLOCK_TICKET_INITIALIZER, 0};
  static mcsed mcs = {CK_SPINLOCK_MCS_INITIALIZER, 0};
  tbb_locked *tbb = bench_tbb_new();
  CHECK(tbb != NULL);
  void *peer_state[] = {&mutex, &rwlock, &tflock, &ticket, &mcs, tbb};
  uint64_t *peer_counter[] = {&mutex.counter, &rwlock.counter,
                              &tflock.counter, &ticket.counter, &mcs.counter,
                              bench_tbb_counter(tbb)};
#define PEER_NAME(id, name, T, WR, RD, RW) name,
  static const char *const peer_name[] = {PEERS(PEER_NAME)};
#define PEER_FNS(id, name, T, WR, RD, RW)                                        \
  {w4_##id##_write, w4_##id##_read, w5_##id##_w, w5_##id##_r, w8_##id##_w,  \
   w8_##id##_r, RW},
  static const struct {
    bench_unit_fn w4w, w4r;
    void *(*w5w)(void *), *(*w5r)(void *), *(*w8w)(void *), *(*w8r)(void *);
    int rw;
  } peer[] = {PEERS(PEER_FNS)};
  enum { NPEERS = sizeof peer / sizeof peer[0] };

#ifdef HB_BENCH_VISITOR
  /* A buffer per HyperBuf row: a buffer visited only through hb_*_now by
   * one thread is biased to it, and a caller-owned visitor (the "future"
   * rows) or a second thread ends that for good -- as a program that
   * shares a buffer would.  So each row gets the buffer it would have. */
  enum { NBUFS = 12 };
  hb_buf *bufs[NBUFS];
  for (int i = 0; i < NBUFS; i++) {
    bufs[i] = hb_new(64);
    CHECK(bufs[i] != NULL && hb_put_u64_le(bufs[i], 0) == HB_OK);
  }
  uint64_t hb_counter = 0; /* the buffers' counters are in the sums */
#endif
  for (int w = 0; w < 2; w++) {
    const char *wl = w ? "W4-read" : "W4-write";
    if (!bench_want(argc, argv, wl)) continue;
#ifdef HB_BENCH_VISITOR
    bench_run(wl, "hyperbuf", "ns/pair", W4_BATCH,
              w ? w4_hb_read : w4_hb_write, bufs[w ? 2 : 0]);
    bench_run(wl, "hyperbuf future", "ns/pair", W4_BATCH,
              w ? w4_hbf_read : w4_hbf_write, bufs[w ? 3 : 1]);
    /* The one-call form on a buffer that is not biased (a caller-owned
     * visitor came once): the grant's CAS and the release's add. */
    hb_visitor once = HB_VISITOR_INIT;
    uint64_t unused = 0;
    hb_now(bufs[10 + w], 0, &unused); /* biased to this thread, */
    CHECK(hb_cast(&once, bufs[10 + w], HB_TYPE(uint64_t)) == HB_OK &&
          hb_cancel(&once) == HB_OK); /* and shared for good */
    bench_run(wl, "hyperbuf shared", "ns/pair", W4_BATCH,
              w ? w4_hb_read : w4_hb_write, bufs[10 + w]);
#endif
    for (int i = 0; i < NPEERS; i++)
      bench_run(wl, peer_name[i], "ns/pair", W4_BATCH,
                w ? peer[i].w4r : peer[i].w4w, peer_state[i]);
  }
  bench_work_calibrate();
  for (int w = 0; w < 2; w++) {
    const char *wl = w ? "W5w" : "W5";
    unsigned work = w ? work_iters : 0;
    if (!bench_want(argc, argv, wl)) continue; /* "W5" selects W5w too */
#ifdef HB_BENCH_VISITOR
    w5_run(wl, work, "hyperbuf", bufs[4 + w], &hb_counter, w5_hb_w, w5_hb_r);
    w5_run(wl, work, "hyperbuf future", bufs[6 + w], &hb_counter, w5_hbf_w,
           w5_hbf_r);
#endif
    for (int i = 0; i < NPEERS; i++)
      w5_run(wl, work, peer_name[i], peer_state[i], peer_counter[i],
             peer[i].w5w, peer[i].w5r);
    static handoff ho;
    w5_run(wl, work, "FIFO floor (hand-off)", &ho, &ho.counter, w5_handoff_w,
           w5_handoff_r);
  }
  if (bench_want(argc, argv, "W8")) {
#ifdef HB_BENCH_VISITOR
    w8_run("hyperbuf", bufs[8], &hb_counter, w8_hb_w, w8_hb_r);
    w8_run("hyperbuf future", bufs[9], &hb_counter, w8_hbf_w, w8_hbf_r);
#endif
    /* The reader-writer locks only: a mutex has no read side to scale. */
    for (int i = 0; i < NPEERS; i++)
      if (peer[i].rw)
        w8_run(peer_name[i], peer_state[i], peer_counter[i], peer[i].w8w,
               peer[i].w8r);
  }
#ifdef HB_BENCH_VISITOR
  for (int i = 0; i < NBUFS; i++) CHECK(hb_free(bufs[i]) == HB_OK);
#endif
  bench_tbb_free(tbb);
  return 0;
}
