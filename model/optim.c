// SGD with momentum, Adam and AdamW over the flat parameter buffers, the warmup + cosine
// schedule, and global-norm clipping. All tensors share one loop: params and grads have one
// layout. Each DP replica updates the sub-pieces of the buffers it owns and keeps the moments of
// those alone, one after another (model/share.c).
#include <math.h>
#include "model/optim.h"

double optim_lr(const optim_config* o, long s)
{
    if (s < o->warmup) return o->lr * (double)(s + 1) / o->warmup;
    long decay = o->steps - o->warmup;
    if (decay <= 0) return o->lr;
    double x = (double)(s - o->warmup) / decay;
    if (x > 1) x = 1;
    return o->lr_min + 0.5 * (o->lr - o->lr_min) * (1 + cos(M_PI * x));
}

typedef struct sum_sq {
    const real* g;
    double s;
} sum_sq;

static void add_sq(size_t off, size_t n, size_t at, void* arg)
{
    (void)at;
    sum_sq* q = arg;
    for (size_t i = off; i < off + n; i++) q->s += (double)q->g[i] * q->g[i];
}

double optim_grad_norm(model* m)
{
    // [sharded, replicated]: the DP replicas each count their own sub-pieces; the sharded part
    // is summed over the TP group, the replicated part is the same on every TP rank and taken
    // once.
    // Frozen tensors (no_grad) are left out: a gated layer forms the gradient of a frozen gate's
    // rows when other gates of the same columns train (one product for all of them).
    double ss[2] = {0, 0};
    for (int k = 0; k < m->ntensors; k++) {
        if (m->no_grad[k]) continue;
        sum_sq q = {.g = m->grads};
        model_owned_runs(m, &m->tensors[k], add_sq, &q);
        ss[m->tensors[k].replicated] += q.s;
    }
    // Each DP replica squared only its sub-pieces: the whole gradient's norm is their sum.
    if (m->g->dp > 1) dist_dp_allreduce_f64(ss, 2, m->g);
    // Sharded tensors are split over the TP ranks; replicated ones are counted once.
    if (m->g->tp > 1) dist_tp_allreduce_f64(ss, 1, m->g);
    return sqrt(ss[0] + ss[1]);
}

// Elementwise in double (no sums, so any order of elements gives the same bits). restrict and
// -fno-math-errno (Makefile) let the compiler run it in vector registers, sqrt included.
static void update(real* restrict p, const real* restrict g, real* restrict m1,
                   real* restrict m2, size_t n, const optim_config* o, double lr, double scale,
                   long t)
{
    const double wd = o->weight_decay, b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    if (o->kind == OPT_SGD) {
        const double mom = o->momentum;
        for (size_t i = 0; i < n; i++) {
            double gi = scale * g[i] + wd * p[i];
            m1[i] = (real)(mom * m1[i] + gi);
            p[i] -= (real)(lr * m1[i]);
        }
        return;
    }
    const double c1 = 1 - pow(b1, (double)t), c2 = 1 - pow(b2, (double)t);
    // Adam puts weight decay into the gradient, AdamW into the step.
    const double wd_grad = o->kind == OPT_ADAMW ? 0 : wd, wd_step = o->kind == OPT_ADAMW ? wd : 0;
    for (size_t i = 0; i < n; i++) {
        double gi = scale * g[i] + wd_grad * p[i];
        m1[i] = (real)(b1 * m1[i] + (1 - b1) * gi);
        m2[i] = (real)(b2 * m2[i] + (1 - b2) * gi * gi);
        double step = (m1[i] / c1) / (sqrt(m2[i] / c2) + eps);
        p[i] -= (real)(lr * (step + wd_step * p[i]));
    }
}

typedef struct step_args {
    model* m;
    const optim_config* o;
    double lr, scale;
    long t;
} step_args;

static void update_run(size_t off, size_t n, size_t at, void* arg)
{
    step_args* a = arg;
    model* m = a->m;
    update(m->params + off, m->grads + off, m->m + at, m->v + at, n, a->o, a->lr, a->scale,
           a->t);
}

double optim_step(model* m, const optim_config* o, long s, double gnorm, const double* scale,
                  const long* start)
{
    double lr = optim_lr(o, s);
    double clip = o->clip > 0 && gnorm > o->clip ? o->clip / gnorm : 1;
    step_args a = {.m = m, .o = o, .lr = lr, .scale = clip, .t = s + 1};
    int late = 0;
    for (int k = 0; start && k < m->ntensors; k++) late |= start[k] != 0;
    // This rank updates its sub-pieces region by region, and each region's exchange with the
    // other replicas starts while the next is updated.
    for (int r = 0, k = 0; r < model_regions(m); r++) {
        if (!scale && !late) {
            size_t off, n, at;
            model_own(m, r, &off, &n, &at);
            update_run(off, n, at, &a);
        }
        // Tensors are strided views; a layer's W block holds Wx, Wh and Wf, so walk rows. The
        // tensors lie in the order of the regions.
        for (; (scale || late) && k < m->ntensors && model_region_of(m, m->tensors[k].offset) == r;
             k++) {
            const double f = scale ? scale[k] : 1;
            a.lr = lr * f;
            // Adam's bias correction counts the steps since this tensor's moments began.
            a.t = s + 1 - (start ? start[k] : 0);
            if (f != 0) model_owned_runs(m, &m->tensors[k], update_run, &a);
        }
        model_gather_start(m, m->params, r);
    }
    model_gather_finish(m, m->params);
    return lr;
}
