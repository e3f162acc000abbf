// An MPI-IO error inside a collective write (EIO, an exhausted quota, a disk filled by someone
// else after h5_reserve) reaches only the ranks whose pieces failed: HDF5 returns it there,
// while the others go on into the next collective (the digest reduction, the metadata flush)
// and wait forever. So such an error ends the job at once, naming the file, through the error
// handler MPI gives every file opened afterwards. HDF5's MPI-IO driver opens its files with
// MPI_File_open and leaves their handler alone, so they inherit this one. An HDF5 error handler
// could not do it: the ranks part inside one call (H5Fflush: the failing rank leaves the
// metadata flush before its barrier and waits in the truncation's broadcast), before any HDF5
// function returns. It needs an MPI-IO that reports the failed write: see launch/main.c.
//
// OMPIO (Open MPI 4.1), which a user can still choose, reports a failed write as a success with
// a short count: HDF5 then fails on that rank alone, with the same hang. So fnn wraps HDF5's
// MPI-IO writes (the MPI profiling interface: the executable's MPI_File_write_at* is the one
// HDF5 calls) and ends the job on a short count as on an error. A write lost with a full count
// on another rank (a collective buffering aggregator) cannot be seen here: under such an MPI-IO
// every saved file is read back and its digests checked before it is renamed into place
// (h5_readback, io/checkpoint.c).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dist/dist.h"
#include "io/h5.h"

static char current[4096];
static int current_created; // current is a file h5_create made: the temporary file of a save
// The job is ending over a failed write. Alone, dist_fail finalizes MPI, which closes the file
// and writes again: a disk still full must not report a second error.
static int ending;

// Ends the job over a failed write. The rank that saw it removes the save's partial temporary
// file first (the abort leaves no one to remove it, and a full disk would stay full); the other
// ranks may still hold it open, which unlinking allows.
static void fail_write(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_write(const char* fmt, ...)
{
    char msg[4096 + MPI_MAX_ERROR_STRING + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ending = 1;
    if (current_created) unlink(current);
    dist_fail("%s", msg);
}

static void on_error(MPI_File* fh, int* code, ...)
{
    // A failed open has no file yet: h5_create and h5_open report it, agreed across ranks.
    if (*fh == MPI_FILE_NULL || ending) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(*code, msg, &len);
    fail_write("%s: %s (MPI-IO)", current, msg);
}

void h5_ioerr_install(const char* path, int created)
{
    static MPI_Errhandler eh = MPI_ERRHANDLER_NULL;
    snprintf(current, sizeof current, "%s", path);
    current_created = created;
    if (eh != MPI_ERRHANDLER_NULL) return;
    MPI_File_create_errhandler(on_error, &eh);
    MPI_File_set_errhandler(MPI_FILE_NULL, eh);
}

// The count written as the MPI call counts it: a partial element or a short transfer is short.
static void check_count(const MPI_Status* st, int count, MPI_Datatype type)
{
    int n = MPI_UNDEFINED, size = 0;
    PMPI_Get_count(st, type, &n);
    if (n == count || ending) return;
    PMPI_Type_size(type, &size);
    const long long want = (long long)count * size;
    if (n == MPI_UNDEFINED)
        fail_write("%s: the MPI-IO layer wrote part of %lld bytes and reported success (short "
                  "write)", current, want);
    fail_write("%s: the MPI-IO layer wrote %lld of %lld bytes and reported success (short write)",
              current, (long long)n * size, want);
}

typedef int (*write_at_fn)(MPI_File, MPI_Offset, const void*, int, MPI_Datatype, MPI_Status*);

// The write through the PMPI entry point, with a status of our own when the caller ignores it.
static int write_checked(write_at_fn write, MPI_File fh, MPI_Offset off, const void* buf,
                         int count, MPI_Datatype type, MPI_Status* status)
{
    MPI_Status own;
    MPI_Status* st = status == MPI_STATUS_IGNORE ? &own : status;
    const int rc = write(fh, off, buf, count, type, st);
    if (rc == MPI_SUCCESS) check_count(st, count, type);
    return rc;
}

int MPI_File_write_at(MPI_File fh, MPI_Offset off, const void* buf, int count,
                      MPI_Datatype type, MPI_Status* status)
{
    return write_checked(PMPI_File_write_at, fh, off, buf, count, type, status);
}

int MPI_File_write_at_all(MPI_File fh, MPI_Offset off, const void* buf, int count,
                          MPI_Datatype type, MPI_Status* status)
{
    return write_checked(PMPI_File_write_at_all, fh, off, buf, count, type, status);
}

int h5_io_select(void)
{
    setenv("OMPI_MCA_io", "romio321", 0);
    const char* io = getenv("OMPI_MCA_io");
    if (!strcmp(io, "romio321") || !strcmp(io, "^ompio")) return 0;
    // OMPIO opens every file with a shared file pointer component; the default (sm) keeps a
    // named semaphore per file name in /dev/shm that a job ended inside a save leaves taken,
    // and the next open of that name (the resumed run's save of the same step) waits on it
    // forever. lockedfile leaves at worst a "<file>-<job>-<pid>.lock" beside the file.
    setenv("OMPI_MCA_sharedfp", "lockedfile", 0);
    return 1;
}
