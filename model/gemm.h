// The model's GEMMs on a packed kernel (gemm_kernel.h): the per-step products against a
// weight matrix that stays fixed for a window, C = [C +] A op(W) with M = the local batch (a few
// dozen rows), and the weight gradients after the time loop, C += A^T B.
//
// OpenBLAS (Debian's, AVX2 kernels) repacks W on every call and runs the skinny-M shapes well
// below its peak. Here the weight is packed once per window into column panels that each step
// streams once, reusing every panel block across all rows of A from L1. The kernel is the
// avx512 variant's (kernel.h, chosen at start-up); with the others, and in the float64 build,
// the same calls go to cblas.
#ifndef MODEL_GEMM_H
#define MODEL_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include "dist/real.h"

// op(W) is k x n: W itself (k x n, row stride ldw) or, with trans, the transpose of an n x k W.
typedef struct gemm_w {
    const real* w;
    int ldw, k, n, trans;
    real* packed; // the caller's gemm_w_size(k, n) elements, 64-byte aligned, for the panels
    int ready;    // the panels hold W: gemm_w_apply runs the kernel, else cblas
    uint16_t* packed16; // instead of packed, a bf16 model's panels (gemm_bf16.h; model_apply)
} gemm_w;

// The kernel variant chosen at start-up (kernel.h): "avx512", "avx2" or "generic".
const char* gemm_kernel_name(void);

// Elements of packed storage that op(W) of k x n needs: 0 with a variant without the kernel.
size_t gemm_w_size(int k, int n);

// Describes op(W), with packed = NULL until the caller gives it storage.
void gemm_w_set(gemm_w* g, const real* w, int ldw, int k, int n, int trans);

// The columns of panel share part of parts (as gemm_w_pack cuts them): [*j0, *j1).
void gemm_w_share(const gemm_w* g, int part, int parts, int* j0, int* j1);

// Call after W changes and before the next gemm_w_apply, with the number of products that
// will use this W: copies W into the panels when that repays the copy. The panels are cut into
// parts shares; this call packs share part, so that processes holding the same W and the same
// packed storage split the work (part = 0, parts = 1: all of it). Every process marks g ready.
void gemm_w_pack(gemm_w* g, int uses, int part, int parts);

// C (M x n, row stride ldc) = A (M x k, row stride lda) op(W), plus the bias (n) in every row
// when bias is not NULL, else plus C's old value when accumulate. With the kernel, each element
// of C is summed over k in order after its bias or old value, whatever M is.
void gemm_w_apply(real* C, int ldc, const real* A, int lda, int M, const gemm_w* g,
                  const real* bias, int accumulate);
// The same for ns products C[s] = A[s] op(W), but only the columns of panel share part of
// parts (as gemm_w_pack cuts them): each block of a panel serves the rows of all ns before the
// next is read, so processes sharing the panels stream 1 / parts of them each.
void gemm_w_apply_part(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                       const gemm_w* g, const real* bias, int accumulate, int part, int parts);

// GFLOP/s of the kernel (or of cblas, with a variant without it) on C (M x N) = A (M x K) W
// (K x N), the best of `runs` runs of reps products, by the wall clock; *by_cpu: the best by
// this thread's CPU time, what a core does when it runs this thread on a shared machine. A
// weight that stays in cache measures the kernel's own rate, not memory's.
double gemm_kernel_rate(int M, int K, int N, long reps, int runs, double* by_cpu);

// The weight gradients, summed over the rows of a window: C (M x N, row stride ldc) += A^T B
// for A (k x M, row stride lda) and B (k x N, row stride ldb). work holds gemm_atb_work(M, N, k)
// elements, 64-byte aligned (none with a variant without the kernel). The kernel is
// single-threaded: when OpenBLAS has more threads, the product goes to it. With the kernel, each element of C is
// summed over k in order, whatever M and N are.
size_t gemm_atb_work(int M, int N, int k);
void gemm_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M, int N,
              int k, real* work);

#endif
