// SGD with momentum, Adam and AdamW over the flat parameter buffers, the warmup + cosine
// schedule, and global-norm clipping. All tensors share one loop: the buffers have one layout.
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

double optim_grad_norm(model* m)
{
    // [sharded, replicated]: the sharded part is summed over the TP group, the replicated part
    // is the same on every TP rank and taken once.
    double ss[2] = {0, 0};
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        const real* g = m->grads + t->offset;
        double s = 0;
        for (int i = 0; i < t->lrows; i++)
            for (int j = 0; j < t->lcols; j++) s += (double)g[(size_t)i * t->ld + j] * g[(size_t)i * t->ld + j];
        ss[t->replicated] += s;
    }
    if (m->g->tp > 1) dist_tp_allreduce_f64(ss, 1, m->g);
    return sqrt(ss[0] + ss[1]);
}

static void update(real* p, const real* g, real* m1, real* m2, size_t n, const optim_config* o,
                   double lr, double scale, long t)
{
    const double wd = o->weight_decay;
    if (o->kind == OPT_SGD) {
        for (size_t i = 0; i < n; i++) {
            double gi = scale * g[i] + wd * p[i];
            m1[i] = (real)(o->momentum * m1[i] + gi);
            p[i] -= (real)(lr * m1[i]);
        }
        return;
    }
    const double c1 = 1 - pow(o->beta1, (double)t), c2 = 1 - pow(o->beta2, (double)t);
    const int decoupled = o->kind == OPT_ADAMW;
    for (size_t i = 0; i < n; i++) {
        double gi = scale * g[i] + (decoupled ? 0 : wd * p[i]);
        m1[i] = (real)(o->beta1 * m1[i] + (1 - o->beta1) * gi);
        m2[i] = (real)(o->beta2 * m2[i] + (1 - o->beta2) * gi * gi);
        double step = (m1[i] / c1) / (sqrt(m2[i] / c2) + o->eps);
        p[i] -= (real)(lr * (step + (decoupled ? wd * p[i] : 0)));
    }
}

double optim_step(model* m, const optim_config* o, long s, double gnorm, const int* frozen)
{
    double lr = optim_lr(o, s);
    double scale = o->clip > 0 && gnorm > o->clip ? o->clip / gnorm : 1;
    if (!frozen) {
        update(m->params, m->grads, m->m, m->v, m->nparams, o, lr, scale, s + 1);
        return lr;
    }
    // Tensors are strided views; a layer's W block holds Wx, Wh and Wf, so walk rows.
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        if (frozen[k]) continue;
        for (int i = 0; i < t->lrows; i++) {
            size_t off = t->offset + (size_t)i * t->ld;
            update(m->params + off, m->grads + off, m->m + off, m->v + off, (size_t)t->lcols, o,
                   lr, scale, s + 1);
        }
    }
    return lr;
}
