// One-line error messages: every io/ reader and writer hands its failure back as one line in
// the caller's buffer (err, errlen), naming the file, key or value at fault (docs/cli.md).
#ifndef IO_ERRMSG_H
#define IO_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>

// "<file>: " (file NULL: nothing) then fmt into err, truncated to errlen bytes (errlen 0: err is
// left alone). Returns -1, for `return errmsg(...)` in a function that fails with -1.
int errmsg_v(char* err, size_t errlen, const char* file, const char* fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
int errmsg(char* err, size_t errlen, const char* file, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
