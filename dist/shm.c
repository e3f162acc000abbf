// The DP replicas of a shard (dist_replicas, dist.h). On one node they share memory: an MPI-3
// shared-memory window over dpn_comm. Replicas hold the same weights, so the node stores their
// packed copy once, and the DP reduction and the exchange of updated parameters become loads and
// stores of each other's segments instead of messages through Open MPI's shared-memory transport
// (which copies twice). Between nodes they exchange messages over dpx_comm, in flight in the
// object until waited for.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include "dist/dist.h"

struct dist_replicas {
    dist_grid* g;
    MPI_Win win;  // MPI_WIN_NULL without a window
    char** seg;   // seg[r]: member r's segment
    char* shared; // the common area
    void* alloc;  // what to unmap without a window (alloc_bytes of fresh anonymous pages)
    size_t alloc_bytes;
    int zeroed;   // every byte reads 0 until written
    dist_pending pending; // the exchanges over dpx_comm in flight
};

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

dist_replicas* dist_replicas_alloc(size_t seg_bytes, size_t shared_bytes, dist_grid* g)
{
    dist_replicas* s = calloc(1, sizeof *s);
    if (!s) dist_fail("out of memory");
    s->g = g;
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
        return s;
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
    // One passive epoch for the window's life: loads and stores, ordered by the waits.
    MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win);
    return s;
}

void dist_replicas_free(dist_replicas* s)
{
    if (!s) return; // never allocated
    if (s->win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(s->win);
        MPI_Win_free(&s->win);
    }
    if (s->alloc) munmap(s->alloc, s->alloc_bytes);
    free(s->pending.counts);
    free(s->seg);
    free(s);
}

char* dist_replicas_segment(const dist_replicas* s, int member)
{
    return s->seg[member];
}

char* dist_replicas_shared(const dist_replicas* s)
{
    return s->shared;
}

int dist_replicas_zeroed(const dist_replicas* s)
{
    return s->zeroed;
}

// Every wait is this one barrier; the names at the call sites say what it is for.
static void sync(dist_replicas* s)
{
    if (s->win == MPI_WIN_NULL) return;
    double t0 = MPI_Wtime();
    MPI_Win_sync(s->win);
    MPI_Barrier(s->g->dpn_comm);
    MPI_Win_sync(s->win);
    dist_counted(s->g, DIST_SYNC, t0);
}

void dist_replicas_wait_grads_formed(dist_replicas* s) { sync(s); }
void dist_replicas_wait_grads_reduced(dist_replicas* s) { sync(s); }
void dist_replicas_wait_pieces_final(dist_replicas* s) { sync(s); }
void dist_replicas_wait_pieces_copied(dist_replicas* s) { sync(s); }
void dist_replicas_wait_panels_free(dist_replicas* s) { sync(s); }
void dist_replicas_wait_panels_packed(dist_replicas* s) { sync(s); }
void dist_replicas_wait_inputs_written(dist_replicas* s) { sync(s); }
void dist_replicas_wait_products_done(dist_replicas* s) { sync(s); }

void dist_replicas_sum(dist_replicas* s, size_t off, size_t n)
{
    dist_grid* g = s->g;
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

void dist_replicas_copy(dist_replicas* s, int r, size_t off, size_t n)
{
    double t0 = MPI_Wtime();
    memcpy((real*)s->seg[s->g->dpn_rank] + off, (real*)s->seg[r] + off, n * sizeof(real));
    dist_counted(s->g, -1, t0);
}

void dist_replicas_start_sum(dist_replicas* s, real* buf, size_t n)
{
    dist_dpx_ireduce_scatter_sum(buf, n, &s->pending, s->g);
}

void dist_replicas_start_gather(dist_replicas* s, real* buf, size_t n)
{
    dist_dpx_iallgather(buf, n, &s->pending, s->g);
}

void dist_replicas_wait_exchanges(dist_replicas* s)
{
    dist_wait_all(&s->pending, s->g);
}
