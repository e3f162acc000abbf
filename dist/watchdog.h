// A watchdog of the training step (step_timeout): a thread per rank that ends the job when the
// rank's current step has run for longer than its limit. A stalled rank (stopped, or stuck in a
// system call) cannot report itself, but the others then wait for it inside a collective and
// their own watchdogs fire; each reports itself and names the ranks of its host it finds
// stopped, and exits (status 1) without MPI: the launcher then ends every rank, stopped ones
// included.
#ifndef DIST_WATCHDOG_H
#define DIST_WATCHDOG_H

#include "dist/dist.h"

// Collective over g->world (every rank learns the others' host and pid). seconds <= 0: no
// watchdog; the calls below then do nothing.
void dist_watchdog_start(dist_grid* g, double seconds);
// Step `step` (1-based, for the message) starts now: the limit counts from here.
void dist_watchdog_arm(long step);
// Outside a step (a checkpoint save, the end of training): no limit.
void dist_watchdog_disarm(void);

#endif
