// Orthogonal initialisation by distributed QR (ScaLAPACK) over every rank of the job: the matrix
// is factored once, on one block-cyclic grid over the world, instead of once per DP replica; then
// DP replica 0's TP ranks receive their rows by pdgemr2d and a broadcast over DP gives the same
// rows to the other replicas. No rank ever holds the whole n x n matrix.
//
// Replica 0 then a broadcast, rather than one pdgemr2d per replica: pdgemr2d moves doubles, so dp
// of them would move 8 n^2 dp bytes, where one of them and a broadcast of the float rows move
// 8 n^2 + 4 n^2 (dp - 1); memory is the same either way (each receiver holds one panel at a time).
//
// Local ScaLAPACK arrays are column-major with leading dimension lld.
#include <limits.h>
#include <stdlib.h>
#include "dist/blacs.h"
#include "dist/dist.h"

// The squarest process grid with pr x pc = ranks.
static void grid_shape(int ranks, int* pr, int* pc)
{
    *pr = 1;
    for (int d = 1; d * d <= ranks; d++)
        if (ranks % d == 0) *pr = d;
    *pc = ranks / *pr;
}

// Block of the block-cyclic layout: 64 (OpenBLAS's level-3 kernels are efficient from there), but
// at least two blocks per process row and column, so that the panels of the factorisation, which
// move across the grid as it proceeds, leave every rank work until near the end.
static int qr_block(int n, int pr, int pc)
{
    int most = pr > pc ? pr : pc, nb = n / (2 * most);
    return nb > 64 ? 64 : nb > 0 ? nb : 1;
}

// Local index l of a block-cyclic dimension (block nb over np processes, this one p) -> global.
static long global_index(int l, int nb, int p, int np)
{
    return (long)(l / nb) * nb * np + (long)p * nb + l % nb;
}

// Columns of one panel of the move to row blocks: a receiver of rows rows holds rows x width
// doubles of it twice (its copy and pdgemr2d's receive buffer), each at most an eighth of the
// n^2 / world a rank holds of the factored matrix (and at least one column): about 8 dp panels.
static int panel_width(int n, int world, int rows)
{
    double budget = (double)n * n / (8.0 * world);
    long w = rows > 0 ? (long)(budget / rows) : n;
    return w < 1 ? 1 : w > n ? n : (int)w;
}

// The sizes one rank's part of the QR allocates, at process (myr, myc) of the world's grid.
typedef struct qr_sizes {
    int pr, pc, nb, mloc, nloc, lld;
    long lwork; // pdgeqrf's and pdorgqr's workspace (the same formula for a square matrix)
} qr_sizes;

static void qr_sizes_of(qr_sizes* s, int n, int world, int myr, int myc)
{
    const int zero = 0;
    grid_shape(world, &s->pr, &s->pc);
    s->nb = qr_block(n, s->pr, s->pc);
    s->mloc = numroc_(&n, &s->nb, &myr, &zero, &s->pr);
    s->nloc = numroc_(&n, &s->nb, &myc, &zero, &s->pc);
    s->lld = s->mloc > 1 ? s->mloc : 1;
    // The documented minimum of both routines (their workspace query returns it), computed here
    // so that sizing needs no collective query.
    s->lwork = (long)s->nb * (s->mloc + s->nloc + s->nb);
}

// Bytes process (0, 0), which holds the largest share, allocates at once: the factored matrix,
// tau, the signs, the workspace, and during the move one panel of rows, pdgemr2d's receive buffer
// of the same size and its send buffer (its local part of the panel's columns).
size_t dist_orthogonal_bytes(int n, int world)
{
    qr_sizes s;
    qr_sizes_of(&s, n, world, 0, 0);
    // A panel of rows x width holds at most max(budget, n): panel_width's bound.
    const double budget = (double)n * n / (8.0 * world), panel = budget > n ? budget : n;
    // pdgemr2d's send buffer: this rank's part of a panel's columns, whole blocks from where the
    // panel starts; the widest panel (rows = n / world, tp = world) is n / 8 columns.
    const long w = n > 8 ? (n + 7) / 8 : 1, cols = ((w + 2L * s.nb - 2) / ((long)s.nb * s.pc) + 1) * s.nb;
    double doubles = (double)s.lld * (s.nloc > 0 ? s.nloc : 1) + (s.nloc + 1) + (n + 1) +
                     (double)s.lwork + 2 * panel + (double)s.mloc * cols;
    return (size_t)(8 * doubles);
}

typedef struct qr_grid {
    int sys;        // BLACS system handle of the world (one per communicator, freed once)
    int ctxt, rows, line; // the QR's grid; world x 1 (row blocks); 1 x world (pdgemr2d's context)
    int myr, myc, desc[9];
    qr_sizes s;
} qr_grid;

static int qr_grid_init(qr_grid* q, int n, dist_grid* g)
{
    const int zero = 0;
    int info, pr, pc;
    grid_shape(g->world_size, &pr, &pc);
    q->sys = Csys2blacs_handle(g->world);
    q->ctxt = q->rows = q->line = q->sys;
    Cblacs_gridinit(&q->ctxt, "Row", pr, pc);
    // Process row r of the world x 1 grid is world rank r, and world ranks 0 .. tp-1 are DP
    // replica 0's TP ranks in order (dist/grid.c): block r of n / tp rows lands on TP rank r.
    Cblacs_gridinit(&q->rows, "Col", g->world_size, 1);
    // pdgemr2d makes a one-row copy of any other context on every call.
    Cblacs_gridinit(&q->line, "Row", 1, g->world_size);
    Cblacs_gridinfo(q->ctxt, &pr, &pc, &q->myr, &q->myc);
    qr_sizes_of(&q->s, n, g->world_size, q->myr, q->myc);
    descinit_(q->desc, &n, &n, &q->s.nb, &q->s.nb, &zero, &zero, &q->ctxt, &q->s.lld, &info);
    return info;
}

static void qr_grid_free(qr_grid* q)
{
    Cblacs_gridexit(q->line);
    Cblacs_gridexit(q->rows);
    Cblacs_gridexit(q->ctxt);
    Cfree_blacs_system_handle(q->sys);
}

// Everything one call allocates, up front, so that the ranks agree on memory before the first
// ScaLAPACK collective.
typedef struct qr_bufs {
    double *A, *tau, *sign, *work, *panel;
} qr_bufs;

static void qr_bufs_free(qr_bufs* b)
{
    free(b->A), free(b->tau), free(b->sign), free(b->work), free(b->panel);
}

// A = Q of the QR of A in place, and sign[j] = the sign of R_jj on every rank: flipping column j
// of Q by it makes R's diagonal positive, and so Q a function of A alone. sign[n] counts the
// ranks on which pdgeqrf failed. Collective over world.
static int orthogonal_factor(qr_bufs* b, int n, qr_grid* q, dist_grid* g)
{
    const int one = 1, lwork = (int)q->s.lwork, nb = q->s.nb;
    int info = 0;
    pdgeqrf_(&n, &n, b->A, &one, &one, q->desc, b->tau, b->work, &lwork, &info);
    for (int j = 0; j < q->s.nloc; j++) {
        long gj = global_index(j, nb, q->myc, q->s.pc);
        if (gj / nb % q->s.pr != q->myr) continue; // row gj of R is on another process row
        long i = gj / ((long)nb * q->s.pr) * nb + gj % nb;
        b->sign[gj] = b->A[(size_t)j * q->s.lld + i] < 0 ? -1 : 1;
    }
    b->sign[n] = info != 0;
    // Each diagonal entry of R lives on one rank (the others add 0), and every rank that receives
    // rows needs the signs of all n columns; the same sum tells all whether pdgeqrf failed.
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, b->sign, n + 1, MPI_DOUBLE, MPI_SUM, g->world);
    dist_counted(g, DIST_ALLREDUCE, t0);
    if (b->sign[n] > 0) return -1;
    // ScaLAPACK's info is global: its argument checks agree over the grid.
    pdorgqr_(&n, &n, &n, b->A, &one, &one, q->desc, b->tau, b->work, &lwork, &info);
    return info ? -1 : 0;
}

// Moves the block-cyclic Q to DP replica 0's TP ranks, rank r rows [r nrows, (r+1) nrows), one
// column panel at a time, with the signs applied, into out. Collective over world.
static void to_row_blocks(real* out, int ld, int n, int nrows, int width, qr_bufs* b, qr_grid* q,
                          dist_grid* g)
{
    const int zero = 0, one = 1, mine = g->dp_rank == 0 ? nrows : 0, lld = mine > 1 ? mine : 1;
    int desc[9], info;
    descinit_(desc, &n, &width, &nrows, &width, &zero, &zero, &q->rows, &lld, &info);
    for (int c0 = 0; c0 < n; c0 += width) {
        int w = n - c0 < width ? n - c0 : width, ja = c0 + 1;
        pdgemr2d_(&n, &w, b->A, &one, &ja, q->desc, b->panel, &one, &one, desc, &q->line);
        for (int i = 0; i < mine; i++)
            for (int j = 0; j < w; j++)
                out[(size_t)i * ld + c0 + j] = (real)(b->panel[(size_t)j * lld + i] * b->sign[c0 + j]);
    }
}

// The rows replica 0 holds, to the same TP rank of every other replica.
static void bcast_rows(real* out, int ld, int n, int nrows, dist_grid* g)
{
    MPI_Datatype rows;
    MPI_Type_vector(nrows, n, ld, REAL_MPI, &rows);
    MPI_Type_commit(&rows);
    double t0 = MPI_Wtime();
    MPI_Bcast(out, 1, rows, 0, g->dp_comm);
    dist_counted(g, DIST_BCAST, t0);
    MPI_Type_free(&rows);
}

int dist_orthogonal_rows(real* out, int ld, int n, double (*gen)(uint64_t, long, long),
                         uint64_t key, dist_grid* g)
{
    const int nrows = n / g->tp, width = panel_width(n, g->world_size, nrows);
    // ScaLAPACK indexes a local array with int; process (0, 0) holds the most: one verdict for all.
    qr_sizes most;
    qr_sizes_of(&most, n, g->world_size, 0, 0);
    if ((double)most.lld * most.nloc > INT_MAX)
        dist_fail_all("the orthogonal init of Wh (hidden = %d) needs %.0f elements per rank on %d "
                      "ranks, more than 2^31 - 1: run on more ranks, or set init = normal", n,
                      (double)most.lld * most.nloc, g->world_size);
    qr_grid q;
    int info = qr_grid_init(&q, n, g);
    const qr_sizes* s = &q.s;
    qr_bufs b = {
        .A = malloc((size_t)s->lld * (s->nloc > 0 ? s->nloc : 1) * sizeof(double)),
        .tau = malloc(((size_t)s->nloc + 1) * sizeof(double)),
        .sign = calloc((size_t)n + 1, sizeof(double)),
        .work = malloc((size_t)s->lwork * sizeof(double)),
        .panel = malloc((size_t)(g->dp_rank == 0 ? nrows : 1) * width * sizeof(double)),
    };
    // A rank without memory must not leave the others inside pdgeqrf.
    if (dist_any(info || !b.A || !b.tau || !b.sign || !b.work || !b.panel, g)) {
        info = -1;
    } else {
        for (int j = 0; j < s->nloc; j++)
            for (int i = 0; i < s->mloc; i++)
                b.A[(size_t)j * s->lld + i] = gen(key, global_index(i, s->nb, q.myr, s->pr),
                                                  global_index(j, s->nb, q.myc, s->pc));
        info = orthogonal_factor(&b, n, &q, g);
        if (!info) to_row_blocks(out, ld, n, nrows, width, &b, &q, g);
        if (!info && g->dp > 1) bcast_rows(out, ld, n, nrows, g);
    }
    qr_bufs_free(&b);
    qr_grid_free(&q);
    return info;
}
