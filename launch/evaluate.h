// Mean loss of a model over the first N evaluation windows of a split, shared by `fnn eval` and
// the evaluation at the end of training.
#ifndef LAUNCH_EVALUATE_H
#define LAUNCH_EVALUATE_H

#include "io/dataset.h"
#include "io/checkpoint.h"
#include "model/model.h"

typedef struct eval_result {
    double loss;     // mean over windows (lm: over every scored token)
    double accuracy; // fraction of scored outputs whose argmax is right (lm, classify)
    long windows;
} eval_result;

// Windows are taken Bglobal at a time (padding rows weigh 0). With grads (all windows in one
// batch: windows <= Bglobal), m->grads holds the gradient of the mean loss afterwards, reduced
// over DP. Collective over the grid.
eval_result evaluate(model* m, const dataset* d, data_batch* db, int split, long windows,
                     int grads);

// Reads the checkpoint at path, makes the grid (tp over the world) and a model of its config for
// windows of T steps (0: the checkpoint's seq_len) and global batch Bglobal, and loads the
// parameters. The job ends with a message on any error.
void eval_open(const char* path, dist_grid* world, dist_grid* g, int tp, int T, int Bglobal, model* m,
               model_config* mc, ckpt_train* st);

#endif
