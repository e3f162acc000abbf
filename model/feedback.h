// The feedback path between the output of step t and the layers' input at step t+1.
#ifndef MODEL_FEEDBACK_H
#define MODEL_FEEDBACK_H

#include "model/model.h"

// f (B x O) of step t from its output y (B x O): softmax(y) for cross-entropy tasks, y for MSE,
// or the true target (teacher forcing).
void feedback_signal(model* m, const model_batch* bt, int t, real* f, const real* y);
// Adds to dY of step t-1 the gradient that reached f_{t-1} through the layers' inputs at step t
// (cur: the summed input gradients dX of every layer at step t, B x K[l] each).
void feedback_grad(model* m, int t, real* const* cur);

#endif
