// Gradient check in float64 (the model sources built with -DFNN_DOUBLE): the analytic gradient
// of model_backward against central differences of model_loss, for every parameter element, for
// each activation, feedback mode, feedback source (mix too, and with noise on the fed-back
// signal: the differences of the same noisy forward), dropout (between layers, before the head
// and on the recurrent input: the differences of the same masks) and task (regress also with
// score = last),
// with and without carried state, at every TP x DP layout of the world. Also counts the
// collectives of one step, and checks the score = last loss against its definition, and that
// this build refuses precision = bf16 (it has no bf16 kernels) in one line saying why.
// ranks: 1 2 4
#include "model/feedback.h"
#include "model/init.h"
#include "model/model.h"
#include "tests/check.h"

enum { T = 5, BG = 4 }; // window, global batch

#include "tests/batch.h"
#include "tests/counts.h"
#include "tests/layouts.h"

typedef struct gcase {
    const char* what;
    int task, act, feedback, source, L, carry;
    double teacher_prob, noise; // the training draws on the fed-back signal (0: none)
    double dropout, dropout_rec; // dropout's p (0: none), masks fixed by the window's key
} gcase;

// The training draws of the case, keyed by global row as train.c keys them. A mix must mix:
// some entries of the global window feed back the target and some the model's output.
static void set_draws(ldata* l, const gcase* gc, const model* m)
{
    l->view.teacher_prob = gc->teacher_prob;
    l->view.fb_noise = gc->noise;
    l->view.dropout = gc->dropout;
    l->view.dropout_rec = gc->dropout_rec;
    l->view.fb_key = feedback_key(m->c.seed, 3);
    l->view.row0 = (long)m->g->dp_rank * m->B;
    if (gc->source != FBS_MIX) return;
    int teacher = 0;
    for (int r = 0; r < BG; r++)
        for (int t = 0; t < T; t++) teacher += feedback_teacher(&l->view, r, t);
    CHECK(teacher > 0 && teacher < T * BG, "%s: %d of %d entries teacher-forced", gc->what,
          teacher, T * BG);
}

// Every element against central differences, and the worst relative error printed.
static void check_all_elements(model* m, const model_batch* bt, const char* what)
{
    double worst = check_params(m, bt, what);
    if (m->g->world_rank == 0)
        printf("%-40s tp=%d dp=%d (%d x %d) worst rel err %.2e\n", what, m->g->tp, m->g->dp,
               m->g->dpn, m->g->dpx, worst);
}

// score = last: the loss is the mean over rows and outputs of the squared error at each row's
// step last[b] alone (random steps here, so a loss of every step or of the last one fails), and
// dY is 2 (y - target) / (Bg O) there and zero at every other step.
static void check_scored_last(model* m, const model_batch* bt, const char* what)
{
    const int B = m->B, O = m->c.O;
    model_forward(m, bt);
    double loss[2] = {model_loss(m, bt, NULL), 0};
    long stray = 0;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            for (int o = 0; o < O; o++) {
                size_t i = ((size_t)t * B + b) * O + o;
                double d = m->Y[i] - bt->target[i];
                if (t != bt->last[b]) {
                    stray += m->dY[i] != 0;
                    continue;
                }
                loss[1] += d * d / (BG * O);
                CHECK(check_close(m->dY[i], 2 * d / (BG * O), 1e-12, 1e-12),
                      "%s: dY[t=%d b=%d o=%d] %.10g, want %.10g", what, t, b, o, m->dY[i],
                      2 * d / (BG * O));
            }
    if (m->g->dp > 1) dist_dp_allreduce_f64(loss, 2, m->g);
    CHECK(check_close(loss[0], loss[1], 1e-12, 1e-12), "%s: loss %.12g, by its definition %.12g",
          what, loss[0], loss[1]);
    CHECK(stray == 0, "%s: %ld gradients at steps not scored", what, stray);
}

// One step makes one allgather per layer and step forward, one allreduce per layer and step
// backward (TP); over DP, one non-blocking reduction per gradient region between groups that
// share memory, and within one, a sync before and after each of the two packings and each
// per-step product the group computes together (a layer's, per step, forward and backward),
// one before the head's and each layer's reduction, and one after the last.
static void check_counts(model* m, const model_batch* bt, const char* what)
{
    dist_grid* g = m->g;
    dist_reset_counts(g);
    model_forward(m, bt);
    long gathers = g->count[DIST_ALLGATHER];
    model_loss(m, bt, NULL);
    model_zero_grad(m);
    model_backward(m, bt);
    const int L = m->c.L, regions = L + 1 + (m->c.V > 0);
    const long per = g->tp > 1 ? window_tp_collectives(&m->c, T) : 0;
    CHECK(gathers == per, "%s: %ld allgathers", what, gathers);
    CHECK(g->count[DIST_ALLREDUCE] == per, "%s: %ld allreduces", what, g->count[DIST_ALLREDUCE]);
    CHECK(g->count[DIST_IREDUCE_SCATTER] == (g->dpx > 1 ? regions : 0), "%s: %ld reduce-scatters", what,
          g->count[DIST_IREDUCE_SCATTER]);
    CHECK(g->count[DIST_SYNC] == (g->dpn > 1 ? window_syncs(&m->c, T) : 0), "%s: %ld syncs", what,
          g->count[DIST_SYNC]);
    model_gather(m, m->grads);
}

// last: regress scores only step last[b] of each row (score = last).
static void run_case(const gcase* gc, int cell, int last, dist_grid* g)
{
    model_config c = {.task = gc->task, .act = gc->act, .feedback = gc->feedback,
                      .feedback_source = gc->source, .wh_init = INIT_ORTHOGONAL,
                      .H = 4, .L = gc->L, .seed = 7, .cell = cell, .forget_bias = 1};
    model m;
    if (init_case(&m, &c, g, gc->what)) return;
    gdata gd;
    ldata ld;
    make_global(&gd, &c, 3);
    slice_local(&ld, &gd, &m, c.task, last);
    set_draws(&ld, gc, &m);
    model_reset_state(&m);
    if (gc->carry) { // a first window leaves state behind; the checked window starts from it
        model_forward(&m, &ld.view);
        model_carry_state(&m);
        make_global(&gd, &c, 4);
        slice_local(&ld, &gd, &m, c.task, last);
        set_draws(&ld, gc, &m);
    }
    if (last) check_scored_last(&m, &ld.view, gc->what);
    check_counts(&m, &ld.view, gc->what);
    check_all_elements(&m, &ld.view, gc->what);
    model_free(&m);
}

static const gcase cases[] = {
    {"lm tanh all model", TASK_LM, ACT_TANH, FB_ALL, FBS_MODEL, 2, 0, 0, 0, 0, 0},
    {"lm relu first model", TASK_LM, ACT_RELU, FB_FIRST, FBS_MODEL, 2, 0, 0, 0, 0, 0},
    {"lm sigmoid none", TASK_LM, ACT_SIGMOID, FB_NONE, FBS_MODEL, 2, 0, 0, 0, 0, 0},
    {"lm tanh all target", TASK_LM, ACT_TANH, FB_ALL, FBS_TARGET, 2, 0, 0, 0, 0, 0},
    {"lm sigmoid first model L3", TASK_LM, ACT_SIGMOID, FB_FIRST, FBS_MODEL, 3, 0, 0, 0, 0, 0},
    {"lm tanh all model carried", TASK_LM, ACT_TANH, FB_ALL, FBS_MODEL, 2, 1, 0, 0, 0, 0},
    {"lm relu all target carried L1", TASK_LM, ACT_RELU, FB_ALL, FBS_TARGET, 1, 1, 0, 0, 0, 0},
    {"classify tanh all model", TASK_CLASSIFY, ACT_TANH, FB_ALL, FBS_MODEL, 2, 0, 0, 0, 0, 0},
    {"classify relu first model L1", TASK_CLASSIFY, ACT_RELU, FB_FIRST, FBS_MODEL, 1, 0, 0, 0, 0, 0},
    {"classify sigmoid none carried", TASK_CLASSIFY, ACT_SIGMOID, FB_NONE, FBS_MODEL, 2, 1, 0, 0, 0, 0},
    {"regress tanh all model", TASK_REGRESS, ACT_TANH, FB_ALL, FBS_MODEL, 2, 0, 0, 0, 0, 0},
    {"regress sigmoid first target", TASK_REGRESS, ACT_SIGMOID, FB_FIRST, FBS_TARGET, 2, 0, 0, 0, 0, 0},
    {"regress relu none L3", TASK_REGRESS, ACT_RELU, FB_NONE, FBS_MODEL, 3, 0, 0, 0, 0, 0},
    {"regress tanh all model carried", TASK_REGRESS, ACT_TANH, FB_ALL, FBS_MODEL, 2, 1, 0, 0, 0, 0},
    {"regress tanh all target carried", TASK_REGRESS, ACT_TANH, FB_ALL, FBS_TARGET, 1, 1, 0, 0, 0, 0},
    {"lm tanh all mix .5 noise .3", TASK_LM, ACT_TANH, FB_ALL, FBS_MIX, 2, 0, 0.5, 0.3, 0, 0},
    {"regress tanh all mix .4 carried", TASK_REGRESS, ACT_TANH, FB_ALL, FBS_MIX, 2, 1, 0.4, 0, 0, 0},
    {"lm relu first model noise .5", TASK_LM, ACT_RELU, FB_FIRST, FBS_MODEL, 2, 0, 0, 0.5, 0, 0},
    {"regress sigmoid all mix .6 noise .2", TASK_REGRESS, ACT_SIGMOID, FB_ALL, FBS_MIX, 1, 0, 0.6, 0.2, 0, 0},
    {"lm sigmoid first mix .3 noise carried", TASK_LM, ACT_SIGMOID, FB_FIRST, FBS_MIX, 3, 1, 0.3, 0.4, 0, 0},
    {"regress tanh all target noise .3", TASK_REGRESS, ACT_TANH, FB_ALL, FBS_TARGET, 2, 0, 0, 0.3, 0, 0},
};

// The draws on the fed-back signal with every cell: the feedback path enters every gate.
static const gcase draws[] = {
    {"lm all mix .5 noise .3", TASK_LM, ACT_TANH, FB_ALL, FBS_MIX, 2, 0, 0.5, 0.3, 0, 0},
    {"lm first mix .5 noise .3 carried", TASK_LM, ACT_TANH, FB_FIRST, FBS_MIX, 2, 1, 0.5, 0.3, 0, 0},
    {"regress all mix .4 noise .2 carried", TASK_REGRESS, ACT_TANH, FB_ALL, FBS_MIX, 1, 1, 0.4, 0.2, 0, 0},
    {"regress all mix .6", TASK_REGRESS, ACT_TANH, FB_ALL, FBS_MIX, 2, 0, 0.6, 0, 0, 0},
    {"lm all model dropout .4 rec .4 L3", TASK_LM, ACT_TANH, FB_ALL, FBS_MODEL, 3, 0, 0, 0, 0.4, 0.4},
    {"lm first mix .5 noise .3 dropout .3 rec .5", TASK_LM, ACT_TANH, FB_FIRST, FBS_MIX, 2, 0, 0.5, 0.3,
     0.3, 0.5},
    {"regress all model dropout .5", TASK_REGRESS, ACT_TANH, FB_ALL, FBS_MODEL, 2, 0, 0, 0, 0.5, 0},
    {"classify none rec .5", TASK_CLASSIFY, ACT_TANH, FB_NONE, FBS_MODEL, 2, 0, 0, 0, 0, 0.5},
};

// score = last, every cell at every layout (relu where the cell takes the config's activation).
static const gcase last_cases[] = {
    {"regress tanh all model last", TASK_REGRESS, ACT_TANH, FB_ALL, FBS_MODEL, 2, 0, 0, 0, 0, 0},
    {"regress first target last carried", TASK_REGRESS, ACT_RELU, FB_FIRST, FBS_TARGET, 1, 1, 0, 0, 0, 0},
    {"regress all model last carried", TASK_REGRESS, ACT_TANH, FB_ALL, FBS_MODEL, 1, 1, 0, 0, 0, 0},
    {"regress first mix .5 last", TASK_REGRESS, ACT_TANH, FB_FIRST, FBS_MIX, 2, 0, 0.5, 0, 0, 0},
};

// Case gc with cell: named after it, and with tanh where the cell has its own nonlinearities.
static void run_cell_case(const gcase* gc, int cell, int last, dist_grid* g)
{
    char what[64];
    snprintf(what, sizeof what, "%s %s", cell_name(cell), gc->what);
    gcase c = *gc;
    c.what = what;
    if (!cell_of(cell)->any_act) c.act = ACT_TANH;
    run_case(&c, cell, last, g);
}

static void test_no_bf16(void)
{
    dist_grid one;
    char err[256] = "";
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    model_config c = {.task = TASK_LM, .act = ACT_TANH, .feedback = FB_ALL, .V = 8, .D = 4,
                      .H = 8, .L = 1, .O = 8, .seed = 1, .precision = PRECISION_BF16};
    model m;
    CHECK(model_init(&m, &c, &one, T, BG, err, sizeof err) == -1 &&
              strstr(err, "precision = bf16") && strstr(err, "float32 build"),
          "float64 build with precision = bf16: '%s'", err);
    dist_grid_free(&one);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    test_no_bf16();
    layout ls[MAX_LAYOUTS];
    const int nl = layouts(world, ls);
    for (int l = 0; l < nl; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        for (int cell = 0; cell < CELL_KINDS; cell++) {
            // The activations, tasks, feedback modes and sources: the cells that take the
            // config's activation (any_act).
            for (size_t i = 0; cell_of(cell)->any_act && i < sizeof cases / sizeof cases[0]; i++)
                if (world == 1 || i % 3 == 0 || cases[i].carry) run_cell_case(&cases[i], cell, 0, &g);
            for (size_t i = 0; i < sizeof draws / sizeof draws[0]; i++)
                if (world == 1 || draws[i].carry) run_cell_case(&draws[i], cell, 0, &g);
            for (size_t i = 0; i < sizeof last_cases / sizeof last_cases[0]; i++)
                run_cell_case(&last_cases[i], cell, 1, &g);
        }
        dist_grid_free(&g);
    }
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails != 0;
}
