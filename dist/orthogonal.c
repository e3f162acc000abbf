// Orthogonal initialisation by distributed QR (ScaLAPACK) over the TP group: each rank ends up
// with its block of rows of Q, and no rank ever holds the whole n x n matrix.
#include <stdlib.h>
#include "dist/blacs.h"
#include "dist/dist.h"

// Block of the block-cyclic layout: 64, smaller for small matrices so that every rank of the
// grid holds some of the matrix.
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

// The squarest process grid with pr x pc = tp.
static void grid_shape(int tp, int* pr, int* pc)
{
    *pr = 1;
    for (int d = 1; d * d <= tp; d++)
        if (tp % d == 0) *pr = d;
    *pc = tp / *pr;
}

typedef struct qr_grid {
    int sys, ctxt, pr, pc, myr, myc, nb, mloc, nloc, lld, desc[9];
} qr_grid;

static int qr_grid_init(qr_grid* q, int n, dist_grid* g)
{
    const int zero = 0;
    int info;
    grid_shape(g->tp, &q->pr, &q->pc);
    const int nb = q->nb = qr_block(n, q->pr, q->pc);
    q->ctxt = q->sys = Csys2blacs_handle(g->tp_comm);
    Cblacs_gridinit(&q->ctxt, "Row", q->pr, q->pc);
    Cblacs_gridinfo(q->ctxt, &q->pr, &q->pc, &q->myr, &q->myc);
    q->mloc = numroc_(&n, &nb, &q->myr, &zero, &q->pr);
    q->nloc = numroc_(&n, &nb, &q->myc, &zero, &q->pc);
    q->lld = q->mloc > 1 ? q->mloc : 1;
    descinit_(q->desc, &n, &n, &nb, &nb, &zero, &zero, &q->ctxt, &q->lld, &info);
    return info;
}

static void qr_grid_free(qr_grid* q)
{
    Cblacs_gridexit(q->ctxt);
    Cfree_blacs_system_handle(q->sys);
}

// A = Q of the QR of A in place, with R's diagonal made positive (flip column j of Q with the
// sign of R_jj), which makes Q a function of A alone.
static int orthogonal_factor(double* A, int n, qr_grid* q, dist_grid* g)
{
    const int one = 1;
    int info = 0, lwork = -1;
    double query, *tau = malloc(((size_t)q->nloc + 1) * sizeof(double));
    double* sign = calloc((size_t)n, sizeof(double));
    pdgeqrf_(&n, &n, A, &one, &one, q->desc, tau, &query, &lwork, &info);
    lwork = (int)query;
    double* work = malloc(((size_t)lwork + 1) * sizeof(double));
    if (!tau || !sign || !work) info = -1;
    if (!info) pdgeqrf_(&n, &n, A, &one, &one, q->desc, tau, work, &lwork, &info);
    for (int j = 0; j < q->nloc && !info; j++)
        for (int i = 0; i < q->mloc; i++)
            if (global_index(i, q->nb, q->myr, q->pr) == global_index(j, q->nb, q->myc, q->pc))
                sign[global_index(j, q->nb, q->myc, q->pc)] = A[(size_t)j * q->lld + i] < 0 ? -1 : 1;
    // Each diagonal entry of R lives on one rank; the others contribute 0 to the sum.
    MPI_Allreduce(MPI_IN_PLACE, sign, n, MPI_DOUBLE, MPI_SUM, g->tp_comm);
    int qwork = -1;
    if (!info) pdorgqr_(&n, &n, &n, A, &one, &one, q->desc, tau, &query, &qwork, &info);
    if (!info && (int)query > lwork) {
        lwork = (int)query;
        free(work);
        work = malloc(((size_t)lwork + 1) * sizeof(double));
        if (!work) info = -1;
    }
    if (!info) pdorgqr_(&n, &n, &n, A, &one, &one, q->desc, tau, work, &lwork, &info);
    for (int j = 0; j < q->nloc && !info; j++) {
        double s = sign[global_index(j, q->nb, q->myc, q->pc)];
        for (int i = 0; i < q->mloc; i++) A[(size_t)j * q->lld + i] *= s;
    }
    free(tau), free(sign), free(work);
    return info;
}

// Moves the block-cyclic Q to row blocks: rank r of the TP group gets rows [r nrows, (r+1) nrows).
static int to_row_blocks(real* out, int ld, int n, int nrows, const double* A, qr_grid* q,
                         dist_grid* g)
{
    const int zero = 0, one = 1;
    // q's system handle: BLACS hands out one handle per communicator, freed once by qr_grid_free.
    int ctxt = q->sys, info;
    Cblacs_gridinit(&ctxt, "Col", g->tp, 1);
    int desc[9], lld = nrows > 1 ? nrows : 1;
    descinit_(desc, &n, &n, &nrows, &n, &zero, &zero, &ctxt, &lld, &info);
    double* B = malloc((size_t)lld * n * sizeof(double));
    if (!B) info = -1;
    if (!info) pdgemr2d_(&n, &n, A, &one, &one, q->desc, B, &one, &one, desc, &q->ctxt);
    for (int i = 0; i < nrows && !info; i++)
        for (int j = 0; j < n; j++) out[(size_t)i * ld + j] = (real)B[(size_t)j * lld + i];
    free(B);
    Cblacs_gridexit(ctxt);
    return info;
}

int dist_orthogonal_rows(real* out, int ld, int n, double (*gen)(uint64_t, long, long),
                         uint64_t key, dist_grid* g)
{
    qr_grid q;
    int info = qr_grid_init(&q, n, g);
    double* A = malloc((size_t)q.lld * (q.nloc > 0 ? q.nloc : 1) * sizeof(double));
    if (!A) info = -1;
    for (int j = 0; j < q.nloc && !info; j++)
        for (int i = 0; i < q.mloc; i++)
            A[(size_t)j * q.lld + i] = gen(key, global_index(i, q.nb, q.myr, q.pr),
                                           global_index(j, q.nb, q.myc, q.pc));
    if (!info) info = orthogonal_factor(A, n, &q, g);
    if (!info) info = to_row_blocks(out, ld, n, n / g->tp, A, &q, g);
    free(A);
    qr_grid_free(&q);
    // A failure on one rank (memory) must fail all of them.
    MPI_Allreduce(MPI_IN_PLACE, &info, 1, MPI_INT, MPI_MAX, g->tp_comm);
    return info ? -1 : 0;
}
