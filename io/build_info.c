// The Makefile passes FNN_VERSION and FNN_FLAGS when it compiles this file.
#include "io/build_info.h"

#ifndef FNN_VERSION
#define FNN_VERSION "unknown"
#endif
#ifndef FNN_FLAGS
#define FNN_FLAGS "unknown"
#endif

const char* build_version(void) { return FNN_VERSION; }
#ifdef __clang__
const char* build_compiler(void) { return __VERSION__; } // names itself: "Clang 14.0.6 ..."
#else
const char* build_compiler(void) { return "gcc " __VERSION__; }
#endif
const char* build_flags(void) { return FNN_FLAGS; }
