// The avx512 and avx2 variants' products (kernel.h documents each slot): internal to
// model/kernel_*.c and the files that implement them, which the Makefile compiles with each
// variant's flags.
#ifndef MODEL_GEMM_VARIANTS_H
#define MODEL_GEMM_VARIANTS_H

#include "model/gemm.h"

void gemm_avx512_pack(gemm_w* g, int c0, int c1);
void gemm_avx512_apply(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                       const gemm_w* g, const real* bias, int accumulate, int c0, int c1);
size_t gemm_avx512_atb_work(int M, int N);
void gemm_avx512_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M,
                     int N, int k, real* work);


void gemm_avx2_pack(gemm_w* g, int c0, int c1);
void gemm_avx2_apply(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                     const gemm_w* g, const real* bias, int accumulate, int c0, int c1);
size_t gemm_avx2_atb_work(int M, int N);
void gemm_avx2_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M,
                   int N, int k, real* work);

#endif
