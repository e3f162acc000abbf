// io/config: defaults, every key type from INI files and --set, the print -> load round trip,
// and that each kind of error fails with a message naming the key (or the file).
// ranks: 1
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/config.h"
#include "tests/check.h"

// Writes text to a new temporary file; its name goes to path (at least 32 bytes).
static int write_temp(const char* text, char* path)
{
    strcpy(path, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    FILE* f = fdopen(fd, "w");
    if (!f) return close(fd), -1;
    fputs(text, f);
    return fclose(f);
}

// Loads text as an INI file into c. Returns config_load's status.
static int load_text(fnn_config* c, const char* text, char* err, size_t errlen)
{
    char path[64];
    if (write_temp(text, path)) {
        snprintf(err, errlen, "cannot write a temporary file");
        return -2;
    }
    int r = config_load(c, path, err, errlen);
    unlink(path);
    return r;
}

static int contains(const char* s, const char* part) { return strstr(s, part) != NULL; }

static void test_defaults(void)
{
    fnn_config c;
    config_defaults(&c);
    CHECK(c.model.seed == 1, "seed %llu", (unsigned long long)c.model.seed);
    CHECK(c.model.task == TASK_LM && c.model.act == ACT_TANH && c.model.feedback == FB_ALL,
          "task %d act %d feedback %d", c.model.task, c.model.act, c.model.feedback);
    CHECK(c.model.feedback_source == FBS_MODEL && c.model.wh_init == INIT_ORTHOGONAL, "fbs/init");
    CHECK(c.model.H == 64 && c.model.L == 1 && c.model.D == 32, "H %d L %d D %d", c.model.H,
          c.model.L, c.model.D);
    CHECK(c.model.V == 0 && c.model.O == 0, "V %d O %d come from the dataset", c.model.V, c.model.O);
    CHECK(c.optim.kind == OPT_ADAM, "optimizer %d", c.optim.kind);
    CHECK(c.optim.lr == 1e-3 && c.optim.lr_min == 0 && c.optim.momentum == 0.9, "lr/lr_min/momentum");
    CHECK(c.optim.beta1 == 0.9 && c.optim.beta2 == 0.999 && c.optim.eps == 1e-8, "betas/eps");
    CHECK(c.optim.weight_decay == 0 && c.optim.clip == 1.0 && c.optim.warmup == 0, "wd/clip/warmup");
    CHECK(c.optim.steps == 100, "steps %d", c.optim.steps);
    CHECK(!c.data[0] && !c.metrics[0] && !c.ckpt_dir[0] && !c.init_from[0] && !c.resume[0] &&
              !c.freeze[0], "strings default to empty");
    CHECK(c.batch == 8 && c.seq_len == 32 && c.log_every == 10, "batch %d seq_len %d log_every %d",
          c.batch, c.seq_len, c.log_every);
    CHECK(c.ckpt_every == 0 && c.ckpt_keep == 3, "ckpt_every %d ckpt_keep %d", c.ckpt_every, c.ckpt_keep);
    CHECK(!c.new_head && !c.head_ridge && c.ridge_lambda == 1e-3 && !c.carry_state, "finetune");
    CHECK(c.threads == 0 && c.tp == 1 && c.eval_windows == 0, "threads %d tp %d eval_windows %d",
          c.threads, c.tp, c.eval_windows);
}

static const char* every_type =
    "; comment\n"
    "# comment\n"
    "seed = 18446744073709551615\n"
    "[model]\n"
    "task = regress\n"
    "hidden = 128\n"
    "layers = 3\n"
    "embed = 7\n"
    "activation = relu\n"
    "feedback = first\n"
    "feedback_source = target\n"
    "init = identity\n"
    "[optim]\n"
    "optimizer = sgd\n"
    "lr = 2.5e-2 ; inline comment\n"
    "lr_min=1e-5\n"
    "momentum = 0.5\n"
    "beta1 = 0.8\n"
    "beta2 = 0.99\n"
    "eps = 1e-6\n"
    "weight_decay = 0.01\n"
    "clip = 0\n"
    "warmup = 10\n"
    "steps = 1000\n"
    "[data]\n"
    "data = /tmp/some dir/x.h5\n"
    "batch = 16\n"
    "seq_len = 64\n"
    "log_every = 1\n"
    "metrics = m.jsonl\n"
    "ckpt_dir = ck\n"
    "ckpt_every = 50\n"
    "ckpt_keep = 1\n"
    "init_from = base.h5\n"
    "resume = auto\n"
    "new_head = yes\n"
    "head_ridge = 1\n"
    "ridge_lambda = 0.5\n"
    "freeze = layer0,embed\n"
    "carry_state = true\n"
    "threads = 2\n"
    "tp = 4\n"
    "eval_windows = 9\n";

static void test_every_type(void)
{
    fnn_config c;
    char err[512] = "";
    config_defaults(&c);
    CHECK(load_text(&c, every_type, err, sizeof err) == 0, "load: %s", err);
    CHECK(c.model.seed == UINT64_MAX, "seed %llu", (unsigned long long)c.model.seed);
    CHECK(c.model.task == TASK_REGRESS && c.model.act == ACT_RELU && c.model.feedback == FB_FIRST,
          "enums %d %d %d", c.model.task, c.model.act, c.model.feedback);
    CHECK(c.model.feedback_source == FBS_TARGET && c.model.wh_init == INIT_IDENTITY, "fbs/init");
    CHECK(c.model.H == 128 && c.model.L == 3 && c.model.D == 7, "H %d L %d D %d", c.model.H,
          c.model.L, c.model.D);
    CHECK(c.optim.kind == OPT_SGD && c.optim.lr == 2.5e-2 && c.optim.lr_min == 1e-5, "optim %d %g %g",
          c.optim.kind, c.optim.lr, c.optim.lr_min);
    CHECK(c.optim.momentum == 0.5 && c.optim.beta1 == 0.8 && c.optim.beta2 == 0.99 &&
              c.optim.eps == 1e-6, "momentum/betas/eps");
    CHECK(c.optim.weight_decay == 0.01 && c.optim.clip == 0 && c.optim.warmup == 10 &&
              c.optim.steps == 1000, "wd/clip/warmup/steps");
    CHECK(!strcmp(c.data, "/tmp/some dir/x.h5"), "data '%s'", c.data);
    CHECK(c.batch == 16 && c.seq_len == 64 && c.log_every == 1, "batch/seq_len/log_every");
    CHECK(!strcmp(c.metrics, "m.jsonl") && !strcmp(c.ckpt_dir, "ck"), "metrics/ckpt_dir");
    CHECK(c.ckpt_every == 50 && c.ckpt_keep == 1, "ckpt_every/keep");
    CHECK(!strcmp(c.init_from, "base.h5") && !strcmp(c.resume, "auto"), "init_from/resume");
    CHECK(c.new_head == 1 && c.head_ridge == 1 && c.ridge_lambda == 0.5, "new_head/ridge");
    CHECK(!strcmp(c.freeze, "layer0,embed") && c.carry_state == 1, "freeze '%s'", c.freeze);
    CHECK(c.threads == 2 && c.tp == 4 && c.eval_windows == 9, "threads/tp/eval_windows");
    CHECK(config_validate(&c, err, sizeof err) == 0, "validate: %s", err);

    CHECK(load_text(&c, "new_head = no\nhead_ridge = FALSE\ncarry_state = 0\n", err, sizeof err) == 0,
          "bools: %s", err);
    CHECK(!c.new_head && !c.head_ridge && !c.carry_state, "bools not cleared");
}

static void test_sections_ignored(void)
{
    fnn_config c;
    char err[512] = "";
    config_defaults(&c);
    const char* text = "hidden = 10\n[a]\nhidden = 20\n[b.c]\nlayers = 2\n[a]\nembed = 3\n";
    CHECK(load_text(&c, text, err, sizeof err) == 0, "load: %s", err);
    CHECK(c.model.H == 20 && c.model.L == 2 && c.model.D == 3, "H %d L %d D %d", c.model.H,
          c.model.L, c.model.D);
}

static void test_set(void)
{
    fnn_config c;
    char err[512] = "";
    config_defaults(&c);
    const char* sets[] = {"hidden=256", " lr = 0.5 ", "activation=sigmoid", "data=x.h5",
                          "carry_state=true", "seed=42", "metrics=", "freeze=a=b"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        CHECK(config_set(&c, sets[i], err, sizeof err) == 0, "--set %s: %s", sets[i], err);
    CHECK(c.model.H == 256 && c.optim.lr == 0.5 && c.model.act == ACT_SIGMOID, "set values");
    CHECK(!strcmp(c.data, "x.h5") && c.carry_state == 1 && c.model.seed == 42, "set values");
    CHECK(!c.metrics[0] && !strcmp(c.freeze, "a=b"), "freeze '%s'", c.freeze);
}

// Prints a, loads the print into defaults, and checks that the bytes agree.
static void check_round_trip(const fnn_config* a, const char* what)
{
    char path[64], err[512] = "";
    CHECK(write_temp("", path) == 0, "temp file");
    FILE* f = fopen(path, "w");
    CHECK(f != NULL, "reopen %s", path);
    if (!f) return;
    config_print(a, f);
    fclose(f);
    fnn_config b;
    config_defaults(&b);
    CHECK(config_load(&b, path, err, sizeof err) == 0, "%s: load of the print: %s", what, err);
    CHECK(memcmp(a, &b, sizeof b) == 0, "%s: print -> load differs", what);
    unlink(path);
}

static void test_round_trip(void)
{
    fnn_config a;
    char err[512] = "";
    config_defaults(&a);
    check_round_trip(&a, "defaults");
    CHECK(load_text(&a, every_type, err, sizeof err) == 0, "load: %s", err);
    const char* sets[] = {"lr=0.1", "lr_min=0.33333333333333331", "beta2=0.99999999999999989",
                          "eps=4.9406564584124654e-300", "weight_decay=1e-3"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        CHECK(config_set(&a, sets[i], err, sizeof err) == 0, "--set %s: %s", sets[i], err);
    a.optim.clip = 1.0 / 3.0;
    check_round_trip(&a, "every key changed");
    CHECK(config_enum_name("task", TASK_CLASSIFY) && !strcmp(config_enum_name("task", TASK_CLASSIFY), "classify"),
          "enum name");
    CHECK(config_enum_value("optimizer", "adamw") == OPT_ADAMW, "enum value");
    CHECK(config_enum_value("init", "normal") == INIT_NORMAL, "enum value");
    CHECK(config_enum_value("optimizer", "lion") == -1 && config_enum_value("hidden", "x") == -1 &&
              config_enum_value("nokey", "x") == -1, "unknown enum value");
    CHECK(config_enum_name("activation", 99) == NULL && config_enum_name("nokey", 0) == NULL,
          "unknown enum name");
}

// A load that must fail, leave c as it was, and name each part in the message.
static void load_fails(const char* text, const char* part1, const char* part2)
{
    fnn_config c, before;
    char err[512] = "";
    config_defaults(&c);
    before = c;
    int r = load_text(&c, text, err, sizeof err);
    CHECK(r == -1, "load of '%s' returned %d", text, r);
    CHECK(contains(err, part1) && contains(err, part2), "'%s': message '%s' lacks '%s' or '%s'", text,
          err, part1, part2);
    CHECK(memcmp(&c, &before, sizeof c) == 0, "'%s': failed load changed the config", text);
}

static void set_fails(const char* keyval, const char* part)
{
    fnn_config c, before;
    char err[512] = "";
    config_defaults(&c);
    before = c;
    CHECK(config_set(&c, keyval, err, sizeof err) == -1, "--set %s succeeded", keyval);
    CHECK(contains(err, part) && contains(err, "--set"), "--set %s: message '%s' lacks '%s'", keyval,
          err, part);
    CHECK(memcmp(&c, &before, sizeof c) == 0, "--set %s: failure changed the config", keyval);
}

static void test_parse_errors(void)
{
    load_fails("hidden = 32\n\nfoo = 1\n", ":3: unknown key 'foo'", "/tmp/test_config_");
    load_fails("hidden = abc\n", ":1: key 'hidden'", "'abc' is not an integer");
    load_fails("hidden = 12x\n", "hidden", "12x");
    load_fails("hidden = 1.5\n", "hidden", "not an integer");
    load_fails("hidden = 99999999999\n", "hidden", "out of range");
    load_fails("hidden =\n", "hidden", "not an integer");
    load_fails("lr = 1e-3x\n", "key 'lr'", "not a number");
    load_fails("lr = nan\n", "key 'lr'", "finite");
    load_fails("lr = 1e400\n", "key 'lr'", "finite");
    load_fails("seed = -1\n", "key 'seed'", "-1");
    load_fails("seed = 18446744073709551616\n", "key 'seed'", "out of range");
    load_fails("[model]\nactivation = gelu\n", ":2: key 'activation'", "'gelu' is not one of tanh|relu|sigmoid");
    load_fails("optimizer = Adam\n", "optimizer", "sgd|adam|adamw");
    load_fails("new_head = maybe\n", "new_head", "maybe");
    load_fails("hidden = 32 # not a comment here\n", "hidden", "not an integer");
    load_fails("lr = 0.1\nhidden 32\n", ":2:", "key = value");
    load_fails("[model\nhidden = 1\n", ":1:", "section");
    // inih would cut a line longer than its buffer and parse the rest as another line.
    char longline[400] = "data = ";
    memset(longline + 7, 'x', 300);
    strcpy(longline + 307, "\n");
    load_fails(longline, ":1:", "longer than");

    fnn_config c;
    char err[512] = "";
    config_defaults(&c);
    CHECK(config_load(&c, "/nonexistent/dir/x.ini", err, sizeof err) == -1, "missing file loaded");
    CHECK(contains(err, "/nonexistent/dir/x.ini: cannot open") && contains(err, "No such file"),
          "missing file: '%s'", err);
    CHECK(config_load(&c, "/tmp", err, sizeof err) == -1 && contains(err, "/tmp"), "directory: '%s'", err);

    set_fails("hidden", "hidden");
    set_fails("foo=1", "unknown key 'foo'");
    set_fails("hidden=abc", "key 'hidden'");
    set_fails("task=translate", "key 'task'");
    set_fails("carry_state=2", "key 'carry_state'");
    char longset[400] = "freeze=";
    memset(longset + 7, 'y', 300);
    longset[307] = '\0';
    set_fails(longset, "key 'freeze'");
}

// Validation of defaults plus data and the given override must fail naming part.
static void validate_fails(const char* keyval, const char* keyval2, const char* part)
{
    fnn_config c;
    char err[512] = "";
    config_defaults(&c);
    CHECK(config_set(&c, "data=x.h5", err, sizeof err) == 0, "set data: %s", err);
    CHECK(config_set(&c, keyval, err, sizeof err) == 0, "--set %s: %s", keyval, err);
    if (keyval2) CHECK(config_set(&c, keyval2, err, sizeof err) == 0, "--set %s: %s", keyval2, err);
    err[0] = '\0';
    CHECK(config_validate(&c, err, sizeof err) == -1, "validate accepted %s", keyval);
    CHECK(contains(err, part), "validate %s: message '%s' lacks '%s'", keyval, err, part);
}

static void test_validate(void)
{
    fnn_config c;
    char err[512] = "";
    config_defaults(&c);
    CHECK(config_validate(&c, err, sizeof err) == -1 && contains(err, "data"), "no data: '%s'", err);
    CHECK(config_set(&c, "data=x.h5", err, sizeof err) == 0, "set data");
    CHECK(config_validate(&c, err, sizeof err) == 0, "defaults + data: %s", err);

    validate_fails("hidden=0", NULL, "hidden = 0: must be > 0");
    validate_fails("seq_len=0", NULL, "seq_len = 0");
    validate_fails("lr=-1", NULL, "lr = -1: must be >= 0");
    validate_fails("layers=0", NULL, "layers = 0");
    validate_fails("layers=17", NULL, "layers = 17: must be in 1..16");
    validate_fails("embed=-3", NULL, "embed");
    validate_fails("batch=0", NULL, "batch");
    validate_fails("steps=-1", NULL, "steps");
    validate_fails("lr_min=-0.1", NULL, "lr_min = -0.1");
    validate_fails("momentum=1", NULL, "momentum = 1: must be in [0, 1)");
    validate_fails("beta1=-0.5", NULL, "beta1");
    validate_fails("beta2=1", NULL, "beta2");
    validate_fails("eps=0", NULL, "eps = 0");
    validate_fails("weight_decay=-1", NULL, "weight_decay");
    validate_fails("clip=-1", NULL, "clip");
    validate_fails("warmup=-1", NULL, "warmup");
    validate_fails("log_every=0", NULL, "log_every");
    validate_fails("ckpt_every=-1", NULL, "ckpt_every");
    validate_fails("ckpt_keep=0", NULL, "ckpt_keep = 0");
    validate_fails("threads=-1", NULL, "threads");
    validate_fails("tp=0", NULL, "tp = 0");
    validate_fails("eval_windows=-1", NULL, "eval_windows");
    validate_fails("ridge_lambda=0", NULL, "ridge_lambda = 0");
    validate_fails("task=classify", "feedback_source=target", "feedback_source = target");
    validate_fails("task=classify", "feedback_source=mix", "feedback_source = mix needs per-step targets");
    validate_fails("feedback_source=mix", "feedback=none", "feedback_source = mix needs feedback = all or first");
    validate_fails("feedback_noise=0.1", "feedback=none", "feedback_noise = 0.1 needs feedback = all or first");
    validate_fails("feedback_noise=-0.5", NULL, "feedback_noise = -0.5: must be >= 0");
    validate_fails("teacher_prob=0.5", NULL, "teacher_prob = 0.5 needs feedback_source = mix");
    validate_fails("teacher_prob_end=0", "feedback_source=target", "teacher_prob_end = 0 needs feedback_source = mix");
    validate_fails("feedback_source=mix", "teacher_prob=1.5", "teacher_prob = 1.5: must be in [0, 1]");
    validate_fails("feedback_source=mix", "teacher_prob_end=-0.5", "teacher_prob_end = -0.5: must be in [0, 1], or -1");
    const char* mix[] = {"feedback_source=mix", "teacher_prob=0", "teacher_prob_end=1", "feedback_noise=0.3"};
    for (int i = 0; i < 4; i++) CHECK(config_set(&c, mix[i], err, sizeof err) == 0, "--set %s: %s", mix[i], err);
    CHECK(config_validate(&c, err, sizeof err) == 0, "mix 0 -> 1 with noise refused: %s", err);
    validate_fails("new_head=true", NULL, "new_head");
    validate_fails("head_ridge=true", NULL, "head_ridge");
    validate_fails("freeze=layer0", NULL, "freeze = layer0");

    config_defaults(&c);
    CHECK(config_set(&c, "data=x.h5", err, sizeof err) == 0, "set data");
    c.model.act = 7; // a struct filled by code, not by the parser
    CHECK(config_validate(&c, err, sizeof err) == -1 && contains(err, "activation"), "bad enum: '%s'", err);
}

// The cell key from the registry (model/cell.h): every cell parses by its name and prints it, a
// bad value is refused with all the names in registry order, and the keys that apply to some
// cells only (forget_bias, activation) are accepted exactly where the cell declares them.
static void test_cell_keys(void)
{
    char err[512], set[64], names[256] = "";
    for (int i = 0; i < CELL_KINDS; i++) {
        const cell_kind* k = cell_of(i);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? "|" : "", k->name);
        fnn_config c;
        config_defaults(&c);
        snprintf(set, sizeof set, "cell=%s", k->name);
        CHECK(config_set(&c, set, err, sizeof err) == 0 && c.model.cell == i, "--set %s: %s", set, err);
        CHECK(config_enum_name("cell", i) && !strcmp(config_enum_name("cell", i), k->name),
              "cell %d prints as %s", i, config_enum_name("cell", i));
        CHECK(config_set(&c, "data=x.h5", err, sizeof err) == 0, "set data");
        int forget = 0;
        for (int g = 0; k->b_init && g < k->gates; g++) forget |= k->b_init[g] == CELL_INIT_FORGET;
        fnn_config f = c;
        CHECK(config_set(&f, "forget_bias=0.5", err, sizeof err) == 0, "set forget_bias");
        const int fok = config_validate(&f, err, sizeof err) == 0;
        CHECK(fok == forget && (fok || (contains(err, "forget_bias = 0.5") && contains(err, k->name))),
              "%s with forget_bias = 0.5: %s (forget gate %d)", k->name, fok ? "accepted" : err, forget);
        fnn_config a = c;
        CHECK(config_set(&a, "activation=relu", err, sizeof err) == 0, "set activation");
        const int aok = config_validate(&a, err, sizeof err) == 0;
        snprintf(set, sizeof set, "the %s cell has its own nonlinearities", k->name);
        CHECK(aok == k->any_act && (aok || contains(err, set)), "%s with activation = relu: %s",
              k->name, aok ? "accepted" : err);
    }
    char want[300];
    snprintf(want, sizeof want, "'nocell' is not one of %s", names);
    set_fails("cell=nocell", want);
    printf("cells %s: parsed, printed, forget_bias and activation as each declares\n", names);
}

// memory_limit: bytes or a number with K, M, G, T (powers of 1024), any case; the print is the
// largest unit that holds the value whole and reads back to the same bytes.
static void test_memory_limit(void)
{
    const struct { const char* text; uint64_t bytes; } ok[] = {
        {"0", 0}, {"100", 100}, {"2G", 2ull << 30}, {"1.5G", 3ull << 29}, {"512m", 512ull << 20},
        {"3k", 3072}, {"1T", 1ull << 40}, {"0.5K", 512}};
    char err[512] = "", set[64];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        fnn_config c;
        config_defaults(&c);
        snprintf(set, sizeof set, "memory_limit=%s", ok[i].text);
        CHECK(config_set(&c, set, err, sizeof err) == 0, "--set %s: %s", set, err);
        CHECK(c.memory_limit == ok[i].bytes, "%s: %llu bytes, expected %llu", set,
              (unsigned long long)c.memory_limit, (unsigned long long)ok[i].bytes);
        check_round_trip(&c, set);
    }
    load_fails("memory_limit = 2X\n", "key 'memory_limit'", "'2X' is not a size");
    load_fails("memory_limit = -1G\n", "key 'memory_limit'", "'-1G' is not a size");
    load_fails("memory_limit = G\n", "key 'memory_limit'", "not a size");
    load_fails("memory_limit = 1GB\n", "key 'memory_limit'", "not a size");
    load_fails("memory_limit =\n", "key 'memory_limit'", "not a size");
    load_fails("memory_limit = inf\n", "key 'memory_limit'", "not a size");
    load_fails("memory_limit = 1e30\n", "key 'memory_limit'", "out of range");
}

static void test_tiny_ini(void)
{
    fnn_config c;
    char err[512] = "";
    config_defaults(&c);
    CHECK(config_load(&c, "configs/tiny.ini", err, sizeof err) == 0, "tiny.ini: %s", err);
    CHECK(config_validate(&c, err, sizeof err) == 0, "tiny.ini: %s", err);
    CHECK(c.model.task == TASK_LM && c.model.H == 32 && c.model.L == 2 && c.model.D == 16,
          "tiny model %d %d %d %d", c.model.task, c.model.H, c.model.L, c.model.D);
    CHECK(c.seq_len == 16 && c.batch == 4 && c.optim.steps == 20 && c.optim.kind == OPT_ADAM &&
              c.optim.lr == 3e-3 && c.log_every == 5, "tiny training keys");
    CHECK(!strcmp(c.data, "build/tiny/data.h5"), "tiny data '%s'", c.data);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    test_defaults();
    test_every_type();
    test_sections_ignored();
    test_set();
    test_round_trip();
    test_parse_errors();
    test_validate();
    test_cell_keys();
    test_memory_limit();
    test_tiny_ini();
    if (!check_failures) printf("test_config: all checks passed\n");
    MPI_Finalize();
    return check_failures != 0;
}
