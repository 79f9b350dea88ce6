/*
 * word.h -- the lock word's side of visit.h, included by it (only) after
 * the wakelist: the two ticket modes, the NEXT hand-off folded into a
 * release, the lock's calls (src/lock.c), and the uncontended grant and
 * release every visit inlines.
 */
#ifndef HB_WORD_H
#define HB_WORD_H

/* ---- the two ticket modes ------------------------------------------------
 *
 * What differs between a read ticket and a write ticket, as data (nsync's
 * lock_type idea), so that one grant, one release and one bias path serve
 * both.  Indexed by "is a write"; with a constant index the compiler folds
 * the lookup away.
 */
typedef struct {
  uint64_t ticket;   /* what a granted ticket adds to the lock word */
  uint64_t conflict; /* a grant waits while any of these is set (the fast
                        path also on WAITERS and BIASED); NEXT in both:
                        nobody overtakes the NEXT waiter */
  uint64_t holders;  /* this mode's holders: at a release, old & holders ==
                        ticket means the last one is leaving */
  uint64_t done;     /* what a finished visit adds for hb_stats (reads; a
                        write counts writes_run instead) */
  uint32_t vflag;    /* the mode's flag in a visitor's state */
  uint32_t held;     /* what a biased visit stores in b->held */
} hb__mode;

static inline const hb__mode *hb__mode_of(bool write) {
  static const hb__mode modes[2] = {
      /* READERS_FULL: at 2^26 granted readers the next one waits (only
       * V1's share and a bias's moved hold are added past it, one each) */
      {HB__W_READER, HB__W_WRITER | HB__W_NEXT | HB__W_READERS_FULL,
       HB__W_READERS, HB__W_DONE, 0u, HB__HELD_READ},
      /* RBIAS: no writer while one-call readers may be in the reader
       * table (src/rbias.c, I2) */
      {HB__W_WRITER,
       HB__W_WRITER | HB__W_READERS | HB__W_NEXT | HB__W_RBIAS, HB__W_WRITER,
       0u, HB__V_WRITE, HB__HELD_WRITE},
  };
  return &modes[write];
}

static inline const hb__mode *hb__mode_of_state(uint32_t s) {
  return hb__mode_of((s & HB__V_WRITE) != 0);
}

/* ---- the lock (src/lock.c) ------------------------------------------------
 */

/* The NEXT slot's hand-off (src/next.c): n is the lock word
 * with a release folded in.  If a NEXT waiter is pending and nothing it
 * conflicts with is left, its ticket goes in, NEXT falls and EPOCH flips --
 * in the same RMW as the release, so the lock never looks free while NEXT
 * waits.  A pure function of n, recomputed at every retry of a CAS. */
static inline uint64_t hb__handoff_next(uint64_t n) {
  if (!(n & HB__W_NEXT)) return n;
  bool write = (n & HB__W_NEXT_W) != 0;
  const hb__mode *m = hb__mode_of(write);
  if (n & m->conflict & ~HB__W_NEXT) return n; /* its turn has not come */
  return ((n & ~HB__W_NEXT_BITS) ^ HB__W_EPOCH) + m->ticket;
}

void hb__queue_push(hb__buf *e, hb_visitor *v, bool front);
void hb__queue_unlink(hb__buf *e, hb_visitor *v);
void hb__dispatch(hb__buf *e, hb__wakelist *wl, uint64_t pending);
void hb__release(hb__buf *e, const hb__mode *m, bool ran, hb__wakelist *wl);
bool hb__release_word(hb__buf *e, const hb__mode *m, bool ran);
bool hb__cast_slow(hb__buf *e, hb_visitor *v, uint32_t s);

/* Is a visitor in state s in the wait queue: cast and not yet granted? */
static inline bool hb__queued(uint32_t s) {
  return hb__phase(s) == HB__V_CAST && !(s & HB__V_GRANTED);
}

/* Mark v if it is still queued.  Under the mutex the granter holds:
 * reload v's state into *s, and if v is queued store (*s & ~clear) | set.
 * So either the caller sees the grant in *s, or the granter sees the mark.
 * Returns whether v was queued (and marked); then the mutex stays locked
 * if `hold`, for the caller to finish under it and unlock. */
bool hb__mark_queued(hb__buf *e, hb_visitor *v, uint32_t *s, uint32_t clear,
                     uint32_t set, bool hold);
void hb__call_wakers(hb__wakelist *wl);
void hb__call_waker(hb_visitor *v);
void hb__push_wake(hb__wakelist *wl, hb_visitor *v, bool front);

/* The uncontended grant: one CAS, while nothing conflicting is granted and
 * nobody waits.  ACQUIRE pairs with the RELEASE of the last ticket's
 * hb__release, so the visit sees what earlier writers wrote. */
/* Fetch a line we are about to load and then RMW in the exclusive state:
 * a plain load first would fetch it shared, and the RMW would then pay a
 * second coherence round to upgrade it -- twice the cross-core latency
 * when the line was last written on the other core, as in every
 * hand-off.  (PREFETCHW; a no-op where there is none.) */
#if defined(__x86_64__) && !defined(__PRFCHW__)
/* GCC emits PREFETCHW for __builtin_prefetch(p, 1) only with -mprfchw,
 * and a plain PREFETCHT0 otherwise -- a shared fetch, the very thing to
 * avoid.  So the instruction itself: every AMD64 CPU has it (3DNow!'s
 * prefetch group, 0F 0D), Intel's since Broadwell, and Intel's older
 * 64-bit ones execute that opcode as a NOP hint. */
#define HB__PREFETCH_RMW(p) __asm__ __volatile__("prefetchw %0" : : "m"(*(p)))
#else
#define HB__PREFETCH_RMW(p) __builtin_prefetch((p), 1, 3)
#endif

/* `also`: more bits that send the caller the slow way (RWANT, for the
 * one-call read: hb__grant_fast_now). */
static inline bool hb__grant_fast_also(hb_buf *b, bool write, uint64_t also) {
  const hb__mode *m = hb__mode_of(write);
  HB__PREFETCH_RMW(&b->lock);
  uint64_t w = __atomic_load_n(&b->lock, __ATOMIC_RELAXED);
  /* A writer's busy mask is the whole live half and BIASED. */
  uint64_t busy = m->conflict | HB__W_WAITERS | HB__W_BIASED | also;
  while (!(w & busy)) {
    uint64_t n = w + m->ticket;
    if (__atomic_compare_exchange_n(&b->lock, &w, n, true, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
      return true;
  }
  return false;
}
static inline bool hb__grant_fast(hb_buf *b, bool write) {
  return hb__grant_fast_also(b, write, 0);
}
/* The one-call visit's grant: a read also fails on RWANT, which sends it
 * to the read bias (src/rbias.c) -- a bit more in the mask the CAS loop
 * tests anyway, so no instruction more on the shared path. */
static inline bool hb__grant_fast_now(hb_buf *b, bool write) {
  return hb__grant_fast_also(b, write, write ? 0 : HB__W_RWANT);
}

/* A read release whose lock-word count reached a multiple of 256 (the
 * RMW's new word has no MILESTONE bit; old, the word before it): count
 * a carry, and decide the read bias's want (src/rbarm.c).  Passed the
 * lock word's address, which the release has in a register (the buffer's
 * would cost its fast path an instruction). */
void hb__read_milestone(uint64_t *lock, uint64_t old);

/* ---- the uncontended release --------------------------------------------
 */

/* hb__release_now's way when somebody waits (src/lock.c): with a wakelist
 * of its own, out of line, so that the uncontended release below needs no
 * frame for one. */
void hb__release_now_slow(hb__buf *e, bool write);

/* Give back a finished visit's ticket of mode m if nobody waits: one CAS
 * (true), else nothing done (false) and the caller takes the slow way.  The
 * visit's writes RELEASE to the next grant's ACQUIRE (hb__grant_fast,
 * hb__cast_slow's fetch_or, hb__dispatch's load); a CAS and not an add so
 * that WAITERS, if it went up meanwhile, sends us the slow way with the
 * ticket still held (a writer then hands it off, src/lock.c).
 * hb__release_now: give back the ticket of an hb_*_now visit, and do what
 * the release unblocked. */
static inline bool hb__release_fast(hb__buf *e, const hb__mode *m) {
  uint64_t *lock = &e->pub.lock;
  /* A stream's write release publishes the end first (hb__release). */
  if (HB__UNLIKELY(m->ticket == HB__W_WRITER && e->stream != NULL))
    return false;
  HB__PREFETCH_RMW(lock);
  uint64_t w = __atomic_load_n(lock, __ATOMIC_RELAXED);
  while (!(w & HB__W_WAITERS)) {
    uint64_t n = hb__handoff_next(w + m->done - m->ticket);
    /* RELEASE also pairs with the ACQUIRE loads of a NEXT waiter's spin
     * (hb__next_wait), which this CAS may hand the lock to. */
    if (__atomic_compare_exchange_n(lock, &w, n, true, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED)) {
      /* Every 256th read (the count's carry among them): one test, as the
       * carry's alone was. */
      if (m->done != 0 && HB__UNLIKELY(!(n & HB__W_MILESTONE)))
        hb__read_milestone(lock, w);
      return true;
    }
  }
  return false;
}

static inline void hb__release_now(hb__buf *e, bool write) {
  if (!hb__release_fast(e, hb__mode_of(write))) hb__release_now_slow(e, write);
}

#endif /* HB_WORD_H */
