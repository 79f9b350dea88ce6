/*
 * fz_model.c -- the fuzzer's interpreter (fz.h), the model: failure reports,
 * the harness allocator, the model state and its queries, buffer checks and
 * input decoding.
 */
#include "fz.h"

/* ---- failure reports ---------------------------------------------------- */

unsigned long fz_opno;
int fz_trace;

void fz_die(const char *file, int line, const char *what) {
  const char *base = strrchr(file, '/');
  fprintf(stderr, "fuzz_interp: %s:%d: operation %lu: %s\n",
          base != NULL ? base + 1 : file, line, fz_opno, what);
  abort();
}

/* ---- the harness allocator ---------------------------------------------- */

fz_alloc_state fz_alloc;

static int fz_refuse(size_t n) {
  fz_alloc.count++;
  if (n > FZ_ALLOC_LIMIT || fz_alloc.count == fz_alloc.fail_at) {
    fz_alloc.failures++;
    return 1;
  }
  return 0;
}

void *fz_malloc(size_t n) {
  if (fz_refuse(n)) return NULL;
  void *p = malloc(n ? n : 1);
  if (p != NULL) fz_alloc.live++;
  return p;
}

void *fz_realloc(void *p, size_t n) {
  if (fz_refuse(n)) return NULL;
  void *q = realloc(p, n ? n : 1);
  if (q != NULL && p == NULL) fz_alloc.live++;
  return q;
}

void fz_free(void *p) {
  if (p == NULL) return;
  fz_alloc.live--;
  free(p);
}

fz_state fz;
hb_visitor fz_real[FZ_NVIS];
uint8_t fz_pat[FZ_PAT_SIZE];
uint8_t fz_out[FZ_PAT_SIZE];

const size_t fz_hostile[13] = {
    0,
    1,
    SIZE_MAX,
    SIZE_MAX - 1,
    (size_t)PTRDIFF_MAX,
    (size_t)PTRDIFF_MAX + 1,
    (size_t)PTRDIFF_MAX - 1,
    SIZE_MAX / 2 - 15,
    (size_t)1 << 32,
    FZ_ALLOC_LIMIT,
    FZ_ALLOC_LIMIT + 1,
    (size_t)1 << 31,
    64,
};

const size_t fz_aligns[16] = {
    16, 0, 1, 2, 3, 8, 32, 64, 4096, 24, (size_t)1 << 20,
    ((size_t)SIZE_MAX >> 1) + 1, 128, 256, 48, 16,
};

const hb_type fz_types[16] = {
    {1, 1, "u8"},      {2, 2, "u16"},     {4, 4, "u32"},
    {8, 8, "u64"},     {16, 16, "v16"},   {12, 4, "rgb32"},
    {24, 8, "rec24"},  {32, 32, "v32"},   {0, 1, "zero"},
    {3, 2, "odd"},     {4, 3, "npot"},    {8, 0, "align0"},
    {64, 64, "line"},  {6, 2, "u16x3"},   {SIZE_MAX, 1, "huge"},
    {(size_t)1 << 63, (size_t)1 << 63, "hugealign"},
};

size_t fz_pad(size_t align) { return align > 16 ? align - 16 : 0; }

void fz_model_set_len(fz_mbuf *mb, size_t len) {
  if (len > mb->mcap) {
    size_t cap = mb->mcap ? mb->mcap : 64;
    while (cap < len) cap *= 2;
    uint8_t *p = realloc(mb->bytes, cap);
    FZ_ASSERT(p != NULL);
    mb->bytes = p;
    mb->mcap = cap;
  }
  mb->len = len;
}

void fz_model_append(fz_mbuf *mb, const void *src, size_t n) {
  size_t old = mb->len;
  fz_model_set_len(mb, old + n);
  if (n > 0) memcpy(mb->bytes + old, src, n);
}

int fz_live(const fz_mvis *m) {
  return m->state == VS_CAST || m->state == VS_ARMED ||
         m->state == VS_RUNNING;
}

int fz_buf_live(int slot) {
  for (int j = 0; j < FZ_NALL; j++)
    if (fz.vis[j].buf == slot && fz_live(&fz.vis[j])) return 1;
  return 0;
}

/*
 * May visitor i run now?  A writer waits for every earlier live ticket, a
 * reader for every earlier live writer.  With `lenient`, an earlier writer
 * whose driver call is in progress (or a detached one) and whose callback
 * was not entered counts as finished: its reservation may have failed,
 * which completes it without a callback.  It is marked, and the end of the
 * operation checks that this is what happened.
 */
int fz_runnable(int i, int lenient) {
  const fz_mvis *m = &fz.vis[i];
  for (int j = 0; j < FZ_NALL; j++) {
    fz_mvis *u = &fz.vis[j];
    if (j == i || u->buf != m->buf || !fz_live(u) || u->ticket > m->ticket)
      continue;
    if (!m->write && !u->write) continue;
    if (lenient && u->write && u->state == VS_ARMED && !u->called &&
        (u->driving || u->detached) && fz_runnable(j, 1)) {
      u->assumed_done = 1;
      continue;
    }
    return 0;
  }
  return 1;
}

/* ---- buffer checks ------------------------------------------------------ */

fz_snap fz_take(const fz_mbuf *mb) {
  fz_snap s = {hb_snap_take_as(mb->b, 0), fz_alloc.failures};
  return s;
}

void fz_unchanged(const fz_mbuf *mb, const fz_snap *s) {
  char why[160];
  if (hb_snap_diff(mb->b, &s->b, why, sizeof why) != NULL)
    fz_die(__FILE__, __LINE__, why);
}

/* The outcome of a call that needed n more bytes than s->b.len. */
void fz_expect_growth(const fz_mbuf *mb, size_t n, int rc,
                      const fz_snap *s) {
  const hb_buf *b = mb->b;
  if (s->b.cap - s->b.len >= n) {
    FZ_EQ(rc, HB_OK);
    FZ_EQ(b->cap, s->b.cap);
    FZ_ASSERT(b->data == s->b.data);
    return;
  }
  if (n > FZ_PTRDIFF_MAX - s->b.len) {
    FZ_EQ(rc, HB_ERANGE);
  } else if (rc == HB_OK) {
    FZ_ASSERT(b->cap >= s->b.len + n);
    FZ_ASSERT(b->cap <= FZ_PTRDIFF_MAX);
    return;
  } else if (rc == HB_ENOMEM) {
    FZ_ASSERT(fz_alloc.failures > s->failures);
  } else {
    FZ_EQ(rc, HB_ERANGE); /* only when padding pushes it over the limit */
    FZ_ASSERT(s->b.len + n > FZ_PTRDIFF_MAX - fz_pad(mb->align));
  }
  fz_unchanged(mb, s);
}

/* The bias as the library has it, against the model (bias_avail only). */
void fz_check_bias(const fz_mbuf *mb) {
  if (!fz.bias_avail) {
    FZ_ASSERT(!hb__is_biased(mb->b));
    return;
  }
  FZ_ASSERT(mb->bias != FZ_BIAS_PENDING);
  FZ_EQ(hb__is_biased(mb->b), mb->bias == FZ_BIAS_ON);
  FZ_EQ(hb__bias_moved(mb->b), mb->moved);
}

/* After an operation (nothing running on this thread). */
void fz_check_buf(int slot) {
  const fz_mbuf *mb = &fz.buf[slot];
  hb_buf *b = mb->b;
  if (b == NULL) return;
  fz_check_bias(mb);
  FZ_EQ(mb->held, 0);
  FZ_EQ(__atomic_load_n(&b->held, __ATOMIC_RELAXED), 0);
  /* No ticket granted, nobody queued: the live half shows nothing but,
   * maybe, an armed read bias with nobody in its table (src/rbias.c). */
  if (!fz_buf_live(slot))
    FZ_EQ(__atomic_load_n(&b->lock, __ATOMIC_RELAXED) & HB__LIVE_MASK &
              ~HB__W_RBIAS,
          0);
  FZ_EQ(b->len, mb->len);
  FZ_EQ(b->cursor, mb->cursor);
  FZ_ASSERT(b->cap >= b->len);
  FZ_ASSERT(b->cap <= FZ_PTRDIFF_MAX);
  FZ_ASSERT(b->data != NULL);
  FZ_EQ(hb_align(b), mb->align);
  FZ_EQ((uintptr_t)b->data % mb->align, 0);
  FZ_ASSERT(mb->len == 0 || memcmp(b->data, mb->bytes, mb->len) == 0);
  hb__check(b);
}

/* ---- input -------------------------------------------------------------- */

uint8_t fz_in_u8(fz_in *in) {
  return in->off < in->n ? in->p[in->off++] : 0;
}

uint16_t fz_in_u16(fz_in *in) {
  uint16_t lo = fz_in_u8(in);
  return (uint16_t)(lo | (uint16_t)(fz_in_u8(in) << 8));
}

uint64_t fz_in_u64(fz_in *in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)fz_in_u8(in) << (8 * i);
  return v;
}

size_t fz_in_size(fz_in *in, const fz_mbuf *mb) {
  unsigned cls = fz_in_u8(in) % 16u;
  uint16_t p = fz_in_u16(in);
  size_t d = (size_t)(ptrdiff_t)(int8_t)(p & 0xff);
  size_t len = mb->b ? mb->b->len : 0;
  size_t cap = mb->b ? mb->b->cap : 0;
  size_t cur = mb->b ? mb->b->cursor : 0;
  if (cls < FZ_SZ_MEDIUM) return p & 0xffu;
  switch (cls) {
  case FZ_SZ_MEDIUM:
  case FZ_SZ_MEDIUM + 1: return p;
  case FZ_SZ_LARGE: return (size_t)p << 8;
  case FZ_SZ_HOSTILE: return fz_hostile[p % 13u];
  case FZ_SZ_SPARE: return cap - len + d;
  case FZ_SZ_PTRDIFF: return FZ_PTRDIFF_MAX - len + d;
  case FZ_SZ_LEN: return len + d;
  default: return len - cur + d;
  }
}
