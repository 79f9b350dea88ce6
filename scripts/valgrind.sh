#!/usr/bin/env bash
# Valgrind memcheck over the whole test suite: a Debug build without
# sanitizers, every tests/test_* program run under memcheck; any error or
# leak fails.  The soak runs briefly here (HB_SOAK_SECONDS, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/deps.sh lint

out=build/valgrind
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
  -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" -DHB_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$out" -j "$(nproc)" >/dev/null

export HB_SOAK_SECONDS=${HB_SOAK_SECONDS:-1}
# VALGRIND_SKIP: test programs to leave out (none by default).
skip=" ${VALGRIND_SKIP-} "
export CMOCKA_MESSAGE_OUTPUT=stdout
pass=0
fail=0
for t in "$out"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  case "$skip" in *" $name "*) echo "valgrind: $name skipped"; continue ;; esac
  if timeout 600 valgrind --quiet --error-exitcode=99 --leak-check=full \
      --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
      --track-origins=yes --fair-sched=yes "$t" >"$out/$name.log" 2>&1; then
    pass=$((pass + 1))
    echo "valgrind: $name ok"
  else
    fail=$((fail + 1))
    echo "valgrind: $name FAILED (see $out/$name.log)"
    tail -n 40 "$out/$name.log"
  fi
done
echo "valgrind: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
