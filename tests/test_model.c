// The float32 model: initialisation independent of the layout, orthogonal Wh, an overfit run,
// and training trajectories at every TP x DP layout of the world against one rank's.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include "model/init.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/check.h"
#include "tests/layouts.h"

enum { T = 8, BG = 4, STEPS = 20 };

#include "tests/trajectory.h"

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

// Every element a rank holds at (tp, dp) equals the same element of the one-rank model; Wh
// comes from ScaLAPACK QR on a different process grid, so it may differ by float rounding.
static void test_init_layout(dist_grid* g, const model* full)
{
    model_config c = tiny();
    model m;
    char err[256];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    CHECK(model_init_params(&m) == 0, "init failed");
    long same = 0, held = 0;
    double worst = 0;
    for (int k = 0; k < m.ntensors; k++)
        for (int i = 0; i < m.tensors[k].rows; i++)
            for (int j = 0; j < m.tensors[k].cols; j++) {
                double v = element(&m, k, i, j), ref = element(full, k, i, j);
                if (isnan(v)) continue;
                held++;
                same += v == ref;
                worst = fmax(worst, fabs(v - ref));
            }
    CHECK(held > 0 && worst < 1e-6, "tp %d dp %d: max difference %g from one rank", g->tp, g->dp, worst);
    if (g->world_rank == 0)
        printf("init at tp %d x dp %d: %ld of %ld elements bit-identical to one rank, max diff %.1e\n",
               g->tp, g->dp, same, held, worst);
    model_free(&m);
}

// ||Wh^T Wh - I||_max for the one-rank model's Wh of every layer.
static void test_orthogonal(const model* full)
{
    const int H = full->c.H;
    double worst = 0;
    for (int k = 0; k < full->ntensors; k++) {
        const model_tensor* t = &full->tensors[k];
        if (!strstr(t->name, "/Wh")) continue;
        for (int a = 0; a < H; a++)
            for (int b = 0; b < H; b++) {
                double s = 0;
                for (int r = 0; r < H; r++) s += element(full, k, r, a) * element(full, k, r, b);
                worst = fmax(worst, fabs(s - (a == b)));
            }
    }
    CHECK(worst < 1e-5, "||Q^T Q - I|| = %g", worst);
}

// The optimiser state is split over the DP replicas without overlap or gap: the sub-pieces of
// the DP group's ranks tile every region (their lengths and the sums of end^2 - start^2, which
// telescope, add up to the region's), and each rank's allocation is 1/dp of one rank's.
static void check_optim_share(const model* m)
{
    const dist_grid* g = m->g;
    const size_t own = model_own_elems(m), bytes = model_optim_bytes(m, g->dpn, g->dpx),
                 whole = model_optim_bytes(m, 1, 1);
    double held[2] = {0, 0}, want[2] = {0, 0};
    for (int i = 0; i < model_regions(m); i++) {
        size_t off, n, at, a, b, last, len;
        model_own(m, i, &off, &n, &at);
        held[0] += (double)n;
        held[1] += (double)(off + n) * (double)(off + n) - (double)off * (double)off;
        model_piece(m, i, 0, &a, &len);
        model_piece(m, i, g->dpn - 1, &last, &len);
        b = last + len;
        want[0] += (double)(b - a);
        want[1] += (double)b * (double)b - (double)a * (double)a;
    }
    dist_dp_allreduce_f64(held, 2, m->g);
    CHECK(held[0] == want[0] && held[1] == want[1] && want[0] == (double)m->nparams,
          "tp %d dp %d (%d x %d): the sub-pieces hold %.0f of %zu elements (%.0f, want %.0f)",
          g->tp, g->dp, g->dpn, g->dpx, held[0], m->nparams, held[1], want[1]);
    // Each moment rounds up to 64 bytes, and each region's split to whole elements.
    const size_t slack = 2 * (16 + 2 * (size_t)model_regions(m)) * sizeof(real);
    CHECK(own * 2 * sizeof(real) <= bytes && bytes * g->dp <= whole + g->dp * slack &&
              bytes * g->dp + g->dp * slack >= whole,
          "tp %d dp %d (%d x %d): %zu optimiser bytes per rank (%zu elements its own), %zu on one",
          g->tp, g->dp, g->dpn, g->dpx, bytes, own, whole);
    if (g->world_rank == 0 && g->dp > 1)
        printf("tp %d x dp %d (%d x %d): optimiser state %zu bytes per rank, %zu unsharded "
               "(x %.3f)\n", g->tp, g->dp, g->dpn, g->dpx, bytes, whole, (double)bytes / whole);
}

// STEPS Adam steps on fresh batches; the global loss and gradient norm of each step in traj and
// norms.
static void trajectory(dist_grid* g, double* traj, double* norms, long fixed_batch)
{
    model_config c = tiny();
    model m;
    char err[256];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    check_optim_share(&m);
    int32_t tok[T * BG], next[T * BG];
    model_batch bt = {.T = T, .tokens = tok, .next = next};
    for (int s = 0; s < STEPS; s++) {
        fill_batch(tok, next, fixed_batch >= 0 ? fixed_batch : s, g->dp_rank * m.B, m.B, c.V);
        traj[s] = train_step(&m, &bt, s, 0, &norms[s]);
    }
    model_free(&m);
}

// A tiny model drives the loss on one repeated batch near zero.
static void test_overfit(void)
{
    dist_grid one;
    char err[128];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
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
        optim_step(&m, &o, s, optim_grad_norm(&m), NULL, NULL);
    }
    CHECK(first > 2.0 && loss < 0.05, "overfit: loss %g -> %g", first, loss);
    model_free(&m);
    dist_grid_free(&one);
}

// Every layout of the world follows the one-rank loss and gradient norm trajectories to float
// rounding.
static void test_layouts(int world)
{
    double ref[STEPS], got[STEPS], ref_norm[STEPS], norm[STEPS];
    dist_grid one;
    char err[128];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    trajectory(&one, ref, ref_norm, -1);
    dist_grid_free(&one);
    layout ls[MAX_LAYOUTS];
    const int nl = world > 1 ? layouts(world, ls) : 0; // one rank is the reference itself
    for (int l = 0; l < nl; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        trajectory(&g, got, norm, -1);
        check_trajectory(&g, "", got, norm, ref, ref_norm, 1e-5);
        dist_grid_free(&g);
    }
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    dist_grid one;
    char err[128];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    model_config c = tiny();
    model full;
    CHECK(model_init(&full, &c, &one, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&full);
    test_orthogonal(&full);
    for (int tp = 1; tp <= world; tp *= 2) {
        if (world % tp) continue;
        dist_grid g;
        dist_grid_init(MPI_COMM_WORLD, tp, 0, &g, err, sizeof err);
        test_init_layout(&g, &full);
        dist_grid_free(&g);
    }
    model_free(&full);
    dist_grid_free(&one);
    if (world == 1) test_overfit();
    test_layouts(world);
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails != 0;
}
