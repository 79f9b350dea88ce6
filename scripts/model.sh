#!/usr/bin/env bash
# Model-check the bias revocation (tests/model/bias.pml) with spin: the
# protocol as built must pass (mutual exclusion, every moved ticket given
# back, no deadlock) over every interleaving and store-buffer drain order,
# and the same model without the membarrier must fail -- proof that the
# model can see the bug the barrier prevents.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh model

model=$PWD/tests/model/bias.pml
work=build/model
rm -rf "$work" && mkdir -p "$work"
cd "$work"

check() { # $1 = label, rest = spin options; prints pan's verdict line
  local label=$1
  shift
  spin "$@" -a "$model" >/dev/null
  gcc -O2 -DSAFETY -o pan pan.c
  ./pan -m100000 >"pan-$label.log" 2>&1 || true
  grep -oE 'errors: [0-9]+' "pan-$label.log"
}

with=$(check fence)
echo "model: bias.pml as built: $with ($(grep -oE '[0-9]+ states, stored' pan-fence.log))"
case "$with" in
  *"errors: 0") ;;
  *) echo "model: the protocol fails its model; see $work/pan-fence.log" >&2; exit 1 ;;
esac

without=$(check nofence -DNO_FENCE)
echo "model: bias.pml without membarrier: $without (expected: an error)"
case "$without" in
  *"errors: 0") echo "model: the model no longer sees the missing barrier" >&2; exit 1 ;;
esac
echo "model: ok"
