// The minimal gated unit (Zhou et al. 2016, "Minimal gated unit for recurrent neural
// networks") with the fed-back term in each gate's input (model/cell.h). Gates f and n; with
// a = [u | f_prev] [Wx | Wf]^T + b, ah_f = h_prev Wh_f^T and ah_n = (f * h_prev) Wh_n^T:
//
//     f = sigmoid(a_f + ah_f)   n = tanh(a_n + ah_n)   h = (1 - f) * h_prev + f * n
//
// The candidate's recurrent product multiplies the gated state q = f * h_prev (gated = 1): f
// first (gated_forward), then the model gathers q and forms ah_n, then forward. Forward leaves
// f and n in a; backward also reads h_prev.
#include "model/cell.h"
#include "model/kernel.h"

enum { GF, GN, GATES };

static void gated_forward(real* q, real* a, const real* ah, const real* hprev, int ldh, int B,
                          int Hl)
{
    for (int b = 0; b < B; b++) {
        real *f = a + (size_t)b * GATES * Hl + GF * Hl, *qb = q + (size_t)b * Hl;
        const real *ahf = ah + (size_t)b * GATES * Hl + GF * Hl, *hp = hprev + (size_t)b * ldh;
        // sigmoid(x) = (1 + tanh(x / 2)) / 2: the vectorised tanh of kernel.h.
        for (int j = 0; j < Hl; j++) f[j] = (f[j] + ahf[j]) / 2;
        kernel->tanh(f, (size_t)Hl);
        for (int j = 0; j < Hl; j++) {
            f[j] = (1 + f[j]) / 2;
            qb[j] = f[j] * hp[j];
        }
    }
}

static void forward(real* h, real* s, real* a, real* ah, const real* hprev, int ldh,
                    const real* sprev, int B, int Hl, int act)
{
    (void)act, (void)sprev, (void)s;
    for (int b = 0; b < B; b++) {
        real *ab = a + (size_t)b * GATES * Hl, *hb = h + (size_t)b * Hl;
        const real *ahb = ah + (size_t)b * GATES * Hl, *hp = hprev + (size_t)b * ldh;
        for (int j = 0; j < Hl; j++) ab[GN * Hl + j] += ahb[GN * Hl + j];
        kernel->tanh(ab + GN * Hl, (size_t)Hl);
        for (int j = 0; j < Hl; j++) {
            const real f = ab[GF * Hl + j];
            hb[j] = (1 - f) * hp[j] + f * ab[GN * Hl + j];
        }
    }
}

// carry: on entry the gradient of h_t that step t+1 sent back directly (its (1 - f) * h_prev
// and q's f * h_prev); here d = dh + carry. The gradient of f is completed by gated_backward,
// once dq is known: until then da_f holds its part through h, d * (n - h_prev).
static void backward(real* da, real* dah, real* carry, real* dh, const real* a, const real* ah,
                     const real* s, const real* h, const real* hprev, int ldh, const real* sprev,
                     int B, int Hl, int act)
{
    (void)act, (void)sprev, (void)s, (void)h, (void)ah;
    for (int b = 0; b < B; b++) {
        const size_t row = (size_t)b * GATES * Hl;
        const real *f = a + row + GF * Hl, *n = a + row + GN * Hl, *hp = hprev + (size_t)b * ldh;
        const real* dhb = dh + (size_t)b * Hl;
        real *c = carry + (size_t)b * Hl, *dn = da + row + GN * Hl, *dhn = dah + row + GN * Hl;
        real* df = da + row + GF * Hl;
        for (int j = 0; j < Hl; j++) {
            const real d = dhb[j] + c[j];
            dn[j] = dhn[j] = d * f[j] * (1 - n[j] * n[j]);
            df[j] = d * (n[j] - hp[j]);
            c[j] = d * (1 - f[j]);
        }
    }
}

// q = f * h_prev: dq adds dq * h_prev to f's gradient and dq * f to h_prev's (the carry).
static void gated_backward(real* da, real* dah, real* carry, const real* dq, int ldq,
                           const real* a, const real* hprev, int ldh, int B, int Hl)
{
    for (int b = 0; b < B; b++) {
        const size_t row = (size_t)b * GATES * Hl;
        const real *f = a + row + GF * Hl, *hp = hprev + (size_t)b * ldh, *dqb = dq + (size_t)b * ldq;
        real *df = da + row + GF * Hl, *dhf = dah + row + GF * Hl, *c = carry + (size_t)b * Hl;
        for (int j = 0; j < Hl; j++) {
            df[j] = dhf[j] = (df[j] + dqb[j] * hp[j]) * f[j] * (1 - f[j]);
            c[j] += dqb[j] * f[j];
        }
    }
}

static const char* const gate_name[GATES] = {"f", "n"};

const cell_kind cell_mgu = {
    .name = "mgu", .gates = GATES, .gate_name = gate_name, .split_h = 1, .gated = 1, .carry = 1,
    .forward = forward, .backward = backward, .gated_forward = gated_forward,
    .gated_backward = gated_backward,
};
