// Memory-efficient backpropagation through time (bptt_memory, model/forward.c, backward.c): a
// model that keeps segments of k steps and recomputes them in backward gives the stored run's
// gradients bit for bit (every tensor, and the gradient of the carried h and f at step 0), its
// loss, outputs and carried state, over two windows with the state carried between them: for
// every cell, task, feedback (all, first, none; model, target, mix with noise), dropout (between
// layers and before the head, on the recurrent input: the unmasked h_{t-1} that the cells read
// at a segment's start is the stored one), freezing, at
// k = 1 and a k that does not divide T (sqrt(T)) against the stored run (k = T), with
// weight-gradient chunks of 1, 4 (which cross the segments) and T steps, at every TP x DP layout
// (at np 2 and 4, each case at one of the layouts in turn, every layout meeting every chunk, to
// keep the test short). One BLAS thread: the weight gradients then run on
// fnn's kernel, which fixes the order of every sum (gemm.h). Also the parsing of the setting
// and the activation bytes it keeps.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include "io/dataset.h"
#include "model/feedback.h"
#include "model/init.h"
#include "model/model.h"
#include "tests/check.h"
#include "tests/layouts.h"

enum { T = 10, BG = 4, DIN = 3, L = 2 };

typedef struct bcase {
    int cell, task, feedback, source, last, freeze;
    double noise, teacher_prob, dropout, dropout_rec;
} bcase;

static model_config config_of(const bcase* k)
{
    model_config c = {.task = k->task, .act = ACT_TANH, .feedback = k->feedback,
                      .feedback_source = k->source, .wh_init = INIT_ORTHOGONAL, .V = 7, .D = 5,
                      .H = 8, .L = L, .O = 7, .seed = 3, .cell = k->cell, .forget_bias = 1};
    if (k->task == TASK_REGRESS) c.V = 0, c.D = DIN, c.O = 2;
    if (k->task == TASK_CLASSIFY) c.O = 3;
    return c;
}

// The local rows of the global window `w`: every input a function of (w, global row, t).
typedef struct window {
    int32_t tok[T * BG], next[T * BG], label[BG], last[BG];
    real dense[T * BG * DIN], target[T * BG * 2];
    model_batch bt;
} window;

static void fill_window(window* w, const model* m, const bcase* k, long step)
{
    const int B = m->B, row0 = m->g->dp_rank * B;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const long r = t * BG + row0 + b;
            w->tok[t * B + b] = (int32_t)(init_uniform(31, step, r) * m->c.V);
            w->next[t * B + b] = (int32_t)(init_uniform(32, step, r) * m->c.O);
            for (int i = 0; i < DIN; i++)
                w->dense[(t * B + b) * DIN + i] = (real)(init_uniform(33, step, r * DIN + i) - 0.5);
            for (int o = 0; o < 2; o++)
                w->target[(t * B + b) * 2 + o] = (real)(init_uniform(34, step, r * 2 + o) - 0.5);
        }
    for (int b = 0; b < B; b++) {
        w->label[b] = (int32_t)(init_uniform(35, step, row0 + b) * m->c.O);
        w->last[b] = (int32_t)(init_uniform(36, step, row0 + b) * T);
    }
    if (k->task == TASK_REGRESS)
        w->bt = (model_batch){.T = T, .dense = w->dense, .target = w->target,
                              .last = k->last ? w->last : NULL};
    else if (k->task == TASK_CLASSIFY)
        w->bt = (model_batch){.T = T, .tokens = w->tok, .label = w->label, .last = w->last};
    else
        w->bt = (model_batch){.T = T, .tokens = w->tok, .next = w->next};
    w->bt.fb_noise = k->noise;
    w->bt.teacher_prob = k->teacher_prob;
    w->bt.dropout = k->dropout;
    w->bt.dropout_rec = k->dropout_rec;
    w->bt.fb_key = feedback_key(m->c.seed, step);
    w->bt.row0 = row0;
}

// What two windows (the state carried from the first to the second) leave: the loss, and per
// window the gradients, the gradient of step 0's input rows (carried h and f among them), the
// outputs and the carried state. n: the values written.
static size_t run(dist_grid* g, const bcase* k, int keep, int chunk, real* out, double* loss)
{
    model_config c = config_of(k);
    model m;
    char err[256];
    CHECK(model_init_keep(&m, &c, g, T, BG, keep, chunk, err, sizeof err) == 0, "%s", err);
    CHECK(model_init_params(&m) == 0, "init");
    // Biases start at zero: give them values so that their paths count like the weights'.
    for (int i = 0; i < m.ntensors; i++)
        if (m.tensors[i].rank == 1)
            for (int j = 0; j < m.tensors[i].lrows; j++)
                m.params[m.tensors[i].offset + j] = 0.3 * init_normal(7 + i, m.tensors[i].row0 + j, 0);
    for (int i = 0; k->freeze && i < m.ntensors; i++)
        m.no_grad[i] = m.tensors[i].layer == 0 && m.tensors[i].part != PART_WF;
    const int B = m.B, O = c.O;
    const size_t sHl = (size_t)m.cell->state * m.Hl;
    size_t n = 0;
    window w;
    model_reset_state(&m);
    for (int s = 0; s < 2; s++) {
        fill_window(&w, &m, k, s);
        model_zero_grad(&m);
        model_forward(&m, &w.bt);
        loss[s] = model_loss(&m, &w.bt, NULL);
        model_backward(&m, &w.bt);
#define TAKE(p, len) (memcpy(out + n, (p), (len) * sizeof(real)), n += (len))
        TAKE(m.grads, m.nparams);
        TAKE(m.Y, (size_t)T * B * O);
        TAKE(m.F, (size_t)T * B * O);
        TAKE(m.fT, (size_t)B * O);
        for (int l = 0; l < L; l++) {
            TAKE(m.dX[0][l], (size_t)B * m.K[l]);
            TAKE(m.hT[l], (size_t)B * c.H);
            if (sHl) TAKE(m.sT[l], B * sHl);
        }
#undef TAKE
        model_carry_state(&m);
    }
    model_free(&m);
    return n;
}

static int cases(bcase* out)
{
    int n = 0;
    for (int cell = 0; cell < CELL_KINDS; cell++)
        for (int task = TASK_LM; task <= TASK_REGRESS + 1; task++)
            for (int fb = FB_ALL; fb <= FB_NONE; fb++)
                for (int src = FBS_MODEL; src <= FBS_MIX; src++) {
                    const int t = task > TASK_REGRESS ? TASK_REGRESS : task;
                    if ((fb == FB_NONE || t == TASK_CLASSIFY) && src != FBS_MODEL) continue;
                    out[n++] = (bcase){.cell = cell, .task = t, .feedback = fb, .source = src,
                                       .last = task > TASK_REGRESS, .noise = fb == FB_NONE ? 0 : 0.3,
                                       .teacher_prob = src == FBS_MIX ? 0.5 : 0,
                                       .dropout = src == FBS_TARGET ? 0 : 0.3,
                                       .dropout_rec = fb == FB_FIRST ? 0 : 0.4,
                                       .freeze = fb == FB_FIRST && src == FBS_MODEL};
                }
    return n;
}

static void test_layout(const layout* lay, int which, int nlayouts, int world)
{
    dist_grid g;
    layout_grid(&g, lay);
    static bcase all[32 * CELL_KINDS]; // 24 per cell
    const int ncases = cases(all);
    const int keeps[] = {1, model_bptt_keep("sqrt", T)}, chunks[] = {4, 1, T};
    enum { MAXN = 20000 };
    static real ref[MAXN], got[MAXN];
    int checked = 0;
    for (int i = 0; i < ncases; i++) {
        if ((i / 3) % nlayouts != which) continue; // cases i, i + 1, i + 2: the three chunks
        const bcase* k = &all[i];
        const int chunk = chunks[i % 3];
        double lref[2], lgot[2];
        const size_t n = run(&g, k, 0, chunk, ref, lref);
        CHECK(n <= MAXN, "case %d: %zu values", i, n);
        for (int j = 0; j < 2; j++) {
            run(&g, k, keeps[j], chunk, got, lgot);
            size_t diff = 0;
            for (size_t e = 0; e < n; e++) diff += memcmp(&ref[e], &got[e], sizeof(real)) != 0;
            CHECK(diff == 0 && !memcmp(lref, lgot, sizeof lref),
                  "tp %d share %d, cell %s task %d%s feedback %d source %d%s, keep %d chunk %d: "
                  "%zu of %zu values differ from the stored run's, loss %.9g vs %.9g", lay->tp,
                  lay->share, cell_name(k->cell), k->task, k->last ? " (last)" : "", k->feedback, k->source,
                  k->freeze ? " frozen" : "", keeps[j], chunk, diff, n, lgot[1], lref[1]);
            checked++;
        }
    }
    if (g.world_rank == 0)
        printf("np %d tp %d share %d: %d runs at k = 1, %d equal the stored run (k = %d) bit for "
               "bit\n", world, lay->tp, lay->share, checked, keeps[1], T);
    dist_grid_free(&g);
}

// The setting's words, its refusals, and the bytes each keeps (fewer for fewer steps stored).
static void test_setting(void)
{
    CHECK(model_bptt_keep("all", 100) == 100, "all");
    CHECK(model_bptt_keep("sqrt", 100) == 10 && model_bptt_keep("sqrt", 1000) == 32, "sqrt");
    CHECK(model_bptt_keep("7", 100) == 7 && model_bptt_keep("100", 100) == 100, "N");
    const char* bad[] = {"0", "-3", "101", "seven", "7x", "", " 7", "1e3"};
    for (int i = 0; i < 8; i++)
        CHECK(model_bptt_keep(bad[i], 100) == -1, "'%s' accepted", bad[i]);
    const model_config c = {.task = TASK_LM, .cell = CELL_LSTM, .feedback = FB_ALL, .V = BYTE_VOCAB,
                            .D = 64, .H = 1024, .L = 1, .O = BYTE_VOCAB};
    const size_t all = model_activation_bytes(&c, 1, 32, 1024, 1024),
                 sq = model_activation_bytes(&c, 1, 32, 1024, 32),
                 one = model_activation_bytes(&c, 1, 32, 1024, 1);
    CHECK(sq < all / 4 && one < all / 2, "bytes kept: all %zu, sqrt %zu, 1 %zu", all, sq, one);
    CHECK(model_activation_bytes(&c, 1, 32, 1024, 0) == all, "keep 0 is all");
    printf("activation bytes at H 1024, T 1024, B 32 (lstm): all %.1f MB, k = 32 %.1f MB, k = 1 "
           "%.1f MB\n", all / 1e6, sq / 1e6, one / 1e6);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    openblas_set_num_threads(1);
    int world, rank;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) test_setting();
    layout lays[MAX_LAYOUTS];
    const int n = layouts(world, lays);
    for (int i = 0; i < n; i++) test_layout(&lays[i], i, n, world);
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails ? 1 : 0;
}
