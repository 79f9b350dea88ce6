/*
 * bench_pipeline.c -- the packet pipeline of examples/packet_pipeline.c
 * (TCP on 127.0.0.1, an epoll loop appending socket bytes, worker threads
 * verifying struct packets) with HyperBuf visitors, next to the same
 * pipeline written the plain way: a realloc'd buffer behind a pthread
 * mutex, workers waiting on a condition variable.  Same client, same wire
 * format, same verification, same release rule, same run.  And the limit
 * (issue 12): the same loopback TCP stream read by one thread, with
 * blocking read()s into a plain array, every packet verified by that
 * thread; nothing shared, no hand-off.  A pipeline that hands the bytes to
 * other threads can approach it, not beat it (this machine has 2 cores
 * for the client, the loop and the workers alike).
 *
 * Prints bench.h's CSV lines (workload W6-pipeline, unit ns/packet; lower
 * is better) on stdout and packets/s, MB/s and the ratio on stderr.
 * Environment: HB_BENCH_PIPELINE_PACKETS (default 1000000),
 *              HB_BENCH_PIPELINE_WORKERS (default 2),
 *              HB_BENCH_PIPELINE_ONLY (one implementation alone, for perf).
 */
#define PP_NO_MAIN 1
#include "../examples/packet_pipeline.c"

#include "bench.h"

/* ---- the plain version: mutex + realloc + condition variable ------------ */

struct mx_worker {
  struct mx_server *s;
  unsigned id;
  pthread_t thread;
  uint64_t next, verified, bad;
};

struct mx_server {
  pthread_mutex_t mu;
  pthread_cond_t more; /* signalled when bytes were appended or at EOF */
  uint8_t *data;       /* realloc'd; all below under mu */
  size_t len, cap;
  uint64_t base;       /* absolute index of the packet at data[0] */
  int eof, io_error;
  uint64_t bytes_in;
  int conn;
  unsigned nworkers;
  struct mx_worker workers[PP_MAX_WORKERS];
};

/* Under mu: drop what every worker passed, then read what the socket has
 * (up to the same budget as the HyperBuf writer). */
static int mx_fill(struct mx_server *s) {
  uint64_t low = UINT64_MAX;
  for (unsigned i = 0; i < s->nworkers; i++)
    if (s->workers[i].next < low) low = s->workers[i].next;
  if (low > s->base) {
    size_t drop = (size_t)(low - s->base) * sizeof(struct packet);
    memmove(s->data, s->data + drop, s->len - drop);
    s->len -= drop;
    s->base = low;
  }
  size_t got = 0;
  for (;;) {
    if (s->cap - s->len < PP_READ_CHUNK) {
      size_t cap = s->cap * 2 > s->len + PP_READ_CHUNK ? s->cap * 2
                                                       : s->len + PP_READ_CHUNK;
      uint8_t *d = realloc(s->data, cap);
      if (d == NULL) {
        s->eof = 1;
        s->io_error = ENOMEM;
        break;
      }
      s->data = d;
      s->cap = cap;
    }
    ssize_t n = read(s->conn, s->data + s->len, PP_READ_CHUNK);
    if (n > 0) {
      s->len += (size_t)n;
      got += (size_t)n;
      if (got >= PP_VISIT_BUDGET) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    s->eof = 1;
    if (n < 0) s->io_error = errno;
    break;
  }
  s->bytes_in += got;
  return got > 0 || s->eof;
}

static void *mx_worker_main(void *arg) {
  struct mx_worker *w = arg;
  struct mx_server *s = w->s;
  uint64_t k = s->nworkers;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    uint64_t end = s->base + s->len / sizeof(struct packet);
    while (end <= w->next && !s->eof) {
      pthread_cond_wait(&s->more, &s->mu);
      end = s->base + s->len / sizeof(struct packet);
    }
    /* Verify under the lock: the loop may realloc or move the bytes. */
    pp_verify_share((const struct packet *)(void *)s->data, s->base, w->next,
                    end, w->id, k, &w->verified, &w->bad);
    w->next = end;
    if (s->eof) break;
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static int mx_run(uint64_t packets, unsigned nworkers, struct pp_result *r) {
  memset(r, 0, sizeof *r);
  struct mx_server *s = calloc(1, sizeof *s);
  if (s == NULL) return -1;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->more, NULL);
  s->cap = 1 << 20;
  s->data = malloc(s->cap);
  s->nworkers = nworkers;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (s->data == NULL || lfd < 0 ||
      bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1) != 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
    return pp_fail("listen");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

  double t0 = pp_now();
  for (unsigned i = 0; i < nworkers; i++) {
    s->workers[i].s = s;
    s->workers[i].id = i;
    pthread_create(&s->workers[i].thread, NULL, mx_worker_main, &s->workers[i]);
  }
  struct pp_client client = {ntohs(a.sin_port), packets, 0};
  pthread_t ct;
  pthread_create(&ct, NULL, pp_client_main, &client);

  int eof = 0;
  while (!eof) {
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return pp_fail("epoll_wait");
    for (int i = 0; i < n; i++) {
      if (evs[i].data.fd == lfd) {
        s->conn = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s->conn < 0) return pp_fail("accept");
        epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
        struct epoll_event ce = {.events = EPOLLIN, .data.fd = s->conn};
        epoll_ctl(ep, EPOLL_CTL_ADD, s->conn, &ce);
        continue;
      }
      pthread_mutex_lock(&s->mu);
      int woke = mx_fill(s);
      eof = s->eof;
      pthread_mutex_unlock(&s->mu);
      if (woke) pthread_cond_broadcast(&s->more);
    }
  }

  pthread_join(ct, NULL);
  for (unsigned i = 0; i < nworkers; i++) {
    pthread_join(s->workers[i].thread, NULL);
    r->verified += s->workers[i].verified;
    r->bad += s->workers[i].bad;
  }
  r->seconds = pp_now() - t0;
  r->sent = client.error ? 0 : packets;
  r->received = s->base + s->len / sizeof(struct packet);
  r->bytes = s->bytes_in;
  r->ok = client.error == 0 && s->io_error == 0 && r->bad == 0 &&
          r->verified == packets && r->received == packets &&
          s->len % sizeof(struct packet) == 0;
  close(ep);
  close(lfd);
  close(s->conn);
  free(s->data);
  pthread_cond_destroy(&s->more);
  pthread_mutex_destroy(&s->mu);
  free(s);
  return 0;
}

/* ---- the limit: one thread reads and verifies, nothing shared ----------- */

#define LIM_ARRAY (256 * 1024) /* the plain array read() fills */

static int lim_run(uint64_t packets, struct pp_result *r) {
  memset(r, 0, sizeof *r);
  uint8_t *a = malloc(LIM_ARRAY);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof sa;
  if (a == NULL || lfd < 0 ||
      bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(lfd, 1) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &alen) != 0)
    return pp_fail("listen");

  double t0 = pp_now();
  struct pp_client client = {ntohs(sa.sin_port), packets, 0};
  pthread_t ct;
  pthread_create(&ct, NULL, pp_client_main, &client);
  int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC); /* blocking reads */
  if (conn < 0) return pp_fail("accept");
  size_t have = 0; /* bytes in a[]: a partial packet carried over */
  uint64_t next = 0;
  for (;;) {
    ssize_t n = read(conn, a + have, LIM_ARRAY - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) r->bad++;
      break;
    }
    r->bytes += (uint64_t)n;
    have += (size_t)n;
    size_t whole = have / sizeof(struct packet);
    /* Every packet, by this one thread: pp_verify_share with one share. */
    pp_verify_share((const struct packet *)(void *)a, next, next,
                    next + whole, 0, 1, &r->verified, &r->bad);
    next += whole;
    have -= whole * sizeof(struct packet);
    memmove(a, a + whole * sizeof(struct packet), have);
  }
  pthread_join(ct, NULL);
  r->seconds = pp_now() - t0;
  r->sent = client.error ? 0 : packets;
  r->received = next;
  r->ok = client.error == 0 && r->bad == 0 && have == 0 &&
          r->verified == packets && r->received == packets;
  close(conn);
  close(lfd);
  free(a);
  return 0;
}

/* ---- the run ------------------------------------------------------------ */

static uint64_t env_u64(const char *name, uint64_t dflt) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? strtoull(v, NULL, 10) : dflt;
}

/* hyperbuf: 1 the example's pipeline, 0 mutex + condvar, 2 the limit. */
static int measure(const char *impl, int hyperbuf, uint64_t packets,
                   unsigned workers, struct pp_result *r) {
  /* HB_BENCH_PIPELINE_ONLY=impl runs that one alone (for perf). */
  const char *only = getenv("HB_BENCH_PIPELINE_ONLY");
  if (only != NULL && *only != '\0' && strcmp(only, impl) != 0) {
    memset(r, 0, sizeof *r);
    r->seconds = 1;
    return 0;
  }
  int rc = hyperbuf == 1   ? pp_run(packets, workers, 0, r)
           : hyperbuf == 0 ? mx_run(packets, workers, r)
                           : lim_run(packets, r);
  if (rc != 0 || !r->ok) {
    fprintf(stderr, "bench_pipeline: %s: FAILED (%" PRIu64 " of %" PRIu64
                    " verified, %" PRIu64 " bad)\n",
            impl, r->verified, packets, r->bad);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (!bench_want(argc, argv, "W6-pipeline")) return 0;
  uint64_t packets = env_u64("HB_BENCH_PIPELINE_PACKETS", 1000000);
  unsigned workers = (unsigned)env_u64("HB_BENCH_PIPELINE_WORKERS", 2);
  if (packets == 0 || packets > UINT32_MAX) packets = 1000000;
  if (workers < 1 || workers > PP_MAX_WORKERS) workers = 2;

  struct pp_result hb, mx, lim;
  /* Warm-up: one short run of each (threads, sockets, page faults). */
  if (measure("hyperbuf", 1, packets / 10 + 1, workers, &hb) != 0 ||
      measure("mutex-condvar", 0, packets / 10 + 1, workers, &mx) != 0 ||
      measure("limit", 2, packets / 10 + 1, workers, &lim) != 0)
    return 1;
  if (measure("hyperbuf", 1, packets, workers, &hb) != 0 ||
      measure("mutex-condvar", 0, packets, workers, &mx) != 0 ||
      measure("limit", 2, packets, workers, &lim) != 0)
    return 1;

  bench_print("W6-pipeline", "hyperbuf", "ns/packet",
              hb.seconds * 1e9 / (double)packets, hb.verified);
  bench_print("W6-pipeline", "mutex-condvar", "ns/packet",
              mx.seconds * 1e9 / (double)packets, mx.verified);
  bench_print("W6-pipeline", "limit", "ns/packet",
              lim.seconds * 1e9 / (double)packets, lim.verified);
  double hb_pps = (double)packets / hb.seconds;
  double mx_pps = (double)packets / mx.seconds;
  double lim_pps = (double)packets / lim.seconds;
  fprintf(stderr,
          "W6-pipeline  %" PRIu64 " packets x %zu B, %u workers, TCP 127.0.0.1\n"
          "  hyperbuf       %10.0f packets/s  %7.1f MB/s\n"
          "  mutex-condvar  %10.0f packets/s  %7.1f MB/s\n"
          "  limit          %10.0f packets/s  %7.1f MB/s  (1 thread, nothing shared)\n"
          "  ratio hyperbuf/mutex-condvar throughput: %.2f\n"
          "  ratio hyperbuf/limit throughput: %.2f; mutex-condvar/limit: %.2f\n",
          packets, sizeof(struct packet), workers, hb_pps,
          (double)hb.bytes / hb.seconds / 1e6, mx_pps,
          (double)mx.bytes / mx.seconds / 1e6, lim_pps,
          (double)lim.bytes / lim.seconds / 1e6, hb_pps / mx_pps,
          hb_pps / lim_pps, mx_pps / lim_pps);
  return 0;
}
