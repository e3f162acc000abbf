// Backpropagation through time over one window, the mirror of forward.c.
//
// Per step (latest first) and layer (top first) this rank forms the gradient of its block of a,
// dA = dh_blk * act'(h_blk), and its partial gradient of the layer's whole input,
// dX = dA W_blk = [du | dh_prev | df_prev]; one allreduce over the TP group sums the parts.
// Weight gradients wait until the loop ends: dW = dA^T X is then one GEMM per layer, and each
// layer's DP reduction (model/share.c) starts as soon as its GEMM is done; its part between
// nodes is a non-blocking reduction that overlaps the next layer's GEMM.
#include <string.h>
#include "model/feedback.h"
#include "model/model.h"

// act'(a) written with the activation's output h, which is what forward kept.
static void mul_act_grad(real* dA, const real* dh, const real* h, size_t n, int act)
{
    switch (act) {
    case ACT_TANH:
        for (size_t i = 0; i < n; i++) dA[i] = dh[i] * (1 - h[i] * h[i]);
        break;
    case ACT_RELU:
        for (size_t i = 0; i < n; i++) dA[i] = h[i] > 0 ? dh[i] : 0;
        break;
    default:
        for (size_t i = 0; i < n; i++) dA[i] = dh[i] * h[i] * (1 - h[i]);
        break;
    }
}

// dh_blk of layer l at step t: from the output (top layer), from the layer above at step t,
// and from this layer at step t+1.
static void hidden_grad(model* m, int l, int t, int T, real* const* cur, real* const* later)
{
    const int B = m->B, Hl = m->Hl, H = m->c.H, O = m->c.O;
    real* dh = m->dh;
    if (l == m->c.L - 1)
        gemm_w_apply(dh, Hl, m->dY + (size_t)t * B * O, O, B, &m->bwdWo, NULL, 0);
    else
        memset(dh, 0, (size_t)B * Hl * sizeof(real));
    if (l + 1 < m->c.L)
        for (int b = 0; b < B; b++) {
            const real* du = cur[l + 1] + (size_t)b * m->K[l + 1] + m->h0;
            for (int j = 0; j < Hl; j++) dh[(size_t)b * Hl + j] += du[j];
        }
    if (t + 1 < T) {
        int Dl = m->K[l] - H - m->Of[l];
        for (int b = 0; b < B; b++) {
            const real* dhp = later[l] + (size_t)b * m->K[l] + Dl + m->h0;
            for (int j = 0; j < Hl; j++) dh[(size_t)b * Hl + j] += dhp[j];
        }
    }
}

static void embed_grad(model* m, const model_batch* bt, int t, const real* dx0)
{
    const int B = m->B, D = m->c.D;
    real* dE = m->grads + m->E;
    for (int b = 0; b < B; b++) {
        real* row = dE + (size_t)bt->tokens[t * B + b] * D;
        const real* du = dx0 + (size_t)b * m->K[0];
        for (int j = 0; j < D; j++) row[j] += du[j];
    }
}

// The tensor of m that starts at offset off of the parameter buffer; none is a bug of the layout.
static int tensor_at(const model* m, size_t off)
{
    for (int k = 0; k < m->ntensors; k++)
        if (m->tensors[k].offset == off) return k;
    dist_fail("internal error: no tensor starts at parameter offset %zu", off);
}

static void step_backward(model* m, const model_batch* bt, int t, real* const* cur,
                          real* const* later)
{
    const int B = m->B, Hl = m->Hl;
    for (int l = m->c.L - 1; l >= 0; l--) {
        hidden_grad(m, l, t, bt->T, cur, later);
        real* dA = m->dA[l] + (size_t)t * B * Hl;
        mul_act_grad(dA, m->dh, m->HB[l] + (size_t)t * B * Hl, (size_t)B * Hl, m->c.act);
        model_apply(m, cur[l], m->K[l], dA, Hl, &m->bwdW[l], NULL, 0);
        if (m->g->tp > 1) dist_tp_allreduce_sum(cur[l], B * m->K[l], m->g);
    }
    if (bt->tokens && !m->no_grad[tensor_at(m, m->E)]) embed_grad(m, bt, t, cur[0]);
    if (t > 0) feedback_grad(m, bt, t, cur);
}

// db += column sums of dA (rows x n).
static void bias_grad(real* db, const real* dA, size_t rows, int n)
{
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) db[j] += dA[r * n + j];
}

// dW = dA^T X of layer l for the column runs of [Wx | Wh | Wf] that train: one GEMM when all
// do (as without freezing), none for a frozen layer.
static void layer_weight_grad(model* m, int l, int TB)
{
    const int Hl = m->Hl, K = m->K[l], bias = tensor_at(m, m->b[l]);
    real* dW = m->grads + m->W[l];
    // Wx, Wh and Wf are the tensors before b, side by side in the block's columns.
    for (int k = tensor_at(m, m->W[l]); k < bias;) {
        const int c0 = (int)(m->tensors[k].offset - m->W[l]), trains = !m->no_grad[k];
        int c1 = c0;
        for (; k < bias && (m->no_grad[k] == 0) == trains; k++) c1 += m->tensors[k].lcols;
        if (trains) gemm_atb(dW + c0, K, m->dA[l], Hl, m->X[l] + c0, K, Hl, c1 - c0, TB, m->atb_work);
    }
    if (!m->no_grad[bias]) bias_grad(m->grads + m->b[l], m->dA[l], (size_t)TB, Hl);
}

static void weight_grads(model* m, int T)
{
    const int B = m->B, Hl = m->Hl, O = m->c.O, TB = T * B, L = m->c.L;
    MPI_Request req[MODEL_MAX_LAYERS + 2];
    int nreq = 0;
    real* g = m->grads;
    if (!m->no_grad[tensor_at(m, m->Wo)])
        gemm_atb(g + m->Wo, Hl, m->dY, O, m->HB[L - 1], Hl, O, Hl, TB, m->atb_work);
    if (!m->no_grad[tensor_at(m, m->bo)]) bias_grad(g + m->bo, m->dY, (size_t)TB, O);
    nreq += model_reduce_regions(m, L, 2, req + nreq); // the head, and the embedding (done)
    for (int l = L - 1; l >= 0; l--) {
        layer_weight_grad(m, l, TB);
        nreq += model_reduce_regions(m, l, 1, req + nreq);
    }
    // The replicas have read each other's gradients: from here each may zero or rewrite its own.
    if (m->g->dp > 1) dist_shm_sync(&m->shm, m->g);
    if (nreq) dist_wait_all(req, nreq, m->g);
}

void model_backward(model* m, const model_batch* bt)
{
    gemm_w* w[MODEL_MAX_LAYERS + 1] = {&m->bwdWo};
    for (int l = 0; l < m->c.L; l++) w[1 + l] = &m->bwdW[l];
    model_pack(m, w, 1 + m->c.L, bt->T);
    for (int t = bt->T - 1; t >= 0; t--) {
        real* const* cur = m->dX[t & 1];
        real* const* later = m->dX[(t + 1) & 1];
        step_backward(m, bt, t, cur, later);
    }
    weight_grads(m, bt->T);
}
