#!/usr/bin/env bash
# Install the Debian packages a make target needs, only those missing.
# Quiet when everything is there.
# Usage: scripts/deps.sh build|test|bench|lint|model|docs|consumers
set -euo pipefail

build=(cmake make gcc g++ pkg-config libuv1-dev)
test=("${build[@]}" libcmocka-dev clang libclang-rt-14-dev)
bench=("${build[@]}" libhiredis-dev libglib2.0-dev libevent-dev gnuplot-nox
       cargo rustc librust-bytes-dev librust-parking-lot-dev
       librust-tokio-dev librust-async-lock-dev
       librust-futures-lite-dev libck-dev libtbb-dev)
lint=("${build[@]}" cppcheck clang-tidy valgrind)
model=(spin gcc)
docs=(doxygen)
# consumers: static glibc (libc6-dev) and static libuv (libuv1-dev) too.
consumers=("${build[@]}" clang binutils libc6-dev)

case "${1:-build}" in
  build) want=("${build[@]}") ;;
  test) want=("${test[@]}") ;;
  bench) want=("${bench[@]}") ;;
  lint) want=("${lint[@]}") ;;
  model) want=("${model[@]}") ;;
  docs) want=("${docs[@]}") ;;
  consumers) want=("${consumers[@]}") ;;
  *) echo "usage: $0 build|test|bench|lint|model|docs|consumers" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
