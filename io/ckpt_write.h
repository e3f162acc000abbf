// The two halves of a checkpoint save (io/checkpoint.c), for the saves that run them apart
// (io/ckpt_async.c: the file's data written in the background between them).
#ifndef IO_CKPT_WRITE_H
#define IO_CKPT_WRITE_H

#include "io/checkpoint.h"
#include "io/h5.h"

// Writes the temporary file tmp of a save of m (what ckpt_save writes), and closes it; with
// place (its place and place_arg, h5.h) the datasets' elements are handed to place instead of
// written. Returns h5_close's verdict, the same on every rank. Collective over m->g->world.
int ckpt_write_tmp(const char* tmp, const model* m, const fnn_config* cfg, const ckpt_train* st,
                   int with_optim, const h5file* place, char* err, size_t errlen);
// Every rank learns whether any rank failed to write tmp (bad); on success rank 0 renames it to
// path and makes the rename durable. A failed save removes tmp and leaves path as it was. 0, or
// -1 on every rank with a message in err. Collective over g->world.
int ckpt_commit(const char* tmp, const char* path, int bad, dist_grid* g, char* err, size_t errlen);

#endif
