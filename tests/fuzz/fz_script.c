/*
 * fz_script.c -- the fuzzer's interpreter (fz.h), callbacks: the visit
 * callback, the script it runs (view checks, appends, drains, nested visits
 * and drivers) and the detached completion.
 */
#include "fz.h"

/* ---- callbacks ---------------------------------------------------------- */

static void fz_view_check(hb_view *view, const fz_mvis *m) {
  const fz_mbuf *mb = &fz.buf[m->buf];
  size_t size = m->type.size;
  size_t n = 777, c = 777;
  const uint8_t *rb = hb_view_read_bytes(view, &n);
  FZ_ASSERT(rb != NULL);
  FZ_ASSERT(rb == mb->b->data);
  FZ_EQ(n, mb->len);
  FZ_ASSERT(mb->len == 0 || memcmp(rb, mb->bytes, mb->len) == 0);
  FZ_EQ(hb_view_len(view), mb->len / size);
  const void *ra = hb_view_read_array(view, &c);
  FZ_ASSERT(ra == rb);
  FZ_EQ(c, mb->len / size);
  FZ_EQ((uintptr_t)ra % m->type.align, 0);
  void *wa = hb_view_write_array(view, &c);
  uint8_t *wb = hb_view_write_bytes(view, &n);
  if (m->write) {
    FZ_ASSERT(wa == rb);
    FZ_EQ(c, mb->len / size);
    FZ_ASSERT(wb == rb);
    FZ_EQ(n, mb->len);
  } else {
    FZ_ASSERT(wa == NULL);
    FZ_EQ(c, 0);
    FZ_ASSERT(wb == NULL);
    FZ_EQ(n, 0);
  }
  hb_type t = hb_view_type(view);
  FZ_EQ(t.size, m->type.size);
  FZ_EQ(t.align, m->type.align);
}

static size_t fz_script_count(uint8_t a) {
  return a >= 128 ? fz_hostile[a & 7] : (size_t)(a & 0x7f);
}

/* One append from inside a write or read callback; `op` as in FZ_S_*. */
static void fz_view_append(hb_view *view, fz_mvis *m, int op, uint8_t a,
                           uint8_t c) {
  fz_mbuf *mb = &fz.buf[m->buf];
  size_t size = m->type.size;
  const uint8_t *src = fz_pat + c;
  size_t count = 1, n;
  int nullsrc = 0, whole = 1, overflow = 0, rc;
  fz_snap s = fz_take(mb);
  if (op == FZ_S_APPEND) {
    src = fz_pat + a;
    nullsrc = c & 1;
    n = size;
    rc = hb_view_append(view, nullsrc ? NULL : src);
  } else if (op == FZ_S_APPEND_ALL) {
    count = fz_script_count(a);
    overflow = count != 0 && size > SIZE_MAX / count;
    n = overflow ? SIZE_MAX : count * size;
    rc = hb_view_append_all(view, src, count);
  } else {
    n = fz_script_count(a);
    whole = 0;
    rc = hb_view_append_bytes(view, src, n);
  }
  if (!m->write) {
    if (nullsrc)
      FZ_ONE_OF(rc, HB_ESTATE, HB_EINVAL);
    else
      FZ_EQ(rc, HB_ESTATE);
    fz_unchanged(mb, &s);
    return;
  }
  int partial = whole && mb->len % size != 0;
  if (partial && n == 0 && !nullsrc) {
    FZ_ONE_OF(rc, HB_OK, HB_EINVAL); /* nothing to append either way */
    fz_unchanged(mb, &s);
    return;
  }
  if (nullsrc || partial) {
    if (overflow || n > FZ_PTRDIFF_MAX - s.b.len)
      FZ_ONE_OF(rc, HB_EINVAL, HB_ERANGE);
    else
      FZ_EQ(rc, HB_EINVAL);
    fz_unchanged(mb, &s);
    return;
  }
  if (overflow) {
    FZ_EQ(rc, HB_ERANGE);
    fz_unchanged(mb, &s);
    return;
  }
  fz_expect_growth(mb, n, rc, &s);
  if (rc != HB_OK) return;
  FZ_EQ(mb->b->len, s.b.len + n);
  fz_model_append(mb, src, n);
  if (mb->len - m->start_len <= m->reserve)
    FZ_ASSERT(mb->b->data == m->start_data); /* within the reservation */
}

/* hb_view_drain from inside a callback (FZ_S_DRAIN). */
static void fz_view_drain(hb_view *view, fz_mvis *m, uint8_t a, uint8_t c) {
  fz_mbuf *mb = &fz.buf[m->buf];
  size_t old = m->start_len; /* stored when the visit began, not drained */
  size_t n;
  switch (c % 4) {
  case 0: n = a; break;
  case 1: n = old - (a & 7u); break; /* wraps to huge below 0: HB_ERANGE */
  case 2: n = old + (a & 7u); break;
  default: n = fz_hostile[a % 13u]; break;
  }
  fz_snap s = fz_take(mb);
  int rc = hb_view_drain(view, n);
  FZ_TRACE("drain %zu of %zu (len %zu) -> %s\n", n, old, s.b.len,
           hb_err_name(rc));
  if (!m->write) {
    FZ_EQ(rc, HB_ESTATE);
    fz_unchanged(mb, &s);
    return;
  }
  if (n > old) { /* only bytes stored when the visit began can go */
    FZ_EQ(rc, HB_ERANGE);
    fz_unchanged(mb, &s);
    return;
  }
  FZ_EQ(rc, HB_OK);
  FZ_EQ(mb->b->cap, s.b.cap);
  FZ_ASSERT(mb->b->data == s.b.data);
  if (n > 0) memmove(mb->bytes, mb->bytes + n, mb->len - n);
  mb->len -= n;
  m->start_len -= n; /* the rollback point moves with the bytes */
  mb->cursor = mb->cursor > n ? mb->cursor - n : 0;
  FZ_EQ(mb->b->len, mb->len);
  FZ_EQ(mb->b->cursor, mb->cursor);
  FZ_ASSERT(mb->len == 0 || memcmp(mb->b->data, mb->bytes, mb->len) == 0);
}

/* A one-call visit from inside a callback (FZ_S_NOW), with a short script
 * of its own built from a and c (see fuzz_ops.h). */
static void fz_script_now(const fz_mvis *m, uint8_t a, uint8_t c) {
  int slot = (a & 2) ? (m->buf + 1) % FZ_NBUF : m->buf;
  uint8_t ns[FZ_SCRIPT_MAX];
  size_t nl = 0;
  ns[nl++] = (a & 0x20) ? 0 : 64; /* abort, or commit 0 */
  ns[nl++] = FZ_S_CHECK, ns[nl++] = 0, ns[nl++] = 0;
  ns[nl++] = FZ_S_APPEND_BYTES, ns[nl++] = c & 15, ns[nl++] = c;
  ns[nl++] = FZ_S_DRAIN, ns[nl++] = c >> 4, ns[nl++] = 0;
  ns[nl++] = FZ_S_WRITTEN, ns[nl++] = 0, ns[nl++] = 0;
  ns[nl++] = FZ_S_STATS, ns[nl++] = 0, ns[nl++] = 0;
  if (a & 0x80) ns[nl++] = FZ_S_NOW, ns[nl++] = a & 0x7f, ns[nl++] = c;
  fz_do_now(slot, fz_types[(a >> 2) & 7], a & 1, (size_t)(c >> 4) * 8, 0,
            (a & 0x40) != 0, 0, ns, nl);
}

static void fz_script(hb_view *view, int i) {
  fz_mvis *m = &fz.vis[i];
  fz_mbuf *mb = &fz.buf[m->buf];
  int nops = fz.v3 ? FZ_S_COUNT : fz.v2 ? FZ_S_COUNT_V2 : FZ_S_COUNT_V1;
  for (size_t k = 1; k + 3 <= m->script_len; k += 3) {
    int op = m->script[k] % nops;
    uint8_t a = m->script[k + 1], c = m->script[k + 2];
    int j = a % FZ_NVIS;
    switch (op) {
    case FZ_S_CHECK: fz_view_check(view, m); break;
    case FZ_S_POKE: {
      size_t n = 777;
      uint8_t *wb = hb_view_write_bytes(view, &n);
      if (!m->write) {
        FZ_ASSERT(wb == NULL);
        FZ_EQ(n, 0);
      } else if (n > 0) {
        FZ_EQ(n, mb->len);
        size_t idx = (size_t)(a | c << 8) % n;
        wb[idx] = (uint8_t)(a ^ c);
        mb->bytes[idx] = (uint8_t)(a ^ c);
      }
      break;
    }
    case FZ_S_APPEND:
    case FZ_S_APPEND_ALL:
    case FZ_S_APPEND_BYTES: fz_view_append(view, m, op, a, c); break;
    case FZ_S_WRITTEN:
      FZ_EQ(hb_view_bytes_written(view), mb->len - m->start_len);
      break;
    case FZ_S_TYPED: {
      size_t n = 777;
      const void *r = hb__view_array_checked(view, m->type.size, &n, 0);
      FZ_ASSERT(r == mb->b->data);
      FZ_EQ(n, mb->len / m->type.size);
      n = 777;
      r = hb__view_array_checked(view, m->type.size + 1, &n, 0);
      FZ_ASSERT(r == NULL);
      FZ_EQ(n, 0);
      n = 777;
      r = hb__view_array_checked(view, m->type.size, &n, 1);
      FZ_ASSERT(m->write ? r == mb->b->data : r == NULL);
      FZ_EQ(n, m->write ? mb->len / m->type.size : 0);
      break;
    }
    case FZ_S_CANCEL: fz_do_cancel(j); break;
    case FZ_S_SELF:
      if (i >= FZ_NOW0) break; /* a one-call visit's visitor is internal */
      switch (a % 4) {
      case 0: fz_drive(i, 0); break;
      case 1: fz_drive(i, 1); break;
      case 2: fz_drive(i, 2); break;
      default: fz_do_cancel(i); break;
      }
      break;
    case FZ_S_NESTED: {
      static const uint8_t nested[] = {64, FZ_S_CHECK, 0, 0, FZ_S_WRITTEN,
                                       0,  0};
      /* Reuse only a finished visitor whose driver has returned. */
      if (fz_live(&fz.vis[j]) || fz.vis[j].driving || fz.depth >= FZ_MAX_DEPTH)
        break;
      fz_do_cast(j, m->buf, fz_types[0], c & 1, 0);
      fz_do_visit(j, c >> 4, 0, 0, nested, sizeof nested);
      fz_drive(j, (c & 2) ? 1 : 0);
      break;
    }
    case FZ_S_BLOCK: fz_drive(j, 2); break;
    case FZ_S_TRY: fz_drive(j, 1); break;
    case FZ_S_NOW: fz_script_now(m, a, c); break;
    case FZ_S_DRAIN: fz_view_drain(view, m, a, c); break;
    case FZ_S_SPARE: fz_view_spare(view, m, a, c); break;
    default: fz_op_stats((a & 1) ? (m->buf + 1) % FZ_NBUF : m->buf); break;
    }
  }
}

int fz_cb(hb_view *view, void *ctx) {
  int i = (int)(uintptr_t)ctx;
  fz_mvis *m = &fz.vis[i];
  fz_mbuf *mb = &fz.buf[m->buf];
  FZ_EQ(m->state, VS_ARMED);
  FZ_ASSERT(!m->called);
  FZ_ASSERT(!m->assumed_done); /* someone ran ahead of us */
  FZ_ASSERT(fz_runnable(i, 1)); /* our turn has come */
  FZ_TRACE("callback v%d %s b%d len %zu\n", i, m->write ? "write" : "read",
           m->buf, mb->len);
  m->called = 1;
  m->state = VS_RUNNING;
  if (i >= FZ_NOW0 && mb->bias == FZ_BIAS_PENDING) {
    /* The library's choice for a buffer casts visited before: adopt it.
     * Biased now means this visit took the biased path. */
    mb->bias = hb__is_biased(mb->b) ? FZ_BIAS_ON : FZ_BIAS_SHARED;
    if (mb->bias == FZ_BIAS_ON) mb->held = i + 1;
    FZ_TRACE("bias decided: %s\n", mb->bias == FZ_BIAS_ON ? "on" : "shared");
  }
  FZ_ASSERT(fz.depth <= FZ_MAX_DEPTH);
  fz.stack[fz.depth++] = i;
  if (m->write) FZ_ASSERT(mb->b->cap - mb->b->len >= m->reserve);
  m->start_len = mb->len;
  m->start_data = mb->b->data;
  fz_view_check(view, m);
  fz_script(view, i);
  fz_view_check(view, m);
  uint8_t r = m->script_len > 0 ? m->script[0] : 64;
  int ret = r < 48 ? -1 - (r % 8) : r % 64;
  if (m->write && ret < 0) {
    mb->len = m->start_len; /* rolled back; in-place edits stay */
    mb->aborted++;
  }
  mb->runs++;
  m->result = ret;
  m->state = VS_RAN;
  fz.depth--;
  return ret;
}

void fz_done(hb_visitor *v, int status, int result, void *arg) {
  int i = (int)(uintptr_t)arg;
  fz_mvis *m = &fz.vis[i];
  FZ_ASSERT(v == &fz_real[i]);
  FZ_ASSERT(m->detached);
  m->done_calls++;
  FZ_TRACE("done v%d %s result %d\n", i, hb_err_name(status), result);
  FZ_EQ(m->done_calls, 1);
  if (status == HB_ECANCELED) {
    FZ_EQ(m->state, VS_CANCELLED);
    FZ_EQ(result, 0);
    FZ_ASSERT(!m->called);
    return;
  }
  FZ_EQ(status, HB_OK);
  if (m->called) {
    FZ_EQ(m->state, VS_RAN);
    FZ_EQ(result, m->result);
    return;
  }
  /* Completed without its callback: the reservation failed. */
  fz_mbuf *mb = &fz.buf[m->buf];
  FZ_EQ(m->state, VS_ARMED);
  FZ_ASSERT(m->write);
  FZ_EQ(result, HB_ENOMEM);
  FZ_ASSERT(fz_alloc.failures > fz.op_fail_base ||
            m->reserve > FZ_PTRDIFF_MAX - mb->len - fz_pad(mb->align));
  m->state = VS_RAN;
  m->result = HB_ENOMEM;
  mb->reserve_failed++;
}
