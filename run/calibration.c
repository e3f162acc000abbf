// The time model's calibration: assumptions, their options, and what fnn measures here
// (run/calibration.h; docs/scaling.md, Calibration).
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "run/calibration.h"
#include "run/setup.h"
#include "model/gemm.h"

const char* const projection_opts[] = {"--net-gbps", "--net-us", "--ranks-per-node",
                                       "--cores-per-node", "--node-gib", "--node-mem-gbps",
                                       "--bytes-per-param", "--step-fraction", NULL};

void projection_defaults(projection_calibration* cal)
{
    // step_fraction: fitted to fnn bench's one-rank steps (H 1024 .. 4096, L 2, B 32, T 64, by
    // CPU time); the node's collectives: measured at 2 ranks on this machine (2026-12-05), used
    // when `fnn plan` runs on one rank (docs/scaling.md, Calibration).
    *cal = (projection_calibration){.step_fraction = 0.80, .ag_alpha = 0.5e-6, .ag_beta = 0.11e-9,
                                    .ar_alpha = 0.27e-6, .ar_beta = 0.25e-9, .net_alpha = 1.5e-6,
                                    .net_gbps = 100, .node_mem_gbps = 200, .node_gib = 256,
                                    .bytes_per_param = 20, .ranks_per_node = 64, .cores_per_node = 64};
}

void projection_options(int argc, char** argv, projection_calibration* cal)
{
    const char* v;
    if ((v = setup_opt(argc, argv, "--net-gbps", NULL))) cal->net_gbps = setup_double("--net-gbps", v, 1e-3);
    if ((v = setup_opt(argc, argv, "--net-us", NULL))) cal->net_alpha = 1e-6 * setup_double("--net-us", v, 0);
    if ((v = setup_opt(argc, argv, "--ranks-per-node", NULL)))
        cal->ranks_per_node = setup_int("--ranks-per-node", v, 1);
    if ((v = setup_opt(argc, argv, "--cores-per-node", NULL)))
        cal->cores_per_node = setup_int("--cores-per-node", v, 1);
    if ((v = setup_opt(argc, argv, "--node-gib", NULL))) cal->node_gib = setup_double("--node-gib", v, 1e-3);
    if ((v = setup_opt(argc, argv, "--node-mem-gbps", NULL)))
        cal->node_mem_gbps = setup_double("--node-mem-gbps", v, 1e-3);
    if ((v = setup_opt(argc, argv, "--bytes-per-param", NULL)))
        cal->bytes_per_param = setup_double("--bytes-per-param", v, 0);
    if ((v = setup_opt(argc, argv, "--step-fraction", NULL)))
        cal->step_fraction = setup_double("--step-fraction", v, 1e-3);
}

// This thread's CPU time: the machine may be shared, and a rate per CPU second is what the core
// does when it runs this rank (the model counts cores, not other jobs).
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// GB/s of memcpy over 64 MiB, counting the read and the write, best of 3, per CPU second.
static double copy_rate(void)
{
    const size_t n = (size_t)64 << 20;
    char* src = malloc(n);
    char* dst = malloc(n);
    if (!src || !dst) dist_fail("out of memory");
    memset(src, 1, n), memset(dst, 0, n);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = cpu_seconds();
        memcpy(dst, src, n);
        double gb = 2.0 * n / (cpu_seconds() - t0) / 1e9;
        if (gb > best) best = gb;
    }
    free(src), free(dst);
    return best;
}

// Least over 5 trials (the one least disturbed by other jobs) of the seconds per call of reps
// allgathers (or allreduces) of n reals per rank over g's TP group (every rank of the job).
static double collective_time(int allreduce, int n, int reps, dist_grid* g)
{
    real* send = calloc((size_t)n, sizeof(real));
    real* recv = calloc((size_t)n * g->tp, sizeof(real));
    if (!send || !recv) dist_fail("out of memory");
    double best = 0;
    for (int k = 0; k < 5; k++) {
        dist_barrier(g);
        double t0 = dist_wtime();
        for (int i = 0; i < reps; i++)
            allreduce ? dist_tp_allreduce_sum(recv, n, g) : dist_tp_allgather(send, recv, n, g);
        double t = (dist_wtime() - t0) / reps;
        if (k == 0 || t < best) best = t;
    }
    free(send), free(recv);
    return best;
}

void projection_measure(projection_calibration* cal, const model_config* c, int batch,
                        dist_grid* world)
{
    // The packed kernel on 1, 2, 4, ... rows against a 256 x 256 weight (256 KiB: in this
    // core's cache, so the kernel's own rate, not memory's), best of 3 runs of about 2 GFLOP,
    // per CPU second.
    for (int i = 0; i < PROJECTION_ROWS; i++) {
        const int M = 1 << i;
        gemm_kernel_rate(M, 256, 256, 1 + (long)(2e9 / (2.0 * M * 256 * 256)), 3, &cal->kernel_gflops[i]);
    }
    cal->mem_gbps = copy_rate();
    const int p = world->world_size;
    if (p > 1) {
        dist_grid g;
        char err[256];
        // One TP group over the job: its allgather and allreduce are a step's, at every rank.
        if (dist_grid_init(world->world, p, 1, &g, err, sizeof err)) dist_fail_all("%s", err);
        int rounds = 0;
        while ((1 << rounds) < p) rounds++;
        // The step's sizes at tp = p (projection.h), at most 1 MiB per rank: past that the
        // time per byte no longer changes.
        const long cap = (1 << 20) / sizeof(real);
        const long ag_n = (long)batch * (c->H / p + c->O), ar_n = (long)batch * (c->D + c->H + c->O);
        const int agn = (int)(ag_n < cap ? ag_n : cap), arn = (int)(ar_n < cap ? ar_n : cap);
        const double ag1 = collective_time(0, 1, 200, &g), agl = collective_time(0, agn, 20, &g);
        const double ar1 = collective_time(1, 1, 200, &g), arl = collective_time(1, arn, 20, &g);
        const double agb = (p - 1.0) / p * p * agn * sizeof(real), arb = (p - 1.0) / p * arn * sizeof(real);
        double fit[5] = {ag1 / rounds, (agl > ag1 ? agl - ag1 : 0) / agb,
                         ar1 / (2 * rounds), (arl > ar1 ? arl - ar1 : 0) / (2 * arb), 0};
        const int spans = world->node_ranks < p;
        if (spans) {
            // Between nodes the largest message of a step is the DP reduction of a whole shard
            // (P / dpn per rank): the link's bandwidth from an allreduce of the replica's
            // parameters over the ranks, at most 16 MiB per rank, where a busy machine's
            // scheduling noise is small beside the transfer.
            static model m;
            model_layout(&m, c, 1, 0);
            const long big = (long)(m.nparams / p < (16 << 20) / sizeof(real) ? m.nparams / p
                                                                              : (16 << 20) / sizeof(real));
            const double t = collective_time(1, (int)big, 3, &g);
            fit[4] = (t > ar1 ? t - ar1 : 0) / (2 * (p - 1.0) / p * big * sizeof(real));
        }
        dist_bcast_bytes(fit, sizeof fit, world);
        dist_grid_free(&g);
        if (spans) {
            // The collectives crossed the network; the node's are not measured.
            cal->net_alpha = fit[0];
            cal->net_gbps = fit[4] > 0 ? 8 / fit[4] / 1e9 : cal->net_gbps;
        } else {
            cal->ag_alpha = fit[0], cal->ag_beta = fit[1], cal->ar_alpha = fit[2], cal->ar_beta = fit[3];
        }
    }
    double figs[PROJECTION_ROWS + 1];
    memcpy(figs, cal->kernel_gflops, sizeof cal->kernel_gflops);
    figs[PROJECTION_ROWS] = cal->mem_gbps;
    dist_bcast_bytes(figs, sizeof figs, world);
    memcpy(cal->kernel_gflops, figs, sizeof cal->kernel_gflops);
    cal->mem_gbps = figs[PROJECTION_ROWS];
}
