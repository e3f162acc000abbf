// Gradient accumulation (accum_steps, docs/parallel.md): a step's rows of this replica run as
// accum micro-batches of B rows one after another, each carrying its own rows of the state
// (model_select_micro), their gradients summed in grads as backward accumulates, and the DP
// reduction made once, by the last one's backward (model/share.c).
#include <math.h>
#include "model/model.h"

double model_accumulate(model* m, const model_batch* (*batch)(model* m, void* arg), void* arg,
                        int* bad)
{
    double loss = 0;
    if (bad) *bad = -1;
    model_zero_grad(m);
    for (int j = 0; j < m->accum; j++) {
        model_select_micro(m, j);
        const model_batch* bt = batch(m, arg);
        model_forward(m, bt);
        // Normalised by the global batch (model_loss): the micro-batches' losses add up.
        const double part = model_loss(m, bt, NULL);
        if (bad && *bad < 0 && !isfinite(part)) *bad = j;
        loss += part;
        model_backward(m, bt);
    }
    model_select_micro(m, 0);
    // Each DP replica holds the loss of its rows.
    if (m->g->dp > 1) dist_dp_allreduce_f64(&loss, 1, m->g);
    return loss;
}
