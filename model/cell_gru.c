// The GRU cell, PyTorch's torch.nn.GRU equations plus the fed-back term in every gate's input
// (model/cell.h). Gates in PyTorch's order r, z, n; a = [u | f_prev] [Wx | Wf]^T + b and
// ah = h_prev Wh^T + bh are PyTorch's input and hidden parts (b = bias_ih, bh = bias_hh):
//
//     r = sigmoid(a_r + ah_r)   z = sigmoid(a_z + ah_z)   n = tanh(a_n + r * ah_n)
//     h = (1 - z) * n + z * h_prev
//
// r multiplies only the recurrent part of the candidate, which is why the cell needs ah apart
// (split_h): two products per step instead of one, the same multiply-adds. Forward leaves r, z
// and n in a; backward also reads ah_n and h_prev.
#include <math.h>
#include "model/cell.h"
#include "model/kernel.h"

enum { GR, GZ, GN, GATES };

static real sigmoid(real x)
{
    return 1 / (1 + real_exp(-x));
}

static void forward(int B, int Hl, int act, real* a, real* ah, const real* hprev, int ldh,
                    const real* sprev, real* s, real* h)
{
    (void)act, (void)sprev, (void)s;
    for (int b = 0; b < B; b++) {
        real *ab = a + (size_t)b * GATES * Hl, *hb = h + (size_t)b * Hl;
        const real *ahb = ah + (size_t)b * GATES * Hl, *hp = hprev + (size_t)b * ldh;
        for (int j = 0; j < Hl; j++) {
            ab[GR * Hl + j] = sigmoid(ab[GR * Hl + j] + ahb[GR * Hl + j]);
            ab[GZ * Hl + j] = sigmoid(ab[GZ * Hl + j] + ahb[GZ * Hl + j]);
            ab[GN * Hl + j] += ab[GR * Hl + j] * ahb[GN * Hl + j];
        }
        kernel->tanh(ab + GN * Hl, (size_t)Hl);
        for (int j = 0; j < Hl; j++) {
            const real z = ab[GZ * Hl + j];
            hb[j] = (1 - z) * ab[GN * Hl + j] + z * hp[j];
        }
    }
}

// carry is the gradient of h_t that step t+1 sent back directly (through its z * h_prev), to
// add to the one that came through the products.
static void backward(int B, int Hl, int act, const real* a, const real* ah, const real* hprev,
                     int ldh, const real* sprev, const real* s, const real* h, real* dh,
                     real* carry, real* da, real* dah)
{
    (void)act, (void)sprev, (void)s, (void)h;
    for (int b = 0; b < B; b++) {
        const real *ab = a + (size_t)b * GATES * Hl, *ahb = ah + (size_t)b * GATES * Hl;
        const real *hp = hprev + (size_t)b * ldh, *dhb = dh + (size_t)b * Hl;
        real *cb = carry + (size_t)b * Hl, *db = da + (size_t)b * GATES * Hl,
             *dbh = dah + (size_t)b * GATES * Hl;
        for (int j = 0; j < Hl; j++) {
            const real r = ab[GR * Hl + j], z = ab[GZ * Hl + j], n = ab[GN * Hl + j];
            const real d = dhb[j] + cb[j];
            const real dan = d * (1 - z) * (1 - n * n);
            const real dar = dan * ahb[GN * Hl + j] * r * (1 - r);
            const real daz = d * (hp[j] - n) * z * (1 - z);
            db[GR * Hl + j] = dbh[GR * Hl + j] = dar;
            db[GZ * Hl + j] = dbh[GZ * Hl + j] = daz;
            db[GN * Hl + j] = dan;
            dbh[GN * Hl + j] = dan * r;
            cb[j] = d * z;
        }
    }
}

static const char* const gate_name[GATES] = {"r", "z", "n"};

const cell_kind cell_gru = {
    .name = "gru", .gates = GATES, .gate_name = gate_name, .split_h = 1, .carry = 1,
    .forward = forward, .backward = backward,
};
