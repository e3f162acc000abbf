// The one formatter of io/'s one-line errors (errmsg.h).
#include <stdio.h>
#include "io/errmsg.h"

int errmsg_v(char* err, size_t errlen, const char* file, const char* fmt, va_list ap)
{
    if (!errlen) return -1;
    int n = file ? snprintf(err, errlen, "%s: ", file) : 0;
    if (n >= 0 && (size_t)n < errlen) vsnprintf(err + n, errlen - n, fmt, ap);
    return -1;
}

int errmsg(char* err, size_t errlen, const char* file, const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errmsg_v(err, errlen, file, fmt, ap);
    va_end(ap);
    return -1;
}
