/*
 * test_rbias.c -- the read bias (src/rbias.c): one-call readers
 * of a read-mostly buffer through the reader table, and what every writer,
 * hb_free, a stream and the checked build do about it.  On under every
 * build, ThreadSanitizer's included (plain atomics).
 */
#include <pthread.h>
#include "hb_test.h"
#include <sched.h>
#include <unistd.h>

#include "hyperbuf.h"
#include "fail_alloc.h"

#define RB_LIVE(b)                                                           \
  (__atomic_load_n(&(b)->lock, __ATOMIC_ACQUIRE) & HB__W_LIVE)

/* ---- callbacks on a uint64_t counter ------------------------------------- */

typedef struct {
  hb_buf *b;
  hb_excl x;
  int in, go;    /* a held read: inside its callback; may leave (atomic) */
  int order[4];  /* who finished, in order: 'r' / 'w' (under `next`) */
  int next;      /* atomic */
  int nested_rc; /* what a call inside the callback returned */
  uint64_t seen;
} ctx;

static void note(ctx *c, int who) {
  int i = __atomic_fetch_add(&c->next, 1, __ATOMIC_ACQ_REL);
  if (i < 4) __atomic_store_n(&c->order[i], who, __ATOMIC_RELAXED);
}

static int cb_inc(hb_view *view, void *arg) {
  ctx *c = arg;
  hb_excl_enter(&c->x, true);
  size_t n;
  uint64_t *v = HB_WRITE_ARRAY(view, uint64_t, &n);
  uint64_t old = v[0];
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  v[0] = old + 1;
  hb_excl_leave(&c->x, true);
  note(c, 'w');
  return 0;
}

static int cb_get(hb_view *view, void *arg) {
  ctx *c = arg;
  hb_excl_enter(&c->x, false);
  size_t n;
  const uint64_t *v = HB_READ_ARRAY(view, uint64_t, &n);
  if (n > 0) __atomic_store_n(&c->seen, v[0], __ATOMIC_RELAXED);
  hb_excl_leave(&c->x, false);
  return 0;
}

/* A read that stays in its callback until c->go. */
static int cb_hold(hb_view *view, void *arg) {
  ctx *c = arg;
  hb_excl_enter(&c->x, false);
  __atomic_store_n(&c->in, 1, __ATOMIC_RELEASE);
  while (!__atomic_load_n(&c->go, __ATOMIC_ACQUIRE)) sched_yield();
  size_t n;
  const uint64_t *v = HB_READ_ARRAY(view, uint64_t, &n);
  __atomic_store_n(&c->seen, v[0], __ATOMIC_RELAXED);
  hb_excl_leave(&c->x, false);
  note(c, 'r');
  return 0;
}

static int cb_write_inside(hb_view *view, void *arg) {
  ctx *c = arg;
  (void)view;
  c->nested_rc = HB_WRITE_NOW(c->b, uint64_t, 0, cb_inc, c, NULL);
  return 0;
}

static int cb_read_inside(hb_view *view, void *arg) {
  ctx *c = arg;
  (void)view;
  c->nested_rc = HB_READ_NOW(c->b, uint64_t, cb_get, c, NULL);
  return 0;
}

static void rd(ctx *c) {
  int r = -1;
  assert_int_equal(HB_READ_NOW(c->b, uint64_t, cb_get, c, &r), HB_OK);
  assert_int_equal(r, 0);
}
static void wr(ctx *c) {
  int r = -1;
  assert_int_equal(HB_WRITE_NOW(c->b, uint64_t, 0, cb_inc, c, &r), HB_OK);
  assert_int_equal(r, 0);
}

/* ---- buffers ------------------------------------------------------------- */

/* A counter buffer, shared for good (neither biased to one thread nor
 * still to try): a one-call read, then a caller-owned cast. */
static hb_buf *shared_buf(ctx *c) {
  memset(c, 0, sizeof *c);
  hb_buf *b = hb_new(64);
  assert_non_null(b);
  assert_int_equal(hb_put_u64_le(b, 0), HB_OK);
  c->b = b;
  rd(c);
  hb_visitor v = HB_VISITOR_INIT;
  assert_int_equal(hb_cast(&v, b, HB_TYPE(uint64_t)), HB_OK);
  assert_int_equal(hb_cancel(&v), HB_OK);
  assert_false(hb__is_biased(b));
  return b;
}

#define MILE 256 /* reads per milestone (HB__W_MILESTONE) */
#define ARMING (2 * MILE + 1) /* make_read_mostly's reads */
static void *reads_mile(void *arg) {
  for (int i = 0; i < MILE; i++) rd(arg);
  return NULL;
}

/* MILE reads here, MILE on another thread: a read milestone on each
 * (every MILE-th read of the lock word's count), with no write between --
 * so read-mostly, and the next read arms the bias (the other thread's
 * last, or ours here).  2 * MILE + 1 reads. */
static void make_read_mostly(ctx *c) {
  reads_mile(c);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, reads_mile, c), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_true(hb__rbias_wanted(c->b));
  rd(c);
  assert_true(hb__rbias_armed(c->b));
}

static hb_buf *armed_buf(ctx *c) {
  hb_buf *b = shared_buf(c);
  make_read_mostly(c);
  return b;
}

/* Nothing live, no moved reader left: the collective share went back. */
static void assert_idle(hb_buf *b) {
  assert_int_equal(RB_LIVE(b), 0);
  assert_int_equal(hb__ext(b)->rb_refs, 0);
}

static uint64_t visits(hb_buf *b) {
  hb_stats s;
  assert_int_equal(hb_stats_get(b, &s), HB_OK);
  return s.visits_run;
}

static void done(ctx *c) {
  assert_false(c->x.bad);
  assert_int_equal(hb_free(c->b), HB_OK);
}

/* ---- arming -------------------------------------------------------------- */

static void arms_on_read_mostly(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = armed_buf(&c);
  uint64_t fast = hb__rbias_reads(hb__ext(b));
  for (int i = 0; i < 100; i++) rd(&c);
  /* the reads went through the table, not the lock word's count */
  assert_int_equal(hb__rbias_reads(hb__ext(b)), fast + 100);
  assert_int_equal(RB_LIVE(b), HB__W_RBIAS);
  assert_int_equal(visits(b), 1 + ARMING + 100);
  done(&c);
}

static void *mix(void *arg) {
  for (int i = 0; i < 500; i++) {
    wr(arg);
    rd(arg);
  }
  return NULL;
}

static void never_on_one_to_one(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = shared_buf(&c);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, mix, &c), 0);
  mix(&c);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_false(hb__rbias_wanted(b));
  assert_false(hb__rbias_armed(b));
  assert_int_equal(visits(b), 1 + 2000);
  done(&c);
}

/* One reading thread alone gains nothing from the table: never armed. */
static void never_on_one_thread(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = shared_buf(&c);
  for (int i = 0; i < 1000; i++) rd(&c);
  assert_false(hb__rbias_wanted(b));
  assert_false(hb__rbias_armed(b));
  done(&c);
}

static void switch_off(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = shared_buf(&c);
  hb__rbias_enable(false);
  reads_mile(&c);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, reads_mile, &c), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  rd(&c);
  hb__rbias_enable(true);
  assert_false(hb__rbias_armed(b));
  done(&c);
}

/* ---- readers and a writer ------------------------------------------------ */

#define MANY_READS 20000

static void *many_reads(void *arg) {
  for (int i = 0; i < MANY_READS; i++) rd(arg);
  return NULL;
}

static void readers_and_a_writer(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = armed_buf(&c);
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&t[i], NULL, many_reads, &c), 0);
  int writes = 0;
  /* one write per ~100 reads, pacing on the readers' count */
  while (__atomic_load_n(&c.x.reads, __ATOMIC_RELAXED) <
         2 * MANY_READS + ARMING) {
    if (__atomic_load_n(&c.x.reads, __ATOMIC_RELAXED) < 100L * writes) {
      sched_yield();
      continue;
    }
    wr(&c);
    writes++;
    if (writes >= 2 * MANY_READS / 100) break;
  }
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
  assert_false(c.x.bad);
  assert_int_equal(c.x.writes, writes);
  assert_int_equal(c.x.reads, 1 + ARMING + 2 * MANY_READS);
  assert_int_equal(visits(b), (uint64_t)(1 + ARMING + 2 * MANY_READS + writes));
  assert_true(hb__rbias_reads(hb__ext(b)) > 0);
  uint64_t v = 0;
  assert_int_equal(hb_get_u64_le(b, &v), HB_OK);
  assert_int_equal(v, (uint64_t)writes);
  done(&c);
}

/* ---- a writer against a fast reader -------------------------------------- */

static void *hold_read(void *arg) {
  ctx *c = arg;
  int r = -1;
  assert_int_equal(HB_READ_NOW(c->b, uint64_t, cb_hold, c, &r), HB_OK);
  return NULL;
}

static void *one_write(void *arg) {
  wr(arg);
  return NULL;
}

/* The reader's thread is in its callback, through the table. */
static pthread_t start_held(ctx *c) {
  uint64_t fast = hb__rbias_reads(hb__ext(c->b));
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, hold_read, c), 0);
  while (!__atomic_load_n(&c->in, __ATOMIC_ACQUIRE)) sched_yield();
  assert_int_equal(hb__rbias_reads(hb__ext(c->b)), fast); /* not yet */
  assert_int_equal(RB_LIVE(c->b), HB__W_RBIAS); /* not in the lock word */
  return t;
}

static void writer_waits_for_fast_reader(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = armed_buf(&c);
  pthread_t r = start_held(&c), w;
  assert_int_equal(pthread_create(&w, NULL, one_write, &c), 0);
  /* The writer revoked: the reader is the moved share, and it waits. */
  uint64_t want = HB__W_READER;
  while ((RB_LIVE(b) & (HB__W_RBIAS | HB__W_READERS)) != want ||
         !(RB_LIVE(b) & (HB__W_WAITERS | HB__W_NEXT)))
    sched_yield();
  assert_int_equal(__atomic_load_n(&c.x.writes, __ATOMIC_ACQUIRE), 0);
  __atomic_store_n(&c.go, 1, __ATOMIC_RELEASE);
  assert_int_equal(pthread_join(r, NULL), 0);
  assert_int_equal(pthread_join(w, NULL), 0);
  assert_int_equal(c.order[0], 'r');
  assert_int_equal(c.order[1], 'w');
  assert_int_equal(c.seen, 0); /* the read ran before the write */
  assert_idle(b);
  assert_int_equal(visits(b), 1 + ARMING + 1 + 1);
  done(&c);
}

static void revoke_nobody_in(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = armed_buf(&c);
  for (int i = 0; i < 20; i++) rd(&c); /* the bias pays: RWANT stays */
  wr(&c); /* granted at once: the provisional share went back */
  assert_false(hb__rbias_armed(b));
  assert_idle(b);
  assert_int_equal(visits(b), 1 + ARMING + 20 + 1);
  rd(&c); /* re-arms: still read-mostly */
  assert_true(hb__rbias_armed(b));
  done(&c);
}

static void try_write_against_fast_reader(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = armed_buf(&c);
  pthread_t r = start_held(&c);
  assert_int_equal(HB_TRY_WRITE_NOW(b, uint64_t, 0, cb_inc, &c, NULL),
                   HB_EAGAIN);
  /* it took no place: only the moved reader's share is left */
  assert_int_equal(RB_LIVE(b), HB__W_READER);
  __atomic_store_n(&c.go, 1, __ATOMIC_RELEASE);
  assert_int_equal(pthread_join(r, NULL), 0);
  assert_idle(b);
  assert_int_equal(HB_TRY_WRITE_NOW(b, uint64_t, 0, cb_inc, &c, NULL), HB_OK);
  assert_int_equal(c.x.writes, 1);
  done(&c);
}

/* A caller-owned write cast revokes too (hb__next_take refuses RBIAS,
 * hb__cast_slow revokes), and is granted at once with nobody in. */
static void caller_owned_write_revokes(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = armed_buf(&c);
  hb_visitor v = HB_VISITOR_INIT;
  assert_int_equal(hb_cast_mut(&v, b, HB_TYPE(uint64_t)), HB_OK);
  assert_int_equal(hb_visit(&v, 0, cb_inc, &c), HB_OK);
  int r = -1;
  assert_int_equal(hb_try_visit(&v, &r), HB_OK);
  assert_int_equal(r, 0);
  assert_int_equal(c.x.writes, 1);
  assert_idle(b);
  done(&c);
}

/* ---- calls inside a fast read -------------------------------------------- */

static void write_inside_fast_read(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = armed_buf(&c);
  uint64_t fast = hb__rbias_reads(hb__ext(b));
  assert_int_equal(HB_READ_NOW(b, uint64_t, cb_write_inside, &c, NULL),
                   HB_OK);
  assert_int_equal(c.nested_rc, HB_EDEADLK);
  assert_int_equal(hb__rbias_reads(hb__ext(b)), fast + 1); /* it was fast */
  /* the outer read, moved by the inner write's revocation, gave its share
   * back */
  assert_idle(b);
  wr(&c);
  assert_int_equal(c.x.writes, 1);
  done(&c);
}

static void read_inside_fast_read(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = armed_buf(&c);
  uint64_t fast = hb__rbias_reads(hb__ext(b)), all = visits(b);
  assert_int_equal(HB_READ_NOW(b, uint64_t, cb_read_inside, &c, NULL), HB_OK);
  assert_int_equal(c.nested_rc, HB_OK);
  /* the outer through the table; the inner (its slot taken) a ticket */
  assert_int_equal(hb__rbias_reads(hb__ext(b)), fast + 1);
  assert_int_equal(visits(b), all + 2);
  assert_int_equal(RB_LIVE(b), HB__W_RBIAS);
  done(&c);
}

/* ---- hb_free, streams, allocation failure, the checked build ------------- */

static void free_armed_and_during(void **state) {
  (void)state;
  ctx c;
  armed_buf(&c);
  for (int i = 0; i < 20; i++) rd(&c); /* the bias pays: RWANT stays */
  pthread_t r = start_held(&c);
  assert_int_equal(hb_free(c.b), HB_EBUSY); /* a read is running */
  __atomic_store_n(&c.go, 1, __ATOMIC_RELEASE);
  assert_int_equal(pthread_join(r, NULL), 0);
  assert_int_equal(RB_LIVE(c.b), 0);
  rd(&c); /* armed again */
  assert_true(hb__rbias_armed(c.b));
  done(&c); /* armed, nobody in: freed, table and all */
}

static void stream_never_arms(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = armed_buf(&c);
  assert_int_equal(hb_stream_open(b, 0), HB_OK);
  assert_false(hb__rbias_armed(b));
  assert_false(hb__rbias_wanted(b));
  reads_mile(&c);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, reads_mile, &c), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  rd(&c);
  assert_false(hb__rbias_armed(b));
  done(&c);
}

static void table_allocation_fails(void **state) {
  (void)state;
  ctx c;
  hb_buf *b = shared_buf(&c);
  reads_mile(&c);
  /* The next allocation: the table's, by whichever read arms -- the
   * other thread's last, or (the first read having been biased, not
   * counted in the lock word) the one after. */
  arm(0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, reads_mile, &c), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  rd(&c);
  assert_true(injected);
  disarm();
  assert_false(hb__rbias_armed(b));
  assert_false(hb__rbias_wanted(b)); /* not retried at every read */
  assert_null(hb__ext(b)->rb_tab);
  for (int i = 0; i < 10; i++) rd(&c);
  assert_int_equal(visits(b), 1 + 2 * MILE + 1 + 10);
  wr(&c);
  assert_int_equal(c.x.writes, 1);
  done(&c);
}

static void checked_direct_after_armed_reads(void **state) {
  (void)state;
#if !HB_CHECKED
  skip();
#endif
  ctx c;
  hb_buf *b = armed_buf(&c);
  /* checked: the direct-mode check sees RBIAS in the live half, and the
   * idle bias is ended rather than reported */
  assert_int_equal(hb_put_u8(b, 7), HB_OK);
  assert_false(hb__rbias_armed(b));
  assert_int_equal(hb_len(b), 9);
  hb__check(b);
  done(&c);
}

int main(int argc, char **argv) {
  alarm(120); /* a wait that never ends fails the program */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(arms_on_read_mostly),
      cmocka_unit_test(never_on_one_to_one),
      cmocka_unit_test(never_on_one_thread),
      cmocka_unit_test(switch_off),
      cmocka_unit_test(readers_and_a_writer),
      cmocka_unit_test(writer_waits_for_fast_reader),
      cmocka_unit_test(revoke_nobody_in),
      cmocka_unit_test(try_write_against_fast_reader),
      cmocka_unit_test(caller_owned_write_revokes),
      cmocka_unit_test(write_inside_fast_read),
      cmocka_unit_test(read_inside_fast_read),
      cmocka_unit_test(free_armed_and_during),
      cmocka_unit_test(stream_never_arms),
      cmocka_unit_test_setup_teardown(table_allocation_fails,
                                      fail_alloc_setup, fail_alloc_teardown),
      cmocka_unit_test(checked_direct_after_armed_reads),
  };
  return hb_test_main("rbias", tests);
}
