// fnn's tensors as a safetensors file's (io/safetensors.h): PyTorch's stacked names and layouts
// for the Elman (torch.nn.RNN), GRU and LSTM cells, fnn's own names for the rest.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/config.h"
#include "io/errmsg.h"
#include "io/safetensors.h"

// Whether PyTorch has the layer's equivalent (torch.nn.RNN, GRU, LSTM): the MGU has none.
static int pytorch_cell(const model* m)
{
    return m->c.cell != CELL_MGU;
}

// Gate index of a layer tensor, from its name's suffix ("layer0/Wx_z" -> 1).
static int gate_of(const model* m, const model_tensor* t)
{
    const char* u = strrchr(t->name, '_');
    for (int g = 0; u && m->cell->gate_name && g < m->cell->gates; g++)
        if (!strcmp(u + 1, m->cell->gate_name[g])) return g;
    return 0;
}

void st_name(const model* m, const model_tensor* t, char* name, size_t len, int* row0, int* rows,
             int* cols)
{
    const int G = m->cell->gates, H = m->c.H, l = t->layer;
    *row0 = 0;
    *rows = t->rows;
    *cols = t->rank == 2 ? t->cols : 0;
    switch (t->part) {
    case PART_WO: snprintf(name, len, "head.weight"); return;
    case PART_BO: snprintf(name, len, "head.bias"); return;
    case PART_EMBED: snprintf(name, len, "embedding.weight"); return;
    default: break;
    }
    if (!pytorch_cell(m)) {
        snprintf(name, len, "%s", t->name);
        return;
    }
    static const char* const fmt[] = {
        [PART_WX] = "rnn.weight_ih_l%d", [PART_WH] = "rnn.weight_hh_l%d", [PART_WF] = "feedback_l%d.weight",
        [PART_B] = "rnn.bias_ih_l%d", [PART_BH] = "rnn.bias_hh_l%d",
    };
    snprintf(name, len, fmt[t->part], l);
    *row0 = gate_of(m, t) * H;
    *rows = G * H;
}

static int layers_with(const st_file* f, const char* fmt)
{
    int n = 0;
    char name[ST_NAME];
    for (;; n++) {
        snprintf(name, sizeof name, fmt, n);
        if (!st_find(f, name)) return n;
    }
}

void st_model_config(const st_file* f, const model_config* run, model_config* ck)
{
    *ck = *run;
    static const char* const keys[] = {"cell", "task", "activation"};
    int* at[] = {&ck->cell, &ck->task, &ck->act};
    for (int i = 0; i < 3; i++) {
        const char* v = st_meta(f, keys[i]);
        const int e = v ? config_enum_value(keys[i], v) : -1;
        if (e >= 0) *at[i] = e;
    }
    const int mgu = ck->cell == CELL_MGU;
    const st_tensor* hh = st_find(f, mgu ? "layer0/Wh_n" : "rnn.weight_hh_l0");
    const st_tensor* ih = st_find(f, mgu ? "layer0/Wx_n" : "rnn.weight_ih_l0");
    const st_tensor* e = st_find(f, "embedding.weight");
    const st_tensor* wo = st_find(f, "head.weight");
    if (hh && hh->rank == 2) ck->H = (int)hh->shape[1];
    ck->L = layers_with(f, mgu ? "layer%d/Wh_n" : "rnn.weight_hh_l%d");
    ck->V = e && e->rank == 2 ? (int)e->shape[0] : 0;
    if (e && e->rank == 2) ck->D = (int)e->shape[1];
    else if (ih && ih->rank == 2) ck->D = (int)ih->shape[1];
    if (wo) ck->O = (int)wo->shape[0];
    const int fb = layers_with(f, mgu ? "layer%d/Wf_n" : "feedback_l%d.weight");
    ck->feedback = fb == 0 ? FB_NONE : fb == 1 && ck->L > 1 ? FB_FIRST : FB_ALL;
}

static real f32_at(const unsigned char* p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float x;
    memcpy(&x, &u, sizeof x);
    return (real)x;
}

// The file's tensor of that name with the given full shape (cols 0: a vector), or NULL with
// the reason in err.
static const st_tensor* need(const char* path, const st_file* f, const char* name, const char* fnn_name,
                             int rows, int cols, char* err, size_t errlen)
{
    const st_tensor* s = st_find(f, name);
    if (!s) return errmsg(err, errlen, path, "no tensor %s (fnn's %s)", name, fnn_name), NULL;
    const int rank = cols ? 2 : 1;
    if (s->rank != rank || s->shape[0] != rows || (rank == 2 && s->shape[1] != cols)) {
        if (rank == 2)
            errmsg(err, errlen, path, "tensor %s is %ld x %ld there, %d x %d here", name, s->shape[0],
                   s->rank == 2 ? s->shape[1] : 1, rows, cols);
        else
            errmsg(err, errlen, path, "tensor %s has shape [%ld%s] there, [%d] here", name, s->shape[0],
                   s->rank == 2 ? ", ..." : "", rows);
        return NULL;
    }
    return s;
}

// The cell adds PyTorch's bias_hh into its one bias b: the name of that tensor, or 0.
static int hh_into_b(const model* m, const model_tensor* t, char* name, size_t len)
{
    if (!pytorch_cell(m) || m->cell->bias_h || t->part != PART_B) return 0;
    snprintf(name, len, "rnn.bias_hh_l%d", t->layer);
    return 1;
}

int st_load(const char* path, const st_file* f, model* m, const unsigned char* only, char* err,
            size_t errlen)
{
    char name[ST_NAME], hh[ST_NAME];
    int row0, rows, cols;
    // Every tensor is checked before any is copied: nothing is loaded half-way.
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < m->ntensors; k++) {
            const model_tensor* t = &m->tensors[k];
            if (only && !only[k]) continue;
            st_name(m, t, name, sizeof name, &row0, &rows, &cols);
            const st_tensor* s = need(path, f, name, t->name, rows, cols, err, errlen);
            if (!s) return -1;
            const int two = hh_into_b(m, t, hh, sizeof hh);
            const st_tensor* sh = two ? need(path, f, hh, t->name, rows, 0, err, errlen) : NULL;
            if (two && !sh) return -1;
            if (!pass) continue;
            const int w = cols ? cols : 1;
            real* p = m->params + t->offset;
            for (int i = 0; i < t->lrows; i++)
                for (int j = 0; j < t->lcols; j++) {
                    const size_t e = (size_t)(row0 + t->row0 + i) * w + (size_t)(t->col0 + j);
                    real v = f32_at(f->data + s->begin + 4 * e);
                    if (sh) v += f32_at(f->data + sh->begin + 4 * e);
                    p[(size_t)i * t->ld + j] = v;
                }
        }
    }
    return 0;
}

// One output tensor: its name, full shape and float32 values (zero where no fnn tensor lies).
typedef struct out_tensor {
    char name[ST_NAME];
    int rows, cols; // cols 0: a vector
    float* v;
} out_tensor;

static out_tensor* out_find(out_tensor* o, int* n, const char* name, int rows, int cols)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(o[i].name, name)) return &o[i];
    out_tensor* t = &o[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->v = calloc((size_t)rows * (cols ? cols : 1), sizeof(float));
    return t;
}

static void put_le64(unsigned char* b, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> 8 * i);
}

static int write_file(const char* path, const out_tensor* o, int n, const char* const* meta, int nmeta,
                      char* err, size_t errlen)
{
    size_t cap = 4096 + (size_t)n * 160, len = 0, off = 0;
    for (int i = 0; i < nmeta; i++) cap += strlen(meta[2 * i]) + strlen(meta[2 * i + 1]) + 8;
    char* h = malloc(cap);
    if (!h) return errmsg(err, errlen, path, "out of memory");
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++)
        len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":\"%s\"", i ? "," : "", meta[2 * i], meta[2 * i + 1]);
    len += (size_t)snprintf(h + len, cap - len, "}");
    for (int i = 0; i < n; i++) {
        const size_t bytes = (size_t)o[i].rows * (o[i].cols ? o[i].cols : 1) * 4;
        if (o[i].cols)
            len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                                    o[i].name, o[i].rows, o[i].cols, off, off + bytes);
        else
            len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                                    o[i].name, o[i].rows, off, off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' '; // the data starts 8-byte aligned, as the format advises
    unsigned char b[8];
    put_le64(b, len);
    // Written whole under "<path>.tmp", then renamed: an existing file is never left half-written.
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE* fp = fopen(tmp, "wb");
    int ok = fp && fwrite(b, 1, 8, fp) == 8 && fwrite(h, 1, len, fp) == len;
    for (int i = 0; ok && i < n; i++) {
        const size_t e = (size_t)o[i].rows * (o[i].cols ? o[i].cols : 1);
        for (size_t j = 0; ok && j < e; j++) {
            uint32_t u;
            memcpy(&u, &o[i].v[j], 4);
            const unsigned char le[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                                         (unsigned char)(u >> 24)};
            ok = fwrite(le, 1, 4, fp) == 4;
        }
    }
    if (fp && fclose(fp)) ok = 0;
    free(h);
    if (ok && !rename(tmp, path)) return 0;
    if (!fp) return errmsg(err, errlen, path, "cannot create %s (%s)", tmp, strerror(errno));
    remove(tmp);
    return errmsg(err, errlen, path, "cannot write (disk full?)");
}

int st_save(const char* path, const model* m, const char* const* meta, int nmeta, char* err,
            size_t errlen)
{
    out_tensor o[MODEL_MAX_TENSORS + MODEL_MAX_LAYERS];
    int n = 0, row0, rows, cols;
    char name[ST_NAME];
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        st_name(m, t, name, sizeof name, &row0, &rows, &cols);
        out_tensor* d = out_find(o, &n, name, rows, cols);
        // PyTorch's second bias, zero: fnn's one bias per gate is the sum of the two.
        if (hh_into_b(m, t, name, sizeof name)) out_find(o, &n, name, rows, 0);
        if (!d->v) break;
        const real* p = m->params + t->offset;
        const int w = cols ? cols : 1;
        for (int i = 0; i < t->rows; i++)
            for (int j = 0; j < t->cols; j++) d->v[(size_t)(row0 + i) * w + j] = (float)p[(size_t)i * t->ld + j];
    }
    int rc = 0, oom = 0;
    for (int i = 0; i < n; i++) oom |= !o[i].v;
    rc = oom ? errmsg(err, errlen, path, "out of memory") : write_file(path, o, n, meta, nmeta, err, errlen);
    for (int i = 0; i < n; i++) free(o[i].v);
    return rc;
}
