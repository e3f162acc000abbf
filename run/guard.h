// Guards of the training loop against a poisoned checkpoint: a step whose loss or gradient norm
// is not finite stops the run (or, with nonfinite = skip, leaves the parameters as they were),
// and no save writes parameters or optimiser moments that are not finite.
#ifndef RUN_GUARD_H
#define RUN_GUARD_H

#include "io/config.h"
#include "model/model.h"

typedef struct guard {
    int mode;   // enum nonfinite_mode
    int max;    // with skip: the most non-finite steps in a row
    int streak; // non-finite steps in a row so far
} guard;

// Judges step s (0-based) by its global loss and gradient norm, which every rank holds as the
// same reduced values, so the verdict is the same everywhere without a collective. Returns 1 to
// apply the update, 0 to skip it; otherwise ends the job naming the step and the cause. On a
// non-finite value only: collective over m->g->world (the ranks pool what they see of the data
// window, b: this rank's rows).
int guard_step(guard* gd, long s, double loss, double gnorm, const model_batch* b, const model* m);

// Before the save of step `step`: ends the job, with nothing written, when any parameter or
// optimiser moment this rank holds is not finite. Collective over m->g->world.
void guard_finite_state(const model* m, long step, const char* dir);

#endif
