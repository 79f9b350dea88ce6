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

/* ---- the buffer as the library allocates it ----
 *
 * The public part comes last, at the start of a cache line of its own, and
 * the first inline bytes follow it on that same line: the lock word
 * (pub.lock, at 32) and the first 16 bytes of a buffer that never grew (at
 * 48) share one line, as a lock and the small struct it guards do.  Two
 * threads taking turns on a small buffer then move one line per visit, not
 * two (see "A HAND-OFF, LINE BY LINE" in src/lock.c).  hb_new places the
 * header 64-aligned in its allocation (the allocator's is 16) and keeps
 * the shift to free it by.  Before it, a line of what every visit reads
 * and nobody writes per visit, and before that the statistics and the
 * queue, which visits and the queue's mutex do write. */
typedef struct hb__buf {
  /* statistics; see hb_stats_get for who writes which */
  uint64_t aborted;         /* under the write ticket */
  uint64_t reserve_failed;  /* under the write ticket */
  uint64_t growths;         /* under exclusive access */
  uint64_t bytes_moved;     /* under exclusive access */
  uint64_t cancelled;       /* atomic */
  uint64_t read_wraps;      /* atomic: carries of the lock word's count */
  uint64_t bias_reads;      /* the biased thread's own read visits */
  uint64_t longest_queue;   /* under mu */
  uint64_t writes_run;      /* under the write ticket */
  /* the read bias's want (src/rbarm.c): writes_run's low half and a hash
   * of the reading thread at the last read milestone (atomic, hints:
   * written at most every 256 reads) */
  uint32_t rb_mile_writes;
  uint32_t rb_mile_thread;
  void *raw;             /* the separate data allocation, NULL while the
                            data still lives in this allocation */
  /* visitor mode: the wait queue, under mu */
  hb__mutex mu;
  uint32_t qlen;
  hb_visitor *head, *tail;
  /* the read bias (src/rbias.c): the revoker's reference and one per moved
   * reader still in (atomic) */
  uint32_t rb_refs;
  /* Read by every visit of every thread (the bias owner, the alignment
   * the type check compares with, the stream pointer), written at most
   * once per buffer or per long wait: a line of their own, so that no
   * visit's or mutex's write moves it between cores. */
  _Alignas(64) const void *bias_owner; /* the bias (see "BIAS" in
                              src/bias.c).  NULL: never tried; the biased
                              thread's token; or HB__BIAS_SHARED (atomic) */
  size_t align;          /* alignment of pub.data */
  struct hb__stream *stream; /* stream: hb_stream_open's state, or NULL
                                (src/stream.c); read by every visit */
  const void *bias_thread; /* the thread it was ever biased to (set once) */
  uint32_t bias_decision;  /* what the revoker found (atomic, futex word) */
  /* hb_block_on's spin budget follows this average wait (atomic, a hint:
   * racing updates may lose one sample, never correctness); written only
   * by waits longer than a microsecond */
  uint32_t wait_avg_ns;
  uint8_t shift;         /* the header's offset in its allocation */
  uint8_t rb_shift;      /* 64 - log2 of the reader table's slots (the
                            slot index's shift), set once */
  /* the reader table (src/rbias.c): set once (RELEASE), before RBIAS is
   * first set; read by every biased one-call read */
  struct hb__rbslot *rb_tab;
  /* last, line-aligned: data/len/cap/cursor, the lock word, held, and
   * right behind them (in this struct's tail padding) the inline bytes */
  _Alignas(64) hb_buf pub;
} hb__buf;
_Static_assert(offsetof(hb__buf, pub) % 64 == 0 &&
                   offsetof(hb_buf, lock) + sizeof(uint64_t) <= 48 &&
                   sizeof(hb_buf) <= 48,
               "the lock word and the first inline bytes share a line");
_Static_assert(offsetof(hb__buf, bias_owner) / 64 !=
                       offsetof(hb__buf, mu) / 64 &&
                   offsetof(hb__buf, bias_owner) / 64 !=
                       offsetof(hb__buf, writes_run) / 64 &&
                   offsetof(hb__buf, shift) / 64 ==
                       offsetof(hb__buf, bias_owner) / 64,
               "what every visit reads has a line of its own");

_Static_assert(offsetof(hb__buf, rb_tab) / 64 ==
                       offsetof(hb__buf, bias_owner) / 64 &&
                   offsetof(hb__buf, pub) == 192,
               "the reader table's pointer is on the read-mostly line, and "
               "the header is three lines, as before the read bias");

/* One slot of the reader table (src/rbias.c): a line of its own.  The
 * line before the first slot is the table's head (hb__rbhead). */
typedef struct hb__rbslot {
  _Alignas(64) uintptr_t owner; /* 0, or the reader's token (| MOVED) */
  uint64_t reads; /* fast reads run through it (its owner's, relaxed) */
} hb__rbslot;
#define HB__RB_MOVED ((uintptr_t)1)
/* hb_free's last step: the reader table (src/rbias.c). */
void hb__rbias_free(hb__buf *e);

/* Where a buffer's inline bytes start, for its alignment. */
#define HB__INLINE_AT(e) ((uint8_t *)&(e)->pub + sizeof(hb_buf))

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

/* HB__BUMP by one, for the counters every visit bumps (writes_run,
 * bias_reads): on x86-64 one add to memory -- its load and its store are
 * each one access of the aligned word, as the two of HB__BUMP are, so a
 * reader sees the old or the new value -- where the compiler makes three
 * instructions of HB__BUMP (it never merges atomics).  ThreadSanitizer
 * cannot see into asm: there it is HB__BUMP. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HB__COUNT_PLAIN 1 /* clang's -fsanitize=thread */
#endif
#endif
#if defined(__x86_64__) && defined(__GNUC__) && \
    !defined(__SANITIZE_THREAD__) && !defined(HB__COUNT_PLAIN)
#define HB__COUNT(field)                                                     \
  do {                                                                       \
    _Static_assert(sizeof(field) == 8, "a 64-bit counter");                  \
    __asm__ __volatile__("addq $1, %0" : "+m"(field));                       \
  } while (0)
#else
#define HB__COUNT(field) HB__BUMP(field, 1)
#endif

static inline hb__buf *hb__ext(hb_buf *b) {
  return (hb__buf *)((char *)b - offsetof(hb__buf, pub));
}
static inline const hb__buf *hb__cext(const hb_buf *b) {
  return (const hb__buf *)((const char *)b - offsetof(hb__buf, pub));
}

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
/* The bias_owner the one-thread bias leaves a shared buffer with. */
bool hb__bias_shared(const hb__buf *e);

/* For tests (src/rbias.c): the read bias on or off (a process-wide switch,
 * also HB_NO_RBIAS=1 in the environment); is b read-biased (RBIAS), and
 * is it marked read-mostly (RWANT)? */
void hb__rbias_enable(bool on);
/* hb_free's and the checked build's look (src/rbias.c): under mu, revoke
 * the read bias if it is all that is live; returns the lock word then. */
uint64_t hb__rbias_quiesce(hb__buf *e);
/* hb_stats: the reads run through the reader table. */
uint64_t hb__rbias_reads(const hb__buf *e);
bool hb__rbias_armed(const hb_buf *b);
bool hb__rbias_wanted(const hb_buf *b);

/* ---- what a callback sees ----
 * struct hb_view is in <hyperbuf/inline.h> (HB_READ_ARRAY inlines its
 * reads); hb__run_fn (src/visit.h) builds it on the driver's stack;
 * src/view.c reads it.  I/O inside a write visitor (src/io.c) appends
 * through it too. */

#endif /* HB_INTERNAL_H */
