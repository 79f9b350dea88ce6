/*
 * packet_pipeline.c -- network bytes stream into one shared HyperBuf while
 * worker threads read them as `struct packet` arrays.  No thread spins.
 *
 *   client thread ----TCP 127.0.0.1----> event loop (this thread, epoll)
 *                                          |  write visitors: socket bytes
 *                                          v  appended by hb_view_read_fd
 *                                      [ one hb_buf of struct packet ]
 *                                          |  read visitors, concurrent
 *                                          v
 *                                  worker 0 .. worker W-1 (hb_block_on)
 *
 * Usage: packet_pipeline [packets [workers]]   (default 100000 packets, 2
 * workers).  Exits 0 only if every packet arrived intact and in order.
 *
 * THE WRITER CHAIN.  There is always exactly one write ticket outstanding
 * until the stream ends: each write callback casts the next write visitor
 * before it returns.  A worker that finished a read visit casts its next
 * one at once; that ticket lands behind the outstanding writer, so the
 * worker parks in hb_block_on until new bytes have been appended (never a
 * read visit that finds nothing new).  The loop polls the writer only when
 * the socket has bytes (edge-triggered: a write visit reads until EAGAIN,
 * or stops at a budget and the loop knows more is there), and the writer's
 * waker is an hb_fd_waker in the same epoll set: when the writer's turn
 * comes (the readers ahead of it finished), epoll returns.
 *
 * RELEASING CONSUMED PACKETS.  Every worker verifies its share of the
 * packets (index % workers == its id) and records in `next` the absolute
 * index up to which it has looked at everything.  Read callbacks never run
 * at the same time as a write callback, and the library orders each write
 * visit after the read visits before it, so the next write callback can
 * read every worker's `next` without a lock.  It drops the packets below
 * the smallest `next` -- all workers have passed them -- with
 * hb_view_drain, and advances `base`, the absolute index of element 0.
 * The bytes that remain (packets some worker still has to see, and a
 * partial packet at the end) move to the front; when the workers keep up
 * that is at most a few packets, so the buffer stays small.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "hyperbuf.h"

/* ---- the wire format ---------------------------------------------------- */

/* One packet as it travels and as the workers see it, 64 bytes.  The
 * stream is length-prefixed: `len` counts the bytes that follow it.  Both
 * ends are this program, so the host's byte order is the wire's. */
struct packet {
  uint32_t len;      /* length prefix: sizeof(struct packet) - 4 */
  uint32_t seq;      /* 0, 1, 2, ... in sending order */
  uint64_t checksum; /* FNV-1a over seq and payload */
  uint8_t payload[48];
};

#define PP_LEN ((uint32_t)(sizeof(struct packet) - sizeof(uint32_t)))

static uint64_t pp_checksum(const struct packet *p) {
  uint64_t h = 0xcbf29ce484222325u;
  const uint8_t *s = (const uint8_t *)&p->seq;
  for (size_t i = 0; i < sizeof p->seq; i++) h = (h ^ s[i]) * 0x100000001b3u;
  for (size_t i = 0; i < sizeof p->payload; i++)
    h = (h ^ p->payload[i]) * 0x100000001b3u;
  return h;
}

static void pp_make(struct packet *p, uint32_t seq) {
  p->len = PP_LEN;
  p->seq = seq;
  uint64_t x = seq * 0x9e3779b97f4a7c15u + 1; /* splitmix64 */
  for (size_t i = 0; i < sizeof p->payload; i += 8) {
    uint64_t z = (x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    memcpy(p->payload + i, &z, 8);
  }
  p->checksum = pp_checksum(p);
}

/* ---- shared state ------------------------------------------------------- */

#define PP_MAX_WORKERS 16
#define PP_READ_CHUNK (64 * 1024)     /* bytes per read(), and reserve */
#define PP_VISIT_BUDGET (256 * 1024)  /* bytes per write visit, at most */

struct pp_server;

struct pp_worker {
  struct pp_server *s;
  unsigned id;
  pthread_t thread;
  hb_visitor v;
  uint64_t next;     /* absolute index: all packets below it looked at */
  uint64_t verified; /* packets of its share that were intact */
  uint64_t bad;      /* packets of its share that were not */
  int finished;
};

struct pp_server {
  hb_buf *buf;
  int conn;              /* the accepted connection, non-blocking */
  hb_visitor writer[2];  /* the writer chain alternates between these */
  unsigned cur;          /* writer[cur] is the outstanding one */
  /* Below: written by write callbacks, read by read callbacks; the
   * library's ticket order makes every access race-free. */
  uint64_t base;         /* absolute index of the buffer's element 0 */
  int eof;               /* the stream ended (or failed): no more writers */
  int io_error;          /* errno of a failed read, 0 if none */
  uint64_t bytes_in;
  uint64_t drained;      /* packets released by hb_view_drain */
  int budget_hit;        /* the last write visit left bytes in the socket */
  unsigned nworkers;
  struct pp_worker workers[PP_MAX_WORKERS];
};

/* ---- the loop side: write visitors -------------------------------------- */

static int pp_writer_cb(hb_view *view, void *ctx);

static int pp_arm_writer(struct pp_server *s, unsigned i) {
  int rc = HB_CAST_MUT(&s->writer[i], s->buf, struct packet);
  if (rc == HB_OK) rc = hb_visit(&s->writer[i], PP_READ_CHUNK, pp_writer_cb, s);
  return rc;
}

static int pp_writer_cb(hb_view *view, void *ctx) {
  struct pp_server *s = ctx;

  /* 1. Release what every worker has passed (see the top of the file). */
  uint64_t low = UINT64_MAX;
  for (unsigned i = 0; i < s->nworkers; i++)
    if (s->workers[i].next < low) low = s->workers[i].next;
  if (low > s->base) {
    size_t drop = (size_t)(low - s->base);
    if (hb_view_drain(view, drop * sizeof(struct packet)) == HB_OK) {
      s->base = low;
      s->drained += drop;
    }
  }

  /* 2. Append what the socket has, up to a budget so readers get turns. */
  size_t got = 0;
  s->budget_hit = 0;
  for (;;) {
    size_t n;
    int rc = hb_view_read_fd(view, s->conn, PP_READ_CHUNK, &n);
    if (rc == HB_OK) {
      got += n;
      if (got < PP_VISIT_BUDGET) continue;
      s->budget_hit = 1;
      break;
    }
    if (rc == HB_EAGAIN) break;
    s->eof = 1; /* HB_EOF, or an error */
    if (rc != HB_EOF) s->io_error = rc == HB_EIO ? errno : ENOMEM;
    break;
  }
  s->bytes_in += got;

  /* 3. Keep the chain going: the next writer's ticket goes in now, before
   * this one ends, so workers that come back find it ahead of them. */
  if (!s->eof && pp_arm_writer(s, s->cur ^ 1u) != HB_OK) {
    s->eof = 1;
    s->io_error = ENOMEM;
  }
  return 0;
}

/* ---- the workers: read visitors ----------------------------------------- */

/* Check worker `id`'s share (every k-th packet, by absolute index) of the
 * packets [next, end), where packet i sits at p[i - base]; count them into
 * *verified and *bad. */
static void pp_verify_share(const struct packet *p, uint64_t base,
                            uint64_t next, uint64_t end, unsigned id,
                            uint64_t k, uint64_t *verified, uint64_t *bad) {
  uint64_t i = next + (id + k - next % k) % k; /* the first of our share */
  for (; i < end; i += k) {
    const struct packet *q = &p[i - base];
    if (q->len == PP_LEN && q->seq == (uint32_t)i &&
        q->checksum == pp_checksum(q))
      (*verified)++;
    else
      (*bad)++;
  }
}

static int pp_worker_cb(hb_view *view, void *ctx) {
  struct pp_worker *w = ctx;
  const struct pp_server *s = w->s;
  size_t n;
  const struct packet *p = HB_READ_ARRAY(view, struct packet, &n);
  uint64_t end = s->base + n; /* w->next >= base: base is the least next */
  pp_verify_share(p, s->base, w->next, end, w->id, s->nworkers, &w->verified,
                  &w->bad);
  w->next = end;
  if (s->eof) w->finished = 1; /* the last writer ran before this visit */
  return 0;
}

static void *pp_worker_main(void *arg) {
  struct pp_worker *w = arg;
  while (!w->finished) {
    if (HB_CAST(&w->v, w->s->buf, struct packet) != HB_OK ||
        hb_visit(&w->v, 0, pp_worker_cb, w) != HB_OK ||
        hb_block_on(&w->v, NULL) != HB_OK) {
      w->bad++;
      break;
    }
  }
  return NULL;
}

/* ---- the client --------------------------------------------------------- */

struct pp_client {
  uint16_t port;
  uint64_t packets;
  int error;
};

/* Packets are built in a HyperBuf in direct mode and sent with
 * hb_write_fd, 512 at a time. */
static void *pp_client_main(void *arg) {
  struct pp_client *c = arg;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons(c->port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  hb_buf *out = hb_new(512 * sizeof(struct packet));
  if (fd < 0 || out == NULL ||
      connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    c->error = errno ? errno : ENOMEM;
    goto done;
  }
  for (uint64_t seq = 0; seq < c->packets;) {
    hb_clear(out);
    for (int i = 0; i < 512 && seq < c->packets; i++, seq++) {
      struct packet p;
      pp_make(&p, (uint32_t)seq);
      hb_put(out, &p, sizeof p);
    }
    while (hb_remaining(out) > 0) {
      if (hb_write_fd(out, fd, NULL) != HB_OK) {
        c->error = errno;
        goto done;
      }
    }
  }
done:
  if (fd >= 0) close(fd); /* the server sees EOF */
  hb_free(out);
  return NULL;
}

/* ---- the event loop ----------------------------------------------------- */

struct pp_result {
  uint64_t sent, received, verified, bad, bytes, drained;
  double seconds;
  int ok;
};

static double pp_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int pp_fail(const char *what) {
  fprintf(stderr, "packet_pipeline: %s: %s\n", what, strerror(errno));
  return -1;
}

/* Run the whole pipeline once.  verbose prints the port.
 * @return 0 if it ran (r->ok says whether every packet was intact), -1 if
 *         setting it up failed. */
static int pp_run(uint64_t packets, unsigned nworkers, int verbose,
                  struct pp_result *r) {
  memset(r, 0, sizeof *r);
  if (nworkers < 1 || nworkers > PP_MAX_WORKERS) nworkers = 2;
  struct pp_server *s = calloc(1, sizeof *s);
  if (s == NULL) return pp_fail("calloc");
  s->conn = -1;
  s->nworkers = nworkers;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(lfd, 1) != 0 || getsockname(lfd, (struct sockaddr *)&a, &alen))
    return pp_fail("listen");
  if (verbose)
    printf("packet_pipeline: listening on 127.0.0.1:%u\n",
           (unsigned)ntohs(a.sin_port));

  hb_fd_waker waker;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0 || hb_fd_waker_init(&waker) != HB_OK) return pp_fail("epoll");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.fd = waker.fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, waker.fd, &ev);

  s->buf = hb_new(1 << 20);
  if (s->buf == NULL || pp_arm_writer(s, 0) != HB_OK) return pp_fail("hb_new");

  double t0 = pp_now();
  for (unsigned i = 0; i < nworkers; i++) {
    struct pp_worker *w = &s->workers[i];
    w->s = s;
    w->id = i;
    pthread_create(&w->thread, NULL, pp_worker_main, w);
  }
  struct pp_client client = {ntohs(a.sin_port), packets, 0};
  pthread_t ct;
  pthread_create(&ct, NULL, pp_client_main, &client);

  /* The loop: the socket's readiness and the writer's turn, both via
   * epoll; the writer is polled only once the socket has data. */
  int sock_ready = 0, poll_now = 0;
  while (!s->eof) {
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, poll_now ? 0 : -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return pp_fail("epoll_wait");
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        s->conn = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s->conn < 0) return pp_fail("accept");
        epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
        struct epoll_event ce = {.events = EPOLLIN | EPOLLET,
                                 .data.fd = s->conn};
        epoll_ctl(ep, EPOLL_CTL_ADD, s->conn, &ce);
      } else if (fd == waker.fd) {
        hb_fd_waker_drain(&waker);
      } else {
        sock_ready = 1;
      }
    }
    if (!sock_ready) continue;
    poll_now = 0;
    int st = hb_poll(&s->writer[s->cur], hb_fd_waker_get(&waker), NULL);
    if (st == HB_PENDING) continue; /* the waker fires when its turn comes */
    if (st != HB_OK) return pp_fail("hb_poll");
    /* It ran (and armed the next writer unless the stream ended).  If it
     * read until EAGAIN, wait for the next edge; if it stopped at its
     * budget, more is there: poll the next writer straight away. */
    s->cur ^= 1u;
    sock_ready = poll_now = s->budget_hit;
  }

  pthread_join(ct, NULL);
  for (unsigned i = 0; i < nworkers; i++) {
    pthread_join(s->workers[i].thread, NULL);
    r->verified += s->workers[i].verified;
    r->bad += s->workers[i].bad;
  }
  r->seconds = pp_now() - t0;

  /* Every visitor has finished: direct mode may look again. */
  size_t len = hb_len(s->buf);
  r->sent = client.error ? 0 : packets;
  r->received = s->base + len / sizeof(struct packet);
  r->bytes = s->bytes_in;
  r->drained = s->drained;
  r->ok = client.error == 0 && s->io_error == 0 && r->bad == 0 &&
          len % sizeof(struct packet) == 0 && r->received == packets &&
          r->verified == packets &&
          r->bytes == packets * sizeof(struct packet);

  hb_free(s->buf);
  hb_fd_waker_close(&waker);
  close(ep);
  close(lfd);
  if (s->conn >= 0) close(s->conn);
  free(s);
  return 0;
}

#ifndef PP_NO_MAIN
int main(int argc, char **argv) {
  uint64_t packets = 100000;
  unsigned workers = 2;
  if (argc > 1) packets = strtoull(argv[1], NULL, 10);
  if (argc > 2) workers = (unsigned)strtoul(argv[2], NULL, 10);
  if (packets > UINT32_MAX) packets = UINT32_MAX; /* seq is 32 bits */
  if (workers < 1 || workers > PP_MAX_WORKERS) workers = 2;
  struct pp_result r;
  if (pp_run(packets, workers, 1, &r) != 0) return 1;
  double mb = (double)r.bytes / 1e6;
  printf("packet_pipeline: %" PRIu64 " packets sent, %" PRIu64
         " received, %" PRIu64 " verified by %u workers, %" PRIu64 " bad\n",
         r.sent, r.received, r.verified, workers, r.bad);
  printf("packet_pipeline: %" PRIu64 " bytes in %.3f s: %.0f packets/s, "
         "%.1f MB/s (%" PRIu64 " packets released by drains)\n",
         r.bytes, r.seconds, (double)r.received / r.seconds, mb / r.seconds,
         r.drained);
  printf("packet_pipeline: %s\n",
         r.ok ? "every packet arrived intact and in order"
              : "FAILED: packets lost, damaged or out of order");
  return r.ok ? 0 : 1;
}
#endif
