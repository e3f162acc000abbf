// The optimisers and the schedule against a float64 reference written here from the formulas
// (model/optim.h conventions: step s is 0-based, Adam's bias correction uses t = s + 1 - the
// tensor's start step (0 but in the late-start test), weight
// decay is L2 in the gradient for sgd and adam and decoupled for adamw, the clip scales the
// gradient by clip / norm when the global norm exceeds it, moments and parameters are stored in
// float32). Every element of every tensor of a small model gets given gradients for a few
// steps, at every TP x DP layout of the world; each rank's parameters must equal the reference's
// elements to 2e-6 relative. The learning rate is checked at every step of several schedules,
// including fixed points of warmup and cosine; a frozen tensor (learning-rate factor 0) keeps its
// bits.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include "model/init.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/check.h"

enum { STEPS = 6, T = 4, BG = 4 };

static model_config tiny(void)
{
    return (model_config){.task = TASK_LM, .act = ACT_TANH, .feedback = FB_ALL, .V = 8, .D = 4,
                          .H = 8, .L = 2, .O = 8, .seed = 3};
}

// Starting value and the gradient of step s of element (row, col) of tensor k, by coordinates.
static real start_value(int k, long row, long col)
{
    return (real)(2 * init_uniform(40 + k, row, col) - 1);
}

static real gradient(int s, int k, long row, long col)
{
    return (real)(2 * init_uniform(100 + 16 * s + k, row, col) - 1);
}

// Learning rate at 0-based step s: linear warmup to lr over `warmup` steps (step s gets
// lr (s+1) / warmup), then half a cosine from lr down towards lr_min over the remaining steps.
static double ref_lr(const optim_config* o, long s)
{
    if (s < o->warmup) return o->lr * (s + 1.0) / o->warmup;
    if (o->steps <= o->warmup) return o->lr;
    double x = fmin(1.0, (double)(s - o->warmup) / (o->steps - o->warmup));
    return o->lr_min + (o->lr - o->lr_min) * (1 + cos(M_PI * x)) / 2;
}

// One element's trajectory over STEPS steps with clip scales scale[s], trained from step first
// (moments from zero there); returns the final value.
static double ref_element(const optim_config* o, int k, long row, long col, const double* scale,
                          int first)
{
    float p = start_value(k, row, col), m1 = 0, m2 = 0;
    for (int s = first; s < STEPS; s++) {
        const double lr = ref_lr(o, s), g = scale[s] * gradient(s, k, row, col);
        if (o->kind == OPT_SGD) {
            m1 = (float)(o->momentum * m1 + g + o->weight_decay * p);
            p = (float)(p - (double)(float)(lr * m1));
            continue;
        }
        const double gi = o->kind == OPT_ADAM ? g + o->weight_decay * p : g;
        m1 = (float)(o->beta1 * m1 + (1 - o->beta1) * gi);
        m2 = (float)(o->beta2 * m2 + (1 - o->beta2) * gi * gi);
        const int t = s + 1 - first;
        const double mhat = m1 / (1 - pow(o->beta1, t)), vhat = m2 / (1 - pow(o->beta2, t));
        double step = mhat / (sqrt(vhat) + o->eps);
        if (o->kind == OPT_ADAMW) step += o->weight_decay * p;
        p = (float)(p - (double)(float)(lr * step));
    }
    return p;
}

// The rank's element (i, j) of tensor k, NULL if it does not hold it.
static real* held(model* m, real* buf, int k, int i, int j)
{
    const model_tensor* t = &m->tensors[k];
    if (i < t->row0 || i >= t->row0 + t->lrows || j < t->col0 || j >= t->col0 + t->lcols) return NULL;
    return buf + t->offset + (size_t)(i - t->row0) * t->ld + (j - t->col0);
}

// Sets every held element of buf from f(s, k, row, col) (start_value when s < 0).
static void set_all(model* m, real* buf, int s)
{
    for (int k = 0; k < m->ntensors; k++)
        for (int i = 0; i < m->tensors[k].rows; i++)
            for (int j = 0; j < m->tensors[k].cols; j++) {
                real* e = held(m, buf, k, i, j);
                if (e) *e = s < 0 ? start_value(k, i, j) : gradient(s, k, i, j);
            }
}

// Global gradient norm of step s over every element of the model, and the clip scale.
static double ref_norm(const model* m, int s)
{
    double ss = 0;
    for (int k = 0; k < m->ntensors; k++)
        for (int i = 0; i < m->tensors[k].rows; i++)
            for (int j = 0; j < m->tensors[k].cols; j++) ss += pow(gradient(s, k, i, j), 2);
    return sqrt(ss);
}

// share: as dist_grid_init (0: the node's DP replicas share memory, 1: none does, 2: in pairs);
// whatever it is, each replica updates only its sub-piece (ZeRO-1 over all of DP). The step's
// collectives are counted: the norm's allreduce over DP (dp > 1) and over TP (tp > 1), one
// allgather of the updated parameters per region over dpx (dpx > 1) and the two syncs of the
// node's copy (dpn > 1).
static void test_update(const char* what, optim_config o, int tp, int share, int freeze_k)
{
    dist_grid g;
    char err[256];
    if (dist_grid_init(MPI_COMM_WORLD, tp, share, &g, err, sizeof err)) return;
    model_config c = tiny();
    model m;
    CHECK(model_init(&m, &c, &g, T, BG, err, sizeof err) == 0, "%s", err);
    // Per-tensor learning-rate factors: 0 freezes tensor freeze_k.
    double factor[MODEL_MAX_TENSORS];
    for (int k = 0; k < MODEL_MAX_TENSORS; k++) factor[k] = k != freeze_k;
    set_all(&m, m.params, -1);
    double scale[STEPS];
    for (int s = 0; s < STEPS; s++) {
        set_all(&m, m.grads, s);
        dist_reset_counts(&g);
        double want = ref_norm(&m, s), norm = optim_grad_norm(&m);
        CHECK(check_close(norm, want, 1e-12, 0), "%s step %d: grad norm %.17g, want %.17g", what, s, norm, want);
        scale[s] = o.clip > 0 && want > o.clip ? o.clip / want : 1;
        double lr = optim_step(&m, &o, s, norm, freeze_k >= 0 ? factor : NULL, NULL);
        const long counts[DIST_NKINDS] = {[DIST_ALLREDUCE] = (g.dp > 1) + (g.tp > 1),
                                          [DIST_IALLGATHER] = g.dpx > 1 ? model_regions(&m) : 0,
                                          [DIST_SYNC] = 2 * (g.dpn > 1)};
        CHECK(!memcmp(counts, g.count, sizeof counts), "%s tp %d dp %d (%d x %d) step %d: %ld "
              "allreduces, %ld allgathers, %ld syncs; want %ld, %ld, %ld", what, g.tp, g.dp, g.dpn,
              g.dpx, s, g.count[DIST_ALLREDUCE], g.count[DIST_IALLGATHER], g.count[DIST_SYNC],
              counts[DIST_ALLREDUCE], counts[DIST_IALLGATHER], counts[DIST_SYNC]);
        CHECK(check_close(lr, ref_lr(&o, s), 1e-15, 0), "%s step %d: lr %.17g, want %.17g", what, s, lr, ref_lr(&o, s));
    }
    double worst = 0;
    long moved = 0, elements = 0;
    for (int k = 0; k < m.ntensors; k++)
        for (int i = 0; i < m.tensors[k].rows; i++)
            for (int j = 0; j < m.tensors[k].cols; j++) {
                const real* e = held(&m, m.params, k, i, j);
                if (!e) continue;
                double want = k == freeze_k ? start_value(k, i, j) : ref_element(&o, k, i, j, scale, 0);
                if (k == freeze_k) CHECK(*e == start_value(k, i, j), "%s: frozen %s changed", what, m.tensors[k].name);
                worst = fmax(worst, fabs(*e - want) / fmax(fabs(want), 1e-2));
                moved += *e != start_value(k, i, j);
                elements++;
            }
    CHECK(worst <= 2e-6, "%s tp %d dp %d: parameters off the reference by %.2e relative", what, g.tp, g.dp, worst);
    CHECK(moved > elements / 2, "%s: only %ld of %ld elements moved", what, moved, elements);
    if (g.world_rank == 0)
        printf("%-28s tp %d x dp %d (%d x %d): %d steps, %ld elements, within %.1e of the reference\n",
               what, g.tp, g.dp, g.dpn, g.dpx, STEPS, elements, worst);
    model_free(&m);
    dist_grid_free(&g);
}

// A tensor that starts training at step LATE (staged unfreezing) with zero moments: its first
// update is a fresh Adam first step, lr g / (|g| + eps) elementwise whatever the global step,
// and its later steps follow the reference with t counted from LATE; the others are unchanged.
static void test_late_start(int tp, int share)
{
    enum { LATE = 3, K = 1 };
    dist_grid g;
    char err[256];
    if (dist_grid_init(MPI_COMM_WORLD, tp, share, &g, err, sizeof err)) return;
    const optim_config o = {.kind = OPT_ADAM, .lr = 0.05, .lr_min = 0.01, .beta1 = 0.9,
                            .beta2 = 0.99, .eps = 1e-8, .steps = STEPS};
    model_config c = tiny();
    model m;
    CHECK(model_init(&m, &c, &g, T, BG, err, sizeof err) == 0, "%s", err);
    double factor[MODEL_MAX_TENSORS], ones[STEPS];
    long start[MODEL_MAX_TENSORS] = {0};
    start[K] = LATE;
    for (int s = 0; s < STEPS; s++) ones[s] = 1;
    set_all(&m, m.params, -1);
    double first = 0;
    for (int s = 0; s < STEPS; s++) {
        for (int k = 0; k < MODEL_MAX_TENSORS; k++) factor[k] = k != K || s >= LATE;
        set_all(&m, m.grads, s);
        optim_step(&m, &o, s, optim_grad_norm(&m), factor, start);
        if (s != LATE) continue;
        const model_tensor* t = &m.tensors[K];
        for (int i = 0; i < t->rows; i++)
            for (int j = 0; j < t->cols; j++) {
                const real* e = held(&m, m.params, K, i, j);
                if (!e) continue;
                const double gr = gradient(s, K, i, j), p0 = start_value(K, i, j);
                const double want = p0 - optim_lr(&o, s) * gr / (fabs(gr) + o.eps);
                // In float32 spacings: the moments and p - step are each rounded once.
                first = fmax(first, fabs(*e - want) / (fmax(fabs(p0), fabs(want - p0)) * 0x1p-23));
            }
    }
    double worst = 0;
    for (int k = 0; k < m.ntensors; k++)
        for (int i = 0; i < m.tensors[k].rows; i++)
            for (int j = 0; j < m.tensors[k].cols; j++) {
                const real* e = held(&m, m.params, k, i, j);
                if (!e) continue;
                const double want = ref_element(&o, k, i, j, ones, k == K ? LATE : 0);
                worst = fmax(worst, fabs(*e - want) / fmax(fabs(want), 1e-2));
            }
    CHECK(first <= 4, "late start tp %d: first Adam step of %s off lr g/|g| by %.2f float32 spacings", g.tp, m.tensors[K].name, first);
    CHECK(worst <= 2e-6, "late start tp %d dp %d: parameters off the reference by %.2e relative", g.tp, g.dp, worst);
    if (g.world_rank == 0)
        printf("adam, %s from step %d      tp %d x dp %d (%d x %d): first step within %.2f float32 "
               "spacings of lr g/|g|, %d steps within %.1e of the reference\n", m.tensors[K].name,
               LATE, g.tp, g.dp, g.dpn, g.dpx, first, STEPS, worst);
    model_free(&m);
    dist_grid_free(&g);
}

// The schedule at every step, against the reference and against values fixed by hand.
static void test_schedule(void)
{
    const optim_config shapes[] = {
        {.lr = 1, .lr_min = 0.1, .warmup = 4, .steps = 12}, {.lr = 0.3, .lr_min = 0, .warmup = 0, .steps = 7},
        {.lr = 2, .lr_min = 0.5, .warmup = 5, .steps = 5}, {.lr = 1, .lr_min = 0.2, .warmup = 1, .steps = 100}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (long s = 0; s < shapes[i].steps + 3; s++)
            CHECK(check_close(optim_lr(&shapes[i], s), ref_lr(&shapes[i], s), 1e-15, 1e-300),
                  "schedule %zu step %ld: %.17g, want %.17g", i, s, optim_lr(&shapes[i], s), ref_lr(&shapes[i], s));
    const optim_config* o = &shapes[0]; // warmup 4 of 12 steps, lr 1 -> 0.1
    const struct { long s; double lr; } fixed[] = {
        {0, 0.25}, {1, 0.5}, {3, 1.0}, {4, 1.0}, {8, 0.55}, {12, 0.1}, {20, 0.1}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        CHECK(check_close(optim_lr(o, fixed[i].s), fixed[i].lr, 1e-15, 0), "lr at step %ld: %.17g, want %g",
              fixed[i].s, optim_lr(o, fixed[i].s), fixed[i].lr);
    // The last step is one step short of the floor: x = 7/8 of the half cosine.
    CHECK(check_close(optim_lr(o, 11), 0.1 + 0.45 * (1 + cos(M_PI * 7 / 8)), 1e-15, 0), "last step lr %.17g", optim_lr(o, 11));
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    test_schedule();
    const optim_config base = {.lr = 0.05, .lr_min = 0.01, .momentum = 0.9, .beta1 = 0.9,
                               .beta2 = 0.99, .eps = 1e-8, .steps = STEPS};
    // Every sharing of the DP replicas: all on the node (0), none (1), in pairs (2, at dp 4).
    for (int tp = 1; tp <= world; tp *= 2)
        for (int share = 0; share <= 2; share++) {
            if (world % tp || (share && world / tp == 1) || (share == 2 && world / tp != 4)) continue;
            optim_config o = base;
            o.kind = OPT_SGD;
            test_update("sgd momentum", o, tp, share, -1);
            o.weight_decay = 0.1;
            test_update("sgd momentum, L2 decay", o, tp, share, -1);
            o = base;
            o.kind = OPT_ADAM;
            test_update("adam", o, tp, share, -1);
            o.weight_decay = 0.1;
            test_update("adam, L2 decay", o, tp, share, -1);
            o.kind = OPT_ADAMW;
            test_update("adamw, decoupled decay", o, tp, share, -1);
            o.clip = 0.5, o.warmup = 2;
            test_update("adamw, clip 0.5, warmup 2", o, tp, share, -1);
            o = base;
            o.kind = OPT_SGD, o.clip = 1, o.warmup = 3;
            test_update("sgd, clip 1, warmup 3", o, tp, share, -1);
            test_update("sgd, layer0/Wh frozen", o, tp, share, 1);
            test_late_start(tp, share);
        }
    MPI_Finalize();
    return check_failures ? 1 : 0;
}
