/*
 * sync.c -- futex wrappers and the slow path of the internal mutex.
 *
 * The mutex is Drepper's three-state futex lock ("Futexes Are Tricky",
 * mutex #2): 0 unlocked, 1 locked, 2 locked and maybe sleepers.  It guards
 * only the visitor wait queue, whose critical sections are a few pointer
 * moves, so the slow path spins briefly before it sleeps.
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
  /* Mark "sleepers" and sleep until we take it as 0 -> 2. */
  while (__atomic_exchange_n(&m->word, 2, __ATOMIC_ACQUIRE) != 0)
    hb__futex_wait(&m->word, 2);
}

/* 0 not yet asked, 1 registered, 2 not available. */
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
