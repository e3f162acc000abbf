// The loader's cost per training window (README "Streamed data"): windows of T + 1 tokens at
// random positions of a prepared text dataset's /train/tokens, copied into a (T, B) batch, read
// four ways: from the whole split in memory (the loader before issue 18), by pread at the
// contiguous data's offset (dataset_train_batch as it runs now), through an HDF5 hyperslab (its
// path for chunked or converted datasets), and from an mmap of the file, with the resident memory
// (VmRSS) that the mapping adds. Best of 3 by CPU time (user + system), one process. Build and run
// from the repository root after make:
//   mpicc -O3 -march=x86-64-v3 -std=c11 -D_GNU_SOURCE -I. $(pkg-config --cflags hdf5-openmpi)
//     tools/loader_bench.c build/libfnn.a $(pkg-config --libs ompi hdf5-openmpi scalapack-openmpi
//     openblas inih) -lmvec -lm -o build/loader_bench      (one command line)
//   build/loader_bench data.h5 64 16 20000      (file, T, B, steps)
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "io/dataset.h"
#include "io/h5.h"

enum { WAYS = 4 };
static const char* const way_names[WAYS] = {"in memory", "pread (streamed)", "HDF5 hyperslab",
                                            "mmap"};

static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static long rss_kib(void)
{
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
    if (f) fclose(f);
    return kib;
}

typedef struct src {
    h5file* h;
    h5_rows* r;
    const uint8_t* mem; // the split in memory, or the mapped data
} src;

// steps batches of B windows read `way`; returns CPU seconds.
static double run(int way, const src* s, dataset* d, data_batch* b, long steps, uint64_t span)
{
    uint8_t buf[4096];
    uint64_t x = 88172645463325252ull;
    double t0 = cpu();
    for (long step = 0; step < steps; step++) {
        if (way == 1) {
            dataset_train_batch(d, b, 1, step, 0, 0);
            continue;
        }
        for (int r = 0; r < b->B; r++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint64_t pos = x % span;
            const uint8_t* w = buf;
            if (way == 2) h5_rows_read(s->h, s->r, pos, (uint64_t)b->T + 1, buf);
            else w = s->mem + pos;
            for (int t = 0; t < b->T; t++) {
                b->tokens[(size_t)t * b->B + r] = w[t];
                b->next[(size_t)t * b->B + r] = w[t + 1];
            }
        }
    }
    return cpu() - t0;
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    if (argc != 5) {
        fprintf(stderr, "usage: loader_bench FILE T B STEPS\n");
        return 2;
    }
    const int T = atoi(argv[2]), B = atoi(argv[3]);
    const long steps = atol(argv[4]);
    char err[1024];
    dataset* d = dataset_open(argv[1], err, sizeof err);
    h5file h;
    h5_rows r;
    if (!d || h5_open_local(&h, argv[1], err, sizeof err) ||
        h5_rows_open(&h, "/train/tokens", 1, ELEM_U8, &r) || r.fd < 0 || T + 1 > 4096) {
        fprintf(stderr, "loader_bench: %s\n", d ? err : "not a contiguous tokens dataset");
        return 1;
    }
    data_batch b;
    if (data_batch_init(&b, d, T, B)) return 1;
    const uint64_t span = r.rows - (uint64_t)T;
    uint8_t* all = malloc(r.rows);
    if (!all || h5_rows_read(&h, &r, 0, r.rows, all)) return 1;
    const long before_map = rss_kib();
    int fd = open(argv[1], O_RDONLY);
    const uint8_t* map = mmap(NULL, r.offset + r.rows, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return 1;
    printf("%s: %llu tokens, T = %d, B = %d, %ld steps, best of 3 by CPU time\n", argv[1],
           (unsigned long long)r.rows, T, B, steps);
    for (int way = 0; way < WAYS; way++) {
        src s = {.h = &h, .r = &r, .mem = way == 3 ? map + r.offset : all};
        if (way == 2) close(r.fd), r.fd = -1; // the hyperslab path
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t = run(way, &s, d, &b, steps, span);
            if (t < best) best = t;
        }
        printf("  %-18s %8.2f us per window, %10.0f windows/s\n", way_names[way],
               best / (steps * B) * 1e6, steps * B / best);
    }
    printf("  resident memory the mapping added after its reads: %ld MiB (the split held in "
           "memory: %llu MiB)\n", (rss_kib() - before_map) / 1024,
           (unsigned long long)(r.rows >> 20));
    munmap((void*)map, r.offset + r.rows);
    close(fd);
    free(all);
    data_batch_free(&b);
    h5_rows_close(&r);
    h5_close(&h);
    dataset_free(&d);
    MPI_Finalize();
    return 0;
}
