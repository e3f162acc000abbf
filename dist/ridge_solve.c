// The linear solve of the closed-form output head: A W = B by ScaLAPACK's Cholesky (pdposv) on a
// block-cyclic grid over every rank of the job. The callers hold A and B in row blocks, as the
// model holds its hidden units: TP rank r has rows [r Hl, (r+1) Hl). pdgemr2d moves DP replica 0's
// blocks onto the grid and the solution back; a broadcast gives it to the other replicas.
//
// Local ScaLAPACK arrays are column-major with leading dimension lld.
#include <limits.h>
#include <stdlib.h>
#include "dist/blacs.h"
#include "dist/dist.h"

// The squarest process grid with pr x pc = n.
static void grid_shape(int n, int* pr, int* pc)
{
    *pr = 1;
    for (int d = 1; d * d <= n; d++)
        if (n % d == 0) *pr = d;
    *pc = n / *pr;
}

// A distributed matrix: its descriptor and this rank's local array.
typedef struct dmat {
    int desc[9], mloc, nloc, lld;
    double* a;
} dmat;

// Describes an m x n matrix in blocks mb x nb on ctxt and allocates the local part. 0, -1 if
// out of memory, or descinit's info.
static int dmat_init(dmat* d, int m, int n, int mb, int nb, int ctxt)
{
    const int zero = 0;
    int pr, pc, myr, myc, info;
    Cblacs_gridinfo(ctxt, &pr, &pc, &myr, &myc);
    d->mloc = numroc_(&m, &mb, &myr, &zero, &pr);
    d->nloc = numroc_(&n, &nb, &myc, &zero, &pc);
    d->lld = d->mloc > 1 ? d->mloc : 1;
    descinit_(d->desc, &m, &n, &mb, &nb, &zero, &zero, &ctxt, &d->lld, &info);
    d->a = malloc((size_t)d->lld * (d->nloc > 0 ? d->nloc : 1) * sizeof(double));
    return info ? info : d->a ? 0 : -1;
}

// Row block of a row-major matrix (rows of this rank, ld n) <-> the local array of a row-block
// dmat (block mb = those rows, one column block).
static void rows_in(dmat* d, const double* src, int n)
{
    for (int i = 0; i < d->mloc; i++)
        for (int j = 0; j < n; j++) d->a[(size_t)j * d->lld + i] = src[(size_t)i * n + j];
}

static void rows_out(double* dst, const dmat* d, int n)
{
    for (int i = 0; i < d->mloc; i++)
        for (int j = 0; j < n; j++) dst[(size_t)i * n + j] = d->a[(size_t)j * d->lld + i];
}

// Block of the cyclic layout: 64, smaller for small matrices so that every rank holds some.
static int solve_block(int n, int pr, int pc)
{
    int most = pr > pc ? pr : pc, nb = n / (2 * most);
    return nb > 64 ? 64 : nb > 0 ? nb : 1;
}

// The sum of the n doubles at buf over the DP replicas, into DP rank 0's buf (the others' are
// left as they were).
static void dp_reduce(double* buf, int n, dist_grid* g)
{
    double t0 = MPI_Wtime();
    MPI_Reduce(g->dp_rank == 0 ? MPI_IN_PLACE : buf, buf, n, MPI_DOUBLE, MPI_SUM, 0, g->dp_comm);
    dist_counted(g, DIST_REDUCE, t0);
}

int dist_ridge_solve(double* W, double* A, double* B, int H, int O, dist_grid* g)
{
    const int one = 1, Hl = H / g->tp;
    // MPI counts and ScaLAPACK's local arrays are int: the same verdict on every rank.
    if ((size_t)Hl * H > INT_MAX || (size_t)Hl * O > INT_MAX)
        dist_fail_all("the closed-form head needs H / tp x H = %zu elements per rank (hidden = %d, "
                      "tp = %d), more than 2^31 - 1: raise tp", (size_t)Hl * H, H, g->tp);
    // The DP replicas each summed their own rows; pdgemr2d reads replica 0's blocks only.
    if (g->dp > 1) {
        dp_reduce(A, Hl * H, g);
        dp_reduce(B, Hl * O, g);
    }
    // Row blocks on a world x 1 grid: process row r is world rank r, and world ranks 0 .. tp-1
    // are replica 0's TP ranks in order (dist/grid.c), so block r of Hl rows lands on TP rank r.
    // One system handle serves both grids: BLACS returns the same handle for the same
    // communicator, so freeing it once per call is exact (twice prints a BLACS warning).
    const int sys = Csys2blacs_handle(g->world);
    int pr, pc, rows_ctxt = sys, ctxt = sys;
    Cblacs_gridinit(&rows_ctxt, "Col", g->world_size, 1);
    grid_shape(g->world_size, &pr, &pc);
    Cblacs_gridinit(&ctxt, "Row", pr, pc);
    const int nb = solve_block(H, pr, pc);
    dmat As = {0}, Bs = {0}, Ad = {0}, Bd = {0};
    int info = dmat_init(&As, H, H, Hl, H, rows_ctxt);
    if (!info) info = dmat_init(&Bs, H, O, Hl, O, rows_ctxt);
    if (!info) info = dmat_init(&Ad, H, H, nb, nb, ctxt);
    if (!info) info = dmat_init(&Bd, H, O, nb, nb, ctxt);
    // A rank without memory must not leave the others inside pdgemr2d.
    if (dist_any(info != 0, g)) info = -1;
    if (!info) {
        rows_in(&As, A, H);
        rows_in(&Bs, B, O);
        pdgemr2d_(&H, &H, As.a, &one, &one, As.desc, Ad.a, &one, &one, Ad.desc, &ctxt);
        pdgemr2d_(&H, &O, Bs.a, &one, &one, Bs.desc, Bd.a, &one, &one, Bd.desc, &ctxt);
        pdposv_("L", &H, &O, Ad.a, &one, &one, Ad.desc, Bd.a, &one, &one, Bd.desc, &info);
        // pdposv's info is global output, but every rank must see the same verdict before the
        // next collective: agree on the largest (a non-positive minor), or -1 for any error.
        int v[2] = {info > 0 ? info : 0, info < 0};
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT, MPI_MAX, g->world);
        dist_counted(g, DIST_ALLREDUCE, t0);
        info = v[1] ? -1 : v[0];
    }
    if (!info) {
        pdgemr2d_(&H, &O, Bd.a, &one, &one, Bd.desc, Bs.a, &one, &one, Bs.desc, &ctxt);
        rows_out(W, &Bs, O);
        // Only replica 0 received its rows; the others take them from it.
        if (g->dp > 1) {
            double t0 = MPI_Wtime();
            MPI_Bcast(W, Hl * O, MPI_DOUBLE, 0, g->dp_comm);
            dist_counted(g, DIST_BCAST, t0);
        }
    }
    free(As.a), free(Bs.a), free(Ad.a), free(Bd.a);
    Cblacs_gridexit(ctxt);
    Cblacs_gridexit(rows_ctxt);
    // The handle holds a duplicate of world: one fit per run, but no leak in a long one.
    Cfree_blacs_system_handle(sys);
    return info;
}
