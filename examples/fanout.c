/*
 * fanout.c -- one producer, two consumers that each see every record: a
 * verifier on its own thread and a logger on a libuv loop (built when
 * libuv is present).
 *
 *   producer thread --hb_write_now--> [ one hb_buf, a stream ] --+-->
 * verifier |   (thread, |   hb_block_on)
 *                                                                +--> logger
 *                                                                    (uv
 * loop, hb_uv_visit)
 *
 * Each consumer is registered on the stream (hb_consumer_add) and casts
 * its read visitors with hb_cast_consumer: a visitor waits, holding no
 * ticket, until a record past the consumer's position is there.  Neither
 * consumer ever wakes to find nothing, and neither holds up the producer
 * while it waits.  Each releases what it has seen; the library drops a
 * record once both have.  The verifier blocks its thread; the logger's
 * visitor is driven by the loop (its waker is a uv_async_t), so the loop
 * keeps running a timer meanwhile.  The producer closes the stream at the
 * end: the consumers' last views carry the end mark.
 *
 * Usage: fanout [records]   (default 20000).  Exits 0 only if both
 * consumers saw every record, intact and in order.
 */
#include <hyperbuf_uv.h>

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* One record, 64 bytes: a sequence number, a check, a line of text. */
struct record {
  uint64_t seq;
  uint64_t check;
  char text[48];
};

static uint64_t record_check(const struct record *r) {
  uint64_t h = 0xcbf29ce484222325u ^ r->seq; /* FNV-1a over the text */
  for (size_t i = 0; i < sizeof r->text; i++)
    h = (h ^ (uint8_t)r->text[i]) * 0x100000001b3u;
  return h;
}

/* ---- the producer -------------------------------------------------------- */

struct producer {
  hb_buf *b;
  uint64_t records;
  hb_fd_waker room; /* the stream's room waker: the slowest caught up */
};

struct batch {
  uint64_t first, n;
};

static int append_records(hb_view *w, void *ctx) {
  const struct batch *bt = ctx;
  for (uint64_t i = 0; i < bt->n; i++) {
    struct record r;
    memset(&r, 0, sizeof r);
    r.seq = bt->first + i;
    snprintf(r.text, sizeof r.text, "event %" PRIu64 " from the producer",
             r.seq);
    r.check = record_check(&r);
    int rc = hb_view_append(w, &r);
    if (rc != HB_OK) return rc;
  }
  return 0;
}

static void *producer_main(void *arg) {
  struct producer *p = arg;
  for (uint64_t seq = 0; seq < p->records;) {
    struct batch bt = {seq, p->records - seq < 100 ? p->records - seq : 100};
    int result;
    if (HB_WRITE_NOW(p->b, struct record, bt.n * sizeof(struct record),
                     append_records, &bt, &result) != HB_OK)
      break;
    if (result == HB_ENOSPC) { /* a consumer lags by the limit: wait */
      struct pollfd pf = {p->room.fd, POLLIN, 0};
      poll(&pf, 1, -1);
      hb_fd_waker_drain(&p->room);
      continue;
    }
    if (result != 0) break;
    seq += bt.n;
  }
  hb_stream_close(p->b); /* the consumers' last views see the end */
  return NULL;
}

/* ---- a consumer's callback: verify, count, release ----------------------- */

struct consumer {
  const char *name;
  hb_consumer c;
  hb_visitor v;
  uint64_t next, bad, visits;
  int eof, print_every;
};

static int consume(hb_view *view, void *ctx) {
  struct consumer *k = ctx;
  size_t n;
  const struct record *r = HB_READ_ARRAY(view, struct record, &n);
  uint64_t first = hb_view_offset(view) / sizeof(struct record);
  k->visits++;
  for (size_t i = 0; i < n; i++) {
    if (r[i].seq != first + i || r[i].seq != k->next ||
        r[i].check != record_check(&r[i])) {
      k->bad++;
      continue;
    }
    if (k->print_every != 0 && r[i].seq % (uint64_t)k->print_every == 0)
      printf("%s: %s\n", k->name, r[i].text);
    k->next++;
  }
  hb_consumer_release(&k->c, (first + n) * sizeof(struct record));
  if (hb_view_eof(view)) k->eof = 1;
  return 0;
}

/* The verifier: a thread that blocks on each visitor. */
static void *verifier_main(void *arg) {
  struct consumer *k = arg;
  while (!k->eof) {
    if (HB_CAST_CONSUMER(&k->v, &k->c, struct record,
                         sizeof(struct record)) != HB_OK ||
        hb_visit(&k->v, 0, consume, k) != HB_OK ||
        hb_block_on(&k->v, NULL) != HB_OK) {
      k->bad++;
      break;
    }
  }
  return NULL;
}

/* ---- the logger: driven by a libuv loop ---------------------------------- */

static uv_timer_t ticker;
static int ticks;
static hb_uv_req logger_req;

static void logger_next(struct consumer *k);

static void logger_done(hb_uv_req *req, int status, int result) {
  (void)result;
  struct consumer *k = req->data;
  if (status != HB_OK) k->bad++;
  if (status == HB_OK && !k->eof) {
    logger_next(k); /* the next visitor, from the loop thread */
    return;
  }
  uv_timer_stop(&ticker); /* the loop may end */
  uv_close((uv_handle_t *)&ticker, NULL);
}

static void logger_next(struct consumer *k) {
  logger_req.data = k;
  if (HB_CAST_CONSUMER(&k->v, &k->c, struct record, sizeof(struct record)) !=
          HB_OK ||
      hb_uv_visit(uv_default_loop(), &logger_req, &k->v, 0, consume, k,
                  logger_done) != HB_OK) {
    k->bad++;
    uv_timer_stop(&ticker);
    uv_close((uv_handle_t *)&ticker, NULL);
  }
}

static void tick(uv_timer_t *t) {
  (void)t;
  ticks++;
}

int main(int argc, char **argv) {
  uint64_t records = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000;
  hb_buf *b = hb_new(64 * 1024);
  /* The slower consumer may lag by at most 256 KiB of records. */
  if (b == NULL || hb_stream_open(b, 256 * 1024) != HB_OK) return 1;
  struct consumer verifier = {.name = "verifier"};
  struct consumer logger = {.name = "logger", .print_every = 5000};
  hb_consumer_add(b, &verifier.c); /* before the first record */
  hb_consumer_add(b, &logger.c);

  uv_loop_t *loop = uv_default_loop();
  uv_timer_init(loop, &ticker);
  uv_timer_start(&ticker, tick, 1, 1);
  logger_next(&logger);

  pthread_t vt, pt;
  struct producer p = {b, records, {0}};
  if (hb_fd_waker_init(&p.room) != HB_OK ||
      hb_stream_room_waker(b, hb_fd_waker_get(&p.room)) != HB_OK)
    return 1;
  pthread_create(&vt, NULL, verifier_main, &verifier);
  pthread_create(&pt, NULL, producer_main, &p);
  uv_run(loop, UV_RUN_DEFAULT); /* until the logger has seen the end */
  pthread_join(pt, NULL);
  pthread_join(vt, NULL);

  hb_stream_info in;
  hb_stream_info_get(b, &in);
  printf("fanout: %" PRIu64 " records of %zu bytes; verifier saw %" PRIu64
         " in %" PRIu64 " visits, logger %" PRIu64 " in %" PRIu64
         " visits (the loop ticked %d times meanwhile); at most %zu bytes "
         "held\n",
         records, sizeof(struct record), verifier.next, verifier.visits,
         logger.next, logger.visits, ticks, in.peak);
  int ok = verifier.bad == 0 && logger.bad == 0 && verifier.next == records &&
           logger.next == records &&
           in.end == records * sizeof(struct record);
  printf("fanout: %s\n",
         ok ? "both consumers saw every record, in order"
            : "FAILED: records lost, damaged or out of order");
  hb_consumer_remove(&verifier.c);
  hb_consumer_remove(&logger.c);
  uv_loop_close(loop);
  hb_free(b);
  hb_fd_waker_close(&p.room);
  return ok ? 0 : 1;
}
