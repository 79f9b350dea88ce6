/*
 * test_stream.c -- the stream face (src/stream.c, issue 12): readers that
 * wait for data outside the FIFO, close, consumers, drops, the limit, and
 * every driver on a waiting reader.  Single-threaded where the order is
 * the point (a waiter is granted right after the write that satisfies it
 * and never before); threads only where a driver needs one.
 * The threaded stress is tests/test_stream_stress.c, the libuv driver
 * tests/test_stream_uv.c.
 */
#include "hb_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "hyperbuf.h"
#include "internal.h"

/* ---- helpers ------------------------------------------------------------ */

/* A write callback appending ctx's bytes. */
typedef struct {
  const void *src;
  size_t n;
  int calls;
  int abort; /* return -1 after appending */
} put_ctx;

static int put_cb(hb_view *w, void *ctx) {
  put_ctx *p = ctx;
  p->calls++;
  int rc = hb_view_append_bytes(w, p->src, p->n);
  if (rc != HB_OK) return rc;
  return p->abort ? -1 : 0;
}

/* Append n bytes (value v, v+1, ...) in one write_now; @return *result. */
static int write_bytes(hb_buf *b, size_t n, uint8_t v) {
  uint8_t tmp[4096];
  assert_true(n <= sizeof tmp);
  for (size_t i = 0; i < n; i++) tmp[i] = (uint8_t)(v + i);
  put_ctx p = {tmp, n, 0, 0};
  int result = 12345;
  assert_int_equal(hb_write_now(b, HB_TYPE(uint8_t), n, put_cb, &p, &result),
                   HB_OK);
  return result;
}

/* What a read callback saw. */
typedef struct {
  int calls;
  uint64_t offset;
  size_t n;
  int eof;
  uint8_t first;
  hb_consumer *release; /* release everything seen, if set */
  int stop;             /* don't release */
} seen_ctx;

static int seen_cb(hb_view *r, void *ctx) {
  seen_ctx *s = ctx;
  s->calls++;
  const uint8_t *p = hb_view_read_bytes(r, &s->n);
  s->offset = hb_view_offset(r);
  s->eof = hb_view_eof(r);
  s->first = s->n ? p[0] : 0;
  if (s->release != NULL && !s->stop)
    assert_int_equal(hb_consumer_release(s->release, s->offset + s->n),
                     HB_OK);
  return 0;
}

static hb_buf *new_stream(size_t cap, size_t limit) {
  hb_buf *b = hb_new(cap);
  assert_non_null(b);
  assert_int_equal(hb_stream_open(b, limit), HB_OK);
  return b;
}

static void count_wake(void *arg) {
  __atomic_fetch_add((int *)arg, 1, __ATOMIC_SEQ_CST);
}

/* ---- waiting for data ---------------------------------------------------- */

/* Granted right after the write whose commit supplies the bytes, never
 * before: not after a write that supplies too few, not during the write
 * that supplies them, and at once after it. */
typedef struct {
  hb_visitor *waiter;
  int granted_inside;
} inside_ctx;

static int append_and_look(hb_view *w, void *ctx) {
  inside_ctx *c = ctx;
  uint8_t x[60] = {0};
  assert_int_equal(hb_view_append_bytes(w, x, sizeof x), HB_OK);
  c->granted_inside = hb__load_granted(c->waiter);
  return 0;
}

static void granted_right_after_satisfying_write(void **state) {
  (void)state;
  hb_buf *b = new_stream(256, 0);
  hb_visitor v = HB_VISITOR_INIT;
  seen_ctx s = {0};
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 0, 100), HB_OK);
  assert_int_equal(hb_visit(&v, 0, seen_cb, &s), HB_OK);
  int result;
  assert_int_equal(hb_try_visit(&v, &result), HB_EAGAIN);
  assert_false(hb__load_granted(&v));

  assert_int_equal(write_bytes(b, 50, 0), 0); /* 50 of 100 */
  assert_false(hb__load_granted(&v));
  assert_int_equal(hb_try_visit(&v, &result), HB_EAGAIN);
  assert_int_equal(s.calls, 0);

  inside_ctx c = {&v, -1};
  assert_int_equal(
      hb_write_now(b, HB_TYPE(uint8_t), 60, append_and_look, &c, &result),
      HB_OK);
  assert_int_equal(c.granted_inside, 0); /* not during the write */
  assert_true(hb__load_granted(&v));     /* right after it */
  assert_int_equal(hb_try_visit(&v, &result), HB_OK);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.offset, 0);
  assert_int_equal(s.n, 110);
  assert_int_equal(s.eof, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* An aborted write commits nothing, so it satisfies nobody. */
static void aborted_write_satisfies_nobody(void **state) {
  (void)state;
  hb_buf *b = new_stream(256, 0);
  hb_visitor v = HB_VISITOR_INIT;
  seen_ctx s = {0};
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 0, 10), HB_OK);
  assert_int_equal(hb_visit(&v, 0, seen_cb, &s), HB_OK);
  uint8_t x[20] = {0};
  put_ctx p = {x, sizeof x, 0, 1};
  int result;
  assert_int_equal(hb_write_now(b, HB_TYPE(uint8_t), 0, put_cb, &p, &result),
                   HB_OK);
  assert_int_equal(result, -1);
  assert_false(hb__load_granted(&v));
  assert_int_equal(hb_cancel(&v), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

/* A waiting reader holds no ticket: writers and readers cast after it are
 * granted at once, as if it were not there. */
static void writers_not_held_up(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  hb_visitor wait = HB_VISITOR_INIT, w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  seen_ctx s = {0};
  assert_int_equal(HB_CAST_FROM(&wait, b, uint8_t, 0, 1000), HB_OK);
  assert_int_equal(hb_visit(&wait, 0, seen_cb, &s), HB_OK);
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_true(hb__load_granted(&w));
  uint8_t x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  put_ctx p = {x, sizeof x, 0, 0};
  assert_int_equal(hb_visit(&w, 8, put_cb, &p), HB_OK);
  int result;
  assert_int_equal(hb_try_visit(&w, &result), HB_OK);
  assert_int_equal(result, 0);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK); /* a plain reader */
  assert_true(hb__load_granted(&r));
  assert_int_equal(hb_visit(&r, 0, seen_cb, &s), HB_OK);
  assert_int_equal(hb_try_visit(&r, NULL), HB_OK);
  assert_int_equal(s.n, 8);
  for (int i = 0; i < 100; i++) assert_int_equal(write_bytes(b, 8, 0), 0);
  assert_false(hb__load_granted(&wait)); /* 808 < 1000 */
  assert_int_equal(write_bytes(b, 192, 0), 0);
  assert_true(hb__load_granted(&wait));
  assert_int_equal(hb_try_visit(&wait, NULL), HB_OK);
  assert_int_equal(s.n, 1000);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Several waiters with different thresholds, each granted by the write
 * that reaches its own; and "as if cast just after that writer": ahead of
 * a writer queued behind it. */
static void several_thresholds(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  hb_visitor v[3] = {HB_VISITOR_INIT, HB_VISITOR_INIT, HB_VISITOR_INIT};
  seen_ctx s[3] = {{0}};
  size_t want[3] = {30, 10, 20}; /* cast out of threshold order */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(HB_CAST_FROM(&v[i], b, uint8_t, 0, want[i]), HB_OK);
    assert_int_equal(hb_visit(&v[i], 0, seen_cb, &s[i]), HB_OK);
  }
  assert_int_equal(write_bytes(b, 15, 0), 0);
  assert_false(hb__load_granted(&v[0]));
  assert_true(hb__load_granted(&v[1]));
  assert_false(hb__load_granted(&v[2]));
  assert_int_equal(hb_try_visit(&v[1], NULL), HB_OK);
  assert_int_equal(s[1].n, 15);

  /* W1 holds the ticket, W2 queues behind it; W1 satisfies v[2]. */
  hb_visitor w1 = HB_VISITOR_INIT, w2 = HB_VISITOR_INIT;
  uint8_t x[10] = {0};
  put_ctx p1 = {x, 10, 0, 0}, p2 = {x, 10, 0, 0};
  assert_int_equal(HB_CAST_MUT(&w1, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST_MUT(&w2, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w1, 0, put_cb, &p1), HB_OK);
  assert_int_equal(hb_visit(&w2, 0, put_cb, &p2), HB_OK);
  assert_true(hb__load_granted(&w1));
  assert_false(hb__load_granted(&w2));
  assert_int_equal(hb_try_visit(&w1, NULL), HB_OK); /* 25 bytes */
  assert_true(hb__load_granted(&v[2]));
  assert_false(hb__load_granted(&w2)); /* v[2] went in ahead of it */
  assert_false(hb__load_granted(&v[0]));
  assert_int_equal(hb_try_visit(&v[2], NULL), HB_OK);
  assert_int_equal(s[2].n, 25);
  assert_true(hb__load_granted(&w2));               /* its turn, after v[2] */
  assert_int_equal(hb_try_visit(&w2, NULL), HB_OK); /* 35 bytes */
  assert_true(hb__load_granted(&v[0]));
  assert_int_equal(hb_try_visit(&v[0], NULL), HB_OK);
  assert_int_equal(s[0].n, 35);
  assert_int_equal(hb_free(b), HB_OK);
}

/* The view starts at the offset asked for, and a reader whose bytes are
 * there already is an ordinary ticket. */
static void view_starts_at_offset(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  assert_int_equal(write_bytes(b, 40, 0), 0);
  hb_visitor v = HB_VISITOR_INIT;
  seen_ctx s = {0};
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 16, 8), HB_OK);
  assert_true(hb__load_granted(&v)); /* there already */
  assert_int_equal(hb_visit(&v, 0, seen_cb, &s), HB_OK);
  assert_int_equal(hb_try_visit(&v, NULL), HB_OK);
  assert_int_equal(s.offset, 16);
  assert_int_equal(s.n, 24);
  assert_int_equal(s.first, 16);
  /* Bad arguments take no ticket. */
  assert_int_equal(HB_CAST_FROM(&v, b, uint32_t, 2, 4), HB_EINVAL);
  assert_int_equal(hb_cast_from(&v, b, HB_TYPE(uint8_t), UINT64_MAX, 2),
                   HB_ERANGE);
  hb_buf *plain = hb_new(0);
  assert_int_equal(HB_CAST_FROM(&v, plain, uint8_t, 0, 1), HB_EINVAL);
  assert_int_equal(hb_stream_open(b, 0), HB_ESTATE);
  assert_int_equal(hb_free(plain), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- close --------------------------------------------------------------- */

static int must_not_run(hb_view *w, void *ctx) {
  (void)w;
  (*(int *)ctx)++;
  return 0;
}

static void close_grants_waiters_and_fails_writes(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  hb_visitor v[3] = {HB_VISITOR_INIT, HB_VISITOR_INIT, HB_VISITOR_INIT},
             early = HB_VISITOR_INIT;
  seen_ctx s[3] = {{0}};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(HB_CAST_FROM(&v[i], b, uint8_t, 0, 10 * (size_t)(i + 1)),
                     HB_OK);
    assert_int_equal(hb_visit(&v[i], 0, seen_cb, &s[i]), HB_OK);
  }
  int ran = 0;
  assert_int_equal(write_bytes(b, 5, 0), 0);
  /* A write ticket cast before the close, run after it, queued behind a
   * plain reader's ticket. */
  hb_visitor hold = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST(&hold, b, uint8_t), HB_OK);
  assert_true(hb__load_granted(&hold));
  assert_int_equal(HB_CAST_MUT(&early, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&early, 0, must_not_run, &ran), HB_OK);
  assert_int_equal(hb_stream_close(b), HB_OK);
  assert_int_equal(hb_stream_close(b), HB_ESTATE);
  /* The waiters go in front of `early`; `hold` still holds a read. */
  for (int i = 0; i < 3; i++) {
    assert_true(hb__load_granted(&v[i]));
    assert_int_equal(hb_try_visit(&v[i], NULL), HB_OK);
    assert_int_equal(s[i].eof, 1);
    assert_int_equal(s[i].n, 5);
  }
  assert_int_equal(hb_cancel(&hold), HB_OK);
  int result = 0;
  assert_int_equal(hb_try_visit(&early, &result), HB_OK);
  assert_int_equal(result, HB_ECLOSED);
  assert_int_equal(ran, 0);
  hb_visitor late = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST_MUT(&late, b, uint8_t), HB_ECLOSED);
  assert_int_equal(
      hb_write_now(b, HB_TYPE(uint8_t), 0, must_not_run, &ran, &result),
      HB_ECLOSED);
  assert_int_equal(ran, 0);
  /* A reader cast after the close runs at once with the end mark. */
  seen_ctx t = {0};
  assert_int_equal(HB_CAST_FROM(&late, b, uint8_t, 0, 100), HB_OK);
  assert_int_equal(hb_visit(&late, 0, seen_cb, &t), HB_OK);
  assert_int_equal(hb_try_visit(&late, NULL), HB_OK);
  assert_int_equal(t.eof, 1);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Close inside a write callback: that visit's appends are the last bytes,
 * and the waiters see them. */
static int append_then_close(hb_view *w, void *ctx) {
  uint8_t x[7] = {0};
  assert_int_equal(hb_view_append_bytes(w, x, sizeof x), HB_OK);
  assert_int_equal(hb_stream_close(ctx), HB_OK);
  return 0;
}

static void close_inside_write(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  hb_visitor v = HB_VISITOR_INIT;
  seen_ctx s = {0};
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 0, 100), HB_OK);
  assert_int_equal(hb_visit(&v, 0, seen_cb, &s), HB_OK);
  int result;
  assert_int_equal(
      hb_write_now(b, HB_TYPE(uint8_t), 7, append_then_close, b, &result),
      HB_OK);
  assert_int_equal(result, 0);
  assert_int_equal(hb_try_visit(&v, NULL), HB_OK);
  assert_int_equal(s.n, 7);
  assert_int_equal(s.eof, 1);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- cancel -------------------------------------------------------------- */

static void cancel_waiting_reader(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  hb_visitor v = HB_VISITOR_INIT;
  seen_ctx s = {0};
  int wakes = 0;
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 0, 10), HB_OK);
  assert_int_equal(hb_visit(&v, 0, seen_cb, &s), HB_OK);
  assert_int_equal(hb_poll(&v, (hb_waker){count_wake, &wakes}, NULL),
                   HB_PENDING);
  hb_stream_info in;
  assert_int_equal(hb_stream_info_get(b, &in), HB_OK);
  assert_int_equal(in.waiting, 1);
  assert_int_equal(hb_free(b), HB_EBUSY); /* a reader waits */
  assert_int_equal(hb_cancel(&v), HB_OK);
  assert_int_equal(wakes, 1);
  assert_int_equal(hb_cancel(&v), HB_ESTATE);
  assert_int_equal(hb_poll(&v, (hb_waker){count_wake, &wakes}, NULL),
                   HB_ECANCELED);
  assert_int_equal(hb_stream_info_get(b, &in), HB_OK);
  assert_int_equal(in.waiting, 0);
  /* The write that would have satisfied it finds nobody. */
  assert_int_equal(write_bytes(b, 20, 0), 0);
  assert_int_equal(s.calls, 0);
  assert_int_equal(wakes, 1);
  /* Reuse the storage: a cancelled visitor may be cast again. */
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 0, 10), HB_OK);
  assert_true(hb__load_granted(&v));
  assert_int_equal(hb_visit(&v, 0, seen_cb, &s), HB_OK);
  assert_int_equal(hb_block_on(&v, NULL), HB_OK);
  assert_int_equal(s.n, 20);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- consumers, drops, offsets ------------------------------------------- */

/* Record i is 8 bytes holding its own stream offset. */
static int append_offsets(hb_view *w, void *ctx) {
  uint64_t *next = ctx;
  for (int i = 0; i < 16; i++) {
    uint64_t off = *next;
    assert_int_equal(hb_view_append(w, &off), HB_OK);
    *next += 8;
  }
  return 0;
}

static int check_offsets(hb_view *r, void *ctx) {
  hb_consumer *c = ctx;
  size_t n;
  const uint64_t *a = HB_READ_ARRAY(r, uint64_t, &n);
  uint64_t off = hb_view_offset(r);
  assert_int_equal(off, hb_consumer_pos(c));
  for (size_t i = 0; i < n; i++) assert_int_equal(a[i], off + 8 * i);
  assert_int_equal(hb_consumer_release(c, off + 8 * n), HB_OK);
  return (int)n;
}

static void offsets_stable_across_drops(void **state) {
  (void)state;
  hb_buf *b = new_stream(1024, 0);
  hb_consumer c = HB_CONSUMER_INIT;
  assert_int_equal(hb_consumer_add(b, &c), HB_OK);
  assert_int_equal(hb_consumer_add(b, &c), HB_ESTATE);
  uint64_t next = 0;
  size_t cap0 = hb_capacity(b);
  for (int round = 0; round < 500; round++) {
    int result;
    assert_int_equal(
        HB_WRITE_NOW(b, uint64_t, 128, append_offsets, &next, &result),
        HB_OK);
    if (round % 3 != 2) continue; /* let some pile up */
    hb_visitor v = HB_VISITOR_INIT;
    assert_int_equal(HB_CAST_CONSUMER(&v, &c, uint64_t, 8), HB_OK);
    assert_int_equal(hb_visit(&v, 0, check_offsets, &c), HB_OK);
    assert_int_equal(hb_block_on(&v, &result), HB_OK);
    assert_int_equal(result, 48);
  }
  hb_stream_info in;
  assert_int_equal(hb_stream_info_get(b, &in), HB_OK);
  assert_int_equal(in.end, next);
  assert_true(in.compactions > 0);
  assert_true(in.begin > 0);
  assert_int_equal(hb_capacity(b), cap0); /* dropped bytes made the room */
  assert_true(in.peak <= 3 * 128 + 64);
  assert_int_equal(hb_consumer_remove(&c), HB_OK);
  assert_int_equal(hb_consumer_remove(&c), HB_ESTATE);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Bytes are dropped only once every consumer released them, and never
 * while a view sees them: the drop waits for the write visit after the
 * last reader. */
static int check_pattern(hb_view *r, void *ctx) {
  seen_ctx *s = ctx;
  size_t n;
  const uint8_t *p = hb_view_read_bytes(r, &n);
  uint64_t off = hb_view_offset(r);
  for (size_t i = 0; i < n; i++) assert_int_equal(p[i], (uint8_t)(off + i));
  s->n = n;
  s->offset = off;
  if (s->release != NULL)
    assert_int_equal(hb_consumer_release(s->release, off + n), HB_OK);
  return 0;
}

static void drop_only_when_all_released(void **state) {
  (void)state;
  hb_buf *b = new_stream(1 << 12, 0);
  hb_consumer a = HB_CONSUMER_INIT, c = HB_CONSUMER_INIT;
  assert_int_equal(hb_consumer_add(b, &a), HB_OK);
  assert_int_equal(hb_consumer_add(b, &c), HB_OK);
  assert_int_equal(write_bytes(b, 100, 0), 0);
  assert_int_equal(hb_consumer_release(&a, 100), HB_OK);
  assert_int_equal(hb_consumer_release(&a, 50), HB_OK); /* no going back */
  assert_int_equal(hb_consumer_pos(&a), 100);
  assert_int_equal(hb_consumer_release(&a, 101), HB_ERANGE);
  assert_int_equal(write_bytes(b, 100, 100), 0);
  hb_stream_info in;
  assert_int_equal(hb_stream_info_get(b, &in), HB_OK);
  assert_int_equal(in.begin, 0); /* c released nothing */
  assert_int_equal(in.low, 0);

  /* c's reader holds a ticket; c releases inside it; a writer queued
   * behind waits, and drops only after. */
  hb_visitor r = HB_VISITOR_INIT, w = HB_VISITOR_INIT;
  seen_ctx s = {0};
  s.release = &c;
  assert_int_equal(HB_CAST_CONSUMER(&r, &c, uint8_t, 1), HB_OK);
  assert_true(hb__load_granted(&r));
  uint8_t x[50];
  for (int i = 0; i < 50; i++) x[i] = (uint8_t)(200 + i);
  put_ctx p = {x, 50, 0, 0};
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w, 50, put_cb, &p), HB_OK);
  assert_false(hb__load_granted(&w));
  assert_int_equal(hb_visit(&r, 0, check_pattern, &s), HB_OK);
  assert_int_equal(hb_try_visit(&r, NULL), HB_OK);
  assert_int_equal(s.n, 200);
  assert_int_equal(hb_stream_info_get(b, &in), HB_OK);
  assert_int_equal(in.begin, 0); /* released, not yet dropped */
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_int_equal(hb_stream_info_get(b, &in), HB_OK);
  assert_int_equal(in.begin, 100); /* dropped by the write's start, up to
                                     a's position, the lower */
  assert_int_equal(in.end, 250);
  /* The rest is intact and at the same offsets. */
  hb_visitor r2 = HB_VISITOR_INIT;
  seen_ctx s2 = {0};
  assert_int_equal(HB_CAST_CONSUMER(&r2, &a, uint8_t, 1), HB_OK);
  assert_int_equal(hb_visit(&r2, 0, check_pattern, &s2), HB_OK);
  assert_int_equal(hb_try_visit(&r2, NULL), HB_OK);
  assert_int_equal(s2.offset, 100);
  assert_int_equal(s2.offset + s2.n, 250);
  /* A late consumer starts at the first byte still stored. */
  hb_consumer late = HB_CONSUMER_INIT;
  assert_int_equal(hb_consumer_add(b, &late), HB_OK);
  assert_int_equal(hb_consumer_pos(&late), 100);
  assert_int_equal(hb_consumer_remove(&late), HB_OK);
  assert_int_equal(hb_consumer_remove(&a), HB_OK);
  assert_int_equal(hb_consumer_remove(&c), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

/* A consumer that stops consuming bounds the buffer: the write whose
 * reservation would pass the limit fails cleanly (HB_ENOSPC, callback not
 * called, nothing appended); the room waker fires once releases bring the
 * lag to half the limit. */
static void stopped_consumer_bounds_buffer(void **state) {
  (void)state;
  hb_buf *b = new_stream(256, 1024);
  hb_consumer fast = HB_CONSUMER_INIT, slow = HB_CONSUMER_INIT;
  assert_int_equal(hb_consumer_add(b, &fast), HB_OK);
  assert_int_equal(hb_consumer_add(b, &slow), HB_OK);
  int rooms = 0;
  assert_int_equal(hb_stream_room_waker(b, (hb_waker){count_wake, &rooms}),
                   HB_OK);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(write_bytes(b, 256, 0), 0);
    assert_int_equal(hb_consumer_release(&fast, 256 * (uint64_t)(i + 1)),
                     HB_OK);
  }
  int ran = 0, result = 0;
  assert_int_equal(
      hb_write_now(b, HB_TYPE(uint8_t), 1, must_not_run, &ran, &result),
      HB_OK);
  assert_int_equal(result, HB_ENOSPC);
  assert_int_equal(ran, 0);
  hb_stream_info in;
  assert_int_equal(hb_stream_info_get(b, &in), HB_OK);
  assert_int_equal(in.end, 1024);
  assert_true(hb_capacity(b) <= 2048); /* bounded */
  assert_int_equal(rooms, 0);
  assert_int_equal(hb_consumer_release(&slow, 256), HB_OK); /* lag 768 */
  assert_int_equal(rooms, 0);
  assert_int_equal(hb_consumer_release(&slow, 512), HB_OK); /* lag 512 */
  assert_int_equal(rooms, 1);
  assert_int_equal(hb_consumer_release(&slow, 1024), HB_OK);
  assert_int_equal(rooms, 1); /* once per HB_ENOSPC */
  assert_int_equal(write_bytes(b, 256, 0), 0);
  assert_int_equal(hb_stream_info_get(b, &in), HB_OK);
  assert_int_equal(in.end, 1280);
  assert_int_equal(in.begin, 1024);
  /* A reservation above the limit can never be had. */
  assert_int_equal(
      hb_write_now(b, HB_TYPE(uint8_t), 1025, must_not_run, &ran, &result),
      HB_OK);
  assert_int_equal(result, HB_ENOSPC);
  assert_int_equal(hb_consumer_remove(&fast), HB_OK);
  assert_int_equal(hb_consumer_remove(&slow), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

/* With a limit and no consumer, a full stream keeps its bytes: nothing is
 * released, so nothing is dropped to make room (the fuzzer's find). */
static void limit_without_consumers_keeps_bytes(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 300);
  assert_int_equal(write_bytes(b, 200, 0), 0);
  int ran = 0, result = 0;
  assert_int_equal(
      hb_write_now(b, HB_TYPE(uint8_t), 200, must_not_run, &ran, &result),
      HB_OK);
  assert_int_equal(result, HB_ENOSPC);
  assert_int_equal(ran, 0);
  hb_stream_info in;
  assert_int_equal(hb_stream_info_get(b, &in), HB_OK);
  assert_int_equal(in.begin, 0);
  assert_int_equal(in.end, 200);
  hb_visitor v = HB_VISITOR_INIT;
  seen_ctx s = {0};
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 0, 1), HB_OK);
  assert_int_equal(hb_visit(&v, 0, check_pattern, &s), HB_OK);
  assert_int_equal(hb_try_visit(&v, NULL), HB_OK);
  assert_int_equal(s.n, 200);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- every driver on a waiting reader ------------------------------------ */

struct bg_writer {
  hb_buf *b;
  int delay_ms, n;
};

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void *bg_write(void *arg) {
  struct bg_writer *w = arg;
  for (int i = 0; i < w->n; i++) {
    sleep_ms(w->delay_ms);
    assert_int_equal(write_bytes(w->b, 10, 0), 0);
  }
  return NULL;
}

static void block_on_waiting_reader(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  hb_visitor v = HB_VISITOR_INIT;
  seen_ctx s = {0};
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 0, 30), HB_OK);
  assert_int_equal(hb_visit(&v, 0, seen_cb, &s), HB_OK);
  struct bg_writer w = {b, 5, 3};
  pthread_t t;
  pthread_create(&t, NULL, bg_write, &w);
  int result;
  assert_int_equal(hb_block_on(&v, &result), HB_OK);
  assert_int_equal(s.n, 30); /* granted by the third write, not before */
  pthread_join(t, NULL);
  assert_int_equal(hb_free(b), HB_OK);
}

/* The fd waker under epoll: the loop sleeps in epoll_wait until the write
 * that satisfies the reader. */
static void fd_waker_under_epoll(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  hb_fd_waker fw;
  assert_int_equal(hb_fd_waker_init(&fw), HB_OK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fw.fd};
  assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, fw.fd, &ev), 0);
  hb_visitor v = HB_VISITOR_INIT;
  seen_ctx s = {0};
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 0, 20), HB_OK);
  assert_int_equal(hb_visit(&v, 0, seen_cb, &s), HB_OK);
  assert_int_equal(hb_poll(&v, hb_fd_waker_get(&fw), NULL), HB_PENDING);
  struct bg_writer w = {b, 5, 2};
  pthread_t t;
  pthread_create(&t, NULL, bg_write, &w);
  int polls = 0, st;
  do {
    struct epoll_event out;
    int n = epoll_wait(ep, &out, 1, 5000);
    assert_int_equal(n, 1);
    hb_fd_waker_drain(&fw);
    polls++;
    st = hb_poll(&v, hb_fd_waker_get(&fw), NULL);
  } while (st == HB_PENDING);
  assert_int_equal(st, HB_OK);
  assert_int_equal(polls, 1); /* woken once: by the satisfying write */
  assert_int_equal(s.n, 20);
  pthread_join(t, NULL);
  close(ep);
  hb_fd_waker_close(&fw);
  assert_int_equal(hb_free(b), HB_OK);
}

static void count_done(hb_visitor *v, int status, int result, void *arg) {
  (void)v;
  (void)result;
  int *d = arg;
  d[0]++;
  d[1] = status;
}

static void detached_waiting_reader(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  hb_visitor v = HB_VISITOR_INIT, v2 = HB_VISITOR_INIT;
  seen_ctx s = {0}, s2 = {0};
  int done[2] = {0, 0}, done2[2] = {0, 0};
  assert_int_equal(HB_CAST_FROM(&v, b, uint8_t, 0, 15), HB_OK);
  assert_int_equal(hb_visit_detached(&v, 0, seen_cb, &s, count_done, done),
                   HB_OK);
  assert_int_equal(HB_CAST_FROM(&v2, b, uint8_t, 0, 15), HB_OK);
  assert_int_equal(hb_visit_detached(&v2, 0, seen_cb, &s2, count_done, done2),
                   HB_OK);
  assert_int_equal(hb_cancel(&v2), HB_OK);
  assert_int_equal(done2[0], 1);
  assert_int_equal(done2[1], HB_ECANCELED);
  assert_int_equal(write_bytes(b, 10, 0), 0);
  assert_int_equal(done[0], 0);
  assert_int_equal(write_bytes(b, 10, 0), 0); /* runs it, on this thread */
  assert_int_equal(done[0], 1);
  assert_int_equal(done[1], HB_OK);
  assert_int_equal(s.n, 20);
  assert_int_equal(s2.calls, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Waiting from inside a callback on the same stream could only deadlock. */
static hb_buf *inside_buf;
static int block_inside(hb_view *r, void *ctx) {
  (void)r;
  hb_visitor *v = ctx;
  assert_int_equal(HB_CAST_FROM(v, inside_buf, uint8_t, 0, 1000), HB_OK);
  assert_int_equal(hb_visit(v, 0, seen_cb, NULL), HB_OK);
  assert_int_equal(hb_block_on(v, NULL), HB_EDEADLK);
  assert_int_equal(hb_cancel(v), HB_OK);
  return 0;
}

static void block_inside_callback_deadlk(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  inside_buf = b;
  hb_visitor inner = HB_VISITOR_INIT;
  int result;
  assert_int_equal(
      hb_read_now(b, HB_TYPE(uint8_t), block_inside, &inner, &result), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- no allocation per wait ---------------------------------------------- */

static long n_alloc;
static void *count_malloc(size_t n) {
  __atomic_fetch_add(&n_alloc, 1, __ATOMIC_RELAXED);
  return malloc(n);
}
static void *count_realloc(void *p, size_t n) {
  __atomic_fetch_add(&n_alloc, 1, __ATOMIC_RELAXED);
  return realloc(p, n);
}

static void no_allocation_per_wait(void **state) {
  (void)state;
  assert_int_equal(hb_set_allocator(count_malloc, count_realloc, free),
                   HB_OK);
  hb_buf *b = new_stream(4096, 0);
  hb_consumer c = HB_CONSUMER_INIT;
  assert_int_equal(hb_consumer_add(b, &c), HB_OK);
  hb_fd_waker fw;
  assert_int_equal(hb_fd_waker_init(&fw), HB_OK);
  long before = n_alloc;
  seen_ctx s = {0};
  s.release = &c;
  for (int i = 0; i < 5000; i++) {
    hb_visitor v = HB_VISITOR_INIT;
    assert_int_equal(HB_CAST_CONSUMER(&v, &c, uint8_t, 16), HB_OK);
    if (i % 2) {
      assert_int_equal(hb_visit(&v, 0, seen_cb, &s), HB_OK);
      assert_int_equal(hb_poll(&v, hb_fd_waker_get(&fw), NULL), HB_PENDING);
      assert_int_equal(write_bytes(b, 16, (uint8_t)i), 0);
      hb_fd_waker_drain(&fw);
      assert_int_equal(hb_poll(&v, hb_fd_waker_get(&fw), NULL), HB_OK);
    } else {
      int done[2] = {0, 0};
      assert_int_equal(
          hb_visit_detached(&v, 0, seen_cb, &s, count_done, done), HB_OK);
      assert_int_equal(write_bytes(b, 16, (uint8_t)i), 0);
      assert_int_equal(done[0], 1);
    }
  }
  assert_int_equal(s.calls, 5000);
  assert_int_equal(n_alloc - before, 0);
  hb_fd_waker_close(&fw);
  assert_int_equal(hb_consumer_remove(&c), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
  assert_int_equal(hb_set_allocator(malloc, realloc, free), HB_OK);
}

/* After the stream ends, direct mode sees what no consumer released from
 * the cursor on. */
static void direct_mode_after_close(void **state) {
  (void)state;
  hb_buf *b = new_stream(64, 0);
  hb_consumer c = HB_CONSUMER_INIT;
  assert_int_equal(hb_consumer_add(b, &c), HB_OK);
  assert_int_equal(write_bytes(b, 40, 0), 0);
  assert_int_equal(hb_consumer_release(&c, 30), HB_OK);
  assert_int_equal(write_bytes(b, 0, 0), 0); /* the drop happens here */
  assert_int_equal(hb_stream_close(b), HB_OK);
  hb__check(b);
  assert_int_equal(hb_remaining(b), 10);
  uint8_t x;
  assert_int_equal(hb_get_u8(b, &x), HB_OK);
  assert_int_equal(x, 30);
  assert_int_equal(hb_consumer_remove(&c), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(granted_right_after_satisfying_write),
      cmocka_unit_test(aborted_write_satisfies_nobody),
      cmocka_unit_test(writers_not_held_up),
      cmocka_unit_test(several_thresholds),
      cmocka_unit_test(view_starts_at_offset),
      cmocka_unit_test(close_grants_waiters_and_fails_writes),
      cmocka_unit_test(close_inside_write),
      cmocka_unit_test(cancel_waiting_reader),
      cmocka_unit_test(offsets_stable_across_drops),
      cmocka_unit_test(drop_only_when_all_released),
      cmocka_unit_test(stopped_consumer_bounds_buffer),
      cmocka_unit_test(limit_without_consumers_keeps_bytes),
      cmocka_unit_test(block_on_waiting_reader),
      cmocka_unit_test(fd_waker_under_epoll),
      cmocka_unit_test(detached_waiting_reader),
      cmocka_unit_test(block_inside_callback_deadlk),
      cmocka_unit_test(no_allocation_per_wait),
      cmocka_unit_test(direct_mode_after_close),
  };
  return hb_test_main("stream", tests);
}
