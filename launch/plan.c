// fnn plan: the memory plan of a config at a layout, printed without running it (one process),
// and with --ranks N the time model's projection of a training window at N ranks
// (docs/scaling.md).
#include <stdio.h>
#include "launch/commands.h"
#include "run/memory_plan.h"
#include "run/calibration.h"
#include "run/setup.h"

int cmd_plan(int argc, char** argv, dist_grid* world)
{
    // The plan's own options, then the projection's assumptions (--ranks-per-node is both: the
    // node the memory plan fills, and the nodes of the projection).
    const char* known[16] = {"--config", "--set", "--np", "--ranks"};
    int nk = 4;
    for (const char* const* o = projection_opts; *o; o++) known[nk++] = *o;
    known[nk] = NULL;
    setup_check_opts(argc, argv, "plan", known);
    if (world->world_size != 1)
        dist_fail_all("fnn plan runs as one process (--np N says how many ranks to plan for), not on %d",
                      world->world_size);
    fnn_config c;
    setup_config(argc, argv, &c, world);
    // Before the data: what a rank holds once MPI and the libraries are up.
    const double baseline = plan_rss();
    char def[16];
    snprintf(def, sizeof def, "%d", c.tp);
    const int np = setup_int("--np", setup_opt(argc, argv, "--np", def), 1);
    snprintf(def, sizeof def, "%d", np);
    const int node = setup_int("--ranks-per-node", setup_opt(argc, argv, "--ranks-per-node", def), 1);
    const int share = setup_share_dp(world);
    dataset* d = setup_data(&c, world);
    plan_layout lay;
    char err[256];
    if (plan_layout_of(&lay, np, node, share, c.tp, c.model.H, c.batch, err, sizeof err) ||
        model_check_rows(&c.model, c.batch, lay.dp, err, sizeof err))
        dist_fail_all("fnn plan: %s", err);
    plan p;
    const plan_run run = plan_run_of(&c, baseline, (double)dataset_bytes(d));
    plan_compute(&p, &c.model, c.seq_len, c.batch, &lay, &run);
    plan_print(&p, stdout);
    const char* ranks = setup_opt(argc, argv, "--ranks", NULL);
    if (ranks) {
        projection_calibration cal;
        projection_defaults(&cal);
        projection_options(argc, argv, &cal);
        projection_measure(&cal, &c.model, c.batch, world);
        projection_print(stdout, &c.model, c.batch, c.seq_len, setup_int("--ranks", ranks, 1), &cal);
    }
    // The verdict a run would get on this node: the same line, and a failure.
    plan_check(&p, (double)c.memory_limit, world);
    printf("fits this node\n");
    dataset_free(&d);
    return 0;
}
