// The L2-SP regulariser of fine-tuning: lambda/2 ||theta - theta0||^2 over the transferred
// tensors keeps them near the pretrained point; only its gradient is formed.
#include "model/optim.h"

typedef struct l2_args {
    model* m;
    const real* theta0;
    double lambda;
} l2_args;

static void add_run(size_t off, size_t n, size_t at, void* arg)
{
    (void)at;
    const l2_args* a = arg;
    real* restrict g = a->m->grads + off;
    const real* restrict p = a->m->params + off;
    const real* restrict p0 = a->theta0 + off;
    for (size_t i = 0; i < n; i++) g[i] = (real)(g[i] + a->lambda * ((double)p[i] - p0[i]));
}

void optim_add_l2_init(model* m, const real* theta0, const unsigned char* which, double lambda)
{
    l2_args a = {.m = m, .theta0 = theta0, .lambda = lambda};
    for (int k = 0; k < m->ntensors; k++)
        if (which[k]) model_owned_runs(m, &m->tensors[k], add_run, &a);
}
