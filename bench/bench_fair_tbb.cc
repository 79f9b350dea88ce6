/*
 * bench_fair_tbb.cc -- oneTBB's tbb::queuing_rw_mutex (fair, queued,
 * MCS-style reader-writer lock) for bench_lock's W4, W5, W5w and W8 rows.
 *
 * bench_lock is C; this file gives it the C++ lock behind three C calls.
 * Each call takes the lock, does the row's access to the counter and
 * releases it, so the row pays one out-of-line call per visit on top of
 * TBB's own (its acquire and release are out of line in libtbb too), as a
 * HyperBuf visit pays its call into the library.  The lock and the counter
 * share a cache line, as the C locks' do in bench_lock.c.
 */
#include <oneapi/tbb/queuing_rw_mutex.h>

#include <cstdint>
#include <new>

namespace {
struct alignas(64) tbb_locked {
  tbb::queuing_rw_mutex mu;
  std::uint64_t counter = 0;
};
} // namespace

extern "C" {

void *bench_tbb_new(void) { return new (std::nothrow) tbb_locked(); }

void bench_tbb_free(void *l) { delete static_cast<tbb_locked *>(l); }

std::uint64_t *bench_tbb_counter(void *l) {
  return &static_cast<tbb_locked *>(l)->counter;
}

/* A write visit: the counter goes up by one under the write lock. */
void bench_tbb_write(void *l) {
  tbb_locked *t = static_cast<tbb_locked *>(l);
  tbb::queuing_rw_mutex::scoped_lock lock(t->mu, true);
  t->counter++;
}

/* A read visit: the counter, read under the read lock. */
std::uint64_t bench_tbb_read(void *l) {
  tbb_locked *t = static_cast<tbb_locked *>(l);
  tbb::queuing_rw_mutex::scoped_lock lock(t->mu, false);
  return t->counter;
}

} // extern "C"
