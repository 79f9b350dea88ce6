/*
 * rbias.c -- the read bias: one-call readers of a read-mostly buffer on
 * many cores announce themselves in a reader table instead of the lock
 * word, whose line then stays shared while no writer comes.
 *
 * READ BIAS
 *
 *   Every shared hb_read_now costs two RMWs on the lock word (the grant's
 *   CAS, the release's), so readers on N cores move that one line at every
 *   visit.  BRAVO (Dice & Kogan, USENIX ATC '19) lets readers announce
 *   themselves in a hashed slot of a table instead while the lock is
 *   "read-biased", and makes a writer revoke that bias and deal with the
 *   announced readers.  Here:
 *
 *     - the table is per buffer (K slots of a line each, K a power of two,
 *       2 x online CPUs, 4..64, allocated at the first arming), so a slot
 *       says only which thread is in: its token (hb__self) or 0;
 *     - a writer does not wait for the announced readers: it moves them
 *       into the lock word as ONE collective read share, which the last
 *       of them to leave gives back (as bias.c's revoker moves the biased
 *       thread's hold), so the queue, the dispatcher and parking do the
 *       waiting as for any reader -- no new spin, no new sleep;
 *     - no membarrier, no clock: entry and exit are RMWs on the reader's
 *       own slot line, and arming is decided by counting.
 *
 *   The reader, a one-call read whose grant failed on RWANT (hb__now_rwait,
 *   src/now.c; hb__rbias_read below):
 *     R0 no RBIAS in the word: try to arm (hb__rbias_arm); still none ->
 *        the ordinary path (hb__now_locked).
 *     R1 t = rb_tab (ACQUIRE); s = t[hash(self)].
 *     R2 CAS s->owner 0 -> self (SEQ_CST); fails (another thread there, or
 *        this one nested in its own fast read) -> the ordinary path.
 *     R3 load the lock word (SEQ_CST).  RBIAS gone: CAS owner self -> 0;
 *        done -> the ordinary path (it queues behind the writer: FIFO
 *        kept); failed -> the revoker marked us MOVED: go on.
 *     R4 the visit, as the shared one-call read runs it (the deadlock
 *        frame pushed: a nested hb_write_now on b answers HB_EDEADLK).
 *     R5 s->reads += 1 (relaxed load and store: we own the slot).
 *     R6 o = exchange owner -> 0 (SEQ_CST).  o has MOVED -> M: drop a
 *        reference (rb_refs); the last one gives the collective share back
 *        (hb__release, no done read: those are in the slots), which
 *        dispatches the writer if it queued.
 *   The revoker, every writer that would wait, under mu, where it also
 *   ends the one-thread bias (hb__rbias_revoke):
 *     V1 CAS the lock word w -> (w & ~RBIAS) + READER (SEQ_CST): the bias
 *        ends and a provisional collective share is taken in one RMW, so
 *        the word never looks free while announced readers may run.
 *     V2 rb_refs = 1: our own reference.
 *     V3 per slot: o = owner (SEQ_CST); o set and not MOVED: rb_refs += 1,
 *        then CAS owner o -> o | MOVED; failed (it left, or another came):
 *        rb_refs -= 1.  And sum the slots' reads, for the want.
 *     V4 rb_refs -= 1; it was 1 (nobody moved, or all left): give the
 *        share back ourselves, under mu (hb__release_word, and
 *        hb__dispatch if it asks for it).
 *   Then the writer casts as before; the share, if still held, makes it
 *   queue, and the last moved reader's release grants it.
 *
 *   Why it is correct.
 *     - R2/R3 against V1/V3 are a Dekker pair: each side does a SEQ_CST RMW
 *       on its own word, then a SEQ_CST load of the other's.  In the single
 *       total order of SEQ_CST operations either R2 comes before V3's load
 *       of that slot (V3 sees us: we are moved or we leave first, below),
 *       or V3's load comes first, and then V1 comes before R3, which sees
 *       RBIAS gone (a re-arming in between needs rb_refs 0, no WAITERS and
 *       no WRITER, under mu: a new bias, which the next revoker handles).
 *     - R6 against V3's CAS: two RMWs on the same owner word are ordered,
 *       so either V3's CAS comes first (R6 returns MOVED: we hold a share
 *       of the moved one) or R6 does (the CAS fails: not moved; our
 *       callback's loads are before R6's RELEASE, which V3's SEQ_CST
 *       load -- or the failed CAS -- reads).  V3 adds its reference before
 *       the CAS, and R6 is ACQUIRE too, so M's fetch_sub sees that add and
 *       rb_refs cannot reach 0 while a moved reader is still in.
 *     - V1's provisional share: between V1 and V4 the word holds a READER,
 *       so no writer (the fast CAS, a NEXT writer's hand-off, the
 *       dispatcher) gets in while a moved reader may still run; without
 *       it the word looks free there (tests/model/rbias.pml).
 *     - Invariants: I1 RBIAS => rb_tab set, no write ticket granted or
 *       waiting; I2 a writer never waits or runs while RBIAS is set --
 *       RBIAS is in the write mode's conflict mask (fast CAS, dispatch,
 *       NEXT hand-off), hb__next_take refuses it, and every caster that
 *       waits (hb__cast_slow, any mode, so WAITERS never shows beside
 *       RBIAS; hb__now_slow's writers) revokes under mu first; I3 rb_refs
 *       is 0 whenever RBIAS is set (arming requires it, ACQUIRE).  So
 *       V4's give-back never finds WAITERS: it dispatches only for safety.
 *     - R3's load reads an RMW in the release sequence of the last
 *       writer's release (arming's CAS is one): its data.  hb_stats stays
 *       exact: the slots' reads (their owners', handed on by R6/R2) count.
 *
 *   When: src/rbarm.c (when a buffer is read-mostly, and arming).
 *
 *   Cost.  A fast read: 2 RMWs on its own slot line (private unless two
 *   threads hash together) and a load of the lock line (shared, not moved,
 *   while no writer comes); the shared path pays nothing more (RWANT is
 *   a bit more in the grant's busy mask).  A revocation: V1's CAS, a load
 *   of each of the K slot lines, two RMWs on rb_refs, two more and a CAS
 *   per moved reader; re-arming: the mutex and one CAS.
 */
#include "rbias.h"
#include "bias.h" /* hb__now_frame, hb__now_call */

#define HB__RB_PAID_READS 16  /* fewer fast reads: the bias did not pay */

/* ---- the reader -----------------------------------------------------------
 */

/* M: a moved reader leaves.  ACQ_REL pairs with the other moved readers'
 * and V4's fetch_sub: the last one's release (RELEASE, hb__release_word)
 * carries all their callbacks' loads before the writer's grant. */
static void hb__rbias_leave(hb__buf *e) {
  if (__atomic_fetch_sub(&e->rb_refs, 1, __ATOMIC_ACQ_REL) != 1) return;
  hb__wakelist wl;
  HB__WAKELIST_INIT(wl);
  hb__release(e, hb__mode_of(false), false, &wl); /* no done read */
  hb__flush(&wl);
}

/* R4 to M, slot s taken: the visit in an hb__now_frame, so that nothing
 * but the frame (and s beside it) is live across fn, as in the shared
 * one-call read's hb__now_plain. */
static __attribute__((noinline)) int hb__rb_run(hb_buf *b, const hb_type *t,
                                                hb_visit_fn fn, void *ctx,
                                                int *result, hb__rbslot *s) {
  struct {
    hb__now_frame f;
    hb__rbslot *s;
  } k;
  k.f.result = result;
  k.s = s;
  int r = hb__now_call(&k.f, &b, t, false, fn, ctx, true); /* R4 */
  if (k.f.result != NULL) *k.f.result = r;
  s = k.s;
  HB__BUMP(s->reads, 1); /* R5: only the owner writes it */
  /* R6: RELEASE, the callback's loads before it (V3's load or CAS reads
   * it); ACQUIRE, pairs with V3's CAS, so M's fetch_sub sees V3's add. */
  if (__atomic_exchange_n(&s->owner, 0, __ATOMIC_SEQ_CST) & HB__RB_MOVED)
    hb__rbias_leave(hb__ext(b)); /* M */
  return HB_OK;
}

/* R1's table found, RBIAS seen: R2 on, the table read. */
static inline __attribute__((always_inline)) int
hb__rb_table(hb_buf *b, const hb_type *t, hb_visit_fn fn, void *ctx,
             int *result, bool wait, hb__rbslot *tab) {
  uint64_t *lock = &b->lock;
  hb__rbslot *s = hb__rb_slot(tab, hb__ext(b)->rb_shift);
  uintptr_t me = (uintptr_t)hb__self(), o = 0;
  /* R2: SEQ_CST, the RMW half of our side of the Dekker pair with V1/V3;
   * ACQUIRE also pairs with R6's RELEASE of the slot's last owner (its
   * reads count). */
  if (!__atomic_compare_exchange_n(&s->owner, &o, me, false, __ATOMIC_SEQ_CST,
                                   __ATOMIC_RELAXED))
    return hb__now_locked(b, t, fn, ctx, result, wait);
  /* R3: the load half, pairs with V1's CAS (and V3's load of our slot).
   * ACQUIRE: the last writer's data, through the word's release sequence. */
  if (!(__atomic_load_n(lock, __ATOMIC_SEQ_CST) & HB__W_RBIAS)) {
    o = me;
    /* Pairs with V3's CAS on our owner: one of the two RMWs is first. */
    if (__atomic_compare_exchange_n(&s->owner, &o, 0, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_RELAXED))
      return hb__now_locked(b, t, fn, ctx, result, wait);
    /* Failed: V3 marked us MOVED first; we hold a share of its READER. */
  }
  return hb__rb_run(b, t, fn, ctx, result, s);
}

/* R0: arm, then the table read once -- or, if a revocation came between
 * (or arming was refused), the ordinary path: never a second arming, so a
 * reader that writers keep revoking under cannot loop here. */
static __attribute__((noinline)) int hb__rb_unarmed(hb_buf *b,
                                                    const hb_type *t,
                                                    hb_visit_fn fn, void *ctx,
                                                    int *result, bool wait) {
  hb__buf *e = hb__ext(b);
  hb__rbias_arm(e);
  /* ACQUIRE: as R1's. */
  hb__rbslot *tab = __atomic_load_n(&e->rb_tab, __ATOMIC_ACQUIRE);
  if (!(__atomic_load_n(&b->lock, __ATOMIC_RELAXED) & HB__W_RBIAS) ||
      tab == NULL)
    return hb__now_locked(b, t, fn, ctx, result, wait);
  return hb__rb_table(b, t, fn, ctx, result, wait, tab);
}

int hb__rbias_read(hb_buf *b, const hb_type *t, hb_visit_fn fn, void *ctx,
                   int *result, bool wait) {
  /* R1: ACQUIRE pairs with hb__rbias_arm's RELEASE store. */
  hb__rbslot *tab = __atomic_load_n(&hb__ext(b)->rb_tab, __ATOMIC_ACQUIRE);
  if (!(__atomic_load_n(&b->lock, __ATOMIC_RELAXED) & HB__W_RBIAS) ||
      tab == NULL)
    return hb__rb_unarmed(b, t, fn, ctx, result, wait); /* R0 */
  return hb__rb_table(b, t, fn, ctx, result, wait, tab);
}

/* ---- the revoker ----------------------------------------------------------
 */

/* V4's give-back, under mu: the collective share's READER out of the word
 * (hb__release_word's CAS, NEXT hand-off included), no done read. */
static void hb__rb_give_back(hb__buf *e, hb__wakelist *wl) {
  if (hb__release_word(e, hb__mode_of(false), false)) hb__dispatch(e, wl, 0);
}

void hb__rbias_revoke(hb__buf *e, hb__wakelist *wl) {
  uint64_t *lock = &e->pub.lock;
  uint64_t w = __atomic_load_n(lock, __ATOMIC_RELAXED);
  /* V1: SEQ_CST, our RMW of the Dekker pair with R2/R3. */
  do
    if (!(w & HB__W_RBIAS)) return;
  while (!__atomic_compare_exchange_n(
      lock, &w, (w & ~HB__W_RBIAS) + HB__W_READER, false, __ATOMIC_SEQ_CST,
      __ATOMIC_RELAXED));
  __atomic_store_n(&e->rb_refs, 1, __ATOMIC_RELAXED); /* V2: it was 0 (I3) */
  hb__rbslot *t = __atomic_load_n(&e->rb_tab, __ATOMIC_RELAXED); /* I1 */
  size_t k = (size_t)1 << (64 - e->rb_shift);
  uint64_t sum = 0;
  for (size_t i = 0; i < k; i++) {
    hb__rbslot *s = &t[i];
    /* V3: SEQ_CST, our load of the Dekker pair with R2/R3; ACQUIRE, a
     * reader that left (R6's RELEASE) is done with the data. */
    uintptr_t o = __atomic_load_n(&s->owner, __ATOMIC_SEQ_CST);
    sum += __atomic_load_n(&s->reads, __ATOMIC_RELAXED);
    if (o == 0 || (o & HB__RB_MOVED)) continue;
    /* The reference first: R6, which reads our CAS, then sees it. */
    __atomic_fetch_add(&e->rb_refs, 1, __ATOMIC_RELAXED);
    /* Pairs with R6's exchange (and R3's CAS): one of them is first. */
    if (!__atomic_compare_exchange_n(&s->owner, &o, o | HB__RB_MOVED, false,
                                     __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
      __atomic_fetch_sub(&e->rb_refs, 1, __ATOMIC_RELAXED); /* not 0: V2 */
  }
  /* The bias did not pay for this revocation: not read-mostly now. */
  hb__rbhead *h = hb__rb_head(t);
  if (sum - h->sum_seen < HB__RB_PAID_READS) hb__rb_want(e, false);
  h->sum_seen = sum;
  /* V4: ACQ_REL, as M's. */
  if (__atomic_fetch_sub(&e->rb_refs, 1, __ATOMIC_ACQ_REL) == 1)
    hb__rb_give_back(e, wl);
}

void hb__rbias_end(hb__buf *e) {
  hb__wakelist wl;
  HB__WAKELIST_INIT(wl);
  hb__mutex_lock(&e->mu);
  hb__rbias_revoke(e, &wl);
  hb__mutex_unlock(&e->mu);
  hb__flush(&wl);
}

void hb__rbias_forbid(hb__buf *e, hb__wakelist *wl) {
  hb__rbias_revoke(e, wl);
  hb__rb_want(e, false); /* and arming checks e->stream, set next */
}

/* ---- hb_free, the checked build, hb_stats ---------------------------------
 */

uint64_t hb__rbias_quiesce(hb__buf *e) {
  hb__wakelist wl;
  HB__WAKELIST_INIT(wl);
  hb__mutex_lock(&e->mu);
  /* ACQUIRE: as hb_free's load (src/slot.c). */
  uint64_t w = __atomic_load_n(&e->pub.lock, __ATOMIC_ACQUIRE);
  if ((w & HB__W_LIVE) == HB__W_RBIAS) {
    hb__rbias_revoke(e, &wl);
    w = __atomic_load_n(&e->pub.lock, __ATOMIC_ACQUIRE);
  }
  hb__mutex_unlock(&e->mu);
  hb__flush(&wl);
  return w;
}

uint64_t hb__rbias_reads(const hb__buf *e) {
  /* ACQUIRE: pairs with hb__rbias_arm's RELEASE store (rb_shift, zeroes). */
  const hb__rbslot *t = __atomic_load_n(&e->rb_tab, __ATOMIC_ACQUIRE);
  uint64_t sum = 0;
  if (t != NULL)
    for (size_t i = 0; i < (size_t)1 << (64 - e->rb_shift); i++)
      sum += __atomic_load_n(&t[i].reads, __ATOMIC_RELAXED);
  return sum;
}
