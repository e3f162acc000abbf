// The Elman cell of docs/model.md: h_t = act(a), one gate, nothing carried but h.
#include <math.h>
#include <string.h>
#include "model/cell.h"
#include "model/kernel.h"

static void forward(real* h, real* s, real* a, real* ah, const real* hprev, int ldh,
                    const real* sprev, int B, int Hl, int act)
{
    (void)ah, (void)hprev, (void)ldh, (void)sprev, (void)s;
    const size_t n = (size_t)B * Hl;
    if (h != a) memcpy(h, a, n * sizeof(real));
    switch (act) {
    case ACT_TANH:
        kernel->tanh(h, n);
        break;
    case ACT_RELU:
        for (size_t i = 0; i < n; i++) h[i] = h[i] > 0 ? h[i] : 0;
        break;
    default:
        for (size_t i = 0; i < n; i++) h[i] = 1 / (1 + real_exp(-h[i]));
        break;
    }
}

// act'(a) written with the activation's output h, which is what forward kept.
static void backward(real* da, real* dah, real* carry, real* dh, const real* a, const real* ah,
                     const real* s, const real* h, const real* hprev, int ldh, const real* sprev,
                     int B, int Hl, int act)
{
    (void)a, (void)ah, (void)hprev, (void)ldh, (void)sprev, (void)s, (void)carry, (void)dah;
    const size_t n = (size_t)B * Hl;
    switch (act) {
    case ACT_TANH:
        for (size_t i = 0; i < n; i++) da[i] = dh[i] * (1 - h[i] * h[i]);
        break;
    case ACT_RELU:
        for (size_t i = 0; i < n; i++) da[i] = h[i] > 0 ? dh[i] : 0;
        break;
    default:
        for (size_t i = 0; i < n; i++) da[i] = dh[i] * h[i] * (1 - h[i]);
        break;
    }
}

const cell_kind cell_elman = {
    .name = "elman", .gates = 1, .any_act = 1, .forward = forward, .backward = backward,
};
