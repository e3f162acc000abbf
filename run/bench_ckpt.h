// fnn bench --ckpt: checkpoint save and load speed beside the filesystem's raw speed.
#ifndef RUN_BENCH_CKPT_H
#define RUN_BENCH_CKPT_H

#include "dist/dist.h"

// Runs on every rank of the world (TP = the number of ranks); returns the exit status.
int bench_ckpt(int argc, char** argv, dist_grid* world);

#endif
