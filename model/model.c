// Model layout: the parameter table, its one buffer per kind, and the activation buffers.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/model.h"

static int has_feedback(const model_config* c, int l)
{
    return c->feedback == FB_ALL || (c->feedback == FB_FIRST && l == 0);
}

static int layer_input(const model_config* c, int l)
{
    return l == 0 ? c->D : c->H;
}

static model_tensor* add_tensor(model* m, const char* name, int rank, int rows, int cols,
                                int layer, int part, int init)
{
    model_tensor* t = &m->tensors[m->ntensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rank = rank;
    t->rows = t->lrows = rows;
    t->cols = t->lcols = cols;
    t->ld = cols;
    t->replicated = 1;
    t->layer = layer;
    t->part = part;
    t->init = init;
    return t;
}

// layer{l}/{what}, with the gate's suffix for a cell of several gates ("layer0/Wx_i").
static void gate_tensor_name(char* name, size_t len, const cell_kind* k, int l, const char* what,
                             int gate)
{
    if (k->gate_name)
        snprintf(name, len, "layer%d/%s_%s", l, what, k->gate_name[gate]);
    else
        snprintf(name, len, "layer%d/%s", l, what);
}

// Gate g's slice of layer l's block: this rank's rows of that gate, columns [c0, c0 + cols).
static void add_layer_slice(model* m, int l, int g, int part, int c0, int cols)
{
    static const char* const what[] = {"Wx", "Wh", "Wf"};
    char name[32];
    gate_tensor_name(name, sizeof name, m->cell, l, what[part], g);
    model_tensor* t = add_tensor(m, name, 2, m->c.H, cols, l, part,
                                 part == PART_WH ? CELL_INIT_RECURRENT : CELL_INIT_FANIN);
    t->row0 = m->h0;
    t->lrows = m->Hl;
    t->ld = m->K[l];
    t->replicated = 0;
    t->offset = m->W[l] + (size_t)g * m->Hl * m->K[l] + (size_t)c0;
}

// Gate g's piece of a bias vector of layer l (b or bh) starting at offset off.
static void add_layer_bias(model* m, int l, int g, int part, size_t off)
{
    char name[32];
    gate_tensor_name(name, sizeof name, m->cell, l, part == PART_B ? "b" : "bh", g);
    int init = part == PART_B && m->cell->b_init ? m->cell->b_init[g] : CELL_INIT_ZERO;
    model_tensor* b = add_tensor(m, name, 1, m->c.H, 1, l, part, init);
    b->row0 = m->h0;
    b->lrows = m->Hl;
    b->replicated = 0;
    b->offset = off + (size_t)g * m->Hl;
}

// Lays out parameters: per layer W (G Hl x K, gate by gate), b (G Hl) and, for a cell with a
// separate recurrent product, bh (G Hl); then Wo (O x Hl), bo (O), E (V x D).
static void layout_params(model* m)
{
    const model_config* c = &m->c;
    const int G = m->cell->gates;
    size_t off = 0;
    m->ntensors = 0;
    for (int l = 0; l < c->L; l++) {
        int Dl = layer_input(c, l);
        m->Of[l] = has_feedback(c, l) ? c->O : 0;
        m->K[l] = Dl + c->H + m->Of[l];
        m->hc[l] = m->cell->split_h ? Dl + m->Of[l] : Dl;
        m->fc[l] = m->cell->split_h ? Dl : Dl + c->H;
        m->W[l] = off;
        off += (size_t)G * m->Hl * m->K[l];
        m->b[l] = off;
        off += (size_t)G * m->Hl;
        m->bh[l] = off;
        if (m->cell->split_h) off += (size_t)G * m->Hl;
        for (int g = 0; g < G; g++) {
            add_layer_slice(m, l, g, PART_WX, 0, Dl);
            add_layer_slice(m, l, g, PART_WH, m->hc[l], c->H);
            if (m->Of[l]) add_layer_slice(m, l, g, PART_WF, m->fc[l], c->O);
        }
        for (int g = 0; g < G; g++) add_layer_bias(m, l, g, PART_B, m->b[l]);
        for (int g = 0; m->cell->split_h && g < G; g++) add_layer_bias(m, l, g, PART_BH, m->bh[l]);
    }
    m->Wo = off;
    off += (size_t)c->O * m->Hl;
    model_tensor* wo = add_tensor(m, "head/Wo", 2, c->O, c->H, -1, PART_WO, CELL_INIT_FANIN);
    wo->col0 = m->h0;
    wo->lcols = m->Hl;
    wo->ld = m->Hl;
    wo->replicated = 0;
    wo->offset = m->Wo;
    m->bo = off;
    off += (size_t)c->O;
    add_tensor(m, "head/bo", 1, c->O, 1, -1, PART_BO, CELL_INIT_ZERO)->offset = m->bo;
    m->E = off;
    if (c->V > 0) {
        off += (size_t)c->V * c->D;
        add_tensor(m, "embed", 2, c->V, c->D, -1, PART_EMBED, CELL_INIT_UNIT)->offset = m->E;
    }
    m->nparams = off;
}

void model_layout(model* m, const model_config* c, int tp, int tp_rank)
{
    memset(m, 0, sizeof *m);
    m->c = *c;
    m->cell = cell_of(c->cell);
    m->Hl = c->H / tp;
    m->h0 = tp_rank * m->Hl;
    layout_params(m);
}

static real* alloc_real(size_t n, int* fail)
{
    real* p = calloc(n ? n : 1, sizeof(real));
    if (!p) *fail = 1;
    return p;
}

// Rounded to 16 elements: keeps what follows 64-byte aligned.
static size_t round16(size_t n)
{
    return (n + 15) / 16 * 16;
}

// Describes the per-step GEMMs' weights (model/gemm.h) and, with packs, gives their packed
// copies consecutive pieces of it. Returns the elements all the packed copies take.
static size_t describe_weights(model* m, real* packs)
{
    const int Hl = m->Hl, O = m->c.O, GH = m->cell->gates * Hl, H = m->c.H;
    gemm_w* all[4 * MODEL_MAX_LAYERS + 3];
    int n = 0;
    for (int l = 0; l < m->c.L; l++) {
        const real* W = m->params + m->W[l];
        const int K = m->K[l], hc = m->hc[l];
        // Layer 0's input projection is batched over the window, so its per-step GEMM starts
        // after the first D columns. A split_h cell's [u | f] columns end where h starts: ah =
        // h Wh^T stays out of a = [u | f] [Wx | Wf]^T.
        const int skip = l == 0 ? m->c.D : 0, end = m->cell->split_h ? hc : K;
        gemm_w_set(&m->fwdW[l], W + skip, K, end - skip, GH, 1);
        gemm_w_set(&m->bwdW[l], W, K, GH, end, 0);
        if (end > skip) all[n++] = &m->fwdW[l];
        all[n++] = &m->bwdW[l];
        if (!m->cell->split_h) continue;
        gemm_w_set(&m->fwdWh[l], W + hc, K, H, GH, 1);
        gemm_w_set(&m->bwdWh[l], W + hc, K, GH, H, 0);
        all[n++] = &m->fwdWh[l];
        all[n++] = &m->bwdWh[l];
    }
    gemm_w_set(&m->fwdWx0, m->params + m->W[0], m->K[0], m->c.D, GH, 1);
    gemm_w_set(&m->fwdWo, m->params + m->Wo, Hl, Hl, O, 1);
    gemm_w_set(&m->bwdWo, m->params + m->Wo, Hl, O, Hl, 0);
    all[n++] = &m->fwdWx0;
    all[n++] = &m->fwdWo;
    all[n++] = &m->bwdWo;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (packs) all[i]->packed = packs + total;
        total += round16(gemm_w_size(all[i]->k, all[i]->n));
    }
    return total;
}

// Lays out this rank's segment of the memory shared with the node's DP group (model/share.c
// reads the others'): parameters, gradients, optimiser moments, and the operands of the
// per-step products that the group computes together. With seg NULL, only counts.
static size_t lay_segment(model* m, real* seg)
{
    const size_t TB = (size_t)m->T * m->B, B = (size_t)m->B, np = round16(m->nparams);
    const size_t GH = (size_t)m->cell->gates * m->Hl, own_a = m->cell->gates > 1 || m->cell->split_h;
    const size_t split = (size_t)m->cell->split_h;
    // The moments hold only this rank's sub-pieces (model/share.c), the same room on every member.
    const size_t nm = model_optim_bytes(m, m->g->dpn, m->g->dpx) / (2 * sizeof(real));
    const size_t bufsz[4] = {np, np, nm, nm};
    size_t off = 0;
    real** bufs[] = {&m->params, &m->grads, &m->m, &m->v};
    for (int i = 0; i < 4; off += bufsz[i++])
        if (seg) *bufs[i] = seg + off;
    for (int l = 0; l < m->c.L; l++) {
        const size_t sizes[8] = {TB * m->K[l], TB * m->Hl, TB * GH * own_a, TB * GH * split,
                                 TB * GH, TB * GH * split, B * m->K[l], B * m->K[l]};
        real** at[8] = {&m->X[l], &m->HB[l], &m->A[l], &m->AH[l], &m->dA[l], &m->dAH[l],
                        &m->dX[0][l], &m->dX[1][l]};
        for (int i = 0; i < 8; i++) {
            if (seg) *at[i] = sizes[i] ? seg + off : NULL;
            off += round16(sizes[i]);
        }
        if (seg && !own_a) m->A[l] = m->HB[l];
    }
    return off;
}

static void alloc_shared(model* m)
{
    const size_t seg = lay_segment(m, NULL), packs = describe_weights(m, NULL);
    dist_shm_alloc(&m->shm, seg * sizeof(real), packs * sizeof(real), m->g);
    real* mine = (real*)m->shm.seg[m->g->dpn_rank];
    // Zero moments to start from; touching the pages here also places them near their owner.
    memset(mine, 0, seg * sizeof(real));
    if (m->g->dpn_rank == 0) memset(m->shm.shared, 0, packs * sizeof(real));
    lay_segment(m, mine);
    describe_weights(m, (real*)m->shm.shared);
}

static void alloc_work(model* m, int* fail)
{
    const int GH = m->cell->gates * m->Hl;
    size_t work = gemm_atb_work(m->c.O, m->Hl);
    for (int l = 0; l < m->c.L; l++)
        if (gemm_atb_work(GH, m->K[l]) > work) work = gemm_atb_work(GH, m->K[l]);
    if (work == 0) return;
    m->atb_work = aligned_alloc(64, round16(work) * sizeof(real));
    if (!m->atb_work) *fail = 1;
}

int model_init(model* m, const model_config* c, dist_grid* g, int T, int Bglobal, char* err,
               size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->c = *c;
    m->g = g;
    if (c->L < 1 || c->L > MODEL_MAX_LAYERS) {
        snprintf(err, errlen, "layers = %d: must be 1..%d", c->L, MODEL_MAX_LAYERS);
        return -1;
    }
    if (c->H % g->tp != 0) {
        snprintf(err, errlen, "hidden = %d is not divisible by tp = %d", c->H, g->tp);
        return -1;
    }
    if (Bglobal % g->dp != 0) {
        snprintf(err, errlen, "batch = %d is not divisible by dp = %d (world %d / tp %d)",
                 Bglobal, g->dp, g->world_size, g->tp);
        return -1;
    }
    model_layout(m, c, g->tp, g->tp_rank);
    m->g = g;
    m->T = T;
    m->Bglobal = Bglobal;
    m->B = Bglobal / g->dp;

    int fail = 0;
    size_t TB = (size_t)T * m->B, B = (size_t)m->B, H = (size_t)c->H, O = (size_t)c->O;
    alloc_shared(m);
    const size_t sHl = (size_t)m->cell->state * m->Hl, cHl = (size_t)m->cell->carry * m->Hl;
    for (int l = 0; l < c->L; l++) {
        m->hT[l] = alloc_real(B * H, &fail);
        m->h0s[l] = alloc_real(B * H, &fail);
        if (sHl) {
            m->S[l] = alloc_real(TB * sHl, &fail);
            m->s0s[l] = alloc_real(B * sHl, &fail);
            m->sT[l] = alloc_real(B * sHl, &fail);
        }
        if (cHl) m->cg[l] = alloc_real(B * cHl, &fail);
    }
    m->Y = alloc_real(TB * O, &fail);
    m->F = alloc_real(TB * O, &fail);
    m->dY = alloc_real(TB * O, &fail);
    m->fT = alloc_real(B * O, &fail);
    m->f0 = alloc_real(B * O, &fail);
    m->send = alloc_real(B * (m->Hl + O), &fail);
    m->recv = alloc_real((size_t)g->tp * B * (m->Hl + O), &fail);
    m->dh = alloc_real(B * m->Hl, &fail);
    alloc_work(m, &fail);
    if (fail) dist_fail("out of memory for a model of %zu parameters per rank", m->nparams);
    return 0;
}

void model_free(model* m)
{
    dist_shm_free(&m->shm);
    for (int l = 0; l < MODEL_MAX_LAYERS; l++) {
        free(m->hT[l]);
        free(m->h0s[l]);
        free(m->S[l]);
        free(m->s0s[l]);
        free(m->sT[l]);
        free(m->cg[l]);
    }
    free(m->Y);
    free(m->F);
    free(m->dY);
    free(m->fT);
    free(m->f0);
    free(m->send);
    free(m->recv);
    free(m->dh);
    free(m->atb_work);
    memset(m, 0, sizeof *m);
}

void model_zero_grad(model* m)
{
    memset(m->grads, 0, m->nparams * sizeof(real));
}

void model_reset_state(model* m)
{
    const size_t sHl = (size_t)m->cell->state * m->Hl;
    for (int l = 0; l < m->c.L; l++) {
        memset(m->h0s[l], 0, (size_t)m->B * m->c.H * sizeof(real));
        if (sHl) memset(m->s0s[l], 0, (size_t)m->B * sHl * sizeof(real));
    }
    memset(m->f0, 0, (size_t)m->B * m->c.O * sizeof(real));
}

void model_carry_state(model* m)
{
    const size_t sHl = (size_t)m->cell->state * m->Hl;
    for (int l = 0; l < m->c.L; l++) {
        memcpy(m->h0s[l], m->hT[l], (size_t)m->B * m->c.H * sizeof(real));
        if (sHl) memcpy(m->s0s[l], m->sT[l], (size_t)m->B * sHl * sizeof(real));
    }
    memcpy(m->f0, m->fT, (size_t)m->B * m->c.O * sizeof(real));
}

// Multiply-adds per window, x2: forward a = [u|h|f] W^T and y = h Wo^T; backward twice that
// (input gradient dX = dA W and weight gradient dW = dA^T X). Elementwise work is not counted.
double model_flops(const model* m, int T)
{
    double per_row = 0;
    for (int l = 0; l < m->c.L; l++) per_row += (double)m->cell->gates * m->Hl * m->K[l];
    per_row += (double)m->c.O * m->Hl;
    return 6.0 * per_row * T * m->B;
}
