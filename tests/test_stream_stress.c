/*
 * test_stream_stress.c -- streams under load (issue 12): 2 producers whose
 * records are serialised by write visits, 4 registered consumers with
 * random lag, random drivers (hb_block_on, hb_poll with an eventfd waker,
 * detached), random cancels of waiting readers, partial releases (bytes
 * seen twice must be counted once), a lag limit in some rounds and a close
 * at a random moment in others.  Every record is checksummed, and each
 * consumer must count every committed record exactly once, each
 * producer's in order.
 */
#include "hb_test.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "hyperbuf.h"

#define PRODUCERS 2
#define CONSUMERS 4
#define PER_PRODUCER 20000 /* records each producer tries to commit */

typedef struct {
  uint32_t producer;
  uint32_t magic;
  uint64_t seq;
  uint64_t check;
  uint64_t pad;
} rec;

#define MAGIC 0x5354524du

static uint64_t rec_check(const rec *r) {
  uint64_t h = (r->seq + 1) * 0x9e3779b97f4a7c15u ^ r->producer;
  return h ^ (h >> 31) ^ r->pad;
}

static uint64_t rnd(uint64_t *s) { /* xorshift64 */
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void pause_us(unsigned us) {
  struct timespec ts = {0, (long)us * 1000L};
  nanosleep(&ts, NULL);
}

struct round;

struct producer {
  struct round *rd;
  unsigned id;
  pthread_t thread;
  uint64_t seed;
  uint64_t committed; /* records appended by write visits that committed */
};

struct consumer {
  struct round *rd;
  unsigned id;
  pthread_t thread;
  uint64_t seed;
  hb_consumer c;
  hb_visitor v;
  uint64_t counted_upto;        /* offset: records below it counted */
  uint64_t next_seq[PRODUCERS]; /* per producer, the seq expected */
  uint64_t count, bad, dup, cancels, visits, eof;
  int partial; /* this visit releases half */
  /* detached completion */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done_flag;
};

struct round {
  hb_buf *b;
  size_t limit;
  int close_early; /* a closer closes while producers still write */
  struct producer p[PRODUCERS];
  struct consumer c[CONSUMERS];
};

/* ---- producers ----------------------------------------------------------- */

struct batch {
  struct producer *p;
  rec r[8];
  size_t n;
};

static int append_batch(hb_view *w, void *ctx) {
  struct batch *bt = ctx;
  return hb_view_append_all(w, bt->r, bt->n);
}

static void *producer_main(void *arg) {
  struct producer *p = arg;
  hb_buf *b = p->rd->b;
  uint64_t seq = 0;
  while (seq < PER_PRODUCER) {
    struct batch bt;
    bt.p = p;
    bt.n = 1 + rnd(&p->seed) % 8;
    if (bt.n > PER_PRODUCER - seq) bt.n = (size_t)(PER_PRODUCER - seq);
    for (size_t i = 0; i < bt.n; i++) {
      rec *r = &bt.r[i];
      r->producer = p->id;
      r->magic = MAGIC;
      r->seq = seq + i;
      r->pad = rnd(&p->seed);
      r->check = rec_check(r);
    }
    int result = 0, st;
    if (rnd(&p->seed) % 2) {
      st = hb_write_now(b, HB_TYPE(rec), bt.n * sizeof(rec), append_batch,
                        &bt, &result);
    } else {
      hb_visitor w = HB_VISITOR_INIT;
      st = HB_CAST_MUT(&w, b, rec);
      if (st == HB_OK)
        st = hb_visit(&w, bt.n * sizeof(rec), append_batch, &bt);
      if (st == HB_OK) st = hb_block_on(&w, &result);
    }
    if (st == HB_ECLOSED) break;
    assert_int_equal(st, HB_OK);
    if (result == HB_ECLOSED) break;
    if (result == HB_ENOSPC) { /* a consumer lags by the limit: later */
      pause_us(50);
      continue;
    }
    assert_int_equal(result, 0);
    seq += bt.n;
    p->committed += bt.n;
    if (rnd(&p->seed) % 64 == 0) sched_yield();
  }
  return NULL;
}

/* ---- consumers ----------------------------------------------------------- */

static int consume_cb(hb_view *r, void *ctx) {
  struct consumer *c = ctx;
  size_t n;
  const rec *a = HB_READ_ARRAY(r, rec, &n);
  uint64_t off = hb_view_offset(r);
  if (off > c->counted_upto) c->bad++; /* a byte went missing */
  c->visits++;
  for (size_t i = 0; i < n; i++) {
    uint64_t at = off + i * sizeof(rec);
    if (at < c->counted_upto) {
      c->dup++; /* seen before (a partial release): not counted again */
      continue;
    }
    const rec *x = &a[i];
    if (x->magic != MAGIC || x->producer >= PRODUCERS ||
        x->check != rec_check(x) || x->seq != c->next_seq[x->producer]) {
      c->bad++;
      continue;
    }
    c->next_seq[x->producer]++;
    c->count++;
    c->counted_upto = at + sizeof(rec);
  }
  /* Release all, or (sometimes) only half of what this view showed. */
  uint64_t upto = off + n * sizeof(rec);
  if (c->partial && n > 1) upto = off + (n / 2) * sizeof(rec);
  if (hb_consumer_release(&c->c, upto) != HB_OK) c->bad++;
  if (hb_view_eof(r) && upto == off + n * sizeof(rec)) c->eof = 1;
  return 0;
}

static void detached_done(hb_visitor *v, int status, int result, void *arg) {
  (void)v;
  (void)result;
  struct consumer *c = arg;
  if (status != HB_OK) c->bad++;
  pthread_mutex_lock(&c->mu);
  c->done_flag = 1;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void *consumer_main(void *arg) {
  struct consumer *c = arg;
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  assert_true(efd >= 0);
  while (!c->eof) {
    if (rnd(&c->seed) % 16 == 0) pause_us((unsigned)(rnd(&c->seed) % 300));
    c->partial = rnd(&c->seed) % 8 == 0;
    assert_int_equal(HB_CAST_CONSUMER(&c->v, &c->c, rec, sizeof(rec)), HB_OK);
    unsigned how = (unsigned)(rnd(&c->seed) % 8);
    if (how == 0) { /* cancel: before arming, or while it waits */
      if (rnd(&c->seed) % 2) {
        assert_int_equal(hb_visit(&c->v, 0, consume_cb, c), HB_OK);
        int rc = hb_poll(&c->v, hb_waker_eventfd(efd), NULL);
        if (rc == HB_OK) continue; /* the data was there: it ran */
        assert_int_equal(rc, HB_PENDING);
      }
      int rc = hb_cancel(&c->v);
      if (rc == HB_OK) {
        c->cancels++;
        uint64_t junk;
        while (read(efd, &junk, sizeof junk) > 0) {
        }
        continue;
      }
      assert_int_equal(rc, HB_EBUSY); /* cannot be: nobody else drives it */
    }
    int st;
    if (how <= 4) {
      assert_int_equal(hb_visit(&c->v, 0, consume_cb, c), HB_OK);
      st = hb_block_on(&c->v, NULL);
    } else if (how <= 6) {
      assert_int_equal(hb_visit(&c->v, 0, consume_cb, c), HB_OK);
      while ((st = hb_poll(&c->v, hb_waker_eventfd(efd), NULL)) ==
             HB_PENDING) {
        struct pollfd pf = {efd, POLLIN, 0};
        poll(&pf, 1, -1);
        uint64_t junk;
        while (read(efd, &junk, sizeof junk) > 0) {
        }
      }
    } else {
      c->done_flag = 0;
      assert_int_equal(
          hb_visit_detached(&c->v, 0, consume_cb, c, detached_done, c),
          HB_OK);
      pthread_mutex_lock(&c->mu);
      while (!c->done_flag) pthread_cond_wait(&c->cv, &c->mu);
      pthread_mutex_unlock(&c->mu);
      st = HB_OK;
    }
    assert_int_equal(st, HB_OK);
  }
  close(efd);
  return NULL;
}

/* ---- a round ------------------------------------------------------------- */

static void run_round(unsigned r, uint64_t seed) {
  struct round *rd = calloc(1, sizeof *rd);
  assert_non_null(rd);
  rd->limit = (r % 3 == 1) ? 16 * 1024 : 0;
  rd->close_early = r % 3 == 2;
  rd->b = hb_new(4096);
  assert_non_null(rd->b);
  assert_int_equal(hb_stream_open(rd->b, rd->limit), HB_OK);
  for (unsigned i = 0; i < CONSUMERS; i++) {
    struct consumer *c = &rd->c[i];
    c->rd = rd;
    c->id = i;
    c->seed = seed * 31 + i + 1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    assert_int_equal(hb_consumer_add(rd->b, &c->c), HB_OK);
    assert_int_equal(pthread_create(&c->thread, NULL, consumer_main, c), 0);
  }
  for (unsigned i = 0; i < PRODUCERS; i++) {
    struct producer *p = &rd->p[i];
    p->rd = rd;
    p->id = i;
    p->seed = seed * 77 + i + 1;
    assert_int_equal(pthread_create(&p->thread, NULL, producer_main, p), 0);
  }
  if (rd->close_early) {
    pause_us((unsigned)(seed % 20000));
    assert_int_equal(hb_stream_close(rd->b), HB_OK);
  }
  for (unsigned i = 0; i < PRODUCERS; i++)
    pthread_join(rd->p[i].thread, NULL);
  if (!rd->close_early) assert_int_equal(hb_stream_close(rd->b), HB_OK);
  uint64_t total = 0;
  for (unsigned i = 0; i < PRODUCERS; i++) total += rd->p[i].committed;
  for (unsigned i = 0; i < CONSUMERS; i++) {
    struct consumer *c = &rd->c[i];
    pthread_join(c->thread, NULL);
    assert_int_equal(c->bad, 0);
    if (c->count != total)
      print_message(
          "consumer %u: count %llu, next %llu %llu; committed "
          "%llu %llu\n",
          i, (unsigned long long)c->count, (unsigned long long)c->next_seq[0],
          (unsigned long long)c->next_seq[1],
          (unsigned long long)rd->p[0].committed,
          (unsigned long long)rd->p[1].committed);
    assert_int_equal(c->count, total); /* every record exactly once */
    for (unsigned p = 0; p < PRODUCERS; p++)
      assert_int_equal(c->next_seq[p], rd->p[p].committed);
    assert_int_equal(hb_consumer_remove(&c->c), HB_OK);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
  }
  hb_stream_info in;
  assert_int_equal(hb_stream_info_get(rd->b, &in), HB_OK);
  assert_int_equal(in.end, total * sizeof(rec));
  assert_int_equal(in.waiting, 0);
  if (rd->limit != 0) /* bounded: the reservation is at most 8 records */
    assert_true(in.peak <= rd->limit + 8 * sizeof(rec));
  if (!rd->close_early) assert_int_equal(total, PRODUCERS * PER_PRODUCER);
  unsigned long long cancels = 0, dups = 0, visits = 0;
  for (unsigned i = 0; i < CONSUMERS; i++) {
    cancels += rd->c[i].cancels;
    dups += rd->c[i].dup;
    visits += rd->c[i].visits;
  }
  print_message(
      "round %u: limit %zu%s: %llu records, %llu visits, "
      "%llu cancels, %llu re-seen, peak %zu B, %llu compactions\n",
      r, rd->limit, rd->close_early ? ", closed early" : "",
      (unsigned long long)total, visits, cancels, dups, in.peak,
      (unsigned long long)in.compactions);
  assert_int_equal(hb_free(rd->b), HB_OK);
  free(rd);
}

static void stress(void **state) {
  (void)state;
  uint64_t seed = (uint64_t)time(NULL);
  const char *s = getenv("HB_STREAM_SEED");
  if (s != NULL) seed = strtoull(s, NULL, 10);
  print_message("HB_STREAM_SEED=%llu\n", (unsigned long long)seed);
  for (unsigned r = 0; r < 6; r++) run_round(r, seed + r);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(stress),
  };
  return hb_test_main("stream_stress", tests);
}
