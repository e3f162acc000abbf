// Dropout in training (docs/model.md, Dropout), inverted: a kept element is scaled by 1 / (1 - p)
// so that evaluation and sampling, which drop nothing, need no rescaling. Two kinds:
//
// - DROP_LAYER (Zaremba, Sutskever & Vinyals 2014), on the connections that do not cross time:
//   the input of layer l > 0 (h[l-1]_t) and the head's (h[L-1]_t, connection l = L), a mask per
//   (row, step, unit);
// - DROP_RECURRENT (Gal & Ghahramani 2016), on h[l]_{t-1} where a product multiplies it (and on
//   the MGU's gated state q, the other recurrent product's input), one mask per (row, unit) of
//   layer l for the whole window.
//
// A mask element is a function of (the window's key, kind, connection, global batch row, step,
// global unit) through model/mix.h, as the feedback noise is: every TP x DP layout, and a run
// resumed at the step, draw the same masks.
#ifndef MODEL_DROPOUT_H
#define MODEL_DROPOUT_H

#include "model/model.h"

enum dropout_kind { DROP_LAYER, DROP_RECURRENT };

// Multiplies x (B local rows of bt, ldx apart; n columns, units j0 .. j0 + n - 1) by the mask
// of kind at connection l and step t (DROP_RECURRENT: any t, one mask for the window). Nothing
// when the kind's p is 0 (evaluation, sampling).
void dropout_apply(const model_batch* bt, int kind, int l, int t, real* x, int ldx, int j0, int n,
                   int B);
// The mask element of global row `row`, step t and unit j: 0 or 1 / (1 - p) (1 when p is 0).
real dropout_mask(const model_batch* bt, int kind, int l, long row, int t, int j);

#endif
