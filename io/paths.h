// The paths a user gives: what kind of file each names, and whether an output would land on an
// input. Checked before any open, as a FIFO blocks the open itself and an output opened for
// writing truncates the input it names.
#ifndef IO_PATHS_H
#define IO_PATHS_H

#include <stddef.h>

// What a path must name: a regular file (read, or written through a temporary file renamed onto
// it, which would replace a device node), a directory, or a stream written in place (metrics:
// a regular file or a character device such as /dev/null, never a FIFO, whose open blocks).
enum { PATHS_FILE, PATHS_DIR, PATHS_STREAM };

// 0 if path names what want says or, when missing_ok, nothing (an output not there yet: its
// creator reports any reason it cannot be made); else -1 with why, for the caller to prefix
// with the path: "is a fifo, not a regular file" (or character device, socket, ...) or "cannot
// open (<reason>)".
int paths_check_kind(const char* path, int want, int missing_ok, char* why, size_t len);

// 1 if out names the same file as in: one inode, whether through another path, a symlink or a
// hard link.
int paths_same(const char* out, const char* in);

// 0 if out names none of the n inputs (NULL entries and "" skipped); else -1 with one line in err
// naming what (the option writing out), out and the input it would overwrite.
int paths_refuse_overwrite(const char* what, const char* out, const char* const* inputs, int n,
                           char* err, size_t errlen);

#endif
