// Datasets made by `fnn prepare`, and the windows cut from them. The file stays open while the
// dataset is: each window's rows are read from it when drawn (h5_rows_read: pread at the data's
// file offset), so a rank holds one window, not the split, and the ranks of a node share the
// file through the kernel's page cache. Records keep their index (offset, length and label per
// record) in memory; their bytes are read per window like tokens and dense rows. Training
// positions are a pure function of (seed, step, global row), never drawn from a stateful
// generator, so a row sees the same window however the global batch is split over DP replicas,
// and a resumed run needs only the step to continue where it stopped.
//
// Legend: T = steps in a window, B = local batch rows, D = dense inputs, O = outputs,
// N = tokens or rows of a split, n = records of a split.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dist/dist.h"
#include "io/dataset.h"
#include "io/h5.h"
#include "model/mix.h"

static const char* const split_names[2] = {"train", "val"};
static const char* const kind_names[3] = {"tokens", "sequences", "dense"};

typedef struct split_data {
    long n;          // tokens, records or rows
    h5_rows bytes;   // tokens: (N); sequences: every record's bytes, concatenated
    int64_t* start;  // sequences: (n) offset of each record in bytes
    int32_t* lens;   // sequences: (n)
    int32_t* labels; // sequences: (n)
    h5_rows x;       // dense: (N, D); per-sequence: (n S, D)
    h5_rows y;       // dense: (N, O); per-sequence: (n, O)
} split_data;

struct dataset {
    int kind, D, O, nclasses;
    int seq_len;    // S of per-sequence dense targets, 0 = a stream of rows
    char** classes; // (nclasses) class names, sequences only
    split_data s[2];
    size_t held;    // bytes held in memory: the records' index
    h5file* h;      // open while the dataset is, for the windows' reads
    int opened;     // h5_open_local was called on h (h5_close then closes it, failed or not)
    char* path;     // h's name for the file in messages
    char err[1024]; // h's message of a failed read
};

// calloc that never answers NULL for an empty request, so NULL always means out of memory.
static void* zalloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

// The root's fixed-length string attribute name, one string per element (a scalar is one).
static int read_strings(h5file* h, const char* name, char*** out, int* count)
{
    if (!h5_has_attr(h, "/", name))
        return h5_fail(h, "no attribute %s (is it a dataset made by fnn prepare?)", name);
    *count = h5_get_strs(h, "/", name, out);
    return *count < 0 ? -1 : 0;
}

static int read_kind(h5file* h, dataset* d)
{
    char** s;
    int n;
    if (read_strings(h, "kind", &s, &n)) return -1;
    d->kind = -1;
    for (int k = 0; k < 3; k++)
        if (!strcmp(s[0], kind_names[k])) d->kind = k;
    if (d->kind < 0) h5_fail(h, "unknown kind '%s' (tokens, sequences or dense)", s[0]);
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
    if (d->kind < 0) return -1;
    return d->kind == DATA_SEQUENCES ? read_strings(h, "classes", &d->classes, &d->nclasses) : 0;
}

// The root attribute "seq_len" of per-sequence dense targets, if there is one.
static int read_seq_len(h5file* h, dataset* d)
{
    if (d->kind != DATA_DENSE || !h5_has_attr(h, "/", "seq_len")) return 0;
    long v = h5_get_long(h, "/", "seq_len");
    if (h->failed) return -1;
    if (v < 1 || v > 1 << 24)
        return h5_fail(h, "attribute seq_len must be one integer in 1..%d", 1 << 24);
    d->seq_len = (int)v;
    return 0;
}

// Opens dataset /split/what (rank 1 or 2, elements e) for reading rows: its shape, its type, and
// that it stores the data it declares.
static int open_array(h5file* h, int split, const char* what, h5_elem e, int rank, h5_rows* r)
{
    char name[64];
    snprintf(name, sizeof name, "/%s/%s", split_names[split], what);
    *r = (h5_rows){.ds = -1, .fd = -1}; // closed, whatever fails below
    if (!h5_exists(h, name))
        return h5_fail(h, "no dataset %s (is it a dataset made by fnn prepare?)", name);
    if (h5_rows_open(h, name, rank, e, r)) return -1;
    // Sizes from the file index int columns, and the bytes of a window's rows must not wrap.
    if (r->cols > INT32_MAX || (r->cols && r->rows > (UINT64_C(1) << 60) / r->cols))
        return h5_fail(h, "dataset %s is %llu x %llu: too large", name,
                       (unsigned long long)r->rows, (unsigned long long)r->cols);
    // A dataset whose storage was never written claims any size at no cost in the file.
    if (r->rows && r->cols && r->stored == 0)
        return h5_fail(h, "dataset %s holds no stored data", name);
    return 0;
}

// Float data must be finite: checked once at open, a block of rows at a time, so that a bad value
// is refused by every rank before training rather than by the one rank whose window meets it.
static int check_finite(h5file* h, const h5_rows* r)
{
    const uint64_t block = r->cols ? (UINT64_C(1) << 18) / r->cols + 1 : 1;
    float* buf = malloc(block * r->cols * sizeof *buf);
    if (!buf) return h5_fail(h, "out of memory");
    int st = 0;
    for (uint64_t r0 = 0; r0 < r->rows && !st; r0 += block) {
        uint64_t n = r->rows - r0 < block ? r->rows - r0 : block;
        st = h5_rows_read(h, r, r0, n, buf);
        for (uint64_t i = 0; !st && i < n * r->cols; i++)
            if (!isfinite(buf[i]))
                st = h5_fail(h, "dataset %s holds a non-finite value (NaN or Inf) at row %llu, "
                             "column %llu", r->name, (unsigned long long)(r0 + i / r->cols),
                             (unsigned long long)(i % r->cols));
    }
    free(buf);
    return st;
}

// All of a small int32 dataset (a record index) into memory; *held counts its bytes.
static int read_index(h5file* h, int split, const char* what, int32_t** out, uint64_t* n,
                      size_t* held)
{
    h5_rows r;
    int st = open_array(h, split, what, ELEM_I32, 1, &r);
    *n = st ? 0 : r.rows;
    *out = st ? NULL : malloc((*n ? *n : 1) * sizeof **out);
    if (!st && !*out) st = h5_fail(h, "out of memory for dataset %s", r.name);
    if (!st) st = h5_rows_read(h, &r, 0, *n, *out);
    *held += *n * sizeof **out;
    h5_rows_close(&r);
    return st;
}

static int read_tokens(h5file* h, split_data* s, int split)
{
    if (open_array(h, split, "tokens", ELEM_U8, 1, &s->bytes)) return -1;
    s->n = (long)s->bytes.rows;
    return 0;
}

// Checks lens and labels against the bytes and the classes, and indexes each record's start.
static int index_records(h5file* h, const dataset* d, split_data* s, int split, uint64_t nbytes,
                         size_t* held)
{
    s->start = malloc((s->n ? (size_t)s->n : 1) * sizeof *s->start);
    if (!s->start) return h5_fail(h, "out of memory");
    *held += (size_t)s->n * sizeof *s->start;
    uint64_t off = 0;
    for (long i = 0; i < s->n; i++) {
        if (s->lens[i] < 0 || s->labels[i] < 0 || s->labels[i] >= d->nclasses)
            return h5_fail(h, "/%s record %ld: length %d, label %d (of %d classes)",
                           split_names[split], i, s->lens[i], s->labels[i], d->nclasses);
        s->start[i] = (int64_t)off;
        off += (uint64_t)s->lens[i];
    }
    if (off != nbytes)
        return h5_fail(h, "/%s/lens add up to %llu bytes, /%s/seqs holds %llu",
                       split_names[split], (unsigned long long)off, split_names[split],
                       (unsigned long long)nbytes);
    return 0;
}

static int read_sequences(h5file* h, const dataset* d, split_data* s, int split, size_t* held)
{
    uint64_t nl, nt;
    if (open_array(h, split, "seqs", ELEM_U8, 1, &s->bytes) ||
        read_index(h, split, "lens", &s->lens, &nl, held) ||
        read_index(h, split, "labels", &s->labels, &nt, held))
        return -1;
    if (nl != nt)
        return h5_fail(h, "/%s/lens has %llu records, /%s/labels %llu", split_names[split],
                       (unsigned long long)nl, split_names[split], (unsigned long long)nt);
    s->n = (long)nl;
    return index_records(h, d, s, split, s->bytes.rows, held);
}

static int read_dense(h5file* h, dataset* d, split_data* s, int split)
{
    if (open_array(h, split, "x", ELEM_F32, 2, &s->x) ||
        open_array(h, split, "y", ELEM_F32, 2, &s->y))
        return -1;
    const uint64_t dx[2] = {s->x.rows, s->x.cols}, dy[2] = {s->y.rows, s->y.cols};
    if (split == SPLIT_TRAIN) d->D = (int)dx[1], d->O = (int)dy[1];
    const uint64_t S = d->seq_len ? (uint64_t)d->seq_len : 1; // rows of x per row of y
    if (d->seq_len && dx[0] != dy[0] * S)
        return h5_fail(h, "/%s/x has %llu rows and /%s/y %llu: with seq_len = %d, x needs "
                       "seq_len rows per row of y", split_names[split], (unsigned long long)dx[0],
                       split_names[split], (unsigned long long)dy[0], d->seq_len);
    if (dx[0] != dy[0] * S || (int)dx[1] != d->D || (int)dy[1] != d->O || d->D < 1 || d->O < 1)
        return h5_fail(h, "/%s/x is %llu x %llu and /%s/y %llu x %llu: need the same rows, and "
                       "columns as in /train", split_names[split], (unsigned long long)dx[0],
                       (unsigned long long)dx[1], split_names[split], (unsigned long long)dy[0],
                       (unsigned long long)dy[1]);
    s->n = (long)dy[0];
    return check_finite(h, &s->x) || check_finite(h, &s->y) ? -1 : 0;
}

static int read_split(h5file* h, dataset* d, int split, size_t* held)
{
    split_data* s = &d->s[split];
    if (d->kind == DATA_TOKENS) return read_tokens(h, s, split);
    if (d->kind == DATA_SEQUENCES) return read_sequences(h, d, s, split, held);
    return read_dense(h, d, s, split);
}

static void close_splits(dataset* d)
{
    for (int i = 0; i < 2; i++) {
        split_data* s = &d->s[i];
        h5_rows_close(&s->bytes), h5_rows_close(&s->x), h5_rows_close(&s->y);
    }
}

static void reset_splits(dataset* d)
{
    for (int i = 0; i < 2; i++) {
        split_data* s = &d->s[i];
        s->bytes.ds = s->x.ds = s->y.ds = -1;
        s->bytes.fd = s->x.fd = s->y.fd = -1;
    }
}

dataset* dataset_open(const char* path, char* err, size_t errlen)
{
    dataset* d = calloc(1, sizeof *d);
    if (d) reset_splits(d);
    if (!d || !(d->h = calloc(1, sizeof *d->h)) || !(d->path = strdup(path))) {
        snprintf(err, errlen, "%s: out of memory", path);
        dataset_free(&d);
        return NULL;
    }
    d->opened = 1;
    int st = h5_open_local(d->h, d->path, d->err, sizeof d->err);
    if (!st) st = read_kind(d->h, d);
    if (!st) st = read_seq_len(d->h, d);
    for (int split = 0; split < 2 && !st; split++) st = read_split(d->h, d, split, &d->held);
    if (st) {
        snprintf(err, errlen, "%s", d->err);
        dataset_free(&d);
    }
    return d;
}

void dataset_free(dataset** d)
{
    if (!*d) return;
    close_splits(*d);
    for (int i = 0; i < 2; i++) {
        split_data* s = &(*d)->s[i];
        free(s->start), free(s->lens), free(s->labels);
    }
    if ((*d)->opened) h5_close((*d)->h);
    free((*d)->h);
    free((*d)->path);
    for (int k = 0; (*d)->classes && k < (*d)->nclasses; k++) free((*d)->classes[k]);
    free((*d)->classes);
    free(*d);
    *d = NULL;
}

int dataset_kind(const dataset* d)
{
    return d->kind;
}

int dataset_inputs(const dataset* d)
{
    return d->kind == DATA_DENSE ? d->D : 0;
}

int dataset_outputs(const dataset* d)
{
    if (d->kind == DATA_TOKENS) return BYTE_VOCAB;
    return d->kind == DATA_SEQUENCES ? d->nclasses : d->O;
}

size_t dataset_bytes(const dataset* d)
{
    return d->held;
}

int dataset_seq_len(const dataset* d)
{
    return d->seq_len;
}

int dataset_nclasses(const dataset* d)
{
    return d->kind == DATA_SEQUENCES ? d->nclasses : 0;
}

const char* dataset_class_name(const dataset* d, int k)
{
    return k >= 0 && k < dataset_nclasses(d) ? d->classes[k] : NULL;
}

int dataset_task(const dataset* d)
{
    static const int task_of_kind[3] = {TASK_LM, TASK_CLASSIFY, TASK_REGRESS};
    return task_of_kind[d->kind];
}

long dataset_length(const dataset* d, int split)
{
    return d->s[split].n;
}

long dataset_windows(const dataset* d, int split, int T)
{
    long n = d->s[split].n;
    if (d->kind == DATA_SEQUENCES) return n;
    if (d->kind == DATA_TOKENS) return n > T ? (n - 1) / T : 0; // T + 1 tokens make one window
    if (d->seq_len) return T == d->seq_len ? n : 0;
    return n / T;
}

// ------------------------------------------------------------------------------------------------
// Batches

int data_batch_init(data_batch* b, const dataset* d, int T, int B)
{
    memset(b, 0, sizeof *b);
    b->T = T;
    b->B = B;
    size_t tb = (size_t)T * B;
    int bad = 0;
    if (d->kind != DATA_DENSE) {
        b->tokens = zalloc(tb, sizeof *b->tokens);
        bad = !b->tokens;
    }
    if (d->kind == DATA_TOKENS) {
        b->next = zalloc(tb, sizeof *b->next);
        bad |= !b->next;
    } else if (d->kind == DATA_SEQUENCES) {
        b->label = zalloc((size_t)B, sizeof *b->label);
        b->last = zalloc((size_t)B, sizeof *b->last);
        bad |= !b->label || !b->last;
    } else {
        b->dense = zalloc(tb * d->D, sizeof *b->dense);
        b->target = zalloc(tb * d->O, sizeof *b->target);
        b->last = zalloc((size_t)B, sizeof *b->last);
        bad |= !b->dense || !b->target || !b->last;
        for (int r = 0; !bad && r < B; r++) b->last[r] = T - 1;
    }
    // One window's rows as read from the file: T + 1 tokens, T bytes of a record, or T rows of
    // x or of y.
    size_t cols = d->kind == DATA_DENSE ? (size_t)(d->D > d->O ? d->D : d->O) : 1;
    b->scratch = zalloc((size_t)T * cols + 1, d->kind == DATA_DENSE ? sizeof(real) : 1);
    bad |= !b->scratch;
    if (bad) {
        data_batch_free(b);
        return -1;
    }
    b->view = (model_batch){.T = T, .tokens = b->tokens, .dense = b->dense, .next = b->next,
                            .target = b->target, .label = b->label, .last = b->last};
    if (d->kind == DATA_DENSE && !d->seq_len) b->view.last = NULL; // every step is scored
    return 0;
}

void data_batch_score_last(data_batch* b)
{
    if (b->dense) b->view.last = b->last;
}

void data_batch_free(data_batch* b)
{
    free(b->tokens), free(b->next), free(b->label), free(b->last), free(b->dense), free(b->target);
    free(b->scratch);
    memset(b, 0, sizeof *b);
}

// Rows [row0, row0 + n) of r into out. A read fails only when the file changed after it was
// opened and checked (truncated while in use): the job ends with the file named.
static void read_rows(const dataset* d, const h5_rows* r, uint64_t row0, uint64_t n, void* out)
{
    if (h5_rows_read(d->h, r, row0, n, out)) dist_fail("%s", d->err);
}

// Row r of b <- the T + 1 tokens from pos: inputs tokens[pos..pos+T), targets one later.
static void fill_tokens(const dataset* d, const split_data* s, data_batch* b, int r, long pos)
{
    const uint8_t* src = b->scratch;
    read_rows(d, &s->bytes, (uint64_t)pos, (uint64_t)b->T + 1, b->scratch);
    for (int t = 0; t < b->T; t++) {
        b->tokens[(size_t)t * b->B + r] = src[t];
        b->next[(size_t)t * b->B + r] = src[t + 1];
    }
}

// Row r of b <- record k truncated to T bytes and zero-padded, scored at its last byte.
static void fill_record(const dataset* d, const split_data* s, data_batch* b, int r, long k)
{
    int len = s->lens[k] < b->T ? s->lens[k] : b->T;
    const uint8_t* src = b->scratch;
    read_rows(d, &s->bytes, (uint64_t)s->start[k], (uint64_t)len, b->scratch);
    for (int t = 0; t < b->T; t++) b->tokens[(size_t)t * b->B + r] = t < len ? src[t] : 0;
    b->label[r] = s->labels[k];
    b->last[r] = len > 0 ? len - 1 : 0;
}

// Row r of dst (T rows of `cols`, B windows) <- T consecutive rows of r from row0.
static void fill_steps(const dataset* d, const h5_rows* r, uint64_t row0, data_batch* b, int row,
                       real* dst, int cols)
{
    const real* src = b->scratch;
    read_rows(d, r, row0, (uint64_t)b->T, b->scratch);
    for (int t = 0; t < b->T; t++)
        memcpy(dst + ((size_t)t * b->B + row) * cols, src + (size_t)t * cols, cols * sizeof(real));
}

// Row r of b <- rows [pos, pos + T) of x and y.
static void fill_dense(const dataset* d, const split_data* s, data_batch* b, int r, long pos)
{
    fill_steps(d, &s->x, (uint64_t)pos, b, r, b->dense, d->D);
    fill_steps(d, &s->y, (uint64_t)pos, b, r, b->target, d->O);
}

// Row r of b <- sequence k (T = S steps of x); its target at the last step, zeros before it.
static void fill_sequence(const dataset* d, const split_data* s, data_batch* b, int r, long k)
{
    fill_steps(d, &s->x, (uint64_t)k * (uint64_t)d->seq_len, b, r, b->dense, d->D);
    for (int t = 0; t + 1 < b->T; t++)
        memset(b->target + ((size_t)t * b->B + r) * d->O, 0, d->O * sizeof(real));
    real* last = b->target + ((size_t)(b->T - 1) * b->B + r) * d->O;
    read_rows(d, &s->y, (uint64_t)k, 1, last);
}

// pos is a stream position (tokens, dense) or a record or sequence index.
static void fill_row(const dataset* d, const split_data* s, data_batch* b, int r, long pos)
{
    if (d->kind == DATA_TOKENS) fill_tokens(d, s, b, r, pos);
    else if (d->kind == DATA_SEQUENCES) fill_record(d, s, b, r, pos);
    else if (d->seq_len) fill_sequence(d, s, b, r, pos);
    else fill_dense(d, s, b, r, pos);
}

// A split too short for one window gives all-zero rows rather than reading past its end; the
// trainer refuses such a split up front (dataset_windows = 0) and evaluation scores no row of it.
static void zero_batch(const dataset* d, data_batch* b)
{
    size_t tb = (size_t)b->T * b->B;
    if (b->tokens) memset(b->tokens, 0, tb * sizeof *b->tokens);
    if (b->next) memset(b->next, 0, tb * sizeof *b->next);
    if (b->label) memset(b->label, 0, b->B * sizeof *b->label);
    if (d->kind == DATA_SEQUENCES) memset(b->last, 0, b->B * sizeof *b->last);
    if (b->dense) memset(b->dense, 0, tb * d->D * sizeof *b->dense);
    if (b->target) memset(b->target, 0, tb * d->O * sizeof *b->target);
}

static uint64_t hash3(uint64_t seed, uint64_t a, uint64_t b)
{
    return splitmix64(splitmix64(splitmix64(seed) ^ a) ^ b);
}

// Training position of global row `row` at `step`, one of `span` possible starts. With carry the
// row is a stream: an origin of its own, advancing `stride` (a window) per step, so consecutive
// steps of a row read consecutive windows. At the end of the split it wraps to the start
// (modulo span), and that one window does not continue the previous one.
static long train_pos(uint64_t seed, long step, long row, long span, long stride, int carry)
{
    uint64_t n = (uint64_t)span;
    if (!carry) return (long)(hash3(seed, (uint64_t)step, (uint64_t)row) % n);
    uint64_t origin = hash3(seed, UINT64_MAX, (uint64_t)row) % n; // no step reaches UINT64_MAX
    return (long)((origin + (uint64_t)step * (uint64_t)stride) % n);
}

void dataset_train_batch(const dataset* d, data_batch* b, uint64_t seed, long step, int row0,
                         int carry)
{
    const split_data* s = &d->s[SPLIT_TRAIN];
    long T = b->T, span, stride = T;
    if (d->kind == DATA_TOKENS) span = s->n - T; // the window needs T + 1 tokens
    else if (d->kind == DATA_DENSE && !d->seq_len) span = s->n - T + 1;
    else span = dataset_windows(d, SPLIT_TRAIN, b->T), stride = 1; // whole records or sequences
    if (span <= 0) {
        zero_batch(d, b);
        return;
    }
    for (int r = 0; r < b->B; r++)
        fill_row(d, s, b, r, train_pos(seed, step, (long)row0 + r, span, stride, carry));
}

void dataset_eval_batch(const dataset* d, data_batch* b, int split, long first, int row0)
{
    long n = dataset_windows(d, split, b->T);
    long stride = d->kind == DATA_SEQUENCES || d->seq_len ? 1 : b->T;
    if (n <= 0) {
        zero_batch(d, b);
        return;
    }
    for (int r = 0; r < b->B; r++) {
        long k = first + row0 + r;
        fill_row(d, &d->s[split], b, r, (k < n ? k : n - 1) * stride);
    }
}
