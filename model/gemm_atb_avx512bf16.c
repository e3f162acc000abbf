// The bf16 weight-gradient GEMM C += A^T B (gemm_bf16.h) on the micro-kernel of
// gemm_kernel_bf16.h, blocked as the float32 one (gemm_variants.h's gemm_atb_template): per KC
// block of the k rows, B is rounded
// into panels of pairs (KC x N) and, per MC columns of A, A^T into tiles of MR rows of pairs
// (MC x KC); each KC x NR block of a panel (in L2) then serves all MC / MR tiles. KC is twice the
// float32 one, 4096: the same bytes of scratch and of a panel block (256 KB), and half as many
// passes over C, which at twice the arithmetic rate would otherwise cost twice as much. Compiled
// with the Makefile's AVX512 and BF16 flags.
#ifndef FNN_DOUBLE
#include "model/gemm_kernel_bf16.h"

enum { NR = GEMM_NR, MR = GEMM_MR, KC = 4096, MC = 512 };

size_t gemm_bf16_atb_work(int M, int N, int k)
{
    (void)M;
    const size_t kc = (size_t)gemm_bf16_kpad(k < KC ? k : KC);
    return kc * ((N + NR - 1) / NR * NR) + (size_t)MC * kc;
}

// Columns [0, mc) of rows [0, kc) of A (row stride lda) as tiles of MR rows of A^T in pairs:
// tile t holds the pair (A[2q][t MR + i], A[2q + 1][t MR + i]) at word q MR + i, zero past mc
// and past kc.
static void pack_at(bf16* Ap, const float* A, size_t lda, int kc, int mc)
{
    const int kp = gemm_bf16_kpad(kc);
    for (int i0 = 0; i0 < mc; i0 += MR, Ap += (size_t)kp * MR) {
        const __mmask16 m = (__mmask16)(mc - i0 >= MR ? 0xff : (1u << (mc - i0)) - 1);
        for (int kk = 0; kk < kc; kk += 2) {
            const float* e = A + kk * lda + i0;
            const int full = kk + 1 < kc; // past an odd kc the high halves are zero
            const __m512 lo = _mm512_maskz_loadu_ps(m, e);
            const __m512 hi = _mm512_maskz_loadu_ps(full ? m : 0, full ? e + lda : e);
            _mm256_store_si256((__m256i*)(Ap + (size_t)kk * MR),
                               _mm512_castsi512_si256(bf16_pairs16(lo, hi)));
        }
    }
}

void gemm_bf16_atb(float* C, int ldc, const float* A, int lda, const float* B, int ldb, int M,
                   int N, int k, bf16* work)
{
    bf16* Bp = work;
    // As gemm_bf16_atb_work laid the scratch out.
    bf16* Ap = work + (size_t)gemm_bf16_kpad(k < KC ? k : KC) * ((N + NR - 1) / NR * NR);
    for (int k0 = 0; k0 < k; k0 += KC) {
        const int kc = k - k0 < KC ? k - k0 : KC, kp = gemm_bf16_kpad(kc);
        bf16_pack_rows(Bp, B + (size_t)k0 * ldb, (size_t)ldb, kc, N);
        for (int i0 = 0; i0 < M; i0 += MC) {
            const int mc = M - i0 < MC ? M - i0 : MC;
            pack_at(Ap, A + (size_t)k0 * lda + i0, (size_t)lda, kc, mc);
            for (int j0 = 0; j0 < N; j0 += NR) {
                const int nc = N - j0 < NR ? N - j0 : NR;
                float* Cij = C + (size_t)i0 * ldc + j0;
                bf16_rows(Cij, ldc, Cij, (size_t)ldc, (const bf16_pair*)Ap, (size_t)kp * MR / 2,
                          1, MR, mc, Bp + (size_t)j0 * kp, kp / 2, gemm_mask_lo(nc),
                          gemm_mask_hi(nc), 1);
            }
        }
    }
}
#endif
