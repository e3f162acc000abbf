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

static model_tensor* add_tensor(model* m, const char* name, int rank, int rows, int cols)
{
    model_tensor* t = &m->tensors[m->ntensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rank = rank;
    t->rows = t->lrows = rows;
    t->cols = t->lcols = cols;
    t->ld = cols;
    t->replicated = 1;
    return t;
}

// A slice of a layer's [Wx | Wh | Wf] block: this rank's rows, columns [c0, c0 + cols).
static void add_layer_slice(model* m, int l, const char* what, int c0, int cols)
{
    char name[32];
    snprintf(name, sizeof name, "layer%d/%s", l, what);
    model_tensor* t = add_tensor(m, name, 2, m->c.H, cols);
    t->row0 = m->h0;
    t->lrows = m->Hl;
    t->ld = m->K[l];
    t->replicated = 0;
    t->offset = m->W[l] + (size_t)c0;
}

// Lays out parameters: per layer W (Hl x K) and b (Hl); then Wo (O x Hl), bo (O), E (V x D).
static void layout_params(model* m)
{
    const model_config* c = &m->c;
    size_t off = 0;
    m->ntensors = 0;
    for (int l = 0; l < c->L; l++) {
        int Dl = layer_input(c, l);
        m->Of[l] = has_feedback(c, l) ? c->O : 0;
        m->K[l] = Dl + c->H + m->Of[l];
        m->W[l] = off;
        off += (size_t)m->Hl * m->K[l];
        m->b[l] = off;
        off += (size_t)m->Hl;
        add_layer_slice(m, l, "Wx", 0, Dl);
        add_layer_slice(m, l, "Wh", Dl, c->H);
        if (m->Of[l]) add_layer_slice(m, l, "Wf", Dl + c->H, c->O);
        char name[32];
        snprintf(name, sizeof name, "layer%d/b", l);
        model_tensor* b = add_tensor(m, name, 1, c->H, 1);
        b->row0 = m->h0;
        b->lrows = m->Hl;
        b->replicated = 0;
        b->offset = m->b[l];
    }
    m->Wo = off;
    off += (size_t)c->O * m->Hl;
    model_tensor* wo = add_tensor(m, "head/Wo", 2, c->O, c->H);
    wo->col0 = m->h0;
    wo->lcols = m->Hl;
    wo->ld = m->Hl;
    wo->replicated = 0;
    wo->offset = m->Wo;
    m->bo = off;
    off += (size_t)c->O;
    add_tensor(m, "head/bo", 1, c->O, 1)->offset = m->bo;
    m->E = off;
    if (c->V > 0) {
        off += (size_t)c->V * c->D;
        add_tensor(m, "embed", 2, c->V, c->D)->offset = m->E;
    }
    m->nparams = off;
}

void model_layout(model* m, const model_config* c, int tp, int tp_rank)
{
    memset(m, 0, sizeof *m);
    m->c = *c;
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
    const int Hl = m->Hl, O = m->c.O;
    gemm_w* all[2 * MODEL_MAX_LAYERS + 3];
    int n = 0;
    for (int l = 0; l < m->c.L; l++) {
        const real* W = m->params + m->W[l];
        // Layer 0's input projection is batched over the window, so its per-step GEMM starts
        // after the first D columns.
        const int skip = l == 0 ? m->c.D : 0;
        gemm_w_set(&m->fwdW[l], W + skip, m->K[l], m->K[l] - skip, Hl, 1);
        gemm_w_set(&m->bwdW[l], W, m->K[l], Hl, m->K[l], 0);
        all[n++] = &m->fwdW[l];
        all[n++] = &m->bwdW[l];
    }
    gemm_w_set(&m->fwdWx0, m->params + m->W[0], m->K[0], m->c.D, Hl, 1);
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
    size_t off = 0;
    real** bufs[] = {&m->params, &m->grads, &m->m, &m->v};
    for (int i = 0; i < 4; i++, off += np)
        if (seg) *bufs[i] = seg + off;
    for (int l = 0; l < m->c.L; l++) {
        const size_t sizes[5] = {TB * m->K[l], TB * m->Hl, TB * m->Hl, B * m->K[l], B * m->K[l]};
        real** at[5] = {&m->X[l], &m->HB[l], &m->dA[l], &m->dX[0][l], &m->dX[1][l]};
        for (int i = 0; i < 5; i++) {
            if (seg) *at[i] = seg + off;
            off += round16(sizes[i]);
        }
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
    size_t work = gemm_atb_work(m->c.O, m->Hl);
    for (int l = 0; l < m->c.L; l++)
        if (gemm_atb_work(m->Hl, m->K[l]) > work) work = gemm_atb_work(m->Hl, m->K[l]);
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
    for (int l = 0; l < c->L; l++) {
        m->hT[l] = alloc_real(B * H, &fail);
        m->h0s[l] = alloc_real(B * H, &fail);
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
    for (int l = 0; l < m->c.L; l++) memset(m->h0s[l], 0, (size_t)m->B * m->c.H * sizeof(real));
    memset(m->f0, 0, (size_t)m->B * m->c.O * sizeof(real));
}

void model_carry_state(model* m)
{
    for (int l = 0; l < m->c.L; l++)
        memcpy(m->h0s[l], m->hT[l], (size_t)m->B * m->c.H * sizeof(real));
    memcpy(m->f0, m->fT, (size_t)m->B * m->c.O * sizeof(real));
}

// Multiply-adds per window, x2: forward a = [u|h|f] W^T and y = h Wo^T; backward twice that
// (input gradient dX = dA W and weight gradient dW = dA^T X). Elementwise work is not counted.
double model_flops(const model* m, int T)
{
    double per_row = 0;
    for (int l = 0; l < m->c.L; l++) per_row += (double)m->Hl * m->K[l];
    per_row += (double)m->c.O * m->Hl;
    return 6.0 * per_row * T * m->B;
}
