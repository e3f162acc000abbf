// The process grid and every MPI call the model makes. World = DP x TP ranks; a TP group holds one
// replica of the model (ranks with the same dp_rank), a DP group holds the same shard of every
// replica (ranks with the same tp_rank). No module outside dist/ calls an MPI collective.
#ifndef DIST_DIST_H
#define DIST_DIST_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include "dist/real.h"

// Per-kind collective counters, so tests can assert how many collectives a step makes.
// DIST_SYNC: a barrier of the node's DP group around an exchange through shared memory.
// DIST_IREDUCE_SCATTER and DIST_IALLGATHER: the non-blocking DP exchanges of gradient pieces
// and of updated parameters over dpx_comm.
enum dist_kind { DIST_ALLGATHER, DIST_ALLREDUCE, DIST_IREDUCE_SCATTER, DIST_IALLGATHER,
                 DIST_BCAST, DIST_SYNC, DIST_REDUCE, DIST_NKINDS };

// Part `part` of `parts` of n elements: [*a, *b). One split for every level of the DP sharding
// (model/share.c's pieces, dist/'s parts of a piece over dpx_comm), so that they line up.
static inline void dist_part(size_t n, int parts, int part, size_t* a, size_t* b)
{
    *a = n * (size_t)part / (size_t)parts;
    *b = n * (size_t)(part + 1) / (size_t)parts;
}

typedef struct dist_grid {
    MPI_Comm world;   // the whole job
    MPI_Comm tp_comm; // ranks holding one replica, ordered by tp_rank
    MPI_Comm dp_comm; // ranks holding the same shard, ordered by dp_rank
    // The DP group in two levels: dpn_comm, the members on this node that share memory (one
    // copy of the packed weights, reductions by loads and stores), and dpx_comm, the ranks with
    // this dpn_rank in the other such groups (messages). dp = dpn x dpx.
    MPI_Comm dpn_comm, dpx_comm;
    int world_size, world_rank;
    int tp, dp, tp_rank, dp_rank;
    int dpn, dpn_rank, dpx, dpx_rank;
    int node_ranks;              // ranks sharing this node, for the thread count
    long count[DIST_NKINDS];     // collectives issued since the last dist_reset_counts
    double comm_seconds;         // time spent inside collectives since the last reset
} dist_grid;

// Collective over world. share: the most DP ranks of one node that share memory (0 = all of
// them, 1 = none). Groups of unequal size fall back to none. Returns 0, or -1 with a message in
// err when world size is not a multiple of tp.
int dist_grid_init(MPI_Comm world, int tp, int share, dist_grid* g, char* err, size_t errlen);
void dist_grid_free(dist_grid* g);
// The start and end of the process's MPI life (main): dist_start initialises MPI and makes the
// grid of the whole job (tp = 1, no sharing), as dist_grid_init; dist_stop frees it and ends MPI.
int dist_start(int* argc, char*** argv, dist_grid* world, char* err, size_t errlen);
void dist_stop(dist_grid* world);
// Wall-clock seconds (for timings: differences only).
double dist_wtime(void);
// The nodes of the job (groups of ranks that can share memory). Collective over g->world.
int dist_node_count(const dist_grid* g);
void dist_reset_counts(dist_grid* g);
// For the files of dist/: counts one collective of kind (none for kind < 0) and adds the time
// since t0 to comm_seconds.
void dist_counted(dist_grid* g, int kind, double t0);

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
// Reductions over the whole job, for timings and reports. In place.
void dist_world_sum_f64(double* buf, int n, dist_grid* g);
void dist_world_max_f64(double* buf, int n, dist_grid* g);
// Sums n doubles over the ranks of this node (memory figures are the node's). Collective over
// world (each node's ranks sum among themselves). In place.
void dist_node_sum_f64(double* buf, int n, dist_grid* g);
// All ranks reach this point before any leaves it (the start of a timed region).
void dist_barrier(dist_grid* g);
// 1 on every rank if any rank passes a non-zero flag. Collective over world.
int dist_any(int flag, dist_grid* g);
// For io/, over the communicator a file is open on. dist_comm_agree: 1 on every rank if any
// rank passes failed, and then err on every rank holds the message of the lowest failing rank
// (with " on rank N" when some ranks did not fail). errlen must be the same on every rank.
int dist_comm_agree(int failed, char* err, size_t errlen, MPI_Comm comm);
// The minimum of n ints over comm (not counted: for set-up, before a grid). In place.
void dist_comm_min_int(int* buf, int n, MPI_Comm comm);
// Sums n uint64 over comm, modulo 2^64. In place.
void dist_comm_sum_u64(uint64_t* buf, int n, MPI_Comm comm);
// Broadcast of raw bytes from world rank 0 (the parsed config, a sampled token).
void dist_bcast_bytes(void* buf, size_t n, dist_grid* g);

// The DP replicas of this rank's shard (dist/shm.c), one object for all their exchanges: memory
// shared by the node's members (dpn_comm: every member owns a segment of the same size that the
// others read, and member 0's is followed by one area for all; a window over dpn_comm, plain
// memory when the group is this rank alone; 64-byte aligned) and the non-blocking exchanges with
// the ranks holding the same piece on the other nodes (dpx_comm). The model places its buffers
// in the segments and says, at each point where it must wait for the other members, what it
// waits for; no caller sees the window or the requests.
typedef struct dist_replicas dist_replicas;

// Collective over dpn_comm. Memory that cannot be had ends the job with the reason. The object
// keeps g for its calls.
dist_replicas* dist_replicas_alloc(size_t seg_bytes, size_t shared_bytes, dist_grid* g);
// Collective over dpn_comm (frees the window); NULL is a no-op.
void dist_replicas_free(dist_replicas* r);
// Member `member`'s segment, the common area; whether every byte reads 0 until written (pages
// committed at first touch, so what a run never touches takes no memory).
char* dist_replicas_segment(const dist_replicas* r, int member);
char* dist_replicas_shared(const dist_replicas* r);
int dist_replicas_zeroed(const dist_replicas* r);

// The waits: every member's stores before one are seen by every member's loads after it. Each is
// one barrier of the node's group (counted as DIST_SYNC; nothing without a window) and says
// what its caller waits for.
// The members' weight gradients of the regions about to be summed are formed.
void dist_replicas_wait_grads_formed(dist_replicas* r);
// Every member has summed the others' gradients: from here each may zero or rewrite its own.
void dist_replicas_wait_grads_reduced(dist_replicas* r);
// Every member's own pieces of a buffer being gathered (updated parameters, summed gradients)
// are final: the others may copy them.
void dist_replicas_wait_pieces_final(dist_replicas* r);
// Every member has copied the others' pieces: from here each may rewrite its own.
void dist_replicas_wait_pieces_copied(dist_replicas* r);
// No member still reads the packed panels (nor the scratch in the same area), and every member's
// weights to pack are final.
void dist_replicas_wait_panels_free(dist_replicas* r);
// Every member has packed its share of the panels: all may read them.
void dist_replicas_wait_panels_packed(dist_replicas* r);
// Every member's inputs of a shared product (A rows, C rows when accumulating) are written.
void dist_replicas_wait_inputs_written(dist_replicas* r);
// Every member has computed its columns of the shared product, for every member's rows.
void dist_replicas_wait_products_done(dist_replicas* r);

// Reals [off, off + n) of this rank's segment = their sum over the members' segments, in member
// order. Call between the waits that make the inputs visible and keep them until all have summed.
void dist_replicas_sum(dist_replicas* r, size_t off, size_t n);
// Reals [off, off + n) of member `member`'s segment copied into this rank's.
void dist_replicas_copy(dist_replicas* r, int member, size_t off, size_t n);

// Exchanges with the other nodes over dpx_comm, in flight until dist_replicas_wait_exchanges
// (at most DIST_MAX_PENDING: one per gradient region of a backward pass or optimiser step).
// start_sum: summing buf[0, n) into its parts: afterwards part dpx_rank (dist_part(n, dpx,
// dpx_rank)) of buf holds its sum over the dpx ranks and the rest of buf is undefined.
// start_gather: giving every dpx rank the others' parts of buf[0, n) (each rank's part dpx_rank
// holds its values).
void dist_replicas_start_sum(dist_replicas* r, real* buf, size_t n);
void dist_replicas_start_gather(dist_replicas* r, real* buf, size_t n);
void dist_replicas_wait_exchanges(dist_replicas* r);

// Inside dist/ (the replicas object's exchanges, dist/collectives.c): exchanges in flight,
// finished together by dist_wait_all: at most one per gradient region (a layer, the head, the
// embedding) of one backward pass or optimiser step. Start from {.n = 0}.
#define DIST_MAX_PENDING 20
typedef struct dist_pending {
    MPI_Request req[DIST_MAX_PENDING];
    // A reduce-scatter leaves this rank's part at the start of its buffer: moved into place
    // (len reals from buf to buf + at) once it completes.
    real* buf[DIST_MAX_PENDING];
    size_t at[DIST_MAX_PENDING], len[DIST_MAX_PENDING];
    int* counts; // each exchange's dpx counts and displacements, read by MPI until it completes
    int n;
} dist_pending;
// Starts summing buf[0, n) over dpx_comm into its parts: after dist_wait_all, part dpx_rank
// (dist_part(n, dpx, dpx_rank)) of buf holds its sum over the dpx ranks and the rest of buf is
// undefined. One more in p.
void dist_dpx_ireduce_scatter_sum(real* buf, size_t n, dist_pending* p, dist_grid* g);
// Starts giving every dpx rank the others' parts of buf[0, n) (each rank's part dpx_rank holds
// its values); complete after dist_wait_all. One more in p.
void dist_dpx_iallgather(real* buf, size_t n, dist_pending* p, dist_grid* g);
void dist_wait_all(dist_pending* p, dist_grid* g);

// Rows [tp_rank n/tp, (tp_rank+1) n/tp) of the n x n orthogonal factor Q of the matrix
// G(r, c) = gen(key, r, c), with R's diagonal made positive (so Q is unique), by ScaLAPACK QR
// (pdgeqrf, pdorgqr) in double on one BLACS grid over the whole job (the squarest pr x pc = world
// size), once for all DP replicas; pdgemr2d moves the rows to DP replica 0's TP ranks and a
// broadcast over DP to the others. out is row-major with row stride ld. Collective over world.
// 0, or -1 (out of memory on any rank, ScaLAPACK failed): the same value on every rank.
int dist_orthogonal_rows(real* out, int ld, int n, double (*gen)(uint64_t, long, long),
                         uint64_t key, dist_grid* g);
// The most bytes dist_orthogonal_rows allocates at once on any rank of a world of that size, at
// any tp (ScaLAPACK's buffers included; out is not counted): about 8 n^2 / world x 1.4 for large
// n. Local: no MPI call.
size_t dist_orthogonal_bytes(int n, int world);

// Solves A W = B for the closed-form output head (dist/ridge_solve.c): A is H x H symmetric positive
// definite, B is H x O. A and B are the sums over the DP replicas of what each passes; every rank
// passes rows [tp_rank Hl, (tp_rank+1) Hl) of its replica's part (Hl = H / tp, row-major, ld H
// and O), and W receives the same rows of the solution on every replica. The Cholesky solve
// (pdposv) runs on a BLACS grid over the whole job. A and B are overwritten. Returns 0,
// ScaLAPACK's info > 0 (the leading minor of that order is not positive definite) or -1 (out of
// memory, ScaLAPACK refused an argument): the same value on every rank. Collective over world.
int dist_ridge_solve(double* W, double* A, double* B, int H, int O, dist_grid* g);

// Fatal errors. dist_fail: this rank found the error; it prints "fnn: error: ..." (with its rank
// when the world has more than one) and aborts the whole job. dist_fail_all: every rank found the
// same error; rank 0 prints it once and aborts, the others wait for the abort.
void dist_fail(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void dist_fail_all(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
