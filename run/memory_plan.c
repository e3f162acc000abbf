// The memory plan (run/memory_plan.h): the model's bytes from model_memory, the rest from what this
// process measures (its baseline, the dataset it loaded) and the transients of one phase.
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include "run/memory_plan.h"
#include "model/model.h"

// A checkpoint's save or load: the pieces go between the model's buffers and HDF5 without a
// copy; HDF5's and MPI-IO's own buffers measured 2 to 4 MB per rank.
static double ckpt_bytes(void)
{
    return 4.0 * (1 << 20);
}

// The DP reduction over dpx_comm (model/share.c): every region's MPI_Iallreduce is started
// before the first is waited for, and Open MPI's non-blocking reduction keeps a temporary of
// its message's size, so the whole gradient buffer is held twice at the end of backward.
static double reduce_bytes(const model_bytes* b, const plan_layout* lay)
{
    return lay->dp / lay->dpn > 1 ? (double)b->grads : 0;
}

// DP ranks of one node holding the same TP rank, as dist_grid_init groups them (consecutive
// world ranks per node, TP groups of consecutive ranks): groups of unequal size share nothing.
static int shared_replicas(int np, int node_ranks, int share, int tp)
{
    if (node_ranks % tp || np % node_ranks) return 1;
    const int node_dp = node_ranks / tp, group = share > 0 && share < node_dp ? share : node_dp;
    return node_dp % group ? 1 : group;
}

int plan_layout_of(plan_layout* lay, int np, int node_ranks, int share, int tp, int H, int batch,
                   char* err, size_t errlen)
{
    if (np % tp)
        return snprintf(err, errlen, "%d ranks are not a multiple of tp = %d", np, tp), -1;
    if (H % tp) return snprintf(err, errlen, "hidden = %d is not divisible by tp = %d", H, tp), -1;
    if (node_ranks > np)
        return snprintf(err, errlen, "%d ranks per node is more than the %d ranks", node_ranks, np), -1;
    const int dp = np / tp;
    if (batch % dp)
        return snprintf(err, errlen, "batch = %d is not divisible by dp = %d (%d ranks / tp %d)",
                        batch, dp, np, tp), -1;
    *lay = (plan_layout){.np = np, .tp = tp, .dp = dp, .node_ranks = node_ranks,
                         .dpn = shared_replicas(np, node_ranks, share, tp)};
    return 0;
}

int plan_layout_grid(plan_layout* lay, const dist_grid* g, int H, int batch, char* err, size_t errlen)
{
    if (plan_layout_of(lay, g->world_size, g->node_ranks, 0, g->tp, H, batch, err, errlen)) return -1;
    lay->dpn = g->dpn;
    return 0;
}

plan_run plan_run_of(const fnn_config* c, double baseline, double data)
{
    const int fresh = !c->resume[0] || !strcmp(c->resume, "auto");
    return (plan_run){.baseline = baseline, .data = data,
                      .orthogonal_init = c->model.wh_init == INIT_ORTHOGONAL && fresh,
                      .ckpt = c->ckpt_dir[0] != 0, .staging = c->ckpt_dir[0] && c->ckpt_async,
                      .theta0 = c->init_from[0] && c->l2_init > 0,
                      .keep = model_bptt_keep(c->bptt_memory, c->seq_len)};
}

void plan_compute(plan* p, const model_config* mc, int T, int batch, const plan_layout* lay,
                  const plan_run* run)
{
    *p = (plan){.lay = *lay, .mc = *mc, .T = T, .batch = batch, .run = *run};
    model* m = calloc(1, sizeof *m);
    if (!m) dist_fail("out of memory");
    model_size(m, mc, lay->tp, T, batch / lay->dp, run->keep);
    model_bytes b;
    model_memory(m, lay->dpn, lay->dp / lay->dpn, &b);
    // Every TP rank holds the same count; the replicated tensors (head bias, embedding) once.
    p->nparams = 0;
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        p->nparams += (double)t->lrows * t->lcols * (t->replicated ? 1 : lay->tp);
    }
    // ckpt_async's staging (io/ckpt_async.h): the parameters, the moments and the carried state.
    const double staging = (double)b.params + (double)b.moments +
        (double)m->B * ((double)m->c.L * (m->c.H + (m->cell->state ? m->Hl : 0)) + m->c.O) * sizeof(real);
    free(m);
    const double R = lay->node_ranks;
    const double per_rank[PLAN_NTERMS] = {
        [PLAN_BASELINE] = run->baseline, [PLAN_DATA] = run->data, [PLAN_PARAMS] = (double)b.params,
        [PLAN_GRADS] = (double)b.grads, [PLAN_MOMENTS] = (double)b.moments,
        [PLAN_PACKED] = (double)b.shared / lay->dpn, [PLAN_ACTIVATIONS] = (double)b.activations,
        [PLAN_BUFFERS] = (double)b.buffers, [PLAN_THETA0] = run->theta0 ? (double)b.params : 0,
        [PLAN_STAGING] = run->staging ? staging : 0,
        [PLAN_INIT] = run->orthogonal_init ? (double)dist_orthogonal_bytes(mc->H, lay->np) : 0,
        [PLAN_CKPT] = run->ckpt ? ckpt_bytes() : 0, [PLAN_REDUCE] = reduce_bytes(&b, lay)};
    double steady = 0;
    for (int i = 0; i < PLAN_NTERMS; i++) {
        p->rank[i] = per_rank[i];
        p->node[i] = per_rank[i] * R;
        if (i < PLAN_STEADY) steady += per_rank[i];
    }
    // The init QR comes before the first step. Without a shared window the model's memory is
    // fresh pages (dist_shm_alloc) that count once written: at init only the parameters are,
    // so the QR adds to them alone (with the baseline, data, buffers and theta_0); a window
    // is zeroed whole at allocation, so there it adds to everything.
    double transient = 0, init_peak = 0;
    for (int i = PLAN_STEADY; i < PLAN_NTERMS; i++)
        if (i != PLAN_INIT && p->rank[i] > transient) transient = p->rank[i];
    if (lay->dpn == 1)
        init_peak = per_rank[PLAN_BASELINE] + per_rank[PLAN_DATA] + per_rank[PLAN_PARAMS] +
                    per_rank[PLAN_BUFFERS] + per_rank[PLAN_THETA0] + per_rank[PLAN_INIT];
    else if (per_rank[PLAN_INIT] > transient)
        transient = per_rank[PLAN_INIT];
    p->rank_steady = steady;
    p->node_steady = steady * R;
    p->rank_peak = steady + transient > init_peak ? steady + transient : init_peak;
    p->node_peak = p->rank_peak * R;
    // A window of dpn > 1 members lies in /dev/shm: their segments and the group's area.
    if (lay->dpn > 1) p->node_shm = ((double)b.segment * lay->dpn + (double)b.shared) * (R / lay->dpn);
}

static const char* size_text(char* buf, size_t len, double bytes)
{
    if (bytes >= 1e9) snprintf(buf, len, "%.2f GB", bytes / 1e9);
    else snprintf(buf, len, "%.1f MB", bytes / 1e6);
    return buf;
}

void plan_print(const plan* p, FILE* out)
{
    static const char* const names[PLAN_NTERMS] = {
        "baseline (MPI, libraries)", "dataset (both splits)", "parameters", "gradients",
        "optimiser moments (m, v)", "packed weights, dW scratch", "activations (one window)",
        "state, allgather buffers", "theta_0 copy (l2_init)", "checkpoint staging (async)", "init QR (transient)", "checkpoint I/O (transient)",
        "DP reduction (transient)"};
    const plan_layout* l = &p->lay;
    fprintf(out, "memory plan: %.4g M parameters, %d ranks (tp %d x dp %d), %d per node, %d DP "
            "replica%s per shared window\n", p->nparams / 1e6, l->np, l->tp, l->dp, l->node_ranks,
            l->dpn, l->dpn > 1 ? "s" : "");
    fprintf(out, "  %-28s %12s %12s\n", "", "per rank", "per node");
    char a[32], b[32];
    for (int i = 0; i < PLAN_NTERMS; i++)
        if (p->rank[i] > 0 || i == PLAN_BASELINE)
            fprintf(out, "  %-28s %12s %12s\n", names[i], size_text(a, sizeof a, p->rank[i]),
                    size_text(b, sizeof b, p->node[i]));
    // Per parameter of one replica: the job's bytes over its dp copies of the model.
    const double per = (double)l->np / l->node_ranks / l->dp / p->nparams;
    fprintf(out, "  %-28s %12s %12s  = %.1f bytes per parameter and replica (%.1f without baseline "
            "and data)\n", "peak", size_text(a, sizeof a, p->rank_peak),
            size_text(b, sizeof b, p->node_peak), p->node_peak * per,
            (p->node_peak - p->node[PLAN_BASELINE] - p->node[PLAN_DATA]) * per);
    if (p->node_shm > 0)
        fprintf(out, "  of which in /dev/shm (the shared windows): %s per node\n",
                size_text(a, sizeof a, p->node_shm));
}

// The value of field (e.g. "VmHWM:") in file, in kB, or -1.
static double proc_kb(const char* file, const char* field)
{
    FILE* f = fopen(file, "r");
    if (!f) return -1;
    char line[256];
    double v = -1;
    const size_t n = strlen(field);
    while (v < 0 && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) v = strtod(line + n, NULL);
    fclose(f);
    return v;
}

double plan_rss(void)
{
    const double kb = proc_kb("/proc/self/status", "VmRSS:");
    return kb > 0 ? kb * 1024 : 0;
}

double plan_hwm(void)
{
    const double kb = proc_kb("/proc/self/status", "VmHWM:");
    return kb > 0 ? kb * 1024 : 0;
}

double plan_pss(void)
{
    const double kb = proc_kb("/proc/self/smaps_rollup", "Pss:");
    return kb > 0 ? kb * 1024 : 0;
}

double plan_node_room(double limit, double resident_node, double* shm_free)
{
    struct statvfs fs;
    *shm_free = statvfs("/dev/shm", &fs) == 0 ? (double)fs.f_bavail * fs.f_frsize : -1;
    const double kb = proc_kb("/proc/meminfo", "MemAvailable:");
    double room = kb >= 0 ? kb * 1024 + resident_node : -1;
    if (limit > 0 && (room < 0 || limit < room)) room = limit;
    return room;
}
