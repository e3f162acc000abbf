// The process grid: communicators for the TP group and the DP group of this rank.
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "dist/dist.h"

int dist_grid_init(MPI_Comm world, int tp, dist_grid* g, char* err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    g->world = world;
    MPI_Comm_size(world, &g->world_size);
    MPI_Comm_rank(world, &g->world_rank);
    if (tp < 1 || g->world_size % tp != 0) {
        snprintf(err, errlen, "tp = %d does not divide the %d ranks of the job", tp,
                 g->world_size);
        return -1;
    }
    // Consecutive world ranks form a TP group: they exchange every step, so keep them on a node.
    g->tp = tp;
    g->dp = g->world_size / tp;
    g->tp_rank = g->world_rank % tp;
    g->dp_rank = g->world_rank / tp;
    MPI_Comm_split(world, g->dp_rank, g->tp_rank, &g->tp_comm);
    MPI_Comm_split(world, g->tp_rank, g->dp_rank, &g->dp_comm);
    MPI_Comm node;
    MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, g->world_rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &g->node_ranks);
    MPI_Comm_free(&node);
    return 0;
}

void dist_grid_free(dist_grid* g)
{
    if (g->tp_comm != MPI_COMM_NULL && g->tp_comm != 0) MPI_Comm_free(&g->tp_comm);
    if (g->dp_comm != MPI_COMM_NULL && g->dp_comm != 0) MPI_Comm_free(&g->dp_comm);
}

void dist_reset_counts(dist_grid* g)
{
    memset(g->count, 0, sizeof g->count);
    g->comm_seconds = 0;
}

int dist_default_threads(const dist_grid* g)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int t = (int)(cores / (g->node_ranks > 0 ? g->node_ranks : 1));
    return t > 0 ? t : 1;
}
