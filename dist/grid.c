// The process grid: communicators for the TP group and the DP group of this rank.
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "dist/dist.h"

// dpn_comm: this node's members of dp_comm, cut into groups of at most share (0: one group),
// kept only if every group of the DP group has the same size, so that the pieces a member
// owns line up across nodes; else every rank is its own group. dpx_comm joins the ranks with
// the same dpn_rank.
static void split_dp(dist_grid* g, int share)
{
    MPI_Comm node;
    int node_rank, node_size;
    MPI_Comm_split_type(g->dp_comm, MPI_COMM_TYPE_SHARED, g->dp_rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &node_rank);
    MPI_Comm_size(node, &node_size);
    int group = share > 0 ? share : node_size;
    MPI_Comm_split(node, node_rank / group, node_rank, &g->dpn_comm);
    MPI_Comm_free(&node);
    MPI_Comm_size(g->dpn_comm, &g->dpn);
    int size[2] = {g->dpn, -g->dpn};
    MPI_Allreduce(MPI_IN_PLACE, size, 2, MPI_INT, MPI_MAX, g->dp_comm);
    if (size[0] != -size[1]) {
        MPI_Comm_free(&g->dpn_comm);
        MPI_Comm_split(g->dp_comm, g->dp_rank, 0, &g->dpn_comm);
        g->dpn = 1;
    }
    MPI_Comm_rank(g->dpn_comm, &g->dpn_rank);
    MPI_Comm_split(g->dp_comm, g->dpn_rank, g->dp_rank, &g->dpx_comm);
    MPI_Comm_size(g->dpx_comm, &g->dpx);
    MPI_Comm_rank(g->dpx_comm, &g->dpx_rank);
}

int dist_grid_init(MPI_Comm world, int tp, int share, dist_grid* g, char* err, size_t errlen)
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
    split_dp(g, share);
    MPI_Comm node;
    MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, g->world_rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &g->node_ranks);
    MPI_Comm_free(&node);
    return 0;
}

int dist_start(int* argc, char*** argv, dist_grid* world, char* err, size_t errlen)
{
    MPI_Init(argc, argv);
    return dist_grid_init(MPI_COMM_WORLD, 1, 1, world, err, errlen);
}

void dist_stop(dist_grid* world)
{
    dist_grid_free(world);
    MPI_Finalize();
}

double dist_wtime(void)
{
    return MPI_Wtime();
}

int dist_node_count(const dist_grid* g)
{
    MPI_Comm node;
    int rank, leaders;
    // Ranks that can share memory are one node; its rank 0 counts it once.
    MPI_Comm_split_type(g->world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &rank);
    int leader = rank == 0;
    // Every rank learns the count of node leaders.
    MPI_Allreduce(&leader, &leaders, 1, MPI_INT, MPI_SUM, g->world);
    MPI_Comm_free(&node);
    return leaders;
}

void dist_grid_free(dist_grid* g)
{
    if (g->tp_comm != MPI_COMM_NULL && g->tp_comm != 0) MPI_Comm_free(&g->tp_comm);
    if (g->dp_comm != MPI_COMM_NULL && g->dp_comm != 0) MPI_Comm_free(&g->dp_comm);
    if (g->dpn_comm != MPI_COMM_NULL && g->dpn_comm != 0) MPI_Comm_free(&g->dpn_comm);
    if (g->dpx_comm != MPI_COMM_NULL && g->dpx_comm != 0) MPI_Comm_free(&g->dpx_comm);
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
