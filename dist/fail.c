// Fatal errors end the whole job through MPI_Abort, so no rank is left waiting in a collective.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "dist/dist.h"

static void vreport(const char* fmt, va_list ap, int with_rank)
{
    int init = 0, rank = 0, size = 1;
    MPI_Initialized(&init);
    if (init) {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    fflush(stdout);
    // One write: mpirun interleaves pieces of a line with its own abort banner.
    char line[1024];
    int n = with_rank && size > 1 ? snprintf(line, sizeof line, "[rank %d] ", rank) : 0;
    n += snprintf(line + n, sizeof line - n, "fnn: error: ");
    vsnprintf(line + n, sizeof line - n, fmt, ap);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

// With other ranks, MPI_Abort ends them too; alone, a clean MPI_Finalize spares the user
// mpirun's multi-line abort banner under the one-line message.
static void __attribute__((noreturn)) abort_job(void)
{
    int init = 0, fin = 0, size = 1;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) {
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
        MPI_Finalize();
    }
    exit(1);
}

void dist_fail(const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap, 1);
    va_end(ap);
    abort_job();
}

void dist_fail_all(const char* fmt, ...)
{
    int init = 0, rank = 0;
    MPI_Initialized(&init);
    if (init) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
        va_list ap;
        va_start(ap, fmt);
        vreport(fmt, ap, 0);
        va_end(ap);
        abort_job();
    }
    // Rank 0 saw the same error and is aborting the job; printing here too would repeat it.
    for (;;) pause();
}
