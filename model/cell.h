// A recurrent cell: what one layer computes per step over this rank's block of hidden units.
//
// Legend: B = local batch rows, Hl = this rank's hidden units, G = the cell's gates (row blocks
// per hidden unit). Every gate's rows of a unit live with the unit, so a layer's weights are one
// G*Hl x K block [Wx | Wh | Wf] (rows gate by gate, K = D_l + H + O_l) and its step is one
// product of the full input [u_t | h_{t-1} | f_{t-1}] (see model.h):
//
//     a = [u | h_prev | f_prev] W^T + b                        (B x G*Hl)
//
// except for cells whose recurrent part must stay separate (split_h: GRU's r * (Wh h + bh)):
// they get a = [u | f_prev] [Wx | Wf]^T + b and ah = h_prev Wh^T + bh as two products, the same
// multiply-adds (their input is laid out [u | f_prev | h_prev] for it, model.h). The model
// (model/forward.c, backward.c) forms the products, gathers h over the TP group and reduces the
// input gradients; a cell sees only its block, no MPI and no layout.
#ifndef MODEL_CELL_H
#define MODEL_CELL_H

#include "dist/real.h"

enum model_cell { CELL_ELMAN, CELL_GRU, CELL_LSTM };
enum model_act { ACT_TANH, ACT_RELU, ACT_SIGMOID }; // the Elman cell's nonlinearity

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
    int split_h;                  // Wh h_prev + bh is its own product, ah (see above)
    int state;                    // per-unit values carried from step to step besides h (c)
    const char* state_name;       // its checkpoint dataset: /train/state/<state_name><layer>
    int carry;                    // per-unit gradients carried from step t to t-1 by backward
    int any_act;                  // the config's `act` applies (else the cell's own nonlinearities)

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
} cell_kind;

extern const cell_kind cell_elman, cell_gru, cell_lstm;

// The kind behind config value c (enum model_cell).
const cell_kind* cell_of(int c);

#endif
