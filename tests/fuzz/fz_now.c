/*
 * fz_now.c -- the fuzzer's interpreter (fz.h), one-call visits: hb_read_now /
 * hb_write_now, with the bias decided and revoked as the model says.
 */
#include "fz.h"

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
void fz_do_now(int slot, hb_type t, int write, size_t reserve,
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

  /* The bias (see BIAS in src/bias.c), decided before the ticket. */
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
