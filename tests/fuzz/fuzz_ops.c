/*
 * fuzz_ops.c -- libFuzzer entry point over the operation interpreter.
 *
 * Built by CMake with -DHB_BUILD_FUZZ=ON (clang -fsanitize=fuzzer, with
 * ASan and UBSan; scripts/fuzz.sh configures build/fuzz that way); the seed
 * corpus is tests/fuzz/corpus (scripts/fuzz_seeds.sh), and every input
 * that ever crashed goes to tests/fuzz/crashes, which
 * tests/test_fuzz_replay.c replays in every test build.
 */
#include "fz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fz_run(data, size);
}
