// io/h5.c and its agreements under failures one rank sees alone: a read failure on one rank
// before later datasets (which that rank then skips) is reported by every rank with its message,
// not a reduction of unequal digest lists; dist_comm_agree reads no message of a rank that did
// not fail (a non-failing rank's err here has no terminating NUL: ASan reports a read of it;
// verified at -O0, where the compiler keeps such a read out of the failing branch too). A file
// written with a reservation far above its size ends with the size of one written without.
// ranks: 1 2
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dist/dist.h"
#include "io/h5.h"
#include "tests/check.h"

enum { N = 1000, NSETS = 3 };

static char dir[64];

// This rank's share of an N-vector: rows [row0, row0 + nrows).
static h5_piece share(int rank, int size)
{
    int r0 = N * rank / size, r1 = N * (rank + 1) / size;
    return (h5_piece){.rank = 1, .rows = N, .cols = 1, .row0 = r0, .nrows = r1 - r0, .col0 = 0,
                      .ncols = 1, .ld = 1};
}

// Writes NSETS vectors to path (with a reservation of reserve bytes if > 0); its size on disk.
static long long write_file(const char* path, size_t reserve, int rank, int size)
{
    static real v[N];
    for (int i = 0; i < N; i++) v[i] = (real)(i + 1);
    char err[256];
    h5file h;
    h5_piece pc = share(rank, size);
    CHECK(h5_create(&h, path, MPI_COMM_WORLD, err, sizeof err) == 0, "create: %s", err);
    if (reserve) h5_reserve(&h, reserve);
    for (int k = 0; k < NSETS; k++) {
        char name[16];
        snprintf(name, sizeof name, "/v%d", k);
        h5_write_piece(&h, name, &pc, v + pc.row0);
    }
    CHECK(h5_close(&h) == 0, "write: %s", err);
    MPI_Barrier(MPI_COMM_WORLD); // the file is closed everywhere before it is measured
    struct stat sb;
    return stat(path, &sb) ? -1 : (long long)sb.st_size;
}

// Whether the file system under dir makes a reservation: a file fallocated to 1 MiB has that size.
static int reserves(const char* d)
{
    char path[96];
    snprintf(path, sizeof path, "%s/probe", d);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct stat sb;
    int ok = fd >= 0 && !fallocate(fd, 0, 0, 1 << 20) && !fstat(fd, &sb) && sb.st_size == 1 << 20;
    if (fd >= 0) close(fd);
    unlink(path);
    return ok;
}

// The last rank fails alone after the first dataset and so skips the others; every rank reports
// its message.
static void test_read_failure(const char* path, int rank, int size)
{
    static real v[N];
    char err[256];
    h5file h;
    h5_piece pc = share(rank, size);
    CHECK(h5_open(&h, path, MPI_COMM_WORLD, err, sizeof err) == 0, "open: %s", err);
    for (int k = 0; k < NSETS; k++) {
        char name[16];
        snprintf(name, sizeof name, "/v%d", k);
        h5_read_piece(&h, name, &pc, v + pc.row0);
        if (k == 0 && rank == size - 1) h5_fail(&h, "injected failure");
    }
    char want[320];
    snprintf(want, sizeof want, "%s: injected failure%s", path, size > 1 ? " on rank 1" : "");
    CHECK(h5_close(&h) == 1 && !strcmp(err, want), "read: '%s', want '%s'", err, want);
    // The same file read whole is intact.
    CHECK(h5_open(&h, path, MPI_COMM_WORLD, err, sizeof err) == 0, "open: %s", err);
    h5_read_all(&h);
    CHECK(h5_close(&h) == 0, "read all: %s", err);
}

// Only the failing rank's err holds a message; the others' may hold anything.
static void test_agree(int rank, int size)
{
    const size_t len = 64;
    char* err = malloc(len);
    memset(err, 'x', len);
    if (rank == size - 1) snprintf(err, len, "bad");
    char want[64];
    snprintf(want, sizeof want, "bad%s", size > 1 ? " on rank 1" : "");
    CHECK(dist_comm_agree(rank == size - 1, err, len, MPI_COMM_WORLD) == 1 && !strcmp(err, want),
          "agree: '%.63s'", err);
    memset(err, 'x', len);
    CHECK(dist_comm_agree(0, err, len, MPI_COMM_WORLD) == 0, "agree without a failure");
    free(err);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    snprintf(dir, sizeof dir, "build/tests/h5_np%d", size);
    if (rank == 0) {
        mkdir("build/tests", 0777);
        mkdir(dir, 0777);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    char plain[96], reserved[96];
    snprintf(plain, sizeof plain, "%s/plain.h5", dir);
    snprintf(reserved, sizeof reserved, "%s/reserved.h5", dir);
    long long a = write_file(plain, 0, rank, size), b = write_file(reserved, 64u << 20, rank, size);
    CHECK(a > (long long)(NSETS * N * sizeof(real)) && b == a,
          "sizes: %lld bytes without the reservation, %lld with 64 MiB reserved", a, b);
    if (rank == 0 && !reserves(dir)) printf("SKIPPED: fallocate is not supported in %s: no reservation was made\n", dir);
    test_read_failure(plain, rank, size);
    test_agree(rank, size);
    int bad = check_failures > 0;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) printf("test_h5: %s (file %lld bytes)\n", bad ? "FAILED" : "all checks passed", a);
    MPI_Finalize();
    return bad;
}
