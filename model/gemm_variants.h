// The avx512 and avx2 variants' products (kernel.h documents each slot): internal to
// model/kernel_*.c and the files that implement them, which the Makefile compiles with each
// variant's flags.
#ifndef MODEL_GEMM_VARIANTS_H
#define MODEL_GEMM_VARIANTS_H

#include "model/gemm.h"

void gemm_avx512_pack(gemm_w* g, int c0, int c1);
void gemm_avx512_apply(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                       const gemm_w* g, const real* bias, int accumulate, int c0, int c1);
size_t gemm_avx512_atb_work(int M, int N, int k);
void gemm_avx512_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M,
                     int N, int k, real* work);

void gemm_avx2_pack(gemm_w* g, int c0, int c1);
void gemm_avx2_apply(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                     const gemm_w* g, const real* bias, int accumulate, int c0, int c1);
size_t gemm_avx2_atb_work(int M, int N, int k);
void gemm_avx2_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M,
                   int N, int k, real* work);

// Panels of op(W) = W^T for columns [c0, c1) (rows of W), nr columns a panel, zero past n: column c
// of a panel is row j0 + c of W, so nr read streams feed one write stream. Inline, so that each
// variant's constant nr unrolls the inner loop as before.
static inline void gemm_pack_trans(gemm_w* g, int c0, int c1, const int nr)
{
    const int k = g->k, n = g->n;
    for (int j0 = c0; j0 < c1; j0 += nr) {
        float* P = g->packed + (size_t)j0 * k;
        const int nc = n - j0 < nr ? n - j0 : nr;
        const float* src[32];
        for (int c = 0; c < nr; c++) src[c] = g->w + (size_t)(j0 + (c < nc ? c : 0)) * g->ldw;
        for (int kk = 0; kk < k; kk++)
            for (int c = 0; c < nr; c++) P[(size_t)kk * nr + c] = c < nc ? src[c][kk] : 0;
    }
}

#endif
