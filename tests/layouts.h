// The TP x DP layouts a multi-rank test runs at, shared so that every test covers the same ones:
// tp = 1, 2, 4 where it divides the world, and the DP replicas all sharing memory (share 0),
// none (1), or in pairs that also sum by message (2 of 4).
#ifndef TESTS_LAYOUTS_H
#define TESTS_LAYOUTS_H

#include <sys/stat.h>
#include "dist/dist.h"
#include "tests/check.h"

enum { MAX_LAYOUTS = 8 };

typedef struct layout {
    int tp, share;
} layout;

// Fills out (MAX_LAYOUTS at most) in the order tp, then share; returns how many.
static inline int layouts(int world, layout* out)
{
    int n = 0;
    for (int tp = 1; tp <= world; tp *= 2)
        for (int share = 0; share <= 2; share++) {
            const int dp = world / tp;
            if (world % tp || (share == 1 && dp == 1) || (share == 2 && dp != 4)) continue;
            out[n++] = (layout){tp, share};
        }
    return n;
}

// g: the grid of layout l over MPI_COMM_WORLD (a failure to make it is a failed check).
static inline void layout_grid(dist_grid* g, const layout* l)
{
    char err[128];
    CHECK(dist_grid_init(MPI_COMM_WORLD, l->tp, l->share, g, err, sizeof err) == 0, "%s", err);
}

// dir = build/tests/<name>_np<world>, a test's scratch folder (one per rank count), made by
// world rank 0 before any rank goes on.
static inline void scratch_dir(char* dir, size_t len, const char* name)
{
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    snprintf(dir, len, "build/tests/%s_np%d", name, world);
    if (rank == 0) {
        mkdir("build/tests", 0777);
        mkdir(dir, 0777);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

// fn(g, ctx) at every layout of MPI_COMM_WORLD in turn, g its grid (made before, freed after).
static inline void each_layout(void (*fn)(dist_grid* g, void* ctx), void* ctx)
{
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    layout ls[MAX_LAYOUTS];
    const int n = layouts(world, ls);
    for (int l = 0; l < n; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        fn(&g, ctx);
        dist_grid_free(&g);
    }
}

#endif
