// Every cell of the registry (model/cell.h) in float32: its initialisation (a forget-gate bias
// where the cell declares one, zero biases otherwise, each gate's Wh orthogonal, every layout's
// elements those of one rank), 20-step training trajectories (from zero state each step, and
// carrying h, f and the cell's state) at every TP x DP layout of the world against one rank's,
// the collectives of one step as the cell's declared products make them, checkpoints written at
// one layout and read at every other (parameters, moments and carried state h, f and the cell's
// state, every element bit-identical), and a run with carried state resumed from its
// checkpoint continuing the uninterrupted run bit for bit on the writer's layout.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include "io/checkpoint.h"
#include "model/init.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/check.h"
#include "tests/elements.h"
#include "tests/counts.h"
#include "tests/layouts.h"

enum { T = 8, BG = 4, STEPS = 20, RESUME_AT = 10 };

#include "tests/trajectory.h"

static char dir[64];

static model_config tiny(int cell, int feedback)
{
    return (model_config){.cell = cell, .task = TASK_LM, .act = ACT_TANH, .feedback = feedback,
                          .feedback_source = FBS_MODEL, .wh_init = INIT_ORTHOGONAL,
                          .forget_bias = 1, .V = 16, .D = 8, .H = 16, .L = 2, .O = 16, .seed = 5};
}

// Element (i, j) of tensor k as this rank holds it, or NAN if it does not hold it.
static double element(const model* m, int k, int i, int j)
{
    const model_tensor* t = &m->tensors[k];
    if (i < t->row0 || i >= t->row0 + t->lrows || j < t->col0 || j >= t->col0 + t->lcols)
        return NAN;
    return m->params[t->offset + (size_t)(i - t->row0) * t->ld + (j - t->col0)];
}

// The one-rank model: every gate's Wh is orthogonal and its own matrix; a gate's bias b_<gate>
// is forget_bias where the cell declares it the forget gate's (b_init), every other bias 0.
static void test_init_rules(const model* full)
{
    const int H = full->c.H, G = full->cell->gates;
    double worst = 0, gate_diff = INFINITY;
    int nwh = 0, nforget = 0, first_wh = -1, want_forget = 0;
    for (int g = 0; full->cell->b_init && g < G; g++)
        want_forget += full->c.L * (full->cell->b_init[g] == CELL_INIT_FORGET);
    for (int k = 0; k < full->ntensors; k++) {
        const model_tensor* t = &full->tensors[k];
        if (t->part == PART_WH) {
            nwh++;
            for (int a = 0; a < H; a++)
                for (int b = 0; b < H; b++) {
                    double s = 0;
                    for (int r = 0; r < H; r++) s += element(full, k, r, a) * element(full, k, r, b);
                    worst = fmax(worst, fabs(s - (a == b)));
                }
            // The gates of one layer draw different matrices (keys from their names).
            if (first_wh >= 0 && full->tensors[first_wh].layer == t->layer) {
                double d = 0;
                for (int i = 0; i < H * H; i++)
                    d = fmax(d, fabs(element(full, k, i / H, i % H) - element(full, first_wh, i / H, i % H)));
                gate_diff = fmin(gate_diff, d);
            } else {
                first_wh = k;
            }
        }
        if (t->rank != 1) continue;
        int forget = 0;
        for (int g = 0; full->cell->b_init && g < G; g++) {
            char name[32];
            snprintf(name, sizeof name, "layer%d/b_%s", t->layer, full->cell->gate_name[g]);
            forget |= full->cell->b_init[g] == CELL_INIT_FORGET && !strcmp(t->name, name);
        }
        nforget += forget;
        const real want = forget ? (real)full->c.forget_bias : 0;
        for (int i = 0; i < t->rows; i++)
            CHECK(element(full, k, i, 0) == want, "%s %s[%d] = %g, want %g", full->cell->name,
                  t->name, i, element(full, k, i, 0), want);
    }
    CHECK(nwh == G * full->c.L && worst < 1e-5, "%s: %d Wh tensors, ||Q^T Q - I|| = %g",
          full->cell->name, nwh, worst);
    CHECK(G == 1 || gate_diff > 0.1, "%s: two gates' Wh differ by at most %g", full->cell->name,
          gate_diff);
    CHECK(nforget == want_forget, "%s: %d forget-gate biases, want %d", full->cell->name, nforget,
          want_forget);
}

// Every element a rank holds at (tp, dp) equals the same element of the one-rank model; Wh
// comes from ScaLAPACK QR on a different process grid, so it may differ by float rounding.
static void test_init_layout(dist_grid* g, const model* full)
{
    model m;
    char err[256];
    CHECK(model_init(&m, &full->c, g, T, BG, err, sizeof err) == 0, "%s", err);
    CHECK(model_init_params(&m) == 0, "init failed");
    long held = 0;
    double worst = 0;
    for (int k = 0; k < m.ntensors; k++)
        for (int i = 0; i < m.tensors[k].rows; i++)
            for (int j = 0; j < m.tensors[k].cols; j++) {
                double v = element(&m, k, i, j), ref = element(full, k, i, j);
                if (isnan(v)) continue;
                held++;
                worst = fmax(worst, fabs(v - ref));
            }
    CHECK(held > 0 && worst < 1e-6, "%s tp %d dp %d: max difference %g from one rank", m.cell->name,
          g->tp, g->dp, worst);
    model_free(&m);
}

// forget_bias other than its default, so that the value is seen to come from the config.
static void test_init(int world, double forget_bias)
{
    dist_grid one;
    char err[128];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    for (int cell = 0; cell < CELL_KINDS; cell++) {
        model_config c = tiny(cell, FB_ALL);
        c.forget_bias = forget_bias;
        model full;
        CHECK(model_init(&full, &c, &one, T, BG, err, sizeof err) == 0, "%s", err);
        CHECK(model_init_params(&full) == 0, "init failed");
        test_init_rules(&full);
        for (int tp = 2; tp <= world; tp *= 2) {
            dist_grid g;
            dist_grid_init(MPI_COMM_WORLD, tp, 0, &g, err, sizeof err);
            test_init_layout(&g, &full);
            dist_grid_free(&g);
        }
        model_free(&full);
    }
    dist_grid_free(&one);
}

// Adam steps [first, last) on fresh batches as fnn train makes them (model_carry_state after
// each step with carry, model_reset_state before each without); the global loss of step s into
// traj[s], its gradient norm into norms[s] (NULL: not wanted).
static void train_steps(model* m, int carry, long first, long last, double* traj, double* norms)
{
    int32_t tok[T * BG], next[T * BG];
    model_batch bt = {.T = T, .tokens = tok, .next = next};
    for (long s = first; s < last; s++) {
        fill_batch(tok, next, s, m->g->dp_rank * m->B, m->B, m->c.V);
        traj[s] = train_step(m, &bt, s, carry, norms ? &norms[s] : NULL);
    }
}

static void trajectory(dist_grid* g, const model_config* c, int carry, double* traj, double* norms)
{
    model m;
    char err[256];
    CHECK(model_init(&m, c, g, T, BG, err, sizeof err) == 0, "%s", err);
    CHECK(model_init_params(&m) == 0, "init failed");
    model_reset_state(&m);
    train_steps(&m, carry, 0, STEPS, traj, norms);
    model_free(&m);
}

// Every layout of the world follows the one-rank loss and gradient norm trajectories to float
// rounding, for every cell: with feedback into every layer from zero state each step, and with
// feedback into the first carrying h, f and the cell's state from step to step.
static void test_trajectories(int world_rank, const layout* ls, int nl)
{
    const struct { int feedback, carry; } ways[] = {{FB_ALL, 0}, {FB_FIRST, 1}};
    struct { int cell, feedback, carry; } runs[2 * CELL_KINDS];
    for (int i = 0; i < 2 * CELL_KINDS; i++)
        runs[i].cell = i / 2, runs[i].feedback = ways[i % 2].feedback, runs[i].carry = ways[i % 2].carry;
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        model_config c = tiny(runs[r].cell, runs[r].feedback);
        double ref[STEPS], got[STEPS], ref_norm[STEPS], norm[STEPS];
        dist_grid one;
        char err[128];
        dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
        trajectory(&one, &c, runs[r].carry, ref, ref_norm);
        dist_grid_free(&one);
        for (int i = 0; i < nl; i++) {
            dist_grid g;
            layout_grid(&g, &ls[i]);
            if (g.world_size == 1) { // the one-rank run itself
                dist_grid_free(&g);
                continue;
            }
            trajectory(&g, &c, runs[r].carry, got, norm);
            double worst = 0, worst_norm = 0;
            for (int s = 0; s < STEPS; s++) {
                worst = fmax(worst, fabs(got[s] - ref[s]) / ref[s]);
                worst_norm = fmax(worst_norm, fabs(norm[s] - ref_norm[s]) / ref_norm[s]);
                CHECK(check_close(got[s], ref[s], 1e-5, 0) &&
                          check_close(norm[s], ref_norm[s], 1e-5, 0),
                      "%s tp %d dp %d (%d x %d) step %d: loss %.9g, grad norm %.9g; one rank "
                      "%.9g, %.9g", cell_name(c.cell), g.tp, g.dp, g.dpn, g.dpx, s + 1, got[s],
                      norm[s], ref[s], ref_norm[s]);
            }
            if (world_rank == 0)
                printf("%s%s tp %d x dp %d (%d sharing x %d): %d steps, loss %.4f -> %.4f, worst "
                       "relative difference from one rank: loss %.2e, grad norm %.2e\n",
                       cell_name(c.cell), runs[r].carry ? " carried" : "", g.tp, g.dp, g.dpn,
                       g.dpx, STEPS, ref[0], ref[STEPS - 1], worst, worst_norm);
            dist_grid_free(&g);
        }
    }
}

// One step: one allgather per layer and step forward and one allreduce per layer and step
// backward (TP), two of each for a gated cell (q and dq); over DP, one non-blocking reduction per gradient region (each layer, the head,
// the embedding if any) between groups that share memory, and within one a sync before and
// after each of the two packings and each product, one before the head's and each layer's
// reduction, and one after the last.
static void check_counts(dist_grid* g, const model_config* c)
{
    model m;
    char err[256];
    CHECK(model_init(&m, c, g, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    int32_t tok[T * BG], next[T * BG];
    real dense[T * BG * 8], target[T * BG * 16];
    for (int i = 0; i < T * BG * 8; i++) dense[i] = (real)init_normal(41, i, 0);
    for (int i = 0; i < T * BG * 16; i++) target[i] = (real)init_normal(42, i, 0);
    fill_batch(tok, next, 0, g->dp_rank * m.B, m.B, c->V ? c->V : 1);
    model_batch bt = {.T = T};
    if (c->V) bt.tokens = tok, bt.next = next;
    else bt.dense = dense, bt.target = target;
    model_reset_state(&m);
    dist_reset_counts(g);
    model_forward(&m, &bt);
    long gathers = g->count[DIST_ALLGATHER];
    model_loss(&m, &bt, NULL);
    model_zero_grad(&m);
    model_backward(&m, &bt);
    model_gather(&m, m.grads);
    const int tp = g->tp > 1, L = c->L;
    const long syncs = g->dpn > 1 ? window_syncs(c, T) : 0;
    const long iall = g->dpx > 1 ? L + 1 + (c->V > 0) : 0;
    const char* name = cell_name(c->cell);
    const long per = tp ? window_tp_collectives(c, T) : 0;
    CHECK(gathers == per, "%s: %ld allgathers, want %ld", name, gathers, per);
    CHECK(g->count[DIST_ALLREDUCE] == per, "%s: %ld allreduces, want %ld", name,
          g->count[DIST_ALLREDUCE], per);
    CHECK(g->count[DIST_IREDUCE_SCATTER] == iall, "%s: %ld reduce-scatters, want %ld", name,
          g->count[DIST_IREDUCE_SCATTER], iall);
    // model_gather: the sub-pieces of every region over dpx.
    CHECK(g->count[DIST_IALLGATHER] == iall, "%s: %ld allgathers of sub-pieces, want %ld", name,
          g->count[DIST_IALLGATHER], iall);
    // model_gather adds its two.
    CHECK(g->count[DIST_SYNC] == syncs + 2 * (g->dpn > 1), "%s tp %d dpn %d: %ld syncs, want %ld",
          name, g->tp, g->dpn, g->count[DIST_SYNC], syncs + 2 * (g->dpn > 1));
    if (g->world_rank == 0)
        printf("%s feedback %s %s tp %d x dp %d (%d x %d): %ld allgathers, %ld allreduces, %ld "
               "reduce-scatters, %ld syncs\n", name, config_enum_name("feedback", c->feedback), c->V ? "lm" : "regress", g->tp,
               g->dp, g->dpn, g->dpx, gathers, g->count[DIST_ALLREDUCE],
               g->count[DIST_IREDUCE_SCATTER], g->count[DIST_SYNC]);
    model_free(&m);
}

static void test_counts(const layout* ls, int nl)
{
    // Every cell with feedback into all layers, the first and none, and a regression.
    enum { WAYS = 4 };
    model_config cs[WAYS * CELL_KINDS];
    for (int cell = 0; cell < CELL_KINDS; cell++) {
        model_config* c = &cs[WAYS * cell];
        c[0] = tiny(cell, FB_ALL), c[1] = tiny(cell, FB_FIRST), c[2] = tiny(cell, FB_NONE);
        c[3] = tiny(cell, FB_ALL), c[3].task = TASK_REGRESS, c[3].V = 0, c[3].O = 3;
    }
    for (int i = 0; i < nl; i++) {
        dist_grid g;
        layout_grid(&g, &ls[i]);
        for (int k = 0; k < WAYS * CELL_KINDS; k++) check_counts(&g, &cs[k]);
        dist_grid_free(&g);
    }
}

static ckpt_train train_state(const model* m, long step)
{
    return (ckpt_train){.step = step, .rng_seed = 5, .writer_tp = m->g->tp,
                        .writer_dp = m->g->dp, .global_batch = BG, .seq_len = T,
                        .carry_state = 1, .optimizer = OPT_ADAM};
}

// Loads path into a model made at g from the file's config (parameters, moments, state).
static int load(model* m, dist_grid* g, const char* path)
{
    char err[512];
    model_config rc;
    ckpt_train rs;
    int ok = ckpt_read_meta(path, g->world, &rc, &rs, NULL, 0, err, sizeof err) == 0;
    CHECK(ok, "%s", err);
    if (!ok) return -1;
    CHECK(model_init(m, &rc, g, T, BG, err, sizeof err) == 0, "%s", err);
    ckpt_file* f = ckpt_open(path, g->world, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f) return -1;
    ckpt_get_params(f, m, 0, 1);
    ckpt_get_state(f, m);
    CHECK(ckpt_close(f) == 0, "load: %s", err);
    return 0;
}

// For each cell, a file written at each tp reads back at every tp with every element
// bit-identical, and the cell recorded. Which rank writes and reads which rows depends on tp and
// dp only, not on how the DP replicas share memory (share 0 stands for them all).
static void test_checkpoints(int world_rank, const layout* ls, int nl, const fnn_config* cfg)
{
    for (int cell = 0; cell < CELL_KINDS; cell++)
        for (int w = 0; w < nl; w++) {
            if (ls[w].share) continue;
            dist_grid wg;
            char err[512], path[128];
            layout_grid(&wg, &ls[w]);
            model_config c = tiny(cell, FB_FIRST);
            model wm;
            CHECK(model_init(&wm, &c, &wg, T, BG, err, sizeof err) == 0, "%s", err);
            elements(&wm, 0);
            state(&wm, 0);
            ckpt_train st = train_state(&wm, 42);
            snprintf(path, sizeof path, "%s/%s.h5", dir, cell_name(cell));
            CHECK(ckpt_save(path, &wm, cfg, &st, 1, err, sizeof err) == 0, "save: %s", err);
            model_free(&wm);
            int reads = 0;
            for (int r = 0; r < nl; r++) {
                if (ls[r].share) continue;
                dist_grid rg;
                layout_grid(&rg, &ls[r]);
                model m;
                reads++;
                if (load(&m, &rg, path) == 0) {
                    CHECK(m.c.cell == c.cell && m.c.feedback == c.feedback && m.c.H == c.H &&
                              m.c.L == c.L && m.c.V == c.V && m.c.seed == c.seed,
                          "%s: config read back differs (cell %d)", cell_name(cell), m.c.cell);
                    long bad = elements(&m, 1) + state(&m, 1);
                    CHECK(bad == 0, "%s written at tp %d dp %d, read at tp %d dp %d: %ld elements differ",
                          cell_name(cell), wg.tp, wg.dp, rg.tp, rg.dp, bad);
                    model_free(&m);
                }
                dist_grid_free(&rg);
            }
            if (world_rank == 0)
                printf("%s written at tp %d x dp %d (%d x %d): read at %d tp, every element of "
                       "params, m, v, h, f%s%s equal\n", cell_name(cell), wg.tp, wg.dp, wg.dpn,
                       wg.dpx, reads, cell_of(cell)->state ? ", " : "",
                       cell_of(cell)->state ? cell_of(cell)->state_name : "");
            dist_grid_free(&wg);
        }
}

// A run of the cell carrying its state, saved after RESUME_AT steps as fnn train saves (each
// rank's own moments, state of the next window) at every layout and resumed on it, where the
// remaining losses are the uninterrupted run's bit for bit; the first layout's file also at the
// last layout (the largest tp), where they agree to float rounding.
static void test_resume(int world_rank, const layout* ls, int nl, const fnn_config* cfg, int cell)
{
    model_config c = tiny(cell, FB_ALL);
    char err[512], path[128];
    snprintf(path, sizeof path, "%s/resume.h5", dir);
    for (int w = 0; w < nl; w++) {
        dist_grid wg;
        layout_grid(&wg, &ls[w]);
        double whole[STEPS];
        model wm;
        CHECK(model_init(&wm, &c, &wg, T, BG, err, sizeof err) == 0, "%s", err);
        CHECK(model_init_params(&wm) == 0, "init failed");
        model_reset_state(&wm);
        train_steps(&wm, 1, 0, RESUME_AT, whole, NULL);
        ckpt_train st = train_state(&wm, RESUME_AT);
        CHECK(ckpt_save(path, &wm, cfg, &st, 1, err, sizeof err) == 0, "save: %s", err);
        train_steps(&wm, 1, RESUME_AT, STEPS, whole, NULL);
        model_free(&wm);
        const int readers[2] = {w, nl - 1};
        for (int i = 0; i < 1 + (w == 0 && nl > 1); i++) {
            const int r = readers[i];
            dist_grid rg;
            layout_grid(&rg, &ls[r]);
            model m;
            double got[STEPS];
            if (load(&m, &rg, path) == 0) {
                train_steps(&m, 1, RESUME_AT, STEPS, got, NULL);
                const int same = r == w;
                double worst = 0;
                for (int s = RESUME_AT; s < STEPS; s++) {
                    worst = fmax(worst, fabs(got[s] - whole[s]) / whole[s]);
                    CHECK(same ? got[s] == whole[s] : check_close(got[s], whole[s], 1e-5, 0),
                          "%s written at tp %d dp %d (%d x %d), resumed at tp %d dp %d (%d x %d) "
                          "step %d: loss %.9g, uninterrupted %.9g", cell_name(cell), wg.tp, wg.dp, wg.dpn, wg.dpx,
                          rg.tp, rg.dp, rg.dpn, rg.dpx, s + 1, got[s], whole[s]);
                }
                if (world_rank == 0)
                    printf("%s carried, saved at step %d at tp %d x dp %d (%d x %d), resumed at "
                           "tp %d x dp %d (%d x %d): steps %d-%d worst relative difference %.2e%s\n",
                           cell_name(cell), RESUME_AT, wg.tp, wg.dp, wg.dpn, wg.dpx, rg.tp, rg.dp, rg.dpn, rg.dpx,
                           RESUME_AT + 1, STEPS, worst, same ? " (same layout: bit for bit)" : "");
                model_free(&m);
            }
            dist_grid_free(&rg);
        }
        dist_grid_free(&wg);
    }
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    scratch_dir(dir, sizeof dir, "cells");
    layout ls[MAX_LAYOUTS];
    const int nl = layouts(world, ls);
    fnn_config cfg;
    config_defaults(&cfg);
    test_init(world, 0.75);
    test_trajectories(rank, ls, nl);
    test_counts(ls, nl);
    test_checkpoints(rank, ls, nl, &cfg);
    for (int cell = 0; cell < CELL_KINDS; cell++) test_resume(rank, ls, nl, &cfg, cell);
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("test_cells: %s\n", fails ? "FAILED" : "all checks passed");
    MPI_Finalize();
    return fails != 0;
}
