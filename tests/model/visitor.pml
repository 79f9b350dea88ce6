/*
 * visitor.pml -- a Promela model of the visitor protocol (src/visitor.c,
 * detached.c, cancel.c, lock.c, park.c): three visitors of one buffer,
 * cast in this order,
 *
 *   W  a write visitor, granted at once; its owner may drive it
 *      (hb_try_visit) or leave it to the shutdown's cancel;
 *   D  a detached write visitor queued behind W: whoever grants it runs
 *      it, then calls its done -- which cancels R, the visitor D's own
 *      release made runnable (the issue's "done that cancels");
 *   R  a read visitor queued behind D; its owner polls it with a waker
 *      or parks in hb_block_on;
 *
 * and a shutdown thread that cancels W, D and R (retrying while one runs)
 * and then frees the buffer, the moment hb_free would allow it (nothing
 * live in the lock word).  One atomic step here is one atomic instruction
 * (or a mutex-protected section, for the wait queue) there.
 *
 * Checked, over every interleaving:
 *   - no touch of the buffer after it was freed (TOUCH);
 *   - no touch of a visitor on its behalf after it was reported finished
 *     (a driver returned, hb_cancel returned HB_OK, or done was called):
 *     clearing WAKING, clearing a driver's PARKED/DRIVER, running D;
 *   - a writer's callback runs alone, a reader's with no writer;
 *   - nobody waits forever (spin's invalid end states).
 *
 * Bugs that must be found (scripts/model.sh checks they are):
 *   -DDONE_BEFORE_WAKERS  done before the wakers its release made due (the
 *                         old order): done's cancel of R waits for a WAKING
 *                         only this thread can clear -- a deadlock;
 *   -DNO_PRESENT_WAIT     hb_cancel returns without waiting for a parked or
 *                         registering driver to leave (the old cancel):
 *                         the driver touches v (and its buffer) after;
 *   -DGRANT_NO_CLAIM      the grant of a PARKED visitor only sets GRANTED,
 *                         yet its driver runs it without a claim of its own
 *                         (as if the grant had claimed it): a cancel claims
 *                         it too, gives its ticket back and lets the buffer
 *                         go under the running callback.
 */

#define W 0
#define D 1
#define R 2

/* phases */
#define CAST 1
#define RUNNING 2
#define RAN 3
#define CANCELLING 4
#define CANCELLED 5

/* answers */
#define OK 0
#define EAGAIN 1
#define ECANCELED 2
#define EBUSY 3
#define ESTATE 4
#define CLAIMED 5
#define CG 6      /* cancel: granted, claimed */
#define CQ 7      /* cancel: queued */
#define WAIT 8

byte phase[3];
bit granted[3], waker[3], waking[3], parked[3], driver[3], detached[3];
bit queued[3];
bit fin[3];        /* reported finished: its storage may go */
bit woke;          /* R's waker was called: its owner polls again */
bit freed;         /* the buffer was freed */
byte writers, readers; /* granted tickets (the lock word) */
bit waiters;       /* HB__W_WAITERS */
bit mu;            /* the buffer's mutex */
byte in_w, in_r;   /* callbacks running */

#define TOUCH assert(!freed)

inline lock() { atomic { TOUCH; mu == 0 -> mu = 1 } }
inline unlock() { TOUCH; mu = 0 }

/* hb__grant: under mu.  What the grant asks for goes to the caller's
 * wakelist (wl_wake, wl_det: locals of every process). */
inline grant(i) {
  atomic {
    granted[i] = 1;
    if
#ifndef GRANT_NO_CLAIM
    :: parked[i] -> phase[i] = RUNNING   /* the wake, and the driver's claim */
#else
    :: parked[i] -> skip                 /* the wake only */
#endif
    :: !parked[i] && detached[i] -> phase[i] = RUNNING; wl_det = 1
    :: !parked[i] && !detached[i] && waker[i] ->
       waker[i] = 0; waking[i] = 1; wl_wake = 1
    :: !parked[i] && !detached[i] && !waker[i] -> skip
    fi
  }
}

/* hb__dispatch: under mu; D before R in the queue. */
inline dispatch() {
  do
  :: atomic { queued[D] && writers == 0 && readers == 0 ->
       TOUCH; writers = 1; queued[D] = 0 }; grant(D)
  :: atomic { !queued[D] && queued[R] && writers == 0 ->
       TOUCH; readers++; queued[R] = 0 }; grant(R)
  :: atomic { !queued[D] && !queued[R] -> TOUCH; waiters = 0 }; break
  :: atomic { (queued[D] && (writers != 0 || readers != 0)) ||
              (!queued[D] && queued[R] && writers != 0) -> skip }; break
  od
}

/* hb__release: the last holder to leave, seeing WAITERS, dispatches. */
inline release(write) {
  atomic {
    TOUCH;
    if
    :: write -> writers--; sawwait = waiters
    :: else -> readers--; sawwait = waiters && readers == 0
    fi
  }
  if
  :: sawwait -> lock(); dispatch(); unlock()
  :: else -> skip
  fi
}

/* hb__call_waker: R's waker (an fd waker: it tells R's owner), then
 * WAKING cleared -- the granter's last touch of R. */
inline call_wakers() {
  if
  :: wl_wake -> wl_wake = 0; woke = 1; atomic { assert(!fin[R]); waking[R] = 0 }
  :: else -> skip
  fi
}

/* D's done: D is finished; it cancels R, whom D's release made runnable. */
inline done_d() {
  fin[D] = 1;
  cancel_r()
}

/* The flush after a release that may have granted D: call the wakers, run
 * D, call the wakers its release made due, then its done. */
inline flush_full() {
  call_wakers();
  if
  :: wl_det ->
     wl_det = 0;
     assert(!fin[D]);
     atomic { TOUCH; assert(in_w == 0 && in_r == 0); in_w++ };
     in_w--;
     release(1);
     phase[D] = RAN;
#ifdef DONE_BEFORE_WAKERS
     done_d();
     call_wakers()
#else
     call_wakers();
     done_d()
#endif
  :: else -> skip
  fi
}

/* hb_cancel of a granted visitor's common tail: CANCELLED, wake the
 * drivers, and wait for an announced one to leave. */
inline wait_present(i) {
#ifndef NO_PRESENT_WAIT
  (!parked[i] && !driver[i])
#else
  skip
#endif
}

/* hb_cancel(R), by D's done or by the shutdown.  Nothing is behind R, so
 * its release and dispatch grant nothing: no flush. */
inline cancel_r() {
  do
  :: (!waking[R]) ->
     atomic {
       if
       :: phase[R] == CAST && granted[R] -> phase[R] = CANCELLING; rc = CG
       :: phase[R] == CAST && !granted[R] -> rc = CQ
       :: phase[R] == RUNNING -> rc = EBUSY
       :: else -> rc = ESTATE
       fi
     };
     if
     :: rc == CG ->
        release(0);
        phase[R] = CANCELLED;
        wait_present(R);
        fin[R] = 1;
        break
     :: rc == CQ ->
        lock();
        atomic {
          if
          :: phase[R] == CAST && !granted[R] ->
             phase[R] = CANCELLING; own = waker[R]; waker[R] = 0;
             queued[R] = 0; rc = OK
          :: else -> rc = WAIT
          fi
        };
        if
        :: rc == WAIT -> unlock()
        :: else ->
           dispatch();
           unlock();
           atomic { phase[R] = CANCELLED; waking[R] = own };
           if                       /* its own waker, with CANCELLED|WAKING */
           :: own -> woke = 1; atomic { assert(!fin[R]); waking[R] = 0 }
           :: else -> skip
           fi;
           wait_present(R);
           fin[R] = 1;
           break
        fi
     :: rc == EBUSY -> (phase[R] != RUNNING)
     :: else ->
        /* HB_ESTATE: finished, or another cancel under way -- which must
         * be over first (the drivers it waits for gone), or "finished"
         * would let the buffer go under them. */
        (phase[R] != CANCELLING &&
         (phase[R] != CANCELLED || (!parked[R] && !driver[R])));
        break
     fi
  od
}

/* Run R (claimed): hb__note_wait and the callback, the release (nothing
 * is behind it). */
inline run_r() {
  atomic { TOUCH; assert(in_w == 0); in_r++ };
  in_r--;
  release(0);
  phase[R] = RAN;
  rc = OK
}

/* A driver that announced itself with PARKED or DRIVER and saw R leave
 * the queue: claim and run it (PARKED: the grant claimed it), or leave the
 * cancel to finish.  Clearing the flag is its last touch of R. */
#define FL_DRIVER 0
#define FL_PARKED 1
inline drop_flag(FL) {
  if
  :: FL == FL_DRIVER -> driver[R] = 0
  :: else -> parked[R] = 0
  fi
}
inline drive_present(FL) {
  do
  :: (!waking[R]) ->
     atomic {
       if
       :: phase[R] == CAST && granted[R] && FL == FL_DRIVER ->
          phase[R] = RUNNING; drop_flag(FL); rc = CLAIMED
       :: phase[R] == RUNNING && FL == FL_PARKED ->   /* the grant claimed */
          drop_flag(FL); rc = CLAIMED
#ifdef GRANT_NO_CLAIM
       :: phase[R] == CAST && granted[R] && FL == FL_PARKED ->
          drop_flag(FL); rc = CLAIMED       /* runs as if the grant had claimed */
#endif
       :: phase[R] == CANCELLING -> rc = WAIT
       :: phase[R] == CANCELLED -> assert(!fin[R]); drop_flag(FL);
          rc = ECANCELED
       fi
     };
     if
     :: rc == WAIT -> (phase[R] != CANCELLING)
     :: rc == CLAIMED -> run_r(); break
     :: else -> break
     fi
  od
}

/* hb__try_run(R): settle, then decide or claim on one look at the state. */
inline try_r() {
  (!waking[R] && phase[R] != CANCELLING);
  atomic {
    if
    :: phase[R] == RAN -> rc = OK
    :: phase[R] == CANCELLED -> rc = ECANCELED
    :: phase[R] == CAST && !granted[R] -> rc = EAGAIN
    :: phase[R] == CAST && granted[R] -> phase[R] = RUNNING; rc = CLAIMED
    :: phase[R] == CANCELLING || phase[R] == RUNNING -> rc = WAIT
    fi
  };
  if
  :: rc == CLAIMED -> run_r()
  :: else -> skip
  fi
}

/* W's owner: drives W once, or never. */
proctype owner_w() {
  byte rc, own;
  bit sawwait, wl_wake, wl_det;
  if
  :: atomic { phase[W] == CAST && granted[W] -> phase[W] = RUNNING };
     atomic { TOUCH; assert(in_w == 0 && in_r == 0); in_w++ };
     in_w--;
     release(1);
     phase[W] = RAN;
     flush_full();
     fin[W] = 1
  :: skip
  fi
}

/* R's owner: hb_poll with a waker (again after each wake), or
 * hb_block_on. */
proctype owner_r() {
  byte rc, own;
  bit sawwait, wl_wake, wl_det, ann;
  if
  :: do
     :: try_r();
        if
        :: rc == WAIT -> skip
        :: rc == EAGAIN ->
           atomic {                  /* hb__announce(DRIVER) */
             if
             :: phase[R] == CAST && !granted[R] -> driver[R] = 1; ann = 1
             :: else -> ann = 0
             fi
           };
           if
           :: ann ->
              lock();                /* hb__mark_queued: +WAKER -DRIVER */
              atomic {
                if
                :: phase[R] == CAST && !granted[R] -> waker[R] = 1;
                   driver[R] = 0; ann = 1
                :: else -> ann = 0
                fi
              };
              unlock();
              if
              :: ann -> (woke); woke = 0   /* HB_PENDING; the waker came */
              :: else -> drive_present(FL_DRIVER); break
              fi
           :: else -> skip
           fi
        :: else -> break
        fi
     od
  :: do
     :: try_r();
        if
        :: rc == WAIT -> skip
        :: rc == EAGAIN ->
           atomic {                  /* hb__announce(PARKED), -WAKER */
             if
             :: phase[R] == CAST && !granted[R] -> parked[R] = 1;
                waker[R] = 0; ann = 1
             :: else -> ann = 0
             fi
           };
           if
           :: ann ->
              TOUCH;                 /* the spin budget */
              (granted[R] || phase[R] != CAST);   /* hb__wait_turn */
              drive_present(FL_PARKED);
              break
           :: else -> skip
           fi
        :: else -> break
        fi
     od
  fi;
  fin[R] = 1
}

/* Cancel every visitor, then free the buffer as soon as hb_free would. */
proctype shutdown() {
  byte rc, own;
  bit sawwait, wl_wake, wl_det;
  do                                 /* hb_cancel(W): granted */
  :: atomic {
       if
       :: phase[W] == CAST -> phase[W] = CANCELLING; rc = CG
       :: phase[W] == RUNNING -> rc = EBUSY
       :: else -> rc = ESTATE
       fi
     };
     if
     :: rc == CG ->
        release(1); phase[W] = CANCELLED; flush_full(); fin[W] = 1; break
     :: rc == EBUSY -> (phase[W] != RUNNING)
     :: else -> break
     fi
  od;
  do                                 /* hb_cancel(D): queued, or running */
  :: atomic {
       if
       :: phase[D] == CAST -> rc = CQ
       :: phase[D] == RUNNING -> rc = EBUSY
       :: else -> rc = ESTATE
       fi
     };
     if
     :: rc == CQ ->
        lock();
        atomic {
          if
          :: phase[D] == CAST && !granted[D] -> phase[D] = CANCELLING;
             queued[D] = 0; rc = OK
          :: else -> rc = WAIT
          fi
        };
        if
        :: rc == WAIT -> unlock()
        :: else ->
           dispatch();               /* may grant R */
           unlock();
           phase[D] = CANCELLED;
#ifdef DONE_BEFORE_WAKERS
           done_d();
           call_wakers();
#else
           call_wakers();
           done_d();
#endif
           break
        fi
     :: rc == EBUSY -> (phase[D] != RUNNING)
     :: else -> break
     fi
  od;
  cancel_r();
  /* hb_free: succeeds once nothing is live */
  atomic { writers == 0 && readers == 0 && !waiters -> freed = 1 }
}

init {
  atomic {
    phase[W] = CAST; granted[W] = 1; writers = 1;      /* W: granted */
    phase[D] = CAST; detached[D] = 1; queued[D] = 1;   /* D: queued */
    phase[R] = CAST; queued[R] = 1;                    /* R: queued */
    waiters = 1;
    run owner_w(); run owner_r(); run shutdown()
  }
}
