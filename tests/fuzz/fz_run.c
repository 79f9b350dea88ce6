/*
 * fz_run.c -- the fuzzer's interpreter (fz.h), the run: checks after every
 * operation, fz_run (decode and dispatch), and the end of an input (cancel,
 * free, no block left).
 */
#include "fz.h"

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

int fz_run(const uint8_t *data, size_t size) {
  fz_in in = {data, size, 0};
  fz_init();
  if (size >= FZ_V2_MAGIC_LEN &&
      memcmp(data, FZ_STREAM_MAGIC, FZ_V2_MAGIC_LEN) == 0) {
    in.off = FZ_V2_MAGIC_LEN; /* streams: a language of their own */
    fz_stream_run(&in);
    fz_finish();
    return 0;
  }
  if (size >= FZ_V2_MAGIC_LEN &&
      memcmp(data, FZ_V2_MAGIC, FZ_V2_MAGIC_LEN) == 0) {
    fz.v2 = 1;
    in.off = FZ_V2_MAGIC_LEN;
  } else if (size >= FZ_V2_MAGIC_LEN &&
             memcmp(data, FZ_V3_MAGIC, FZ_V2_MAGIC_LEN) == 0) {
    fz.v2 = fz.v3 = 1;
    in.off = FZ_V2_MAGIC_LEN;
  } else if (size >= FZ_V2_MAGIC_LEN &&
             memcmp(data, FZ_V4_MAGIC, FZ_V2_MAGIC_LEN) == 0) {
    fz.v2 = fz.v3 = fz.v4 = 1;
    in.off = FZ_V2_MAGIC_LEN;
  } else if (size >= FZ_V2_MAGIC_LEN &&
             memcmp(data, FZ_V5_MAGIC, FZ_V2_MAGIC_LEN) == 0) {
    fz.v2 = fz.v3 = fz.v4 = fz.v5 = 1;
    in.off = FZ_V2_MAGIC_LEN;
  }
  int nops = fz.v5   ? FZ_OP_COUNT
             : fz.v4 ? FZ_OP_COUNT_V4
             : fz.v3 ? FZ_OP_COUNT_V3
             : fz.v2 ? FZ_OP_COUNT_V2
                     : FZ_OP_COUNT_V1;
  while (in.off < in.n && fz_opno < FZ_MAX_OPS) {
    int op = fz_in_u8(&in) % nops;
    fz_opno++;
    FZ_TRACE("op %d at byte %zu\n", op, in.off - 1);
    fz.op_fail_base = fz_alloc.failures;
    switch (op) {
    case FZ_OP_NEW: fz_op_new(&in); break;
    case FZ_OP_FREE: fz_op_free(fz_in_u8(&in) % FZ_NBUF); break;
    case FZ_OP_FAIL: {
      uint8_t k = fz_in_u8(&in);
      fz_alloc.fail_at = k == 255 ? 0 : fz_alloc.count + 1 + k % 8;
      break;
    }
    case FZ_OP_STATS: fz_op_stats(fz_in_u8(&in) % FZ_NBUF); break;
    case FZ_OP_CAST: {
      int j = fz_in_u8(&in) % FZ_NVIS;
      int slot = fz_in_u8(&in) % FZ_NBUF;
      hb_type t = fz_types[fz_in_u8(&in) % 16];
      uint8_t fl = fz_in_u8(&in);
      fz_do_cast(j, slot, t, fl & 1, (fl & 2) != 0);
      break;
    }
    case FZ_OP_VISIT: {
      int j = fz_in_u8(&in) % FZ_NVIS;
      int slot = fz.vis[j].buf;
      const fz_mbuf *mb = &fz.buf[slot >= 0 ? slot : 0];
      size_t reserve = fz_in_size(&in, mb);
      uint8_t fl = fz_in_u8(&in);
      uint8_t script[FZ_SCRIPT_MAX];
      size_t sl = fz_in_u8(&in) % (FZ_SCRIPT_MAX + 1);
      for (size_t k = 0; k < sl; k++) script[k] = fz_in_u8(&in);
      fz_do_visit(j, reserve, fl & 1, (fl & 2) != 0, script, sl);
      break;
    }
    case FZ_OP_POLL: fz_drive(fz_in_u8(&in) % FZ_NVIS, 0); break;
    case FZ_OP_TRY: fz_drive(fz_in_u8(&in) % FZ_NVIS, 1); break;
    case FZ_OP_BLOCK: fz_drive(fz_in_u8(&in) % FZ_NVIS, 2); break;
    case FZ_OP_CANCEL: fz_do_cancel(fz_in_u8(&in) % FZ_NVIS); break;
    case FZ_OP_NOW: {
      int slot = fz_in_u8(&in) % FZ_NBUF;
      hb_type t = fz_types[fz_in_u8(&in) % 16];
      uint8_t fl = fz_in_u8(&in);
      size_t reserve = fz_in_size(&in, &fz.buf[slot]);
      uint8_t script[FZ_SCRIPT_MAX];
      size_t sl = fz_in_u8(&in) % (FZ_SCRIPT_MAX + 1);
      for (size_t k = 0; k < sl; k++) script[k] = fz_in_u8(&in);
      fz_do_now(slot, t, fl & 1, reserve, (fl & 2) != 0, (fl & 4) != 0,
                (fl & 8) != 0, script, sl);
      break;
    }
    case FZ_OP_SPARE: fz_op_spare(&in); break;
    case FZ_OP_WRITER: fz_op_writer(&in); break;
    case FZ_OP_PEEK_IOV: fz_op_peek_iov(&in); break;
    case FZ_OP_SCRIBBLE: {
      int j = fz_in_u8(&in) % FZ_NVIS;
      fz_scribble(j, fz_in_u8(&in));
      break;
    }
    case FZ_OP_POLL_BACK: {
      int j = fz_in_u8(&in) % FZ_NVIS;
      fz.wake_action = fz_in_u8(&in) % 3;
      fz_drive(j, 0);
      fz.wake_action = 0;
      break;
    }
    case FZ_OP_RWANT: {
      /* A hint the library may refuse (a stream, a one-thread bias, a
       * writer in): nothing else of the word changes. */
      hb_buf *b = fz.buf[fz_in_u8(&in) % FZ_NBUF].b;
      if (b != NULL) __atomic_fetch_or(&b->lock, HB__W_RWANT, __ATOMIC_SEQ_CST);
      break;
    }
    default: fz_op_direct(op, &in); break;
    }
    fz_check_all();
  }
  fz_finish();
  return 0;
}
