// Which steps a regression scores (config key score) and what the dataset allows: per-sequence
// dense targets (fnn prepare --seq-len) exist only at each sequence's last step.
#ifndef RUN_SCORE_H
#define RUN_SCORE_H

#include "io/config.h"
#include "io/dataset.h"

// Refuses a run of config c on dataset d in windows of T steps that would score targets the data
// does not have: per-sequence targets need score = last, T = their sequence length and
// feedback_source = model (no per-step target to feed back, not even in a mix). Every rank
// reaches the same verdict (c is the same everywhere, d's shape agreed by setup_data); a
// refusal ends the job with one line.
void score_check(const fnn_config* c, const dataset* d, int T);

#endif
