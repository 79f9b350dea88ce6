/*
 * bench_vector.cc -- W1..W3 for C++ std::vector<uint8_t>; the workloads are
 * described in bench_buf.c and the output format in bench.h.
 *
 * Idiomatic fastest use: reserve() where the workload reserves, resize()
 * before writing by index (a vector cannot be written past its size),
 * push_back per byte, insert(end, p, p + n) for a chunk, offset reads and
 * one erase() of the consumed prefix.  The second shapes (W1-live, W2-src,
 * W3-fresh) are described in bench_buf.c too.
 */
#include "bench.h"

#include <cstddef>
#include <vector>

enum { W1_BATCH = 1024, W2_BYTES = 1 << 20, W3_PACKETS = 1024, PKT = 64 };

typedef std::vector<uint8_t> bytes;

static uint64_t w1_vector(void *, uint64_t it) {
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k++) {
    bytes v;
    v.reserve(120);
    v.resize(13);
    for (unsigned j = 0; j < 13; j++) v[j] = (uint8_t)(it + k + j);
    bench_escape(v.data());
    sum += v[k % 13];
  }
  return sum;
}

static uint64_t w2_vector(void *ctx, uint64_t it) {
  bool reserve = *(int *)ctx != 0;
  bytes v;
  if (reserve) v.reserve(W2_BYTES);
  for (uint32_t i = 0; i < W2_BYTES; i++) v.push_back((uint8_t)(i + it));
  bench_escape(v.data());
  return v.size() + v[it % W2_BYTES];
}

/* W1-live: four at a time, made and written, then the four freed. */
enum { W1_LIVE = 4 };

static uint64_t w1l_vector(void *, uint64_t it) {
  uint64_t sum = 0;
  for (unsigned k = 0; k < W1_BATCH; k += W1_LIVE) {
    bytes vs[W1_LIVE];
    for (unsigned i = 0; i < W1_LIVE; i++) {
      bytes &v = vs[i];
      v.reserve(120);
      v.resize(13);
      for (unsigned j = 0; j < 13; j++) v[j] = (uint8_t)(it + k + i + j);
      bench_escape(v.data());
      sum += v[(k + i) % 13];
    }
  } /* the four are freed here, together */
  return sum;
}

static uint8_t w2_src[W2_BYTES];

static uint64_t w2s_vector(void *, uint64_t it) {
  bytes v;
  for (uint32_t i = 0; i < W2_BYTES; i++) v.push_back(w2_src[i]);
  bench_escape(v.data());
  return v.size() + v[it % W2_BYTES];
}

/* The packets' source, as in bench_buf.c. */
static uint8_t w3_src[W3_PACKETS][PKT];

static uint64_t w3_vector(void *ctx, uint64_t it) {
  bytes &v = *static_cast<bytes *>(ctx);
  uint8_t out[PKT];
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    v.insert(v.end(), w3_src[k], w3_src[k] + PKT);
  }
  size_t off = 0;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (v.size() - off < PKT) abort();
    memcpy(out, v.data() + off, PKT);
    off += PKT;
    bench_escape(out);
    sum += (uint64_t)out[0] + out[PKT - 1];
  }
  v.erase(v.begin(), v.begin() + (std::ptrdiff_t)off);
  return sum;
}

static uint64_t w3f_vector(void *, uint64_t it) {
  bytes v;
  uint64_t sum = it;
  for (unsigned k = 0; k < W3_PACKETS; k++)
    v.insert(v.end(), w3_src[k], w3_src[k] + PKT);
  size_t off = 0;
  for (unsigned k = 0; k < W3_PACKETS; k++) {
    if (v.size() - off < PKT) abort();
    const uint8_t *p = v.data() + off;
    bench_escape(p);
    sum += (uint64_t)p[0] + p[PKT - 1];
    off += PKT;
  }
  return sum;
}

int main(int argc, char **argv) {
  if (bench_want(argc, argv, "W1"))
    bench_run("W1", "std::vector", "ns/iter", W1_BATCH, w1_vector, NULL);
  if (bench_want(argc, argv, "W1-live"))
    bench_run("W1-live", "std::vector", "ns/iter", W1_BATCH, w1l_vector, NULL);
  static const char *w2[2] = {"W2-empty", "W2-reserved"};
  for (int reserve = 0; reserve < 2; reserve++)
    if (bench_want(argc, argv, w2[reserve]))
      bench_run(w2[reserve], "std::vector", "ns/byte", W2_BYTES, w2_vector,
                &reserve);
  if (bench_want(argc, argv, "W2-src")) {
    for (uint32_t i = 0; i < W2_BYTES; i++) w2_src[i] = (uint8_t)(i * 13 + 5);
    bench_run("W2-src", "std::vector", "ns/byte", W2_BYTES, w2s_vector, NULL);
  }
  for (unsigned k = 0; k < W3_PACKETS; k++)
    for (unsigned j = 0; j < PKT; j++) w3_src[k][j] = (uint8_t)(k * 7 + j);
  if (bench_want(argc, argv, "W3-fresh"))
    bench_run("W3-fresh", "std::vector", "ns/packet", W3_PACKETS, w3f_vector,
              NULL);
  if (bench_want(argc, argv, "W3")) {
    bytes v;
    bench_run("W3", "std::vector", "ns/packet", W3_PACKETS, w3_vector, &v);
  }
  return 0;
}
