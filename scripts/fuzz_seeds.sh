#!/usr/bin/env bash
# Rebuild the fuzzer's hand-written seeds (tests/fuzz/corpus/seed-*) from
# the scenarios in tests/fuzz/make_seeds.c.  Inputs the fuzzer found and
# merged (scripts/fuzz.sh with FUZZ_MERGE=1) sit beside them, named by
# their SHA-1, and are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/fuzz tests/fuzz/corpus
cc -std=c11 -O1 -Wall -Wextra -o build/fuzz/make_seeds tests/fuzz/make_seeds.c
rm -f tests/fuzz/corpus/seed-*
build/fuzz/make_seeds tests/fuzz/corpus
echo "fuzz_seeds: $(ls tests/fuzz/corpus/seed-* | wc -l) seeds in tests/fuzz/corpus"
