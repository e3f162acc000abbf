// What built this binary, for checkpoints (which record it) and `fnn inspect --build`.
#ifndef IO_BUILD_INFO_H
#define IO_BUILD_INFO_H

const char* build_version(void);  // `git describe --always --dirty` of the source tree, or "unknown"
const char* build_compiler(void); // the compiler's name and version
const char* build_flags(void);    // the flags that shape the code: OPT, AVX512 and AVX2

#endif
