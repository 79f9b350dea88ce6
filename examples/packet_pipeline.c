/*
 * packet_pipeline.c -- network bytes stream into one shared HyperBuf while
 * worker threads read them as `struct packet` arrays.  No thread spins.
 *
 *   client thread ----TCP 127.0.0.1----> event loop (this thread, epoll)
 *                                          |  write visitors: socket bytes
 *                                          v  appended by hb_view_read_fd
 *                                      [ one hb_buf, a stream ]
 *                                          |  read visitors that wait for
 *                                          v  the next packet, concurrent
 *                                  worker 0 .. worker W-1 (hb_block_on)
 *
 * Usage: packet_pipeline [packets [workers]]   (default 100000 packets, 2
 * workers).  Exits 0 only if every packet arrived intact and in order.
 *
 * THE STREAM.  The buffer is opened as a stream (hb_stream_open): every
 * byte has an offset that never changes.  Each worker is a registered
 * consumer (hb_consumer_add) and casts its read visitor with
 * hb_cast_consumer(..., sizeof(struct packet)): the visitor waits, holding
 * no ticket, until a whole packet past the worker's position is there, and
 * is granted right after the write visit that brings it.  So a worker
 * never runs to find nothing new, and never holds up the loop's writes.
 * The view says where it starts (hb_view_offset: the packet index is that
 * over 64); the worker verifies its share of the packets (index % workers
 * == its id), then releases every whole packet it saw
 * (hb_consumer_release).  The library drops the bytes that every worker
 * released, at the start of a later write visit, when no view can see
 * them move; a partial packet at the end simply stays.  When the client
 * closes the socket, the write visit that reads EOF closes the stream
 * (hb_stream_close): every waiting worker is granted with the end mark
 * (hb_view_eof) and finishes.
 *
 * THE LOOP.  On each readiness of the socket (edge-triggered), the loop
 * casts one write visitor and polls it with an hb_fd_waker in the same
 * epoll set: if readers hold the buffer just then, epoll wakes the loop
 * when the writer's turn comes.  A write visit reads until EAGAIN, or
 * stops at a budget (the loop then polls a new one at once).  The stream
 * bounds the workers' lag (PP_LIMIT): a write visit that would pass it
 * completes with HB_ENOSPC, and the stream's room waker -- the same fd
 * waker -- says when to try again; meanwhile the bytes wait in the socket,
 * where TCP's flow control slows the client down.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#define PP_READ_CHUNK (64 * 1024)    /* bytes per read(), and reserve */
#define PP_VISIT_BUDGET (256 * 1024) /* bytes per write visit, at most */
#define PP_LIMIT (8u << 20)          /* most bytes the workers may lag */

struct pp_server;

struct pp_worker {
  struct pp_server *s;
  unsigned id;
  pthread_t thread;
  hb_consumer c; /* its position in the stream */
  hb_visitor v;
  uint64_t next;     /* packet index: all packets below it looked at */
  uint64_t verified; /* packets of its share that were intact */
  uint64_t bad;      /* packets of its share that were not */
  int finished;
};

struct pp_server {
  hb_buf *buf; /* the stream */
  int conn;    /* the accepted connection, non-blocking */
  hb_visitor writer;
  /* Below: written by write callbacks (on the loop thread), read by the
   * loop after the visit; no worker touches them. */
  int eof;      /* the stream ended (or failed) */
  int io_error; /* errno of a failed read, 0 if none */
  uint64_t bytes_in;
  int budget_hit; /* the last write visit left bytes in the socket */
  unsigned nworkers;
  struct pp_worker workers[PP_MAX_WORKERS];
};

/* ---- the loop side: write visitors -------------------------------------- */

/* Append what the socket has, up to a budget so readers get turns; close
 * the stream at EOF (its waiting readers then see the end). */
static int pp_writer_cb(hb_view *view, void *ctx) {
  struct pp_server *s = ctx;
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
    hb_stream_close(s->buf); /* these appends are the last bytes */
    break;
  }
  s->bytes_in += got;
  return 0;
}

/* ---- the workers: read visitors that wait for packets -------------------- */

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
  size_t n;
  const struct packet *p = HB_READ_ARRAY(view, struct packet, &n);
  uint64_t first = hb_view_offset(view) / sizeof(struct packet);
  pp_verify_share(p, first, first, first + n, w->id, w->s->nworkers,
                  &w->verified, &w->bad);
  w->next = first + n;
  hb_consumer_release(&w->c, w->next * sizeof(struct packet));
  if (hb_view_eof(view)) w->finished = 1; /* nothing follows this view */
  return 0;
}

static void *pp_worker_main(void *arg) {
  struct pp_worker *w = arg;
  while (!w->finished) {
    if (HB_CAST_CONSUMER(&w->v, &w->c, struct packet,
                         sizeof(struct packet)) != HB_OK ||
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
  /* Each hb_write_fd sends whole 32 KiB batches: no Nagle wait for the
   * last partial segment's ACK (a delayed ACK would idle every side). */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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
  size_t peak; /* most unreleased bytes the stream held at once */
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
  if (s->buf == NULL || hb_stream_open(s->buf, PP_LIMIT) != HB_OK ||
      hb_stream_room_waker(s->buf, hb_fd_waker_get(&waker)) != HB_OK)
    return pp_fail("hb_new");

  double t0 = pp_now();
  for (unsigned i = 0; i < nworkers; i++) {
    struct pp_worker *w = &s->workers[i];
    w->s = s;
    w->id = i;
    hb_consumer_add(s->buf, &w->c); /* before any byte: it sees them all */
    pthread_create(&w->thread, NULL, pp_worker_main, w);
  }
  struct pp_client client = {ntohs(a.sin_port), packets, 0};
  pthread_t ct;
  pthread_create(&ct, NULL, pp_client_main, &client);

  /* The loop: the socket's readiness, the writer's turn and the stream's
   * room, all via epoll.  `armed`: s->writer is cast and polled, waiting
   * for its turn (the fd waker will say). */
  int sock_ready = 0, armed = 0, poll_now = 0;
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
        hb_fd_waker_drain(&waker); /* the writer's turn, or room */
      } else {
        sock_ready = 1;
      }
    }
    if (!sock_ready) continue;
    poll_now = 0;
    if (!armed) {
      if (HB_CAST_MUT(&s->writer, s->buf, uint8_t) != HB_OK ||
          hb_visit(&s->writer, PP_READ_CHUNK, pp_writer_cb, s) != HB_OK)
        return pp_fail("hb_cast_mut");
      armed = 1;
    }
    int result = 0;
    int st = hb_poll(&s->writer, hb_fd_waker_get(&waker), &result);
    if (st == HB_PENDING) continue; /* the waker fires when its turn comes */
    if (st != HB_OK) return pp_fail("hb_poll");
    armed = 0;
    /* Full (the workers lag by PP_LIMIT): the room waker fires when they
     * have caught up halfway; the bytes wait in the socket meanwhile. */
    if (result == HB_ENOSPC) continue;
    /* If it read until EAGAIN, wait for the next edge; if it stopped at
     * its budget, more is there: poll a new writer straight away. */
    sock_ready = poll_now = s->budget_hit;
  }

  pthread_join(ct, NULL);
  for (unsigned i = 0; i < nworkers; i++) {
    pthread_join(s->workers[i].thread, NULL);
    r->verified += s->workers[i].verified;
    r->bad += s->workers[i].bad;
  }
  r->seconds = pp_now() - t0;

  hb_stream_info in;
  hb_stream_info_get(s->buf, &in);
  r->sent = client.error ? 0 : packets;
  r->received = in.end / sizeof(struct packet);
  r->bytes = s->bytes_in;
  r->drained = in.begin / sizeof(struct packet);
  r->peak = in.peak;
  r->ok = client.error == 0 && s->io_error == 0 && r->bad == 0 &&
          in.end % sizeof(struct packet) == 0 && r->received == packets &&
          r->verified == packets &&
          r->bytes == packets * sizeof(struct packet);

  for (unsigned i = 0; i < nworkers; i++)
    hb_consumer_remove(&s->workers[i].c);
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
  printf("packet_pipeline: %" PRIu64
         " bytes in %.3f s: %.0f packets/s, "
         "%.1f MB/s (%" PRIu64
         " packets dropped once every worker released"
         " them; at most %zu bytes held)\n",
         r.bytes, r.seconds, (double)r.received / r.seconds, mb / r.seconds,
         r.drained, r.peak);
  printf("packet_pipeline: %s\n",
         r.ok ? "every packet arrived intact and in order"
              : "FAILED: packets lost, damaged or out of order");
  return r.ok ? 0 : 1;
}
#endif
