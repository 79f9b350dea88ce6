// cxx_expect.h -- the one check the C++ tests use (they build without
// cmocka, also as consumers of an installed library): EXPECT_EQ counts a
// failure, prints both sides, and goes on; main returns failures != 0.
#ifndef HB_TEST_CXX_EXPECT_H
#define HB_TEST_CXX_EXPECT_H

#include <cstdio>

static int failures = 0;

#define EXPECT_EQ(a, b)                                                      \
  do {                                                                       \
    auto a_ = (a);                                                           \
    auto b_ = (b);                                                           \
    if (!(a_ == b_)) {                                                       \
      std::fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n",         \
                   __FILE__, __LINE__, #a, #b, (long long)a_,                \
                   (long long)b_);                                           \
      failures++;                                                            \
    }                                                                        \
  } while (0)

#endif
