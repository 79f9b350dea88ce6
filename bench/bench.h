/*
 * bench.h -- what every C and C++ benchmark program shares: a clock, a
 * dead-code sink, a calibrated timed loop and the one output format.
 *
 * Each program measures every (workload, implementation) pair it knows ONCE
 * per run and prints one CSV line per figure:
 *
 *   workload,implementation,unit,value,checksum,share_writer,share_reader
 *
 * scripts/bench.sh runs every program several times, interleaving them
 * (round 1: all programs, round 2: all programs, ...), so that a burst of
 * noise on this machine hits every implementation alike, then takes the
 * median, min and max of each pair.
 *
 * A measurement is: a warm-up that runs the unit of work until
 * BENCH_WARMUP_NS have passed (counting how many units that took), then a
 * timed loop of that many units.  Slow implementations run fewer units,
 * fast ones more; every unit is the same work for every implementation.
 * A unit is a batch (1024 iterations, 1 MiB, ...) so that the indirect call
 * to it costs nothing measurable.
 */
#ifndef HB_BENCH_H
#define HB_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BENCH_WARMUP_NS
#define BENCH_WARMUP_NS 20000000ull /* 20 ms of warm-up per figure */
#endif

static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Make the compiler believe p escapes and memory is read: stops it from
 * eliding an allocation or the stores into it (no instruction emitted). */
#define bench_escape(p) __asm__ __volatile__("" : : "g"(p) : "memory")

/* A spin-wait's pause. */
static inline void bench_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Every loop adds into this and every figure prints it. */
static volatile uint64_t bench_sink;

/* Only the workloads named on the command line run (all if none). */
static inline int bench_want(int argc, char **argv, const char *workload) {
  if (argc < 2) return 1;
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], workload, strlen(argv[i])) == 0) return 1;
  return 0;
}

static inline void bench_print(const char *workload, const char *impl,
                               const char *unit, double value,
                               uint64_t checksum) {
  printf("%s,%s,%s,%.4f,%llu,,\n", workload, impl, unit, value,
         (unsigned long long)checksum);
  fflush(stdout);
}

/*
 * Run `unit(ctx, i)` (returning a checksum contribution) through a warm-up,
 * then a timed loop; print ns per `per_unit` items.
 */
typedef uint64_t (*bench_unit_fn)(void *ctx, uint64_t i);

static inline void bench_run(const char *workload, const char *impl,
                             const char *unit_name, double per_unit,
                             bench_unit_fn unit, void *ctx) {
  uint64_t sum = 0, n = 0;
  uint64_t t0 = bench_now_ns();
  do {
    sum += unit(ctx, n++);
  } while (bench_now_ns() - t0 < BENCH_WARMUP_NS);
  uint64_t t1 = bench_now_ns();
  for (uint64_t i = 0; i < n; i++) sum += unit(ctx, i);
  uint64_t t2 = bench_now_ns();
  bench_sink += sum;
  bench_print(workload, impl, unit_name,
              (double)(t2 - t1) / ((double)n * per_unit), sum);
}

#endif /* HB_BENCH_H */
