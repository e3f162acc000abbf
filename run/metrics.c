// Rank 0 alone writes the metrics, so a failure here is this rank's to report: dist_fail ends
// the whole job through MPI_Abort, and no rank is left waiting.
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include "dist/dist.h"
#include "run/metrics.h"

FILE* metrics_open(const char* path, int append)
{
    FILE* f = fopen(path, append ? "a" : "w");
    if (!f) dist_fail("metrics = %s: cannot open (%s)", path, strerror(errno));
    return f;
}

void metrics_line(FILE* f, const char* path, const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errno = 0;
    // Flushed per line: the error of a full disk shows at the step that hit it (not at exit),
    // and a reader following the file sees every step.
    int bad = vfprintf(f, fmt, ap) < 0 || fflush(f) != 0;
    va_end(ap);
    if (bad) dist_fail("metrics = %s: cannot write (%s)", path, strerror(errno ? errno : EIO));
}

void metrics_close(FILE* f, const char* path)
{
    errno = 0;
    if (fclose(f)) dist_fail("metrics = %s: cannot close (%s)", path, strerror(errno ? errno : EIO));
}
