/*
 * hb_snap.h -- what a failing call must leave alone: a snapshot of a
 * buffer's data pointer, length, capacity, cursor, alignment, growth
 * counters and a hash of its bytes, and the check that it still holds.
 *
 * Plain C (no cmocka): the fuzzer's interpreter (tests/fuzz) uses it with
 * its own reports, the cmocka programs through hb_test.h.  The snapshot
 * holds no allocation, so it may be copied, compared twice, or dropped
 * on any path.  It reads the fields directly (internal.h), so it may be
 * taken while visitors are live, and from inside a callback.
 */
#ifndef HB_TEST_SNAP_H
#define HB_TEST_SNAP_H

#include <stdint.h>
#include <stdio.h>

#include "internal.h"

typedef struct {
  uint8_t *data;
  size_t len, cap, cursor, align;
  uint64_t growths, bytes_moved;
  uint64_t hash; /* of data[0 .. len), when `hashed` */
  int hashed;
} hb_snap;

/* FNV-1a over n bytes: a changed byte shows as a changed hash. */
static inline uint64_t hb_snap_hash(const uint8_t *p, size_t n) {
  uint64_t h = 14695981039346656037u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211u;
  return h;
}

/* With `hashed` 0 the bytes are not looked at: for a caller that checks
 * them otherwise (the fuzzer, against its model, after every operation),
 * for whom hashing every buffer before every call costs too much. */
static inline hb_snap hb_snap_take_as(hb_buf *b, int hashed) {
  hb_stats st = {0};
  (void)hb_stats_get(b, &st);
  hb_snap s = {b->data,    b->len,         b->cap, b->cursor, hb_align(b),
               st.growths, st.bytes_moved, 0,      hashed};
  if (hashed) s.hash = hb_snap_hash(b->data, b->len);
  return s;
}

static inline hb_snap hb_snap_take(hb_buf *b) {
  return hb_snap_take_as(b, 1);
}

/* Do the n = s->len bytes at data + off hold what data[0 .. s->len) held
 * when s was taken?  (After a growth: off 0, the old bytes were kept.) */
static inline int hb_snap_bytes_at(const hb_buf *b, size_t off,
                                   const hb_snap *s) {
  return off <= b->len && b->len - off >= s->len &&
         hb_snap_hash(b->data + off, s->len) == s->hash;
}

/* @return NULL when b is as s found it, else a message (in `why`, n
 * bytes) naming the first thing that changed, with both values. */
static inline const char *hb_snap_diff(hb_buf *b, const hb_snap *s, char *why,
                                       size_t n) {
  hb_snap now = hb_snap_take_as(b, s->hashed);
#define HB__SNAP_FIELD(f)                                                    \
  if (now.f != s->f) {                                                       \
    snprintf(why, n, "buffer changed: " #f " %llu, was %llu",                \
             (unsigned long long)(uintptr_t)now.f,                           \
             (unsigned long long)(uintptr_t)s->f);                           \
    return why;                                                              \
  }
  HB__SNAP_FIELD(data)
  HB__SNAP_FIELD(len)
  HB__SNAP_FIELD(cap)
  HB__SNAP_FIELD(cursor)
  HB__SNAP_FIELD(align)
  HB__SNAP_FIELD(growths)
  HB__SNAP_FIELD(bytes_moved)
  HB__SNAP_FIELD(hash)
#undef HB__SNAP_FIELD
  return NULL;
}

#endif /* HB_TEST_SNAP_H */
