// The LSTM cell, PyTorch's torch.nn.LSTM equations plus the fed-back term in every gate's input
// (model/cell.h): with a = [u | h_prev | f_prev] W^T + b, gates in PyTorch's order i, f, g, o,
//
//     i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
//     c = f * c_prev + i * g            h = o * tanh(c)
//
// b here is PyTorch's bias_ih + bias_hh. The state carried from step to step is c; forward
// leaves the four gates' values in a, which is all backward needs besides c and c_prev.
#include <math.h>
#include <string.h>
#include "model/cell.h"
#include "model/kernel.h"

enum { GI, GF, GG, GO, GATES };

static real sigmoid(real x)
{
    return 1 / (1 + real_exp(-x));
}

static void forward(int B, int Hl, int act, real* a, real* ah, const real* hprev, int ldh,
                    const real* sprev, real* s, real* h)
{
    (void)act, (void)ah, (void)hprev, (void)ldh;
    for (int b = 0; b < B; b++) {
        real* ab = a + (size_t)b * GATES * Hl;
        const real* cp = sprev + (size_t)b * Hl;
        real *c = s + (size_t)b * Hl, *hb = h + (size_t)b * Hl;
        for (int j = 0; j < Hl; j++) {
            ab[GI * Hl + j] = sigmoid(ab[GI * Hl + j]);
            ab[GF * Hl + j] = sigmoid(ab[GF * Hl + j]);
            ab[GO * Hl + j] = sigmoid(ab[GO * Hl + j]);
        }
        kernel->tanh(ab + GG * Hl, (size_t)Hl);
        for (int j = 0; j < Hl; j++) {
            c[j] = ab[GF * Hl + j] * cp[j] + ab[GI * Hl + j] * ab[GG * Hl + j];
            hb[j] = c[j];
        }
        kernel->tanh(hb, (size_t)Hl);
        for (int j = 0; j < Hl; j++) hb[j] *= ab[GO * Hl + j];
    }
}

// carry is dc: the gradient of c_t that step t+1 sent back (through its f * c_prev).
static void backward(int B, int Hl, int act, const real* a, const real* ah, const real* hprev,
                     int ldh, const real* sprev, const real* s, const real* h, real* dh,
                     real* carry, real* da, real* dah)
{
    (void)act, (void)ah, (void)hprev, (void)ldh, (void)h, (void)dah;
    for (int b = 0; b < B; b++) {
        const real* ab = a + (size_t)b * GATES * Hl;
        const real *cp = sprev + (size_t)b * Hl, *c = s + (size_t)b * Hl;
        real *dc = carry + (size_t)b * Hl, *db = da + (size_t)b * GATES * Hl;
        const real* dhb = dh + (size_t)b * Hl;
        for (int j = 0; j < Hl; j++) {
            const real i = ab[GI * Hl + j], f = ab[GF * Hl + j], g = ab[GG * Hl + j],
                       o = ab[GO * Hl + j], dhj = dhb[j];
            const real t = real_tanh(c[j]);
            const real dcj = dc[j] + dhj * o * (1 - t * t);
            db[GI * Hl + j] = dcj * g * i * (1 - i);
            db[GF * Hl + j] = dcj * cp[j] * f * (1 - f);
            db[GG * Hl + j] = dcj * i * (1 - g * g);
            db[GO * Hl + j] = dhj * t * o * (1 - o);
            dc[j] = dcj * f;
        }
    }
}

static const char* const gate_name[GATES] = {"i", "f", "g", "o"};
static const enum cell_init b_init[GATES] = {CELL_INIT_ZERO, CELL_INIT_FORGET, CELL_INIT_ZERO,
                                             CELL_INIT_ZERO};

const cell_kind cell_lstm = {
    .name = "lstm", .gates = GATES, .gate_name = gate_name, .b_init = b_init, .state = 1,
    .state_name = "c",
    .carry = 1, .forward = forward, .backward = backward,
};
