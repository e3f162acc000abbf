// Packed-weight GEMM for the per-step products (see gemm.h): the AVX-512 kernel of
// gemm_kernel.h in the float build, cblas otherwise. op(W) is packed whole, panel after panel,
// so one step streams it once; the k dimension is cut into KC blocks so that a block of a panel
// (KC x NR floats) stays in L1 while every row tile of A passes over it.
#include <string.h>
#include "model/gemm.h"

#if GEMM_KERNEL
#include "model/gemm_kernel.h"
enum { NR = GEMM_NR, KC = GEMM_KC };
#else
enum { NR = 32 };
#endif

// Packing costs a few passes over W and OpenBLAS packs W inside every call anyway, so the copy
// pays from a handful of products on (a window of a few steps); sampling runs windows of one.
enum { MIN_USES = 4 };

const char* gemm_kernel_name(void) { return GEMM_KERNEL ? "avx512" : "cblas"; }

size_t gemm_w_size(int k, int n)
{
    return GEMM_KERNEL ? (size_t)k * (size_t)((n + NR - 1) / NR * NR) : 0;
}

void gemm_w_set(gemm_w* g, const real* w, int ldw, int k, int n, int trans)
{
    *g = (gemm_w){.w = w, .ldw = ldw, .k = k, .n = n, .trans = trans};
}

// Columns [j0, j1) of C = A op(W) [+ bias | + C] by cblas.
static void apply_cblas(real* C, int ldc, const real* A, int lda, int M, const gemm_w* g,
                        const real* bias, int accumulate, int j0, int j1)
{
    if (j1 <= j0) return;
    if (bias)
        for (int i = 0; i < M; i++)
            memcpy(C + (size_t)i * ldc + j0, bias + j0, (size_t)(j1 - j0) * sizeof(real));
    const real* w = g->w + (g->trans ? (size_t)j0 * g->ldw : (size_t)j0);
    real_gemm(CblasRowMajor, CblasNoTrans, g->trans ? CblasTrans : CblasNoTrans, M, j1 - j0, g->k,
              1, A, lda, w, g->ldw, bias || accumulate ? 1 : 0, C + j0, ldc);
}

// The columns of panel share part of parts: [*j0, *j1).
static void share_columns(const gemm_w* g, int part, int parts, int* j0, int* j1)
{
    const long panels = (g->n + NR - 1) / NR;
    *j0 = (int)(panels * part / parts) * NR;
    *j1 = (int)(panels * (part + 1) / parts) * NR;
    if (*j1 > g->n) *j1 = g->n;
    if (*j0 > *j1) *j0 = *j1;
}

void gemm_w_apply(real* C, int ldc, const real* A, int lda, int M, const gemm_w* g,
                  const real* bias, int accumulate)
{
    gemm_w_apply_part(1, &C, ldc, &A, lda, M, g, bias, accumulate, 0, 1);
}

#if GEMM_KERNEL

void gemm_w_pack(gemm_w* g, int uses, int part, int parts)
{
    const int k = g->k, n = g->n;
    g->ready = uses >= MIN_USES;
    if (!g->ready) return;
    int c0, c1;
    share_columns(g, part, parts, &c0, &c1);
    if (!g->trans) {
        if (c1 > c0)
            gemm_pack_rows(g->packed + (size_t)c0 * k, g->w + c0, (size_t)g->ldw, k, c1 - c0);
        return;
    }
    for (int j0 = c0; j0 < c1; j0 += NR) {
        float* P = g->packed + (size_t)j0 * k;
        const int nc = n - j0 < NR ? n - j0 : NR;
        // Column c of the panel is row j0 + c of W: NR read streams, one write stream.
        const float* src[NR];
        for (int c = 0; c < NR; c++) src[c] = g->w + (size_t)(j0 + (c < nc ? c : 0)) * g->ldw;
        for (int kk = 0; kk < k; kk++)
            for (int c = 0; c < NR; c++) P[(size_t)kk * NR + c] = c < nc ? src[c][kk] : 0;
    }
}

// Columns [c0, c1) of every C[s] = A[s] op(W) from the panels.
static void kernel_part(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
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

#else

void gemm_w_pack(gemm_w* g, int uses, int part, int parts)
{
    (void)g, (void)uses, (void)part, (void)parts;
}

#endif

void gemm_w_apply_part(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                       const gemm_w* g, const real* bias, int accumulate, int part, int parts)
{
    int c0, c1;
    share_columns(g, part, parts, &c0, &c1);
#if GEMM_KERNEL
    if (g->ready) {
        kernel_part(ns, C, ldc, A, lda, M, g, bias, accumulate, c0, c1);
        return;
    }
#endif
    for (int s = 0; s < ns; s++) apply_cblas(C[s], ldc, A[s], lda, M, g, bias, accumulate, c0, c1);
}
