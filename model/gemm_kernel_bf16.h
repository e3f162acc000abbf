// The AVX512_BF16 micro-kernel and the rounding shared by gemm_avx512bf16.c and
// gemm_atb_avx512bf16.c: internal. The layouts are gemm_bf16.h's; as gemm_kernel.h's, a tile of
// MR rows by NR = 32 columns lives in 2 MR zmm accumulators, and per pair of k it takes two
// vector loads of the panel and MR broadcasts of one 32-bit word (a pair) of A.
#ifndef MODEL_GEMM_KERNEL_BF16_H
#define MODEL_GEMM_KERNEL_BF16_H

#include <immintrin.h>
#include <string.h>
#include "model/gemm_bf16.h"
#include "model/gemm_kernel.h"

// A pair of bf16 read as one 32-bit word out of bf16 storage.
typedef int32_t bf16_pair __attribute__((__may_alias__));

// Pairs of a panel prefetched ahead: 32 KB, as gemm_tile's GEMM_KC rows of float32, which is
// the next block of gemm_bf16_apply's.
enum { BF16_AHEAD = 256 };

// Round to nearest even (gemm_bf16.h) of the float32 bits x, left in the top 16 bits: adding
// 0x7fff plus the lowest kept bit carries into the kept bits exactly when the dropped ones are
// above half, or half with the kept ones odd; a carry out of the mantissa steps the exponent,
// which is the rounding to infinity and from the largest denormal to the smallest normal. A NaN
// instead keeps its top bits with the quiet bit set: the carry could turn it into an infinity.
static inline uint32_t bf16_round_bits(uint32_t x)
{
    if ((x & 0x7fffffffu) > 0x7f800000u) return x | 0x00400000u;
    return x + 0x7fffu + (x >> 16 & 1);
}

static inline bf16 bf16_round(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return (bf16)(bf16_round_bits(x) >> 16);
}

// The same for 16 float32 at once.
static inline __m512i bf16_round16(__m512 f)
{
    const __m512i x = _mm512_castps_si512(f);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7fff)), odd);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(
        _mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, x, _mm512_set1_epi32(0x00400000));
}

// 32-bit lanes holding the pairs (lo[c], hi[c]) rounded: lo's bf16 in the low half.
static inline __m512i bf16_pairs16(__m512 lo, __m512 hi)
{
    return _mm512_or_si512(_mm512_srli_epi32(bf16_round16(lo), 16),
                           _mm512_and_si512(bf16_round16(hi), _mm512_set1_epi32((int)0xffff0000u)));
}

// Rows [0, kc) x columns [0, n) of the float32 row-major B (row stride ldb) into panels of pairs
// at P, panel p at P + p kp NR (kp = kc rounded up to even), zero past n and past kc.
static inline void bf16_pack_rows(bf16* P, const float* B, size_t ldb, int kc, int n)
{
    const int kp = gemm_bf16_kpad(kc);
    for (int j0 = 0; j0 < n; j0 += GEMM_NR, P += (size_t)kp * GEMM_NR) {
        const int nc = n - j0 < GEMM_NR ? n - j0 : GEMM_NR;
        const __mmask16 m0 = gemm_mask_lo(nc), m1 = gemm_mask_hi(nc);
        for (int kk = 0; kk < kc; kk += 2) {
            // Past an odd kc the high halves are zero, read from no row.
            const int full = kk + 1 < kc;
            const float* e = B + kk * ldb + j0;
            const float* o = full ? e + ldb : e;
            const __mmask16 o0 = full ? m0 : 0, o1 = full ? m1 : 0;
            bf16* p = P + (size_t)kk * GEMM_NR;
            _mm512_store_si512(p, bf16_pairs16(_mm512_maskz_loadu_ps(m0, e),
                                               _mm512_maskz_loadu_ps(o0, o)));
            _mm512_store_si512(p + 32, bf16_pairs16(_mm512_maskz_loadu_ps(m1, e + 16),
                                                    _mm512_maskz_loadu_ps(o1, o + 16)));
        }
    }
}

// C[0:mr, 0:NR] (columns masked by m0, m1) = [C0 +] A[0:mr, 0:2 np] P[0:2 np, 0:NR], as
// gemm_tile, with the pair (i, q) of A at the word A[i ars + q aks] and np pairs of k. The panel
// BF16_AHEAD pairs on is fetched into L2 as in gemm_tile.
static inline __attribute__((always_inline)) void bf16_tile(int mr, float* C, int ldc,
                                                            const float* C0, size_t ldc0,
                                                            const bf16_pair* A, size_t ars,
                                                            size_t aks, const bf16* P, int np,
                                                            __mmask16 m0, __mmask16 m1, int load)
{
    __m512 c0[GEMM_MR], c1[GEMM_MR];
    for (int i = 0; i < mr; i++) {
        c0[i] = load ? _mm512_maskz_loadu_ps(m0, C0 + i * ldc0) : _mm512_setzero_ps();
        c1[i] = load ? _mm512_maskz_loadu_ps(m1, C0 + i * ldc0 + 16) : _mm512_setzero_ps();
    }
    for (int q = 0; q < np; q++) {
        const bf16* p = P + (size_t)q * 2 * GEMM_NR;
        const __m512bh b0 = (__m512bh)_mm512_load_si512(p);
        const __m512bh b1 = (__m512bh)_mm512_load_si512(p + 32);
        _mm_prefetch((const char*)(p + (size_t)BF16_AHEAD * 2 * GEMM_NR), _MM_HINT_T1);
        _mm_prefetch((const char*)(p + (size_t)BF16_AHEAD * 2 * GEMM_NR + 32), _MM_HINT_T1);
        for (int i = 0; i < mr; i++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32(A[i * ars + q * aks]);
            c0[i] = _mm512_dpbf16_ps(c0[i], a, b0);
            c1[i] = _mm512_dpbf16_ps(c1[i], a, b1);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(C + (size_t)i * ldc, m0, c0[i]);
        _mm512_mask_storeu_ps(C + (size_t)i * ldc + 16, m1, c1[i]);
    }
}

// Every row of C (M of them) against np pairs of one panel: full MR tiles, then the rest. Tile t
// of A starts at A + t at (in words).
static inline __attribute__((always_inline)) void bf16_rows(float* C, int ldc, const float* C0,
                                                            size_t ldc0, const bf16_pair* A,
                                                            size_t at, size_t ars, size_t aks,
                                                            int M, const bf16* P, int np,
                                                            __mmask16 m0, __mmask16 m1, int load)
{
    int i = 0;
    for (; i + GEMM_MR <= M; i += GEMM_MR, A += at)
        bf16_tile(GEMM_MR, C + (size_t)i * ldc, ldc, C0 + i * ldc0, ldc0, A, ars, aks, P, np, m0,
                  m1, load);
    C += (size_t)i * ldc;
    C0 += i * ldc0;
    switch (M - i) {
    case 7: bf16_tile(7, C, ldc, C0, ldc0, A, ars, aks, P, np, m0, m1, load); break;
    case 6: bf16_tile(6, C, ldc, C0, ldc0, A, ars, aks, P, np, m0, m1, load); break;
    case 5: bf16_tile(5, C, ldc, C0, ldc0, A, ars, aks, P, np, m0, m1, load); break;
    case 4: bf16_tile(4, C, ldc, C0, ldc0, A, ars, aks, P, np, m0, m1, load); break;
    case 3: bf16_tile(3, C, ldc, C0, ldc0, A, ars, aks, P, np, m0, m1, load); break;
    case 2: bf16_tile(2, C, ldc, C0, ldc0, A, ars, aks, P, np, m0, m1, load); break;
    case 1: bf16_tile(1, C, ldc, C0, ldc0, A, ars, aks, P, np, m0, m1, load); break;
    default: break;
    }
}

#endif
