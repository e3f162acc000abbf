// `fnn prepare`: text, fortune records or CSV rows -> one HDF5 dataset (layout in io/dataset.h).
// Inputs are streamed twice, never held whole: a first pass counts what each file holds (its
// size for text, its records' lengths, its rows) and checks it, which fixes every dataset's shape
// and the train/val cut of each file; the second pass writes the data a block at a time into
// contiguous datasets of those shapes. Memory stays a few MiB whatever the corpus (records:
// one record and 8 bytes per record for the lengths and labels, written whole). An input that
// reads differently the second time (changed while read, or a /proc file whose size says 0) is
// refused by name. The output is written under "<out>.tmp.<pid>" and renamed, so a failure leaves
// neither a partial file nor a clobbered older one.
//
// Strings ("kind", "classes") are fixed-length, NUL-terminated HDF5 strings: "kind" a scalar,
// "classes" a 1-D array as wide as the longest name, so readers need no variable-length memory.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/dataset.h"
#include "io/errmsg.h"
#include "io/h5.h"
#include "io/paths.h"

// A growable byte buffer. Allocation failures are sticky: check oom once after a file.
typedef struct grow {
    char* p;
    size_t n, cap;
    int oom;
} grow;

static void grow_push(grow* g, const void* src, size_t n)
{
    if (g->oom || !n) return;
    if (g->n + n > g->cap) {
        size_t cap = g->cap ? g->cap : 4096;
        while (cap < g->n + n) cap *= 2;
        char* p = realloc(g->p, cap);
        if (!p) {
            g->oom = 1;
            return;
        }
        g->p = p, g->cap = cap;
    }
    memcpy(g->p + g->n, src, n);
    g->n += n;
}

static void grow_push_i32(grow* g, int32_t v)
{
    grow_push(g, &v, sizeof v);
}

// A dataset written a block of rows at a time, in order.
typedef struct sink {
    h5_rows r;
    uint64_t at;      // rows pushed
    grow buf;         // rows pushed and not yet written
    size_t row_bytes;
} sink;

typedef struct split_out {
    uint64_t n;        // tokens, records, rows or sequences (first pass)
    uint64_t bytes;    // records: their bytes (first pass)
    grow lens, labels; // records: int32 each (first pass), written whole
    sink a, b;         // tokens, records' bytes, or x and y (second pass)
    uint64_t done;     // records: read in the second pass
} split_out;

typedef struct prep {
    split_out s[2];
    double val_fraction;
    int inputs;        // csv: leading columns that are inputs (per step)
    int steps;         // csv: steps per line (one sequence per line), 0 = one row per line
    int cols;          // csv: columns of every row, 0 before the first row
    const char** classes;
    int nclasses;
    uint64_t* count;   // (inputs) what the first pass found in each: bytes, records or rows
    h5file* h;         // the output, in the second pass
    char* err;
    size_t errlen;
} prep;

// The messages name their input file and line themselves.
#define fail(p, ...) errmsg((p)->err, (p)->errlen, NULL, __VA_ARGS__)

static FILE* open_input(prep* p, const char* path)
{
    char why[256];
    // A FIFO would block the open, a device feed it without end.
    if (paths_check_kind(path, PATHS_FILE, 0, why, sizeof why)) {
        fail(p, "%s: %s", path, why);
        return NULL;
    }
    FILE* fp = fopen(path, "rb");
    if (!fp) fail(p, "%s: cannot open (%s)", path, strerror(errno));
    return fp;
}

// The second pass found `now` items of input i (unit: "bytes", "records", "rows") where the
// first found count[i].
static int same_count(prep* p, const char* path, int i, uint64_t now, const char* unit)
{
    if (now == p->count[i]) return 0;
    return fail(p, "%s: %llu %s, but %llu when prepare first read it (did it change while being "
                "read?)", path, (unsigned long long)now, unit, (unsigned long long)p->count[i]);
}

// Items [0, count) of a file go to train, the last floor(count * val_fraction) to val.
static uint64_t val_start(const prep* p, uint64_t count)
{
    return count - (uint64_t)(count * p->val_fraction);
}

static void sink_flush(prep* p, sink* k)
{
    uint64_t rows = k->buf.n / k->row_bytes;
    h5_rows_write(p->h, &k->r, k->at - rows, rows, k->buf.p);
    k->buf.n = 0;
}

// Appends rows to k (written a MiB at a time); more rows than its dataset holds means that an
// input grew since the first pass: path is named.
static int sink_push(prep* p, sink* k, const void* src, uint64_t rows, const char* path)
{
    if (rows > k->r.rows - k->at)
        return fail(p, "%s: holds more than when prepare first read it (did it change while being "
                    "read?)", path);
    grow_push(&k->buf, src, rows * k->row_bytes);
    if (k->buf.oom) return fail(p, "%s: out of memory", path);
    k->at += rows;
    if (k->buf.n >= (1u << 20)) sink_flush(p, k);
    return p->h->failed ? -1 : 0;
}

// ------------------------------------------------------------------------------------------------
// Text

static int count_text(prep* p, const char* path, int i)
{
    FILE* fp = open_input(p, path);
    struct stat st;
    if (!fp) return -1;
    int bad = fstat(fileno(fp), &st);
    fclose(fp);
    if (bad) return fail(p, "%s: cannot stat (%s)", path, strerror(errno));
    uint64_t n = (uint64_t)st.st_size, cut = val_start(p, n);
    p->count[i] = n;
    p->s[SPLIT_TRAIN].n += cut;
    p->s[SPLIT_VAL].n += n - cut;
    return 0;
}

static int write_text(prep* p, const char* path, int i)
{
    FILE* fp = open_input(p, path);
    if (!fp) return -1;
    const uint64_t cut = val_start(p, p->count[i]);
    static char chunk[1 << 16];
    uint64_t at = 0;
    size_t n;
    int st = 0;
    while (!st && (n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        size_t train = at >= cut ? 0 : cut - at < n ? (size_t)(cut - at) : n;
        st = sink_push(p, &p->s[SPLIT_TRAIN].a, chunk, train, path);
        if (!st) st = sink_push(p, &p->s[SPLIT_VAL].a, chunk + train, n - train, path);
        at += n;
    }
    if (!st && ferror(fp)) st = fail(p, "%s: read error", path);
    fclose(fp);
    return st ? -1 : same_count(p, path, i, at, "bytes");
}
// ------------------------------------------------------------------------------------------------
// Records

// Calls line(p, ctx, text, len, lineno) for every line of path, its newline included (the last
// one may lack it), holding one line at a time.
typedef int (*line_fn)(prep* p, void* ctx, const char* text, size_t len, long lineno);

static int each_line(prep* p, const char* path, line_fn line, void* ctx)
{
    FILE* fp = open_input(p, path);
    if (!fp) return -1;
    char* buf = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int st = 0;
    errno = 0;
    while (!st && (len = getline(&buf, &cap, fp)) >= 0) st = line(p, ctx, buf, (size_t)len, ++lineno);
    if (!st && errno == ENOMEM) st = fail(p, "%s: out of memory", path);
    else if (!st && ferror(fp)) st = fail(p, "%s: read error", path);
    free(buf);
    fclose(fp);
    return st;
}

// A record is handed on trimmed of leading and trailing whitespace; empty ones are dropped.
typedef int (*record_fn)(prep* p, void* ctx, const char* text, size_t len);

typedef struct record_reader {
    grow text;         // the record so far
    record_fn record;
    void* ctx;
    const char* path;
} record_reader;

static int end_record(prep* p, record_reader* rr)
{
    size_t a = 0, b = rr->text.n;
    const char* t = rr->text.p;
    while (a < b && isspace((unsigned char)t[a])) a++;
    while (b > a && isspace((unsigned char)t[b - 1])) b--;
    rr->text.n = 0;
    if (rr->text.oom) return fail(p, "%s: out of memory", rr->path);
    return b > a ? rr->record(p, rr->ctx, t + a, b - a) : 0;
}

// Fortune format: records are separated by lines that are exactly "%".
static int record_line(prep* p, void* ctx, const char* text, size_t len, long lineno)
{
    (void)lineno;
    record_reader* rr = ctx;
    if ((len == 2 && text[1] == '\n' && text[0] == '%') || (len == 1 && text[0] == '%'))
        return end_record(p, rr);
    grow_push(&rr->text, text, len);
    return 0;
}

static int each_record(prep* p, const char* path, record_fn record, void* ctx)
{
    record_reader rr = {.record = record, .ctx = ctx, .path = path};
    int st = each_line(p, path, record_line, &rr);
    if (!st) st = end_record(p, &rr);
    free(rr.text.p);
    return st;
}

static const char* base_name(const char* path)
{
    const char* slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int add_class(prep* p, const char* path)
{
    const char* name = base_name(path);
    for (int k = 0; k < p->nclasses; k++)
        if (!strcmp(p->classes[k], name))
            return fail(p, "%s: class '%s' already comes from another file", path, name);
    p->classes[p->nclasses++] = name;
    return 0;
}

// First pass: the lengths of a file's records, its label, and the train/val cut.
typedef struct record_count {
    grow lens;
    const char* path;
} record_count;

static int count_record(prep* p, void* ctx, const char* text, size_t len)
{
    (void)text;
    record_count* rc = ctx;
    if (len > INT32_MAX)
        return fail(p, "%s: record %zu is over 2 GiB", rc->path, rc->lens.n / sizeof(int32_t) + 1);
    grow_push_i32(&rc->lens, (int32_t)len);
    return 0;
}

static int count_records(prep* p, const char* path, int i)
{
    int label = p->nclasses;
    if (add_class(p, path)) return -1;
    record_count rc = {.path = path};
    int st = each_record(p, path, count_record, &rc);
    uint64_t n = rc.lens.n / sizeof(int32_t), cut = val_start(p, n);
    if (!st && rc.lens.oom) st = fail(p, "%s: out of memory", path);
    if (!st && n == 0) st = fail(p, "no records in %s", path);
    for (uint64_t k = 0; k < n && !st; k++) {
        split_out* s = &p->s[k < cut ? SPLIT_TRAIN : SPLIT_VAL];
        int32_t len = ((const int32_t*)rc.lens.p)[k];
        grow_push_i32(&s->lens, len);
        grow_push_i32(&s->labels, label);
        s->bytes += (uint64_t)len;
        s->n++;
    }
    p->count[i] = n;
    free(rc.lens.p);
    return st;
}

// Second pass: record k of the file goes to its split, with the length the first pass found.
typedef struct record_write {
    uint64_t k, cut;
    const char* path;
} record_write;

static int write_record(prep* p, void* ctx, const char* text, size_t len)
{
    record_write* rw = ctx;
    split_out* s = &p->s[rw->k++ < rw->cut ? SPLIT_TRAIN : SPLIT_VAL];
    if (s->done == s->n || ((const int32_t*)s->lens.p)[s->done++] != (int32_t)len)
        return fail(p, "%s: record %llu differs from when prepare first read it (did it change "
                    "while being read?)", rw->path, (unsigned long long)rw->k);
    return sink_push(p, &s->a, text, len, rw->path);
}

static int write_records(prep* p, const char* path, int i)
{
    record_write rw = {.cut = val_start(p, p->count[i]), .path = path};
    int st = each_record(p, path, write_record, &rw);
    return st ? -1 : same_count(p, path, i, rw.k, "records");
}

// ------------------------------------------------------------------------------------------------
// CSV

// Field [a, b) of a line as a finite float, or -1 with "FILE:LINE: 'field' is not a number".
static int parse_field(prep* p, const char* path, long lineno, const char* a, const char* b,
                       float* v)
{
    while (a < b && isspace((unsigned char)*a)) a++;
    while (b > a && isspace((unsigned char)b[-1])) b--;
    size_t len = (size_t)(b - a);
    char buf[64] = "", *end = buf;
    float x = NAN; // what an empty or overlong field reads as
    if (len > 0 && len < sizeof buf) {
        memcpy(buf, a, len);
        x = strtof(buf, &end);
    }
    if (*end || !isfinite(x))
        return fail(p, "%s:%ld: '%.*s' is not a number", path, lineno, (int)(len < 40 ? len : 40),
                    a);
    *v = x;
    return 0;
}

// Input columns of a line: one row's, or a whole sequence's (steps x inputs).
static long in_cols(const prep* p)
{
    return (long)p->inputs * (p->steps ? p->steps : 1);
}

// Line [a, b) -> cols floats appended to rows; the first row fixes the column count.
static int parse_row(prep* p, const char* path, long lineno, const char* a, const char* b,
                     grow* rows)
{
    int cols = 0;
    for (const char* f = a; f <= b; cols++) {
        const char* comma = memchr(f, ',', (size_t)(b - f));
        const char* end = comma ? comma : b;
        float v = 0;
        if (parse_field(p, path, lineno, f, end, &v)) return -1;
        grow_push(rows, &v, sizeof v);
        f = end + 1;
    }
    if (!p->cols && !p->steps && cols <= p->inputs)
        return fail(p, "%s:%ld: %d columns, --inputs %d leaves no output column", path, lineno,
                    cols, p->inputs);
    if (!p->cols && p->steps && cols <= in_cols(p))
        return fail(p, "%s:%ld: %d columns, --seq-len %d x --inputs %d = %ld input columns leave "
                    "no target column", path, lineno, cols, p->steps, p->inputs, in_cols(p));
    if (p->cols && cols != p->cols)
        return fail(p, "%s:%ld: %d columns, expected %d as on the first row%s", path, lineno, cols,
                    p->cols, p->steps ? " (one sequence per line: its inputs step by step, then "
                                        "its targets)" : "");
    p->cols = cols;
    return 0;
}

static int blank(const char* a, const char* b)
{
    while (a < b && isspace((unsigned char)*a)) a++;
    return a == b;
}

// One pass over a CSV file: every non-blank line parsed into row (cols floats); with write, the
// row's inputs go to its split's x and its targets to y.
typedef struct csv_pass {
    const char* path;
    grow row;
    uint64_t n, cut; // rows so far; rows of the file before its val part (writing)
    int write;
} csv_pass;

static int csv_line(prep* p, void* ctx, const char* text, size_t len, long lineno)
{
    csv_pass* c = ctx;
    const char *a = text, *b = text + len - (len && text[len - 1] == '\n');
    if (blank(a, b)) return 0;
    c->row.n = 0;
    if (parse_row(p, c->path, lineno, a, b, &c->row)) return -1;
    if (c->row.oom) return fail(p, "%s: out of memory", c->path);
    split_out* s = &p->s[c->n++ < c->cut ? SPLIT_TRAIN : SPLIT_VAL];
    if (!c->write) return 0;
    const float* row = (const float*)c->row.p;
    const uint64_t S = p->steps ? (uint64_t)p->steps : 1; // rows of x per line
    return sink_push(p, &s->a, row, S, c->path) || sink_push(p, &s->b, row + in_cols(p), 1, c->path)
               ? -1 : 0;
}

static int csv_pass_over(prep* p, const char* path, int i, int write)
{
    csv_pass c = {.path = path, .write = write, .cut = write ? val_start(p, p->count[i]) : 0};
    int st = each_line(p, path, csv_line, &c);
    free(c.row.p);
    if (st) return -1;
    if (write) return same_count(p, path, i, c.n, "rows");
    if (c.n == 0) return fail(p, "no rows in %s", path);
    uint64_t cut = val_start(p, c.n);
    p->count[i] = c.n;
    p->s[SPLIT_TRAIN].n += cut;
    p->s[SPLIT_VAL].n += c.n - cut;
    return 0;
}

// ------------------------------------------------------------------------------------------------
// Output

// Creates dataset /split/what of rows elements (rank 1) or rows x cols, filled through k.
static void open_sink(prep* p, int split, const char* what, h5_elem e, int rank, uint64_t rows,
                      uint64_t cols, sink* k)
{
    static const char* const split_names[2] = {"train", "val"};
    char name[64];
    snprintf(name, sizeof name, "/%s/%s", split_names[split], what);
    k->row_bytes = (size_t)cols * (e == ELEM_U8 ? 1 : 4);
    h5_rows_create(p->h, name, e, rank, rows, cols, &k->r);
}

// The datasets of a split, shaped by the first pass; records' lengths and labels written whole.
static void create_split(prep* p, int kind, int split)
{
    split_out* s = &p->s[split];
    if (kind == DATA_TOKENS) {
        open_sink(p, split, "tokens", ELEM_U8, 1, s->n, 1, &s->a);
    } else if (kind == DATA_SEQUENCES) {
        open_sink(p, split, "seqs", ELEM_U8, 1, s->bytes, 1, &s->a);
        h5_array_write(p->h, split ? "/val/lens" : "/train/lens", ELEM_I32, 1, s->n, 1, s->lens.p);
        h5_array_write(p->h, split ? "/val/labels" : "/train/labels", ELEM_I32, 1, s->n, 1,
                       s->labels.p);
    } else {
        uint64_t S = p->steps ? (uint64_t)p->steps : 1;
        open_sink(p, split, "x", ELEM_F32, 2, s->n * S, (uint64_t)p->inputs, &s->a);
        open_sink(p, split, "y", ELEM_F32, 2, s->n, (uint64_t)(p->cols - in_cols(p)), &s->b);
    }
}

static int write_contents(prep* p, const char* const* inputs, int ninputs, int kind)
{
    static const char* const kind_names[3] = {"tokens", "sequences", "dense"};
    h5_put_str(p->h, "/", "kind", kind_names[kind]);
    if (kind == DATA_SEQUENCES) h5_put_strs(p->h, "/", "classes", p->classes, p->nclasses);
    if (p->steps) h5_put_int(p->h, "/", "seq_len", p->steps);
    for (int split = 0; split < 2; split++) {
        h5_group(p->h, split ? "/val" : "/train");
        create_split(p, kind, split);
    }
    int st = p->h->failed ? -1 : 0;
    for (int i = 0; i < ninputs && !st; i++) {
        if (kind == DATA_TOKENS) st = write_text(p, inputs[i], i);
        else if (kind == DATA_SEQUENCES) st = write_records(p, inputs[i], i);
        else st = csv_pass_over(p, inputs[i], i, 1);
    }
    for (int split = 0; split < 2 && !st; split++) {
        sink_flush(p, &p->s[split].a);
        if (kind == DATA_DENSE) sink_flush(p, &p->s[split].b);
    }
    return st;
}

static int write_output(prep* p, const char* const* inputs, int ninputs, const char* out,
                        int kind)
{
    size_t len = strlen(out) + 32;
    char* tmp = malloc(len);
    if (!tmp) return fail(p, "%s: out of memory", out);
    snprintf(tmp, len, "%s.tmp.%ld", out, (long)getpid());
    h5file h;
    p->h = &h;
    int st = h5_create_local(&h, tmp, p->err, p->errlen) ? -1 : 0;
    // A failure of the inputs' second pass is already in err; h5_close keeps the first message.
    if (!st) st = write_contents(p, inputs, ninputs, kind);
    for (int split = 0; split < 2; split++)
        h5_rows_close(&p->s[split].a.r), h5_rows_close(&p->s[split].b.r);
    if (h5_close(&h)) st = -1;
    if (!st && rename(tmp, out))
        st = fail(p, "%s: cannot rename %s to it (%s)", out, tmp, strerror(errno));
    if (st) remove(tmp); // whatever the create or a failed rename left behind
    free(tmp);
    return st;
}

// ------------------------------------------------------------------------------------------------

static int prep_kind(prep* p, const char* kind, int ninputs, int csv_inputs)
{
    if (p->steps < 0 || (p->steps && strcmp(kind, "csv")))
        return fail(p, "--seq-len %d: only for --kind csv, and > 0", p->steps);
    static const char* const names[3] = {"text", "records", "csv"};
    for (int k = 0; k < 3; k++)
        if (!strcmp(kind, names[k])) {
            if (ninputs < 1) return fail(p, "fnn prepare: no input files");
            if (!(p->val_fraction >= 0 && p->val_fraction < 1))
                return fail(p, "val fraction %g: must be in [0, 1)", p->val_fraction);
            if (k == DATA_DENSE && csv_inputs < 1)
                return fail(p, "csv needs --inputs >= 1 (the leading columns that are inputs)");
            return k; // text, records and csv make tokens, sequences and dense, in that order
        }
    return fail(p, "unknown kind '%s' (text, records or csv)", kind);
}

static int check_memory(prep* p)
{
    for (int i = 0; i < 2; i++)
        if (p->s[i].lens.oom || p->s[i].labels.oom) return fail(p, "out of memory");
    return 0;
}

static void prep_free(prep* p)
{
    for (int i = 0; i < 2; i++) {
        split_out* s = &p->s[i];
        free(s->lens.p), free(s->labels.p), free(s->a.buf.p), free(s->b.buf.p);
    }
    free(p->classes);
    free(p->count);
}

int dataset_prepare(const char* kind, const char* const* inputs, int ninputs, const char* out,
                    double val_fraction, int csv_inputs, char* err, size_t errlen)
{
    return dataset_prepare_steps(kind, inputs, ninputs, out, val_fraction, csv_inputs, 0, err,
                                 errlen);
}

int dataset_prepare_steps(const char* kind, const char* const* inputs, int ninputs,
                          const char* out, double val_fraction, int csv_inputs, int csv_steps,
                          char* err, size_t errlen)
{
    prep p = {.val_fraction = val_fraction, .inputs = csv_inputs, .steps = csv_steps, .err = err,
              .errlen = errlen};
    char why[256];
    // Before reading anything: the output is created with truncation, which would destroy an
    // input it names (through any path or link), and must be a regular file to be one.
    if (paths_check_kind(out, PATHS_FILE, 1, why, sizeof why)) return fail(&p, "--out %s: %s", out, why);
    if (paths_refuse_overwrite("--out", out, inputs, ninputs, err, errlen)) return -1;
    int k = prep_kind(&p, kind, ninputs, csv_inputs);
    p.classes = calloc(ninputs > 0 ? ninputs : 1, sizeof *p.classes);
    p.count = calloc(ninputs > 0 ? ninputs : 1, sizeof *p.count);
    for (int i = 0; i < 2; i++) p.s[i].a.r.ds = p.s[i].a.r.fd = p.s[i].b.r.ds = p.s[i].b.r.fd = -1;
    int st = k < 0 ? -1 : p.classes && p.count ? 0 : fail(&p, "out of memory");
    for (int i = 0; i < ninputs && !st; i++) {
        if (k == DATA_TOKENS) st = count_text(&p, inputs[i], i);
        else if (k == DATA_SEQUENCES) st = count_records(&p, inputs[i], i);
        else st = csv_pass_over(&p, inputs[i], i, 0);
    }
    if (!st) st = check_memory(&p);
    if (!st && p.s[SPLIT_TRAIN].n == 0) st = fail(&p, "no training data in %s%s", inputs[0],
                                                  ninputs > 1 ? " and the other inputs" : "");
    if (!st) st = write_output(&p, inputs, ninputs, out, k);
    prep_free(&p);
    return st;
}
