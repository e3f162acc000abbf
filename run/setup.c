// Shared set-up of the subcommands. Rank 0 alone reads the command line's files, so ranks never
// disagree on the config; the result travels in one broadcast.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "run/setup.h"

const char* setup_opt(int argc, char** argv, const char* name, const char* def)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) {
            if (i + 1 >= argc) dist_fail_all("option %s needs a value", name);
            return argv[i + 1];
        }
    return def;
}

int setup_flag(int argc, char** argv, const char* name)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

// The options of any subcommand that take no value (setup_flag's); every other one takes one.
static int is_flag(const char* opt)
{
    static const char* const flags[] = {"--json", "--ckpt", NULL};
    for (const char* const* f = flags; *f; f++)
        if (!strcmp(opt, *f)) return 1;
    return 0;
}

void setup_check_opts(int argc, char** argv, const char* cmd, const char* const* known)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2))
            dist_fail_all("fnn %s: unexpected argument '%s' (options are --name value)", cmd, argv[i]);
        int ok = 0;
        for (const char* const* k = known; *k && !ok; k++) ok = !strcmp(argv[i], *k);
        if (!ok) dist_fail_all("fnn %s: unknown option %s", cmd, argv[i]);
        if (is_flag(argv[i])) continue;
        if (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))
            dist_fail_all("fnn %s: option %s needs a value", cmd, argv[i]);
        i++;
    }
}

long setup_long(const char* name, const char* value, long min)
{
    char* end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < min)
        dist_fail_all("%s = '%s': must be an integer >= %ld", name, value, min);
    return v;
}

double setup_double(const char* name, const char* value, double min)
{
    char* end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !(v >= min))
        dist_fail_all("%s = '%s': must be a number >= %g", name, value, min);
    return v;
}

void setup_config(int argc, char** argv, fnn_config* c, dist_grid* world)
{
    char err[512] = "";
    int status = 0;
    config_defaults(c);
    if (world->world_rank == 0) {
        const char* path = setup_opt(argc, argv, "--config", NULL);
        if (path) status = config_load(c, path, err, sizeof err);
        for (int i = 1; i < argc && !status; i++)
            if (!strcmp(argv[i], "--set") && i + 1 < argc) status = config_set(c, argv[++i], err, sizeof err);
        if (!status) status = config_validate(c, err, sizeof err);
        if (status) dist_fail("%s", err);
    }
    dist_bcast_bytes(c, sizeof *c, world);
}

// FNN_SHARE_DP (rank 0's environment): the most DP replicas of one node that share memory;
// unset or 0 = all of them, 1 = none (each replica keeps its own, DP sums by message).
int setup_share_dp(dist_grid* world)
{
    int share = 0;
    const char* v = getenv("FNN_SHARE_DP");
    if (world->world_rank == 0 && v && *v) {
        char* end;
        long n = strtol(v, &end, 10);
        if (*end || n < 0 || n > 1 << 20) dist_fail("FNN_SHARE_DP = %s: must be a whole number >= 0", v);
        share = (int)n;
    }
    dist_bcast_bytes(&share, sizeof share, world);
    return share;
}

void setup_grid(dist_grid* world, dist_grid* g, int tp)
{
    char err[256];
    int share = setup_share_dp(world);
    if (dist_grid_init(world->world, tp, share, g, err, sizeof err)) dist_fail_all("%s", err);
}

int setup_threads(const dist_grid* g, int threads)
{
    int n = threads > 0 ? threads : dist_default_threads(g);
    openblas_set_num_threads(n);
    return n;
}

// 1 if every rank's copy of the data has the same kind, inputs, outputs and sequence length.
static int same_shape_everywhere(const dataset* d)
{
    int v[8] = {dataset_kind(d), dataset_inputs(d), dataset_outputs(d), dataset_seq_len(d)};
    for (int i = 0; i < 4; i++) v[i + 4] = -v[i];
    // The minimum and maximum over ranks at once: they differ when ranks read different files,
    // which would build models of different shapes and hang in their first collective.
    MPI_Allreduce(MPI_IN_PLACE, v, 8, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return v[0] == -v[4] && v[1] == -v[5] && v[2] == -v[6] && v[3] == -v[7];
}

dataset* setup_data(fnn_config* c)
{
    static const char* task_of_kind[] = {"lm", "classify", "regress"};
    char err[sizeof c->data + 256]; // the path and a line about it
    dataset* d = dataset_open(c->data, err, sizeof err);
    // Every rank reads the file itself: a file some ranks cannot see or read ends all of them.
    if (dist_comm_agree(!d, err, sizeof err, MPI_COMM_WORLD)) dist_fail_all("%s", err);
    int task = dataset_task(d), bad = task != c->model.task;
    if (bad)
        snprintf(err, sizeof err, "%s is a dataset for task %s, the config says task = %s",
                 c->data, task >= 0 ? task_of_kind[task] : "(none)",
                 config_enum_name("task", c->model.task));
    if (!same_shape_everywhere(d) && !bad)
        bad = snprintf(err, sizeof err, "%s differs between ranks (kind, inputs, outputs or sequence length): "
                       "every rank must read the same file", c->data) > 0;
    // Ranks may see different files under one name: all end if any one refuses its copy.
    if (dist_comm_agree(bad, err, sizeof err, MPI_COMM_WORLD)) dist_fail_all("%s", err);
    model_config* mc = &c->model;
    mc->V = dataset_kind(d) == DATA_DENSE ? 0 : BYTE_VOCAB;
    if (dataset_kind(d) == DATA_DENSE) mc->D = dataset_inputs(d);
    mc->O = dataset_outputs(d);
    return d;
}

static void value_text(char* buf, size_t len, const char* enum_key, int v)
{
    if (enum_key) snprintf(buf, len, "%s", config_enum_name(enum_key, v));
    else snprintf(buf, len, "%d", v);
}

int setup_same_model(const char* path, const model_config* ck, const model_config* want,
                     int new_head)
{
    // enum_key: the value is an enumeration, named as the config names it.
    const struct { const char *key, *enum_key; int have, need; } f[] = {
        {"cell", "cell", ck->cell, want->cell},
        {"task", "task", ck->task, want->task}, {"hidden", NULL, ck->H, want->H},
        {"layers", NULL, ck->L, want->L}, {"embed or inputs", NULL, ck->D, want->D},
        {"vocabulary", NULL, ck->V, want->V}, {"activation", "activation", ck->act, want->act},
        {"feedback", "feedback", ck->feedback, want->feedback},
        {"feedback_source", "feedback_source", ck->feedback_source, want->feedback_source},
        {"outputs", NULL, ck->O, new_head ? ck->O : want->O},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (f[i].have == f[i].need) continue;
        char have[32], need[32];
        value_text(have, sizeof have, f[i].enum_key, f[i].have);
        value_text(need, sizeof need, f[i].enum_key, f[i].need);
        dist_fail_all("%s was made for another model: %s = %s there, %s here%s", path, f[i].key,
                      have, need,
                      i + 1 == sizeof f / sizeof f[0] ? " (set new_head = true to replace the head)" : "");
    }
    return 0;
}

// The model a checkpoint describes, run on this job's layout. Collective over the world.
void setup_open_checkpoint(const char* path, dist_grid* world, dist_grid* g, int tp, int T, int Bglobal, model* m,
               model_config* mc, ckpt_train* st)
{
    char err[512];
    if (ckpt_read_meta(path, world->world, mc, st, NULL, 0, err, sizeof err))
        dist_fail_all("%s", err);
    setup_grid(world, g, tp);
    if (model_init(m, mc, g, T > 0 ? T : st->seq_len, Bglobal, err, sizeof err) ||
        ckpt_load(path, m, 0, 0, err, sizeof err))
        dist_fail_all("%s", err);
}
