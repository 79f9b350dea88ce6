/*
 * rbias.pml -- a Promela model of the read bias (NEXTR.md; src/rbias.c,
 * and its callers in src/now.c and src/lock.c): one-call readers
 * announce themselves in a slot of the buffer's reader table instead of
 * taking a ticket in the lock word; a writer revokes the bias under the
 * mutex and moves the announced readers into the lock word as ONE
 * collective read share, counted by rb_refs, which the last of them (or
 * the revoker, if nobody was moved) gives back.
 *
 * Memory model: sequentially consistent interleaving, which is right
 * here because every step the protocol rests on is SEQ_CST in the C: the
 * RMWs (the lock word's CASes, the slots' CASes and exchange, rb_refs'
 * adds) and the two loads of the Dekker pair (R3's load of the lock
 * word, V3's load of a slot's owner).  The rest is RELEASE/ACQUIRE
 * ordered or, for the relaxed RMWs on rb_refs, ordered through the owner
 * word (V3's add before its SEQ_CST CAS, which R6 reads before M's
 * subtraction); the plain store at V2 is made under the mutex.
 *
 * Threads (pids): readers 1 and 2 read READS times each (1 unless -D;
 * -DOWN_SLOTS: reader p always hashes to slot p - 1), writers 3 and 4
 * write once each.  A read (hb_read_now) either:
 *   - finds RWANT clear (the counting heuristic said no, which the model
 *     leaves to chance) and takes the ordinary path, or
 *   - goes to hb__rbias_read:
 *     R0 no RBIAS -> arm (hb__rbias_arm, under the mutex: rb_refs == 0
 *        and a word with none of WRITER, WAITERS, NEXT, RBIAS, re-read
 *        by the CAS that sets RBIAS); still none -> the ordinary path,
 *        else R0 again (hb__rb_unarmed calls hb__rbias_read, which
 *        tests RBIAS first);
 *     R2 CAS a slot's owner 0 -> me (either slot: the hash is anybody's,
 *        so two readers in one slot are covered); fails -> ordinary;
 *     R3 load the lock word; no RBIAS -> CAS owner me -> 0: done ->
 *        the ordinary path; failed -> the revoker marked us MOVED, on;
 *     R4 the callback;
 *     R6 exchange owner -> 0; MOVED -> M: fetch_sub rb_refs, from 1 ->
 *        give the collective share back (hb__release, no done read).
 *   The ordinary path (hb__now_locked): the read fast CAS (no WRITER,
 *   NEXT or WAITERS), else hb__next_wait's CAS (refused on WAITERS, NEXT
 *   or RBIAS: then hb__cast_slow; the plain grant if nothing conflicts;
 *   else take NEXT and wait for the hand-off), else hb__cast_slow: under
 *   the mutex revoke if RBIAS (any mode: WAITERS never shows beside it),
 *   the fetch_or of WAITERS, granted or queued for the dispatcher.
 * A write (hb_write_now): the fast CAS (nothing live: RBIAS is in the
 * write conflict), else hb__now_slow: RBIAS -> hb__rbias_end (revoke
 * under the mutex) and the fast CAS again, then hb__next_wait and
 * hb__cast_slow as a reader's.  The revocation: V1 one CAS clears RBIAS
 * and adds the provisional collective share; V2 rb_refs = 1; V3 per
 * slot: load owner, set and not MOVED -> fetch_add rb_refs, CAS owner
 * o -> o|MOVED, fetch_sub if it failed; V4 fetch_sub rb_refs, from 1 ->
 * give the share back under the mutex (hb__release_word, which hands off
 * to NEXT; hb__dispatch if it says so).  With -DTRYW writer 4 writes with
 * hb_try_write_now: no NEXT, no queue, HB_EAGAIN with nothing taken if
 * the second fast CAS fails (moved readers then still hold the share).
 * Releases, as handoff.pml's: the inline CAS while WAITERS is clear, else
 * hb__release (a writer that saw WAITERS hands off through the
 * dispatcher); every release hands the lock to a NEXT waiter whose
 * conflicts it removed, in its own RMW.
 * The model starts armed (RBIAS set, table allocated, rb_refs 0): the
 * first writer revokes, a read after it may arm again, and the other
 * writer (or an ordinary reader's hb__cast_slow) then revokes again.
 *
 * Checked over every interleaving:
 *   - exclusion: a writer in its callback is alone (no other writer, no
 *     reader in a callback: fast, moved or ordinary) and holds WRITER;
 *   - every read runs exactly once, every write once (a try: at most);
 *   - no release gives back a ticket or a share that is not in the word;
 *   - after every step (the monitor): I1/I2, RBIAS => no WRITER, WAITERS
 *     or NEXT; I3, RBIAS => rb_refs == 0; NEXT => a holder;
 *   - at the end: no WRITER, readers (no leaked collective share),
 *     WAITERS or NEXT, an empty queue, rb_refs == 0, no slot owned;
 *   - nobody waits forever (pan's invalid end states).
 *
 * -DEXPIRY: the NEXT waiter may also, at any moment, expire to the queue's
 * head (hb__next_expire: under the mutex, one CAS trading NEXT for
 * WAITERS, unless the hand-off came), as in handoff.pml.
 *
 * Left out: BIASED, parking (SLEEPER, futex: handoff.pml),
 * the table's allocation (R1 never finds it NULL once RBIAS was set),
 * `reads` and the heuristic setting RWANT, nested reads, the try read,
 * streams, hb_free.
 *
 * Seen on the way (each with the line changed, then put back): V4's
 * give-back never finds WAITERS, so its hb__dispatch never runs (an
 * assert(false) there holds in both configurations); RBIAS in the write
 * conflict matters only in the fast CAS's busy mask (out of the cast's,
 * the dispatcher's and the hand-off's it still passes, as NEXTR.md says:
 * they never see it); a reader's hb__cast_slow that does not revoke
 * passes too, but for WAITERS showing beside RBIAS; arming that ignores
 * NEXT leaves NEXT with no holder, and arming that ignores WAITERS a
 * queued writer nobody dispatches (an invalid end state).
 *
 * Bugs that must be found (scripts/model.sh checks each one's message):
 *   -DNO_PROVISIONAL  V1 clears RBIAS without the share, which is added
 *     after the scan: in between the word looks free and the other
 *     writer's fast CAS runs beside an announced reader -- exclusion.
 *   -DNO_RECHECK  the reader skips R3: it announces itself after the
 *     revoker's scan passed its slot and reads beside the writer --
 *     exclusion.
 *   -DEXIT_STORE  the reader leaves with a plain store of 0, not looking
 *     for MOVED: a moved reader never drops its ref and the collective
 *     share stays in the word -- at the end, readers != 0 (pan's first
 *     trail: the revoker is the other reader's hb__cast_slow and nobody
 *     writes after it; where a writer comes after, it waits forever, an
 *     invalid end state).
 *   -DREFS_LATE  V3 adds the moved reader's ref after its CAS on owner:
 *     the reader, leaving in between, takes rb_refs from the revoker's 1
 *     to 0 and gives the share back early, and V4 then gives it back
 *     again -- the first failure pan finds is that second give-back
 *     (assertion readers > 0: the READERS count would wrap); with two
 *     moved readers the early give-back also lets a writer in beside the
 *     other one (exclusion, seen with pan -c0).
 *   -DARM_WITH_REFS  arming does not wait for rb_refs == 0.  A writer's
 *     hb__rbias_end leaves the mutex with moved readers still in, and
 *     until its hb__next_wait takes NEXT (or a try-writer for good) the
 *     word shows none of WRITER, WAITERS, NEXT: a reader arms there while
 *     a moved reader's ref is still counted -- I3, in the monitor.  (Left
 *     to run on: the writer's hb__next_wait is refused on RBIAS, its
 *     hb__cast_slow revokes again, V2 stores 1 over the old reader's ref,
 *     V4 gives its own share back and the old reader's M finds rb_refs
 *     0: the counter wraps, the first share leaks or a writer gets in
 *     beside it.)
 */

#ifndef READS
#define READS 1      /* reads per reader */
#endif
#define NR 2         /* pids 1, 2: readers */
#define W1 3         /* pids 3, 4: writers */
#define W2 4
#define NPROC 4
#define K 2          /* slots */
#define MOVED 1      /* HB__RB_MOVED in a slot's owner (pid << 1) */

/* The lock word, one variable per field. */
bit writer = 0;      /* HB__W_WRITER */
byte readers = 0;    /* read tickets, the collective share counted in */
bit waiters = 0;     /* HB__W_WAITERS */
bit next = 0;        /* HB__W_NEXT */
bit next_w = 0;      /* HB__W_NEXT_W */
bit rbias = 1;       /* HB__W_RBIAS: armed at the start */
byte next_pid = 0;   /* who holds NEXT (EPOCH's flip: granted[] below) */

byte owner[K];       /* the slots' owners: 0, or pid << 1 | MOVED */
byte rb_refs = 0;    /* e->rb_refs */

bit mu = 0;          /* e->mu */
byte q[NPROC];       /* the wait queue, under mu: q[0] is the head */
byte qlen = 0;
byte qi = 0;         /* scratch for the queue's shift, left 0 */
bit granted[NPROC + 1]; /* a queued grant or NEXT hand-off came */

/* Ghosts: callbacks running, runs per thread, threads finished. */
byte in_write = 0, in_read = 0;
byte runs[NPROC + 1];
byte finished = 0;

#define is_writer(p) ((p) > NR)
/* hb__mode.conflict of p's grant: NEXT in both, RBIAS in the write's. */
#define conflicts(p) \
  (writer || next || (is_writer(p) && (readers > 0 || rbias)))

/* The inlines' scratch, each proctype's own (Promela has no inline
 * locals), left 0 after use. */
#define SCRATCH \
  byte h = 0, vk = 0, vo = 0, took = 0; \
  bit pend = 0, stop = 0, d_to_w = 0, r_to_w = 0, saw = 0, wsaw = 0, \
      to_w = 0, mlast = 0, vok = 0, vlast = 0, got = 0, rfast = 0

inline lock_mu() { atomic { mu == 0 -> mu = 1 } }
inline unlock_mu() { mu = 0 }

inline pop_head() {
  qi = 0;
  do
  :: qi + 1 < qlen -> q[qi] = q[qi + 1]; qi++
  :: else -> break
  od;
  qlen--; q[qlen] = 0; qi = 0
}

/* hb__handoff_next, in the RMW that just removed a holder: a NEXT waiter
 * with none of its conflicts left gets its ticket, NEXT falls (and EPOCH
 * flips: its granted[]).  to_w: a NEXT writer is the holder now. */
inline handoff(to_w) {
  if
  :: next && next_w && !writer && readers == 0 && !rbias ->
     next = 0; next_w = 0; writer = 1; granted[next_pid] = 1;
     next_pid = 0; to_w = 1
  :: next && !next_w && !writer ->
     next = 0; readers++; granted[next_pid] = 1; next_pid = 0
  :: else -> skip
  fi
}

/* hb__dispatch under mu, `pw` a writer's release folded into its first
 * CAS with the hand-off: then grant from the head while nothing it
 * conflicts with is left. */
inline dispatch(pw) {
  pend = pw;
  do
  :: atomic {
       if :: pend -> writer = 0 :: else -> skip fi;
       handoff(d_to_w);
       pend = 0; d_to_w = 0;
       h = 0;
       if
       :: qlen == 0 -> waiters = 0; stop = 1
       :: qlen > 0 && conflicts(q[0]) -> stop = 1
       :: else ->
          h = q[0];
          if :: is_writer(h) -> writer = 1 :: else -> readers++ fi;
          if :: qlen == 1 -> waiters = 0 :: else -> skip fi;
          pop_head()
       fi
     };
     if
     :: stop -> break
     :: else ->
        granted[h] = 1;   /* hb__grant: its state word */
        if :: qlen == 0 -> break :: else -> skip fi
     fi
  od;
  h = 0; stop = 0; pend = 0
}

/* hb__release_word for one read ticket or the collective share (no done
 * count, which the model does not keep): the RMW with the hand-off, and
 * `saw`: the last holder left a waiting queue (no NEXT writer took it). */
inline release_read_word(saw) {
  atomic {
    assert(readers > 0);
    saw = waiters && readers == 1;
    readers--;
    handoff(r_to_w);
    saw = saw && !r_to_w
  };
  r_to_w = 0
}

/* A read release: the inline CAS while WAITERS is clear (hb__release_fast;
 * M's give-back calls hb__release, whose CAS does the same then), else
 * hb__release, which dispatches if release_read_word says so. */
inline release_read() {
  release_read_word(saw);
  if
  :: saw -> lock_mu(); dispatch(0); unlock_mu()
  :: else -> skip
  fi;
  saw = 0
}

inline release_write() {
  assert(writer);
  if
  :: atomic { !waiters -> writer = 0; handoff(to_w) }   /* inline CAS */
  :: wsaw = waiters;                                     /* the plain look */
     if
     :: wsaw -> lock_mu(); dispatch(1); unlock_mu()
     :: else ->
        atomic { writer = 0; handoff(to_w); wsaw = waiters && !to_w };
        if
        :: wsaw -> lock_mu(); dispatch(0); unlock_mu()
        :: else -> skip
        fi
     fi
  fi;
  wsaw = 0; to_w = 0
}

/* M: a moved reader leaving (hb__rbias_leave). */
inline moved_leave() {
  atomic { assert(rb_refs > 0); mlast = (rb_refs == 1); rb_refs-- };
  if
  :: mlast -> release_read()
  :: else -> skip
  fi;
  mlast = 0
}

/* hb__rbias_revoke under mu, RBIAS seen set under mu (only mu's holders
 * clear it, so V1's CAS loop succeeds at once). */
inline revoke() {
#ifdef NO_PROVISIONAL
  rbias = 0;                                         /* V1 without it */
#else
  atomic { assert(rbias); rbias = 0; readers++ };    /* V1 */
#endif
  assert(rb_refs == 0);                              /* V2: I3 */
  rb_refs = 1;
  do                                                 /* V3 */
  :: vk < K ->
     vo = owner[vk];
     if
     :: vo != 0 && (vo & MOVED) == 0 ->
#ifndef REFS_LATE
        rb_refs++;
#endif
        atomic {
          if
          :: owner[vk] == vo -> owner[vk] = vo | MOVED; vok = 1
          :: else -> vok = 0
          fi
        };
#ifdef REFS_LATE
        if :: vok -> rb_refs++ :: else -> skip fi;
#else
        if
        :: !vok -> atomic { assert(rb_refs > 1); rb_refs-- }
        :: else -> skip
        fi;
#endif
        vok = 0
     :: else -> skip
     fi;
     vk++
  :: else -> break
  od;
#ifdef NO_PROVISIONAL
  readers++;                                         /* the share, late */
#endif
  atomic { vlast = (rb_refs == 1); rb_refs-- };       /* V4 */
  if
  :: vlast ->                                         /* give it back */
     release_read_word(vok);
     if :: vok -> dispatch(0) :: else -> skip fi      /* mu is held */
  :: else -> skip
  fi;
  vk = 0; vo = 0; vok = 0; vlast = 0
}

/* hb__cast_slow: under mu revoke, the fetch_or of WAITERS, then granted
 * (the add that drops WAITERS) or queued until the dispatcher grants. */
inline cast_slow(me) {
  lock_mu();
  if :: rbias -> revoke() :: else -> skip fi;
  atomic {
    waiters = 1;
    if
    :: qlen == 0 && !conflicts(me) -> got = 1
    :: else -> q[qlen] = me; qlen++
    fi
  };
  if
  :: got ->
     atomic {
       if :: is_writer(me) -> writer = 1 :: else -> readers++ fi;
       waiters = 0
     };
     unlock_mu()
  :: else ->
     unlock_mu();
     granted[me];                      /* hb__wait_turn */
     granted[me] = 0
  fi;
  got = 0
}

/* hb__next_wait: its CAS, refused on WAITERS, NEXT, RBIAS (then
 * hb__cast_slow); the plain grant if nothing conflicts; else take NEXT and
 * wait for the hand-off (EPOCH's flip). */
inline next_wait(me) {   /* took: 0 refused, 1 granted, 2 in NEXT */
  atomic {
    if
    :: waiters || next || rbias -> took = 0
    :: else ->
       if
       :: !conflicts(me) ->
          if :: is_writer(me) -> writer = 1 :: else -> readers++ fi;
          took = 1
       :: else ->
          next = 1; next_w = is_writer(me); next_pid = me; took = 2
       fi
    fi
  };
  if
  :: took == 0 -> cast_slow(me)
  :: took == 1 -> skip
  :: took == 2 ->
#ifdef EXPIRY
     if
     :: granted[me] -> skip            /* hb__spin_epoch saw the flip */
     :: true ->                        /* past the budget: hb__next_expire */
        lock_mu();
        atomic {
          if
          :: granted[me] -> took = 1   /* handed over at the last moment */
          :: else ->                   /* one CAS: NEXT out, WAITERS in */
             assert(next && next_pid == me);
             next = 0; next_w = 0; next_pid = 0; waiters = 1;
             qi = qlen;                /* to the queue's head */
             do
             :: qi > 0 -> q[qi] = q[qi - 1]; qi--
             :: else -> break
             od;
             q[0] = me; qlen++
          fi
        };
        unlock_mu();
        granted[me]                    /* the hand-off, or the grant */
     fi;
#else
     granted[me];
#endif
     granted[me] = 0
  fi;
  took = 0
}

/* The callbacks, with the exclusion checks. */
inline read_callback(me) {
  atomic { in_read++; assert(in_write == 0); runs[me]++ };
  in_read--
}

inline write_callback(me) {
  atomic {
    in_write++;
    assert(in_write == 1 && in_read == 0 && writer);
    runs[me]++
  };
  in_write--
}

/* The read fast CAS (hb__grant_fast), and the write one: the busy masks. */
inline read_fast(got) {
  atomic {
    if :: !writer && !next && !waiters -> readers++; got = 1
       :: else -> skip
    fi
  }
}
inline write_fast(got) {
  atomic {
    if
    :: !writer && readers == 0 && !next && !waiters && !rbias ->
       writer = 1; got = 1
    :: else -> skip
    fi
  }
}

/* hb__now_locked for a read: fast, else hb__now_slow (NEXT or queue). */
inline ordinary_read(me) {
  read_fast(rfast);
  if
  :: rfast -> rfast = 0
  :: else -> next_wait(me)
  fi;
  read_callback(me);
  release_read()
}

/* hb__rbias_arm, R0's, under mu: the ACQUIRE load of rb_refs, then the
 * CAS that sets RBIAS only on a word with none of WRITER, WAITERS, NEXT,
 * RBIAS (a CAS that fails and is retried is one tried later).  One step
 * here: outside mu rb_refs only falls, so a later look sees no more than
 * the load did. */
#ifdef ARM_WITH_REFS
#define refs_ok 1
#else
#define refs_ok (rb_refs == 0)
#endif
inline arm() {
  lock_mu();
  atomic {
    if
    :: refs_ok && !writer && !waiters && !next && !rbias -> rbias = 1
    :: else -> skip
    fi
  };
  unlock_mu()
}

proctype reader() {
  byte n = 0, k = 0, o = 0;
  SCRATCH;
  do
  :: n == READS -> break
  :: n < READS ->
     if
     :: goto ordinary                  /* RWANT clear */
     :: skip                           /* RWANT: hb__rbias_read */
     fi;
     do                                /* R0 (hb__rb_unarmed) */
     :: rbias -> break
     :: else ->                        /* arm; RBIAS -> hb__rbias_read */
        arm(); if :: !rbias -> goto ordinary :: else -> skip fi
     od;
#ifdef OWN_SLOTS
     k = _pid - 1;                     /* R1: the slot we hash to */
#else
     if :: k = 0 :: k = 1 fi;          /* R1: the slot we hash to */
#endif
     atomic {                          /* R2 */
       if
       :: owner[k] == 0 -> owner[k] = _pid << 1; o = 1
       :: else -> o = 0
       fi
     };
     if :: o == 0 -> goto ordinary :: else -> o = 0 fi;
#ifndef NO_RECHECK
     if                                /* R3 */
     :: !rbias ->
        atomic {
          if
          :: owner[k] == _pid << 1 -> owner[k] = 0; o = 1
          :: else -> o = 0             /* MOVED: on, with the share */
          fi
        };
        if :: o == 1 -> goto ordinary :: else -> skip fi
     :: else -> skip
     fi;
#endif
     read_callback(_pid);              /* R4 (R5: reads, left out) */
#ifdef EXIT_STORE
     owner[k] = 0;
#else
     atomic { o = owner[k]; owner[k] = 0 };   /* R6 */
     if
     :: o & MOVED -> moved_leave()
     :: else -> skip
     fi;
#endif
     goto next_read;
ordinary:
     ordinary_read(_pid);
next_read:
     n++; k = 0; o = 0
  od;
  finished++
}

proctype writer_p(bit tryw) {
  bit fast = 0;
  SCRATCH;
  write_fast(fast);                    /* hb__grant_fast_now */
  if
  :: !fast && rbias ->                 /* hb__rbias_end, then again */
     lock_mu();
     if :: rbias -> revoke() :: else -> skip fi;
     unlock_mu();
     write_fast(fast)
  :: else -> skip
  fi;
  if
  :: fast -> skip
  :: !fast && tryw -> goto eagain      /* hb_try_write_now */
  :: !fast && !tryw -> next_wait(_pid)
  fi;
  write_callback(_pid);
  release_write();
eagain:
  finished++
}

/* After every step (atomic sequences are one): I1/I2, I3, NEXT. */
proctype monitor() {
end: atomic {
       !((!rbias || (!writer && !waiters && !next)) &&
         (!rbias || rb_refs == 0) && (!next || writer || readers > 0)) ->
       assert(!rbias || (!writer && !waiters && !next));
       assert(!rbias || rb_refs == 0);
       assert(!next || writer || readers > 0)
     }
}

/* At the end: nothing left in the word, the table or the queue. */
proctype final() {
  byte p = 1;
  finished == NPROC;
  assert(readers == 0);       /* no ticket, no collective share left */
  assert(!writer && !waiters && !next && qlen == 0);
  assert(rb_refs == 0 && owner[0] == 0 && owner[1] == 0);
  do
  :: p <= NR -> assert(runs[p] == READS); p++
  :: p > NR && p <= NPROC ->
#ifdef TRYW
     assert(runs[p] == 1 || (p == W2 && runs[p] == 0));
#else
     assert(runs[p] == 1);
#endif
     p++
  :: p > NPROC -> break
  od
}

init {
  atomic {
    run reader(); run reader();
    run writer_p(0);
#ifdef TRYW
    run writer_p(1);
#else
    run writer_p(0);
#endif
    run monitor();
    run final()
  }
}
