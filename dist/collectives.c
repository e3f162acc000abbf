// Every collective of fnn, counted per kind and timed, so tests can assert the per-step count
// and the benchmark can report the time spent waiting in communication.
#include <stdlib.h>
#include <string.h>
#include "dist/dist.h"

void dist_counted(dist_grid* g, int kind, double t0)
{
    if (kind >= 0) g->count[kind]++;
    g->comm_seconds += MPI_Wtime() - t0;
}

void dist_tp_allgather(const real* send, real* recv, int n, dist_grid* g)
{
    double t0 = MPI_Wtime();
    MPI_Allgather(send, n, REAL_MPI, recv, n, REAL_MPI, g->tp_comm);
    dist_counted(g, DIST_ALLGATHER, t0);
}

void dist_tp_allreduce_sum(real* buf, int n, dist_grid* g)
{
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buf, n, REAL_MPI, MPI_SUM, g->tp_comm);
    dist_counted(g, DIST_ALLREDUCE, t0);
}

void dist_tp_allreduce_f64(double* buf, int n, dist_grid* g)
{
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, g->tp_comm);
    dist_counted(g, DIST_ALLREDUCE, t0);
}

void dist_dp_allreduce_f64(double* buf, int n, dist_grid* g)
{
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, g->dp_comm);
    dist_counted(g, DIST_ALLREDUCE, t0);
}

// Slot for one more exchange in p, with its dpx counts and displacements of buf[0, n).
static int slot(dist_pending* p, size_t n, dist_grid* g, int** counts, int** displs)
{
    if (p->n == DIST_MAX_PENDING)
        dist_fail("internal error: more than %d exchanges in flight", DIST_MAX_PENDING);
    if (!p->counts && !(p->counts = malloc((size_t)DIST_MAX_PENDING * 2 * g->dpx * sizeof(int))))
        dist_fail("out of memory");
    *counts = p->counts + (size_t)p->n * 2 * g->dpx;
    *displs = *counts + g->dpx;
    for (int x = 0; x < g->dpx; x++) {
        size_t a, b;
        dist_part(n, g->dpx, x, &a, &b);
        (*counts)[x] = (int)(b - a);
        (*displs)[x] = (int)a;
    }
    p->buf[p->n] = NULL;
    return p->n++;
}

void dist_dpx_ireduce_scatter_sum(real* buf, size_t n, dist_pending* p, dist_grid* g)
{
    double t0 = MPI_Wtime();
    int *counts, *displs;
    const int i = slot(p, n, g, &counts, &displs);
    // In place the sum of part x lands at the start of rank x's buffer; dist_wait_all moves it.
    p->buf[i] = buf;
    p->at[i] = (size_t)displs[g->dpx_rank];
    p->len[i] = (size_t)counts[g->dpx_rank];
    MPI_Ireduce_scatter(MPI_IN_PLACE, buf, counts, REAL_MPI, MPI_SUM, g->dpx_comm, &p->req[i]);
    dist_counted(g, DIST_IREDUCE_SCATTER, t0);
}

void dist_dpx_iallgather(real* buf, size_t n, dist_pending* p, dist_grid* g)
{
    double t0 = MPI_Wtime();
    int *counts, *displs;
    const int i = slot(p, n, g, &counts, &displs);
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, REAL_MPI,
                    g->dpx_comm, &p->req[i]);
    dist_counted(g, DIST_IALLGATHER, t0);
}

void dist_wait_all(dist_pending* p, dist_grid* g)
{
    if (!p->n) return;
    double t0 = MPI_Wtime();
    MPI_Waitall(p->n, p->req, MPI_STATUSES_IGNORE);
    for (int i = 0; i < p->n; i++)
        if (p->buf[i]) memmove(p->buf[i] + p->at[i], p->buf[i], p->len[i] * sizeof(real));
    free(p->counts);
    p->counts = NULL;
    p->n = 0;
    g->comm_seconds += MPI_Wtime() - t0;
}

void dist_bcast_bytes(void* buf, size_t n, dist_grid* g)
{
    double t0 = MPI_Wtime();
    MPI_Bcast(buf, (int)n, MPI_BYTE, 0, g->world);
    dist_counted(g, DIST_BCAST, t0);
}

int dist_any(int flag, dist_grid* g)
{
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MAX, g->world);
    dist_counted(g, DIST_ALLREDUCE, t0);
    return flag;
}

void dist_world_sum_f64(double* buf, int n, dist_grid* g)
{
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, g->world);
}

void dist_world_max_f64(double* buf, int n, dist_grid* g)
{
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_MAX, g->world);
}

void dist_node_sum_f64(double* buf, int n, dist_grid* g)
{
    MPI_Comm node;
    MPI_Comm_split_type(g->world, MPI_COMM_TYPE_SHARED, g->world_rank, MPI_INFO_NULL, &node);
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, node);
    MPI_Comm_free(&node);
}

void dist_barrier(dist_grid* g)
{
    MPI_Barrier(g->world);
}
