// Non-finite steps. The loss and the gradient norm are sums of the ranks' contributions; a
// non-finite term (NaN, or Inf from an overflowing element) makes every rank's sum non-finite
// whatever the order of the reduction, so isfinite() agrees on every rank.
#include <math.h>
#include <stdio.h>
#include "dist/dist.h"
#include "run/guard.h"

static int all_finite(const real* p, size_t n)
{
    // One sum instead of n branches: any NaN or Inf element makes it non-finite (0 * x keeps
    // finite elements from overflowing the sum).
    real acc = 0;
    for (size_t i = 0; i < n; i++) acc += 0 * p[i];
    return acc == 0;
}

// Whether this rank's rows of the window hold a non-finite input or target (dense data only:
// token ids are integers).
static int window_bad(const model_batch* b, const model* m)
{
    size_t rows = (size_t)b->T * m->B;
    return (b->dense && !all_finite(b->dense, rows * m->c.D)) ||
           (b->target && !all_finite(b->target, rows * m->c.O));
}

int guard_step(guard* gd, long s, double loss, double gnorm, const model_batch* b, const model* m)
{
    if (isfinite(loss) && isfinite(gnorm)) {
        gd->streak = 0;
        return 1;
    }
    // Each rank saw only its own rows of the window.
    int data = dist_any(window_bad(b, m), m->g);
    const char* cause = data ? "a non-finite input or target in the data window"
                             : "the parameters diverged (lower lr or set clip)";
    if (gd->mode == NONFINITE_SKIP && ++gd->streak <= gd->max) {
        if (m->g->world_rank == 0) {
            printf("step %ld: loss %g, gradient norm %g: %s; update skipped (%d in a row, "
                   "nonfinite_max = %d)\n", s + 1, loss, gnorm, cause, gd->streak, gd->max);
            fflush(stdout);
        }
        return 0;
    }
    if (gd->mode == NONFINITE_SKIP)
        dist_fail_all("step %ld: loss %g, gradient norm %g: %s; %d non-finite steps in a row "
                      "exceed nonfinite_max = %d; stopped with nothing saved", s + 1, loss, gnorm,
                      cause, gd->streak, gd->max);
    dist_fail_all("step %ld: loss %g, gradient norm %g: %s; stopped with nothing saved "
                  "(nonfinite = stop)", s + 1, loss, gnorm, cause);
}

void guard_finite_state(const model* m, long step, const char* dir)
{
    const size_t own = model_own_elems(m);
    int bad = !all_finite(m->params, m->nparams) || (m->m && !all_finite(m->m, own)) ||
              (m->v && !all_finite(m->v, own));
    // Each rank checks the moments it holds; the save is collective, so all skip it together.
    if (dist_any(bad, m->g))
        dist_fail_all("step %ld: the parameters or optimiser moments are not finite (the "
                      "parameters diverged: lower lr or set clip); nothing saved, %s/latest "
                      "unchanged", step, dir);
}
