// Resuming a run from its checkpoint: everything the run carries on with, read in one open.
#ifndef RUN_RESUME_H
#define RUN_RESUME_H

#include "io/checkpoint.h"
#include "io/config.h"
#include "run/finetune.h"

// From the checkpoint at path (of c's model; another is refused as setup_check_model does): st
// from /train, m's parameters and optimiser moments, the carried state when c->carry_state, and
// ft's table when c->init_from (a fine-tuning run). Opens the file once: on a parallel
// filesystem every collective open is a metadata storm across all ranks. Collective over
// m->g->world; any error ends the job with one line.
void resume_load(const char* path, model* m, const fnn_config* c, ckpt_train* st, finetune* ft);

#endif
