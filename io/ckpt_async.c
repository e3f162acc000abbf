// Background checkpoint saves (ckpt_async.h). Why a writer thread with pwrite, and not the
// others the issue names: HDF5 1.10 has no asynchronous writes (no async VOL in Debian), and
// Debian's build is not thread-safe, so HDF5 itself cannot run beside training; a collective
// MPI-IO write in a thread needs MPI_THREAD_MULTIPLE for the whole job (Debian's Open MPI 4.1
// has it, at a cost to every message); nonblocking MPI-IO progresses only inside MPI calls and
// ROMIO's independent ones fall back to blocking without POSIX AIO; a helper process would be
// forked after MPI_Init, which Open MPI does not support. Placing the datasets with HDF5 in the
// stall and writing their bytes with pwrite needs none of these: the thread touches only its
// own file descriptor and the staging buffer.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "io/ckpt_async.h"
#include "io/ckpt_pieces.h"
#include "io/ckpt_write.h"
#include "io/h5.h"

struct ckpt_async {
    real* stage;  // parameters, moments, carried state, one after another
    size_t elems; // of stage
    model shadow; // the model's view with its buffers in stage: what the save writes
    ckpt_pieces pieces; // this rank's pieces of the file in flight
    pthread_t writer;
    int pending;      // a save is in flight, to be committed by ckpt_async_wait
    int threaded;     // its writer thread runs (to be joined)
    int werr;         // the writer's errno of the first failed write, 0 = none
    char path[CONFIG_PATH + 32], tmp[CONFIG_PATH + 48], dir[CONFIG_PATH], run_id[CKPT_RUN_ID];
    int keep;
    long step;
    double stall, write; // seconds: the last save's stall and its writer's work
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Elements of the carried state of this replica's rows (all its micro-batches'): h (and the
// cell's state) per layer, f.
static size_t state_elems(const model* m)
{
    const size_t rows = (size_t)model_rank_rows(m);
    size_t n = rows * m->c.O;
    for (int l = 0; l < m->c.L; l++)
        n += rows * m->c.H + (m->cell->state ? rows * m->Hl : 0);
    return n;
}

static size_t stage_elems(const model* m, int optimizer)
{
    return m->nparams + (size_t)(optimizer == OPT_SGD ? 1 : 2) * model_own_elems(m) + state_elems(m);
}

size_t ckpt_async_bytes(const model* m, int optimizer)
{
    return stage_elems(m, optimizer) * sizeof(real);
}

ckpt_async* ckpt_async_new(const model* m, int optimizer, char* err, size_t errlen)
{
    ckpt_async* a = calloc(1, sizeof *a);
    if (a) a->elems = stage_elems(m, optimizer);
    if (a) a->stage = malloc(a->elems * sizeof(real));
    if (!a || !a->stage) {
        snprintf(err, errlen, "ckpt_async: no memory for the %.1f MiB staging buffer",
                 ckpt_async_bytes(m, optimizer) / 1048576.0);
        free(a);
        return NULL;
    }
    // The shadow's buffers, laid out once: the same for every save of m.
    a->shadow = *m;
    real* p = a->stage;
    a->shadow.params = p, p += m->nparams;
    a->shadow.m = p, p += model_own_elems(m);
    a->shadow.v = optimizer == OPT_SGD ? NULL : p;
    if (optimizer != OPT_SGD) p += model_own_elems(m);
    const size_t rows = (size_t)model_rank_rows(m);
    for (int l = 0; l < m->c.L; l++) {
        a->shadow.h0r[l] = p, p += rows * m->c.H;
        if (m->cell->state) a->shadow.s0r[l] = p, p += rows * m->Hl;
    }
    a->shadow.f0r = p;
    return a;
}

// The stall's copy: every buffer the save reads, into its place in stage.
static void stage(ckpt_async* a, const model* m)
{
    model* s = &a->shadow;
    memcpy(s->params, m->params, m->nparams * sizeof(real));
    memcpy(s->m, m->m, model_own_elems(m) * sizeof(real));
    if (s->v) memcpy(s->v, m->v, model_own_elems(m) * sizeof(real));
    const size_t rows = (size_t)model_rank_rows(m);
    for (int l = 0; l < m->c.L; l++) {
        memcpy(s->h0r[l], m->h0r[l], rows * m->c.H * sizeof(real));
        if (m->cell->state) memcpy(s->s0r[l], m->s0r[l], rows * m->Hl * sizeof(real));
    }
    memcpy(s->f0r, m->f0r, rows * m->c.O * sizeof(real));
}

static void* write_pieces(void* arg)
{
    ckpt_async* a = arg;
    const double t0 = now();
    a->werr = ckpt_pieces_write(&a->pieces, a->tmp);
    a->write = now() - t0;
    return NULL;
}

long ckpt_async_wait(ckpt_async* a, char* err, size_t errlen)
{
    if (!a->pending) return 0;
    if (a->threaded) pthread_join(a->writer, NULL);
    a->pending = a->threaded = 0;
    if (a->werr) snprintf(err, errlen, "%s: cannot write (%s)", a->tmp, strerror(a->werr));
    dist_grid* g = a->shadow.g;
    // Every rank's writes must have succeeded before rank 0 renames the file into place; all
    // report the failing rank's error.
    const int bad = dist_comm_agree(a->werr != 0, err, errlen, g->world);
    if (ckpt_commit(a->tmp, a->path, bad, g, err, errlen) ||
        ckpt_dir_point(a->dir, a->keep, a->step, a->run_id, g, err, errlen))
        return -1;
    return a->step;
}

int ckpt_async_save(ckpt_async* a, const char* dir, int keep, const model* m,
                    const fnn_config* cfg, const ckpt_train* st, char* err, size_t errlen)
{
    if (ckpt_async_wait(a, err, errlen) < 0) return -1;
    const double t0 = now();
    if (ckpt_dir_prepare(dir, st->step, m->g, a->path, sizeof a->path, err, errlen)) return -1;
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", a->path);
    snprintf(a->dir, sizeof a->dir, "%s", dir);
    snprintf(a->run_id, sizeof a->run_id, "%s", st->run_id);
    a->keep = keep, a->step = st->step, a->werr = 0;
    stage(a, m);
    h5file place = {.place = ckpt_pieces_add, .place_arg = &a->pieces};
    int bad = ckpt_write_tmp(a->tmp, &a->shadow, cfg, st, 1, &place, err, errlen);
    if (bad) return ckpt_commit(a->tmp, a->path, bad, m->g, err, errlen);
    a->threaded = pthread_create(&a->writer, NULL, write_pieces, a) == 0;
    if (!a->threaded) write_pieces(a); // no thread to be had: this rank writes in the stall
    a->pending = 1;
    a->stall = now() - t0;
    return 0;
}

void ckpt_async_times(const ckpt_async* a, double* stall, double* write)
{
    *stall = a->stall;
    *write = a->write;
}

void ckpt_async_free(ckpt_async* a)
{
    if (!a) return;
    free(a->stage);
    ckpt_pieces_free(&a->pieces);
    free(a);
}
