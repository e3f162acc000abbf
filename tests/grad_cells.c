// Gradient check of every cell of the registry (model/cell.h) in float64 (the model sources
// built with -DFNN_DOUBLE): the analytic gradient of model_backward against central differences
// of model_loss for every parameter element, for each feedback mode and source and each task,
// with and without carried state (h, f and a cell's state, the LSTM's c, left by a first
// window), at every TP x DP layout of the world. Also the gradient of the state a window starts
// from (h_{-1} and the cell's s_{-1}), which reaches it only through every step of the window:
// the cell's carry (the LSTM's f * c_prev, the GRU's z * h_prev, the MGU's (1 - f) * h_prev and
// f * h_prev through its gated product) and the products. With dropout (a fixed mask: the
// window's key) between layers, before the head and on the recurrent input, where the state's
// gradient passes the recurrent mask through the products but not through the cell's carry.
// ranks: 1 2 4
#include "model/feedback.h"
#include "model/init.h"
#include "model/model.h"
#include "tests/check.h"

enum { T = 4, BG = 4, H = 4 }; // window, global batch, hidden units

#include "tests/batch.h"
#include "tests/layouts.h"

typedef struct gcase {
    char what[48];
    int cell, task, feedback, source, L, carry;
    double dropout, dropout_rec; // p of dropout (0: none)
} gcase;

// The gradient of the state the window starts from, as backward leaves it: of h_{-1} of layer
// l, the h columns of step 0's input gradient (dX, summed over TP) plus, for a cell that
// carries the gradient of h (a carry and no state), the carry (this rank's block); of a cell's
// state s_{-1}, the carry. Rows of this replica: (B, H) and (B, Hl) per layer.
typedef struct state_grad {
    real dh[MODEL_MAX_LAYERS][BG * H], dc[MODEL_MAX_LAYERS][BG * H];
} state_grad;

static void take_state_grad(const model* m, state_grad* sg)
{
    const int B = m->B, Hl = m->Hl, carry_h = m->cell->carry && !m->cell->state;
    for (int l = 0; l < m->c.L; l++) {
        const int K = m->K[l];
        for (int b = 0; b < B; b++)
            for (int j = 0; j < H; j++) {
                const int own = j >= m->h0 && j < m->h0 + Hl;
                real d = m->dX[0][l][(size_t)b * K + m->hc[l] + j];
                if (carry_h && own) d += m->cg[l][(size_t)b * Hl + j - m->h0];
                sg->dh[l][b * H + j] = d;
                if (m->cell->state && own)
                    sg->dc[l][b * Hl + j - m->h0] = m->cg[l][(size_t)b * Hl + j - m->h0];
            }
    }
}

// Central differences of every element of h_{-1} and c_{-1}. Every rank of the replica holding
// row r holds h_{-1}[r] whole (and perturbs it); c_{-1}[r, j] is only on the rank owning unit j.
static double check_state(model* m, const model_batch* bt, const state_grad* sg, const char* what)
{
    const int B = m->B, Hl = m->Hl;
    double worst = 0;
    for (int l = 0; l < m->c.L; l++)
        for (int r = 0; r < BG; r++)
            for (int j = 0; j < H; j++) {
                const int b = r - m->g->dp_rank * B, row = b >= 0 && b < B;
                const int own = row && j >= m->h0 && j < m->h0 + Hl;
                char name[32];
                snprintf(name, sizeof name, "layer%d h_{-1}", l);
                double fd = central_difference(m, bt, row ? m->h0s[l] + (size_t)b * H + j : NULL);
                if (own) compare(fd, sg->dh[l][b * H + j], &worst, what, name, r, j);
                if (!m->cell->state) continue;
                snprintf(name, sizeof name, "layer%d %s_{-1}", l, m->cell->state_name);
                fd = central_difference(m, bt, own ? m->s0s[l] + (size_t)b * Hl + j - m->h0 : NULL);
                if (own) compare(fd, sg->dc[l][b * Hl + j - m->h0], &worst, what, name, r, j);
            }
    return worst;
}

// The dropout of training step `step`, keyed by global row as train.c keys it.
static void set_dropout(model_batch* bt, const gcase* gc, const model* m, long step)
{
    bt->dropout = gc->dropout;
    bt->dropout_rec = gc->dropout_rec;
    bt->fb_key = feedback_key(m->c.seed, step);
    bt->row0 = (long)m->g->dp_rank * m->B;
}

static void run_case(const gcase* gc, dist_grid* g)
{
    model_config c = {.cell = gc->cell, .task = gc->task, .act = ACT_TANH,
                      .feedback = gc->feedback, .feedback_source = gc->source,
                      .wh_init = INIT_ORTHOGONAL, .forget_bias = 1, .H = H, .L = gc->L, .seed = 7};
    model m;
    if (init_case(&m, &c, g, gc->what)) return;
    gdata gd;
    ldata ld;
    make_global(&gd, &c, 3);
    slice_local(&ld, &gd, &m, c.task, 0);
    set_dropout(&ld.view, gc, &m, 2);
    model_reset_state(&m);
    if (gc->carry) { // a first window leaves h, f and c behind; the checked window starts there
        model_forward(&m, &ld.view);
        model_carry_state(&m);
        make_global(&gd, &c, 4);
        slice_local(&ld, &gd, &m, c.task, 0);
        set_dropout(&ld.view, gc, &m, 3);
    }
    model_forward(&m, &ld.view);
    model_loss(&m, &ld.view, NULL);
    model_zero_grad(&m);
    model_backward(&m, &ld.view);
    model_gather(&m, m.grads);
    static state_grad sg;
    take_state_grad(&m, &sg);
    double wp = check_params(&m, &ld.view, gc->what);
    double ws = gc->carry ? check_state(&m, &ld.view, &sg, gc->what) : 0;
    char state[32] = "";
    if (gc->carry) snprintf(state, sizeof state, ", state %.2e", ws);
    if (g->world_rank == 0)
        printf("%-34s tp=%d dp=%d (%d x %d) worst rel err: params %.2e%s\n", gc->what, g->tp,
               g->dp, g->dpn, g->dpx, wp, state);
    model_free(&m);
}

// The cases of one cell, run for every cell of the registry.
static const gcase per_cell[] = {
    {"lm all model", 0, TASK_LM, FB_ALL, FBS_MODEL, 2, 0, 0, 0},
    {"lm first model carried", 0, TASK_LM, FB_FIRST, FBS_MODEL, 2, 1, 0, 0},
    {"lm none carried", 0, TASK_LM, FB_NONE, FBS_MODEL, 2, 1, 0, 0},
    {"lm all target carried", 0, TASK_LM, FB_ALL, FBS_TARGET, 2, 1, 0, 0},
    {"classify all model carried", 0, TASK_CLASSIFY, FB_ALL, FBS_MODEL, 2, 1, 0, 0},
    {"classify first model", 0, TASK_CLASSIFY, FB_FIRST, FBS_MODEL, 2, 0, 0, 0},
    {"regress all model carried", 0, TASK_REGRESS, FB_ALL, FBS_MODEL, 2, 1, 0, 0},
    {"regress first target", 0, TASK_REGRESS, FB_FIRST, FBS_TARGET, 2, 0, 0, 0},
    {"regress none carried L1", 0, TASK_REGRESS, FB_NONE, FBS_MODEL, 1, 1, 0, 0},
    {"lm all model drop .4 rec .4 carried", 0, TASK_LM, FB_ALL, FBS_MODEL, 2, 1, 0.4, 0.4},
    {"regress first target rec .5 carried", 0, TASK_REGRESS, FB_FIRST, FBS_TARGET, 2, 1, 0, 0.5}};
enum { PER_CELL = sizeof per_cell / sizeof per_cell[0], NCASES = CELL_KINDS * PER_CELL };

static gcase case_of(int i)
{
    gcase gc = per_cell[i % PER_CELL];
    gc.cell = i / PER_CELL;
    snprintf(gc.what, sizeof gc.what, "%s %s", cell_name(gc.cell), per_cell[i % PER_CELL].what);
    return gc;
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    // One rank runs every case; 2 ranks a third of them at each of their 3 layouts and 4 ranks a
    // sixth at each of their 6, so that every case runs once at 2 and once at 4 ranks, and each
    // layout checks every cell.
    layout ls[MAX_LAYOUTS];
    const int nl = layouts(world, ls);
    for (int l = 0; l < nl; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        for (int i = 0; i < NCASES; i++)
            if (world == 1 || (i + l) % (world == 2 ? 3 : 6) == 0) {
                const gcase gc = case_of(i);
                run_case(&gc, &g);
            }
        dist_grid_free(&g);
    }
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails != 0;
}
