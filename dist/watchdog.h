// A watchdog of the training step (step_timeout) and of checkpoint saves (ckpt_timeout): a thread
// per rank that ends the job when the rank's current step or save has run for longer than its
// limit. A stalled rank (stopped, or stuck in a system call) cannot report itself, but the
// others then wait for it inside a collective and their own watchdogs fire; each reports itself
// and names the ranks of its host it finds stopped, and exits (status 1) without MPI: the
// launcher then ends every rank, stopped ones included.
#ifndef DIST_WATCHDOG_H
#define DIST_WATCHDOG_H

#include "dist/dist.h"

// The automatic limit of a step (seconds < 0): DIST_WATCHDOG_FACTOR times the slowest step this
// rank has timed so far in this run (the first ones included), at least the floor
// (DIST_WATCHDOG_FLOOR seconds, or rank 0's FNN_STEP_TIMEOUT_FLOOR), and no limit before
// DIST_WATCHDOG_WARMUP steps are timed: the first steps of a run fault in its memory and are the
// slowest by far.
#define DIST_WATCHDOG_FACTOR 10
#define DIST_WATCHDOG_FLOOR 300
#define DIST_WATCHDOG_WARMUP 3
// The automatic limit of a checkpoint save: the checkpoint's bytes at DIST_WATCHDOG_SAVE_RATE
// bytes/s, DIST_WATCHDOG_FACTOR times the slowest save this rank has timed so far, at least the
// floor (DIST_WATCHDOG_SAVE_FLOOR seconds, or rank 0's FNN_CKPT_TIMEOUT_FLOOR). Generous on
// purpose: a healthy save on a loaded parallel filesystem must never be killed, and the first
// save has no history (4 MiB/s is far below what any shared filesystem gives one job).
#define DIST_WATCHDOG_SAVE_RATE (4.0 * 1048576)
#define DIST_WATCHDOG_SAVE_FLOOR 1800

// Collective over g->world (every rank learns the others' host and pid). step_seconds, the
// limit of a step, and save_seconds, the limit of a checkpoint save: > 0: that limit; 0: none;
// < 0: the automatic limit. Both 0: no watchdog, the calls below then do nothing. A malformed
// FNN_STEP_TIMEOUT_FLOOR or FNN_CKPT_TIMEOUT_FLOOR ends the job with one line.
void dist_watchdog_start(dist_grid* g, double step_seconds, double save_seconds);
// Step `step` (1-based, for the message) starts now: the limit counts from here. A step is
// timed from its arm to the next arm, save or disarm, whichever comes first.
void dist_watchdog_arm(long step);
// The checkpoint save of step `step` (or the wait for the one written in the background) starts
// now, `bytes` at most in the job's file: the save limit counts from here to the next disarm,
// which times the save; the step in progress, if any, ends here.
void dist_watchdog_save(long step, double bytes);
// Outside a step and a save (scoring, the end of training): no limit, and the time from here to
// the next arm is neither a step's nor a save's.
void dist_watchdog_disarm(void);

#endif
