// Every collective of fnn, counted per kind and timed, so tests can assert the per-step count
// and the benchmark can report the time spent waiting in communication.
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

void dist_dpn_allreduce_f64(double* buf, int n, dist_grid* g)
{
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, g->dpn_comm);
    dist_counted(g, DIST_ALLREDUCE, t0);
}

void dist_dpx_iallreduce_sum(real* buf, int n, dist_pending* p, dist_grid* g)
{
    if (p->n == DIST_MAX_PENDING) dist_fail("internal error: more than %d reductions in flight", DIST_MAX_PENDING);
    double t0 = MPI_Wtime();
    MPI_Iallreduce(MPI_IN_PLACE, buf, n, REAL_MPI, MPI_SUM, g->dpx_comm, &p->req[p->n++]);
    dist_counted(g, DIST_IALLREDUCE, t0);
}

void dist_wait_all(dist_pending* p, dist_grid* g)
{
    if (!p->n) return;
    double t0 = MPI_Wtime();
    MPI_Waitall(p->n, p->req, MPI_STATUSES_IGNORE);
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
