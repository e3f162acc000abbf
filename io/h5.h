// Parallel HDF5 for checkpoints: files opened with the MPI-IO driver on a communicator, scalar
// attributes, and pieces of full logical datasets read and written with collective transfers.
//
// Every call is collective over the file's communicator and must be made by all its ranks with
// the same names and shapes (HDF5 metadata is collective); only the selected piece differs.
// The first failure writes "<path>: <what>" to the file's err; later calls still run, because a
// failure seen by one rank only (a write error) must not make it skip a collective call that the
// others make. A caller runs a whole sequence and checks h->failed once at the end.
#ifndef IO_H5_H
#define IO_H5_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include "model/real.h"

typedef struct h5file {
    hid_t f;          // the file, -1 when not open
    hid_t dxpl;       // collective transfer property list
    const char* path; // for messages
    char* err;        // one-line message of the first failure
    size_t errlen;
    int failed;
} h5file;

// Creates path (truncating) or opens it read-only; returns h->failed.
int h5_create(h5file* h, const char* path, MPI_Comm comm, char* err, size_t errlen);
int h5_open(h5file* h, const char* path, MPI_Comm comm, char* err, size_t errlen);
// Flushes written data to storage (MPI_File_sync) and closes. Returns h->failed.
int h5_close(h5file* h);
// Records a failure (the first one wins) and returns -1.
int h5_fail(h5file* h, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

int h5_exists(h5file* h, const char* name); // a link (group or dataset) at name

// Attributes of the group at obj ("/config", "/train"; created on write if missing).
void h5_put_long(h5file* h, const char* obj, const char* name, long v);
void h5_put_u64(h5file* h, const char* obj, const char* name, uint64_t v);
void h5_put_str(h5file* h, const char* obj, const char* name, const char* v);
long h5_get_long(h5file* h, const char* obj, const char* name);
uint64_t h5_get_u64(h5file* h, const char* obj, const char* name);
// Reads into out (at most len bytes with the NUL); a longer value fails.
void h5_get_str(h5file* h, const char* obj, const char* name, char* out, size_t len);

// A piece of a dataset of logical shape rows x cols (vector: rank 1, cols = 1): rows
// [row0, row0 + nrows) x cols [col0, col0 + ncols), at p with row stride ld in memory.
typedef struct h5_piece {
    int rank;
    int rows, cols;
    int row0, nrows, col0, ncols;
    int ld;
} h5_piece;

// Creates dataset name (float32, intermediate groups included) and writes this rank's piece;
// a piece with nrows = 0 writes nothing but still takes part.
void h5_write_piece(h5file* h, const char* name, const h5_piece* pc, const real* p);
// Reads this rank's piece of dataset name, after checking it has the logical shape of pc.
void h5_read_piece(h5file* h, const char* name, const h5_piece* pc, real* p);

#endif
