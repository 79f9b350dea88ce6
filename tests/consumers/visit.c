/*
 * visit.c -- a consumer of an installed hyperbuf: visitor mode across two
 * threads, built by scripts/consumers.sh with -std=c11 -pedantic.
 * A write ticket is taken first and driven on a second thread; the read
 * ticket behind it parks in hb_block_on until the writer has run, then
 * sees what it appended.
 */
#include <hyperbuf.h>

#include <pthread.h>
#include <stdio.h>

typedef struct {
  uint32_t seq, len;
} packet;

static int append_three(hb_view *w, void *ctx) {
  (void)ctx;
  for (uint32_t i = 1; i <= 3; i++) {
    packet p = {i, 10 * i};
    if (hb_view_append(w, &p) != HB_OK) return -1;
  }
  return 0;
}

static int last_seq(hb_view *r, void *ctx) {
  size_t n;
  const packet *p = HB_READ_ARRAY(r, packet, &n);
  *(size_t *)ctx = n;
  return n > 0 ? (int)p[n - 1].seq : -1;
}

static void *drive(void *arg) {
  static int rc;
  int result = 0;
  rc = hb_block_on(arg, &result);
  return &rc;
}

int main(void) {
  hb_buf *b = hb_new(0);
  if (b == NULL) return 1;
  hb_visitor w = HB_VISITOR_INIT, r = HB_VISITOR_INIT;
  size_t n = 0;
  int last = 0;
  if (HB_CAST_MUT(&w, b, packet) != HB_OK || HB_CAST(&r, b, packet) != HB_OK ||
      hb_visit(&w, 3 * sizeof(packet), append_three, NULL) != HB_OK ||
      hb_visit(&r, 0, last_seq, &n) != HB_OK)
    return 2;
  pthread_t t;
  if (pthread_create(&t, NULL, drive, &w) != 0) return 3;
  int rc = hb_block_on(&r, &last);
  void *wrc;
  pthread_join(t, &wrc);
  if (rc != HB_OK || *(int *)wrc != HB_OK || n != 3 || last != 3) {
    fprintf(stderr, "visit: rc %d, writer %d, n %zu, last %d\n", rc,
            *(int *)wrc, n, last);
    return 4;
  }
  printf("visit: the reader saw %zu packets, the last seq %d\n", n, last);
  return hb_free(b) == HB_OK ? 0 : 5;
}
