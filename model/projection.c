// The per-step time model (projection.h); the equations are docs/scaling.md's, term by term.
#include <math.h>
#include <string.h>
#include "model/projection.h"

static double log2_up(int p)
{
    int r = 0;
    while ((1 << r) < p) r++;
    return r;
}

// The packed kernel's rate at M rows (the table's entry at the largest power of 2 <= M).
static double kernel_rate(const projection_calibration* cal, long M)
{
    int i = 0;
    while (i + 1 < PROJECTION_ROWS && (2L << i) <= M) i++;
    return cal->kernel_gflops[i] * 1e9;
}

// A collective over p ranks of one node: rounds x alpha + volume x beta, split in latency and
// bandwidth. Allgather: log2 p rounds, (p-1)/p of the result per rank; allreduce (reduce-scatter
// then allgather): twice both.
static void node_collective(double* lat, double* bw, int p, double bytes, double alpha,
                            double beta, int twice)
{
    if (p < 2) return;
    *lat += (1 + twice) * log2_up(p) * alpha;
    *bw += (1 + twice) * (p - 1.0) / p * bytes * beta;
}

// The same between q nodes, over one node's link: every rank of the group on this node sends
// its part through it.
static void net_collective(double* lat, double* bw, int q, double bytes,
                           const projection_calibration* cal, int twice)
{
    if (q < 2) return;
    *lat += (1 + twice) * log2_up(q) * cal->net_alpha;
    *bw += (1 + twice) * (q - 1.0) / q * bytes / (cal->net_gbps * 1e9 / 8);
}

// Elements of the packed weights of the per-step products (model.c's describe_weights, one
// direction): every layer's block, less layer 0's input columns, and the head.
static double step_weights(const model* m)
{
    double w = (double)m->c.O * m->Hl;
    for (int l = 0; l < m->c.L; l++)
        w += (double)m->cell->gates * m->Hl * (m->K[l] - (l == 0 ? m->c.D : 0));
    return w;
}

// Bytes of one window's activations on a rank (model.h: X, HB, A and dA, the split_h, gated
// and state buffers, Y, F, dY), approximately: the few (B, H) buffers are left out.
static double activation_bytes(const model* m, int T)
{
    const double rows = (double)T * m->B;
    const int G = m->cell->gates;
    double e = 3.0 * rows * m->c.O;
    for (int l = 0; l < m->c.L; l++)
        e += rows * (m->K[l] + m->Hl * (1.0 + 2 * G + (m->cell->split_h ? 2 * G : 0) +
                                        m->cell->state) +
                     (m->cell->gated ? m->c.H : 0));
    return e * sizeof(real);
}

int projection_model(projection_step* s, const model_config* c, int tp, int B, int T, int ranks,
                     const projection_calibration* cal)
{
    memset(s, 0, sizeof *s);
    if (tp < 1 || ranks < 1 || ranks % tp || c->H % tp || c->L > MODEL_MAX_LAYERS) return -1;
    const int dp = ranks / tp;
    if (B % dp) return -1;
    static model m; // large (the tensor table); model_layout only fills the shapes
    model_layout(&m, c, tp, 0);
    m.B = B / dp;
    const int rpn = ranks < cal->ranks_per_node ? ranks : cal->ranks_per_node;
    // Node-shared DP replicas: the TP groups of a node, when they fill it evenly (dist/grid.c).
    int dpn = tp <= rpn && rpn % tp == 0 ? rpn / tp : 1;
    if (dpn > dp || dp % dpn) dpn = 1;
    *s = (projection_step){.ranks = ranks, .tp = tp, .dp = dp, .b = m.B,
                           .nodes = (ranks + rpn - 1) / rpn, .dpn = dpn, .dpx = dp / dpn,
                           .flops = model_flops(&m, T), .params = (double)m.nparams};
    model_layout(&m, c, 1, 0);
    s->params_total = (double)m.nparams;
    model_layout(&m, c, tp, 0);
    m.B = s->b;

    // Ranks beyond the cores share them; a rank's memory bandwidth is its share of the node's.
    const double share = rpn > cal->cores_per_node ? (double)rpn / cal->cores_per_node : 1;
    const double node_bw = cal->node_mem_gbps * 1e9 / rpn;
    const double bw = fmin(cal->mem_gbps * 1e9, node_bw);

    // Compute: the per-step products (forward a_t, y_t; backward dX_t, dh_t: 4 of model_flops'
    // 6) on b x dpn rows at the kernel's rate for them; the weight gradients (2 of 6) are large
    // products at its full rate.
    const double f_step = s->flops * 4 / 6, f_wgrad = s->flops * 2 / 6;
    const double r_step = kernel_rate(cal, (long)s->b * dpn) * cal->step_fraction;
    const double r_wgrad = kernel_rate(cal, 1L << 30) * cal->step_fraction;
    s->t[PROJ_COMPUTE] = share * (f_step / r_step + f_wgrad / r_wgrad);

    // Memory: each member streams 1/dpn of the packed weights per step and direction, which
    // costs what it takes beyond the products it feeds; then zeroing the gradients, packing
    // (forward and backward, each member its 1/dpn), Adam on the member's pieces (read p, g, m,
    // v; write p, m, v) and copying the others' pieces.
    const double stream = 2.0 * T * step_weights(&m) / dpn * sizeof(real);
    const double P = s->params, e = sizeof(real);
    s->mem_bytes = e * (P + 2 * 2 * P / dpn + 7 * P / dpn + 2 * (dpn - 1.0) / dpn * P);
    s->t[PROJ_MEMORY] = share * (fmax(0, stream / bw - f_step / r_step) + s->mem_bytes / bw);

    // TP: per layer and step one allgather of tp x b x (Hl [+ O on top]) and one allreduce of
    // b x K_l. A TP group larger than a node crosses the links between its tp / rpn nodes.
    for (int l = 0; tp > 1 && l < c->L; l++) {
        s->ag_bytes[l] = e * tp * s->b * (m.Hl + (l == c->L - 1 ? c->O : 0));
        s->ar_bytes[l] = e * s->b * m.K[l];
        const int p = tp <= rpn ? tp : rpn, q = tp <= rpn ? 1 : tp / rpn;
        double lat = 0, bwt = 0;
        node_collective(&lat, &bwt, p, s->ag_bytes[l] / q, cal->ag_alpha, cal->ag_beta, 0);
        node_collective(&lat, &bwt, p, s->ar_bytes[l], cal->ar_alpha, cal->ar_beta, 1);
        net_collective(&lat, &bwt, q, s->ag_bytes[l], cal, 0);
        net_collective(&lat, &bwt, q, s->ar_bytes[l], cal, 1);
        s->t[PROJ_TP_LAT] += T * lat;
        s->t[PROJ_TP_BW] += T * bwt;
    }

    // DP: the node's members sum their pieces through shared memory (read every member's piece,
    // write one) around 4 + 4TL + L + 2 syncs (model/share.c); the L + 2 regions' pieces are
    // then summed between the dpx nodes, every rank of a node through its link, not overlapped.
    // The window's scalar reductions (loss, norm, stop flag) are latency over the whole job.
    const double sync = 2 * log2_up(dpn) * cal->ar_alpha;
    const int regions = c->L + 2;
    if (dpn > 1) {
        s->t[PROJ_DP_LAT] += (4.0 + 4.0 * T * c->L + regions) * sync;
        s->t[PROJ_DP_BW] += share * e * (P + P / dpn) / bw;
    }
    s->dp_net_bytes = s->dpx > 1 ? rpn * 2.0 * (s->dpx - 1) / s->dpx * e * P / dpn : 0;
    double lat = 0, bwt = 0;
    net_collective(&lat, &bwt, s->dpx, rpn * e * P / dpn, cal, 1);
    s->t[PROJ_DP_LAT] += regions * lat;
    s->t[PROJ_DP_BW] += bwt;
    if (ranks > 1)
        s->t[PROJ_DP_LAT] += 3 * 2 * log2_up(ranks) * (s->nodes > 1 ? cal->net_alpha : cal->ar_alpha);

    s->rank_bytes = cal->bytes_per_param * P + activation_bytes(&m, T);
    s->fits = s->rank_bytes <= cal->node_gib * 1073741824.0 / rpn;
    for (int k = 0; k < PROJ_NTERMS; k++) s->total += s->t[k];
    return 0;
}

int projection_dominant(const projection_step* s)
{
    int best = 0;
    for (int k = 1; k < PROJ_NTERMS; k++)
        if (s->t[k] > s->t[best]) best = k;
    return best;
}

const char* projection_term_name(int term)
{
    static const char* const names[PROJ_NTERMS] = {"compute", "memory", "TP latency",
                                                   "TP bandwidth", "DP latency", "DP bandwidth"};
    return term >= 0 && term < PROJ_NTERMS ? names[term] : "?";
}

int projection_best(projection_step* s, const model_config* c, int B, int T, int ranks,
                    const projection_calibration* cal)
{
    int found = -1;
    for (int tp = 1; tp <= ranks && tp <= c->H; tp *= 2) {
        projection_step x;
        if (projection_model(&x, c, tp, B, T, ranks, cal)) continue;
        if (found < 0 || x.fits > s->fits || (x.fits == s->fits && x.total < s->total)) *s = x;
        found = 0;
    }
    return found;
}

void projection_print(FILE* out, const model_config* c, int batch, int seq_len, int ranks,
                      const projection_calibration* cal)
{
    fprintf(out, "projection: %d ranks in nodes of %d (%d cores, %.0f GiB, %.0f GB/s memory), "
                 "network %.0f Gb/s and %.2f us per message (assumed)\n",
            ranks, cal->ranks_per_node, cal->cores_per_node, cal->node_gib, cal->node_mem_gbps,
            cal->net_gbps, cal->net_alpha * 1e6);
    fprintf(out, "  calibration: kernel %.0f GFLOP/s at 64 rows (%.0f at 1, %.0f at 8) x step "
                 "fraction %.2f; memory %.1f GB/s per core; node allgather %.2f us + %.3f ns/B, "
                 "allreduce %.2f us + %.3f ns/B\n",
            cal->kernel_gflops[PROJECTION_ROWS - 1], cal->kernel_gflops[0], cal->kernel_gflops[3],
            cal->step_fraction, cal->mem_gbps, cal->ag_alpha * 1e6, cal->ag_beta * 1e9,
            cal->ar_alpha * 1e6, cal->ar_beta * 1e9);
    fprintf(out, "  %-9s %6s %9s %9s %9s %9s %9s %9s %9s %9s %10s  %s\n", "tp x dp", "rows",
            "GiB/rank", "compute", "memory", "TP lat", "TP bw", "DP lat", "DP bw", "step s",
            "tok/s", "dominant");
    projection_step best = {0};
    if (projection_best(&best, c, batch, seq_len, ranks, cal)) {
        fprintf(out, "  no layout: tp must be a power of 2 dividing %d ranks and hidden = %d, "
                     "dp = ranks / tp must divide batch = %d\n", ranks, c->H, batch);
        return;
    }
    for (int tp = 1; tp <= ranks && tp <= c->H; tp *= 2) {
        projection_step s;
        if (projection_model(&s, c, tp, batch, seq_len, ranks, cal)) continue;
        char lay[24];
        snprintf(lay, sizeof lay, "%dx%d", s.tp, s.dp);
        fprintf(out, "  %-9s %6d %8.2f%s", lay, s.b, s.rank_bytes / 1073741824.0, s.fits ? " " : "!");
        for (int k = 0; k < PROJ_NTERMS; k++) fprintf(out, " %9.4f", s.t[k]);
        fprintf(out, " %9.4f %10.0f  %s%s\n", s.total, batch * (double)seq_len / s.total,
                projection_term_name(projection_dominant(&s)),
                s.tp == best.tp ? "  <- fastest" : "");
    }
    fprintf(out, "  fastest: tp %d x dp %d, %.4f s per window, %.0f tok/s, %.2f B parameters, "
                 "%.2f GiB per rank%s; dominant term: %s (%.0f%% of the step)\n",
            best.tp, best.dp, best.total, batch * (double)seq_len / best.total,
            best.params_total / 1e9, best.rank_bytes / 1073741824.0,
            best.fits ? "" : " (does not fit: ! above)",
            projection_term_name(projection_dominant(&best)),
            100 * best.t[projection_dominant(&best)] / best.total);
}
