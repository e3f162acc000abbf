// fnn bench: training throughput of a language model on random bytes, the GFLOP/s it achieves
// against two ceilings measured in the same run, and the time in collectives. The ceilings:
// OpenBLAS's SGEMM on large squares (Debian's build runs AVX2 kernels), and fnn's own AVX-512
// kernel (model/gemm.h) on a block that stays in L1, which no real product can beat; with
// --precision bf16, also the bf16 kernel's (model/gemm_bf16.h) on the same block.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include "run/bench_ckpt.h"
#include "run/bench_csv.h"
#include "launch/commands.h"
#include "run/memory_plan.h"
#include "run/setup.h"
#include "run/startup.h"
#include "io/config.h"
#include "model/feedback.h"
#include "model/gemm.h"
#include "model/gemm_bf16.h"
#include "model/kernel.h"
#include "model/init.h"
#include "model/optim.h"

// Best of 5 square SGEMMs of order n on this rank's threads: 2 n^3 flops each.
static double sgemm_peak(int n)
{
    float* a = malloc((size_t)n * n * sizeof(float));
    float* c = malloc((size_t)n * n * sizeof(float));
    if (!a || !c) dist_fail("out of memory");
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)init_normal(1, (long)i, 0), c[i] = 0;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = dist_wtime();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, a, n, 0, c, n);
        double gf = 2.0 * n * n * n / (dist_wtime() - t0) / 1e9;
        if (gf > best) best = gf;
    }
    free(a);
    free(c);
    return best;
}

// This process's CPU time: below 100% of the wall time, the step waited for a core (another
// job on the machine), and its figures are low by that much or more.
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void random_batch(int32_t* tok, int32_t* next, int n, long step)
{
    for (int i = 0; i < n; i++) {
        tok[i] = (int32_t)(init_uniform(7, step, i) * BYTE_VOCAB);
        next[i] = (int32_t)(init_uniform(8, step, i) * BYTE_VOCAB);
    }
}

int cmd_bench(int argc, char** argv, dist_grid* world)
{
    static const char* const known[] = {"--hidden", "--layers", "--batch", "--seq-len", "--embed",
                                        "--steps", "--tp", "--threads", "--freeze-layers", "--csv",
                                        "--scaling", "--ceilings", "--cell", "--feedback-noise",
                                        "--bptt-memory", "--init", "--precision", NULL};
    if (setup_flag(argc, argv, "--ckpt")) return bench_ckpt(argc, argv, world);
    setup_check_opts(argc, argv, "bench", known);
    startup su;
    startup_begin(&su);
    model_config mc = {.task = TASK_LM, .act = ACT_TANH, .feedback = FB_ALL,
                       .feedback_source = FBS_MODEL, .wh_init = INIT_NORMAL, .V = BYTE_VOCAB, .O = BYTE_VOCAB,
                       .forget_bias = 1, .seed = 1};
    const char* cell = setup_opt(argc, argv, "--cell", "elman");
    if ((mc.cell = config_enum_value("cell", cell)) < 0) {
        char cells[128];
        config_enum_names("cell", cells, sizeof cells);
        dist_fail_all("--cell %s: expected one of %s", cell, cells);
    }
    // --init orthogonal: the start-up of a run with the QR (startup.h's line).
    const char* init = setup_opt(argc, argv, "--init", "normal");
    if ((mc.wh_init = config_enum_value("init", init)) < 0)
        dist_fail_all("--init %s: expected orthogonal, identity or normal", init);
    // --precision bf16: the per-step products on the bf16 kernels (config precision).
    const char* precision = setup_opt(argc, argv, "--precision", "fp32");
    if ((mc.precision = config_enum_value("precision", precision)) < 0)
        dist_fail_all("--precision %s: expected fp32 or bf16", precision);
    mc.H = setup_int("--hidden", setup_opt(argc, argv, "--hidden", "1024"), 1);
    mc.L = setup_int("--layers", setup_opt(argc, argv, "--layers", "1"), 1);
    mc.D = setup_int("--embed", setup_opt(argc, argv, "--embed", "128"), 1);
    int Bg = setup_int("--batch", setup_opt(argc, argv, "--batch", "32"), 1);
    int T = setup_int("--seq-len", setup_opt(argc, argv, "--seq-len", "64"), 1);
    int steps = setup_int("--steps", setup_opt(argc, argv, "--steps", "5"), 1);
    int tp = setup_int("--tp", setup_opt(argc, argv, "--tp", "1"), 1);
    int frozen = setup_int("--freeze-layers", setup_opt(argc, argv, "--freeze-layers", "0"), 0);
    // --feedback-noise SIGMA: the training draw of feedback_noise on every fed-back f (its cost).
    const double noise = setup_double("--feedback-noise", setup_opt(argc, argv, "--feedback-noise", "0"), 0);
    // --bptt-memory all|sqrt|N: the steps whose activations backward keeps (config bptt_memory).
    const char* bptt = setup_opt(argc, argv, "--bptt-memory", "all");
    const int keep = model_bptt_keep(bptt, T);
    if (keep < 0) dist_fail_all("--bptt-memory %s: expected all, sqrt or a number of steps 1..%d", bptt, T);
    const char* csv = setup_opt(argc, argv, "--csv", NULL);
    // The scaling study's CSV has no cell or noise column: its rows stay comparable Elman rows.
    if (csv && mc.cell != CELL_ELMAN) dist_fail_all("--csv with --cell %s: the CSV records elman rows only", cell);
    if (csv && noise > 0) dist_fail_all("--csv with --feedback-noise %g: the CSV records rows without noise", noise);
    if (csv && mc.precision != PRECISION_FP32) dist_fail_all("--csv with --precision %s: the CSV records fp32 rows only", precision);
    if (csv && keep < T) dist_fail_all("--csv with --bptt-memory %s: the CSV records rows that keep all steps", bptt);
    const char* scaling = setup_opt(argc, argv, "--scaling", "strong");
    if (strcmp(scaling, "strong") && strcmp(scaling, "weak"))
        dist_fail_all("--scaling %s: expected strong or weak", scaling);
    // --ceilings no: the scaling study's rows do not use them, and they take seconds per run.
    const char* ceil_opt = setup_opt(argc, argv, "--ceilings", "yes");
    if (strcmp(ceil_opt, "yes") && strcmp(ceil_opt, "no"))
        dist_fail_all("--ceilings %s: expected yes or no", ceil_opt);
    int ceilings = !strcmp(ceil_opt, "yes");
    dist_grid g;
    setup_grid(world, &g, tp);
    int threads = setup_threads(&g, setup_int("--threads", setup_opt(argc, argv, "--threads", "1"), 0));
    startup_mark(&su, "setup");
    // The memory plan before the model: random bytes need no dataset.
    plan pl;
    plan_layout lay;
    char err[256];
    if (plan_layout_grid(&lay, &g, mc.H, Bg, err, sizeof err)) dist_fail_all("%s", err);
    plan_compute(&pl, &mc, T, Bg, &lay,
                 &(plan_run){.baseline = plan_rss(), .keep = keep,
                             .orthogonal_init = mc.wh_init == INIT_ORTHOGONAL});
    if (g.world_rank == 0) plan_print(&pl, stdout);
    plan_check(&pl, 0, &g);
    model m;
    if (model_init_keep(&m, &mc, &g, T, Bg, keep, 0, err, sizeof err)) dist_fail_all("%s", err);
    startup_mark(&su, "allocation");
    init_seconds is = {0};
    if (model_init_params_timed(&m, &is)) dist_fail_all("out of memory initialising the parameters");
    startup_mark(&su, "init");
    startup_part(&su, "QR", is.qr), startup_part(&su, "normal", is.normal);
    startup_print(&su, &g);
    // --freeze-layers N: the embedding and layers below N are frozen (fine-tuning's step).
    double scale[MODEL_MAX_TENSORS];
    unsigned char no_grad[MODEL_MAX_TENSORS] = {0};
    for (int k = 0; k < m.ntensors; k++) {
        const model_tensor* t = &m.tensors[k];
        no_grad[k] = t->part == PART_EMBED || (t->layer >= 0 && t->layer < frozen);
        scale[k] = !no_grad[k];
    }
    model_set_no_grad(&m, no_grad);
    optim_config oc = {.kind = OPT_ADAM, .lr = 1e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                       .steps = steps};
    int32_t* tok = malloc((size_t)T * m.B * sizeof(int32_t));
    int32_t* next = malloc((size_t)T * m.B * sizeof(int32_t));
    if (!tok || !next) dist_fail("out of memory");
    model_batch bt = {.T = T, .tokens = tok, .next = next, .fb_noise = noise, .row0 = (long)g.dp_rank * m.B};
    double elapsed = 0, comm = 0, cpu = 0;
    for (int s = -1; s < steps; s++) { // step -1 warms up caches and pages
        random_batch(tok, next, T * m.B, s + 1);
        bt.fb_key = feedback_key(mc.seed, s + 1);
        dist_barrier(&g);
        dist_reset_counts(&g);
        double t0 = dist_wtime(), c0 = cpu_seconds();
        model_reset_state(&m);
        model_zero_grad(&m);
        model_forward(&m, &bt);
        model_loss(&m, &bt, NULL);
        model_backward(&m, &bt);
        optim_step(&m, &oc, s + 1, optim_grad_norm(&m), frozen ? scale : NULL, NULL);
        if (s >= 0) elapsed += dist_wtime() - t0, comm += g.comm_seconds, cpu += cpu_seconds() - c0;
    }
    dist_barrier(&g);
    double peaks[5] = {ceilings ? sgemm_peak(2048) : 0, 0, 0, 0, 0};
    // The kernel's ceiling: best of 5 runs of 20000 products (32 x 128) (128 x 64), all in L1;
    // a bf16 run's also the bf16 kernel's (model_init has refused bf16 without it).
    if (ceilings) peaks[1] = gemm_kernel_rate(32, 128, 64, 20000, 5, &peaks[2]);
    if (ceilings && mc.precision == PRECISION_BF16)
        peaks[3] = gemm_bf16_kernel_rate(32, 128, 64, 20000, 5, &peaks[4]);
    // Slowest rank sets the pace; the ceilings and communication are averaged over ranks.
    double sum[9] = {elapsed, comm, peaks[0], peaks[1], cpu, peaks[2], plan_hwm(), peaks[3], peaks[4]};
    double most[2] = {elapsed, sum[6]};
    dist_world_sum_f64(sum, 9, &g);
    dist_world_max_f64(most, 2, &g);
    elapsed = most[0];
    int nodes = dist_node_count(&g);
    if (g.world_rank == 0) {
        int n = g.world_size;
        double step_s = elapsed / steps;
        double gflops = model_flops(&m, T) / step_s / 1e9;
        if (frozen) printf("frozen: embed and layers 0..%d (GFLOP/s below counts the full step)\n", frozen - 1);
        if (noise > 0) printf("feedback noise: sigma %g on every fed-back f\n", noise);
        printf("bptt_memory %s: segments of %d steps, activations %.1f MB per rank (model_activation_bytes); "
               "peak resident %.1f MB per rank (most), %.1f MB over the %d ranks; %.3f s/step of CPU time\n",
               bptt, m.keep, model_activation_bytes(&mc, g.tp, m.B, T, keep) / 1e6, most[1] / 1e6,
               sum[6] / 1e6, g.world_size, sum[4] / g.world_size / steps);
        printf("bench %s%s H=%d L=%d T=%d B=%d ranks=%d (tp %d x dp %d) threads=%d: %.3f s/step, "
               "%.0f tok/s, %.1f GFLOP/s per rank",
               cell, mc.precision == PRECISION_BF16 ? " bf16" : "", mc.H, mc.L, T, Bg, n, g.tp, g.dp, threads, step_s, Bg * T / step_s, gflops);
        if (ceilings)
            printf(" = %.0f%% of OpenBLAS SGEMM %.1f, %.0f%% of kernel in L1 %.1f",
                   100 * gflops / (sum[2] / n), sum[2] / n, 100 * gflops / (sum[3] / n), sum[3] / n);
        // The same by CPU time: on a machine shared with other jobs, the time the rank ran.
        printf("; comm %.1f%%; cpu %.0f%% of wall", 100 * sum[1] / n / elapsed, 100 * sum[4] / n / elapsed);
        const double gf_cpu = model_flops(&m, T) / (sum[4] / n / steps) / 1e9;
        if (ceilings)
            printf(", by CPU time %.1f GFLOP/s = %.0f%% of kernel in L1 %.1f", gf_cpu,
                   100 * gf_cpu / (sum[5] / n), sum[5] / n);
        if (ceilings && mc.precision == PRECISION_BF16)
            printf("; bf16 kernel in L1 %.1f (by CPU time %.1f): %.0f%% of it", sum[7] / n,
                   sum[8] / n, 100 * gflops / (sum[7] / n));
        printf("\n");
        bench_row row = {.H = mc.H, .L = mc.L, .T = T, .B = Bg, .nodes = nodes, .ranks = n,
                         .tp = g.tp, .dp = g.dp, .threads = threads, .tok_s = Bg * T / step_s,
                         .gflops_per_rank = gflops, .comm_fraction = sum[1] / n / elapsed,
                         .scaling = scaling};
        if (csv && bench_csv_append(csv, &row)) dist_fail("%s: cannot append the CSV row", csv);
    }
    plan_report_peak(&pl, &g);
    free(tok);
    free(next);
    model_free(&m);
    dist_grid_free(&g);
    return 0;
}
