// test_cxx.cpp -- the public header compiled as C++.
//
// Linking this program proves the extern "C" guard: without it the calls
// below would name C++-mangled symbols the C library does not have.  The
// inline puts and gets, HB_TYPE and HB_VISITOR_INIT are exercised too.
#include <hyperbuf.h>

#include "cxx_expect.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>

struct Packet {
  std::uint64_t id;
  std::uint32_t flags;
  std::uint8_t tag;
};

int main() {
  static_assert(std::is_same<decltype(&hb_new), hb_buf *(*)(size_t)>::value,
                "hb_new's signature");
  static_assert(HB_OK == 0 && HB_ENOMEM < 0 && HB_PENDING > 0, "codes");

  hb_buf *b = hb_new(0);
  if (b == nullptr) {
    std::fprintf(stderr, "hb_new failed\n");
    return 1;
  }
  EXPECT_EQ(hb_put_u32_be(b, 0xDEADBEEFu), HB_OK);
  EXPECT_EQ(hb_put_u16_le(b, 0x1234), HB_OK);
  EXPECT_EQ(hb_put_f64_be(b, 2.5), HB_OK);
  EXPECT_EQ(hb_put(b, "cxx", 3), HB_OK);
  EXPECT_EQ(hb_len(b), 4u + 2u + 8u + 3u);
  EXPECT_EQ(hb_data(b)[0], 0xDE);
  EXPECT_EQ(hb_data(b)[3], 0xEF);
  EXPECT_EQ(hb_data(b)[4], 0x34);

  std::uint32_t u32 = 0;
  std::uint16_t u16 = 0;
  double d = 0;
  char text[4] = {0};
  EXPECT_EQ(hb_get_u32_be(b, &u32), HB_OK);
  EXPECT_EQ(u32, 0xDEADBEEFu);
  EXPECT_EQ(hb_get_u16_le(b, &u16), HB_OK);
  EXPECT_EQ(u16, 0x1234);
  EXPECT_EQ(hb_get_f64_be(b, &d), HB_OK);
  EXPECT_EQ(d == 2.5, true);
  EXPECT_EQ(hb_get(b, text, 3), HB_OK);
  EXPECT_EQ(std::strcmp(text, "cxx"), 0);
  EXPECT_EQ(hb_remaining(b), 0u);
  EXPECT_EQ(hb_get_u16_le(b, &u16), HB_ERANGE);
  EXPECT_EQ(std::strcmp(hb_err_name(HB_ERANGE), "HB_ERANGE"), 0);
  EXPECT_EQ(hb_free(b), HB_OK);

  std::uint8_t bytes[] = {1, 2, 3};
  hb_buf *w = HB_WRAP(bytes);
  EXPECT_EQ(w != nullptr, true);
  if (w != nullptr) {
    EXPECT_EQ(hb_len(w), 3u);
    EXPECT_EQ(hb_free(w), HB_OK);
  }

  hb_type t = HB_TYPE(Packet);
  EXPECT_EQ(t.size, sizeof(Packet));
  EXPECT_EQ(t.align, alignof(Packet));
  EXPECT_EQ(std::strcmp(t.name, "Packet"), 0);
  hb_type u = HB_TYPE(std::uint32_t);
  EXPECT_EQ(u.size, 4u);
  EXPECT_EQ(u.align, alignof(std::uint32_t));

  hb_visitor v = HB_VISITOR_INIT;
  EXPECT_EQ(v.data == nullptr, true);

  if (failures != 0) {
    std::fprintf(stderr, "test_cxx: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("test_cxx: ok\n");
  return 0;
}
