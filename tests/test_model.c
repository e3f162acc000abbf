// The float32 model: initialisation independent of the layout, orthogonal Wh, an overfit run,
// and training trajectories at every TP x DP layout of the world against one rank's.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include "model/init.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/check.h"

enum { T = 8, BG = 4, STEPS = 20 };

static model_config tiny(void)
{
    return (model_config){.task = TASK_LM, .act = ACT_TANH, .feedback = FB_ALL,
                          .feedback_source = FBS_MODEL, .wh_init = INIT_ORTHOGONAL,
                          .V = 16, .D = 8, .H = 16, .L = 2, .O = 16, .seed = 5};
}

// Element (i, j) of tensor k as this rank holds it, or NAN if it does not hold it.
static double element(const model* m, int k, int i, int j)
{
    const model_tensor* t = &m->tensors[k];
    if (i < t->row0 || i >= t->row0 + t->lrows || j < t->col0 || j >= t->col0 + t->lcols)
        return NAN;
    return m->params[t->offset + (size_t)(i - t->row0) * t->ld + (j - t->col0)];
}

// A shard's rows made directly at (tp, tp_rank) equal the same rows of the full matrix.
static void test_init_layout(void)
{
    model_config c = tiny();
    dist_grid one = {.tp = 1, .dp = 1};
    model full;
    char err[256];
    CHECK(model_init(&full, &c, &one, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&full);
    for (int tp = 2; tp <= 8; tp *= 2)
        for (int r = 0; r < tp; r++) {
            dist_grid shard = {.tp = tp, .tp_rank = r, .dp = 1};
            model m;
            CHECK(model_init(&m, &c, &shard, T, BG, err, sizeof err) == 0, "%s", err);
            model_init_params(&m);
            long same = 0, held = 0;
            for (int k = 0; k < m.ntensors; k++)
                for (int i = 0; i < m.tensors[k].rows; i++)
                    for (int j = 0; j < m.tensors[k].cols; j++) {
                        double v = element(&m, k, i, j);
                        if (isnan(v)) continue;
                        held++;
                        same += v == element(&full, k, i, j);
                    }
            CHECK(same == held && held > 0, "tp %d rank %d: %ld of %ld elements equal", tp, r, same, held);
            model_free(&m);
        }
    model_free(&full);
}

// ||Q^T Q - I||_max of every Wh, and identity init is the identity.
static void test_orthogonal(void)
{
    const int n = 48;
    double* Q = malloc(sizeof(double) * n * n);
    CHECK(init_orthogonal(Q, n, init_key(3, "layer0/Wh")) == 0, "QR failed");
    double worst = 0;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double s = 0;
            for (int r = 0; r < n; r++) s += Q[a * n + r] * Q[b * n + r];
            worst = fmax(worst, fabs(s - (a == b)));
        }
    CHECK(worst < 1e-12, "||Q^T Q - I|| = %g", worst);
    free(Q);
}

static void fill_batch(int32_t* tok, int32_t* next, long step, int row0, int B, int V)
{
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            tok[t * B + b] = (int32_t)(init_uniform(21, step, t * BG + row0 + b) * V);
            next[t * B + b] = (int32_t)(init_uniform(22, step, t * BG + row0 + b) * V);
        }
}

// STEPS Adam steps on fresh batches; returns the global loss of each step in traj.
static void trajectory(dist_grid* g, double* traj, long fixed_batch)
{
    model_config c = tiny();
    model m;
    char err[256];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    optim_config o = {.kind = OPT_ADAM, .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                      .clip = 1.0, .steps = STEPS};
    int32_t tok[T * BG], next[T * BG];
    model_batch bt = {.T = T, .tokens = tok, .next = next};
    for (int s = 0; s < STEPS; s++) {
        fill_batch(tok, next, fixed_batch >= 0 ? fixed_batch : s, g->dp_rank * m.B, m.B, c.V);
        model_reset_state(&m);
        model_zero_grad(&m);
        model_forward(&m, &bt);
        double loss = model_loss(&m, &bt, NULL);
        model_backward(&m, &bt);
        if (g->dp > 1) dist_dp_allreduce_f64(&loss, 1, g);
        optim_step(&m, &o, s, optim_grad_norm(&m), NULL);
        traj[s] = loss;
    }
    model_free(&m);
}

// A tiny model drives the loss on one repeated batch near zero.
static void test_overfit(void)
{
    dist_grid one;
    char err[128];
    dist_grid_init(MPI_COMM_SELF, 1, &one, err, sizeof err);
    model_config c = tiny();
    model m;
    CHECK(model_init(&m, &c, &one, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    optim_config o = {.kind = OPT_ADAM, .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                      .steps = 300};
    int32_t tok[T * BG], next[T * BG];
    fill_batch(tok, next, 0, 0, BG, c.V);
    for (int b = 0; b < BG; b++) tok[b] = b; // distinct first tokens: no two rows share a context
    model_batch bt = {.T = T, .tokens = tok, .next = next};
    double first = 0, loss = 0;
    for (int s = 0; s < o.steps; s++) {
        model_reset_state(&m);
        model_zero_grad(&m);
        model_forward(&m, &bt);
        loss = model_loss(&m, &bt, NULL);
        if (s == 0) first = loss;
        model_backward(&m, &bt);
        optim_step(&m, &o, s, optim_grad_norm(&m), NULL);
    }
    CHECK(first > 2.0 && loss < 0.05, "overfit: loss %g -> %g", first, loss);
    model_free(&m);
    dist_grid_free(&one);
}

// Every layout of the world follows the one-rank loss trajectory to float rounding.
static void test_layouts(int world_rank, int world)
{
    double ref[STEPS], got[STEPS];
    dist_grid one;
    char err[128];
    dist_grid_init(MPI_COMM_SELF, 1, &one, err, sizeof err);
    trajectory(&one, ref, -1);
    dist_grid_free(&one);
    for (int tp = 1; tp <= world; tp *= 2) {
        if (world % tp || world == 1) continue;
        dist_grid g;
        dist_grid_init(MPI_COMM_WORLD, tp, &g, err, sizeof err);
        trajectory(&g, got, -1);
        double worst = 0;
        for (int s = 0; s < STEPS; s++) {
            worst = fmax(worst, fabs(got[s] - ref[s]) / ref[s]);
            CHECK(check_close(got[s], ref[s], 1e-5, 0), "tp %d dp %d step %d: loss %.9g, one rank %.9g",
                  g.tp, g.dp, s + 1, got[s], ref[s]);
        }
        if (world_rank == 0) printf("tp %d x dp %d: %d steps, worst relative loss difference %.2e\n", g.tp, g.dp, STEPS, worst);
        dist_grid_free(&g);
    }
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world == 1) {
        test_init_layout();
        test_orthogonal();
        test_overfit();
    }
    test_layouts(rank, world);
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails != 0;
}
