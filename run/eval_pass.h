// Evaluation of a model over the first N evaluation windows of a split, shared by `fnn eval` and
// the evaluation at the end of training: the mean loss and the measure that answers the task's
// question (bits per character, accuracy and confusion matrix, MSE and R^2).
#ifndef RUN_EVAL_PASS_H
#define RUN_EVAL_PASS_H

#include <stdio.h>
#include "io/dataset.h"
#include "io/checkpoint.h"
#include "model/model.h"

typedef struct eval_result {
    int task, O;
    long windows;
    int T;           // steps per window
    long scored;     // outputs scored: lm bytes (windows x T), classify windows, regress
                     // windows x T steps (score = last: windows) of O values each
    double loss;     // mean over the scored outputs (regress: over their O values too)
    double accuracy; // lm, classify: fraction of scored outputs whose argmax is right
    double bpc;      // lm: bits per character = loss / ln 2 (the loss is in nats per byte)
    long* confusion; // classify: O x O counts, row = true class, column = argmax; NULL otherwise
    double mse;      // regress: mean over windows, scored steps and outputs of (y - target)^2
    double r2;       // regress: 1 - SSE / SST, both summed over the outputs, SST about each
                     // output's mean target over the evaluated windows (not the training split)
    double* r2_out;  // regress: the same for each output alone (O values)
} eval_result;

// Windows are taken Bglobal at a time (padding rows weigh 0). With grads (all windows in one
// batch: windows <= Bglobal), m->grads holds the gradient of the mean loss afterwards, reduced
// over DP. Collective over the grid: one DP allreduce besides those of forward and backward.
eval_result evaluate(model* m, const dataset* d, data_batch* db, int split, long windows,
                     int grads);
void eval_result_free(eval_result* e);

// The task's measures after the loss, e.g. "  bpc 1.9 accuracy 0.45", for a line of text.
void eval_print_measures(FILE* f, const eval_result* e);
// The loss and the task's scalar measures as JSON members ("<prefix>loss": X, ...), for a line
// of the metrics file.
void eval_print_json_fields(FILE* f, const eval_result* e, const char* prefix);
// classify: the confusion matrix with the dataset's class names, one row per true class.
void eval_print_confusion(FILE* f, const eval_result* e, const dataset* d);
// Everything above as one JSON object on one line; checkpoint, data and split say what was
// evaluated.
void eval_print_json(FILE* f, const eval_result* e, const dataset* d, const char* checkpoint,
                     const char* data, const char* split);

#endif
