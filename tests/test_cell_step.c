// The GRU and LSTM cells' step (model/cell.h) in float against PyTorch's equations written out
// here in double: forward's h (and c) equal the reference, and backward's gradients equal
// central differences of the reference. With every kernel variant the CPU runs (the cells take
// their sigmoid and tanh from kernel->tanh), on a block of 37 units, which leaves a tail past
// every vector width, and h_prev rows wider than the block (ldh, as in the model's X).
// ranks: 1
#include <stdlib.h>
#include <string.h>
#include "model/cell.h"
#include "model/kernel.h"
#include "tests/check.h"

enum { B = 3, HL = 37, LDH = 41, G_MAX = 4 };

static double sig(double x)
{
    return 1 / (1 + exp(-x));
}

// One unit of the reference. GRU: x = (a_r, a_z, a_n), xh = (ah_r, ah_z, ah_n), out h.
// LSTM: x = (a_i, a_f, a_g, a_o), out h and c.
static void ref_gru(const double* x, const double* xh, double hp, double* h)
{
    double r = sig(x[0] + xh[0]), z = sig(x[1] + xh[1]), n = tanh(x[2] + r * xh[2]);
    *h = (1 - z) * n + z * hp;
}

static void ref_lstm(const double* x, double cp, double* h, double* c)
{
    *c = sig(x[1]) * cp + sig(x[0]) * tanh(x[2]);
    *h = sig(x[3]) * tanh(*c);
}

static double uniform(unsigned* s, double lo, double hi)
{
    *s = *s * 1664525u + 1013904223u;
    return lo + (hi - lo) * ((*s >> 8) / 16777216.0);
}

// The inputs of one step, both as the cell takes them (float rows) and as doubles.
typedef struct step {
    real a[B * G_MAX * HL], ah[B * G_MAX * HL], hprev[B * LDH], sprev[B * HL];
    real dh[B * HL], carry[B * HL];
} step;

static void fill(step* s, int G, unsigned seed)
{
    for (int i = 0; i < B * G * HL; i++) s->a[i] = (real)uniform(&seed, -3, 3);
    for (int i = 0; i < B * G * HL; i++) s->ah[i] = (real)uniform(&seed, -2, 2);
    for (int i = 0; i < B * LDH; i++) s->hprev[i] = (real)uniform(&seed, -1, 1);
    for (int i = 0; i < B * HL; i++) s->sprev[i] = (real)uniform(&seed, -2, 2);
    for (int i = 0; i < B * HL; i++) s->dh[i] = (real)uniform(&seed, -1, 1);
    for (int i = 0; i < B * HL; i++) s->carry[i] = (real)uniform(&seed, -1, 1);
}

// The scalar whose gradients backward returns, at unit (b, j): dh h + carry h (GRU: carry is
// the gradient of h_t from step t+1) or dh h + carry c (LSTM: carry is dc).
static double objective(const cell_kind* k, const double* x, const double* xh, double hp,
                        double cp, double dh, double carry)
{
    double h, c = 0;
    if (k == &cell_gru) {
        ref_gru(x, xh, hp, &h);
        return (dh + carry) * h;
    }
    ref_lstm(x, cp, &h, &c);
    return dh * h + carry * c;
}

// The unit's inputs as doubles: x[g] = a of gate g, xh[g] = ah of gate g.
static void unit_inputs(const step* s, int G, int b, int j, double* x, double* xh)
{
    for (int g = 0; g < G; g++) {
        x[g] = s->a[(size_t)b * G * HL + g * HL + j];
        xh[g] = s->ah[(size_t)b * G * HL + g * HL + j];
    }
}

static void check_cell(const cell_kind* k, const char* variant)
{
    const int G = k->gates, gru = k == &cell_gru;
    static step in;
    static real a[B * G_MAX * HL], s[B * HL], h[B * HL], dh[B * HL], carry[B * HL];
    static real da[B * G_MAX * HL], dah[B * G_MAX * HL];
    fill(&in, G, 12345u + (unsigned)G);
    memcpy(a, in.a, sizeof a);
    memcpy(carry, in.carry, sizeof carry);
    memcpy(dh, in.dh, sizeof dh);
    k->forward(h, gru ? NULL : s, a, gru ? in.ah : NULL, in.hprev, LDH, gru ? NULL : in.sprev, B,
               HL, ACT_TANH);
    k->backward(da, gru ? dah : NULL, carry, dh, a, gru ? in.ah : NULL, gru ? NULL : s, h,
                in.hprev, LDH, gru ? NULL : in.sprev, B, HL, ACT_TANH);
    double worst_h = 0, worst_g = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < HL; j++) {
            double x[G_MAX], xh[G_MAX], hr, cr = 0;
            unit_inputs(&in, G, b, j, x, xh);
            const double hp = in.hprev[(size_t)b * LDH + j], cp = in.sprev[(size_t)b * HL + j];
            const double dhj = in.dh[(size_t)b * HL + j], cj = in.carry[(size_t)b * HL + j];
            if (gru)
                ref_gru(x, xh, hp, &hr);
            else
                ref_lstm(x, cp, &hr, &cr);
            const size_t u = (size_t)b * HL + j;
            worst_h = fmax(worst_h, fabs(h[u] - hr));
            CHECK(fabs(h[u] - hr) <= 2e-6, "%s %s h[%d][%d] = %.8g, reference %.8g", k->name,
                  variant, b, j, h[u], hr);
            if (!gru)
                CHECK(fabs(s[u] - cr) <= 2e-6, "%s %s c[%d][%d] = %.8g, reference %.8g",
                      k->name, variant, b, j, s[u], cr);
            // Central differences of the reference in every input backward differentiates; the
            // floor: near saturation 1 - n * n in float keeps few digits of a small gradient.
            const double e = 1e-6;
            for (int g = 0; g < 2 * G + 1; g++) {
                double xp[G_MAX], xm[G_MAX], xhp[G_MAX], xhm[G_MAX], hpp = hp, hpm = hp,
                       cpp = cp, cpm = cp;
                memcpy(xp, x, sizeof xp), memcpy(xm, x, sizeof xm);
                memcpy(xhp, xh, sizeof xhp), memcpy(xhm, xh, sizeof xhm);
                real got;
                if (g < G) { // a of gate g
                    xp[g] += e, xm[g] -= e;
                    got = da[(size_t)b * G * HL + g * HL + j];
                } else if (g < 2 * G) { // ah of gate g - G (GRU only)
                    if (!gru) continue;
                    xhp[g - G] += e, xhm[g - G] -= e;
                    got = dah[(size_t)b * G * HL + (g - G) * HL + j];
                } else { // what goes to step t-1: dh_prev's direct part (GRU), dc_prev (LSTM)
                    if (gru)
                        hpp += e, hpm -= e;
                    else
                        cpp += e, cpm -= e;
                    got = carry[u];
                }
                const double want = (objective(k, xp, xhp, hpp, cpp, dhj, cj) -
                                     objective(k, xm, xhm, hpm, cpm, dhj, cj)) / (2 * e);
                worst_g = fmax(worst_g, fabs(got - want));
                CHECK(check_close(got, want, 1e-4, 1e-2),
                      "%s %s gradient %d of unit [%d][%d] = %.8g, central difference %.8g",
                      k->name, variant, g, b, j, got, want);
            }
        }
    printf("%s %s: worst |h - reference| %.2g, worst |gradient - central difference| %.2g\n",
           k->name, variant, worst_h, worst_g);
}

int main(void)
{
    for (int i = 0; kernel_names[i]; i++) {
        char err[256];
        if (kernel_use(kernel_names[i], err, sizeof err)) {
            printf("kernel %s skipped: %s\n", kernel_names[i], err);
            continue;
        }
        check_cell(&cell_gru, kernel_names[i]);
        check_cell(&cell_lstm, kernel_names[i]);
    }
    return check_failures != 0;
}
