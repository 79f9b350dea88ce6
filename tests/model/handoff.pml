/*
 * handoff.pml -- a Promela model of the contended hand-off (src/lock.c,
 * "THE HAND-OFF" and the NEXT slot; the waiters' side in src/park.c): the
 * lock word's WRITER / readers / WAITERS / NEXT / NEXT_W / EPOCH, the wait
 * queue under the mutex, the grant of a PARKED waiter by one RMW on its
 * own state word and its spin-then-sleep there (SLEEPER, futex), and the
 * NEXT waiter that spins on the lock word itself until EPOCH flips, or
 * past its budget moves to the head of the queue and sleeps there.
 *
 * NW writers and NR readers (2 and 1 unless -D says otherwise; pids 1..NW
 * write) make VISITS one-call visits each (2 unless -D says otherwise;
 * hb_write_now / hb_read_now):
 *   - the fast path's CAS (hb__grant_fast), which fails on WAITERS, on
 *     NEXT and on a conflicting holder;
 *   - else hb__next_wait's CAS: with WAITERS or NEXT set, queue; with the
 *     lock free again, the plain grant; else take NEXT (and NEXT_W for a
 *     writer), noting EPOCH.  It then waits until EPOCH flips (its ticket
 *     is in the word), or -- at any moment, standing for the spin budget
 *     -- expires: under the mutex, if EPOCH flipped it was granted, else
 *     one CAS drops NEXT and raises WAITERS, and it pushes itself at the
 *     queue's head and sleeps as a PARKED waiter (hb__next_expire);
 *   - else hb__cast_slow: the fetch_or of WAITERS under the mutex, then the
 *     grant (the add that drops WAITERS again) or a place at the tail;
 *   - the release, either the inline CAS of hb__release_fast (only while
 *     WAITERS is clear) or hb__release, as the code may take either (a
 *     stream's writer always takes the second).  Every release hands the
 *     lock to a NEXT waiter whose conflicts it removed, in its own RMW
 *     (hb__handoff_next): the inline CAS, the slow release's CAS loop, the
 *     dispatcher's CAS with a writer's pending release.  A last holder that
 *     saw WAITERS dispatches, unless its RMW made a NEXT writer the holder.
 * Checked over every interleaving: a writer is alone in its visit, and
 * every visit runs with its ticket in the word (WRITER; readers); FIFO --
 * whoever started to wait (took NEXT, or was queued) is granted only once
 * everybody who started before it was, and a grant to a caster that did
 * not wait happens only while nobody waits; nobody waits forever -- every
 * process reaches its end, so no grant, hand-off or futex wake is lost
 * (pan reports an invalid end state otherwise); and NEXT set => a holder
 * (WRITER or readers), checked after every step by a monitor process.  An
 * expiring waiter that finds EPOCH unflipped asserts NEXT is still its own.
 *
 * The steps are atomic where the code's are single atomic instructions
 * (the lock word's RMWs and CAS loops -- a CAS that fails and retries is
 * the same as one that was tried later -- the grant's fetch_or, the
 * futex's compare and sleep).  x86 orders them as written; the model's
 * interleavings cover the rest.  Left out: BIASED (a biased word sends
 * every caster to hb__unbias first, bias.pml), cancel, wakers and detached
 * visitors (visitor.pml), a stream's readers moved to the queue's head.
 *
 * `spin -a handoff.pml` checks the hand-off as built; scripts/model.sh also
 * runs it with one writer and two readers (-DNW=1 -DNR=2: a NEXT reader
 * granted together with a queued one, two readers leaving), two of each
 * (one visit each) and three visits each.  Each of these puts a bug back,
 * and each must fail, for the reason given (scripts/model.sh checks it):
 *   -DBUG_NO_RECHECK  the writer's release decides "nobody waits" from its
 *     first, plain look at WAITERS and does not read it again in the
 *     releasing RMW: a waiter that raised WAITERS in between (an expired
 *     NEXT waiter) waits forever -- an invalid end state.
 *   -DBUG_GRANT_STORE  the grant is a plain store that ignores SLEEPER: a
 *     waiter that went to sleep is never woken -- an invalid end state.
 *   -DBUG_NEXT_CLEAR_IS_GRANT  the NEXT waiter takes "NEXT clear" for its
 *     grant, not the EPOCH flip, spinning and at expiry.  After the
 *     hand-off another caster finds NEXT clear beside a holder -- the
 *     waiter itself -- and takes NEXT at once (ABA); the waiter sees NEXT
 *     set, misses its grant, and at expiry gives up a slot that is not its
 *     own: the expiry's assertion.  (Without it, the robbed waiter takes
 *     that fall of NEXT for its grant and reads with no ticket while the
 *     first, asleep in the queue, holds the write ticket.)
 *   -DBUG_READER_NO_HANDOFF  a reader's release (inline or slow) does not
 *     hand off to a NEXT writer: the last reader leaves NEXT set with no
 *     holder, which the monitor reports (run on, the writer expires into a
 *     queue nobody will dispatch).
 *   -DBUG_EXPIRY_TAIL  the expiring NEXT waiter goes to the queue's tail,
 *     not its head: whoever queued behind it while it spun is granted
 *     first -- the FIFO assertion.
 *   -DBUG_NO_NEXT_CONFLICT  NEXT is in no conflict mask: with a reader
 *     holding and a writer in NEXT, another reader's fast path is granted
 *     past the writer -- the assertion that nobody waits at such a grant.
 *     Only two readers show it (-DNW=1 -DNR=2): with one reader, whoever
 *     NEXT waits for conflicts with every caster too.
 */

#ifndef NW
#define NW 2         /* pids 1..NW: writers */
#endif
#ifndef NR
#define NR 1         /* pids NW+1..NW+NR: readers (0 is init) */
#endif
#define NPROC (NW + NR)
#ifndef VISITS
#define VISITS 2
#endif

/* The lock word, one variable per field. */
bit writer = 0;      /* HB__W_WRITER */
byte readers = 0;    /* granted read tickets */
bit waiters = 0;     /* HB__W_WAITERS */
bit next = 0;        /* HB__W_NEXT */
bit next_w = 0;      /* HB__W_NEXT_W */
bit epoch = 0;       /* HB__W_EPOCH */

bit mu = 0;          /* the queue's mutex */
byte q[NPROC];       /* the wait queue, under mu: q[0] is the head */
byte qlen = 0;
byte qi = 0;         /* scratch for the queue's shifts, left 0 */

bit granted[NPROC + 1]; /* HB__V_GRANTED in each waiter's state word */
bit sleeper[NPROC + 1]; /* HB__V_SLEEPER */
bit asleep[NPROC + 1];  /* in futex_wait on its state word */

byte in_write = 0, in_read = 0;   /* visits running */

/* Ghosts for the checks.  wait_seq[p]: when p started to wait (took NEXT
 * or was queued), 0 while it does not wait; next_pid: who holds NEXT. */
byte wait_seq[NPROC + 1];
byte next_seq = 1;
byte next_pid = 0;

#define is_writer(p) ((p) <= NW)

/* What p's grant waits on (hb__mode.conflict): NEXT is in both. */
#ifdef BUG_NO_NEXT_CONFLICT
#define conflicts(p) \
  (writer || (is_writer(p) && readers > 0))
#else
#define conflicts(p) \
  (writer || next || (is_writer(p) && readers > 0))
#endif

/* p started to wait before me. */
#define before(p, me) (wait_seq[p] != 0 && wait_seq[p] < wait_seq[me])

inline start_wait(me) { wait_seq[me] = next_seq; next_seq++ }

/* A waiter's grant (into the lock word): nobody who waits was there first. */
inline granting(me) {
  qi = 1;
  do
  :: qi <= NPROC -> assert(!before(qi, me)); qi++  /* FIFO */
  :: else -> break
  od;
  qi = 0;
  wait_seq[me] = 0
}

/* The grant of a caster that did not wait: nobody may be waiting. */
inline nobody_waits() {
  qi = 1;
  do
  :: qi <= NPROC -> assert(wait_seq[qi] == 0); qi++  /* nobody overtaken */
  :: else -> break
  od;
  qi = 0
}

inline lock_mu() { atomic { mu == 0 -> mu = 1 } }
inline unlock_mu() { mu = 0 }

inline push_tail(p) { q[qlen] = p; qlen++ }
inline push_head(p) {
  qi = qlen;
  do
  :: qi > 0 -> q[qi] = q[qi - 1]; qi--
  :: else -> break
  od;
  q[0] = p; qlen++
}
inline pop_head() {
  qi = 0;
  do
  :: qi + 1 < qlen -> q[qi] = q[qi + 1]; qi++
  :: else -> break
  od;
  qlen--; q[qlen] = 0; qi = 0
}

/* hb__handoff_next, applied to the word in the RMW that just removed a
 * holder: a NEXT waiter with none of its own conflicts left gets its
 * ticket, NEXT and NEXT_W fall and EPOCH flips.  `to_w`: it made a NEXT
 * writer the holder (the releaser then leaves the dispatch to it). */
inline handoff(to_w) {
  if
  :: next && next_w && !writer && readers == 0 ->
     next = 0; next_w = 0; writer = 1; epoch = 1 - epoch;
     granting(next_pid); next_pid = 0; to_w = 1
  :: next && !next_w && !writer ->
     next = 0; readers++; epoch = 1 - epoch;
     granting(next_pid); next_pid = 0
  :: else -> skip
  fi
}

/* hb__grant of a PARKED waiter: one fetch_add on its state (GRANTED, and
 * RUNNING for its driver), which returns SLEEPER; a futex wake only if it
 * was set. */
inline grant(h) {
#ifdef BUG_GRANT_STORE
  granted[h] = 1;
#else
  atomic {
    granted[h] = 1;
    if
    :: sleeper[h] -> asleep[h] = 0   /* futex_wake_all */
    :: else -> skip
    fi
  }
#endif
}

/* hb__dispatch under mu, with `pw` a writer's release folded into the
 * first RMW (the hand-off) or 0.  Each turn of the loop is one CAS on the
 * word: the pending release and the NEXT waiter's hand-off go in first,
 * then the head's grant if nothing it conflicts with is left. */
inline dispatch(pw) {
  byte h = 0;
  bit pend = pw, stop = 0, d_to_w = 0;
  do
  :: atomic {
       if :: pend -> writer = 0 :: else -> skip fi;
       handoff(d_to_w);
       h = 0;
       if
       :: qlen == 0 ->          /* nobody queued: WAITERS falls */
          waiters = 0; stop = 1
       :: qlen > 0 && conflicts(q[0]) ->
          stop = 1              /* the head must wait: our change goes in */
       :: else ->               /* one CAS: release, hand-off and grant */
          h = q[0];
          if :: is_writer(h) -> writer = 1 :: else -> readers++ fi;
          if :: qlen == 1 -> waiters = 0 :: else -> skip fi;
          granting(h);
          pop_head()            /* hb__queue_unlink, under mu */
       fi;
       pend = 0; d_to_w = 0
     };
     if
     :: stop -> break
     :: else ->
        grant(h);
        if :: qlen == 0 -> break :: else -> skip fi
     fi
  od;
  h = 0; stop = 0
}

/* hb__release of a finished visit's ticket (after hb__release_fast). */
inline release(me) {
  bit saw = 0, to_w = 0;
  if
  :: is_writer(me) ->
     /* hb__release_fast (visit.h): one CAS that frees the lock only while
      * WAITERS is clear; or, when it fails or is not tried, hb__release. */
     if
     :: atomic { !waiters -> writer = 0; handoff(to_w) }; goto released
     :: skip
     fi;
     saw = waiters;                    /* the first, plain look */
     if
     :: saw -> lock_mu(); dispatch(1); unlock_mu()
     :: else ->
        atomic {                       /* the CAS loop, reading WAITERS */
          writer = 0; handoff(to_w); saw = waiters && !to_w
        };
#ifdef BUG_NO_RECHECK
        saw = 0;
#endif
        if
        :: saw -> lock_mu(); dispatch(0); unlock_mu()
        :: else -> skip
        fi
     fi;
released: skip
  :: else ->
     if
     :: atomic { !waiters -> readers--;
#ifndef BUG_READER_NO_HANDOFF
                 handoff(to_w)
#endif
        }; goto released_r  /* the CAS */
     :: skip
     fi;
     atomic {                          /* the CAS loop */
       saw = waiters && readers == 1;  /* the last reader */
       readers--;
#ifndef BUG_READER_NO_HANDOFF
       handoff(to_w);
#endif
       saw = saw && !to_w
     };
     if
     :: saw -> lock_mu(); dispatch(0); unlock_mu()
     :: else -> skip
     fi;
released_r: skip
  fi;
  saw = 0; to_w = 0
}

/* hb__wait_turn: spin on our own state word; past the budget (any
 * moment, here) set SLEEPER by CAS and futex_wait while the word is
 * still "queued, SLEEPER".  hb__sleep_turn is the same without the spin,
 * which this covers (it may sleep at once). */
inline wait_turn(me) {
  do
  :: granted[me] -> break
  :: atomic { !granted[me] -> sleeper[me] = 1 };
     atomic { if
              :: !granted[me] && sleeper[me] -> asleep[me] = 1
              :: else -> skip
              fi };
     (asleep[me] == 0)
  od;
  granted[me] = 0; sleeper[me] = 0
}

/* What the NEXT waiter takes for its grant: the EPOCH flip. */
#ifdef BUG_NEXT_CLEAR_IS_GRANT
#define turn_came(e0) (!next)
#else
#define turn_came(e0) (epoch != (e0))
#endif

/* hb__next_wait after its CAS took NEXT: spin on the word until EPOCH
 * flips, or past the budget (hb__next_expire) move into the queue. */
inline next_wait(me, e0) {
  bit expired = 0;
  if
  :: turn_came(e0) -> skip            /* hb__spin_epoch saw the hand-off */
  :: true ->                          /* past the spin budget */
     lock_mu();
     atomic {                         /* the CAS, racing the hand-off */
       if
       :: turn_came(e0) -> skip       /* handed over at the last moment */
       :: else ->
          assert(next && next_pid == me);  /* the slot given up is ours */
          next = 0; next_w = 0; next_pid = 0; waiters = 1; expired = 1
       fi
     };
     if
     :: expired ->
        /* it was ahead of everybody queued, so the queue's head */
#ifdef BUG_EXPIRY_TAIL
        atomic { push_tail(me) };
#else
        atomic { push_head(me) };
#endif
        unlock_mu();
        wait_turn(me)
     :: else -> unlock_mu()
     fi
  fi;
  expired = 0
}

/* One one-call visit (hb__visit_now, hb__now_slow). */
inline visit(me) {
  bit got = 0, took = 0, e0 = 0;
  atomic {                             /* hb__grant_fast */
    if
    :: !waiters && !conflicts(me) ->
       if :: is_writer(me) -> writer = 1 :: else -> readers++ fi;
       got = 1; nobody_waits()
    :: else -> skip
    fi
  };
  if
  :: got -> skip
  :: else ->
     atomic {                          /* hb__next_wait's CAS */
       if
       :: waiters || next -> skip      /* somebody is ahead: queue */
       :: else ->
          if
          :: !conflicts(me) ->         /* freed meanwhile: the plain grant */
             if :: is_writer(me) -> writer = 1 :: else -> readers++ fi;
             got = 1; nobody_waits()
          :: else ->                   /* take the slot */
             next = 1; next_w = is_writer(me); next_pid = me;
             e0 = epoch; took = 1; start_wait(me)
          fi
       fi
     };
     if
     :: got -> skip
     :: took -> next_wait(me, e0)
     :: else ->                        /* hb__cast_slow */
        lock_mu();
        atomic {                       /* fetch_or(WAITERS), then decide */
          waiters = 1;
          if
          :: qlen == 0 && !conflicts(me) -> got = 1; nobody_waits()
          :: else -> start_wait(me); push_tail(me)
          fi
        };
        if
        :: got ->                      /* the add: ticket in, WAITERS out */
           atomic {
             if :: is_writer(me) -> writer = 1 :: else -> readers++ fi;
             waiters = 0
           };
           unlock_mu()
        :: else ->
           unlock_mu();
           wait_turn(me)
        fi
     fi
  fi;
  got = 0; took = 0; e0 = 0;
  /* the visit: alone if a writer, and with its ticket in the word */
  if
  :: is_writer(me) ->
     atomic { in_write++; assert(in_write == 1 && in_read == 0 && writer) };
     in_write--
  :: else ->
     atomic { in_read++; assert(in_write == 0 && readers >= in_read) };
     in_read--
  fi;
  release(me)
}

proctype visitor() {
  byte n = 0;
  do
  :: n < VISITS -> visit(_pid); n++
  :: else -> break
  od
}

/* NEXT => a holder, after every step (atomic sequences are one step). */
proctype monitor() {
end: atomic { !(!next || writer || readers > 0) ->
              assert(!next || writer || readers > 0) }
}

init {
  atomic {
    byte i = 0;
    do
    :: i < NPROC -> run visitor(); i++
    :: else -> break
    od;
    run monitor()
  }
}
