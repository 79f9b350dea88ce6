/*
 * fz_visit.c -- the fuzzer's interpreter (fz.h), visitor operations: cast,
 * visit (attached or detached), the three drivers (hb_poll, hb_try_visit,
 * hb_block_on) and hb_cancel.
 */
#include "fz.h"
#include "visit.h" /* hb__cookie */

/* ---- visitor operations ------------------------------------------------- */

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
  /* v4: call back on the visitor from inside its own waker. */
  int res = 0x5eed, rc;
  switch (m->wake_action) {
  case 1: /* drivers: waiting here would be waiting for ourselves */
    FZ_EQ(hb_try_visit(&fz_real[j], &res), HB_EDEADLK);
    FZ_EQ(hb_poll(&fz_real[j], (hb_waker){NULL, NULL}, &res), HB_EDEADLK);
    FZ_EQ(res, 0x5eed);
    break;
  case 2:
    if (m->state == VS_ARMED) { /* its turn came: the cancel wins */
      m->state = VS_CANCELLED;  /* before: others may run inside it */
      fz.buf[m->buf].cancelled++;
      rc = hb_cancel(&fz_real[j]);
      FZ_TRACE("cancel v%d from its waker -> %s\n", j, hb_err_name(rc));
      FZ_EQ(rc, HB_OK);
    } else { /* called by its cancel: already cancelled */
      rc = hb_cancel(&fz_real[j]);
      FZ_EQ(rc, HB_ESTATE);
    }
    break;
  default: break;
  }
}

int fz_type_ok(hb_type t, size_t buf_align) {
  return t.size != 0 && t.align != 0 && (t.align & (t.align - 1)) == 0 &&
         t.align <= buf_align && t.size % t.align == 0;
}

void fz_bias_revoke(fz_mbuf *mb) {
  if (mb->bias != FZ_BIAS_ON) return;
  mb->bias = FZ_BIAS_SHARED;
  mb->moved = mb->held != 0;
  FZ_TRACE("bias revoked%s\n", mb->moved ? " (moved)" : "");
}

void fz_do_cast(int j, int slot, hb_type t, int write, int nullbuf) {
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

void fz_do_visit(int j, size_t reserve, int detached, int nullfn,
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
           detached ? "_detached" : "", j, reserve, script_len,
           hb_err_name(rc));
  if (expect == HB_ESTATE && (nullfn || reserve > FZ_PTRDIFF_MAX))
    FZ_ONE_OF(rc, HB_ESTATE, HB_EINVAL, HB_ERANGE);
  else if (expect == HB_EINVAL && reserve > FZ_PTRDIFF_MAX)
    FZ_ONE_OF(rc, HB_EINVAL, HB_ERANGE);
  else
    FZ_EQ(rc, expect);
}

/* kind: 0 hb_poll, 1 hb_try_visit, 2 hb_block_on. */
void fz_drive(int j, int kind) {
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
  }
  if (runnable && fz.depth >= FZ_MAX_DEPTH) return;

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
  case VS_CANCELLED:
    /* A detached visitor has no drivers, whatever became of it. */
    FZ_EQ(rc, m->detached ? HB_ESTATE : HB_ECANCELED);
    return;
  case VS_RAN:
    if (m->detached) {
      FZ_EQ(rc, HB_ESTATE);
      return;
    }
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
    m->wake_action = fz.wake_action;
  } else if (kind == 1) {
    FZ_EQ(rc, HB_EAGAIN);
  } else {
    FZ_EQ(rc, HB_EDEADLK);
  }
}

void fz_do_cancel(int j) {
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

/* FZ_OP_SCRIBBLE: fill a visitor that is not live with leftover bytes, as
 * if its storage had never been initialised.  It is idle from then on:
 * every call answers as on an idle visitor, and a cast works -- unless the
 * bytes happen to spell its cookie (the one-in-2^32 case: skipped). */
void fz_scribble(int j, uint8_t byte) {
  fz_mvis *m = &fz.vis[j];
  if (fz_live(m) || m->driving || fz.depth != 0) return;
  if (hb__cookie(&fz_real[j]) == byte * 0x01010101u) return;
  memset(&fz_real[j], byte, sizeof fz_real[j]);
  FZ_TRACE("scribble v%d with 0x%02x\n", j, byte);
  m->state = VS_IDLE;
  m->detached = 0;
  m->waker_set = 0;
  m->called = 0;
}
