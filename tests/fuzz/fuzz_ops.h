/*
 * fuzz_ops.h -- the byte encoding of the fuzzer's operation language.
 *
 * An input is a sequence of operations.  Each operation is one opcode byte
 * (taken modulo FZ_OP_COUNT) followed by a fixed number of argument bytes,
 * so that a mutation of one byte changes one operation, not the parse of
 * everything after it.  Missing bytes at the end of the input read as 0.
 *
 * Shared by the interpreter (fz.h, fz_*.c), the libFuzzer entry point
 * (fuzz_ops.c), the regression replay (tests/test_fuzz_replay.c) and the
 * seed generator (make_seeds.c).
 *
 * Two versions of the language, so that every committed input keeps its
 * meaning:
 *   v1  an input that does not begin with FZ_V2_MAGIC: opcodes are taken
 *       modulo FZ_OP_COUNT_V1 and callback-script opcodes modulo
 *       FZ_S_COUNT_V1, exactly as before the one-call visits existed;
 *   v2  an input that begins with the FZ_V2_MAGIC_LEN bytes of FZ_V2_MAGIC
 *       ("HB" 0x02, which no v1 corpus or crash file begins with): the
 *       rest is parsed modulo FZ_OP_COUNT and FZ_S_COUNT, which add the
 *       operations marked "v2" below.  v1 operations keep their numbers.
 *   v3  an input that begins with FZ_V3_MAGIC ("HB" 0x03): v2, plus the
 *       operations marked "v3" (issue 14: spare room + commit, the writer
 *       session, gather export), parsed modulo FZ_OP_COUNT and FZ_S_COUNT;
 *       v2 inputs are parsed modulo FZ_OP_COUNT_V2 and FZ_S_COUNT_V2.
 *   v4  an input that begins with FZ_V4_MAGIC ("HB" 0x04): v3, plus the
 *       operations marked "v4" (issue 10: storage that was never a
 *       visitor, wakers that call back), parsed modulo FZ_OP_COUNT; v3
 *       inputs are parsed modulo FZ_OP_COUNT_V3.
 * And a language of its own: an input that begins with FZ_STREAM_MAGIC
 * ("HBs") is all stream operations (issue 12, FZ_SOP_* below).
 */
#ifndef HB_FUZZ_OPS_H
#define HB_FUZZ_OPS_H

#define FZ_NBUF 2         /* buffer slots */
#define FZ_NVIS 8         /* visitor slots */
#define FZ_SCRIPT_MAX 24  /* bytes of callback script per visit */

#define FZ_V2_MAGIC "HB\x02"
#define FZ_V2_MAGIC_LEN 3
#define FZ_V3_MAGIC "HB\x03" /* as long as FZ_V2_MAGIC */
#define FZ_V4_MAGIC "HB\x04" /* as long as FZ_V2_MAGIC */
#define FZ_V5_MAGIC "HB\x05" /* as long as FZ_V2_MAGIC */
/* Streams (issue 12): an input that begins with FZ_STREAM_MAGIC is all
 * stream operations, 3 bytes each (opcode % FZ_SOP_COUNT, a, c),
 * interpreted by tests/fuzz/fz_stream.c against its own model. */
#define FZ_STREAM_MAGIC "HBs" /* as long as FZ_V2_MAGIC */

enum {
  FZ_SOP_OPEN,          /* a < 128: no limit, else limit (a & 0x7f) * 16 + 1 */
  FZ_SOP_WRITE,         /* hb_write_now of a % 200 bytes, reserve c */
  FZ_SOP_CAST_FROM,     /* vis a, detached (a >> 4) & 1; from begin +
                           (c >> 4) * 8, min (c & 15) * 9 */
  FZ_SOP_CAST_CONSUMER, /* vis a, consumer (a >> 3), detached (a >> 5) & 1,
                           min c % 100 */
  FZ_SOP_POLL,          /* vis a */
  FZ_SOP_TRY,           /* vis a */
  FZ_SOP_CANCEL,        /* vis a */
  FZ_SOP_CONSUMER,      /* consumer a; (a >> 2) % 4: add, remove, release
                           to pos + c (odd c: pos - c, a no-op), release */
  FZ_SOP_CLOSE,
  FZ_SOP_FREE,
  FZ_SOP_COUNT
};

/* A size argument is 3 bytes: a class byte, then a 16-bit little-endian
 * payload p.  Classes (class byte % 16):
 *   0..7   p & 0xff                 small
 *   8..9   p                        medium
 *   10     p << 8                   large (beyond the harness allocator's
 *                                   limit, so growth fails with HB_ENOMEM)
 *   11     table[p % 13]            hostile: 0, 1, SIZE_MAX, SIZE_MAX - 1,
 *                                   PTRDIFF_MAX, PTRDIFF_MAX + 1, ...
 *   12     spare (cap - len) + d    d = (int8_t)(p & 0xff), wrapping
 *   13     PTRDIFF_MAX - len + d
 *   14     len + d
 *   15     remaining (len - cursor) + d                                     */
enum {
  FZ_SZ_SMALL = 0,
  FZ_SZ_MEDIUM = 8,
  FZ_SZ_LARGE = 10,
  FZ_SZ_HOSTILE = 11,
  FZ_SZ_SPARE = 12,
  FZ_SZ_PTRDIFF = 13,
  FZ_SZ_LEN = 14,
  FZ_SZ_REMAINING = 15
};

/* Operations; the argument bytes follow each name.  `slot` is a byte taken
 * modulo FZ_NBUF, `vis` modulo FZ_NVIS, SIZE is a 3-byte size argument. */
enum {
  FZ_OP_NEW,       /* slot, kind(0 new,1 aligned,2 wrap,3 wrap NULL),
                      align-index, SIZE, pattern-offset */
  FZ_OP_FREE,      /* slot */
  FZ_OP_RESERVE,   /* slot, SIZE */
  FZ_OP_RESIZE,    /* slot, SIZE, fill */
  FZ_OP_CLEAR,     /* slot */
  FZ_OP_PUT,       /* slot, SIZE, pattern-offset (bit 7 set: src NULL) */
  FZ_OP_PUT_SELF,  /* slot, off16, n16: append bytes from the buffer itself */
  FZ_OP_PUT_INT,   /* slot, kind(0..10), value (8 bytes, little-endian) */
  FZ_OP_GET_INT,   /* slot, kind(0..10) */
  FZ_OP_GET,       /* slot, SIZE, flags (bit 0: dst NULL) */
  FZ_OP_ADVANCE,   /* slot, SIZE */
  FZ_OP_COMPACT,   /* slot */
  FZ_OP_POKE,      /* slot, idx16, value: hb_data(b)[idx % len] = value */
  FZ_OP_FAIL,      /* k: fail the (k % 8 + 1)-th allocation from now;
                      k == 255 disarms */
  FZ_OP_STATS,     /* slot */
  FZ_OP_CAST,      /* vis, slot, type-index, flags (bit 0 write, bit 1
                      NULL buffer) */
  FZ_OP_VISIT,     /* vis, SIZE reserve, flags (bit 0 detached, bit 1
                      NULL fn), script-len, script bytes (script-len %
                      (FZ_SCRIPT_MAX + 1) of them) */
  FZ_OP_POLL,      /* vis */
  FZ_OP_TRY,       /* vis */
  FZ_OP_BLOCK,     /* vis (skipped when it would wait forever) */
  FZ_OP_CANCEL,    /* vis */
  /* v2 only: */
  FZ_OP_NOW,       /* slot, type-index, flags (bit 0 write: hb_write_now,
                      else hb_read_now; bit 1 NULL fn; bit 2 NULL result;
                      bit 3 NULL buffer), SIZE reserve (read too, ignored),
                      script-len, script bytes (as FZ_OP_VISIT).  Issued
                      only when the ticket can be granted at once, or from
                      inside a callback on the same buffer (HB_EDEADLK);
                      skipped where it would wait forever. */
  /* v3 only: */
  FZ_OP_SPARE,     /* slot, SIZE n, SIZE k, flags, pattern-offset:
                      hb_spare(b, n) (flags bit 0: spare NULL), then the
                      pattern written into k % (n + 1) of the bytes and
                      those committed; bit 1: no hb_spare, commit k alone
                      (k bytes of pattern written into the spare room
                      through hb_data first, if there are k) */
  FZ_OP_WRITER,    /* slot, steps (% 16), then 3 bytes per step: kind, a,
                      c; then flags (bit 0 commit, else drop the writer;
                      bit 1 also commit after step 0).  kind % 5: 0
                      hb_writer_put_u8(a); 1 hb_writer_put(pattern + c,
                      a * 37); 2 hb_writer_put(NULL, a); 3
                      hb_writer_put(own stored bytes from c % len, up to
                      a * 3 of them); 4 hb_writer_put_u16_be(a << 8 | c)
                      and hb_writer_put_u32_le(c * 0x01010101) */
  FZ_OP_PEEK_IOV,  /* slot, iovcnt byte (% 5; 4 means -1), flags (bit 0
                      iov NULL) */
  /* v4 only: */
  FZ_OP_SCRIBBLE,  /* vis, byte: fill a visitor that is not live with the
                      byte, as storage never initialised would be; it is
                      idle from then on (any storage may be cast) */
  FZ_OP_POLL_BACK, /* vis, action: hb_poll with a waker that calls back
                      on its own visitor when it is called (action % 3):
                      0 nothing, 1 hb_try_visit and hb_poll (HB_EDEADLK),
                      2 hb_cancel (HB_OK if its turn came, HB_ESTATE if
                      the call comes from its cancel) */
  /* v5 only: */
  FZ_OP_RWANT,     /* slot: mark the buffer read-mostly (RWANT in its lock
                      word, as src/rbias.c's count would), so that its next
                      one-call read arms the read bias where that is
                      allowed: what follows runs through the reader table
                      and its revocations, which must change nothing the
                      model sees */
  FZ_OP_COUNT
};
#define FZ_OP_COUNT_V1 (FZ_OP_CANCEL + 1) /* 21 */
#define FZ_OP_COUNT_V2 (FZ_OP_NOW + 1)    /* 22 */
#define FZ_OP_COUNT_V3 (FZ_OP_PEEK_IOV + 1)
#define FZ_OP_COUNT_V4 (FZ_OP_POLL_BACK + 1)

/* Script of a callback: byte 0 chooses the return value (< 48: abort with
 * -1 - b % 8; else commit with b % 64), then steps of 3 bytes: an opcode
 * (% FZ_S_COUNT) and two argument bytes a, c. */
enum {
  FZ_S_CHECK,       /* compare the view with the model */
  FZ_S_POKE,        /* write bytes[(a | c << 8) % len] (writers only) */
  FZ_S_APPEND,      /* hb_view_append of pattern[a] (c & 1: elem NULL) */
  FZ_S_APPEND_ALL,  /* count a & 0x7f, or hostile table[a & 7] if a >= 128 */
  FZ_S_APPEND_BYTES,/* n as APPEND_ALL, pattern offset c */
  FZ_S_WRITTEN,     /* hb_view_bytes_written */
  FZ_S_TYPED,       /* HB_READ_ARRAY / HB_WRITE_ARRAY size checks */
  FZ_S_CANCEL,      /* hb_cancel(vis a) from inside the callback */
  FZ_S_SELF,        /* drive or cancel our own (running) visitor: a % 4 */
  FZ_S_NESTED,      /* cast vis a on this buffer (c & 1 write) and try it */
  FZ_S_BLOCK,       /* hb_block_on(vis a) where that cannot hang */
  FZ_S_TRY,         /* hb_try_visit(vis a) */
  /* v2 only: */
  FZ_S_NOW,         /* a nested hb_read_now / hb_write_now.  a: bit 0
                       write, bit 1 on the other buffer slot, bits 2..4
                       type-index (0..7), bit 5 the nested callback
                       aborts, bit 6 NULL result, bit 7 the nested script
                       nests once more (FZ_S_NOW with a & 0x7f, c).
                       c: the nested script appends c & 15 bytes and
                       drains (c >> 4) bytes; reserve (c >> 4) * 8.
                       HB_EDEADLK where the ticket cannot be granted and
                       a callback on that buffer is running; skipped where
                       it would wait forever. */
  FZ_S_DRAIN,       /* hb_view_drain(n); c % 4 picks n: 0 a; 1 old - (a & 7)
                       (wrapping); 2 old + (a & 7); 3 hostile table[a % 13],
                       where old = bytes stored at the visit's start and
                       not drained yet */
  FZ_S_STATS,       /* hb_stats_get on this buffer (a & 1: the other slot)
                       against the model, from inside the callback */
  /* v3 only: */
  FZ_S_SPARE,       /* hb_view_spare(n = count a, as APPEND_ALL), then the
                       pattern at c & 0x3f written into k = (c >> 6) * n /
                       3 bytes and hb_view_commit(k); c == 0xff: commit one
                       byte more than is spare (HB_ERANGE) */
  FZ_S_COUNT
};
#define FZ_S_COUNT_V1 (FZ_S_TRY + 1)   /* 12 */
#define FZ_S_COUNT_V2 (FZ_S_STATS + 1) /* 15 */

#endif /* HB_FUZZ_OPS_H */
