// The Makefile passes FNN_VERSION and FNN_OPT when it compiles this file.
#include "io/build.h"

#ifndef FNN_VERSION
#define FNN_VERSION "unknown"
#endif
#ifndef FNN_OPT
#define FNN_OPT "unknown"
#endif

const char* build_version(void) { return FNN_VERSION; }
const char* build_compiler(void) { return "gcc " __VERSION__; }
const char* build_flags(void) { return FNN_OPT; }
