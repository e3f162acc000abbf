// `fnn prepare`: text, fortune records or CSV rows -> one HDF5 dataset (layout in io/dataset.h).
// Inputs are read whole into memory; the output is written under "<out>.tmp.<pid>" and renamed,
// so a failure leaves neither a partial file nor a clobbered older one.
//
// Strings ("kind", "classes") are fixed-length, NUL-terminated HDF5 strings: "kind" a scalar,
// "classes" a 1-D array as wide as the longest name, so readers need no variable-length memory.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

typedef struct split_out {
    grow bytes;        // tokens, or every record's bytes concatenated
    grow lens, labels; // int32 per record
    grow x, y;         // float32 rows of D and O values (per-sequence: S rows of x per row of y)
    long n;            // tokens, records, rows or sequences
} split_out;

typedef struct prep {
    split_out s[2];
    double val_fraction;
    int inputs;        // csv: leading columns that are inputs (per step)
    int steps;         // csv: steps per line (one sequence per line), 0 = one row per line
    int cols;          // csv: columns of every row, 0 before the first row
    const char** classes;
    int nclasses;
    char* err;
    size_t errlen;
} prep;

// The messages name their input file and line themselves.
#define fail(p, ...) errmsg((p)->err, (p)->errlen, NULL, __VA_ARGS__)

static int read_whole(prep* p, const char* path, grow* g)
{
    char why[256];
    // A FIFO would block the open, a device feed it without end.
    if (paths_check_kind(path, PATHS_FILE, 0, why, sizeof why)) return fail(p, "%s: %s", path, why);
    FILE* fp = fopen(path, "rb");
    if (!fp) return fail(p, "%s: cannot open (%s)", path, strerror(errno));
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) grow_push(g, chunk, n);
    int bad = ferror(fp);
    fclose(fp);
    if (bad) return fail(p, "%s: read error", path);
    if (g->oom) return fail(p, "%s: out of memory", path);
    return 0;
}

// Items [0, count) of a file go to train, the last floor(count * val_fraction) to val.
static size_t val_start(const prep* p, size_t count)
{
    return count - (size_t)(count * p->val_fraction);
}

static int add_text(prep* p, const char* path)
{
    grow g = {0};
    if (read_whole(p, path, &g)) {
        free(g.p);
        return -1;
    }
    size_t cut = val_start(p, g.n);
    grow_push(&p->s[SPLIT_TRAIN].bytes, g.p, cut);
    grow_push(&p->s[SPLIT_VAL].bytes, g.p + cut, g.n - cut);
    p->s[SPLIT_TRAIN].n += (long)cut;
    p->s[SPLIT_VAL].n += (long)(g.n - cut);
    free(g.p);
    return 0;
}

// ------------------------------------------------------------------------------------------------
// Records

typedef struct span {
    size_t off, len;
} span;

// Record [a, b) of text without its leading and trailing whitespace; empty ones are dropped.
static void push_record(grow* recs, const char* text, size_t a, size_t b)
{
    while (a < b && isspace((unsigned char)text[a])) a++;
    while (b > a && isspace((unsigned char)text[b - 1])) b--;
    span s = {a, b - a};
    if (s.len) grow_push(recs, &s, sizeof s);
}

// Fortune format: records are separated by lines that are exactly "%".
static void split_records(const char* text, size_t n, grow* recs)
{
    size_t start = 0;
    for (size_t line = 0; line < n;) {
        const char* nl = memchr(text + line, '\n', n - line);
        size_t end = nl ? (size_t)(nl - text) : n;
        if (end - line == 1 && text[line] == '%') {
            push_record(recs, text, start, line);
            start = end + 1;
        }
        line = end + 1;
    }
    if (start < n) push_record(recs, text, start, n);
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

static int add_records(prep* p, const char* path)
{
    int label = p->nclasses;
    if (add_class(p, path)) return -1;
    grow text = {0}, recs = {0};
    int st = read_whole(p, path, &text);
    if (!st) split_records(text.p, text.n, &recs);
    size_t n = recs.n / sizeof(span), cut = val_start(p, n);
    if (!st && recs.oom) st = fail(p, "%s: out of memory", path);
    if (!st && n == 0) st = fail(p, "no records in %s", path);
    for (size_t i = 0; i < n && !st; i++) {
        const span* r = (const span*)recs.p + i;
        if (r->len > INT32_MAX) {
            st = fail(p, "%s: record %zu is over 2 GiB", path, i + 1);
            break;
        }
        split_out* s = &p->s[i < cut ? SPLIT_TRAIN : SPLIT_VAL];
        grow_push(&s->bytes, text.p + r->off, r->len);
        grow_push_i32(&s->lens, (int32_t)r->len);
        grow_push_i32(&s->labels, label);
        s->n++;
    }
    free(text.p), free(recs.p);
    return st;
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

// Rows of one file as floats, cols each (blank lines skipped).
static int parse_csv(prep* p, const char* path, const grow* text, grow* rows)
{
    long lineno = 0;
    for (size_t line = 0; line < text->n;) {
        const char* a = text->p + line;
        const char* nl = memchr(a, '\n', text->n - line);
        const char* b = nl ? nl : text->p + text->n;
        lineno++;
        if (!blank(a, b) && parse_row(p, path, lineno, a, b, rows)) return -1;
        line = (size_t)(b - text->p) + 1;
    }
    if (rows->oom) return fail(p, "%s: out of memory", path);
    return rows->n ? 0 : fail(p, "no rows in %s", path);
}

static int add_csv(prep* p, const char* path)
{
    grow text = {0}, rows = {0};
    int st = read_whole(p, path, &text);
    if (!st) st = parse_csv(p, path, &text, &rows);
    size_t n = st ? 0 : rows.n / (sizeof(float) * p->cols), cut = val_start(p, n);
    size_t in = sizeof(float) * in_cols(p), out = sizeof(float) * (p->cols - in_cols(p));
    for (size_t i = 0; i < n; i++) {
        split_out* s = &p->s[i < cut ? SPLIT_TRAIN : SPLIT_VAL];
        const char* row = rows.p + i * (in + out);
        grow_push(&s->x, row, in);
        grow_push(&s->y, row + in, out);
        s->n++;
    }
    free(text.p), free(rows.p);
    return st;
}

// ------------------------------------------------------------------------------------------------
// Output

// Dataset /split/what: rows elements (rank 1) or rows x cols.
static void write_array(h5file* h, int split, const char* what, h5_elem e, int rank,
                        uint64_t rows, uint64_t cols, const void* data)
{
    static const char* const split_names[2] = {"train", "val"};
    char name[64];
    snprintf(name, sizeof name, "/%s/%s", split_names[split], what);
    h5_array_write(h, name, e, rank, rows, cols, data);
}

static void write_split(const prep* p, h5file* h, int kind, int split)
{
    const split_out* s = &p->s[split];
    uint64_t n = (uint64_t)s->n;
    if (kind == DATA_TOKENS) {
        write_array(h, split, "tokens", ELEM_U8, 1, n, 1, s->bytes.p);
    } else if (kind == DATA_SEQUENCES) {
        write_array(h, split, "seqs", ELEM_U8, 1, s->bytes.n, 1, s->bytes.p);
        write_array(h, split, "lens", ELEM_I32, 1, n, 1, s->lens.p);
        write_array(h, split, "labels", ELEM_I32, 1, n, 1, s->labels.p);
    } else {
        uint64_t S = p->steps ? (uint64_t)p->steps : 1;
        write_array(h, split, "x", ELEM_F32, 2, n * S, p->inputs, s->x.p);
        write_array(h, split, "y", ELEM_F32, 2, n, p->cols - in_cols(p), s->y.p);
    }
}

static void write_contents(const prep* p, h5file* h, int kind)
{
    static const char* const kind_names[3] = {"tokens", "sequences", "dense"};
    h5_put_str(h, "/", "kind", kind_names[kind]);
    if (kind == DATA_SEQUENCES) h5_put_strs(h, "/", "classes", p->classes, p->nclasses);
    if (p->steps) h5_put_int(h, "/", "seq_len", p->steps);
    for (int split = 0; split < 2; split++) {
        h5_group(h, split ? "/val" : "/train");
        write_split(p, h, kind, split);
    }
}

static int write_output(prep* p, const char* out, int kind)
{
    size_t len = strlen(out) + 32;
    char* tmp = malloc(len);
    if (!tmp) return fail(p, "%s: out of memory", out);
    snprintf(tmp, len, "%s.tmp.%ld", out, (long)getpid());
    h5file h;
    if (!h5_create_local(&h, tmp, p->err, p->errlen)) write_contents(p, &h, kind);
    int st = h5_close(&h) ? -1 : 0;
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
    for (int i = 0; i < 2; i++) {
        const split_out* s = &p->s[i];
        if (s->bytes.oom || s->lens.oom || s->labels.oom || s->x.oom || s->y.oom)
            return fail(p, "out of memory");
    }
    return 0;
}

static void prep_free(prep* p)
{
    for (int i = 0; i < 2; i++) {
        split_out* s = &p->s[i];
        free(s->bytes.p), free(s->lens.p), free(s->labels.p), free(s->x.p), free(s->y.p);
    }
    free(p->classes);
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
    int st = k < 0 ? -1 : p.classes ? 0 : fail(&p, "out of memory");
    for (int i = 0; i < ninputs && !st; i++) {
        if (k == DATA_TOKENS) st = add_text(&p, inputs[i]);
        else if (k == DATA_SEQUENCES) st = add_records(&p, inputs[i]);
        else st = add_csv(&p, inputs[i]);
    }
    if (!st) st = check_memory(&p);
    if (!st && p.s[SPLIT_TRAIN].n == 0) st = fail(&p, "no training data in %s%s", inputs[0],
                                                  ninputs > 1 ? " and the other inputs" : "");
    if (!st) st = write_output(&p, out, k);
    prep_free(&p);
    return st;
}
