/*
 * run.h -- running a visit under a granted ticket: the type check, the
 * view, the reservation, the callback with its deadlock frame, and the
 * rollback of an aborted write.  Inline: every visit's hot path (the
 * one-call form, the drivers, detached visits).  Included by visit.h, at
 * its end, as it uses the frames and the buffer's layout declared there;
 * include visit.h, not this.
 */
#ifndef HB_RUN_H
#define HB_RUN_H

#include "visit.h"


/* t is a type b (not NULL) may be cast to: a size that is a multiple of
 * its alignment, a power of two no larger than b's.  Written as two
 * compares: align - 1 < b's alignment says 1 <= align <= b's (0 wraps
 * around), and (size | align) & (align - 1) == 0 says align is a power of
 * two dividing size (five tests, as GCC compiled them, cost ~10
 * instructions more). */
static inline bool hb__type_fits(const hb_buf *b, const hb_type *t) {
  size_t a1 = t->align - 1;
  return t->size != 0 && a1 < hb__cext(b)->align &&
         ((t->size | t->align) & a1) == 0;
}
/* The same for a b that may be NULL. */
static inline bool hb__type_ok(const hb_buf *b, hb_type t) {
  return b != NULL && hb__type_fits(b, &t);
}

/* The view of a visit of b as type t (the stream's window, if any, is
 * hb__stream_enter's to set). */
static inline void hb__view_init(hb_view *view, hb_buf *b, const hb_type *t,
                                 bool write) {
  *view = (hb_view){b, t, b->len, t->size, 0, write, 0};
}

/* After fn returned r: a write counts, and its abort rolls its appends
 * back. */
static inline void hb__after_fn(hb_buf *b, const hb_view *view, bool write,
                                int r) {
  if (write) {
    HB__COUNT(hb__ext(b)->writes_run);
    if (HB__UNLIKELY(r < 0)) {
      b->len = view->start_len; /* roll the appends back */
      HB__BUMP(hb__ext(b)->aborted, 1);
    }
  }
}

/* Call fn on the view (the ticket held, the room made), with a deadlock
 * frame if `track`; a write's abort rolls its appends back. */
static inline int hb__call_fn(hb_view *view, bool write, hb_visit_fn fn,
                              void *ctx, bool track) {
  hb_buf *b = view->buf;
  hb__frame frame;
  if (track) {
    frame = (hb__frame){b, hb__frames};
    hb__frames = &frame;
  }
  int r = fn(view, ctx);
  if (track) hb__frames = frame.prev;
  hb__after_fn(b, view, write, r);
  return r;
}

/* hb__run_fn on a stream, or when the write's room must grow first
 * (src/view.c). */
int hb__run_fn_slow(hb_buf *b, const hb_type *t, bool write, size_t reserve,
                    hb_visit_fn fn, void *ctx, bool track, uint64_t from);

/* hb__run_fn on a buffer without a stream. */
static inline int hb__run_plain(hb_buf *b, const hb_type *t, bool write,
                                size_t reserve, hb_visit_fn fn, void *ctx,
                                bool track) {
  if (write && HB__UNLIKELY(b->cap - b->len < reserve))
    return hb__run_fn_slow(b, t, write, reserve, fn, ctx, track, 0);
  hb_view view;
  hb__view_init(&view, b, t, write);
  return hb__call_fn(&view, write, fn, ctx, track);
}

/* Run fn under a granted ticket: the reservation, the view, the callback,
 * the rollback of an aborted write.  The ticket stays held.  `from` is the
 * stream offset a hb_cast_from visitor's view starts at (0 otherwise).
 * What is rare is out of line, with the callback's call of its own, so
 * that fn and ctx are dead once fn is called: kept live across a call of
 * hb__stream_enter or hb__grow, they cost every visit two callee-saved
 * registers, pushed and popped. */
static inline int hb__run_fn(hb_buf *b, const hb_type *t, bool write,
                             size_t reserve, hb_visit_fn fn, void *ctx,
                             bool track, uint64_t from) {
  if (HB__UNLIKELY(hb__ext(b)->stream != NULL))
    return hb__run_fn_slow(b, t, write, reserve, fn, ctx, track, from);
  return hb__run_plain(b, t, write, reserve, fn, ctx, track);
}

/* hb__run_fn for a claimed visitor v, tracked: its stream offset, read
 * only on a stream, is loaded only there. */
static inline __attribute__((always_inline)) int
hb__run_visitor(hb_visitor *v, bool write) {
  hb_buf *b = v->buf;
  if (HB__UNLIKELY(hb__ext(b)->stream != NULL))
    return hb__run_fn_slow(b, &v->type, write, v->reserve, v->fn, v->ctx,
                           true, hb__vs_get(v).from);
  return hb__run_plain(b, &v->type, write, v->reserve, v->fn, v->ctx, true);
}

#endif /* HB_RUN_H */
