// Model layout: the parameter table, its one buffer per kind, and the activation buffers.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/kernel.h"
#include "model/model.h"
#include "model/precision.h"

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

// Lays out parameters: per layer W (G Hl x K, gate by gate), b (G Hl) and, for a cell whose
// recurrent product has its own bias, bh (G Hl); then Wo (O x Hl), bo (O), E (V x D).
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
        if (m->cell->bias_h) off += (size_t)G * m->Hl;
        for (int g = 0; g < G; g++) {
            add_layer_slice(m, l, g, PART_WX, 0, Dl);
            add_layer_slice(m, l, g, PART_WH, m->hc[l], c->H);
            if (m->Of[l]) add_layer_slice(m, l, g, PART_WF, m->fc[l], c->O);
        }
        for (int g = 0; g < G; g++) add_layer_bias(m, l, g, PART_B, m->b[l]);
        for (int g = 0; m->cell->bias_h && g < G; g++) add_layer_bias(m, l, g, PART_BH, m->bh[l]);
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

// Zeroed; NULL for none.
static real* alloc_real(size_t n, int* fail)
{
    if (!n) return NULL;
    real* p = calloc(n, sizeof(real));
    if (!p) *fail = 1;
    return p;
}

// Rounded to 16 elements: keeps what follows 64-byte aligned.
static size_t round16(size_t n)
{
    return (n + 15) / 16 * 16;
}

// Elements of the optimiser's moments in this rank's segment: m and v, each of this rank's
// sub-pieces only (ZeRO-1 over the dpn x dpx replicas, model/share.c).
static size_t moment_elems(const model* m, int dpn, int dpx)
{
    return model_optim_bytes(m, dpn, dpx) / sizeof(real);
}

// Gives the packed copies in w[0 .. n) consecutive pieces of packs (with packs NULL, none),
// the first n16 of them bf16 (half the bytes). Returns the elements they take.
static size_t place_packs(gemm_w* const* w, int n, int n16, real* packs)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (packs && i < n16) w[i]->packed16 = (uint16_t*)(packs + total);
        else if (packs) w[i]->packed = packs + total;
        total += round16(i < n16 ? precision_panel_elems(w[i]->k, w[i]->n)
                                 : gemm_w_size(w[i]->k, w[i]->n));
    }
    return total;
}

// The weight-gradient scratch of one rank (gemm_atb), for the largest of its products.
static size_t atb_elems(const model* m)
{
    const int GH = m->cell->gates * m->Hl;
    const int rows = m->chunk * m->B; // the most one weight-gradient product sums
    size_t work = gemm_atb_work(m->c.O, m->Hl, rows);
    for (int l = 0; l < m->c.L; l++)
        if (gemm_atb_work(GH, m->K[l], rows) > work) work = gemm_atb_work(GH, m->K[l], rows);
    return round16(work);
}

// Describes the per-step GEMMs' weights (model/gemm.h) and, with area, places their packed
// copies and the weight-gradient scratch of member dpn_rank of dpn in it. Forward packs the fwd
// panels at its start and backward the bwd panels at its start; the weight gradients are formed
// during backward's time loop (per chunk of steps), so the scratches lie past the bwd panels.
// Without recomputation (keep = T) the fwd panels are not needed once backward starts and the
// bwd panels go over them; with it, backward runs forward segments again, so the two are apart.
// Returns the elements of the area.
static size_t describe_weights(model* m, real* area, int dpn, int dpn_rank)
{
    const int Hl = m->Hl, O = m->c.O, GH = m->cell->gates * Hl, H = m->c.H;
    // The gated gates' rows (a gated cell): the last qHl of the G Hl.
    const int qHl = m->cell->gated * Hl, hHl = GH - qHl;
    gemm_w *fwd[3 * MODEL_MAX_LAYERS + 2], *bwd[3 * MODEL_MAX_LAYERS + 1];
    int nf = 0, nb = 0;
    for (int l = 0; l < m->c.L; l++) {
        const real* W = m->params + m->W[l];
        const int K = m->K[l], hc = m->hc[l];
        // Layer 0's input projection is batched over the window, so its per-step GEMM starts
        // after the first D columns. A split_h cell's [u | f] columns end where h starts: ah =
        // h Wh^T stays out of a = [u | f] [Wx | Wf]^T.
        const int skip = l == 0 ? m->c.D : 0, end = m->cell->split_h ? hc : K;
        gemm_w_set(&m->fwdW[l], W + skip, K, end - skip, GH, 1);
        gemm_w_set(&m->bwdW[l], W, K, GH, end, 0);
        if (end > skip) fwd[nf++] = &m->fwdW[l];
        bwd[nb++] = &m->bwdW[l];
        if (!m->cell->split_h) continue;
        gemm_w_set(&m->fwdWh[l], W + hc, K, H, hHl, 1);
        gemm_w_set(&m->bwdWh[l], W + hc, K, hHl, H, 0);
        fwd[nf++] = &m->fwdWh[l];
        bwd[nb++] = &m->bwdWh[l];
        if (!qHl) continue;
        gemm_w_set(&m->fwdWq[l], W + (size_t)hHl * K + hc, K, H, qHl, 1);
        gemm_w_set(&m->bwdWq[l], W + (size_t)hHl * K + hc, K, qHl, H, 0);
        fwd[nf++] = &m->fwdWq[l];
        bwd[nb++] = &m->bwdWq[l];
    }
    gemm_w_set(&m->fwdWx0, m->params + m->W[0], m->K[0], m->c.D, GH, 1);
    gemm_w_set(&m->fwdWo, m->params + m->Wo, Hl, Hl, O, 1);
    gemm_w_set(&m->bwdWo, m->params + m->Wo, Hl, O, Hl, 0);
    fwd[nf++] = &m->fwdWx0;
    fwd[nf++] = &m->fwdWo;
    bwd[nb++] = &m->bwdWo;
    // The per-step recurrent products are all but the last two fwd (the batched input projection,
    // the head) and the last bwd (the head): docs/model.md, Precision.
    const int bf16 = m->c.precision == PRECISION_BF16;
    const size_t f = place_packs(fwd, nf, bf16 ? nf - 2 : 0, area), b0 = m->keep < m->T ? f : 0;
    const size_t b = place_packs(bwd, nb, bf16 ? nb - 1 : 0, area ? area + b0 : NULL);
    const size_t work = atb_elems(m);
    if (area) m->atb_work = work ? area + b0 + b + (size_t)dpn_rank * work : NULL;
    const size_t total = b0 + b + (size_t)dpn * work;
    return total > f ? total : f;
}

// Each layer's activation and state buffers (model.h): those before LB_SHARED are operands of
// the products the node's DP group computes together, so they lie in the shared segment.
enum { LB_X, LB_HB, LB_A, LB_AH, LB_DA, LB_DAH, LB_DX0, LB_DX1, LB_Q, LB_DQ, LB_SHARED,
       LB_S = LB_SHARED, LB_S0, LB_ST, LB_CG, LB_HT, LB_H0, LB_CKX, LB_CKS, LB_XS, LB_QS, LB_N };
// The window's: outputs, fed-back signal, their gradient, and the per-step scratch.
enum { WB_Y, WB_F, WB_DY, WB_FT, WB_F0, WB_SEND, WB_RECV, WB_DH, WB_HS, WB_N };

// Steps per stored segment: keep, or the whole window for 0 and anything past it.
static int segment_steps(int keep, int T)
{
    return keep <= 0 || keep > T ? T : keep;
}

int model_grad_chunk(int B, int T)
{
    // About 512 rows per product: each call reads and writes the whole dW once, which at fewer
    // rows costs more than the multiply-adds save in cache (README, Performance).
    const int c = 512 / B;
    return c < 1 ? 1 : c > T ? T : c;
}

// Micro-batches per step of config c (accum_steps; 0 stands for 1).
static int accum_of(const model_config* c)
{
    return c->accum > 1 ? c->accum : 1;
}

// Elements of every buffer, for the model config c at tp with B rows per pass, windows of T
// steps, segments of keep and chunks of `chunk` steps (model.h); the carried state for the
// replica's c->accum micro-batches of B.
static void activation_sizes(const model_config* c, int tp, int B, int T, int keep, int chunk,
                             size_t lay[][LB_N], size_t win[WB_N])
{
    const cell_kind* k = cell_of(c->cell);
    keep = segment_steps(keep, T);
    const size_t Hl = (size_t)(c->H / tp), H = (size_t)c->H, O = (size_t)c->O, b = (size_t)B;
    const size_t rb = b * (size_t)accum_of(c);
    const size_t GH = (size_t)k->gates * Hl, own_a = k->gates > 1 || k->split_h;
    const size_t split = (size_t)k->split_h, sHl = (size_t)k->state * Hl, gq = k->gated > 0;
    const size_t seg = (size_t)keep * b, xrows = (keep < T ? keep + 1 : T) * b;
    const size_t cb = (size_t)chunk * b, starts = (size_t)((T + keep - 1) / keep - 1) * b;
    for (int l = 0; l < c->L; l++) {
        const size_t K = (size_t)(layer_input(c, l) + c->H + (has_feedback(c, l) ? c->O : 0));
        const size_t n[LB_N] = {
            [LB_X] = xrows * K, [LB_HB] = seg * Hl, [LB_A] = seg * GH * own_a,
            [LB_AH] = seg * GH * split, [LB_DA] = cb * GH, [LB_DAH] = cb * GH * split,
            [LB_DX0] = b * K, [LB_DX1] = b * K, [LB_S] = seg * sHl, [LB_S0] = rb * sHl,
            [LB_ST] = rb * sHl, [LB_CG] = b * k->carry * Hl, [LB_HT] = rb * H, [LB_H0] = rb * H,
            [LB_CKX] = starts * K, [LB_CKS] = starts * sHl, [LB_XS] = cb * K,
            [LB_Q] = seg * H * gq, [LB_DQ] = b * H * gq, [LB_QS] = cb * H * gq};
        memcpy(lay[l], n, sizeof n);
    }
    const size_t w[WB_N] = {
        [WB_Y] = (size_t)T * b * O, [WB_F] = (size_t)T * b * O, [WB_DY] = (size_t)T * b * O,
        [WB_FT] = rb * O, [WB_F0] = rb * O, [WB_SEND] = b * (Hl + O),
        [WB_RECV] = (size_t)tp * b * (Hl + O), [WB_DH] = b * Hl, [WB_HS] = cb * Hl};
    memcpy(win, w, sizeof w);
}

size_t model_activation_bytes(const model_config* c, int tp, int B, int T, int keep)
{
    size_t lay[MODEL_MAX_LAYERS][LB_N], win[WB_N], n = 0;
    activation_sizes(c, tp, B, T, keep, model_grad_chunk(B, T), lay, win);
    for (int l = 0; l < c->L; l++)
        for (int i = 0; i < LB_N; i++) n += i < LB_SHARED ? round16(lay[l][i]) : lay[l][i];
    for (int i = 0; i < WB_N; i++) n += win[i];
    return n * sizeof(real);
}

// precision = bf16: the rounded operand of the widest per-step product (k: the layers' inputs
// K, or G Hl for dX = dA W), for the local batch; none at fp32.
static size_t operand16_elems(const model* m)
{
    if (m->c.precision != PRECISION_BF16) return 0;
    int k = m->cell->gates * m->Hl;
    for (int l = 0; l < m->c.L; l++)
        if (m->K[l] > k) k = m->K[l];
    return precision_operand_elems(m->B, k);
}

// Lays out this rank's segment of the memory shared with the node's DP group (model/share.c
// reads the others'): parameters, gradients, optimiser moments, and the operands of the
// per-step products that the group computes together, sized by lay (activation_sizes); the
// moments as ZeRO-1 over dpn x dpx splits them. With seg NULL, only counts; *acts: the elements
// of the activations among them.
static size_t lay_segment(model* m, real* seg, int dpn, int dpx, size_t lay[][LB_N], size_t* acts)
{
    const size_t np = round16(m->nparams), nm = moment_elems(m, dpn, dpx) / 2;
    if (seg) m->params = seg, m->grads = seg + np, m->m = seg + 2 * np, m->v = seg + 2 * np + nm;
    const size_t start = 2 * np + 2 * nm;
    size_t off = start;
    for (int l = 0; l < m->c.L; l++) {
        real** at[LB_SHARED] = {&m->X[l],     &m->HB[l],    &m->A[l], &m->AH[l], &m->dA[l],
                                &m->dAH[l],   &m->dX[0][l], &m->dX[1][l], &m->Q[l], &m->dQ[l]};
        for (int i = 0; i < LB_SHARED; i++) {
            if (seg) *at[i] = lay[l][i] ? seg + off : NULL;
            off += round16(lay[l][i]);
        }
        if (seg && !lay[l][LB_A]) m->A[l] = m->HB[l];
    }
    const size_t op16 = round16(operand16_elems(m));
    if (seg) m->op16 = op16 ? (uint16_t*)(seg + off) : NULL;
    off += op16;
    *acts = off - start;
    return off;
}

// Whether a buffer outside the shared segment (LB_SHARED .. LB_N) holds activations of the
// window (the state of its steps, the segments' starting points, a chunk's operands) rather
// than carried state or a per-step buffer.
static int own_activation(int i)
{
    return i == LB_S || i == LB_CKX || i == LB_CKS || i == LB_XS || i == LB_QS;
}

void model_size(model* m, const model_config* c, int tp, int T, int B, int keep)
{
    model_layout(m, c, tp, 0);
    m->T = T;
    m->accum = accum_of(c);
    m->B = B / m->accum;
    m->keep = segment_steps(keep, T);
    m->chunk = model_grad_chunk(m->B, T);
}

void model_memory(const model* live, int dpn, int dpx, model_bytes* mem)
{
    // A copy: describing the weights again would clear a live model's packed storage.
    model copy = *live, *m = &copy;
    size_t lay[MODEL_MAX_LAYERS][LB_N], win[WB_N], acts, own_acts = 0, own_rest = 0;
    activation_sizes(&m->c, m->c.H / m->Hl, m->B, m->T, m->keep, m->chunk, lay, win);
    const size_t seg = lay_segment(m, NULL, dpn, dpx, lay, &acts), np = round16(m->nparams);
    for (int l = 0; l < m->c.L; l++)
        for (int i = LB_SHARED; i < LB_N; i++) *(own_activation(i) ? &own_acts : &own_rest) += lay[l][i];
    for (int i = 0; i < WB_N; i++)
        *(i == WB_Y || i == WB_F || i == WB_DY || i == WB_HS ? &own_acts : &own_rest) += win[i];
    *mem = (model_bytes){.params = np * sizeof(real), .grads = np * sizeof(real),
                         .moments = moment_elems(m, dpn, dpx) * sizeof(real),
                         .activations = (acts + own_acts) * sizeof(real),
                         .buffers = own_rest * sizeof(real),
                         .segment = seg * sizeof(real),
                         .shared = describe_weights(m, NULL, dpn, 0) * sizeof(real)};
}

static void alloc_shared(model* m, size_t lay[][LB_N])
{
    size_t acts;
    const dist_grid* g = m->g;
    const size_t seg = lay_segment(m, NULL, g->dpn, g->dpx, lay, &acts);
    const size_t area = describe_weights(m, NULL, g->dpn, 0);
    m->rep = dist_replicas_alloc(seg * sizeof(real), area * sizeof(real), m->g);
    real* mine = (real*)dist_replicas_segment(m->rep, g->dpn_rank);
    real* shared = (real*)dist_replicas_shared(m->rep);
    // Zero moments to start from; touching the pages here also places them near their owner.
    // Fresh anonymous pages are zero already, and stay uncommitted until used.
    if (!dist_replicas_zeroed(m->rep)) {
        memset(mine, 0, seg * sizeof(real));
        if (g->dpn_rank == 0) memset(shared, 0, area * sizeof(real));
    }
    lay_segment(m, mine, g->dpn, g->dpx, lay, &acts);
    describe_weights(m, shared, g->dpn, g->dpn_rank);
}

int model_init(model* m, const model_config* c, dist_grid* g, int T, int Bglobal, char* err,
               size_t errlen)
{
    return model_init_keep(m, c, g, T, Bglobal, 0, 0, err, errlen);
}

int model_init_keep(model* m, const model_config* c, dist_grid* g, int T, int Bglobal, int keep,
                    int chunk, char* err, size_t errlen)
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
    const char* lack = c->precision == PRECISION_BF16 ? kernel_bf16_missing() : NULL;
    if (lack) {
        snprintf(err, errlen, "precision = bf16: not available here, it needs %s", lack);
        return -1;
    }
    if (Bglobal % g->dp != 0) {
        snprintf(err, errlen, "batch = %d is not divisible by dp = %d (world %d / tp %d)",
                 Bglobal, g->dp, g->world_size, g->tp);
        return -1;
    }
    if (model_check_rows(c, Bglobal, g->dp, err, errlen)) return -1;
    model_layout(m, c, g->tp, g->tp_rank);
    m->g = g;
    m->T = T;
    m->Bglobal = Bglobal;
    m->accum = accum_of(c);
    m->B = Bglobal / g->dp / m->accum;
    m->keep = segment_steps(keep, T);
    m->chunk = chunk > 0 && chunk < T ? chunk : model_grad_chunk(m->B, T);

    int fail = 0;
    size_t lay[MODEL_MAX_LAYERS][LB_N], win[WB_N];
    activation_sizes(c, g->tp, m->B, T, keep, m->chunk, lay, win);
    alloc_shared(m, lay);
    for (int l = 0; l < c->L; l++) {
        real** at[LB_N - LB_SHARED] = {&m->S[l], &m->s0r[l], &m->sTr[l], &m->cg[l], &m->hTr[l],
                                       &m->h0r[l], &m->ckX[l], &m->ckS[l], &m->Xs[l], &m->Qs[l]};
        for (int i = LB_SHARED; i < LB_N; i++) *at[i - LB_SHARED] = alloc_real(lay[l][i], &fail);
    }
    real** at[WB_N] = {&m->Y, &m->F, &m->dY, &m->fTr, &m->f0r, &m->send, &m->recv, &m->dh, &m->Hs};
    for (int i = 0; i < WB_N; i++) *at[i] = alloc_real(win[i], &fail);
    if (fail) dist_fail("out of memory for a model of %zu parameters per rank", m->nparams);
    model_select_micro(m, 0);
    return 0;
}

int model_check_rows(const model_config* c, int Bglobal, int dp, char* err, size_t errlen)
{
    const int rows = Bglobal / dp;
    if (c->accum < 0 || rows % accum_of(c) != 0) {
        snprintf(err, errlen, "accum_steps = %d does not divide the %d rows of each of the %d "
                 "data-parallel replicas (batch = %d)", c->accum, rows, dp, Bglobal);
        return -1;
    }
    return 0;
}

int model_bptt_keep(const char* setting, int T)
{
    if (!strcmp(setting, "all")) return T;
    if (!strcmp(setting, "sqrt")) {
        const int k = (int)lround(sqrt((double)T));
        return k < 1 ? 1 : k;
    }
    if (!isdigit((unsigned char)setting[0])) return -1;
    char* end;
    errno = 0;
    const long k = strtol(setting, &end, 10);
    if (end == setting || *end || errno || k < 1 || k > T) return -1;
    return (int)k;
}

void model_free(model* m)
{
    dist_replicas_free(m->rep);
    for (int l = 0; l < MODEL_MAX_LAYERS; l++) {
        free(m->hTr[l]);
        free(m->h0r[l]);
        free(m->S[l]);
        free(m->s0r[l]);
        free(m->sTr[l]);
        free(m->cg[l]);
        free(m->ckX[l]);
        free(m->ckS[l]);
        free(m->Xs[l]);
        free(m->Qs[l]);
    }
    free(m->Hs);
    free(m->Y);
    free(m->F);
    free(m->dY);
    free(m->fTr);
    free(m->f0r);
    free(m->send);
    free(m->recv);
    free(m->dh);
    memset(m, 0, sizeof *m);
}

void model_zero_grad(model* m)
{
    memset(m->grads, 0, m->nparams * sizeof(real));
    m->grads_partial = 0;
}

void model_scale_loss_grad(model* m, int T, double factor)
{
    const size_t n = (size_t)T * m->B * m->c.O;
    for (size_t i = 0; i < n; i++) m->dY[i] *= (real)factor;
}

void model_set_no_grad(model* m, const unsigned char* no_grad)
{
    memcpy(m->no_grad, no_grad, (size_t)m->ntensors);
}

void model_zero_tensor(model* m, const model_tensor* t)
{
    for (int i = 0; i < t->lrows; i++)
        memset(m->params + t->offset + (size_t)i * t->ld, 0, (size_t)t->lcols * sizeof(real));
}

void model_state_pattern(model* m)
{
    if (m->g->dp != 1) dist_fail("internal error: model_state_pattern with dp = %d", m->g->dp);
    for (size_t i = 0; i < model_own_elems(m); i++)
        m->m[i] = (real)0.5 * m->params[i], m->v[i] = m->params[i] * m->params[i];
}

void model_state_clear(model* m)
{
    memset(m->params, 0, m->nparams * sizeof(real));
    memset(m->m, 0, model_own_elems(m) * sizeof(real));
    memset(m->v, 0, model_own_elems(m) * sizeof(real));
}

void model_grads_whole(model* m)
{
    if (!m->grads_partial) return;
    model_gather(m, m->grads);
}

void model_select_micro(model* m, int j)
{
    const size_t r = (size_t)j * m->B, sHl = (size_t)m->cell->state * m->Hl;
    m->micro = j;
    for (int l = 0; l < m->c.L; l++) {
        m->h0s[l] = m->h0r[l] + r * m->c.H;
        m->hT[l] = m->hTr[l] + r * m->c.H;
        m->s0s[l] = sHl ? m->s0r[l] + r * sHl : NULL;
        m->sT[l] = sHl ? m->sTr[l] + r * sHl : NULL;
    }
    m->f0 = m->f0r + r * m->c.O;
    m->fT = m->fTr + r * m->c.O;
}

void model_reset_state(model* m)
{
    const size_t sHl = (size_t)m->cell->state * m->Hl, rows = (size_t)model_rank_rows(m);
    for (int l = 0; l < m->c.L; l++) {
        memset(m->h0r[l], 0, rows * m->c.H * sizeof(real));
        if (sHl) memset(m->s0r[l], 0, rows * sHl * sizeof(real));
    }
    memset(m->f0r, 0, rows * m->c.O * sizeof(real));
}

void model_carry_state(model* m)
{
    const size_t sHl = (size_t)m->cell->state * m->Hl, rows = (size_t)model_rank_rows(m);
    for (int l = 0; l < m->c.L; l++) {
        memcpy(m->h0r[l], m->hTr[l], rows * m->c.H * sizeof(real));
        if (sHl) memcpy(m->s0r[l], m->sTr[l], rows * sHl * sizeof(real));
    }
    memcpy(m->f0r, m->fTr, rows * m->c.O * sizeof(real));
}

void model_set_feedback_source(model* m, int source)
{
    m->c.feedback_source = source;
}

void model_feed_back_token(model* m, int tok)
{
    if (m->c.feedback_source != FBS_TARGET) return;
    for (int b = 0; b < m->B; b++) {
        memset(m->f0 + (size_t)b * m->c.O, 0, (size_t)m->c.O * sizeof(real));
        m->f0[(size_t)b * m->c.O + tok] = 1;
    }
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
