// Fine-tuning from a checkpoint of another task (init_from, new_head), frozen tensors (freeze) and
// staged unfreezing (head_only_steps, body_lr_scale, l2_init). The table below is what the rest
// of train (the ridge head, the optimiser, checkpoints) reads: which tensors came from init_from,
// which are new, which never train and which train in the head-only stage.
#ifndef LAUNCH_FINETUNE_H
#define LAUNCH_FINETUNE_H

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
    unsigned char head_only[MODEL_MAX_TENSORS]; // trains during the first head_only_steps: new head/* and new Wf
} finetune;

// The table of a run without init_from: every tensor new, nothing frozen.
void finetune_scratch(finetune* ft, const model* m);

// Loads init_from into m (after model_init_params): every tensor whose name and shape the
// checkpoint shares, at any writer layout; new Wf zeroed. Refuses, in one line naming both
// values, a checkpoint of another H, L or activation, and without new_head another task,
// number of outputs or input. Rank 0 prints one line per tensor. Collective over m->g->world;
// any error ends the job.
void finetune_load(finetune* ft, model* m, const fnn_config* c);

// Marks the tensors named by c->freeze: each comma-separated item is a tensor name
// ("layer0/Wh") or a prefix of names ("layer0", "head", "embed"). Refuses an item naming
// nothing, and a freeze that leaves nothing to train.
void finetune_freeze(finetune* ft, const model* m, const fnn_config* c);

#endif
