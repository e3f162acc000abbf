// The fed-back signal f_t and its gradient: what the feedback path carries from the output at
// step t to every layer with feedback at step t+1.
#include <string.h>
#include "model/feedback.h"
#include "model/kernel.h"

// f_t: softmax(y_t) for cross-entropy tasks, y_t for MSE, or the true target (teacher forcing).
void feedback_signal(model* m, const model_batch* bt, int t, real* f, const real* y)
{
    const int B = m->B, O = m->c.O;
    if (m->c.feedback_source == FBS_TARGET) {
        if (bt->target) {
            memcpy(f, bt->target + (size_t)t * B * O, (size_t)B * O * sizeof(real));
        } else {
            memset(f, 0, (size_t)B * O * sizeof(real));
            for (int b = 0; b < B; b++) f[(size_t)b * O + bt->next[t * B + b]] = 1;
        }
    } else if (m->c.task == TASK_REGRESS) {
        memcpy(f, y, (size_t)B * O * sizeof(real));
    } else {
        kernel->softmax(f, y, B, O);
    }
}

// The feedback path: f_{t-1} entered every layer with feedback at step t. Through the softmax,
// dy = p * (df - <df, p>); for MSE tasks f = y and dy = df.
void feedback_grad(model* m, int t, real* const* cur)
{
    const int B = m->B, O = m->c.O;
    real* dy = m->dY + (size_t)(t - 1) * B * O;
    const real* p = m->F + (size_t)(t - 1) * B * O;
    for (int b = 0; b < B; b++) {
        real df[O];
        memset(df, 0, sizeof df);
        for (int l = 0; l < m->c.L; l++) {
            if (!m->Of[l]) continue;
            const real* d = cur[l] + (size_t)b * m->K[l] + m->K[l] - O;
            for (int o = 0; o < O; o++) df[o] += d[o];
        }
        const real* pb = p + (size_t)b * O;
        real* dyb = dy + (size_t)b * O;
        if (m->c.task == TASK_REGRESS) {
            for (int o = 0; o < O; o++) dyb[o] += df[o];
            continue;
        }
        double dot = 0;
        for (int o = 0; o < O; o++) dot += (double)df[o] * pb[o];
        for (int o = 0; o < O; o++) dyb[o] += pb[o] * (real)(df[o] - dot);
    }
}

