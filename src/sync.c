/*
 * sync.c -- futex wrappers and the slow path of the internal mutex.
 *
 * The mutex is Drepper's three-state futex lock ("Futexes Are Tricky",
 * mutex #2): 0 unlocked, 1 locked, 2 locked and maybe sleepers.  It guards
 * only the visitor wait queue, whose critical sections are a few pointer
 * moves, so the slow path spins briefly before it sleeps.
 *
 * hb__sleep_until is the one sleep-on-a-word loop of the visitor side: a
 * waiter sets a SLEEPER bit in the word by CAS before it sleeps, and
 * whoever ends the wait changes the word with an RMW that returns the bit,
 * making a futex wake only when it was set.
 */
#include "internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

void hb__futex_wait(uint32_t *addr, uint32_t expected) {
  /* Returns on a wake, a signal, a spurious wake, or when *addr !=
   * expected; every caller re-checks its condition in a loop. */
  syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void hb__futex_wake_all(uint32_t *addr) {
  syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

/* The waits on a visitor's state (settling, a PARKED turn) and on a bias
 * decision all end here.  The CAS that sets `sleeper` and every reload are
 * ACQUIRE: they pair with the RELEASE of whoever ends the wait -- an RMW
 * that returns `sleeper` and wakes only if it was set (the grant's
 * fetch_or, hb__call_wakers' fetch_and, the revoker's exchange), or
 * hb_cancel's store of CANCELLED, after which it always wakes. */
uint32_t hb__sleep_until(uint32_t *word, uint32_t sleeper,
                         bool (*done)(uint32_t)) {
  uint32_t s = __atomic_load_n(word, __ATOMIC_ACQUIRE);
  while (!done(s)) {
    if (!(s & sleeper) &&
        !__atomic_compare_exchange_n(word, &s, s | sleeper, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
      continue; /* s was reloaded */
    hb__futex_wait(word, s | sleeper);
    s = __atomic_load_n(word, __ATOMIC_ACQUIRE);
  }
  return s;
}

#define HB__SETTLE_SPINS 256

/* Spin up to HB__SETTLE_SPINS pauses for done(*word), then sleep for it. */
uint32_t hb__settle_until(uint32_t *word, uint32_t sleeper,
                          bool (*done)(uint32_t)) {
  for (int i = 0; i < HB__SETTLE_SPINS; i++) {
    uint32_t s = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    if (done(s)) return s;
    hb__cpu_relax();
  }
  return hb__sleep_until(word, sleeper, done);
}

void hb__mutex_wake(hb__mutex *m) {
  syscall(SYS_futex, &m->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void hb__mutex_lock_slow(hb__mutex *m) {
  for (int i = 0; i < 100; i++) {
    uint32_t zero = 0;
    if (__atomic_load_n(&m->word, __ATOMIC_RELAXED) == 0 &&
        __atomic_compare_exchange_n(&m->word, &zero, 1, false,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
      return;
    hb__cpu_relax();
  }
  /* Mark "sleepers" and sleep until we take it as 0 -> 2.  The ACQUIREs
   * here pair with hb__mutex_unlock's RELEASE exchange (internal.h). */
  while (__atomic_exchange_n(&m->word, 2, __ATOMIC_ACQUIRE) != 0)
    hb__futex_wait(&m->word, 2);
}

/* 0 not yet asked, 1 registered, 2 not available.  The ACQUIRE load
 * pairs with the RELEASE store of the first caller's answer. */
static int hb__membarrier_state;

bool hb__asym_fence_ready(void) {
  int st = __atomic_load_n(&hb__membarrier_state, __ATOMIC_ACQUIRE);
  if (st == 0) {
    /* Registering twice is harmless, so racing first callers may both. */
    long ok = syscall(SYS_membarrier,
                      MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
    st = ok == 0 ? 1 : 2;
    __atomic_store_n(&hb__membarrier_state, st, __ATOMIC_RELEASE);
  }
  return st == 1;
}

void hb__asym_fence(void) {
  /* Registered before any buffer was biased, so this cannot fail short of
   * a kernel that changed its mind; the global form needs no registration. */
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 ||
      syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0)
    return;
  fprintf(stderr, "hyperbuf: membarrier failed (errno %d)\n", errno);
  abort();
}
