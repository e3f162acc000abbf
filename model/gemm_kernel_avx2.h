// The AVX2 micro-kernel of model/gemm_avx2.c (float build): internal. The AVX-512 one of
// gemm_kernel.h at half the width: panels of NR = 16 columns (two ymm per row), tiles of MR = 6
// rows of C in 12 ymm accumulators, with two panel loads and MR broadcasts of A per kk; the
// masks are vectors, since AVX2 has no mask registers.
#ifndef MODEL_GEMM_KERNEL_AVX2_H
#define MODEL_GEMM_KERNEL_AVX2_H

#include <immintrin.h>
#include <stddef.h>

enum { GEMM2_NR = 16, GEMM2_MR = 6, GEMM2_KC = 256 };

// The valid lanes of the low and high 8 columns of a panel with nc (<= NR) columns.
static inline __m256i gemm2_mask(int nc, int half)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - 8 * half),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// C[0:mr, 0:NR] (columns masked by m0, m1) = [C0 +] A[0:mr, 0:kc] P[0:kc, 0:NR], as gemm_tile of
// gemm_kernel.h: row i of C0 at C0 + i ldc0, A's element (i, kk) at A[i ars + kk aks]; the sum
// of each element runs over kk in order from C0.
static inline __attribute__((always_inline)) void gemm2_tile(int mr, float* C, int ldc,
                                                             const float* C0, size_t ldc0,
                                                             const float* A, size_t ars,
                                                             size_t aks, const float* P, int kc,
                                                             __m256i m0, __m256i m1, int load)
{
    __m256 c0[GEMM2_MR], c1[GEMM2_MR];
    for (int i = 0; i < mr; i++) {
        c0[i] = load ? _mm256_maskload_ps(C0 + i * ldc0, m0) : _mm256_setzero_ps();
        c1[i] = load ? _mm256_maskload_ps(C0 + i * ldc0 + 8, m1) : _mm256_setzero_ps();
    }
    for (int kk = 0; kk < kc; kk++) {
        const float* p = P + (size_t)kk * GEMM2_NR;
        const __m256 b0 = _mm256_load_ps(p), b1 = _mm256_load_ps(p + 8);
        // The next KC block of the panel stream, into L2 (see gemm_kernel.h).
        _mm_prefetch((const char*)(p + GEMM2_KC * GEMM2_NR), _MM_HINT_T1);
        for (int i = 0; i < mr; i++) {
            const __m256 a = _mm256_broadcast_ss(A + i * ars + kk * aks);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm256_maskstore_ps(C + (size_t)i * ldc, m0, c0[i]);
        _mm256_maskstore_ps(C + (size_t)i * ldc + 8, m1, c1[i]);
    }
}

// Every row of C (M of them) against one KC block of one panel: full MR tiles, then the rest.
// Tile t of A starts at A + t at.
static inline __attribute__((always_inline)) void gemm2_rows(float* C, int ldc, const float* C0,
                                                             size_t ldc0, const float* A,
                                                             size_t at, size_t ars, size_t aks,
                                                             int M, const float* P, int kc,
                                                             __m256i m0, __m256i m1, int load)
{
    int i = 0;
    for (; i + GEMM2_MR <= M; i += GEMM2_MR, A += at)
        gemm2_tile(GEMM2_MR, C + (size_t)i * ldc, ldc, C0 + i * ldc0, ldc0, A, ars, aks, P, kc,
                   m0, m1, load);
    C += (size_t)i * ldc;
    C0 += i * ldc0;
    switch (M - i) {
    case 5: gemm2_tile(5, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    case 4: gemm2_tile(4, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    case 3: gemm2_tile(3, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    case 2: gemm2_tile(2, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    case 1: gemm2_tile(1, C, ldc, C0, ldc0, A, ars, aks, P, kc, m0, m1, load); break;
    default: break;
    }
}

// Packs rows [0, kc) x columns [0, n) of the row-major B (row stride ldb) into panels at P,
// panel p at P + p kc NR, zero-padding the last one.
static inline void gemm2_pack_rows(float* P, const float* B, size_t ldb, int kc, int n)
{
    for (int j0 = 0; j0 < n; j0 += GEMM2_NR, P += (size_t)kc * GEMM2_NR) {
        const int nc = n - j0 < GEMM2_NR ? n - j0 : GEMM2_NR;
        const __m256i m0 = gemm2_mask(nc, 0), m1 = gemm2_mask(nc, 1);
        for (int kk = 0; kk < kc; kk++) {
            const float* src = B + kk * ldb + j0;
            _mm256_store_ps(P + (size_t)kk * GEMM2_NR, _mm256_maskload_ps(src, m0));
            _mm256_store_ps(P + (size_t)kk * GEMM2_NR + 8, _mm256_maskload_ps(src + 8, m1));
        }
    }
}

#endif
