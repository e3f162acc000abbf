// The avx512 variant's weight-gradient GEMM C += A^T B (see gemm.h) on the micro-kernel of
// gemm_kernel.h. Compiled with the Makefile's AVX512 flags.
//
// Blocked as GotoBLAS does: per KC block of the k rows, B is packed into panels (KC x N) and,
// per MC columns of A, A^T into tiles of MR rows (MC x KC); each KC x NR block of a panel (256 KB,
// in L2) then serves all MC / MR tiles. KC is far larger than the per-step products' because C,
// a whole weight matrix here, is read and written once per KC block: for C 2048 x 4352 one
// thread measured 213, 226 and 241 GFLOP/s at KC = 512, 1024, 2048 (MC = 512), at the price of
// a KC x N scratch (36 MB for that C).
#ifndef FNN_DOUBLE
#include "model/gemm_variants.h"
#include "model/gemm_kernel.h"

enum { NR = GEMM_NR, MR = GEMM_MR, KC = 2048, MC = 512 };

size_t gemm_avx512_atb_work(int M, int N, int k)
{
    (void)M;
    const size_t kc = k < KC ? (size_t)k : KC;
    return kc * ((N + NR - 1) / NR * NR) + (size_t)MC * kc;
}

// Columns [0, mc) of rows [0, kc) of A (row stride lda) as tiles of MR: tile t holds
// Ap[t][kk][i] = A[kk][t MR + i], zero-padded past mc.
static void pack_at(float* Ap, const float* A, size_t lda, int kc, int mc)
{
    for (int i0 = 0; i0 < mc; i0 += MR, Ap += (size_t)kc * MR) {
        const __mmask8 mask = (__mmask8)(mc - i0 >= MR ? 0xff : (1u << (mc - i0)) - 1);
        for (int kk = 0; kk < kc; kk++)
            _mm256_store_ps(Ap + (size_t)kk * MR, _mm256_maskz_loadu_ps(mask, A + kk * lda + i0));
    }
}

void gemm_avx512_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M,
                     int N, int k, real* work)
{
    // The kernel is single-threaded; with more threads OpenBLAS wins these large products.
    if (openblas_get_num_threads() > 1) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, k, 1, A, lda, B, ldb, 1, C,
                    ldc);
        return;
    }
    float* Bp = work;
    // As gemm_avx512_atb_work laid the scratch out for at least k rows.
    float* Ap = work + (size_t)(k < KC ? k : KC) * ((N + NR - 1) / NR * NR);
    for (int k0 = 0; k0 < k; k0 += KC) {
        const int kc = k - k0 < KC ? k - k0 : KC;
        gemm_pack_rows(Bp, B + (size_t)k0 * ldb, (size_t)ldb, kc, N);
        for (int i0 = 0; i0 < M; i0 += MC) {
            const int mc = M - i0 < MC ? M - i0 : MC;
            pack_at(Ap, A + (size_t)k0 * lda + i0, (size_t)lda, kc, mc);
            for (int j0 = 0; j0 < N; j0 += NR) {
                const int nc = N - j0 < NR ? N - j0 : NR;
                float* Cij = C + (size_t)i0 * ldc + j0;
                gemm_rows(Cij, ldc, Cij, (size_t)ldc, Ap, (size_t)kc * MR, 1, MR, mc,
                          Bp + (size_t)j0 * kc, kc, gemm_mask_lo(nc), gemm_mask_hi(nc), 1);
            }
        }
    }
}

#endif
