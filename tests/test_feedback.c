// The training draws on the fed-back signal in the float32 model (model/feedback.c,
// run/feedback_schedule.c): feedback_source = mix at p = 1 trains bit for bit as target and at
// p = 0 as model; the noise perturbs f by the same bits at every TP x DP layout, with the mean
// and variance of sigma times a standard normal, and equals its formula (docs/model.md) computed
// in double; the teacher draw has probability p; noisy mixed
// training follows the one-rank trajectory at every layout (every cell of the registry); the teacher_prob
// schedule.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include "run/feedback_schedule.h"
#include "model/feedback.h"
#include "model/init.h"
#include "model/mix.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/check.h"
#include "tests/layouts.h"

enum { T = 8, BG = 4, STEPS = 20, DIN = 3 };

#include "tests/trajectory.h"

typedef struct draws {
    int source;
    double teacher_prob, noise;
} draws;

static model_config tiny(int task, int cell, int source)
{
    model_config c = {.task = task, .act = ACT_TANH, .feedback = FB_ALL, .feedback_source = source,
                      .wh_init = INIT_ORTHOGONAL, .V = 16, .D = 8, .H = 16, .L = 2, .O = 16, .seed = 5,
                      .cell = cell, .forget_bias = 1};
    if (task == TASK_REGRESS) c.V = 0, c.D = DIN, c.O = 2;
    return c;
}

// The local rows of the global window of `step`: tokens and next tokens (lm) or inputs and
// targets (regress), each a function of the global row.
typedef struct window {
    int32_t tok[T * BG], next[T * BG];
    real dense[T * BG * DIN], target[T * BG * 2];
    model_batch bt;
} window;

static void fill_window(window* w, const model* m, long step, const draws* d)
{
    const int B = m->B, row0 = m->g->dp_rank * B;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const long r = t * BG + row0 + b;
            w->tok[t * B + b] = (int32_t)(init_uniform(21, step, r) * m->c.V);
            w->next[t * B + b] = (int32_t)(init_uniform(22, step, r) * m->c.O);
            for (int i = 0; i < DIN; i++)
                w->dense[(t * B + b) * DIN + i] = (real)(init_uniform(23, step, r * DIN + i) - 0.5);
            for (int o = 0; o < 2; o++)
                w->target[(t * B + b) * 2 + o] = (real)(init_uniform(24, step, r * 2 + o) - 0.5);
        }
    if (m->c.task == TASK_REGRESS) w->bt = (model_batch){.T = T, .dense = w->dense, .target = w->target};
    else w->bt = (model_batch){.T = T, .tokens = w->tok, .next = w->next};
    w->bt.teacher_prob = d->teacher_prob;
    w->bt.fb_noise = d->noise;
    w->bt.fb_key = feedback_key(m->c.seed, step);
    w->bt.row0 = row0;
}

// STEPS Adam steps on fresh windows with the draws d; the global loss of each step in traj.
static void trajectory(dist_grid* g, int task, int cell, const draws* d, double* traj)
{
    model_config c = tiny(task, cell, d->source);
    model m;
    char err[256];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    window w;
    for (int s = 0; s < STEPS; s++) {
        fill_window(&w, &m, s, d);
        traj[s] = train_step(&m, &w.bt, s, 0, NULL);
    }
    model_free(&m);
}

static int same_bits(const double* a, const double* b) { return !memcmp(a, b, STEPS * sizeof *a); }

static double max_rel_diff(const double* a, const double* b)
{
    double worst = 0;
    for (int s = 0; s < STEPS; s++) worst = fmax(worst, fabs(a[s] - b[s]) / fabs(b[s]));
    return worst;
}

// The mix at its ends is the plain source, bit for bit (with and without noise, every cell, lm
// and regress); in between it is neither.
static void test_mix_ends(void)
{
    dist_grid one;
    char err[128];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    for (int i = 0; i < 2 * CELL_KINDS; i++)
        for (int k = 0; k < 2; k++) {
            const int task = i % 2 ? TASK_REGRESS : TASK_LM, cell = i / 2;
            const double sigma = k ? 0.3 : 0;
            double target[STEPS], model[STEPS], mix1[STEPS], mix0[STEPS], mixh[STEPS];
            trajectory(&one, task, cell, &(draws){FBS_TARGET, 0, sigma}, target);
            trajectory(&one, task, cell, &(draws){FBS_MODEL, 0, sigma}, model);
            trajectory(&one, task, cell, &(draws){FBS_MIX, 1, sigma}, mix1);
            trajectory(&one, task, cell, &(draws){FBS_MIX, 0, sigma}, mix0);
            trajectory(&one, task, cell, &(draws){FBS_MIX, 0.5, sigma}, mixh);
            char name[32];
            snprintf(name, sizeof name, "%s %s", cell_name(cell), i % 2 ? "regress" : "lm");
            CHECK(same_bits(mix1, target), "%s noise %g: mix p = 1 differs from target by %.2e", name,
                  sigma, max_rel_diff(mix1, target));
            CHECK(same_bits(mix0, model), "%s noise %g: mix p = 0 differs from model by %.2e", name,
                  sigma, max_rel_diff(mix0, model));
            double dt = max_rel_diff(mixh, target), dm = max_rel_diff(mixh, model);
            CHECK(dt > 1e-4 && dm > 1e-4, "%s noise %g: mix p = .5 is %.2e from target, %.2e from model",
                  name, sigma, dt, dm);
            printf("%s noise %g: mix p=1 == target and p=0 == model bit for bit over %d steps; "
                   "p=.5 differs from them by %.2e, %.2e\n", name, sigma, STEPS, dt, dm);
        }
    dist_grid_free(&one);
}

// f after one forward pass over the window of `step` with teacher forcing and noise, (T, B, O)
// local rows: the target is exact, so f is a function of the draws alone.
static void noisy_f(dist_grid* g, long step, real* F)
{
    model_config c = tiny(TASK_LM, CELL_ELMAN, FBS_TARGET);
    model m;
    char err[256];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    window w;
    fill_window(&w, &m, step, &(draws){FBS_TARGET, 0, 0.5});
    model_reset_state(&m);
    model_forward(&m, &w.bt);
    memcpy(F, m.F, (size_t)T * m.B * c.O * sizeof(real));
    model_free(&m);
}

// The noise of one rank over 20 windows has the moments of 0.5 N(0, 1): mean 0, variance 0.25,
// kurtosis 3 (10240 draws: the bounds are 4 standard errors); every layout adds the same bits to
// each global row.
static void test_noise_bits(int world)
{
    enum { O = 16, N = T * BG * O, WINDOWS = 20 };
    static real ref[N], got[N];
    dist_grid one;
    char err[128];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    double s1 = 0, s2 = 0, s4 = 0;
    for (long step = 0; step < WINDOWS; step++) {
        noisy_f(&one, step, ref);
        for (int t = 0; t < T; t++)
            for (int b = 0; b < BG; b++) {
                const int next = (int)(init_uniform(22, step, t * BG + b) * O);
                for (int o = 0; o < O; o++) {
                    double e = ref[(t * BG + b) * O + o] - (o == next);
                    s1 += e, s2 += e * e, s4 += e * e * e * e;
                }
            }
    }
    const double n = (double)N * WINDOWS, mean = s1 / n, var = s2 / n, kurt = s4 / n / (var * var);
    CHECK(fabs(mean) < 4 * 0.5 / sqrt(n) && fabs(var - 0.25) < 4 * 0.25 * sqrt(2 / n) &&
          fabs(kurt - 3) < 4 * sqrt(96 / n), "noise of sigma 0.5: mean %g, variance %g, kurtosis %g",
          mean, var, kurt);
    if (world == 1)
        printf("noise sigma 0.5: mean %.4f, variance %.4f, kurtosis %.3f over %.0f draws\n", mean,
               var, kurt, n);
    noisy_f(&one, 7, ref);
    dist_grid_free(&one);
    layout ls[MAX_LAYOUTS];
    const int nl = world > 1 ? layouts(world, ls) : 0; // one rank is the reference itself
    for (int l = 0; l < nl; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        const int B = BG / g.dp, row0 = g.dp_rank * B;
        noisy_f(&g, 7, got);
        long differ = 0;
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
                differ += memcmp(got + (t * B + b) * O, ref + (t * BG + row0 + b) * O, O * sizeof(real)) != 0;
        CHECK(differ == 0, "tp %d dp %d: %ld rows of f differ from one rank's", g.tp, g.dp, differ);
        if (g.world_rank == 0)
            printf("tp %d x dp %d (%d sharing x %d): noisy f bit-identical to one rank's\n", g.tp,
                   g.dp, g.dpn, g.dpx);
        dist_grid_free(&g);
    }
}

// The teacher draw has probability p (n = 20000 draws, 4 standard errors), and each step draws
// anew.
static void test_teacher_draw(void)
{
    enum { ROWS = 2000, STEPS_T = 10 };
    const double p = 0.3;
    model_batch a = {.teacher_prob = p, .fb_key = feedback_key(5, 0)};
    model_batch b = {.teacher_prob = p, .fb_key = feedback_key(5, 1)};
    long n = 0, agree = 0;
    for (long r = 0; r < ROWS; r++)
        for (int t = 0; t < STEPS_T; t++) {
            int x = feedback_teacher(&a, r, t);
            n += x;
            agree += x == feedback_teacher(&b, r, t);
        }
    const double N = ROWS * STEPS_T, frac = n / N, both = agree / N;
    CHECK(fabs(frac - p) < 4 * sqrt(p * (1 - p) / N), "teacher fraction %g at p = %g", frac, p);
    // Independent steps agree with probability p^2 + (1 - p)^2 = 0.58.
    CHECK(fabs(both - 0.58) < 4 * sqrt(0.58 * 0.42 / N), "steps 0 and 1 agree on %g of the draws", both);
    printf("teacher draw p = %g: fraction %.4f; steps 0 and 1 agree on %.4f (0.58 if independent)\n",
           p, frac, both);
}

// The noise as docs/model.md draws it, in double: element o of row r at step t comes from
// x = splitmix64(splitmix64(k ^ r) ^ (t << 32) ^ (o rounded down to even)), k the step's noise
// key, and is sigma sqrt(-2 ln u1) cos(2 pi u2) (o even) or sin (o odd) with u1 = ((x >> 40) + 1)
// 2^-24, u2 = (x mod 2^24) 2^-24. O = 301 spans several of feedback.c's chunks of pairs and ends
// on a lone element; the target is zero, so f is the noise itself.
static void test_noise_formula(void)
{
    enum { B = 3, O = 301, TW = 3 };
    static real target[TW * B * O], f[B * O];
    const double sigma = 0.5;
    model m;
    memset(&m, 0, sizeof m);
    m.B = B, m.c.O = O, m.c.task = TASK_REGRESS, m.c.feedback_source = FBS_TARGET;
    const model_batch bt = {.T = TW, .target = target, .fb_noise = sigma, .row0 = 5,
                            .fb_key = feedback_key(9, 4)};
    const uint64_t key = init_key(bt.fb_key, "noise");
    double worst = 0;
    for (int t = 0; t < TW; t++) {
        feedback_signal(&m, &bt, t, f, NULL);
        for (int b = 0; b < B; b++)
            for (int o = 0; o < O; o++) {
                const uint64_t row = splitmix64(key ^ (uint64_t)(bt.row0 + b)) ^ ((uint64_t)t << 32);
                const uint64_t x = splitmix64(row ^ (uint64_t)(o & ~1));
                const double u1 = (double)((x >> 40) + 1) / (1 << 24), u2 = (double)(x & 0xffffff) / (1 << 24);
                const double r = sigma * sqrt(-2 * log(u1)), a = 2 * M_PI * u2;
                const double e = fabs(f[b * O + o] - (o % 2 ? r * sin(a) : r * cos(a))) / (1 + r);
                if (e > worst) worst = e;
            }
    }
    CHECK(worst < 4e-6, "noise against its formula in double: error %.2e (per 1 + radius)", worst);
    printf("noise of %d x %d elements over %d steps: within %.1e of its formula in double\n", B, O, TW,
           worst);
}

// Noisy mixed training at every layout follows one rank's trajectory to float rounding, and
// the noise changes it: it is there, and drawn alike everywhere. For each cell.
static void test_layouts(int world_rank, int world, int cell, const char* name)
{
    const draws d = {FBS_MIX, 0.5, 0.5};
    double ref[STEPS], clean[STEPS], got[STEPS];
    dist_grid one;
    char err[128];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    trajectory(&one, TASK_LM, cell, &d, ref);
    trajectory(&one, TASK_LM, cell, &(draws){FBS_MIX, 0.5, 0}, clean);
    dist_grid_free(&one);
    const double moved = max_rel_diff(ref, clean);
    CHECK(moved > 1e-3, "%s: noise 0.5 moves the trajectory by only %.2e", name, moved);
    layout ls[MAX_LAYOUTS];
    const int nl = world > 1 ? layouts(world, ls) : 0; // one rank is the reference itself
    for (int l = 0; l < nl; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        trajectory(&g, TASK_LM, cell, &d, got);
        double worst = max_rel_diff(got, ref);
        CHECK(worst < 1e-5, "%s tp %d dp %d (%d x %d): loss differs from one rank's by %.2e", name,
              g.tp, g.dp, g.dpn, g.dpx, worst);
        if (world_rank == 0)
            printf("%s mix .5 noise .5, tp %d x dp %d (%d sharing x %d): worst relative loss "
                   "difference %.2e (noise moves it by %.2e)\n", name, g.tp, g.dp, g.dpn, g.dpx,
                   worst, moved);
        dist_grid_free(&g);
    }
}

// teacher_prob per step: constant, or linear to teacher_prob_end at the last step and after;
// only the mix gets one, and the key and row offset follow the step and the replica.
static void test_schedule(void)
{
    fnn_config c;
    config_defaults(&c);
    c.optim.steps = 11;
    c.model.feedback_source = FBS_MIX;
    c.teacher_prob = 0.9;
    CHECK(feedback_teacher_prob(&c, 0) == 0.9 && feedback_teacher_prob(&c, 10) == 0.9, "constant");
    c.teacher_prob_end = 0.1;
    const long step[] = {0, 5, 10, 12};
    const double want[] = {0.9, 0.5, 0.1, 0.1};
    for (int i = 0; i < 4; i++)
        CHECK(fabs(feedback_teacher_prob(&c, step[i]) - want[i]) < 1e-15, "step %ld: p %g, want %g",
              step[i], feedback_teacher_prob(&c, step[i]), want[i]);
    const model_batch view = {.T = 3};
    c.feedback_noise = 0.25;
    model_batch bt = feedback_plan(&view, &c, 5, 6);
    CHECK(bt.T == 3 && bt.teacher_prob == 0.5 && bt.fb_noise == 0.25 && bt.row0 == 6 &&
          bt.fb_key == feedback_key(c.model.seed, 5) && bt.fb_key != feedback_key(c.model.seed, 4),
          "plan of step 5");
    CHECK(view.fb_noise == 0 && view.teacher_prob == 0, "the plan wrote into the window it copied");
    c.model.feedback_source = FBS_TARGET;
    bt = feedback_plan(&view, &c, 5, 6);
    CHECK(bt.teacher_prob == 0 && bt.fb_noise == 0.25, "target: p %g", bt.teacher_prob);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world == 1) {
        test_schedule();
        test_teacher_draw();
        test_noise_formula();
        test_mix_ends();
    }
    test_noise_bits(world);
    for (int cell = 0; cell < CELL_KINDS; cell++) test_layouts(rank, world, cell, cell_name(cell));
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails != 0;
}
