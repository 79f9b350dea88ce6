/*
 * bias.pml -- a Promela model of the bias revocation (see BIAS in
 * src/bias.c), on a CPU with store buffers (x86-TSO): the biased
 * thread's stores of `held` wait in its store buffer, which drains at any
 * moment; its loads of the lock word read memory.  The revoker's CAS is
 * atomic, and membarrier(2) drains the biased thread's buffer at the
 * moment it runs.  Checked: a write visit of the biased thread and the
 * revoker's write visit never overlap, every ticket moved into the lock
 * word is given back, and nobody waits forever.
 *
 * `spin -a bias.pml` checks the protocol as built; `spin -DNO_FENCE -a`
 * leaves the membarrier out and must find the overlap (that the model can
 * fail).  scripts/model.sh runs both.
 */

bit biased = 1;    /* HB__W_BIASED in the lock word */
bit waiters = 0;   /* HB__W_WAITERS: set with BIASED's fall, until decided */
bit shared = 0;    /* bias_owner == HB__BIAS_SHARED */
byte tickets = 0;  /* write tickets granted in the lock word (0 or 1) */
byte held = 0;     /* the biased thread's `held`, in memory */
byte decision = 0; /* 0 pending, 1 kept, 2 moved */
bit owner_in = 0, revoker_in = 0;
bit owner_done = 0, revoker_done = 0;

chan sb = [3] of { byte }; /* the biased thread's store buffer (held) */

/* A store buffer drains in order, whenever the CPU likes. */
active proctype drain() {
  byte v;
end:
  do
  :: atomic { nempty(sb) -> sb?v; held = v }
  od
}

/* A shared-path write visit: the lock word's fast path (no BIASED, no
 * WAITERS, nothing granted), the callback, the release. */
inline shared_visit(me, other) {
  atomic { !biased && !waiters && tickets == 0 -> tickets = 1 };
  me = 1; assert(!other); me = 0;
  tickets--
}

/* The biased thread: two one-call write visits. */
active proctype owner() {
  byte visits = 0;
  bit moved;
  do
  :: visits == 2 -> break
  :: visits < 2 ->
     moved = 0;
     if
     :: shared -> shared_visit(owner_in, revoker_in); goto next
     :: else -> skip
     fi;
     sb!1;                              /* held = WRITE; compiler barrier */
     if
     :: biased -> skip                  /* load the lock word */
     :: else ->
        (decision != 0);                /* revoked as we came */
        if
        :: decision == 2 -> moved = 1   /* our hold is a ticket now */
        :: else -> sb!0; shared_visit(owner_in, revoker_in); goto next
        fi
     fi;
     owner_in = 1; assert(!revoker_in); owner_in = 0;   /* the callback */
     sb!0;                              /* held = 0; compiler barrier */
     if
     :: moved -> skip
     :: !moved && biased -> skip        /* load the lock word: still ours */
     :: !moved && !biased -> (decision != 0); moved = (decision == 2)
     fi;
     if
     :: moved -> tickets--              /* the ordinary release */
     :: else -> skip
     fi;
next:
     visits++
  od;
  owner_done = 1
}

/* Another thread's write cast: revoke under the mutex, then visit. */
active proctype revoker() {
  byte v;
  atomic { biased = 0; waiters = 1 };   /* one CAS */
  shared = 1;
#ifndef NO_FENCE
  atomic {                              /* membarrier: the biased thread's */
    do                                  /* stores so far reach memory */
    :: nempty(sb) -> sb?v; held = v
    :: empty(sb) -> break
    od
  };
#endif
  if
  :: held != 0 -> tickets++; decision = 2   /* moved */
  :: else -> decision = 1                   /* kept */
  fi;
  waiters = 0;
  shared_visit(revoker_in, owner_in);
  revoker_done = 1
}

/* At the end: every ticket is back. */
active proctype done() {
  (owner_done && revoker_done);
  assert(tickets == 0 && decision != 0)
}
