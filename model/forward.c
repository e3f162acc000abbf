// Forward pass over one window, time-major: step t runs every layer before step t+1, because
// the top output feeds the bottom layer at the next step.
//
// Per step and layer this rank computes its block of a = [u | h_prev | f_prev] W^T + b (all
// gates of its hidden units), the cell turns it into its block of h (model/cell.h), and one
// allgather over the TP group assembles the full h. The top layer's
// partial output h_blk Wo_blk^T rides in the same allgather and every rank sums the parts.
#include <string.h>
#include "model/feedback.h"
#include "model/model.h"

// Row t of every layer input: u (layer 0 only; upper layers get it from the layer below).
static void fill_inputs(model* m, const model_batch* bt)
{
    const int B = m->B, D = m->c.D, K = m->K[0];
    const real* E = m->params + m->E;
    for (int t = 0; t < bt->T; t++)
        for (int b = 0; b < B; b++) {
            real* u = m->X[0] + ((size_t)t * B + b) * K;
            const real* src = bt->tokens ? E + (size_t)bt->tokens[t * B + b] * D
                                         : bt->dense + ((size_t)t * B + b) * D;
            memcpy(u, src, (size_t)D * sizeof(real));
        }
}

// The carried state (or zeros) becomes h_{-1} and f_{-1} of step 0.
static void fill_initial_state(model* m)
{
    const int B = m->B, H = m->c.H, O = m->c.O;
    for (int l = 0; l < m->c.L; l++) {
        for (int b = 0; b < B; b++) {
            real* x = m->X[l] + (size_t)b * m->K[l];
            memcpy(x + m->hc[l], m->h0s[l] + (size_t)b * H, (size_t)H * sizeof(real));
            if (m->Of[l]) memcpy(x + m->fc[l], m->f0 + (size_t)b * O, (size_t)O * sizeof(real));
        }
    }
}

// The products of layer l at step t from the full input x_t = [u | h_prev | f_prev]: a = x_t W^T + b,
// where layer 0's a already holds the input projection done for all steps at once; or, for a
// split_h cell (x_t = [u | f_prev | h_prev]), a = [u | f_prev] [Wx | Wf]^T + b and
// ah = h_prev Wh^T + bh.
static void products(model* m, int l, int t)
{
    const int B = m->B, GH = m->cell->gates * m->Hl, K = m->K[l];
    real* a = m->A[l] + (size_t)t * B * GH;
    const real* x = m->X[l] + (size_t)t * B * K;
    if (l > 0)
        model_apply(m, a, GH, x, K, &m->fwdW[l], m->params + m->b[l], 0);
    else if (m->fwdW[0].k > 0)
        model_apply(m, a, GH, x + m->c.D, K, &m->fwdW[0], NULL, 1);
    if (m->cell->split_h)
        model_apply(m, m->AH[l] + (size_t)t * B * GH, GH, x + m->hc[l], K, &m->fwdWh[l],
                    m->params + m->bh[l], 0);
}

// The cell's step over this rank's block: h_t (into HB) and its state from the products.
static void cell_step(model* m, int l, int t, int T)
{
    const int B = m->B, Hl = m->Hl, GH = m->cell->gates * Hl, K = m->K[l];
    const size_t sHl = (size_t)m->cell->state * Hl;
    const real* hprev = m->X[l] + (size_t)t * B * K + m->hc[l] + m->h0;
    const real* sprev = !sHl ? NULL : t == 0 ? m->s0s[l] : m->S[l] + (size_t)(t - 1) * B * sHl;
    real* s = sHl ? m->S[l] + (size_t)t * B * sHl : NULL;
    real* ah = m->cell->split_h ? m->AH[l] + (size_t)t * B * GH : NULL;
    m->cell->forward(m->HB[l] + (size_t)t * B * Hl, s, m->A[l] + (size_t)t * B * GH, ah, hprev, K,
                     sprev, B, Hl, m->c.act);
    if (sHl && t + 1 == T) memcpy(m->sT[l], s, (size_t)B * sHl * sizeof(real));
}

// Scatters the gathered blocks of h into the places that read it: the next step of this layer
// (or the carried state after the last step) and this step of the layer above.
static void scatter_hidden(model* m, int l, int t, int T, size_t chunk)
{
    const int B = m->B, H = m->c.H, Hl = m->Hl, K = m->K[l];
    for (int r = 0; r < m->g->tp; r++)
        for (int b = 0; b < B; b++) {
            const real* src = m->recv + r * chunk + (size_t)b * Hl;
            real* same = t + 1 < T ? m->X[l] + ((size_t)(t + 1) * B + b) * K + m->hc[l]
                                   : m->hT[l] + (size_t)b * H;
            memcpy(same + r * Hl, src, (size_t)Hl * sizeof(real));
            if (l + 1 < m->c.L) {
                real* up = m->X[l + 1] + ((size_t)t * B + b) * m->K[l + 1];
                memcpy(up + r * Hl, src, (size_t)Hl * sizeof(real));
            }
        }
}

// y_t = sum over TP ranks of the partial outputs + bo; then f_t goes to every layer with
// feedback at step t+1 (or to the carried state).
static void output_step(model* m, const model_batch* bt, int t, size_t chunk)
{
    const int B = m->B, O = m->c.O, Hl = m->Hl;
    real* y = m->Y + (size_t)t * B * O;
    real* f = m->F + (size_t)t * B * O;
    const real* bo = m->params + m->bo;
    for (int b = 0; b < B; b++) memcpy(y + (size_t)b * O, bo, (size_t)O * sizeof(real));
    for (int r = 0; r < m->g->tp; r++) {
        const real* part = m->recv + r * chunk + (size_t)B * Hl;
        for (size_t i = 0; i < (size_t)B * O; i++) y[i] += part[i];
    }
    feedback_signal(m, bt, t, f, y);
    if (t + 1 >= bt->T) {
        memcpy(m->fT, f, (size_t)B * O * sizeof(real));
        return;
    }
    for (int l = 0; l < m->c.L; l++) {
        if (!m->Of[l]) continue;
        for (int b = 0; b < B; b++) {
            real* dst = m->X[l] + ((size_t)(t + 1) * B + b) * m->K[l] + m->fc[l];
            memcpy(dst, f + (size_t)b * O, (size_t)O * sizeof(real));
        }
    }
}

static void layer_step(model* m, const model_batch* bt, int l, int t)
{
    const int B = m->B, Hl = m->Hl, O = m->c.O;
    const int top = l == m->c.L - 1;
    real* h = m->HB[l] + (size_t)t * B * Hl;
    products(m, l, t);
    cell_step(m, l, t, bt->T);
    size_t chunk = (size_t)B * Hl + (top ? (size_t)B * O : 0);
    memcpy(m->send, h, (size_t)B * Hl * sizeof(real));
    if (top) gemm_w_apply(m->send + (size_t)B * Hl, O, h, Hl, B, &m->fwdWo, NULL, 0);
    if (m->g->tp > 1)
        dist_tp_allgather(m->send, m->recv, (int)chunk, m->g);
    else
        memcpy(m->recv, m->send, chunk * sizeof(real));
    scatter_hidden(m, l, t, bt->T, chunk);
    if (top) output_step(m, bt, t, chunk);
}

void model_forward(model* m, const model_batch* bt)
{
    const int B = m->B, GH = m->cell->gates * m->Hl, K0 = m->K[0];
    gemm_w* w[2 * MODEL_MAX_LAYERS + 2] = {&m->fwdWx0, &m->fwdWo};
    int n = 2;
    for (int l = 0; l < m->c.L; l++) {
        if (m->fwdW[l].k > 0) w[n++] = &m->fwdW[l];
        if (m->cell->split_h) w[n++] = &m->fwdWh[l];
    }
    model_pack(m, w, n, bt->T);
    fill_inputs(m, bt);
    fill_initial_state(m);
    // Layer 0's input projection does not depend on the recurrence: one GEMM for the window,
    // straight into the a_t that each step then completes.
    gemm_w_apply(m->A[0], GH, m->X[0], K0, bt->T * B, &m->fwdWx0, m->params + m->b[0], 0);
    for (int t = 0; t < bt->T; t++)
        for (int l = 0; l < m->c.L; l++) layer_step(m, bt, l, t);
}
