/*
 * now.c -- cast, visit and run in one call: hb_read_now / hb_write_now,
 * and the thread's record of the callbacks it is running (the deadlock
 * check).
 *
 * THE ONE-CALL FORM
 *
 *   The visitor of hb_read_now / hb_write_now never leaves this function,
 *   so nobody can cancel it: when the ticket is granted at once there is
 *   no claim to make, and the visit costs the grant's CAS and the
 *   release's add (or, on a buffer biased to this thread, no atomic RMW at
 *   all: see BIAS in src/bias.c).  Otherwise a visitor on this stack takes
 *   its place in the queue, marked PARKED: this thread waits on its state
 *   word, and the dispatcher's grant is the whole wake-up -- one RMW on
 *   the waiter's line where hb_block_on needs a waker call, its WAKING
 *   round and a claim.
 *
 *   hb_try_read_now / hb_try_write_now are the same up to that point:
 *   where the one-call form would queue, they return HB_EAGAIN instead.
 *   The fast path's failed CAS took nothing, so a try leaves the lock
 *   word and the queue as it found them (and never overtakes a waiter:
 *   the fast path fails on WAITERS).
 */
#include "bias.h"
#include "rbias.h"

/* The callbacks in flight on this thread, innermost first (hb__run_fn
 * pushes and pops them), and this thread's bias token. */
_Thread_local hb__frame *hb__frames HB__TLS_MODEL;
_Thread_local char hb__me HB__TLS_MODEL;
_Thread_local bool hb__ever_biased HB__TLS_MODEL;

bool hb__inside_frame_of(const hb_buf *b) {
  for (const hb__frame *f = hb__frames; f != NULL; f = f->prev)
    if (f->buf == b) return true;
  return false;
}

/* Biased visits push no frame; they show in b->held, which only the
 * biased thread sets -- and only a thread that ever claimed a bias can be
 * that thread, so the others never read the buffer here (a driver that
 * has not announced itself must not: the buffer may be freed under it,
 * see hb_block_on). */
bool hb__inside_visit_of(const hb_buf *b) {
  if (hb__inside_frame_of(b)) return true;
  if (!hb__ever_biased) return false;
  const hb__buf *e = hb__cext(b);
  return __atomic_load_n(&b->held, __ATOMIC_RELAXED) != 0 &&
         __atomic_load_n(&e->bias_thread, __ATOMIC_RELAXED) == hb__self();
}

/* The fast path could not grant the ticket: end a bias if there is one
 * and try again, then (for hb_*_now, `wait`) queue a visitor of our own
 * and wait for its grant, or (hb_try_*_now) give up.  Returns HB_OK once
 * the ticket is granted, else HB_EAGAIN or HB_EDEADLK with nothing taken.
 * Out of line, so that the fast path's frame holds no visitor. */
static __attribute__((noinline)) int hb__now_slow(hb_buf *b, bool write,
                                                  bool wait) {
  hb__buf *e = hb__ext(b);
  if (__atomic_load_n(&b->lock, __ATOMIC_RELAXED) & HB__W_BIASED) {
    /* Biased to another thread, or to this one inside its own visit: end
     * the bias first, so the deadlock check below sees the real holders. */
    hb__mutex_lock(&e->mu);
    if (__atomic_load_n(&b->lock, __ATOMIC_RELAXED) & HB__W_BIASED)
      hb__unbias(e);
    hb__mutex_unlock(&e->mu);
    if (hb__grant_fast(b, write)) return HB_OK;
  }
  /* A writer ends the read bias (src/rbias.c): the readers in its table
   * are moved into the lock word, ahead of us.  Then as above. */
  if (write && (__atomic_load_n(&b->lock, __ATOMIC_RELAXED) & HB__W_RBIAS)) {
    hb__rbias_end(e);
    if (hb__grant_fast(b, write)) return HB_OK;
  }
  /* The try form: nothing was taken (the failed CAS left the word as it
   * was), so nothing is to give back. */
  if (!wait) return HB_EAGAIN;
  /* Inside a callback or done on b, a ticket that is not granted at
   * once never will be: it would wait for the one this thread is
   * running.  Inside a waker, which must not block, no waiting at all. */
  if (hb__waiting_deadlocks(b)) return HB_EDEADLK;
  if (hb__flushing != NULL) hb__run_pending(); /* could be what we wait for */
  /* With nobody queued, wait in the NEXT slot: spinning on the lock word,
   * whose line a hand-off moves anyway (src/next.c). */
  if (hb__next_wait(e, write)) return HB_OK;
  /* Else queue a visitor of our own and wait for its grant on its state word:
   * nobody else can see it, so no claim, waker or WAKING is needed.  The
   * granter's last touch of it is the grant itself. */
  hb_visitor v = HB_VISITOR_INIT;
  v.buf = b;
  uint32_t s = HB__V_CAST | HB__V_PARKED | hb__mode_of(write)->vflag;
  if (!hb__cast_slow(e, &v, s)) hb__note_wait(e, hb__wait_turn(&v, e));
  return HB_OK;
}

/* ---- the one-call visit ---------------------------------------------------
 *
 * hb__visit_now is the fast path, inlined into each of the four calls;
 * everything rare is a call of its own that the fast path makes last,
 * returning what it returns (hb__now_first, hb__now_wait, hb__now_stream,
 * hb__now_run, hb__now_shared, hb__biased_revoked, hb__biased_grow,
 * hb__biased_after), so that no argument of the visit -- fn, ctx, t,
 * reserve -- is live across a call but that of fn itself.  Kept live
 * across one, each costs every visit a callee-saved register, pushed and
 * popped (W4 paid six pairs of them).  What fn's call needs afterwards --
 * b, result, the deadlock frame's thread-local -- comes back from the
 * stack (hb__now_frame), so that neither path of the four calls saves a
 * register at all (the biased W4 pair: 104 -> 95 instructions).  These
 * calls are never jumps (tail calls): GCC makes none from a function
 * that takes the address of a parameter, as the four take t's. */

/* The shared path from the grant on: the ticket is held. */
static inline __attribute__((always_inline)) int
hb__now_granted(hb_buf *b, const hb_type *t, bool write, size_t reserve,
                hb_visit_fn fn, void *ctx, int *result) {
  int r = hb__run_fn(b, t, write, reserve, fn, ctx, true, 0);
  if (result != NULL) *result = r;
  hb__release_now(hb__ext(b), write);
  return HB_OK;
}

/* hb__now_plain's write whose room must grow first: hb__now_granted. */
static __attribute__((noinline)) int
hb__now_run(hb_buf *b, const hb_type *t, bool write, size_t reserve,
            hb_visit_fn fn, void *ctx, int *result) {
  return hb__now_granted(b, t, write, reserve, fn, ctx, result);
}

/* hb__now_granted on a buffer without a stream, inline in the fast path:
 * the view, the deadlock frame and result in an hb__now_frame, so that
 * nothing but that frame is live across fn. */
static inline __attribute__((always_inline)) int
hb__now_plain(hb_buf *b, const hb_type *t, bool write, size_t reserve,
              hb_visit_fn fn, void *ctx, int *result) {
  if (write && HB__UNLIKELY(hb__room_short(b, reserve)))
    return hb__now_run(b, t, write, reserve, fn, ctx, result);
  hb__now_frame f;
  f.result = result;
  int r = hb__now_call(&f, &b, t, write, fn, ctx, true);
  if (f.result != NULL) *f.result = r;
  hb__release_now(hb__ext(b), write);
  return HB_OK;
}

/* The fast grant failed: hb__now_slow's, then the visit. */
static __attribute__((noinline)) int
hb__now_wait(hb_buf *b, const hb_type *t, bool write, size_t reserve,
             hb_visit_fn fn, void *ctx, int *result, bool wait) {
  int rc = hb__now_slow(b, write, wait);
  if (rc != HB_OK) return rc;
  return hb__now_granted(b, t, write, reserve, fn, ctx, result);
}

/* hb__now_wait for a read, with a read's arguments only (six, all in
 * registers, so that every call of it is a jump). */
static __attribute__((noinline)) int
hb__now_rqueue(hb_buf *b, const hb_type *t, hb_visit_fn fn, void *ctx,
               int *result, bool wait) {
  int rc = hb__now_slow(b, false, wait);
  if (rc != HB_OK) return rc;
  return hb__now_granted(b, t, false, 0, fn, ctx, result);
}

/* A read's grant failed, maybe on RWANT: a read-mostly buffer's read goes
 * to the read bias (src/rbias.c), any other waits as before.  No frame:
 * both ways on are jumps, so the call from the fast path pushes nothing
 * and neither way pays this function's registers. */
static __attribute__((noinline)) int
hb__now_rwait(hb_buf *b, const hb_type *t, hb_visit_fn fn, void *ctx,
              int *result, bool wait) {
  if (__atomic_load_n(&b->lock, __ATOMIC_RELAXED) & HB__W_RWANT)
    return hb__rbias_read(b, t, fn, ctx, result, wait);
  return hb__now_rqueue(b, t, fn, ctx, result, wait);
}

int hb__now_locked(hb_buf *b, const hb_type *t, hb_visit_fn fn, void *ctx,
                   int *result, bool wait) {
  if (!hb__grant_fast(b, false))
    return hb__now_rqueue(b, t, fn, ctx, result, wait);
  return hb__now_granted(b, t, false, 0, fn, ctx, result);
}

/* The shared path on a stream: no write once it is closed. */
static __attribute__((noinline)) int
hb__now_stream(hb_buf *b, const hb_type *t, bool write, size_t reserve,
               hb_visit_fn fn, void *ctx, int *result, bool wait) {
  if (write && hb__stream_closed(hb__ext(b))) return HB_ECLOSED;
  if (!hb__grant_fast(b, write))
    return hb__now_wait(b, t, write, reserve, fn, ctx, result, wait);
  return hb__now_granted(b, t, write, reserve, fn, ctx, result);
}

/* The shared path: the fast grant, else hb__now_wait, then the visit.  A
 * stream is opened only while nothing else is done on b (hb_stream_open),
 * so one look at e->stream serves the whole visit. */
static inline __attribute__((always_inline)) int
hb__now_take(hb_buf *b, const hb_type *t, bool write, size_t reserve,
             hb_visit_fn fn, void *ctx, int *result, bool wait) {
  if (HB__UNLIKELY(hb__ext(b)->stream != NULL))
    return hb__now_stream(b, t, write, reserve, fn, ctx, result, wait);
  if (HB__UNLIKELY(!hb__grant_fast_now(b, write)))
    return write ? hb__now_wait(b, t, true, reserve, fn, ctx, result, wait)
                 : hb__now_rwait(b, t, fn, ctx, result, wait);
  return hb__now_plain(b, t, write, reserve, fn, ctx, result);
}

int hb__now_shared(hb_buf *b, const hb_type *t, bool write, size_t reserve,
                   hb_visit_fn fn, void *ctx, int *result, bool wait) {
  return hb__now_take(b, t, write, reserve, fn, ctx, result, wait);
}

int hb__biased_revoked(hb_buf *b, const hb_type *t, bool write,
                       size_t reserve, hb_visit_fn fn, void *ctx,
                       int *result, bool wait) {
  if (hb__bias_decision(hb__ext(b)) != HB__DECIDE_MOVED) {
    __atomic_store_n(&b->held, 0, __ATOMIC_RELAXED);
    return hb__now_shared(b, t, write, reserve, fn, ctx, result, wait);
  }
  /* The revoker moved our hold into the lock word: run on that ticket,
   * held set until the end, as the biased visit would have. */
  int r = hb__run_fn(b, t, write, reserve, fn, ctx, false, 0);
  if (result != NULL) *result = r;
  __atomic_store_n(&b->held, 0, __ATOMIC_RELEASE); /* as hb__visit_biased */
  hb__release_now(hb__ext(b), write);
  return HB_OK;
}

int hb__biased_grow(hb_buf *b, const hb_type *t, size_t reserve,
                    hb_visit_fn fn, void *ctx, int *result) {
  int r = hb__run_fn_slow(b, t, true, reserve, fn, ctx, false, 0);
  return hb__biased_end(b, true, r, result);
}

int hb__biased_after(hb_buf *b, bool write) {
  hb__buf *e = hb__ext(b);
  if (hb__bias_decision(e) == HB__DECIDE_MOVED)
    hb__release_now(e, write); /* our hold is a ticket in the lock word */
  else if (!write)
    HB__COUNT(e->bias_reads);
  return HB_OK;
}

/* The first one-call visit of b (bias_owner NULL): try to bias b to this
 * thread, then visit it either way. */
static __attribute__((noinline)) int
hb__now_first(hb_buf *b, const hb_type *t, bool write, size_t reserve,
              hb_visit_fn fn, void *ctx, int *result, bool wait) {
  hb__buf *e = hb__ext(b);
  hb__bias_try(e);
  if (__atomic_load_n(&e->bias_owner, __ATOMIC_RELAXED) == hb__self())
    return hb__visit_biased(b, t, write, reserve, fn, ctx, result, wait);
  return hb__now_shared(b, t, write, reserve, fn, ctx, result, wait);
}

/* HB_EINVAL, called: returned in place, its constant went into the
 * return register ahead of the type test, on the fast path (GCC 12; one
 * instruction of every W4 pair). */
static __attribute__((noinline, cold)) int hb__now_einval(void) {
  return HB_EINVAL;
}

/* `wait`: queue and wait when the turn has not come (hb_*_now), or give
 * up with HB_EAGAIN and no place in the queue (hb_try_*_now).  Inlined
 * into each of the four: called instead, it would cost each of them a
 * copy of the type and a call (~1.5 ns of W4's ~11).  t points at the
 * caller's argument itself, which the view then shows: no copy of it. */
static inline __attribute__((always_inline)) int
hb__visit_now(hb_buf *b, const hb_type *t, bool write, size_t reserve,
              hb_visit_fn fn, void *ctx, int *result, bool wait) {
  /* b and fn first: both tests come before the frame is made. */
  if (HB__UNLIKELY(b == NULL || fn == NULL)) return HB_EINVAL;
  if (HB__UNLIKELY(!hb__type_fits(b, t))) return hb__now_einval();
  if (HB__UNLIKELY(reserve > (size_t)PTRDIFF_MAX)) return HB_ERANGE;
  /* Biased to this thread: no stream (see hb__visit_biased), else the
   * shared path checks for a closed one.  Likely: a buffer one thread
   * uses alone is biased to it, and the biased path laid out straight
   * (no taken branch into it or out of it) saves the W4 write ~0.3 ns of
   * ~6.5, the shared path nothing measurable. */
  const void *owner =
      __atomic_load_n(&hb__ext(b)->bias_owner, __ATOMIC_RELAXED);
  if (HB__LIKELY(owner == hb__self()))
    return hb__visit_biased(b, t, write, reserve, fn, ctx, result, wait);
  if (HB__UNLIKELY(owner == NULL))
    return hb__now_first(b, t, write, reserve, fn, ctx, result, wait);
  return hb__now_take(b, t, write, reserve, fn, ctx, result, wait);
}

int hb_read_now(hb_buf *b, hb_type t, hb_visit_fn fn, void *ctx,
                int *result) {
  return hb__visit_now(b, &t, false, 0, fn, ctx, result, true);
}

int hb_write_now(hb_buf *b, hb_type t, size_t reserve, hb_visit_fn fn,
                 void *ctx, int *result) {
  return hb__visit_now(b, &t, true, reserve, fn, ctx, result, true);
}

int hb_try_read_now(hb_buf *b, hb_type t, hb_visit_fn fn, void *ctx,
                    int *result) {
  return hb__visit_now(b, &t, false, 0, fn, ctx, result, false);
}

int hb_try_write_now(hb_buf *b, hb_type t, size_t reserve, hb_visit_fn fn,
                     void *ctx, int *result) {
  return hb__visit_now(b, &t, true, reserve, fn, ctx, result, false);
}
