// A rename is atomic but only durable once its directory is synced; without that, a crash right
// after a checkpoint save could bring back the directory without the new file.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "io/durable.h"

int durable_rename(const char* from, const char* to)
{
    if (rename(from, to)) return -1;
    char dir[4096];
    const char* slash = strrchr(to, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - to + 1), to);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}
