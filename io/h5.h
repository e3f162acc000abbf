// fnn's only way into HDF5 (io/h5.c and io/h5_array.c alone call the library, so every failure
// takes the one error path below). Checkpoints: files opened with the MPI-IO driver on a
// communicator, scalar attributes, and pieces of full logical datasets written with collective
// transfers and read with independent ones. Local files, which one process reads or writes
// alone (h5_open_local, h5_create_local: the datasets of fnn prepare, a checkpoint's run id):
// the same attribute calls, and whole datasets of bytes, integers or floats (h5_array_*).
//
// On a shared file every call is collective over the file's communicator and must be made by
// all its ranks with the same names and shapes (HDF5 metadata is collective); only the selected
// piece differs.
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
    MPI_Comm comm;    // MPI_COMM_NULL: a local file
    int writing;
    H5E_auto2_t eh;   // HDF5's error printer before the open, restored at h5_close
    void* eh_data;
    const char* path; // for messages
    char* err;        // one-line message of the first failure
    size_t errlen;
    int failed;
    h5_sum* sums;     // one per dataset written or read, in call order (the same on every rank)
    int nsums, capsums;
    // Set after h5_create, a written dataset's storage is allocated at its creation and not
    // written: each contiguous run of this rank's elements of it goes to place (its byte offset
    // in the file, its memory, its length) for the caller to write to the file itself once it
    // is closed (io/ckpt_async.c); digests are formed as in a write.
    void (*place)(void* arg, uint64_t offset, const void* p, size_t bytes);
    void* place_arg;
} h5file;

// Creates path (truncating) or opens it read-only; returns h->failed, agreed by every rank (a
// file that some ranks cannot see is refused by all, with one message).
int h5_create(h5file* h, const char* path, MPI_Comm comm, char* err, size_t errlen);
int h5_open(h5file* h, const char* path, MPI_Comm comm, char* err, size_t errlen);
// One process's file (HDF5's default driver, no communicator): nothing is agreed with other
// ranks, and no digest is written or checked. Created or opened as above, with the same messages.
int h5_create_local(h5file* h, const char* path, char* err, size_t errlen);
int h5_open_local(h5file* h, const char* path, char* err, size_t errlen);
// Writing: sets the digests of the datasets written. Reading: compares the digests of the
// datasets read with the stored ones and refuses non-finite values, naming the dataset. Then
// flushes written data to storage (MPI_File_sync) and closes. Returns h->failed, the same on
// every rank.
int h5_close(h5file* h);
// Every rank's verdict on h so far, agreed (the message of the lowest failing rank): a reader
// that must act on what it read before h5_close. Collective on a shared file.
int h5_agree(h5file* h);
// Shared files opened by h5_open in this process so far: tests count the opens of a load.
long h5_open_count(void);
// Records a failure, "<path>: <what>" (the first one wins), and returns -1.
int h5_fail(h5file* h, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Makes any MPI-IO error on a file opened from now on end the whole job with one line naming
// path (see io/h5_ioerr.c). h5_create and h5_open call it with each file's path; created (from
// h5_create: a save's temporary file) has a failed write remove the file before the job ends.
void h5_ioerr_install(const char* path, int created);
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

int h5_exists(h5file* h, const char* name); // a link (group or dataset) at name, or "/"
int h5_has_attr(h5file* h, const char* obj, const char* name); // attribute name of group obj
void h5_group(h5file* h, const char* name); // group name, created if missing (in an existing parent)

// Attributes of the group at obj ("/", "/config", "/train"; created on write if missing).
// Reading checks the class and that the attribute holds exactly one value before reading it.
// Integers are stored as int64 (h5_put_long), uint64, or int32 (h5_put_int); any integer
// attribute reads as either.
void h5_put_long(h5file* h, const char* obj, const char* name, long v);
void h5_put_int(h5file* h, const char* obj, const char* name, int v);
void h5_put_u64(h5file* h, const char* obj, const char* name, uint64_t v);
void h5_put_str(h5file* h, const char* obj, const char* name, const char* v);
long h5_get_long(h5file* h, const char* obj, const char* name);
uint64_t h5_get_u64(h5file* h, const char* obj, const char* name);
// Reads a fixed-length (null-terminated or null-padded) or variable-length string into out
// (at most len bytes with the NUL); a longer value fails.
void h5_get_str(h5file* h, const char* obj, const char* name, char* out, size_t len);
// n strings as a 1-D array of fixed-length, null-terminated strings as wide as the longest.
void h5_put_strs(h5file* h, const char* obj, const char* name, const char* const* s, int n);
// A fixed-length string attribute of any number of elements (a scalar is one): its count, with
// *out a malloc'd array of that many malloc'd strings; -1 after recording a failure.
int h5_get_strs(h5file* h, const char* obj, const char* name, char*** out);

// Whole datasets of elements of one type, uint8, int32 or float32 (little-endian in the file,
// native in memory), written and read in one piece: the arrays of fnn prepare's files.
typedef enum h5_elem { ELEM_U8, ELEM_I32, ELEM_F32 } h5_elem;
// Checks that dataset name has `rank` (1 or 2) dimensions and elements that e holds without
// conversion (ELEM_U8: unsigned 8-bit; ELEM_I32: an integer of 32 bits, signed, or fewer; ELEM_F32:
// any float), so HDF5 never saturates a value into the memory type. Its dims go to dims (dims[1]
// = 1 for rank 1) and the bytes its storage holds in the file to *stored. 0, or -1 after
// recording a failure.
int h5_array_shape(h5file* h, const char* name, int rank, h5_elem e, uint64_t dims[2],
                   uint64_t* stored);
// Reads all of dataset name into out, converted to e's native type.
void h5_array_read(h5file* h, const char* name, h5_elem e, void* out);
// Creates dataset name (rank 1: rows elements, cols = 1; rank 2: rows x cols), contiguous, of
// type e, in an existing group, and writes data to it (nothing for an empty one).
void h5_array_write(h5file* h, const char* name, h5_elem e, int rank, uint64_t rows,
                    uint64_t cols, const void* data);

// Row ranges of one dataset of a local file (io/h5_array.c): the loader reads a window at a time
// and prepare writes a block at a time, so neither holds a whole corpus.
typedef struct h5_rows {
    hid_t ds;          // -1 when closed
    int fd;            // the file, for pread of contiguous raw data stored as e's memory type; -1:
                       // reads go through HDF5
    uint64_t offset;   // of the raw data in the file, when fd >= 0
    uint64_t rows, cols;
    uint64_t stored;   // bytes of storage in the file (reading)
    int rank;
    h5_elem e;
    char name[64];
} h5_rows;
// Opens dataset name for reading after h5_array_shape's checks; 0, or -1 after a failure.
int h5_rows_open(h5file* h, const char* name, int rank, h5_elem e, h5_rows* r);
// Rows [row0, row0 + n) (every column) into out; 0, or -1 after recording a failure (rows out
// of range, a read error, or data past the end of the file: truncated while in use).
int h5_rows_read(h5file* h, const h5_rows* r, uint64_t row0, uint64_t n, void* out);
void h5_rows_close(h5_rows* r);
// Creates dataset name (rank 1: rows elements, cols = 1; rank 2: rows x cols), contiguous, of
// type e, in an existing group, for h5_rows_write to fill; 0, or -1 after a failure.
int h5_rows_create(h5file* h, const char* name, h5_elem e, int rank, uint64_t rows, uint64_t cols,
                   h5_rows* r);
// Writes rows [row0, row0 + n) of a created dataset from data.
void h5_rows_write(h5file* h, const h5_rows* r, uint64_t row0, uint64_t n, const void* data);

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
