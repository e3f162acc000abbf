// Dropout in the float32 model (model/dropout.c, docs/model.md): the masks equal their formula
// computed here from the coordinates (window key, connection, global row, step, global unit);
// the inverted scaling keeps the expectation, E[mask] = 1 and Var[mask] = p / (1 - p), over many
// masks; a unit that a mask drops gets exactly zero weight gradient where the mask alone feeds
// it (the head's Wo, layer 1's Wx, every gate's Wh, with one row), every other unit some, for
// every cell; training with both kinds follows one rank's trajectory at every TP x DP layout,
// every cell, and dropout moves it. (Evaluation without dropout, the resume and the refusals:
// tests/e2e_feedback.sh; the gradients: tests/grad_model.c, grad_cells.c; the recomputed
// segments: tests/test_bptt.c.)
// ranks: 1 2 4
#include <string.h>
#include "model/dropout.h"
#include "model/feedback.h"
#include "model/init.h"
#include "model/mix.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/check.h"
#include "tests/layouts.h"

enum { T = 6, BG = 4, STEPS = 12 };

#include "tests/trajectory.h"

// The mask element as docs/model.md defines it, written out here: kept when the 16 bits
// u = (x >> 16 (j mod 4)) mod 2^16 of x = splitmix64(splitmix64(k ^ row) ^ (t << 32) ^ (j / 4))
// have u 2^-16 >= p, with k = splitmix64(init_key(window key, "dropout" or "dropout_recurrent")
// ^ l) and t = 0 for the recurrent mask; a kept element is 1 / (1 - p).
static double formula(uint64_t fb_key, int recurrent, int l, long row, int t, int j, double p)
{
    const uint64_t k = splitmix64(init_key(fb_key, recurrent ? "dropout_recurrent" : "dropout") ^ (uint64_t)l);
    const uint64_t x = splitmix64(splitmix64(k ^ (uint64_t)row) ^ ((uint64_t)(recurrent ? 0 : t) << 32) ^ (uint64_t)(j / 4));
    return (double)((x >> (16 * (j % 4))) & 0xffff) / 65536 >= p ? 1 / (1 - p) : 0;
}

// dropout_apply on rows of ones against the formula, for both kinds, over 40 windows x 16 rows
// x 5 steps x 300 units (rows 3 .. 18 of the global batch: the local rows follow row0; units
// 5 .. 304: a block that starts inside a draw's four and spans two of dropout.c's chunks), and
// the moments of the masks: mean 1 and variance p / (1 - p) within 4 standard errors.
static void test_masks(void)
{
    enum { W = 40, R = 16, TT = 5, J = 300 };
    const double p = 0.3;
    static real x[R * J];
    for (int recurrent = 0; recurrent < 2; recurrent++) {
        double s1 = 0, s2 = 0, n = 0;
        long wrong = 0, across_t = 0, elems = 0;
        for (long w = 0; w < W; w++) {
            const model_batch bt = {.dropout = recurrent ? 0 : p, .dropout_rec = recurrent ? p : 0,
                                    .fb_key = feedback_key(13, w), .row0 = 3};
            const int kind = recurrent ? DROP_RECURRENT : DROP_LAYER;
            for (int t = 0; t < TT; t++) {
                for (int i = 0; i < R * J; i++) x[i] = 1;
                // Units from 5: a TP rank's block is masked at its global units.
                dropout_apply(&bt, kind, 2, t, x, J, 5, J, R);
                for (int b = 0; b < R; b++)
                    for (int j = 0; j < J; j++) {
                        const double v = x[b * J + j];
                        wrong += v != (real)formula(bt.fb_key, recurrent, 2, 3 + b, t, 5 + j, p);
                        across_t += v != (real)formula(bt.fb_key, recurrent, 2, 3 + b, 0, 5 + j, p);
                        elems++;
                        if (!recurrent || t == 0) s1 += v, s2 += v * v, n++; // distinct masks
                    }
            }
        }
        const double mean = s1 / n, var = s2 / n - mean * mean, want = p / (1 - p);
        // The mask m is 0 or s = 1 / (1 - p): Var[m^2] = s^4 p (1 - p) bounds the variance's error.
        const double s = 1 / (1 - p), var_se = sqrt(s * s * s * s * p * (1 - p) / n);
        const char* name = recurrent ? "recurrent" : "between layers";
        CHECK(wrong == 0, "%s: %ld of %ld mask elements differ from the formula", name, wrong, elems);
        CHECK(recurrent ? across_t == 0 : across_t > 0.3 * elems,
              "%s: %ld of %ld elements differ from step 0's", name, across_t, elems);
        CHECK(fabs(mean - 1) < 4 * sqrt(want / n) && fabs(var - want) < 4 * var_se,
              "%s p = %g: mask mean %.5f (want 1), variance %.5f (want %.5f)", name, p, mean, var, want);
        printf("dropout %s p = %g: masks = formula over %ld elements; over %.0f masks mean %.5f "
               "(1), variance %.5f (p / (1 - p) = %.5f)%s\n", name, p, elems, n, mean, var, want,
               recurrent ? "; one mask for every step" : "");
    }
}

static model_config tiny(int cell)
{
    return (model_config){.task = TASK_LM, .act = ACT_TANH, .feedback = FB_ALL,
                          .feedback_source = FBS_MODEL, .wh_init = INIT_ORTHOGONAL, .V = 16,
                          .D = 8, .H = 16, .L = 2, .O = 16, .seed = 5, .cell = cell,
                          .forget_bias = 1};
}

// Whether column j (unit j: one rank holds every column) of every tensor of layer l and part
// `part` (layer -1: the head's Wo) has a zero gradient in all its rows.
static int column_zero(const model* m, int l, int part, int j)
{
    int zero = 1;
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        if (t->layer != l || t->part != part) continue;
        for (int i = 0; i < t->lrows; i++) zero &= m->grads[t->offset + (size_t)i * t->ld + j] == 0;
    }
    return zero;
}

// One row (global batch 1) and two steps so that a unit's weight column sees that row's masks alone: Wo's
// column j (the head's input h[1]_t, j) and layer 1's Wx column j (its input h[0]_t, j) are zero
// exactly when the mask drops j at every step, every gate's Wh column j of layer l exactly when
// the recurrent mask drops j (h_{t-1} and the MGU's q, both masked by it), for every cell.
static void test_masked_grad(int cell)
{
    dist_grid one;
    char err[256];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    const model_config c = tiny(cell);
    model m;
    enum { TW = 2 }; // steps: a unit dropped at all of them is common at p = 0.7
    CHECK(model_init(&m, &c, &one, TW, 1, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    int32_t tok[T], next[T];
    fill_batch(tok, next, 0, 0, 1, c.V);
    const model_batch bt = {.T = TW, .tokens = tok, .next = next, .dropout = 0.7,
                            .dropout_rec = 0.5, .fb_key = feedback_key(c.seed, 4)};
    model_reset_state(&m);
    model_zero_grad(&m);
    model_forward(&m, &bt);
    model_loss(&m, &bt, NULL);
    model_backward(&m, &bt);
    int bad = 0, dropped[3] = {0}, kept[3] = {0};
    for (int j = 0; j < c.H; j++) {
        int all_head = 1, all_up = 1;
        for (int t = 0; t < TW; t++) {
            all_head &= formula(bt.fb_key, 0, c.L, 0, t, j, bt.dropout) == 0;
            all_up &= formula(bt.fb_key, 0, 1, 0, t, j, bt.dropout) == 0;
        }
        const int want[3] = {all_head, all_up, 0};
        const int got[3] = {column_zero(&m, -1, PART_WO, j), column_zero(&m, 1, PART_WX, j), 0};
        for (int k = 0; k < 2; k++) bad += want[k] != got[k], dropped[k] += want[k], kept[k] += !want[k];
        for (int l = 0; l < c.L; l++) {
            const int off = formula(bt.fb_key, 1, l, 0, 0, j, bt.dropout_rec) == 0;
            bad += off != column_zero(&m, l, PART_WH, j);
            dropped[2] += off, kept[2] += !off;
        }
    }
    CHECK(bad == 0, "%s: %d weight columns zero where no mask drops their unit, or not zero "
          "where one does", cell_name(cell), bad);
    CHECK(dropped[0] && kept[0] && dropped[1] && kept[1] && dropped[2] && kept[2],
          "%s: this window drops too few or too many units to tell (%d/%d, %d/%d, %d/%d)",
          cell_name(cell), dropped[0], kept[0], dropped[1], kept[1], dropped[2], kept[2]);
    printf("%s: zero gradient exactly for the dropped units: Wo %d of %d, layer 1 Wx %d of %d, Wh "
           "%d of %d\n", cell_name(cell), dropped[0], c.H, dropped[1], c.H, dropped[2], c.L * c.H);
    model_free(&m);
    dist_grid_free(&one);
}

// STEPS Adam steps with dropout p between layers and before the head and p_rec on the recurrent
// input, the windows and masks keyed by the step; the global loss and gradient norm of each.
static void trajectory(dist_grid* g, int cell, double p, double p_rec, double* loss, double* norm)
{
    const model_config c = tiny(cell);
    model m;
    char err[256];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    const int B = m.B, row0 = g->dp_rank * B;
    int32_t tok[T * BG], next[T * BG];
    for (int s = 0; s < STEPS; s++) {
        fill_batch(tok, next, s, row0, B, c.V);
        const model_batch bt = {.T = T, .tokens = tok, .next = next, .dropout = p,
                                .dropout_rec = p_rec, .fb_key = feedback_key(c.seed, s),
                                .row0 = row0};
        loss[s] = train_step(&m, &bt, s, 1, &norm[s]);
    }
    model_free(&m);
}

static void test_layouts(int world, int cell)
{
    double ref[STEPS], ref_norm[STEPS], plain[STEPS], plain_norm[STEPS], got[STEPS], norm[STEPS];
    dist_grid one;
    char err[128], what[48];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    trajectory(&one, cell, 0.3, 0.3, ref, ref_norm);
    trajectory(&one, cell, 0, 0, plain, plain_norm);
    dist_grid_free(&one);
    double moved = 0;
    for (int s = 0; s < STEPS; s++) moved = fmax(moved, fabs(ref[s] - plain[s]) / plain[s]);
    CHECK(moved > 1e-3, "%s: dropout moves the trajectory by only %.2e", cell_name(cell), moved);
    snprintf(what, sizeof what, "%s dropout .3 rec .3 (moves it %.1e): ", cell_name(cell), moved);
    layout ls[MAX_LAYOUTS];
    const int nl = world > 1 ? layouts(world, ls) : 0; // one rank is the reference itself
    for (int l = 0; l < nl; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        trajectory(&g, cell, 0.3, 0.3, got, norm);
        check_trajectory(&g, what, got, norm, ref, ref_norm, 1e-5);
        dist_grid_free(&g);
    }
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world == 1) {
        test_masks();
        for (int cell = 0; cell < CELL_KINDS; cell++) test_masked_grad(cell);
    }
    for (int cell = 0; cell < CELL_KINDS; cell++) test_layouts(world, cell);
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails != 0;
}
