// Where the time model's calibration (model/projection.h) comes from: the assumptions'
// defaults, the options that change them, and the measurements `fnn plan` makes when it runs.
#ifndef RUN_CALIBRATION_H
#define RUN_CALIBRATION_H

#include "model/projection.h"

// The options projection_options reads, NULL-terminated, for the caller's setup_check_opts list.
extern const char* const projection_opts[];

// The assumed nodes and network (docs/scaling.md): 64 ranks and cores per node, 256 GiB,
// 200 GB/s of memory, 100 Gb/s and 1.5 us per message between nodes, 20 bytes per parameter;
// the step fraction fitted to this machine's one-rank runs and the node's collectives measured
// here at 2 ranks (projection_measure replaces them); the kernel table and mem_gbps are zero.
void projection_defaults(projection_calibration* cal);

// --net-gbps, --net-us, --ranks-per-node, --cores-per-node, --node-gib, --node-mem-gbps,
// --bytes-per-param, --step-fraction: each replaces its assumption. A bad value ends the job
// with one line naming the option (every rank parses the same argv, so all stop alike).
void projection_options(int argc, char** argv, projection_calibration* cal);

// Measures, on this rank's core: the packed kernel's rate at 1 .. 64 rows (weights of
// k x n in cache), and the copy bandwidth; and with two or more ranks, the allgather and
// allreduce over every rank of world at one element and at the step's size for c at
// (tp = ranks, batch) (capped at 1 MiB per rank), fitted to rounds x alpha + bytes x beta: the
// node's figures when world is one node; when it spans nodes, net_alpha from the allgather and
// net_gbps from an allreduce of the replica's parameters / ranks (at most 16 MiB per rank: the
// DP reduction's size). Collective over world; every rank gets rank 0's figures.
void projection_measure(projection_calibration* cal, const model_config* c, int batch,
                        dist_grid* world);

#endif
