// Datasets: `fnn prepare` of each kind on small hand-made files, the exact values of evaluation
// windows, training windows that do not depend on how the batch is split, carried streams,
// streamed windows against the whole file read by HDF5 at 1, 2 and 4 DP ranks, prepare under a
// memory limit smaller than its input, and the one-line errors (naming the file) that leave no
// output behind.
// ranks: 1
#include <dirent.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "io/dataset.h"
#include "model/mix.h"
#include "tests/check.h"

static char dir[64];

// dir/name, in a static buffer per call slot so a few paths can be live at once.
static const char* path_of(const char* name)
{
    static char bufs[16][512];
    static int slot;
    char* p = bufs[slot++ % 16];
    snprintf(p, sizeof bufs[0], "%s/%s", dir, name);
    return p;
}

static const char* write_file(const char* name, const char* text)
{
    const char* p = path_of(name);
    FILE* f = fopen(p, "wb");
    CHECK(f && fwrite(text, 1, strlen(text), f) == strlen(text) && !fclose(f), "writing %s", p);
    return p;
}

static int exists(const char* p)
{
    return access(p, F_OK) == 0;
}

// No "<out>.tmp.<pid>" may survive a failed prepare.
static int temp_files_left(void)
{
    int n = 0;
    DIR* d = opendir(dir);
    for (struct dirent* e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

static dataset* open_ok(const char* p)
{
    char err[512] = "";
    dataset* d = dataset_open(p, err, sizeof err);
    CHECK(d, "dataset_open(%s): %s", p, err);
    return d;
}

// Row r of a (T, B) token buffer as a string; out holds ROW_MAX bytes.
#define ROW_MAX 16
static void row_string(const int32_t* buf, int T, int B, int r, char* out)
{
    int t = 0;
    for (; t < T && t < ROW_MAX - 1; t++) out[t] = (char)buf[t * B + r];
    out[t] = 0;
}

// ------------------------------------------------------------------------------------------------

static const char* train_text = "abcdefgh0123456789ABCDE"; // every byte distinct: finds positions

static const char* prepare_text(void)
{
    // val_fraction 0.25: "abcdefghij" keeps floor(2.5) = 2 bytes for val, 20 bytes keep 5.
    const char* in[2] = {write_file("a.txt", "abcdefghij"),
                         write_file("b.txt", "0123456789ABCDEFGHIJ")};
    const char* out = path_of("text.h5");
    char err[512] = "";
    CHECK(dataset_prepare("text", in, 2, out, 0.25, 0, err, sizeof err) == 0, "text: %s", err);
    return out;
}

static void test_text_eval(const dataset* d)
{
    CHECK(dataset_kind(d) == DATA_TOKENS && dataset_task(d) == TASK_LM, "kind %d", dataset_kind(d));
    CHECK(dataset_outputs(d) == BYTE_VOCAB && dataset_inputs(d) == 0, "O %d", dataset_outputs(d));
    CHECK(dataset_length(d, SPLIT_TRAIN) == 23 && dataset_length(d, SPLIT_VAL) == 7,
          "train %ld val %ld", dataset_length(d, SPLIT_TRAIN), dataset_length(d, SPLIT_VAL));
    CHECK(dataset_windows(d, SPLIT_TRAIN, 4) == 5 && dataset_windows(d, SPLIT_VAL, 4) == 1 &&
          dataset_windows(d, SPLIT_VAL, 7) == 0, "windows %ld", dataset_windows(d, SPLIT_TRAIN, 4));
    data_batch b;
    CHECK(data_batch_init(&b, d, 4, 2) == 0, "batch");
    CHECK(b.view.T == 4 && b.view.tokens == b.tokens && b.view.next == b.next && !b.view.dense &&
          !b.view.label && !b.view.last && !b.view.target && !b.view.weight, "view");
    char in[ROW_MAX], next[ROW_MAX];
    const char* want[2][2] = {{"abcd", "bcde"}, {"efgh", "fgh0"}};
    dataset_eval_batch(d, &b, SPLIT_TRAIN, 0, 0);
    for (int r = 0; r < 2; r++) {
        row_string(b.tokens, 4, 2, r, in), row_string(b.next, 4, 2, r, next);
        CHECK(!strcmp(in, want[r][0]) && !strcmp(next, want[r][1]), "window %d: %s -> %s", r, in,
              next);
    }
    dataset_eval_batch(d, &b, SPLIT_VAL, 0, 0); // val "ijFGHIJ": one window, row 1 repeats it
    for (int r = 0; r < 2; r++) {
        row_string(b.tokens, 4, 2, r, in), row_string(b.next, 4, 2, r, next);
        CHECK(!strcmp(in, "ijFG") && !strcmp(next, "jFGH"), "val row %d: %s -> %s", r, in, next);
    }
    dataset_eval_batch(d, &b, SPLIT_TRAIN, 3, 1); // windows 4 and 5: 5 is past the end
    for (int r = 0; r < 2; r++) {
        row_string(b.tokens, 4, 2, r, in), row_string(b.next, 4, 2, r, next);
        CHECK(!strcmp(in, "89AB") && !strcmp(next, "9ABC"), "last row %d: %s -> %s", r, in, next);
    }
    data_batch_free(&b);
}

// Start in train_text of row r of a batch of B, from its first input byte.
static long start_of(const data_batch* b, int r)
{
    const char* at = strchr(train_text, (char)b->tokens[r]);
    return at ? at - train_text : -1;
}

// One batch of 4 rows or two of 2 rows: the same windows, row by row.
static void test_layout_independent(const dataset* d, int carry)
{
    data_batch one, half;
    CHECK(data_batch_init(&one, d, 4, 4) == 0 && data_batch_init(&half, d, 4, 2) == 0, "batch");
    long moved = 0;
    for (long step = 0; step < 6; step++) {
        dataset_train_batch(d, &one, 7, step, 0, carry);
        for (int part = 0; part < 2; part++) {
            dataset_train_batch(d, &half, 7, step, 2 * part, carry);
            for (int t = 0; t < 4; t++)
                for (int r = 0; r < 2; r++)
                    CHECK(half.tokens[t * 2 + r] == one.tokens[t * 4 + 2 * part + r] &&
                              half.next[t * 2 + r] == one.next[t * 4 + 2 * part + r],
                          "carry %d step %ld row %d t %d", carry, step, 2 * part + r, t);
        }
        for (int r = 0; r < 4; r++) {
            long s = start_of(&one, r);
            char in[ROW_MAX], want[ROW_MAX];
            row_string(one.tokens, 4, 4, r, in);
            snprintf(want, sizeof want, "%.4s", train_text + (s < 0 ? 0 : s));
            CHECK(s >= 0 && s < 19 && !strcmp(in, want) && one.next[12 + r] == train_text[s + 4],
                  "step %ld row %d: '%s' is not the window at %ld", step, r, in, s);
            moved += s != start_of(&one, 0);
        }
    }
    CHECK(moved > 0, "every row of every step starts at the same place");
    data_batch_free(&one), data_batch_free(&half);
}

// Carried rows advance one window (T = 4) per step, wrapping to the front at the end.
static void test_carry(const dataset* d)
{
    data_batch b;
    CHECK(data_batch_init(&b, d, 4, 4) == 0, "batch");
    long prev[4] = {0};
    int wraps = 0;
    for (long step = 0; step < 12; step++) {
        dataset_train_batch(d, &b, 11, step, 0, 1);
        for (int r = 0; r < 4; r++) {
            long s = start_of(&b, r);
            if (step > 0) {
                int wrapped = prev[r] + 4 >= 19 && s == prev[r] + 4 - 19;
                CHECK(s == prev[r] + 4 || wrapped, "row %d: step %ld at %ld, then %ld", r, step - 1,
                      prev[r], s);
                wraps += wrapped;
            }
            prev[r] = s;
        }
    }
    CHECK(wraps > 0, "12 steps of 4 over 19 starts never wrapped");
    data_batch_free(&b);
}

static void test_text(void)
{
    dataset* d = open_ok(prepare_text());
    if (!d) return;
    test_text_eval(d);
    test_layout_independent(d, 0);
    test_layout_independent(d, 1);
    test_carry(d);
    dataset_free(&d);
    CHECK(d == NULL, "dataset_free leaves the pointer");
}

// ------------------------------------------------------------------------------------------------

static const char* prepare_records(void)
{
    // alpha: 5 records (an empty one skipped, "100%" is no separator), no final "%".
    const char* alpha = "one\n%\n  two\n lines  \n%\n\n%\nthree\n%\n100%\n%\nfive\n";
    const char* in[2] = {write_file("alpha", alpha), write_file("beta", "b1\n%\nb2\n%\nb3\n%\n")};
    const char* out = path_of("records.h5");
    char err[512] = "";
    CHECK(dataset_prepare("records", in, 2, out, 0.25, 0, err, sizeof err) == 0, "records: %s",
          err);
    return out;
}

static void check_record(const data_batch* b, int r, const char* text, int label)
{
    char got[ROW_MAX];
    row_string(b->tokens, b->T, b->B, r, got);
    int len = (int)strlen(text) < b->T ? (int)strlen(text) : b->T;
    CHECK(!strncmp(got, text, len) && (int)strlen(got) == len && b->label[r] == label &&
          b->last[r] == len - 1, "row %d: '%s' label %d last %d, want '%.*s' label %d", r, got,
          b->label[r], b->last[r], len, text, label);
}

// Records drawn as one batch of 4 rows or two of 2: the same records, row by row.
static void test_records_layout(const dataset* d)
{
    data_batch one, half;
    CHECK(data_batch_init(&one, d, 5, 4) == 0 && data_batch_init(&half, d, 5, 2) == 0, "batch");
    for (int step = 0; step < 4; step++) {
        dataset_train_batch(d, &one, 3, step, 0, 0);
        for (int part = 0; part < 2; part++) {
            dataset_train_batch(d, &half, 3, step, 2 * part, 0);
            for (int r = 0; r < 2; r++) {
                int same = half.label[r] == one.label[2 * part + r] &&
                           half.last[r] == one.last[2 * part + r];
                for (int t = 0; t < 5; t++)
                    same &= half.tokens[t * 2 + r] == one.tokens[t * 4 + 2 * part + r];
                CHECK(same, "step %d row %d", step, 2 * part + r);
            }
        }
    }
    data_batch_free(&one), data_batch_free(&half);
}

static void test_records(void)
{
    dataset* d = open_ok(prepare_records());
    if (!d) return;
    CHECK(dataset_kind(d) == DATA_SEQUENCES && dataset_task(d) == TASK_CLASSIFY, "kind");
    CHECK(dataset_nclasses(d) == 2 && dataset_outputs(d) == 2 && dataset_class_name(d, 2) == NULL &&
          !strcmp(dataset_class_name(d, 0), "alpha") && !strcmp(dataset_class_name(d, 1), "beta"),
          "classes %d", dataset_nclasses(d));
    // alpha: floor(5 * 0.25) = 1 record to val; beta: floor(0.75) = 0.
    CHECK(dataset_windows(d, SPLIT_TRAIN, 5) == 7 && dataset_windows(d, SPLIT_VAL, 5) == 1,
          "records train %ld val %ld", dataset_windows(d, SPLIT_TRAIN, 5),
          dataset_windows(d, SPLIT_VAL, 5));
    data_batch b;
    CHECK(data_batch_init(&b, d, 5, 3) == 0, "batch");
    CHECK(b.view.label == b.label && b.view.last == b.last && !b.view.next && !b.view.dense,
          "view");
    dataset_eval_batch(d, &b, SPLIT_TRAIN, 0, 0);
    const char* first[3] = {"one", "two\n lines", "three"}, *middle[3] = {"100%", "b1", "b2"};
    for (int r = 0; r < 3; r++) check_record(&b, r, first[r], 0);
    dataset_eval_batch(d, &b, SPLIT_TRAIN, 3, 0);
    for (int r = 0; r < 3; r++) check_record(&b, r, middle[r], r > 0);
    dataset_eval_batch(d, &b, SPLIT_TRAIN, 5, 1); // records 6, 7, 8: the last repeats record 6
    for (int r = 0; r < 3; r++) check_record(&b, r, "b3", 1);
    dataset_eval_batch(d, &b, SPLIT_VAL, 0, 0);
    check_record(&b, 0, "five", 0);
    data_batch_free(&b);
    test_records_layout(d);
    dataset_free(&d);
}

// ------------------------------------------------------------------------------------------------

static void test_csv(void)
{
    const char* in[1] = {write_file("rows.csv", "1,2,3\n4, 5 ,6\r\n7.5,-8,9e1\n\n10,11,12\n")};
    const char* out = path_of("rows.h5");
    char err[512] = "";
    CHECK(dataset_prepare("csv", in, 1, out, 0.25, 2, err, sizeof err) == 0, "csv: %s", err);
    dataset* d = open_ok(out);
    if (!d) return;
    CHECK(dataset_kind(d) == DATA_DENSE && dataset_task(d) == TASK_REGRESS &&
              dataset_inputs(d) == 2 && dataset_outputs(d) == 1,
          "dense D %d O %d", dataset_inputs(d), dataset_outputs(d));
    CHECK(dataset_length(d, SPLIT_TRAIN) == 3 && dataset_length(d, SPLIT_VAL) == 1 &&
              dataset_windows(d, SPLIT_TRAIN, 2) == 1 && dataset_windows(d, SPLIT_TRAIN, 1) == 3,
          "rows");
    data_batch b;
    CHECK(data_batch_init(&b, d, 2, 2) == 0, "batch");
    CHECK(b.view.dense == b.dense && b.view.target == b.target && !b.view.tokens, "view");
    dataset_eval_batch(d, &b, SPLIT_TRAIN, 0, 0); // one window (rows 0, 1); row 1 repeats it
    const float x[2][2] = {{1, 2}, {4, 5}}, y[2] = {3, 6};
    for (int t = 0; t < 2; t++)
        for (int r = 0; r < 2; r++)
            CHECK(b.dense[(t * 2 + r) * 2] == x[t][0] && b.dense[(t * 2 + r) * 2 + 1] == x[t][1] &&
                  b.target[t * 2 + r] == y[t], "t %d row %d: %g %g -> %g", t, r,
                  b.dense[(t * 2 + r) * 2], b.dense[(t * 2 + r) * 2 + 1], b.target[t * 2 + r]);
    data_batch_free(&b);
    CHECK(data_batch_init(&b, d, 1, 3) == 0, "batch");
    dataset_eval_batch(d, &b, SPLIT_TRAIN, 0, 0);
    CHECK(b.dense[4] == 7.5f && b.dense[5] == -8 && b.target[2] == 90, "row 2: %g %g -> %g",
          b.dense[4], b.dense[5], b.target[2]);
    dataset_eval_batch(d, &b, SPLIT_VAL, 0, 0);
    CHECK(b.dense[0] == 10 && b.dense[1] == 11 && b.target[0] == 12, "val row");
    data_batch_free(&b);
    dataset_free(&d);
}

// Per-sequence targets: each line is one sequence of 3 steps x 2 inputs, then its target.
static void test_sequences(void)
{
    const char* in[1] = {write_file("seqs.csv", "1,2,3,4,5,6,7\n\n11,12,13,14,15,16,17\n"
                                                "21,22,23,24,25,26,27\n31,32,33,34,35,36,37\n")};
    const char* out = path_of("seqs.h5");
    char err[512] = "";
    CHECK(dataset_prepare_steps("csv", in, 1, out, 0.25, 2, 3, err, sizeof err) == 0, "seqs: %s", err);
    dataset* d = open_ok(out);
    if (!d) return;
    CHECK(dataset_kind(d) == DATA_DENSE && dataset_seq_len(d) == 3 && dataset_inputs(d) == 2 &&
              dataset_outputs(d) == 1, "seq_len %d D %d O %d", dataset_seq_len(d),
          dataset_inputs(d), dataset_outputs(d));
    CHECK(dataset_length(d, SPLIT_TRAIN) == 3 && dataset_length(d, SPLIT_VAL) == 1 &&
              dataset_windows(d, SPLIT_TRAIN, 3) == 3 && dataset_windows(d, SPLIT_TRAIN, 2) == 0 &&
              dataset_windows(d, SPLIT_TRAIN, 4) == 0, "sequences");
    data_batch b;
    CHECK(data_batch_init(&b, d, 3, 2) == 0, "batch");
    CHECK(b.view.last == b.last && b.last[0] == 2 && b.last[1] == 2, "scored at the last step");
    // Sequence k's step t holds 10k + 2t + 1, 10k + 2t + 2; its target 10k + 7 at step 2 only.
    dataset_eval_batch(d, &b, SPLIT_TRAIN, 1, 0);
    for (int t = 0; t < 3; t++)
        for (int r = 0; r < 2; r++) {
            float base = 10.0f * (1 + r) + 2 * t;
            CHECK(b.dense[(t * 2 + r) * 2] == base + 1 && b.dense[(t * 2 + r) * 2 + 1] == base + 2 &&
                      b.target[t * 2 + r] == (t == 2 ? 10.0f * (1 + r) + 7 : 0),
                  "t %d row %d: %g %g -> %g", t, r, b.dense[(t * 2 + r) * 2],
                  b.dense[(t * 2 + r) * 2 + 1], b.target[t * 2 + r]);
        }
    dataset_eval_batch(d, &b, SPLIT_VAL, 0, 0);
    CHECK(b.dense[0] == 31 && b.dense[4 * 2 + 1] == 36 && b.target[2 * 2] == 37, "val sequence");
    // Training rows are whole sequences: every row's first input starts one.
    for (long step = 0; step < 5; step++) {
        dataset_train_batch(d, &b, 9, step, 0, 0);
        for (int r = 0; r < 2; r++) {
            float x0 = b.dense[r * 2];
            int k = (int)x0 / 10;
            CHECK(x0 == 10.0f * k + 1 && k < 3 && b.target[2 * 2 + r] == 10.0f * k + 7,
                  "step %ld row %d: starts at %g", step, r, x0);
        }
    }
    data_batch_free(&b);
    dataset_free(&d);
    // A stream's batch scores every step unless told to score the last.
    d = open_ok(path_of("rows.h5"));
    if (!d) return;
    CHECK(data_batch_init(&b, d, 2, 2) == 0 && !b.view.last, "stream batch");
    data_batch_score_last(&b);
    CHECK(b.view.last == b.last && b.last[0] == 1 && b.last[1] == 1, "stream scored at step 1");
    data_batch_free(&b);
    dataset_free(&d);
}

// ------------------------------------------------------------------------------------------------

// ------------------------------------------------------------------------------------------------
// Streamed windows against a reference: the whole split read with HDF5 directly, and the training
// positions of io/dataset.h's rule (splitmix64 keyed by seed, step and global row; with carry an
// origin per row advancing one window per step), written out here again.

typedef struct whole {
    int kind, D, O, S; // S: per-sequence steps, 0 = a stream
    long n;            // tokens, records, rows or sequences
    uint8_t* bytes;    // tokens, or records' bytes
    int32_t *lens, *labels;
    long* start;
    float *x, *y;
} whole;

static void* read_all(hid_t f, const char* name, hid_t type, size_t elem, hsize_t dims[2])
{
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT), sp = H5Dget_space(ds);
    dims[1] = 1;
    H5Sget_simple_extent_dims(sp, dims, NULL);
    void* v = malloc(dims[0] * dims[1] * elem + 1);
    CHECK(ds >= 0 && v && H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0, "%s", name);
    H5Sclose(sp), H5Dclose(ds);
    return v;
}

static whole read_whole(const char* p, int kind)
{
    whole w = {.kind = kind};
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    hsize_t d[2], e[2];
    if (kind == DATA_TOKENS) {
        w.bytes = read_all(f, "/train/tokens", H5T_NATIVE_UINT8, 1, d);
        w.n = (long)d[0];
    } else if (kind == DATA_SEQUENCES) {
        w.bytes = read_all(f, "/train/seqs", H5T_NATIVE_UINT8, 1, d);
        w.lens = read_all(f, "/train/lens", H5T_NATIVE_INT32, 4, d);
        w.labels = read_all(f, "/train/labels", H5T_NATIVE_INT32, 4, d);
        w.n = (long)d[0];
        w.start = malloc((size_t)w.n * sizeof *w.start);
        for (long k = 0, at = 0; k < w.n; at += w.lens[k++]) w.start[k] = at;
    } else {
        w.x = read_all(f, "/train/x", H5T_NATIVE_FLOAT, 4, d);
        w.y = read_all(f, "/train/y", H5T_NATIVE_FLOAT, 4, e);
        w.D = (int)d[1], w.O = (int)e[1], w.n = (long)e[0];
        w.S = d[0] == e[0] ? 0 : (int)(d[0] / e[0]);
    }
    H5Fclose(f);
    return w;
}

static void whole_free(whole* w)
{
    free(w->bytes), free(w->lens), free(w->labels), free(w->start), free(w->x), free(w->y);
}

static long ref_pos(uint64_t seed, long step, long row, long span, long stride, int carry)
{
    uint64_t n = (uint64_t)span;
#define H3(a, b) splitmix64(splitmix64(splitmix64(seed) ^ (uint64_t)(a)) ^ (uint64_t)(b))
    if (!carry) return (long)(H3(step, row) % n);
    return (long)((H3(UINT64_MAX, row) % n + (uint64_t)step * (uint64_t)stride) % n);
#undef H3
}

// Row r of b (B rows) against the window at pos of w: 0 when every value is equal bit for bit.
static int row_differs(const whole* w, const data_batch* b, int r, long pos)
{
    int bad = 0, T = b->T, B = b->B;
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)t * B + r;
        if (w->kind == DATA_TOKENS)
            bad |= b->tokens[i] != w->bytes[pos + t] || b->next[i] != w->bytes[pos + t + 1];
        else if (w->kind == DATA_SEQUENCES) {
            int len = w->lens[pos] < T ? w->lens[pos] : T;
            bad |= b->tokens[i] != (t < len ? w->bytes[w->start[pos] + t] : 0);
            bad |= t == 0 && (b->label[r] != w->labels[pos] || b->last[r] != (len ? len - 1 : 0));
        } else {
            long xrow = w->S ? pos * w->S + t : pos + t;
            bad |= memcmp(b->dense + i * w->D, w->x + xrow * w->D, w->D * sizeof(float)) != 0;
            for (int o = 0; o < w->O; o++) {
                float want = !w->S ? w->y[(pos + t) * w->O + o] : t == T - 1 ? w->y[pos * w->O + o] : 0;
                bad |= memcmp(&b->target[i * w->O + o], &want, sizeof want) != 0;
            }
        }
    }
    return bad;
}

// A global batch of 8 rows, split over np = 1, 2 and 4 DP ranks, for steps 0..3 with and without
// carry, and the evaluation windows: each rank's rows are the reference's windows.
static void check_streamed(const char* p, int kind, int T)
{
    enum { B = 8 };
    whole w = read_whole(p, kind);
    dataset* d = open_ok(p);
    if (!d) return;
    long span = kind == DATA_TOKENS ? w.n - T : kind == DATA_DENSE && !w.S ? w.n - T + 1 : w.n;
    long stride = kind == DATA_SEQUENCES || w.S ? 1 : T;
    int checked = 0;
    for (int np = 1; np <= 4; np *= 2) {
        data_batch b;
        CHECK(data_batch_init(&b, d, T, B / np) == 0, "batch");
        for (int rank = 0; rank < np; rank++) {
            int row0 = rank * (B / np);
            for (int carry = 0; carry < 2; carry++)
                for (long step = 0; step < 4; step++) {
                    dataset_train_batch(d, &b, 5, step, row0, carry);
                    for (int r = 0; r < B / np; r++, checked++)
                        CHECK(!row_differs(&w, &b, r, ref_pos(5, step, row0 + r, span, stride, carry)),
                              "%s np %d row %d step %ld carry %d", p, np, row0 + r, step, carry);
                }
            dataset_eval_batch(d, &b, SPLIT_TRAIN, 1, row0);
            long n = dataset_windows(d, SPLIT_TRAIN, T);
            for (int r = 0; r < B / np; r++, checked++) {
                long k = 1 + row0 + r < n ? 1 + row0 + r : n - 1;
                CHECK(!row_differs(&w, &b, r, k * stride), "%s np %d eval row %d", p, np, row0 + r);
            }
        }
        data_batch_free(&b);
    }
    CHECK(checked == 3 * 2 * 4 * B + 3 * B, "%d rows", checked);
    dataset_free(&d);
    whole_free(&w);
}

static unsigned rnd(unsigned* s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

// The dense file's /train/x again as a chunked float64 dataset: read through HDF5's hyperslabs
// (with conversion) instead of pread.
static const char* chunked_copy(const char* good)
{
    const char* p = path_of("chunked.h5");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp %s %s", good, p);
    CHECK(system(cmd) == 0, "%s", cmd);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t d[2], chunk[2] = {7, 1};
    double* v = read_all(f, "/train/x", H5T_NATIVE_DOUBLE, 8, d);
    H5Ldelete(f, "/train/x", H5P_DEFAULT);
    hid_t sp = H5Screate_simple(2, d, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 2, chunk);
    hid_t ds = H5Dcreate2(f, "/train/x", H5T_IEEE_F64LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    CHECK(ds >= 0 && H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0, "%s", p);
    H5Dclose(ds), H5Pclose(pl), H5Sclose(sp), H5Fclose(f);
    free(v);
    return p;
}

static void test_streamed(void)
{
    unsigned seed = 1;
    char* text = malloc(5001);
    for (int i = 0; i < 5000; i++) text[i] = (char)(1 + rnd(&seed) % 255);
    text[5000] = 0;
    const char* tin[1] = {write_file("stream.txt", text)};
    char recs[2][4096], csv[8192], seqs[8192];
    for (int c = 0; c < 2; c++) {
        int at = 0;
        for (int k = 0; k < 40; k++) {
            int len = 1 + (int)(rnd(&seed) % 20);
            for (int i = 0; i < len; i++) recs[c][at++] = (char)('a' + rnd(&seed) % 26);
            at += sprintf(recs[c] + at, "\n%%\n");
        }
        recs[c][at] = 0;
    }
    const char* rin[2] = {write_file("cls_a", recs[0]), write_file("cls_b", recs[1])};
    int at = 0, sat = 0;
    for (int k = 0; k < 200; k++)
        at += sprintf(csv + at, "%g,%g,%g\n", rnd(&seed) / 1e5 - 50, rnd(&seed) / 3e5, rnd(&seed) / 7e5);
    for (int k = 0; k < 60; k++) {
        for (int c = 0; c < 7; c++) sat += sprintf(seqs + sat, "%g%c", rnd(&seed) / 1e5, c < 6 ? ',' : '\n');
    }
    const char* cin[1] = {write_file("stream.csv", csv)};
    const char* sin[1] = {write_file("streamseq.csv", seqs)};
    char err[512] = "";
    const char* out[4] = {path_of("st_text.h5"), path_of("st_recs.h5"), path_of("st_dense.h5"),
                          path_of("st_seqs.h5")};
    CHECK(!dataset_prepare("text", tin, 1, out[0], 0.25, 0, err, sizeof err) &&
          !dataset_prepare("records", rin, 2, out[1], 0.25, 0, err, sizeof err) &&
          !dataset_prepare("csv", cin, 1, out[2], 0.25, 2, err, sizeof err) &&
          !dataset_prepare_steps("csv", sin, 1, out[3], 0.25, 2, 3, err, sizeof err), "%s", err);
    check_streamed(out[0], DATA_TOKENS, 16);
    check_streamed(out[1], DATA_SEQUENCES, 12);
    check_streamed(out[2], DATA_DENSE, 5);
    check_streamed(out[3], DATA_DENSE, 3);
    check_streamed(chunked_copy(out[2]), DATA_DENSE, 5);
    free(text);
}

// The datasets /split/tokens of two files are equal, and equal to the input's bytes.
static void same_tokens(const char* a, const char* b, const char* input, size_t n)
{
    FILE* f = fopen(input, "rb");
    char* want = malloc(n);
    CHECK(f && want && fread(want, 1, n, f) == n, "%s", input);
    if (f) fclose(f);
    hid_t fa = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
    size_t at = 0;
    for (int split = 0; split < 2; split++) {
        const char* name = split ? "/val/tokens" : "/train/tokens";
        hsize_t da[2], db[2];
        uint8_t* va = read_all(fa, name, H5T_NATIVE_UINT8, 1, da);
        uint8_t* vb = read_all(fb, name, H5T_NATIVE_UINT8, 1, db);
        CHECK(da[0] == db[0] && at + da[0] <= n && !memcmp(va, vb, da[0]) &&
                  !memcmp(va, want + at, da[0]), "%s: %s and %s differ", name, a, b);
        at += da[0];
        free(va), free(vb);
    }
    CHECK(at == n, "%zu of %zu bytes", at, n);
    H5Fclose(fa), H5Fclose(fb);
    free(want);
}

// AddressSanitizer maps its shadow memory on demand, which no tight address-space limit leaves
// room for.
#ifdef __SANITIZE_ADDRESS__
enum { SANITIZED = 1 };
#else
enum { SANITIZED = 0 };
#endif

static long vm_size_kib(void)
{
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmSize:", 7)) kib = atol(line + 7);
    if (f) fclose(f);
    return kib;
}

// prepare of a 48 MiB text under an address-space limit 24 MiB above this process's (ulimit -v):
// the same file as without the limit.
static void test_prepare_memory_limit(void)
{
    enum { MIB = 1 << 20, SIZE = 48 * MIB };
    const char* in[1] = {path_of("big.txt")};
    FILE* f = fopen(in[0], "wb");
    static char block[MIB];
    unsigned seed = 3;
    for (int k = 0; k < SIZE / MIB; k++) {
        for (int i = 0; i < MIB; i++) block[i] = (char)rnd(&seed);
        CHECK(f && fwrite(block, 1, MIB, f) == MIB, "writing %s", in[0]);
    }
    if (f) fclose(f);
    char err[512] = "";
    CHECK(dataset_prepare("text", in, 1, path_of("big_free.h5"), 0.1, 0, err, sizeof err) == 0, "%s", err);
    struct rlimit was, lim;
    CHECK(getrlimit(RLIMIT_AS, &was) == 0, "getrlimit");
    lim = was;
    lim.rlim_cur = (rlim_t)(vm_size_kib() + 24 * 1024) * 1024;
    CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit");
    void* probe = malloc(SIZE); // the limit holds: the input does not fit
    CHECK(!probe, "a %d MiB allocation fits under the limit (VmSize %ld KiB)", SIZE / MIB, vm_size_kib());
    free(probe);
    int st = dataset_prepare("text", in, 1, path_of("big_lim.h5"), 0.1, 0, err, sizeof err);
    setrlimit(RLIMIT_AS, &was);
    CHECK(st == 0, "under the limit: %s", err);
    if (!st) same_tokens(path_of("big_free.h5"), path_of("big_lim.h5"), in[0], SIZE);
    remove(in[0]), remove(path_of("big_free.h5")), remove(path_of("big_lim.h5"));
}

// A prepare that must fail, with `want` and `file` in the message and no output left behind.
static void prepare_fails(const char* kind, const char* const* in, int n, int inputs,
                          const char* want, const char* file)
{
    const char* out = path_of("bad.h5");
    char err[512] = "";
    int st = dataset_prepare(kind, in, n, out, 0.25, inputs, err, sizeof err);
    CHECK(st == -1 && strstr(err, want) && strstr(err, file), "%s: got %d '%s', want '%s'", kind,
          st, err, want);
    CHECK(!exists(out) && temp_files_left() == 0, "%s: output left behind", kind);
}

static void open_fails(const char* p, const char* want)
{
    char err[512] = "";
    dataset* d = dataset_open(p, err, sizeof err);
    CHECK(!d && strstr(err, want) && strstr(err, p), "open %s: '%s', want '%s'", p, err, want);
    dataset_free(&d);
}

// An HDF5 file holding only kind = "tokens". This test writes its malformed files with raw HDF5,
// not io/h5.h: fnn prepare never writes them.
static const char* write_kind_only(void)
{
    const char* p = path_of("kind-only.h5");
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 7);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "kind", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0 && a >= 0 && H5Awrite(a, t, "tokens") >= 0, "writing %s", p);
    H5Aclose(a), H5Sclose(sp), H5Tclose(t), H5Fclose(f);
    return p;
}

// The first half of a good dataset file.
static const char* write_truncated(const char* good)
{
    FILE* f = fopen(good, "rb");
    static char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    const char* p = path_of("truncated.h5");
    FILE* g = fopen(p, "wb");
    CHECK(n > 0 && g && fwrite(buf, 1, n / 2, g) == n / 2 && !fclose(g), "writing %s", p);
    return p;
}

static void test_errors(void)
{
    const char* missing[2] = {path_of("a.txt"), path_of("missing")};
    prepare_fails("text", missing, 2, 0, "cannot open (No such file or directory)", missing[1]);
    const char* bad[1] = {write_file("bad.csv", "1,2\n3,abc\n")};
    prepare_fails("csv", bad, 1, 1, ":2: 'abc' is not a number", bad[0]);
    const char* ragged[1] = {write_file("ragged.csv", "1,2,3\n4,5\n")};
    prepare_fails("csv", ragged, 1, 1, ":2: 2 columns", ragged[0]);
    const char* none[1] = {write_file("empty", "%\n  \n%\n")};
    prepare_fails("records", none, 1, 0, "no records in", none[0]);
    const char* narrow[1] = {write_file("narrow.csv", "1,2\n")};
    prepare_fails("csv", narrow, 1, 2, "no output column", narrow[0]);
    // A failed prepare does not clobber an older output.
    const char* keep = write_file("keep.h5", "older");
    char err[512];
    CHECK(dataset_prepare("csv", bad, 1, keep, 0, 1, err, sizeof err) == -1, "bad csv accepted");
    FILE* f = fopen(keep, "rb");
    char got[8] = "";
    CHECK(f && fread(got, 1, 7, f) == 5 && !strcmp(got, "older"), "older output clobbered");
    if (f) fclose(f);
    CHECK(dataset_prepare("text", missing, 1, keep, 1.0, 0, err, sizeof err) == -1 &&
          strstr(err, "[0, 1)"), "val fraction 1 accepted: %s", err);
    CHECK(dataset_prepare("words", missing, 1, keep, 0, 0, err, sizeof err) == -1 &&
          strstr(err, "words"), "kind words accepted: %s", err);

    open_fails(path_of("nope.h5"), "cannot open (No such file or directory)");
    open_fails(path_of("a.txt"), "not an HDF5 file");
    open_fails(write_kind_only(),
               "no dataset /train/tokens (is it a dataset made by fnn prepare?)");
    open_fails(write_truncated(path_of("text.h5")), "");
    // Truncated after prepare by a few bytes: refused at open, before any window is read.
    char cmd[1200];
    const char* cut = path_of("cut.h5");
    snprintf(cmd, sizeof cmd, "cp %s %s && truncate -s -8 %s", path_of("st_text.h5"), cut, cut);
    CHECK(system(cmd) == 0, "%s", cmd);
    open_fails(cut, "truncated");
    // An input whose length is not what its size said when prepare began (a /proc file is 0).
    const char* grows[2] = {path_of("a.txt"), "/proc/self/status"};
    prepare_fails("text", grows, 2, 0, "holds more than when prepare first read it", grows[1]);
}

// A per-sequence file whose seq_len attribute is replaced by v.
static const char* write_seq_len(const char* good, int v)
{
    const char* p = path_of("seqlen.h5");
    FILE *in = fopen(good, "rb"), *o = fopen(p, "wb");
    static char buf[1 << 16];
    size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
    CHECK(n > 0 && o && fwrite(buf, 1, n, o) == n, "copying %s", good);
    if (in) fclose(in);
    if (o) fclose(o);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR);
    CHECK(f >= 0 && H5Adelete(f, "seq_len") >= 0, "%s", p);
    hid_t a = H5Acreate2(f, "seq_len", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &v) >= 0, "writing seq_len");
    H5Aclose(a), H5Sclose(sp), H5Fclose(f);
    return p;
}

// Malformed per-sequence CSVs are refused naming the file and line.
static void test_sequence_errors(void)
{
    const char* ragged[1] = {write_file("seqragged.csv", "1,2,3,4,5,6,7\n1,2,3,4,5,6,7\n1,2,3,4,5,6\n")};
    const char* narrow[1] = {write_file("seqnarrow.csv", "1,2,3,4,5,6\n")};
    const char* text[1] = {write_file("seqtext.txt", "abc")};
    const struct { const char* kind; const char* const* in; const char* want; } c[] = {
        {"csv", ragged, ":3: 6 columns, expected 7 as on the first row (one sequence per line"},
        {"csv", narrow, ":1: 6 columns, --seq-len 3 x --inputs 2 = 6 input columns leave no target"},
        {"text", text, "--seq-len 3: only for --kind csv"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        const char* out = path_of("bad.h5");
        char err[512] = "";
        int st = dataset_prepare_steps(c[i].kind, c[i].in, 1, out, 0.25, 2, 3, err, sizeof err);
        CHECK(st == -1 && strstr(err, c[i].want) && (i == 2 || strstr(err, c[i].in[0])),
              "got %d '%s', want '%s'", st, err, c[i].want);
        CHECK(!exists(out) && temp_files_left() == 0, "%s: output left behind", c[i].in[0]);
    }
    const char* bad = write_seq_len(path_of("seqs.h5"), 2);
    open_fails(bad, "with seq_len = 2, x needs seq_len rows per row of y");
    open_fails(write_seq_len(path_of("seqs.h5"), 0), "attribute seq_len must be one integer");
}

static void remove_dir(void)
{
    DIR* d = opendir(dir);
    for (struct dirent* e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') remove(path_of(e->d_name));
    if (d) closedir(d);
    rmdir(dir);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    snprintf(dir, sizeof dir, "/tmp/fnn-test-dataset.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    test_text();
    test_records();
    test_csv();
    test_streamed();
    if (!SANITIZED) test_prepare_memory_limit();
    test_errors();
    test_sequences();
    test_sequence_errors();
    remove_dir();
    if (!check_failures) printf("test_dataset: all checks passed\n");
    MPI_Finalize();
    return check_failures != 0;
}
