// fnn: one binary, one subcommand per job; every subcommand runs on every rank of the job.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/config.h"
#include "io/h5.h"
#include "launch/commands.h"
#include "model/kernel.h"

typedef struct command {
    const char* name;
    int (*run)(int argc, char** argv, dist_grid* world);
    const char* help;
} command;

static const command commands[] = {
    {"prepare", cmd_prepare, "text, fortunes records or CSV -> an HDF5 dataset"},
    {"train", cmd_train, "train from --config FILE [--set key=value ...]"},
    {"eval", cmd_eval, "--checkpoint C --data D [--split val|train] [--windows N] [--grads OUT.h5] [--tp N] [--batch B] [--seq-len T]"},
    {"sample", cmd_sample, "generate text from a language-model checkpoint"},
    {"inspect", cmd_inspect, "[--verify] C: a checkpoint's config, shapes, step and writer layout; --verify checks every checksum; --build: this build and its kernel"},
    {"bench", cmd_bench, "throughput, GFLOP/s, fraction of SGEMM peak, time in collectives"},
    {"export", cmd_export, "--checkpoint C --format safetensors --out FILE: the parameters under PyTorch's names"},
    {"plot", cmd_plot, "--out F.png [--names A,B] [--table F] [--size WxH] METRICS...: loss and tokens/s against the step (gnuplot)"},
    {"plan", cmd_plan, "--config F [--set key=value ...] [--np N] [--ranks-per-node R]: the memory plan, without running"},
};

static void usage(FILE* out)
{
    fprintf(out, "usage: fnn COMMAND [options]   (under mpirun -np N or alone)\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
}

static void help(const command* c)
{
    printf("fnn %s: %s\n", c->name, c->help);
    if (strcmp(c->name, "train")) return;
    printf("config keys (INI file, any [section]; --set key=value overrides):\n");
    config_help(stdout);
}

int main(int argc, char** argv)
{
    // Open MPI's default MPI-IO (ompio 4.1) drops a failed write and returns success with a
    // short count: HDF5 then fails on that rank alone and the job hangs in a save. ROMIO raises
    // the error, which io/h5_ioerr.c turns into an abort naming the file. A user's choice stands,
    // and then every save is read back (io/h5_ioerr.c).
    const int readback = h5_io_select();
    dist_grid world;
    char err[256];
    if (dist_start(&argc, &argv, &world, err, sizeof err)) dist_fail_all("%s", err);
    // Each rank's environment names its component: the read-back is a collective, so all or none.
    h5_set_readback(dist_any(readback, &world));
    // FNN_KERNEL is read from each rank's environment against its own CPU: agree on the verdict
    // before any subcommand's collective, and on whether every rank has the same one (one line).
    const char* kerr = kernel_error();
    if (dist_any(kerr != NULL, &world)) {
        if (!dist_any(kerr == NULL, &world)) dist_fail_all("%s", kerr);
        if (kerr) dist_fail("%s", kerr);
        for (;;) pause(); // the failing ranks abort the job
    }
    int status = -1;
    for (size_t i = 0; argc > 1 && i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        if (argc > 2 && !strcmp(argv[2], "--help")) {
            if (world.world_rank == 0) help(&commands[i]);
            status = 0;
        } else {
            status = commands[i].run(argc - 1, argv + 1, &world);
        }
    }
    if (status < 0) {
        if (world.world_rank == 0) usage(argc > 1 && !strcmp(argv[1], "--help") ? stdout : stderr);
        status = argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    dist_stop(&world);
    return status;
}
