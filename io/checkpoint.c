// Checkpoint files (layout in checkpoint.h). Every tensor is one dataset of its full logical
// shape. The ranks that hold the same piece of a tensor (a DP group for TP-sharded tensors, the
// whole job for replicated ones) share its writing, each a contiguous run of the piece's rows, so
// every rank writes and a replicated tensor is written once. Reading, each rank reads its whole
// piece, whatever layout wrote the file. The optimiser's moments are written and read by their
// owners alone (ZeRO: each rank holds its own sub-pieces).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/checkpoint.h"
#include "io/ckpt_pieces.h"
#include "io/ckpt_write.h"
#include "io/build_info.h"
#include "io/durable.h"
#include "io/h5.h"
#include "model/gemm.h"

#define CKPT_FORMAT "fnn-checkpoint"
// Version 2 added the per-dataset digests (h5.h) and the build attributes. Version 1 files are
// refused rather than read unchecked: a file that claims version 1 would otherwise bypass every
// digest.
#define CKPT_VERSION 2

static h5_piece tensor_piece(const model_tensor* t)
{
    return (h5_piece){.rank = t->rank, .rows = t->rows, .cols = t->cols, .row0 = t->row0,
                      .nrows = t->lrows, .col0 = t->col0, .ncols = t->lcols, .ld = t->ld};
}

// Part `part` of `parts` ranks holding piece pc writes rows [r0, r1) of it; returns that share
// and its first row's offset in memory.
static h5_piece share(h5_piece pc, int part, int parts, size_t* offset)
{
    int r0 = (int)((long)pc.nrows * part / parts), r1 = (int)((long)pc.nrows * (part + 1) / parts);
    *offset = (size_t)r0 * pc.ld;
    pc.row0 += r0;
    pc.nrows = r1 - r0;
    return pc;
}

// The piece a rank reads; for the digest, the ranks that read the same piece (as in writing)
// each check a share of its rows.
static h5_piece read_piece(const model_tensor* t, const dist_grid* g)
{
    h5_piece pc = tensor_piece(t);
    pc.part = t->replicated ? g->world_rank : g->dp_rank;
    pc.parts = t->replicated ? g->world_size : g->dp;
    return pc;
}

// The tensors k of m with only[k] (NULL: all), from buf, as prefix/<name>.
static void write_set(h5file* h, const char* prefix, const model* m, const real* buf,
                      const unsigned char* only)
{
    const dist_grid* g = m->g;
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        if (only && !only[k]) continue;
        char name[96];
        snprintf(name, sizeof name, "%s/%s", prefix, t->name);
        size_t off;
        h5_piece pc = t->replicated ? share(tensor_piece(t), g->world_rank, g->world_size, &off)
                                    : share(tensor_piece(t), g->dp_rank, g->dp, &off);
        h5_write_piece(h, name, &pc, buf + t->offset + off);
    }
}

static void read_set(h5file* h, const char* prefix, model* m, real* buf, const unsigned char* only)
{
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        if (only && !only[k]) continue;
        char name[96];
        snprintf(name, sizeof name, "%s/%s", prefix, t->name);
        h5_piece pc = read_piece(t, m->g);
        h5_read_piece(h, name, &pc, buf + t->offset);
    }
}

// The optimiser's moments are held by their owners only (model/share.c): each rank writes and
// reads the rectangles of each tensor that its sub-piece covers. A replicated tensor's moments
// are held alike by every TP rank: those of TP rank 0 write them and count them in the digest.
enum { MAX_RECTS = 4 };

typedef struct rects {
    const model_tensor* t;
    h5_rect r[MAX_RECTS];
    int n;
} rects;

// One owned run of a row: extends the last rectangle when it continues it by whole rows.
static void add_run(size_t off, size_t n, size_t at, void* arg)
{
    rects* rs = arg;
    const model_tensor* t = rs->t;
    const size_t i = (off - t->offset) / (size_t)t->ld, j = (off - t->offset) % (size_t)t->ld;
    h5_rect* last = rs->n ? &rs->r[rs->n - 1] : NULL;
    if (last && last->col0 == t->col0 + (int)j && last->ncols == (int)n &&
        last->row0 + last->nrows == t->row0 + (int)i &&
        last->mem + (size_t)last->nrows * (size_t)t->ld == at) {
        last->nrows++;
        return;
    }
    // A contiguous sub-piece covers a partial row, whole rows and a partial row of a tensor.
    if (rs->n == MAX_RECTS) dist_fail("internal error: %s's owned part is not contiguous", t->name);
    rs->r[rs->n++] = (h5_rect){.row0 = t->row0 + (int)i, .nrows = 1, .col0 = t->col0 + (int)j,
                               .ncols = (int)n, .ld = t->ld, .mem = at};
}

static rects owned_rects(const model* m, const model_tensor* t)
{
    rects rs = {.t = t};
    model_owned_runs(m, t, add_run, &rs);
    return rs;
}

// Writes (write = 1) or reads the moments buf (m->m or m->v) of the tensors k with only[k]
// (NULL: all), as prefix/<name>.
static void moments(h5file* h, const char* prefix, const model* m, real* buf,
                    const unsigned char* only, int write)
{
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        if (only && !only[k]) continue;
        char name[96];
        snprintf(name, sizeof name, "%s/%s", prefix, t->name);
        rects rs = owned_rects(m, t);
        const int first = !t->replicated || m->g->tp_rank == 0;
        if (write) h5_write_rects(h, name, t->rank, t->rows, t->cols, rs.r, first ? rs.n : 0, buf);
        else h5_read_rects(h, name, t->rank, t->rows, t->cols, rs.r, rs.n, buf, first);
    }
}

// The carried state: this DP replica's rows of (Bglobal x H) per layer and (Bglobal x O), held
// whole by every rank of its TP group (all its micro-batches' rows: model_rank_rows).
static h5_piece state_piece(const model* m, int cols)
{
    const int rows = model_rank_rows(m);
    return (h5_piece){.rank = 2, .rows = m->Bglobal, .cols = cols, .row0 = m->g->dp_rank * rows,
                      .nrows = rows, .col0 = 0, .ncols = cols, .ld = cols};
}

// The cell's state (LSTM's c), which only the rank owning the hidden units holds: this rank's
// rows and block of columns of (Bglobal x H) per layer.
static h5_piece cell_state_piece(const model* m)
{
    const int rows = model_rank_rows(m);
    return (h5_piece){.rank = 2, .rows = m->Bglobal, .cols = m->c.H, .row0 = m->g->dp_rank * rows,
                      .nrows = rows, .col0 = m->h0, .ncols = m->Hl, .ld = m->Hl, .parts = 1};
}

static void write_state(h5file* h, const model* m)
{
    char name[64];
    size_t off;
    for (int l = 0; l < m->c.L; l++) {
        snprintf(name, sizeof name, "/train/state/h%d", l);
        h5_piece pc = share(state_piece(m, m->c.H), m->g->tp_rank, m->g->tp, &off);
        h5_write_piece(h, name, &pc, m->h0r[l] + off);
        if (!m->cell->state) continue;
        snprintf(name, sizeof name, "/train/state/%s%d", m->cell->state_name, l);
        h5_piece cs = cell_state_piece(m);
        h5_write_piece(h, name, &cs, m->s0r[l]);
    }
    h5_piece pc = share(state_piece(m, m->c.O), m->g->tp_rank, m->g->tp, &off);
    h5_write_piece(h, "/train/state/f", &pc, m->f0r + off);
}

static void write_config(h5file* h, const model_config* c, const fnn_config* cfg)
{
    h5_put_str(h, "/config", "format", CKPT_FORMAT);
    h5_put_long(h, "/config", "version", CKPT_VERSION);
    h5_put_str(h, "/config", "task", config_enum_name("task", c->task));
    h5_put_str(h, "/config", "activation", config_enum_name("activation", c->act));
    h5_put_str(h, "/config", "feedback", config_enum_name("feedback", c->feedback));
    h5_put_str(h, "/config", "feedback_source", config_enum_name("feedback_source", c->feedback_source));
    h5_put_str(h, "/config", "init", config_enum_name("init", c->wh_init));
    h5_put_str(h, "/config", "cell", config_enum_name("cell", c->cell));
    h5_put_long(h, "/config", "vocab", c->V);
    h5_put_long(h, "/config", "embed", c->D);
    h5_put_long(h, "/config", "hidden", c->H);
    h5_put_long(h, "/config", "layers", c->L);
    h5_put_long(h, "/config", "outputs", c->O);
    h5_put_u64(h, "/config", "seed", c->seed);
    char* text = NULL;
    size_t len = 0;
    FILE* f = open_memstream(&text, &len);
    if (f) {
        config_print(cfg, f);
        fclose(f);
    }
    h5_put_str(h, "/config", "run_config", text ? text : "");
    free(text);
    h5_put_str(h, "/config", "score", config_enum_name("score", cfg->score));
    h5_put_str(h, "/config", "fnn_version", build_version());
    h5_put_str(h, "/config", "build_compiler", build_compiler());
    h5_put_str(h, "/config", "build_flags", build_flags());
    h5_put_str(h, "/config", "gemm_kernel", gemm_kernel_name());
    // The run's, for the record: the parameters are the float32 masters at either precision.
    h5_put_str(h, "/config", "precision", config_enum_name("precision", c->precision));
}

static void write_train(h5file* h, const ckpt_train* st)
{
    h5_put_long(h, "/train", "step", st->step);
    h5_put_long(h, "/train", "epoch", st->epoch);
    h5_put_long(h, "/train", "cursor", st->cursor);
    h5_put_u64(h, "/train", "rng_seed", st->rng_seed);
    h5_put_long(h, "/train", "writer_tp", st->writer_tp);
    h5_put_long(h, "/train", "writer_dp", st->writer_dp);
    h5_put_long(h, "/train", "global_batch", st->global_batch);
    h5_put_long(h, "/train", "seq_len", st->seq_len);
    h5_put_long(h, "/train", "carry_state", st->carry_state);
    h5_put_str(h, "/train", "optimizer", config_enum_name("optimizer", st->optimizer));
    if (st->run_id[0]) h5_put_str(h, "/train", "run_id", st->run_id);
}

int ckpt_commit(const char* tmp, const char* path, int bad, dist_grid* g, char* err,
                size_t errlen)
{
    if (!bad) bad = h5_readback(tmp, g->world, err, errlen); // agreed, as bad is
    if (dist_any(bad, g)) {
        if (g->world_rank == 0) remove(tmp);
        if (!bad) snprintf(err, errlen, "%s: writing failed on another rank", path);
        return -1;
    }
    if (g->world_rank == 0) {
        bad = durable_rename(tmp, path) != 0;
        if (bad) snprintf(err, errlen, "%s: cannot rename %s into place (%s)", path, tmp, strerror(errno));
    }
    if (dist_any(bad, g)) {
        if (g->world_rank != 0) snprintf(err, errlen, "%s: cannot rename into place", path);
        return -1;
    }
    return 0;
}

// Storage a checkpoint takes: `sets` copies of the parameters, the carried state, and room for
// HDF5's metadata and the attributes. The two-layer test model's file (33 datasets) holds 30 KiB
// beside its data; 4 KiB per dataset and 256 KiB more leave a wide margin.
static size_t file_bytes(const model* m, int sets, int carry)
{
    size_t elems = 0;
    for (int k = 0; k < m->ntensors; k++) elems += (size_t)m->tensors[k].rows * m->tensors[k].cols;
    elems *= (size_t)sets;
    if (carry) elems += (size_t)m->Bglobal * ((size_t)(1 + m->cell->state) * m->c.H * m->c.L + m->c.O);
    return elems * sizeof(float) + (size_t)m->ntensors * sets * 4096 + (256u << 10);
}

// "a,b,c": the names of the tensors k of m with mask[k] (NULL: all).
static void names_of(const model* m, const unsigned char* mask, char* out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int k = 0; k < m->ntensors && used < len; k++)
        if (!mask || mask[k])
            used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "," : "", m->tensors[k].name);
}

// mask[k] = whether tensor k's name is in the comma-separated list.
static void mask_of(const model* m, const char* list, unsigned char* mask)
{
    for (int k = 0; k < m->ntensors; k++) {
        const char* name = m->tensors[k].name;
        const size_t n = strlen(name);
        mask[k] = 0;
        for (const char* p = list; *p && !mask[k];) {
            const size_t len = strcspn(p, ",");
            mask[k] = len == n && !strncmp(p, name, n);
            p += len + (p[len] == ',');
        }
    }
}

enum { NAMES_LEN = MODEL_MAX_TENSORS * 32, STARTS_LEN = MODEL_MAX_TENSORS * 56 };

// "a=3,b=0": the start steps of the tensors k of m with mask[k].
static void starts_of(const model* m, const unsigned char* mask, const long* start, char* out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int k = 0; k < m->ntensors && used < len; k++)
        if (mask[k])
            used += (size_t)snprintf(out + used, len - used, "%s%s=%ld", used ? "," : "",
                                     m->tensors[k].name, start[k]);
}

// start[k] from the list for the tensors with has[k], -1 for the others; a tensor with state
// and no step (>= 0) in the list is a damaged file.
static void starts_from(h5file* h, const model* m, const char* list, const unsigned char* has, long* start)
{
    for (int k = 0; k < m->ntensors; k++) {
        const char* name = m->tensors[k].name;
        const size_t n = strlen(name);
        start[k] = -1;
        for (const char* p = list; *p && has[k] && start[k] < 0;) {
            const size_t len = strcspn(p, ",");
            char* end;
            if (len > n && !strncmp(p, name, n) && p[n] == '=') {
                const long v = strtol(p + n + 1, &end, 10);
                start[k] = end == p + len && end > p + n + 1 ? v : -1;
            }
            p += len + (p[len] == ',');
        }
        if (has[k] && start[k] < 0 && !h->failed)
            h5_fail(h, "/finetune/optim_start has no step for %s (damaged file?)", name);
    }
}

static void write_finetune(h5file* h, const model* m, const ckpt_train* st)
{
    char names[NAMES_LEN];
    names_of(m, st->transferred, names, sizeof names);
    h5_put_str(h, "/finetune", "transferred", names);
    names_of(m, st->optim_state, names, sizeof names);
    h5_put_str(h, "/finetune", "optim_state", names);
    char starts[STARTS_LEN];
    starts_of(m, st->optim_state, st->start, starts, sizeof starts);
    h5_put_str(h, "/finetune", "optim_start", starts);
    if (st->theta0) write_set(h, "/finetune/theta0", m, st->theta0, st->transferred);
}

int ckpt_write_tmp(const char* tmp, const model* m, const fnn_config* cfg, const ckpt_train* st,
                   int with_optim, const h5file* place, char* err, size_t errlen)
{
    h5file h;
    h5_create(&h, tmp, m->g->world, err, errlen);
    if (place) h.place = place->place, h.place_arg = place->place_arg;
    // An upper bound: the optimiser sets may hold fewer tensors than all.
    h5_reserve(&h, file_bytes(m, (with_optim ? (st->optimizer == OPT_SGD ? 2 : 3) : 1) +
                                     (st->theta0 != NULL), st->carry_state));
    write_config(&h, &m->c, cfg);
    write_train(&h, st);
    write_set(&h, "/params", m, m->params, NULL);
    if (with_optim && st->optimizer == OPT_SGD)
        moments(&h, "/optim/momentum", m, m->m, st->optim_state, 1);
    if (with_optim && st->optimizer != OPT_SGD) {
        moments(&h, "/optim/m", m, m->m, st->optim_state, 1);
        moments(&h, "/optim/v", m, m->v, st->optim_state, 1);
    }
    if (st->transferred) write_finetune(&h, m, st);
    if (st->carry_state) write_state(&h, m);
    return h5_close(&h);
}

int ckpt_save(const char* path, const model* m, const fnn_config* cfg, const ckpt_train* st,
              int with_optim, char* err, size_t errlen)
{
    char tmp[CONFIG_PATH + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    // HDF5 lays out the file and its metadata; each rank then writes its pieces with pwritev.
    // Collective MPI-IO transfers (two-phase: every byte through an aggregator) reached 17-68%
    // of the raw write + fsync speed at 1-4 ranks on this build machine, these 31-89% (README,
    // Performance); and ckpt_async writes the same way.
    ckpt_pieces pieces = {0};
    const h5file place = {.place = ckpt_pieces_add, .place_arg = &pieces};
    int bad = ckpt_write_tmp(tmp, m, cfg, st, with_optim, &place, err, errlen);
    const int werr = bad ? 0 : ckpt_pieces_write(&pieces, tmp);
    ckpt_pieces_free(&pieces);
    if (werr) snprintf(err, errlen, "%s: cannot write (%s)", tmp, strerror(werr));
    // Every rank reports the failing rank's error.
    if (!bad) bad = dist_comm_agree(werr != 0, err, errlen, m->g->world);
    return ckpt_commit(tmp, path, bad, m->g, err, errlen);
}

int ckpt_save_grads(const char* path, model* m, char* err, size_t errlen)
{
    // A backward pass over DP replicas leaves each rank its sub-pieces' sums: the file needs
    // every piece whole.
    model_grads_whole(m);
    char tmp[CONFIG_PATH + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    h5file h;
    h5_create(&h, tmp, m->g->world, err, errlen);
    write_set(&h, "/grads", m, m->grads, NULL);
    int bad = h5_close(&h);
    return ckpt_commit(tmp, path, bad, m->g, err, errlen);
}

// An enumerated /config attribute (stored by name) -> its value.
static int get_enum(h5file* h, const char* key)
{
    char name[64];
    h5_get_str(h, "/config", key, name, sizeof name);
    int v = config_enum_value(key, name);
    if (v < 0 && !h->failed) h5_fail(h, "/config/%s = '%s' is not a known value", key, name);
    return v;
}

// An integer attribute that must lie in [lo, hi]: anything else is a damaged file, refused
// before it can size a model.
static int get_int(h5file* h, const char* obj, const char* key, long lo, long hi)
{
    long v = h5_get_long(h, obj, key);
    if (!h->failed && (v < lo || v > hi))
        h5_fail(h, "%s/%s = %ld is out of range [%ld, %ld] (damaged file?)", obj, key, v, lo, hi);
    return (int)v;
}

static void read_config(h5file* h, model_config* c)
{
    char format[32];
    h5_get_str(h, "/config", "format", format, sizeof format);
    if (!h->failed && strcmp(format, CKPT_FORMAT))
        h5_fail(h, "/config/format is '%s', not an fnn checkpoint", format);
    long version = h5_get_long(h, "/config", "version");
    if (!h->failed && version == 1)
        h5_fail(h, "format version 1 has no checksums; this fnn reads version %d only (load it "
                "with the fnn that wrote it, or train afresh)", CKPT_VERSION);
    else if (!h->failed && version != CKPT_VERSION)
        h5_fail(h, "format version %ld; this fnn reads version %d", version, CKPT_VERSION);
    c->task = get_enum(h, "task");
    c->act = get_enum(h, "activation");
    c->feedback = get_enum(h, "feedback");
    c->feedback_source = get_enum(h, "feedback_source");
    c->wh_init = get_enum(h, "init");
    // Files from before gated cells have no cell attribute: their cell is Elman's.
    c->cell = h5_has_attr(h, "/config", "cell") ? get_enum(h, "cell") : CELL_ELMAN;
    c->V = get_int(h, "/config", "vocab", 0, 1 << 24);
    c->D = get_int(h, "/config", "embed", 1, 1 << 24);
    c->H = get_int(h, "/config", "hidden", 1, 1 << 24);
    c->L = get_int(h, "/config", "layers", 1, MODEL_MAX_LAYERS);
    c->O = get_int(h, "/config", "outputs", 1, 1 << 24);
    c->seed = h5_get_u64(h, "/config", "seed");
}

static void read_train(h5file* h, ckpt_train* st)
{
    st->step = h5_get_long(h, "/train", "step");
    st->epoch = h5_get_long(h, "/train", "epoch");
    st->cursor = h5_get_long(h, "/train", "cursor");
    st->rng_seed = h5_get_u64(h, "/train", "rng_seed");
    st->writer_tp = get_int(h, "/train", "writer_tp", 1, 1 << 24);
    st->writer_dp = get_int(h, "/train", "writer_dp", 1, 1 << 24);
    st->global_batch = get_int(h, "/train", "global_batch", 1, 1 << 30);
    st->seq_len = get_int(h, "/train", "seq_len", 1, 1 << 30);
    st->carry_state = get_int(h, "/train", "carry_state", 0, 1);
    char name[32];
    h5_get_str(h, "/train", "optimizer", name, sizeof name);
    st->optimizer = config_enum_value("optimizer", name);
    if (!h->failed && st->optimizer < 0) h5_fail(h, "/train/optimizer = '%s' is not known", name);
    if (!h->failed && st->step < 0) h5_fail(h, "/train/step = %ld is negative", st->step);
}

// Which steps a regression scores: /config/score; a file from before that attribute says it only
// in its run config's "score = " line, and one without that line scored every step.
static int read_score(h5file* h)
{
    if (h5_has_attr(h, "/config", "score")) return get_enum(h, "score");
    enum { RUN_CONFIG_LEN = 1 << 16 };
    static const char key[] = "score = ";
    char* text = malloc(RUN_CONFIG_LEN);
    if (!text) return h5_fail(h, "out of memory"), SCORE_ALL;
    text[0] = '\0';
    if (h5_has_attr(h, "/config", "run_config"))
        h5_get_str(h, "/config", "run_config", text, RUN_CONFIG_LEN);
    const char* line = text;
    while (line && strncmp(line, key, sizeof key - 1)) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    int score = SCORE_ALL;
    if (line && !h->failed) {
        const char* v = line + sizeof key - 1;
        int n = (int)strcspn(v, "\n");
        char name[16];
        snprintf(name, sizeof name, "%.*s", n, v);
        score = n < (int)sizeof name ? config_enum_value("score", name) : -1;
        if (score < 0) h5_fail(h, "its run config says score = %.*s, not all or last", n, v);
    }
    free(text);
    return score;
}

struct ckpt_file {
    h5file h;
    char path[CONFIG_PATH + 32];
};

ckpt_file* ckpt_open(const char* path, MPI_Comm comm, char* err, size_t errlen)
{
    ckpt_file* f = calloc(1, sizeof *f);
    if (!f) dist_fail("out of memory opening %s", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    if (!h5_open(&f->h, f->path, comm, err, errlen)) return f;
    h5_close(&f->h);
    free(f);
    return NULL;
}

int ckpt_close(ckpt_file* f)
{
    const int bad = h5_close(&f->h);
    free(f);
    return bad ? -1 : 0;
}

int ckpt_ok(ckpt_file* f)
{
    return h5_agree(&f->h) ? -1 : 0;
}

int ckpt_get_meta(ckpt_file* f, model_config* mc, ckpt_train* st, char* run_config, size_t run_len)
{
    memset(mc, 0, sizeof *mc);
    read_config(&f->h, mc);
    if (st) read_train(&f->h, st);
    if (st) st->score = read_score(&f->h);
    if (run_config) h5_get_str(&f->h, "/config", "run_config", run_config, run_len);
    return ckpt_ok(f);
}

void ckpt_get_params(ckpt_file* f, model* m, const unsigned char* only, int with_optim)
{
    h5file* h = &f->h;
    read_set(h, "/params", m, m->params, only);
    unsigned char state[MODEL_MAX_TENSORS];
    const unsigned char* has = NULL;
    if (with_optim && h5_exists(h, "/finetune")) {
        char names[NAMES_LEN];
        h5_get_str(h, "/finetune", "optim_state", names, sizeof names);
        mask_of(m, names, state);
        has = state;
    }
    if (with_optim && h5_exists(h, "/optim/momentum")) {
        moments(h, "/optim/momentum", m, m->m, has, 0);
    } else if (with_optim) {
        moments(h, "/optim/m", m, m->m, has, 0);
        moments(h, "/optim/v", m, m->v, has, 0);
    }
}

void ckpt_get_finetune(ckpt_file* f, model* m, unsigned char* transferred, long* start, real* theta0)
{
    h5file* h = &f->h;
    char names[NAMES_LEN], starts[STARTS_LEN];
    unsigned char has[MODEL_MAX_TENSORS];
    if (!h5_exists(h, "/finetune")) h5_fail(h, "no /finetune: not written by a fine-tuning run (init_from)");
    h5_get_str(h, "/finetune", "transferred", names, sizeof names);
    mask_of(m, names, transferred);
    h5_get_str(h, "/finetune", "optim_state", names, sizeof names);
    mask_of(m, names, has);
    h5_get_str(h, "/finetune", "optim_start", starts, sizeof starts);
    starts_from(h, m, starts, has, start);
    if (theta0) read_set(h, "/finetune/theta0", m, theta0, transferred);
}

void ckpt_get_state(ckpt_file* f, model* m)
{
    h5file* h = &f->h;
    long bg = h5_get_long(h, "/train", "global_batch");
    if (!h->failed && bg != m->Bglobal)
        h5_fail(h, "carried state is for a global batch of %ld, this run has batch = %d", bg,
                m->Bglobal);
    char name[64];
    for (int l = 0; l < m->c.L; l++) {
        snprintf(name, sizeof name, "/train/state/h%d", l);
        h5_piece pc = state_piece(m, m->c.H);
        pc.part = m->g->tp_rank, pc.parts = m->g->tp;
        h5_read_piece(h, name, &pc, m->h0r[l]);
        if (!m->cell->state) continue;
        snprintf(name, sizeof name, "/train/state/%s%d", m->cell->state_name, l);
        h5_piece cs = cell_state_piece(m);
        h5_read_piece(h, name, &cs, m->s0r[l]);
    }
    h5_piece pc = state_piece(m, m->c.O);
    pc.part = m->g->tp_rank, pc.parts = m->g->tp;
    h5_read_piece(h, "/train/state/f", &pc, m->f0r);
}

int ckpt_read_meta(const char* path, MPI_Comm comm, model_config* mc, ckpt_train* st,
                   char* run_config, size_t run_len, char* err, size_t errlen)
{
    memset(mc, 0, sizeof *mc);
    ckpt_file* f = ckpt_open(path, comm, err, errlen);
    if (!f) return -1;
    ckpt_get_meta(f, mc, st, run_config, run_len);
    return ckpt_close(f);
}

int ckpt_load(const char* path, model* m, const unsigned char* only, int with_optim, char* err,
              size_t errlen)
{
    ckpt_file* f = ckpt_open(path, m->g->world, err, errlen);
    if (!f) return -1;
    ckpt_get_params(f, m, only, with_optim);
    return ckpt_close(f);
}

int ckpt_verify(const char* path, MPI_Comm comm, char* err, size_t errlen)
{
    h5file h;
    model_config mc;
    ckpt_train st;
    if (!h5_open(&h, path, comm, err, errlen)) {
        read_config(&h, &mc);
        read_train(&h, &st);
        h5_read_all(&h);
    }
    return h5_close(&h) ? -1 : 0;
}
