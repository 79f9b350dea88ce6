#!/usr/bin/env bash
# Static analysis of the library (src/*.c with its headers): cppcheck and
# clang-tidy, each failing on any finding.  Configuration: .clang-tidy at
# the root; cppcheck's options are below.  Suppressions live in the code
# as `// cppcheck-suppress <id>` or `// NOLINT(<check>)`, each with the
# reason beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh lint

out=build/lint
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DHB_BUILD_TESTS=OFF -DHB_BUILD_EXAMPLES=OFF >/dev/null
# Only the library's own translation units (shared and static are the same
# sources; keep one of each file).
srcs=$(ls src/*.c)

echo "lint: cppcheck $(cppcheck --version | sed 's/Cppcheck //')"
cppcheck --quiet --error-exitcode=1 --inline-suppr \
  --enable=warning,style,performance,portability \
  --std=c11 --language=c -D_GNU_SOURCE -D__GNUC__=12 -D__x86_64__ \
  --suppress=missingIncludeSystem \
  --suppress=unusedFunction \
  --suppress=unusedStructMember:src/slot.c \
  -I include -I src $srcs
# missingIncludeSystem: cppcheck does not need the libc headers' bodies.
# unusedFunction: the library's API is used by its callers, not by src/.
# unusedStructMember in slot.c: a false positive on the members of the
#   anonymous _Thread_local struct `hb__slot`, which cppcheck 2.10 does not
#   connect to their uses (hb__slot.e, .cap, .state) in the same file.

echo "lint: clang-tidy $(clang-tidy --version | sed -n 's/.*version //p')"
# A crash or a file it could not parse is a failure too, not "clean".
tidy_rc=0
clang-tidy --quiet -p "$out" $srcs >"$out/clang-tidy.log" 2>&1 || tidy_rc=$?
grep -v '^[0-9]* warnings\? \(and [0-9]* errors\? \)\?generated' \
  "$out/clang-tidy.log" || true
if grep -q ': \(warning\|error\):' "$out/clang-tidy.log"; then
  echo "lint: clang-tidy found problems" >&2
  exit 1
fi
if [ "$tidy_rc" -ne 0 ]; then
  echo "lint: clang-tidy exited with status $tidy_rc" >&2
  exit 1
fi
echo "lint: clean"
