// The time model of model/projection.c against its equations (docs/scaling.md) written out by
// hand for two small layouts: one crossing nodes with TP inside each (tp 4 x dp 2, 4 ranks per
// node: DP by message), one node shared by 4 DP replicas on 2 cores (DP through shared memory,
// oversubscribed). Every term, the flops, the parameters and the bytes of each collective are
// checked, and the total against the sum of the hand terms, so a term the code drops or
// miscounts fails here. Then the dominant term, impossible layouts, and the fastest layout that
// fits memory. Last, the calibration's measurements (run/calibration.c) on every rank: at 2
// ranks the node's collectives are measured and every rank holds rank 0's figures.
// ranks: 1 2
#include <mpi.h>
#include <string.h>
#include "run/calibration.h"
#include "tests/check.h"

// Elman, byte LM-like: V = O = 32, D = 8, H = 64, L = 2, feedback into every layer, so
// K0 = D + H + O = 104 and K1 = H + H + O = 160.
static model_config config(void)
{
    return (model_config){.cell = CELL_ELMAN, .task = TASK_LM, .feedback = FB_ALL,
                          .feedback_source = FBS_MODEL, .V = 32, .D = 8, .H = 64, .L = 2, .O = 32};
}

static projection_calibration calibration(void)
{
    projection_calibration cal = {.step_fraction = 0.5, .mem_gbps = 10, .ag_alpha = 1e-6,
                                  .ag_beta = 2e-10, .ar_alpha = 3e-6, .ar_beta = 5e-10,
                                  .net_alpha = 7e-6, .net_gbps = 80, .node_mem_gbps = 80,
                                  .node_gib = 1, .bytes_per_param = 20, .ranks_per_node = 4,
                                  .cores_per_node = 4};
    for (int i = 0; i < PROJECTION_ROWS; i++) cal.kernel_gflops[i] = 10.0 * (i + 1);
    return cal;
}

static void check_term(const projection_step* s, int k, double want)
{
    CHECK(check_close(s->t[k], want, 1e-12, 1e-300), "%s: %.9g, closed form %.9g",
          projection_term_name(k), s->t[k], want);
}

// tp 4 x dp 2 on 2 nodes of 4 ranks: TP inside a node, DP between the nodes (dpn 1, dpx 2).
static void across_nodes(void)
{
    const model_config c = config();
    const projection_calibration cal = calibration();
    const int T = 5, B = 16, b = 8, Hl = 16, O = 32, K0 = 104, K1 = 160;
    projection_step s;
    CHECK(projection_model(&s, &c, 4, B, T, 8, &cal) == 0, "tp 4 of 8 ranks refused");
    CHECK(s.dp == 2 && s.b == b && s.nodes == 2 && s.dpn == 1 && s.dpx == 2,
          "grid: dp %d b %d nodes %d dpn %d dpx %d", s.dp, s.b, s.nodes, s.dpn, s.dpx);
    // Parameters: per layer Hl x K and Hl biases, Wo's Hl columns, bo and the embedding whole.
    const double P = Hl * K0 + Hl + Hl * K1 + Hl + O * Hl + O + 32 * 8;
    CHECK(s.params == P, "params %g, by hand %g", s.params, P);
    const double F = 6.0 * T * b * (Hl * K0 + Hl * K1 + O * Hl);
    CHECK(s.flops == F, "flops %g, by hand %g", s.flops, F);
    const double ag[2] = {4.0 * 4 * b * Hl, 4.0 * 4 * b * (Hl + O)}, ar[2] = {4.0 * b * K0, 4.0 * b * K1};
    for (int l = 0; l < 2; l++)
        CHECK(s.ag_bytes[l] == ag[l] && s.ar_bytes[l] == ar[l],
              "layer %d: allgather %g (%g), allreduce %g (%g)",
              l, s.ag_bytes[l], ag[l], s.ar_bytes[l], ar[l]);
    // 4 ranks of the node each send 2 (dpx - 1) / dpx of their whole shard.
    const double link = 80e9 / 8, bw = 10e9;
    CHECK(s.dp_net_bytes == 4 * 2 * 0.5 * 4 * P, "DP link bytes %g", s.dp_net_bytes);

    // Compute: per-step products on b rows (table entry 8 rows = 40 GFLOP/s, x 0.5), weight
    // gradients at the 64-row entry (70 x 0.5).
    check_term(&s, PROJ_COMPUTE, F * 4 / 6 / 20e9 + F * 2 / 6 / 35e9);
    // Memory: the packed weights' stream (here shorter than the products it feeds: nothing),
    // zero grads (P), pack twice (4 P), Adam (7 P), at 4 bytes each.
    const double w_step = O * Hl + Hl * (K0 - 8) + Hl * K1;
    CHECK(2.0 * T * w_step * 4 / bw < F * 4 / 6 / 20e9, "the stream should hide behind the products");
    check_term(&s, PROJ_MEMORY, 4.0 * 12 * P / bw);
    // TP over 4 ranks (2 rounds): allgather 2 alpha + 3/4 bytes beta, allreduce twice that.
    check_term(&s, PROJ_TP_LAT, T * 2 * (2 * 1e-6 + 4 * 3e-6));
    double tpbw = 0;
    for (int l = 0; l < 2; l++) tpbw += T * (0.75 * ag[l] * 2e-10 + 2 * 0.75 * ar[l] * 5e-10);
    check_term(&s, PROJ_TP_BW, tpbw);
    // DP: L + 2 = 4 regions of 2 x 1 round between 2 nodes, and 3 scalar allreduces over the
    // 8 ranks (2 x 3 rounds each) crossing the network.
    check_term(&s, PROJ_DP_LAT, 4 * 2 * 7e-6 + 3 * 2 * 3 * 7e-6);
    check_term(&s, PROJ_DP_BW, s.dp_net_bytes / link);
    const double sum = F * 4 / 6 / 20e9 + F * 2 / 6 / 35e9 + 4.0 * 12 * P / bw +
                       T * 2 * (2e-6 + 12e-6) + tpbw + 4 * 2 * 7e-6 + 18 * 7e-6 + s.dp_net_bytes / link;
    CHECK(check_close(s.total, sum, 1e-12, 0), "total %.9g, sum of the closed forms %.9g", s.total, sum);
    // Memory per rank: 20 bytes per parameter and one window's activations (X, HB, A, dA per
    // layer; Y, F, dY).
    const double act = 4.0 * (3.0 * T * b * O + T * b * (K0 + 3 * Hl) + T * b * (K1 + 3 * Hl));
    CHECK(check_close(s.rank_bytes, 20 * P + act, 1e-12, 0), "bytes per rank %g, by hand %g",
          s.rank_bytes, 20 * P + act);
    CHECK(s.fits, "%.0f bytes should fit 1 GiB / 4", s.rank_bytes);
}

// tp 1 x dp 4 on one node of 2 cores: the 4 replicas share memory (dpn 4, dpx 1), every
// rank's work takes twice as long (2 ranks per core), and DP costs syncs and loads, no messages.
static void one_node_shared(void)
{
    const model_config c = config();
    projection_calibration cal = calibration();
    cal.ranks_per_node = 64, cal.cores_per_node = 2;
    const int T = 5, B = 16, b = 4, H = 64, O = 32, K0 = 104, K1 = 160, dpn = 4;
    projection_step s;
    CHECK(projection_model(&s, &c, 1, B, T, 4, &cal) == 0, "tp 1 of 4 ranks refused");
    CHECK(s.nodes == 1 && s.dpn == dpn && s.dpx == 1, "nodes %d dpn %d dpx %d", s.nodes, s.dpn, s.dpx);
    const double P = H * K0 + H + H * K1 + H + O * H + O + 32 * 8;
    const double F = 6.0 * T * b * (H * K0 + H * K1 + O * H);
    CHECK(s.params == P && s.flops == F, "params %g (%g), flops %g (%g)", s.params, P, s.flops, F);
    // Rows of the shared product: b x dpn = 16 (entry 16 = 50 GFLOP/s x 0.5); memory bandwidth
    // min(10, 80 / 4 ranks).
    const double bw = 10e9, share = 2;
    check_term(&s, PROJ_COMPUTE, share * (F * 4 / 6 / 25e9 + F * 2 / 6 / 35e9));
    // Zero (P), pack 2 x 2 P / 4, Adam 7 P / 4, copy the others' pieces 2 x 3/4 P.
    check_term(&s, PROJ_MEMORY, share * 4 * (P + P + 1.75 * P + 1.5 * P) / bw);
    check_term(&s, PROJ_TP_LAT, 0);
    check_term(&s, PROJ_TP_BW, 0);
    // 4 + 4 T L + L + 2 = 48 syncs of 2 x 2 rounds of the node's alpha, 3 scalars x 2 x 2 rounds.
    check_term(&s, PROJ_DP_LAT, 48 * 4 * 3e-6 + 12 * 3e-6);
    // The sum through shared memory: read every member's piece (P), write one's (P / 4).
    check_term(&s, PROJ_DP_BW, share * 4 * 1.25 * P / bw);
    CHECK(s.dp_net_bytes == 0, "no link traffic in one node: %g", s.dp_net_bytes);
    // At 0.01 GB/s each member's stream of 1/4 of the weights outlasts its products: the
    // difference is memory time.
    cal.mem_gbps = 0.01;
    CHECK(projection_model(&s, &c, 1, B, T, 4, &cal) == 0, "tp 1 of 4 ranks refused");
    const double slow = 1e7, stream = 2.0 * T * (O * H + H * (K0 - 8) + H * K1) / dpn * 4 / slow;
    CHECK(stream > F * 4 / 6 / 25e9, "the stream should outlast the products");
    check_term(&s, PROJ_MEMORY,
               share * (stream - F * 4 / 6 / 25e9 + 4 * (P + P + 1.75 * P + 1.5 * P) / slow));
}

static void dominant_and_best(void)
{
    const model_config c = config();
    projection_calibration cal = calibration();
    projection_step s;
    cal.ag_alpha = 1; // a second per allgather round: TP latency above all
    CHECK(projection_model(&s, &c, 4, 16, 5, 8, &cal) == 0 && projection_dominant(&s) == PROJ_TP_LAT,
          "dominant %s, want TP latency", projection_term_name(projection_dominant(&s)));
    cal = calibration();
    CHECK(projection_model(&s, &c, 3, 16, 5, 6, &cal) == -1, "tp 3 does not divide H = 64");
    CHECK(projection_model(&s, &c, 2, 16, 5, 12, &cal) == -1, "dp 6 does not divide B = 16");
    CHECK(projection_model(&s, &c, 2, 16, 5, 5, &cal) == -1, "tp 2 does not divide 5 ranks");
    // Memory per rank just under tp 4's need: only tp 8 and above fit, the fastest of them wins.
    projection_step t4, t8, t16, best;
    projection_model(&t4, &c, 4, 16, 5, 16, &cal);
    projection_model(&t8, &c, 8, 16, 5, 16, &cal);
    projection_model(&t16, &c, 16, 16, 5, 16, &cal);
    cal.node_gib = 0.999 * t4.rank_bytes * 4 / 1073741824.0;
    CHECK(projection_best(&best, &c, 16, 5, 16, &cal) == 0, "no layout of 16 ranks");
    const int want = t8.total < t16.total ? 8 : 16;
    CHECK(best.fits && best.tp == want, "best tp %d (fits %d), want %d", best.tp, best.fits, want);
    cal.node_gib = 1e-9; // nothing fits: the fastest of all, marked as not fitting
    CHECK(projection_best(&best, &c, 16, 5, 16, &cal) == 0 && !best.fits, "infeasible best");
}

static void measured(void)
{
    dist_grid world;
    char err[256];
    CHECK(dist_grid_init(MPI_COMM_WORLD, 1, 1, &world, err, sizeof err) == 0, "%s", err);
    const model_config c = config();
    projection_calibration cal, d;
    projection_defaults(&cal);
    d = cal;
    projection_measure(&cal, &c, 16, &world);
    for (int i = 0; i < PROJECTION_ROWS; i++)
        CHECK(cal.kernel_gflops[i] > 0, "kernel at %d rows: %g", 1 << i, cal.kernel_gflops[i]);
    CHECK(cal.mem_gbps > 0, "copy rate %g", cal.mem_gbps);
    if (world.world_size > 1) // one node here: the node's figures replace the defaults
        CHECK(cal.ag_alpha > 0 && cal.ar_alpha > 0 && cal.ag_alpha != d.ag_alpha,
              "node collectives not measured: %g %g", cal.ag_alpha, cal.ar_alpha);
    CHECK(cal.net_alpha == d.net_alpha && cal.net_gbps == d.net_gbps,
          "one node changed the network's assumption");
    double mine[2] = {cal.kernel_gflops[0], cal.ag_alpha}, all[2] = {mine[0], mine[1]};
    dist_world_max_f64(all, 2, &world);
    CHECK(!memcmp(mine, all, sizeof mine), "ranks hold different figures");
    dist_grid_free(&world);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    across_nodes();
    one_node_shared();
    dominant_and_best();
    measured();
    MPI_Finalize();
    if (!check_failures) printf("test_projection: all checks passed\n");
    return check_failures ? 1 : 0;
}
