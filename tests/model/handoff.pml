/*
 * handoff.pml -- a Promela model of the contended hand-off (src/lock.c,
 * "THE HAND-OFF"; the waiter's side in src/park.c): the lock word's
 * WRITER / readers / WAITERS, the wait queue under the mutex, the grant
 * of a PARKED waiter by one RMW on its own state word, and the waiter's
 * spin-then-sleep on that word (SLEEPER, futex).
 *
 * Two writers and one reader make one-call visits (hb_write_now /
 * hb_read_now); a release is either the inline CAS of hb__release_fast
 * (only while WAITERS is clear) or hb__release, as the code may take
 * either.  Checked over every interleaving: a writer is alone in
 * its visit; a waiter is granted in queue order (nobody who cast after it
 * runs before it); and nobody waits forever -- every process reaches its
 * end, so no grant and no futex wake is lost (pan reports an invalid end
 * state otherwise).
 *
 * The steps are atomic where the code's are single atomic instructions
 * (the lock word's RMWs, the grant's fetch_or, the futex's compare and
 * sleep).  x86 orders them as written; the model's interleavings cover
 * the rest.
 *
 * `spin -a handoff.pml` checks the hand-off as built.  `spin -DBUG_NO_RECHECK
 * -a` puts back the bug the writer's release must avoid: deciding "nobody
 * waits" from its first look at WAITERS and releasing without reading
 * WAITERS again in the releasing RMW -- a caster that set WAITERS in
 * between would wait forever.  `spin -DBUG_GRANT_STORE -a` grants with a
 * plain store that does not look at SLEEPER, so a waiter that went to
 * sleep is never woken.  Both must fail.  scripts/model.sh runs all three.
 */

#define NPROC 3      /* pids 1, 2: writers; 3: the reader (0 is init) */
#define VISITS 2

bit writer = 0;      /* HB__W_WRITER */
byte readers = 0;    /* granted read tickets */
bit waiters = 0;     /* HB__W_WAITERS */
bit mu = 0;          /* the queue's mutex */
chan q = [NPROC] of { byte };  /* the wait queue, under mu */

bit granted[NPROC + 1]; /* HB__V_GRANTED in each waiter's state word */
bit sleeper[NPROC + 1]; /* HB__V_SLEEPER */
bit asleep[NPROC + 1];  /* in futex_wait on its state word */

byte in_write = 0, in_read = 0;   /* visits running */

/* FIFO: the order in which visitors were queued and granted. */
byte queued_seq[NPROC + 1];
byte next_seq = 1;
byte last_granted_seq = 0;

inline lock_mu() { atomic { mu == 0 -> mu = 1 } }
inline unlock_mu() { mu = 0 }

#define is_writer(p) ((p) <= 2)

/* hb__grant of a PARKED waiter: one fetch_or of GRANTED on its state,
 * which returns SLEEPER; a futex wake only if it was set. */
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
 * first RMW (the hand-off) or 0. */
inline dispatch(pw) {
  byte h;
  bit pend = pw;
  do
  :: atomic { len(q) == 0 ->
       if :: pend -> writer = 0 :: else -> skip fi;
       waiters = 0 };
     break
  :: atomic { len(q) > 0 -> q?<h> };
     if
     :: atomic { (is_writer(h) && ((writer && !pend) || readers > 0)) ||
                 (!is_writer(h) && writer && !pend) ->
          if :: pend -> writer = 0 :: else -> skip fi };
        break                          /* the head must wait */
     :: else ->
        atomic {                       /* one CAS: release + grant */
          if :: pend -> writer = 0 :: else -> skip fi;
          if :: is_writer(h) -> writer = 1 :: else -> readers++ fi;
          q?h;
          if :: len(q) == 0 -> waiters = 0 :: len(q) > 0 -> skip fi;
          assert(queued_seq[h] > last_granted_seq);  /* FIFO */
          last_granted_seq = queued_seq[h]
        };
        pend = 0;
        grant(h)
     fi
  od
}

/* hb__release */
inline release(me) {
  bit saw;
  if
  :: is_writer(me) ->
     /* hb__release_fast (visit.h): one CAS that frees the lock only while
      * WAITERS is clear; or, when it fails or is not tried, hb__release. */
     if
     :: atomic { !waiters -> writer = 0 }; goto released
     :: skip
     fi;
     saw = waiters;                    /* the first, plain look */
     if
     :: saw -> lock_mu(); dispatch(1); unlock_mu()
     :: else ->
        atomic { writer = 0; saw = waiters };  /* fetch_add returns it */
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
     bit last;
     if
     :: atomic { !waiters -> readers-- }; goto released_r  /* the CAS */
     :: skip
     fi;
     atomic { readers--; saw = waiters; last = (readers == 0) };
     if
     :: saw && last -> lock_mu(); dispatch(0); unlock_mu()
     :: else -> skip
     fi;
released_r: skip
  fi
}

/* hb__wait_turn: spin on our own state word; past the budget (any
 * moment, here) set SLEEPER by CAS and futex_wait while the word is
 * still "queued, SLEEPER". */
inline wait_turn(me) {
  do
  :: granted[me] -> break
  :: atomic { !granted[me] -> sleeper[me] = 1 };
     atomic { if
              :: !granted[me] && sleeper[me] -> asleep[me] = 1
              :: else -> skip
              fi };
     (asleep[me] == 0)
  od
}

/* One one-call visit: the fast path's CAS, else the slow path's queue. */
inline visit(me) {
  bit got = 0;
  atomic {
    if
    :: is_writer(me) && !waiters && !writer && readers == 0 ->
       writer = 1; got = 1
    :: !is_writer(me) && !waiters && !writer -> readers++; got = 1
    :: else -> skip
    fi
  };
  if
  :: got -> skip
  :: else ->
     lock_mu();
     atomic {                          /* fetch_or(WAITERS), then decide */
       waiters = 1;
       if
       :: len(q) == 0 && is_writer(me) && !writer && readers == 0 ->
          writer = 1; waiters = 0; got = 1
       :: len(q) == 0 && !is_writer(me) && !writer ->
          readers++; waiters = 0; got = 1
       :: len(q) > 0 || writer || (is_writer(me) && readers > 0) ->
          granted[me] = 0; sleeper[me] = 0;
          queued_seq[me] = next_seq; next_seq++;
          q!me
       fi
     };
     unlock_mu();
     if
     :: got -> skip
     :: else -> wait_turn(me)
     fi
  fi;
  /* the visit */
  if
  :: is_writer(me) ->
     atomic { in_write++; assert(in_write == 1 && in_read == 0) };
     in_write--
  :: else ->
     atomic { in_read++; assert(in_write == 0) };
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

init {
  atomic {
    run visitor(); run visitor(); run visitor()
  }
}
