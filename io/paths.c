// The kind of a user's path and output-over-input detection (paths.h).
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "io/errmsg.h"
#include "io/paths.h"

static const char* kind_name(mode_t m)
{
    if (S_ISREG(m)) return "regular file";
    if (S_ISDIR(m)) return "directory";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISCHR(m)) return "character device";
    if (S_ISBLK(m)) return "block device";
    if (S_ISSOCK(m)) return "socket";
    return "special file";
}

int paths_check_kind(const char* path, int want, int missing_ok, char* why, size_t len)
{
    struct stat sb;
    // stat, not open: it follows a symlink to what it names without blocking on a FIFO.
    // Nothing there (a missing parent, or a file where a parent should be): the writer that
    // creates it reports why it cannot.
    if (stat(path, &sb)) return missing_ok ? 0 : errmsg(why, len, NULL, "cannot open (%s)", strerror(errno));
    if (want == PATHS_DIR ? S_ISDIR(sb.st_mode)
                          : S_ISREG(sb.st_mode) || (want == PATHS_STREAM && S_ISCHR(sb.st_mode)))
        return 0;
    return errmsg(why, len, NULL, "is a %s, not a %s", kind_name(sb.st_mode),
                  want == PATHS_DIR      ? "directory"
                  : want == PATHS_STREAM ? "regular file or character device"
                                         : "regular file");
}

int paths_same(const char* out, const char* in)
{
    struct stat so, si;
    // An out not there yet cannot be an existing input: writing creates a new inode (through a
    // dangling symlink too, whose target does not exist either).
    return !stat(in, &si) && !stat(out, &so) && so.st_dev == si.st_dev && so.st_ino == si.st_ino;
}

int paths_refuse_overwrite(const char* what, const char* out, const char* const* inputs, int n,
                           char* err, size_t errlen)
{
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i][0] && paths_same(out, inputs[i]))
            return errmsg(err, errlen, NULL, "%s %s is the input %s (the same file): refusing to "
                          "overwrite it", what, out, inputs[i]);
    return 0;
}
