/*
 * test_pipeline.c -- small runs of examples/packet_pipeline.c over TCP on
 * 127.0.0.1, every packet checked; and its verifier catching damage.
 * The pipeline runs on a stream (issue 12): no writer chain, no drains.
 * The example is compiled in here, without its main.
 */
#include "hb_test.h"

#define PP_NO_MAIN 1
#include "../examples/packet_pipeline.c"

static void run(uint64_t packets, unsigned workers) {
  struct pp_result r;
  assert_int_equal(pp_run(packets, workers, 0, &r), 0);
  assert_int_equal(r.bad, 0);
  assert_int_equal(r.received, packets);
  assert_int_equal(r.verified, packets);
  assert_int_equal(r.bytes, packets * sizeof(struct packet));
  assert_true(r.ok);
}

static void two_workers(void **state) {
  (void)state;
  run(20000, 2);
}

static void three_workers(void **state) {
  (void)state;
  run(7919, 3); /* a prime: the shares differ in size */
}

static void many_workers(void **state) {
  (void)state;
  run(5000, 8);
}

static void tiny_streams(void **state) {
  (void)state;
  run(0, 2); /* connect, send nothing, close: EOF at once */
  run(1, 2);
  run(3, 4); /* fewer packets than workers */
}

static void repeated_runs(void **state) {
  (void)state;
  for (int i = 0; i < 5; i++) run(2000, 2);
}

/* The workers' check, on a buffer with damaged packets in it. */
static void verifier_catches_damage(void **state) {
  (void)state;
  enum { N = 40 };
  struct pp_server *s = calloc(1, sizeof *s);
  s->nworkers = 2;
  s->buf = hb_new(0);
  for (uint32_t i = 0; i < N; i++) {
    struct packet p;
    pp_make(&p, i);
    if (i == 7) p.payload[3] ^= 1;  /* a flipped bit */
    if (i == 12) p.seq = 13;        /* out of order */
    if (i == 21) p.len = 0;         /* a bad length prefix */
    assert_int_equal(hb_put(s->buf, &p, sizeof p), HB_OK);
  }
  assert_int_equal(hb_put(s->buf, "tail", 4), HB_OK); /* a partial one */
  /* The bytes become a closed stream's offsets 0..: one read visit each. */
  assert_int_equal(hb_stream_open(s->buf, 0), HB_OK);
  for (unsigned k = 0; k < 2; k++)
    assert_int_equal(hb_consumer_add(s->buf, &s->workers[k].c), HB_OK);
  assert_int_equal(hb_stream_close(s->buf), HB_OK);
  for (unsigned k = 0; k < 2; k++) {
    struct pp_worker *w = &s->workers[k];
    w->s = s;
    w->id = k;
    pp_worker_main(w); /* one read visit: the end mark is in its view */
    assert_int_equal(w->next, N);
    assert_int_equal(hb_consumer_pos(&w->c), N * sizeof(struct packet));
    assert_true(w->finished);
    assert_int_equal(hb_consumer_remove(&w->c), HB_OK);
  }
  /* 7 and 21 are worker 1's, 12 is worker 0's. */
  assert_int_equal(s->workers[0].bad, 1);
  assert_int_equal(s->workers[1].bad, 2);
  assert_int_equal(s->workers[0].verified + s->workers[1].verified, N - 3);
  assert_int_equal(hb_free(s->buf), HB_OK);
  free(s);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(two_workers),
      cmocka_unit_test(three_workers),
      cmocka_unit_test(many_workers),
      cmocka_unit_test(tiny_streams),
      cmocka_unit_test(repeated_runs),
      cmocka_unit_test(verifier_catches_damage),
  };
  return hb_test_main("pipeline", tests);
}
