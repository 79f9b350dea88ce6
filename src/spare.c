/*
 * spare.c -- writing into the spare room: hb_spare's and the writer
 * session's slow paths, and the views' spare + commit.
 *
 * All of them lean on one fact of the layout: the spare room is the tail
 * of the data allocation, [len, cap), so "commit" is only a length change,
 * and hb__grow, which keeps bytes [0, len), keeps bytes written there too
 * if len counts them while it runs.
 */
#include "internal.h"

int hb__spare_slow(hb_buf *b, size_t n, uint8_t **spare) {
  if (spare == NULL) return HB_EINVAL;
  int rc = hb__grow(b, n); /* HB_OK at once if n bytes are spare */
  if (rc == HB_OK) *spare = b->data + b->len;
  return rc;
}

int hb__writer_grow(hb_writer *w, size_t n) {
  hb_buf *b = w->buf;
  size_t len = b->len, used = (size_t)(w->pos - b->data);
  /* Growth copies [0, len): let len cover the uncommitted bytes while it
   * runs, then put it back -- they are stored only at hb_writer_commit. */
  b->len = used;
  int rc = hb__grow(b, n);
  b->len = len;
  if (rc != HB_OK) return rc;
  w->pos = b->data + used;
  w->end = b->data + b->cap;
  return HB_OK;
}

int hb__writer_put_slow(hb_writer *w, const void *src, size_t n) {
  if (src == NULL) return n == 0 ? HB_OK : HB_EINVAL;
  if ((size_t)(w->end - w->pos) < n) {
    /* src may be the buffer's own bytes, which growth moves. */
    uintptr_t s = (uintptr_t)src, d = (uintptr_t)w->buf->data;
    int inside = s >= d && s < (uintptr_t)w->pos;
    int rc = hb__writer_grow(w, n);
    if (rc != HB_OK) return rc;
    if (inside) src = w->buf->data + (s - d);
  }
  memmove(w->pos, src, n);
  w->pos += n;
  return HB_OK;
}

int hb_view_spare(hb_view *view, size_t n, uint8_t **spare) {
  if (!view->write) return HB_ESTATE;
  if (spare == NULL) return HB_EINVAL;
  int rc = hb__reserve(view->buf, n);
  if (rc == HB_OK) *spare = view->buf->data + view->buf->len;
  return rc;
}

/* The length moves as hb_view_append_bytes moves it, so the bytes count in
 * hb_view_bytes_written and an abort's rollback to view->start_len takes
 * them back. */
int hb_view_commit(hb_view *view, size_t k) {
  if (!view->write) return HB_ESTATE;
  hb_buf *b = view->buf;
  if (b->cap - b->len < k) return HB_ERANGE;
  b->len += k;
  return HB_OK;
}
