// The closed-form head of fnn train: passes over the training split, the solve, the report.
#include <stdio.h>
#include <stdlib.h>
#include "run/eval_pass.h"
#include "run/ridge_head.h"
#include "model/ridge_normal.h"

// Rows per Gram GEMM: 2048 keeps the GEMM near OpenBLAS's SGEMM rate at H = 2048 (benchmark in
// README) while the float sums of one block stay short.
enum { RIDGE_ROWS = 2048 };

// Whether every fed-back weight Wf (the Of columns from fc of each layer's rows, every gate) that
// this rank holds is zero.
static int feedback_weights_zero(const model* m)
{
    for (int l = 0; l < m->c.L; l++) {
        const int K = m->K[l];
        const real* W = m->params + m->W[l];
        for (int i = 0; i < m->cell->gates * m->Hl; i++)
            for (int j = m->fc[l]; j < m->fc[l] + m->Of[l]; j++)
                if (W[(size_t)i * K + j] != 0) return 0;
    }
    return 1;
}

// Forward over every training window, summing the scored steps' states into a.
static void accumulate(ridge_acc* a, model* m, const dataset* d, data_batch* db, long windows)
{
    const int B = m->B, row0 = m->g->dp_rank * B;
    real* weight = malloc((size_t)B * sizeof(real));
    if (!weight) dist_fail("out of memory");
    // One pass takes B rows on each replica: with accum_steps, fewer than the global batch.
    for (long first = 0; first < windows; first += (long)B * m->g->dp) {
        dataset_eval_batch(d, db, SPLIT_TRAIN, first, row0);
        for (int r = 0; r < B; r++) weight[r] = first + row0 + r < windows;
        db->view.weight = weight;
        model_reset_state(m);
        model_forward(m, &db->view);
        ridge_acc_window(a, m, &db->view);
    }
    db->view.weight = NULL;
    free(weight);
}

void ridge_fit_head(model* m, const dataset* d, data_batch* db, double lambda)
{
    dist_grid* g = m->g;
    const int task = m->c.task, fbs = m->c.feedback_source;
    // The states may depend on the head only through Wf f. lm and regress feed back the true
    // previous target instead (teacher forcing); a classifier has no per-step target, so its Wf
    // must be zero, as init_from makes it when the task or the number of outputs changes.
    if (task == TASK_CLASSIFY && dist_any(!feedback_weights_zero(m), g))
        dist_fail_all("head_ridge = true, task = classify: the fed-back softmax of the head being "
                      "fitted reaches the states through a non-zero Wf, and a classifier has no "
                      "per-step target to feed back instead; use feedback = none, or a checkpoint of "
                      "another task or number of outputs (its Wf is new and zero)");
    if (task != TASK_CLASSIFY) model_set_feedback_source(m, FBS_TARGET);
    const long windows = dataset_windows(d, SPLIT_TRAIN, db->T);
    ridge_acc a;
    // One rank short of memory must not leave the others in the passes' collectives.
    if (dist_any(ridge_acc_init(&a, m, RIDGE_ROWS) != 0, g))
        dist_fail_all("out of memory for the ridge fit of hidden = %d", m->c.H);
    double t0 = dist_wtime();
    accumulate(&a, m, d, db, windows);
    double t1 = dist_wtime();
    long n = 0;
    int info = ridge_acc_solve(&a, m, lambda, &n);
    double t2 = dist_wtime();
    if (info > 0)
        dist_fail_all("head_ridge: G + ridge_lambda n I is not positive definite (leading minor %d "
                      "of %d, n = %ld rows): ridge_lambda = %g is too small for the rank-deficient "
                      "Gram matrix of these states; raise ridge_lambda", info, m->c.H, n, lambda);
    if (info < 0)
        dist_fail_all("head_ridge: the solve failed (out of memory or ScaLAPACK error) for hidden = %d",
                      m->c.H);
    model_set_feedback_source(m, fbs);
    eval_result e = evaluate(m, d, db, SPLIT_TRAIN, windows, 0);
    if (g->world_rank == 0) {
        printf("ridge head: %ld rows of %ld training windows, ridge_lambda = %g: passes %.2f s "
               "(Gram GEMM %.1f GFLOP/s per rank), solve %.2f s\n", n, windows, lambda, t1 - t0,
               a.gemm_s > 0 ? a.gemm_flops / a.gemm_s * 1e-9 : 0.0, t2 - t1);
        if (task == TASK_REGRESS) printf("ridge head: train mse %.9g\n", e.loss);
        else printf("ridge head: train loss %.9g  accuracy %.4f\n", e.loss, e.accuracy);
    }
    eval_result_free(&e);
    ridge_acc_free(&a);
}
