// Checkpoints: a file written at every TP x DP layout of the world (and every sharing of the DP
// replicas) loads at every other one with
// every element of the parameters, optimiser moments and carried state bit-identical to the
// value it was given (a function of the global index only), and evaluates to the loss of the
// writer (identical on the same layout). Bad files are refused with a message naming what is
// wrong; a failed save leaves the last good file as it was; the directory keeps the newest K;
// /config/score, and the run config text of files from before it.
// ranks: 1 2 4
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/checkpoint.h"
#include "io/ckpt_async.h"
#include "io/h5.h"
#include "model/init.h"
#include "run/finetune.h"
#include "run/resume.h"
#include "run/setup.h"
#include "tests/check.h"
#include "tests/elements.h"
#include "tests/layouts.h"

enum { T = 6, BG = 4 };

static char dir[64];

static model_config tiny(void)
{
    return (model_config){.task = TASK_LM, .act = ACT_TANH, .feedback = FB_FIRST,
                          .feedback_source = FBS_MODEL, .wh_init = INIT_ORTHOGONAL,
                          .V = 16, .D = 4, .H = 8, .L = 2, .O = 16, .seed = 9};
}

// This replica's rows of one window of the global batch, from counter-based draws by global row.
static model_batch window_batch(const model* m, int32_t* tok, int32_t* next)
{
    for (int t = 0; t < T; t++)
        for (int b = 0; b < m->B; b++) {
            int row = m->g->dp_rank * m->B + b;
            tok[t * m->B + b] = (int32_t)(init_uniform(31, t, row) * m->c.V);
            next[t * m->B + b] = (int32_t)(init_uniform(32, t, row) * m->c.V);
        }
    return (model_batch){.T = T, .tokens = tok, .next = next};
}

static double window_loss(model* m)
{
    int32_t tok[T * BG], next[T * BG];
    model_batch bt = window_batch(m, tok, next);
    model_forward(m, &bt); // from the carried state
    double loss = model_loss(m, &bt, NULL);
    if (m->g->dp > 1) dist_dp_allreduce_f64(&loss, 1, m->g);
    return loss;
}

// Datasets of params, m and v whose fnn_digest attribute differs from the digest of the values
// they were given, computed here from its definition (io/h5.h) over the full logical tensor:
// a = sum u_i, b = sum (i + 1) u_i of the float32 bits u_i in row-major order. Rank 0 reads the
// file serially with raw HDF5, not io/h5.h: an independent reader of what fnn wrote.
static long digests(const model* m, const char* path)
{
    static const char* const sets[3] = {"/params", "/optim/m", "/optim/v"};
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    long bad = f < 0;
    for (int b = 0; b < 3 && f >= 0; b++)
        for (int k = 0; k < m->ntensors; k++) {
            const model_tensor* t = &m->tensors[k];
            uint64_t want[2] = {0, 0}, have[2] = {0, 0};
            for (int i = 0; i < t->rows; i++)
                for (int j = 0; j < t->cols; j++) {
                    float v = value(b, k, i, j);
                    uint32_t u;
                    memcpy(&u, &v, sizeof u);
                    want[0] += u;
                    want[1] += ((uint64_t)i * t->cols + j + 1) * u;
                }
            char name[96];
            snprintf(name, sizeof name, "%s/%s", sets[b], t->name);
            hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
            hid_t a = ds < 0 ? -1 : H5Aopen(ds, "fnn_digest", H5P_DEFAULT);
            if (a < 0 || H5Aread(a, H5T_NATIVE_UINT64, have) < 0) have[0] = ~want[0];
            if (a >= 0) H5Aclose(a);
            if (ds >= 0) H5Dclose(ds);
            if (have[0] != want[0] || have[1] != want[1]) {
                fprintf(stderr, "%s: digest %llu %llu, from the values %llu %llu\n", name,
                        (unsigned long long)have[0], (unsigned long long)have[1],
                        (unsigned long long)want[0], (unsigned long long)want[1]);
                bad++;
            }
        }
    if (f >= 0) H5Fclose(f);
    return bad;
}

static void path_of(char* out, size_t len, const char* name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static ckpt_train train_state(const model* m)
{
    return (ckpt_train){.step = 42, .epoch = 3, .cursor = 42, .rng_seed = 77,
                        .writer_tp = m->g->tp, .writer_dp = m->g->dp, .global_batch = BG,
                        .seq_len = T, .carry_state = 1, .optimizer = OPT_ADAMW};
}

// Writes at g, then reads at every layout of the world: the moments, which each rank writes and
// reads for its own sub-pieces only, whatever the DP replicas share.
static void round_trip(dist_grid* g, const layout* ls, int nl, const fnn_config* cfg)
{
    model_config c = tiny();
    model w;
    char err[512], path[128];
    CHECK(model_init(&w, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    elements(&w, 0);
    state(&w, 0);
    ckpt_train st = train_state(&w);
    path_of(path, sizeof path, "rt.h5");
    CHECK(ckpt_save(path, &w, cfg, &st, 1, err, sizeof err) == 0, "save: %s", err);
    // The pieces' digests, summed over the writers, are the whole tensor's.
    if (g->world_rank == 0)
        CHECK(digests(&w, path) == 0, "written at tp %d dp %d: digests differ", g->tp, g->dp);
    double loss_w = window_loss(&w);
    for (int l = 0; l < nl; l++) {
        dist_grid r;
        layout_grid(&r, &ls[l]);
        model_config rc;
        ckpt_train rs;
        CHECK(ckpt_read_meta(path, r.world, &rc, &rs, NULL, 0, err, sizeof err) == 0, "%s", err);
        CHECK(!memcmp(&rc, &c, sizeof c), "config read back differs");
        CHECK(rs.step == 42 && rs.epoch == 3 && rs.rng_seed == 77 && rs.writer_tp == g->tp &&
              rs.writer_dp == g->dp && rs.global_batch == BG && rs.seq_len == T &&
              rs.carry_state == 1 && rs.optimizer == OPT_ADAMW, "train attributes read back differ");
        model m;
        CHECK(model_init(&m, &rc, &r, T, BG, err, sizeof err) == 0, "%s", err);
        ckpt_file* f = ckpt_open(path, r.world, err, sizeof err);
        CHECK(f != NULL, "%s", err);
        if (f) ckpt_get_params(f, &m, 0, 1);
        if (f) ckpt_get_state(f, &m);
        CHECK(f && ckpt_close(f) == 0, "load: %s", err);
        long bad = elements(&m, 1) + state(&m, 1);
        CHECK(bad == 0, "written at tp %d dp %d, read at tp %d dp %d: %ld elements differ",
              g->tp, g->dp, r.tp, r.dp, bad);
        double loss = window_loss(&m);
        if (r.tp == g->tp) CHECK(loss == loss_w, "same layout: loss %.17g, writer %.17g", loss, loss_w);
        else CHECK(check_close(loss, loss_w, 1e-6, 0), "loss %.9g, writer %.9g", loss, loss_w);
        if (g->world_rank == 0)
            printf("written at tp %d x dp %d (%d x %d), read at tp %d x dp %d (%d x %d): every "
                   "element equal, loss %.9g\n", g->tp, g->dp, g->dpn, g->dpx, r.tp, r.dp, r.dpn,
                   r.dpx, loss);
        model_free(&m);
        dist_grid_free(&r);
    }
    model_free(&w);
}

// Parameter elements of m that differ from the values the writer gave them.
static long params_bad(const model* m)
{
    long bad = 0;
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        for (int i = 0; i < t->lrows; i++)
            for (int j = 0; j < t->lcols; j++)
                bad += m->params[t->offset + (size_t)i * t->ld + j] != value(0, k, t->row0 + i, t->col0 + j);
    }
    return bad;
}

// Every load opens its checkpoint once (a collective open is a metadata storm on a parallel
// filesystem): resume (parameters, moments, carried state, and a fine-tuning run's /finetune),
// init_from, and the model eval, sample and export build (setup_open_checkpoint).
static void test_one_open(dist_grid* world, const fnn_config* cfg)
{
    model_config c = tiny();
    dist_grid g;
    model w, m;
    char err[512], path[128], ftpath[128];
    dist_grid_init(world->world, 1, 0, &g, err, sizeof err);
    CHECK(model_init(&w, &c, &g, T, BG, err, sizeof err) == 0, "%s", err);
    elements(&w, 0);
    state(&w, 0);
    ckpt_train st = train_state(&w);
    path_of(path, sizeof path, "open.h5");
    CHECK(ckpt_save(path, &w, cfg, &st, 1, err, sizeof err) == 0, "save: %s", err);
    unsigned char all[MODEL_MAX_TENSORS];
    long start[MODEL_MAX_TENSORS] = {0};
    memset(all, 1, sizeof all);
    st.transferred = st.optim_state = all;
    st.start = start;
    path_of(ftpath, sizeof ftpath, "open-ft.h5");
    CHECK(ckpt_save(ftpath, &w, cfg, &st, 1, err, sizeof err) == 0, "save: %s", err);

    fnn_config rc = *cfg;
    rc.model = c;
    rc.carry_state = 1;
    for (int ft = 0; ft < 2; ft++) {
        snprintf(rc.init_from, sizeof rc.init_from, "%s", ft ? path : "");
        CHECK(model_init(&m, &c, &g, T, BG, err, sizeof err) == 0, "%s", err);
        finetune f = {0};
        ckpt_train rs;
        long before = h5_open_count();
        resume_load(ft ? ftpath : path, &m, &rc, &rs, &f);
        long opens = h5_open_count() - before;
        CHECK(opens == 1, "resume%s opened the checkpoint %ld times", ft ? " (fine-tuning)" : "", opens);
        CHECK(rs.step == 42 && elements(&m, 1) + state(&m, 1) == 0, "resume%s read other values",
              ft ? " (fine-tuning)" : "");
        CHECK(!ft || (f.transferred[0] && f.start[0] == 0), "resume: /finetune read wrong");
        model_free(&m);
    }

    CHECK(model_init(&m, &c, &g, T, BG, err, sizeof err) == 0, "%s", err);
    finetune f;
    long before = h5_open_count();
    finetune_load(&f, &m, &rc);
    long opens = h5_open_count() - before;
    CHECK(opens == 1, "init_from opened the checkpoint %ld times", opens);
    CHECK(params_bad(&m) == 0, "init_from read other values");
    model_free(&m);

    dist_grid r;
    model_config mc;
    ckpt_train rs;
    before = h5_open_count();
    setup_open_checkpoint(path, world, &r, 1, 0, BG, &m, &mc, &rs);
    opens = h5_open_count() - before;
    CHECK(opens == 1, "eval/sample's load opened the checkpoint %ld times", opens);
    CHECK(params_bad(&m) == 0 && rs.step == 42, "eval/sample's load read other values");
    if (world->world_rank == 0)
        printf("resume, resume of a fine-tuning run, init_from, eval/sample: one open each\n");
    model_free(&m);
    dist_grid_free(&r);
    model_free(&w);
    dist_grid_free(&g);
}

// Raw HDF5, rank 0 alone: the objects of two files compared, each dataset's bytes and every
// attribute's stored bytes, by name.
typedef struct file_pair {
    hid_t a, b;
    long objects, differ;
} file_pair;

// Attributes of a's object that b's same-named object lacks or holds other bytes for.
static herr_t same_attr(hid_t loc, const char* name, const H5A_info_t* info, void* arg)
{
    (void)info;
    hid_t* other = arg;
    hid_t x = H5Aopen(loc, name, H5P_DEFAULT), y = H5Aopen(*other, name, H5P_DEFAULT);
    hid_t tx = H5Aget_type(x);
    size_t n = H5Aget_storage_size(x);
    char* bx = calloc(n + 1, 1);
    char* by = calloc(n + 1, 1);
    int bad = y < 0 || H5Aget_storage_size(y) != n || H5Aread(x, tx, bx) < 0 || H5Aread(y, tx, by) < 0 ||
              memcmp(bx, by, n);
    if (bad) fprintf(stderr, "attribute %s differs\n", name);
    free(bx), free(by);
    H5Tclose(tx);
    H5Aclose(x);
    if (y >= 0) H5Aclose(y);
    return bad ? 1 : 0;
}

static herr_t same_object(hid_t root, const char* name, const H5O_info_t* info, void* arg)
{
    file_pair* fp = arg;
    fp->objects++;
    hid_t x = H5Oopen(root, name, H5P_DEFAULT), y = H5Oopen(fp->b, name, H5P_DEFAULT);
    int bad = y < 0;
    hsize_t ai = 0;
    if (!bad) bad = H5Oget_info2(y, &(H5O_info_t){0}, H5O_INFO_NUM_ATTRS) < 0;
    if (!bad) {
        H5O_info_t yi;
        H5Oget_info2(y, &yi, H5O_INFO_NUM_ATTRS | H5O_INFO_BASIC);
        bad = yi.num_attrs != info->num_attrs || yi.type != info->type;
    }
    if (!bad) bad = H5Aiterate2(x, H5_INDEX_NAME, H5_ITER_NATIVE, &ai, same_attr, &y) != 0;
    if (!bad && info->type == H5O_TYPE_DATASET) {
        hid_t t = H5Dget_type(x);
        size_t n = (size_t)H5Dget_storage_size(x);
        char* bx = calloc(n + 1, 1);
        char* by = calloc(n + 1, 1);
        bad = (size_t)H5Dget_storage_size(y) != n || H5Dread(x, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, bx) < 0 ||
              H5Dread(y, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, by) < 0 || memcmp(bx, by, n);
        free(bx), free(by);
        H5Tclose(t);
    }
    if (bad) fprintf(stderr, "%s differs\n", name);
    fp->differ += bad;
    H5Oclose(x);
    if (y >= 0) H5Oclose(y);
    return 0;
}

static herr_t count_object(hid_t root, const char* name, const H5O_info_t* info, void* arg)
{
    (void)root, (void)name, (void)info;
    ++*(long*)arg;
    return 0;
}

// Objects that differ between the files at a and b (or that one lacks), -1 if one cannot be opened.
static long files_differ(const char* a, const char* b)
{
    file_pair fp = {.a = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT), .b = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT)};
    long in_b = 0;
    if (fp.a >= 0 && fp.b >= 0) {
        H5Ovisit2(fp.a, H5_INDEX_NAME, H5_ITER_NATIVE, same_object, &fp, H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS);
        H5Ovisit2(fp.b, H5_INDEX_NAME, H5_ITER_NATIVE, count_object, &in_b, H5O_INFO_BASIC);
    }
    long r = fp.a < 0 || fp.b < 0 ? -1 : fp.differ + (in_b != fp.objects);
    if (fp.a >= 0) H5Fclose(fp.a);
    if (fp.b >= 0) H5Fclose(fp.b);
    return r;
}

// ckpt_async: the file a background save commits equals a synchronous save of the same state,
// every dataset's bytes and every attribute, though the model changes while the file is written
// (training goes on: the save wrote its staging copy); nothing is committed before the wait.
static void test_async(dist_grid* g, const fnn_config* cfg)
{
    model_config c = tiny();
    model w;
    char err[512], sdir[128], adir[128], spath[160], apath[160];
    CHECK(model_init(&w, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    elements(&w, 0);
    state(&w, 0);
    ckpt_train st = train_state(&w);
    path_of(sdir, sizeof sdir, "sync");
    path_of(adir, sizeof adir, "async");
    snprintf(spath, sizeof spath, "%s/step-00000042.h5", sdir);
    snprintf(apath, sizeof apath, "%s/step-00000042.h5", adir);
    if (g->world_rank == 0) remove(apath), remove(spath);
    dist_barrier(g);
    CHECK(ckpt_dir_save(sdir, 3, &w, cfg, &st, err, sizeof err) == 0, "sync save: %s", err);
    ckpt_async* a = ckpt_async_new(&w, st.optimizer, err, sizeof err);
    CHECK(a != NULL, "%s", err);
    if (!a) return;
    CHECK(ckpt_async_save(a, adir, 3, &w, cfg, &st, err, sizeof err) == 0, "async save: %s", err);
    memset(w.params, 0, w.nparams * sizeof(real));
    memset(w.m, 0, model_own_elems(&w) * sizeof(real));
    memset(w.f0, 0, (size_t)w.B * c.O * sizeof(real));
    struct stat sb;
    CHECK(stat(apath, &sb) != 0, "%s is in place before the save committed", apath);
    CHECK(ckpt_async_wait(a, err, sizeof err) == 42, "async wait: %s", err);
    CHECK(ckpt_async_wait(a, err, sizeof err) == 0, "a second wait found a save in flight");
    if (g->world_rank == 0) {
        long d = files_differ(spath, apath);
        CHECK(d == 0, "tp %d dp %d: the background save differs from the synchronous one in %ld objects",
              g->tp, g->dp, d);
        if (d == 0) printf("tp %d x dp %d: background save equals the synchronous one, every dataset and attribute\n", g->tp, g->dp);
    }
    ckpt_async_free(a);
    model_free(&w);
}

// Saving the gradients gathers them itself: after a backward pass over DP replicas each rank
// holds only its sub-pieces' sums, and the file must hold the whole DP sum all the same. The
// reference is the one-rank model's gradient of the same global batch (the sums' order differs).
static void test_save_grads(dist_grid* g)
{
    model_config c = tiny();
    dist_grid one;
    model w, r;
    char err[512], path[128];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    CHECK(model_init(&w, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    CHECK(model_init(&r, &c, &one, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&w);
    model_init_params(&r);
    model* both[2] = {&w, &r};
    for (int i = 0; i < 2; i++) {
        int32_t tok[T * BG], next[T * BG];
        model_batch bt = window_batch(both[i], tok, next);
        model_reset_state(both[i]);
        model_zero_grad(both[i]);
        model_forward(both[i], &bt);
        model_loss(both[i], &bt, NULL);
        model_backward(both[i], &bt);
    }
    path_of(path, sizeof path, "grads.h5");
    CHECK(ckpt_save_grads(path, &w, err, sizeof err) == 0, "save grads: %s", err);
    real* got = calloc(r.nparams, sizeof(real));
    h5file h;
    CHECK(got && h5_open(&h, path, MPI_COMM_SELF, err, sizeof err) == 0, "open %s: %s", path, err);
    double worst = 0;
    for (int k = 0; k < r.ntensors; k++) {
        const model_tensor* t = &r.tensors[k];
        char name[96];
        snprintf(name, sizeof name, "/grads/%s", t->name);
        h5_piece pc = {.rank = t->rank, .rows = t->rows, .cols = t->cols, .nrows = t->lrows,
                       .ncols = t->lcols, .ld = t->ld, .parts = 1};
        h5_read_piece(&h, name, &pc, got + t->offset);
        double d = 0, n = 0;
        for (int i = 0; i < t->lrows; i++)
            for (int j = 0; j < t->lcols; j++) {
                const size_t at = t->offset + (size_t)i * t->ld + j;
                d += (got[at] - r.grads[at]) * (double)(got[at] - r.grads[at]);
                n += (double)r.grads[at] * r.grads[at];
            }
        if (n > 0 && sqrt(d / n) > worst) worst = sqrt(d / n);
    }
    CHECK(h5_close(&h) == 0, "reading %s", path);
    CHECK(worst < 1e-5, "gradients saved at tp %d x dp %d without a gather: relative error %.3g "
          "against one rank", g->tp, g->dp, worst);
    if (g->world_rank == 0)
        printf("gradients saved at tp %d x dp %d (%d x %d) without the caller's gather: within "
               "%.2g of one rank's\n", g->tp, g->dp, g->dpn, g->dpx, worst);
    free(got);
    model_free(&w);
    model_free(&r);
    dist_grid_free(&one);
}

static int contains(const char* s, const char* part) { return strstr(s, part) != NULL; }

// Rank 0 writes a file of n bytes: the first n of src (NULL: text); every rank waits for it.
static void write_prefix(dist_grid* g, const char* src, const char* dst, long n)
{
    if (g->world_rank == 0) {
        FILE* in = src ? fopen(src, "rb") : NULL;
        FILE* out = fopen(dst, "wb");
        for (long i = 0; i < n && out; i++) fputc(in ? fgetc(in) : 'x', out);
        if (in) fclose(in);
        if (out) fclose(out);
    }
    dist_barrier(g);
}

static void test_refusals(dist_grid* g, const fnn_config* cfg)
{
    char err[512] = "", good[128], bad[128];
    path_of(good, sizeof good, "rt.h5");
    model_config mc;
    ckpt_train st;

    path_of(bad, sizeof bad, "missing.h5");
    CHECK(ckpt_read_meta(bad, g->world, &mc, &st, NULL, 0, err, sizeof err) && contains(err, bad) &&
          contains(err, "No such file"), "missing: %s", err);
    path_of(bad, sizeof bad, "text.h5");
    write_prefix(g, NULL, bad, 100);
    CHECK(ckpt_read_meta(bad, g->world, &mc, &st, NULL, 0, err, sizeof err) &&
          contains(err, "not an HDF5 file"), "text file: %s", err);
    path_of(bad, sizeof bad, "trunc.h5");
    write_prefix(g, good, bad, 4000);
    CHECK(ckpt_read_meta(bad, g->world, &mc, &st, NULL, 0, err, sizeof err) &&
          contains(err, bad) && contains(err, "truncated"), "truncated: %s", err);

    // A model of another shape: the message names the first tensor that does not fit.
    model_config other = tiny();
    other.H = 12;
    model m;
    CHECK(model_init(&m, &other, g, T, BG, err, sizeof err) == 0, "%s", err);
    CHECK(ckpt_load(good, &m, 0, 0, err, sizeof err) && contains(err, "/params/layer0/Wx is 8 x 4") &&
          contains(err, "12 x 4"), "shape mismatch: %s", err);
    model_free(&m);

    // A save that fails (its temporary name is taken by a directory) leaves the good file.
    model_config c = tiny();
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", good);
    if (g->world_rank == 0) mkdir(tmp, 0777);
    dist_barrier(g);
    ckpt_train s2 = train_state(&m);
    s2.step = 99;
    CHECK(ckpt_save(good, &m, cfg, &s2, 1, err, sizeof err) && contains(err, good), "save over a taken tmp: %s", err);
    CHECK(ckpt_read_meta(good, g->world, &mc, &st, NULL, 0, err, sizeof err) == 0 && st.step == 42,
          "the good file changed after a failed save (step %ld): %s", st.step, err);
    CHECK(ckpt_load(good, &m, 0, 1, err, sizeof err) == 0 && elements(&m, 1) == 0,
          "the good file's parameters changed after a failed save");
    if (g->world_rank == 0) rmdir(tmp);
    model_free(&m);
}

// Replaces a checkpoint's run config text with run_config and, unless keep_score, removes
// /config/score, as in files from before it. Raw HDF5: the test edits the file behind io/h5.h.
static void make_legacy(dist_grid* g, const char* path, const char* run_config, int keep_score)
{
    if (g->world_rank == 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t c = f < 0 ? -1 : H5Gopen2(f, "/config", H5P_DEFAULT);
        hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
        H5Tset_size(t, strlen(run_config) + 1);
        CHECK(c >= 0 && (keep_score || H5Adelete(c, "score") >= 0) && H5Adelete(c, "run_config") >= 0, "%s", path);
        hid_t a = H5Acreate2(c, "run_config", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        CHECK(a >= 0 && H5Awrite(a, t, run_config) >= 0, "writing %s's run_config", path);
        H5Aclose(a), H5Sclose(sp), H5Tclose(t), H5Gclose(c), H5Fclose(f);
    }
    dist_barrier(g);
}

// The steps a regression scores: /config/score, which wins over the run config text; a file
// without it is read from its text's "score = " line, and without that line scores every step.
static void test_score(dist_grid* g, const fnn_config* cfg)
{
    model_config c = tiny(), mc;
    model m;
    char err[512] = "", path[128];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    ckpt_train st = train_state(&m), rs;
    path_of(path, sizeof path, "score.h5");
    fnn_config last = *cfg;
    last.score = SCORE_LAST;
    for (int k = 0; k < 2; k++) {
        CHECK(ckpt_save(path, &m, k ? &last : cfg, &st, 0, err, sizeof err) == 0, "save: %s", err);
        rs.score = -1;
        CHECK(ckpt_read_meta(path, g->world, &mc, &rs, NULL, 0, err, sizeof err) == 0 &&
              rs.score == (k ? SCORE_LAST : SCORE_ALL), "score %d read back as %d: %s",
              k ? SCORE_LAST : SCORE_ALL, rs.score, err);
    }
    const struct { const char* text; int keep, want; } legacy[] = {
        {"task = regress\nscore = all\n", 1, SCORE_LAST}, // the attribute wins
        {"task = regress\nscore = last\nseq_len = 6\n", 0, SCORE_LAST},
        {"task = regress\nscore = all\n", 0, SCORE_ALL},
        {"task = regress\n", 0, SCORE_ALL},
        {"task = regress\nscore = most\n", 0, -1},
    };
    for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++) {
        CHECK(ckpt_save(path, &m, &last, &st, 0, err, sizeof err) == 0, "save: %s", err);
        make_legacy(g, path, legacy[i].text, legacy[i].keep);
        rs.score = -2;
        int rc = ckpt_read_meta(path, g->world, &mc, &rs, NULL, 0, err, sizeof err);
        if (legacy[i].want < 0)
            CHECK(rc && contains(err, path) && contains(err, "its run config says score = most"),
                  "a run config with score = most: %s", err);
        else
            CHECK(rc == 0 && rs.score == legacy[i].want, "legacy file %zu: score %d, want %d: %s",
                  i, rs.score, legacy[i].want, err);
    }
    model_free(&m);
}

// Four saves with keep = 2 leave the two newest and a pointer to the last; without the pointer
// the newest complete file is found by name, and a stray temporary file is never taken; with a
// newer file of another run in the directory, the pointerless choice is refused.
static void test_directory(dist_grid* g, const fnn_config* cfg)
{
    char err[512], ck[128], out[256], want[160];
    path_of(ck, sizeof ck, "ck");
    model_config c = tiny();
    model m;
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    ckpt_train st = train_state(&m);
    // A directory left by an earlier run of this test starts empty.
    char** names;
    int n = g->world_rank == 0 ? ckpt_dir_list(ck, &names) : -1;
    for (int i = 0; i < n; i++) {
        snprintf(out, sizeof out, "%s/%s", ck, names[i]);
        remove(out);
    }
    if (n >= 0) ckpt_dir_list_free(names, n);
    dist_barrier(g);
    for (long s = 10; s <= 40; s += 10) {
        st.step = s;
        CHECK(ckpt_dir_save(ck, 2, &m, cfg, &st, err, sizeof err) == 0, "dir save: %s", err);
    }
    dist_barrier(g);
    struct stat sb;
    for (long s = 10; s <= 40; s += 10) {
        snprintf(want, sizeof want, "%s/step-%08ld.h5", ck, s);
        CHECK((stat(want, &sb) == 0) == (s >= 30), "%s should %s", want, s >= 30 ? "exist" : "be gone");
    }
    snprintf(want, sizeof want, "%s/step-%08d.h5", ck, 40);
    CHECK(ckpt_dir_latest(ck, out, sizeof out, err, sizeof err) == 0 && !strcmp(out, want), "latest: %s", out);
    dist_barrier(g);
    if (g->world_rank == 0) {
        snprintf(out, sizeof out, "%s/latest", ck);
        remove(out);
        snprintf(out, sizeof out, "%s/step-00000050.h5.tmp", ck);
        fclose(fopen(out, "w"));
    }
    dist_barrier(g);
    CHECK(ckpt_dir_latest(ck, out, sizeof out, err, sizeof err) == 0 && !strcmp(out, want),
          "without pointer: %s", out);
    // A newer file of another run: without the pointer the newest is ambiguous and refused.
    st.step = 50;
    snprintf(st.run_id, sizeof st.run_id, "other");
    CHECK(ckpt_dir_save(ck, 2, &m, cfg, &st, err, sizeof err) == 0, "dir save: %s", err);
    dist_barrier(g);
    if (g->world_rank == 0) {
        snprintf(out, sizeof out, "%s/latest", ck);
        remove(out);
    }
    dist_barrier(g);
    CHECK(ckpt_dir_latest(ck, out, sizeof out, err, sizeof err) == -2 &&
              contains(err, "step-00000050.h5: run id other, step-00000040.h5: run id not recorded"),
          "two runs without pointer: %s", err);
    path_of(out, sizeof out, "empty");
    CHECK(ckpt_dir_latest(out, out, sizeof out, err, sizeof err) == -1,
          "a missing directory has a checkpoint");
    model_free(&m);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    dist_grid world;
    char err[128];
    dist_grid_init(MPI_COMM_WORLD, 1, 0, &world, err, sizeof err);
    snprintf(dir, sizeof dir, "build/tests/ckpt_np%d", world.world_size);
    if (world.world_rank == 0) {
        mkdir("build/tests", 0777);
        mkdir(dir, 0777);
    }
    dist_barrier(&world);
    fnn_config cfg;
    config_defaults(&cfg);
    layout ls[MAX_LAYOUTS];
    const int nl = layouts(world.world_size, ls);
    for (int l = 0; l < nl; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        round_trip(&g, ls, nl, &cfg);
        dist_grid_free(&g);
    }
    for (int l = 0; l < nl; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        test_save_grads(&g);
        dist_grid_free(&g);
    }
    for (int l = 0; l < nl; l++) {
        dist_grid g;
        layout_grid(&g, &ls[l]);
        test_async(&g, &cfg);
        dist_grid_free(&g);
    }
    test_one_open(&world, &cfg);
    test_refusals(&world, &cfg);
    test_score(&world, &cfg);
    test_directory(&world, &cfg);
    int failed = dist_any(check_failures > 0, &world);
    if (world.world_rank == 0) printf("test_checkpoint: %s\n", failed ? "FAILED" : "all checks passed");
    dist_grid_free(&world);
    MPI_Finalize();
    return failed;
}
