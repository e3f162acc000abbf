// The DP replicas of a tensor shard its gradient reduction, its update and its optimiser state
// (ZeRO stage 1 over all of DP). The replicas of one node (g->dpn of them) share memory
// (m->rep, dist/shm.c): member r owns piece r of every gradient region and sums it over the node's
// replicas by loads and stores; the ranks with the same piece on the other nodes (dpx_comm)
// split it again, each owning one part (its sub-piece), summed over them by a reduce-scatter.
// Each rank updates the parameters of its sub-pieces and keeps their moments, compactly; the
// updated parameters are allgathered over dpx_comm and copied over the node. The regions follow
// the order in which backward forms the weight gradients, so each one's reduction starts as soon
// as it is ready: one per layer (its weights and biases, all gates), the head, the embedding.
#include "model/model.h"
#include "model/precision.h"

int model_regions(const model* m)
{
    return m->c.L + 2;
}

static void region(const model* m, int i, size_t* off, size_t* n)
{
    const int L = m->c.L;
    size_t end;
    if (i < L) *off = m->W[i], end = i + 1 < L ? m->W[i + 1] : m->Wo;
    else if (i == L) *off = m->Wo, end = m->E;
    else *off = m->E, end = m->nparams;
    *n = end - *off;
}

int model_region_of(const model* m, size_t off)
{
    int i = 0;
    while (i + 1 < m->c.L && off >= m->W[i + 1]) i++;
    return off < m->Wo ? i : off < m->E ? m->c.L : m->c.L + 1;
}

// Region i's piece r of dpn, and that piece's part x of dpx: elements [*off, *off + *n).
static void part_of(const model* m, int i, int dpn, int r, int dpx, int x, size_t* off, size_t* n)
{
    size_t o, len, a, b, c, d;
    region(m, i, &o, &len);
    dist_part(len, dpn, r, &a, &b);
    dist_part(b - a, dpx, x, &c, &d);
    *off = o + a + c;
    *n = d - c;
}

void model_piece(const model* m, int i, int r, size_t* off, size_t* n)
{
    part_of(m, i, m->g->dpn, r, 1, 0, off, n);
}

void model_own(const model* m, int i, size_t* off, size_t* n, size_t* at)
{
    const dist_grid* g = m->g;
    *at = 0;
    for (int j = 0; j <= i; j++) {
        part_of(m, j, g->dpn, g->dpn_rank, g->dpx, g->dpx_rank, off, n);
        if (j < i) *at += *n;
    }
}

size_t model_own_elems(const model* m)
{
    size_t off, n, at;
    model_own(m, model_regions(m) - 1, &off, &n, &at);
    return at + n;
}

size_t model_optim_bytes(const model* m, int dpn, int dpx)
{
    // The most any rank holds: every part of a split is at most its ceiling.
    size_t elems = 0;
    for (int i = 0; i < model_regions(m); i++) {
        size_t off, len;
        region(m, i, &off, &len);
        const size_t piece = (len + (size_t)dpn - 1) / (size_t)dpn;
        elems += (piece + (size_t)dpx - 1) / (size_t)dpx;
    }
    return 2 * ((elems + 15) / 16 * 16) * sizeof(real);
}

int model_region_trains(const model* m, int i)
{
    size_t off, n;
    region(m, i, &off, &n);
    for (int k = 0; k < m->ntensors; k++)
        if (!m->no_grad[k] && m->tensors[k].offset >= off && m->tensors[k].offset < off + n) return 1;
    return 0;
}

void model_owned_runs(const model* m, const model_tensor* t,
                      void (*f)(size_t off, size_t n, size_t at, void* arg), void* arg)
{
    // A tensor lies in one region, of which this rank owns one contiguous sub-piece.
    size_t p0, pn, at;
    model_own(m, model_region_of(m, t->offset), &p0, &pn, &at);
    for (int i = 0; i < t->lrows; i++) {
        size_t a = t->offset + (size_t)i * t->ld, b = a + (size_t)t->lcols;
        if (a < p0) a = p0;
        if (b > p0 + pn) b = p0 + pn;
        if (a < b) f(a, b - a, at + (a - p0), arg);
    }
}

// Whether the backward under way is the step's last micro-batch's, which reduces the sum of them
// all (model_accumulate); an earlier one leaves its gradients local, where the next adds to them.
static int reduces(const model* m)
{
    return m->micro + 1 == m->accum;
}

void model_reduce_regions(model* m, int first, int count)
{
    dist_grid* g = m->g;
    if (g->dp == 1 || !reduces(m)) return;
    // Frozen regions (every replica has the same no_grad) are neither summed nor synced for.
    int trains = 0;
    for (int i = first; i < first + count; i++) trains |= model_region_trains(m, i);
    if (!trains) return;
    // The other replicas' gradients of these regions are complete once they reach this wait.
    dist_replicas_wait_grads_formed(m->rep);
    for (int i = first; i < first + count; i++) {
        size_t off, n;
        model_piece(m, i, g->dpn_rank, &off, &n);
        if (n == 0 || !model_region_trains(m, i)) continue;
        dist_replicas_sum(m->rep, (size_t)(m->grads - m->params) + off, n);
        // Every node's member with this dpn_rank holds the same piece, and each of them updates
        // only its sub-piece: the sum of each sub-piece goes to its owner alone.
        if (g->dpx > 1) dist_replicas_start_sum(m->rep, m->grads + off, n);
    }
}

void model_reduce_finish(model* m)
{
    if (!reduces(m)) return;
    m->grads_partial = m->g->dp > 1;
    // The replicas have read each other's gradients: from here each may zero or rewrite its own.
    if (m->g->dp > 1) dist_replicas_wait_grads_reduced(m->rep);
    dist_replicas_wait_exchanges(m->rep);
}

void model_gather_start(model* m, real* buf, int i)
{
    dist_grid* g = m->g;
    size_t off, n;
    model_piece(m, i, g->dpn_rank, &off, &n);
    // Each dpx rank holds only its sub-piece of this piece; the other nodes' ranks with this
    // dpn_rank hold the rest.
    if (g->dpx > 1 && n && model_region_trains(m, i)) dist_replicas_start_gather(m->rep, buf + off, n);
}

void model_gather_finish(model* m, real* buf)
{
    dist_grid* g = m->g;
    dist_replicas_wait_exchanges(m->rep);
    if (g->dpn == 1) return;
    // Before the copies: the owners' pieces are final. After: nobody reads a piece its owner
    // rewrites.
    dist_replicas_wait_pieces_final(m->rep);
    const size_t base = (size_t)(buf - m->params);
    for (int i = 0; i < model_regions(m); i++)
        for (int r = 0; r < g->dpn && model_region_trains(m, i); r++) {
            size_t off, n;
            model_piece(m, i, r, &off, &n);
            if (r != g->dpn_rank && n) dist_replicas_copy(m->rep, r, base + off, n);
        }
    dist_replicas_wait_pieces_copied(m->rep);
}

void model_gather(model* m, real* buf)
{
    for (int i = 0; i < model_regions(m); i++) model_gather_start(m, buf, i);
    model_gather_finish(m, buf);
    if (buf == m->grads) m->grads_partial = 0;
}

void model_pack(model* m, gemm_w* const* w, int n, int uses)
{
    // Without recomputation the forward and backward panels share one area (model.c): packing
    // one set overwrites the other, which from here runs on cblas until packed again.
    if (m->keep >= m->T) {
        gemm_w* all[] = {&m->fwdWx0, &m->fwdWo, &m->bwdWo};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) all[i]->ready = 0;
        for (int l = 0; l < m->c.L; l++)
            m->fwdW[l].ready = m->bwdW[l].ready = m->fwdWh[l].ready = m->bwdWh[l].ready = 0;
    }
    // Before: no member still reads the old panels (nor its weight-gradient scratch, in the
    // same area), and all hold the weights to pack. After: every member's share is packed.
    dist_replicas_wait_panels_free(m->rep);
    for (int i = 0; i < n; i++) {
        if (!w[i]->packed16) {
            gemm_w_pack(w[i], uses, m->g->dpn_rank, m->g->dpn);
            continue;
        }
        int c0, c1;
        gemm_w_share(w[i], m->g->dpn_rank, m->g->dpn, &c0, &c1);
        precision_pack(w[i], c0, c1);
    }
    dist_replicas_wait_panels_packed(m->rep);
}

// The address of p (in this rank's segment) in member r's segment.
static void* in_member(model* m, int r, const void* p)
{
    return (char*)dist_replicas_segment(m->rep, r) +
           ((const char*)p - (const char*)dist_replicas_segment(m->rep, m->g->dpn_rank));
}

// A bf16 model's product (w->packed16): this rank rounds its rows of A into op16, which lies at
// the same place in every member's segment, and the members share the columns as in float32.
static void apply_bf16(model* m, real* C, int ldc, const real* A, int lda, const gemm_w* w,
                       const real* bias, int accumulate)
{
    dist_grid* g = m->g;
    precision_round(m->op16, A, lda, m->B, w->k);
    if (g->dpn == 1) {
        const uint16_t* A16 = m->op16;
        precision_apply(1, &C, ldc, &A16, m->B, w, bias, accumulate, 0, w->n);
        return;
    }
    real* Cs[g->dpn];
    const uint16_t* As[g->dpn];
    for (int r = 0; r < g->dpn; r++) Cs[r] = in_member(m, r, C), As[r] = in_member(m, r, m->op16);
    // Before: every member's rounded rows (and C, when accumulating) are written. After: all
    // columns of every member's C are, and op16 may take the next product's rows.
    dist_replicas_wait_inputs_written(m->rep);
    int c0, c1;
    gemm_w_share(w, g->dpn_rank, g->dpn, &c0, &c1);
    precision_apply(g->dpn, Cs, ldc, As, m->B, w, bias, accumulate, c0, c1);
    dist_replicas_wait_products_done(m->rep);
}

void model_apply(model* m, real* C, int ldc, const real* A, int lda, const gemm_w* w,
                 const real* bias, int accumulate)
{
    dist_grid* g = m->g;
    if (w->packed16) {
        apply_bf16(m, C, ldc, A, lda, w, bias, accumulate);
        return;
    }
    if (g->dpn == 1) {
        gemm_w_apply(C, ldc, A, lda, m->B, w, bias, accumulate);
        return;
    }
    real* Cs[g->dpn];
    const real* As[g->dpn];
    for (int r = 0; r < g->dpn; r++) Cs[r] = in_member(m, r, C), As[r] = in_member(m, r, A);
    // Before: every member's A rows (and C, when accumulating) are written. After: all columns
    // of every member's C are.
    dist_replicas_wait_inputs_written(m->rep);
    gemm_w_apply_part(g->dpn, Cs, ldc, As, lda, m->B, w, bias, accumulate, g->dpn_rank, g->dpn);
    dist_replicas_wait_products_done(m->rep);
}
