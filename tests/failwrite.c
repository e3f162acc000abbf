// LD_PRELOAD shim for tests/e2e_ioerror.sh: on the MPI rank named by FAILWRITE_RANK, every write
// to a file whose path ends with FAILWRITE_PATH (default ".h5.tmp") fails with EIO, as a failing
// disk or an exhausted quota would; with FAILWRITE_MODE=drop each such write instead reports
// success and writes nothing, as a layer that loses a write silently would; with
// FAILWRITE_MODE=slow each such write succeeds after 0.1 s, as on a slow filesystem (and with
// FAILWRITE_THREAD=writer only ckpt_async's writer thread's writes are hit). Counts the writes it
// failed in FAILWRITE_LOG, if set, so the test can tell that it intercepted what Open MPI's
// MPI-IO really calls.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static int hit(int fd)
{
    const char* rank = getenv("OMPI_COMM_WORLD_RANK");
    const char* want = getenv("FAILWRITE_RANK");
    if (!rank || !want || strcmp(rank, want)) return 0;
    // FAILWRITE_THREAD=writer: only the writes of threads other than the main one (ckpt_async's
    // writer), not HDF5's and MPI-IO's.
    const char* thread = getenv("FAILWRITE_THREAD");
    if (thread && !strcmp(thread, "writer") && gettid() == getpid()) return 0;
    const char* part = getenv("FAILWRITE_PATH");
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return 0;
    path[n] = 0;
    // The end only: OMPIO's lockedfile component writes "<file>-<job>-<pid>.lock" beside it.
    const char* want_end = part ? part : ".h5.tmp";
    if ((size_t)n < strlen(want_end) || strcmp(path + n - strlen(want_end), want_end)) return 0;
    const char* log = getenv("FAILWRITE_LOG");
    const char* mode = getenv("FAILWRITE_MODE");
    const int slow = mode && !strcmp(mode, "slow");
    FILE* f = log ? fopen(log, "a") : NULL;
    if (f) fprintf(f, "rank %s %s a write to %s\n", rank, slow ? "delayed" : "failed", path), fclose(f);
    if (slow) {
        usleep(100000);
        return 0;
    }
    errno = EIO;
    return mode && !strcmp(mode, "drop") ? 2 : 1;
}

// The result of a write of n bytes that hit() chose to fail (1: EIO) or drop (2: success).
static ssize_t failed(int how, size_t n)
{
    return how == 2 ? (ssize_t)n : -1;
}

static size_t total(const struct iovec* v, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++) t += v[i].iov_len;
    return t;
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t write(int fd, const void* b, size_t n)
{
    const int how = hit(fd);
    return how ? failed(how, n) : NEXT(write)(fd, b, n);
}

ssize_t pwrite(int fd, const void* b, size_t n, off_t o)
{
    const int how = hit(fd);
    return how ? failed(how, n) : NEXT(pwrite)(fd, b, n, o);
}

ssize_t pwrite64(int fd, const void* b, size_t n, off_t o)
{
    const int how = hit(fd);
    return how ? failed(how, n) : NEXT(pwrite64)(fd, b, n, o);
}

ssize_t writev(int fd, const struct iovec* v, int n)
{
    const int how = hit(fd);
    return how ? failed(how, total(v, n)) : NEXT(writev)(fd, v, n);
}

ssize_t pwritev(int fd, const struct iovec* v, int n, off_t o)
{
    const int how = hit(fd);
    return how ? failed(how, total(v, n)) : NEXT(pwritev)(fd, v, n, o);
}
