// Background checkpoint saves (ckpt_async.h). Why a writer thread with pwrite, and not the
// others the issue names: HDF5 1.10 has no asynchronous writes (no async VOL in Debian), and
// Debian's build is not thread-safe, so HDF5 itself cannot run beside training; a collective
// MPI-IO write in a thread needs MPI_THREAD_MULTIPLE for the whole job (Debian's Open MPI 4.1
// has it, at a cost to every message); nonblocking MPI-IO progresses only inside MPI calls and
// ROMIO's independent ones fall back to blocking without POSIX AIO; a helper process would be
// forked after MPI_Init, which Open MPI does not support. Placing the datasets with HDF5 in the
// stall and writing their bytes with pwrite needs none of these: the thread touches only its
// own file descriptor and the staging buffer.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>
#include "io/ckpt_async.h"
#include "io/ckpt_write.h"
#include "io/h5.h"

// A run of the file written by one pwritev: its offset and its pieces in the staging buffer
// (rows of a tensor lie apart in memory, padded, and one after another in the file).
typedef struct run {
    uint64_t offset, bytes;
    int first, n; // iov[first, first + n)
} run;

struct ckpt_async {
    real* stage;  // parameters, moments, carried state, one after another
    size_t elems; // of stage
    model shadow; // the model's view with its buffers in stage: what the save writes
    run* runs;    // this rank's pieces of the file in flight
    int nruns, capruns;
    struct iovec* iov;
    int niov, capiov;
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

// Element counts of the staged buffers: parameters, one moment set, the carried state.
static size_t state_elems(const model* m)
{
    size_t n = (size_t)m->B * m->c.O;
    for (int l = 0; l < m->c.L; l++)
        n += (size_t)m->B * m->c.H + (m->cell->state ? (size_t)m->B * m->Hl : 0);
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
    for (int l = 0; l < m->c.L; l++) {
        a->shadow.h0s[l] = p, p += (size_t)m->B * m->c.H;
        if (m->cell->state) a->shadow.s0s[l] = p, p += (size_t)m->B * m->Hl;
    }
    a->shadow.f0 = p;
    return a;
}

// The stall's copy: every buffer the save reads, into its place in stage.
static void stage(ckpt_async* a, const model* m)
{
    model* s = &a->shadow;
    memcpy(s->params, m->params, m->nparams * sizeof(real));
    memcpy(s->m, m->m, model_own_elems(m) * sizeof(real));
    if (s->v) memcpy(s->v, m->v, model_own_elems(m) * sizeof(real));
    for (int l = 0; l < m->c.L; l++) {
        memcpy(s->h0s[l], m->h0s[l], (size_t)m->B * m->c.H * sizeof(real));
        if (m->cell->state) memcpy(s->s0s[l], m->s0s[l], (size_t)m->B * m->Hl * sizeof(real));
    }
    memcpy(s->f0, m->f0, (size_t)m->B * m->c.O * sizeof(real));
}

// Grows the array *p of *cap elements of size `size` to hold n + 1.
static void* grow(void* p, int n, int* cap, size_t size)
{
    if (n < *cap) return p;
    *cap = *cap ? 2 * *cap : 256;
    p = realloc(p, (size_t)*cap * size);
    if (!p) dist_fail("out of memory listing a checkpoint's pieces");
    return p;
}

static void add_run(void* arg, uint64_t offset, const void* p, size_t bytes)
{
    ckpt_async* a = arg;
    run* last = a->nruns ? &a->runs[a->nruns - 1] : NULL;
    if (!last || last->offset + last->bytes != offset || last->n == IOV_MAX) {
        a->runs = grow(a->runs, a->nruns, &a->capruns, sizeof *a->runs);
        a->runs[a->nruns++] = (run){.offset = offset, .first = a->niov};
        last = &a->runs[a->nruns - 1];
    }
    a->iov = grow(a->iov, a->niov, &a->capiov, sizeof *a->iov);
    a->iov[a->niov++] = (struct iovec){.iov_base = (void*)p, .iov_len = bytes};
    last->n++;
    last->bytes += bytes;
}

static void* write_runs(void* arg)
{
    ckpt_async* a = arg;
    const double t0 = now();
    int fd = open(a->tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) a->werr = errno;
    for (int i = 0; i < a->nruns && !a->werr; i++) {
        struct iovec* v = a->iov + a->runs[i].first;
        int n = a->runs[i].n;
        off_t at = (off_t)a->runs[i].offset;
        while (n && !a->werr) {
            ssize_t w = pwritev(fd, v, n, at);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) a->werr = w < 0 ? errno : EIO;
            if (w <= 0) break;
            at += w;
            // A short write: on from where it stopped.
            while (n && (size_t)w >= v->iov_len) w -= (ssize_t)v->iov_len, v++, n--;
            if (n) v->iov_base = (char*)v->iov_base + w, v->iov_len -= (size_t)w;
        }
    }
    if (fd >= 0 && !a->werr && fsync(fd)) a->werr = errno;
    if (fd >= 0 && close(fd) && !a->werr) a->werr = errno;
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
    a->keep = keep, a->step = st->step, a->nruns = a->niov = 0, a->werr = 0;
    stage(a, m);
    h5file place = {.place = add_run, .place_arg = a};
    int bad = ckpt_write_tmp(a->tmp, &a->shadow, cfg, st, 1, &place, err, errlen);
    if (bad) return ckpt_commit(a->tmp, a->path, bad, m->g, err, errlen);
    a->threaded = pthread_create(&a->writer, NULL, write_runs, a) == 0;
    if (!a->threaded) write_runs(a); // no thread to be had: this rank writes in the stall
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
    free(a->runs);
    free(a->iov);
    free(a);
}
