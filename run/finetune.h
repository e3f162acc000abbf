// Fine-tuning from a checkpoint of another task (init_from, new_head), frozen tensors (freeze) and
// staged unfreezing (head_only_steps, body_lr_scale, l2_init). The table below is what the rest
// of train (the ridge head, the optimiser, checkpoints) reads: which tensors came from init_from,
// which are new, which never train and which train in the head-only stage.
#ifndef RUN_FINETUNE_H
#define RUN_FINETUNE_H

#include "io/checkpoint.h"
#include "io/config.h"
#include "model/model.h"

typedef struct finetune {
    int n; // = the model's ntensors; the flags are indexed like m->tensors
    // Loaded from init_from (bit for bit), or not. Without init_from nothing is transferred.
    unsigned char transferred[MODEL_MAX_TENSORS];
    // Not taken from init_from: a new head (new_head), a Wf whose width O or meaning (task)
    // changed (zero, so the pretrained recurrence starts unchanged), a new input projection
    // layer0/Wx and embedding (input changed). Without init_from every tensor is new.
    unsigned char is_new[MODEL_MAX_TENSORS];
    unsigned char frozen[MODEL_MAX_TENSORS];    // named by freeze: never updated
    unsigned char head_only[MODEL_MAX_TENSORS]; // trains during the first head_only_steps: every new tensor

    // Of the step finetune_plan last planned: each tensor's factor on the learning rate (0: not
    // trained), and the tensors the L2-SP term covers (transferred ones that train).
    double scale[MODEL_MAX_TENSORS];
    unsigned char l2[MODEL_MAX_TENSORS];
    unsigned char optim_state[MODEL_MAX_TENSORS]; // of finetune_ckpt: has optimiser state
    // The step at which each tensor first trained, its moments starting from zero (Adam's bias
    // correction counts from it); -1: not yet.
    long start[MODEL_MAX_TENSORS];
    real* theta0; // l2_init > 0: the parameters as loaded (this rank's pieces, params layout)
} finetune;

// The table of a run without init_from: every tensor new, nothing frozen.
void finetune_scratch(finetune* ft, const model* m);

// Loads init_from into m (after model_init_params): every tensor whose name and shape the
// checkpoint shares, at any writer layout; new Wf zeroed. Refuses, in one line naming both
// values, a checkpoint of another H, L or activation, and without new_head another task,
// number of outputs or input. Rank 0 prints one line per tensor. Collective over m->g->world;
// any error ends the job.
void finetune_load(finetune* ft, model* m, const fnn_config* c);

// Resuming a fine-tuning run from the checkpoint f (path, message buffer err) of step `step`,
// open for the resume's other reads: the table, the start steps, and theta0 when l2_init, from
// its /finetune (theta0's digest is checked when the caller closes f). Collective over
// m->g->world; an error ends the job.
void finetune_resume(finetune* ft, model* m, const fnn_config* c, ckpt_file* f, const char* err,
                     const char* path, long step);

// Marks the tensors named by c->freeze: each comma-separated item is a tensor name
// ("layer0/Wh") or a prefix of names ("layer0", "head", "embed"). Refuses an item naming
// nothing, a freeze that leaves nothing to train, and head_only_steps when no new tensor
// would train.
void finetune_freeze(finetune* ft, const model* m, const fnn_config* c);

// Staged unfreezing at step s (0-based), before the step's forward: the model's no_grad set
// (model_set_no_grad) marks the tensors that do not train (frozen, and while s <
// head_only_steps all but the head-only set), ft->scale their lr factors (0 for those,
// body_lr_scale for transferred tensors, 1 for new ones), ft->start = s for those that train for
// the first time. Returns ft->scale for optim_step, or NULL when every factor is 1;
// ft->start is optim_step's start.
const double* finetune_plan(finetune* ft, const fnn_config* c, long s, model* m);

// Adds the L2-SP gradient l2_init (theta - theta0) of the planned step's transferred, training
// tensors (optim_add_l2_init: after model_backward, before the gradient norm). Local.
void finetune_regularise(const finetune* ft, const fnn_config* c, model* m);

// What a checkpoint written before step s (0-based) records of fine-tuning, into st.
void finetune_ckpt(finetune* ft, const fnn_config* c, long s, const model* m, ckpt_train* st);

void finetune_free(finetune* ft);

#endif
