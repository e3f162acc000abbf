// The run configuration. One table below is the schema: parsing (INI and --set), defaults,
// validation ranges, the echo and the enum names all read it, so a key is added in one place.
#include "io/config.h"
#include "io/errmsg.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum opt_type { TY_INT, TY_DOUBLE, TY_U64, TY_BOOL, TY_STRING, TY_ENUM, TY_BYTES, TY_SECONDS };

// What config_validate demands of a number; range_text() words it for the message.
enum opt_range { ANY, GT0, GE0, GE1, UNIT, FRAC, PROB, LAYERS };

typedef struct enum_name {
    const char* name;
    int value;
} enum_name;

typedef struct option {
    const char* key;
    enum opt_type type;
    size_t offset, size;    // of the field in fnn_config
    const char* def;        // default, in the syntax of the file
    enum opt_range range;
    const enum_name* names; // TY_ENUM: accepted names, ending with {NULL}
    const char* (*name_of)(int); // or, values 0, 1, ...: the name of each, NULL past the last
    const char* help;
} option;

// Names are paired with the enum constants rather than indexed by them, so reordering an enum
// in model.h cannot silently swap names. The cells' names come from their registry (cell_name).
static const enum_name task_names[] = {
    {"lm", TASK_LM}, {"classify", TASK_CLASSIFY}, {"regress", TASK_REGRESS}, {NULL, 0}};
static const enum_name act_names[] = {
    {"tanh", ACT_TANH}, {"relu", ACT_RELU}, {"sigmoid", ACT_SIGMOID}, {NULL, 0}};
static const enum_name feedback_names[] = {
    {"all", FB_ALL}, {"first", FB_FIRST}, {"none", FB_NONE}, {NULL, 0}};
static const enum_name fb_source_names[] = {
    {"model", FBS_MODEL}, {"target", FBS_TARGET}, {"mix", FBS_MIX}, {NULL, 0}};
static const enum_name init_names[] = {
    {"orthogonal", INIT_ORTHOGONAL}, {"identity", INIT_IDENTITY}, {"normal", INIT_NORMAL}, {NULL, 0}};
static const enum_name optim_names[] = {
    {"sgd", OPT_SGD}, {"adam", OPT_ADAM}, {"adamw", OPT_ADAMW}, {NULL, 0}};
static const enum_name nonfinite_names[] = {
    {"stop", NONFINITE_STOP}, {"skip", NONFINITE_SKIP}, {NULL, 0}};
static const enum_name precision_names[] = {
    {"fp32", PRECISION_FP32}, {"bf16", PRECISION_BF16}, {NULL, 0}};
static const enum_name score_names[] = {{"all", SCORE_ALL}, {"last", SCORE_LAST}, {NULL, 0}};

// The table writes through byte offsets, so an entry whose type does not match its field would
// corrupt the neighbouring fields; the _Generic makes that a compile error (negative array size).
#define FIELD_AS(field, ctype)                                                               \
    (offsetof(fnn_config, field) +                                                           \
     0 * sizeof(char[_Generic(((fnn_config*)0)->field, ctype: 1, default: -1)]))
#define OPT(key, type, ctype, field, def, range, names, help)                                \
    {key, type, FIELD_AS(field, ctype), sizeof(((fnn_config*)0)->field), def, range, names,     \
     NULL, help}
#define KEY_INT(k, f, d, r, h) OPT(k, TY_INT, int, f, d, r, NULL, h)
#define KEY_DBL(k, f, d, r, h) OPT(k, TY_DOUBLE, double, f, d, r, NULL, h)
#define KEY_SECONDS(k, f, d, h) OPT(k, TY_SECONDS, double, f, d, GE0, NULL, h)
#define KEY_U64(k, f, d, h) OPT(k, TY_U64, uint64_t, f, d, ANY, NULL, h)
#define KEY_BYTES(k, f, d, h) OPT(k, TY_BYTES, uint64_t, f, d, ANY, NULL, h)
#define KEY_BOOL(k, f, d, h) OPT(k, TY_BOOL, int, f, d, ANY, NULL, h)
#define KEY_STR(k, f, d, h) OPT(k, TY_STRING, char*, f, d, ANY, NULL, h)
#define KEY_ENUM(k, f, d, n, h) OPT(k, TY_ENUM, int, f, d, ANY, n, h)
#define KEY_ENUM_OF(k, f, d, name_of, h)                                                     \
    {k, TY_ENUM, FIELD_AS(f, int), sizeof(((fnn_config*)0)->f), d, ANY, NULL, name_of, h}

static const option options[] = {
    KEY_U64("seed", model.seed, "1", "parameter init and data order"),
    KEY_ENUM("task", model.task, "lm", task_names, "what the outputs are scored against"),
    KEY_INT("hidden", model.H, "64", GT0, "hidden units per layer"),
    KEY_INT("layers", model.L, "1", LAYERS, "stacked recurrent layers"),
    KEY_ENUM_OF("cell", model.cell, "elman", cell_name, "recurrent cell of every layer"),
    KEY_DBL("forget_bias", model.forget_bias, "1", ANY, "initial forget-gate bias (cells with one)"),
    KEY_INT("embed", model.D, "32", GT0, "token embedding size (dense input: from the data)"),
    KEY_ENUM("activation", model.act, "tanh", act_names, "hidden nonlinearity"),
    KEY_ENUM("feedback", model.feedback, "all", feedback_names, "layers that see the fed-back output"),
    KEY_ENUM("feedback_source", model.feedback_source, "model", fb_source_names,
             "feed back the model's output, the true previous target (teacher forcing), or a mix"),
    KEY_DBL("teacher_prob", teacher_prob, "1", PROB, "with mix: chance per row and step of feeding back the target"),
    KEY_DBL("teacher_prob_end", teacher_prob_end, "-1", ANY, "with mix: teacher_prob at the last step (linear), -1 = constant"),
    KEY_DBL("feedback_noise", feedback_noise, "0", GE0, "training only: sigma of Gaussian noise on the fed-back signal"),
    KEY_DBL("dropout", dropout, "0", UNIT, "training only: dropout between layers and before the head"),
    KEY_DBL("dropout_recurrent", dropout_recurrent, "0", UNIT, "training only: dropout on h_{t-1} in the products, one mask per sequence"),
    KEY_ENUM("precision", model.precision, "fp32", precision_names,
             "operands of the per-step recurrent products: float32, or bfloat16 (float32 sums and masters)"),
    KEY_ENUM("init", model.wh_init, "orthogonal", init_names, "initialisation of Wh"),
    KEY_ENUM("optimizer", optim.kind, "adam", optim_names, "update rule"),
    KEY_DBL("lr", optim.lr, "1e-3", GE0, "peak learning rate"),
    KEY_DBL("lr_min", optim.lr_min, "0", GE0, "floor of the cosine decay"),
    KEY_DBL("momentum", optim.momentum, "0.9", UNIT, "SGD momentum"),
    KEY_DBL("beta1", optim.beta1, "0.9", UNIT, "Adam first-moment decay"),
    KEY_DBL("beta2", optim.beta2, "0.999", UNIT, "Adam second-moment decay"),
    KEY_DBL("eps", optim.eps, "1e-8", GT0, "Adam denominator guard"),
    KEY_DBL("weight_decay", optim.weight_decay, "0", GE0, "L2 (sgd, adam) or decoupled (adamw)"),
    KEY_DBL("clip", optim.clip, "1.0", GE0, "global gradient-norm limit, 0 = off"),
    KEY_INT("warmup", optim.warmup, "0", GE0, "steps of linear warmup"),
    KEY_INT("steps", optim.steps, "100", GE0, "training steps"),
    KEY_STR("data", data, "", "dataset file from fnn prepare"),
    KEY_INT("batch", batch, "8", GT0, "global batch, sequences per step"),
    KEY_INT("accum_steps", model.accum, "1", GE1,
            "micro-batches per step: each replica's rows of the batch run in this many passes, gradients summed"),
    KEY_INT("seq_len", seq_len, "32", GT0, "steps per window"),
    KEY_INT("log_every", log_every, "10", GT0, "steps between log lines"),
    KEY_STR("metrics", metrics, "", "JSON-lines metrics file, empty = none"),
    KEY_STR("ckpt_dir", ckpt_dir, "", "checkpoint directory, empty = none"),
    KEY_INT("ckpt_every", ckpt_every, "0", GE0, "steps between checkpoints, 0 = only at the end"),
    KEY_INT("ckpt_keep", ckpt_keep, "3", GE1, "newest checkpoints kept"),
    KEY_STR("init_from", init_from, "", "checkpoint whose parameters start the run"),
    KEY_STR("resume", resume, "", "empty, auto, or a checkpoint file"),
    KEY_BOOL("ckpt_overwrite", ckpt_overwrite, "false",
             "a fresh run removes other runs' checkpoints from ckpt_dir instead of refusing"),
    KEY_BOOL("ckpt_async", ckpt_async, "false",
             "write checkpoints in the background: training stalls only to copy the state"),
    KEY_ENUM("nonfinite", nonfinite, "stop", nonfinite_names,
             "a step with a non-finite loss or gradient norm stops the run, or is skipped"),
    KEY_INT("nonfinite_max", nonfinite_max, "10", GE1, "with skip: most such steps in a row"),
    KEY_SECONDS("step_timeout", step_timeout, "auto",
                "seconds a rank may spend in one step before the job ends; 0 = off; "
                "auto = 10 x its slowest step, at least 300"),
    KEY_SECONDS("ckpt_timeout", ckpt_timeout, "auto",
                "seconds a rank may spend in one checkpoint save before the job ends; 0 = off; "
                "auto = from the checkpoint's size and the slowest save, at least 1800"),
    KEY_BOOL("new_head", new_head, "false", "with init_from: fresh output head"),
    KEY_BOOL("head_ridge", head_ridge, "false", "with new_head: fit the head by ridge first"),
    KEY_DBL("ridge_lambda", ridge_lambda, "1e-3", GT0, "ridge fit: (G + ridge_lambda n I) W = C"),
    KEY_STR("freeze", freeze, "", "with init_from: comma-separated tensors or layers not trained"),
    KEY_INT("head_only_steps", head_only_steps, "0", GE0, "with new_head: first steps train only the new tensors (head, Wf, input)"),
    KEY_DBL("body_lr_scale", body_lr_scale, "1", FRAC, "with init_from: lr factor of the transferred tensors"),
    KEY_DBL("l2_init", l2_init, "0", GE0, "with init_from: lambda/2 ||theta - theta_loaded||^2 over them"),
    KEY_BOOL("carry_state", carry_state, "false", "carry h and f across consecutive windows"),
    KEY_INT("threads", threads, "0", GE0, "BLAS threads per rank, 0 = cores / ranks"),
    KEY_INT("tp", tp, "1", GE1, "tensor-parallel ranks per replica"),
    KEY_BYTES("memory_limit", memory_limit, "0", "bytes per node the run may use (K, M, G, T: 1024^n), 0 = what the node has"),
    KEY_INT("eval_windows", eval_windows, "0", GE0, "validation windows scored at the end"),
    KEY_INT("eval_every", eval_every, "0", GE0, "steps between scores of the eval_windows (and at the end), 0 = off"),
    KEY_BOOL("ckpt_keep_best", ckpt_keep_best, "false", "with eval_every: keep the best-scored checkpoint, named by <ckpt_dir>/best"),
    KEY_INT("early_stop", early_stop, "0", GE0, "with eval_every: stop after this many scores without improvement, 0 = off"),
    KEY_ENUM("score", score, "all", score_names,
             "regress: score every step, or only each window's last (per-sequence targets)"),
    KEY_STR("bptt_memory", bptt_memory, "all",
            "backward keeps all steps' activations, or segments of sqrt(seq_len) or N steps and recomputes them"),
};
#define NOPTIONS (sizeof options / sizeof options[0])

static const option* find_option(const char* key)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (!strcmp(options[i].key, key)) return &options[i];
    return NULL;
}

static void* field(fnn_config* c, const option* o) { return (char*)c + o->offset; }
static const void* cfield(const fnn_config* c, const option* o) { return (const char*)c + o->offset; }

// The messages name their key and value themselves.
#define fail(err, errlen, ...) errmsg(err, errlen, NULL, __VA_ARGS__)

// The i-th accepted name of enum option o and its value in *value; NULL past the last.
static const char* enum_at(const option* o, int i, int* value)
{
    if (o->name_of) return *value = i, o->name_of(i);
    return *value = o->names[i].value, o->names[i].name;
}

// "tanh|relu|sigmoid", for the message of a bad enum value.
static void enum_list(const option* o, char* buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    int v;
    for (int i = 0; enum_at(o, i, &v) && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "|" : "", enum_at(o, i, &v));
}

// The number parsers take the whole value or nothing: "32x", "" and out-of-range values are
// errors rather than a silently shortened or wrapped number.
static int parse_int(const char* s, int* out, char* msg, size_t len)
{
    char* end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end) return fail(msg, len, "'%s' is not an integer", s);
    if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
        return fail(msg, len, "'%s' is out of range for an integer", s);
    *out = (int)v;
    return 0;
}

static int parse_u64(const char* s, uint64_t* out, char* msg, size_t len)
{
    char* end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    // strtoull negates "-1" into a huge value instead of failing.
    if (end == s || *end || strchr(s, '-')) return fail(msg, len, "'%s' is not an unsigned integer", s);
    if (errno == ERANGE) return fail(msg, len, "'%s' is out of range for 64 bits", s);
    *out = (uint64_t)v;
    return 0;
}

static int parse_double(const char* s, double* out, char* msg, size_t len)
{
    char* end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end) return fail(msg, len, "'%s' is not a number", s);
    if (!isfinite(v)) return fail(msg, len, "'%s' is not a finite number", s);
    if (errno == ERANGE) return fail(msg, len, "'%s' is out of range for a double", s);
    *out = v;
    return 0;
}

// Binary units: a size with a suffix K, M, G or T (any case) is that many 1024^n bytes.
static const char bytes_units[] = "KMGT";

static int parse_bytes(const char* s, uint64_t* out, char* msg, size_t len)
{
    char* end;
    errno = 0;
    double v = strtod(s, &end);
    const char* unit = *end ? strchr(bytes_units, toupper((unsigned char)*end)) : NULL;
    if (end == s || (*end && (!unit || end[1])) || !isfinite(v) || v < 0)
        return fail(msg, len, "'%s' is not a size (bytes >= 0, or a number with K, M, G or T)", s);
    for (const char* u = bytes_units; unit && u <= unit; u++) v *= 1024;
    if (v >= 9.2e18) return fail(msg, len, "'%s' is out of range", s);
    *out = (uint64_t)llround(v);
    return 0;
}

static int parse_bool(const char* s, int* out, char* msg, size_t len)
{
    static const char* yes[] = {"true", "1", "yes"};
    static const char* no[] = {"false", "0", "no"};
    for (int i = 0; i < 3; i++) {
        if (!strcasecmp(s, yes[i])) return *out = 1, 0;
        if (!strcasecmp(s, no[i])) return *out = 0, 0;
    }
    return fail(msg, len, "'%s' is not a boolean (true|false|1|0|yes|no)", s);
}

static int parse_enum(const option* o, const char* s, int* out, char* msg, size_t len)
{
    int v;
    for (int i = 0; enum_at(o, i, &v); i++)
        if (!strcmp(enum_at(o, i, &v), s)) return *out = v, 0;
    char list[128];
    enum_list(o, list, sizeof list);
    return fail(msg, len, "'%s' is not one of %s", s, list);
}

static int parse_string(const option* o, const char* s, char* out, char* msg, size_t len)
{
    size_t n = strlen(s);
    if (n >= o->size)
        return fail(msg, len, "value is %zu characters, more than the %zu allowed", n, o->size - 1);
    // Zero the tail too: the struct is compared and broadcast as bytes.
    memset(out, 0, o->size);
    memcpy(out, s, n);
    return 0;
}

// The parsers store only a valid value, so a failed key leaves c as it was. The message
// (without the key) goes to msg.
static int parse_value(fnn_config* c, const option* o, const char* value, char* msg, size_t len)
{
    void* p = field(c, o);
    switch (o->type) {
    case TY_INT: return parse_int(value, p, msg, len);
    case TY_BOOL: return parse_bool(value, p, msg, len);
    case TY_ENUM: return parse_enum(o, value, p, msg, len);
    case TY_DOUBLE: return parse_double(value, p, msg, len);
    case TY_U64: return parse_u64(value, p, msg, len);
    case TY_BYTES: return parse_bytes(value, p, msg, len);
    case TY_STRING: return parse_string(o, value, p, msg, len);
    case TY_SECONDS:
        if (!strcmp(value, "auto")) return *(double*)p = CONFIG_AUTO, 0;
        if (parse_double(value, p, msg, len))
            return fail(msg, len, "'%s' is not a number of seconds or auto", value);
        return 0;
    }
    return fail(msg, len, "internal error: key type %d", (int)o->type);
}

// Sets key = value; on failure msg holds "unknown key 'foo'" or "key 'foo': <why>", to which
// the callers prepend where the pair came from.
static int apply(fnn_config* c, const char* key, const char* value, char* msg, size_t len)
{
    const option* o = find_option(key);
    if (!o) return fail(msg, len, "unknown key '%s'", key);
    char why[256];
    if (parse_value(c, o, value, why, sizeof why)) return fail(msg, len, "key '%s': %s", key, why);
    return 0;
}

void config_defaults(fnn_config* c)
{
    // Zeroed first so that padding and unset fields (V, O) are the same bytes on every rank.
    memset(c, 0, sizeof *c);
    char msg[256];
    for (size_t i = 0; i < NOPTIONS; i++) {
        int bad = apply(c, options[i].key, options[i].def, msg, sizeof msg);
        assert(!bad && "a default in the option table does not parse");
        (void)bad;
    }
}

// State of one config_load, shared by the line reader and the key handler.
typedef struct load_state {
    fnn_config* c;
    FILE* f;
    int line;       // lines handed to inih so far: the line of the current key
    int err_line;   // line of the first error, 0 = none yet
    int read_errno; // errno of a failed read, 0 = none
    char msg[512];
} load_state;

// An fgets for ini_parse_stream that counts lines (inih's handler is not told the line number
// in this build), stops the parse at the first error, and refuses a line longer than inih's
// buffer: inih would otherwise cut it and parse the rest as a new line.
static char* read_line(char* buf, int num, void* stream)
{
    load_state* s = stream;
    if (s->err_line) return NULL;
    errno = 0;
    if (!fgets(buf, num, s->f)) {
        if (ferror(s->f)) s->read_errno = errno ? errno : EIO;
        return NULL;
    }
    s->line++;
    size_t n = strlen(buf);
    if (n + 1 == (size_t)num && buf[n - 1] != '\n') {
        int next = getc(s->f);
        if (next != '\n' && next != EOF) {
            s->err_line = s->line;
            fail(s->msg, sizeof s->msg, "line is longer than %d characters", num - 1);
            return NULL;
        }
    }
    return buf;
}

static int on_key(void* user, const char* section, const char* name, const char* value)
{
    (void)section; // sections only group keys for the reader; every key is global
    load_state* s = user;
    if (apply(s->c, name, value, s->msg, sizeof s->msg)) {
        s->err_line = s->line;
        return 0;
    }
    return 1;
}

// Turns the outcome of ini_parse_stream (0, the first bad line, or -2 out of memory) and what
// the handler recorded into a message with the file and line.
static int load_result(const load_state* s, int r, const char* path, char* err, size_t errlen)
{
    if (s->err_line && (r <= 0 || r >= s->err_line))
        return fail(err, errlen, "%s:%d: %s", path, s->err_line, s->msg);
    if (r > 0) return fail(err, errlen, "%s:%d: expected 'key = value' or '[section]'", path, r);
    if (r < 0) return fail(err, errlen, "%s: out of memory while parsing", path);
    if (s->read_errno) return fail(err, errlen, "%s: cannot read (%s)", path, strerror(s->read_errno));
    return 0;
}

int config_load(fnn_config* c, const char* path, char* err, size_t errlen)
{
    FILE* f = fopen(path, "r");
    if (!f) return fail(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
    // Parse into a copy so that a file with an error changes nothing.
    fnn_config tmp = *c;
    load_state s = {.c = &tmp, .f = f};
    int r = ini_parse_stream(read_line, &s, on_key, &s);
    fclose(f);
    if (load_result(&s, r, path, err, errlen)) return -1;
    *c = tmp;
    return 0;
}

// Strips leading and trailing blanks in place, as inih does for file values.
static char* trim(char* s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

int config_set(fnn_config* c, const char* keyval, char* err, size_t errlen)
{
    const char* eq = strchr(keyval, '=');
    if (!eq) return fail(err, errlen, "--set %s: expected key=value", keyval);
    char* copy = strdup(keyval);
    if (!copy) return fail(err, errlen, "--set %s: out of memory", keyval);
    copy[eq - keyval] = '\0';
    char msg[512];
    int r = apply(c, trim(copy), trim(copy + (eq - keyval) + 1), msg, sizeof msg);
    free(copy);
    return r ? fail(err, errlen, "--set %s: %s", keyval, msg) : 0;
}

static int int_value(const fnn_config* c, const option* o) { return *(const int*)cfield(c, o); }

static double numeric_value(const fnn_config* c, const option* o)
{
    return o->type == TY_DOUBLE || o->type == TY_SECONDS ? *(const double*)cfield(c, o) : int_value(c, o);
}

static int range_ok(enum opt_range r, double v)
{
    switch (r) {
    case ANY: return 1;
    case GT0: return v > 0;
    case GE0: return v >= 0;
    case GE1: return v >= 1;
    case UNIT: return v >= 0 && v < 1;
    case FRAC: return v > 0 && v <= 1;
    case PROB: return v >= 0 && v <= 1;
    case LAYERS: return v >= 1 && v <= MODEL_MAX_LAYERS;
    }
    return 0;
}

static void range_text(enum opt_range r, char* buf, size_t len)
{
    static const char* text[] = {[ANY] = "anything", [GT0] = "> 0", [GE0] = ">= 0",
                                 [GE1] = ">= 1", [UNIT] = "in [0, 1)", [FRAC] = "in (0, 1]",
                                 [PROB] = "in [0, 1]"};
    if (r == LAYERS) snprintf(buf, len, "in 1..%d", MODEL_MAX_LAYERS);
    else snprintf(buf, len, "%s", text[r]);
}

// The value as config_print writes it. Doubles get the shortest %.Ng that reads back to the
// same bits (at most 17 digits), so the echo shows 0.001 rather than 0.0010000000000000000208.
static void format_value(const fnn_config* c, const option* o, char* buf, size_t len)
{
    const void* p = cfield(c, o);
    if (o->type == TY_SECONDS && *(const double*)p == CONFIG_AUTO) {
        snprintf(buf, len, "auto");
        return;
    }
    switch (o->type) {
    case TY_INT: snprintf(buf, len, "%d", int_value(c, o)); return;
    case TY_BOOL: snprintf(buf, len, "%s", int_value(c, o) ? "true" : "false"); return;
    case TY_U64: snprintf(buf, len, "%" PRIu64, *(const uint64_t*)p); return;
    case TY_BYTES: {
        // The largest unit that holds the value whole, so that it reads back the same.
        uint64_t v = *(const uint64_t*)p;
        int u = 0;
        while (v && v % 1024 == 0 && u < 4) v /= 1024, u++;
        snprintf(buf, len, "%" PRIu64 "%.*s", v, u ? 1 : 0, u ? bytes_units + u - 1 : "");
        return;
    }
    case TY_STRING: snprintf(buf, len, "%.*s", (int)o->size, (const char*)p); return;
    case TY_ENUM: {
        const char* name = config_enum_name(o->key, int_value(c, o));
        if (name) snprintf(buf, len, "%s", name);
        else snprintf(buf, len, "%d", int_value(c, o));
        return;
    }
    case TY_SECONDS:
    case TY_DOUBLE:
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, *(const double*)p);
            if (strtod(buf, NULL) == *(const double*)p) return;
        }
        return;
    }
}

static int check_range(const fnn_config* c, const option* o, char* err, size_t errlen)
{
    if (o->type == TY_ENUM && !config_enum_name(o->key, int_value(c, o))) {
        char list[128];
        enum_list(o, list, sizeof list);
        return fail(err, errlen, "%s = %d: not one of %s", o->key, int_value(c, o), list);
    }
    if ((o->type != TY_INT && o->type != TY_DOUBLE && o->type != TY_SECONDS) ||
        range_ok(o->range, numeric_value(c, o)) ||
        (o->type == TY_SECONDS && numeric_value(c, o) == CONFIG_AUTO))
        return 0;
    char value[64], range[32];
    format_value(c, o, value, sizeof value);
    range_text(o->range, range, sizeof range);
    return fail(err, errlen, "%s = %s: must be %s%s", o->key, value, range,
                o->type == TY_SECONDS ? " or auto" : "");
}

// Fine-tuning options only make sense on top of loaded parameters.
static int check_needs_init_from(const fnn_config* c, char* err, size_t errlen)
{
    if (c->init_from[0]) return 0;
    if (c->new_head) return fail(err, errlen, "new_head = true needs init_from (a checkpoint)");
    if (c->head_ridge) return fail(err, errlen, "head_ridge = true needs init_from (a checkpoint)");
    if (c->freeze[0]) return fail(err, errlen, "freeze = %s needs init_from (a checkpoint)", c->freeze);
    if (c->head_only_steps)
        return fail(err, errlen, "head_only_steps = %d needs init_from (a checkpoint)", c->head_only_steps);
    if (c->body_lr_scale != 1)
        return fail(err, errlen, "body_lr_scale = %g needs init_from (a checkpoint)", c->body_lr_scale);
    if (c->l2_init) return fail(err, errlen, "l2_init = %g needs init_from (a checkpoint)", c->l2_init);
    return 0;
}

// The ridge fit replaces the output head, so it needs one that is new.
static int check_head_ridge(const fnn_config* c, char* err, size_t errlen)
{
    if (c->head_ridge && !c->new_head)
        return fail(err, errlen, "head_ridge = true needs new_head = true (the fit replaces the output head)");
    return 0;
}

// Only a dense regression has a choice of scored steps; the ridge fit regresses every step.
static int check_score(const fnn_config* c, char* err, size_t errlen)
{
    if (c->score != SCORE_LAST) return 0;
    if (c->model.task != TASK_REGRESS)
        return fail(err, errlen, "score = last is for task = regress; task = %s scores %s",
                    config_enum_name("task", c->model.task),
                    c->model.task == TASK_LM ? "every step" : "each record's last byte already");
    if (c->head_ridge)
        return fail(err, errlen, "score = last with head_ridge = true: the ridge fit regresses "
                                 "every step's target");
    return 0;
}

// Segments of 1..seq_len steps; the ridge fit reads every step's state after one forward pass,
// which keeps only the last segment's.
static int check_bptt_memory(const fnn_config* c, char* err, size_t errlen)
{
    const int k = model_bptt_keep(c->bptt_memory, c->seq_len);
    if (k < 0)
        return fail(err, errlen, "bptt_memory = %s: must be all, sqrt or a number of steps 1..seq_len (%d)",
                    c->bptt_memory, c->seq_len);
    if (k < c->seq_len && c->head_ridge)
        return fail(err, errlen, "bptt_memory = %s with head_ridge = true: the ridge fit reads every "
                                 "step's state, which only bptt_memory = all keeps", c->bptt_memory);
    return 0;
}

// resume = auto looks for the newest checkpoint in ckpt_dir.
static int check_resume(const fnn_config* c, char* err, size_t errlen)
{
    if (!strcmp(c->resume, "auto") && !c->ckpt_dir[0])
        return fail(err, errlen, "resume = auto needs ckpt_dir (the directory to resume from)");
    return 0;
}

// Validation during training scores the eval_windows; the best checkpoint and early stopping
// follow those scores.
static int check_eval_every(const fnn_config* c, char* err, size_t errlen)
{
    if (c->eval_every && !c->eval_windows)
        return fail(err, errlen, "eval_every = %d needs eval_windows > 0 (the validation windows scored)", c->eval_every);
    if (c->early_stop && !c->eval_every)
        return fail(err, errlen, "early_stop = %d needs eval_every (the scores it follows)", c->early_stop);
    if (c->ckpt_keep_best && !c->eval_every)
        return fail(err, errlen, "ckpt_keep_best = true needs eval_every (the scores it follows)");
    if (c->ckpt_keep_best && !c->ckpt_dir[0])
        return fail(err, errlen, "ckpt_keep_best = true needs ckpt_dir (where the best checkpoint is kept)");
    return 0;
}

// What is fed back: a target needs one per step, the draws need something fed back, and the
// teacher keys belong to the mix (elsewhere they would be parsed and do nothing).
static int check_feedback(const fnn_config* c, char* err, size_t errlen)
{
    const model_config* m = &c->model;
    const char* source = config_enum_name("feedback_source", m->feedback_source);
    if (m->feedback_source != FBS_MODEL && m->task == TASK_CLASSIFY)
        return fail(err, errlen, "feedback_source = %s needs per-step targets; "
                                 "task classify has one label per sequence", source);
    if (m->feedback_source == FBS_MIX && m->feedback == FB_NONE)
        return fail(err, errlen, "feedback_source = mix needs feedback = all or first");
    if (c->feedback_noise > 0 && m->feedback == FB_NONE)
        return fail(err, errlen, "feedback_noise = %g needs feedback = all or first", c->feedback_noise);
    if (m->feedback_source != FBS_MIX && c->teacher_prob != 1)
        return fail(err, errlen, "teacher_prob = %g needs feedback_source = mix", c->teacher_prob);
    if (m->feedback_source != FBS_MIX && c->teacher_prob_end != -1)
        return fail(err, errlen, "teacher_prob_end = %g needs feedback_source = mix", c->teacher_prob_end);
    if (c->teacher_prob_end != -1 && !(c->teacher_prob_end >= 0 && c->teacher_prob_end <= 1))
        return fail(err, errlen, "teacher_prob_end = %g: must be in [0, 1], or -1 (constant teacher_prob)",
                    c->teacher_prob_end);
    return 0;
}

// "elman" or "gru|lstm": the cells of the registry for which has(kind) holds.
static void cells_with(int (*has)(const cell_kind*), char* buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < CELL_KINDS && used < len; i++)
        if (has(cell_of(i)))
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "|" : "", cell_name(i));
}
static int has_forget(const cell_kind* k) { return cell_has_init(k, CELL_INIT_FORGET); }
static int has_act(const cell_kind* k) { return k->any_act; }

// The keys that apply to some cells only, as the cells declare: forget_bias to those with a
// forget-gate bias, activation (other than its default, tanh) to those with any_act.
static int check_cell_keys(const fnn_config* c, char* err, size_t errlen)
{
    const cell_kind* k = cell_of(c->model.cell);
    char with[128];
    if (!has_forget(k) && c->model.forget_bias != 1) {
        cells_with(has_forget, with, sizeof with);
        return fail(err, errlen, "forget_bias = %g: applies to cell = %s only (cell = %s)",
                    c->model.forget_bias, with, k->name);
    }
    if (!k->any_act && c->model.act != ACT_TANH) {
        cells_with(has_act, with, sizeof with);
        return fail(err, errlen, "activation = %s: the %s cell has its own nonlinearities (activation "
                    "applies to cell = %s)", config_enum_name("activation", c->model.act), k->name,
                    with);
    }
    return 0;
}

int config_validate(const fnn_config* c, char* err, size_t errlen)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (check_range(c, &options[i], err, errlen)) return -1;
    if (!c->data[0]) return fail(err, errlen, "data = (empty): must name a dataset from fnn prepare");
    if (check_resume(c, err, errlen)) return -1;
    if (check_eval_every(c, err, errlen)) return -1;
    if (check_feedback(c, err, errlen)) return -1;
    if (check_cell_keys(c, err, errlen)) return -1;
    if (check_needs_init_from(c, err, errlen)) return -1;
    if (check_score(c, err, errlen)) return -1;
    if (check_bptt_memory(c, err, errlen)) return -1;
    return check_head_ridge(c, err, errlen);
}

void config_print(const fnn_config* c, FILE* out)
{
    char value[CONFIG_PATH + 32];
    for (size_t i = 0; i < NOPTIONS; i++) {
        format_value(c, &options[i], value, sizeof value);
        fprintf(out, "%s =%s%s\n", options[i].key, value[0] ? " " : "", value);
    }
}

void config_help(FILE* out)
{
    int width = 0; // of the longest key, so that the defaults line up
    for (size_t i = 0; i < NOPTIONS; i++)
        if ((int)strlen(options[i].key) > width) width = (int)strlen(options[i].key);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const option* o = &options[i];
        char def[96], names[64] = "";
        if (o->type == TY_ENUM) enum_list(o, names, sizeof names);
        snprintf(def, sizeof def, o->type == TY_ENUM ? "%s (%s)" : "%s", o->def[0] ? o->def : "(empty)", names);
        fprintf(out, "  %-*s %-34s %s\n", width, o->key, def, o->help);
    }
}

void config_enum_names(const char* key, char* buf, size_t len)
{
    const option* o = find_option(key);
    if (o && o->type == TY_ENUM) enum_list(o, buf, len);
    else if (len) buf[0] = '\0';
}

const char* config_enum_name(const char* key, int value)
{
    const option* o = find_option(key);
    if (!o || o->type != TY_ENUM) return NULL;
    int v;
    for (int i = 0; enum_at(o, i, &v); i++)
        if (v == value) return enum_at(o, i, &v);
    return NULL;
}

int config_enum_value(const char* key, const char* name)
{
    const option* o = find_option(key);
    if (!o || o->type != TY_ENUM) return -1;
    int v;
    for (int i = 0; enum_at(o, i, &v); i++)
        if (!strcmp(enum_at(o, i, &v), name)) return v;
    return -1;
}
