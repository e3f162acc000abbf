// The bf16 rounding of operands, the packing of weights and the per-step products (gemm_bf16.h)
// on the micro-kernel of gemm_kernel_bf16.h, blocked as gemm_avx512.c: op(W) packed whole,
// panel after panel, so that one step streams it once, and k cut into blocks of KC whose part
// of a panel stays in L1 while every row tile of A passes over it. Compiled with the Makefile's
// AVX512 and BF16 flags.
#ifndef FNN_DOUBLE
#include "model/gemm_kernel_bf16.h"

// KC = 512 values of k: a block of a panel is 32 KB, as the float32 kernel's 256.
enum { NR = GEMM_NR, KC = 512 };

void gemm_bf16_round(bf16* dst, size_t ldd, const float* src, size_t lds, int rows, int k)
{
    for (int i = 0; i < rows; i++, dst += ldd, src += lds) {
        for (int j = 0; j < k; j += 16) {
            const __mmask16 m = (__mmask16)(k - j >= 16 ? 0xffff : (1u << (k - j)) - 1);
            const __m512 f = _mm512_maskz_loadu_ps(m, src + j);
            const __m512i r = _mm512_srli_epi32(bf16_round16(f), 16);
            _mm256_mask_storeu_epi16(dst + j, m, _mm512_cvtepi32_epi16(r));
        }
        if (k & 1) dst[k] = 0;
    }
}

size_t gemm_bf16_w_size(int k, int n)
{
    return (size_t)gemm_bf16_kpad(k) * (size_t)((n + NR - 1) / NR * NR);
}

void gemm_bf16_pack(const gemm_w* g, bf16* packed, int c0, int c1)
{
    const int k = g->k, n = g->n, kp = gemm_bf16_kpad(k);
    if (!g->trans) {
        bf16_pack_rows(packed + (size_t)c0 * kp, g->w + c0, (size_t)g->ldw, k, c1 - c0);
        return;
    }
    // op(W) = W^T: column c of a panel is row j0 + c of W, whose pairs of k are adjacent.
    for (int j0 = c0; j0 < c1; j0 += NR) {
        bf16* P = packed + (size_t)j0 * kp;
        const int nc = n - j0 < NR ? n - j0 : NR;
        for (int c = 0; c < NR; c++) {
            const float* row = g->w + (size_t)(j0 + (c < nc ? c : 0)) * g->ldw;
            for (int kk = 0; kk < kp; kk++)
                P[(size_t)(kk & ~1) * NR + 2 * c + (kk & 1)] =
                    c < nc && kk < k ? bf16_round(row[kk]) : 0;
        }
    }
}

void gemm_bf16_apply(int ns, float* const* C, int ldc, const bf16* const* A, int lda, int M,
                     const gemm_w* g, const bf16* packed, const float* bias, int accumulate,
                     int c0, int c1)
{
    const int kp = gemm_bf16_kpad(g->k), n = g->n;
    for (int j0 = c0; j0 < c1; j0 += NR) {
        const int nc = n - j0 < NR ? n - j0 : NR;
        const __mmask16 m0 = gemm_mask_lo(nc), m1 = gemm_mask_hi(nc);
        const bf16* P = packed + (size_t)j0 * kp;
        int k0 = 0;
        do { // once even for k = 0, which still has to set C
            const int kc = kp - k0 < KC ? kp - k0 : KC;
            // The first block starts from the bias, C or zero, the later ones from C.
            const int first = k0 == 0, load = !first || bias || accumulate;
            for (int s = 0; s < ns; s++) {
                float* Cs = C[s] + j0;
                const float* C0 = first && bias ? bias + j0 : Cs;
                const size_t ldc0 = first && bias ? 0 : (size_t)ldc;
                bf16_rows(Cs, ldc, C0, ldc0, (const bf16_pair*)(A[s] + k0),
                          (size_t)GEMM_MR * lda / 2, (size_t)lda / 2, 1, M,
                          P + (size_t)k0 * NR, kc / 2, m0, m1, load);
            }
            k0 += KC;
        } while (k0 < kp);
    }
}
#endif
