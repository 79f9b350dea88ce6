/*
 * view.c -- what a callback does with the hb_view it is given: read or
 * write the buffer as an array of the cast type, or append to it (write
 * visits only).  The view lives on the driver's stack (hb__run_fn).
 */
#include "visit.h"

/* The rare cases of hb__run_fn (src/visit.h): a stream's visit (drop,
 * window, end) and a write whose room must grow before it runs. */
int hb__run_fn_slow(hb_buf *b, const hb_type *t, bool write, size_t reserve,
                    hb_visit_fn fn, void *ctx, bool track, uint64_t from) {
  hb__buf *e = hb__ext(b);
  hb_view view;
  hb__view_init(&view, b, t, write);
  if (e->stream != NULL) {
    int r = hb__stream_enter(e, &view, write, reserve, from);
    if (r != HB_OK) return r;
  }
  if (write && hb__reserve(b, reserve) != HB_OK) {
    HB__BUMP(e->reserve_failed, 1);
    return HB_ENOMEM; /* the turn came but the room could not be had */
  }
  return hb__call_fn(&view, write, fn, ctx, track);
}

/* stream: a view starts `skip` bytes into the data (0 but on a stream).
 * Inlined into the accessors below: calling out from one accessor to the
 * next cost a W4 visit ~1.5 ns, when the visit took ~11. */
static inline size_t hb__view_len(const hb_view *view) {
  return hb__div_size(view->buf->len - view->skip, view->size);
}

size_t hb_view_len(const hb_view *view) { return hb__view_len(view); }

hb_type hb_view_type(const hb_view *view) { return *view->type; }

const void *hb_view_read_array(hb_view *view, size_t *count) {
  if (count != NULL) *count = hb__view_len(view);
  return view->buf->data + view->skip;
}

void *hb_view_write_array(hb_view *view, size_t *count) {
  if (!view->write) {
    if (count != NULL) *count = 0;
    return NULL;
  }
  if (count != NULL) *count = hb__view_len(view);
  return view->buf->data + view->skip;
}

const uint8_t *hb_view_read_bytes(hb_view *view, size_t *nbytes) {
  if (nbytes != NULL) *nbytes = view->buf->len - view->skip;
  return view->buf->data + view->skip;
}

uint8_t *hb_view_write_bytes(hb_view *view, size_t *nbytes) {
  if (!view->write) {
    if (nbytes != NULL) *nbytes = 0;
    return NULL;
  }
  if (nbytes != NULL) *nbytes = view->buf->len - view->skip;
  return view->buf->data + view->skip;
}

/* For programs built before <hyperbuf/inline.h> had the inline body, which
 * the macro of that name expands to: the parentheses keep it out. */
const void *(hb__view_array_checked)(hb_view *view, size_t size,
                                     size_t *count, int write) {
  return hb__view_array(view, size, count, write);
}

int hb_view_append_bytes(hb_view *view, const void *src, size_t n) {
  if (!view->write) return HB_ESTATE;
  if (src == NULL && n > 0) return HB_EINVAL;
  return hb__put_bytes(view->buf, src, n);
}

int hb_view_append_all(hb_view *view, const void *elems, size_t count) {
  if (!view->write) return HB_ESTATE;
  if (elems == NULL && count > 0) return HB_EINVAL;
  if (hb_view_len(view) * view->size != view->buf->len - view->skip)
    return HB_EINVAL;
  if (count > (size_t)PTRDIFF_MAX / view->size) return HB_ERANGE;
  return hb__put_bytes(view->buf, elems, count * view->size);
}

int hb_view_append(hb_view *view, const void *elem) {
  if (view->write && elem == NULL) return HB_EINVAL;
  return hb_view_append_all(view, elem, 1);
}

size_t hb_view_bytes_written(const hb_view *view) {
  return view->buf->len - view->start_len;
}
