// Gradient accumulation (accum_steps, model/accum.c): a global batch run as k micro-batches per
// DP replica follows one rank's trajectory (k = 1) to float rounding, for every cell and task:
// lm tokens carrying h, f and the cell's state from step to step (each micro-batch its own rows),
// classify records, dense regress targets at every step (carried) and at the last (score =
// last), fed-back signals with noise drawn by global row. Every case runs at (np, k) = (4, 1),
// (2, 2) and (1, 4) of one global batch (one of them per world size) and at one more pair of
// the world's TP x DP layouts (sharing memory or not) and k that divides a replica's rows, in
// turn, so that each pair meets several cases. One step makes
// the collectives of k windows' passes but one DP gradient reduction (and one loss sum); the
// carried state of all micro-batches' rows round-trips through a checkpoint read at another k,
// and a run resumed at another k continues the uninterrupted one; a k that does not divide a
// replica's rows is refused by name; the activations fall with k.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include "io/checkpoint.h"
#include "model/feedback.h"
#include "model/init.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/check.h"
#include "tests/counts.h"
#include "tests/elements.h"
#include "tests/layouts.h"

enum { T = 6, BG = 8, STEPS = 8, DIN = 3, RESUME_AT = 4 };

#include "tests/trajectory.h"

typedef struct acase {
    int cell, task, last, carry;
} acase;

static model_config config_of(const acase* k, int accum)
{
    model_config c = {.task = k->task, .act = ACT_TANH, .feedback = FB_ALL,
                      .feedback_source = FBS_MODEL, .wh_init = INIT_ORTHOGONAL, .V = 7, .D = 5,
                      .H = 8, .L = 2, .O = 7, .seed = 3, .cell = k->cell, .forget_bias = 1,
                      .accum = accum};
    if (k->task == TASK_REGRESS) c.V = 0, c.D = DIN, c.O = 2;
    if (k->task == TASK_CLASSIFY) c.O = 3;
    return c;
}

// The selected micro-batch's rows of the global window of `step`: every input a function of
// (step, global row, t), as fnn train draws its rows (model_micro_row0).
typedef struct window {
    const acase* k;
    long step;
    int32_t tok[T * BG], next[T * BG], label[BG], last[BG];
    real dense[T * BG * DIN], target[T * BG * 2];
    model_batch bt;
} window;

static const model_batch* fill_window(model* m, void* arg)
{
    window* w = arg;
    const int B = m->B;
    const long row0 = model_micro_row0(m), s = w->step;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const long r = t * BG + row0 + b;
            w->tok[t * B + b] = (int32_t)(init_uniform(31, s, r) * m->c.V);
            w->next[t * B + b] = (int32_t)(init_uniform(32, s, r) * m->c.O);
            for (int i = 0; i < DIN; i++)
                w->dense[(t * B + b) * DIN + i] = (real)(init_uniform(33, s, r * DIN + i) - 0.5);
            for (int o = 0; o < 2; o++)
                w->target[(t * B + b) * 2 + o] = (real)(init_uniform(34, s, r * 2 + o) - 0.5);
        }
    for (int b = 0; b < B; b++) {
        w->label[b] = (int32_t)(init_uniform(35, s, row0 + b) * m->c.O);
        w->last[b] = (int32_t)(init_uniform(36, s, row0 + b) * T);
    }
    if (w->k->task == TASK_REGRESS)
        w->bt = (model_batch){.T = T, .dense = w->dense, .target = w->target,
                              .last = w->k->last ? w->last : NULL};
    else if (w->k->task == TASK_CLASSIFY)
        w->bt = (model_batch){.T = T, .tokens = w->tok, .label = w->label, .last = w->last};
    else
        w->bt = (model_batch){.T = T, .tokens = w->tok, .next = w->next};
    w->bt.fb_noise = w->k->task == TASK_CLASSIFY ? 0 : 0.2;
    w->bt.fb_key = feedback_key(m->c.seed, s);
    w->bt.row0 = row0;
    return &w->bt;
}

// The case's model at g with accum micro-batches, its biases given values (they start at zero)
// so that their paths count like the weights'.
static int make(model* m, const acase* k, dist_grid* g, int accum)
{
    model_config c = config_of(k, accum);
    char err[256];
    if (model_init(m, &c, g, T, BG, err, sizeof err)) {
        CHECK(0, "%s", err);
        return -1;
    }
    CHECK(model_init_params(m) == 0, "init");
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i].rank == 1)
            for (int j = 0; j < m->tensors[i].lrows; j++)
                m->params[m->tensors[i].offset + j] = 0.3 * init_normal(7 + i, m->tensors[i].row0 + j, 0);
    model_reset_state(m);
    return 0;
}

static void steps(model* m, const acase* k, long first, long last, double* traj, double* norms)
{
    window w = {.k = k};
    for (long s = first; s < last; s++) {
        w.step = s;
        traj[s] = accum_step(m, fill_window, &w, s, k->carry, norms ? &norms[s] : NULL);
    }
}

static void trajectory(dist_grid* g, const acase* k, int accum, double* traj, double* norms)
{
    model m;
    if (make(&m, k, g, accum)) return;
    steps(&m, k, 0, STEPS, traj, norms);
    model_free(&m);
}

static const char* task_name(const acase* k)
{
    return k->task == TASK_LM ? "lm" : k->task == TASK_CLASSIFY ? "classify" : k->last ? "regress last" : "regress";
}

// A layout of the world and a k.
typedef struct combo {
    layout lay;
    int accum;
} combo;

// The (layout, k) pairs of the world: first (np, k) = (4, 1), (2, 2) or (1, 4), the DP layout
// of a global batch of four micro-batches of two rows; then every other k dividing the rows at
// tp = 1, and k = 2 at tp > 1 (k = 1 at one rank is the reference). Returns how many.
static int combos(int world, combo* out)
{
    layout ls[MAX_LAYOUTS];
    const int nl = layouts(world, ls);
    int n = 0;
    out[n++] = (combo){{1, 0}, 4 / world};
    for (int i = 0; i < nl; i++)
        for (int accum = 1; accum <= BG * ls[i].tp / world; accum *= 2) {
            const int first = ls[i].tp == 1 && ls[i].share == 0 && accum == 4 / world;
            if (first || (world == 1 && accum == 1) || (ls[i].tp > 1 && accum != 2)) continue;
            out[n++] = (combo){ls[i], accum};
        }
    return n;
}

// Case `which` against one rank's run of one pass per step: at the first pair of combos, and at
// one of the others in turn (every one of them meets several cases), to keep the test short.
static void test_trajectories(const acase* k, int which, const combo* cs, int nc)
{
    double ref[STEPS], ref_norm[STEPS], got[STEPS], norm[STEPS];
    dist_grid one;
    char err[128], what[64];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    trajectory(&one, k, 1, ref, ref_norm);
    dist_grid_free(&one);
    const int runs[2] = {0, nc > 1 ? 1 + which % (nc - 1) : 0};
    for (int i = 0; i < 1 + (nc > 1); i++) {
        const combo* c = &cs[runs[i]];
        dist_grid g;
        layout_grid(&g, &c->lay);
        trajectory(&g, k, c->accum, got, norm);
        snprintf(what, sizeof what, "%s %s%s accum %d: ", cell_name(k->cell), task_name(k),
                 k->carry ? " carried" : "", c->accum);
        check_trajectory(&g, what, got, norm, ref, ref_norm, 1e-5);
        dist_grid_free(&g);
    }
}

// One step at accum = 2: each micro-batch's passes make a window's TP collectives and
// shared-memory syncs, except the DP reduction's (L + 2 syncs, L + 1 + embedding
// reduce-scatters between groups), which only the last one makes; one loss sum over DP.
static void test_counts(const layout* ls, int nl)
{
    const acase k = {.cell = CELL_GRU, .task = TASK_LM, .carry = 1};
    for (int i = 0; i < nl; i++) {
        dist_grid g;
        layout_grid(&g, &ls[i]);
        model m;
        const int A = 2;
        if (make(&m, &k, &g, A) == 0) {
            window w = {.k = &k};
            dist_reset_counts(&g);
            model_accumulate(&m, fill_window, &w, NULL);
            model_gather(&m, m.grads);
            const model_config* c = &m.c;
            const long per = g.tp > 1 ? window_tp_collectives(c, T) : 0;
            const long iall = g.dpx > 1 ? c->L + 2 : 0;
            const long reduce_syncs = c->L + 2;
            const long syncs = g.dpn > 1 ? A * window_syncs(c, T) - (A - 1) * reduce_syncs + 2 : 0;
            CHECK(g.count[DIST_ALLGATHER] == A * per, "%ld allgathers, want %ld",
                  g.count[DIST_ALLGATHER], A * per);
            CHECK(g.count[DIST_ALLREDUCE] == A * per + (g.dp > 1), "%ld allreduces, want %ld",
                  g.count[DIST_ALLREDUCE], A * per + (g.dp > 1));
            CHECK(g.count[DIST_IREDUCE_SCATTER] == iall, "tp %d dp %d (%d x %d): %ld reduce-scatters, want %ld",
                  g.tp, g.dp, g.dpn, g.dpx, g.count[DIST_IREDUCE_SCATTER], iall);
            CHECK(g.count[DIST_IALLGATHER] == iall, "%ld allgathers of sub-pieces, want %ld",
                  g.count[DIST_IALLGATHER], iall);
            CHECK(g.count[DIST_SYNC] == syncs, "tp %d dpn %d: %ld syncs, want %ld", g.tp, g.dpn,
                  g.count[DIST_SYNC], syncs);
            if (g.world_rank == 0)
                printf("accum %d tp %d x dp %d (%d x %d): %ld allgathers, %ld allreduces, %ld "
                       "reduce-scatters, %ld syncs\n", A, g.tp, g.dp, g.dpn, g.dpx,
                       g.count[DIST_ALLGATHER], g.count[DIST_ALLREDUCE],
                       g.count[DIST_IREDUCE_SCATTER], g.count[DIST_SYNC]);
            model_free(&m);
        }
        dist_grid_free(&g);
    }
}

static ckpt_train train_state(const model* m, long step)
{
    return (ckpt_train){.step = step, .rng_seed = 3, .writer_tp = m->g->tp, .writer_dp = m->g->dp,
                        .global_batch = BG, .seq_len = T, .carry_state = 1, .optimizer = OPT_ADAM};
}

// At DP over the whole world (tp = 1): the carried state of every micro-batch's rows, written at
// the most micro-batches, reads back at one and at two with every element equal; and a carried
// LSTM run saved there after RESUME_AT steps and resumed at k = 1 continues the uninterrupted run
// to float rounding.
static void test_checkpoint(const char* dir, const fnn_config* cfg)
{
    const acase k = {.cell = CELL_LSTM, .task = TASK_LM, .carry = 1};
    const layout lay = {1, 0};
    dist_grid g;
    layout_grid(&g, &lay);
    char err[512], path[128];
    snprintf(path, sizeof path, "%s/accum.h5", dir);
    const int rows = BG / g.dp;
    model wm;
    double whole[STEPS], got[STEPS];
    if (make(&wm, &k, &g, rows)) return;
    state(&wm, 0);
    ckpt_train st = train_state(&wm, 0);
    CHECK(ckpt_save(path, &wm, cfg, &st, 1, err, sizeof err) == 0, "save: %s", err);
    for (int accum = 1; accum <= 2 && accum <= rows; accum++) {
        model m;
        if (make(&m, &k, &g, accum)) continue;
        ckpt_file* f = ckpt_open(path, g.world, err, sizeof err);
        if (f) ckpt_get_state(f, &m);
        CHECK(f && ckpt_close(f) == 0, "state: %s", err);
        const long bad = state(&m, 1);
        CHECK(bad == 0, "state written at accum %d, read at accum %d (dp %d): %ld elements differ",
              rows, accum, g.dp, bad);
        model_free(&m);
    }
    model_reset_state(&wm);
    steps(&wm, &k, 0, RESUME_AT, whole, NULL);
    st = train_state(&wm, RESUME_AT);
    CHECK(ckpt_save(path, &wm, cfg, &st, 1, err, sizeof err) == 0, "save: %s", err);
    steps(&wm, &k, RESUME_AT, STEPS, whole, NULL);
    model_free(&wm);
    model m;
    if (make(&m, &k, &g, 1) == 0) {
        ckpt_file* f = ckpt_open(path, g.world, err, sizeof err);
        if (f) ckpt_get_params(f, &m, NULL, 1), ckpt_get_state(f, &m);
        CHECK(f && ckpt_close(f) == 0, "load: %s", err);
        steps(&m, &k, RESUME_AT, STEPS, got, NULL);
        double worst = 0;
        for (int s = RESUME_AT; s < STEPS; s++) {
            worst = fmax(worst, fabs(got[s] - whole[s]) / whole[s]);
            CHECK(check_close(got[s], whole[s], 1e-5, 0), "resumed at accum 1 from accum %d, step "
                  "%d: loss %.9g, uninterrupted %.9g", rows, s + 1, got[s], whole[s]);
        }
        if (g.world_rank == 0)
            printf("state of accum %d's rows read at accum 1, 2; resumed at accum 1: steps %d-%d "
                   "worst relative difference %.2e\n", rows, RESUME_AT + 1, STEPS, worst);
        model_free(&m);
    }
    dist_grid_free(&g);
}

// A k that does not divide a replica's rows is refused, naming the key and the values; the
// activation buffers of one rank shrink with k (B / k rows per pass) while the carried state
// keeps every row of the replica.
static void test_rows(void)
{
    model_config c = config_of(&(acase){.cell = CELL_LSTM, .task = TASK_LM}, 3);
    char err[256] = "";
    CHECK(model_check_rows(&c, BG, 1, err, sizeof err) == -1 && strstr(err, "accum_steps = 3") &&
              strstr(err, "8 rows"), "accum 3 of 8 rows: '%s'", err);
    c.accum = 4;
    CHECK(model_check_rows(&c, BG, 4, err, sizeof err) == -1 && strstr(err, "accum_steps = 4") &&
              strstr(err, "2 rows"), "accum 4 at dp 4: '%s'", err);
    CHECK(model_check_rows(&c, BG, 2, err, sizeof err) == 0, "accum 4 at dp 2: %s", err);
    size_t act[3];
    for (int i = 0; i < 3; i++) {
        model m;
        c.accum = 1 << i;
        model_size(&m, &c, 1, 64, 32, 0);
        model_bytes b;
        model_memory(&m, 1, 1, &b);
        act[i] = b.activations;
        CHECK(m.B == 32 >> i && model_rank_rows(&m) == 32, "accum %d: B %d, rows %d", c.accum,
              m.B, model_rank_rows(&m));
    }
    // The weight gradients' chunks hold about 512 rows at any B (model_grad_chunk).
    CHECK(act[1] < act[0] * 0.6 && act[2] < act[1] * 0.7, "activations %zu, %zu, %zu at accum 1, 2, 4",
          act[0], act[1], act[2]);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    char dir[64];
    scratch_dir(dir, sizeof dir, "accum");
    layout ls[MAX_LAYOUTS];
    const int nl = layouts(world, ls);
    combo cs[4 * MAX_LAYOUTS];
    const int nc = combos(world, cs);
    for (int cell = 0, which = 0; cell < CELL_KINDS; cell++) {
        const acase cases[] = {{cell, TASK_LM, 0, 1}, {cell, TASK_CLASSIFY, 0, 0},
                               {cell, TASK_REGRESS, 0, 1}, {cell, TASK_REGRESS, 1, 0}};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            test_trajectories(&cases[i], which++, cs, nc);
    }
    test_counts(ls, nl);
    fnn_config cfg;
    config_defaults(&cfg);
    test_checkpoint(dir, &cfg);
    test_rows();
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("test_accum: %s\n", fails ? "FAILED" : "all checks passed");
    MPI_Finalize();
    return fails != 0;
}
