/*
 * internal.h -- what the library's sources share and users never see.
 *
 * Non-static internals are named hb__*.  Atomics use the GCC/Clang
 * __atomic builtins on plain integer fields, so the public header stays
 * valid C++ (no _Atomic in it).
 */
#ifndef HB_INTERNAL_H
#define HB_INTERNAL_H

#include "hyperbuf.h"
#include "bits.h" /* the lock word's high bits count finished reads;
                     hb_stats_get (src/buf.c) adds them up */

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HB__MAX_ALIGN ((size_t)alignof(max_align_t))

/* ---- allocator (src/buf.c) ---- */
void *hb__malloc(size_t n);
void *hb__realloc(void *p, size_t n);
void hb__free(void *p);
/* All three are the C library's (hb_set_allocator sets it): only then may
 * the slot of src/slot.c keep buffers.  Hidden, so that hb_new and hb_free
 * read it with one RIP-relative load, as when it was static, not through
 * the GOT. */
extern bool hb__alloc_standard __attribute__((visibility("hidden")));

/* ---- a futex mutex: zero is unlocked, so a zeroed buffer needs no init ----
 * Used only around the visitor wait queue: short critical sections, no
 * callbacks and no wakers run under it. */
typedef struct {
  uint32_t word; /* 0 unlocked, 1 locked, 2 locked with sleepers */
} hb__mutex;

void hb__mutex_lock_slow(hb__mutex *m);
void hb__mutex_wake(hb__mutex *m);

static inline void hb__mutex_lock(hb__mutex *m) {
  uint32_t zero = 0;
  if (!__atomic_compare_exchange_n(&m->word, &zero, 1, false,
                                   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
    hb__mutex_lock_slow(m);
}

static inline void hb__mutex_unlock(hb__mutex *m) {
  /* Pairs with the ACQUIRE in hb__mutex_lock{,_slow}.  After the exchange
   * the mutex may be freed by another thread; hb__mutex_wake only passes
   * its address to the kernel, which is harmless then. */
  if (__atomic_exchange_n(&m->word, 0, __ATOMIC_RELEASE) == 2)
    hb__mutex_wake(m);
}


/* ---- an asymmetric fence (src/sync.c) ----
 * hb__asym_fence acts as a full memory barrier on every thread of the
 * process (membarrier(2)), so those threads may order a store before a
 * load with a compiler barrier alone.  hb__asym_fence_ready registers the
 * process, once; it is false where the kernel cannot do it. */
bool hb__asym_fence_ready(void);
void hb__asym_fence(void);

/* ---- futex wrappers (src/sync.c) ---- */
void hb__futex_wait(uint32_t *addr, uint32_t expected);
void hb__futex_wake_all(uint32_t *addr);

/* Sleep on *word until done(its value), and return that value.  Before
 * each sleep, `sleeper` is set in the word by CAS, so that whoever changes
 * the word next knows to make a futex wake. */
uint32_t hb__sleep_until(uint32_t *word, uint32_t sleeper,
                         bool (*done)(uint32_t));
/* The same after a short spin: for waits that usually end within
 * nanoseconds. */
uint32_t hb__settle_until(uint32_t *word, uint32_t sleeper,
                          bool (*done)(uint32_t));
static inline void hb__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* ---- the buffer as the library allocates it ---- */
typedef struct hb__buf {
  hb_buf pub;            /* first: an hb_buf * is an hb__buf * */
  /* visitor mode: the wait queue, under mu.  Right behind the lock word
   * (pub.lock) on purpose: a contended hand-off touches the lock word, the
   * mutex and the queue's ends, and these 40 bytes lie on at most two
   * cache lines, whatever the allocator's 16-byte alignment makes of the
   * header (see "A HAND-OFF, LINE BY LINE" in src/lock.c). */
  hb__mutex mu;
  uint32_t qlen;
  hb_visitor *head, *tail;
  /* Read by every visit of every thread (the bias owner, the alignment
   * the type check compares with, the stream pointer): within the first 96
   * bytes, so never on a line with writes_run, which every write visit
   * writes (at the end, 88 bytes on: a line holds 64).  Mixed on one line, a write visit on one
   * core and a read visit on the other would move it at every visit. */
  const void *bias_owner;  /* the bias (see "BIAS" in src/bias.c).  NULL:
                              never tried; the biased thread's token; or
                              HB__BIAS_SHARED (atomic) */
  size_t align;          /* alignment of pub.data */
  struct hb__stream *stream; /* stream: hb_stream_open's state, or NULL
                                (src/stream.c); read by every visit */
  const void *bias_thread; /* the thread it was ever biased to (set once) */
  uint32_t bias_decision;  /* what the revoker found (atomic, futex word) */
  /* hb_block_on's spin budget follows this average wait (atomic, a hint:
   * racing updates may lose one sample, never correctness) */
  uint32_t wait_avg_ns;
  void *raw;             /* the separate data allocation, NULL while the
                            data still lives in this allocation */
  /* statistics; see hb_stats_get for who writes which */
  uint64_t aborted;         /* under the write ticket */
  uint64_t reserve_failed;  /* under the write ticket */
  uint64_t growths;         /* under exclusive access */
  uint64_t bytes_moved;     /* under exclusive access */
  uint64_t cancelled;       /* atomic */
  uint64_t read_wraps;      /* atomic: carries of the lock word's count */
  uint64_t bias_reads;      /* the biased thread's own read visits */
  uint64_t longest_queue;   /* under mu */
  uint64_t writes_run;      /* under the write ticket; last (see above) */
} hb__buf;
/* The layout above: no line holds both writes_run and a read-hot field. */
_Static_assert(offsetof(hb__buf, writes_run) >=
                   offsetof(hb__buf, stream) + sizeof(void *) + 64,
               "writes_run shares a cache line with what every visit reads");

/* The two intrusive FIFO lists of visitors -- a buffer's wait queue
 * (head/tail, src/lock.c) and a stream's waiting readers (whead/wtail,
 * src/stream.c) -- link through v->next/v->prev, under the buffer's mutex.
 * Each caller keeps its own count. */
static inline void hb__list_push(hb_visitor **head, hb_visitor **tail,
                                 hb_visitor *v) {
  v->next = NULL;
  v->prev = *tail;
  if (*tail != NULL)
    (*tail)->next = v;
  else
    *head = v;
  *tail = v;
}

/* Put the chain first..last (linked by hb__list_push) in front of the
 * list's head. */
static inline void hb__list_splice_front(hb_visitor **head, hb_visitor **tail,
                                         hb_visitor *first, hb_visitor *last) {
  first->prev = NULL;
  last->next = *head;
  if (*head != NULL)
    (*head)->prev = last;
  else
    *tail = last;
  *head = first;
}

static inline void hb__list_unlink(hb_visitor **head, hb_visitor **tail,
                                   hb_visitor *v) {
  if (v->prev != NULL)
    v->prev->next = v->next;
  else
    *head = v->next;
  if (v->next != NULL)
    v->next->prev = v->prev;
  else
    *tail = v->prev;
  v->next = v->prev = NULL;
}

/* Add to a counter that only its owner (a write-ticket or direct-mode
 * holder) changes while hb_stats_get may read it: no RMW, no data race. */
#define HB__BUMP(field, n)                                                   \
  __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), \
                   __ATOMIC_RELAXED)

static inline hb__buf *hb__ext(hb_buf *b) { return (hb__buf *)b; }

/* Reserve without the direct-mode check (views use it). */
static inline int hb__reserve(hb_buf *b, size_t n) {
  if (HB__LIKELY(b->cap - b->len >= n)) return HB_OK;
  return hb__grow(b, n);
}
int hb__put_bytes(hb_buf *b, const void *src, size_t n);
/* hb_free's last step (src/buf.c): give e's memory back to the allocator.
 * @return HB_OK. */
int hb__free_memory(hb__buf *e);

/* Invariant checker (src/check.c), for tests: aborts with a message naming
 * the broken invariant and both sides of it.  Cheap enough to call after
 * every mutation. */
void hb__check(hb_buf *b);

/* For tests: has v's turn come? (src/visitor.c) */
bool hb__load_granted(const hb_visitor *v);
/* For tests: is a driver parked on v (hb_block_on waiting)? */
bool hb__load_parked(const hb_visitor *v);

/* For tests (src/bias.c): can buffers be biased in this build and on
 * this kernel, and is b biased now? */
bool hb__bias_available(void);
bool hb__is_biased(const hb_buf *b);
bool hb__bias_moved(const hb_buf *b); /* revoked with a visit in flight */

/* ---- what a callback sees ----
 * hb__run_fn (src/visit.h) builds it on the driver's stack; src/view.c
 * reads it.  I/O inside a write visitor (src/io.c) appends through it too. */
struct hb_view {
  hb_buf *buf;
  const hb_type *type; /* the cast type (the visitor's, or hb_*_now's) */
  size_t start_len; /* length when the visit began: the rollback point */
  size_t size;      /* cast element size */
  int write;        /* a write visit */
  unsigned shift;   /* log2(size) when size is a power of two, else
                       HB__NO_SHIFT: a shift instead of a division */
  /* stream: the window of a visit on a stream (src/stream.c), 0 else */
  size_t skip;      /* bytes of hb_data() before the view's first byte */
  int eof;          /* the stream was closed when the visit began */
};
#define HB__NO_SHIFT 255u

#endif /* HB_INTERNAL_H */
