// precision = bf16 against float32 on the same model: the gradient at init agrees per tensor
// (cosine similarity > 0.999) for every cell of the registry at every TP x DP layout of the
// world, and a bf16 trajectory at each layout follows the one-rank bf16 trajectory. Skipped,
// with a SKIPPED: line, where this CPU has no bf16 kernels.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include "model/init.h"
#include "model/kernel.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/check.h"
#include "tests/layouts.h"

enum { T = 8, BG = 4, STEPS = 20 };

#include "tests/trajectory.h"

// Wide enough that a product sums dozens of rounded terms (the bf16 error is then a fraction of
// a percent of each sum, as in real runs), small enough for the suite.
static model_config config(int cell, int precision)
{
    return (model_config){.cell = cell, .task = TASK_LM, .act = ACT_TANH, .feedback = FB_ALL,
                          .feedback_source = FBS_MODEL, .wh_init = INIT_ORTHOGONAL,
                          .forget_bias = 1, .V = 16, .D = 24, .H = 64, .L = 2, .O = 16,
                          .seed = 7, .precision = precision};
}

// The gradient of one window at init, made whole on every rank.
static void gradient(model* m, dist_grid* g, int cell, int precision)
{
    model_config c = config(cell, precision);
    char err[256];
    CHECK(model_init(m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    CHECK(model_init_params(m) == 0, "init failed");
    int32_t tok[T * BG], next[T * BG];
    fill_batch(tok, next, 0, g->dp_rank * m->B, m->B, c.V);
    model_batch bt = {.T = T, .tokens = tok, .next = next};
    model_reset_state(m);
    model_zero_grad(m);
    model_forward(m, &bt);
    model_loss(m, &bt, NULL);
    model_backward(m, &bt);
    model_grads_whole(m);
}

// Per tensor: the bf16 gradient's cosine similarity with the float32 one and ||g16 - g32|| /
// ||g32||. Every rank adds what it holds: copies (DP replicas, TP-replicated tensors) scale
// the three sums alike, which leaves both ratios as they are.
static void compare_gradients(dist_grid* g, void* ctx)
{
    const int cell = *(const int*)ctx;
    model m32, m16;
    gradient(&m32, g, cell, PRECISION_FP32);
    gradient(&m16, g, cell, PRECISION_BF16);
    double worst_cos = 1, worst_rel = 0;
    char worst_name[32] = "";
    for (int k = 0; k < m32.ntensors; k++) {
        const model_tensor* t = &m32.tensors[k];
        double s[4] = {0, 0, 0, 0}; // g16.g32, g32.g32, g16.g16, (g16 - g32)^2
        for (int i = 0; i < t->lrows; i++)
            for (int j = 0; j < t->lcols; j++) {
                const size_t e = t->offset + (size_t)i * t->ld + j;
                const double a = m16.grads[e], b = m32.grads[e];
                s[0] += a * b, s[1] += b * b, s[2] += a * a, s[3] += (a - b) * (a - b);
            }
        MPI_Allreduce(MPI_IN_PLACE, s, 4, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (s[1] == 0 && s[2] == 0) continue; // no gradient at init at all
        const double cosine = s[0] / sqrt(s[1] * s[2]), rel = sqrt(s[3] / s[1]);
        CHECK(cosine > 0.999, "%s tp %d dp %d: %s: bf16 gradient's cosine with float32's %.6f",
              cell_name(cell), g->tp, g->dp, t->name, cosine);
        if (cosine < worst_cos) worst_cos = cosine, snprintf(worst_name, sizeof worst_name, "%s", t->name);
        if (rel > worst_rel) worst_rel = rel;
    }
    if (g->world_rank == 0)
        printf("%-5s tp %d x dp %d: bf16 vs float32 gradient at init, per tensor: lowest cosine "
               "%.6f (%s), largest ||g16 - g32|| / ||g32|| %.2e\n", cell_name(cell), g->tp,
               g->dp, worst_cos, worst_name, worst_rel);
    model_free(&m16);
    model_free(&m32);
}

// The memory of the packed weights (model_memory, which the memory plan prints): at bf16 each
// per-step product's copy takes 2 bytes per element of its panels (k rounded up to even, n to
// the panel width 32) instead of 4 per element of k x n rounded to 32 columns, each copy
// rounded to 64 bytes. Segments of 2 steps keep the forward and backward copies apart, so the
// area is their sum.
static void test_memory(void)
{
    dist_grid one;
    char err[256];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    for (int cell = 0; cell < CELL_KINDS; cell++) {
        model_config c32 = config(cell, PRECISION_FP32), c16 = config(cell, PRECISION_BF16);
        model m32, m16;
        CHECK(model_init_keep(&m32, &c32, &one, T, BG, 2, 0, err, sizeof err) == 0, "%s", err);
        CHECK(model_init_keep(&m16, &c16, &one, T, BG, 2, 0, err, sizeof err) == 0, "%s", err);
        const gemm_w* w[] = {m16.fwdW, m16.bwdW, m16.fwdWh, m16.bwdWh, m16.fwdWq, m16.bwdWq};
        double saved = 0;
        int copies = 0;
        for (int i = 0; i < 6; i++)
            for (int l = 0; l < c16.L; l++) {
                const gemm_w* g = &w[i][l];
                if (!g->packed16) continue;
                const double cols = (g->n + 31) / 32 * 32;
                saved += 4.0 * g->k * cols - 2.0 * (g->k + g->k % 2) * cols;
                copies++;
            }
        model_bytes b32, b16;
        model_memory(&m32, 1, 1, &b32);
        model_memory(&m16, 1, 1, &b16);
        const double got = (double)b32.shared - (double)b16.shared;
        CHECK(copies > 0 && fabs(got - saved) <= 64.0 * copies,
              "%s: bf16 packs %.0f bytes fewer than fp32, want %.0f (%d copies)", cell_name(cell),
              got, saved, copies);
        if (one.world_rank == 0 && cell == CELL_LSTM)
            printf("packed weights of an lstm H %d L %d (segments of 2 steps): %zu bytes at fp32, "
                   "%zu at bf16\n", c16.H, c16.L, b32.shared, b16.shared);
        model_free(&m16);
        model_free(&m32);
    }
    dist_grid_free(&one);
}

// STEPS Adam steps at bf16 on fresh batches: the global loss and gradient norm of each.
static void trajectory(dist_grid* g, double* traj, double* norms)
{
    model_config c = config(CELL_LSTM, PRECISION_BF16);
    model m;
    char err[256];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    int32_t tok[T * BG], next[T * BG];
    model_batch bt = {.T = T, .tokens = tok, .next = next};
    for (int s = 0; s < STEPS; s++) {
        fill_batch(tok, next, s, g->dp_rank * m.B, m.B, c.V);
        traj[s] = train_step(&m, &bt, s, 0, &norms[s]);
    }
    model_free(&m);
}

// A layout changes float32 sums by rounding (TP's allreduce order, the shards of the products);
// an operand that lands near a bf16 rounding boundary then rounds the other way, a change of
// 2^-9 of that element instead of 2^-24. Over 20 Adam steps that moves the loss and gradient
// norm by about 1e-4 here (float32: 1e-6): 1e-3 relative bounds it with room and still fails for
// a wrong share (a missing member's rows or columns change the loss at the first step by far more).
static void test_layouts(int world)
{
    double ref[STEPS], got[STEPS], ref_norm[STEPS], norm[STEPS];
    dist_grid one;
    char err[128];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    trajectory(&one, ref, ref_norm);
    dist_grid_free(&one);
    layout ls[MAX_LAYOUTS];
    const int nl = world > 1 ? layouts(world, ls) : 0;
    for (int l = 0; l < nl; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        trajectory(&g, got, norm);
        check_trajectory(&g, "bf16 lstm ", got, norm, ref, ref_norm, 1e-3);
        dist_grid_free(&g);
    }
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    const char* lack = kernel_bf16_missing();
    if (lack) {
        if (rank == 0) printf("SKIPPED: this CPU has no bf16 kernels (needs %s)\n", lack);
        MPI_Finalize();
        return 0;
    }
    if (world == 1) test_memory();
    for (int cell = 0; cell < CELL_KINDS; cell++) each_layout(compare_gradients, &cell);
    test_layouts(world);
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails != 0;
}
