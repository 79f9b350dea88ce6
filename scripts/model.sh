#!/usr/bin/env bash
# Model-check with spin the bias revocation (tests/model/bias.pml) and the
# contended hand-off (tests/model/handoff.pml, below).  The bias: the
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
# The contended hand-off (tests/model/handoff.pml): as built it must pass;
# with either bug put back (the writer's release not re-reading WAITERS,
# a grant that ignores SLEEPER) it must fail.
model=$(cd ../.. && pwd)/tests/model/handoff.pml
check_h() { # $1 = label, rest = spin options (COLLAPSE: ~350 MB, not ~1.8 GB)
  local label=$1
  shift
  spin "$@" -a "$model" >/dev/null
  gcc -O2 -w -DSAFETY -DCOLLAPSE -o pan pan.c
  ./pan -m100000 >"pan-$label.log" 2>&1 || true
  grep -oE 'errors: [0-9]+' "pan-$label.log"
}
with=$(check_h handoff)
echo "model: handoff.pml as built: $with ($(grep -oE '[0-9]+ states, stored' pan-handoff.log))"
case "$with" in
  *"errors: 0") ;;
  *) echo "model: the hand-off fails its model; see $work/pan-handoff.log" >&2; exit 1 ;;
esac
for bug in BUG_NO_RECHECK BUG_GRANT_STORE; do
  got=$(check_h "$bug" "-D$bug")
  echo "model: handoff.pml with $bug: $got (expected: an error)"
  case "$got" in
    *"errors: 0") echo "model: the model no longer sees $bug" >&2; exit 1 ;;
  esac
done
echo "model: ok"
