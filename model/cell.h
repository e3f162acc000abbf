// A recurrent cell: what one layer computes per step over this rank's block of hidden units.
//
// Legend: B = local batch rows, Hl = this rank's hidden units, G = the cell's gates (row blocks
// per hidden unit). Every gate's rows of a unit live with the unit, so a layer's weights are one
// G*Hl x K block [Wx | Wh | Wf] (rows gate by gate, K = D_l + H + O_l). A cell declares the
// products its step needs; the model (model/forward.c, backward.c) forms them, gathers over the
// TP group what they multiply and reduces the input gradients, and a cell sees only its block,
// no MPI and no layout. The products, by what the cell declares:
//
//     a  = [u | h_prev | f_prev] W^T + b                       (B x G*Hl; the default: one product)
//
// or, with split_h (the recurrent part apart: GRU's r * (Wh h + bh)), the input laid out
// [u | f_prev | h_prev] (model.h) and two products of the same multiply-adds,
//
//     a  = [u | f_prev] [Wx | Wf]^T + b                        (B x G*Hl)
//     ah = h_prev Wh^T (+ bh, with bias_h)                     (B x G*Hl)
//
// and with gated > 0 as well (the minimal gated unit's U (f * h)), the last `gated` gates'
// recurrent part multiplies the cell's gated state q instead of h_prev: the cell's
// gated_forward forms its block of q (B x Hl) from the other gates' a and ah, the model gathers
// q over the TP group like h, and then forms those gates' ah = q Wh^T (+ bh) before forward.
// Backward mirrors it: backward leaves those gates' dah, the model forms dq = dah Wh summed over
// the TP group, and gated_backward completes the other gates' gradients and the carry.
#ifndef MODEL_CELL_H
#define MODEL_CELL_H

#include "dist/real.h"

enum model_act { ACT_TANH, ACT_RELU, ACT_SIGMOID }; // the config's `activation` (any_act cells)

// How a tensor starts (model/init.c): values depend only on (seed, tensor name, global row, col).
enum cell_init {
    CELL_INIT_ZERO,      // biases
    CELL_INIT_FANIN,     // Gaussian, standard deviation 1 / sqrt(columns)
    CELL_INIT_RECURRENT, // Wh: orthogonal, identity or fan-in Gaussian, as config `init` says
    CELL_INIT_FORGET,    // LSTM's forget-gate bias: the config's forget_bias
    CELL_INIT_UNIT,      // Gaussian, standard deviation 1 (the embedding)
};

typedef struct cell_kind {
    const char* name;
    int gates;                    // G
    const char* const* gate_name; // suffixes of the gate tensors ("r" -> layer0/Wx_r), NULL: G = 1
    const enum cell_init* b_init; // per gate, NULL: all CELL_INIT_ZERO
    int split_h;                  // Wh h_prev is its own product, ah (see above)
    int bias_h;                   // split_h: ah has its own bias bh (tensors bh_<gate>)
    int gated;                    // split_h: the last `gated` gates' ah multiplies q, not h_prev
    int state;                    // per-unit values carried from step to step besides h (c)
    const char* state_name;       // its checkpoint dataset: /train/state/<state_name><layer>
    int carry;                    // per-unit gradients backward carries from step t to t-1:
                                  // of s (a cell with state), else of h_{t-1}
    int any_act;                  // the config's `activation` applies (else only tanh, the default)

    // One step, row b of every array at b * (its width): outputs, cached state, inputs, sizes.
    // h (B x Hl) receives h_t and may be a itself (G = 1); s (B x state*Hl) the state after the
    // step (NULL without state); a (B x G*Hl) holds the pre-activations and is left holding what
    // backward needs; ah (B x G*Hl) likewise (split_h, else NULL); hprev: this rank's block of
    // h_{t-1}, rows ldh apart; sprev (B x state*Hl) the state before (NULL without state).
    void (*forward)(real* h, real* s, real* a, real* ah, const real* hprev, int ldh,
                    const real* sprev, int B, int Hl, int act);
    // The step's mirror, gradients first: da, dah (B x G*Hl) receive the gradients of a and ah;
    // carry (B x carry*Hl) holds on entry what step t+1 passed back (zero after the window's
    // last step) and on return what goes to step t-1; dh (B x Hl) is the gradient of h_t from
    // the output, the layer above and the next step's product (overwritten: scratch). a, ah, s
    // and h as forward left them.
    void (*backward)(real* da, real* dah, real* carry, real* dh, const real* a, const real* ah,
                     const real* s, const real* h, const real* hprev, int ldh, const real* sprev,
                     int B, int Hl, int act);
    // With gated > 0, the step's first part: from a and ah of the gates before the gated ones
    // (their products done), q (B x Hl) receives this rank's block of the gated state, and a
    // and ah are left as forward and gated_backward read them. Its mirror runs after backward:
    // dq (B x Hl, rows ldq apart) is the gradient of q (summed over the TP group); it completes
    // da and dah of the gates before the gated ones, and adds to carry what goes to step t-1
    // through q.
    void (*gated_forward)(real* q, real* a, const real* ah, const real* hprev, int ldh, int B,
                          int Hl);
    void (*gated_backward)(real* da, real* dah, real* carry, const real* dq, int ldq,
                           const real* a, const real* hprev, int ldh, int B, int Hl);
} cell_kind;

// The registry: every cell, one line each, in config-value order (the enum model_cell below;
// checkpoints and the config name a cell by its name, so the order is free). Config parsing,
// validation, --help, fnn bench and the tests read the cells from here.
#define CELL_REGISTRY(X)                                                                    \
    X(ELMAN, elman)                                                                         \
    X(GRU, gru)                                                                             \
    X(LSTM, lstm)                                                                           \
    X(MGU, mgu)

#define CELL_ENUM_(C, name) CELL_##C,
enum model_cell { CELL_REGISTRY(CELL_ENUM_) CELL_KINDS };
#undef CELL_ENUM_
#define CELL_EXTERN_(C, name) extern const cell_kind cell_##name;
CELL_REGISTRY(CELL_EXTERN_)
#undef CELL_EXTERN_

// The kind behind config value c (enum model_cell), which must be one.
const cell_kind* cell_of(int c);
// The name of config value c, NULL past the last cell (c >= CELL_KINDS or < 0).
const char* cell_name(int c);
// Whether any of the cell's biases starts as init (CELL_INIT_FORGET: it has a forget gate).
int cell_has_init(const cell_kind* k, enum cell_init init);

#endif
