/*
 * fz_direct.c -- the fuzzer's interpreter (fz.h), direct-mode operations:
 * new, free, reserve, resize, clear, put, get, advance, compact, the
 * fixed-width integers, and hb_stats_get against the model counters.
 */
#include "fz.h"

/* ---- direct-mode operations --------------------------------------------- */

void fz_buf_drop(fz_mbuf *mb) {
  free(mb->bytes);
  memset(mb, 0, sizeof *mb);
}

void fz_op_free(int slot) {
  fz_mbuf *mb = &fz.buf[slot];
  if (mb->b == NULL) {
    FZ_EQ(hb_free(NULL), HB_OK);
    return;
  }
  int live = fz_buf_live(slot);
  int rc = hb_free(mb->b);
  if (live) {
    FZ_EQ(rc, HB_EBUSY);
    return;
  }
  FZ_EQ(rc, HB_OK);
  /* Finished visitors of it stay finished; they are only ever re-cast. */
  for (int j = 0; j < FZ_NALL; j++)
    if (fz.vis[j].buf == slot && fz.vis[j].state != VS_IDLE)
      fz.vis[j].buf = -1 - slot;
  fz_buf_drop(mb);
}

void fz_op_new(fz_in *in) {
  int slot = fz_in_u8(in) % FZ_NBUF;
  int kind = fz_in_u8(in) % 4;
  size_t align = fz_aligns[fz_in_u8(in) % 16];
  fz_mbuf *mb = &fz.buf[slot];
  size_t n = fz_in_size(in, mb);
  uint8_t off = fz_in_u8(in);
  if (mb->b != NULL) {
    if (fz_buf_live(slot)) return;
    fz_op_free(slot);
  }
  uint64_t fails = fz_alloc.failures;
  hb_buf *b;
  size_t eff = 16;
  switch (kind) {
  case 0: b = hb_new(n); break;
  case 1:
    b = hb_new_aligned(n, align);
    eff = align < 16 ? 16 : align;
    if (align == 0 || (align & (align - 1)) != 0) {
      FZ_ASSERT(b == NULL);
      return;
    }
    break;
  case 2: b = hb_wrap(fz_pat + off, n); break;
  default:
    n = 0;
    b = hb_wrap(NULL, 0);
    break;
  }
  if (b == NULL) {
    FZ_ASSERT(fz_alloc.failures > fails || fz_pad(eff) > FZ_PTRDIFF_MAX / 2 ||
              n > FZ_PTRDIFF_MAX - 1024 - fz_pad(eff));
    return;
  }
  mb->b = b;
  mb->align = eff;
  mb->cursor = 0;
  mb->len = 0;
  if (kind == 2) fz_model_append(mb, fz_pat + off, n);
  FZ_ASSERT(b->cap >= n);
  FZ_EQ(b->len, mb->len);
}

static void fz_op_int(fz_in *in, int slot, int get) {
  static const unsigned width[11] = {1, 2, 2, 4, 4, 8, 8, 4, 4, 8, 8};
  fz_mbuf *mb = &fz.buf[slot];
  int kind = fz_in_u8(in) % 11;
  uint64_t v = get ? 0 : fz_in_u64(in);
  unsigned w = width[kind];
  int be = kind != 0 && (kind % 2) == 0;
  if (mb->b == NULL || fz_buf_live(slot)) return;
  hb_buf *b = mb->b;
  if (w < 8) v &= ((uint64_t)1 << (8 * w)) - 1;
  if (kind == 7 || kind == 8) {
    if ((v & 0x7f800000u) == 0x7f800000u && (v & 0x7fffffu) != 0)
      v = 0x7fc00000u; /* one NaN: passing a float may quiet a signalling */
  } else if (kind >= 9) {
    if ((v & 0x7ff0000000000000u) == 0x7ff0000000000000u &&
        (v & 0xfffffffffffffu) != 0)
      v = 0x7ff8000000000000u;
  }
  uint8_t bytes[8];
  for (unsigned k = 0; k < w; k++)
    bytes[be ? w - 1 - k : k] = (uint8_t)(v >> (8 * k));
  fz_snap s = fz_take(mb);
  int rc;
  if (!get) {
    float f;
    double d;
    uint32_t v32 = (uint32_t)v;
    memcpy(&f, &v32, 4);
    memcpy(&d, &v, 8);
    switch (kind) {
    case 0: rc = hb_put_u8(b, (uint8_t)v); break;
    case 1: rc = hb_put_u16_le(b, (uint16_t)v); break;
    case 2: rc = hb_put_u16_be(b, (uint16_t)v); break;
    case 3: rc = hb_put_u32_le(b, (uint32_t)v); break;
    case 4: rc = hb_put_u32_be(b, (uint32_t)v); break;
    case 5: rc = hb_put_u64_le(b, v); break;
    case 6: rc = hb_put_u64_be(b, v); break;
    case 7: rc = hb_put_f32_le(b, f); break;
    case 8: rc = hb_put_f32_be(b, f); break;
    case 9: rc = hb_put_f64_le(b, d); break;
    default: rc = hb_put_f64_be(b, d); break;
    }
    fz_expect_growth(mb, w, rc, &s);
    if (rc == HB_OK) fz_model_append(mb, bytes, w);
    return;
  }
  /* get: the sentinel must survive a failed read */
  uint64_t out = 0xa5a5a5a5a5a5a5a5u;
  uint8_t o8 = 0xa5;
  uint16_t o16 = 0xa5a5;
  uint32_t o32 = 0xa5a5a5a5u;
  float of = 0;
  double od = 0;
  memcpy(&of, &o32, 4);
  memcpy(&od, &out, 8);
  switch (kind) {
  case 0: rc = hb_get_u8(b, &o8); out = o8; break;
  case 1: rc = hb_get_u16_le(b, &o16); out = o16; break;
  case 2: rc = hb_get_u16_be(b, &o16); out = o16; break;
  case 3: rc = hb_get_u32_le(b, &o32); out = o32; break;
  case 4: rc = hb_get_u32_be(b, &o32); out = o32; break;
  case 5: rc = hb_get_u64_le(b, &out); break;
  case 6: rc = hb_get_u64_be(b, &out); break;
  case 7:
  case 8:
    rc = kind == 7 ? hb_get_f32_le(b, &of) : hb_get_f32_be(b, &of);
    memcpy(&o32, &of, 4);
    out = o32;
    break;
  default:
    rc = kind == 9 ? hb_get_f64_le(b, &od) : hb_get_f64_be(b, &od);
    memcpy(&out, &od, 8);
    break;
  }
  if (mb->len - mb->cursor < w) {
    FZ_EQ(rc, HB_ERANGE);
    uint64_t sentinel = w == 8 ? 0xa5a5a5a5a5a5a5a5u
                               : (((uint64_t)1 << (8 * w)) - 1) & 0xa5a5a5a5u;
    FZ_EQ(out, sentinel);
    fz_unchanged(mb, &s);
    return;
  }
  FZ_EQ(rc, HB_OK);
  uint64_t want = 0;
  for (unsigned k = 0; k < w; k++)
    want |= (uint64_t)mb->bytes[mb->cursor + (be ? w - 1 - k : k)] << (8 * k);
  FZ_EQ(out, want);
  mb->cursor += w;
}

void fz_op_direct(int op, fz_in *in) {
  int slot = fz_in_u8(in) % FZ_NBUF;
  fz_mbuf *mb = &fz.buf[slot];
  size_t n = 0;
  uint8_t x = 0;
  uint16_t off16 = 0;
  switch (op) { /* read the arguments whether or not the op runs */
  case FZ_OP_RESERVE:
  case FZ_OP_ADVANCE: n = fz_in_size(in, mb); break;
  case FZ_OP_RESIZE:
  case FZ_OP_PUT:
  case FZ_OP_GET:
    n = fz_in_size(in, mb);
    x = fz_in_u8(in);
    break;
  case FZ_OP_PUT_SELF:
    off16 = fz_in_u16(in);
    n = fz_in_u16(in);
    break;
  case FZ_OP_POKE:
    off16 = fz_in_u16(in);
    x = fz_in_u8(in);
    break;
  case FZ_OP_PUT_INT: fz_op_int(in, slot, 0); return;
  case FZ_OP_GET_INT: fz_op_int(in, slot, 1); return;
  default: break;
  }
  if (mb->b == NULL || fz_buf_live(slot)) return;
  hb_buf *b = mb->b;
  fz_snap s = fz_take(mb);
  int rc;
  switch (op) {
  case FZ_OP_RESERVE:
    rc = hb_reserve(b, n);
    fz_expect_growth(mb, n, rc, &s);
    break;
  case FZ_OP_RESIZE:
    rc = hb_resize(b, n, x);
    if (n <= s.b.len) {
      FZ_EQ(rc, HB_OK);
      FZ_EQ(b->cap, s.b.cap);
      mb->len = n;
      if (mb->cursor > n) mb->cursor = n;
      break;
    }
    fz_expect_growth(mb, n - s.b.len, rc, &s);
    if (rc == HB_OK) {
      fz_model_set_len(mb, n);
      memset(mb->bytes + s.b.len, x, n - s.b.len);
    }
    break;
  case FZ_OP_CLEAR:
    hb_clear(b);
    mb->len = mb->cursor = 0;
    FZ_EQ(b->cap, s.b.cap);
    break;
  case FZ_OP_PUT: {
    const uint8_t *src = (x & 0x80) ? NULL : fz_pat + (x & 0x7f);
    rc = hb_put(b, src, n);
    if (src == NULL && n > 0) {
      FZ_EQ(rc, HB_EINVAL);
      fz_unchanged(mb, &s);
      break;
    }
    fz_expect_growth(mb, n, rc, &s);
    if (rc == HB_OK) fz_model_append(mb, src, n);
    break;
  }
  case FZ_OP_PUT_SELF: {
    if (s.b.len == 0) break;
    size_t o = off16 % s.b.len;
    if (n > s.b.len - o) n = s.b.len - o;
    rc = hb_put(b, b->data + o, n);
    fz_expect_growth(mb, n, rc, &s);
    if (rc == HB_OK) {
      fz_model_set_len(mb, s.b.len + n);
      memcpy(mb->bytes + s.b.len, mb->bytes + o, n);
    }
    break;
  }
  case FZ_OP_GET: {
    int nulldst = x & 1;
    memset(fz_out, 0x5a, 64);
    rc = hb_get(b, nulldst ? NULL : fz_out, n);
    if (n == 0) {
      FZ_EQ(rc, HB_OK);
    } else if (nulldst) {
      FZ_ONE_OF(rc, HB_EINVAL, HB_ERANGE);
      if (n <= mb->len - mb->cursor) FZ_EQ(rc, HB_EINVAL);
    } else if (n > mb->len - mb->cursor) {
      FZ_EQ(rc, HB_ERANGE);
      FZ_EQ(fz_out[0], 0x5a);
    } else {
      FZ_EQ(rc, HB_OK);
      FZ_ASSERT(memcmp(fz_out, mb->bytes + mb->cursor, n) == 0);
      mb->cursor += n;
      break;
    }
    fz_unchanged(mb, &s);
    break;
  }
  case FZ_OP_ADVANCE:
    rc = hb_advance(b, n);
    if (n > mb->len - mb->cursor) {
      FZ_EQ(rc, HB_ERANGE);
      fz_unchanged(mb, &s);
    } else {
      FZ_EQ(rc, HB_OK);
      mb->cursor += n;
    }
    FZ_EQ(hb_remaining(b), mb->len - mb->cursor);
    break;
  case FZ_OP_COMPACT:
    hb_compact(b);
    if (mb->len > mb->cursor)
      memmove(mb->bytes, mb->bytes + mb->cursor, mb->len - mb->cursor);
    mb->len -= mb->cursor;
    mb->cursor = 0;
    FZ_EQ(b->cap, s.b.cap);
    FZ_ASSERT(b->data == s.b.data);
    break;
  case FZ_OP_POKE:
    if (s.b.len == 0) break;
    hb_data(b)[off16 % s.b.len] = x;
    mb->bytes[off16 % s.b.len] = x;
    break;
  default: break;
  }
}

/* The library's counters against the model's.  From inside a callback
 * (FZ_S_STATS), a writer whose driver call is under way further up the
 * stack with its callback not entered may have finished already with a
 * failed reservation, counted by the library and not yet by the model. */
void fz_op_stats(int slot) {
  fz_mbuf *mb = &fz.buf[slot];
  hb_stats st;
  FZ_EQ(hb_stats_get(NULL, &st), HB_EINVAL);
  if (mb->b == NULL) return;
  FZ_EQ(hb_stats_get(mb->b, NULL), HB_EINVAL);
  FZ_EQ(hb_stats_get(mb->b, &st), HB_OK);
  FZ_TRACE("stats b%d: run %llu cancelled %llu aborted %llu reserve_failed "
           "%llu\n", slot, (unsigned long long)st.visits_run,
           (unsigned long long)st.visits_cancelled,
           (unsigned long long)st.visits_aborted,
           (unsigned long long)st.reserve_failed);
  FZ_EQ(st.visits_run, mb->runs);
  FZ_EQ(st.visits_cancelled, mb->cancelled);
  FZ_EQ(st.visits_aborted, mb->aborted);
  uint64_t maybe = 0;
  for (int j = 0; fz.depth > 0 && j < FZ_NVIS; j++) {
    const fz_mvis *u = &fz.vis[j];
    if (u->buf == slot && u->write && u->state == VS_ARMED && !u->called &&
        (u->driving || u->detached))
      maybe++;
  }
  FZ_ASSERT(st.reserve_failed >= mb->reserve_failed &&
            st.reserve_failed <= mb->reserve_failed + maybe);
}
