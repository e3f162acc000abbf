// Datasets made by `fnn prepare`, read whole into memory on every rank, and the windows cut from
// them. Training positions are a pure function of (seed, step, global row), never drawn from a
// stateful generator, so a row sees the same window however the global batch is split over DP
// replicas, and a resumed run needs only the step to continue where it stopped.
//
// Legend: T = steps in a window, B = local batch rows, D = dense inputs, O = outputs,
// N = tokens or rows of a split, n = records of a split.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/dataset.h"
#include "io/h5.h"
#include "model/mix.h"

static const char* const split_names[2] = {"train", "val"};
static const char* const kind_names[3] = {"tokens", "sequences", "dense"};

typedef struct split_data {
    long n;          // tokens, records or rows
    uint8_t* bytes;  // tokens: (N); sequences: every record's bytes, concatenated
    long* start;     // sequences: (n) offset of each record in bytes
    int32_t* lens;   // sequences: (n)
    int32_t* labels; // sequences: (n)
    real* x;         // dense: (N, D); per-sequence: (n S, D)
    real* y;         // dense: (N, O); per-sequence: (n, O)
} split_data;

struct dataset {
    int kind, D, O, nclasses;
    int seq_len;    // S of per-sequence dense targets, 0 = a stream of rows
    char** classes; // (nclasses) class names, sequences only
    split_data s[2];
    size_t held;    // bytes of both splits' arrays
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

// Reads all of dataset /split/what (rank 1 or 2, elements e) into a new buffer at *out; float
// data must be finite. *held counts the bytes read (dataset_bytes).
static int read_array(h5file* h, int split, const char* what, h5_elem e, int rank,
                      uint64_t dims[2], void** out, size_t* held)
{
    static const size_t elem_size[] = {sizeof(uint8_t), sizeof(int32_t), sizeof(real)};
    char name[64];
    snprintf(name, sizeof name, "/%s/%s", split_names[split], what);
    *out = NULL;
    if (!h5_exists(h, name))
        return h5_fail(h, "no dataset %s (is it a dataset made by fnn prepare?)", name);
    uint64_t stored;
    if (h5_array_shape(h, name, rank, e, dims, &stored)) return -1;
    // Sizes from the file index int rows and columns, and their product must not wrap.
    if (dims[0] > INT32_MAX || dims[1] > INT32_MAX || (dims[1] && dims[0] > (1ull << 40) / dims[1]))
        return h5_fail(h, "dataset %s is %llu x %llu: too large", name,
                       (unsigned long long)dims[0], (unsigned long long)dims[1]);
    size_t count = (size_t)dims[0] * dims[1];
    // A dataset whose storage was never written claims any size at no cost in the file.
    if (count && stored == 0) return h5_fail(h, "dataset %s holds no stored data", name);
    *out = zalloc(count, elem_size[e]);
    if (!*out) return h5_fail(h, "out of memory for dataset %s", name);
    *held += count * elem_size[e];
    if (count) h5_array_read(h, name, e, *out);
    if (h->failed) return -1;
    for (size_t i = 0; e == ELEM_F32 && i < count; i++)
        if (!isfinite(((real*)*out)[i]))
            return h5_fail(h, "dataset %s holds a non-finite value (NaN or Inf) at row %zu, "
                           "column %zu", name, i / (size_t)dims[1], i % (size_t)dims[1]);
    return 0;
}

static int read_tokens(h5file* h, split_data* s, int split, size_t* held)
{
    uint64_t dims[2];
    if (read_array(h, split, "tokens", ELEM_U8, 1, dims, (void**)&s->bytes, held)) return -1;
    s->n = (long)dims[0];
    return 0;
}

// Checks lens and labels against the bytes and the classes, and indexes each record's start.
static int index_records(h5file* h, const dataset* d, split_data* s, int split, long nbytes,
                         size_t* held)
{
    s->start = zalloc((size_t)s->n, sizeof *s->start);
    if (!s->start) return h5_fail(h, "out of memory");
    *held += (size_t)s->n * sizeof *s->start;
    long off = 0;
    for (long i = 0; i < s->n; i++) {
        if (s->lens[i] < 0 || s->labels[i] < 0 || s->labels[i] >= d->nclasses)
            return h5_fail(h, "/%s record %ld: length %d, label %d (of %d classes)",
                           split_names[split], i, s->lens[i], s->labels[i], d->nclasses);
        s->start[i] = off;
        off += s->lens[i];
    }
    if (off != nbytes)
        return h5_fail(h, "/%s/lens add up to %ld bytes, /%s/seqs holds %ld", split_names[split],
                       off, split_names[split], nbytes);
    return 0;
}

static int read_sequences(h5file* h, const dataset* d, split_data* s, int split, size_t* held)
{
    uint64_t nb[2], nl[2], nt[2];
    if (read_array(h, split, "seqs", ELEM_U8, 1, nb, (void**)&s->bytes, held) ||
        read_array(h, split, "lens", ELEM_I32, 1, nl, (void**)&s->lens, held) ||
        read_array(h, split, "labels", ELEM_I32, 1, nt, (void**)&s->labels, held))
        return -1;
    if (nl[0] != nt[0])
        return h5_fail(h, "/%s/lens has %lu records, /%s/labels %lu", split_names[split],
                       (unsigned long)nl[0], split_names[split], (unsigned long)nt[0]);
    s->n = (long)nl[0];
    return index_records(h, d, s, split, (long)nb[0], held);
}

static int read_dense(h5file* h, dataset* d, split_data* s, int split, size_t* held)
{
    uint64_t dx[2], dy[2];
    if (read_array(h, split, "x", ELEM_F32, 2, dx, (void**)&s->x, held) ||
        read_array(h, split, "y", ELEM_F32, 2, dy, (void**)&s->y, held))
        return -1;
    if (split == SPLIT_TRAIN) d->D = (int)dx[1], d->O = (int)dy[1];
    const uint64_t S = d->seq_len ? (uint64_t)d->seq_len : 1; // rows of x per row of y
    if (d->seq_len && dx[0] != dy[0] * S)
        return h5_fail(h, "/%s/x has %lu rows and /%s/y %lu: with seq_len = %d, x needs seq_len "
                       "rows per row of y", split_names[split], (unsigned long)dx[0],
                       split_names[split], (unsigned long)dy[0], d->seq_len);
    if (dx[0] != dy[0] * S || (int)dx[1] != d->D || (int)dy[1] != d->O || d->D < 1 || d->O < 1)
        return h5_fail(h, "/%s/x is %lu x %lu and /%s/y %lu x %lu: need the same rows, and "
                       "columns as in /train", split_names[split], (unsigned long)dx[0],
                       (unsigned long)dx[1], split_names[split], (unsigned long)dy[0],
                       (unsigned long)dy[1]);
    s->n = (long)dy[0];
    return 0;
}

static int read_split(h5file* h, dataset* d, int split, size_t* held)
{
    split_data* s = &d->s[split];
    if (d->kind == DATA_TOKENS) return read_tokens(h, s, split, held);
    if (d->kind == DATA_SEQUENCES) return read_sequences(h, d, s, split, held);
    return read_dense(h, d, s, split, held);
}

dataset* dataset_open(const char* path, char* err, size_t errlen)
{
    h5file h;
    size_t held = 0; // bytes of the arrays read so far (dataset_bytes)
    dataset* d = NULL;
    int st = h5_open_local(&h, path, err, errlen);
    if (!st && !(d = calloc(1, sizeof *d))) st = h5_fail(&h, "out of memory");
    if (!st) st = read_kind(&h, d);
    if (!st) st = read_seq_len(&h, d);
    for (int split = 0; split < 2 && !st; split++) st = read_split(&h, d, split, &held);
    if (h5_close(&h)) dataset_free(&d);
    else d->held = held;
    return d;
}

void dataset_free(dataset** d)
{
    if (!*d) return;
    for (int i = 0; i < 2; i++) {
        split_data* s = &(*d)->s[i];
        free(s->bytes), free(s->start), free(s->lens), free(s->labels), free(s->x), free(s->y);
    }
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
    memset(b, 0, sizeof *b);
}

// Row r of b <- the T + 1 tokens from pos: inputs tokens[pos..pos+T), targets one later.
static void fill_tokens(const split_data* s, data_batch* b, int r, long pos)
{
    for (int t = 0; t < b->T; t++) {
        b->tokens[(size_t)t * b->B + r] = s->bytes[pos + t];
        b->next[(size_t)t * b->B + r] = s->bytes[pos + t + 1];
    }
}

// Row r of b <- record k truncated to T bytes and zero-padded, scored at its last byte.
static void fill_record(const split_data* s, data_batch* b, int r, long k)
{
    int len = s->lens[k] < b->T ? s->lens[k] : b->T;
    const uint8_t* src = s->bytes + s->start[k];
    for (int t = 0; t < b->T; t++) b->tokens[(size_t)t * b->B + r] = t < len ? src[t] : 0;
    b->label[r] = s->labels[k];
    b->last[r] = len > 0 ? len - 1 : 0;
}

// Row r of b <- rows [pos, pos + T) of x and y.
static void fill_dense(const dataset* d, const split_data* s, data_batch* b, int r, long pos)
{
    for (int t = 0; t < b->T; t++) {
        size_t row = (size_t)t * b->B + r;
        memcpy(b->dense + row * d->D, s->x + (size_t)(pos + t) * d->D, d->D * sizeof(real));
        memcpy(b->target + row * d->O, s->y + (size_t)(pos + t) * d->O, d->O * sizeof(real));
    }
}

// Row r of b <- sequence k (T = S steps of x); its target at the last step, zeros before it.
static void fill_sequence(const dataset* d, const split_data* s, data_batch* b, int r, long k)
{
    for (int t = 0; t < b->T; t++) {
        size_t row = (size_t)t * b->B + r;
        memcpy(b->dense + row * d->D, s->x + ((size_t)k * d->seq_len + t) * d->D,
               d->D * sizeof(real));
        if (t + 1 < b->T) memset(b->target + row * d->O, 0, d->O * sizeof(real));
        else memcpy(b->target + row * d->O, s->y + (size_t)k * d->O, d->O * sizeof(real));
    }
}

// pos is a stream position (tokens, dense) or a record or sequence index.
static void fill_row(const dataset* d, const split_data* s, data_batch* b, int r, long pos)
{
    if (d->kind == DATA_TOKENS) fill_tokens(s, b, r, pos);
    else if (d->kind == DATA_SEQUENCES) fill_record(s, b, r, pos);
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
