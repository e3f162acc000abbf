// fnn inspect: what a checkpoint holds, read from its metadata alone (no parameters loaded);
// with --build, what built this binary and the kernel it chose for this CPU.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/build_info.h"
#include "io/checkpoint.h"
#include "launch/commands.h"
#include "run/setup.h"
#include "model/kernel.h"

static int inspect_build(const dist_grid* world)
{
    if (world->world_rank != 0) return 0;
    printf("version %s\ncompiler %s\nflags %s\nkernel %s (of", build_version(), build_compiler(),
           build_flags(), gemm_kernel_name());
    for (int i = 0; kernel_names[i]; i++) printf(" %s", kernel_names[i]);
    printf("; FNN_KERNEL chooses)\n");
    return 0;
}

int cmd_inspect(int argc, char** argv, dist_grid* world)
{
    if (argc == 2 && !strcmp(argv[1], "--build")) return inspect_build(world);
    char err[512], text[8192] = "";
    if (argc == 3 && !strcmp(argv[1], "--verify")) {
        if (ckpt_verify(argv[2], world->world, err, sizeof err)) dist_fail_all("%s", err);
        if (world->world_rank == 0) printf("%s: every dataset matches its checksum\n", argv[2]);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-')
        dist_fail_all("usage: fnn inspect [--verify] CHECKPOINT | fnn inspect --build");
    const char* path = argv[1];
    model_config mc;
    ckpt_train st;
    if (ckpt_read_meta(path, world->world, &mc, &st, text, sizeof text, err, sizeof err))
        dist_fail_all("%s", err);
    if (world->world_rank != 0) return 0;
    model* m = calloc(1, sizeof *m);
    if (!m) dist_fail("out of memory");
    model_layout(m, &mc, 1, 0);
    printf("checkpoint %s\n", path);
    printf("model: cell %s, task %s, V %d, D %d, H %d, L %d, O %d, activation %s, feedback %s, "
           "feedback_source %s, init %s, seed %llu\n",
           config_enum_name("cell", mc.cell), config_enum_name("task", mc.task), mc.V, mc.D, mc.H, mc.L, mc.O,
           config_enum_name("activation", mc.act), config_enum_name("feedback", mc.feedback),
           config_enum_name("feedback_source", mc.feedback_source),
           config_enum_name("init", mc.wh_init), (unsigned long long)mc.seed);
    printf("train: step %ld, written at tp %d x dp %d, global batch %d, seq_len %d, carry_state %d\n",
           st.step, st.writer_tp, st.writer_dp, st.global_batch, st.seq_len, st.carry_state);
    size_t total = 0;
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        if (t->rank == 1) printf("  /params/%-14s %d\n", t->name, t->rows);
        else printf("  /params/%-14s %d x %d\n", t->name, t->rows, t->cols);
        total += (size_t)t->rows * t->cols;
    }
    printf("parameters: %zu\nrun config:\n%s", total, text);
    free(m);
    return 0;
}
