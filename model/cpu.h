// The CPU's instruction-set extensions as the processor reports them (CPUID) and the operating
// system enables them (XCR0 for the AVX, AVX-512 and AMX register state), by the names the
// Makefile's isa_of gives them: GCC's macro for the extension (__AVX512BF16__, __SSE4_2__),
// lower case, '_' as '.' (avx512bf16, sse4.2). model/kernel.c checks a build's extensions with
// it before main, so it is compiled for plain x86-64 like kernel.c. GCC's own
// __builtin_cpu_supports knows only the CPUs of its release (GCC 12 misses Zen 5's
// avx512vp2intersect), hence the table of leaves and bits here.
#ifndef MODEL_CPU_H
#define MODEL_CPU_H

#include <stddef.h>

// 1: this CPU has the extension called name (len characters) and the OS enables its state;
// 0: it does not; -1: the table does not know the name (a caller must not assume it).
int cpu_feature(const char* name, size_t len);

// Entry i of the table (0, 1, ... until it returns NULL): the name, and in *flag the flag
// that Linux shows for the same bit in /proc/cpuinfo, or NULL where Linux shows none or may
// clear it by policy (SGX, TSX). For the test that holds the table against /proc/cpuinfo.
const char* cpu_feature_name(int i, const char** flag);

#endif
