// A checkpoint's pieces, written with pwritev (ckpt_pieces.h).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include "dist/dist.h"
#include "io/ckpt_pieces.h"

// Grows the array p of *cap elements of size `size` to hold n + 1.
static void* grow(void* p, int n, int* cap, size_t size)
{
    if (n < *cap) return p;
    *cap = *cap ? 2 * *cap : 256;
    p = realloc(p, (size_t)*cap * size);
    if (!p) dist_fail("out of memory listing a checkpoint's pieces");
    return p;
}

void ckpt_pieces_add(void* arg, uint64_t offset, const void* p, size_t bytes)
{
    ckpt_pieces* c = arg;
    ckpt_run* last = c->nruns ? &c->runs[c->nruns - 1] : NULL;
    if (!last || last->offset + last->bytes != offset || last->n == IOV_MAX) {
        c->runs = grow(c->runs, c->nruns, &c->capruns, sizeof *c->runs);
        c->runs[c->nruns++] = (ckpt_run){.offset = offset, .first = c->niov};
        last = &c->runs[c->nruns - 1];
    }
    c->iov = grow(c->iov, c->niov, &c->capiov, sizeof *c->iov);
    c->iov[c->niov++] = (struct iovec){.iov_base = (void*)p, .iov_len = bytes};
    last->n++;
    last->bytes += bytes;
}

int ckpt_pieces_write(ckpt_pieces* c, const char* path)
{
    int err = 0, fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) err = errno;
    for (int i = 0; i < c->nruns && !err; i++) {
        struct iovec* v = c->iov + c->runs[i].first;
        int n = c->runs[i].n;
        off_t at = (off_t)c->runs[i].offset;
        while (n && !err) {
            ssize_t w = pwritev(fd, v, n, at);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) err = w < 0 ? errno : EIO;
            if (w <= 0) break;
            at += w;
            // A short write: on from where it stopped.
            while (n && (size_t)w >= v->iov_len) w -= (ssize_t)v->iov_len, v++, n--;
            if (n) v->iov_base = (char*)v->iov_base + w, v->iov_len -= (size_t)w;
        }
    }
    if (fd >= 0 && !err && fsync(fd)) err = errno;
    if (fd >= 0 && close(fd) && !err) err = errno;
    c->nruns = c->niov = 0;
    return err;
}

void ckpt_pieces_free(ckpt_pieces* c)
{
    free(c->runs);
    free(c->iov);
    *c = (ckpt_pieces){0};
}
