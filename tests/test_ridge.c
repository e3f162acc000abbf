// The closed-form ridge head (model/ridge_normal.c, dist/ridge_solve.c) against a serial solve in double: at
// every TP x DP layout of the world, for lm, classify and regress, the head that the distributed
// accumulation and ScaLAPACK's pdposv produce equals LAPACK dposv on G and C formed here in double
// from the top-layer states the forward pass left in HB (gathered from every rank with MPI), to
// 1e-4 of the largest weight. A rank-deficient system with a tiny lambda is refused with the same
// info > 0 on every rank, and the ranks go on to the next collective. The solve's collectives
// are counted.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include "model/init.h"
#include "model/model.h"
#include "model/ridge_normal.h"
#include "tests/check.h"

enum { T = 8, BG = 4, R = 7, DMAX = 8, OMAX = 16 };

void dposv_(const char* uplo, const int* n, const int* nrhs, double* a, const int* lda, double* b,
            const int* ldb, int* info);

// One window of BG rows and its view for rows [row0, row0 + B).
typedef struct window {
    int32_t tok[T * BG], next[T * BG], label[BG], last[BG];
    real dense[T * BG * DMAX], target[T * BG * OMAX], weight[BG];
    model_batch view;
} window;

// Window rows of global windows first + row0 + b: values keyed by (window, step), so every
// layout sees the same data. Windows at or past nwin are padding (weight 0).
static void fill(window* w, const model_config* c, long first, int row0, int B, long nwin)
{
    for (int b = 0; b < B; b++) {
        long gw = first + row0 + b;
        w->weight[b] = gw < nwin;
        w->label[b] = (int32_t)(init_uniform(33, gw, 0) * c->O);
        w->last[b] = (int32_t)(init_uniform(34, gw, 0) * T);
        for (int t = 0; t < T; t++) {
            const int r = t * B + b;
            w->tok[r] = (int32_t)(init_uniform(31, gw, t) * (c->V ? c->V : 1));
            w->next[r] = (int32_t)(init_uniform(32, gw, t) * c->O);
            for (int j = 0; j < c->D; j++) w->dense[r * c->D + j] = (real)init_normal(35, gw, t * c->D + j);
            for (int o = 0; o < c->O; o++) w->target[r * c->O + o] = (real)(init_uniform(36, gw, t * c->O + o) - 0.5);
        }
    }
    w->view = (model_batch){.T = T, .tokens = c->V ? w->tok : NULL, .dense = c->V ? NULL : w->dense,
                            .next = w->next, .label = w->label, .last = w->last, .weight = w->weight,
                            .target = c->task == TASK_REGRESS ? w->target : NULL};
}

// The head by normal equations in double over the gathered states hall (nwin x T x H): W (H x O,
// row-major) and bo. Returns dposv's info.
static int reference(double* W, double* bo, const model_config* c, const real* hall, long nwin,
                     double lambda)
{
    const int H = c->H, O = c->O;
    double* mean = calloc(H, sizeof(double));
    double* ybar = calloc(O, sizeof(double));
    double* A = calloc((size_t)H * H, sizeof(double));
    double* Bcm = calloc((size_t)H * O, sizeof(double)); // column-major H x O
    double* y = malloc(O * sizeof(double));
    window w;
    long n = 0;
    // Two passes over the scored rows: the means, then the centred sums.
    for (int pass = 0; pass < 2; pass++)
        for (long first = 0; first < nwin; first += BG) {
            fill(&w, c, first, 0, BG, nwin);
            for (int b = 0; b < BG && first + b < nwin; b++)
                for (int t = 0; t < T; t++) {
                    if (c->task == TASK_CLASSIFY && t != w.last[b]) continue;
                    const real* h = hall + ((size_t)(first + b) * T + t) * H;
                    for (int o = 0; o < O; o++)
                        y[o] = c->task == TASK_REGRESS ? w.target[(t * BG + b) * O + o]
                             : o == (c->task == TASK_LM ? w.next[t * BG + b] : w.label[b]);
                    if (pass == 0) {
                        n++;
                        for (int i = 0; i < H; i++) mean[i] += h[i];
                        for (int o = 0; o < O; o++) ybar[o] += y[o];
                        continue;
                    }
                    for (int i = 0; i < H; i++) {
                        for (int j = 0; j < H; j++) A[(size_t)j * H + i] += (h[i] - mean[i]) * (h[j] - mean[j]);
                        for (int o = 0; o < O; o++) Bcm[(size_t)o * H + i] += (h[i] - mean[i]) * y[o];
                    }
                }
            if (pass == 0 && first + BG >= nwin) {
                for (int i = 0; i < H; i++) mean[i] /= n;
                for (int o = 0; o < O; o++) ybar[o] /= n;
            }
        }
    for (int i = 0; i < H; i++) A[(size_t)i * H + i] += lambda * n;
    int info;
    dposv_("L", &H, &O, A, &H, Bcm, &H, &info);
    for (int o = 0; o < O; o++) {
        bo[o] = ybar[o];
        for (int i = 0; i < H; i++) {
            W[(size_t)i * O + o] = Bcm[(size_t)o * H + i];
            bo[o] -= Bcm[(size_t)o * H + i] * mean[i];
        }
    }
    free(mean), free(ybar), free(A), free(Bcm), free(y);
    return info;
}

// Runs the passes at this layout, gathering every rank's block of the top-layer states into hall.
// Returns ridge_acc_solve's info; m keeps the fitted head.
static int fit(model* m, real* hall, long nwin, double lambda, long* n)
{
    const model_config* c = &m->c;
    const int B = m->B, Hl = m->Hl, H = c->H, L = c->L;
    dist_grid* g = m->g;
    ridge_acc a;
    CHECK(ridge_acc_init(&a, m, R) == 0, "ridge_acc_init");
    real* all = malloc((size_t)g->world_size * T * B * Hl * sizeof(real));
    window w;
    for (long first = 0; first < nwin; first += BG) {
        fill(&w, c, first, g->dp_rank * B, B, nwin);
        model_reset_state(m);
        model_forward(m, &w.view);
        ridge_acc_window(&a, m, &w.view);
        MPI_Allgather(m->HB[L - 1], T * B * Hl, REAL_MPI, all, T * B * Hl, REAL_MPI, MPI_COMM_WORLD);
        for (int r = 0; r < g->world_size; r++)
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++) {
                    long gw = first + (r / g->tp) * B + b;
                    if (gw >= nwin) continue;
                    memcpy(hall + ((size_t)gw * T + t) * H + (r % g->tp) * Hl,
                           all + (((size_t)r * T + t) * B + b) * Hl, Hl * sizeof(real));
                }
    }
    dist_reset_counts(g);
    int info = ridge_acc_solve(&a, m, lambda, n);
    // Agreements on memory in the solve and in dist_ridge_solve, and on pdposv's info; over DP the
    // sums [n, mean, ybar] on every replica, G and C onto replica 0 (the one pdgemr2d reads), and
    // the broadcast of the solution; over TP W^T mean for bo.
    const long allreduce = 3 + (g->dp > 1) + (info == 0 && g->tp > 1);
    const long reduce = g->dp > 1 ? 2 : 0, bcast = info == 0 && g->dp > 1;
    CHECK(g->count[DIST_ALLREDUCE] == allreduce && g->count[DIST_REDUCE] == reduce &&
          g->count[DIST_BCAST] == bcast,
          "tp %d dp %d: %ld allreduces, %ld reduces and %ld broadcasts, want %ld, %ld and %ld",
          g->tp, g->dp, g->count[DIST_ALLREDUCE], g->count[DIST_REDUCE], g->count[DIST_BCAST],
          allreduce, reduce, bcast);
    free(all);
    ridge_acc_free(&a);
    return info;
}

// share: as dist_grid_init (0: the node's DP replicas share memory, 1: they sum by message).
static void test_head(model_config c, const char* what, int tp, int share, long nwin, double lambda)
{
    dist_grid g;
    char err[256];
    if (dist_grid_init(MPI_COMM_WORLD, tp, share, &g, err, sizeof err)) return;
    model m;
    CHECK(model_init(&m, &c, &g, T, BG, err, sizeof err) == 0, "%s", err);
    CHECK(model_init_params(&m) == 0, "init");
    const int H = c.H, O = c.O, Hl = m.Hl;
    real* hall = calloc((size_t)nwin * T * H, sizeof(real));
    long n = 0;
    int info = fit(&m, hall, nwin, lambda, &n);
    double* W = malloc((size_t)H * O * sizeof(double));
    double bo[OMAX];
    int rinfo = reference(W, bo, &c, hall, nwin, lambda);
    CHECK(info == 0 && rinfo == 0, "%s tp %d: info %d, reference info %d", what, tp, info, rinfo);
    long want_n = c.task == TASK_CLASSIFY ? nwin : nwin * T;
    CHECK(n == want_n, "%s: %ld rows, want %ld", what, n, want_n);
    double big = 0, diff[2] = {0, 0}; // largest |W|; differences of Wo and bo, relative to it
    for (size_t i = 0; i < (size_t)H * O; i++) big = fmax(big, fabs(W[i]));
    for (int o = 0; o < O; o++) {
        for (int i = 0; i < Hl; i++)
            diff[0] = fmax(diff[0], fabs(m.params[m.Wo + (size_t)o * Hl + i] - W[(size_t)(m.h0 + i) * O + o]));
        diff[1] = fmax(diff[1], fabs(m.params[m.bo + o] - bo[o]));
    }
    diff[0] /= big, diff[1] /= big;
    MPI_Allreduce(MPI_IN_PLACE, diff, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    CHECK(diff[0] <= 1e-4 && diff[1] <= 1e-4, "%s tp %d dp %d: Wo off by %.2e, bo by %.2e of max |W| %g",
          what, g.tp, g.dp, diff[0], diff[1], big);
    if (g.world_rank == 0)
        printf("%-8s tp %d x dp %d (dpn %d): %ld rows, max |W| %.3g, Wo within %.1e, bo within %.1e of it\n",
               what, g.tp, g.dp, g.dpn, n, big, diff[0], diff[1]);
    free(W), free(hall);
    model_free(&m);
    dist_grid_free(&g);
}

// Fewer rows than hidden units make the centred Gram singular; lambda = 1e-30 cannot lift it
// above rounding, so Cholesky meets a non-positive pivot. Every rank must get the same info and
// still reach the next collective.
static void test_not_positive_definite(int tp)
{
    dist_grid g;
    char err[256];
    if (dist_grid_init(MPI_COMM_WORLD, tp, 0, &g, err, sizeof err)) return;
    model_config c = {.task = TASK_CLASSIFY, .act = ACT_TANH, .feedback = FB_NONE, .V = 16, .D = 8,
                      .H = 16, .L = 1, .O = 3, .seed = 9};
    model m;
    CHECK(model_init(&m, &c, &g, T, BG, err, sizeof err) == 0, "%s", err);
    CHECK(model_init_params(&m) == 0, "init");
    real* hall = calloc((size_t)BG * T * c.H, sizeof(real));
    long n;
    int info = fit(&m, hall, BG, 1e-30, &n), lo = info, hi = info;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    CHECK(lo > 0 && lo == hi, "tp %d: info %d .. %d over the ranks, want one value > 0", tp, lo, hi);
    if (g.world_rank == 0)
        printf("not positive definite, tp %d x dp %d: %ld rows, H = %d: info %d on every rank\n",
               g.tp, g.dp, n, c.H, info);
    free(hall);
    model_free(&m);
    dist_grid_free(&g);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    const model_config lm = {.task = TASK_LM, .act = ACT_TANH, .feedback = FB_ALL,
                             .feedback_source = FBS_TARGET, .V = 16, .D = 8, .H = 16, .L = 2,
                             .O = 16, .seed = 5};
    const model_config cls = {.task = TASK_CLASSIFY, .act = ACT_SIGMOID, .feedback = FB_ALL,
                              .V = 16, .D = 8, .H = 16, .L = 1, .O = 5, .seed = 6};
    const model_config reg = {.task = TASK_REGRESS, .act = ACT_RELU, .feedback = FB_FIRST,
                              .feedback_source = FBS_TARGET, .D = 3, .H = 16, .L = 2, .O = 2,
                              .seed = 7};
    for (int tp = 1; tp <= world; tp *= 2) {
        test_head(lm, "lm", tp, 0, 10, 1e-3);
        if (tp < world) test_head(lm, "lm, DP replicas not sharing", tp, 1, 10, 1e-3);
        test_head(cls, "classify", tp, 0, 30, 1e-3);
        test_head(reg, "regress", tp, 0, 10, 1e-3);
        test_not_positive_definite(tp);
    }
    MPI_Finalize();
    return check_failures ? 1 : 0;
}
