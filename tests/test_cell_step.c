// The step of every cell of the registry (model/cell.h) in float against its equations written
// out here in double (PyTorch's for the GRU and LSTM, Zhou et al.'s for the MGU, tanh for the
// Elman cell): forward's h (and the state c, the gated state q) equal the reference, and
// backward's gradients equal central differences of the reference. With every kernel variant the CPU runs (the cells take
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

// One unit of the reference, a cell's equations: x = a of every gate, xh = ah of every gate
// (split_h cells), hp = h_prev, cp = the state before (state cells); out h, the state c after
// (state cells) and the gated state q (gated cells).
static void ref_elman(const double* x, const double* xh, double hp, double cp, double* h, double* c,
                      double* q)
{
    (void)xh, (void)hp, (void)cp, (void)c, (void)q;
    *h = tanh(x[0]);
}

static void ref_gru(const double* x, const double* xh, double hp, double cp, double* h, double* c,
                    double* q)
{
    (void)cp, (void)c, (void)q;
    double r = sig(x[0] + xh[0]), z = sig(x[1] + xh[1]), n = tanh(x[2] + r * xh[2]);
    *h = (1 - z) * n + z * hp;
}

static void ref_lstm(const double* x, const double* xh, double hp, double cp, double* h, double* c,
                     double* q)
{
    (void)xh, (void)hp, (void)q;
    *c = sig(x[1]) * cp + sig(x[0]) * tanh(x[2]);
    *h = sig(x[3]) * tanh(*c);
}

// Zhou et al. 2016; xh[1] is the product U (f * h_prev), which the model forms from q.
static void ref_mgu(const double* x, const double* xh, double hp, double cp, double* h, double* c,
                    double* q)
{
    (void)cp, (void)c;
    const double f = sig(x[0] + xh[0]), n = tanh(x[1] + xh[1]);
    *h = (1 - f) * hp + f * n;
    *q = f * hp;
}

typedef void ref_fn(const double* x, const double* xh, double hp, double cp, double* h, double* c,
                    double* q);
// The references by cell name: a cell of the registry without one fails the test.
static const struct {
    const char* name;
    ref_fn* ref;
} refs[] = {{"elman", ref_elman}, {"gru", ref_gru}, {"lstm", ref_lstm}, {"mgu", ref_mgu}};

static ref_fn* reference(const cell_kind* k)
{
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
        if (!strcmp(refs[i].name, k->name)) return refs[i].ref;
    return NULL;
}

static double uniform(unsigned* s, double lo, double hi)
{
    *s = *s * 1664525u + 1013904223u;
    return lo + (hi - lo) * ((*s >> 8) / 16777216.0);
}

// The inputs of one step, both as the cell takes them (float rows) and as doubles.
typedef struct step {
    real a[B * G_MAX * HL], ah[B * G_MAX * HL], hprev[B * LDH], sprev[B * HL];
    real dh[B * HL], carry[B * HL], dq[B * HL];
} step;

static void fill(step* s, int G, unsigned seed)
{
    for (int i = 0; i < B * G * HL; i++) s->a[i] = (real)uniform(&seed, -3, 3);
    for (int i = 0; i < B * G * HL; i++) s->ah[i] = (real)uniform(&seed, -2, 2);
    for (int i = 0; i < B * LDH; i++) s->hprev[i] = (real)uniform(&seed, -1, 1);
    for (int i = 0; i < B * HL; i++) s->sprev[i] = (real)uniform(&seed, -2, 2);
    for (int i = 0; i < B * HL; i++) s->dh[i] = (real)uniform(&seed, -1, 1);
    for (int i = 0; i < B * HL; i++) s->carry[i] = (real)uniform(&seed, -1, 1);
    for (int i = 0; i < B * HL; i++) s->dq[i] = (real)uniform(&seed, -1, 1);
}

// The scalar whose gradients backward (and gated_backward) return, at unit (b, j):
// dh h + carry s (a cell with state: carry is the gradient of s) or dh h + carry h (carry is the
// gradient of h_t from step t+1; none without a carry), plus dq q for a gated cell.
static double objective(const cell_kind* k, ref_fn* ref, const double* x, const double* xh,
                        double hp, double cp, double dh, double carry, double dq)
{
    double h, c = 0, q = 0;
    ref(x, xh, hp, cp, &h, &c, &q);
    const double cr = k->carry ? carry * (k->state ? c : h) : 0;
    return dh * h + cr + (k->gated ? dq * q : 0);
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
    ref_fn* ref = reference(k);
    CHECK(ref != NULL, "cell %s: no reference equations in tests/test_cell_step.c", k->name);
    if (!ref) return;
    const int G = k->gates, split = k->split_h, state = k->state;
    static step in;
    static real a[B * G_MAX * HL], s[B * HL], h[B * HL], dh[B * HL], carry[B * HL], q[B * HL];
    static real da[B * G_MAX * HL], dah[B * G_MAX * HL];
    fill(&in, G, 12345u + (unsigned)G);
    memcpy(a, in.a, sizeof a);
    memcpy(carry, in.carry, sizeof carry);
    memcpy(dh, in.dh, sizeof dh);
    if (k->gated) k->gated_forward(q, a, in.ah, in.hprev, LDH, B, HL);
    k->forward(h, state ? s : NULL, a, split ? in.ah : NULL, in.hprev, LDH, state ? in.sprev : NULL,
               B, HL, ACT_TANH);
    k->backward(da, split ? dah : NULL, carry, dh, a, split ? in.ah : NULL, state ? s : NULL, h,
                in.hprev, LDH, state ? in.sprev : NULL, B, HL, ACT_TANH);
    if (k->gated) k->gated_backward(da, dah, carry, in.dq, HL, a, in.hprev, LDH, B, HL);
    double worst_h = 0, worst_g = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < HL; j++) {
            double x[G_MAX], xh[G_MAX], hr, cr = 0, qr = 0;
            unit_inputs(&in, G, b, j, x, xh);
            const double hp = in.hprev[(size_t)b * LDH + j], cp = in.sprev[(size_t)b * HL + j];
            const size_t u = (size_t)b * HL + j;
            const double dhj = in.dh[u], cj = in.carry[u], dqj = in.dq[u];
            ref(x, xh, hp, cp, &hr, &cr, &qr);
            worst_h = fmax(worst_h, fabs(h[u] - hr));
            CHECK(fabs(h[u] - hr) <= 2e-6, "%s %s h[%d][%d] = %.8g, reference %.8g", k->name,
                  variant, b, j, h[u], hr);
            if (state)
                CHECK(fabs(s[u] - cr) <= 2e-6, "%s %s %s[%d][%d] = %.8g, reference %.8g",
                      k->name, variant, k->state_name, b, j, s[u], cr);
            if (k->gated)
                CHECK(fabs(q[u] - qr) <= 2e-6, "%s %s q[%d][%d] = %.8g, reference %.8g", k->name,
                      variant, b, j, q[u], qr);
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
                } else if (g < 2 * G) { // ah of gate g - G (split_h cells)
                    if (!split) continue;
                    xhp[g - G] += e, xhm[g - G] -= e;
                    got = dah[(size_t)b * G * HL + (g - G) * HL + j];
                } else { // what goes to step t-1 directly: the gradient of s_prev or h_prev
                    if (!k->carry) continue;
                    if (state)
                        cpp += e, cpm -= e;
                    else
                        hpp += e, hpm -= e;
                    got = carry[u];
                }
                const double want = (objective(k, ref, xp, xhp, hpp, cpp, dhj, cj, dqj) -
                                     objective(k, ref, xm, xhm, hpm, cpm, dhj, cj, dqj)) / (2 * e);
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
        for (int c = 0; c < CELL_KINDS; c++) check_cell(cell_of(c), kernel_names[i]);
    }
    return check_failures != 0;
}
