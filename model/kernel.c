// Chooses the kernel variant (kernel.h) before main. The Makefile compiles this file for plain
// x86-64, so that on a CPU older than the build's baseline it still runs and can say in one line
// which extensions are missing, where the first instruction of the baseline code would stop the
// program with SIGILL. FNN_ISA_BASE, FNN_ISA_AVX2, FNN_ISA_AVX512 and FNN_ISA_BF16 (from the
// Makefile) list the extensions that the baseline's, each variant's and the bf16 kernels' compile
// flags enable.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "model/cpu.h"
#include "model/kernel.h"

#ifndef FNN_ISA_BASE
#define FNN_ISA_BASE ""
#define FNN_ISA_AVX2 "avx2 fma"
#define FNN_ISA_AVX512 "avx512f avx512vl"
#define FNN_ISA_BF16 "avx512f avx512vl avx512bf16"
#endif
#ifndef FNN_BASE_FLAGS
#define FNN_BASE_FLAGS "unknown"
#endif

typedef struct variant {
    const kernel_ops* ops;
    const char* isa; // what its files were compiled for, beyond which the CPU must have
} variant;

#ifdef FNN_DOUBLE
static const variant variants[] = {{&kernel_generic, FNN_ISA_BASE}};
const char* const kernel_names[] = {"generic", NULL};
#else
static const variant variants[] = {{&kernel_avx512, FNN_ISA_AVX512},
                                   {&kernel_avx2, FNN_ISA_AVX2},
                                   {&kernel_generic, FNN_ISA_BASE}};
const char* const kernel_names[] = {"avx512", "avx2", "generic", NULL};
#endif
enum { NVARIANTS = sizeof variants / sizeof variants[0] };

const kernel_ops* kernel = &kernel_generic;
static char error[256];

const char* kernel_error(void) { return error[0] ? error : NULL; }

// Whether the CPU has feature f (a name as the Makefile lists it): 1, 0, or -1 where model/cpu.c
// does not know the name, which counts as absent. FNN_CPU_HIDE, a comma-separated list of
// features, makes them count as absent: the tests' stand-in for an older CPU.
static int cpu_has(const char* f, size_t len)
{
    for (const char* h = getenv("FNN_CPU_HIDE"); h && *h;) {
        const size_t l = strcspn(h, ",");
        if (l == len && !strncmp(h, f, len)) return 0;
        h += l + (h[l] == ',');
    }
    return cpu_feature(f, len);
}

// The features of the space-separated list isa that the CPU lacks, into out (a name the check
// does not know marked so); how many.
static int lacking(const char* isa, char* out, size_t n)
{
    int count = 0;
    out[0] = 0;
    for (const char* f = isa; *f; f += strspn(f, " ")) {
        size_t len = strcspn(f, " ");
        const int has = len ? cpu_has(f, len) : 1;
        if (has != 1) {
            size_t used = strlen(out);
            snprintf(out + used, n - used, "%s%.*s%s", count ? " " : "", (int)len, f,
                     has < 0 ? " (unknown to fnn's CPU check)" : "");
            count++;
        }
        f += len;
    }
    return count;
}

int kernel_use(const char* name, char* err, size_t n)
{
    for (int i = 0; i < NVARIANTS; i++) {
        if (strcmp(name, variants[i].ops->name)) continue;
        char lack[256];
        if (lacking(variants[i].isa, lack, sizeof lack)) {
            snprintf(err, n, "FNN_KERNEL = %s: this CPU lacks %s, which that kernel needs", name,
                     lack);
            return -1;
        }
        kernel = variants[i].ops;
        return 0;
    }
    char names[128] = "";
    for (int i = 0; i < NVARIANTS; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                 variants[i].ops->name);
    snprintf(err, n, "FNN_KERNEL = %s: not a kernel of this build (%s)", name, names);
    return -1;
}

const char* kernel_bf16_missing(void)
{
#ifdef FNN_DOUBLE
    return "a float32 build (this float64 one has no bf16 kernels)";
#else
    static char lack[256];
    return lacking(FNN_ISA_BF16, lack, sizeof lack) ? lack : NULL;
#endif
}

// Priority 101: before every other constructor of the program, which may be baseline code.
__attribute__((constructor(101))) static void kernel_choose(void)
{
    char lack[256];
    if (lacking(FNN_ISA_BASE, lack, sizeof lack)) {
        fprintf(stderr, "fnn: error: this CPU lacks %s, which this build uses everywhere (%s): "
                "build fnn for it with a lower OPT -march (README, Building)\n", lack,
                FNN_BASE_FLAGS);
        _exit(1);
    }
    const char* want = getenv("FNN_KERNEL");
    if (want && *want && !kernel_use(want, error, sizeof error)) return;
    for (int i = 0; i < NVARIANTS; i++)
        if (!lacking(variants[i].isa, lack, sizeof lack)) {
            kernel = variants[i].ops;
            return;
        }
}
