// A rank's pieces of a checkpoint file, placed by HDF5 (h5file's place) and written by the rank
// itself with pwritev: how every checkpoint's data reaches its file (io/checkpoint.c writes them
// at once, io/ckpt_async.c from a thread). Rows that follow each other in the file go out in one
// call whatever their padding in memory. No MPI or HDF5 call: safe from any thread.
#ifndef IO_CKPT_PIECES_H
#define IO_CKPT_PIECES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct ckpt_run {
    uint64_t offset, bytes; // in the file
    int first, n;           // its memory: iov[first, first + n)
} ckpt_run;

typedef struct ckpt_pieces {
    ckpt_run* runs;
    int nruns, capruns;
    struct iovec* iov;
    int niov, capiov;
} ckpt_pieces;

// h5file's place callback (arg: a ckpt_pieces): adds bytes at p, for offset in the file.
void ckpt_pieces_add(void* arg, uint64_t offset, const void* p, size_t bytes);
// Writes every piece to the file at path (opened for writing, not created) and fsyncs it: 0,
// or the errno of the first failure. The list is consumed (emptied).
int ckpt_pieces_write(ckpt_pieces* p, const char* path);
void ckpt_pieces_free(ckpt_pieces* p);

#endif
