/*
 * test_reentry.c -- the re-entrancy matrix (issue 10): from inside a visit
 * callback, a waker called by a grant, a waker called by hb_cancel, and a
 * detached done, call every public visitor function on the callout's own
 * visitor, a sibling granted in the same batch, a queued visitor and an
 * idle one (and the buffer-wide calls once).  Every call must return at
 * once with the result the header documents for that state.
 *
 * Each cell runs in its own child process under a watchdog
 * (tests/isolate.h): the child builds the scenario, makes the one call
 * from inside the callout, sends its status to the parent, then cancels
 * whatever is left and frees the buffer, which must succeed -- so a cell
 * also fails if the call left the buffer's books wrong.
 */
#include "hb_test.h"

#include <unistd.h>

#include "hyperbuf.h"
#include "isolate.h"

/* ---- the matrix's axes --------------------------------------------------- */

enum ctx_kind { C_CALLBACK, C_GRANT_WAKER, C_CANCEL_WAKER, C_DONE, N_CTX };
static const char *const ctx_name[N_CTX] = {
    "visit callback", "waker (grant)", "waker (cancel)", "detached done"};

enum target { T_OWN, T_SIB, T_QUEUED, T_IDLE, T_BUF, N_TARGET };
static const char *const target_name[N_TARGET] = {"own", "sibling", "queued",
                                                  "idle", "buffer"};

enum fn {
  F_CAST, F_CAST_MUT, F_VISIT, F_VISIT_DETACHED, F_POLL, F_BLOCK_ON,
  F_TRY_VISIT, F_CANCEL, /* on a visitor */
  F_READ_NOW, F_WRITE_NOW, F_FREE, /* on the buffer */
  N_FN
};
static const char *const fn_name[N_FN] = {
    "hb_cast",     "hb_cast_mut", "hb_visit",   "hb_visit_detached",
    "hb_poll",     "hb_block_on", "hb_try_visit", "hb_cancel",
    "hb_read_now", "hb_write_now", "hb_free"};

#define OK HB_OK
#define ES HB_ESTATE
#define BZ HB_EBUSY
#define DL HB_EDEADLK
#define PD HB_PENDING
#define AG HB_EAGAIN
#define NA 1000 /* not a cell */

/* What each call must return: [context][target][function].  The visitor
 * calls' rows: cast, cast_mut, visit, visit_detached, poll, block_on,
 * try_visit, cancel.  The buffer row: read_now, write_now, free. */
static const int expect[N_CTX][N_TARGET][N_FN] = {
    [C_CALLBACK] = {
        /* own: running */
        [T_OWN] = {ES, ES, ES, ES, BZ, BZ, BZ, BZ, NA, NA, NA},
        /* sibling: a reader granted beside it, armed */
        [T_SIB] = {ES, ES, ES, ES, OK, OK, OK, OK, NA, NA, NA},
        /* queued: a writer behind both, armed and polled */
        [T_QUEUED] = {ES, ES, ES, ES, PD, DL, AG, OK, NA, NA, NA},
        [T_IDLE] = {OK, OK, ES, ES, ES, ES, ES, ES, NA, NA, NA},
        [T_BUF] = {NA, NA, NA, NA, NA, NA, NA, NA, DL, DL, BZ},
    },
    [C_GRANT_WAKER] = {
        /* own: granted, its waker is this call */
        [T_OWN] = {ES, ES, ES, ES, DL, DL, DL, OK, NA, NA, NA},
        /* sibling: granted in the same batch, its waker not called yet */
        [T_SIB] = {ES, ES, ES, ES, OK, OK, OK, OK, NA, NA, NA},
        [T_QUEUED] = {ES, ES, ES, ES, PD, DL, AG, OK, NA, NA, NA},
        [T_IDLE] = {OK, OK, ES, ES, ES, ES, ES, ES, NA, NA, NA},
        [T_BUF] = {NA, NA, NA, NA, NA, NA, NA, NA, DL, DL, BZ},
    },
    [C_CANCEL_WAKER] = {
        /* own: being cancelled by this thread, its waker is this call */
        [T_OWN] = {ES, ES, ES, ES, DL, DL, DL, ES, NA, NA, NA},
        /* sibling: granted by the cancel's dispatch */
        [T_SIB] = {ES, ES, ES, ES, OK, OK, OK, OK, NA, NA, NA},
        [T_QUEUED] = {ES, ES, ES, ES, PD, DL, AG, OK, NA, NA, NA},
        [T_IDLE] = {OK, OK, ES, ES, ES, ES, ES, ES, NA, NA, NA},
        [T_BUF] = {NA, NA, NA, NA, NA, NA, NA, NA, DL, DL, BZ},
    },
    [C_DONE] = {
        /* own: the detached visitor that ran: finished, may be re-cast */
        [T_OWN] = {OK, OK, ES, ES, ES, ES, ES, ES, NA, NA, NA},
        /* sibling: granted by its release, waker already called */
        [T_SIB] = {ES, ES, ES, ES, OK, OK, OK, OK, NA, NA, NA},
        [T_QUEUED] = {ES, ES, ES, ES, PD, DL, AG, OK, NA, NA, NA},
        [T_IDLE] = {OK, OK, ES, ES, ES, ES, ES, ES, NA, NA, NA},
        [T_BUF] = {NA, NA, NA, NA, NA, NA, NA, NA, DL, DL, BZ},
    },
};

/* ---- one cell, in the child ---------------------------------------------- */

typedef struct {
  enum ctx_kind ctx;
  enum target target;
  enum fn fn;
  int report_fd; /* the child writes the call's status here */
} cell;

static hb_buf *buf;
static hb_visitor first, own, sib, queued, idle;
static int probe_calls, wakes, runs;
static cell current;

static int cb_count(hb_view *view, void *ctx) {
  (void)view;
  (void)ctx;
  runs++;
  return 0;
}

static void count_wake(void *arg) {
  (void)arg;
  wakes++;
}
static const hb_waker counter = {count_wake, NULL};

static hb_visitor *target_visitor(enum target t) {
  switch (t) {
  case T_OWN: return &own;
  case T_SIB: return &sib;
  case T_QUEUED: return &queued;
  default: return &idle;
  }
}

/* The one call, from inside the callout; its status goes to the parent at
 * once, before anything else can hang. */
/* The probe's hb_free freed the buffer (it is refused inside a visit:
 * the buffer is then tidied up and freed as in any cell, so that memcheck
 * finds nothing left, not even "possibly lost" -- an hb_buf * points
 * inside its allocation, src/internal.h). */
static bool freed;

static void probe(void) {
  if (probe_calls++ != 0) return;
  hb_visitor *v = target_visitor(current.target);
  int result, rc;
  switch (current.fn) {
  case F_CAST: rc = HB_CAST(v, buf, uint8_t); break;
  case F_CAST_MUT: rc = HB_CAST_MUT(v, buf, uint8_t); break;
  case F_VISIT: rc = hb_visit(v, 0, cb_count, NULL); break;
  case F_VISIT_DETACHED:
    rc = hb_visit_detached(v, 0, cb_count, NULL, NULL, NULL);
    break;
  case F_POLL: rc = hb_poll(v, counter, &result); break;
  case F_BLOCK_ON: rc = hb_block_on(v, &result); break;
  case F_TRY_VISIT: rc = hb_try_visit(v, &result); break;
  case F_CANCEL: rc = hb_cancel(v); break;
  case F_READ_NOW: rc = HB_READ_NOW(buf, uint8_t, cb_count, NULL, &result); break;
  case F_WRITE_NOW:
    rc = HB_WRITE_NOW(buf, uint8_t, 0, cb_count, NULL, &result);
    break;
  default:
    rc = hb_free(buf);
    freed = rc == HB_OK;
    break;
  }
  ssize_t k = write(current.report_fd, &rc, sizeof rc);
  (void)k;
}

static int probe_cb(hb_view *view, void *ctx) {
  (void)view;
  (void)ctx;
  probe();
  return 0;
}
static void probe_wake(void *arg) {
  (void)arg;
  probe();
}
static void probe_done(hb_visitor *v, int status, int result, void *arg) {
  (void)v;
  (void)status;
  (void)result;
  (void)arg;
  probe();
}
static const hb_waker prober = {probe_wake, NULL};

static void run_cell(void *arg) {
  current = *(cell *)arg;
  buf = hb_new(64);
  CHILD_CHECK(buf != NULL);
  int result;
  switch (current.ctx) {
  case C_CALLBACK:
    /* own and sib: readers granted together; queued: a writer behind */
    CHILD_CHECK_INT(HB_CAST(&own, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST(&sib, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST_MUT(&queued, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(hb_visit(&own, 0, probe_cb, NULL), HB_OK);
    CHILD_CHECK_INT(hb_visit(&sib, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_visit(&queued, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_poll(&queued, counter, &result), HB_PENDING);
    CHILD_CHECK_INT(hb_try_visit(&own, &result), HB_OK);
    break;
  case C_GRANT_WAKER:
    /* first: a writer; own and sib: readers granted in one batch when it
     * ends; queued: a writer behind them */
    CHILD_CHECK_INT(HB_CAST_MUT(&first, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST(&own, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST(&sib, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST_MUT(&queued, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(hb_visit(&own, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_visit(&sib, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_visit(&queued, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_poll(&own, prober, &result), HB_PENDING);
    CHILD_CHECK_INT(hb_poll(&sib, counter, &result), HB_PENDING);
    CHILD_CHECK_INT(hb_poll(&queued, counter, &result), HB_PENDING);
    CHILD_CHECK_INT(hb_visit(&first, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_try_visit(&first, &result), HB_OK);
    break;
  case C_CANCEL_WAKER:
    /* first: a reader; own: a writer queued behind it; sib: a reader
     * behind own, granted beside first once own is cancelled; queued: a
     * writer behind sib */
    CHILD_CHECK_INT(HB_CAST(&first, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST_MUT(&own, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST(&sib, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST_MUT(&queued, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(hb_visit(&own, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_visit(&sib, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_visit(&queued, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_poll(&own, prober, &result), HB_PENDING);
    CHILD_CHECK_INT(hb_poll(&sib, counter, &result), HB_PENDING);
    CHILD_CHECK_INT(hb_poll(&queued, counter, &result), HB_PENDING);
    CHILD_CHECK_INT(hb_cancel(&own), HB_OK);
    break;
  default:
    /* first: a reader; own: a detached writer behind it; sib: a reader
     * behind own, granted by own's release; queued: a writer behind */
    CHILD_CHECK_INT(HB_CAST(&first, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST_MUT(&own, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST(&sib, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(HB_CAST_MUT(&queued, buf, uint8_t), HB_OK);
    CHILD_CHECK_INT(
        hb_visit_detached(&own, 0, cb_count, NULL, probe_done, NULL), HB_OK);
    CHILD_CHECK_INT(hb_visit(&sib, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_visit(&queued, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_poll(&sib, counter, &result), HB_PENDING);
    CHILD_CHECK_INT(hb_poll(&queued, counter, &result), HB_PENDING);
    CHILD_CHECK_INT(hb_visit(&first, 0, cb_count, NULL), HB_OK);
    CHILD_CHECK_INT(hb_try_visit(&first, &result), HB_OK);
    break;
  }
  CHILD_CHECK_INT(probe_calls, 1);
  if (freed) return; /* nothing to tidy: the probe freed it */
  /* Tidy up: every visitor finishes (cancelled, or run), and the buffer
   * then frees -- its books are straight. */
  hb_visitor *all[] = {&first, &own, &sib, &queued, &idle};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    int rc = hb_cancel(all[i]);
    CHILD_CHECK(rc == HB_OK || rc == HB_ESTATE);
  }
  CHILD_CHECK_INT(hb_free(buf), HB_OK);
}

/* ---- the parent ----------------------------------------------------------- */

static const char *status_name(int rc) {
  return rc == HB_PENDING ? "HB_PENDING" : hb_err_name(rc);
}

static void reentry_matrix(void **state) {
  (void)state;
  int cells = 0, failed = 0;
  char what[160];
  for (int c = 0; c < N_CTX; c++)
    for (int t = 0; t < N_TARGET; t++)
      for (int f = 0; f < N_FN; f++) {
        int want = expect[c][t][f];
        if (want == NA) continue;
        cells++;
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        cell k = {(enum ctx_kind)c, (enum target)t, (enum fn)f, fds[1]};
        snprintf(what, sizeof what, "%s: %s on %s", ctx_name[c], fn_name[f],
                 target_name[t]);
        int status = isolate(what, run_cell, &k, 5);
        close(fds[1]);
        int got = 12345;
        ssize_t n = read(fds[0], &got, sizeof got);
        close(fds[0]);
        if (status == 0 && n == (ssize_t)sizeof got && got == want) continue;
        failed++;
        if (n != (ssize_t)sizeof got)
          printf("  %-44s no answer: %s\n", what, isolate_verdict(status));
        else
          printf("  %-44s %s, want %s%s%s\n", what, status_name(got),
                 status_name(want), status ? "; then " : "",
                 status ? isolate_verdict(status) : "");
      }
  printf("reentry_matrix: %d of %d cells failed\n", failed, cells);
  assert_int_equal(failed, 0);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(reentry_matrix),
  };
  return hb_test_main("reentry", tests);
}
