/*
 * fz_stream.c -- the fuzzer's stream language (FZ_STREAM_MAGIC inputs,
 * issue 12): one stream, FZ_SNVIS read visitors that wait for data,
 * FZ_SNCON consumers, writes, releases, close and free, against a model
 * of offsets.
 *
 * An input that begins with FZ_STREAM_MAGIC is all stream operations (see
 * fuzz_ops.h, FZ_SOP_*).  The byte at offset o of the stream is always
 * fz_spat(o), so the model needs no copy of the bytes: it keeps the end,
 * the first offset still stored (`begin`: the drop point, moved at the
 * start of each write visit to the lowest consumer position), the limit,
 * the consumers' positions, and per visitor its state, its `from` and the
 * end it waits for.  After every operation it checks:
 *   - hb_stream_info: begin, end, waiting count, consumers, closed;
 *   - a waiting visitor is granted exactly when the model says its bytes
 *     are there or the stream is closed -- right after the write that
 *     brings them, never before (hb__load_granted);
 *   - a visit's view: it starts at max(from, begin), ends at the end,
 *     holds fz_spat bytes, and carries the end mark exactly when closed;
 *   - writes: HB_ECLOSED once closed (no ticket), HB_ENOSPC in *result
 *     when the unreleased bytes plus the reservation pass the limit (no
 *     byte appended), else every byte appended;
 *   - a poll's waker is called once when the visitor is granted or
 *     cancelled, never before;
 *   - hb_free is HB_EBUSY while a visitor is live or a consumer is
 *     registered.
 * One thread: a write is issued only when no visitor holds a read ticket
 * (granted, not finished), where hb_write_now would wait forever.
 */
#include "fz.h"

#define FZ_SNVIS 6
#define FZ_SNCON 3

enum { SV_IDLE, SV_WAIT, SV_GRANTED, SV_RAN, SV_CANCELLED };

typedef struct {
  int state;
  uint64_t from, want;
  int polled;     /* a pending hb_poll stored a waker */
  unsigned wakes; /* its calls */
  int detached;
  unsigned done_calls;
  int ran_in_cb; /* the callback ran */
} fz_svis;

static struct {
  hb_buf *b;
  int open;
  uint64_t end, begin;
  size_t limit;
  int closed;
  int creg[FZ_SNCON];
  uint64_t cpos[FZ_SNCON];
  fz_svis v[FZ_SNVIS];
} fs;

static hb_visitor fs_real[FZ_SNVIS];
static hb_consumer fs_con[FZ_SNCON];

static uint8_t fz_spat(uint64_t o) {
  return (uint8_t)(o * 131u + (o >> 9) + 3u);
}

static void fs_wake(void *arg) { fs.v[(intptr_t)arg].wakes++; }

static int fs_live(const fz_svis *m) {
  return m->state == SV_WAIT || m->state == SV_GRANTED;
}

/* The callback: the view as the model says, then release nothing (the
 * releases are operations of their own). */
static int fs_cb(hb_view *view, void *ctx) {
  int j = (int)(intptr_t)ctx;
  fz_svis *m = &fs.v[j];
  FZ_EQ(m->state, SV_GRANTED);
  size_t n;
  const uint8_t *p = hb_view_read_bytes(view, &n);
  uint64_t start = m->from > fs.begin ? m->from : fs.begin;
  if (start > fs.end) start = fs.end;
  FZ_EQ(hb_view_offset(view), start);
  FZ_EQ(start + n, fs.end);
  for (size_t i = 0; i < n; i++) FZ_EQ(p[i], fz_spat(start + i));
  FZ_EQ(hb_view_eof(view), fs.closed);
  FZ_EQ(hb_view_len(view), n);
  m->ran_in_cb = 1;
  return 7;
}

static void fs_done(hb_visitor *v, int status, int result, void *arg) {
  (void)v;
  int j = (int)(intptr_t)arg;
  fz_svis *m = &fs.v[j];
  m->done_calls++;
  if (status == HB_OK) {
    FZ_EQ(result, 7);
    FZ_ASSERT(m->ran_in_cb);
    m->state = SV_RAN;
  } else {
    FZ_EQ(status, HB_ECANCELED);
    m->state = SV_CANCELLED;
  }
}

static int fs_ticket_held(void) {
  for (int j = 0; j < FZ_SNVIS; j++)
    if (fs.v[j].state == SV_GRANTED) return 1;
  return 0;
}

static void fs_check(void) {
  if (!fs.open) return;
  hb_stream_info in;
  FZ_EQ(hb_stream_info_get(fs.b, &in), HB_OK);
  FZ_EQ(in.end, fs.end);
  FZ_EQ(in.begin, fs.begin);
  FZ_EQ(in.closed, fs.closed);
  unsigned waiting = 0, ncon = 0;
  uint64_t low = fs.end;
  for (int c = 0; c < FZ_SNCON; c++)
    if (fs.creg[c]) {
      ncon++;
      FZ_EQ(hb_consumer_pos(&fs_con[c]), fs.cpos[c]);
      if (fs.cpos[c] < low) low = fs.cpos[c];
    }
  FZ_EQ(in.consumers, ncon);
  FZ_EQ(in.low, low);
  for (int j = 0; j < FZ_SNVIS; j++) {
    fz_svis *m = &fs.v[j];
    if (m->state == SV_WAIT) {
      waiting++;
      FZ_ASSERT(!hb__load_granted(&fs_real[j]));
      FZ_EQ(m->wakes, 0);
    }
    if (m->state == SV_GRANTED) {
      FZ_ASSERT(hb__load_granted(&fs_real[j]));
      if (m->polled) FZ_EQ(m->wakes, 1);
    }
    if (m->detached && !fs_live(m)) FZ_EQ(m->done_calls, 1);
  }
  FZ_EQ(in.waiting, waiting);
}

/* After a commit or a close: the waiters whose bytes are there now. */
static void fs_grant_due(void) {
  for (int j = 0; j < FZ_SNVIS; j++) {
    fz_svis *m = &fs.v[j];
    if (m->state != SV_WAIT || (m->want > fs.end && !fs.closed)) continue;
    m->state = SV_GRANTED; /* a detached one runs inside the granting call */
  }
}

static void fs_open(size_t limit) {
  if (fs.open) {
    FZ_EQ(hb_stream_open(fs.b, limit), HB_ESTATE);
    return;
  }
  fs.b = hb_new(64);
  if (fs.b == NULL) return;
  int rc = hb_stream_open(fs.b, limit);
  if (rc != HB_OK) { /* the harness allocator may refuse */
    FZ_EQ(rc, HB_ENOMEM);
    FZ_EQ(hb_free(fs.b), HB_OK);
    fs.b = NULL;
    return;
  }
  fs.open = 1;
  fs.end = fs.begin = 0;
  fs.limit = limit;
  fs.closed = 0;
  for (int c = 0; c < FZ_SNCON; c++) fs.creg[c] = 0;
  for (int j = 0; j < FZ_SNVIS; j++) memset(&fs.v[j], 0, sizeof fs.v[j]);
}

typedef struct {
  uint64_t at;
  size_t n;
} fs_wr;

static int fs_append(hb_view *w, void *ctx) {
  fs_wr *x = ctx;
  uint8_t tmp[512];
  for (size_t i = 0; i < x->n; i++) tmp[i] = fz_spat(x->at + i);
  return hb_view_append_bytes(w, tmp, x->n);
}

static void fs_write(size_t n, size_t reserve) {
  if (!fs.open || fs_ticket_held()) return; /* would wait forever */
  if (fs.closed) {
    FZ_EQ(
        hb_write_now(fs.b, HB_TYPE(uint8_t), reserve, fs_append, NULL, NULL),
        HB_ECLOSED);
    return;
  }
  /* The model first (detached readers run inside the call): the write's
   * start drops to the lowest consumer position, then the limit. */
  uint64_t low = UINT64_MAX;
  for (int c = 0; c < FZ_SNCON; c++)
    if (fs.creg[c] && fs.cpos[c] < low) low = fs.cpos[c];
  if (low != UINT64_MAX && low > fs.begin) fs.begin = low;
  uint64_t live = fs.end - fs.begin;
  int full =
      fs.limit != 0 && (reserve > fs.limit || live > fs.limit - reserve);
  fz_svis before[FZ_SNVIS];
  memcpy(before, fs.v, sizeof before);
  fs_wr x = {fs.end, n};
  if (!full) {
    fs.end += n;
    fs_grant_due();
  }
  int result = -100;
  FZ_TRACE("write %zu reserve %zu: end %llu begin %llu limit %zu full %d\n",
           n, reserve, (unsigned long long)fs.end,
           (unsigned long long)fs.begin, fs.limit, full);
  FZ_EQ(hb_write_now(fs.b, HB_TYPE(uint8_t), reserve, fs_append, &x, &result),
        HB_OK);
  if (full) {
    FZ_EQ(result, HB_ENOSPC);
  } else if (result == HB_ENOMEM) { /* the harness allocator refused */
    fs.end -= n;
    memcpy(fs.v, before, sizeof before);
  } else {
    FZ_EQ(result, HB_OK);
  }
}

static void fs_cast(int j, int con, uint64_t delta, size_t min, int kind) {
  if (!fs.open) return;
  fz_svis *m = &fs.v[j];
  hb_visitor *v = &fs_real[j];
  int rc;
  uint64_t from;
  if (con >= 0) {
    if (!fs.creg[con]) {
      FZ_EQ(HB_CAST_CONSUMER(v, &fs_con[con], uint8_t, min), HB_ESTATE);
      return;
    }
    from = fs.cpos[con];
    rc = HB_CAST_CONSUMER(v, &fs_con[con], uint8_t, min);
  } else {
    from = fs.begin + delta; /* may be past the end */
    rc = HB_CAST_FROM(v, fs.b, uint8_t, from, min);
  }
  if (fs_live(m)) {
    FZ_EQ(rc, HB_ESTATE);
    return;
  }
  FZ_EQ(rc, HB_OK);
  memset(m, 0, sizeof *m);
  m->from = from;
  m->want = from + min;
  int there = min == 0 || m->want <= fs.end || fs.closed;
  /* A reader whose bytes are there is an ordinary ticket: granted at
   * once here, as nothing but readers can hold the buffer now. */
  m->state = there ? SV_GRANTED : SV_WAIT;
  if (kind == 1) {
    FZ_EQ(hb_visit_detached(v, 0, fs_cb, (void *)(intptr_t)j, fs_done,
                            (void *)(intptr_t)j),
          HB_OK);
    m->detached = 1;
    if (there) FZ_EQ(m->state, SV_RAN); /* ran inside the call */
  } else {
    FZ_EQ(hb_visit(v, 0, fs_cb, (void *)(intptr_t)j), HB_OK);
  }
}

static void fs_drive(int j, int poll) {
  fz_svis *m = &fs.v[j];
  if (m->detached || m->state == SV_IDLE) return;
  hb_visitor *v = &fs_real[j];
  int result = 0, rc;
  if (poll)
    rc = hb_poll(v, (hb_waker){fs_wake, (void *)(intptr_t)j}, &result);
  else
    rc = hb_try_visit(v, &result);
  switch (m->state) {
  case SV_WAIT:
    FZ_EQ(rc, poll ? HB_PENDING : HB_EAGAIN);
    if (poll) {
      m->polled = 1;
      m->wakes = 0;
    }
    return;
  case SV_GRANTED:
    FZ_EQ(rc, HB_OK);
    FZ_EQ(result, 7);
    FZ_ASSERT(m->ran_in_cb);
    m->state = SV_RAN;
    return;
  case SV_RAN:
    FZ_EQ(rc, HB_OK);
    FZ_EQ(result, 7);
    return;
  case SV_CANCELLED: FZ_EQ(rc, HB_ECANCELED); return;
  }
}

static void fs_cancel(int j) {
  fz_svis *m = &fs.v[j];
  if (m->state == SV_IDLE) return;
  int live = fs_live(m); /* a detached one's done runs inside the cancel */
  int rc = hb_cancel(&fs_real[j]);
  if (!live) {
    FZ_EQ(rc, HB_ESTATE);
    return;
  }
  FZ_EQ(rc, HB_OK);
  if (m->polled) FZ_EQ(m->wakes, 1); /* by the grant, or by the cancel */
  if (m->detached) FZ_EQ(m->done_calls, 1);
  m->state = SV_CANCELLED;
}

static void fs_consumer(int c, int what, uint64_t delta) {
  if (!fs.open) return;
  hb_consumer *k = &fs_con[c];
  switch (what) {
  case 0: /* add */
    if (fs.creg[c]) {
      FZ_EQ(hb_consumer_add(fs.b, k), HB_ESTATE);
      return;
    }
    FZ_EQ(hb_consumer_add(fs.b, k), HB_OK);
    fs.creg[c] = 1;
    fs.cpos[c] = fs.begin;
    return;
  case 1: /* remove */
    FZ_EQ(hb_consumer_remove(k), fs.creg[c] ? HB_OK : HB_ESTATE);
    fs.creg[c] = 0;
    return;
  default: { /* release up to pos + delta (or, odd delta, pos - delta) */
    if (!fs.creg[c]) {
      FZ_EQ(hb_consumer_release(k, 0), HB_ESTATE);
      return;
    }
    uint64_t upto = (delta & 1) && fs.cpos[c] >= delta ? fs.cpos[c] - delta
                                                       : fs.cpos[c] + delta;
    int rc = hb_consumer_release(k, upto);
    if (upto > fs.end) {
      FZ_EQ(rc, HB_ERANGE);
      return;
    }
    FZ_EQ(rc, HB_OK);
    if (upto > fs.cpos[c]) fs.cpos[c] = upto;
  }
  }
}

static void fs_close(void) {
  if (!fs.open) return;
  int was = fs.closed;
  fs.closed = 1;
  if (!was) fs_grant_due(); /* before: detached readers run inside */
  int rc = hb_stream_close(fs.b);
  if (was) {
    FZ_EQ(rc, HB_ESTATE);
    return;
  }
  FZ_EQ(rc, HB_OK);
}

static void fs_free(void) {
  if (!fs.open) return;
  int live = 0;
  for (int j = 0; j < FZ_SNVIS; j++) live |= fs_live(&fs.v[j]);
  for (int c = 0; c < FZ_SNCON; c++) live |= fs.creg[c];
  int rc = hb_free(fs.b);
  if (live) {
    FZ_EQ(rc, HB_EBUSY);
    return;
  }
  FZ_EQ(rc, HB_OK);
  fs.b = NULL;
  fs.open = 0;
}

void fz_stream_run(fz_in *in) {
  memset(&fs, 0, sizeof fs);
  memset(fs_real, 0, sizeof fs_real);
  memset(fs_con, 0, sizeof fs_con);
  while (in->off < in->n && fz_opno < FZ_MAX_OPS) {
    int op = fz_in_u8(in) % FZ_SOP_COUNT;
    uint8_t a = fz_in_u8(in), c = fz_in_u8(in);
    fz_opno++;
    FZ_TRACE("stream op %d (%u, %u)\n", op, a, c);
    switch (op) {
    case FZ_SOP_OPEN:
      fs_open(a < 128 ? 0 : (size_t)(a & 0x7f) * 16 + 1);
      break;
    case FZ_SOP_WRITE: fs_write(a % 200, (size_t)c); break;
    case FZ_SOP_CAST_FROM:
      fs_cast(a % FZ_SNVIS, -1, (uint64_t)(c >> 4) * 8, (size_t)(c & 15) * 9,
              (a >> 4) & 1);
      break;
    case FZ_SOP_CAST_CONSUMER:
      fs_cast(a % FZ_SNVIS, (a >> 3) % FZ_SNCON, 0, (size_t)c % 100,
              (a >> 5) & 1);
      break;
    case FZ_SOP_POLL: fs_drive(a % FZ_SNVIS, 1); break;
    case FZ_SOP_TRY: fs_drive(a % FZ_SNVIS, 0); break;
    case FZ_SOP_CANCEL: fs_cancel(a % FZ_SNVIS); break;
    case FZ_SOP_CONSUMER: fs_consumer(a % FZ_SNCON, (a >> 2) % 4, c); break;
    case FZ_SOP_CLOSE: fs_close(); break;
    case FZ_SOP_FREE: fs_free(); break;
    }
    fs_check();
  }
  /* The end: cancel what is live, free. */
  for (int j = 0; j < FZ_SNVIS; j++)
    if (fs_live(&fs.v[j])) fs_cancel(j);
  for (int c = 0; c < FZ_SNCON; c++)
    if (fs.creg[c]) fs_consumer(c, 1, 0);
  fs_check();
  fs_free();
}
