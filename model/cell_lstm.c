// The LSTM cell, PyTorch's torch.nn.LSTM equations plus the fed-back term in every gate's input
// (model/cell.h): with a = [u | h_prev | f_prev] W^T + b, gates in PyTorch's order i, f, g, o,
//
//     i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
//     c = f * c_prev + i * g            h = o * tanh(c)
//
// b here is PyTorch's bias_ih + bias_hh. The state carried from step to step is c; forward
// leaves the four gates' values in a, which is all backward needs besides c and c_prev.
#include <string.h>
#include "model/cell.h"
#include "model/kernel.h"

enum { GI, GF, GG, GO, GATES };

// The gates i, f, o as sigmoid(x) = (1 + tanh(x / 2)) / 2 and g as tanh(x): one call of the
// vectorised tanh of kernel.h over the whole block instead of a scalar expf per element, the
// gated cells' elementwise cost.
static void gates(int B, int Hl, real* a)
{
    const size_t n = (size_t)B * GATES * Hl;
    for (int b = 0; b < B; b++) {
        real* ab = a + (size_t)b * GATES * Hl;
        for (int j = GI * Hl; j < (GF + 1) * Hl; j++) ab[j] /= 2;
        for (int j = GO * Hl; j < (GO + 1) * Hl; j++) ab[j] /= 2;
    }
    kernel->tanh(a, n);
    for (int b = 0; b < B; b++) {
        real* ab = a + (size_t)b * GATES * Hl;
        for (int j = GI * Hl; j < (GF + 1) * Hl; j++) ab[j] = (1 + ab[j]) / 2;
        for (int j = GO * Hl; j < (GO + 1) * Hl; j++) ab[j] = (1 + ab[j]) / 2;
    }
}

static void forward(real* h, real* s, real* a, real* ah, const real* hprev, int ldh,
                    const real* sprev, int B, int Hl, int act)
{
    (void)act, (void)ah, (void)hprev, (void)ldh;
    gates(B, Hl, a);
    for (int b = 0; b < B; b++) {
        const real* ab = a + (size_t)b * GATES * Hl;
        const real* cp = sprev + (size_t)b * Hl;
        real *c = s + (size_t)b * Hl, *hb = h + (size_t)b * Hl;
        for (int j = 0; j < Hl; j++) {
            c[j] = ab[GF * Hl + j] * cp[j] + ab[GI * Hl + j] * ab[GG * Hl + j];
            hb[j] = c[j];
        }
        kernel->tanh(hb, (size_t)Hl);
        for (int j = 0; j < Hl; j++) hb[j] *= ab[GO * Hl + j];
    }
}

// One row: the gates as forward left them, c_prev, dh and the carry dc in; the gates'
// gradients out, with tanh(c) arriving in dout. restrict (nothing overlaps) lets the loop
// vectorise.
static void backward_row(int Hl, const real* restrict i, const real* restrict f,
                         const real* restrict g, const real* restrict o, const real* restrict cp,
                         const real* restrict dh, real* restrict dc, real* restrict di,
                         real* restrict df, real* restrict dg, real* restrict dout)
{
    for (int j = 0; j < Hl; j++) {
        const real t = dout[j];
        const real dcj = dc[j] + dh[j] * o[j] * (1 - t * t);
        di[j] = dcj * g[j] * i[j] * (1 - i[j]);
        df[j] = dcj * cp[j] * f[j] * (1 - f[j]);
        dg[j] = dcj * i[j] * (1 - g[j] * g[j]);
        dout[j] = dh[j] * t * o[j] * (1 - o[j]);
        dc[j] = dcj * f[j];
    }
}

// carry is dc: the gradient of c_t that step t+1 sent back (through its f * c_prev). tanh(c)
// is recomputed with forward's vectorised tanh, in the o block of da, which it then overwrites.
static void backward(real* da, real* dah, real* carry, real* dh, const real* a, const real* ah,
                     const real* s, const real* h, const real* hprev, int ldh, const real* sprev,
                     int B, int Hl, int act)
{
    (void)act, (void)ah, (void)hprev, (void)ldh, (void)h, (void)dah;
    for (int b = 0; b < B; b++) {
        const real* ab = a + (size_t)b * GATES * Hl;
        real* db = da + (size_t)b * GATES * Hl;
        memcpy(db + GO * Hl, s + (size_t)b * Hl, (size_t)Hl * sizeof(real));
        kernel->tanh(db + GO * Hl, (size_t)Hl);
        backward_row(Hl, ab + GI * Hl, ab + GF * Hl, ab + GG * Hl, ab + GO * Hl,
                     sprev + (size_t)b * Hl, dh + (size_t)b * Hl, carry + (size_t)b * Hl,
                     db + GI * Hl, db + GF * Hl, db + GG * Hl, db + GO * Hl);
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
