// The feedback path between the output at step t and the layers' input at step t+1.
#ifndef MODEL_FEEDBACK_H
#define MODEL_FEEDBACK_H

#include "model/model.h"

// f (B x O) of step t from its output y (B x O): softmax(y) for cross-entropy tasks, y for MSE,
// or the true target (feedback_source = target, and the rows bt's teacher draw picks with mix);
// plus bt->fb_noise times a standard normal per element when that is set (training).
void feedback_signal(model* m, const model_batch* bt, int t, real* f, const real* y);
// Adds to dY of step t-1 the gradient that reached f_{t-1} through the layers' inputs at step t
// (cur: the summed input gradients dX of every layer at step t, B x K[l] each). Rows that fed
// back the target carry none; the noise is additive and passes the gradient unchanged.
void feedback_grad(model* m, const model_batch* bt, int t, real* const* cur);

// Key of the draws of training step `step` (model_batch.fb_key).
uint64_t feedback_key(uint64_t seed, long step);
// Whether global batch row `row` feeds back its true target at step t (feedback_source = mix).
int feedback_teacher(const model_batch* bt, long row, int t);

#endif
