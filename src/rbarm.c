/*
 * rbarm.c -- the read bias (src/rbias.c): when a buffer is read-mostly,
 * and arming it -- the reader table's allocation and the CAS that sets
 * RBIAS, under the mutex, only where I1 and I3 (src/rbias.c) allow.
 *
 *   When.  RWANT (not live) says "read-mostly".  Every 256th lock-word
 *   read release (the count's low 8 bits wrap: one test, the carry's;
 *   every 64th cost the shared W4 read 0.13 ns of 8.2) calls
 *   hb__read_milestone: at most 16 writes since the last one, which
 *   another thread made, a shared buffer, no stream -> set RWANT; more
 *   writes -> clear it.  A revocation clears it when fewer than 16 fast
 *   reads ran since the last one.  So one thread alone (W4) and 1:1 (W5)
 *   never arm, and W8's readers re-arm at the first read after each
 *   write.
 */
#include "rbias.h"
#include "bias.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HB__RB_MILE_WRITES 16 /* at most this many writes per 256 reads */
/* The lock word allows arming: none of these. */
#define HB__RB_NO_ARM                                                        \
  (HB__W_WRITER | HB__W_WAITERS | HB__W_NEXT_BITS | HB__W_BIASED |           \
   HB__W_RBIAS)

void hb__rbias_free(hb__buf *e) { hb__free(hb__rb_head(e->rb_tab)->raw); }

/* ---- switches -------------------------------------------------------------
 * Plain atomics: on under ThreadSanitizer too, which checks it.  -1: the
 * environment not read yet. */
static int hb__rb_on = -1;

static bool hb__rbias_on(void) {
  int on = __atomic_load_n(&hb__rb_on, __ATOMIC_RELAXED);
  if (HB__UNLIKELY(on < 0)) {
    const char *v = getenv("HB_NO_RBIAS");
    on = !(v != NULL && strcmp(v, "1") == 0);
    __atomic_store_n(&hb__rb_on, on, __ATOMIC_RELAXED);
  }
  return on != 0;
}

void hb__rbias_enable(bool on) {
  __atomic_store_n(&hb__rb_on, on ? 1 : 0, __ATOMIC_RELAXED);
}

/* The test hooks' ACQUIRE loads pair with the RELEASE side of the arming
 * CAS (hb__rbias_arm) and of V1 (hb__rbias_revoke). */
#define HB__RB_HAS(b, bit)                                                   \
  ((__atomic_load_n(&(b)->lock, __ATOMIC_ACQUIRE) & (bit)) != 0)
bool hb__rbias_armed(const hb_buf *b) { return HB__RB_HAS(b, HB__W_RBIAS); }
bool hb__rbias_wanted(const hb_buf *b) { return HB__RB_HAS(b, HB__W_RWANT); }

/* log2 K: 2 x online CPUs rounded up to a power of two, 4..64.  Racing
 * first calls compute the same value. */
static uint8_t hb__rb_lg_k(void) {
  static uint8_t lg;
  uint8_t v = __atomic_load_n(&lg, __ATOMIC_RELAXED);
  if (v == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    v = 2;
    while (v < 6 && (1L << v) < 2 * n) v++;
    __atomic_store_n(&lg, v, __ATOMIC_RELAXED);
  }
  return v;
}

/* May e be read-biased at all: on, no stream, and shared (never on a
 * buffer the one-thread bias owns or has not yet tried). */
static bool hb__rb_may(const hb__buf *e) {
  return hb__rbias_on() && e->stream == NULL && hb__bias_shared(e);
}

/* Set or clear RWANT, a hint: RELAXED, it orders nothing (an RMW, so it
 * keeps the release sequences of the word's other RMWs). */
void hb__rb_want(hb__buf *e, bool want) {
  uint64_t *lock = &e->pub.lock;
  uint64_t w = __atomic_load_n(lock, __ATOMIC_RELAXED);
  while (((w & HB__W_RWANT) != 0) != want &&
         !__atomic_compare_exchange_n(lock, &w, w ^ HB__W_RWANT, true,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

/* ---- when: the read milestone ---------------------------------------------
 */
void hb__read_milestone(uint64_t *lock, uint64_t old) {
  hb__buf *e = hb__ext((hb_buf *)((char *)lock - offsetof(hb_buf, lock)));
  /* The count's carry, as before: RELEASE pairs with hb_stats_get's
   * ACQUIRE loads of read_wraps. */
  if ((old >> HB__DONE_SHIFT) == (UINT64_MAX >> HB__DONE_SHIFT))
    __atomic_fetch_add(&e->read_wraps, 1, __ATOMIC_RELEASE);
  /* Hints without the mutex: two milestones racing lose a sample.  What
   * is already so is left alone (old's RWANT): a milestone that changes
   * nothing costs a few loads, every 256 reads. */
  uint32_t wr = (uint32_t)__atomic_load_n(&e->writes_run, __ATOMIC_RELAXED);
  uint32_t last = __atomic_load_n(&e->rb_mile_writes, __ATOMIC_RELAXED);
  /* The thread, hashed to 32 bits, never 0 (0: no milestone yet); two
   * threads alike only make a milestone look like the other's. */
  uint32_t me = (uint32_t)(hb__rb_hash() >> 32) | 1u;
  uint32_t prev = __atomic_load_n(&e->rb_mile_thread, __ATOMIC_RELAXED);
  if (wr != last) __atomic_store_n(&e->rb_mile_writes, wr, __ATOMIC_RELAXED);
  if (prev != me) __atomic_store_n(&e->rb_mile_thread, me, __ATOMIC_RELAXED);
  if (wr - last > HB__RB_MILE_WRITES) {
    if (old & HB__W_RWANT) hb__rb_want(e, false);
  } else if (prev != 0 && prev != me && !(old & HB__W_RWANT)) {
    /* a second reading thread: the table can pay */
    hb__rb_want(e, hb__rb_may(e));
  }
}

/* ---- arming ---------------------------------------------------------------
 */

/* w allows arming, and no moved reader of an earlier revocation is still
 * in: ACQUIRE pairs with M's and V4's fetch_sub (I3). */
static bool hb__rb_armable(hb__buf *e, uint64_t w) {
  return (w & HB__W_RWANT) && !(w & HB__RB_NO_ARM) &&
         __atomic_load_n(&e->rb_refs, __ATOMIC_ACQUIRE) == 0;
}

/* R0: a reader saw RWANT without RBIAS.  The table is allocated outside
 * the mutex (the loser of a race frees its own); failing that, RWANT is
 * cleared -- unarmed, and the next milestone may ask again, rather than
 * every read trying the allocator. */
void hb__rbias_arm(hb__buf *e) {
  uint64_t *lock = &e->pub.lock;
  if (!hb__rb_may(e)) {
    hb__rb_want(e, false);
    return;
  }
  if (!hb__rb_armable(e, __atomic_load_n(lock, __ATOMIC_RELAXED))) return;
  void *raw = NULL;
  hb__rbslot *t = NULL;
  uint8_t lg = hb__rb_lg_k();
  if (__atomic_load_n(&e->rb_tab, __ATOMIC_ACQUIRE) == NULL) {
    size_t size = (((size_t)1 << lg) + 1) * sizeof(hb__rbslot); /* + head */
    raw = hb__malloc(size + 63);
    if (raw == NULL) {
      hb__rb_want(e, false);
      return;
    }
    hb__rbhead *h =
        (hb__rbhead *)(void *)((char *)raw + (-(uintptr_t)raw & 63));
    memset(h, 0, size);
    h->raw = raw;
    t = (hb__rbslot *)(void *)(h + 1);
  }
  hb__mutex_lock(&e->mu);
  if (raw != NULL && __atomic_load_n(&e->rb_tab, __ATOMIC_RELAXED) == NULL) {
    e->rb_shift = (uint8_t)(64 - lg);
    /* RELEASE: the zeroed slots and rb_shift before the pointer; pairs with
     * R1's ACQUIRE load (and hb_stats's). */
    __atomic_store_n(&e->rb_tab, t, __ATOMIC_RELEASE);
    raw = NULL;
  }
  uint64_t w = __atomic_load_n(lock, __ATOMIC_RELAXED);
  /* ACQ_REL: RELEASE pairs with R3's load (the table before RBIAS);
   * ACQUIRE, as any grant, with the last writer's release. */
  while (__atomic_load_n(&e->rb_tab, __ATOMIC_RELAXED) != NULL &&
         hb__rb_may(e) && hb__rb_armable(e, w) &&
         !__atomic_compare_exchange_n(lock, &w, w | HB__W_RBIAS, false,
                                      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
  }
  hb__mutex_unlock(&e->mu);
  hb__free(raw); /* another reader's table went in first */
}
