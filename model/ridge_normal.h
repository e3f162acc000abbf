// The closed-form output head: ridge regression of the targets on the top layer's hidden states
// (docs/model.md, Closed-form head). Over the n scored steps of a pass (lm, regress: every
// step; classify: the last step of each sequence), with h the full top-layer state and y the
// one-hot class or token, or the dense target:
//   mean m = sum h / n, ybar = sum y / n
//   G = sum (h - m)(h - m)^T   (H x H),   C = sum (h - m) y^T   (H x O)
//   (G + lambda n I) W = C,    Wo = W^T,  bo = ybar - W^T m
// Centring makes bo the unregularised intercept (the same as appending a constant 1 to h and
// not penalising its weight). The Gram is a GEMM over blocks of buffered rows, in float, shifted
// by the first block's mean so that large means do not cancel the float sums; the blocks are
// summed in double.
//
// Legend as model/model.h; R = rows buffered per GEMM.
#ifndef MODEL_RIDGE_NORMAL_H
#define MODEL_RIDGE_NORMAL_H

#include "model/model.h"

typedef struct ridge_acc {
    int H, Hl, h0, O, R;
    int k;        // rows waiting in Z
    int shifted;  // c is set (after the first block)
    real* Z;      // (R, H) full top-layer states of scored steps (minus c once shifted)
    real* Y;      // (R, O) their targets
    real* Gf;     // (Hl, H) one block's rows h0 .. h0+Hl of Z^T Z
    real* Cf;     // (Hl, O) one block's Z^T Y
    real* c;      // (H) the shift: mean state of this replica's first block
    double* G;    // (Hl, H) rows h0 .. of sum (h - c)(h - c)^T over this replica's rows
    double* C;    // (Hl, O) rows h0 .. of sum (h - c) y^T
    double* s;    // (H) sum (h - c)
    double* ys;   // (O) sum y
    long n;       // rows summed on this replica
    double gemm_flops, gemm_s; // of the Gram and cross products, for the report
} ridge_acc;

// Buffers for model m with R rows per GEMM. 0, or -1 out of memory (nothing to free).
int ridge_acc_init(ridge_acc* a, const model* m, int R);
void ridge_acc_free(ridge_acc* a);

// Adds the scored steps of the window model_forward just ran on bt (rows of weight 0 are
// skipped: evaluation padding). Local: each TP rank already holds the full states.
void ridge_acc_window(ridge_acc* a, const model* m, const model_batch* bt);

// Sums the replicas' parts, solves for the head and writes Wo and bo into m->params on every
// rank. *n receives the global number of rows. Returns 0, dist_ridge_solve's info > 0 (not
// positive definite) or -1 (memory, ScaLAPACK), the same on every rank. Collective over world.
int ridge_acc_solve(ridge_acc* a, model* m, double lambda, long* n);

#endif
