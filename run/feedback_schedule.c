// Noise and scheduled teacher forcing on the fed-back signal, step by step (docs/config.md).
#include "run/feedback_schedule.h"
#include "model/feedback.h"

double feedback_teacher_prob(const fnn_config* c, long step)
{
    const double p0 = c->teacher_prob, p1 = c->teacher_prob_end;
    const long last = c->optim.steps > 1 ? c->optim.steps - 1 : 1;
    if (p1 == -1) return p0;
    // A resumed run continues the schedule of its step count; past the last step p stays at p1.
    return step >= last ? p1 : p0 + (p1 - p0) * ((double)step / last);
}

model_batch feedback_plan(const model_batch* bt, const fnn_config* c, long step, long row0)
{
    model_batch w = *bt;
    w.fb_noise = c->feedback_noise;
    w.dropout = c->dropout;
    w.dropout_rec = c->dropout_recurrent;
    w.teacher_prob = c->model.feedback_source == FBS_MIX ? feedback_teacher_prob(c, step) : 0;
    w.fb_key = feedback_key(c->model.seed, step);
    w.row0 = row0;
    return w;
}
