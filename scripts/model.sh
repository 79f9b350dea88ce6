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
#                            and so must a driver that runs a granted
#                            PARKED visitor unclaimed (the grant claims
#                            it: without that, a cancel claims it too);
#   tests/model/handoff.pml  the contended hand-off (src/lock.c): a leaving
#                            writer's release folded into the grant of the
#                            head, the inline CAS release, the grant of a
#                            PARKED waiter on its own state word and its
#                            spin-then-sleep, and the NEXT slot (a one-call
#                            waiter spinning on the lock word until EPOCH
#                            flips, or expiring to the queue's head): as
#                            built it must pass (writer exclusion, tickets
#                            held, FIFO grants, no lost grant or wake, NEXT
#                            only beside a holder) with two writers and a
#                            reader (two visits each, and three), one
#                            writer and two readers, and two of each; and
#                            with any of six bugs put back -- a writer's
#                            release that does not re-read WAITERS, a grant
#                            that ignores SLEEPER, "NEXT clear" taken for
#                            the grant, a reader's release that does not
#                            hand off, an expired waiter queued at the
#                            tail, NEXT left out of the conflict masks --
#                            fail, each for its own reason;
#   tests/model/nextv.pml    the NEXT slot held by a caller-owned visitor:
#                            its cast takes the slot, a holder's release
#                            hands off, its owner drives it (hb_block_on's
#                            spin on the lock word and its expiry, a loop
#                            of hb_try_visit, hb_poll with a waker), a
#                            cancel that may come at any moment demotes it
#                            first, then the buffer is freed, and a
#                            one-call caster comes after it: as built it
#                            must pass (exclusion, run or cancelled exactly
#                            once, no touch of the freed buffer, FIFO, NEXT
#                            only beside a holder, nobody waits forever)
#                            with writers, with readers, with a reader
#                            holding, and with hb_try_visit as built (it
#                            demotes, where NEXTV.md's looks at the lock
#                            word); and with any of three bugs -- a
#                            demotion that does the lock word before the
#                            visitor's state, a spin with no PARKED, a try
#                            that never looks at the lock word -- fail,
#                            each for its own reason;
#   tests/model/rbias.pml    the read bias (NEXTR.md, src/rbias.c): one-call
#                            readers announce themselves in a slot of the
#                            reader table (R0..R6: arming under the mutex,
#                            the slot's CAS, the lock word's re-check and
#                            its abort, the exchange at the exit and M, a
#                            moved reader's give-back of the collective
#                            share), writers revoke (V1..V4, from
#                            hb__rbias_end and from hb__cast_slow in any
#                            mode) and then take the fast CAS, the NEXT
#                            slot or the queue, on a sequentially
#                            consistent machine (the C's steps that
#                            matter are SEQ_CST): as built it must pass
#                            (writer exclusion, every read run once,
#                            nothing given back twice, I1 to I3 after
#                            every step, nothing left in the word or the
#                            table at the end, nobody waits forever) with
#                            two readers and two writers, and with two
#                            reads each, a try-writer and the NEXT
#                            waiter's expiry; and with any of five bugs --
#                            V1 without the provisional share, no re-check
#                            of the word after the slot's CAS, an exit
#                            that stores 0 over MOVED, V3's reference
#                            taken after its CAS, arming that does not
#                            wait for rb_refs == 0 -- fail, each for its
#                            own reason.
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

states() { # the search's size and pan's own time (not the compile's)
  echo "$(grep -oE '[0-9]+ states, stored' "$1/pan.log")," \
    "$(grep -oE 'elapsed time [0-9.e+-]+ seconds' "$1/pan.log")"
}

must_pass() { # $1 = model, $2 = label, rest = spin options
  local verdict
  verdict=$(check "$@")
  echo "model: $1 as built ($2): $verdict ($(states "$2"))"
  case "$verdict" in
    *"errors: 0") ;;
    *) echo "model: the protocol fails its model; see $work/$2/pan.log" >&2
       exit 1 ;;
  esac
}

must_fail() { # $1 = model, $2 = label (the bug), rest = spin options
  # $expect, if set: what pan must report (the failure the bug causes, not
  # just any failure, which a broken model would also give).
  local verdict
  verdict=$(check "$@")
  echo "model: $1 with $2: $verdict (expected: ${expect:-an error})"
  case "$verdict" in
    *"errors: 0") echo "model: $1 no longer sees $2" >&2; exit 1 ;;
  esac
  if [ -n "${expect:-}" ] && ! grep -qF "$expect" "$2/pan.log"; then
    echo "model: $1 with $2 fails, but not with: $expect" \
      "(see $work/$2/pan.log)" >&2
    exit 1
  fi
}

must_pass bias.pml bias
must_fail bias.pml bias-nofence -DNO_FENCE
must_pass visitor.pml visitor
must_fail visitor.pml done-before-wakers -DDONE_BEFORE_WAKERS
must_fail visitor.pml no-present-wait -DNO_PRESENT_WAIT
expect="assertion violated  !(freed)" \
  must_fail visitor.pml grant-no-claim -DGRANT_NO_CLAIM
# ~1 million states each (~7 million with three visits): optimised, and
# COLLAPSE to keep the bigger one near 450 MB.
export panflags="-O2 -w -DCOLLAPSE"
must_pass handoff.pml handoff
must_pass handoff.pml handoff-readers -DNW=1 -DNR=2
must_pass handoff.pml handoff-four -DNW=2 -DNR=2 -DVISITS=1
must_pass handoff.pml handoff-three-visits -DVISITS=3
end="invalid end state"
expect=$end must_fail handoff.pml no-recheck -DBUG_NO_RECHECK
expect=$end must_fail handoff.pml grant-store -DBUG_GRANT_STORE
expect="violated (next&&(next_pid==_pid))" \
  must_fail handoff.pml next-clear-is-grant -DBUG_NEXT_CLEAR_IS_GRANT
expect="violated (( !(next)||writer)||(readers>0))" \
  must_fail handoff.pml reader-no-handoff -DBUG_READER_NO_HANDOFF
expect="(wait_seq[qi]<wait_seq[h])" \
  must_fail handoff.pml expiry-tail -DBUG_EXPIRY_TAIL
expect="violated (wait_seq[qi]==0)" must_fail handoff.pml no-next-conflict \
  -DBUG_NO_NEXT_CONFLICT -DNW=1 -DNR=2
# nextv.pml: 1.2 to 2.3 million states each, a few seconds' search: at
# -O2 the compile (~30 s each) would cost more than it saves.
export panflags="-O0 -w -DCOLLAPSE"
must_pass nextv.pml nextv
must_pass nextv.pml nextv-reader-next -DVW=0
must_pass nextv.pml nextv-readers -DVW=0 -DXW=0
must_pass nextv.pml nextv-reader-holder -DHW=0
must_pass nextv.pml nextv-try-demotes -DTRY_DEMOTES
expect="violated (runs==0)" \
  must_fail nextv.pml demote-word-first -DBUG_DEMOTE_WORD_FIRST
expect="assertion violated  !(freed)" \
  must_fail nextv.pml nextv-no-parked -DBUG_NEXTV_NO_PARKED
expect=$end must_fail nextv.pml try-no-resolve -DBUG_TRY_NO_RESOLVE
# rbias.pml: 4 million states, a few seconds at -O0; two reads each
# (each reader in its own slot, the second writer a try-writer, the NEXT
# waiter's expiry: 7 million) at -O2.  About 35 s in all here.
must_pass rbias.pml rbias
expect="violated (in_write==0)" \
  must_fail rbias.pml rbias-no-provisional -DNO_PROVISIONAL
expect="violated (in_write==0)" \
  must_fail rbias.pml rbias-no-recheck -DNO_RECHECK
expect="violated (readers==0)" must_fail rbias.pml rbias-exit-store -DEXIT_STORE
expect="violated (readers>0)" must_fail rbias.pml rbias-refs-late -DREFS_LATE
expect="violated ( !(rbias)||(rb_refs==0))" \
  must_fail rbias.pml rbias-arm-with-refs -DARM_WITH_REFS
export panflags="-O2 -w -DCOLLAPSE"
must_pass rbias.pml rbias-two-reads-try -DREADS=2 -DOWN_SLOTS -DTRYW \
  -DEXPIRY
echo "model: ok"
