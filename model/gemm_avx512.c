// The avx512 variant's packing and per-step products (kernel.h) on the micro-kernel of
// gemm_kernel.h. op(W) is packed whole, panel after panel, so one step streams it once; the k
// dimension is cut into KC blocks so that a block of a panel (KC x NR floats) stays in L1 while
// every row tile of A passes over it. Compiled with the Makefile's AVX512 flags.
#ifndef FNN_DOUBLE
#include "model/gemm_variants.h"
#include "model/gemm_kernel.h"

enum { NR = GEMM_NR, KC = GEMM_KC };

void gemm_avx512_pack(gemm_w* g, int c0, int c1)
{
    const int k = g->k;
    if (!g->trans) {
        gemm_pack_rows(g->packed + (size_t)c0 * k, g->w + c0, (size_t)g->ldw, k, c1 - c0);
        return;
    }
    gemm_pack_trans(g, c0, c1, NR);
}

void gemm_avx512_apply(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                       const gemm_w* g, const real* bias, int accumulate, int c0, int c1)
{
    const int k = g->k, n = g->n;
    for (int j0 = c0; j0 < c1; j0 += NR) {
        const int nc = n - j0 < NR ? n - j0 : NR;
        const __mmask16 m0 = gemm_mask_lo(nc), m1 = gemm_mask_hi(nc);
        const float* P = g->packed + (size_t)j0 * k;
        int k0 = 0;
        do { // once even for k = 0, which still has to set C
            const int kc = k - k0 < KC ? k - k0 : KC;
            // The first KC block starts from the bias, C or zero, the later ones from C.
            const int first = k0 == 0, load = !first || bias || accumulate;
            for (int s = 0; s < ns; s++) {
                float* Cs = C[s] + j0;
                const float* C0 = first && bias ? bias + j0 : Cs;
                const size_t ldc0 = first && bias ? 0 : (size_t)ldc;
                gemm_rows(Cs, ldc, C0, ldc0, A[s] + k0, (size_t)GEMM_MR * lda, (size_t)lda, 1,
                          M, P + (size_t)k0 * NR, kc, m0, m1, load);
            }
            k0 += KC;
        } while (k0 < k);
    }
}
#endif
