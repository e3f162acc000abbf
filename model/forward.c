// Forward pass over one window, time-major: step t runs every layer before step t+1, because
// the top output feeds the bottom layer at the next step.
//
// Per step and layer this rank computes its block of a = [u | h_prev | f_prev] W^T + b (all
// gates of its hidden units), the cell turns it into its block of h (model/cell.h), and one
// allgather over the TP group assembles the full h (a gated cell gathers its gated state q
// first, the same way, for the product that multiplies it). The top layer's
// partial output h_blk Wo_blk^T rides in the same allgather and every rank sums the parts.
//
// Dropout (model/dropout.h) in training: each rank masks the whole rows it writes into the
// layers' inputs (X: h_{t-1} with the layer's recurrent mask, h[l]_t into layer l+1's u with
// that connection's), its block of the head's input, and the gathered q; the cells read h_{t-1}
// unmasked (model_hprev).
#include <string.h>
#include "model/dropout.h"
#include "model/feedback.h"
#include "model/model.h"

// Row t of every layer input, for the steps [s0, s1) of the segment held: u (layer 0 only;
// upper layers get it from the layer below).
static void fill_inputs(model* m, const model_batch* bt, int s0, int s1)
{
    const int B = m->B, D = m->c.D, K = m->K[0];
    const real* E = m->params + m->E;
    for (int t = s0; t < s1; t++)
        for (int b = 0; b < B; b++) {
            real* u = m->X[0] + (model_row(m, t) + b) * K;
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

// Segment j > 0 starts (at s0): the row that its predecessor's last step filled (h_{s0-1},
// f_{s0-1}) moves to the first row and is kept with the state before s0, for backward.
static void next_segment(model* m, int s0)
{
    const int B = m->B, j = s0 / m->keep;
    const size_t sHl = (size_t)m->cell->state * m->Hl;
    for (int l = 0; l < m->c.L; l++) {
        const size_t n = (size_t)B * m->K[l];
        real* ck = m->ckX[l] + (size_t)(j - 1) * n;
        memcpy(ck, m->X[l] + model_row(m, s0) * m->K[l], n * sizeof(real));
        memcpy(m->X[l], ck, n * sizeof(real));
        if (sHl)
            memcpy(m->ckS[l] + (size_t)(j - 1) * B * sHl, m->S[l] + model_row(m, s0 - 1) * sHl,
                   (size_t)B * sHl * sizeof(real));
    }
    m->seg0 = s0;
}

// The segment's first row of X takes the recurrent mask on its h columns: they come in
// unmasked (the carried state, the row the last step of the previous segment left, a stored
// start), as the cells at its first step read them.
static void mask_first_row(model* m, const model_batch* bt)
{
    for (int l = 0; l < m->c.L; l++)
        dropout_apply(bt, DROP_RECURRENT, l, 0, m->X[l] + m->hc[l], m->K[l], 0, m->c.H, m->B);
}

// The products of layer l at step t from the full input x_t = [u | h_prev | f_prev]: a = x_t W^T + b,
// where layer 0's a already holds the input projection done for all steps at once; or, for a
// split_h cell (x_t = [u | f_prev | h_prev]), a = [u | f_prev] [Wx | Wf]^T + b and
// ah = h_prev Wh^T (+ bh) of the gates before the gated ones (all of them, gated = 0).
static void products(model* m, int l, int t)
{
    const int GH = m->cell->gates * m->Hl, K = m->K[l];
    real* a = m->A[l] + model_row(m, t) * GH;
    const real* x = m->X[l] + model_row(m, t) * K;
    if (l > 0)
        model_apply(m, a, GH, x, K, &m->fwdW[l], m->params + m->b[l], 0);
    else if (m->fwdW[0].k > 0)
        model_apply(m, a, GH, x + m->c.D, K, &m->fwdW[0], NULL, 1);
    if (m->cell->split_h)
        model_apply(m, m->AH[l] + model_row(m, t) * GH, GH, x + m->hc[l], K, &m->fwdWh[l],
                    m->cell->bias_h ? m->params + m->bh[l] : NULL, 0);
}

// A gated cell's first part of the step: its block of q_t, gathered over the TP group into Q
// (the gated gates' Wh columns span all H units, as for h), then those gates' ah = q_t Wh^T.
static void gated_product(model* m, const model_batch* bt, int l, int t)
{
    const int B = m->B, H = m->c.H, Hl = m->Hl, GH = m->cell->gates * Hl;
    const int hHl = GH - m->cell->gated * Hl;
    const size_t r = model_row(m, t);
    real *a = m->A[l] + r * GH, *ah = m->AH[l] + r * GH, *q = m->Q[l] + r * H;
    int ldh;
    const real* hprev = model_hprev(m, bt, l, t, &ldh);
    m->cell->gated_forward(m->send, a, ah, hprev, ldh, B, Hl);
    if (m->g->tp > 1)
        dist_tp_allgather(m->send, m->recv, B * Hl, m->g);
    else
        memcpy(m->recv, m->send, (size_t)B * Hl * sizeof(real));
    for (int p = 0; p < m->g->tp; p++)
        for (int b = 0; b < B; b++)
            memcpy(q + (size_t)b * H + p * Hl, m->recv + ((size_t)p * B + b) * Hl,
                   (size_t)Hl * sizeof(real));
    dropout_apply(bt, DROP_RECURRENT, l, 0, q, H, 0, H, B);
    model_apply(m, ah + hHl, GH, q, H, &m->fwdWq[l],
                m->cell->bias_h ? m->params + m->bh[l] + hHl : NULL, 0);
}

// The cell's step over this rank's block: h_t (into HB) and its state from the products.
static void cell_step(model* m, const model_batch* bt, int l, int t)
{
    const int B = m->B, Hl = m->Hl, GH = m->cell->gates * Hl;
    const size_t sHl = (size_t)m->cell->state * Hl, r = model_row(m, t);
    int ldh;
    const real* hprev = model_hprev(m, bt, l, t, &ldh);
    real* s = sHl ? m->S[l] + r * sHl : NULL;
    real* ah = m->cell->split_h ? m->AH[l] + r * GH : NULL;
    m->cell->forward(m->HB[l] + r * Hl, s, m->A[l] + r * GH, ah, hprev, ldh, model_state_before(m, l, t),
                     B, Hl, m->c.act);
    if (sHl && t + 1 == bt->T) memcpy(m->sT[l], s, (size_t)B * sHl * sizeof(real));
}

// Scatters the gathered blocks of h into the places that read it: the next step of this layer
// (or the carried state after the last step) and this step of the layer above, each row masked
// there by its dropout (a row that starts the next segment is masked when it does).
static void scatter_hidden(model* m, const model_batch* bt, int l, int t, size_t chunk)
{
    const int B = m->B, H = m->c.H, Hl = m->Hl, K = m->K[l], T = bt->T;
    for (int r = 0; r < m->g->tp; r++)
        for (int b = 0; b < B; b++) {
            const real* src = m->recv + r * chunk + (size_t)b * Hl;
            real* same = t + 1 < T ? m->X[l] + (model_row(m, t + 1) + b) * K + m->hc[l]
                                   : m->hT[l] + (size_t)b * H;
            memcpy(same + r * Hl, src, (size_t)Hl * sizeof(real));
            if (l + 1 < m->c.L) {
                real* up = m->X[l + 1] + (model_row(m, t) + b) * m->K[l + 1];
                memcpy(up + r * Hl, src, (size_t)Hl * sizeof(real));
            }
        }
    if (t + 1 < T && t + 1 < m->seg0 + m->keep)
        dropout_apply(bt, DROP_RECURRENT, l, 0, m->X[l] + model_row(m, t + 1) * K + m->hc[l], K, 0,
                      H, B);
    if (l + 1 < m->c.L)
        dropout_apply(bt, DROP_LAYER, l + 1, t, m->X[l + 1] + model_row(m, t) * m->K[l + 1],
                      m->K[l + 1], 0, H, B);
}

// The head's input: this rank's block of the top layer's h_t, or with dropout a masked copy
// (in dh, which only backward uses otherwise).
static const real* head_input(model* m, const model_batch* bt, int t, const real* h)
{
    if (!(bt->dropout > 0)) return h;
    memcpy(m->dh, h, (size_t)m->B * m->Hl * sizeof(real));
    dropout_apply(bt, DROP_LAYER, m->c.L, t, m->dh, m->Hl, m->h0, m->Hl, m->B);
    return m->dh;
}

// f_t goes to every layer with feedback at step t+1.
static void feed(model* m, int t, const real* f)
{
    const int B = m->B, O = m->c.O;
    for (int l = 0; l < m->c.L; l++) {
        if (!m->Of[l]) continue;
        for (int b = 0; b < B; b++) {
            real* dst = m->X[l] + (model_row(m, t + 1) + b) * m->K[l] + m->fc[l];
            memcpy(dst, f + (size_t)b * O, (size_t)O * sizeof(real));
        }
    }
}

// y_t = sum over TP ranks of the partial outputs + bo; then f_t goes to the next step's inputs
// (or to the carried state).
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
    if (t + 1 >= bt->T)
        memcpy(m->fT, f, (size_t)B * O * sizeof(real));
    else
        feed(m, t, f);
}

// One layer's step. A recomputed step (again) gathers only h: its f_t is in F already.
static void layer_step(model* m, const model_batch* bt, int l, int t, int again)
{
    const int B = m->B, Hl = m->Hl, O = m->c.O;
    const int top = l == m->c.L - 1, head = top && !again;
    real* h = m->HB[l] + model_row(m, t) * Hl;
    products(m, l, t);
    if (m->cell->gated) gated_product(m, bt, l, t);
    cell_step(m, bt, l, t);
    size_t chunk = (size_t)B * Hl + (head ? (size_t)B * O : 0);
    memcpy(m->send, h, (size_t)B * Hl * sizeof(real));
    if (head)
        gemm_w_apply(m->send + (size_t)B * Hl, O, head_input(m, bt, t, h), Hl, B, &m->fwdWo, NULL, 0);
    if (m->g->tp > 1)
        dist_tp_allgather(m->send, m->recv, (int)chunk, m->g);
    else
        memcpy(m->recv, m->send, chunk * sizeof(real));
    scatter_hidden(m, bt, l, t, chunk);
    if (head) output_step(m, bt, t, chunk);
    else if (top && t + 1 < bt->T) feed(m, t, m->F + (size_t)t * B * O);
}

// Steps [s0, s1) of the segment held, its first row filled.
static void run_segment(model* m, const model_batch* bt, int s0, int s1, int again)
{
    const int B = m->B, GH = m->cell->gates * m->Hl, K0 = m->K[0];
    fill_inputs(m, bt, s0, s1);
    // Layer 0's input projection does not depend on the recurrence: one GEMM for the segment,
    // straight into the a_t that each step then completes (the kernel sums each row alone, so
    // the rows come out the same whatever the segment).
    gemm_w_apply(m->A[0], GH, m->X[0], K0, (s1 - s0) * B, &m->fwdWx0, m->params + m->b[0], 0);
    for (int t = s0; t < s1; t++)
        for (int l = 0; l < m->c.L; l++) layer_step(m, bt, l, t, again);
}

void model_forward_segment(model* m, const model_batch* bt, int s0, int s1)
{
    m->seg0 = s0;
    if (s0 == 0) {
        fill_initial_state(m);
    } else {
        const int j = s0 / m->keep;
        for (int l = 0; l < m->c.L; l++) {
            const size_t n = (size_t)m->B * m->K[l];
            memcpy(m->X[l], m->ckX[l] + (size_t)(j - 1) * n, n * sizeof(real));
        }
    }
    mask_first_row(m, bt);
    run_segment(m, bt, s0, s1, 1);
}

void model_forward(model* m, const model_batch* bt)
{
    gemm_w* w[3 * MODEL_MAX_LAYERS + 2] = {&m->fwdWx0, &m->fwdWo};
    int n = 2;
    for (int l = 0; l < m->c.L; l++) {
        if (m->fwdW[l].k > 0) w[n++] = &m->fwdW[l];
        if (m->cell->split_h) w[n++] = &m->fwdWh[l];
        if (m->cell->gated) w[n++] = &m->fwdWq[l];
    }
    model_pack(m, w, n, bt->T);
    m->seg0 = 0;
    fill_initial_state(m);
    for (int s0 = 0; s0 < bt->T; s0 += m->keep) {
        if (s0 > 0) next_segment(m, s0);
        mask_first_row(m, bt);
        run_segment(m, bt, s0, s0 + m->keep < bt->T ? s0 + m->keep : bt->T, 0);
    }
}
