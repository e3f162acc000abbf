// Checkpoints that do not stall training (ckpt_async = true; docs/checkpoints.md, Saving in the
// background). At the step boundary each rank copies its shard of the state (parameters,
// optimiser moments, carried state) into a staging buffer, and the ranks create the temporary
// file's HDF5 structure together: groups, attributes, every dataset with its storage allocated
// and its digest (the stall). A writer thread of each rank then writes its staged pieces into
// their places in the file with pwrite and fsyncs it, while training goes on; it calls neither
// MPI nor HDF5 (Debian's HDF5 is not thread-safe), so MPI needs no thread level above the
// default. The next save, the end of the run or a stop signal waits for it and commits the save
// as a synchronous one does: every rank agrees that its writes succeeded, rank 0 renames the
// file into place and points "latest" at it. Until then the last committed checkpoint is
// untouched, whatever happens to the job.
#ifndef IO_CKPT_ASYNC_H
#define IO_CKPT_ASYNC_H

#include <stddef.h>
#include "io/checkpoint.h"

typedef struct ckpt_async ckpt_async;

// Bytes of staging a rank of m needs: its parameters, its optimiser moments (two sets, one for
// SGD) and its carried state (the memory plan's row counts the same from model_memory's sizes).
size_t ckpt_async_bytes(const model* m, int optimizer);
// The staging for saves of m (allocated once): NULL when it does not fit, with a message in err.
ckpt_async* ckpt_async_new(const model* m, int optimizer, char* err, size_t errlen);
void ckpt_async_free(ckpt_async* a);
// Waits for the previous save, then stages m and starts saving step st->step into dir as
// ckpt_dir_save would (keep: the newest kept). 0, or -1 on every rank with a message in err.
// Collective over m->g->world.
int ckpt_async_save(ckpt_async* a, const char* dir, int keep, const model* m,
                    const fnn_config* cfg, const ckpt_train* st, char* err, size_t errlen);
// Waits for the save in flight, if any, and commits it: the step committed, 0 when none was in
// flight, or -1 on every rank with one line naming the file in err (the temporary file is
// removed, "latest" still names the last good checkpoint). Collective over the model's world.
long ckpt_async_wait(ckpt_async* a, char* err, size_t errlen);
// The last save's stall and background write, in seconds (this rank's).
void ckpt_async_times(const ckpt_async* a, double* stall, double* write);

#endif
