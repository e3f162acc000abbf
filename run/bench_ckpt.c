// fnn bench --ckpt [--gib N] [--dir D] [--reps R]: ckpt_save and ckpt_load (io/checkpoint.h) of a
// language model whose parameters and Adam moments (m, v) take at least N GiB, beside the raw
// speed of the same filesystem measured in the same run on a file of the same size: every rank
// pwrites its 1/np of it and fsyncs (a save ends with MPI_File_sync), then preads it back.
// Before every read both files' pages are dropped from the page cache (fdatasync and
// POSIX_FADV_DONTNEED), so that the reads come from storage. TP = the number of ranks, so each
// rank holds 1/np of the model. Best of R repetitions, interleaved, each writing both files
// anew; the files are removed. Each repetition also saves with ckpt_async (io/ckpt_async.h) into
// D/bench-ckpt-async: the stall, and the time to its commit.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/checkpoint.h"
#include "io/ckpt_async.h"
#include "run/bench_ckpt.h"
#include "run/setup.h"
#include "model/init.h"

enum { CHUNK = 64 << 20 }; // bytes per raw write or read call

// The smallest H (a multiple of 256) whose model (c, L, D, V, O given) holds want bytes of
// parameters and two moments, and the global element count of its parameters.
static size_t size_model(model_config* c, double want)
{
    model* m = calloc(1, sizeof *m);
    if (!m) dist_fail("out of memory");
    size_t total = 0;
    for (c->H = 256;; c->H += 256) {
        model_layout(m, c, 1, 0);
        total = 0;
        for (int k = 0; k < m->ntensors; k++)
            total += (size_t)m->tensors[k].rows * m->tensors[k].cols;
        if (3.0 * total * sizeof(real) >= want) break;
    }
    free(m);
    return total;
}

// Bytes [off, off + n) of path from or to buf (CHUNK bytes, repeated), with pwrite + fsync or
// pread. 0, or -1 with the reason in err.
static int raw_io(const char* path, int writing, size_t off, size_t n, char* buf, char* err,
                  size_t errlen)
{
    int fd = open(path, writing ? O_WRONLY | O_CREAT : O_RDONLY, 0600);
    int bad = fd < 0;
    for (size_t done = 0; !bad && done < n;) {
        size_t len = n - done < CHUNK ? n - done : CHUNK;
        ssize_t r = writing ? pwrite(fd, buf, len, (off_t)(off + done))
                            : pread(fd, buf, len, (off_t)(off + done));
        bad = r <= 0;
        done += r > 0 ? (size_t)r : 0;
    }
    if (!bad && writing) bad = fsync(fd) != 0;
    if (fd >= 0) bad |= close(fd) != 0;
    if (bad)
        snprintf(err, errlen, "%.*s: raw %s failed", CONFIG_PATH, path, writing ? "write" : "read");
    return bad ? -1 : 0;
}

// Drops path's pages from the page cache (after writing them out).
static void drop_cache(const char* path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

// Sum of this rank's parameters and moments, in order: what a load must give back exactly.
static double state_sum(const model* m)
{
    double s = 0;
    for (size_t i = 0; i < m->nparams; i++) s += m->params[i];
    for (size_t i = 0; i < model_own_elems(m); i++) s += 2.0 * m->m[i] + 3.0 * m->v[i];
    return s;
}

// Seconds of what runs between two barriers: the slowest rank's time.
static double since(double t0, dist_grid* g)
{
    dist_barrier(g); // the operation is done when the slowest rank is
    return dist_wtime() - t0;
}

int bench_ckpt(int argc, char** argv, dist_grid* world)
{
    static const char* const known[] = {"--ckpt", "--gib", "--dir", "--reps", NULL};
    setup_check_opts(argc, argv, "bench", known);
    const double gib = setup_double("--gib", setup_opt(argc, argv, "--gib", "1"), 0.001);
    const char* dir = setup_opt(argc, argv, "--dir", "build");
    const int reps = setup_int("--reps", setup_opt(argc, argv, "--reps", "3"), 1);
    model_config mc = {.task = TASK_LM, .act = ACT_TANH, .feedback = FB_ALL,
                       .feedback_source = FBS_MODEL, .wh_init = INIT_NORMAL, .V = BYTE_VOCAB, .O = BYTE_VOCAB,
                       .D = 128, .L = 2, .seed = 1};
    const size_t total = size_model(&mc, gib * (1 << 30));
    const size_t bytes = 3 * total * sizeof(real);
    dist_grid g;
    setup_grid(world, &g, world->world_size);
    model m;
    char err[CONFIG_PATH + 128];
    if (model_init(&m, &mc, &g, 1, 1, err, sizeof err)) dist_fail_all("%s", err);
    model_init_params(&m);
    model_state_pattern(&m); // tp = ranks, so dp = 1
    const double sum = state_sum(&m);
    char path[CONFIG_PATH], raw[CONFIG_PATH];
    if ((size_t)snprintf(path, sizeof path, "%s/bench-ckpt.h5", dir) >= sizeof path)
        dist_fail_all("--dir %s: too long", dir);
    snprintf(raw, sizeof raw, "%s/bench-ckpt.raw", dir);
    // ckpt_async saves into a checkpoint directory of its own (its "latest", its pruning).
    char adir[CONFIG_PATH + 16], apath[CONFIG_PATH + 48];
    snprintf(adir, sizeof adir, "%s/bench-ckpt-async", dir);
    snprintf(apath, sizeof apath, "%s/step-00000000.h5", adir);
    ckpt_async* as = ckpt_async_new(&m, OPT_ADAM, err, sizeof err);
    if (dist_comm_agree(!as, err, sizeof err, g.world)) dist_fail_all("%s", err);
    char* buf = malloc(CHUNK);
    if (!buf) dist_fail("out of memory");
    // The raw file holds parameter bytes too: no filesystem compresses it more than a checkpoint.
    const unsigned char* bytes_of = (const unsigned char*)m.params;
    for (size_t i = 0; i < CHUNK; i++) buf[i] = (char)bytes_of[i % (m.nparams * sizeof(real))];
    fnn_config cfg;
    config_defaults(&cfg);
    const ckpt_train st = {.rng_seed = mc.seed, .writer_tp = g.tp, .writer_dp = g.dp,
                           .global_batch = 1, .seq_len = 1, .optimizer = OPT_ADAM};
    const size_t share = bytes / g.world_size, off = share * g.world_rank;
    const size_t mine = g.world_rank + 1 == g.world_size ? bytes - off : share;
    // raw write, save, raw read, load, ckpt_async's stall and its save to the commit
    double best[6] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
    for (int r = 0; r < reps; r++) {
        double t[6];
        int bad;
        // Both files are written new, as a save writes its file: overwriting the blocks of the
        // last repetition's file would spare the raw write the filesystem's allocation.
        if (g.world_rank == 0) remove(path), remove(raw);
        dist_barrier(&g); // every timed region starts together, after the removal
        double t0 = dist_wtime();
        bad = raw_io(raw, 1, off, mine, buf, err, sizeof err);
        t[0] = since(t0, &g);
        // A rank's own I/O error: agreed before the save's collectives.
        if (dist_any(bad, &g)) dist_fail_all("%s", bad ? err : "raw write failed on another rank");
        t0 = dist_wtime();
        bad = ckpt_save(path, &m, &cfg, &st, 1, err, sizeof err);
        t[1] = since(t0, &g);
        if (bad) dist_fail_all("%s", err); // ckpt_save's verdict is agreed
        if (g.world_rank == 0) remove(apath);
        dist_barrier(&g); // as above
        t0 = dist_wtime();
        bad = ckpt_async_save(as, adir, 1, &m, &cfg, &st, err, sizeof err);
        t[4] = since(t0, &g);
        if (bad || ckpt_async_wait(as, err, sizeof err) < 0) dist_fail_all("%s", err); // agreed
        t[5] = since(t0, &g);
        if (g.world_rank == 0) drop_cache(raw), drop_cache(path);
        dist_barrier(&g); // no read starts before the caches are dropped
        t0 = dist_wtime();
        bad = raw_io(raw, 0, off, mine, buf, err, sizeof err);
        t[2] = since(t0, &g);
        // As for the write: agreed before the load's collectives.
        if (dist_any(bad, &g)) dist_fail_all("%s", bad ? err : "raw read failed on another rank");
        model_state_clear(&m);
        t0 = dist_wtime();
        bad = ckpt_load(path, &m, NULL, 1, err, sizeof err);
        t[3] = since(t0, &g);
        if (bad) dist_fail_all("%s", err);
        // Every rank checks its own piece: agree before the next repetition's collectives.
        if (dist_any(state_sum(&m) != sum, &g))
            dist_fail_all("%s: load did not restore the saved state", path);
        for (int i = 0; i < 6; i++) best[i] = t[i] < best[i] ? t[i] : best[i];
    }
    ckpt_async_free(as);
    if (g.world_rank == 0) {
        char latest[CONFIG_PATH + 32];
        snprintf(latest, sizeof latest, "%s/latest", adir);
        remove(path), remove(raw), remove(apath), remove(latest), rmdir(adir);
        const double gb = bytes / 1e9;
        printf("bench ckpt %.2f GiB (H=%d L=%d, params + Adam m, v) ranks=%d (tp %d), best of %d, "
               "%s: save %.2f GB/s = %.0f%% of raw write+fsync %.2f GB/s; load %.2f GB/s = %.0f%% "
               "of raw read %.2f GB/s\n",
               bytes / (double)(1 << 30), mc.H, mc.L, g.world_size, g.tp, reps, dir,
               gb / best[1], 100 * best[0] / best[1], gb / best[0], gb / best[3],
               100 * best[2] / best[3], gb / best[2]);
        printf("bench ckpt stall per save: synchronous %.3f s, ckpt_async %.3f s (its file committed "
               "after %.3f s)\n", best[1], best[4], best[5]);
    }
    free(buf);
    model_free(&m);
    dist_grid_free(&g);
    return 0;
}
