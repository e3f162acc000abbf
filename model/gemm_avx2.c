// The avx2 variant's packing, per-step products and weight gradients (kernel.h) on the
// micro-kernel of gemm_kernel_avx2.h, blocked as the avx512 variant's (gemm_avx512.c,
// gemm_atb_avx512.c). Compiled with the Makefile's AVX2 flags.
#ifndef FNN_DOUBLE
#include "model/gemm_kernel_avx2.h"
#include "model/gemm_variants.h"

enum { NR = GEMM2_NR, MR = GEMM2_MR, KC = GEMM2_KC, ATB_KC = 2048, MC = 512 };

void gemm_avx2_pack(gemm_w* g, int c0, int c1)
{
    const int k = g->k;
    if (!g->trans) {
        gemm2_pack_rows(g->packed + (size_t)c0 * k, g->w + c0, (size_t)g->ldw, k, c1 - c0);
        return;
    }
    gemm_pack_trans(g, c0, c1, NR);
}

void gemm_avx2_apply(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                     const gemm_w* g, const real* bias, int accumulate, int c0, int c1)
{
    const int k = g->k, n = g->n;
    for (int j0 = c0; j0 < c1; j0 += NR) {
        const int nc = n - j0 < NR ? n - j0 : NR;
        const __m256i m0 = gemm2_mask(nc, 0), m1 = gemm2_mask(nc, 1);
        const float* P = g->packed + (size_t)j0 * k;
        int k0 = 0;
        do { // once even for k = 0, which still has to set C
            const int kc = k - k0 < KC ? k - k0 : KC;
            const int first = k0 == 0, load = !first || bias || accumulate;
            for (int s = 0; s < ns; s++) {
                float* Cs = C[s] + j0;
                const float* C0 = first && bias ? bias + j0 : Cs;
                const size_t ldc0 = first && bias ? 0 : (size_t)ldc;
                gemm2_rows(Cs, ldc, C0, ldc0, A[s] + k0, (size_t)MR * lda, (size_t)lda, 1, M,
                           P + (size_t)k0 * NR, kc, m0, m1, load);
            }
            k0 += KC;
        } while (k0 < k);
    }
}

size_t gemm_avx2_atb_work(int M, int N, int k)
{
    (void)M;
    const size_t kc = k < ATB_KC ? (size_t)k : ATB_KC;
    return kc * ((N + NR - 1) / NR * NR) + (size_t)(MC + MR) * kc;
}

// Columns [0, mc) of rows [0, kc) of A (row stride lda) as tiles of MR: tile t holds
// Ap[t][kk][i] = A[kk][t MR + i], zero-padded past mc.
static void pack_at(float* Ap, const float* A, size_t lda, int kc, int mc)
{
    for (int i0 = 0; i0 < mc; i0 += MR, Ap += (size_t)kc * MR) {
        const int mr = mc - i0 < MR ? mc - i0 : MR;
        for (int kk = 0; kk < kc; kk++)
            for (int i = 0; i < MR; i++)
                Ap[(size_t)kk * MR + i] = i < mr ? A[kk * lda + i0 + i] : 0;
    }
}

void gemm_avx2_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M,
                   int N, int k, real* work)
{
    // The kernel is single-threaded; with more threads OpenBLAS wins these large products.
    if (openblas_get_num_threads() > 1) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, k, 1, A, lda, B, ldb, 1, C,
                    ldc);
        return;
    }
    float* Bp = work;
    // As gemm_avx2_atb_work laid the scratch out for at least k rows.
    float* Ap = work + (size_t)(k < ATB_KC ? k : ATB_KC) * ((N + NR - 1) / NR * NR);
    for (int k0 = 0; k0 < k; k0 += ATB_KC) {
        const int kc = k - k0 < ATB_KC ? k - k0 : ATB_KC;
        gemm2_pack_rows(Bp, B + (size_t)k0 * ldb, (size_t)ldb, kc, N);
        for (int i0 = 0; i0 < M; i0 += MC) {
            const int mc = M - i0 < MC ? M - i0 : MC;
            pack_at(Ap, A + (size_t)k0 * lda + i0, (size_t)lda, kc, mc);
            for (int j0 = 0; j0 < N; j0 += NR) {
                const int nc = N - j0 < NR ? N - j0 : NR;
                float* Cij = C + (size_t)i0 * ldc + j0;
                gemm2_rows(Cij, ldc, Cij, (size_t)ldc, Ap, (size_t)kc * MR, 1, MR, mc,
                           Bp + (size_t)j0 * kc, kc, gemm2_mask(nc, 0), gemm2_mask(nc, 1), 1);
            }
        }
    }
}
#endif
