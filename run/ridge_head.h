// fnn train with head_ridge = true: the new output head fitted in closed form (model/ridge_normal.h)
// on the training split before any gradient step.
#ifndef RUN_RIDGE_HEAD_H
#define RUN_RIDGE_HEAD_H

#include "io/dataset.h"
#include "model/model.h"

// Fits Wo and bo of m by ridge regression (regulariser lambda) on the top-layer states of every
// window of d's training split, the fed-back signal taken from the targets, and prints the fit
// and the training loss and accuracy of the model with that head on rank 0. Any failure ends the
// job with one message. Collective over the grid.
void ridge_fit_head(model* m, const dataset* d, data_batch* db, double lambda);

#endif
