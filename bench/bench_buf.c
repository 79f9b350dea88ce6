/*
 * bench_buf.c -- W1..W3, the byte-buffer workloads, for HyperBuf and its C
 * peers: a hand-written realloc-doubling array (the limit, not a peer),
 * Redis sds (hiredis), GLib GByteArray and libevent evbuffer.
 * C++ std::vector is in bench_vector.cc, Rust in bench/rust.
 *
 *   W1 original  create with capacity 120, write 13 bytes by index, free.
 *                ns per iteration, allocation included.
 *   W2 put_u8    append 1 MiB one byte at a time, from an empty buffer
 *                (W2-empty) and with the capacity reserved first
 *                (W2-reserved).  ns per byte, creation and free included.
 *   W3 packets   append 64 KiB as 64-byte chunks, then consume them in
 *                64-byte pieces; the consumed bytes are then dropped (or
 *                the buffer cleared), as the implementation does it.
 *                ns per packet (one append + one consume).
 *
 * Each workload also runs written the other way (issue 14), so that no
 * figure depends on one harness's loop shape or allocation pattern:
 *
 *   W1-live      the same work four buffers at a time: four made and
 *                written, then the four freed (a batch of messages), and
 *                every write indexes through the accessor (hb_data(b)[j],
 *                v[j]) instead of a pointer hoisted out of the loop.
 *   W2-src       append 1 MiB one byte at a time from a source array, from
 *                empty, the puts' errors OR-ed together and checked once
 *                at the end instead of one branch per byte.
 *   W3-fresh     a fresh buffer per unit (growth included, then freed), the
 *                packets consumed in place (through the data pointer, then
 *                advancing the read position) instead of copied out.
 *
 * Each implementation uses its own fastest idiomatic API; see each unit.
 * Usage: bench_buf [workload-prefix...]   (prints CSV; see bench.h)
 */
#include "bench.h"

#include <event2/buffer.h>
#include <glib.h>
#include <hiredis/sds.h>
#include <hyperbuf.h>

#define W1_BATCH 1024
#define W2_BYTES (1u << 20)
#define W3_PACKETS 1024
#define PKT 64

#define NOINLINE __attribute__((noinline))
#define CHECK(x)                                                             \
  do {                                                                       \
    if (!(x)) {                                                              \
      fprintf(stderr, "bench_buf: %s failed at line %d\n", #x, __LINE__);    \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* ======================================================================== */
/*  The hand-written array: what a careful C programmer writes by hand       */
/* ======================================================================== */

typedef struct {
  uint8_t *data;
  size_t len, cap;
} arr;

/* Cold: double (at least 64, at least `need`). */
static NOINLINE int arr_grow(arr *a, size_t need) {
  size_t cap = a->cap ? a->cap * 2 : 64;
  while (cap < need) cap *= 2;
  void *p = realloc(a->data, cap);
  if (p == NULL) return -1;
  a->data = p;
  a->cap = cap;
  return 0;
}

static inline int arr_put(arr *a, const void *src, size_t n) {
  if (a->cap - a->len < n && arr_grow(a, a->len + n) != 0) return -1;
  memcpy(a->data + a->len, src, n);
  a->len += n;
  return 0;
}

/* ---- W1 ---- */

static uint64_t w1_hb(void *ctx, uint64_t it) {
  (void)ctx;
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k++) {
    hb_buf *b = hb_new(120);
    CHECK(b != NULL);
    uint8_t *d = hb_data(b);
    for (unsigned j = 0; j < 13; j++) d[j] = (uint8_t)(it + k + j);
    bench_escape(d);
    sum += d[k % 13];
    hb_free(b);
  }
  return sum;
}

static uint64_t w1_arr(void *ctx, uint64_t it) {
  (void)ctx;
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k++) {
    arr a = {malloc(120), 0, 120};
    CHECK(a.data != NULL);
    for (unsigned j = 0; j < 13; j++) a.data[j] = (uint8_t)(it + k + j);
    bench_escape(a.data);
    sum += a.data[k % 13];
    free(a.data);
  }
  return sum;
}

/* sds has no "capacity without length" constructor in hiredis 0.14:
 * sdsnewlen(NULL, 120) is a zeroed 120-byte string, written by index. */
static uint64_t w1_sds(void *ctx, uint64_t it) {
  (void)ctx;
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k++) {
    sds s = sdsnewlen(NULL, 120);
    CHECK(s != NULL);
    for (unsigned j = 0; j < 13; j++) s[j] = (char)(uint8_t)(it + k + j);
    bench_escape(s);
    sum += (uint8_t)s[k % 13];
    sdsfree(s);
  }
  return sum;
}

static uint64_t w1_garray(void *ctx, uint64_t it) {
  (void)ctx;
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k++) {
    GByteArray *a = g_byte_array_sized_new(120);
    g_byte_array_set_size(a, 13); /* no clearing: GByteArray's default */
    for (unsigned j = 0; j < 13; j++) a->data[j] = (uint8_t)(it + k + j);
    bench_escape(a->data);
    sum += a->data[k % 13];
    g_byte_array_free(a, TRUE);
  }
  return sum;
}

/* evbuffer: the capacity with evbuffer_expand, the bytes written in place
 * through evbuffer_reserve_space / evbuffer_commit_space. */
static uint64_t w1_evbuffer(void *ctx, uint64_t it) {
  (void)ctx;
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k++) {
    struct evbuffer *e = evbuffer_new();
    CHECK(e != NULL && evbuffer_expand(e, 120) == 0);
    struct evbuffer_iovec v;
    CHECK(evbuffer_reserve_space(e, 13, &v, 1) == 1);
    uint8_t *d = v.iov_base;
    for (unsigned j = 0; j < 13; j++) d[j] = (uint8_t)(it + k + j);
    v.iov_len = 13;
    CHECK(evbuffer_commit_space(e, &v, 1) == 0);
    bench_escape(d);
    sum += d[k % 13];
    evbuffer_free(e);
  }
  return sum;
}

/* ---- W1-live ----
 * Four at a time: four buffers made and written, then the four freed (a
 * batch of messages), so up to three others are alive at every create and
 * every free.  Every write indexes through the accessor. */
#define W1_LIVE 4

static uint64_t w1l_hb(void *ctx, uint64_t it) {
  (void)ctx;
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k += W1_LIVE) {
    hb_buf *bs[W1_LIVE];
    for (unsigned i = 0; i < W1_LIVE; i++) {
      hb_buf *b = bs[i] = hb_new(120);
      CHECK(b != NULL);
      for (unsigned j = 0; j < 13; j++)
        hb_data(b)[j] = (uint8_t)(it + k + i + j);
      bench_escape(hb_data(b));
      sum += hb_data(b)[(k + i) % 13];
    }
    for (unsigned i = 0; i < W1_LIVE; i++) hb_free(bs[i]);
  }
  return sum;
}

static uint64_t w1l_arr(void *ctx, uint64_t it) {
  (void)ctx;
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k += W1_LIVE) {
    arr as[W1_LIVE];
    for (unsigned i = 0; i < W1_LIVE; i++) {
      arr a = {malloc(120), 0, 120};
      CHECK(a.data != NULL);
      for (unsigned j = 0; j < 13; j++) a.data[j] = (uint8_t)(it + k + i + j);
      bench_escape(a.data);
      sum += a.data[(k + i) % 13];
      as[i] = a;
    }
    for (unsigned i = 0; i < W1_LIVE; i++) free(as[i].data);
  }
  return sum;
}

static uint64_t w1l_sds(void *ctx, uint64_t it) {
  (void)ctx;
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k += W1_LIVE) {
    sds ss[W1_LIVE];
    for (unsigned i = 0; i < W1_LIVE; i++) {
      sds s = ss[i] = sdsnewlen(NULL, 120);
      CHECK(s != NULL);
      for (unsigned j = 0; j < 13; j++)
        s[j] = (char)(uint8_t)(it + k + i + j);
      bench_escape(s);
      sum += (uint8_t)s[(k + i) % 13];
    }
    for (unsigned i = 0; i < W1_LIVE; i++) sdsfree(ss[i]);
  }
  return sum;
}

static uint64_t w1l_garray(void *ctx, uint64_t it) {
  (void)ctx;
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k += W1_LIVE) {
    GByteArray *as[W1_LIVE];
    for (unsigned i = 0; i < W1_LIVE; i++) {
      GByteArray *a = as[i] = g_byte_array_sized_new(120);
      g_byte_array_set_size(a, 13);
      for (unsigned j = 0; j < 13; j++)
        a->data[j] = (uint8_t)(it + k + i + j);
      bench_escape(a->data);
      sum += a->data[(k + i) % 13];
    }
    for (unsigned i = 0; i < W1_LIVE; i++) g_byte_array_free(as[i], TRUE);
  }
  return sum;
}

static uint64_t w1l_evbuffer(void *ctx, uint64_t it) {
  (void)ctx;
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k += W1_LIVE) {
    struct evbuffer *es[W1_LIVE];
    for (unsigned i = 0; i < W1_LIVE; i++) {
      struct evbuffer *e = es[i] = evbuffer_new();
      CHECK(e != NULL && evbuffer_expand(e, 120) == 0);
      struct evbuffer_iovec v;
      CHECK(evbuffer_reserve_space(e, 13, &v, 1) == 1);
      for (unsigned j = 0; j < 13; j++)
        ((uint8_t *)v.iov_base)[j] = (uint8_t)(it + k + i + j);
      v.iov_len = 13;
      CHECK(evbuffer_commit_space(e, &v, 1) == 0);
      bench_escape(v.iov_base);
      sum += ((uint8_t *)v.iov_base)[(k + i) % 13];
    }
    for (unsigned i = 0; i < W1_LIVE; i++) evbuffer_free(es[i]);
  }
  return sum;
}

/* ---- W2 ---- */

static uint64_t w2_hb(void *ctx, uint64_t it) {
  int reserve = *(int *)ctx;
  hb_buf *b = hb_new(0);
  CHECK(b != NULL);
  if (reserve) CHECK(hb_reserve(b, W2_BYTES) == HB_OK);
  for (uint32_t i = 0; i < W2_BYTES; i++)
    if (hb_put_u8(b, (uint8_t)(i + it)) != HB_OK) abort();
  bench_escape(hb_data(b));
  uint64_t sum = hb_len(b) + hb_data(b)[it % W2_BYTES];
  hb_free(b);
  return sum;
}

/* The writer session (issue 14): position and end in locals, the length
 * stored once, at the commit. */
static uint64_t w2_hbw(void *ctx, uint64_t it) {
  int reserve = *(int *)ctx;
  hb_buf *b = hb_new(0);
  CHECK(b != NULL);
  if (reserve) CHECK(hb_reserve(b, W2_BYTES) == HB_OK);
  hb_writer w;
  hb_writer_begin(&w, b);
  for (uint32_t i = 0; i < W2_BYTES; i++)
    if (hb_writer_put_u8(&w, (uint8_t)(i + it)) != HB_OK) abort();
  hb_writer_commit(&w);
  bench_escape(hb_data(b));
  uint64_t sum = hb_len(b) + hb_data(b)[it % W2_BYTES];
  hb_free(b);
  return sum;
}

/* The limit: the loop keeps data/len/cap in locals, so the byte store
 * cannot make the compiler reload them. */
static uint64_t w2_arr(void *ctx, uint64_t it) {
  int reserve = *(int *)ctx;
  arr a = {NULL, 0, 0};
  if (reserve) CHECK(arr_grow(&a, W2_BYTES) == 0);
  uint8_t *d = a.data;
  size_t len = a.len, cap = a.cap;
  for (uint32_t i = 0; i < W2_BYTES; i++) {
    if (len == cap) {
      a.len = len;
      if (arr_grow(&a, len + 1) != 0) abort();
      d = a.data;
      cap = a.cap;
    }
    d[len++] = (uint8_t)(i + it);
  }
  a.len = len;
  bench_escape(a.data);
  uint64_t sum = a.len + a.data[it % W2_BYTES];
  free(a.data);
  return sum;
}

/* sds: the fast path its header offers (sdsavail/sdslen/sdsinclen are
 * inline), sdsMakeRoomFor when full -- what sds documents for appends
 * into spare room.  sdscatlen(s, &c, 1) per byte is ~4x slower. */
static uint64_t w2_sds(void *ctx, uint64_t it) {
  int reserve = *(int *)ctx;
  sds s = sdsempty();
  CHECK(s != NULL);
  if (reserve) CHECK((s = sdsMakeRoomFor(s, W2_BYTES)) != NULL);
  for (uint32_t i = 0; i < W2_BYTES; i++) {
    if (sdsavail(s) == 0 && (s = sdsMakeRoomFor(s, 1)) == NULL) abort();
    s[sdslen(s)] = (char)(uint8_t)(i + it);
    sdsinclen(s, 1);
  }
  bench_escape(s);
  uint64_t sum = sdslen(s) + (uint8_t)s[it % W2_BYTES];
  sdsfree(s);
  return sum;
}

static uint64_t w2_garray(void *ctx, uint64_t it) {
  int reserve = *(int *)ctx;
  GByteArray *a =
      reserve ? g_byte_array_sized_new(W2_BYTES) : g_byte_array_new();
  for (uint32_t i = 0; i < W2_BYTES; i++) {
    uint8_t c = (uint8_t)(i + it);
    g_byte_array_append(a, &c, 1);
  }
  bench_escape(a->data);
  uint64_t sum = a->len + a->data[it % W2_BYTES];
  g_byte_array_free(a, TRUE);
  return sum;
}

static uint64_t w2_evbuffer(void *ctx, uint64_t it) {
  int reserve = *(int *)ctx;
  struct evbuffer *e = evbuffer_new();
  CHECK(e != NULL);
  if (reserve) CHECK(evbuffer_expand(e, W2_BYTES) == 0);
  for (uint32_t i = 0; i < W2_BYTES; i++) {
    uint8_t c = (uint8_t)(i + it);
    if (evbuffer_add(e, &c, 1) != 0) abort();
  }
  uint64_t sum = evbuffer_get_length(e);
  uint8_t c;
  CHECK(evbuffer_copyout(e, &c, 1) == 1); /* the first byte */
  sum += c;
  evbuffer_free(e);
  return sum;
}

/* ---- W2-src ----
 * The bytes come from a source array (as an encoder's input would), the
 * buffer starts empty, and the puts' errors are OR-ed and checked once. */
static uint8_t w2_src[W2_BYTES];

static uint64_t w2s_hb(void *ctx, uint64_t it) {
  (void)ctx;
  hb_buf *b = hb_new(0);
  CHECK(b != NULL);
  int rc = 0;
  for (uint32_t i = 0; i < W2_BYTES; i++) rc |= hb_put_u8(b, w2_src[i]);
  CHECK(rc == HB_OK);
  bench_escape(hb_data(b));
  uint64_t sum = hb_len(b) + hb_data(b)[it % W2_BYTES];
  hb_free(b);
  return sum;
}

static uint64_t w2s_hbw(void *ctx, uint64_t it) {
  (void)ctx;
  hb_buf *b = hb_new(0);
  CHECK(b != NULL);
  hb_writer w;
  hb_writer_begin(&w, b);
  int rc = 0;
  for (uint32_t i = 0; i < W2_BYTES; i++)
    rc |= hb_writer_put_u8(&w, w2_src[i]);
  CHECK(rc == HB_OK);
  hb_writer_commit(&w);
  bench_escape(hb_data(b));
  uint64_t sum = hb_len(b) + hb_data(b)[it % W2_BYTES];
  hb_free(b);
  return sum;
}

static uint64_t w2s_arr(void *ctx, uint64_t it) {
  (void)ctx;
  arr a = {NULL, 0, 0};
  uint8_t *d = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;
  for (uint32_t i = 0; i < W2_BYTES; i++) {
    if (len == cap) {
      a.len = len;
      if (arr_grow(&a, len + 1) != 0) {
        rc = -1;
        continue;
      }
      d = a.data;
      cap = a.cap;
    }
    d[len++] = w2_src[i];
  }
  CHECK(rc == 0);
  a.len = len;
  bench_escape(a.data);
  uint64_t sum = a.len + a.data[it % W2_BYTES];
  free(a.data);
  return sum;
}

static uint64_t w2s_sds(void *ctx, uint64_t it) {
  (void)ctx;
  sds s = sdsempty();
  CHECK(s != NULL);
  for (uint32_t i = 0; i < W2_BYTES; i++) {
    if (sdsavail(s) == 0 && (s = sdsMakeRoomFor(s, 1)) == NULL) abort();
    s[sdslen(s)] = (char)w2_src[i];
    sdsinclen(s, 1);
  }
  bench_escape(s);
  uint64_t sum = sdslen(s) + (uint8_t)s[it % W2_BYTES];
  sdsfree(s);
  return sum;
}

static uint64_t w2s_garray(void *ctx, uint64_t it) {
  (void)ctx;
  GByteArray *a = g_byte_array_new();
  for (uint32_t i = 0; i < W2_BYTES; i++)
    g_byte_array_append(a, &w2_src[i], 1);
  bench_escape(a->data);
  uint64_t sum = a->len + a->data[it % W2_BYTES];
  g_byte_array_free(a, TRUE);
  return sum;
}

static uint64_t w2s_evbuffer(void *ctx, uint64_t it) {
  (void)ctx;
  struct evbuffer *e = evbuffer_new();
  CHECK(e != NULL);
  int rc = 0;
  for (uint32_t i = 0; i < W2_BYTES; i++) rc |= evbuffer_add(e, &w2_src[i], 1);
  CHECK(rc == 0);
  uint64_t sum = evbuffer_get_length(e) + it;
  evbuffer_free(e);
  return sum;
}

/* ---- W3 ----
 * One buffer per figure, reused: each unit appends 1024 packets, consumes
 * them, and drops what was consumed; growth happens in the warm-up.  The
 * packets are copied from a 64 KiB source of distinct bytes (writing a byte
 * into one reused packet before each append would measure a store-to-load
 * forwarding stall, not the buffer). */
static uint8_t w3_src[W3_PACKETS][PKT];

static uint64_t w3_hb(void *ctx, uint64_t it) {
  hb_buf *b = ctx;
  uint8_t out[PKT];
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (hb_put(b, w3_src[k], PKT) != HB_OK) abort();
  }
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (hb_get(b, out, PKT) != HB_OK) abort();
    bench_escape(out);
    sum += (uint64_t)out[0] + out[PKT - 1];
  }
  hb_compact(b);
  return sum;
}

static uint64_t w3_arr(void *ctx, uint64_t it) {
  arr *a = ctx;
  uint8_t out[PKT];
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (arr_put(a, w3_src[k], PKT) != 0) abort();
  }
  size_t off = 0;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (a->len - off < PKT) abort();
    memcpy(out, a->data + off, PKT);
    off += PKT;
    bench_escape(out);
    sum += (uint64_t)out[0] + out[PKT - 1];
  }
  memmove(a->data, a->data + off, a->len - off); /* compact */
  a->len -= off;
  return sum;
}

static uint64_t w3_sds(void *ctx, uint64_t it) {
  sds *sp = ctx;
  sds s = *sp;
  char out[PKT];
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if ((s = sdscatlen(s, w3_src[k], PKT)) == NULL) abort();
  }
  size_t off = 0;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (sdslen(s) - off < PKT) abort();
    memcpy(out, s + off, PKT);
    off += PKT;
    bench_escape(out);
    sum += (uint64_t)(uint8_t)out[0] + (uint8_t)out[PKT - 1];
  }
  sdsrange(s, (ssize_t)off, -1); /* drop the consumed bytes */
  *sp = s;
  return sum;
}

static uint64_t w3_garray(void *ctx, uint64_t it) {
  GByteArray *a = ctx;
  uint8_t out[PKT];
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    g_byte_array_append(a, w3_src[k], PKT);
  }
  guint off = 0;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (a->len - off < PKT) abort();
    memcpy(out, a->data + off, PKT);
    off += PKT;
    bench_escape(out);
    sum += (uint64_t)out[0] + out[PKT - 1];
  }
  g_byte_array_remove_range(a, 0, off);
  return sum;
}

static uint64_t w3_evbuffer(void *ctx, uint64_t it) {
  struct evbuffer *e = ctx;
  uint8_t out[PKT];
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (evbuffer_add(e, w3_src[k], PKT) != 0) abort();
  }
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (evbuffer_remove(e, out, PKT) != PKT) abort();
    bench_escape(out);
    sum += (uint64_t)out[0] + out[PKT - 1];
  }
  return sum;
}

/* ---- W3-fresh ----
 * A fresh buffer per unit: 1024 packets appended (growing from empty),
 * then consumed in place -- a pointer to the next unread packet, then the
 * read position moved past it -- and the buffer freed. */
static uint64_t w3f_hb(void *ctx, uint64_t it) {
  (void)ctx;
  hb_buf *b = hb_new(0);
  CHECK(b != NULL);
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++)
    if (hb_put(b, w3_src[k], PKT) != HB_OK) abort();
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (hb_remaining(b) < PKT) abort();
    const uint8_t *p = hb_data(b) + (hb_len(b) - hb_remaining(b));
    bench_escape(p);
    sum += (uint64_t)p[0] + p[PKT - 1];
    if (hb_advance(b, PKT) != HB_OK) abort();
  }
  hb_free(b);
  return sum;
}

static uint64_t w3f_arr(void *ctx, uint64_t it) {
  (void)ctx;
  arr a = {NULL, 0, 0};
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++)
    if (arr_put(&a, w3_src[k], PKT) != 0) abort();
  size_t off = 0;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (a.len - off < PKT) abort();
    const uint8_t *p = a.data + off;
    bench_escape(p);
    sum += (uint64_t)p[0] + p[PKT - 1];
    off += PKT;
  }
  free(a.data);
  return sum;
}

static uint64_t w3f_sds(void *ctx, uint64_t it) {
  (void)ctx;
  sds s = sdsempty();
  CHECK(s != NULL);
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++)
    if ((s = sdscatlen(s, w3_src[k], PKT)) == NULL) abort();
  size_t off = 0;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (sdslen(s) - off < PKT) abort();
    const uint8_t *p = (const uint8_t *)s + off;
    bench_escape(p);
    sum += (uint64_t)p[0] + p[PKT - 1];
    off += PKT;
  }
  sdsfree(s);
  return sum;
}

static uint64_t w3f_garray(void *ctx, uint64_t it) {
  (void)ctx;
  GByteArray *a = g_byte_array_new();
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++)
    g_byte_array_append(a, w3_src[k], PKT);
  guint off = 0;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (a->len - off < PKT) abort();
    const uint8_t *p = a->data + off;
    bench_escape(p);
    sum += (uint64_t)p[0] + p[PKT - 1];
    off += PKT;
  }
  g_byte_array_free(a, TRUE);
  return sum;
}

/* evbuffer's in-place read: evbuffer_pullup makes the first PKT bytes
 * contiguous (they already are) and returns them; evbuffer_drain moves on. */
static uint64_t w3f_evbuffer(void *ctx, uint64_t it) {
  (void)ctx;
  struct evbuffer *e = evbuffer_new();
  CHECK(e != NULL);
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++)
    if (evbuffer_add(e, w3_src[k], PKT) != 0) abort();
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    const uint8_t *p = evbuffer_pullup(e, PKT);
    if (p == NULL) abort();
    bench_escape(p);
    sum += (uint64_t)p[0] + p[PKT - 1];
    if (evbuffer_drain(e, PKT) != 0) abort();
  }
  evbuffer_free(e);
  return sum;
}

int main(int argc, char **argv) {
  if (bench_want(argc, argv, "W1")) {
    bench_run("W1", "hyperbuf", "ns/iter", W1_BATCH, w1_hb, NULL);
    bench_run("W1", "hand-array", "ns/iter", W1_BATCH, w1_arr, NULL);
    bench_run("W1", "sds", "ns/iter", W1_BATCH, w1_sds, NULL);
    bench_run("W1", "GByteArray", "ns/iter", W1_BATCH, w1_garray, NULL);
    bench_run("W1", "evbuffer", "ns/iter", W1_BATCH, w1_evbuffer, NULL);
  }
  if (bench_want(argc, argv, "W1-live")) {
    bench_run("W1-live", "hyperbuf", "ns/iter", W1_BATCH, w1l_hb, NULL);
    bench_run("W1-live", "hand-array", "ns/iter", W1_BATCH, w1l_arr, NULL);
    bench_run("W1-live", "sds", "ns/iter", W1_BATCH, w1l_sds, NULL);
    bench_run("W1-live", "GByteArray", "ns/iter", W1_BATCH, w1l_garray,
              NULL);
    bench_run("W1-live", "evbuffer", "ns/iter", W1_BATCH, w1l_evbuffer, NULL);
  }
  static const char *w2[2] = {"W2-empty", "W2-reserved"};
  for (int reserve = 0; reserve < 2; reserve++) {
    if (!bench_want(argc, argv, w2[reserve])) continue;
    bench_run(w2[reserve], "hyperbuf", "ns/byte", W2_BYTES, w2_hb, &reserve);
    bench_run(w2[reserve], "hyperbuf writer", "ns/byte", W2_BYTES, w2_hbw,
              &reserve);
    bench_run(w2[reserve], "hand-array", "ns/byte", W2_BYTES, w2_arr,
              &reserve);
    bench_run(w2[reserve], "sds", "ns/byte", W2_BYTES, w2_sds, &reserve);
    bench_run(w2[reserve], "GByteArray", "ns/byte", W2_BYTES, w2_garray,
              &reserve);
    bench_run(w2[reserve], "evbuffer", "ns/byte", W2_BYTES, w2_evbuffer,
              &reserve);
  }
  if (bench_want(argc, argv, "W2-src")) {
    for (uint32_t i = 0; i < W2_BYTES; i++) w2_src[i] = (uint8_t)(i * 13 + 5);
    bench_run("W2-src", "hyperbuf", "ns/byte", W2_BYTES, w2s_hb, NULL);
    bench_run("W2-src", "hyperbuf writer", "ns/byte", W2_BYTES, w2s_hbw,
              NULL);
    bench_run("W2-src", "hand-array", "ns/byte", W2_BYTES, w2s_arr, NULL);
    bench_run("W2-src", "sds", "ns/byte", W2_BYTES, w2s_sds, NULL);
    bench_run("W2-src", "GByteArray", "ns/byte", W2_BYTES, w2s_garray, NULL);
    bench_run("W2-src", "evbuffer", "ns/byte", W2_BYTES, w2s_evbuffer, NULL);
  }
  for (unsigned k = 0; k < W3_PACKETS; k++)
    for (unsigned j = 0; j < PKT; j++) w3_src[k][j] = (uint8_t)(k * 7 + j);
  if (bench_want(argc, argv, "W3-fresh")) {
    bench_run("W3-fresh", "hyperbuf", "ns/packet", W3_PACKETS, w3f_hb, NULL);
    bench_run("W3-fresh", "hand-array", "ns/packet", W3_PACKETS, w3f_arr,
              NULL);
    bench_run("W3-fresh", "sds", "ns/packet", W3_PACKETS, w3f_sds, NULL);
    bench_run("W3-fresh", "GByteArray", "ns/packet", W3_PACKETS, w3f_garray,
              NULL);
    bench_run("W3-fresh", "evbuffer", "ns/packet", W3_PACKETS, w3f_evbuffer,
              NULL);
  }
  if (bench_want(argc, argv, "W3")) {
    hb_buf *b = hb_new(0);
    CHECK(b != NULL);
    bench_run("W3", "hyperbuf", "ns/packet", W3_PACKETS, w3_hb, b);
    hb_free(b);

    arr a = {NULL, 0, 0};
    bench_run("W3", "hand-array", "ns/packet", W3_PACKETS, w3_arr, &a);
    free(a.data);

    sds s = sdsempty();
    bench_run("W3", "sds", "ns/packet", W3_PACKETS, w3_sds, &s);
    sdsfree(s);

    GByteArray *g = g_byte_array_new();
    bench_run("W3", "GByteArray", "ns/packet", W3_PACKETS, w3_garray, g);
    g_byte_array_free(g, TRUE);

    struct evbuffer *e = evbuffer_new();
    CHECK(e != NULL);
    bench_run("W3", "evbuffer", "ns/packet", W3_PACKETS, w3_evbuffer, e);
    evbuffer_free(e);
  }
  return 0;
}
