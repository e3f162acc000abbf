// A watchdog of the training step (step_timeout): a thread per rank that ends the job when the
// rank's current step has run for longer than its limit. A stalled rank (stopped, or stuck in a
// system call) cannot report itself, but the others then wait for it inside a collective and
// their own watchdogs fire; each reports itself and names the ranks of its host it finds
// stopped, and exits (status 1) without MPI: the launcher then ends every rank, stopped ones
// included.
#ifndef DIST_WATCHDOG_H
#define DIST_WATCHDOG_H

#include "dist/dist.h"

// The automatic limit (seconds < 0): DIST_WATCHDOG_FACTOR times the slowest step this rank has
// timed so far in this run (the first ones included), at least the floor (DIST_WATCHDOG_FLOOR
// seconds, or rank 0's FNN_STEP_TIMEOUT_FLOOR), and no limit before DIST_WATCHDOG_WARMUP steps
// are timed: the first steps of a run fault in its memory and are the slowest by far.
#define DIST_WATCHDOG_FACTOR 10
#define DIST_WATCHDOG_FLOOR 300
#define DIST_WATCHDOG_WARMUP 3

// Collective over g->world (every rank learns the others' host and pid). seconds > 0: that
// limit for every step; 0: no watchdog, the calls below then do nothing; < 0: the automatic
// limit. A malformed FNN_STEP_TIMEOUT_FLOOR ends the job with one line.
void dist_watchdog_start(dist_grid* g, double seconds);
// Step `step` (1-based, for the message) starts now: the limit counts from here. A step is
// timed from its arm to the next arm or disarm, whichever comes first.
void dist_watchdog_arm(long step);
// Outside a step (a checkpoint save, the end of training): no limit, and the time from here to
// the next arm is not a step's.
void dist_watchdog_disarm(void);

#endif
