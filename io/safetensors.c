// safetensors reading and writing (io/safetensors.h): a small parser of the header's JSON that
// accepts what the format allows and names what it refuses.
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/errmsg.h"
#include "io/paths.h"
#include "io/safetensors.h"

#define ST_MAX_HEADER (100u << 20) // the format's own limit on the header

int st_is_safetensors(const char* path)
{
    // Only a regular file is opened to look: a FIFO's open would block (the HDF5 open that
    // follows refuses what is not a regular file, naming its kind).
    char why[128];
    if (paths_check_kind(path, PATHS_FILE, 0, why, sizeof why)) return 0;
    unsigned char b[9];
    FILE* fp = fopen(path, "rb");
    if (!fp) return 0;
    const int ok = fread(b, 1, 9, fp) == 9 && b[8] == '{';
    fclose(fp);
    return ok;
}

typedef struct parser {
    const char *begin, *s, *end, *path;
    char* err;
    size_t errlen;
} parser;

static int bad(parser* p, const char* what)
{
    return errmsg(p->err, p->errlen, p->path, "safetensors header is not valid JSON at byte %ld: %s",
                  (long)(p->s - p->begin), what);
}

static void ws(parser* p)
{
    while (p->s < p->end && isspace((unsigned char)*p->s)) p->s++;
}

static int expect(parser* p, char c)
{
    ws(p);
    if (p->s >= p->end || *p->s != c) {
        char what[32];
        snprintf(what, sizeof what, "expected '%c'", c);
        return bad(p, what);
    }
    p->s++;
    return 0;
}

// A JSON string into out (ASCII escapes only; longer than len is refused).
static int string(parser* p, char* out, size_t len)
{
    if (expect(p, '"')) return -1;
    size_t n = 0;
    while (p->s < p->end && *p->s != '"') {
        char c = *p->s++;
        if (c == '\\') {
            if (p->s >= p->end) break;
            c = *p->s++;
            const char* from = "\"\\/bfnrt";
            const char* to = "\"\\/\b\f\n\r\t";
            const char* at = strchr(from, c);
            if (!at || !c) return bad(p, "unsupported escape in a string");
            c = to[at - from];
        }
        if (n + 1 >= len) return bad(p, "string too long");
        out[n++] = c;
    }
    if (expect(p, '"')) return -1;
    out[n] = 0;
    return 0;
}

static int integer(parser* p, long long* v)
{
    ws(p);
    const char* a = p->s;
    long long x = 0;
    while (p->s < p->end && isdigit((unsigned char)*p->s)) {
        if (x > (INT64_MAX - 9) / 10) return bad(p, "integer too large");
        x = x * 10 + (*p->s++ - '0');
    }
    if (p->s == a) return bad(p, "expected a non-negative integer");
    *v = x;
    return 0;
}

// [n, n, ...] of at most max integers: their count in *n.
static int int_list(parser* p, long long* v, int max, int* n)
{
    if (expect(p, '[')) return -1;
    *n = 0;
    ws(p);
    if (p->s < p->end && *p->s == ']') return p->s++, 0;
    for (;;) {
        long long x = 0;
        if (integer(p, &x)) return -1;
        if (*n < max) v[*n] = x;
        ++*n;
        ws(p);
        if (p->s < p->end && *p->s == ',') { p->s++; continue; }
        return expect(p, ']');
    }
}

static int metadata(parser* p, st_file* f)
{
    if (expect(p, '{')) return -1;
    ws(p);
    if (p->s < p->end && *p->s == '}') return p->s++, 0;
    for (;;) {
        char key[64], val[256];
        if (string(p, key, sizeof key) || expect(p, ':') || string(p, val, sizeof val)) return -1;
        if (f->nmeta < ST_META && strlen(key) < sizeof f->meta_key[0] && strlen(val) < sizeof f->meta_val[0]) {
            strcpy(f->meta_key[f->nmeta], key);
            strcpy(f->meta_val[f->nmeta++], val);
        }
        ws(p);
        if (p->s < p->end && *p->s == ',') { p->s++; continue; }
        return expect(p, '}');
    }
}

// One tensor's entry; its sizes are checked against the data once all are read.
static int entry(parser* p, st_tensor* t, long long* end)
{
    int have = 0;
    if (expect(p, '{')) return -1;
    for (;;) {
        char key[32];
        if (string(p, key, sizeof key) || expect(p, ':')) return -1;
        if (!strcmp(key, "dtype")) {
            char dt[16];
            if (string(p, dt, sizeof dt)) return -1;
            if (strcmp(dt, "F32"))
                return errmsg(p->err, p->errlen, p->path, "tensor %s: dtype %s, fnn reads F32 only",
                              t->name, dt);
            have |= 1;
        } else if (!strcmp(key, "shape")) {
            long long v[2] = {0, 0};
            if (int_list(p, v, 2, &t->rank)) return -1;
            if (t->rank < 1 || t->rank > 2)
                return errmsg(p->err, p->errlen, p->path, "tensor %s: %d dimensions, fnn's tensors have 1 or 2",
                              t->name, t->rank);
            t->shape[0] = (long)v[0];
            t->shape[1] = t->rank == 2 ? (long)v[1] : 1;
            have |= 2;
        } else if (!strcmp(key, "data_offsets")) {
            long long v[2] = {0, 0};
            int n;
            if (int_list(p, v, 2, &n)) return -1;
            if (n != 2) return errmsg(p->err, p->errlen, p->path, "tensor %s: data_offsets has %d values, not 2", t->name, n);
            t->begin = (size_t)v[0];
            *end = v[1];
            have |= 4;
        } else {
            return errmsg(p->err, p->errlen, p->path, "tensor %s: unknown field '%s'", t->name, key);
        }
        ws(p);
        if (p->s < p->end && *p->s == ',') { p->s++; continue; }
        if (expect(p, '}')) return -1;
        break;
    }
    if (have != 7)
        return errmsg(p->err, p->errlen, p->path, "tensor %s: lacks %s", t->name,
                      !(have & 1) ? "dtype" : !(have & 2) ? "shape" : "data_offsets");
    return 0;
}

static int by_begin(const void* a, const void* b)
{
    const st_tensor *x = *(const st_tensor* const*)a, *y = *(const st_tensor* const*)b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

static size_t bytes_of(const st_tensor* t)
{
    return (size_t)t->shape[0] * (size_t)t->shape[1] * 4;
}

// The header's tensors: sizes, offsets and overlaps against the data's length.
static int check_data(const char* path, st_file* f, const long long* end, char* err, size_t errlen)
{
    for (int i = 0; i < f->n; i++) {
        const st_tensor* t = &f->t[i];
        if ((long long)t->begin > end[i] || (unsigned long long)end[i] > f->data_len)
            return errmsg(err, errlen, path, "tensor %s: data_offsets [%zu, %lld] lie outside the data (%zu bytes)",
                          t->name, t->begin, end[i], f->data_len);
        if ((size_t)end[i] - t->begin != bytes_of(t))
            return errmsg(err, errlen, path, "tensor %s: shape %ld x %ld of F32 is %zu bytes, data_offsets give %zu",
                          t->name, t->shape[0], t->shape[1], bytes_of(t), (size_t)end[i] - t->begin);
        for (int j = 0; j < i; j++)
            if (!strcmp(f->t[j].name, t->name))
                return errmsg(err, errlen, path, "tensor %s appears twice in the header", t->name);
    }
    st_tensor** order = malloc((size_t)(f->n + 1) * sizeof *order);
    if (!order) return errmsg(err, errlen, path, "out of memory");
    for (int i = 0; i < f->n; i++) order[i] = &f->t[i];
    qsort(order, (size_t)f->n, sizeof *order, by_begin);
    int rc = 0;
    for (int i = 1; i < f->n && !rc; i++)
        if (order[i]->begin < order[i - 1]->begin + bytes_of(order[i - 1]))
            rc = errmsg(err, errlen, path, "tensors %s and %s overlap in the data", order[i - 1]->name,
                        order[i]->name);
    free(order);
    return rc;
}

static int header(parser* p, st_file* f, long long** end)
{
    int cap = 0;
    if (expect(p, '{')) return -1;
    ws(p);
    if (p->s < p->end && *p->s == '}') return p->s++, 0;
    for (;;) {
        char name[ST_NAME];
        if (string(p, name, sizeof name) || expect(p, ':')) return -1;
        if (!strcmp(name, "__metadata__")) {
            if (metadata(p, f)) return -1;
        } else {
            if (f->n == cap) {
                cap = cap ? 2 * cap : 64;
                st_tensor* t = realloc(f->t, (size_t)cap * sizeof *t);
                long long* e = realloc(*end, (size_t)cap * sizeof *e);
                if (t) f->t = t;
                if (e) *end = e;
                if (!t || !e) return errmsg(p->err, p->errlen, p->path, "out of memory");
            }
            st_tensor* t = &f->t[f->n++];
            memset(t, 0, sizeof *t);
            strcpy(t->name, name);
            if (entry(p, t, &(*end)[f->n - 1])) return -1;
        }
        ws(p);
        if (p->s < p->end && *p->s == ',') { p->s++; continue; }
        if (expect(p, '}')) return -1;
        ws(p);
        return p->s == p->end ? 0 : bad(p, "text after the header's object");
    }
}

int st_read(const char* path, st_file* f, char* err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    FILE* fp = fopen(path, "rb");
    if (!fp) return errmsg(err, errlen, path, "cannot open");
    unsigned char b[8];
    long size = fseek(fp, 0, SEEK_END) ? -1 : ftell(fp);
    if (size < 8 || fseek(fp, 0, SEEK_SET) || fread(b, 1, 8, fp) != 8) {
        fclose(fp);
        return errmsg(err, errlen, path, "too short for a safetensors file (%ld bytes)", size);
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
    if (n > (uint64_t)size - 8 || n > ST_MAX_HEADER) {
        fclose(fp);
        return errmsg(err, errlen, path, "safetensors header length %llu is larger than %s (%ld bytes)",
                      (unsigned long long)n, n > (uint64_t)size - 8 ? "the file" : "the format allows",
                      n > (uint64_t)size - 8 ? size : (long)ST_MAX_HEADER);
    }
    char* text = malloc(n + 1);
    f->data_len = (size_t)size - 8 - n;
    f->data = malloc(f->data_len + 1);
    int rc = -1;
    if (!text || !f->data) errmsg(err, errlen, path, "out of memory");
    else if (fread(text, 1, n, fp) != n || fread(f->data, 1, f->data_len, fp) != f->data_len)
        errmsg(err, errlen, path, "read error");
    else {
        parser p = {text, text, text + n, path, err, errlen};
        long long* end = NULL;
        rc = header(&p, f, &end);
        if (!rc) rc = check_data(path, f, end, err, errlen);
        free(end);
    }
    free(text);
    fclose(fp);
    if (rc) st_free(f);
    return rc;
}

void st_free(st_file* f)
{
    free(f->t);
    free(f->data);
    memset(f, 0, sizeof *f);
}

const st_tensor* st_find(const st_file* f, const char* name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

const char* st_meta(const st_file* f, const char* key)
{
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta_key[i], key)) return f->meta_val[i];
    return NULL;
}
