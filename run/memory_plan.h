// The memory plan: what each rank and each node of a run will hold, computed from the config
// and the layout before anything large is allocated (model_memory gives the model's part, from
// the functions that size model_init's allocations), checked against what the node has, and
// compared at the end with the peak the kernel measured (VmHWM).
#ifndef RUN_MEMORY_PLAN_H
#define RUN_MEMORY_PLAN_H

#include <stdio.h>
#include "io/config.h"

// The rows of the plan. The first PLAN_STEADY are held for the whole run; the others are
// transients of one phase: the orthogonal initialisation's QR (a fresh start with init =
// orthogonal), the checkpoint's I/O buffers, and Open MPI's temporaries of the DP reduction
// between nodes or unshared replicas (backward).
enum plan_term { PLAN_BASELINE, PLAN_DATA, PLAN_PARAMS, PLAN_GRADS, PLAN_MOMENTS, PLAN_PACKED,
                 PLAN_ACTIVATIONS, PLAN_BUFFERS, PLAN_THETA0, PLAN_STAGING, PLAN_STEADY, PLAN_INIT = PLAN_STEADY, PLAN_CKPT,
                 PLAN_REDUCE, PLAN_NTERMS };

// Where the ranks are: np in all, tp per replica, dp = np / tp replicas, node_ranks per node,
// dpn DP replicas of a node sharing one window (FNN_SHARE_DP; model/share.c).
typedef struct plan_layout {
    int np, tp, dp, node_ranks, dpn;
} plan_layout;

// What the run holds besides the model: baseline, the bytes a rank holds before the data and
// the model; data, the loaded dataset's; whether it draws orthogonal Wh (a fresh start), saves
// checkpoints (in the background, from a staging copy: staging), and keeps fine-tuning's copy of
// the loaded parameters (l2_init); keep, the steps per segment whose activations backward keeps
// (bptt_memory; 0: the whole window).
typedef struct plan_run {
    double baseline, data;
    int orthogonal_init, ckpt, staging, theta0, keep;
} plan_run;

// The run fnn train makes of config c. A resumed run draws no orthogonal Wh (resume = auto may
// find nothing: it counts the QR).
plan_run plan_run_of(const fnn_config* c, double baseline, double data);

typedef struct plan {
    plan_layout lay;
    model_config mc;         // the inputs, for the plans of the alternatives (plan_check)
    int T, batch;
    plan_run run;
    double nparams;          // parameters of the whole model
    double rank[PLAN_NTERMS]; // bytes per rank (the packed area: a DP group's, over its dpn)
    double node[PLAN_NTERMS]; // bytes per node
    double rank_steady, node_steady; // the rows held for the whole run
    double rank_peak, node_peak; // steady + the larger transient, or the init phase (the QR
                                 // over the parameters alone, without a shared window)
    double node_shm;         // of node_peak in /dev/shm (the windows of DP groups of dpn > 1)
} plan;

// The layout of np ranks, node_ranks per node, for tp, hidden H and the global batch, with
// FNN_SHARE_DP = share. 0, or -1 with a one-line reason in err (np not a multiple of tp, tp
// not dividing H, a batch dp does not divide).
int plan_layout_of(plan_layout* lay, int np, int node_ranks, int share, int tp, int H, int batch,
                   char* err, size_t errlen);

// The same for the grid g of a running job, grouped as it is.
int plan_layout_grid(plan_layout* lay, const dist_grid* g, int H, int batch, char* err, size_t errlen);

// The plan of model mc (V, D and O filled from the data) with windows of T steps and a global
// batch, at lay, for run.
void plan_compute(plan* p, const model_config* mc, int T, int batch, const plan_layout* lay,
                  const plan_run* run);

// The table, one line per row, per rank and per node, and bytes per parameter.
void plan_print(const plan* p, FILE* out);

// Refuses, on every rank with the same one line, a run whose plan does not fit this node:
// what it needs, what there is (limit: memory_limit, 0 = what the node has) and the change that
// helps most. Collective over world.
void plan_check(const plan* p, double limit, dist_grid* g);

// Prints (rank 0) the peak resident memory the kernel measured, per rank and summed per node,
// beside the plan's. Collective over world.
void plan_report_peak(const plan* p, dist_grid* g);

// This process's resident memory now (VmRSS), its peak (VmHWM), and now with each shared page
// split among the processes that map it (Pss: these summed over a node's ranks count a shared
// window once), in bytes; 0 if unknown.
double plan_rss(void);
double plan_hwm(void);
double plan_pss(void);

// What this node has for the run: MemAvailable plus what the node's ranks hold already
// (resident_node), capped by limit when it is not 0; and /dev/shm's free bytes.
double plan_node_room(double limit, double resident_node, double* shm_free);

#endif
