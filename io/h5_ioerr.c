// An MPI-IO error inside a collective write (EIO, an exhausted quota, a disk filled by someone
// else after h5_reserve) reaches only the ranks whose pieces failed: HDF5 returns it there,
// while the others go on into the next collective (the digest reduction, the metadata flush)
// and wait forever. So such an error ends the job at once, naming the file, through the error
// handler MPI gives every file opened afterwards. HDF5's MPI-IO driver opens its files with
// MPI_File_open and leaves their handler alone, so they inherit this one. An HDF5 error handler
// could not do it: the ranks part inside one call (H5Fflush: the failing rank leaves the
// metadata flush before its barrier and waits in the truncation's broadcast), before any HDF5
// function returns. It needs an MPI-IO that reports the failed write: see launch/main.c.
#include <stdio.h>
#include "dist/dist.h"
#include "io/h5.h"

static char current[4096];

static void on_error(MPI_File* fh, int* code, ...)
{
    // A failed open has no file yet: h5_create and h5_open report it, agreed across ranks.
    if (*fh == MPI_FILE_NULL) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(*code, msg, &len);
    dist_fail("%s: %s (MPI-IO)", current, msg);
}

void h5_ioerr_install(const char* path)
{
    static MPI_Errhandler eh = MPI_ERRHANDLER_NULL;
    snprintf(current, sizeof current, "%s", path);
    if (eh != MPI_ERRHANDLER_NULL) return;
    MPI_File_create_errhandler(on_error, &eh);
    MPI_File_set_errhandler(MPI_FILE_NULL, eh);
}
