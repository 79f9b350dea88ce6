/*
 * slot.c -- hb_new and hb_free, and the per-thread slot stack they share.
 *
 * The protocol held here: a thread keeps up to HB__SLOT_N small freed
 * buffers and hands them back to its own hb_new, with no allocator call
 * (the rules are in the comment below).  hb_new, hb_free and the slot
 * share one file because both fast paths use the slot's thread-local
 * words inline: apart, each would make a call the tuned fast paths do not
 * (bench/ISSUE14.md).  The allocator, the layout of a fresh buffer and
 * the memory release stay in src/buf.c.
 */
#include "internal.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- a per-thread slot for a few small freed buffers ---------------------
 *
 * Code that creates a small buffer, fills it and frees it, over and over
 * (one per message, say), would pay malloc + free every time.  hb_free
 * keeps up to HB__SLOT_N such buffers of a thread in that thread's slot
 * instead, a stack, and hb_new on the thread takes the one on top back if
 * it fits: no allocator call at all.  Several, because messages are often
 * made a few at a time before any is freed (a batch, a scatter list): with
 * one kept buffer, making two then freeing two hit it only half the time
 * and cost more than malloc (bench/ISSUE14.md, W1-live).  The rules that
 * keep this invisible:
 *
 *   - Only with the default allocator (malloc/realloc/free): a custom one
 *     sees every allocation and every free, as the OOM tests need.  The slot
 *     therefore only ever holds memory from malloc, released with free.
 *   - Only buffers whose bytes never left the header's allocation (raw ==
 *     NULL), at the default alignment, with at most HB__SLOT_MAX bytes.
 *     hb_new reports exactly the capacity asked for, as without the slot.
 *   - Only buffers visitor mode never touched, so that taking one back
 *     resets its length, capacity and cursor only: zeroing the whole
 *     ~190-byte header again was a tenth of an hb_new + hb_free pair.
 *     "Never touched" is read off the fields every finished visit leaves
 *     non-zero for good (hb__unvisited); debug builds check the whole
 *     header against it.  A visited buffer is freed as without the slot.
 *   - At most HB__SLOT_N buffers of at most HB__SLOT_MAX bytes each
 *     (~5.6 KiB with their headers) stay kept per thread.
 *   - Thread exit frees the slot (a pthread key destructor), and so does
 *     process exit for the exiting thread (a destructor function): leak
 *     checkers find nothing.  After either, that thread stops using it.
 *   - Off under AddressSanitizer, which must see every free to catch a use
 *     of a buffer after hb_free.
 */
#if defined(__SANITIZE_ADDRESS__)
#define HB__SLOT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HB__SLOT 0
#endif
#endif
#ifndef HB__SLOT
#define HB__SLOT 1
#endif
#define HB__SLOT_MAX 512
#define HB__SLOT_N 8

#if HB__SLOT
#include <pthread.h>

enum { HB__SLOT_NEW, HB__SLOT_ON, HB__SLOT_OFF };
static _Thread_local struct {
  hb__buf *e[HB__SLOT_N];  /* the kept buffers, [0, n); the top is n - 1 */
  size_t cap[HB__SLOT_N];  /* their capacities */
  unsigned n;
  int state;     /* HB__SLOT_*: ON once the thread-exit hook is set */
} hb__slot __attribute__((tls_model("initial-exec")));

static pthread_key_t hb__slot_key;
static pthread_once_t hb__slot_once = PTHREAD_ONCE_INIT;
static bool hb__slot_key_ok;

static void hb__slot_drop(void *unused) {
  (void)unused;
  while (hb__slot.n > 0) {
    hb__buf *e = hb__slot.e[--hb__slot.n];
    free((uint8_t *)e - e->shift); /* the default allocator's (slot rule) */
  }
  hb__slot.state = HB__SLOT_OFF;
}

static void hb__slot_key_init(void) {
  hb__slot_key_ok = pthread_key_create(&hb__slot_key, hb__slot_drop) == 0;
}

__attribute__((destructor)) static void hb__slot_exit(void) {
  hb__slot_drop(NULL);
}

/* One flag, set by hb_set_allocator, rather than three comparisons of
 * function pointers on every hb_new and hb_free. */
static inline bool hb__alloc_is_default(void) { return hb__alloc_standard; }

/* The thread's first use of its slot: set the thread-exit hook.  Out of
 * line, so hb_free's fast path needs no stack frame.  @return whether the
 * slot may be used on this thread. */
static __attribute__((noinline)) bool hb__slot_arm(void) {
  if (hb__slot.state == HB__SLOT_OFF) return false;
  pthread_once(&hb__slot_once, hb__slot_key_init);
  /* Any non-NULL value makes the destructor run at thread exit. */
  if (!hb__slot_key_ok || pthread_setspecific(hb__slot_key, &hb__slot) != 0) {
    hb__slot.state = HB__SLOT_OFF;
    return false;
  }
  hb__slot.state = HB__SLOT_ON;
  return true;
}

/* Has visitor mode never touched e?  Every visit that ever finished left
 * one of these non-zero for good, and hb_free lets only buffers with every
 * visitor finished go: a read counts in the lock word's done bits (their
 * carries in read_wraps), a biased buffer has bias_owner set and BIASED in
 * the lock word, a write counts in writes_run, aborted or reserve_failed,
 * a cancel in cancelled.  Then the queue, the mutex, the bias fields and
 * the other counters are still zero too. */
static inline bool hb__unvisited(const hb__buf *e, uint64_t lock) {
  return (lock | (uintptr_t)e->bias_owner | e->writes_run | e->aborted |
          e->reserve_failed | e->cancelled | e->read_wraps) == 0;
}

#ifndef NDEBUG
/* What hb__unvisited stands for: every header word before the public part
 * (but align and the one holding shift; raw is NULL in the slot) still
 * zero, and held too. */
static void hb__slot_verify(const hb__buf *e) {
  const unsigned char *p = (const unsigned char *)e;
  uint64_t w;
  const size_t shift_word = offsetof(hb__buf, shift) / sizeof w * sizeof w;
  for (size_t off = 0; off + sizeof w <= offsetof(hb__buf, pub);
       off += sizeof w) {
    memcpy(&w, p + off, sizeof w);
    if (off != offsetof(hb__buf, align) && off != shift_word && w != 0) {
      fprintf(stderr,
              "hyperbuf: buffer %p in the slot looks unvisited but its "
              "header word at offset %zu is 0x%llx (src/slot.c, "
              "hb__unvisited)\n",
              (const void *)e, off, (unsigned long long)w);
      abort();
    }
  }
  if (e->pub.held != 0) abort();
}
#endif

/* Keep e in this thread's slot, armed (HB__SLOT_ON); false if it cannot
 * be kept. */
static inline __attribute__((always_inline)) bool hb__slot_put(hb__buf *e,
                                                       uint64_t lock) {
  unsigned n = hb__slot.n;
  if (e->raw != NULL || e->align != HB__MAX_ALIGN ||
      e->pub.cap > HB__SLOT_MAX || n == HB__SLOT_N ||
      !hb__alloc_is_default() || !hb__unvisited(e, lock))
    return false;
#ifndef NDEBUG
  hb__slot_verify(e);
#endif
  hb__slot.e[n] = e;
  hb__slot.cap[n] = e->pub.cap;
  hb__slot.n = n + 1;
  return true;
}
#endif /* HB__SLOT */

/* ---- creation ----------------------------------------------------------- */

hb_buf *hb_new(size_t capacity) {
#if HB__SLOT
  unsigned n = hb__slot.n;
  if (n > 0 && capacity <= hb__slot.cap[n - 1] && hb__alloc_is_default()) {
    hb__buf *e = hb__slot.e[n - 1];
    hb__slot.n = n - 1;
    /* Unvisited (hb__slot_put): data, align and the zeroes are as hb__init
     * left them. */
    e->pub.len = 0;
    e->pub.cap = capacity;
    e->pub.cursor = 0;
    return &e->pub;
  }
#endif
  return hb_new_aligned(capacity, HB__MAX_ALIGN);
}

/* ---- release ------------------------------------------------------------ */

#if HB__SLOT
/* The thread's first hb_free (or a thread whose slot is off). */
static __attribute__((noinline)) int hb__free_unarmed(hb__buf *e,
                                                      uint64_t lock) {
  if (hb__slot_arm() && hb__slot_put(e, lock)) return HB_OK;
  return hb__free_memory(e);
}
#endif

/* Nothing of e is live: keep it in the slot, or free it. */
static inline __attribute__((always_inline)) int hb__free_tail(hb__buf *e,
                                                               uint64_t lock) {
  if (HB__UNLIKELY(e->stream != NULL) && hb__stream_free(e) != HB_OK)
    return HB_EBUSY; /* stream: readers wait for data, or consumers remain */
#if HB__SLOT
  if (HB__UNLIKELY(hb__slot.state != HB__SLOT_ON))
    return hb__free_unarmed(e, lock);
  if (hb__slot_put(e, lock)) return HB_OK;
#else
  (void)lock;
#endif
  return hb__free_memory(e);
}

/* A visitor still live, or a thread still inside the wait queue's mutex:
 * take the mutex, which waits such a thread out, and look again -- ending
 * the read bias if that is all that is live (its RBIAS bit is in the live
 * half; a reader in its table is moved and stays live: HB_EBUSY). */
static __attribute__((noinline)) int hb__free_slow(hb__buf *e) {
  uint64_t lock = hb__rbias_quiesce(e);
  if ((lock & HB__LIVE_MASK) != 0) return HB_EBUSY;
  return hb__free_tail(e, lock);
}

int hb_free(hb_buf *b) {
  if (b == NULL) return HB_OK;
  hb__buf *e = hb__ext(b);
  /* A thread may still be inside a wait-queue critical section although
   * no visitor is live any more (the dispatcher clears WAITERS under the
   * mutex, then unlocks it).  Fast path, no atomic read-modify-write: the
   * lock word shows nothing live, and then -- in this order -- the mutex is
   * free.  The ACQUIRE load of the lock word pairs with the RELEASE of
   * whatever made it zero (hb__release, hb__dispatch's fetch_and); a
   * dispatcher that did so while holding the mutex locked it before, so the
   * second load sees it still held, or its unlock (the RELEASE exchange in
   * hb__mutex_unlock, its last touch of *e).  Otherwise take the mutex
   * (hb__free_slow): that waits such a thread out, exactly as before. */
  if (__atomic_load_n(&b->held, __ATOMIC_RELAXED) != 0)
    return HB_EBUSY; /* inside this thread's own biased visit */
  uint64_t lock = __atomic_load_n(&b->lock, __ATOMIC_ACQUIRE);
  if (HB__UNLIKELY((lock & HB__LIVE_MASK) != 0 ||
                   __atomic_load_n(&e->mu.word, __ATOMIC_ACQUIRE) != 0))
    return hb__free_slow(e);
  return hb__free_tail(e, lock);
}
