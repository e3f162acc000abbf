// Shared set-up of the subcommands. Rank 0 alone reads the command line's files, so ranks never
// disagree on the config; the result travels in one broadcast.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "io/errmsg.h"
#include "io/paths.h"
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

// The number as the user wrote it, or the job ends with one line worded as a config key's: a
// value strtol clamps, or one a cast to int would wrap (4294967297 -> 1), is out of range
// rather than silently another number.
static long setup_range(const char* name, const char* value, long min, long max)
{
    char* end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (end == value || *end) dist_fail_all("option %s: '%s' is not an integer", name, value);
    if (errno == ERANGE || v > max)
        dist_fail_all("option %s: '%s' is out of range for an integer", name, value);
    if (v < min) dist_fail_all("option %s: '%s' must be an integer >= %ld", name, value, min);
    return v;
}

long setup_long(const char* name, const char* value, long min)
{
    return setup_range(name, value, min, LONG_MAX);
}

int setup_int(const char* name, const char* value, int min)
{
    return (int)setup_range(name, value, min, INT_MAX);
}

double setup_double(const char* name, const char* value, double min)
{
    char* end;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || *end) dist_fail_all("option %s: '%s' is not a number", name, value);
    if (errno == ERANGE || !isfinite(v))
        dist_fail_all("option %s: '%s' is not a finite number", name, value);
    if (!(v >= min)) dist_fail_all("option %s: '%s' must be a number >= %g", name, value, min);
    return v;
}

void setup_config(int argc, char** argv, fnn_config* c, dist_grid* world)
{
    char err[512] = "";
    int status = 0;
    config_defaults(c);
    if (world->world_rank == 0) {
        const char* path = setup_opt(argc, argv, "--config", NULL);
        char why[256];
        // Before the open: a FIFO would block it.
        if (path && paths_check_kind(path, PATHS_FILE, 0, why, sizeof why))
            status = errmsg(err, sizeof err, path, "%s", why);
        if (path && !status) status = config_load(c, path, err, sizeof err);
        for (int i = 1; i < argc && !status; i++)
            if (!strcmp(argv[i], "--set") && i + 1 < argc) status = config_set(c, argv[++i], err, sizeof err);
        if (!status) status = config_validate(c, err, sizeof err);
        if (status) dist_fail("%s", err);
    }
    dist_bcast_bytes(c, sizeof *c, world);
}

void setup_refuse_overwrite(const char* what, const char* out, const char* const* inputs, int n,
                            dist_grid* world)
{
    char err[2 * CONFIG_PATH + 128] = "";
    if (world->world_rank == 0) paths_refuse_overwrite(what, out, inputs, n, err, sizeof err);
    // Rank 0 looks, as it reads the command line's files; all ranks share its verdict (a message
    // or none) before any of them writes.
    dist_bcast_bytes(err, sizeof err, world);
    if (err[0]) dist_fail_all("%s", err);
}

void setup_check_outputs(int argc, char** argv, const fnn_config* c, dist_grid* world)
{
    const char* inputs[] = {setup_opt(argc, argv, "--config", NULL), c->data, c->init_from,
                            strcmp(c->resume, "auto") ? c->resume : NULL};
    const int n = sizeof inputs / sizeof inputs[0];
    char err[2 * CONFIG_PATH + 128] = "", why[256];
    // A FIFO as metrics would block its open for writing until something reads it.
    if (world->world_rank == 0 && c->metrics[0] && paths_check_kind(c->metrics, PATHS_STREAM, 1, why, sizeof why))
        errmsg(err, sizeof err, NULL, "metrics = %s: %s", c->metrics, why);
    if (world->world_rank == 0 && !err[0] && c->ckpt_dir[0] && paths_check_kind(c->ckpt_dir, PATHS_DIR, 1, why, sizeof why))
        errmsg(err, sizeof err, NULL, "ckpt_dir = %s: %s", c->ckpt_dir, why);
    if (world->world_rank == 0 && !err[0] && c->metrics[0])
        paths_refuse_overwrite("metrics", c->metrics, inputs, n, err, sizeof err);
    if (world->world_rank == 0 && !err[0] && c->ckpt_dir[0])
        paths_refuse_overwrite("ckpt_dir", c->ckpt_dir, inputs, n, err, sizeof err);
    // As setup_refuse_overwrite: rank 0's verdict for all.
    dist_bcast_bytes(err, sizeof err, world);
    if (err[0]) dist_fail_all("%s", err);
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
static int same_shape_everywhere(const dataset* d, const dist_grid* world)
{
    int v[8] = {dataset_kind(d), dataset_inputs(d), dataset_outputs(d), dataset_seq_len(d)};
    for (int i = 0; i < 4; i++) v[i + 4] = -v[i];
    // The minimum and maximum over ranks at once: they differ when ranks read different files,
    // which would build models of different shapes and hang in their first collective.
    dist_comm_min_int(v, 8, world->world);
    return v[0] == -v[4] && v[1] == -v[5] && v[2] == -v[6] && v[3] == -v[7];
}

dataset* setup_data(fnn_config* c, const dist_grid* world)
{
    static const char* task_of_kind[] = {"lm", "classify", "regress"};
    char err[sizeof c->data + 256]; // the path and a line about it
    dataset* d = dataset_open(c->data, err, sizeof err);
    // Every rank reads the file itself: a file some ranks cannot see or read ends all of them.
    if (dist_comm_agree(!d, err, sizeof err, world->world)) dist_fail_all("%s", err);
    int task = dataset_task(d), bad = task != c->model.task;
    if (bad)
        snprintf(err, sizeof err, "%s is a dataset for task %s, the config says task = %s",
                 c->data, task >= 0 ? task_of_kind[task] : "(none)",
                 config_enum_name("task", c->model.task));
    if (!same_shape_everywhere(d, world) && !bad)
        bad = snprintf(err, sizeof err, "%s differs between ranks (kind, inputs, outputs or sequence length): "
                       "every rank must read the same file", c->data) > 0;
    // Ranks may see different files under one name: all end if any one refuses its copy.
    if (dist_comm_agree(bad, err, sizeof err, world->world)) dist_fail_all("%s", err);
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

void setup_input_text(const model_config* c, char* buf, size_t len)
{
    if (c->V > 0) snprintf(buf, len, "tokens (embed %d)", c->D);
    else snprintf(buf, len, "dense (%d inputs)", c->D);
}

// What must agree between a checkpoint's model and the run's, in the order the first difference
// is reported. Per use (same: resuming or evaluating it, the whole model; transfer: loading its
// tensors into a model of another task, init_from, where new tensors absorb the rest): NEED,
// compared; WAIVED, compared unless new_head (a new head absorbs the task, the input and the
// outputs); 0, not compared.
enum { NEED = 1, WAIVED = 2 };
static const struct model_field {
    const char *key, *enum_key; // enum_key: the value is an enumeration, named as the config names it
    size_t at;                  // of the int in model_config; INPUT: V and D, named together
    int same, transfer;
} fields[] = {
#define INPUT ((size_t)-1)
    {"cell", "cell", offsetof(model_config, cell), NEED, NEED},
    {"input", NULL, INPUT, 0, WAIVED},
    {"task", "task", offsetof(model_config, task), NEED, WAIVED},
    {"hidden", NULL, offsetof(model_config, H), NEED, NEED},
    {"layers", NULL, offsetof(model_config, L), NEED, NEED},
    {"embed or inputs", NULL, offsetof(model_config, D), NEED, 0},
    {"vocabulary", NULL, offsetof(model_config, V), NEED, 0},
    {"activation", "activation", offsetof(model_config, act), NEED, NEED},
    {"feedback", "feedback", offsetof(model_config, feedback), NEED, 0},
    {"feedback_source", "feedback_source", offsetof(model_config, feedback_source), NEED, 0},
    {"outputs", NULL, offsetof(model_config, O), WAIVED, WAIVED},
};

static int field(const model_config* c, size_t at)
{
    return *(const int*)((const char*)c + at);
}

int setup_check_model(const char* path, const model_config* ck, const model_config* want, int how)
{
    const int transfer = how != SETUP_SAME, new_head = how == SETUP_TRANSFER_NEW_HEAD;
    // A transfer reports what no new tensor can absorb before what a new head would.
    for (int pass = transfer ? NEED : 0; pass <= WAIVED; pass += NEED) {
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            const struct model_field* f = &fields[i];
            const int use = transfer ? f->transfer : f->same;
            if (!use || (transfer && use != pass) || (use == WAIVED && new_head)) continue;
            char have[64], need[64];
            if (f->at != INPUT) {
                if (field(ck, f->at) == field(want, f->at)) continue;
                value_text(have, sizeof have, f->enum_key, field(ck, f->at));
                value_text(need, sizeof need, f->enum_key, field(want, f->at));
            } else {
                if (ck->V == want->V && ck->D == want->D) continue;
                setup_input_text(ck, have, sizeof have);
                setup_input_text(want, need, sizeof need);
            }
            if (transfer)
                dist_fail_all("init_from = %s: %s = %s there, %s here%s", path, f->key, have, need,
                              use == WAIVED ? " (set new_head = true to train a new head)" : "");
            dist_fail_all("%s was made for another model: %s = %s there, %s here%s", path, f->key,
                          have, need, use == WAIVED ? " (set new_head = true to replace the head)" : "");
        }
        if (!transfer) break;
    }
    return 0;
}

ckpt_file* setup_ckpt_open(const char* path, dist_grid* world, model_config* mc, ckpt_train* st,
                           char* err, size_t errlen)
{
    ckpt_file* f = ckpt_open(path, world->world, err, errlen);
    if (!f || ckpt_get_meta(f, mc, st, NULL, 0)) dist_fail_all("%s", err);
    return f;
}

// The model a checkpoint describes, run on this job's layout. Collective over the world.
void setup_load_checkpoint(ckpt_file* f, const char* err, dist_grid* world, dist_grid* g, int tp,
                           int T, int Bglobal, model* m, const model_config* mc,
                           const ckpt_train* st)
{
    char why[512];
    setup_grid(world, g, tp);
    if (model_init(m, mc, g, T > 0 ? T : st->seq_len, Bglobal, why, sizeof why))
        dist_fail_all("%s", why);
    ckpt_get_params(f, m, 0, 0);
    if (ckpt_close(f)) dist_fail_all("%s", err);
}

void setup_open_checkpoint(const char* path, dist_grid* world, dist_grid* g, int tp, int T, int Bglobal, model* m,
               model_config* mc, ckpt_train* st)
{
    char err[512];
    ckpt_file* f = setup_ckpt_open(path, world, mc, st, err, sizeof err);
    setup_load_checkpoint(f, err, world, g, tp, T, Bglobal, m, mc, st);
}
