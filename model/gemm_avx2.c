// The avx2 variant's packing, per-step products and weight gradients (kernel.h): the blocking
// of gemm_variants.h on the micro-kernel of gemm_kernel_avx2.h. Compiled with the Makefile's
// AVX2 flags.
#ifndef FNN_DOUBLE
#include "model/gemm_kernel_avx2.h"
#include "model/gemm_variants.h"

enum { NR = GEMM2_NR, MR = GEMM2_MR, KC = GEMM2_KC, ATB_KC = 2048, MC = 512 };

static void rows(float* C, int ldc, const float* C0, size_t ldc0, const float* A, size_t at,
                 size_t ars, size_t aks, int M, const float* P, int kc, int nc, int load)
{
    gemm2_rows(C, ldc, C0, ldc0, A, at, ars, aks, M, P, kc, gemm2_mask(nc, 0), gemm2_mask(nc, 1),
               load);
}

// As gemm_pack_at_fn, element by element (MR = 6 columns do not fill a vector).
static void pack_at(float* Ap, const float* A, size_t lda, int kc, int mc)
{
    for (int i0 = 0; i0 < mc; i0 += MR, Ap += (size_t)kc * MR) {
        const int mr = mc - i0 < MR ? mc - i0 : MR;
        for (int kk = 0; kk < kc; kk++)
            for (int i = 0; i < MR; i++)
                Ap[(size_t)kk * MR + i] = i < mr ? A[kk * lda + i0 + i] : 0;
    }
}

void gemm_avx2_pack(gemm_w* g, int c0, int c1)
{
    gemm_pack_template(g, c0, c1, NR, gemm2_pack_rows);
}

void gemm_avx2_apply(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                     const gemm_w* g, const real* bias, int accumulate, int c0, int c1)
{
    gemm_apply_template(ns, C, ldc, A, lda, M, g, bias, accumulate, c0, c1, NR, MR, KC, rows);
}

size_t gemm_avx2_atb_work(int M, int N, int k)
{
    (void)M;
    return gemm_atb_work_template(N, k, NR, MR, ATB_KC, MC);
}

void gemm_avx2_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M,
                   int N, int k, real* work)
{
    gemm_atb_template(C, ldc, A, lda, B, ldb, M, N, k, work, NR, MR, ATB_KC, MC, gemm2_pack_rows,
                      pack_at, rows);
}
#endif
