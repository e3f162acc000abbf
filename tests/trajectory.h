// The float32 training trajectories (test_model.c, test_cells.c, test_feedback.c) train alike:
// Adam at one setting, token batches that are a function of the global row and step, and one
// step as fnn train makes it; a layout's trajectory is then compared with one rank's. Include
// after check.h, model/init.h, model/optim.h and an enum naming T (the window), BG (the global
// batch) and STEPS (the trajectory's length).
#ifndef TESTS_TRAJECTORY_H
#define TESTS_TRAJECTORY_H

static const optim_config adam = {.kind = OPT_ADAM, .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999,
                                  .eps = 1e-8, .clip = 1.0, .steps = STEPS};

// The B rows from row0 of the global token window of `step` and their next tokens, (T, B).
static inline void fill_batch(int32_t* tok, int32_t* next, long step, int row0, int B, int V)
{
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            tok[t * B + b] = (int32_t)(init_uniform(21, step, t * BG + row0 + b) * V);
            next[t * B + b] = (int32_t)(init_uniform(22, step, t * BG + row0 + b) * V);
        }
}

// The step's batch when it is one pass (accum_steps = 1): bt itself.
static inline const model_batch* whole_batch(model* m, void* bt)
{
    (void)m;
    return bt;
}

// Adam step s after model_accumulate over batch(m, arg) (micro-batch by micro-batch) as fnn train
// makes it (model_carry_state after it with carry, model_reset_state before it without); returns
// the loss of the global batch, and its gradient norm in *gnorm (NULL: not wanted).
static inline double accum_step(model* m, const model_batch* (*batch)(model* m, void* arg),
                                void* arg, long s, int carry, double* gnorm)
{
    if (!carry) model_reset_state(m);
    const double loss = model_accumulate(m, batch, arg, NULL);
    const double norm = optim_grad_norm(m);
    if (gnorm) *gnorm = norm;
    optim_step(m, &adam, s, norm, NULL, NULL);
    if (carry) model_carry_state(m);
    return loss;
}

// The same for a model of one pass per step on bt.
static inline double train_step(model* m, const model_batch* bt, long s, int carry, double* gnorm)
{
    return accum_step(m, whole_batch, (void*)bt, s, carry, gnorm);
}

// A layout's loss and gradient-norm trajectory (got, norm) against one rank's (ref, ref_norm),
// each step within relative tol; prints the worst differences (world rank 0), what first.
static inline void check_trajectory(const dist_grid* g, const char* what, const double* got,
                                    const double* norm, const double* ref,
                                    const double* ref_norm, double tol)
{
    double worst = 0, worst_norm = 0;
    for (int s = 0; s < STEPS; s++) {
        worst = fmax(worst, fabs(got[s] - ref[s]) / ref[s]);
        worst_norm = fmax(worst_norm, fabs(norm[s] - ref_norm[s]) / ref_norm[s]);
        CHECK(check_close(got[s], ref[s], tol, 0) && check_close(norm[s], ref_norm[s], tol, 0),
              "%stp %d dp %d (%d x %d) step %d: loss %.9g, grad norm %.9g; one rank %.9g, %.9g",
              what, g->tp, g->dp, g->dpn, g->dpx, s + 1, got[s], norm[s], ref[s], ref_norm[s]);
    }
    if (g->world_rank == 0)
        printf("%stp %d x dp %d (%d sharing x %d): %d steps, worst relative difference from one "
               "rank: loss %.2e, grad norm %.2e\n", what, g->tp, g->dp, g->dpn, g->dpx, STEPS,
               worst, worst_norm);
}

#endif
