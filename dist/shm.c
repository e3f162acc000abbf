// Memory shared by the DP replicas of one node: an MPI-3 shared-memory window over dpn_comm.
// Replicas hold the same weights, so the node stores their packed copy once, and the DP
// reduction and the exchange of updated parameters become loads and stores of each other's
// segments instead of messages through Open MPI's shared-memory transport (which copies twice).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include "dist/dist.h"

static size_t round64(size_t n)
{
    return (n + 63) / 64 * 64;
}

static char* align64(char* p)
{
    return (char*)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

// Open MPI backs the window with a file in /dev/shm (its default osc_sm_backing_directory) that
// grows on first touch: a full /dev/shm would kill the job with SIGBUS in the middle of a step,
// so refuse here with a reason. The node's other groups (other TP ranks, other FNN_SHARE_DP
// groups) allocate windows of about the same size at the same time: count them too.
static void check_room(size_t bytes, const dist_grid* g)
{
    struct statvfs fs;
    if (statvfs("/dev/shm", &fs) != 0) return;
    const size_t groups = (size_t)(g->node_ranks / g->dpn > 0 ? g->node_ranks / g->dpn : 1);
    const size_t need = bytes * groups, avail = (size_t)fs.f_bavail * fs.f_frsize;
    if (avail < need)
        dist_fail("the DP replicas on this node need %zu MiB of shared memory and /dev/shm has "
                  "%zu MiB free: enlarge it or set FNN_SHARE_DP=1 (no sharing)",
                  need >> 20, avail >> 20);
}

void dist_shm_alloc(dist_shm* s, size_t seg_bytes, size_t shared_bytes, dist_grid* g)
{
    memset(s, 0, sizeof *s);
    s->win = MPI_WIN_NULL;
    seg_bytes = round64(seg_bytes);
    shared_bytes = round64(shared_bytes);
    s->seg = calloc((size_t)g->dpn, sizeof *s->seg);
    if (!s->seg) dist_fail("out of memory");
    if (g->dpn == 1) {
        // Anonymous pages (page-aligned, zero): a buffer costs memory only once written, so a
        // fresh start's orthogonal init runs before gradients and moments take any (run/memory_plan.c).
        s->alloc_bytes = seg_bytes + shared_bytes;
        s->alloc = mmap(NULL, s->alloc_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s->alloc == MAP_FAILED) dist_fail("out of memory for %zu MiB of parameters", seg_bytes >> 20);
        s->zeroed = 1;
        s->seg[0] = s->alloc;
        s->shared = s->seg[0] + seg_bytes;
        return;
    }
    if (g->dpn_rank == 0) check_room(seg_bytes * (size_t)g->dpn + shared_bytes, g);
    // Non-contiguous: each segment starts on a page of its own, first touched by its owner.
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    char* mine;
    MPI_Aint bytes = (MPI_Aint)(seg_bytes + (g->dpn_rank == 0 ? shared_bytes : 0) + 64);
    MPI_Win_allocate_shared(bytes, 1, info, g->dpn_comm, &mine, &s->win);
    MPI_Info_free(&info);
    for (int r = 0; r < g->dpn; r++) {
        MPI_Aint size;
        int unit;
        char* base;
        MPI_Win_shared_query(s->win, r, &size, &unit, &base);
        s->seg[r] = align64(base);
    }
    s->shared = s->seg[0] + seg_bytes;
    // One passive epoch for the window's life: loads and stores, ordered by dist_shm_sync.
    MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win);
}

void dist_shm_free(dist_shm* s)
{
    if (!s->seg) return; // never allocated
    if (s->win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(s->win);
        MPI_Win_free(&s->win);
    }
    if (s->alloc) munmap(s->alloc, s->alloc_bytes);
    free(s->seg);
    memset(s, 0, sizeof *s);
    s->win = MPI_WIN_NULL;
}

void dist_shm_sync(dist_shm* s, dist_grid* g)
{
    if (s->win == MPI_WIN_NULL) return;
    double t0 = MPI_Wtime();
    MPI_Win_sync(s->win);
    MPI_Barrier(g->dpn_comm);
    MPI_Win_sync(s->win);
    dist_counted(g, DIST_SYNC, t0);
}

void dist_shm_sum(dist_shm* s, size_t off, size_t n, dist_grid* g)
{
    if (g->dpn == 1) return;
    double t0 = MPI_Wtime();
    enum { BLOCK = 1024 };
    real acc[BLOCK];
    real* out = (real*)s->seg[g->dpn_rank] + off;
    // Through a block buffer: this rank's own values are an input of the sum it overwrites.
    for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
        const size_t nb = n - i0 < BLOCK ? n - i0 : BLOCK;
        memcpy(acc, (real*)s->seg[0] + off + i0, nb * sizeof(real));
        for (int r = 1; r < g->dpn; r++) {
            const real* in = (real*)s->seg[r] + off + i0;
            for (size_t i = 0; i < nb; i++) acc[i] += in[i];
        }
        memcpy(out + i0, acc, nb * sizeof(real));
    }
    dist_counted(g, -1, t0);
}

void dist_shm_copy(dist_shm* s, int r, size_t off, size_t n, dist_grid* g)
{
    double t0 = MPI_Wtime();
    memcpy((real*)s->seg[g->dpn_rank] + off, (real*)s->seg[r] + off, n * sizeof(real));
    dist_counted(g, -1, t0);
}
