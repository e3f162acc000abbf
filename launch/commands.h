// The fnn subcommands. Each runs on every rank of the job and returns the process exit status.
#ifndef LAUNCH_COMMANDS_H
#define LAUNCH_COMMANDS_H

#include "dist/dist.h"

int cmd_prepare(int argc, char** argv, dist_grid* world);
int cmd_train(int argc, char** argv, dist_grid* world);
int cmd_eval(int argc, char** argv, dist_grid* world);
int cmd_sample(int argc, char** argv, dist_grid* world);
int cmd_inspect(int argc, char** argv, dist_grid* world);
int cmd_bench(int argc, char** argv, dist_grid* world);
int cmd_plan(int argc, char** argv, dist_grid* world);
int cmd_export(int argc, char** argv, dist_grid* world);
int cmd_plot(int argc, char** argv, dist_grid* world);

#endif
