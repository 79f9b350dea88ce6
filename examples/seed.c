/*
 * seed.c -- the original HyperBuf example, as DESIGN.md tells it.
 *
 * Three Txx structs are wrapped in a buffer and two tickets are taken up
 * front, in order: a write ticket cast as Txx, then a read ticket cast as
 * uint8_t.  Thread A arms the writer, which grows the array by one element
 * and then by all three originals (4 Txx were reserved, so nothing moves).
 * Thread B starts 100 ms later and arms the reader.  Whichever thread comes
 * first, the reader runs after the writer and sees all 7 elements.
 */
#include <hyperbuf.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
  uint64_t id;
  uint32_t flags;
  uint8_t tag;
} Txx;

static Txx txx(uint64_t id) {
  return (Txx){.id = id, .flags = (uint32_t)id * 2u, .tag = (uint8_t)id};
}

static int grow(hb_view *w, void *items) { /* do not block in here */
  size_t n;
  Txx *objs = HB_WRITE_ARRAY(w, Txx, &n);
  printf("writer: sees %zu Txx (first id %llu)\n", n,
         (unsigned long long)objs[0].id);
  if (hb_view_append(w, &(Txx){.id = 100}) != HB_OK) return -1;
  if (hb_view_append_all(w, items, 3) != HB_OK) return -1;
  objs = HB_WRITE_ARRAY(w, Txx, &n); /* fetch again after appending */
  printf("writer: now %zu Txx, %zu bytes appended, ids:", n,
         hb_view_bytes_written(w));
  for (size_t i = 0; i < n; i++) printf(" %llu", (unsigned long long)objs[i].id);
  printf("\n");
  return 0; /* commit */
}

static int show_first_byte(hb_view *r, void *ctx) {
  (void)ctx;
  size_t n;
  const uint8_t *bytes = HB_READ_ARRAY(r, uint8_t, &n);
  printf("reader: sees %zu bytes (%zu Txx); first byte 0x%02x\n", n,
         n / sizeof(Txx), bytes[0]);
  return bytes[0];
}

typedef struct {
  hb_visitor *v;
  size_t reserve;
  hb_visit_fn fn;
  void *ctx;
  int delay_ms, status, result;
} driver;

static void *drive(void *arg) {
  driver *d = arg;
  struct timespec ts = {0, (long)d->delay_ms * 1000000L};
  nanosleep(&ts, NULL);
  d->status = hb_visit(d->v, d->reserve, d->fn, d->ctx);
  if (d->status == HB_OK) d->status = hb_block_on(d->v, &d->result);
  return NULL;
}

int main(void) {
  Txx items[] = {txx(0), txx(1), txx(10)};
  hb_buf *buf = HB_WRAP(items);
  if (buf == NULL) return 1;

  hb_visitor writer = HB_VISITOR_INIT, reader = HB_VISITOR_INIT;
  if (HB_CAST_MUT(&writer, buf, Txx) != HB_OK) return 1; /* ticket 0 */
  if (HB_CAST(&reader, buf, uint8_t) != HB_OK) return 1; /* ticket 1 */

  driver a = {&writer, 4 * sizeof(Txx), grow, items, 0, 0, 0};
  driver b = {&reader, 0, show_first_byte, NULL, 100, 0, 0};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, drive, &a);
  pthread_create(&tb, NULL, drive, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);

  printf("writer: %s, callback returned %d\n", hb_strerror(a.status), a.result);
  printf("reader: %s, callback returned %d\n", hb_strerror(b.status), b.result);
  printf("buffer: %zu bytes = %zu Txx of %zu bytes\n", hb_len(buf),
         hb_len(buf) / sizeof(Txx), sizeof(Txx));
  int ok = a.status == HB_OK && b.status == HB_OK &&
           hb_len(buf) == 7 * sizeof(Txx);
  if (hb_free(buf) != HB_OK) return 1;
  return ok ? 0 : 1;
}
