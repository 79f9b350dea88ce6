/*
 * cast.c -- hb_cast / hb_cast_mut: recognising any storage as a visitor
 * or not (the cookie, src/visit.h, and what a memory checker is told), the
 * castable states, and the cast itself -- the plain path, one CAS, and the
 * general one for memory checkers, streams and a lock that is taken.  The
 * cast's row of the state transition table and its race are in
 * src/visitor.c; the slow cast that queues is hb__cast_slow, src/lock.c.
 */
#include "visit.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HB__HAVE_MEMCHECK 1
#endif
#endif
#ifdef HB__MSAN
#include <sanitizer/msan_interface.h>
#endif

/* ---- recognising a visitor ---------------------------------------------
 */

/* Set once, before main, and only read after: no race. */
uintptr_t hb__on_valgrind;

#ifdef HB__HAVE_MEMCHECK
__attribute__((constructor)) static void hb__detect_valgrind(void) {
  hb__on_valgrind = RUNNING_ON_VALGRIND != 0;
}
#endif

void hb__defined_slow(const hb_visitor *v) {
  /* state and cookie are adjacent (include/hyperbuf.h) */
  (void)v;
#ifdef HB__HAVE_MEMCHECK
  VALGRIND_MAKE_MEM_DEFINED(&v->state, sizeof v->state + sizeof v->cookie);
#endif
#ifdef HB__MSAN
  __msan_unpoison(&v->state, sizeof v->state + sizeof v->cookie);
#endif
}

/* ---- casting --------------------------------------------------------------
 */

/* What a cast writes in v before the state that publishes it: only what
 * is read before hb_visit.  The rest is written where it is first needed
 * (links on enqueue, waker on registration, done on detaching, result on
 * running).  The cookie is v's proof of a cast; it and buf are atomic:
 * hb_cancel may read them from any thread. */
static inline void hb__cast_fill(hb_visitor *v, hb_buf *b, hb_type t) {
  __atomic_store_n(&v->buf, b, __ATOMIC_RELAXED);
  v->type = t;
  v->armed = 0;
  __atomic_store_n(&v->cookie, hb__cookie(v), __ATOMIC_RELAXED);
}

/* Is v castable: idle, or finished with nobody still on it?  A state
 * that says so needs no cookie check (without the cookie it is idle,
 * which is castable too); only one that says "live" must prove it is v's
 * (hb__vstate). */
static inline __attribute__((always_inline)) bool
hb__castable(const hb_visitor *v) {
  uint32_t s0 = __atomic_load_n(&v->state, __ATOMIC_ACQUIRE);
  /* The common case, a visitor cast again after it ran, in one compare:
   * nothing but RAN, GRANTED and WRITE is set (hb__run_here leaves it so) */
  if (HB__LIKELY((s0 & ~(HB__V_GRANTED | HB__V_WRITE)) == HB__V_RAN))
    return true;
  uint32_t phase = hb__phase(s0);
  return (HB__LIKELY(phase == HB__V_IDLE || phase == HB__V_RAN ||
                     phase == HB__V_CANCELLED) &&
          HB__LIKELY(!(s0 & HB__V_BUSY))) ||
         hb__vstate(v) == HB__V_IDLE;
}

/* Must the cast take the general way: does a memory checker watch
 * (hb__defined has work to do), or is b a stream?  One test of the two
 * words or'ed, where two tests would be two compares and branches. */
static inline bool hb__cast_is_general(const hb_buf *b) {
#ifdef HB__MSAN
  (void)b;
  return true;
#else
  return ((uintptr_t)hb__cext(b)->stream | hb__on_valgrind) != 0;
#endif
}

/* Every cast but the plain one hb__cast finishes itself: under valgrind
 * or MemorySanitizer (hb__defined), on a stream, or when the fast grant
 * fails.  Out of line, so that hb__cast's own path makes no call and
 * saves no register before its CAS. */
static __attribute__((noinline)) int
hb__cast_general(hb_visitor *v, hb_buf *b, size_t size, size_t align,
                 const char *name, bool write) {
  /* The type in registers: passed as an hb_type, it would be copied to
   * the stack on hb__cast's own path, in front of its CAS. */
  hb_type t = {size, align, name};
  hb__buf *e = hb__ext(b);
  bool stream = e->stream != NULL;
  hb__defined(v);
  if (!hb__castable(v)) return HB_ESTATE;
  if (HB__UNLIKELY(stream)) {
    if (write && hb__stream_closed(e)) return HB_ECLOSED;
    hb__vs_set(v, (hb__vstream){0, 0}); /* a plain cast: from the start */
  }
  uint32_t s = HB__V_CAST | hb__mode_of(write)->vflag;
  hb__cast_fill(v, b, t);
  if (hb__grant_fast(b, write)) {
    hb__store_state(v, s | HB__V_GRANTED);
    return HB_OK;
  }
  /* Nobody queued, and the lock is held: wait in the NEXT slot, in the
   * lock word (src/next.c).  Not on a stream: its waits are for data. */
  if (!stream && hb__next_cast(e, v, s)) return HB_OK;
  hb__cast_slow(e, v, s);
  return HB_OK;
}

static inline __attribute__((always_inline)) int
hb__cast(hb_visitor *v, hb_buf *b, hb_type t, bool write) {
  if (v == NULL || !hb__type_ok(b, t)) return HB_EINVAL;
  if (HB__UNLIKELY(hb__cast_is_general(b)))
    return hb__cast_general(v, b, t.size, t.align, t.name, write);
  if (!hb__castable(v)) return HB_ESTATE;
  /* Granted at once, v's fields are written after the CAS: nobody looks
   * at them before the state store publishes them, and a locked
   * instruction waits for every store in front of it to drain.  (Queued,
   * before: the queue's side reads them under the mutex.) */
  if (HB__UNLIKELY(!hb__grant_fast(b, write)))
    return hb__cast_general(v, b, t.size, t.align, t.name, write);
  hb__cast_fill(v, b, t);
  hb__store_state(v, HB__V_CAST | hb__mode_of(write)->vflag | HB__V_GRANTED);
  return HB_OK;
}

HB__NO_SLP int hb_cast(hb_visitor *v, hb_buf *b, hb_type t) {
  return hb__cast(v, b, t, false);
}

HB__NO_SLP int hb_cast_mut(hb_visitor *v, hb_buf *b, hb_type t) {
  return hb__cast(v, b, t, true);
}
