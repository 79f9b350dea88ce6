/*
 * fz.h -- the fuzzer's operation interpreter and reference model: what its
 * files (tests/fuzz/fz_*.c) share.
 *
 * Linked (the CMake target hb_fuzz_interp) into the libFuzzer entry point
 * tests/fuzz/fuzz_ops.c and into the regression replay
 * tests/test_fuzz_replay.c, so that every input that ever found a bug is
 * replayed by every test build.
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
 *     buffer is biased (see BIAS in src/bias.c); the bias itself is
 *     modelled too (set by the first one-call visit on a buffer nothing
 *     has visited, revoked by any later cast or a nested one-call visit
 *     inside a biased one, "moved" when revoked with a biased visit in
 *     flight) and checked with hb__is_biased / hb__bias_moved;
 *   - hb_view_drain (v2): the model drops the bytes and moves its rollback
 *     point and the cursor down with them;
 *   - the lock word: with no visitor live in the model, its live half and
 *     the bias's `held` must be zero after every operation;
 *   - hb_stats_get after every top-level one-call visit, on FZ_OP_STATS,
 *     and from inside callbacks (FZ_S_STATS);
 *   - spare room + commit, the writer session and hb_peek_iov (v3 inputs,
 *     fz_spare.c): committed bytes join the model, uncommitted ones never
 *     do, a failed put or spare changes nothing (the writer included), and
 *     an aborted visit rolls a view's commit back;
 *   - streams (FZ_STREAM_MAGIC inputs, issue 12): tests/fuzz/fz_stream.c,
 *     a language and a model of their own (offsets, waiting readers,
 *     consumers).
 *
 * Any disagreement prints the operation number and both sides, then
 * aborts.  At the end every live visitor is cancelled, every buffer freed,
 * and the harness allocator must have no block outstanding.
 */
#ifndef HB_FUZZ_FZ_H
#define HB_FUZZ_FZ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperbuf.h"
#include "internal.h"

#include "../hb_snap.h"
#include "fuzz_ops.h"

#define FZ_ALLOC_LIMIT ((size_t)1 << 17)
#define FZ_PAT_SIZE (FZ_ALLOC_LIMIT + 4096)
#define FZ_MAX_OPS 1500
#define FZ_MAX_DEPTH 3
#define FZ_PTRDIFF_MAX ((size_t)PTRDIFF_MAX)
/* Model visitor slots: FZ_NVIS caller-owned visitors (fz_real), then one
 * per callback depth for the internal visitor of a one-call visit. */
#define FZ_NOW0 FZ_NVIS
#define FZ_NALL (FZ_NVIS + FZ_MAX_DEPTH + 1)

/* ---- failure reports ---------------------------------------------------- */

extern unsigned long fz_opno; /* the operation being run, from 1 */
extern int fz_trace;          /* HB_FUZZ_TRACE=1 prints every call */

#define FZ_TRACE(...)                                                        \
  do {                                                                       \
    if (fz_trace) {                                                          \
      fprintf(stderr, "[%lu] %*s", fz_opno, 2 * fz.depth, "");               \
      fprintf(stderr, __VA_ARGS__);                                          \
    }                                                                        \
  } while (0)

/* Prints where and what, with the operation number, then aborts. */
void fz_die(const char *file, int line, const char *what);

#define FZ_ASSERT(c)                                                         \
  do {                                                                       \
    if (!(c)) fz_die(__FILE__, __LINE__, "assertion failed: " #c);           \
  } while (0)

#define FZ_EQ(a, b)                                                          \
  do {                                                                       \
    unsigned long long fz_a_ = (unsigned long long)(a);                      \
    unsigned long long fz_b_ = (unsigned long long)(b);                      \
    if (fz_a_ != fz_b_) {                                                    \
      char fz_m_[256];                                                       \
      snprintf(fz_m_, sizeof fz_m_, "%s == %s: %llu (%lld) != %llu (%lld)",  \
               #a, #b, fz_a_, (long long)fz_a_, fz_b_, (long long)fz_b_);    \
      fz_die(__FILE__, __LINE__, fz_m_);                                     \
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
      fz_die(__FILE__, __LINE__, fz_m_);                                     \
    }                                                                        \
  } while (0)

/* ---- the harness allocator ---------------------------------------------- */

typedef struct {
  uint64_t count;    /* allocation attempts */
  uint64_t fail_at;  /* attempt number to fail; 0: none */
  uint64_t failures; /* attempts refused */
  long live;         /* blocks handed out and not freed */
} fz_alloc_state;

extern fz_alloc_state fz_alloc;

/* ---- model -------------------------------------------------------------- */

enum { VS_IDLE, VS_CAST, VS_ARMED, VS_RUNNING, VS_RAN, VS_CANCELLED };

/* The bias of a buffer (see BIAS in src/bias.c). */
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
  int wake_action;  /* what its current waker does when called (v4) */
  size_t start_len; /* while running */
  uint8_t *start_data;
} fz_mvis;

/* The whole model. */
typedef struct {
  fz_mbuf buf[FZ_NBUF];
  fz_mvis vis[FZ_NALL];   /* [FZ_NOW0 + d]: one-call visit made at depth d */
  int v2;                 /* the input is in the v2 language or later */
  int v3;                 /* the input is in the v3 language */
  int v4;                 /* the input is in the v4 language */
  int v5;                 /* the input is in the v5 language */
  int wake_action;        /* for the next pending hb_poll's waker (v4) */
  int bias_avail;         /* hb__bias_available() */
  int depth;              /* callbacks running on this thread */
  int stack[FZ_MAX_DEPTH + 1]; /* their visitors, innermost last */
  uint64_t op_fail_base;  /* fz_alloc.failures when this operation began */
} fz_state;

extern fz_state fz;

extern hb_visitor fz_real[FZ_NVIS];
extern uint8_t fz_pat[FZ_PAT_SIZE];
extern uint8_t fz_out[FZ_PAT_SIZE];
extern const size_t fz_hostile[13];
extern const size_t fz_aligns[16];
extern const hb_type fz_types[16];

/* ---- buffer checks ------------------------------------------------------ */

/* What a failing call must leave alone: the buffer (hb_snap.h), and how
 * many allocations the harness had refused by then. */
typedef struct {
  hb_snap b;
  uint64_t failures;
} fz_snap;

/* ---- input -------------------------------------------------------------- */

typedef struct {
  const uint8_t *p;
  size_t n, off;
} fz_in;

/* ---- the functions, by the file that defines them ---------------------- */

/* fz_model.c */
void *fz_malloc(size_t n);
void *fz_realloc(void *p, size_t n);
void fz_free(void *p);
size_t fz_pad(size_t align);
void fz_model_set_len(fz_mbuf *mb, size_t len);
void fz_model_append(fz_mbuf *mb, const void *src, size_t n);
int fz_live(const fz_mvis *m);
int fz_buf_live(int slot);
int fz_runnable(int i, int lenient);
fz_snap fz_take(const fz_mbuf *mb);
void fz_unchanged(const fz_mbuf *mb, const fz_snap *s);
void fz_expect_growth(const fz_mbuf *mb, size_t n, int rc,
                      const fz_snap *s);
void fz_check_bias(const fz_mbuf *mb);
void fz_check_buf(int slot);
uint8_t fz_in_u8(fz_in *in);
uint16_t fz_in_u16(fz_in *in);
uint64_t fz_in_u64(fz_in *in);
size_t fz_in_size(fz_in *in, const fz_mbuf *mb);

/* fz_visit.c */
int fz_type_ok(hb_type t, size_t buf_align);
void fz_bias_revoke(fz_mbuf *mb);
void fz_do_cast(int j, int slot, hb_type t, int write, int nullbuf);
void fz_do_visit(int j, size_t reserve, int detached, int nullfn,
                 const uint8_t *script, size_t script_len);
void fz_drive(int j, int kind);
void fz_do_cancel(int j);
void fz_scribble(int j, uint8_t byte);

/* fz_script.c */
int fz_cb(hb_view *view, void *ctx);
void fz_done(hb_visitor *v, int status, int result, void *arg);

/* fz_now.c */
void fz_do_now(int slot, hb_type t, int write, size_t reserve,
               int nullfn, int nullres, int nullbuf,
               const uint8_t *script, size_t script_len);

/* fz_direct.c */
void fz_buf_drop(fz_mbuf *mb);
void fz_op_free(int slot);
void fz_op_new(fz_in *in);
void fz_op_direct(int op, fz_in *in);
void fz_op_stats(int slot);

/* fz_spare.c (v3) */
void fz_op_spare(fz_in *in);
void fz_op_writer(fz_in *in);
void fz_op_peek_iov(fz_in *in);
void fz_view_spare(hb_view *view, fz_mvis *m, uint8_t a, uint8_t c);

/* fz_stream.c: run the rest of an FZ_STREAM_MAGIC input (the stream
 * language). */
void fz_stream_run(fz_in *in);

/* fz_run.c: run one input against the library and the model; aborts on
 * the first disagreement.  @return 0 */
int fz_run(const uint8_t *data, size_t size);

#endif /* HB_FUZZ_FZ_H */
