// The process grid and every MPI call the model makes. World = DP x TP ranks; a TP group holds one
// replica of the model (ranks with the same dp_rank), a DP group holds the same shard of every
// replica (ranks with the same tp_rank). No module outside dist/ calls an MPI collective.
#ifndef DIST_DIST_H
#define DIST_DIST_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include "model/real.h"

// Per-kind collective counters, so tests can assert how many collectives a step makes.
enum dist_kind { DIST_ALLGATHER, DIST_ALLREDUCE, DIST_IALLREDUCE, DIST_BCAST, DIST_NKINDS };

typedef struct dist_grid {
    MPI_Comm world;   // the whole job
    MPI_Comm tp_comm; // ranks holding one replica, ordered by tp_rank
    MPI_Comm dp_comm; // ranks holding the same shard, ordered by dp_rank
    int world_size, world_rank;
    int tp, dp, tp_rank, dp_rank;
    int node_ranks;              // ranks sharing this node, for the thread count
    long count[DIST_NKINDS];     // collectives issued since the last dist_reset_counts
    double comm_seconds;         // time spent inside collectives since the last reset
} dist_grid;

// Collective over world. Returns 0, or -1 with a message in err when world size is not a
// multiple of tp.
int dist_grid_init(MPI_Comm world, int tp, dist_grid* g, char* err, size_t errlen);
void dist_grid_free(dist_grid* g);
void dist_reset_counts(dist_grid* g);

// Threads for this rank's BLAS: the node's cores divided by the ranks on the node.
int dist_default_threads(const dist_grid* g);

// Forward, per layer and step: each TP rank contributes n values, every rank receives tp*n, in
// tp_rank order. Collective over tp_comm.
void dist_tp_allgather(const real* send, real* recv, int n, dist_grid* g);
// Backward, per layer and step: sums partial input gradients over the TP ranks. In place.
void dist_tp_allreduce_sum(real* buf, int n, dist_grid* g);
// Sums n doubles over the TP ranks (norms, losses). In place.
void dist_tp_allreduce_f64(double* buf, int n, dist_grid* g);
// Same over the DP ranks.
void dist_dp_allreduce_f64(double* buf, int n, dist_grid* g);
// Starts summing a gradient region over the DP ranks; finish with dist_wait_all.
void dist_dp_iallreduce_sum(real* buf, int n, MPI_Request* req, dist_grid* g);
void dist_wait_all(MPI_Request* reqs, int n, dist_grid* g);
// Reductions over the whole job, for timings and reports. In place.
void dist_world_sum_f64(double* buf, int n, dist_grid* g);
void dist_world_max_f64(double* buf, int n, dist_grid* g);
// All ranks reach this point before any leaves it (the start of a timed region).
void dist_barrier(dist_grid* g);
// 1 on every rank if any rank passes a non-zero flag. Collective over world.
int dist_any(int flag, dist_grid* g);
// Broadcast of raw bytes from world rank 0 (the parsed config, a sampled token).
void dist_bcast_bytes(void* buf, size_t n, dist_grid* g);

// Rows [tp_rank n/tp, (tp_rank+1) n/tp) of the n x n orthogonal factor Q of the matrix
// G(r, c) = gen(key, r, c), with R's diagonal made positive (so Q is unique), by ScaLAPACK QR
// (pdgeqrf, pdorgqr) on a BLACS grid over the TP group, then pdgemr2d to row blocks. out is
// row-major with row stride ld. Collective over tp_comm. 0, or -1 if memory or ScaLAPACK failed.
int dist_orthogonal_rows(real* out, int ld, int n, double (*gen)(uint64_t, long, long),
                         uint64_t key, dist_grid* g);

// Fatal errors. dist_fail: this rank found the error; it prints "fnn: error: ..." (with its rank
// when the world has more than one) and aborts the whole job. dist_fail_all: every rank found the
// same error; rank 0 prints it once and aborts, the others wait for the abort.
void dist_fail(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void dist_fail_all(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
