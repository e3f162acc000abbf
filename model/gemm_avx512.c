// The avx512 variant's packing, per-step products and weight gradients (kernel.h): the blocking
// of gemm_variants.h on the micro-kernel of gemm_kernel.h. Compiled with the Makefile's AVX512
// flags.
#ifndef FNN_DOUBLE
#include "model/gemm_variants.h"
#include "model/gemm_kernel.h"

enum { NR = GEMM_NR, MR = GEMM_MR, KC = GEMM_KC, ATB_KC = 2048, MC = 512 };

static void rows(float* C, int ldc, const float* C0, size_t ldc0, const float* A, size_t at,
                 size_t ars, size_t aks, int M, const float* P, int kc, int nc, int load)
{
    gemm_rows(C, ldc, C0, ldc0, A, at, ars, aks, M, P, kc, gemm_mask_lo(nc), gemm_mask_hi(nc),
              load);
}

// As gemm_pack_at_fn, by masked loads of MR columns at a time.
static void pack_at(float* Ap, const float* A, size_t lda, int kc, int mc)
{
    for (int i0 = 0; i0 < mc; i0 += MR, Ap += (size_t)kc * MR) {
        const __mmask8 mask = (__mmask8)(mc - i0 >= MR ? 0xff : (1u << (mc - i0)) - 1);
        for (int kk = 0; kk < kc; kk++)
            _mm256_store_ps(Ap + (size_t)kk * MR, _mm256_maskz_loadu_ps(mask, A + kk * lda + i0));
    }
}

void gemm_avx512_pack(gemm_w* g, int c0, int c1)
{
    gemm_pack_template(g, c0, c1, NR, gemm_pack_rows);
}

void gemm_avx512_apply(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                       const gemm_w* g, const real* bias, int accumulate, int c0, int c1)
{
    gemm_apply_template(ns, C, ldc, A, lda, M, g, bias, accumulate, c0, c1, NR, MR, KC, rows);
}

size_t gemm_avx512_atb_work(int M, int N, int k)
{
    (void)M;
    return gemm_atb_work_template(N, k, NR, MR, ATB_KC, MC);
}

void gemm_avx512_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M,
                     int N, int k, real* work)
{
    gemm_atb_template(C, ldc, A, lda, B, ldb, M, N, k, work, NR, MR, ATB_KC, MC, gemm_pack_rows,
                      pack_at, rows);
}
#endif
