// A per-step time model of one training window (forward, loss, backward, Adam) at a layout
// fnn may never run on this machine: N ranks in nodes of ranks_per_node, tp x dp, global batch B,
// T steps. Pure arithmetic over figures measured here (the calibration) and stated assumptions
// about the nodes and the network between them; docs/scaling.md gives the equations, where the
// calibration comes from and how far the model is off on the runs this machine can make.
//
// Legend: b = B / dp (a replica's rows), Hl = H / tp, K_l = a layer's input width (model.h),
// P = this rank's parameters (model_layout), F = this rank's flops per window (model_flops),
// dpn = DP replicas per node sharing memory, dpx = dp / dpn (DP ranks reducing by message).
#ifndef MODEL_PROJECTION_H
#define MODEL_PROJECTION_H

#include <stdio.h>
#include "model/model.h"

// Rows at which the packed kernel's rate is measured: 1, 2, 4, ..., 64 (more rows run at 64's).
#define PROJECTION_ROWS 7

typedef struct projection_calibration {
    // Measured here (run/calibration.h).
    double kernel_gflops[PROJECTION_ROWS]; // packed kernel, weights in cache, 2^i rows, one core
    double step_fraction;  // a whole step's rate / the kernel's: the work outside the products
    double mem_gbps;       // one core's copy bandwidth (packing, Adam, the node's DP sums)
    double ag_alpha, ag_beta; // allgather inside a node: s per round (log2 p rounds), s per byte
    double ar_alpha, ar_beta; // allreduce inside a node: the same
    // Assumed (settable): the nodes past this machine and the network between them.
    double net_alpha;      // s per message between nodes
    double net_gbps;       // Gb/s of one node's link, shared by its ranks
    double node_mem_gbps;  // a node's memory bandwidth, shared by its ranks
    double node_gib;       // a node's memory, for the feasibility column
    double bytes_per_param; // what each parameter a rank holds costs (weights, gradient, Adam, packed)
    int ranks_per_node;    // one rank per core
    int cores_per_node;    // ranks beyond the cores share them (oversubscription, as here)
} projection_calibration;

// The model's terms for one window, seconds, each one rank's share of the critical path.
enum projection_term { PROJ_COMPUTE, PROJ_MEMORY, PROJ_TP_LAT, PROJ_TP_BW, PROJ_DP_LAT, PROJ_DP_BW,
                       PROJ_NTERMS };

typedef struct projection_step {
    int ranks, tp, dp, b, nodes, dpn, dpx;
    double flops;          // this rank's flops per window (model_flops)
    double params;         // this rank's parameters (all of its TP shard)
    double params_total;   // the model's parameters
    double ag_bytes[MODEL_MAX_LAYERS]; // one allgather's result per layer and step (tp x chunk)
    double ar_bytes[MODEL_MAX_LAYERS]; // one allreduce's buffer per layer and step
    double dp_net_bytes;   // what one node's link carries for the DP reduction of a window
    double mem_bytes;      // memory traffic of packing, Adam and the node's DP sums, per rank
    double rank_bytes;     // memory a rank holds: parameters at bytes_per_param, activations
    int fits;              // rank_bytes <= node memory / ranks per node
    double t[PROJ_NTERMS];
    double total;          // sum of the terms (nothing overlaps)
} projection_step;

// The window's terms at (tp, ranks), global batch B and T steps. Returns 0, or -1 when the layout
// is impossible: tp not dividing ranks or H, dp not dividing B, more layers than the model takes.
int projection_model(projection_step* s, const model_config* c, int tp, int B, int T, int ranks,
                     const projection_calibration* cal);
// The term that costs most (enum projection_term) and its name.
int projection_dominant(const projection_step* s);
const char* projection_term_name(int term);
// The layout of `ranks` with the shortest window among the feasible ones (tp a power of 2
// dividing H and ranks, dp dividing B); an infeasible one only when none fits. -1: no layout.
int projection_best(projection_step* s, const model_config* c, int B, int T, int ranks,
                    const projection_calibration* cal);

// The projection `fnn plan --ranks N` prints: the calibration it used, every layout of N ranks
// (tp x dp) with its terms, memory per rank and the dominant term, and which is fastest.
void projection_print(FILE* out, const model_config* c, int batch, int seq_len, int ranks,
                      const projection_calibration* cal);

#endif
