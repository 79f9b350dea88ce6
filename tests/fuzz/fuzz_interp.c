/*
 * fuzz_interp.c -- the fuzzer's operation interpreter and reference model.
 *
 * Included (not linked) by the libFuzzer entry point tests/fuzz/fuzz_ops.c
 * and by the regression replay tests/test_fuzz_replay.c, so that every
 * input that ever found a bug is replayed by every test build.
 *
 * fz_run(data, size) decodes the input into operations (see fuzz_ops.h) on
 * FZ_NBUF buffers and FZ_NVIS visitors, runs each against the library, and
 * checks the result against a reference model after every operation:
 *
 *   - each buffer is modelled as a plain byte array, a length, a cursor
 *     and an alignment; after every operation the real buffer must hold
 *     the same bytes, length and cursor, and hb__check() must pass;
 *   - visitors are modelled as a ticket queue per buffer: the order of
 *     casts, and per visitor its state (idle, cast, armed, running, ran,
 *     cancelled).  A callback asserts on entry that the model lets it run
 *     now (a writer after every earlier ticket has finished, a reader after
 *     every earlier writer), and compares its view with the model bytes;
 *   - wakers: one stored by a pending hb_poll must have been called exactly
 *     once by the end of the operation that made its visitor runnable or
 *     cancelled it, never before, and never a replaced one;
 *   - allocation: every allocation goes through a harness allocator that
 *     refuses sizes above FZ_ALLOC_LIMIT and can fail the k-th allocation;
 *     a call that fails must return HB_ENOMEM (or HB_ERANGE for a total
 *     above PTRDIFF_MAX) and leave length, capacity, data and cursor alone;
 *   - one-call visits (hb_read_now / hb_write_now, v2 inputs): each takes
 *     the next ticket in the model like a cast, in a visitor slot of its
 *     own (FZ_NVIS + depth), and runs the same callback scripts.  This
 *     thread is the only one, so a call whose ticket the model says cannot
 *     be granted at once would wait forever: it is issued only from inside
 *     a callback on the same buffer, where it must return HB_EDEADLK, and
 *     skipped otherwise.  Results are asserted alike whether or not the
 *     buffer is biased (see BIAS in src/visitor.c); the bias itself is
 *     modelled too (set by the first one-call visit on a buffer nothing
 *     has visited, revoked by any later cast or a nested one-call visit
 *     inside a biased one, "moved" when revoked with a biased visit in
 *     flight) and checked with hb__is_biased / hb__bias_moved;
 *   - hb_view_drain (v2): the model drops the bytes and moves its rollback
 *     point and the cursor down with them;
 *   - the lock word: with no visitor live in the model, its live half and
 *     the bias's `held` must be zero after every operation;
 *   - hb_stats_get after every top-level one-call visit, on FZ_OP_STATS,
 *     and from inside callbacks (FZ_S_STATS).
 *
 * Any disagreement prints the operation number and both sides, then
 * aborts.  At the end every live visitor is cancelled, every buffer freed,
 * and the harness allocator must have no block outstanding.
 */
#include "hyperbuf.h"
#include "internal.h"

#include "fuzz_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_ALLOC_LIMIT ((size_t)1 << 17)
#define FZ_PAT_SIZE (FZ_ALLOC_LIMIT + 4096)
#define FZ_MAX_OPS 1500
#define FZ_MAX_DEPTH 3
#define FZ_PTRDIFF_MAX ((size_t)PTRDIFF_MAX)
/* Model visitor slots: FZ_NVIS caller-owned visitors (fz_real), then one
 * per callback depth for the internal visitor of a one-call visit. */
#define FZ_NOW0 FZ_NVIS
#define FZ_NALL (FZ_NVIS + FZ_MAX_DEPTH + 1)

/* Known library bug, reported to the lead (remove when fixed): hb_block_on
 * returning HB_EDEADLK drops the waker an earlier hb_poll stored, so that
 * poller is never woken.  While set, the harness does not call hb_block_on
 * on a visitor that has a stored waker. */
#ifndef FZ_SKIP_EDEADLK_WITH_WAKER
#define FZ_SKIP_EDEADLK_WITH_WAKER 0
#endif

/* ---- failure reports ---------------------------------------------------- */

static unsigned long fz_opno;
static int fz_trace; /* HB_FUZZ_TRACE=1 prints every call */

#define FZ_TRACE(...)                                                        \
  do {                                                                       \
    if (fz_trace) {                                                          \
      fprintf(stderr, "[%lu] %*s", fz_opno, 2 * fz.depth, "");               \
      fprintf(stderr, __VA_ARGS__);                                          \
    }                                                                        \
  } while (0)

static void fz_die(int line, const char *what) {
  fprintf(stderr, "fuzz_interp.c:%d: operation %lu: %s\n", line, fz_opno,
          what);
  abort();
}

#define FZ_ASSERT(c)                                                         \
  do {                                                                       \
    if (!(c)) fz_die(__LINE__, "assertion failed: " #c);                     \
  } while (0)

#define FZ_EQ(a, b)                                                          \
  do {                                                                       \
    unsigned long long fz_a_ = (unsigned long long)(a);                      \
    unsigned long long fz_b_ = (unsigned long long)(b);                      \
    if (fz_a_ != fz_b_) {                                                    \
      char fz_m_[256];                                                       \
      snprintf(fz_m_, sizeof fz_m_, "%s == %s: %llu (%lld) != %llu (%lld)",  \
               #a, #b, fz_a_, (long long)fz_a_, fz_b_, (long long)fz_b_);    \
      fz_die(__LINE__, fz_m_);                                               \
    }                                                                        \
  } while (0)

/* rc must be one of the listed codes. */
#define FZ_ONE_OF(rc, ...)                                                   \
  do {                                                                       \
    const int fz_ok_[] = {__VA_ARGS__};                                      \
    size_t fz_i_;                                                            \
    for (fz_i_ = 0; fz_i_ < sizeof fz_ok_ / sizeof fz_ok_[0]; fz_i_++)       \
      if ((rc) == fz_ok_[fz_i_]) break;                                      \
    if (fz_i_ == sizeof fz_ok_ / sizeof fz_ok_[0]) {                         \
      char fz_m_[160];                                                       \
      snprintf(fz_m_, sizeof fz_m_, "%s = %s (%d), expected one of %s", #rc, \
               hb_err_name(rc), (rc), #__VA_ARGS__);                         \
      fz_die(__LINE__, fz_m_);                                               \
    }                                                                        \
  } while (0)

/* ---- the harness allocator ---------------------------------------------- */

static struct {
  uint64_t count;    /* allocation attempts */
  uint64_t fail_at;  /* attempt number to fail; 0: none */
  uint64_t failures; /* attempts refused */
  long live;         /* blocks handed out and not freed */
} fz_alloc;

static int fz_refuse(size_t n) {
  fz_alloc.count++;
  if (n > FZ_ALLOC_LIMIT || fz_alloc.count == fz_alloc.fail_at) {
    fz_alloc.failures++;
    return 1;
  }
  return 0;
}

static void *fz_malloc(size_t n) {
  if (fz_refuse(n)) return NULL;
  void *p = malloc(n ? n : 1);
  if (p != NULL) fz_alloc.live++;
  return p;
}

static void *fz_realloc(void *p, size_t n) {
  if (fz_refuse(n)) return NULL;
  void *q = realloc(p, n ? n : 1);
  if (q != NULL && p == NULL) fz_alloc.live++;
  return q;
}

static void fz_free(void *p) {
  if (p == NULL) return;
  fz_alloc.live--;
  free(p);
}

/* ---- model -------------------------------------------------------------- */

enum { VS_IDLE, VS_CAST, VS_ARMED, VS_RUNNING, VS_RAN, VS_CANCELLED };

/* The bias of a buffer (see BIAS in src/visitor.c). */
enum {
  FZ_BIAS_NONE,    /* no one-call visit has tried yet */
  FZ_BIAS_ON,      /* biased to this (the only) thread */
  FZ_BIAS_SHARED,  /* never biased, or revoked: for good */
  FZ_BIAS_PENDING  /* the first one-call visit on a buffer that casts have
                      visited before (the contract leaves it open): the
                      library's choice is read when its callback starts */
};

typedef struct {
  hb_buf *b;        /* NULL: empty slot */
  uint8_t *bytes;   /* model contents */
  size_t len, cursor, align, mcap;
  uint64_t next_ticket;
  uint64_t runs, aborted, cancelled, reserve_failed;
  int bias;         /* FZ_BIAS_* */
  int ever_cast;    /* a cast on it succeeded */
  int held;         /* 1 + the slot of the biased one-call visit in flight */
  int moved;        /* revoked with a biased visit in flight */
} fz_mbuf;

typedef struct {
  int state, write, buf, detached;
  uint64_t ticket;
  hb_type type;
  size_t reserve;
  uint8_t script[FZ_SCRIPT_MAX];
  size_t script_len;
  int result;       /* the callback's return, once ran */
  int called;       /* the callback was entered since the cast */
  int driving;      /* a driver call on it is in progress */
  int assumed_done; /* treated as finished by a reservation failure */
  unsigned gen;     /* waker generation */
  int waker_set;    /* a pending poll stored a waker */
  unsigned wakes;   /* calls of the current waker */
  unsigned done_calls;
  size_t start_len; /* while running */
  uint8_t *start_data;
} fz_mvis;

static struct {
  fz_mbuf buf[FZ_NBUF];
  fz_mvis vis[FZ_NALL];   /* [FZ_NOW0 + d]: one-call visit made at depth d */
  int v2;                 /* the input is in the v2 language */
  int bias_avail;         /* hb__bias_available() */
  int depth;              /* callbacks running on this thread */
  int stack[FZ_MAX_DEPTH + 1]; /* their visitors, innermost last */
  uint64_t op_fail_base;  /* fz_alloc.failures when this operation began */
} fz;

static hb_visitor fz_real[FZ_NVIS];
static uint8_t fz_pat[FZ_PAT_SIZE];
static uint8_t fz_out[FZ_PAT_SIZE];

static const size_t fz_hostile[13] = {
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

static const size_t fz_aligns[16] = {
    16, 0, 1, 2, 3, 8, 32, 64, 4096, 24, (size_t)1 << 20,
    ((size_t)SIZE_MAX >> 1) + 1, 128, 256, 48, 16,
};

static const hb_type fz_types[16] = {
    {1, 1, "u8"},      {2, 2, "u16"},     {4, 4, "u32"},
    {8, 8, "u64"},     {16, 16, "v16"},   {12, 4, "rgb32"},
    {24, 8, "rec24"},  {32, 32, "v32"},   {0, 1, "zero"},
    {3, 2, "odd"},     {4, 3, "npot"},    {8, 0, "align0"},
    {64, 64, "line"},  {6, 2, "u16x3"},   {SIZE_MAX, 1, "huge"},
    {(size_t)1 << 63, (size_t)1 << 63, "hugealign"},
};

static size_t fz_pad(size_t align) { return align > 16 ? align - 16 : 0; }

static void fz_model_set_len(fz_mbuf *mb, size_t len) {
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

static void fz_model_append(fz_mbuf *mb, const void *src, size_t n) {
  size_t old = mb->len;
  fz_model_set_len(mb, old + n);
  if (n > 0) memcpy(mb->bytes + old, src, n);
}

static int fz_live(const fz_mvis *m) {
  return m->state == VS_CAST || m->state == VS_ARMED ||
         m->state == VS_RUNNING;
}

static int fz_buf_live(int slot) {
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
static int fz_runnable(int i, int lenient) {
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

typedef struct {
  size_t len, cap, cursor;
  uint8_t *data;
  uint64_t failures;
} fz_snap;

static fz_snap fz_take(const fz_mbuf *mb) {
  fz_snap s = {mb->b->len, mb->b->cap, mb->b->cursor, mb->b->data,
               fz_alloc.failures};
  return s;
}

static void fz_unchanged(const fz_mbuf *mb, const fz_snap *s) {
  FZ_EQ(mb->b->len, s->len);
  FZ_EQ(mb->b->cap, s->cap);
  FZ_EQ(mb->b->cursor, s->cursor);
  FZ_ASSERT(mb->b->data == s->data);
}

/* The outcome of a call that needed n more bytes than s->len. */
static void fz_expect_growth(const fz_mbuf *mb, size_t n, int rc,
                             const fz_snap *s) {
  const hb_buf *b = mb->b;
  if (s->cap - s->len >= n) {
    FZ_EQ(rc, HB_OK);
    FZ_EQ(b->cap, s->cap);
    FZ_ASSERT(b->data == s->data);
    return;
  }
  if (n > FZ_PTRDIFF_MAX - s->len) {
    FZ_EQ(rc, HB_ERANGE);
  } else if (rc == HB_OK) {
    FZ_ASSERT(b->cap >= s->len + n);
    FZ_ASSERT(b->cap <= FZ_PTRDIFF_MAX);
    return;
  } else if (rc == HB_ENOMEM) {
    FZ_ASSERT(fz_alloc.failures > s->failures);
  } else {
    FZ_EQ(rc, HB_ERANGE); /* only when padding pushes it over the limit */
    FZ_ASSERT(s->len + n > FZ_PTRDIFF_MAX - fz_pad(mb->align));
  }
  fz_unchanged(mb, s);
}

/* The bias as the library has it, against the model (bias_avail only). */
static void fz_check_bias(const fz_mbuf *mb) {
  if (!fz.bias_avail) {
    FZ_ASSERT(!hb__is_biased(mb->b));
    return;
  }
  FZ_ASSERT(mb->bias != FZ_BIAS_PENDING);
  FZ_EQ(hb__is_biased(mb->b), mb->bias == FZ_BIAS_ON);
  FZ_EQ(hb__bias_moved(mb->b), mb->moved);
}

/* After an operation (nothing running on this thread). */
static void fz_check_buf(int slot) {
  const fz_mbuf *mb = &fz.buf[slot];
  hb_buf *b = mb->b;
  if (b == NULL) return;
  fz_check_bias(mb);
  FZ_EQ(mb->held, 0);
  FZ_EQ(__atomic_load_n(&b->held, __ATOMIC_RELAXED), 0);
  if (!fz_buf_live(slot)) /* no ticket granted, nobody queued */
    FZ_EQ(__atomic_load_n(&b->lock, __ATOMIC_RELAXED) & HB__LIVE_MASK, 0);
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

typedef struct {
  const uint8_t *p;
  size_t n, off;
} fz_in;

static uint8_t in_u8(fz_in *in) {
  return in->off < in->n ? in->p[in->off++] : 0;
}

static uint16_t in_u16(fz_in *in) {
  uint16_t lo = in_u8(in);
  return (uint16_t)(lo | (uint16_t)(in_u8(in) << 8));
}

static uint64_t in_u64(fz_in *in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)in_u8(in) << (8 * i);
  return v;
}

static size_t in_size(fz_in *in, const fz_mbuf *mb) {
  unsigned cls = in_u8(in) % 16u;
  uint16_t p = in_u16(in);
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

/* ---- visitor operations ------------------------------------------------- */

static int fz_cb(hb_view *view, void *ctx);
static void fz_done(hb_visitor *v, int status, int result, void *arg);

static void fz_wake(void *arg) {
  uintptr_t a = (uintptr_t)arg;
  int j = (int)(a & 0xff);
  fz_mvis *m = &fz.vis[j];
  FZ_ASSERT(m->waker_set);
  FZ_EQ(a >> 8, m->gen); /* a replaced waker must not be called */
  m->wakes++;
  FZ_TRACE("wake v%d\n", j);
  FZ_EQ(m->wakes, 1);
  FZ_ASSERT(m->state == VS_CANCELLED ||
            (m->state == VS_ARMED && fz_runnable(j, 1)));
}

static int fz_type_ok(hb_type t, size_t buf_align) {
  return t.size != 0 && t.align != 0 && (t.align & (t.align - 1)) == 0 &&
         t.align <= buf_align && t.size % t.align == 0;
}

static void fz_bias_revoke(fz_mbuf *mb) {
  if (mb->bias != FZ_BIAS_ON) return;
  mb->bias = FZ_BIAS_SHARED;
  mb->moved = mb->held != 0;
  FZ_TRACE("bias revoked%s\n", mb->moved ? " (moved)" : "");
}

static void fz_do_cast(int j, int slot, hb_type t, int write, int nullbuf) {
  fz_mvis *m = &fz.vis[j];
  fz_mbuf *mb = &fz.buf[slot];
  hb_buf *b = nullbuf ? NULL : mb->b;
  int state_ok = !fz_live(m);
  int rc = write ? hb_cast_mut(&fz_real[j], b, t) : hb_cast(&fz_real[j], b, t);
  FZ_TRACE("cast%s v%d b%d %s -> %s\n", write ? "_mut" : "", j, slot, t.name,
           hb_err_name(rc));
  if (b == NULL) {
    FZ_ONE_OF(rc, HB_EINVAL, HB_ESTATE);
    if (state_ok) FZ_EQ(rc, HB_EINVAL);
    return;
  }
  int type_ok = fz_type_ok(t, mb->align);
  if (!state_ok) {
    if (type_ok)
      FZ_EQ(rc, HB_ESTATE);
    else
      FZ_ONE_OF(rc, HB_ESTATE, HB_EINVAL);
    return;
  }
  if (!type_ok) {
    FZ_EQ(rc, HB_EINVAL);
    return;
  }
  FZ_EQ(rc, HB_OK);
  /* Any cast ends the bias for good; with a biased one-call visit in
   * flight (this cast is made from its callback), its hold is moved into
   * the lock word as a granted ticket. */
  mb->ever_cast = 1;
  fz_bias_revoke(mb);
  unsigned gen = m->gen;
  memset(m, 0, sizeof *m);
  m->gen = gen + 1;
  m->state = VS_CAST;
  m->ticket = mb->next_ticket++;
  m->buf = slot;
  m->write = write;
  m->type = t;
}

static void fz_do_visit(int j, size_t reserve, int detached, int nullfn,
                        const uint8_t *script, size_t script_len) {
  fz_mvis *m = &fz.vis[j];
  hb_visit_fn fn = nullfn ? NULL : fz_cb;
  void *ctx = (void *)(uintptr_t)j;
  int expect;
  int prev = m->state;
  if (prev != VS_CAST)
    expect = HB_ESTATE;
  else if (nullfn)
    expect = HB_EINVAL;
  else if (reserve > FZ_PTRDIFF_MAX)
    expect = HB_ERANGE;
  else
    expect = HB_OK;
  if (expect == HB_OK) {
    /* A detached visit may run inside the call: arm the model first. */
    m->state = VS_ARMED;
    m->detached = detached;
    m->reserve = reserve;
    memcpy(m->script, script, script_len);
    m->script_len = script_len;
  }
  int rc = detached ? hb_visit_detached(&fz_real[j], reserve, fn, ctx,
                                        fz_done, ctx)
                    : hb_visit(&fz_real[j], reserve, fn, ctx);
  FZ_TRACE("visit%s v%d reserve %zu script %zu -> %s\n",
           detached ? "_detached" : "", j, reserve, script_len, hb_err_name(rc));
  if (expect == HB_ESTATE && (nullfn || reserve > FZ_PTRDIFF_MAX))
    FZ_ONE_OF(rc, HB_ESTATE, HB_EINVAL, HB_ERANGE);
  else if (expect == HB_EINVAL && reserve > FZ_PTRDIFF_MAX)
    FZ_ONE_OF(rc, HB_EINVAL, HB_ERANGE);
  else
    FZ_EQ(rc, expect);
}

/* kind: 0 hb_poll, 1 hb_try_visit, 2 hb_block_on. */
static void fz_drive(int j, int kind) {
  fz_mvis *m = &fz.vis[j];
  int res = 0x5eed;
  int rc;
  hb_waker w = {fz_wake, (void *)(uintptr_t)((uintptr_t)j |
                                             (uintptr_t)(m->gen + 1) << 8)};
  if (m->buf < 0) return; /* its buffer was freed: only re-cast it */
  if (m->driving && m->state != VS_RUNNING)
    return; /* one driver at a time per visitor */
  fz_mbuf *mb = &fz.buf[m->buf];
  int runnable = m->state == VS_ARMED && !m->detached && fz_runnable(j, 1);
  if (m->state == VS_ARMED && !m->detached && !runnable && kind == 2) {
    /* It would wait forever, unless called from inside a callback on the
     * same buffer, where the library must see that and refuse. */
    if (fz.depth == 0 || fz.vis[fz.stack[fz.depth - 1]].buf != m->buf)
      return;
    if (FZ_SKIP_EDEADLK_WITH_WAKER && m->waker_set) return;
  }
  if (runnable && fz.depth >= FZ_MAX_DEPTH) return;
  if (m->detached && !fz_live(m)) return; /* unspecified; not driven */

  size_t len_before = mb->b ? mb->b->len : 0;
  uint64_t fails_before = fz_alloc.failures;
  int was_driving = m->driving; /* set when we drive it from inside */
  if (runnable) m->driving = 1;
  if (kind == 0)
    rc = hb_poll(&fz_real[j], w, &res);
  else if (kind == 1)
    rc = hb_try_visit(&fz_real[j], &res);
  else
    rc = hb_block_on(&fz_real[j], &res);
  m->driving = was_driving;
  FZ_TRACE("%s v%d -> %s res %d\n",
           kind == 0 ? "poll" : kind == 1 ? "try_visit" : "block_on", j,
           hb_err_name(rc), res);

  switch (m->state) {
  case VS_IDLE:
  case VS_CAST: FZ_EQ(rc, HB_ESTATE); return;
  case VS_RUNNING:
    if (kind == 0 && !m->detached) /* a detached one has no drivers */
      FZ_EQ(rc, HB_EBUSY);
    else
      FZ_ONE_OF(rc, HB_EBUSY, HB_ESTATE, HB_EDEADLK);
    return;
  case VS_CANCELLED: FZ_EQ(rc, HB_ECANCELED); return;
  case VS_RAN:
    FZ_EQ(rc, HB_OK);
    FZ_EQ(res, m->result);
    m->waker_set = 0;
    return;
  default: break;
  }
  /* Still armed in the model. */
  if (m->detached) {
    FZ_EQ(rc, HB_ESTATE);
    return;
  }
  if (runnable) {
    /* The callback was not called: the reservation could not be had. */
    FZ_EQ(rc, HB_OK);
    FZ_EQ(res, HB_ENOMEM);
    FZ_ASSERT(m->write && !m->called);
    FZ_ASSERT(fz_alloc.failures > fails_before ||
              m->reserve > FZ_PTRDIFF_MAX - len_before - fz_pad(mb->align));
    m->state = VS_RAN;
    m->result = HB_ENOMEM;
    m->waker_set = 0;
    mb->reserve_failed++;
    return;
  }
  if (kind == 0) {
    FZ_EQ(rc, HB_PENDING);
    m->gen++;
    m->wakes = 0;
    m->waker_set = 1;
  } else if (kind == 1) {
    FZ_EQ(rc, HB_EAGAIN);
  } else {
    FZ_EQ(rc, HB_EDEADLK);
  }
}

static void fz_do_cancel(int j) {
  fz_mvis *m = &fz.vis[j];
  int prev = m->state;
  int expect = HB_ESTATE;
  /* A detached visitor whose turn has come may already be claimed to run
   * (granted together with the reader that is cancelling it): then the
   * cancel loses, with HB_EBUSY, and the visit still runs. */
  int claimed = fz.depth > 0 && prev == VS_ARMED && m->detached &&
                fz_runnable(j, 1);
  if (prev == VS_CAST || prev == VS_ARMED) {
    expect = HB_OK;
    m->state = VS_CANCELLED; /* before the call: others may run inside it */
    fz.buf[m->buf].cancelled++; /* and may read the counters (FZ_S_STATS) */
  } else if (prev == VS_RUNNING) {
    expect = HB_EBUSY;
  }
  int rc = hb_cancel(&fz_real[j]);
  FZ_TRACE("cancel v%d -> %s\n", j, hb_err_name(rc));
  if (expect == HB_OK && rc != HB_OK) fz.buf[m->buf].cancelled--;
  if (claimed && rc == HB_EBUSY) {
    m->state = prev;
    return;
  }
  /* A writer whose driver call is under way further up this thread's
   * stack, with no callback entered: its reservation failed and it is
   * finished (the end of the operation checks that). */
  if (prev == VS_ARMED && m->driving && m->write && !m->called &&
      rc == HB_ESTATE) {
    m->state = prev;
    m->assumed_done = 1;
    return;
  }
  FZ_EQ(rc, expect);
  if (expect == HB_OK && m->detached) FZ_EQ(m->done_calls, 1);
}

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
    if (overflow || n > FZ_PTRDIFF_MAX - s.len)
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
  FZ_EQ(mb->b->len, s.len + n);
  fz_model_append(mb, src, n);
  if (mb->len - m->start_len <= m->reserve)
    FZ_ASSERT(mb->b->data == m->start_data); /* within the reservation */
}

static void fz_do_now(int slot, hb_type t, int write, size_t reserve,
                      int nullfn, int nullres, int nullbuf,
                      const uint8_t *script, size_t script_len);
static void fz_op_stats(int slot);

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
  FZ_TRACE("drain %zu of %zu (len %zu) -> %s\n", n, old, s.len,
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
  FZ_EQ(mb->b->cap, s.cap);
  FZ_ASSERT(mb->b->data == s.data);
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
  int nops = fz.v2 ? FZ_S_COUNT : FZ_S_COUNT_V1;
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
    default: fz_op_stats((a & 1) ? (m->buf + 1) % FZ_NBUF : m->buf); break;
    }
  }
}

static int fz_cb(hb_view *view, void *ctx) {
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

static void fz_done(hb_visitor *v, int status, int result, void *arg) {
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

/* ---- one-call visits ---------------------------------------------------- */

/* Is a callback on buffer slot running on this thread, anywhere up the
 * stack?  (What the library's deadlock check asks.) */
static int fz_inside(int slot) {
  for (int d = 0; d < fz.depth; d++)
    if (fz.vis[fz.stack[d]].buf == slot) return 1;
  return 0;
}

/*
 * hb_read_now / hb_write_now on buffer `slot`.  The internal visitor is
 * modelled in slot FZ_NOW0 + depth, with the next ticket: grantable at
 * once exactly when the model would let a visitor cast now run now (a
 * writer: nothing live; a reader: no writer live, hence nobody queued).
 */
static void fz_do_now(int slot, hb_type t, int write, size_t reserve,
                      int nullfn, int nullres, int nullbuf,
                      const uint8_t *script, size_t script_len) {
  fz_mbuf *mb = &fz.buf[slot];
  hb_buf *b = nullbuf ? NULL : mb->b;
  hb_visit_fn fn = nullfn ? NULL : fz_cb;
  int i = FZ_NOW0 + fz.depth;
  fz_mvis *m = &fz.vis[i];
  void *ctx = (void *)(uintptr_t)i;
  int res = 0x5eed, rc;
  int *resp = nullres ? NULL : &res;
  const char *name = write ? "write_now" : "read_now";

  if (b == NULL || nullfn || !fz_type_ok(t, mb->align) ||
      (write && reserve > FZ_PTRDIFF_MAX)) {
    int expect = b == NULL || nullfn || !fz_type_ok(t, mb->align)
                     ? HB_EINVAL
                     : HB_ERANGE;
    rc = write ? hb_write_now(b, t, reserve, fn, ctx, resp)
               : hb_read_now(b, t, fn, ctx, resp);
    FZ_TRACE("%s b%d %s reserve %zu -> %s\n", name, slot, t.name, reserve,
             hb_err_name(rc));
    FZ_EQ(rc, expect);
    FZ_EQ(res, 0x5eed);
    return;
  }
  FZ_ASSERT(!fz_live(m));
  int live_before = fz_buf_live(slot);
  memset(m, 0, sizeof *m);
  m->state = VS_ARMED;
  m->buf = slot;
  m->write = write;
  m->type = t;
  m->reserve = write ? reserve : 0;
  m->ticket = mb->next_ticket;
  memcpy(m->script, script, script_len);
  m->script_len = script_len;

  int grantable = fz_runnable(i, 1);
  int deadlock = !grantable && fz_inside(slot);
  if ((!grantable && !deadlock) || (grantable && fz.depth >= FZ_MAX_DEPTH)) {
    /* It would wait forever (nobody else can finish what it waits for),
     * or nest too deep: not issued. */
    FZ_TRACE("%s b%d: skipped (%s)\n", name, slot,
             grantable ? "too deep" : "would wait forever");
    m->state = VS_IDLE;
    return;
  }

  /* The bias (see BIAS in src/visitor.c), decided before the ticket. */
  if (mb->bias == FZ_BIAS_NONE) {
    if (!fz.bias_avail || live_before)
      mb->bias = FZ_BIAS_SHARED;
    else if (!mb->ever_cast)
      mb->bias = FZ_BIAS_ON; /* a fresh buffer: biased to this thread */
    else
      mb->bias = FZ_BIAS_PENDING;
  } else if (mb->bias == FZ_BIAS_ON && mb->held) {
    fz_bias_revoke(mb); /* nested in our own biased visit */
  }
  int biased = mb->bias == FZ_BIAS_ON;
  if (biased) {
    FZ_ASSERT(grantable && !live_before);
    mb->held = i + 1;
  }

  if (!deadlock) mb->next_ticket++;
  size_t len_before = mb->len;
  uint64_t fails_before = fz_alloc.failures;
  FZ_TRACE("%s b%d %s reserve %zu%s%s\n", name, slot, t.name, reserve,
           biased ? " (biased)" : "", deadlock ? " (deadlock)" : "");
  rc = write ? hb_write_now(b, t, reserve, fn, ctx, resp)
             : hb_read_now(b, t, fn, ctx, resp);
  FZ_TRACE("%s b%d -> %s res %d\n", name, slot, hb_err_name(rc), res);
  if (mb->held == i + 1) mb->held = 0;
  if (mb->bias == FZ_BIAS_PENDING) /* decided without a callback */
    mb->bias = hb__is_biased(b) ? FZ_BIAS_ON : FZ_BIAS_SHARED;
  if (deadlock) {
    FZ_EQ(rc, HB_EDEADLK);
    FZ_EQ(res, 0x5eed); /* no ticket, no result */
    FZ_ASSERT(!m->called);
    m->state = VS_IDLE;
    return;
  }
  FZ_EQ(rc, HB_OK);
  if (m->called) {
    FZ_EQ(m->state, VS_RAN);
    if (resp != NULL) FZ_EQ(res, m->result);
  } else {
    /* The turn came but the reservation could not be had. */
    FZ_EQ(m->state, VS_ARMED);
    FZ_ASSERT(write);
    if (resp != NULL) FZ_EQ(res, HB_ENOMEM);
    FZ_ASSERT(fz_alloc.failures > fails_before ||
              reserve > FZ_PTRDIFF_MAX - len_before - fz_pad(mb->align));
    m->state = VS_RAN;
    m->result = HB_ENOMEM;
    mb->reserve_failed++;
  }
  if (fz.bias_avail && mb->bias != FZ_BIAS_PENDING) fz_check_bias(mb);
  fz_op_stats(slot);
}

/* ---- checks after every operation --------------------------------------- */

static void fz_check_all(void) {
  for (int s = 0; s < FZ_NBUF; s++) fz_check_buf(s);
  for (int j = 0; j < FZ_NALL; j++) {
    fz_mvis *m = &fz.vis[j];
    if (m->assumed_done) {
      FZ_EQ(m->state, VS_RAN);
      FZ_ASSERT(!m->called);
      FZ_EQ(m->result, HB_ENOMEM);
      m->assumed_done = 0;
    }
    if (m->detached && m->state == VS_ARMED)
      FZ_ASSERT(!fz_runnable(j, 0)); /* its turn came: it must have run */
    if (m->detached && (m->state == VS_RAN || m->state == VS_CANCELLED))
      FZ_EQ(m->done_calls, 1);
    if (m->waker_set && (m->state == VS_ARMED || m->state == VS_CANCELLED)) {
      int due = m->state == VS_CANCELLED || fz_runnable(j, 0);
      FZ_EQ(m->wakes, due);
    }
  }
}

/* ---- direct-mode operations --------------------------------------------- */

static void fz_buf_drop(fz_mbuf *mb) {
  free(mb->bytes);
  memset(mb, 0, sizeof *mb);
}

static void fz_op_free(int slot) {
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

static void fz_op_new(fz_in *in) {
  int slot = in_u8(in) % FZ_NBUF;
  int kind = in_u8(in) % 4;
  size_t align = fz_aligns[in_u8(in) % 16];
  fz_mbuf *mb = &fz.buf[slot];
  size_t n = in_size(in, mb);
  uint8_t off = in_u8(in);
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
  int kind = in_u8(in) % 11;
  uint64_t v = get ? 0 : in_u64(in);
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
                               : ((uint64_t)1 << (8 * w)) - 1 & 0xa5a5a5a5u;
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

static void fz_op_direct(int op, fz_in *in) {
  int slot = in_u8(in) % FZ_NBUF;
  fz_mbuf *mb = &fz.buf[slot];
  size_t n = 0;
  uint8_t x = 0;
  uint16_t off16 = 0;
  switch (op) { /* read the arguments whether or not the op runs */
  case FZ_OP_RESERVE:
  case FZ_OP_ADVANCE: n = in_size(in, mb); break;
  case FZ_OP_RESIZE:
  case FZ_OP_PUT:
  case FZ_OP_GET:
    n = in_size(in, mb);
    x = in_u8(in);
    break;
  case FZ_OP_PUT_SELF:
    off16 = in_u16(in);
    n = in_u16(in);
    break;
  case FZ_OP_POKE:
    off16 = in_u16(in);
    x = in_u8(in);
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
    if (n <= s.len) {
      FZ_EQ(rc, HB_OK);
      FZ_EQ(b->cap, s.cap);
      mb->len = n;
      if (mb->cursor > n) mb->cursor = n;
      break;
    }
    fz_expect_growth(mb, n - s.len, rc, &s);
    if (rc == HB_OK) {
      fz_model_set_len(mb, n);
      memset(mb->bytes + s.len, x, n - s.len);
    }
    break;
  case FZ_OP_CLEAR:
    hb_clear(b);
    mb->len = mb->cursor = 0;
    FZ_EQ(b->cap, s.cap);
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
    if (s.len == 0) break;
    size_t o = off16 % s.len;
    if (n > s.len - o) n = s.len - o;
    rc = hb_put(b, b->data + o, n);
    fz_expect_growth(mb, n, rc, &s);
    if (rc == HB_OK) {
      fz_model_set_len(mb, s.len + n);
      memcpy(mb->bytes + s.len, mb->bytes + o, n);
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
    FZ_EQ(b->cap, s.cap);
    FZ_ASSERT(b->data == s.data);
    break;
  case FZ_OP_POKE:
    if (s.len == 0) break;
    hb_data(b)[off16 % s.len] = x;
    mb->bytes[off16 % s.len] = x;
    break;
  default: break;
  }
}

/* The library's counters against the model's.  From inside a callback
 * (FZ_S_STATS), a writer whose driver call is under way further up the
 * stack with its callback not entered may have finished already with a
 * failed reservation, counted by the library and not yet by the model. */
static void fz_op_stats(int slot) {
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

/* ---- the run ------------------------------------------------------------ */

static void fz_init(void) {
  static int done;
  if (!done) {
    for (size_t i = 0; i < FZ_PAT_SIZE; i++)
      fz_pat[i] = (uint8_t)(i * 131u + (i >> 8) + 7u);
    done = 1;
  }
  for (int s = 0; s < FZ_NBUF; s++) free(fz.buf[s].bytes);
  memset(&fz, 0, sizeof fz);
  memset(fz_real, 0, sizeof fz_real);
  memset(&fz_alloc, 0, sizeof fz_alloc);
  fz_opno = 0;
  fz_trace = getenv("HB_FUZZ_TRACE") != NULL;
  fz.bias_avail = hb__bias_available();
  FZ_EQ(hb_set_allocator(fz_malloc, fz_realloc, fz_free), HB_OK);
}

static void fz_finish(void) {
  fz_alloc.fail_at = 0;
  fz.op_fail_base = fz_alloc.failures;
  /* Cancel until nothing is live: a cancel may let a detached visit run. */
  for (int again = 1; again;) {
    again = 0;
    for (int j = 0; j < FZ_NVIS; j++) {
      if (fz_live(&fz.vis[j])) {
        fz_do_cancel(j);
        again = 1;
      }
    }
    fz_check_all();
  }
  for (int s = 0; s < FZ_NBUF; s++) {
    if (fz.buf[s].b != NULL) FZ_EQ(hb_free(fz.buf[s].b), HB_OK);
    fz_buf_drop(&fz.buf[s]);
  }
  FZ_EQ(fz_alloc.live, 0);
  hb_set_allocator(malloc, realloc, free);
}

static int fz_run(const uint8_t *data, size_t size) {
  fz_in in = {data, size, 0};
  fz_init();
  if (size >= FZ_V2_MAGIC_LEN &&
      memcmp(data, FZ_V2_MAGIC, FZ_V2_MAGIC_LEN) == 0) {
    fz.v2 = 1;
    in.off = FZ_V2_MAGIC_LEN;
  }
  int nops = fz.v2 ? FZ_OP_COUNT : FZ_OP_COUNT_V1;
  while (in.off < in.n && fz_opno < FZ_MAX_OPS) {
    int op = in_u8(&in) % nops;
    fz_opno++;
    FZ_TRACE("op %d at byte %zu\n", op, in.off - 1);
    fz.op_fail_base = fz_alloc.failures;
    switch (op) {
    case FZ_OP_NEW: fz_op_new(&in); break;
    case FZ_OP_FREE: fz_op_free(in_u8(&in) % FZ_NBUF); break;
    case FZ_OP_FAIL: {
      uint8_t k = in_u8(&in);
      fz_alloc.fail_at = k == 255 ? 0 : fz_alloc.count + 1 + k % 8;
      break;
    }
    case FZ_OP_STATS: fz_op_stats(in_u8(&in) % FZ_NBUF); break;
    case FZ_OP_CAST: {
      int j = in_u8(&in) % FZ_NVIS;
      int slot = in_u8(&in) % FZ_NBUF;
      hb_type t = fz_types[in_u8(&in) % 16];
      uint8_t fl = in_u8(&in);
      fz_do_cast(j, slot, t, fl & 1, (fl & 2) != 0);
      break;
    }
    case FZ_OP_VISIT: {
      int j = in_u8(&in) % FZ_NVIS;
      int slot = fz.vis[j].buf;
      const fz_mbuf *mb = &fz.buf[slot >= 0 ? slot : 0];
      size_t reserve = in_size(&in, mb);
      uint8_t fl = in_u8(&in);
      uint8_t script[FZ_SCRIPT_MAX];
      size_t sl = in_u8(&in) % (FZ_SCRIPT_MAX + 1);
      for (size_t k = 0; k < sl; k++) script[k] = in_u8(&in);
      fz_do_visit(j, reserve, fl & 1, (fl & 2) != 0, script, sl);
      break;
    }
    case FZ_OP_POLL: fz_drive(in_u8(&in) % FZ_NVIS, 0); break;
    case FZ_OP_TRY: fz_drive(in_u8(&in) % FZ_NVIS, 1); break;
    case FZ_OP_BLOCK: fz_drive(in_u8(&in) % FZ_NVIS, 2); break;
    case FZ_OP_CANCEL: fz_do_cancel(in_u8(&in) % FZ_NVIS); break;
    case FZ_OP_NOW: {
      int slot = in_u8(&in) % FZ_NBUF;
      hb_type t = fz_types[in_u8(&in) % 16];
      uint8_t fl = in_u8(&in);
      size_t reserve = in_size(&in, &fz.buf[slot]);
      uint8_t script[FZ_SCRIPT_MAX];
      size_t sl = in_u8(&in) % (FZ_SCRIPT_MAX + 1);
      for (size_t k = 0; k < sl; k++) script[k] = in_u8(&in);
      fz_do_now(slot, t, fl & 1, reserve, (fl & 2) != 0, (fl & 4) != 0,
                (fl & 8) != 0, script, sl);
      break;
    }
    default: fz_op_direct(op, &in); break;
    }
    fz_check_all();
  }
  fz_finish();
  return 0;
}
