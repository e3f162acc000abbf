// Ownership of a checkpoint directory by one run. At start-up the directory is created, checked
// for writability and locked by the job (a lock file "<dir>/lock" held by world rank 0 until the
// process ends, naming its host and pid for a second job that finds it taken). Every checkpoint
// records the run id of its lineage (/train/run_id): chosen at a fresh start, kept on resume; the
// directory prunes only files of its own run, and a fresh run refuses a directory that holds
// another run's checkpoints unless told to start over.
//
// The collective functions are collective over g->world; rank 0 alone touches the directory and
// the others learn the verdict from one reduction. They return 0, or -1 on every rank with rank
// 0's one-line message in err (the other ranks' err is empty: report it with dist_fail_all).
#ifndef IO_CKPT_DIR_OWN_H
#define IO_CKPT_DIR_OWN_H

#include <stddef.h>
#include "dist/dist.h"
#include "io/checkpoint.h"

// Creates dir (and missing parents), checks a file can be created in it, and takes its lock.
int ckpt_dir_claim(const char* dir, dist_grid* g, char* err, size_t errlen);

// The run id of this run into run_id (every rank): that of the checkpoint resumed from, or, when
// resumed is NULL, a new one; then a fresh run refuses dir if it holds checkpoints of another
// run, or with overwrite removes them (and the pointer to the newest); it refuses instead if one
// of them is the file keep (init_from, NULL for none).
int ckpt_dir_adopt(const char* dir, const char* resumed, int overwrite, const char* keep,
                   char* run_id, dist_grid* g, char* err, size_t errlen);

#endif
