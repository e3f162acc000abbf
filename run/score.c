// The scored steps of a regression against what the dataset holds.
#include "run/score.h"

void score_check(const fnn_config* c, const dataset* d, int T)
{
    const int S = dataset_seq_len(d);
    if (!S) return;
    if (c->score != SCORE_LAST)
        dist_fail_all("%s holds one target per sequence of %d steps: it needs score = last, not "
                      "score = %s", c->data, S, config_enum_name("score", c->score));
    if (T != S)
        dist_fail_all("%s holds sequences of %d steps, each one window: seq_len must be %d, not %d",
                      c->data, S, S, T);
    if (c->carry_state)
        dist_fail_all("carry_state = true: %s holds independent sequences, one per window (the state "
                      "of one would start the next)", c->data);
    if (c->model.feedback_source != FBS_MODEL)
        dist_fail_all("feedback_source = %s: %s has no per-step targets to feed back (one target "
                      "per sequence, at its last step)",
                      config_enum_name("feedback_source", c->model.feedback_source), c->data);
}
