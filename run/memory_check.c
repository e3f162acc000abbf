// The plan against the node (run/memory_plan.h): refusal up front, on every rank alike, and the
// measured peak at the end.
#include <stdio.h>
#include <string.h>
#include "run/memory_plan.h"

static const char* gb(char* buf, size_t len, double bytes)
{
    snprintf(buf, len, "%.2f GB", bytes / 1e9);
    return buf;
}

// The plan of p with one change (which: 0 more tp, 1 a layer less, 2 half the batch, 3 half
// the window); 0 with its name in what, or -1 where the change is not possible.
static int alternative(const plan* p, int which, plan* q, char* what, size_t len)
{
    model_config mc = p->mc;
    int T = p->T, batch = p->batch, np = p->lay.np, tp = p->lay.tp;
    if (which == 0) {
        // At the same ranks when they allow it; else on twice the ranks, as many per node.
        tp *= 2;
        if (np % tp) np *= 2;
        snprintf(what, len, "tp = %d%s", tp, np > p->lay.np ? " (on twice the ranks)" : "");
    } else if (which == 1) {
        if (mc.L < 2) return -1;
        mc.L--;
        snprintf(what, len, "layers = %d", mc.L);
    } else if (which == 2) {
        batch /= 2;
        snprintf(what, len, "batch = %d", batch);
    } else {
        T /= 2;
        snprintf(what, len, "seq_len = %d (or backpropagation with recomputation)", T);
    }
    plan_layout lay;
    char err[256];
    if (T < 1 || batch < 1 ||
        plan_layout_of(&lay, np, p->lay.node_ranks, p->lay.dpn, tp, mc.H, batch, err, sizeof err))
        return -1;
    plan_compute(q, &mc, T, batch, &lay, &p->run);
    return 0;
}

// "X helps most (Y per node)": the change whose plan needs least per node.
static void advice(const plan* p, char* out, size_t len)
{
    double best = p->node_peak;
    char what[96], a[32];
    snprintf(out, len, "nothing in the config helps: more memory or fewer ranks per node");
    for (int i = 0; i < 4; i++) {
        plan q;
        if (alternative(p, i, &q, what, sizeof what) || q.node_peak >= best) continue;
        best = q.node_peak;
        snprintf(out, len, "%s helps most (%s per node)", what, gb(a, sizeof a, q.node_peak));
    }
}

void plan_check(const plan* p, double limit, dist_grid* g)
{
    // What the node's ranks hold now counts as theirs: MemAvailable no longer includes it.
    double held = plan_rss(), shm_free;
    dist_node_sum_f64(&held, 1, g);
    const double room = plan_node_room(limit, held, &shm_free);
    const double before = p->node[PLAN_BASELINE] + p->node[PLAN_DATA];
    char err[512] = "", a[32], b[32], c[32], help[160];
    int bad = 0;
    if (limit > 0 && limit <= before)
        bad = snprintf(err, sizeof err, "memory_limit = %.0f bytes per node: the %d ranks of a node "
                       "hold %s before any model, nothing fits", limit, p->lay.node_ranks,
                       gb(a, sizeof a, before)) > 0;
    else if (room >= 0 && p->node_peak > room) {
        advice(p, help, sizeof help);
        bad = snprintf(err, sizeof err, "the run needs %s per node (%d ranks of %s, the memory plan "
                       "above) and %s %s: %s", gb(a, sizeof a, p->node_peak), p->lay.node_ranks,
                       gb(b, sizeof b, p->rank_peak),
                       limit > 0 && room == limit ? "memory_limit allows" : "the node has",
                       gb(c, sizeof c, room), help) > 0;
    } else if (shm_free >= 0 && p->node_shm > shm_free)
        bad = snprintf(err, sizeof err, "the DP replicas' shared windows need %s of /dev/shm per "
                       "node and it has %s free: enlarge it or set FNN_SHARE_DP=1 (no sharing)",
                       gb(a, sizeof a, p->node_shm), gb(b, sizeof b, shm_free)) > 0;
    // Nodes see different memory: if any refuses, all stop, with its line.
    if (dist_comm_agree(bad, err, sizeof err, g->world)) dist_fail_all("%s", err);
}

void plan_report_peak(const plan* p, dist_grid* g)
{
    // VmHWM summed over the node's ranks counts a page of a shared window once per rank that
    // touched it; Pss splits it among them, but only now (at the end), not at the peak.
    double node[2] = {plan_hwm(), plan_pss()}, most[3] = {plan_hwm(), 0, 0};
    dist_node_sum_f64(node, 2, g);
    most[1] = node[0], most[2] = node[1];
    dist_world_max_f64(most, 3, g);
    if (g->world_rank != 0) return;
    char a[32], b[32], c[32], d[32], e[32], f[32];
    printf("memory: peak resident (VmHWM) %s per rank (largest), %s per node (sum of its ranks), "
           "%.3f of the plan's peak %s per rank, %s per node; at the end (Pss) %s per node, %.3f "
           "of the plan's steady %s; %.1f bytes per parameter and replica\n",
           gb(a, sizeof a, most[0]), gb(b, sizeof b, most[1]), most[1] / p->node_peak,
           gb(c, sizeof c, p->rank_peak), gb(d, sizeof d, p->node_peak), gb(e, sizeof e, most[2]),
           most[2] / p->node_steady, gb(f, sizeof f, p->node_steady),
           most[1] * p->lay.np / p->lay.node_ranks / p->lay.dp / p->nparams);
}
