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

// Adam step s on bt as fnn train makes it (model_carry_state after it with carry,
// model_reset_state before it without); returns the loss of the global batch, and its gradient
// norm in *gnorm (NULL: not wanted).
static inline double train_step(model* m, const model_batch* bt, long s, int carry, double* gnorm)
{
    if (!carry) model_reset_state(m);
    model_zero_grad(m);
    model_forward(m, bt);
    double loss = model_loss(m, bt, NULL);
    model_backward(m, bt);
    // The global loss: each replica holds its rows' share.
    if (m->g->dp > 1) dist_dp_allreduce_f64(&loss, 1, m->g);
    const double norm = optim_grad_norm(m);
    if (gnorm) *gnorm = norm;
    optim_step(m, &adam, s, norm, NULL, NULL);
    if (carry) model_carry_state(m);
    return loss;
}

#endif
