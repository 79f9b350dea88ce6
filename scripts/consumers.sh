#!/usr/bin/env bash
# Consume an installed hyperbuf the way users do (issue 15): install the
# library to temporary prefixes and build and run small programs against
# each, through pkg-config and through CMake's find_package.
#
#   scripts/consumers.sh [SOURCE-TREE]     default: this checkout
#
# SOURCE-TREE is the library that is built and installed; the consumers
# (tests/consumers/, the README's direct-mode example, tests/test_hpp.cpp)
# always come from this checkout, so an older tree can be checked against
# them.  Prefixes, under build/consumers/ (HB_CONSUMERS_WORK):
#
#   lib-uv           libdir lib,                     the libuv adapter on
#   multiarch-uv     libdir lib/x86_64-linux-gnu,    the adapter on
#   multiarch-nouv   libdir lib/x86_64-linux-gnu,    HB_WITH_LIBUV=OFF
#
# Every check is independent and named PREFIX/CHECK; a failed one prints
# the end of its log (all logs: build/consumers/logs/).  Exit status 1 if
# any check failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$(cd "${1:-$root}" && pwd)
cons=$root/tests/consumers
work=${HB_CONSUMERS_WORK:-$root/build/consumers}
jobs=${JOBS:-2}
cc=${CC:-cc}

"$root/scripts/deps.sh" consumers || exit 1
rm -rf "$work"
mkdir -p "$work/logs" "$work/empty"
echo "consumers: library from $src"

# The README's examples, exactly as a reader would paste them: the first
# C block under a heading.
readme_c() { # HEADING
  awk -v h="## $1" '$0 == h { f = 1 }
       f && /^```c$/ { g = 1; next }
       g && /^```$/ { exit }
       g { print }' "$root/README.md"
}
readme_c "Direct mode in a nutshell" >"$work/direct.c"
readme_c "One buffer per connection" >"$work/guide.c"

# Under set -e a negated command (`! grep ...`) never fails the check, so
# "must not" is spelt: refute WHAT COMMAND... (COMMAND may be a function).
refute() {
  local what=$1
  shift
  if "$@"; then
    echo "unexpected: $what"
    return 1
  fi
}
# needs_lib FILE LIB: FILE's dynamic section names LIB; a missing FILE
# ends the check (it is no "no").
needs_lib() {
  [ -e "$1" ] || { echo "no such file: $1"; exit 1; }
  readelf -d "$1" | grep "NEEDED.*$2"
}

passed=0
failed=()
# check NAME COMMAND...: run COMMAND (a function) under set -e in a
# subshell, its output in logs/NAME.log.
check() {
  local name=$1
  shift
  local log=$work/logs/${name//\//_}.log
  (set -e; "$@") >"$log" 2>&1
  if [ $? -eq 0 ]; then
    printf 'consumers: %-36s ok\n' "$name"
    passed=$((passed + 1))
  else
    printf 'consumers: %-36s FAILED\n' "$name"
    tail -n 6 "$log" | cut -c1-160 | sed 's/^/    | /'
    failed+=("$name")
  fi
}

# ---- the installs -------------------------------------------------------

install_lib() { # NAME LIBDIR HB_WITH_LIBUV
  local b=$work/build-$1
  cmake -S "$src" -B "$b" -DCMAKE_BUILD_TYPE=Release -DHB_BUILD_TESTS=OFF \
    -DHB_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_LIBDIR="$2" -DHB_WITH_LIBUV="$3"
  cmake --build "$b" -j "$jobs"
  cmake --install "$b" --prefix "$work/$1" # the prefix is chosen here
}

# ---- pkg-config consumers -----------------------------------------------

pc() { PKG_CONFIG_PATH=$pcdir pkg-config "$@"; }
rpath() { echo "-Wl,-rpath,$(pc --variable=libdir hyperbuf)"; }

# The README's example under a strict C11: hyperbuf.h must not drag in
# <uv.h> (which needs POSIX types -std=c11 does not declare).
pc_c11_readme() {
  $cc -std=c11 -pedantic -Wall -Wextra -Werror "$work/direct.c" \
    -o "$out/direct" $(pc --cflags --libs hyperbuf) $(rpath)
  "$out/direct"
}

# The README's guide "One buffer per connection", run over a socketpair.
pc_c11_guide() {
  $cc -std=c11 -pedantic -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L \
    -I"$work" "$cons/guide_run.c" -o "$out/guide" \
    $(pc --cflags --libs hyperbuf) $(rpath)
  "$out/guide"
}

pc_c11_visit() {
  $cc -std=c11 -pedantic -Wall -Wextra -Werror "$cons/visit.c" \
    -o "$out/visit" $(pc --cflags --libs hyperbuf) $(rpath)
  "$out/visit"
}

# A fully static program: `cc -static $(pkg-config --static ...)`.  This
# check and the next but one compile with -std=gnu11, so that each fails
# only for its own reason.
pc_static() {
  $cc -static -std=gnu11 "$cons/visit.c" -o "$out/visit-static" \
    $(pc --static --cflags --libs hyperbuf)
  "$out/visit-static"
}

# hyperbuf linked statically into an otherwise dynamic program.
pc_static_module() {
  $cc -std=c11 "$cons/visit.c" -o "$out/visit-hbstatic" \
    $(pc --cflags --libs hyperbuf-static)
  refute "libhyperbuf.so needed" needs_lib "$out/visit-hbstatic" libhyperbuf
  "$out/visit-hbstatic"
}

# A release install's inline calls check nothing, whatever the
# application's NDEBUG: -O2 without -DNDEBUG must not call the check.
release_hot_path() {
  $cc -std=gnu11 -O2 -c "$cons/hot.c" -o "$out/hot.o" $(pc --cflags hyperbuf)
  nm "$out/hot.o"
  refute "the inline calls check" grep -q hb__misuse <(nm "$out/hot.o")
}

# Nothing of libuv in what every hyperbuf user gets.
no_uv_in_hyperbuf() {
  local flags
  flags=$(pc --cflags --libs --static hyperbuf)
  echo "hyperbuf: $flags"
  refute "libuv in the flags" grep -e HB_HAVE_LIBUV -e -luv -e libuv <<<"$flags"
  echo '#include <hyperbuf.h>' |
    $cc -std=c11 -E -H -x c - $(pc --cflags hyperbuf) -o /dev/null 2>"$out/H"
  refute "hyperbuf.h includes uv.h" grep 'uv\.h' "$out/H"
  refute "libhyperbuf.so links libuv" needs_lib "$lib/libhyperbuf.so" libuv
}

# Every public name (hb_*, not hb__*) that the compiler sees through
# <hyperbuf.h> is written out in the API header itself, so that grep finds
# it there: none is made by a macro or lives only in hyperbuf/inline.h.
names_literal() {
  local n missing=0
  echo '#include <hyperbuf.h>' |
    $cc -std=c11 -E -P -x c - $(pc --cflags hyperbuf) -o "$out/names.i"
  for n in $(grep -o '\bhb_[a-z0-9_]*' "$out/names.i" | grep -v '^hb__' |
      sort -u); do
    if ! grep -qw -- "$n" "$1/include/hyperbuf.h"; then
      echo "$n: not written in hyperbuf.h"
      missing=1
    fi
  done
  [ "$missing" -eq 0 ]
}

pc_uv() {
  $cc -std=c11 -D_POSIX_C_SOURCE=200809L "$cons/uv.c" -o "$out/uv" \
    $(pc --cflags --libs hyperbuf-uv) $(rpath)
  "$out/uv"
}

pc_uv_static() {
  $cc -std=c11 -D_POSIX_C_SOURCE=200809L "$cons/uv.c" -o "$out/uv-static" \
    $(pc --cflags --libs hyperbuf-uv-static)
  refute "libhyperbuf.so needed" needs_lib "$out/uv-static" libhyperbuf
  refute "libuv.so needed" needs_lib "$out/uv-static" libuv
  "$out/uv-static"
}

# Built with HB_WITH_LIBUV=OFF: no adapter installed, libuv not linked.
without_libuv() {
  local prefix=$1
  refute "hyperbuf-uv.pc installed" pc --exists hyperbuf-uv
  refute "hyperbuf_uv.h installed" test -e "$prefix/include/hyperbuf_uv.h"
  refute "libhyperbuf.so links libuv" needs_lib "$lib/libhyperbuf.so" libuv
}

cxx_header() { # COMPILER
  command -v "$1"
  "$1" -std=c++20 -Wall -Wextra -Werror "$root/tests/test_hpp.cpp" \
    -o "$out/hpp-$1" $(pc --cflags --libs hyperbuf) -pthread $(rpath)
  "$out/hpp-$1"
}

# ---- CMake consumers ----------------------------------------------------

cmake_consumer() { # BUILD-DIR PREFIX CMAKE-ARGS...
  local b=$1 prefix=$2
  shift 2
  cmake -S "$cons" -B "$b" -DCMAKE_PREFIX_PATH="$prefix" "$@"
}

# find_package(hyperbuf) where pkg-config finds no libuv: the package must
# not look for libuv unless its uv component is asked for.
cmake_without_libuv() {
  local b=$out/cmake
  PKG_CONFIG_LIBDIR=$work/empty cmake_consumer "$b" "$1" \
    -DHB_DIRECT_C="$work/direct.c"
  cmake --build "$b" -j "$jobs"
  "$b/direct"
  "$b/visit" # the build tree's RPATH finds the prefix's library
  "$b/visit_static"
}

cmake_uv() {
  local b=$out/cmake-uv
  cmake_consumer "$b" "$1" -DHB_CONSUMER_UV=REQUIRED \
    -DHB_CONSUMER_EXPECT_UV=1 -DHB_HPP_TEST="$root/tests/test_hpp.cpp"
  cmake --build "$b" -j "$jobs"
  "$b/uv"
  "$b/uv_static"
  "$b/hpp"
}

# Without the adapter: COMPONENTS uv fails, saying why; OPTIONAL_COMPONENTS
# uv finds hyperbuf without it.
cmake_uv_absent() {
  if cmake_consumer "$out/cmake-req" "$1" -DHB_CONSUMER_UV=REQUIRED \
      >"$out/req.log" 2>&1; then
    echo "COMPONENTS uv was found in an install without it"
    return 1
  fi
  grep 'built without libuv' "$out/req.log"
  cmake_consumer "$out/cmake-opt" "$1" -DHB_CONSUMER_UV=OPTIONAL \
    -DHB_CONSUMER_EXPECT_UV=0
  cmake --build "$out/cmake-opt" -j "$jobs"
  "$out/cmake-opt/visit"
}

# ---- the source tree itself ---------------------------------------------

# A plain configure where pkg-config finds neither cmocka nor libuv: it
# must succeed (no tests, no adapter, saying how to get the tests), and
# the library must build.
tree_without_cmocka() {
  local b=$work/tree-plain
  PKG_CONFIG_LIBDIR=$work/empty cmake -S "$src" -B "$b" 2>&1 |
    tee "$work/tree-plain.log" # pipefail: cmake's status
  grep -i 'cmocka' "$work/tree-plain.log"
  cmake --build "$b" -j "$jobs" --target hyperbuf hyperbuf_static
}

# The source tree as a subproject (add_subdirectory, FetchContent): its
# targets under the same names, its tests not built.
tree_subdirectory() {
  local b=$work/tree-subdir
  cmake -S "$cons" -B "$b" -DHB_SUBDIR="$src" -DHB_DIRECT_C="$work/direct.c" \
    -DHB_HPP_TEST="$root/tests/test_hpp.cpp" -DHB_BUILD_EXAMPLES=OFF
  cmake --build "$b" -j "$jobs"
  "$b/direct"
  "$b/visit_static"
  "$b/hpp"
}

# ---- run ----------------------------------------------------------------

check tree/configure-without-cmocka tree_without_cmocka
check tree/add-subdirectory tree_subdirectory

for spec in lib-uv:lib:ON multiarch-uv:lib/x86_64-linux-gnu:ON \
    multiarch-nouv:lib/x86_64-linux-gnu:OFF; do
  IFS=: read -r name libdir uv <<<"$spec"
  prefix=$work/$name
  lib=$prefix/$libdir
  pcdir=$lib/pkgconfig
  out=$work/out-$name
  mkdir -p "$out"
  check "$name/install" install_lib "$name" "$libdir" "$uv"
  check "$name/pkg-config-c11-readme" pc_c11_readme
  check "$name/pkg-config-c11-visit" pc_c11_visit
  if [ "$name" = lib-uv ]; then
    check "$name/pkg-config-c11-readme-guide" pc_c11_guide
  fi
  check "$name/pkg-config-static" pc_static
  check "$name/pkg-config-hyperbuf-static" pc_static_module
  check "$name/release-hot-path" release_hot_path
  check "$name/no-uv-in-hyperbuf" no_uv_in_hyperbuf
  check "$name/names-in-hyperbuf.h" names_literal "$prefix"
  check "$name/cmake-without-libuv" cmake_without_libuv "$prefix"
  if [ "$uv" = ON ]; then
    check "$name/pkg-config-uv" pc_uv
    check "$name/pkg-config-uv-static" pc_uv_static
    check "$name/cmake-uv" cmake_uv "$prefix"
  else
    check "$name/without-libuv" without_libuv "$prefix"
    check "$name/cmake-uv-absent" cmake_uv_absent "$prefix"
  fi
  if [ "$name" = lib-uv ]; then # the C++ header, with both compilers
    check "$name/c++-header-g++" cxx_header g++
    check "$name/c++-header-clang++" cxx_header clang++
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "consumers: $passed passed, ${#failed[@]} FAILED: ${failed[*]}"
  exit 1
fi
echo "consumers: all $passed checks passed"
