// Evaluation passes: windows in order, the state reset before each window.
#include <stdlib.h>
#include "launch/evaluate.h"

eval_result evaluate(model* m, const dataset* d, data_batch* db, int split, long windows,
                     int grads)
{
    const int B = m->B, Bg = m->Bglobal, row0 = m->g->dp_rank * B;
    if (grads && windows > Bg) dist_fail_all("gradients of %ld windows need a batch of them all, not %d", windows, Bg);
    real* weight = malloc((size_t)B * sizeof(real));
    if (!weight) dist_fail("out of memory");
    double sums[2] = {0, 0}; // loss x Bglobal, right answers
    if (grads) model_zero_grad(m);
    for (long first = 0; first < windows; first += Bg) {
        dataset_eval_batch(d, db, split, first, row0);
        for (int r = 0; r < B; r++) weight[r] = first + row0 + r < windows;
        db->view.weight = weight;
        model_reset_state(m);
        model_forward(m, &db->view);
        long right = 0;
        sums[0] += model_loss(m, &db->view, &right) * Bg;
        sums[1] += right;
        if (!grads) continue;
        // model_loss is normalised by Bglobal; the pass's mean is over `windows`.
        size_t n = (size_t)db->view.T * B * m->c.O;
        for (size_t i = 0; i < n; i++) m->dY[i] *= (real)((double)Bg / windows);
        model_backward(m, &db->view);
    }
    db->view.weight = NULL;
    free(weight);
    if (grads) model_gather(m, m->grads);
    // Each DP replica scored its own rows.
    if (m->g->dp > 1) dist_dp_allreduce_f64(sums, 2, m->g);
    eval_result r = {.loss = sums[0] / windows, .windows = windows};
    long scored = m->c.task == TASK_LM ? windows * db->view.T : windows;
    r.accuracy = m->c.task == TASK_REGRESS ? 0 : sums[1] / scored;
    return r;
}
