#!/usr/bin/env bash
# Build the libFuzzer harness (tests/fuzz/fuzz_ops.c, through CMake with
# HB_BUILD_FUZZ) and run it for a bounded time over the seed corpus.
#
#   scripts/fuzz.sh [SECONDS]        default 60 (env FUZZ_SECONDS too)
#   FUZZ_MERGE=1 scripts/fuzz.sh     afterwards merge the inputs that add
#                                    coverage into tests/fuzz/corpus
#
# New inputs go to build/fuzz/corpus (not the source tree), so a CI run
# leaves the checkout as it was.  A failure leaves its input in
# build/fuzz/artifacts/; copy it to tests/fuzz/crashes/ to keep it as a
# regression test (tests/test_fuzz_replay.c replays that folder).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-${FUZZ_SECONDS:-60}}
out=build/fuzz
mkdir -p "$out/corpus" "$out/artifacts"

# Debug build (NDEBUG undefined): the library's misuse checks are on.
# CMake builds the harness (tests/CMakeLists.txt, HB_BUILD_FUZZ): clang,
# -fsanitize=fuzzer with ASan and UBSan, -fno-sanitize-recover=all.
cmake -S . -B "$out" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
  -DHB_ASAN=ON -DHB_UBSAN=ON -DHB_BUILD_FUZZ=ON -DHB_BUILD_EXAMPLES=OFF \
  >/dev/null
cmake --build "$out" --target fuzz_ops -j "${JOBS:-2}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "fuzz: running $out/fuzz_ops for ${secs}s"
set +e
"$out/fuzz_ops" -max_total_time="$secs" -max_len=4096 -timeout=20 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
  "$out/corpus" tests/fuzz/corpus 2>&1 | tee "$out/fuzz.log" |
  grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|INFO: seed|stat::|==|SUMMARY|fuzz_interp)'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  tail -n 60 "$out/fuzz.log"
  echo "fuzz: FAILED; the input is in $out/artifacts/" >&2
  exit "$rc"
fi

if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  "$out/fuzz_ops" -merge=1 -max_len=4096 tests/fuzz/corpus "$out/corpus" \
    2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' || true
fi
echo "fuzz: corpus $(ls tests/fuzz/corpus | wc -l) seed files," \
  "$(ls "$out/corpus" | wc -l) in the working corpus"
