// Optimisers (SGD with momentum, Adam, AdamW), the learning-rate schedule and global-norm
// clipping, over the model's flat parameter buffers.
#ifndef MODEL_OPTIM_H
#define MODEL_OPTIM_H

#include "model/model.h"

enum optim_kind { OPT_SGD, OPT_ADAM, OPT_ADAMW };

typedef struct optim_config {
    int kind;
    double lr, lr_min;      // peak rate and the floor of the cosine decay
    double momentum;        // SGD
    double beta1, beta2, eps; // Adam, AdamW
    double weight_decay;    // L2 in the gradient for SGD and Adam, decoupled for AdamW
    double clip;            // global gradient norm limit, 0 = off
    int warmup;             // steps of linear warmup
    int steps;              // total steps, the end of the cosine
} optim_config;

// Learning rate at step s (0-based): linear warmup to lr, then cosine decay to lr_min.
double optim_lr(const optim_config* o, long s);

// Global L2 norm of the gradient (after model_backward, which reduces this rank's sub-pieces
// over DP): TP-sharded tensors summed over tp_comm, replicated ones counted once. Collective over
// tp_comm and dp_comm.
double optim_grad_norm(model* m);

// One update at step s (0-based) with gradient norm gnorm (for clipping). Tensor k of m->tensors
// takes the learning rate times scale[k]; scale[k] = 0 skips it (frozen: parameters and moments
// untouched); scale NULL: 1 for all. start[k] (<= s) is the step at which tensor k's moments
// began from zero, so Adam's bias correction uses t = s + 1 - start[k]; start NULL: 0 for all.
// Each rank updates its sub-pieces of params and their moments (model_own), then params are
// gathered (model_gather); the moments stay with their owners (a checkpoint writes each rank's
// own). Returns the learning rate of scale 1.
double optim_step(model* m, const optim_config* o, long s, double gnorm, const double* scale,
                  const long* start);

// The L2-SP term lambda/2 ||theta - theta0||^2 over the tensors k with which[k]: adds its
// gradient lambda (theta - theta0) to grads in this rank's sub-pieces (theta0 laid out like
// params).
// Call after model_backward, whose DP reduction those sub-pieces hold, so the term counts once and
// not once per replica, and before optim_grad_norm, so clipping sees the whole objective's
// gradient.
void optim_add_l2_init(model* m, const real* theta0, const unsigned char* which, double lambda);

#endif
