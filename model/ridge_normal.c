// Accumulation of the ridge head's normal equations and the head it solves for (model/ridge_normal.h).
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model/ridge_normal.h"

int ridge_acc_init(ridge_acc* a, const model* m, int R)
{
    const size_t H = (size_t)m->c.H, Hl = (size_t)m->Hl, O = (size_t)m->c.O;
    *a = (ridge_acc){.H = m->c.H, .Hl = m->Hl, .h0 = m->h0, .O = m->c.O, .R = R};
    a->Z = malloc(R * H * sizeof(real));
    a->Y = malloc(R * O * sizeof(real));
    a->Gf = malloc(Hl * H * sizeof(real));
    a->Cf = malloc(Hl * O * sizeof(real));
    a->c = calloc(H, sizeof(real));
    a->G = calloc(Hl * H, sizeof(double));
    a->C = calloc(Hl * O, sizeof(double));
    a->s = calloc(H, sizeof(double));
    a->ys = calloc(O, sizeof(double));
    if (a->Z && a->Y && a->Gf && a->Cf && a->c && a->G && a->C && a->s && a->ys) return 0;
    ridge_acc_free(a);
    return -1;
}

void ridge_acc_free(ridge_acc* a)
{
    free(a->Z), free(a->Y), free(a->Gf), free(a->Cf), free(a->c);
    free(a->G), free(a->C), free(a->s), free(a->ys);
    memset(a, 0, sizeof *a);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Sums the buffered rows into G, C, s, ys. The first block also fixes the shift c (its mean).
static void flush(ridge_acc* a)
{
    const int k = a->k, H = a->H, Hl = a->Hl, O = a->O;
    if (!k) return;
    if (!a->shifted) {
        for (int j = 0; j < H; j++) {
            double sum = 0;
            for (int r = 0; r < k; r++) sum += a->Z[(size_t)r * H + j];
            a->c[j] = (real)(sum / k);
        }
        for (int r = 0; r < k; r++)
            for (int j = 0; j < H; j++) a->Z[(size_t)r * H + j] -= a->c[j];
        a->shifted = 1;
    }
    double t0 = seconds();
    // Gf = Z[:, h0:h0+Hl]^T Z (Hl x H), Cf = Z[:, h0:h0+Hl]^T Y (Hl x O).
    real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, Hl, H, k, 1, a->Z + a->h0, H, a->Z, H, 0,
              a->Gf, H);
    real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, Hl, O, k, 1, a->Z + a->h0, H, a->Y, O, 0,
              a->Cf, O);
    a->gemm_s += seconds() - t0;
    a->gemm_flops += 2.0 * k * Hl * ((double)H + O);
    for (size_t i = 0; i < (size_t)Hl * H; i++) a->G[i] += a->Gf[i];
    for (size_t i = 0; i < (size_t)Hl * O; i++) a->C[i] += a->Cf[i];
    for (int r = 0; r < k; r++) {
        for (int j = 0; j < H; j++) a->s[j] += a->Z[(size_t)r * H + j];
        for (int o = 0; o < O; o++) a->ys[o] += a->Y[(size_t)r * O + o];
    }
    a->n += k;
    a->k = 0;
}

// The full top-layer state h_t of row b after model_forward: the forward scatters it into the
// recurrent input of step t+1 (columns hc .. hc+H of X), or into the carried state after the
// last step (model/forward.c, scatter_hidden).
static const real* top_state(const model* m, const model_batch* bt, int t, int b)
{
    const int l = m->c.L - 1, K = m->K[l];
    if (t + 1 < bt->T) return m->X[l] + ((size_t)(t + 1) * m->B + b) * K + m->hc[l];
    return m->hT[l] + (size_t)b * m->c.H;
}

static void add_row(ridge_acc* a, const real* h, const real* dense, int cls)
{
    if (a->k == a->R) flush(a);
    real* z = a->Z + (size_t)a->k * a->H;
    real* y = a->Y + (size_t)a->k * a->O;
    for (int j = 0; j < a->H; j++) z[j] = h[j] - a->c[j];
    if (dense) {
        memcpy(y, dense, (size_t)a->O * sizeof(real));
    } else {
        memset(y, 0, (size_t)a->O * sizeof(real));
        y[cls] = 1;
    }
    a->k++;
}

void ridge_acc_window(ridge_acc* a, const model* m, const model_batch* bt)
{
    const int B = m->B;
    for (int b = 0; b < B; b++) {
        if (bt->weight && bt->weight[b] == 0) continue;
        if (m->c.task == TASK_CLASSIFY) {
            add_row(a, top_state(m, bt, bt->last[b], b), NULL, bt->label[b]);
            continue;
        }
        for (int t = 0; t < bt->T; t++) {
            const size_t r = (size_t)t * B + b;
            if (m->c.task == TASK_LM) add_row(a, top_state(m, bt, t, b), NULL, bt->next[r]);
            else add_row(a, top_state(m, bt, t, b), bt->target + r * a->O, 0);
        }
    }
}

// Moves this replica's sums from the shift c to the global mean: with d = c - mean,
// sum (h - mean)(h - mean)^T = G + s d^T + d s^T + n d d^T and sum (h - mean) y^T = C + d ys^T;
// summed over the replicas they are the centred G and C of the whole pass.
static void centre(ridge_acc* a, const double* d)
{
    const int H = a->H, O = a->O;
    for (int i = 0; i < a->Hl; i++) {
        const double di = d[a->h0 + i], si = a->s[a->h0 + i];
        for (int j = 0; j < H; j++)
            a->G[(size_t)i * H + j] += si * d[j] + di * a->s[j] + a->n * di * d[j];
        for (int o = 0; o < O; o++) a->C[(size_t)i * O + o] += di * a->ys[o];
    }
}

// Wo (O x Hl, this rank's columns) = W^T and bo = ybar - W^T mean, the TP ranks' parts of
// W^T mean summed.
static void write_head(model* m, const double* W, const double* mean, const double* ybar,
                       double* part)
{
    const int Hl = m->Hl, O = m->c.O;
    for (int o = 0; o < O; o++) {
        part[o] = 0;
        for (int i = 0; i < Hl; i++) part[o] += W[(size_t)i * O + o] * mean[m->h0 + i];
    }
    // Each TP rank holds the rows of W for its hidden units.
    if (m->g->tp > 1) dist_tp_allreduce_f64(part, O, m->g);
    real* Wo = m->params + m->Wo;
    for (int o = 0; o < O; o++) {
        for (int i = 0; i < Hl; i++) Wo[(size_t)o * Hl + i] = (real)W[(size_t)i * O + o];
        m->params[m->bo + o] = (real)(ybar[o] - part[o]);
    }
}

int ridge_acc_solve(ridge_acc* a, model* m, double lambda, long* n)
{
    flush(a);
    const int H = a->H, O = a->O;
    dist_grid* g = m->g;
    double* tot = calloc(1 + (size_t)H + O, sizeof(double)); // [n, sum h (H), sum y (O)]
    double* d = malloc((size_t)H * sizeof(double));
    double* W = malloc((size_t)a->Hl * O * sizeof(double));
    double* part = malloc((size_t)O * sizeof(double));
    // A rank without memory must not leave the others in the solve's collectives.
    int info = dist_any(!tot || !d || !W || !part, g) ? -1 : 0;
    if (!info) {
        tot[0] = (double)a->n;
        for (int j = 0; j < H; j++) tot[1 + j] = a->n * (double)a->c[j] + a->s[j];
        for (int o = 0; o < O; o++) tot[1 + H + o] = a->ys[o];
        // Each DP replica summed its own rows.
        if (g->dp > 1) dist_dp_allreduce_f64(tot, 1 + H + O, g);
        *n = (long)tot[0];
        if (tot[0] < 1) info = -1;
    }
    if (!info) {
        for (int j = 0; j < H; j++) d[j] = a->c[j] - (tot[1 + j] /= tot[0]);
        for (int o = 0; o < O; o++) tot[1 + H + o] /= tot[0];
        centre(a, d);
        // lambda n I, once over the replicas' sum.
        if (g->dp_rank == 0)
            for (int i = 0; i < a->Hl; i++) a->G[(size_t)i * H + a->h0 + i] += lambda * tot[0];
        info = dist_ridge_solve(W, a->G, a->C, H, O, g);
    }
    if (!info) write_head(m, W, tot + 1, tot + 1 + H, part);
    free(tot), free(d), free(W), free(part);
    return info;
}
