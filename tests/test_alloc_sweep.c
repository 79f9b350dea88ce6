/*
 * test_alloc_sweep.c -- allocation-failure sweeps for visitor mode and I/O.
 *
 * tests/test_oom.c sweeps the direct-mode calls (hb_new*, hb_wrap,
 * hb_reserve, hb_resize, hb_put*).  This file sweeps the other calls that
 * can allocate: the reservation a write visit takes when its turn comes
 * (driven and detached), the appends inside a write callback
 * (hb_view_append, _append_all, _append_bytes, hb_view_read_fd), and
 * hb_read_fd in direct mode.
 *
 * Each sweep fails allocation k = 0, 1, 2, ... in turn, on a fresh
 * buffer and queue, until the operation completes with no failure
 * injected.  With a failure injected it must report HB_ENOMEM and leave
 * the buffer (length, capacity, data pointer, cursor, bytes), the queue
 * (who waits and who may run) and every other visitor's state unchanged.
 * It prints how many allocation points each sweep covered.
 */
#include "hb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fail_alloc.h"

static long swept_total; /* allocation points swept, for the report */

/* A buffer that has already grown once (its bytes live in `raw`, so a
 * growth is a realloc) or not (a growth is a malloc + copy). */
static hb_buf *fixture(int grown) {
  disarm();
  hb_buf *b = hb_new(16);
  assert_non_null(b);
  for (int i = 0; i < 12; i++) assert_int_equal(hb_put_u8(b, (uint8_t)i), 0);
  if (grown) {
    assert_int_equal(hb_reserve(b, 100), HB_OK);
    assert_int_equal(hb_advance(b, 3), HB_OK);
  }
  hb__check(b);
  return b;
}

/* ---- wakers ------------------------------------------------------------- */

static int wakes[4];
static void count_wake(void *arg) { wakes[(uintptr_t)arg]++; }

/* ---- 1. the reservation when a driven write visit's turn comes ---------- */

typedef struct {
  int calls;
} cb_ctx;

static int must_not_run(hb_view *view, void *ctx) {
  (void)view;
  ((cb_ctx *)ctx)->calls++;
  return 0;
}

static int append_one(hb_view *view, void *ctx) {
  ((cb_ctx *)ctx)->calls++;
  uint8_t x = 0x77;
  return hb_view_append(view, &x);
}

static void sweep_reserve_driven(int grown) {
  long points = 0;
  for (long k = 0;; k++) {
    hb_buf *b = fixture(grown);
    hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
    cb_ctx wc = {0}, rc_ = {0};
    assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
    assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
    assert_int_equal(hb_visit(&w, 1000, append_one, &wc), HB_OK);
    assert_int_equal(hb_visit(&r, 0, must_not_run, &rc_), HB_OK);
    memset(wakes, 0, sizeof wakes);
    int res = 0;
    assert_int_equal(hb_poll(&r, (hb_waker){count_wake, (void *)1}, &res),
                     HB_PENDING);
    hb_snap s = hb_snap_take(b);
    arm(k);
    int rc = hb_try_visit(&w, &res);
    int failed = injected;
    disarm();
    assert_int_equal(rc, HB_OK);
    assert_int_equal(wakes[1], 1); /* the reader behind it was woken */
    if (failed) {
      /* Completed without its callback; nothing changed; queue moved on. */
      points++;
      assert_int_equal(res, HB_ENOMEM);
      assert_int_equal(wc.calls, 0);
      assert_unchanged(b, &s);
      hb_stats st;
      assert_int_equal(hb_stats_get(b, &st), HB_OK);
      assert_int_equal(st.reserve_failed, 1);
      assert_int_equal(st.visits_run, 0);
      /* Driving it again gives the same answer; cancelling is too late. */
      assert_int_equal(hb_poll(&w, (hb_waker){NULL, NULL}, &res), HB_OK);
      assert_int_equal(res, HB_ENOMEM);
      assert_int_equal(hb_cancel(&w), HB_ESTATE);
    } else {
      assert_int_equal(res, HB_OK);
      assert_int_equal(wc.calls, 1);
      assert_true(b->cap - s.len >= 1000);
    }
    assert_int_equal(hb_try_visit(&r, &res), HB_OK);
    assert_int_equal(rc_.calls, 1);
    hb__check(b);
    assert_int_equal(hb_free(b), HB_OK);
    if (!failed) break;
  }
  print_message("reservation (driven, %s): %ld allocation points\n",
                grown ? "grown" : "inline", points);
  assert_true(points >= 1);
  swept_total += points;
}

static void reserve_driven(void **state) {
  (void)state;
  sweep_reserve_driven(0);
  sweep_reserve_driven(1);
}

/* ---- 2. the reservation of a detached write visit ----------------------- */

typedef struct {
  int calls, status, result;
} done_ctx;

static void on_done(hb_visitor *v, int status, int result, void *arg) {
  (void)v;
  done_ctx *d = arg;
  d->calls++;
  d->status = status;
  d->result = result;
}

static void reserve_detached(void **state) {
  (void)state;
  long points = 0;
  for (long k = 0;; k++) {
    hb_buf *b = fixture(k & 1);
    hb_visitor first = HB_VISITOR_INIT, w = HB_VISITOR_INIT,
               r = HB_VISITOR_INIT;
    cb_ctx wc = {0}, rc_ = {0};
    done_ctx wd = {0}, rd = {0};
    assert_int_equal(HB_CAST(&first, b, uint8_t), HB_OK); /* holds the queue */
    assert_int_equal(HB_CAST_MUT(&w, b, uint8_t), HB_OK);
    assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
    assert_int_equal(
        hb_visit_detached(&w, 4096, append_one, &wc, on_done, &wd), HB_OK);
    assert_int_equal(
        hb_visit_detached(&r, 0, must_not_run, &rc_, on_done, &rd), HB_OK);
    assert_int_equal(wd.calls + rd.calls, 0);
    hb_snap s = hb_snap_take(b);
    arm(k);
    assert_int_equal(hb_cancel(&first), HB_OK); /* both run in here */
    int failed = injected;
    disarm();
    assert_int_equal(wd.calls, 1);
    assert_int_equal(wd.status, HB_OK);
    assert_int_equal(rd.calls, 1); /* the queue moved on either way */
    assert_int_equal(rc_.calls, 1);
    if (failed) {
      points++;
      assert_int_equal(wd.result, HB_ENOMEM);
      assert_int_equal(wc.calls, 0);
      assert_unchanged(b, &s);
    } else {
      assert_int_equal(wd.result, HB_OK);
      assert_int_equal(wc.calls, 1);
      assert_int_equal(b->len, s.len + 1);
    }
    hb__check(b);
    assert_int_equal(hb_free(b), HB_OK);
    if (!failed) break;
  }
  print_message("reservation (detached): %ld allocation points\n", points);
  assert_true(points >= 1);
  swept_total += points;
}

/* ---- 3. appends inside a write callback --------------------------------- */

enum { AP_ONE, AP_ALL, AP_BYTES, AP_READ_FD, AP_COUNT };
static const char *const ap_name[AP_COUNT] = {
    "hb_view_append", "hb_view_append_all", "hb_view_append_bytes",
    "hb_view_read_fd"};

typedef struct {
  int kind;
  long k;
  int failed;
  int pipe_rd;
  uint64_t elems[64];
} ap_ctx;

static int append_under_failure(hb_view *view, void *arg) {
  ap_ctx *c = arg;
  hb_buf *b = view->buf;
  size_t n0;
  (void)hb_view_read_bytes(view, &n0);
  /* One append inside the reservation first: it must not allocate. */
  uint64_t first = 42;
  assert_int_equal(hb_view_append(view, &first), HB_OK);
  hb_snap s = hb_snap_take(b);
  size_t written = hb_view_bytes_written(view);
  size_t got = 0;
  arm(c->k);
  int rc;
  switch (c->kind) {
  case AP_ONE:
    /* Fill the reservation, then one more element must grow. */
    rc = HB_OK;
    while (rc == HB_OK && b->cap - b->len >= sizeof first)
      rc = hb_view_append(view, &first);
    if (rc == HB_OK) rc = hb_view_append(view, &first);
    break;
  case AP_ALL: rc = hb_view_append_all(view, c->elems, 64); break;
  case AP_BYTES: rc = hb_view_append_bytes(view, c->elems, 300); break;
  default: rc = hb_view_read_fd(view, c->pipe_rd, 400, &got); break;
  }
  c->failed = injected;
  disarm();
  if (c->failed) {
    assert_int_equal(rc, HB_ENOMEM);
    if (c->kind != AP_ONE) {
      assert_unchanged(b, &s);
      assert_int_equal(hb_view_bytes_written(view), written);
    } else {
      assert_ptr_equal(b->data, s.data); /* appends within room: no move */
    }
    assert_int_equal(got, 0);
  } else {
    assert_int_equal(rc, HB_OK);
  }
  return 0;
}

static void appends(void **state) {
  (void)state;
  for (int kind = 0; kind < AP_COUNT; kind++) {
    long points = 0;
    for (long k = 0;; k++) {
      hb_buf *b = fixture((int)(k & 1));
      int fds[2] = {-1, -1};
      ap_ctx c = {kind, k, 0, -1, {0}};
      for (int i = 0; i < 64; i++) c.elems[i] = (uint64_t)i * 0x0101010101u;
      if (kind == AP_READ_FD) {
        assert_int_equal(pipe(fds), 0);
        assert_int_equal(write(fds[1], c.elems, 400), 400);
        c.pipe_rd = fds[0];
      }
      /* 12 bytes stored: cast as u32 so whole elements line up. */
      hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
      cb_ctx rc_ = {0};
      assert_int_equal(hb_resize(b, 16, 0), HB_OK);
      assert_int_equal(HB_CAST_MUT(&w, b, uint64_t), HB_OK);
      assert_int_equal(HB_CAST(&r, b, uint8_t), HB_OK);
      assert_int_equal(hb_visit(&w, 8, append_under_failure, &c), HB_OK);
      assert_int_equal(hb_visit(&r, 0, must_not_run, &rc_), HB_OK);
      int res = -99;
      assert_int_equal(hb_try_visit(&r, &res), HB_EAGAIN); /* queue intact */
      assert_int_equal(hb_block_on(&w, &res), HB_OK);
      assert_int_equal(res, 0);
      assert_int_equal(hb_try_visit(&r, &res), HB_OK);
      assert_int_equal(rc_.calls, 1);
      hb__check(b);
      assert_int_equal(hb_free(b), HB_OK);
      if (fds[0] >= 0) {
        close(fds[0]);
        close(fds[1]);
      }
      if (c.failed) points++;
      if (!c.failed) break;
    }
    print_message("%s: %ld allocation points\n", ap_name[kind], points);
    assert_true(points >= 1);
    swept_total += points;
  }
}

/* ---- 4. hb_read_fd in direct mode --------------------------------------- */

static void read_fd_direct(void **state) {
  (void)state;
  long points = 0;
  for (long k = 0;; k++) {
    hb_buf *b = fixture((int)(k & 1));
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    uint8_t src[500];
    memset(src, 0xab, sizeof src);
    assert_int_equal(write(fds[1], src, sizeof src), (ssize_t)sizeof src);
    hb_snap s = hb_snap_take(b);
    size_t got = 99;
    arm(k);
    int rc = hb_read_fd(b, fds[0], sizeof src, &got);
    int failed = injected;
    disarm();
    if (failed) {
      points++;
      assert_int_equal(rc, HB_ENOMEM);
      assert_int_equal(got, 0);
      assert_unchanged(b, &s);
    } else {
      assert_int_equal(rc, HB_OK);
      assert_int_equal(got, sizeof src);
      assert_int_equal(b->len, s.len + sizeof src);
    }
    hb__check(b);
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(hb_free(b), HB_OK);
    if (!failed) break;
  }
  print_message("hb_read_fd: %ld allocation points\n", points);
  assert_true(points >= 1);
  swept_total += points;
}

static void totals(void **state) {
  (void)state;
  print_message("alloc sweep: %ld allocation points swept in all\n",
                swept_total);
}

int main(int argc, char **argv) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fail_alloc_setup, fail_alloc_teardown)
  const struct CMUnitTest tests[] = {
      T(reserve_driven), T(reserve_detached), T(appends), T(read_fd_direct),
      T(totals),
  };
#undef T
  return hb_test_main("alloc_sweep", tests);
}
