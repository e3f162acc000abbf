// The orthogonal initialisation (dist/orthogonal.c: one ScaLAPACK QR over every rank of the job,
// rows moved to their owners and broadcast over DP) against a serial reference: the Q of the
// same Gaussian matrix by Gram-Schmidt with reorthogonalisation in long double, whose R has a
// positive diagonal by construction. At every TP x DP layout of the world, each rank's rows equal
// the reference rows it owns to float rounding, every DP replica holds the same bits, the whole Q
// is orthogonal, and R's diagonal (Q^T A) is positive. A rank that cannot allocate fails the call
// on every rank, and dist_orthogonal_bytes bounds what the call adds to the peak resident memory.
// ranks: 1 2 4
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "model/init.h"
#include "tests/check.h"
#include "tests/layouts.h"

static const uint64_t KEY = 0x5eed;

// The reference: Q (n x n, row-major) of the matrix gen(KEY, i, j) and kappa, the Frobenius
// condition number ||R||_F ||R^-1||_F >= ||A||_2 ||A^-1||_2.
typedef struct reference {
    int n;
    long double* q;
    double kappa;
} reference;

static void reference_compute(reference* ref, int n)
{
    long double* a = malloc((size_t)n * n * sizeof *a); // column j at a + j n
    long double* r = calloc((size_t)n * n, sizeof *r);  // R, column-major
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) a[(size_t)j * n + i] = init_normal(KEY, i, j);
    // Column j minus its projections on the columns before it, twice (the second pass removes
    // what the first left by rounding), then normalised: R_jj = the norm, > 0.
    for (int j = 0; j < n; j++) {
        long double* v = a + (size_t)j * n;
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < j; k++) {
                long double* u = a + (size_t)k * n, d = 0;
                for (int i = 0; i < n; i++) d += u[i] * v[i];
                for (int i = 0; i < n; i++) v[i] -= d * u[i];
                r[(size_t)j * n + k] += d;
            }
        long double norm = 0;
        for (int i = 0; i < n; i++) norm += v[i] * v[i];
        norm = sqrtl(norm);
        r[(size_t)j * n + j] = norm;
        for (int i = 0; i < n; i++) v[i] /= norm;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) ref->q[(size_t)i * n + j] = a[(size_t)j * n + i];
    // ||R^-1||_F: R^-1 e_c by back substitution, column by column.
    long double rf = 0, rinv = 0, *x = malloc((size_t)n * sizeof *x);
    for (size_t e = 0; e < (size_t)n * n; e++) rf += r[e] * r[e];
    for (int c = 0; c < n; c++) {
        for (int i = n - 1; i >= 0; i--) {
            long double s = i == c;
            for (int k = i + 1; k < n; k++) s -= r[(size_t)k * n + i] * x[k];
            x[i] = s / r[(size_t)i * n + i];
            rinv += x[i] * x[i];
        }
    }
    ref->kappa = (double)sqrtl(rf * rinv);
    free(a), free(r), free(x);
}

// The reference of order n, computed by rank 0 alone (the ranks share the cores) and broadcast.
static void reference_init(reference* ref, int n)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    ref->n = n;
    ref->q = malloc((size_t)n * n * sizeof *ref->q);
    if (rank == 0) reference_compute(ref, n);
    MPI_Bcast(ref->q, n * n, MPI_LONG_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Bcast(&ref->kappa, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
}

// Bound on |Q computed in double - Q exact| per element: Householder QR is backward stable
// (||dA|| <= c n eps ||A||), and Q's forward error is at most kappa times that; c = 4 is generous
// for n <= 256 (the measured error is printed, and far below).
static double double_error(const reference* ref)
{
    return 4.0 * ref->n * ref->kappa * 0x1.0p-53;
}

// The whole Q of this rank's replica, gathered from its TP group.
static real* gather_q(const float* rows, int ld, int n, dist_grid* g)
{
    const int nrows = n / g->tp;
    real* mine = malloc((size_t)nrows * n * sizeof *mine);
    real* q = malloc((size_t)n * n * sizeof *q);
    for (int i = 0; i < nrows; i++) memcpy(mine + (size_t)i * n, rows + (size_t)i * ld, n * sizeof *mine);
    MPI_Allgather(mine, nrows * n, REAL_MPI, q, nrows * n, REAL_MPI, g->tp_comm);
    free(mine);
    return q;
}

// One layout: rows, replicas, orthogonality and sign of the n x n Q against the reference.
static void check_layout(dist_grid* g, void* reference_)
{
    const reference* ref = reference_;
    const int n = ref->n, nrows = n / g->tp, ld = n + 3, row0 = g->tp_rank * nrows;
    real* out = malloc((size_t)nrows * ld * sizeof *out);
    for (size_t e = 0; e < (size_t)nrows * ld; e++) out[e] = NAN; // the gaps stay NaN
    CHECK(dist_orthogonal_rows(out, ld, n, init_normal, KEY, g) == 0, "n %d: QR failed", n);
    // Rows: the float of the reference to within its rounding (half an ulp, 2^-24 |q|) plus the
    // double computation's error.
    const double ed = double_error(ref);
    double worst = 0, worst_abs = 0;
    long bad = 0;
    for (int i = 0; i < nrows; i++) {
        for (int j = 0; j < n; j++) {
            const double want = (double)ref->q[(size_t)(row0 + i) * n + j], got = out[(size_t)i * ld + j];
            const double err = fabs(got - want), tol = 0x1.0p-24 * fabs(want) + ed;
            bad += !(err <= tol);
            worst = fmax(worst, err / tol);
            worst_abs = fmax(worst_abs, err);
        }
        for (int j = n; j < ld; j++) bad += !isnan(out[(size_t)i * ld + j]);
    }
    CHECK(bad == 0, "n %d tp %d dp %d rank %d: %ld elements off the reference (worst %.3g of the "
          "tolerance)", n, g->tp, g->dp, g->world_rank, bad, worst);
    // Replicas: the same bits everywhere (a broadcast, not a recomputation).
    const size_t m = (size_t)nrows * ld;
    real* lo = malloc(m * sizeof *lo);
    real* hi = malloc(m * sizeof *hi);
    MPI_Allreduce(out, lo, (int)m, REAL_MPI, MPI_MIN, g->dp_comm);
    MPI_Allreduce(out, hi, (int)m, REAL_MPI, MPI_MAX, g->dp_comm);
    long differ = 0;
    for (int i = 0; i < nrows; i++)
        for (int j = 0; j < n; j++) differ += memcmp(&lo[(size_t)i * ld + j], &hi[(size_t)i * ld + j], sizeof(real)) != 0;
    CHECK(differ == 0, "n %d tp %d dp %d: %ld elements differ between DP replicas", n, g->tp, g->dp, differ);
    // Orthogonality of the float Q: each element is off by at most 2^-24 |q| + ed, so
    // |Q^T Q - I| <= 2 (2^-24 + sqrt(n) ed), plus the double sums' rounding.
    real* q = gather_q(out, ld, n, g);
    double orth = 0, min_diag = INFINITY;
    for (int a = 0; a < n; a++)
        for (int b = a; b < n; b++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += (double)q[(size_t)k * n + a] * q[(size_t)k * n + b];
            orth = fmax(orth, fabs(s - (a == b)));
        }
    // R = Q^T A: its diagonal positive is the sign convention (|R_jj| is of order sqrt(n - j)).
    for (int j = 0; j < n; j++) {
        double s = 0;
        for (int k = 0; k < n; k++) s += (double)q[(size_t)k * n + j] * init_normal(KEY, k, j);
        min_diag = fmin(min_diag, s);
    }
    const double orth_tol = 2 * (0x1.0p-24 + sqrt(n) * ed) + n * 0x1.0p-52;
    CHECK(orth <= orth_tol, "n %d tp %d dp %d: ||Q^T Q - I||_max = %.3g > %.3g", n, g->tp, g->dp, orth, orth_tol);
    CHECK(min_diag > 0, "n %d tp %d dp %d: R's diagonal reaches %.3g", n, g->tp, g->dp, min_diag);
    double w[2] = {worst, worst_abs};
    MPI_Allreduce(MPI_IN_PLACE, w, 2, MPI_DOUBLE, MPI_MAX, g->world);
    if (g->world_rank == 0)
        printf("n %3d tp %d x dp %d (share %d): max |Q - ref| %.2e = %.2f of the tolerance "
               "(kappa %.0f), ||Q^T Q - I|| %.2e (bound %.2e), min R_jj %.2f\n", n, g->tp, g->dp,
               g->dpn, w[1], w[0], ref->kappa, orth, orth_tol, min_diag);
    free(out), free(lo), free(hi), free(q);
}

// VmHWM, this process's peak resident memory, in bytes (0 if unreadable).
static double peak_rss(void)
{
    char line[128];
    double kb = 0;
    FILE* f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
    if (f) fclose(f);
    return kb * 1024;
}

// Sets VmHWM back to the current resident memory (Linux's clear_refs, value 5). 0 on success.
static int reset_peak(void)
{
    FILE* f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int bad = fputs("5", f) < 0;
    return fclose(f) || bad ? -1 : 0;
}

// dist_orthogonal_bytes against what one call adds to the peak resident memory (VmHWM, reset
// before the call), at tp = world and, up to 2 ranks, at tp = 1 (each rank of replica 0 receives
// all n rows: the same path at any world, which only the QR's share changes). A first
// call warms OpenBLAS's, MPI's and BLACS's own buffers, which are the process's, not the call's;
// every large block is its own mapping (no dynamic mmap threshold), so that the memory a call frees
// leaves the resident set and the next call's peak counts its own. VmHWM also counts file-backed
// pages (the libraries' code), which a busy machine may evict and fault back during the call:
// 1 MB of slack above the bound, and below, the call must show at least half its factored matrix.
static void check_bytes(int world)
{
    const int n = 2048, tps[2] = {1, world};
    mallopt(M_MMAP_THRESHOLD, 1 << 16);
    mallopt(M_TRIM_THRESHOLD, 1 << 16);
    for (int k = world > 2; k < (world > 1 ? 2 : 1); k++) {
        const int tp = tps[k];
        dist_grid g;
        char err[128];
        CHECK(dist_grid_init(MPI_COMM_WORLD, tp, 0, &g, err, sizeof err) == 0, "%s", err);
        const int nrows = n / tp;
        const int ld = n + 16; // strided, as the model's Wh (the broadcast's datatype)
        real* out = malloc((size_t)nrows * ld * sizeof *out);
        CHECK(dist_orthogonal_rows(out, ld, n, init_normal, KEY, &g) == 0, "n %d: QR failed", n);
        if (reset_peak()) {
            if (g.world_rank == 0) printf("SKIPPED: /proc/self/clear_refs cannot reset the peak\n");
            free(out);
            dist_grid_free(&g);
            return;
        }
        const double before = peak_rss();
        CHECK(dist_orthogonal_rows(out, ld, n, init_normal, KEY, &g) == 0, "n %d: QR failed", n);
        double rise = peak_rss() - before, bound = (double)dist_orthogonal_bytes(n, world);
        const double least = 8.0 * n * n / world; // the factored matrix alone
        CHECK(rise <= bound + 1e6 && rise >= least / 2, "n %d tp %d rank %d: the call added %.2f MB "
              "to the peak, dist_orthogonal_bytes says %.2f MB, the factored matrix takes %.2f", n,
              tp, g.world_rank, rise / 1e6, bound / 1e6, least / 1e6);
        dist_world_max_f64(&rise, 1, &g);
        if (g.world_rank == 0)
            printf("n %d tp %d x dp %d: peak rose %.2f MB (rank max), dist_orthogonal_bytes "
                   "%.2f MB, 8 n^2 / world %.2f MB\n", n, tp, g.dp, rise / 1e6, bound / 1e6, least / 1e6);
        free(out);
        dist_grid_free(&g);
    }
}

// The last rank cannot allocate the factored matrix (its address space is capped): every rank
// returns -1 and none waits in a collective for it.
static void check_out_of_memory(int world)
{
    dist_grid g;
    char err[128];
    CHECK(dist_grid_init(MPI_COMM_WORLD, 1, 0, &g, err, sizeof err) == 0, "%s", err);
    const int n = 8192; // 512 MB / world of factored matrix
    real* out = malloc((size_t)n * n * sizeof *out);
    struct rlimit old, cap;
    getrlimit(RLIMIT_AS, &old);
    if (g.world_rank == world - 1) {
        FILE* f = fopen("/proc/self/statm", "r");
        unsigned long pages = 0;
        if (f && fscanf(f, "%lu", &pages) != 1) pages = 0;
        if (f) fclose(f);
        cap = old;
        cap.rlim_cur = pages * 4096ul + (64ul << 20); // 64 MB more than it has mapped
        setrlimit(RLIMIT_AS, &cap);
    }
    const int r = dist_orthogonal_rows(out, n, n, init_normal, KEY, &g);
    if (g.world_rank == world - 1) setrlimit(RLIMIT_AS, &old);
    CHECK(r == -1, "rank %d: dist_orthogonal_rows returned %d with rank %d out of memory", g.world_rank, r, world - 1);
    if (g.world_rank == 0) printf("out of memory on rank %d: -1 on every rank\n", world - 1);
    free(out);
    dist_grid_free(&g);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    // 64: one block per process on 2 x 2; 200: partial blocks and several column panels.
    const int sizes[] = {64, 200};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        reference ref;
        reference_init(&ref, sizes[s]);
        each_layout(check_layout, &ref);
        free(ref.q);
    }
    check_bytes(world);
    check_out_of_memory(world);
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails != 0;
}
