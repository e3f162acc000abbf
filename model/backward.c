// Backpropagation through time over one window, the mirror of forward.c.
//
// Per step (latest first) and layer (top first) this rank forms the gradient of its block of a
// from dh_blk (the cell's backward, model/cell.h), and its partial gradient of the layer's whole
// input, dX = dA W_blk = [du | dh_prev | df_prev] (split_h cells: [du | df_prev] from dA and
// dh_prev from dAH); one allreduce over the TP group sums the parts. A gated cell's gradient of
// its gated state, dq = dAH Wh over the gated gates' rows, is summed the same way first. A
// window kept in segments (bptt_memory) is run back segment by segment, latest first, each
// recomputed from its stored start (model_forward_segment) unless it is the one forward left in
// the buffers.
//
// The weight gradients dW += dA^T X are formed per chunk of model_grad_chunk steps as the loop
// reaches the chunk's first step: the chunks latest first, the rows of one in time order. That
// order does not depend on the segments, so every bptt_memory setting sums the same products in
// the same order (the kernel sums each element in row order from its old value, gemm.h) and gets
// the same bits. Each layer's DP reduction (model/share.c) starts at step 0 once its last chunk
// is in, the head's and the embedding's after the loop; the part between nodes is non-blocking
// and overlaps the rest of the loop.
//
// Dropout (model/dropout.h): a layer's input gradient, once summed over TP, takes the masks its
// input took forward, so dX holds the gradient of the unmasked h wherever it is read; the
// head's gradient of h and its operand for dWo take the head's mask, dq the recurrent one.
#include <string.h>
#include "model/dropout.h"
#include "model/feedback.h"
#include "model/model.h"

// dh_blk of layer l at step t: from the output (top layer, through the head's dropout), from
// the layer above at step t, and from this layer at step t+1.
static void hidden_grad(model* m, const model_batch* bt, int l, int t, real* const* cur,
                        real* const* later)
{
    const int B = m->B, Hl = m->Hl, O = m->c.O, T = bt->T;
    real* dh = m->dh;
    if (l == m->c.L - 1) {
        gemm_w_apply(dh, Hl, m->dY + (size_t)t * B * O, O, B, &m->bwdWo, NULL, 0);
        dropout_apply(bt, DROP_LAYER, l + 1, t, dh, Hl, m->h0, Hl, B);
    } else
        memset(dh, 0, (size_t)B * Hl * sizeof(real));
    if (l + 1 < m->c.L)
        for (int b = 0; b < B; b++) {
            const real* du = cur[l + 1] + (size_t)b * m->K[l + 1] + m->h0;
            for (int j = 0; j < Hl; j++) dh[(size_t)b * Hl + j] += du[j];
        }
    if (t + 1 < T) {
        for (int b = 0; b < B; b++) {
            const real* dhp = later[l] + (size_t)b * m->K[l] + m->hc[l] + m->h0;
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

// The cell's step backward over this rank's block: dA (and dAH) of layer l at step t from dh.
static void cell_grad(model* m, const model_batch* bt, int l, int t)
{
    const int B = m->B, Hl = m->Hl, GH = m->cell->gates * Hl;
    const size_t sHl = (size_t)m->cell->state * Hl, r = model_row(m, t), at = r * GH;
    const size_t dat = (size_t)(t % m->chunk) * B * GH;
    int ldh;
    const real* hprev = model_hprev(m, bt, l, t, &ldh);
    const real* s = sHl ? m->S[l] + r * sHl : NULL;
    const int split = m->cell->split_h;
    m->cell->backward(m->dA[l] + dat, split ? m->dAH[l] + dat : NULL, m->cg[l], m->dh,
                      m->A[l] + at, split ? m->AH[l] + at : NULL, s, m->HB[l] + r * Hl,
                      hprev, ldh, model_state_before(m, l, t), B, Hl, m->c.act);
    if (!m->cell->gated) return;
    // dq = dAH Wh over the gated gates' rows: each TP rank holds those rows of its own units,
    // so the sum over the group is the gradient of the whole q, of which the cell takes its block.
    const int H = m->c.H, hHl = GH - m->cell->gated * Hl;
    model_apply(m, m->dQ[l], H, m->dAH[l] + dat + hHl, GH, &m->bwdWq[l], NULL, 0);
    if (m->g->tp > 1) dist_tp_allreduce_sum(m->dQ[l], B * H, m->g);
    dropout_apply(bt, DROP_RECURRENT, l, 0, m->dQ[l] + m->h0, H, m->h0, Hl, B);
    m->cell->gated_backward(m->dA[l] + dat, m->dAH[l] + dat, m->cg[l], m->dQ[l] + m->h0, H,
                            m->A[l] + at, hprev, ldh, B, Hl);
}

// This rank's part of the input gradient dX = dA W of layer l at step t (into out, B x K); a
// split_h cell's h columns take dAH instead.
static void input_grad(model* m, int l, int t, real* out)
{
    const int B = m->B, GH = m->cell->gates * m->Hl, K = m->K[l];
    const size_t dat = (size_t)(t % m->chunk) * B * GH;
    // bwdW spans all K columns, or a split_h cell's [u | f] columns.
    model_apply(m, out, K, m->dA[l] + dat, GH, &m->bwdW[l], NULL, 0);
    if (m->cell->split_h)
        model_apply(m, out + m->hc[l], K, m->dAH[l] + dat, GH, &m->bwdWh[l], NULL, 0);
}

// db += column sums of dA (rows x n).
static void bias_grad(real* db, const real* dA, size_t rows, int n)
{
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) db[j] += dA[r * n + j];
}

// dW += dA^T X of layer l over the chunk's rows (dA, dAH, Xs) for the column runs u, h, f of
// [Wx | Wh | Wf] (split_h: u, f, h) that train (a run trains when any gate's tensor in it
// does), adjacent runs of the same dA as one: one GEMM when all train (as without freezing;
// split_h: two, its h columns take dAH; gated: three, the gated gates' h columns dAH^T Q).
static void layer_weight_grad(model* m, int l, int rows)
{
    const int GH = m->cell->gates * m->Hl, K = m->K[l], split = m->cell->split_h;
    const int hHl = GH - m->cell->gated * m->Hl; // rows whose h columns multiply h_prev
    const int hc = m->hc[l], fc = m->fc[l];
    // The runs in column order, and which take dAH (split_h's h, the last).
    const int part[3] = {PART_WX, split ? PART_WF : PART_WH, split ? PART_WH : PART_WF};
    const int ah[3] = {0, 0, split}, c0[4] = {0, hc < fc ? hc : fc, hc < fc ? fc : hc, K};
    int trains[5] = {0}; // by enum tensor_part: Wx, Wh, Wf, b, bh
    for (int k = 0; k < m->ntensors; k++)
        if (m->tensors[k].layer == l && !m->no_grad[k]) trains[m->tensors[k].part] = 1;
    real* dW = m->grads + m->W[l];
    for (int p = 0, q; p < 3; p = q) {
        for (q = p + 1; q < 3 && trains[part[q]] == trains[part[p]] && ah[q] == ah[p]; q++)
            continue;
        const real* dA = ah[p] ? m->dAH[l] : m->dA[l];
        if (trains[part[p]] && c0[q] > c0[p])
            gemm_atb(dW + c0[p], K, dA, GH, m->Xs[l] + c0[p], K, ah[p] ? hHl : GH, c0[q] - c0[p],
                     rows, m->atb_work);
    }
    if (hHl < GH && trains[PART_WH])
        gemm_atb(dW + (size_t)hHl * K + hc, K, m->dAH[l] + hHl, GH, m->Qs[l], m->c.H, GH - hHl,
                 m->c.H, rows, m->atb_work);
    if (trains[PART_B]) bias_grad(m->grads + m->b[l], m->dA[l], (size_t)rows, GH);
    if (trains[PART_BH]) bias_grad(m->grads + m->bh[l], m->dAH[l], (size_t)rows, GH);
}

// Rows of the chunk that starts at step t0 (a multiple of m->chunk) in a window of T steps.
static int chunk_rows(const model* m, int t0, int T)
{
    return (t0 + m->chunk < T ? m->chunk : T - t0) * m->B;
}

// Keeps step t's X of layer l in the chunk and, at the chunk's first step, adds its dW.
static void layer_chunk(model* m, int l, int t, int T)
{
    const size_t n = (size_t)m->B * m->K[l];
    memcpy(m->Xs[l] + (size_t)(t % m->chunk) * n, m->X[l] + model_row(m, t) * m->K[l],
           n * sizeof(real));
    const size_t nq = (size_t)m->B * m->c.H;
    if (m->cell->gated)
        memcpy(m->Qs[l] + (size_t)(t % m->chunk) * nq, m->Q[l] + model_row(m, t) * m->c.H,
               nq * sizeof(real));
    if (t % m->chunk == 0) layer_weight_grad(m, l, chunk_rows(m, t, T));
}

// The same for the head: dWo += dY^T h of the top layer, as the head's dropout masked it (dY of
// the chunk is final: the feedback path adds to step t's only from step t+1).
static void head_chunk(model* m, const model_batch* bt, int t)
{
    const int B = m->B, Hl = m->Hl, O = m->c.O, L = m->c.L, T = bt->T;
    real* hs = m->Hs + (size_t)(t % m->chunk) * B * Hl;
    memcpy(hs, m->HB[L - 1] + model_row(m, t) * Hl, (size_t)B * Hl * sizeof(real));
    dropout_apply(bt, DROP_LAYER, L, t, hs, Hl, m->h0, Hl, B);
    if (t % m->chunk || m->no_grad[tensor_at(m, m->Wo)]) return;
    gemm_atb(m->grads + m->Wo, Hl, m->dY + (size_t)t * B * O, O, m->Hs, Hl, O, Hl,
             chunk_rows(m, t, T), m->atb_work);
}

// Step t; at step 0 each layer's DP reduction starts as soon as its last chunk is in.
static void step_backward(model* m, const model_batch* bt, int t, real* const* cur,
                          real* const* later)
{
    const int B = m->B, H = m->c.H;
    head_chunk(m, bt, t);
    for (int l = m->c.L - 1; l >= 0; l--) {
        hidden_grad(m, bt, l, t, cur, later);
        cell_grad(m, bt, l, t);
        layer_chunk(m, l, t, bt->T);
        if (t == 0) model_reduce_regions(m, l, 1);
        input_grad(m, l, t, cur[l]);
        if (m->g->tp > 1) dist_tp_allreduce_sum(cur[l], B * m->K[l], m->g);
        dropout_apply(bt, DROP_RECURRENT, l, 0, cur[l] + m->hc[l], m->K[l], 0, H, B);
        if (l > 0) dropout_apply(bt, DROP_LAYER, l, t, cur[l], m->K[l], 0, H, B);
    }
    if (bt->tokens && !m->no_grad[tensor_at(m, m->E)]) embed_grad(m, bt, t, cur[0]);
    if (t > 0) feedback_grad(m, bt, t, cur);
}

// After the loop: the output bias (dY is final), the reduction of the head and the embedding,
// and the end of every region's.
static void reduce_grads(model* m, int T)
{
    if (!m->no_grad[tensor_at(m, m->bo)]) bias_grad(m->grads + m->bo, m->dY, (size_t)T * m->B, m->c.O);
    model_reduce_regions(m, m->c.L, 2);
    model_reduce_finish(m);
}

void model_backward(model* m, const model_batch* bt)
{
    gemm_w* w[3 * MODEL_MAX_LAYERS + 1] = {&m->bwdWo};
    int n = 1;
    for (int l = 0; l < m->c.L; l++) {
        w[n++] = &m->bwdW[l];
        if (m->cell->split_h) w[n++] = &m->bwdWh[l];
        if (m->cell->gated) w[n++] = &m->bwdWq[l];
        // Nothing flows back from past the window's end.
        if (m->cg[l]) memset(m->cg[l], 0, (size_t)m->B * m->cell->carry * m->Hl * sizeof(real));
    }
    model_pack(m, w, n, bt->T);
    for (int s0 = (bt->T - 1) / m->keep * m->keep; s0 >= 0; s0 -= m->keep) {
        const int s1 = s0 + m->keep < bt->T ? s0 + m->keep : bt->T;
        if (s0 != m->seg0) model_forward_segment(m, bt, s0, s1);
        for (int t = s1 - 1; t >= s0; t--) {
            real* const* cur = m->dX[t & 1];
            real* const* later = m->dX[(t + 1) & 1];
            step_backward(m, bt, t, cur, later);
        }
    }
    reduce_grads(m, bt->T);
}
