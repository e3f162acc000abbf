// The collectives one forward + backward window makes, as a cell's declared products
// (model/cell.h) make them; shared by the tests that count them (test_cells, grad_model).
#ifndef TESTS_COUNTS_H
#define TESTS_COUNTS_H

#include "model/model.h"

// The per-step products a node's DP group computes together (model_apply), per layer and step.
// One product (the Elman cell, the LSTM): one forward (a over [h | f]; layer 0's input part is
// batched over the window) and one backward (dX = dA W). split_h (the GRU): forward,
// ah = h Wh^T and a over [u | f] (layer 0: over f, where it has feedback); backward, their
// mirrors dX over [u | f] and h. gated (the MGU): one more each way, the gated gates'
// ah = q Wh^T and dq = dAH Wh.
static inline int products_per_step(const model_config* c, int l)
{
    const cell_kind* k = cell_of(c->cell);
    const int fb = c->feedback == FB_ALL || (c->feedback == FB_FIRST && l == 0);
    if (!k->split_h) return 2;
    return (1 + (l > 0 || fb)) + 2 + 2 * (k->gated > 0);
}

// Shared-memory syncs of a window of T steps within a DP group that shares (dpn > 1): one
// before and after each of the two packings and each product, one before the head's and each
// layer's reduction, and one after the last.
static inline long window_syncs(const model_config* c, int T)
{
    long products = 0;
    for (int l = 0; l < c->L; l++) products += (long)products_per_step(c, l) * T;
    return 4 + 2 * products + c->L + 2;
}

// TP allgathers (forward) and allreduces (backward) of a window at tp > 1: one per layer and
// step each way (h, dX), two for a gated cell (q, dq as well).
static inline long window_tp_collectives(const model_config* c, int T)
{
    return (long)T * c->L * (1 + (cell_of(c->cell)->gated > 0));
}

#endif
