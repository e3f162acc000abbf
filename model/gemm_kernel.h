// The AVX-512 micro-kernel of model/gemm_avx512.c (float build): internal.
//
// B is packed into panels of NR = 32 columns, the last one zero-padded: P[kk][c] is column c of
// the panel at row kk, so consecutive panels of one KC block form one contiguous stream. A tile
// of MR rows of C by NR columns lives in 2 MR zmm registers; per kk it takes two vector loads of
// the panel and MR broadcasts of A, whose element (i, kk) sits at A[i ars + kk aks].
#ifndef MODEL_GEMM_KERNEL_H
#define MODEL_GEMM_KERNEL_H

#include <immintrin.h>
#include <stddef.h>

enum { GEMM_NR = 32, GEMM_MR = 8, GEMM_KC = 256 };

// Masks of the valid columns of a panel with nc (<= NR) of them, for the low and high 16.
static inline __mmask16 gemm_mask_lo(int nc)
{
    return (__mmask16)(nc >= 16 ? 0xffff : (1u << nc) - 1);
}

static inline __mmask16 gemm_mask_hi(int nc)
{
    return (__mmask16)(nc >= GEMM_NR ? 0xffff : nc > 16 ? (1u << (nc - 16)) - 1 : 0);
}

// C[0:mr, 0:NR] (columns masked by m0, m1) = [C0 +] A[0:mr, 0:kc] P[0:kc, 0:NR], where row i of
// C0 is at C0 + i ldc0 (C0 = C to accumulate, ldc0 = 0 for a bias row). Inlined with constant mr,
// ars and aks so that the accumulators stay in registers. C0 is the start of the sum, so
// splitting k into blocks does not change the order of the additions.
static inline __attribute__((always_inline)) void gemm_tile(int mr, float* C, int ldc,
                                                            const float* C0, size_t ldc0,
                                                            const float* A, size_t ars,
                                                            size_t aks, const float* P, int kc,
                                                            __mmask16 m0, __mmask16 m1, int load)
{
    __m512 c0[GEMM_MR], c1[GEMM_MR];
    for (int i = 0; i < mr; i++) {
        c0[i] = load ? _mm512_maskz_loadu_ps(m0, C0 + i * ldc0) : _mm512_setzero_ps();
        c1[i] = load ? _mm512_maskz_loadu_ps(m1, C0 + i * ldc0 + 16) : _mm512_setzero_ps();
    }
    for (int kk = 0; kk < kc; kk++) {
        const float* p = P + (size_t)kk * GEMM_NR;
        const __m512 b0 = _mm512_load_ps(p), b1 = _mm512_load_ps(p + 16);
        // The panels are one contiguous stream: fetch the next KC block while this one runs,
        // into L2: in L1 it would evict this block before the other row tiles reuse it.
        _mm_prefetch((const char*)(p + GEMM_KC * GEMM_NR), _MM_HINT_T1);
        _mm_prefetch((const char*)(p + GEMM_KC * GEMM_NR + 16), _MM_HINT_T1);
        for (int i = 0; i < mr; i++) {
            const __m512 a = _mm512_set1_ps(A[i * ars + kk * aks]);
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(C + (size_t)i * ldc, m0, c0[i]);
        _mm512_mask_storeu_ps(C + (size_t)i * ldc + 16, m1, c1[i]);
    }
}

// Every row of C (M of them) against one KC block of one panel: full MR tiles, then the rest.
// Tile t of A starts at A + t at (at = MR ars for a plain matrix, kc MR for packed tiles).
static inline __attribute__((always_inline)) void gemm_rows(float* C, int ldc, const float* C0,
                                                            size_t ldc0, const float* A,
                                                            size_t at, size_t ars, size_t aks,
                                                            int M, const float* P, int kc,
                                                            __mmask16 m0, __mmask16 m1, int load)
{
    int i = 0;
    for (; i + GEMM_MR <= M; i += GEMM_MR, A += at)
        gemm_tile(GEMM_MR, C + (size_t)i * ldc, ldc, C0 + i * ldc0, ldc0, A, ars, aks, P, kc, m0,
                  m1, load);
    C += (size_t)i * ldc;
    C0 += i * ldc0;
    switch (M - i) {
    case 7: gemm_tile(7, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    case 6: gemm_tile(6, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    case 5: gemm_tile(5, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    case 4: gemm_tile(4, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    case 3: gemm_tile(3, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    case 2: gemm_tile(2, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    case 1: gemm_tile(1, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    default: break;
    }
}

// Packs rows [0, kc) x columns [0, n) of the row-major B (row stride ldb) into panels at P,
// panel p at P + p kc NR, zero-padding the last one.
static inline void gemm_pack_rows(float* P, const float* B, size_t ldb, int kc, int n)
{
    for (int j0 = 0; j0 < n; j0 += GEMM_NR, P += (size_t)kc * GEMM_NR) {
        const int nc = n - j0 < GEMM_NR ? n - j0 : GEMM_NR;
        const __mmask16 m0 = gemm_mask_lo(nc), m1 = gemm_mask_hi(nc);
        for (int kk = 0; kk < kc; kk++) {
            const float* src = B + kk * ldb + j0;
            _mm512_store_ps(P + (size_t)kk * GEMM_NR, _mm512_maskz_loadu_ps(m0, src));
            _mm512_store_ps(P + (size_t)kk * GEMM_NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
    }
}

#endif
