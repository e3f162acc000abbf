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
#include "model/cell.h"
#include "model/kernel.h"

enum { GR, GZ, GN, GATES };

static void forward(real* h, real* s, real* a, real* ah, const real* hprev, int ldh,
                    const real* sprev, int B, int Hl, int act)
{
    (void)act, (void)sprev, (void)s;
    for (int b = 0; b < B; b++) {
        real *ab = a + (size_t)b * GATES * Hl, *hb = h + (size_t)b * Hl;
        const real *ahb = ah + (size_t)b * GATES * Hl, *hp = hprev + (size_t)b * ldh;
        // r and z (adjacent) as sigmoid(x) = (1 + tanh(x / 2)) / 2: the vectorised tanh of
        // kernel.h instead of a scalar expf per element, the gated cells' elementwise cost.
        for (int j = GR * Hl; j < (GZ + 1) * Hl; j++) ab[j] = (ab[j] + ahb[j]) / 2;
        kernel->tanh(ab + GR * Hl, 2 * (size_t)Hl);
        for (int j = GR * Hl; j < (GZ + 1) * Hl; j++) ab[j] = (1 + ab[j]) / 2;
        for (int j = 0; j < Hl; j++) ab[GN * Hl + j] += ab[GR * Hl + j] * ahb[GN * Hl + j];
        kernel->tanh(ab + GN * Hl, (size_t)Hl);
        for (int j = 0; j < Hl; j++) {
            const real z = ab[GZ * Hl + j];
            hb[j] = (1 - z) * ab[GN * Hl + j] + z * hp[j];
        }
    }
}

// One row: the gates r, z, n and ah_n as forward left them, h_prev, dh and the carry in; the
// gradients of the gates' a and ah out. restrict (nothing overlaps) lets the loop vectorise.
static void backward_row(int Hl, const real* restrict r, const real* restrict z,
                         const real* restrict n, const real* restrict ahn, const real* restrict hp,
                         const real* restrict dh, real* restrict carry, real* restrict dr,
                         real* restrict dz, real* restrict dn, real* restrict dhr,
                         real* restrict dhz, real* restrict dhn)
{
    for (int j = 0; j < Hl; j++) {
        const real d = dh[j] + carry[j];
        const real dan = d * (1 - z[j]) * (1 - n[j] * n[j]);
        const real dar = dan * ahn[j] * r[j] * (1 - r[j]);
        const real daz = d * (hp[j] - n[j]) * z[j] * (1 - z[j]);
        dr[j] = dhr[j] = dar;
        dz[j] = dhz[j] = daz;
        dn[j] = dan;
        dhn[j] = dan * r[j];
        carry[j] = d * z[j];
    }
}

// carry is the gradient of h_t that step t+1 sent back directly (through its z * h_prev), to
// add to the one that came through the products.
static void backward(real* da, real* dah, real* carry, real* dh, const real* a, const real* ah,
                     const real* s, const real* h, const real* hprev, int ldh, const real* sprev,
                     int B, int Hl, int act)
{
    (void)act, (void)sprev, (void)s, (void)h;
    for (int b = 0; b < B; b++) {
        const size_t row = (size_t)b * GATES * Hl;
        const real *ab = a + row, *ahb = ah + row;
        real *db = da + row, *dbh = dah + row;
        backward_row(Hl, ab + GR * Hl, ab + GZ * Hl, ab + GN * Hl, ahb + GN * Hl,
                     hprev + (size_t)b * ldh, dh + (size_t)b * Hl, carry + (size_t)b * Hl,
                     db + GR * Hl, db + GZ * Hl, db + GN * Hl, dbh + GR * Hl, dbh + GZ * Hl,
                     dbh + GN * Hl);
    }
}

static const char* const gate_name[GATES] = {"r", "z", "n"};

const cell_kind cell_gru = {
    .name = "gru", .gates = GATES, .gate_name = gate_name, .split_h = 1, .bias_h = 1, .carry = 1,
    .forward = forward, .backward = backward,
};
