// The code variants of the hot loops, one per instruction set, chosen once at start-up by the
// CPU's features (or FNN_KERNEL): the packed products and weight gradients of gemm.h, tanh and
// the softmax of the forward pass, and the normal draws of the feedback noise. The rest of fnn
// is compiled for a portable baseline (the Makefile's OPT, x86-64-v3 by default); each
// variant's files for their own instruction set. The variants round differently (libmvec is
// within 4 ulp): results are the same at every layout when every rank runs the same variant,
// to rounding; a product split into shares keeps its bits on the packed kernels, which fix the
// order of the sums, and not through OpenBLAS (generic), which rounds by the call's shape.
//
//   avx512   AVX-512 packed kernel (gemm_kernel.h), AVX-512 tanh, softmax and normal draws
//   avx2     AVX2 packed kernel (gemm_kernel_avx2.h), AVX2 tanh, softmax and normal draws
//   generic  products by OpenBLAS, scalar tanh, softmax and normal draws (also the float64
//            build's only one)
#ifndef MODEL_KERNEL_H
#define MODEL_KERNEL_H

#include <stddef.h>
#include "model/gemm.h"

typedef struct kernel_ops {
    const char* name;
    // Columns per panel of packed weights (dividing 32, gemm.c's share unit); 0: no packing,
    // the products go to cblas.
    int panel;
    // Packs columns [c0, c1) (whole panels) of op(W) into g->packed.
    void (*pack)(gemm_w* g, int c0, int c1);
    // Columns [c0, c1) of every C[s] = A[s] op(W) [+ bias | + C] from the panels.
    void (*apply)(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                  const gemm_w* g, const real* bias, int accumulate, int c0, int c1);
    size_t (*atb_work)(int M, int N, int k);
    void (*atb)(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M, int N,
                int k, real* work);
    void (*tanh)(real* h, size_t n);                        // h = tanh(h), in place
    void (*softmax)(real* p, const real* y, int rows, int O); // each row of y (rows x O)
    // Box-Muller on n pairs (n a multiple of 16) of uniforms u1 in (0, 1], u2 in [0, 1):
    // z0 = r cos(2 pi u2), z1 = r sin(2 pi u2), r = sigma sqrt(-2 ln u1).
    void (*normal)(float* z0, float* z1, const float* u1, const float* u2, float sigma, int n);
} kernel_ops;

// The variant chosen at start-up (before main: FNN_KERNEL when set and valid, else the best
// this CPU runs).
extern const kernel_ops* kernel;

// NULL, or why FNN_KERNEL could not be followed (a line naming the value); main reports it.
const char* kernel_error(void);

// Switches to the variant called name: 0, or -1 with the reason in err when the name is unknown
// or the CPU lacks what that variant was compiled for. For tests, which run every variant.
int kernel_use(const char* name, char* err, size_t n);

// The names of the variants this build holds, best first, NULL-terminated.
extern const char* const kernel_names[];

// The bf16 kernels (gemm_bf16.h), a capability beside the variant: NULL where this CPU runs
// them, else the extensions it lacks for them, space-separated as the Makefile names them
// ("avx512bf16"; FNN_CPU_HIDE counts), or why this build has none, for a one-line refusal.
const char* kernel_bf16_missing(void);
static inline int kernel_has_bf16(void) { return !kernel_bf16_missing(); }

// The compiled variants (model/kernel_*.c), for model/kernel.c.
extern const kernel_ops kernel_avx512, kernel_avx2, kernel_generic;

#endif
