// The reader of the metrics file that launch/train.c writes through run/metrics.c: flat JSON
// objects, one per line, whose values are numbers, true, false, null or strings.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run/metrics_read.h"

// The fields a plot reads from one line; has_* says which the line holds.
typedef struct line_fields {
    int has_step, has_loss, has_tok, has_val;
    double step, loss, tok, val;
} line_fields;

// One series being filled: steps and up to two values per row.
typedef struct series_buf {
    long n, cap;
    long* step;
    double* a;
    double* b;
} series_buf;

static const char* skip_ws(const char* p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r') p++;
    return p;
}

// p at a JSON string's opening quote: the character after its closing quote, or NULL.
static const char* string_end(const char* p)
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && !*++p) return NULL;
    return *p ? p + 1 : NULL;
}

// p at a value: the character after it, or NULL. *num is the value of a number, else NaN.
static const char* value_end(const char* p, double* num, int* is_num)
{
    static const char* const literal[] = {"true", "false", "null"};
    *num = NAN, *is_num = 0;
    if (*p == '"') return string_end(p);
    for (int i = 0; i < 3; i++)
        if (!strncmp(p, literal[i], strlen(literal[i]))) return p + strlen(literal[i]);
    if (*p != '-' && !isdigit((unsigned char)*p)) return NULL;
    char* end;
    *num = strtod(p, &end);
    *is_num = 1;
    return end;
}

static int key_is(const char* k, size_t n, const char* name)
{
    return strlen(name) == n && !strncmp(k, name, n);
}

// Keeps the fields a plot reads. Returns NULL, or why the value does not fit its key.
static const char* keep(line_fields* f, const char* k, size_t n, double v, int is_num)
{
    if (key_is(k, n, "step")) {
        if (!is_num || !(v >= 0 && v <= 1e15) || v != floor(v)) return "\"step\" is not an integer >= 0";
        f->has_step = 1, f->step = v;
    } else if (key_is(k, n, "loss")) {
        if (!is_num) return "\"loss\" is not a number";
        f->has_loss = 1, f->loss = v;
    } else if (key_is(k, n, "tokens_per_s")) {
        if (!is_num) return "\"tokens_per_s\" is not a number";
        f->has_tok = 1, f->tok = v;
    } else if (key_is(k, n, "val_loss")) {
        // null: a score that was not finite, a gap in the series.
        f->has_val = is_num, f->val = v;
    }
    return NULL;
}

// Parses one line into f. Returns NULL, or why it is not a metrics line.
static const char* parse_line(const char* p, line_fields* f)
{
    static const char* const not_object = "not a flat JSON object";
    *f = (line_fields){0};
    p = skip_ws(p);
    if (*p != '{') return not_object;
    p = skip_ws(p + 1);
    while (*p != '}') {
        if (*p != '"') return not_object;
        const char* key = p + 1;
        const char* after = string_end(p);
        if (!after) return not_object;
        p = skip_ws(after);
        if (*p != ':') return not_object;
        double v;
        int is_num;
        p = value_end(skip_ws(p + 1), &v, &is_num);
        if (!p) return not_object;
        const char* why = keep(f, key, (size_t)(after - 1 - key), v, is_num);
        if (why) return why;
        p = skip_ws(p);
        if (*p == ',') p = skip_ws(p + 1);
        else if (*p != '}') return not_object;
    }
    p = skip_ws(p + 1);
    if (*p && *p != '\n') return not_object;
    if (!f->has_step) return "no \"step\"";
    if (f->has_loss && !f->has_tok) return "\"loss\" without \"tokens_per_s\"";
    return NULL;
}

// Appends a row; rows from `step` on (a resumed run's repeated steps) are replaced. Returns -1
// when out of memory.
static int append(series_buf* s, long step, double a, double b)
{
    while (s->n > 0 && s->step[s->n - 1] >= step) s->n--;
    if (s->n == s->cap) {
        long cap = s->cap ? 2 * s->cap : 256;
        long* st = realloc(s->step, cap * sizeof *st);
        if (st) s->step = st;
        double* na = realloc(s->a, cap * sizeof *na);
        if (na) s->a = na;
        double* nb = realloc(s->b, cap * sizeof *nb);
        if (nb) s->b = nb;
        if (!st || !na || !nb) return -1;
        s->cap = cap;
    }
    s->step[s->n] = step, s->a[s->n] = a, s->b[s->n] = b;
    s->n++;
    return 0;
}

static int read_rows(FILE* in, const char* path, series_buf* train, series_buf* val, char* err,
                     size_t errlen)
{
    char* line = NULL;
    size_t cap = 0;
    long no = 0;
    int rc = 0;
    errno = 0;
    while (getline(&line, &cap, in) >= 0) {
        no++;
        if (!*skip_ws(line) || *skip_ws(line) == '\n') continue;
        line_fields f;
        const char* why = parse_line(line, &f);
        if (why) {
            snprintf(err, errlen, "%s line %ld: not a metrics line (%s)", path, no, why);
            rc = -1;
            break;
        }
        if ((f.has_loss && append(train, (long)f.step, f.loss, f.tok)) ||
            (f.has_val && append(val, (long)f.step, f.val, 0))) {
            snprintf(err, errlen, "%s: out of memory at line %ld", path, no);
            rc = -1;
            break;
        }
    }
    if (!rc && ferror(in)) {
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno ? errno : EIO));
        rc = -1;
    }
    free(line);
    return rc;
}

int metrics_read(const char* path, metrics_series* s, char* err, size_t errlen)
{
    *s = (metrics_series){0};
    FILE* in = fopen(path, "r");
    if (!in) {
        snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
        return -1;
    }
    series_buf train = {0}, val = {0};
    int rc = read_rows(in, path, &train, &val, err, errlen);
    fclose(in);
    if (!rc && train.n == 0 && val.n == 0) {
        snprintf(err, errlen, "%s: no data rows (no line with \"loss\" or \"val_loss\")", path);
        rc = -1;
    }
    *s = (metrics_series){.n_train = train.n, .train_step = train.step, .loss = train.a,
                          .tokens_per_s = train.b, .n_val = val.n, .val_step = val.step,
                          .val_loss = val.a};
    free(val.b);
    if (rc) metrics_series_free(s);
    return rc;
}

void metrics_series_free(metrics_series* s)
{
    free(s->train_step);
    free(s->loss);
    free(s->tokens_per_s);
    free(s->val_step);
    free(s->val_loss);
    *s = (metrics_series){0};
}
