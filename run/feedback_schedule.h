// The training draws on the fed-back signal for one step: what train.c puts in the window's
// model_batch (evaluation and sampling leave those fields zero).
#ifndef RUN_FEEDBACK_SCHEDULE_H
#define RUN_FEEDBACK_SCHEDULE_H

#include "io/config.h"
#include "model/model.h"

// teacher_prob of training step `step` (0-based): constant, or linear from teacher_prob at step 0
// to teacher_prob_end at the last step (scheduled sampling).
double feedback_teacher_prob(const fnn_config* c, long step);
// The window bt with the noise, teacher probability, key and global row offset (row0 = dp_rank *
// B) of training step `step`: a copy, so that the evaluation windows later made in bt's buffers
// (run/eval_pass.c) stay without draws.
model_batch feedback_plan(const model_batch* bt, const fnn_config* c, long step, long row0);

#endif
