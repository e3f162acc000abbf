// Parallel HDF5 for checkpoints: files opened with the MPI-IO driver on a communicator, scalar
// attributes, and pieces of full logical datasets written with collective transfers and read
// with independent ones.
//
// Every call is collective over the file's communicator and must be made by all its ranks with
// the same names and shapes (HDF5 metadata is collective); only the selected piece differs.
// The first failure writes "<path>: <what>" to the file's err; later calls still run, because a
// failure seen by one rank only (a write error) must not make it skip a collective call that the
// others make. A caller runs a whole sequence and checks the result of h5_close, which every
// rank returns alike, with the message of the lowest failing rank.
//
// Integrity: every dataset carries the attribute "fnn_digest" (two uint64) over its elements in
// row-major order, element i with bits u_i (the float32's 32 bits): a = sum u_i and
// b = sum (i + 1) u_i, modulo 2^64. Both are sums over elements, so each rank adds up the part it
// wrote or read, whatever the layout, and one reduction at h5_close makes the whole. Any one
// altered element changes a; two swapped ones change b.
#ifndef IO_H5_H
#define IO_H5_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include "dist/real.h"

typedef struct h5_sum {
    char name[96];     // the dataset
    uint64_t part[3];  // this rank's share: a, b, and the count of non-finite values
    uint64_t want[2];  // the stored digest (read)
    int stored;        // the file has a digest for it (read)
} h5_sum;

typedef struct h5file {
    hid_t f;          // the file, -1 when not open
    hid_t dxpl;       // transfer property list: collective writes, independent reads
    MPI_Comm comm;
    int writing;
    const char* path; // for messages
    char* err;        // one-line message of the first failure
    size_t errlen;
    int failed;
    h5_sum* sums;     // one per dataset written or read, in call order (the same on every rank)
    int nsums, capsums;
} h5file;

// Creates path (truncating) or opens it read-only; returns h->failed, agreed by every rank (a
// file that some ranks cannot see is refused by all, with one message).
int h5_create(h5file* h, const char* path, MPI_Comm comm, char* err, size_t errlen);
int h5_open(h5file* h, const char* path, MPI_Comm comm, char* err, size_t errlen);
// Writing: sets the digests of the datasets written. Reading: compares the digests of the
// datasets read with the stored ones and refuses non-finite values, naming the dataset. Then
// flushes written data to storage (MPI_File_sync) and closes. Returns h->failed, the same on
// every rank.
int h5_close(h5file* h);
// Records a failure (the first one wins) and returns -1.
int h5_fail(h5file* h, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Makes any MPI-IO error on a file opened from now on end the whole job with one line naming
// path (see io/h5_ioerr.c). Called with each file's path before it is opened.
void h5_ioerr_install(const char* path);
// Before MPI_Init: chooses ROMIO (OMPI_MCA_io = romio321) unless the environment names an io
// component, and returns 1 when the component in effect may lose a write without an error.
int h5_io_select(void);
// With on (agreed by every rank), h5_readback reads the written file at path back and checks
// every dataset's digest, returning the verdict of h5_close (the same on every rank); off, it
// returns 0 at once.
void h5_set_readback(int on);
int h5_readback(const char* path, MPI_Comm comm, char* err, size_t errlen);

// Reserves bytes of storage for the file being written (fallocate by the communicator's rank 0),
// so that a full disk is found before any collective write rather than in the middle of one,
// where ranks would leave HDF5 at different points. Filesystems without fallocate skip it.
void h5_reserve(h5file* h, size_t bytes);

int h5_exists(h5file* h, const char* name); // a link (group or dataset) at name
int h5_has_attr(h5file* h, const char* obj, const char* name); // attribute name of group obj

// Attributes of the group at obj ("/config", "/train"; created on write if missing). Reading
// checks the class and that the attribute holds exactly one value before reading it.
void h5_put_long(h5file* h, const char* obj, const char* name, long v);
void h5_put_u64(h5file* h, const char* obj, const char* name, uint64_t v);
void h5_put_str(h5file* h, const char* obj, const char* name, const char* v);
long h5_get_long(h5file* h, const char* obj, const char* name);
uint64_t h5_get_u64(h5file* h, const char* obj, const char* name);
// Reads a fixed-length (null-terminated or null-padded) or variable-length string into out
// (at most len bytes with the NUL); a longer value fails.
void h5_get_str(h5file* h, const char* obj, const char* name, char* out, size_t len);

// A piece of a dataset of logical shape rows x cols (vector: rank 1, cols = 1): rows
// [row0, row0 + nrows) x cols [col0, col0 + ncols), at p with row stride ld in memory.
// Reading, the ranks that read the same piece split its rows for the digest: this one checks
// share `part` of `parts` (parts = 0: the whole piece).
typedef struct h5_piece {
    int rank;
    int rows, cols;
    int row0, nrows, col0, ncols;
    int ld;
    int part, parts;
} h5_piece;

// Creates dataset name (float32, intermediate groups included) and writes this rank's piece;
// a piece with nrows = 0 writes nothing but still takes part.
void h5_write_piece(h5file* h, const char* name, const h5_piece* pc, const real* p);
// Reads this rank's piece of dataset name, after checking it is a float dataset of the
// logical shape of pc; its digest and finiteness are checked at h5_close.
void h5_read_piece(h5file* h, const char* name, const h5_piece* pc, real* p);
// Rectangles of a dataset held in one buffer: rows [row0, row0 + nrows) x cols [col0, col0 +
// ncols), the first element at base + mem, rows ld apart. A list of them must run in increasing
// order both in the dataset (row-major) and in memory, without overlapping (a contiguous run of
// a strided tensor: a partial row, whole rows, a partial row).
typedef struct h5_rect {
    int row0, nrows, col0, ncols, ld;
    size_t mem;
} h5_rect;

// Creates dataset name of logical shape rows x cols (rank 1: cols = 1) and writes the n
// rectangles of base (n = 0 writes nothing but still takes part); each element's digest is
// counted by the rank that writes it.
void h5_write_rects(h5file* h, const char* name, int rank, int rows, int cols, const h5_rect* r,
                    int n, const real* base);
// Reads the n rectangles of dataset name into base, after checking its float type and shape;
// digest: whether this rank's elements count in the digest check (the ranks that read the same
// element must count it once between them).
void h5_read_rects(h5file* h, const char* name, int rank, int rows, int cols, const h5_rect* r,
                   int n, real* base, int digest);
// Reads every dataset of the file, each rank a share of its rows, for h5_close to check every
// digest: the whole file's integrity without a model.
void h5_read_all(h5file* h);

#endif
