// fnn export: a checkpoint's parameters in another format, for other tools to read. The
// checkpoint is loaded whole on every rank (tp = 1, any number of ranks), and rank 0 writes.
#include <stdio.h>
#include <string.h>
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "launch/commands.h"
#include "run/setup.h"

int cmd_export(int argc, char** argv, dist_grid* world)
{
    static const char* const known[] = {"--checkpoint", "--format", "--out", NULL};
    setup_check_opts(argc, argv, "export", known);
    const char* path = setup_opt(argc, argv, "--checkpoint", NULL);
    const char* format = setup_opt(argc, argv, "--format", "safetensors");
    const char* out = setup_opt(argc, argv, "--out", NULL);
    if (!path || !out) dist_fail_all("usage: fnn export --checkpoint C --format safetensors --out FILE");
    if (strcmp(format, "safetensors")) dist_fail_all("--format %s: the only format is safetensors", format);
    dist_grid g;
    model m;
    model_config mc;
    ckpt_train st;
    // One row per rank: the model is built only to hold the parameters.
    setup_open_checkpoint(path, world, &g, 1, 1, world->world_size, &m, &mc, &st);
    // The model config as strings, for fnn's init_from and for whoever rebuilds the model.
    char num[6][24];
    snprintf(num[0], sizeof num[0], "%d", mc.V);
    snprintf(num[1], sizeof num[1], "%d", mc.D);
    snprintf(num[2], sizeof num[2], "%d", mc.H);
    snprintf(num[3], sizeof num[3], "%d", mc.L);
    snprintf(num[4], sizeof num[4], "%d", mc.O);
    snprintf(num[5], sizeof num[5], "%ld", st.step);
    const char* const meta[] = {
        "format", "fnn", "cell", config_enum_name("cell", mc.cell),
        "task", config_enum_name("task", mc.task), "activation", config_enum_name("activation", mc.act),
        "feedback", config_enum_name("feedback", mc.feedback),
        "feedback_source", config_enum_name("feedback_source", mc.feedback_source),
        "vocab", num[0], "embed", num[1], "hidden", num[2], "layers", num[3], "outputs", num[4],
        "step", num[5],
    };
    char err[512] = "";
    const int failed = g.world_rank == 0 && st_save(out, &m, meta, (int)(sizeof meta / sizeof meta[0] / 2), err, sizeof err);
    // Rank 0 alone wrote: every rank ends with its verdict.
    if (dist_comm_agree(failed, err, sizeof err, world->world)) dist_fail_all("%s", err);
    if (g.world_rank == 0) printf("exported %s to %s (%s)\n", path, out, format);
    model_free(&m);
    dist_grid_free(&g);
    return 0;
}
