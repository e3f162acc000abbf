// Losses and their gradient with respect to the outputs y. Every loss is normalised by the
// global batch, so the DP replicas' losses and gradients add up to the global mean.
//   lm:       -(1 / (T Bg)) sum_t,b log softmax(y_tb)[next_tb]
//   classify: -(1 / Bg) sum_b log softmax(y_{last_b, b})[label_b]
//   regress:   (1 / (T Bg O)) sum_t,b,o (y_tbo - target_tbo)^2
//   regress with bt->last (score = last): (1 / (Bg O)) sum_b,o (y_{last_b,b,o} - target_{last_b,b,o})^2
// each row b weighted by bt->weight[b] when given.
#include <math.h>
#include <string.h>
#include "model/model.h"

static double row_weight(const model_batch* bt, int b)
{
    return bt->weight ? bt->weight[b] : 1;
}

// Adds scale * -log softmax(y)[k] to loss, sets dy = scale * (softmax(y) - onehot(k)). Returns
// whether argmax == k.
static int cross_entropy(const real* y, int O, int k, double scale, real* dy, double* loss)
{
    real mx = -INFINITY;
    int arg = 0;
    for (int o = 0; o < O; o++)
        if (y[o] > mx) mx = y[o], arg = o;
    double s = 0;
    for (int o = 0; o < O; o++) s += exp((double)y[o] - mx);
    double logz = mx + log(s);
    *loss += scale * (logz - y[k]);
    for (int o = 0; o < O; o++) dy[o] = (real)(scale * exp((double)y[o] - logz));
    dy[k] -= (real)scale;
    return arg == k;
}

double model_loss(model* m, const model_batch* bt, long* acc_correct)
{
    const int B = m->B, O = m->c.O, T = bt->T;
    const size_t n = (size_t)T * B;
    double loss = 0;
    long right = 0;
    memset(m->dY, 0, n * O * sizeof(real));
    if (m->c.task == TASK_LM) {
        for (size_t r = 0; r < n; r++) {
            double w = row_weight(bt, (int)(r % B)) / ((double)T * m->Bglobal);
            if (w == 0) continue;
            right += cross_entropy(m->Y + r * O, O, bt->next[r], w, m->dY + r * O, &loss);
        }
    } else if (m->c.task == TASK_CLASSIFY) {
        for (int b = 0; b < B; b++) {
            double w = row_weight(bt, b) / m->Bglobal;
            size_t r = (size_t)bt->last[b] * B + b;
            if (w == 0) continue;
            right += cross_entropy(m->Y + r * O, O, bt->label[b], w, m->dY + r * O, &loss);
        }
    } else if (bt->last) {
        for (int b = 0; b < B; b++) {
            double w = row_weight(bt, b) / ((double)m->Bglobal * O);
            size_t r = (size_t)bt->last[b] * B + b;
            for (int o = 0; o < O; o++) {
                double d = (double)m->Y[r * O + o] - bt->target[r * O + o];
                loss += w * d * d;
                m->dY[r * O + o] = (real)(2 * w * d);
            }
        }
    } else {
        for (size_t i = 0; i < n * O; i++) {
            double w = row_weight(bt, (int)(i / O % B)) / ((double)T * m->Bglobal * O);
            double d = (double)m->Y[i] - bt->target[i];
            loss += w * d * d;
            m->dY[i] = (real)(2 * w * d);
        }
    }
    if (acc_correct) *acc_correct = right;
    return loss;
}
