/*
 * make_seeds.c -- write the fuzzer's seed corpus from readable scenarios.
 *
 * Each seed is a short program in the operation language of fuzz_ops.h,
 * written with the encoder helpers below, that drives one meaningful path:
 * the design's seed example, integer round trips, hostile sizes, the cursor
 * model, allocation failure, FIFO order, wakers, aborts, detached visits.
 * The fuzzer mutates from there.  Seeds written before the one-call visits
 * are in the v1 language and stay byte for byte as they were; the ones
 * that use hb_*_now, hb_view_drain or the other v2 operations begin with
 * FZ_V2_MAGIC (see fuzz_ops.h), and those using issue 14's calls (spare
 * room + commit, the writer session, gather export) FZ_V3_MAGIC.  Run by
 * scripts/fuzz_seeds.sh:
 *
 *   make_seeds OUTDIR     writes OUTDIR/seed-<name>
 */
#include "fuzz_ops.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint8_t buf[4096];
static size_t len;

static void b(int x) { buf[len++] = (uint8_t)x; }

/* Size arguments (see fuzz_ops.h). */
static void sz_small(int v) { b(FZ_SZ_SMALL), b(v), b(0); }
static void sz_medium(int v) { b(FZ_SZ_MEDIUM), b(v & 0xff), b(v >> 8); }
static void sz_hostile(int idx) { b(FZ_SZ_HOSTILE), b(idx), b(0); }
static void sz_rel(int cls, int d) { b(cls), b(d & 0xff), b(0); }

static void new_buf(int slot, int cap) {
  b(FZ_OP_NEW), b(slot), b(0), b(0), sz_small(cap), b(0);
}
static void new_aligned(int slot, int align_idx, int cap) {
  b(FZ_OP_NEW), b(slot), b(1), b(align_idx), sz_small(cap), b(0);
}
static void wrap(int slot, int n, int off) {
  b(FZ_OP_NEW), b(slot), b(2), b(0), sz_small(n), b(off);
}
static void put(int slot, int n, int off) {
  b(FZ_OP_PUT), b(slot), sz_medium(n), b(off);
}
static void put_int(int slot, int kind, uint64_t v) {
  b(FZ_OP_PUT_INT), b(slot), b(kind);
  for (int i = 0; i < 8; i++) b((int)(v >> (8 * i)) & 0xff);
}
static void get_int(int slot, int kind) { b(FZ_OP_GET_INT), b(slot), b(kind); }
static void cast(int vis, int slot, int type, int write) {
  b(FZ_OP_CAST), b(vis), b(slot), b(type), b(write);
}
/* visit: script = return byte, then steps of (op, a, c). */
static void visit(int vis, int reserve, int detached, int ret,
                  const uint8_t *steps, size_t nsteps) {
  b(FZ_OP_VISIT), b(vis), sz_medium(reserve), b(detached);
  b((int)(1 + 3 * nsteps)), b(ret);
  for (size_t i = 0; i < 3 * nsteps; i++) b(steps[i]);
}
static void op1(int op, int arg) { b(op), b(arg); }

/* v2: the magic first, then v2 operations may follow. */
static void v2(void) {
  memcpy(buf + len, FZ_V2_MAGIC, FZ_V2_MAGIC_LEN);
  len += FZ_V2_MAGIC_LEN;
}
/* v3: the magic first, then v3 operations may follow. */
static void v3(void) {
  memcpy(buf + len, FZ_V3_MAGIC, FZ_V2_MAGIC_LEN);
  len += FZ_V2_MAGIC_LEN;
}
/* hb_spare(n), then k % (n + 1) pattern bytes committed; flags as in
 * fuzz_ops.h (1: spare NULL, 2: commit k alone). */
static void spare(int slot, int n, int k, int flags, int off) {
  b(FZ_OP_SPARE), b(slot), sz_medium(n), sz_medium(k), b(flags), b(off);
}
/* A writer session: steps of (kind, a, c), then flags (1 commit, 2 commit
 * after step 0 too). */
static void writer(int slot, const uint8_t *steps, int nsteps, int flags) {
  b(FZ_OP_WRITER), b(slot), b(nsteps);
  for (int i = 0; i < 3 * nsteps; i++) b(steps[i]);
  b(flags);
}
/* v4: the magic first; then FZ_OP_SCRIBBLE and FZ_OP_POLL_BACK may come. */
static void v4(void) {
  memcpy(buf + len, FZ_V4_MAGIC, FZ_V2_MAGIC_LEN);
  len += FZ_V2_MAGIC_LEN;
}
/* v5: the magic first; then FZ_OP_RWANT may come. */
static void v5(void) {
  memcpy(buf + len, FZ_V5_MAGIC, FZ_V2_MAGIC_LEN);
  len += FZ_V2_MAGIC_LEN;
}
#define NOW_W 1       /* hb_write_now (else hb_read_now) */
#define NOW_NULLFN 2
#define NOW_NULLRES 4
#define NOW_NULLBUF 8
/* A one-call visit: script = return byte, then steps of (op, a, c). */
static void now(int slot, int type, int flags, int reserve, int ret,
                const uint8_t *steps, size_t nsteps) {
  b(FZ_OP_NOW), b(slot), b(type), b(flags), sz_medium(reserve);
  b((int)(1 + 3 * nsteps)), b(ret);
  for (size_t i = 0; i < 3 * nsteps; i++) b(steps[i]);
}
/* FZ_S_NOW's a byte. */
#define SN_W 1
#define SN_OTHER 2
#define SN_TYPE(t) ((t) << 2)
#define SN_ABORT 0x20
#define SN_NULLRES 0x40
#define SN_AGAIN 0x80

static int save(const char *dir, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/seed-%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
    perror(path);
    return 1;
  }
  len = 0;
  return 0;
}

#define COMMIT 64
#define ABORT 0

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  const char *d = argv[1];
  int bad = 0;

  /* DESIGN.md's seed example: wrap three 24-byte records, a writer that
   * reserves four more and appends, then a u8 reader behind it. */
  {
    static const uint8_t grow[] = {FZ_S_CHECK, 0, 0, FZ_S_APPEND, 3, 0,
                                   FZ_S_APPEND_ALL, 3, 0, FZ_S_WRITTEN, 0, 0,
                                   FZ_S_CHECK, 0, 0};
    static const uint8_t show[] = {FZ_S_CHECK, 0, 0, FZ_S_TYPED, 0, 0};
    wrap(0, 72, 0);
    cast(0, 0, 6, 1); /* rec24, write */
    cast(1, 0, 0, 0); /* u8, read */
    visit(0, 96, 0, COMMIT, grow, 5);
    visit(1, 0, 0, COMMIT, show, 2);
    op1(FZ_OP_POLL, 1); /* pending behind the writer */
    op1(FZ_OP_BLOCK, 0);
    op1(FZ_OP_BLOCK, 1);
    op1(FZ_OP_STATS, 0);
    bad |= save(d, "design-example");
  }
  /* Every integer width and byte order, put then read back. */
  new_buf(0, 0);
  for (int k = 0; k < 11; k++) put_int(0, k, 0x0123456789abcdefu + (unsigned)k);
  for (int k = 0; k < 11; k++) get_int(0, k);
  get_int(0, 5); /* past the end: HB_ERANGE */
  bad |= save(d, "ints-roundtrip");

  /* Hostile sizes on reserve, resize, put, get and advance. */
  new_buf(0, 16);
  put(0, 100, 1);
  for (int i = 0; i < 13; i++) {
    b(FZ_OP_RESERVE), b(0), sz_hostile(i);
    b(FZ_OP_PUT), b(0), sz_hostile(i), b(0);
    b(FZ_OP_GET), b(0), sz_hostile(i), b(0);
    b(FZ_OP_ADVANCE), b(0), sz_hostile(i);
  }
  b(FZ_OP_RESERVE), b(0), sz_rel(FZ_SZ_PTRDIFF, 1);
  b(FZ_OP_RESERVE), b(0), sz_rel(FZ_SZ_PTRDIFF, 0);
  b(FZ_OP_RESIZE), b(0), sz_rel(FZ_SZ_PTRDIFF, 0), b(7);
  bad |= save(d, "hostile-sizes");

  /* The cursor model: reads, advance, compact, shrink below the cursor,
   * append from the buffer's own bytes across a growth. */
  new_buf(1, 8);
  put(1, 40, 3);
  b(FZ_OP_GET), b(1), sz_small(10), b(0);
  b(FZ_OP_ADVANCE), b(1), sz_small(5);
  b(FZ_OP_COMPACT), b(1);
  b(FZ_OP_RESIZE), b(1), sz_small(30), b(0xee);
  b(FZ_OP_ADVANCE), b(1), sz_rel(FZ_SZ_REMAINING, 0);
  b(FZ_OP_RESIZE), b(1), sz_small(4), b(0);
  b(FZ_OP_PUT_SELF), b(1), b(0), b(0), b(4), b(0);
  b(FZ_OP_PUT_SELF), b(1), b(1), b(0), b(200), b(0);
  b(FZ_OP_POKE), b(1), b(2), b(0), b(0x42);
  b(FZ_OP_CLEAR), b(1);
  bad |= save(d, "cursor-model");

  /* Allocation failure at each growth, and in hb_new itself. */
  for (int k = 0; k < 3; k++) {
    op1(FZ_OP_FAIL, k);
    new_buf(0, 0);
    put(0, 64, 0);
    put(0, 200, 0);
    b(FZ_OP_RESERVE), b(0), sz_medium(5000);
  }
  bad |= save(d, "alloc-failure");

  /* Large alignments and types that need them. */
  new_aligned(0, 8, 10); /* 4096 */
  new_aligned(1, 3, 10); /* 3: not a power of two */
  put(0, 5000, 0);
  cast(0, 0, 14, 0); /* 4096-byte type: fits a 4096-aligned buffer */
  cast(1, 0, 15, 0); /* 2^63 alignment: refused */
  cast(2, 0, 8, 1);  /* zero size: refused */
  cast(3, 0, 9, 1);  /* size not a multiple of the alignment */
  cast(4, 0, 10, 1); /* alignment not a power of two */
  {
    static const uint8_t chk[] = {FZ_S_CHECK, 0, 0};
    visit(0, 0, 0, COMMIT, chk, 1);
    op1(FZ_OP_TRY, 0);
  }
  bad |= save(d, "alignment");

  /* FIFO: W0 R1 R2 W3 R4.  Polls park the later ones; cancelling W0 lets
   * the readers run together, W3 waits for both. */
  {
    static const uint8_t app[] = {FZ_S_APPEND_BYTES, 8, 1, FZ_S_CHECK, 0, 0};
    static const uint8_t chk[] = {FZ_S_CHECK, 0, 0};
    new_buf(0, 0);
    cast(0, 0, 0, 1);
    cast(1, 0, 0, 0);
    cast(2, 0, 1, 0);
    cast(3, 0, 0, 1);
    cast(4, 0, 2, 0);
    for (int v = 0; v < 5; v++)
      visit(v, 4, 0, COMMIT, v == 0 || v == 3 ? app : chk, v == 0 || v == 3 ? 2 : 1);
    for (int v = 4; v >= 0; v--) op1(FZ_OP_POLL, v);
    op1(FZ_OP_CANCEL, 0);
    op1(FZ_OP_TRY, 3); /* EAGAIN: readers ahead */
    op1(FZ_OP_POLL, 2);
    op1(FZ_OP_POLL, 1);
    op1(FZ_OP_POLL, 3);
    op1(FZ_OP_POLL, 4);
    op1(FZ_OP_POLL, 4); /* again: HB_OK with the same result */
    op1(FZ_OP_CANCEL, 4); /* finished: HB_ESTATE */
    op1(FZ_OP_STATS, 0);
    bad |= save(d, "fifo-cancel");
  }
  /* An aborted write rolls its appends back; in-place edits stay. */
  {
    static const uint8_t ab[] = {FZ_S_POKE, 1, 0, FZ_S_APPEND_ALL, 10, 0,
                                 FZ_S_APPEND_BYTES, 3, 0, FZ_S_WRITTEN, 0, 0};
    static const uint8_t chk[] = {FZ_S_CHECK, 0, 0, FZ_S_APPEND, 0, 0};
    wrap(0, 16, 5);
    cast(0, 0, 2, 1);
    visit(0, 8, 0, ABORT, ab, 4);
    cast(1, 0, 2, 0);
    visit(1, 0, 0, COMMIT, chk, 2);
    op1(FZ_OP_TRY, 1); /* EAGAIN */
    op1(FZ_OP_TRY, 0);
    op1(FZ_OP_TRY, 1);
    op1(FZ_OP_STATS, 0);
    bad |= save(d, "abort-rollback");
  }
  /* Detached visits: a chain that runs on whoever unblocks it. */
  {
    static const uint8_t app[] = {FZ_S_APPEND, 1, 0, FZ_S_CHECK, 0, 0};
    static const uint8_t chk[] = {FZ_S_CHECK, 0, 0};
    new_buf(1, 0);
    cast(0, 1, 0, 1);
    cast(1, 1, 0, 1);
    cast(2, 1, 0, 0);
    cast(3, 1, 0, 0);
    visit(1, 1, 1, COMMIT, app, 2);
    visit(2, 0, 1, COMMIT, chk, 1);
    visit(3, 0, 1, COMMIT, chk, 1);
    visit(0, 2, 0, COMMIT, app, 2);
    op1(FZ_OP_POLL, 0);
    op1(FZ_OP_CANCEL, 3);
    op1(FZ_OP_FREE, 1); /* HB_EBUSY? no: all finished by now */
    bad |= save(d, "detached-chain");
  }
  /* Nested calls from inside callbacks: cancel a later ticket, cast and
   * try one, block on one behind us (HB_EDEADLK), drive ourselves. */
  {
    static const uint8_t nest[] = {FZ_S_CANCEL, 2, 0, FZ_S_NESTED, 5, 0,
                                   FZ_S_NESTED, 6, 1, FZ_S_BLOCK, 6, 0,
                                   FZ_S_SELF, 0, 0, FZ_S_SELF, 3, 0,
                                   FZ_S_TRY, 5, 0};
    static const uint8_t chk[] = {FZ_S_CHECK, 0, 0};
    new_buf(0, 0);
    cast(0, 0, 0, 0);
    cast(1, 0, 0, 1);
    cast(2, 0, 0, 0);
    visit(1, 0, 0, COMMIT, chk, 1);
    visit(0, 0, 0, COMMIT, nest, 7);
    op1(FZ_OP_TRY, 0);
    op1(FZ_OP_FREE, 0); /* HB_EBUSY while tickets are live */
    op1(FZ_OP_TRY, 1);
    bad |= save(d, "nested");
  }
  /* Partial elements: a 6-byte type over 16 bytes refuses appends. */
  {
    static const uint8_t app[] = {FZ_S_APPEND, 0, 0, FZ_S_APPEND_ALL, 2, 0,
                                  FZ_S_APPEND_BYTES, 2, 0, FZ_S_APPEND, 0, 0};
    wrap(0, 16, 0);
    cast(0, 0, 13, 1);
    visit(0, 0, 0, COMMIT, app, 4);
    op1(FZ_OP_BLOCK, 0);
    bad |= save(d, "partial-elements");
  }
  /* Reservations that cannot be had: overflowing, and a failed
   * allocation when the turn comes. */
  {
    static const uint8_t chk[] = {FZ_S_CHECK, 0, 0};
    new_buf(0, 0);
    put(0, 10, 0);
    cast(0, 0, 0, 1);
    b(FZ_OP_VISIT), b(0), sz_rel(FZ_SZ_PTRDIFF, 0), b(0), b(4), b(COMMIT),
        b(FZ_S_CHECK), b(0), b(0);
    op1(FZ_OP_TRY, 0); /* HB_OK, result HB_ENOMEM, no callback */
    cast(1, 0, 0, 1);
    visit(1, 4000, 0, COMMIT, chk, 1);
    op1(FZ_OP_FAIL, 0);
    op1(FZ_OP_POLL, 1);
    cast(2, 0, 0, 1);
    b(FZ_OP_VISIT), b(2), sz_hostile(5), b(0), b(0); /* > PTRDIFF_MAX */
    op1(FZ_OP_STATS, 0);
    bad |= save(d, "reserve-fails");
  }
  /* ---- v2: one-call visits, drains, counters from inside ---- */

  /* A fresh buffer's one-call visits (biased to this thread): commit,
   * abort, drain; then a cast revokes the bias and the same calls go the
   * shared way, next to a caller-owned reader. */
  {
    static const uint8_t app[] = {FZ_S_APPEND_ALL, 4, 9, FZ_S_CHECK, 0, 0,
                                  FZ_S_WRITTEN, 0, 0, FZ_S_POKE, 3, 0,
                                  FZ_S_STATS, 0, 0};
    static const uint8_t chk[] = {FZ_S_CHECK, 0, 0, FZ_S_TYPED, 0, 0,
                                  FZ_S_STATS, 0, 0};
    static const uint8_t ab[] = {FZ_S_POKE, 5, 0, FZ_S_APPEND_BYTES, 12, 1,
                                 FZ_S_WRITTEN, 0, 0};
    static const uint8_t dr[] = {FZ_S_DRAIN, 4, 0, FZ_S_APPEND, 2, 0,
                                 FZ_S_WRITTEN, 0, 0, FZ_S_CHECK, 0, 0};
    v2();
    new_buf(0, 0);
    now(0, 2, NOW_W, 64, COMMIT, app, 5);
    now(0, 2, 0, 0, COMMIT + 7, chk, 3);
    now(0, 2, NOW_W, 16, ABORT, ab, 3);
    now(0, 0, NOW_NULLRES, 0, COMMIT, chk, 3);
    now(0, 2, NOW_W, 0, COMMIT, dr, 4);
    op1(FZ_OP_STATS, 0);
    cast(0, 0, 0, 0); /* revokes: nothing in flight */
    visit(0, 0, 0, COMMIT, chk, 3);
    now(0, 1, 0, 0, COMMIT, chk, 3);  /* beside the reader */
    now(0, 1, NOW_W, 8, COMMIT, app, 5); /* skipped: the reader is live */
    op1(FZ_OP_TRY, 0);
    now(0, 1, NOW_W, 8, COMMIT, app, 5);
    op1(FZ_OP_STATS, 0);
    new_buf(1, 0);
    now(1, 0, 0, 0, COMMIT, chk, 3); /* empty, fresh: biased */
    bad |= save(d, "now-biased");
  }
  /* One-call visits among caller-owned tickets: issued only when
   * grantable (a reader beside readers, a writer when nothing is live),
   * skipped where this thread would wait forever. */
  {
    static const uint8_t app[] = {FZ_S_APPEND_BYTES, 8, 2, FZ_S_CHECK, 0, 0};
    static const uint8_t chk[] = {FZ_S_CHECK, 0, 0, FZ_S_STATS, 0, 0};
    v2();
    new_buf(0, 0);
    put(0, 64, 0);
    cast(1, 0, 0, 0); /* R1 granted */
    visit(1, 0, 0, COMMIT, chk, 2);
    now(0, 0, 0, 0, COMMIT, chk, 2);        /* first one: shared for good */
    now(0, 0, NOW_W, 4, COMMIT, app, 2);    /* skipped */
    cast(2, 0, 0, 1); /* W2 queued */
    visit(2, 8, 0, COMMIT, app, 2);
    op1(FZ_OP_POLL, 2);                     /* pending, waker stored */
    now(0, 0, 0, 0, COMMIT, chk, 2);        /* skipped: a writer waits */
    op1(FZ_OP_CANCEL, 1);                   /* W2 granted, woken */
    now(0, 0, 0, 0, COMMIT, chk, 2);        /* skipped: W2 holds it */
    op1(FZ_OP_POLL, 2);
    now(0, 0, NOW_W, 4, ABORT, app, 2);
    now(0, 0, NOW_W, 4, COMMIT, app, 2);
    cast(3, 0, 0, 0);
    op1(FZ_OP_CANCEL, 3);
    op1(FZ_OP_STATS, 0);
    bad |= save(d, "now-mixed");
  }
  /* Nested one-call visits: inside a biased write, on the same buffer
   * (HB_EDEADLK) and on the other (granted, biasing it); a cast from
   * inside the biased visit revokes it with the visit in flight (moved),
   * queued behind it and woken when it ends.  Inside a biased read, a
   * nested read revokes and is granted beside it, a nested write is
   * HB_EDEADLK. */
  {
    static const uint8_t w[] = {
        FZ_S_NOW, SN_W, 3,                    /* same buffer: deadlock */
        FZ_S_NOW, 0, 0,                       /* a read, same: deadlock */
        FZ_S_NOW, SN_W | SN_OTHER, 0x25,      /* b1, fresh: biased */
        FZ_S_NESTED, 4, 2,                    /* cast v4: revoke, moved */
        FZ_S_APPEND_BYTES, 5, 0,
        FZ_S_STATS, 1, 0,
        FZ_S_TRY, 4, 0};
    static const uint8_t r[] = {
        FZ_S_NOW, 0, 0x10,                    /* nested read: revokes */
        FZ_S_NOW, SN_W, 0,                    /* deadlock */
        FZ_S_NOW, SN_AGAIN | SN_OTHER, 0x13,  /* b0, and b1 again inside */
        FZ_S_NOW, SN_W | SN_OTHER | SN_ABORT, 0x31,
        FZ_S_STATS, 0, 0};
    v2();
    new_buf(0, 0);
    new_buf(1, 0);
    put(1, 8, 0);
    now(0, 0, NOW_W, 32, COMMIT, w, 7);
    op1(FZ_OP_POLL, 4);
    op1(FZ_OP_STATS, 0);
    now(1, 0, 0, 0, COMMIT, r, 5);
    op1(FZ_OP_STATS, 1);
    now(1, 0, NOW_W, 0, COMMIT, r, 5);
    /* A fresh buffer again: this time the cast comes first. */
    static const uint8_t w2[] = {
        FZ_S_NESTED, 5, 1,                    /* cast_mut v5: moved */
        FZ_S_NOW, 0, 0,                       /* deadlock, shared now */
        FZ_S_APPEND_BYTES, 7, 0,
        FZ_S_TRY, 5, 0,
        FZ_S_STATS, 0, 0};
    new_buf(0, 0);
    now(0, 2, NOW_W, 8, COMMIT, w2, 5);
    op1(FZ_OP_STATS, 0);
    op1(FZ_OP_BLOCK, 5);
    /* Fresh again: from the biased write on b0, a write on b1 whose own
     * nested write comes back to b0 -- the biased visit is not the
     * innermost callback, yet it must be seen (revoked, HB_EDEADLK). */
    static const uint8_t w3[] = {
        FZ_S_NOW, SN_AGAIN | SN_OTHER | SN_W, 0x12,
        FZ_S_STATS, 0, 0, FZ_S_STATS, 1, 0};
    new_buf(0, 0);
    now(0, 0, NOW_W, 0, COMMIT, w3, 3);
    bad |= save(d, "now-nested");
  }
  /* One-call visits from inside caller-owned and detached callbacks. */
  {
    static const uint8_t rd[] = {FZ_S_NOW, 0, 0, FZ_S_NOW, SN_W, 0,
                                 FZ_S_NOW, SN_W | SN_OTHER, 0x44,
                                 FZ_S_CHECK, 0, 0};
    static const uint8_t wr[] = {FZ_S_NOW, 0, 0, FZ_S_NOW, SN_OTHER, 0,
                                 FZ_S_APPEND_BYTES, 3, 0, FZ_S_STATS, 0, 0};
    v2();
    new_buf(0, 0);
    new_buf(1, 0);
    put(0, 16, 0);
    cast(0, 0, 0, 0); /* reader, granted */
    cast(1, 0, 0, 1); /* writer, queued */
    cast(2, 0, 0, 0); /* reader behind it */
    visit(1, 4, 1, COMMIT, wr, 4); /* detached: runs on the cancel */
    visit(2, 0, 1, COMMIT, rd, 4);
    visit(0, 0, 0, COMMIT, rd, 4);
    op1(FZ_OP_TRY, 0);
    op1(FZ_OP_STATS, 0);
    op1(FZ_OP_STATS, 1);
    bad |= save(d, "now-in-visitors");
  }
  /* hb_view_drain: within the old bytes only, moving the cursor and the
   * rollback point; refused in a read visit; not undone by an abort. */
  {
    static const uint8_t dr[] = {FZ_S_DRAIN, 4, 0,   /* 4 of 64 */
                                 FZ_S_APPEND_BYTES, 8, 0,
                                 FZ_S_DRAIN, 0, 2,   /* the other 60 */
                                 FZ_S_WRITTEN, 0, 0,
                                 FZ_S_DRAIN, 1, 0,   /* HB_ERANGE */
                                 FZ_S_DRAIN, 2, 3,   /* hostile */
                                 FZ_S_CHECK, 0, 0};
    static const uint8_t ab[] = {FZ_S_DRAIN, 5, 0, FZ_S_APPEND_BYTES, 10, 0,
                                 FZ_S_DRAIN, 1, 1, FZ_S_WRITTEN, 0, 0};
    static const uint8_t rd[] = {FZ_S_DRAIN, 0, 0, FZ_S_DRAIN, 1, 0,
                                 FZ_S_CHECK, 0, 0};
    v2();
    wrap(0, 64, 3);
    b(FZ_OP_GET), b(0), sz_small(10), b(0); /* cursor 10 */
    cast(0, 0, 0, 1);
    visit(0, 16, 0, COMMIT, dr, 6);
    op1(FZ_OP_TRY, 0);
    put(0, 40, 7);
    b(FZ_OP_GET), b(0), sz_small(20), b(0);
    cast(1, 0, 0, 1);
    visit(1, 0, 0, ABORT, ab, 4);
    op1(FZ_OP_BLOCK, 1);
    cast(2, 0, 0, 0);
    visit(2, 0, 0, COMMIT, rd, 3);
    op1(FZ_OP_POLL, 2);
    now(0, 0, NOW_W, 0, COMMIT, dr, 6);
    op1(FZ_OP_STATS, 0);
    bad |= save(d, "drain");
  }
  /* Reservations and bad arguments of the one-call visits. */
  {
    static const uint8_t chk[] = {FZ_S_CHECK, 0, 0};
    v2();
    new_buf(0, 0);
    put(0, 10, 0);
    b(FZ_OP_NOW), b(0), b(0), b(NOW_W), sz_rel(FZ_SZ_PTRDIFF, 0), b(4),
        b(COMMIT), b(FZ_S_CHECK), b(0), b(0); /* result HB_ENOMEM */
    b(FZ_OP_NOW), b(0), b(0), b(NOW_W), sz_hostile(5), b(0); /* HB_ERANGE */
    b(FZ_OP_NOW), b(0), b(0), b(0), sz_hostile(5), b(0); /* read: ignored */
    op1(FZ_OP_FAIL, 0);
    now(0, 0, NOW_W, 4000, COMMIT, chk, 1); /* the allocation fails */
    now(0, 0, NOW_W | NOW_NULLFN, 0, COMMIT, chk, 1);
    now(0, 0, NOW_NULLBUF, 0, COMMIT, chk, 1);
    now(0, 8, 0, 0, COMMIT, chk, 1);  /* zero size */
    now(0, 7, NOW_W, 0, COMMIT, chk, 1); /* 32-aligned on a 16 buffer */
    now(0, 0, NOW_NULLRES, 0, COMMIT, chk, 1);
    now(1, 0, 0, 0, COMMIT, chk, 1); /* empty slot */
    op1(FZ_OP_STATS, 0);
    bad |= save(d, "now-reserve");
  }

  /* v3 (issue 14): spare room + commit, including an allocation failure
   * in the growth and every error; the gather export. */
  {
    v3();
    new_buf(0, 16);
    put(0, 10, 3);
    spare(0, 4, 3, 0, 1);     /* fits: commit 3 of 4 */
    spare(0, 5000, 4000, 0, 2); /* grows */
    op1(FZ_OP_FAIL, 0);
    spare(0, 60000, 7, 0, 3); /* the growth fails: nothing changes */
    spare(0, 1, 1, 1, 0);     /* spare NULL: HB_EINVAL */
    b(FZ_OP_SPARE), b(0), sz_hostile(2), sz_small(0), b(0), b(0);
    b(FZ_OP_SPARE), b(0), sz_medium(0), sz_rel(FZ_SZ_SPARE, 1), b(2), b(0);
    b(FZ_OP_SPARE), b(0), sz_medium(0), sz_rel(FZ_SZ_SPARE, 0), b(2), b(9);
    b(FZ_OP_ADVANCE), b(0), sz_small(5);
    b(FZ_OP_PEEK_IOV), b(0), b(2), b(0);
    b(FZ_OP_PEEK_IOV), b(0), b(0), b(0); /* iovcnt 0: HB_EINVAL */
    b(FZ_OP_PEEK_IOV), b(0), b(1), b(1); /* iov NULL */
    bad |= save(d, "spare-commit");
  }
  /* v3: writer sessions that grow from empty, copy their own bytes, fail
   * an allocation midway, commit early, and one dropped. */
  {
    static const uint8_t steps[] = {0, 7, 0,   1, 200, 5, 3, 40, 1,
                                    1, 255, 9, 2, 3, 0,   0, 0, 0,
                                    3, 255, 0, 1, 100, 0, 4, 0x12, 0x34};
    v3();
    new_buf(0, 0);
    writer(0, steps, 9, 3);
    new_aligned(1, 7, 8); /* 64-byte aligned: grows by malloc + copy */
    writer(1, steps, 9, 1);
    op1(FZ_OP_FAIL, 1);
    writer(0, steps, 9, 1);
    writer(1, steps, 5, 0); /* dropped */
    b(FZ_OP_PEEK_IOV), b(1), b(3), b(0);
    bad |= save(d, "writer");
  }
  /* v3: spare + commit inside write visits, one committing and one
   * aborting (the commit is rolled back), and in a read visit. */
  {
    static const uint8_t sp[] = {FZ_S_SPARE, 100, 0x80 | 5, FZ_S_WRITTEN, 0,
                                 0,          FZ_S_SPARE, 3, 0xff,
                                 FZ_S_SPARE, 200, 0x3f, FZ_S_CHECK, 0, 0};
    v3();
    new_buf(0, 8);
    put(0, 8, 0);
    now(0, 0, NOW_W, 0, COMMIT, sp, 5);
    now(0, 0, NOW_W, 16, ABORT, sp, 5);
    now(0, 0, 0, 0, COMMIT, sp, 5); /* read: HB_ESTATE */
    cast(0, 0, 0, 1);
    visit(0, 0, 0, ABORT, sp, 5);
    op1(FZ_OP_BLOCK, 0);
    op1(FZ_OP_STATS, 0);
    bad |= save(d, "view-spare");
  }

  /* v4: a visitor that ran, then its storage scribbled over as if never
   * initialised: every call answers as on an idle visitor, and it casts
   * and runs again; the same with a cancelled one. */
  {
    v4();
    new_buf(0, 64);
    cast(0, 0, 0, 1);
    visit(0, 8, 0, COMMIT, NULL, 0);
    op1(FZ_OP_TRY, 0);
    b(FZ_OP_SCRIBBLE), b(0), b(0xab);
    op1(FZ_OP_CANCEL, 0);
    op1(FZ_OP_POLL, 0);
    op1(FZ_OP_TRY, 0);
    cast(0, 0, 0, 0);
    visit(0, 0, 0, COMMIT, NULL, 0);
    op1(FZ_OP_TRY, 0);
    cast(1, 0, 0, 1);
    op1(FZ_OP_CANCEL, 1);
    b(FZ_OP_SCRIBBLE), b(1), b(0x05);
    cast(1, 0, 0, 1);
    visit(1, 0, 0, COMMIT, NULL, 0);
    op1(FZ_OP_BLOCK, 1);
    bad |= save(d, "scribble");
  }

  /* v4: wakers that call back.  Readers 1 and 2 wait behind writer 0 with
   * wakers that cancel their own visitor (1) and try to drive it (2,
   * HB_EDEADLK); writer 3 waits behind them with a cancelling waker and is
   * cancelled (its waker's cancel: HB_ESTATE). */
  {
    v4();
    new_buf(0, 64);
    cast(0, 0, 0, 1);
    cast(1, 0, 0, 0);
    cast(2, 0, 0, 0);
    cast(3, 0, 0, 1);
    visit(1, 0, 0, COMMIT, NULL, 0);
    visit(2, 0, 0, COMMIT, NULL, 0);
    visit(3, 0, 0, COMMIT, NULL, 0);
    b(FZ_OP_POLL_BACK), b(1), b(2);
    b(FZ_OP_POLL_BACK), b(2), b(1);
    b(FZ_OP_POLL_BACK), b(3), b(2);
    op1(FZ_OP_CANCEL, 3);
    visit(0, 0, 0, COMMIT, NULL, 0);
    op1(FZ_OP_TRY, 0);
    op1(FZ_OP_TRY, 2);
    op1(FZ_OP_POLL, 1);
    bad |= save(d, "wakers-call-back");
  }

  /* v5: the read bias (src/rbias.c).  A reader cast first, so that the
   * one-call visits find the buffer shared, not biased to this thread;
   * then read-mostly: the next read arms the bias and runs through the
   * reader table, a nested write inside one (HB_EDEADLK) moves it into
   * the lock word, a write cast from inside another queues behind it and
   * runs after, and a plain write revokes with nobody in.  The model sees
   * none of it: every answer is as without the bias. */
  {
    static const uint8_t deadlock[] = {FZ_S_NOW, SN_W, 3, FZ_S_CHECK, 0, 0};
    static const uint8_t queue[] = {FZ_S_NESTED, 2, 1, FZ_S_STATS, 0, 0};
    v5();
    new_buf(0, 64);
    put(0, 40, 3);
    cast(0, 0, 0, 0);
    now(0, 0, 0, 0, COMMIT, NULL, 0);
    visit(0, 0, 0, COMMIT, NULL, 0);
    op1(FZ_OP_TRY, 0);
    op1(FZ_OP_RWANT, 0);
    now(0, 0, 0, 0, COMMIT, NULL, 0);
    now(0, 1, 0, 0, COMMIT, deadlock, 2);
    now(0, 0, 0, 0, COMMIT, queue, 2);
    op1(FZ_OP_BLOCK, 2);
    op1(FZ_OP_RWANT, 0);
    now(0, 0, 0, 0, COMMIT, NULL, 0);
    now(0, 0, NOW_W, 8, COMMIT, NULL, 0);
    op1(FZ_OP_RWANT, 0);
    now(0, 0, 0, 0, COMMIT, NULL, 0);
    cast(1, 0, 0, 1);
    visit(1, 8, 0, COMMIT, NULL, 0);
    op1(FZ_OP_TRY, 1);
    op1(FZ_OP_STATS, 0);
    bad |= save(d, "read-bias");
  }
  return bad;
}
