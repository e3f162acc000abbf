// Agreement over a bare communicator, for io/: a file is opened on a communicator, not a grid,
// and a check that one rank can fail alone (a file only some ranks see, a read error, a checksum
// of a piece) must reach every rank before any of them makes the next collective call.
#include <stdio.h>
#include <string.h>
#include "dist/dist.h"

int dist_comm_agree(int failed, char* err, size_t errlen, MPI_Comm comm)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int v[2] = {failed ? rank : size, failed != 0};
    // Who failed first (its message is the one every rank reports), and whether all did.
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT, MPI_MIN, comm);
    if (v[0] == size) return 0;
    // A failure only some ranks saw names the rank that reports it. Only the failing rank's err
    // holds a message: the others may never have written theirs.
    if (rank == v[0] && !v[1]) {
        size_t n = strnlen(err, errlen);
        if (n < errlen) snprintf(err + n, errlen - n, " on rank %d", rank);
    }
    // Its message, so every rank ends with the same line.
    MPI_Bcast(err, (int)errlen, MPI_CHAR, v[0], comm);
    err[errlen - 1] = '\0';
    return 1;
}

void dist_comm_min_int(int* buf, int n, MPI_Comm comm)
{
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_INT, MPI_MIN, comm);
}

void dist_comm_sum_u64(uint64_t* buf, int n, MPI_Comm comm)
{
    // Wrapping sums: the checkpoint digests are sums modulo 2^64 of per-rank parts.
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_UINT64_T, MPI_SUM, comm);
}
