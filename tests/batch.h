// The two float64 gradient checks (grad_model.c, grad_cells.c) share their data and their
// finite differences: one random global batch, each DP replica's slice of it, the loss summed
// over replicas, and a central difference of it for every parameter element. Include after
// check.h, model/model.h and an enum naming T (the window) and BG (the global batch).
#ifndef TESTS_BATCH_H
#define TESTS_BATCH_H

#include <stdlib.h>
#include <string.h>

// The global batch, identical on every rank; each DP replica scores its own rows.
typedef struct gdata {
    int32_t tokens[T * BG], next[T * BG], label[BG], last[BG];
    double dense[T * BG * 8], target[T * BG * 8];
} gdata;

typedef struct ldata {
    int32_t tokens[T * BG], next[T * BG], label[BG], last[BG];
    double dense[T * BG * 8], target[T * BG * 8];
    model_batch view;
} ldata;

static inline void make_global(gdata* d, const model_config* c, unsigned seed)
{
    srand(seed);
    for (int i = 0; i < T * BG; i++) {
        d->tokens[i] = rand() % (c->V ? c->V : 1);
        d->next[i] = rand() % c->O;
    }
    for (int b = 0; b < BG; b++) {
        d->label[b] = rand() % c->O;
        d->last[b] = rand() % T;
    }
    for (int i = 0; i < T * BG * 8; i++) {
        d->dense[i] = rand() / (double)RAND_MAX - 0.5;
        d->target[i] = rand() / (double)RAND_MAX - 0.5;
    }
}

// This replica's rows (B of them from dp_rank * B) as the batch of `task`; last: regress scores
// only step last[b] of each row (score = last).
static inline void slice_local(ldata* l, const gdata* d, const model* m, int task, int last)
{
    const int B = m->B, r0 = m->g->dp_rank * B, D = m->c.D, O = m->c.O;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            l->tokens[t * B + b] = d->tokens[t * BG + r0 + b];
            l->next[t * B + b] = d->next[t * BG + r0 + b];
            memcpy(l->dense + (t * B + b) * D, d->dense + (t * BG + r0 + b) * D, D * sizeof(double));
            memcpy(l->target + (t * B + b) * O, d->target + (t * BG + r0 + b) * O, O * sizeof(double));
        }
    for (int b = 0; b < B; b++) l->label[b] = d->label[r0 + b], l->last[b] = d->last[r0 + b];
    memset(&l->view, 0, sizeof l->view);
    l->view.T = T;
    if (task == TASK_REGRESS) {
        l->view.dense = l->dense;
        l->view.target = l->target;
        if (last) l->view.last = l->last;
        return;
    }
    l->view.tokens = l->tokens;
    if (task == TASK_LM) l->view.next = l->next;
    else l->view.label = l->label, l->view.last = l->last;
}

// The case's model on g: c completed with the sizes of its task (6 tokens in and out, 3 dense
// inputs, 3 outputs), initialised, and its biases, which start at zero (or forget_bias), given
// each its own values so that every path is exercised like the weights', and b and bh of the
// GRU differ. Returns 0, or 1 with the failure counted.
static inline int init_case(model* m, model_config* c, dist_grid* g, const char* what)
{
    c->V = c->task == TASK_REGRESS ? 0 : 6;
    c->D = 3;
    c->O = c->task == TASK_LM ? 6 : 3;
    char err[256];
    if (model_init(m, c, g, T, BG, err, sizeof err)) {
        CHECK(0, "%s: %s", what, err);
        return 1;
    }
    CHECK(model_init_params(m) == 0, "init");
    for (int k = 0; k < m->ntensors; k++)
        if (m->tensors[k].rank == 1)
            for (int i = 0; i < m->tensors[k].lrows; i++)
                m->params[m->tensors[k].offset + i] =
                    0.3 * init_normal(11 + k, m->tensors[k].row0 + i, 0);
    return 0;
}

static inline double global_loss(model* m, const model_batch* bt)
{
    model_forward(m, bt);
    double loss = model_loss(m, bt, NULL);
    // The loss of the whole batch: each replica holds its rows' share.
    if (m->g->dp > 1) dist_dp_allreduce_f64(&loss, 1, m->g);
    return loss;
}

// The loss at value keep + eps and keep - eps of *p (p NULL on the ranks that do not hold the
// element: they only take part in the passes), as a central difference; *p restored.
static inline double central_difference(model* m, const model_batch* bt, real* p)
{
    const double eps = 1e-5;
    real keep = p ? *p : 0;
    if (p) *p = keep + eps;
    double up = global_loss(m, bt);
    if (p) *p = keep - eps;
    double down = global_loss(m, bt);
    if (p) *p = keep;
    return (up - down) / (2 * eps);
}

// Truncation error ~eps^2 = 1e-10 and rounding ~1e-16 |loss| / eps ~ 1e-11: 1e-5 relative with
// a 1e-9 absolute floor still catches any missing or wrong term.
static inline void compare(double fd, double an, double* worst, const char* what,
                           const char* name, int i, int j)
{
    double err = fabs(fd - an) / fmax(fmax(fabs(fd), fabs(an)), 1e-6);
    if (err > *worst) *worst = err;
    CHECK(check_close(fd, an, 1e-5, 1e-4), "%s %s[%d,%d]: fd %.10g analytic %.10g", what, name,
          i, j, fd, an);
}

static inline int holds(const model_tensor* t, int i, int j)
{
    return i >= t->row0 && i < t->row0 + t->lrows && j >= t->col0 && j < t->col0 + t->lcols;
}

// Every element of every tensor against the gradient in m->grads (complete, model_gather): the
// rank holding the element perturbs it, every rank runs the passes. Returns the worst relative
// error.
static inline double check_params(model* m, const model_batch* bt, const char* what)
{
    double worst = 0;
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        for (int i = 0; i < t->rows; i++)
            for (int j = 0; j < t->cols; j++) {
                real* p = holds(t, i, j) ? m->params + t->offset +
                                               (size_t)(i - t->row0) * t->ld + (j - t->col0)
                                         : NULL;
                double fd = central_difference(m, bt, p);
                if (p) compare(fd, m->grads[p - m->params], &worst, what, t->name, i, j);
            }
    }
    return worst;
}

#endif
