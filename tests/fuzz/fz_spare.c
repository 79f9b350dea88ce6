/*
 * fz_spare.c -- the fuzzer's interpreter (fz.h), issue 14's calls (v3
 * inputs): hb_spare + hb_commit, the writer session, hb_peek_iov, and
 * hb_view_spare + hb_view_commit from inside callbacks.
 *
 * The model: committed bytes join the model's bytes; spare room and a
 * writer's uncommitted bytes are not part of it, so a dropped writer or an
 * uncommitted spare area leaves the model as it was.  A writer's put that
 * fails must leave the writer (position, end) and the buffer (data, length,
 * capacity, committed and uncommitted bytes) alone; an aborted visit takes
 * a view's committed bytes back like its other appends (fz_cb).
 */
#include "fz.h"

#include <sys/uio.h>


/* The outcome of hb_spare / hb_view_spare(n) with *spare (NULL when
 * null_spare) at `untouched` before: @return 1 if it gave room. */
static int fz_spare_ok(const fz_mbuf *mb, int null_spare, size_t n, int rc,
                       const fz_snap *s, const uint8_t *room,
                       const uint8_t *untouched) {
  if (null_spare) {
    FZ_EQ(rc, HB_EINVAL);
    fz_unchanged(mb, s);
    return 0;
  }
  fz_expect_growth(mb, n, rc, s);
  if (rc != HB_OK) {
    FZ_ASSERT(room == untouched);
    return 0;
  }
  FZ_ASSERT(room == mb->b->data + mb->b->len);
  return 1;
}

/* FZ_OP_SPARE: slot, SIZE n, SIZE k, flags, pattern offset. */
void fz_op_spare(fz_in *in) {
  int slot = fz_in_u8(in) % FZ_NBUF;
  fz_mbuf *mb = &fz.buf[slot];
  size_t n = fz_in_size(in, mb);
  size_t k = fz_in_size(in, mb);
  uint8_t fl = fz_in_u8(in), off = fz_in_u8(in);
  if (mb->b == NULL || fz_buf_live(slot)) return;
  hb_buf *b = mb->b;
  fz_snap s = fz_take(mb);
  int rc;
  if (fl & 2) { /* commit alone: a producer wrote k bytes it knew were spare */
    size_t spare = b->cap - b->len;
    if (k <= spare) memcpy(b->data + b->len, fz_pat + off, k);
    rc = hb_commit(b, k);
    FZ_TRACE("commit %zu of %zu spare -> %s\n", k, spare, hb_err_name(rc));
    if (k > spare) {
      FZ_EQ(rc, HB_ERANGE);
      fz_unchanged(mb, &s);
      return;
    }
    FZ_EQ(rc, HB_OK);
    FZ_EQ(b->cap, s.b.cap);
    FZ_ASSERT(b->data == s.b.data);
    fz_model_append(mb, fz_pat + off, k);
    return;
  }
  uint8_t *untouched = (uint8_t *)&s, *room = untouched;
  rc = hb_spare(b, n, (fl & 1) ? NULL : &room);
  FZ_TRACE("spare %zu -> %s\n", n, hb_err_name(rc));
  if (!fz_spare_ok(mb, fl & 1, n, rc, &s, room, untouched)) return;
  FZ_ASSERT(b->cap - b->len >= n);
  k %= n + 1; /* n <= cap - len <= PTRDIFF_MAX: no wrap */
  memcpy(room, fz_pat + off, k);
  size_t cap = b->cap;
  FZ_EQ(hb_commit(b, k), HB_OK);
  FZ_EQ(b->cap, cap);
  fz_model_append(mb, fz_pat + off, k);
}

/* A put of n more bytes at writer position `used`: what the contract
 * allows for rc, given the room there was (as fz_expect_growth for the
 * buffer's own appends). */
static void fz_writer_expect(const fz_mbuf *mb, size_t used, size_t room,
                             size_t n, int rc, uint64_t failures) {
  if (n <= room) {
    FZ_EQ(rc, HB_OK);
  } else if (n > FZ_PTRDIFF_MAX - used) {
    FZ_EQ(rc, HB_ERANGE);
  } else if (rc == HB_ENOMEM) {
    FZ_ASSERT(fz_alloc.failures > failures);
  } else if (rc != HB_OK) {
    FZ_EQ(rc, HB_ERANGE); /* only when padding pushes it over the limit */
    FZ_ASSERT(used + n > FZ_PTRDIFF_MAX - fz_pad(mb->align));
  }
}

/* FZ_OP_WRITER: slot, steps, 3 bytes per step, flags. */
void fz_op_writer(fz_in *in) {
  int slot = fz_in_u8(in) % FZ_NBUF;
  int steps = fz_in_u8(in) % 16;
  uint8_t st[16][3];
  for (int i = 0; i < steps; i++)
    for (int j = 0; j < 3; j++) st[i][j] = fz_in_u8(in);
  uint8_t fl = fz_in_u8(in);
  fz_mbuf *mb = &fz.buf[slot];
  if (mb->b == NULL || fz_buf_live(slot)) return;
  hb_buf *b = mb->b;
  /* The uncommitted bytes, as the model expects them. */
  size_t plen = 0, pcap = 0;
  uint8_t *pend = NULL;
  hb_writer w;
  hb_writer_begin(&w, b);
  FZ_ASSERT(w.pos == b->data + b->len && w.end == b->data + b->cap);
  for (int i = 0; i < steps; i++) {
    uint8_t kind = st[i][0] % 5, a = st[i][1], c = st[i][2];
    const uint8_t *src = NULL, *model_src = NULL;
    uint8_t ints[6] = {a, c, c, c, c, c}; /* u16 be, then u32 le */
    size_t n = 1, o = 0;
    switch (kind) {
    case 0: model_src = &st[i][1]; break;
    case 4: model_src = ints, n = 6; break;
    case 1: src = model_src = fz_pat + c, n = (size_t)a * 37; break;
    case 2: n = a; break;
    case 3:
      if (mb->len == 0) continue;
      o = c % mb->len;
      n = (size_t)a * 3;
      if (n > mb->len - o) n = mb->len - o;
      src = b->data + o, model_src = mb->bytes + o;
      break;
    }
    hb_writer before = w;
    size_t used = (size_t)(w.pos - b->data), room = (size_t)(w.end - w.pos);
    fz_snap s = fz_take(mb);
    int rc;
    if (kind == 0) {
      rc = hb_writer_put_u8(&w, a);
    } else if (kind == 4) {
      /* Two puts, the second only if the first worked; either may grow.
       * A failure of the second leaves the first's 2 bytes pending. */
      rc = hb_writer_put_u16_be(&w, (uint16_t)(a << 8 | c));
      if (rc == HB_OK) {
        size_t used2 = (size_t)(w.pos - b->data);
        size_t room2 = (size_t)(w.end - w.pos);
        hb_writer mid = w;
        fz_snap s2 = fz_take(mb);
        int rc2 = hb_writer_put_u32_le(&w, c * 0x01010101u);
        fz_writer_expect(mb, used2, room2, 4, rc2, s2.failures);
        if (rc2 != HB_OK) {
          FZ_ASSERT(w.pos == mid.pos && w.end == mid.end);
          n = 2; /* only the u16 went in */
        }
      }
    } else {
      rc = hb_writer_put(&w, src, n);
    }
    FZ_TRACE("writer put %zu (kind %d, pending %zu) -> %s\n", n, kind, plen,
             hb_err_name(rc));
    if (kind == 2 && n > 0) {
      FZ_EQ(rc, HB_EINVAL);
    } else {
      fz_writer_expect(mb, used, room, n, rc, s.failures);
    }
    if (rc != HB_OK) {
      FZ_ASSERT(w.pos == before.pos && w.end == before.end);
      fz_unchanged(mb, &s);
      FZ_ASSERT(plen == 0 || memcmp(b->data + b->len, pend, plen) == 0);
      continue;
    }
    if (n <= room) FZ_ASSERT(b->data == s.b.data && b->cap == s.b.cap);
    FZ_EQ(b->len, mb->len); /* nothing stored before the commit */
    FZ_EQ((size_t)(w.pos - b->data), used + n);
    FZ_ASSERT(w.end == b->data + b->cap);
    if (plen + n > pcap) {
      pcap = (plen + n) * 2;
      pend = realloc(pend, pcap);
      FZ_ASSERT(pend != NULL);
    }
    if (n > 0) memcpy(pend + plen, model_src, n);
    plen += n;
    FZ_EQ(hb_writer_pending(&w), plen);
    FZ_ASSERT(plen == 0 || memcmp(b->data + b->len, pend, plen) == 0);
    if (i == 0 && (fl & 2)) {
      FZ_EQ(hb_writer_commit(&w), plen);
      fz_model_append(mb, pend, plen);
      plen = 0;
    }
  }
  if (fl & 1) {
    FZ_EQ(hb_writer_commit(&w), plen);
    fz_model_append(mb, pend, plen);
  } /* else dropped: nothing of it is stored */
  free(pend);
}

/* FZ_OP_PEEK_IOV: slot, iovcnt, flags. */
void fz_op_peek_iov(fz_in *in) {
  int slot = fz_in_u8(in) % FZ_NBUF;
  int cnt = fz_in_u8(in) % 5;
  uint8_t fl = fz_in_u8(in);
  if (cnt == 4) cnt = -1;
  fz_mbuf *mb = &fz.buf[slot];
  if (mb->b == NULL || fz_buf_live(slot)) return;
  hb_buf *b = mb->b;
  struct iovec iov[4];
  memset(iov, 0xa5, sizeof iov);
  fz_snap s = fz_take(mb);
  int rc = hb_peek_iov(b, (fl & 1) ? NULL : iov, cnt);
  fz_unchanged(mb, &s);
  if ((fl & 1) || cnt < 1) {
    FZ_EQ(rc, HB_EINVAL);
    return;
  }
  if (mb->len == mb->cursor) {
    FZ_EQ(rc, 0);
    return;
  }
  FZ_EQ(rc, 1); /* contiguous: one entry */
  FZ_ASSERT(iov[0].iov_base == b->data + mb->cursor);
  FZ_EQ(iov[0].iov_len, mb->len - mb->cursor);
  FZ_ASSERT(memcmp(iov[0].iov_base, mb->bytes + mb->cursor,
                   iov[0].iov_len) == 0);
}

/* FZ_S_SPARE: hb_view_spare + hb_view_commit from inside a callback. */
void fz_view_spare(hb_view *view, fz_mvis *m, uint8_t a, uint8_t c) {
  fz_mbuf *mb = &fz.buf[m->buf];
  size_t n = a >= 128 ? fz_hostile[a & 7] : (size_t)(a & 0x7f);
  int too_much = c == 0xff, null_spare = (c & 0x3f) == 0x3f && !too_much;
  fz_snap s = fz_take(mb);
  uint8_t *untouched = (uint8_t *)&s, *room = untouched;
  int rc = hb_view_spare(view, n, null_spare ? NULL : &room);
  FZ_TRACE("view spare %zu -> %s\n", n, hb_err_name(rc));
  if (!m->write) {
    FZ_EQ(rc, HB_ESTATE);
    FZ_EQ(hb_view_commit(view, 0), HB_ESTATE);
    FZ_ASSERT(room == untouched);
    fz_unchanged(mb, &s);
    return;
  }
  if (!fz_spare_ok(mb, null_spare, n, rc, &s, room, untouched)) return;
  hb_buf *b = mb->b;
  /* Room asked beyond the reservation may have moved the data: appends
   * within the reservation must keep it where it is now (fz_view_append). */
  m->start_data = b->data;
  if (too_much) {
    fz_snap t = fz_take(mb);
    FZ_EQ(hb_view_commit(view, b->cap - b->len + 1), HB_ERANGE);
    fz_unchanged(mb, &t);
    return;
  }
  size_t k = (size_t)(c >> 6) * n / 3; /* n spare: here n <= 2^17 */
  memcpy(room, fz_pat + (c & 0x3f), k);
  FZ_EQ(hb_view_commit(view, k), HB_OK);
  fz_model_append(mb, fz_pat + (c & 0x3f), k);
  FZ_EQ(b->len, mb->len);
  /* Where the room asked for was there, the data stayed (checked by
   * fz_expect_growth above); asking beyond it may move the data even if
   * less is committed. */
}
