/*
 * test_visitor.c -- visitor mode on one thread: life cycle, order, views,
 * rollback, wakers, misuse, detached visits, and zero allocation per visit.
 * Concurrency is tests/test_concurrent.c.
 */
#include "hb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hyperbuf.h"
#include "expect_abort.h"

typedef struct {
  uint64_t id;
  uint32_t flags;
  uint8_t tag;
} Txx;

/* ---- helpers ------------------------------------------------------------- */

typedef struct {
  int calls;
  int ret;
} probe;

static int cb_ret(hb_view *view, void *ctx) {
  (void)view;
  probe *p = ctx;
  p->calls++;
  return p->ret;
}

typedef struct {
  char *log;
  int *n;
  char mark;
} order_ctx;

static int cb_order(hb_view *view, void *ctx) {
  (void)view;
  order_ctx *o = ctx;
  o->log[(*o->n)++] = o->mark;
  return 0;
}

static void count_wake(void *arg) { (*(int *)arg)++; }

/* ---- life cycle ---------------------------------------------------------- */

static void life_cycle_states(void **state) {
  (void)state;
  hb_buf *b = hb_new(64);
  hb_visitor v = HB_VISITOR_INIT;
  probe p = {.ret = 7};
  int result = -1;

  /* idle: visit, drivers and cancel are refused */
  assert_int_equal(hb_visit(&v, 0, cb_ret, &p), HB_ESTATE);
  assert_int_equal(hb_try_visit(&v, &result), HB_ESTATE);
  assert_int_equal(hb_poll(&v, (hb_waker){0}, &result), HB_ESTATE);
  assert_int_equal(hb_block_on(&v, &result), HB_ESTATE);
  assert_int_equal(hb_cancel(&v), HB_ESTATE);

  /* cast: drivers refused until armed; a second cast refused */
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_ESTATE);
  assert_int_equal(hb_try_visit(&v, &result), HB_ESTATE);
  assert_int_equal(hb_visit(&v, 0, NULL, &p), HB_EINVAL);
  assert_int_equal(hb_visit(&v, (size_t)PTRDIFF_MAX + 1, cb_ret, &p),
                   HB_ERANGE);
  /* still cast, unarmed */
  assert_int_equal(hb_try_visit(&v, &result), HB_ESTATE);
  assert_int_equal(hb_visit(&v, 0, cb_ret, &p), HB_OK);
  assert_int_equal(hb_visit(&v, 0, cb_ret, &p), HB_ESTATE); /* twice */

  /* armed -> ran; driving again hands back the same result */
  assert_int_equal(hb_block_on(&v, &result), HB_OK);
  assert_int_equal(result, 7);
  assert_int_equal(p.calls, 1);
  result = 0;
  assert_int_equal(hb_poll(&v, (hb_waker){0}, &result), HB_OK);
  assert_int_equal(result, 7);
  assert_int_equal(hb_try_visit(&v, NULL), HB_OK);
  assert_int_equal(p.calls, 1);
  assert_int_equal(hb_visit(&v, 0, cb_ret, &p), HB_ESTATE);
  assert_int_equal(hb_cancel(&v), HB_ESTATE);

  /* a finished visitor may be cast again; cancel, then cancel again */
  assert_int_equal(HB_CAST_MUT(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_cancel(&v), HB_OK);
  assert_int_equal(hb_cancel(&v), HB_ESTATE);
  assert_int_equal(hb_try_visit(&v, &result), HB_ECANCELED);
  assert_int_equal(hb_block_on(&v, &result), HB_ECANCELED);
  assert_int_equal(hb_poll(&v, (hb_waker){0}, &result), HB_ECANCELED);
  assert_int_equal(hb_visit(&v, 0, cb_ret, &p), HB_ESTATE);
  assert_int_equal(p.calls, 1);

  /* cancel of an armed visitor */
  assert_int_equal(HB_CAST(&v, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, cb_ret, &p), HB_OK);
  assert_int_equal(hb_cancel(&v), HB_OK);
  assert_int_equal(hb_try_visit(&v, &result), HB_ECANCELED);
  assert_int_equal(p.calls, 1);

  assert_int_equal(hb_free(b), HB_OK);
}

static void bad_types_take_no_ticket(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor v = HB_VISITOR_INIT;
  hb_type bad[] = {
      {0, 1, "zero size"},
      {4, 3, "align not a power of two"},
      {4, 0, "zero align"},
      {6, 4, "size not a multiple of align"},
      {64, 64, "align above the buffer's"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(hb_cast(&v, b, bad[i]), HB_EINVAL);
    assert_int_equal(hb_cast_mut(&v, b, bad[i]), HB_EINVAL);
  }
  assert_int_equal(hb_cast(NULL, b, HB_TYPE(int)), HB_EINVAL);
  assert_int_equal(hb_cast(&v, NULL, HB_TYPE(int)), HB_EINVAL);
  /* no ticket was taken: direct mode and free still work */
  assert_int_equal(b->lock & HB__LIVE_MASK, 0);
  assert_int_equal(hb_put_u8(b, 1), HB_OK);
  /* an aligned buffer accepts the larger alignment */
  hb_buf *a = hb_new_aligned(64, 64);
  assert_non_null(a);
  assert_int_equal(hb_cast(&v, a, bad[4]), HB_OK);
  assert_int_equal(hb_cancel(&v), HB_OK);
  assert_int_equal(hb_free(a), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

static void free_with_live_visitors_is_busy(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor r = HB_VISITOR_INIT, w = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(hb_free(b), HB_EBUSY);
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK); /* queued */
  assert_int_equal(hb_free(b), HB_EBUSY);
  assert_int_equal(hb_cancel(&r), HB_OK);
  assert_int_equal(hb_free(b), HB_EBUSY); /* w granted now, still live */
  assert_int_equal(hb_cancel(&w), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- order --------------------------------------------------------------- */

static void tickets_run_in_cast_order(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  char log[8] = {0};
  int n = 0;
  order_ctx o[4] = {{log, &n, 'W'}, {log, &n, 'r'}, {log, &n, 'X'},
                    {log, &n, 's'}};
  hb_visitor v[4] = {HB_VISITOR_INIT, HB_VISITOR_INIT, HB_VISITOR_INIT,
                     HB_VISITOR_INIT};
  assert_int_equal(HB_CAST_MUT(&v[0], b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&v[1], b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST_MUT(&v[2], b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&v[3], b, uint8_t), HB_OK);
  for (int i = 0; i < 4; i++)
    assert_int_equal(hb_visit(&v[i], 0, cb_order, &o[i]), HB_OK);
  /* drive from the back: nothing but the head may run */
  for (int i = 3; i >= 1; i--) assert_int_equal(hb_try_visit(&v[i], NULL), HB_EAGAIN);
  assert_int_equal(n, 0);
  assert_int_equal(hb_try_visit(&v[0], NULL), HB_OK);
  assert_int_equal(hb_try_visit(&v[3], NULL), HB_EAGAIN); /* behind X */
  assert_int_equal(hb_try_visit(&v[2], NULL), HB_EAGAIN); /* behind r */
  assert_int_equal(hb_try_visit(&v[1], NULL), HB_OK);
  assert_int_equal(hb_try_visit(&v[3], NULL), HB_EAGAIN);
  assert_int_equal(hb_try_visit(&v[2], NULL), HB_OK);
  assert_int_equal(hb_try_visit(&v[3], NULL), HB_OK);
  assert_string_equal(log, "WrXs");
  assert_int_equal(hb_free(b), HB_OK);
}

static void readers_between_writers_share(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w = HB_VISITOR_INIT, r1 = HB_VISITOR_INIT, r2 = HB_VISITOR_INIT,
             w2 = HB_VISITOR_INIT;
  probe p = {0};
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r1, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r2, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST_MUT(&w2, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w, 0, cb_ret, &p), HB_OK);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  /* both readers are granted at once; the writer behind waits for both */
  assert_true(hb__load_granted(&r1));
  assert_true(hb__load_granted(&r2));
  assert_false(hb__load_granted(&w2));
  assert_int_equal(hb_cancel(&r2), HB_OK);
  assert_false(hb__load_granted(&w2));
  assert_int_equal(hb_cancel(&r1), HB_OK);
  assert_true(hb__load_granted(&w2));
  assert_int_equal(hb_cancel(&w2), HB_OK);
  assert_int_equal(hb_free(b), HB_OK);
}

static void writer_waits_for_earlier_readers(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor r = HB_VISITOR_INIT, w = HB_VISITOR_INIT;
  probe pr = {0}, pw = {0};
  int wakes = 0, result = -1;
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&r, 0, cb_ret, &pr), HB_OK);
  assert_int_equal(hb_visit(&w, 0, cb_ret, &pw), HB_OK);
  assert_int_equal(hb_try_visit(&w, NULL), HB_EAGAIN);
  assert_int_equal(hb_poll(&w, (hb_waker){count_wake, &wakes}, &result),
                   HB_PENDING);
  assert_int_equal(wakes, 0);
  assert_int_equal(pw.calls, 0);
  assert_int_equal(hb_try_visit(&r, NULL), HB_OK);
  assert_int_equal(wakes, 1); /* the reader's release woke the writer */
  assert_int_equal(pw.calls, 0); /* ...but did not run it */
  assert_int_equal(hb_poll(&w, (hb_waker){count_wake, &wakes}, &result),
                   HB_OK);
  assert_int_equal(pw.calls, 1);
  assert_int_equal(wakes, 1);
  assert_int_equal(hb_free(b), HB_OK);
}

static void cancel_in_the_middle(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w1 = HB_VISITOR_INIT, r1 = HB_VISITOR_INIT, w2 = HB_VISITOR_INIT,
             r2 = HB_VISITOR_INIT;
  probe p = {0};
  int wakes_w2 = 0, wakes_r2 = 0;
  assert_int_equal(HB_CAST_MUT(&w1, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r1, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST_MUT(&w2, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r2, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w2, 0, cb_ret, &p), HB_OK);
  assert_int_equal(hb_visit(&r2, 0, cb_ret, &p), HB_OK);
  assert_int_equal(hb_poll(&w2, (hb_waker){count_wake, &wakes_w2}, NULL),
                   HB_PENDING);
  assert_int_equal(hb_poll(&r2, (hb_waker){count_wake, &wakes_r2}, NULL),
                   HB_PENDING);
  /* cancel the writer in the middle: its waker is called, once */
  assert_int_equal(hb_cancel(&w2), HB_OK);
  assert_int_equal(wakes_w2, 1);
  assert_int_equal(hb_poll(&w2, (hb_waker){count_wake, &wakes_w2}, NULL),
                   HB_ECANCELED);
  /* r2 now sits right behind r1 and runs with it once w1 is done */
  assert_false(hb__load_granted(&r2));
  assert_int_equal(hb_cancel(&w1), HB_OK);
  assert_true(hb__load_granted(&r1));
  assert_true(hb__load_granted(&r2));
  assert_int_equal(wakes_r2, 1);
  assert_int_equal(hb_poll(&r2, (hb_waker){count_wake, &wakes_r2}, NULL),
                   HB_OK);
  assert_int_equal(p.calls, 1);
  assert_int_equal(hb_free(b), HB_EBUSY); /* r1 still holds a ticket */
  assert_int_equal(hb_cancel(&r1), HB_OK);
  hb_stats st;
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.visits_cancelled, 3);
  assert_int_equal(st.visits_run, 1);
  assert_int_equal(st.longest_queue, 2); /* r1 waited in the NEXT slot */
  assert_int_equal(hb_free(b), HB_OK);
}

static void waker_called_exactly_once(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  probe p = {0};
  int first = 0, second = 0;
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&r, 0, cb_ret, &p), HB_OK);
  assert_int_equal(hb_poll(&r, (hb_waker){count_wake, &first}, NULL),
                   HB_PENDING);
  /* a later poll replaces the stored waker */
  assert_int_equal(hb_poll(&r, (hb_waker){count_wake, &second}, NULL),
                   HB_PENDING);
  assert_int_equal(hb_visit(&w, 0, cb_ret, &p), HB_OK);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_int_equal(first, 0);
  assert_int_equal(second, 1);
  assert_int_equal(hb_poll(&r, (hb_waker){count_wake, &second}, NULL), HB_OK);
  assert_int_equal(hb_poll(&r, (hb_waker){count_wake, &second}, NULL), HB_OK);
  assert_int_equal(second, 1);
  assert_int_equal(p.calls, 2);
  assert_int_equal(hb_free(b), HB_OK);
}

/* More readers than one waker batch holds are granted at once, whether a
 * finishing writer or a cancelled one lets them go. */
static void many_readers_granted_in_batches(void **state) {
  (void)state;
  enum { N = 40 };
  for (int by_cancel = 0; by_cancel < 2; by_cancel++) {
    hb_buf *b = hb_new(16);
    hb_visitor w = HB_VISITOR_INIT, r[N];
    int wakes[N] = {0};
    probe p = {0};
    memset(r, 0, sizeof r);
    assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
    for (int i = 0; i < N; i++) {
      assert_int_equal(HB_CAST(&r[i], b, uint8_t), HB_OK);
      assert_int_equal(hb_visit(&r[i], 0, cb_ret, &p), HB_OK);
      assert_int_equal(hb_poll(&r[i], (hb_waker){count_wake, &wakes[i]}, NULL),
                       HB_PENDING);
    }
    if (by_cancel) {
      assert_int_equal(hb_cancel(&w), HB_OK);
    } else {
      assert_int_equal(hb_visit(&w, 0, cb_ret, &p), HB_OK);
      assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
    }
    for (int i = 0; i < N; i++) {
      assert_int_equal(wakes[i], 1);
      assert_true(hb__load_granted(&r[i]));
    }
    for (int i = 0; i < N; i++)
      assert_int_equal(hb_poll(&r[i], (hb_waker){count_wake, &wakes[i]}, NULL),
                       HB_OK);
    hb_stats st;
    assert_int_equal(hb_stats_get(b, &st), HB_OK);
    assert_int_equal(st.longest_queue, N);
    assert_int_equal(hb_free(b), HB_OK);
  }
}

/* ---- views, reservation, rollback ---------------------------------------- */

static Txx txx(uint64_t i) {
  Txx t;
  memset(&t, 0, sizeof t);
  t.id = i;
  t.flags = (uint32_t)(i * 3);
  t.tag = (uint8_t)(i + 1);
  return t;
}

typedef struct {
  Txx *items;
  size_t n_before, n_after;
  const uint8_t *data_before_append;
  const uint8_t *data_after_append;
} grow_ctx;

static int grow(hb_view *w, void *arg) {
  grow_ctx *g = arg;
  size_t n;
  Txx *objs = HB_WRITE_ARRAY(w, Txx, &n);
  g->n_before = n;
  g->data_before_append = (const uint8_t *)objs;
  Txx extra = txx(100);
  if (hb_view_append(w, &extra) != HB_OK) return -100;
  if (hb_view_append_all(w, g->items, 3) != HB_OK) return -101;
  objs = HB_WRITE_ARRAY(w, Txx, &n);
  g->n_after = n;
  g->data_after_append = (const uint8_t *)objs;
  return 0;
}

static void seed_example_semantics(void **state) {
  (void)state;
  Txx items[] = {txx(0), txx(1), txx(10)};
  hb_buf *buf = HB_WRAP(items);
  assert_non_null(buf);
  hb_visitor writer = HB_VISITOR_INIT, reader = HB_VISITOR_INIT;
  assert_int_equal(HB_CAST_MUT(&writer, buf, Txx), HB_OK);
  assert_int_equal(HB_CAST(&reader, buf, uint8_t), HB_OK);
  grow_ctx g = {.items = items};
  int result = -1;
  assert_int_equal(hb_visit(&writer, 4 * sizeof(Txx), grow, &g), HB_OK);
  assert_int_equal(hb_block_on(&writer, &result), HB_OK);
  assert_int_equal(result, 0);
  assert_int_equal(g.n_before, 3);
  assert_int_equal(g.n_after, 7);
  /* the reservation was made before the callback: appends did not move */
  assert_ptr_equal(g.data_before_append, g.data_after_append);
  probe p = {0};
  assert_int_equal(hb_visit(&reader, 0, cb_ret, &p), HB_OK);
  assert_int_equal(hb_block_on(&reader, &result), HB_OK);
  assert_int_equal(hb_len(buf), 7 * sizeof(Txx));
  Txx *all = (Txx *)hb_data(buf);
  assert_int_equal(all[3].id, 100);
  assert_int_equal(all[6].id, 10);
  hb__check(buf);
  assert_int_equal(hb_free(buf), HB_OK);
}

static int append_then_abort(hb_view *w, void *arg) {
  (void)arg;
  uint32_t x = 0xdeadbeef;
  uint32_t *first = hb_view_write_array(w, NULL);
  first[0] = 42; /* an in-place edit: documented as not undone */
  for (int i = 0; i < 100; i++) /* beyond the reservation: grows */
    if (hb_view_append(w, &x) != HB_OK) return -50;
  if (hb_view_bytes_written(w) != 400) return -51;
  return -7;
}

static int read_all_u32(hb_view *r, void *arg) {
  size_t n;
  const uint32_t *a = HB_READ_ARRAY(r, uint32_t, &n);
  uint64_t *sum = arg;
  *sum = n;
  for (size_t i = 0; i < n; i++) *sum += a[i];
  return 0;
}

static void abort_rolls_back_appends(void **state) {
  (void)state;
  uint32_t init[2] = {1, 2};
  hb_buf *b = HB_WRAP(init);
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  int result = 0;
  assert_int_equal(HB_CAST_MUT(&w, b, uint32_t), HB_OK);
  assert_int_equal(HB_CAST(&r, b, uint32_t), HB_OK);
  assert_int_equal(hb_visit(&w, 8, append_then_abort, NULL), HB_OK);
  assert_int_equal(hb_block_on(&w, &result), HB_OK);
  assert_int_equal(result, -7);
  uint64_t sum = 0;
  assert_int_equal(hb_visit(&r, 0, read_all_u32, &sum), HB_OK);
  assert_int_equal(hb_block_on(&r, &result), HB_OK);
  assert_int_equal(sum, 2 + 42 + 2); /* n=2, edited 42, original 2 */
  hb_stats st;
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.visits_aborted, 1);
  assert_int_equal(st.visits_run, 2);
  assert_int_equal(hb_len(b), 8);
  hb__check(b);
  assert_int_equal(hb_free(b), HB_OK);
}

typedef struct {
  int rc_append, rc_append_all, rc_bytes;
  void *warr;
  uint8_t *wbytes;
  size_t wcount, wn;
  size_t len, nbytes;
  const void *checked_wrong;
  size_t checked_count;
} view_probe;

static int probe_view(hb_view *v, void *arg) {
  view_probe *p = arg;
  uint64_t x = 1;
  p->rc_append = hb_view_append(v, &x);
  p->rc_append_all = hb_view_append_all(v, &x, 1);
  p->rc_bytes = hb_view_append_bytes(v, &x, 1);
  p->warr = hb_view_write_array(v, &p->wcount);
  p->wbytes = hb_view_write_bytes(v, &p->wn);
  p->len = hb_view_len(v);
  (void)hb_view_read_bytes(v, &p->nbytes);
  p->checked_count = 99;
  p->checked_wrong = HB_READ_ARRAY(v, uint16_t, &p->checked_count);
  return 0;
}

static void views_partial_elements_and_read_only(void **state) {
  (void)state;
  uint8_t bytes[13] = {0};
  hb_buf *b = HB_WRAP(bytes); /* 13 bytes: one whole uint64_t and 5 more */
  hb_visitor v = HB_VISITOR_INIT;
  view_probe p;
  int result;

  /* read visitor: no writing, whatever the length */
  memset(&p, 0, sizeof p);
  assert_int_equal(HB_CAST(&v, b, uint64_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, probe_view, &p), HB_OK);
  assert_int_equal(hb_block_on(&v, &result), HB_OK);
  assert_int_equal(p.rc_append, HB_ESTATE);
  assert_int_equal(p.rc_append_all, HB_ESTATE);
  assert_int_equal(p.rc_bytes, HB_ESTATE);
  assert_null(p.warr);
  assert_int_equal(p.wcount, 0);
  assert_null(p.wbytes);
  assert_int_equal(p.len, 1);
  assert_int_equal(p.nbytes, 13);
  assert_null(p.checked_wrong); /* sizeof(uint16_t) != cast size */
  assert_int_equal(p.checked_count, 0);

  /* write visitor on a partial element: typed appends refused, bytes fine */
  memset(&p, 0, sizeof p);
  assert_int_equal(HB_CAST_MUT(&v, b, uint64_t), HB_OK);
  assert_int_equal(hb_visit(&v, 0, probe_view, &p), HB_OK);
  assert_int_equal(hb_block_on(&v, &result), HB_OK);
  assert_int_equal(p.rc_append, HB_EINVAL);
  assert_int_equal(p.rc_append_all, HB_EINVAL);
  assert_int_equal(p.rc_bytes, HB_OK);
  assert_non_null(p.warr);
  assert_int_equal(p.wcount, 1);
  assert_int_equal(p.wn, 14);
  assert_int_equal(hb_len(b), 14);
  assert_int_equal(hb_free(b), HB_OK);
}

static int cb_never(hb_view *view, void *ctx) {
  (void)view;
  (void)ctx;
  fail_msg("callback ran although the reservation failed");
  return 0;
}

static int fail_every_alloc;
static void *failing_malloc(size_t n) {
  return fail_every_alloc ? NULL : malloc(n);
}
static void *failing_realloc(void *p, size_t n) {
  return fail_every_alloc ? NULL : realloc(p, n);
}

static void reservation_failure_completes_with_enomem(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  probe p = {0};
  int result = 0;
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w, 4096, cb_never, NULL), HB_OK);
  assert_int_equal(hb_visit(&r, 0, cb_ret, &p), HB_OK);
  assert_int_equal(hb_set_allocator(failing_malloc, failing_realloc, free),
                   HB_OK);
  fail_every_alloc = 1;
  assert_int_equal(hb_block_on(&w, &result), HB_OK);
  fail_every_alloc = 0;
  assert_int_equal(hb_set_allocator(malloc, realloc, free), HB_OK);
  assert_int_equal(result, HB_ENOMEM);
  /* the queue moved on */
  assert_int_equal(hb_try_visit(&r, NULL), HB_OK);
  assert_int_equal(p.calls, 1);
  hb_stats st;
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.reserve_failed, 1);
  assert_int_equal(hb_capacity(b), 16);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- misuse -------------------------------------------------------------- */

typedef struct {
  hb_visitor *other;
  int rc_block, rc_cancel_self, rc_poll_self, rc_free;
  hb_visitor *self;
  hb_buf *b;
} nest_ctx;

static int cb_blocks_on_later(hb_view *view, void *arg) {
  (void)view;
  nest_ctx *n = arg;
  n->rc_block = hb_block_on(n->other, NULL);
  n->rc_cancel_self = hb_cancel(n->self);
  n->rc_poll_self = hb_poll(n->self, (hb_waker){0}, NULL);
  n->rc_free = hb_free(n->b);
  return 0;
}

static void block_inside_callback_is_edeadlk(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor r = HB_VISITOR_INIT, w = HB_VISITOR_INIT;
  probe p = {0};
  nest_ctx n = {.other = &w, .self = &r, .b = b};
  assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w, 0, cb_ret, &p), HB_OK);
  assert_int_equal(hb_visit(&r, 0, cb_blocks_on_later, &n), HB_OK);
  assert_int_equal(hb_block_on(&r, NULL), HB_OK);
  assert_int_equal(n.rc_block, HB_EDEADLK);
  assert_int_equal(n.rc_cancel_self, HB_EBUSY);
  assert_int_equal(n.rc_poll_self, HB_EBUSY);
  assert_int_equal(n.rc_free, HB_EBUSY);
  /* the writer can still run afterwards */
  assert_int_equal(hb_block_on(&w, NULL), HB_OK);
  assert_int_equal(p.calls, 1);
  assert_int_equal(hb_free(b), HB_OK);
}

#if HB_CHECKED
/* Debug builds abort a direct-mode call made while a visitor is live, with
 * a message naming the call.  Run it in a child and read its stderr. */
typedef struct {
  void (*fn)(hb_buf *);
} misuse;

static void cast_then_misuse(void *arg) {
  hb_buf *b = hb_new(8);
  hb_visitor v = HB_VISITOR_INIT;
  if (HB_CAST(&v, b, uint8_t) != HB_OK) _exit(3);
  ((misuse *)arg)->fn(b);
}

static void expect_misuse_abort(void (*fn)(hb_buf *), const char *name) {
  expect_abort(cast_then_misuse, &(misuse){fn}, name);
}

static void misuse_put_u8(hb_buf *b) { (void)hb_put_u8(b, 1); }
static void misuse_put(hb_buf *b) { (void)hb_put(b, "x", 1); }
static void misuse_reserve(hb_buf *b) { (void)hb_reserve(b, 100); }
static void misuse_clear(hb_buf *b) { hb_clear(b); }
static void misuse_get_u32_be(hb_buf *b) {
  uint32_t x;
  (void)hb_get_u32_be(b, &x);
}
static void misuse_compact(hb_buf *b) { hb_compact(b); }
static void misuse_resize(hb_buf *b) { (void)hb_resize(b, 4, 0); }
static void misuse_put_f64_be(hb_buf *b) { (void)hb_put_f64_be(b, 1.5); }
static void misuse_get_f32_le(hb_buf *b) {
  float f;
  (void)hb_get_f32_le(b, &f);
}

static void direct_calls_while_live_abort_in_debug(void **state) {
  (void)state;
  expect_misuse_abort(misuse_put_u8, "hb_put_u8");
  expect_misuse_abort(misuse_put, "hb_put");
  expect_misuse_abort(misuse_reserve, "hb_reserve");
  expect_misuse_abort(misuse_clear, "hb_clear");
  expect_misuse_abort(misuse_get_u32_be, "hb_get_u32_be");
  expect_misuse_abort(misuse_compact, "hb_compact");
  expect_misuse_abort(misuse_resize, "hb_resize");
  expect_misuse_abort(misuse_put_f64_be, "hb_put_f64_be");
  expect_misuse_abort(misuse_get_f32_le, "hb_get_f32_le");
}
#endif

/* ---- detached visits ----------------------------------------------------- */

typedef struct {
  int calls, status, result;
  hb_visitor *v;
} done_probe;

static void on_done(hb_visitor *v, int status, int result, void *arg) {
  done_probe *d = arg;
  d->calls++;
  d->status = status;
  d->result = result;
  d->v = v;
}

static void detached_runs_on_the_granting_call(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  hb_visitor w = HB_VISITOR_INIT, d1 = HB_VISITOR_INIT, d2 = HB_VISITOR_INIT;
  probe pw = {0}, p1 = {.ret = 5}, p2 = {.ret = 6};
  done_probe dp1 = {0}, dp2 = {0};
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&d1, b, uint8_t), HB_OK);
  assert_int_equal(HB_CAST(&d2, b, uint8_t), HB_OK);
  assert_int_equal(hb_visit(&w, 0, cb_ret, &pw), HB_OK);
  assert_int_equal(
      hb_visit_detached(&d1, 0, cb_ret, &p1, on_done, &dp1), HB_OK);
  assert_int_equal(
      hb_visit_detached(&d2, 0, cb_ret, &p2, on_done, &dp2), HB_OK);
  assert_int_equal(p1.calls + p2.calls, 0);
  /* drivers refuse a detached visitor */
  assert_int_equal(hb_try_visit(&d1, NULL), HB_ESTATE);
  /* cancel one; the other runs when the writer finishes */
  assert_int_equal(hb_cancel(&d2), HB_OK);
  assert_int_equal(dp2.calls, 1);
  assert_int_equal(dp2.status, HB_ECANCELED);
  assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
  assert_int_equal(p1.calls, 1);
  assert_int_equal(p2.calls, 0);
  assert_int_equal(dp1.calls, 1);
  assert_int_equal(dp1.status, HB_OK);
  assert_int_equal(dp1.result, 5);
  assert_ptr_equal(dp1.v, &d1);
  /* a detached visit whose turn has come runs at once */
  assert_int_equal(HB_CAST(&d1, b, uint8_t), HB_OK);
  assert_int_equal(
      hb_visit_detached(&d1, 0, cb_ret, &p1, on_done, &dp1), HB_OK);
  assert_int_equal(p1.calls, 2);
  assert_int_equal(dp1.calls, 2);
  assert_int_equal(hb_free(b), HB_OK);
}

/* Detached visitors granted together run in ticket order. */
static void detached_run_in_ticket_order(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  char log[8] = {0};
  int n = 0;
  order_ctx o[4] = {{log, &n, 'a'}, {log, &n, 'b'}, {log, &n, 'c'},
                    {log, &n, 'd'}};
  hb_visitor w = HB_VISITOR_INIT, d[4];
  memset(d, 0, sizeof d);
  assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(HB_CAST(&d[i], b, uint8_t), HB_OK);
    assert_int_equal(
        hb_visit_detached(&d[i], 0, cb_order, &o[i], NULL, NULL), HB_OK);
  }
  assert_int_equal(hb_cancel(&w), HB_OK); /* grants all four at once */
  assert_string_equal(log, "abcd");
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- hb_read_now / hb_write_now ---------------------------------------- */

static int cb_append_u32s(hb_view *w, void *ctx) {
  const uint32_t *src = ctx;
  uint8_t *before = hb_view_write_bytes(w, NULL);
  if (hb_view_append_all(w, src, 4) != HB_OK) return -100;
  /* the reservation was made first: appending did not move the bytes */
  return hb_view_write_bytes(w, NULL) == before ? 4 : -101;
}

static int cb_sum_u32s(hb_view *r, void *ctx) {
  size_t n;
  const uint32_t *a = HB_READ_ARRAY(r, uint32_t, &n);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) sum += a[i];
  *(uint64_t *)ctx = sum;
  return (int)n;
}

static int cb_append_then_fail(hb_view *w, void *ctx) {
  (void)ctx;
  uint32_t x = 9;
  return hb_view_append(w, &x) == HB_OK ? -3 : -100;
}

static void now_runs_at_once(void **state) {
  (void)state;
  hb_buf *b = hb_new(0);
  uint32_t src[4] = {1, 2, 3, 4};
  uint64_t sum = 0;
  int result = 0;
  assert_int_equal(HB_WRITE_NOW(b, uint32_t, 64, cb_append_u32s, src, &result),
                   HB_OK);
  assert_int_equal(result, 4);
  assert_int_equal(HB_READ_NOW(b, uint32_t, cb_sum_u32s, &sum, &result), HB_OK);
  assert_int_equal(result, 4);
  assert_int_equal(sum, 10);
  /* an aborting write is rolled back */
  assert_int_equal(
      HB_WRITE_NOW(b, uint32_t, 0, cb_append_then_fail, NULL, &result), HB_OK);
  assert_int_equal(result, -3);
  assert_int_equal(hb_len(b), 16);
  /* errors take no ticket and change nothing */
  assert_int_equal(hb_read_now(b, (hb_type){3, 2, "bad"}, cb_sum_u32s, &sum,
                               &result),
                   HB_EINVAL);
  assert_int_equal(HB_READ_NOW(b, uint32_t, NULL, NULL, &result), HB_EINVAL);
  assert_int_equal(HB_WRITE_NOW(b, uint32_t, (size_t)PTRDIFF_MAX + 1,
                                cb_append_u32s, src, &result),
                   HB_ERANGE);
  assert_int_equal(HB_READ_NOW(NULL, uint32_t, cb_sum_u32s, &sum, &result),
                   HB_EINVAL);
  assert_int_equal(b->lock & HB__LIVE_MASK, 0);
  hb_stats st;
  assert_int_equal(hb_stats_get(b, &st), HB_OK);
  assert_int_equal(st.visits_run, 3);
  assert_int_equal(st.visits_aborted, 1);
  hb__check(b);
  assert_int_equal(hb_free(b), HB_OK);
}

static void now_reservation_failure(void **state) {
  (void)state;
  hb_buf *b = hb_new(16);
  int result = 0;
  assert_int_equal(hb_set_allocator(failing_malloc, failing_realloc, free),
                   HB_OK);
  fail_every_alloc = 1;
  int rc = HB_WRITE_NOW(b, uint8_t, 4096, cb_never, NULL, &result);
  fail_every_alloc = 0;
  assert_int_equal(hb_set_allocator(malloc, realloc, free), HB_OK);
  assert_int_equal(rc, HB_OK);
  assert_int_equal(result, HB_ENOMEM);
  assert_int_equal(hb_capacity(b), 16);
  assert_int_equal(b->lock & HB__LIVE_MASK, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

typedef struct {
  hb_buf *b;
  int rc_read, rc_write, read_result;
} now_nest;

static int cb_count(hb_view *r, void *ctx) {
  (void)ctx;
  return (int)hb_view_len(r);
}

static int cb_nest_now(hb_view *view, void *arg) {
  (void)view;
  now_nest *n = arg;
  /* another read ticket is granted at once beside ours: it runs nested */
  n->rc_read = HB_READ_NOW(n->b, uint8_t, cb_count, NULL, &n->read_result);
  /* a write ticket would wait for ours: refused, no ticket taken */
  n->rc_write = HB_WRITE_NOW(n->b, uint8_t, 0, cb_count, NULL, NULL);
  return 0;
}

static void now_inside_a_callback(void **state) {
  (void)state;
  uint8_t bytes[5] = {0};
  hb_buf *b = HB_WRAP(bytes);
  now_nest n = {.b = b};
  int result;
  assert_int_equal(HB_READ_NOW(b, uint8_t, cb_nest_now, &n, &result), HB_OK);
  assert_int_equal(n.rc_read, HB_OK);
  assert_int_equal(n.read_result, 5);
  assert_int_equal(n.rc_write, HB_EDEADLK);
  assert_int_equal(b->lock & HB__LIVE_MASK, 0);
  assert_int_equal(hb_free(b), HB_OK);
}

/* ---- zero allocation per visit ------------------------------------------- */

static size_t n_allocs;
static void *counting_malloc(size_t n) {
  n_allocs++;
  return malloc(n);
}
static void *counting_realloc(void *p, size_t n) {
  n_allocs++;
  return realloc(p, n);
}

static int cb_touch(hb_view *view, void *ctx) {
  (void)ctx;
  size_t n;
  uint8_t *w = hb_view_write_bytes(view, &n);
  if (w != NULL && n > 0) w[0]++;
  return 0;
}

static void zero_allocations_per_visit(void **state) {
  (void)state;
  assert_int_equal(
      hb_set_allocator(counting_malloc, counting_realloc, free), HB_OK);
  hb_buf *b = hb_new(256);
  assert_int_equal(hb_put_u8(b, 0), HB_OK);
  size_t before = n_allocs;
  int wakes = 0;
  for (int i = 0; i < 5000; i++) {
    hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT, w2 = HB_VISITOR_INIT;
    /* uncontended write and read */
    assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&w, 16, cb_touch, NULL), HB_OK);
    assert_int_equal(hb_try_visit(&w, NULL), HB_OK);
    assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&r, 0, cb_touch, NULL), HB_OK);
    assert_int_equal(hb_block_on(&r, NULL), HB_OK);
    /* queued: a writer behind a reader, polled, woken, run; a cancel */
    assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
    assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
    assert_int_equal(HB_CAST_MUT(&w2, b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&w, 0, cb_touch, NULL), HB_OK);
    assert_int_equal(hb_poll(&w, (hb_waker){count_wake, &wakes}, NULL),
                     HB_PENDING);
    assert_int_equal(hb_cancel(&w2), HB_OK);
    assert_int_equal(hb_visit(&r, 0, cb_touch, NULL), HB_OK);
    assert_int_equal(hb_try_visit(&r, NULL), HB_OK);
    assert_int_equal(hb_poll(&w, (hb_waker){count_wake, &wakes}, NULL), HB_OK);
    /* and the one-call forms */
    assert_int_equal(HB_WRITE_NOW(b, uint8_t, 16, cb_touch, NULL, NULL), HB_OK);
    assert_int_equal(HB_READ_NOW(b, uint8_t, cb_touch, NULL, NULL), HB_OK);
  }
  assert_int_equal(wakes, 5000);
  assert_int_equal(n_allocs, before);
  assert_int_equal(hb_data(b)[0], (uint8_t)(5000 * 3));
  assert_int_equal(hb_free(b), HB_OK);
  assert_int_equal(hb_set_allocator(malloc, realloc, free), HB_OK);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(life_cycle_states),
      cmocka_unit_test(bad_types_take_no_ticket),
      cmocka_unit_test(free_with_live_visitors_is_busy),
      cmocka_unit_test(tickets_run_in_cast_order),
      cmocka_unit_test(readers_between_writers_share),
      cmocka_unit_test(writer_waits_for_earlier_readers),
      cmocka_unit_test(cancel_in_the_middle),
      cmocka_unit_test(waker_called_exactly_once),
      cmocka_unit_test(many_readers_granted_in_batches),
      cmocka_unit_test(seed_example_semantics),
      cmocka_unit_test(abort_rolls_back_appends),
      cmocka_unit_test(views_partial_elements_and_read_only),
      cmocka_unit_test(reservation_failure_completes_with_enomem),
      cmocka_unit_test(block_inside_callback_is_edeadlk),
#if HB_CHECKED
      cmocka_unit_test(direct_calls_while_live_abort_in_debug),
#endif
      cmocka_unit_test(detached_runs_on_the_granting_call),
      cmocka_unit_test(detached_run_in_ticket_order),
      cmocka_unit_test(now_runs_at_once),
      cmocka_unit_test(now_reservation_failure),
      cmocka_unit_test(now_inside_a_callback),
      cmocka_unit_test(zero_allocations_per_visit),
  };
  return hb_test_main("visitor", tests);
}
