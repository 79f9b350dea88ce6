/*
 * nextv.pml -- a Promela model of the NEXT slot held by a caller-owned
 * visitor (issue 13; the protocol: C1 C2 C3 D1 T G K, src/cast.c,
 * src/next.c, src/lock.c hb__mark_queued, src/park.c hb_block_on,
 * src/visitor.c hb_try_visit, src/cancel.c).  The lock word's encoding,
 * the hand-off and the dispatch are handoff.pml's; the visitor's state,
 * its drivers, the cancel and the free are visitor.pml's.
 *
 * Four threads and one buffer:
 *   H  holds the write ticket (a read ticket with -DHW=0) at the start and
 *      releases it: the inline CAS (only while WAITERS is clear) or
 *      hb__release, whose RMW hands the lock to a NEXT waiter (C2) and
 *      which dispatches the queue under the mutex if it saw WAITERS;
 *   O  casts v (a write visitor; a reader with -DVW=0) while H may still
 *      hold: the cast's CAS takes NEXT (C1) or, with the lock free, the
 *      ordinary grant.  Then it drives v, one of (nondeterministically):
 *      hb_block_on (C3: try first, PARKED, the spin on the lock word that
 *      ends with the EPOCH flip, NEXT gone, or the budget's expiry and the
 *      driver's own demotion; the queued visitor's wait and its sleep),
 *      hb_try_visit in a loop (T), hb_poll with a waker (T, then DRIVER
 *      and the registration, which demotes first: D1), again after each
 *      wake.  (-DTRY_DEMOTES: T as src/visitor.c builds it, see try_v.)
 *   K  may cancel v at any moment after the cast (K, with D1 first while
 *      v is NEXT), retrying while v runs; then joins H and X (and O if it
 *      did not cancel) and frees the buffer the moment hb_free would let
 *      it (nothing live in the lock word);
 *   X  (not with -DNOX) a one-call visit (hb_write_now; hb_read_now with
 *      -DXW=0) started once v's cast returned: handoff.pml's visit (fast
 *      path, the NEXT slot with its expiry to the queue's head, the slow
 *      cast), granted by the dispatcher on its own state word.
 * v's queued grant is G: one RMW sets GRANTED, and for a PARKED visitor
 * phase RUNNING (its driver runs it unclaimed).
 *
 * Checked over every interleaving:
 *   - a writer's callback runs alone, a reader's beside no writer, and each
 *     with its ticket in the word (ghost tk[]);
 *   - v runs at most once, and in the end exactly one of: it ran, or a
 *     cancel of it returned HB_OK;
 *   - nothing touches the lock word, the mutex or the queue after the free
 *     (TOUCH; a spin on the lock word that is still going when the buffer
 *     goes is a touch);
 *   - nobody waits forever (pan's invalid end states: a lost hand-off,
 *     grant, waker call or futex wake, a driver that never resolves);
 *   - NEXT set => a holder (the monitor, after every step); a demotion
 *     that finds EPOCH unflipped finds NEXT still v's;
 *   - FIFO: X, cast after v, is granted only once v's ticket came or v
 *     left the queue cancelled.
 *
 * Steps are atomic where the code's are one atomic instruction (a CAS that
 * fails and is retried is one tried later); a load and the CAS that
 * expects what it loaded are two steps where the protocol says so (the
 * claims).  Left out: BIASED, streams, detached visitors, more than one
 * visit per thread, a waker call's WAKING window (visitor.pml has it: here
 * the grant's call of v's waker is its last touch of v, at once).
 *
 * Bugs that must be found (scripts/model.sh checks each one's message):
 *   -DBUG_DEMOTE_WORD_FIRST  D1 does (ii), the lock word, before (i), v's
 *     state.  Then D1 has not won v's state when it acts on the word: it
 *     loads v's state (NEXT, e0), the hand-off comes, v's driver claims v
 *     by its CAS expecting NEXT -- which nothing has changed yet -- and
 *     runs it; D1's (ii) sees EPOCH flipped and grants v again (its RMW
 *     puts a running or finished visitor back to RUNNING, GRANTED twice),
 *     or, if v's release has since handed off to X in NEXT, sees EPOCH
 *     back at e0 and queues v, dropping a NEXT that is not v's -- either
 *     way the assertion that (ii) finds v unrun.  Not what NEXTV.md
 *     expected (a driver that runs v just put in the queue): under the
 *     mutex D1 holds and with WAITERS up, nobody takes NEXT or dispatches
 *     between (ii) and (i), so EPOCH cannot flip there; what (i) first
 *     buys is that D1 and the driver's claim race on one CAS.
 *   -DBUG_NEXTV_NO_PARKED  hb_block_on spins on the lock word without
 *     announcing PARKED: the cancel returns, the buffer is freed under the
 *     spin -- the TOUCH assertion;
 *   -DBUG_TRY_NO_RESOLVE  hb_try_visit answers HB_EAGAIN on a NEXT visitor
 *     without a look at the lock word: its owner, trying in a loop, never
 *     runs the visit its ticket came for -- an invalid end state.
 */

#ifndef HW
#define HW 1         /* H holds a write ticket */
#endif
#ifndef VW
#define VW 1         /* v writes */
#endif
#ifndef XW
#define XW 1         /* X writes */
#endif

#define HID 1
#define VID 2
#define XID 3

/* v's state word (hb_visitor.state): a phase and flags. */
#define PH 7
#define CAST 1
#define RUNNING 2
#define RAN 3
#define CANCELLING 4
#define CANCELLED 5
#define G 8          /* HB__V_GRANTED */
#define N 16         /* HB__V_NEXT */
#define NE 32        /* HB__V_NEXT_E: the EPOCH the cast saw */
#define P 64         /* HB__V_PARKED */
#define DR 128       /* HB__V_DRIVER */
#define SL 256       /* HB__V_SLEEPER */
#define WK 512       /* HB__V_WAKER */

#define phase(s) ((s) & PH)
#define with_phase(s, p) (((s) & ~PH) | (p))
#define queued(s) (phase(s) == CAST && ((s) & G) == 0)
#define turn_came(s) (((s) & G) != 0 || phase(s) != CAST)
#define e0_of(s) (((s) & NE) != 0)

/* answers and scratch results */
#define OK 0
#define EAGAIN 1
#define ECANCELED 2
#define RETRY 3
#define CLAIMED 4
#define LOST 5
#define WAIT 6

/* The lock word, one variable per field (handoff.pml). */
bit writer = 0;      /* HB__W_WRITER */
byte readers = 0;    /* granted read tickets */
bit waiters = 0;     /* HB__W_WAITERS */
bit next = 0;        /* HB__W_NEXT */
bit next_w = 0;      /* HB__W_NEXT_W */
bit epoch = 0;       /* HB__W_EPOCH */

bit mu = 0;          /* the buffer's mutex */
byte q[2];           /* the wait queue, under mu (v and X at most) */
byte qlen = 0;

short vs = 0;        /* v's state word */
bit asleep_o = 0;    /* O in futex_wait on vs */
bit asleep_k = 0;    /* K in futex_wait on vs */
bit woke = 0;        /* v's waker was called: O polls again */

bit granted_x = 0, sleeper_x = 0, asleep_x = 0;   /* X's state word */

bit freed = 0;       /* hb_free succeeded */

/* Ghosts. */
bit tk[4];           /* who has a ticket in the word */
byte in_w = 0, in_r = 0;   /* callbacks running */
byte next_pid = 0;   /* who holds NEXT */
bit v_waits = 0;     /* v took NEXT or was queued, and has no ticket yet */
bit v_cast = 0;      /* v's cast returned */
byte runs = 0, cancels = 0;  /* v's callback ran; a cancel of v said OK */
bit o_fin = 0, h_fin = 0, x_fin = 0, k_fin = 0;

#define TOUCH assert(!freed)

#define is_w(p) ((p) == HID && HW || (p) == VID && VW || (p) == XID && XW)

/* What p's grant waits on (hb__mode.conflict): NEXT is in both. */
#define conflicts(p) (writer || next || (is_w(p) && readers > 0))

/* p's ticket went into the word: FIFO, X never before v. */
inline got_ticket(p) {
  tk[p] = 1;
  if
  :: p == VID -> v_waits = 0
  :: p == XID -> assert(!v_waits)
  :: else -> skip
  fi
}

inline lock_mu() { atomic { TOUCH; mu == 0 -> mu = 1 } }
inline unlock_mu() { TOUCH; mu = 0 }

inline push_tail(p) { q[qlen] = p; qlen++ }
inline push_head(p) { q[1] = q[0]; q[0] = p; qlen++ }
inline pop_head() { q[0] = q[1]; q[1] = 0; qlen-- }
inline unlink(p) {
  if
  :: q[0] == p -> pop_head()
  :: else -> assert(q[1] == p); q[1] = 0; qlen--
  fi
}

/* futex_wake_all on vs: both sleepers there. */
inline wake_vs() { asleep_o = 0; asleep_k = 0 }

/* hb__handoff_next in the RMW that just removed a holder (handoff.pml). */
inline handoff(to_w) {
  if
  :: next && next_w && !writer && readers == 0 ->
     next = 0; next_w = 0; writer = 1; epoch = 1 - epoch;
     got_ticket(next_pid); next_pid = 0; to_w = 1
  :: next && !next_w && !writer ->
     next = 0; readers++; epoch = 1 - epoch;
     got_ticket(next_pid); next_pid = 0
  :: else -> skip
  fi
}

/* G: the grant of queued v, one RMW on vs under mu: GRANTED; a PARKED
 * visitor's phase RUNNING (its driver's claim); a registered waker taken
 * and called (WAKING left out); a SLEEPER woken. */
inline grant_v() {
  atomic {
    if
    :: vs & P -> vs = with_phase(vs | G, RUNNING)
    :: !(vs & P) && (vs & WK) -> vs = (vs | G) & ~WK; woke = 1
    :: else -> vs = vs | G
    fi;
    if :: vs & SL -> wake_vs() :: else -> skip fi
  }
}

/* The grant of X: its state word (handoff.pml's grant). */
inline grant_x() {
  atomic {
    granted_x = 1;
    if :: sleeper_x -> asleep_x = 0 :: else -> skip fi
  }
}

/* hb__dispatch under mu, `pw` a writer's pending release (by `pwho`)
 * folded into the first CAS, with the hand-off; then the head's grant,
 * one CAS each, while nothing it conflicts with is left. */
inline dispatch(pw, pwho) {
  pend = pw;
  do
  :: atomic {
       TOUCH;
       if :: pend -> writer = 0; tk[pwho] = 0 :: else -> skip fi;
       handoff(d_to_w);
       h = 0;
       if
       :: qlen == 0 -> waiters = 0; stop = 1
       :: qlen > 0 && conflicts(q[0]) -> stop = 1
       :: else ->
          h = q[0];
          if :: is_w(h) -> writer = 1 :: else -> readers++ fi;
          if :: qlen == 1 -> waiters = 0 :: else -> skip fi;
          got_ticket(h);
          pop_head()
       fi;
       pend = 0; d_to_w = 0
     };
     if
     :: stop -> break
     :: else ->
        if :: h == VID -> grant_v() :: else -> grant_x() fi;
        if :: qlen == 0 -> break :: else -> skip fi
     fi
  od;
  h = 0; stop = 0
}

/* hb__release of `me`'s ticket (writer if isw), handoff.pml's. */
inline release(isw, me) {
  if
  :: isw ->
     if
     :: atomic { !waiters -> TOUCH; writer = 0; tk[me] = 0; handoff(to_w) };
        goto released
     :: skip
     fi;
     atomic { TOUCH; saw = waiters };
     if
     :: saw -> lock_mu(); dispatch(1, me); unlock_mu()
     :: else ->
        atomic {
          TOUCH; writer = 0; tk[me] = 0; handoff(to_w); saw = waiters && !to_w
        };
        if
        :: saw -> lock_mu(); dispatch(0, 0); unlock_mu()
        :: else -> skip
        fi
     fi;
released: skip
  :: else ->
     if
     :: atomic { !waiters -> TOUCH; readers--; tk[me] = 0; handoff(to_w) };
        goto released_r
     :: skip
     fi;
     atomic {
       TOUCH;
       saw = waiters && readers == 1;
       readers--; tk[me] = 0;
       handoff(to_w);
       saw = saw && !to_w
     };
     if
     :: saw -> lock_mu(); dispatch(0, 0); unlock_mu()
     :: else -> skip
     fi;
released_r: skip
  fi;
  saw = 0; to_w = 0
}

/* A callback, alone if a writer, with its ticket. */
inline callback(isw, me) {
  if
  :: isw ->
     atomic {
       TOUCH; in_w++; assert(in_w == 1 && in_r == 0 && writer && tk[me])
     };
     in_w--
  :: else ->
     atomic {
       TOUCH; in_r++; assert(in_w == 0 && readers >= in_r && tk[me])
     };
     in_r--
  fi
}

/* v's claimed run (hb__run_here): the callback, the release, RAN. */
inline run_v() {
  atomic { runs++; assert(runs == 1) };
  callback(VW, VID);
  release(VW, VID);
  vs = with_phase(vs, RAN)
}

/* D1, under mu: v's state first (i), then the lock word (ii).  The CAS
 * of (i) freezes v: no claim expecting NEXT can win after it, so v cannot
 * run and release, and the only EPOCH flip (ii) can meet is v's own
 * hand-off (C2).  A v with no NEXT is left as it is (a demotion before
 * ours, the driver's claim): the caller's own look at the state decides,
 * as v may well be queued. */
inline demote() {
#ifndef BUG_DEMOTE_WORD_FIRST
  atomic {                                        /* (i) */
    s1 = vs;
    if
    :: s1 & N -> vs = s1 & ~(N | NE); d = 1; de0 = e0_of(s1)
    :: else -> d = 0                              /* not NEXT: nothing */
    fi
  };
  if
  :: d ->
     atomic {                                     /* (ii) */
       TOUCH;
       assert(runs == 0);                         /* v is still frozen */
       if
       :: epoch == de0 ->                         /* no hand-off: queue v */
          assert(next && next_pid == VID);
          next = 0; next_w = 0; next_pid = 0; waiters = 1;
          push_head(VID); d = 0
       :: else -> skip                            /* v holds its ticket */
       fi
     };
     if
     :: d ->                                      /* the grant: G */
        atomic {
          vs = vs | G;                            /* PARKED as (i) saw it */
          if :: s1 & P -> vs = with_phase(vs, RUNNING) :: else -> skip fi;
          if :: vs & SL -> wake_vs() :: else -> skip fi
        }
     :: else -> skip
     fi
  :: else -> skip
  fi;
#else
  /* (ii) first, with the EPOCH v's state shows, then (i). */
  atomic { s1 = vs; d = ((s1 & N) != 0); de0 = e0_of(s1) };
  if
  :: d ->
     atomic {
       TOUCH;
       assert(runs == 0);
       if
       :: epoch == de0 ->
          assert(next && next_pid == VID);
          next = 0; next_w = 0; next_pid = 0; waiters = 1;
          push_head(VID); d = 0
       :: else -> skip
       fi
     };
     if
     :: d ->
        atomic {
          vs = vs | G;                            /* PARKED as (i) saw it */
          if :: s1 & P -> vs = with_phase(vs, RUNNING) :: else -> skip fi;
          if :: vs & SL -> wake_vs() :: else -> skip fi
        }
     :: else -> skip
     fi;
     atomic { if :: vs & N -> vs = vs & ~(N | NE) :: else -> skip fi }
  :: else -> skip
  fi;
#endif
  s1 = 0; d = 0; de0 = 0
}

/* hb__drive_present with flag fl (P or DR) set on a v that left the
 * queue: claim a granted one, run one the grant claimed, wait out a
 * cancel, leave a cancelled one (clearing fl: its last touch).  rc:
 * CLAIMED (the caller runs v) or ECANCELED. */
inline drive_present(fl) {
  do
  :: atomic { phase(vs) != CANCELLING -> s = vs };
     if
     :: phase(s) == CAST && (s & G) ->
        atomic {
          if
          :: vs == s -> vs = with_phase(s & ~(fl | SL), RUNNING); rc = CLAIMED
          :: else -> rc = RETRY
          fi
        }
     :: phase(s) == RUNNING ->
        assert(fl == P);               /* the grant claimed it for us */
        vs = s & ~(P | SL);            /* a plain store: nobody else writes */
        rc = CLAIMED
     :: phase(s) == CANCELLED ->
        atomic {
          if :: vs & SL -> wake_vs() :: else -> skip fi;
          vs = vs & ~(fl | SL)
        };
        rc = ECANCELED
     :: else -> assert(false)          /* queued, RAN: not when we look */
     fi;
     if
     :: rc == RETRY -> skip
     :: else -> break
     fi
  od;
}

/* hb__try_run: claim a granted v; on a NEXT one, T: DRIVER, a look at
 * the lock word, the claim if EPOCH flipped, else DRIVER cleared again.
 * With -DTRY_DEMOTES, as src/visitor.c builds it instead: only
 * hb_try_visit (resolve) looks, by demoting v (hb__next_resolve: DRIVER,
 * hb__mark_queued, D1); hb_block_on's and hb_poll's tries answer EAGAIN.
 * rc: CLAIMED (the caller runs v), OK (ran), ECANCELED, or EAGAIN with
 * s_seen/ep_seen/looked what it answered from. */
inline try_v(resolve) {
  looked = 0;
  do
  :: atomic { phase(vs) != CANCELLING -> s = vs };    /* settled */
     if
     :: phase(s) == RAN -> rc = OK; break
     :: phase(s) == CANCELLED -> rc = ECANCELED; break
     :: phase(s) == RUNNING -> assert(false)          /* not O's, here */
     :: phase(s) == CAST && (s & G) ->
        atomic {
          if
          :: vs == s -> vs = with_phase(s, RUNNING); rc = CLAIMED
          :: else -> rc = RETRY
          fi
        };
        if
        :: rc == CLAIMED -> break
        :: else -> skip
        fi
     :: queued(s) && !(s & N) -> rc = EAGAIN; s_seen = s; break
     :: queued(s) && (s & N) ->
#ifdef BUG_TRY_NO_RESOLVE
        rc = EAGAIN; s_seen = s; break
#elif defined(TRY_DEMOTES)
        if
        :: !resolve -> rc = EAGAIN; s_seen = s; break /* hb__try_run */
        :: else ->                                    /* hb__next_resolve */
           atomic {                                   /* announce DRIVER */
             if :: vs == s -> vs = s | DR; rc = OK :: else -> rc = RETRY fi
           };
           if
           :: rc == RETRY -> skip                     /* try again */
           :: else ->
              lock_mu();                              /* hb__mark_queued */
              demote();
              atomic {
                if
                :: queued(vs) -> vs = vs & ~DR; s_seen = vs; rc = EAGAIN
                :: else -> rc = WAIT
                fi
              };
              unlock_mu();
              if
              :: rc == WAIT -> drive_present(DR)      /* granted, cancelled */
              :: else -> skip
              fi;
              break
           fi
        fi
#else
        atomic {                                      /* announce DRIVER */
          if :: vs == s -> s = s | DR; vs = s; rc = OK :: else -> rc = RETRY fi
        };
        if
        :: rc == RETRY -> skip                        /* look again */
        :: else ->
           atomic { TOUCH; ep_seen = epoch; looked = 1 };
           rc = LOST;
           if
           :: ep_seen != e0_of(s) ->                  /* the claim, as C3 */
              atomic {
                if
                :: vs == s ->
                   vs = with_phase((s & ~(N | NE | DR | SL)) | G, RUNNING);
                   rc = CLAIMED
                :: else -> skip
                fi
              }
           :: else -> skip
           fi;
           if
           :: rc == CLAIMED -> skip
           :: else ->
              atomic {                                /* DRIVER off again */
                if
                :: queued(vs) -> vs = vs & ~DR; s_seen = vs; rc = EAGAIN
                :: else -> rc = WAIT
                fi
              };
              if
              :: rc == WAIT -> drive_present(DR)      /* granted, cancelled */
              :: else -> skip
              fi
           fi;
           break
        fi
#endif
     fi
  od
}

/* hb__wait_turn on vs (PARKED announced): the spin (the buffer's budget,
 * a touch), then SLEEPER by CAS and futex_wait while still waiting. */
inline wait_turn() {
  TOUCH;
  do
  :: turn_came(vs) -> break
  :: atomic { !turn_came(vs) -> vs = vs | SL };
     atomic {
       if
       :: !turn_came(vs) && (vs & SL) -> asleep_o = 1
       :: else -> skip
       fi
     };
     (asleep_o == 0)
  od
}

/* hb_block_on: try; PARKED; a NEXT v spins on the lock word (C3), else
 * (or then) the queued visitor's wait and hb__drive_present. */
inline block_on() {
  do
  :: try_v(0);
     if :: rc != EAGAIN -> break :: else -> skip fi;
     atomic {                                  /* hb__announce(PARKED) */
       s = vs;
       if
       :: queued(s) ->
#ifdef BUG_NEXTV_NO_PARKED
          if :: !(s & N) -> s = (s & ~WK) | P; vs = s :: else -> skip fi;
#else
          s = (s & ~WK) | P; vs = s;
#endif
          rc = OK
       :: else -> rc = RETRY
       fi
     };
     if
     :: rc == RETRY -> skip                    /* granted meanwhile: try */
     :: else ->
        if
        :: s & N ->                            /* C3: the spin */
           e0 = e0_of(s);
           TOUCH;                              /* its budget */
           if
           :: atomic { (epoch != e0 || freed) -> TOUCH };
              atomic { s = vs };               /* the claim, by CAS */
              atomic {
                if
                :: (s & N) && vs == s ->
                   vs = with_phase((s & ~(N | NE | P | SL)) | G, RUNNING);
                   rc = CLAIMED
                :: else -> rc = LOST
                fi
              }
           :: atomic { !(vs & N) -> rc = LOST }   /* demoted (D1) */
           :: rc = LOST;                          /* the budget expired */
              lock_mu(); demote(); unlock_mu()
           fi;
           if
           :: rc == CLAIMED -> break
           :: else -> skip
           fi
        :: else -> skip
        fi;
#ifdef BUG_NEXTV_NO_PARKED
        atomic {                               /* PARKED, late */
          if
          :: !(vs & P) && queued(vs) -> vs = (vs & ~WK) | P; rc = OK
          :: !(vs & P) && !queued(vs) -> rc = RETRY
          :: else -> rc = OK
          fi
        };
        if :: rc == RETRY -> goto again :: else -> skip fi;
#endif
        wait_turn();
        drive_present(P);
        break
     fi;
again: skip
  od
}

/* hb_try_visit in a loop: each try after what it answered from changed
 * (the same inputs give the same answer again). */
inline try_loop() {
  do
  :: try_v(1);
     if
     :: rc == EAGAIN ->
        (vs != s_seen || (looked && epoch != ep_seen))
     :: else -> break
     fi
  od
}

/* hb_poll with a waker, again after each wake. */
inline poll_loop() {
  do
  :: try_v(0);
     if :: rc != EAGAIN -> break :: else -> skip fi;
     atomic {                                  /* hb__announce(DRIVER) */
       if :: queued(vs) -> vs = vs | DR; rc = OK :: else -> rc = RETRY fi
     };
     if
     :: rc == OK ->
        lock_mu();                             /* hb__mark_queued */
        demote();
        atomic {
          if
          :: queued(vs) -> vs = (vs & ~DR) | WK; rc = OK
          :: else -> rc = RETRY
          fi
        };
        unlock_mu();
        if
        :: rc == OK -> (woke); woke = 0        /* HB_PENDING; the waker */
        :: else -> drive_present(DR); break
        fi
     :: else -> skip
     fi
  od
}

proctype owner() {
  short s, s1, s_seen;
  byte rc, h;
  bit e0, d, de0, looked, ep_seen, saw, to_w, pend, stop, d_to_w;
  atomic {                          /* the cast: C1 */
    TOUCH;
    if
    :: !waiters && !conflicts(VID) ->          /* the lock free: granted */
       if :: VW -> writer = 1 :: else -> readers++ fi;
       got_ticket(VID); vs = CAST | G
    :: else ->
       assert(!waiters && !next);              /* X is cast after v */
       next = 1; next_w = VW; next_pid = VID; v_waits = 1;
       vs = CAST | N | (epoch * NE)
    fi;
    v_cast = 1
  };
#ifdef OWNER
  if
  :: OWNER == 1 -> block_on()
  :: OWNER == 2 -> try_loop()
  :: OWNER == 3 -> poll_loop()
  fi;
#else
  if
  :: block_on()
  :: try_loop()
  :: poll_loop()
  fi;
#endif
  if :: rc == CLAIMED -> run_v() :: else -> skip fi;
  o_fin = 1
}

proctype holder() {
  bit saw, to_w, pend, stop, d_to_w;
  byte h;
  callback(HW, HID);
  release(HW, HID);
  h_fin = 1
}

/* K: hb_cancel(v) (or not), join, free. */
proctype canceller() {
  short s, s1;
  byte rc, h;
  bit own, d, de0, saw, to_w, pend, stop, d_to_w;
  v_cast;
  if
  :: do
     :: atomic { phase(vs) != CANCELLING -> s = vs };
        if
        :: phase(s) == RUNNING -> (phase(vs) != RUNNING)    /* EBUSY */
        :: phase(s) == RAN -> break                         /* ESTATE */
        :: phase(s) == CANCELLED -> assert(false)
        :: phase(s) == CAST && (s & G) ->                   /* granted */
           atomic {
             if
             :: vs == s -> vs = with_phase(s, CANCELLING); rc = OK
             :: else -> rc = RETRY
             fi
           };
           if
           :: rc == OK ->
              release(VW, VID);                /* the ticket, unused */
              own = 0;
              goto finish
           :: else -> skip
           fi
        :: queued(s) ->                                     /* queued */
           lock_mu();                          /* hb__mark_queued */
           demote();
           atomic {
             if
             :: queued(vs) ->
                own = ((vs & WK) != 0);
                vs = with_phase(vs & ~WK, CANCELLING); rc = OK
             :: else -> rc = RETRY
             fi
           };
           if
           :: rc == OK ->
              TOUCH; unlink(VID); v_waits = 0;
              dispatch(0, 0);
              unlock_mu();
              goto finish
           :: else -> unlock_mu()              /* granted meanwhile */
           fi
        fi
     od;
     goto joined;
finish:
     atomic {                                  /* CANCELLED, futex wake */
       vs = with_phase(vs, CANCELLED);
       if :: vs & SL -> wake_vs() :: else -> skip fi;
       if :: own -> woke = 1 :: else -> skip fi    /* its own waker */
     };
     do                                        /* drivers present: wait */
     :: !(vs & (P | DR)) -> break
     :: atomic { (vs & (P | DR)) -> vs = vs | SL };
        atomic {
          if
          :: (vs & (P | DR)) && (vs & SL) -> asleep_k = 1
          :: else -> skip
          fi
        };
        (asleep_k == 0)
     od;
     cancels++
  :: true -> (o_fin)                          /* no cancel: join O */
  fi;
joined:
  h_fin; x_fin;
  /* hb_free, once nothing is live */
  atomic { !writer && readers == 0 && !waiters && !next -> freed = 1 };
  k_fin = 1
}

/* X: handoff.pml's one-call visit, after v's cast. */
inline x_wait_turn() {
  do
  :: granted_x -> break
  :: atomic { !granted_x -> sleeper_x = 1 };
     atomic { if :: !granted_x && sleeper_x -> asleep_x = 1 :: else -> skip fi };
     (asleep_x == 0)
  od
}

proctype caster_x() {
  bit got, took, e0, expired, saw, to_w, pend, stop, d_to_w;
  byte h;
  v_cast;
  atomic {                                     /* hb__grant_fast */
    TOUCH;
    if
    :: !waiters && !conflicts(XID) ->
       if :: XW -> writer = 1 :: else -> readers++ fi;
       got = 1; got_ticket(XID)
    :: else -> skip
    fi
  };
  if
  :: got -> skip
  :: else ->
     atomic {                                  /* hb__next_wait's CAS */
       TOUCH;
       if
       :: waiters || next -> skip
       :: else ->
          if
          :: !conflicts(XID) ->
             if :: XW -> writer = 1 :: else -> readers++ fi;
             got = 1; got_ticket(XID)
          :: else ->
             next = 1; next_w = XW; next_pid = XID; e0 = epoch; took = 1
          fi
       fi
     };
     if
     :: got -> skip
     :: took ->
        if
        :: atomic { epoch != e0 -> TOUCH }
        :: true ->                             /* hb__next_expire */
           lock_mu();
           atomic {
             if
             :: epoch != e0 -> skip
             :: else ->
                assert(next && next_pid == XID);
                next = 0; next_w = 0; next_pid = 0; waiters = 1; expired = 1
             fi
           };
           if
           :: expired -> push_head(XID); unlock_mu(); x_wait_turn()
           :: else -> unlock_mu()
           fi
        fi
     :: else ->                                /* hb__cast_slow */
        lock_mu();
        atomic {
          waiters = 1;
          if
          :: qlen == 0 && !conflicts(XID) -> got = 1
          :: else -> push_tail(XID)
          fi
        };
        if
        :: got ->
           atomic {
             if :: XW -> writer = 1 :: else -> readers++ fi;
             waiters = 0; got_ticket(XID)
           };
           unlock_mu()
        :: else -> unlock_mu(); x_wait_turn()
        fi
     fi
  fi;
  callback(XW, XID);
  release(XW, XID);
  x_fin = 1
}

/* NEXT => a holder, after every step. */
proctype monitor() {
end: atomic { !(!next || writer || readers > 0) ->
              assert(!next || writer || readers > 0) }
}

init {
  atomic {
    if :: HW -> writer = 1 :: else -> readers = 1 fi;
    tk[HID] = 1;
    run holder(); run owner(); run canceller();
#ifndef NOX
    run caster_x();
#else
    x_fin = 1;
#endif
    run monitor()
  };
  (o_fin && h_fin && x_fin && k_fin);
  assert(runs + cancels == 1)
}
