// Fine-tuning in the model: frozen tensors (m->no_grad) get no weight gradient and, a region of
// them all, no DP reduction (counted), while the others' gradients are those of the unfrozen
// run; the per-tensor learning-rate factor and the L2-SP gradient against a float64 SGD step.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include "model/init.h"
#include "model/kernel.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/check.h"

enum { T = 6, BG = 4 };

static model_config tiny(int cell)
{
    return (model_config){.cell = cell, .task = TASK_LM, .act = ACT_TANH, .feedback = FB_ALL,
                          .feedback_source = FBS_MODEL, .wh_init = INIT_ORTHOGONAL,
                          .V = 12, .D = 5, .H = 8, .L = 2, .O = 12, .seed = 3};
}

static void batch(model_batch* bt, int32_t* tok, int32_t* next, const model* m)
{
    for (int t = 0; t < T; t++)
        for (int b = 0; b < m->B; b++) {
            int row = m->g->dp_rank * m->B + b;
            tok[t * m->B + b] = (int32_t)(init_uniform(31, t, row) * m->c.V);
            next[t * m->B + b] = (int32_t)(init_uniform(32, t, row) * m->c.V);
        }
    *bt = (model_batch){.T = T, .tokens = tok, .next = next};
}

// Forward, loss and backward of one window, counting the collectives of the backward pass;
// afterwards grads holds the DP sum everywhere (model_gather).
static void grad_step(model* m, const model_batch* bt, long* scatters, long* syncs)
{
    model_reset_state(m);
    model_zero_grad(m);
    model_forward(m, bt);
    model_loss(m, bt, NULL);
    dist_reset_counts(m->g);
    model_backward(m, bt);
    *scatters = m->g->count[DIST_IREDUCE_SCATTER];
    *syncs = m->g->count[DIST_SYNC];
    model_gather(m, m->grads);
}

// Element (i, j) of this rank's piece of tensor k in buf.
static real* at(const model* m, real* buf, int k, int i, int j)
{
    return buf + m->tensors[k].offset + (size_t)i * m->tensors[k].ld + j;
}

// Freezes every tensor named by one of `names` (NULL-terminated) as fnn train's `freeze` does: a
// name, or with a cell of several gates every gate's tensor of that name (layer0/Wh_r, ...).
// Returns how many.
static int freeze(model* m, const char* const* names)
{
    int n = 0;
    for (const char* const* item = names; *item; item++)
        for (int k = 0; k < m->ntensors; k++) {
            const char* name = m->tensors[k].name;
            const size_t len = strlen(*item);
            if (!strncmp(name, *item, len) && (name[len] == 0 || name[len] == '_'))
                m->no_grad[k] = 1, n++;
        }
    return n;
}

// Freezing `names` (NULL-terminated, as freeze() reads them): their gradients are zero, the
// others' equal the unfrozen run's, and the backward pass issues `fewer_regions` fewer
// reductions between nodes and (with a shared-memory group) one fewer sync per skipped
// reduction call.
static void test_frozen(dist_grid* g, int cell, const char* const* names, int fewer_regions,
                        int fewer_calls)
{
    model_config c = tiny(cell);
    model m;
    char err[256];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    int32_t tok[T * BG], next[T * BG];
    model_batch bt;
    batch(&bt, tok, next, &m);
    long ia0, sy0, ia1, sy1;
    grad_step(&m, &bt, &ia0, &sy0);
    real* ref = malloc(m.nparams * sizeof(real));
    memcpy(ref, m.grads, m.nparams * sizeof(real));
    freeze(&m, names);
    grad_step(&m, &bt, &ia1, &sy1);
    // fnn's kernel (kernel->atb, one BLAS thread) sums every element of a weight gradient over
    // the rows in order whatever the run's width: splitting a run by freezing changes no bit of
    // the others. OpenBLAS (the generic variant) rounds by the call's shape, so there a trained
    // tensor agrees to rounding: each element sums k = T B rows (24 here), and two orders of k
    // terms differ by at most 2 gamma(k) sum|terms| = 2.9e-6 sum|terms|; over a tensor of these
    // random-sign sums, 1e-5 in the 2-norm (tests/e2e_cli.sh's criterion for gradients), where an
    // element near zero may move by more than 1e-5 of itself. A gradient not computed, or computed
    // on the wrong columns, is off by the size of the tensor.
    const double tol = kernel->atb ? 0 : 1e-5;
    long zero = 0, same = 0, held = 0;
    double worst = 0;
    for (int k = 0; k < m.ntensors; k++) {
        double e2 = 0, r2 = 0;
        for (int i = 0; i < m.tensors[k].lrows; i++)
            for (int j = 0; j < m.tensors[k].lcols; j++) {
                double v = *at(&m, m.grads, k, i, j), r = *at(&m, ref, k, i, j);
                held++;
                if (m.no_grad[k]) {
                    zero += v == 0;
                    continue;
                }
                same += v == r;
                e2 += (v - r) * (v - r), r2 += r * r;
            }
        if (e2 > 0) worst = fmax(worst, sqrt(e2 / fmax(r2, 1e-300)));
    }
    long frozen = 0;
    for (int k = 0; k < m.ntensors; k++) frozen += m.no_grad[k] ? (long)m.tensors[k].lrows * m.tensors[k].lcols : 0;
    const char* cn = m.cell->name;
    CHECK(zero == frozen && frozen > 0, "%s %s...: %ld of %ld frozen gradients zero", cn, names[0], zero, frozen);
    CHECK(worst <= tol, "%s %s...: trained tensors' gradients differ from the unfrozen run's by %g "
          "relative in the 2-norm of a tensor (kernel %s, allowed %g)", cn, names[0], worst,
          kernel->name, tol);
    CHECK(ia1 == ia0 - (g->dpx > 1 ? fewer_regions : 0), "%s %s...: %ld reduce-scatters, unfrozen %ld", cn, names[0], ia1, ia0);
    CHECK(sy1 == sy0 - (g->dpn > 1 ? fewer_calls : 0), "%s %s...: %ld syncs, unfrozen %ld", cn, names[0], sy1, sy0);
    if (g->world_rank == 0)
        printf("%s freeze %s...: tp %d dp %d (%d x %d): %ld frozen gradients zero, %ld of %ld trained "
               "bit-identical (worst tensor %.1e); reduce-scatters %ld -> %ld, syncs %ld -> %ld\n", cn, names[0],
               g->tp, g->dp, g->dpn, g->dpx, zero, same, held - frozen, worst, ia0, ia1, sy0, sy1);
    free(ref);
    model_free(&m);
}

// One SGD step (no momentum, no clipping) with lr factors scale[k] and the L2-SP term over the
// tensors in l2: every parameter moves by -lr scale_k (g + lambda (p - p0)), computed here in
// double from the gradient and parameters before the step.
static void test_sgd_formula(dist_grid* g)
{
    model_config c = tiny(CELL_ELMAN);
    model m;
    char err[256];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    int32_t tok[T * BG], next[T * BG];
    model_batch bt;
    batch(&bt, tok, next, &m);
    long ia, sy;
    grad_step(&m, &bt, &ia, &sy);
    const double lr = 0.1, lambda = 0.7, body = 0.25;
    double scale[MODEL_MAX_TENSORS];
    unsigned char l2[MODEL_MAX_TENSORS];
    real* theta0 = malloc(m.nparams * sizeof(real));
    double* before = malloc(m.nparams * sizeof(double));
    double* grad = malloc(m.nparams * sizeof(double));
    for (size_t i = 0; i < m.nparams; i++) {
        theta0[i] = (real)(m.params[i] + 0.05 * (init_uniform(33, 0, (long)i) - 0.5));
        before[i] = m.params[i];
        grad[i] = m.grads[i];
    }
    for (int k = 0; k < m.ntensors; k++) {
        const int head = !strncmp(m.tensors[k].name, "head/", 5);
        scale[k] = head ? 1 : body;
        l2[k] = !head;
    }
    optim_config o = {.kind = OPT_SGD, .lr = lr, .momentum = 0, .steps = 1};
    optim_add_l2_init(&m, theta0, l2, lambda);
    optim_step(&m, &o, 0, optim_grad_norm(&m), scale, NULL);
    double worst = 0;
    for (int k = 0; k < m.ntensors; k++)
        for (int i = 0; i < m.tensors[k].lrows; i++)
            for (int j = 0; j < m.tensors[k].lcols; j++) {
                size_t e = m.tensors[k].offset + (size_t)i * m.tensors[k].ld + j;
                double want = before[e] - lr * scale[k] * (grad[e] + (l2[k] ? lambda * (before[e] - theta0[e]) : 0));
                // In float32 spacings of the larger of p and the step: the gradient plus the L2
                // term, the momentum buffer and p - step are each rounded to float32 once.
                double ulp = fmax(fabs(before[e]), fabs(want - before[e])) * 0x1p-23;
                worst = fmax(worst, fabs(m.params[e] - want) / fmax(ulp, 1e-30));
            }
    CHECK(worst <= 2, "tp %d dp %d: SGD step off the float64 formula by %.2f float32 spacings", g->tp, g->dp, worst);
    if (g->world_rank == 0)
        printf("SGD step with body_lr_scale %.2f and l2_init %.1f: tp %d dp %d, worst error %.2f "
               "float32 spacings from the float64 formula\n", body, lambda, g->tp, g->dp, worst);
    free(theta0);
    free(before);
    free(grad);
    model_free(&m);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    // One BLAS thread: the weight gradients then run on fnn's kernel where the variant has one
    // (gemm_atb hands them to OpenBLAS with more threads), and test_frozen asks for every bit.
    openblas_set_num_threads(1);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    static const char* const layer0[] = {"layer0/Wx", "layer0/Wh", "layer0/Wf", "layer0/b",
                                         "layer0/bh", "embed", NULL};
    static const char* const middle[] = {"layer1/Wh", "layer0/Wx", NULL};
    static const char* const f_h[] = {"layer0/Wf", "layer1/Wh", NULL};
    static const char* const uf[] = {"layer1/Wx", "layer1/Wf", NULL};
    static const char* const head_stage[] = {"layer0/Wx", "layer0/Wh", "layer0/b", "layer1/Wx",
                                             "layer1/Wh", "layer1/b", "embed", NULL};
    for (int tp = 1; tp <= world; tp *= 2)
        for (int share = 0; share <= 1; share++) {
            if (world % tp || (share == 1 && world / tp == 1)) continue;
            dist_grid g;
            char err[128];
            dist_grid_init(MPI_COMM_WORLD, tp, share, &g, err, sizeof err);
            for (int cell = 0; cell < CELL_KINDS; cell++) {
                // Layer 0 and the embedding: two regions, one reduction call fewer (the
                // embedding shares its call with the head).
                test_frozen(&g, cell, layer0, 2, 1);
                // Parts of layers: every region still trains; the GEMM is split around Wh.
                test_frozen(&g, cell, middle, 0, 0);
                // The head-only stage: only head and Wf (and a bh) train; the embedding's
                // region is skipped.
                test_frozen(&g, cell, head_stage, 1, 0);
                // The f columns of layer 0 (u and h train apart) and the h columns of layer 1;
                // then the [u | f] columns of layer 1, one run where the recurrent product is
                // apart (split_h: its h run, dAH, alone trains).
                test_frozen(&g, cell, f_h, 0, 0);
                test_frozen(&g, cell, uf, 0, 0);
            }
            test_sgd_formula(&g);
            dist_grid_free(&g);
        }
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails != 0;
}
