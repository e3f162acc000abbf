// Evaluation passes: windows in order, the state reset before each window. Besides the loss, each
// pass accumulates what the task's measures need, in one vector of doubles that is summed over
// the DP replicas once at the end (the TP ranks of a replica hold the same outputs and rows).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "run/eval_pass.h"

// Layout of the accumulator: loss x Bglobal, right answers, then the task's part: classify the
// O x O confusion counts; regress per output the squared error, the sum and the sum of squares of
// the target minus a shift (the split's first target, the same on every rank): about it, the
// sums stay small for targets with a large mean and a small variance, where sq - sum^2 / n
// would cancel.
enum { ACC_LOSS, ACC_RIGHT, ACC_TASK };

static size_t task_len(int task, int O)
{
    return task == TASK_CLASSIFY ? (size_t)O * O : task == TASK_REGRESS ? 3 * (size_t)O : 0;
}

// The index of the largest output, the first of equals (as model_loss counts right answers).
static int argmax(const real* y, int O)
{
    int arg = 0;
    for (int o = 1; o < O; o++)
        if (y[o] > y[arg]) arg = o;
    return arg;
}

static void accumulate(const model* m, const model_batch* bt, const real* weight,
                       const double* shift, double* acc)
{
    const int B = m->B, O = m->c.O;
    if (m->c.task == TASK_CLASSIFY) {
        for (int b = 0; b < B; b++) {
            if (weight[b] == 0) continue;
            const real* y = m->Y + ((size_t)bt->last[b] * B + b) * O;
            acc[ACC_TASK + (size_t)bt->label[b] * O + argmax(y, O)] += 1;
        }
    } else if (m->c.task == TASK_REGRESS) {
        double *sse = acc + ACC_TASK, *sum = sse + O, *sq = sum + O;
        for (size_t r = 0; r < (size_t)bt->T * B; r++) {
            if (weight[r % B] == 0 || (bt->last && (size_t)bt->last[r % B] != r / B)) continue;
            for (int o = 0; o < O; o++) {
                double y = m->Y[r * O + o], t = bt->target[r * O + o];
                sse[o] += (y - t) * (y - t);
                sum[o] += t - shift[o];
                sq[o] += (t - shift[o]) * (t - shift[o]);
            }
        }
    }
}

// The measures from the summed accumulator.
static int finish(eval_result* r, const double* acc)
{
    const int O = r->O;
    r->loss = acc[ACC_LOSS] / r->windows;
    r->accuracy = r->task == TASK_REGRESS ? 0 : acc[ACC_RIGHT] / r->scored;
    if (r->task == TASK_LM) r->bpc = r->loss / log(2.0);
    if (r->task == TASK_CLASSIFY) {
        r->confusion = malloc((size_t)O * O * sizeof(long));
        if (!r->confusion) return -1;
        for (size_t i = 0; i < (size_t)O * O; i++) r->confusion[i] = lround(acc[ACC_TASK + i]);
    }
    if (r->task == TASK_REGRESS) {
        r->r2_out = malloc((size_t)O * sizeof(double));
        if (!r->r2_out) return -1;
        const double *sse = acc + ACC_TASK, *sum = sse + O, *sq = sum + O;
        double sse_all = 0, sst_all = 0;
        for (int o = 0; o < O; o++) {
            double sst = sq[o] - sum[o] * sum[o] / r->scored;
            r->r2_out[o] = sst > 0 ? 1 - sse[o] / sst : NAN;
            sse_all += sse[o];
            sst_all += sst;
        }
        r->mse = sse_all / ((double)r->scored * O);
        r->r2 = sst_all > 0 ? 1 - sse_all / sst_all : NAN;
    }
    return 0;
}

eval_result evaluate(model* m, const dataset* d, data_batch* db, int split, long windows,
                     int grads)
{
    const int B = m->B, Bg = m->Bglobal, row0 = m->g->dp_rank * B, O = m->c.O;
    if (grads && windows > Bg) dist_fail_all("gradients of %ld windows need a batch of them all, not %d", windows, Bg);
    const size_t nacc = ACC_TASK + task_len(m->c.task, O);
    real* weight = malloc((size_t)B * sizeof(real));
    double* acc = calloc(nacc, sizeof(double));
    double* shift = calloc((size_t)O, sizeof(double));
    if (!weight || !acc || !shift) dist_fail("out of memory");
    if (m->c.task == TASK_REGRESS && windows > 0) {
        // Window 0 read as row 0 on every rank: one shift everywhere without a collective, its
        // first scored target.
        dataset_eval_batch(d, db, split, 0, 0);
        size_t r = db->view.last ? (size_t)db->view.last[0] * B : 0;
        for (int o = 0; o < O; o++) shift[o] = db->target[r * O + o];
    }
    if (grads) model_zero_grad(m);
    // One pass scores B rows on each replica: with accum_steps, fewer than the global batch.
    for (long first = 0; first < windows; first += (long)B * m->g->dp) {
        dataset_eval_batch(d, db, split, first, row0);
        for (int r = 0; r < B; r++) weight[r] = first + row0 + r < windows;
        db->view.weight = weight;
        model_reset_state(m);
        model_forward(m, &db->view);
        long right = 0;
        acc[ACC_LOSS] += model_loss(m, &db->view, &right) * Bg;
        acc[ACC_RIGHT] += right;
        accumulate(m, &db->view, weight, shift, acc);
        if (!grads) continue;
        // model_loss is normalised by Bglobal; the pass's mean is over `windows`.
        model_scale_loss_grad(m, db->view.T, (double)Bg / windows);
        model_backward(m, &db->view);
    }
    db->view.weight = NULL;
    free(weight);
    free(shift);
    if (grads) model_grads_whole(m);
    // Each DP replica scored its own rows: one sum of the loss, the right answers and the task's
    // counts or moments together.
    if (m->g->dp > 1) dist_dp_allreduce_f64(acc, (int)nacc, m->g);
    eval_result r = {.task = m->c.task, .O = O, .windows = windows, .T = db->view.T};
    // classify and score = last: one scored step per window.
    r.scored = db->view.last ? windows : windows * db->view.T;
    if (finish(&r, acc)) dist_fail("out of memory");
    free(acc);
    return r;
}

void eval_result_free(eval_result* e)
{
    free(e->confusion);
    free(e->r2_out);
    e->confusion = NULL;
    e->r2_out = NULL;
}
