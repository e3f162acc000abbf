// io/h5.c and its agreements under failures one rank sees alone: a read failure on one rank
// before later datasets (which that rank then skips) is reported by every rank with its message,
// not a reduction of unequal digest lists; dist_comm_agree reads no message of a rank that did
// not fail (a non-failing rank's err here has no terminating NUL: ASan reports a read of it;
// verified at -O0, where the compiler keeps such a read out of the failing branch too). A file
// written with a reservation far above its size ends with the size of one written without. A
// local file's attributes and whole datasets come back as written, and bad ones are refused.
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

// A local file (one process, no communicator): string arrays, an int32 attribute and whole
// datasets of each element kind come back as written; a dataset read as a kind that would
// saturate it, a missing attribute and a missing file are refused naming the file.
static void test_local(int rank)
{
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/local%d.h5", dir, rank);
    const char* names[3] = {"a", "longest", ""};
    static const uint8_t u8[5] = {0, 1, 127, 200, 255};
    static const int32_t i32[4] = {-2147483647 - 1, -1, 0, 2147483647};
    static const float f32[2][3] = {{1.5f, -0.0f, 3e-38f}, {-7.25f, 1e30f, 0.1f}};
    h5file h;
    CHECK(h5_create_local(&h, path, err, sizeof err) == 0, "create: %s", err);
    h5_put_strs(&h, "/", "names", names, 3);
    h5_put_int(&h, "/", "count", -42);
    h5_group(&h, "/g");
    h5_array_write(&h, "/g/u8", ELEM_U8, 1, 5, 1, u8);
    h5_array_write(&h, "/g/i32", ELEM_I32, 1, 4, 1, i32);
    h5_array_write(&h, "/g/f32", ELEM_F32, 2, 2, 3, f32);
    h5_array_write(&h, "/g/empty", ELEM_U8, 1, 0, 1, NULL);
    CHECK(h5_close(&h) == 0, "write: %s", err);

    CHECK(h5_open_local(&h, path, err, sizeof err) == 0, "open: %s", err);
    char** got = NULL;
    int n = h5_get_strs(&h, "/", "names", &got);
    CHECK(n == 3 && !strcmp(got[0], "a") && !strcmp(got[1], "longest") && !strcmp(got[2], ""),
          "names: %d", n);
    for (int i = 0; i < n; i++) free(got[i]);
    free(got);
    CHECK(h5_get_long(&h, "/", "count") == -42, "count");
    uint64_t d[2], stored;
    uint8_t bu[5];
    int32_t bi[4];
    float bf[2][3];
    CHECK(!h5_array_shape(&h, "/g/u8", 1, ELEM_U8, d, &stored) && d[0] == 5 && d[1] == 1 &&
          stored == 5, "u8 shape %llu x %llu, %llu bytes", (unsigned long long)d[0],
          (unsigned long long)d[1], (unsigned long long)stored);
    CHECK(!h5_array_shape(&h, "/g/f32", 2, ELEM_F32, d, &stored) && d[0] == 2 && d[1] == 3 &&
          stored == sizeof f32, "f32 shape");
    CHECK(!h5_array_shape(&h, "/g/empty", 1, ELEM_U8, d, &stored) && d[0] == 0 && stored == 0,
          "empty shape");
    h5_array_read(&h, "/g/u8", ELEM_U8, bu);
    h5_array_read(&h, "/g/i32", ELEM_I32, bi);
    h5_array_read(&h, "/g/f32", ELEM_F32, bf);
    CHECK(!memcmp(bu, u8, sizeof u8) && !memcmp(bi, i32, sizeof i32) && !memcmp(bf, f32, sizeof f32),
          "arrays read back differ");
    CHECK(h5_close(&h) == 0, "read: %s", err);

    char want[256];
    const struct { const char* name; int rank; h5_elem e; const char* what; } bad[] = {
        {"/g/i32", 1, ELEM_U8, "dataset /g/i32 must be an unsigned 8-bit integer dataset"},
        {"/g/f32", 1, ELEM_F32, "dataset /g/f32 has 2 dimensions, expected 1"},
        {"/g/u8", 1, ELEM_F32, "dataset /g/u8 must be a float dataset"},
        {"/g/none", 1, ELEM_U8, "no dataset /g/none"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(h5_open_local(&h, path, err, sizeof err) == 0, "open: %s", err);
        CHECK(h5_array_shape(&h, bad[i].name, bad[i].rank, bad[i].e, d, &stored) == -1, "%s accepted", bad[i].name);
        snprintf(want, sizeof want, "%s: %s", path, bad[i].what);
        CHECK(h5_close(&h) == 1 && !strcmp(err, want), "'%s', want '%s'", err, want);
    }
    CHECK(h5_open_local(&h, path, err, sizeof err) == 0, "open: %s", err);
    CHECK(h5_get_strs(&h, "/", "nothing", &got) == -1 && h5_close(&h) == 1 &&
          strstr(err, path) && strstr(err, "no attribute /nothing"), "missing attribute: %s", err);
    snprintf(path, sizeof path, "%s/missing%d.h5", dir, rank);
    CHECK(h5_open_local(&h, path, err, sizeof err) == 1 && h5_close(&h) == 1 && strstr(err, path) &&
          strstr(err, "cannot open (No such file"), "missing file: %s", err);
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
    test_local(rank);
    int bad = check_failures > 0;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) printf("test_h5: %s (file %lld bytes)\n", bad ? "FAILED" : "all checks passed", a);
    MPI_Finalize();
    return bad;
}
