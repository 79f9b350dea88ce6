#!/usr/bin/env bash
# Model-check the visitor protocol with spin, over every interleaving:
#   tests/model/bias.pml     the bias revocation, under store buffers: the
#                            protocol as built must pass (mutual exclusion,
#                            every moved ticket given back, no deadlock),
#                            and without the membarrier it must fail;
#   tests/model/visitor.pml  cast, grant, queue, cancel (queued and
#                            granted), poll with a waker, hb_block_on
#                            parking, release and dispatch, a detached run
#                            and its done, and shutdown (cancel all, free
#                            the buffer): as built it must pass (no touch
#                            of a freed buffer or of a finished visitor, no
#                            deadlock), and with either of two old bugs put
#                            back -- done before the wakers, a cancel that
#                            does not wait for a parked driver -- it must
#                            fail: proof that the model can see them;
#   tests/model/handoff.pml  the contended hand-off (src/lock.c): a leaving
#                            writer's release folded into the grant of the
#                            head, the inline CAS release, the grant of a
#                            PARKED waiter on its own state word and its
#                            spin-then-sleep: as built it must pass (writer
#                            exclusion, FIFO grants, no lost grant or wake),
#                            and with either of two bugs put back -- a
#                            writer's release that does not re-read
#                            WAITERS, a grant that ignores SLEEPER -- fail.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh model

work=build/model
rm -rf "$work" && mkdir -p "$work"
cd "$work"

check() { # $1 = model, $2 = label, rest = spin options; prints the verdict
  local model=$1 label=$2
  shift 2
  mkdir -p "$label" && cd "$label"
  spin "$@" -a "../../../tests/model/$model" >/dev/null
  # Tiny state spaces: compile time dominates.  A bigger one sets panflags.
  gcc ${panflags:--O0} -DSAFETY -o pan pan.c
  ./pan -m100000 >pan.log 2>&1 || true
  cd ..
  grep -oE 'errors: [0-9]+' "$label/pan.log"
}

states() { grep -oE '[0-9]+ states, stored' "$1/pan.log"; }

must_pass() { # $1 = model, $2 = label, rest = spin options
  local verdict
  verdict=$(check "$@")
  echo "model: $1 as built: $verdict ($(states "$2"))"
  case "$verdict" in
    *"errors: 0") ;;
    *) echo "model: the protocol fails its model; see $work/$2/pan.log" >&2
       exit 1 ;;
  esac
}

must_fail() { # $1 = model, $2 = label (the bug), rest = spin options
  local verdict
  verdict=$(check "$@")
  echo "model: $1 with $2: $verdict (expected: an error)"
  case "$verdict" in
    *"errors: 0") echo "model: $1 no longer sees $2" >&2; exit 1 ;;
  esac
}

must_pass bias.pml bias
must_fail bias.pml bias-nofence -DNO_FENCE
must_pass visitor.pml visitor
must_fail visitor.pml done-before-wakers -DDONE_BEFORE_WAKERS
must_fail visitor.pml no-present-wait -DNO_PRESENT_WAIT
# ~6.7 million states: optimised, and COLLAPSE (~350 MB, not ~1.8 GB).
panflags="-O2 -w -DCOLLAPSE" must_pass handoff.pml handoff
panflags="-O2 -w -DCOLLAPSE" must_fail handoff.pml no-recheck -DBUG_NO_RECHECK
panflags="-O2 -w -DCOLLAPSE" must_fail handoff.pml grant-store -DBUG_GRANT_STORE
echo "model: ok"
