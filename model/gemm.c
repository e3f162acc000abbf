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

size_t gemm_w_size(int k, int n)
{
    return GEMM_KERNEL ? (size_t)k * (size_t)((n + NR - 1) / NR * NR) : 0;
}

void gemm_w_set(gemm_w* g, const real* w, int ldw, int k, int n, int trans)
{
    *g = (gemm_w){.w = w, .ldw = ldw, .k = k, .n = n, .trans = trans};
}

static void apply_cblas(real* C, int ldc, const real* A, int lda, int M, const gemm_w* g,
                        const real* bias, int accumulate)
{
    if (bias)
        for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, bias, (size_t)g->n * sizeof(real));
    real_gemm(CblasRowMajor, CblasNoTrans, g->trans ? CblasTrans : CblasNoTrans, M, g->n, g->k,
              1, A, lda, g->w, g->ldw, bias || accumulate ? 1 : 0, C, ldc);
}

#if GEMM_KERNEL

void gemm_w_pack(gemm_w* g, int uses, int part, int parts)
{
    const int k = g->k, n = g->n, panels = (n + NR - 1) / NR;
    g->ready = uses >= MIN_USES;
    if (!g->ready) return;
    const int p0 = (int)((long)panels * part / parts), p1 = (int)((long)panels * (part + 1) / parts);
    if (!g->trans) {
        const int j0 = p0 * NR, j1 = p1 * NR < n ? p1 * NR : n;
        if (j1 > j0) gemm_pack_rows(g->packed + (size_t)j0 * k, g->w + j0, (size_t)g->ldw, k, j1 - j0);
        return;
    }
    for (int j0 = p0 * NR; j0 < p1 * NR; j0 += NR) {
        float* P = g->packed + (size_t)j0 * k;
        const int nc = n - j0 < NR ? n - j0 : NR;
        // Column c of the panel is row j0 + c of W: NR read streams, one write stream.
        const float* src[NR];
        for (int c = 0; c < NR; c++) src[c] = g->w + (size_t)(j0 + (c < nc ? c : 0)) * g->ldw;
        for (int kk = 0; kk < k; kk++)
            for (int c = 0; c < NR; c++) P[(size_t)kk * NR + c] = c < nc ? src[c][kk] : 0;
    }
}

void gemm_w_apply(real* C, int ldc, const real* A, int lda, int M, const gemm_w* g,
                  const real* bias, int accumulate)
{
    if (!g->ready) {
        apply_cblas(C, ldc, A, lda, M, g, bias, accumulate);
        return;
    }
    const int k = g->k, n = g->n;
    for (int j0 = 0; j0 < n; j0 += NR) {
        const int nc = n - j0 < NR ? n - j0 : NR;
        const __mmask16 m0 = gemm_mask_lo(nc), m1 = gemm_mask_hi(nc);
        const float* P = g->packed + (size_t)j0 * k;
        // The first KC block starts from the bias, C or zero, the later ones from C.
        const float* C0 = bias ? bias + j0 : C + j0;
        size_t ldc0 = bias ? 0 : (size_t)ldc;
        int load = bias || accumulate, k0 = 0;
        do { // once even for k = 0, which still has to set C
            const int kc = k - k0 < KC ? k - k0 : KC;
            gemm_rows(C + j0, ldc, C0, ldc0, A + k0, (size_t)GEMM_MR * lda, (size_t)lda, 1, M,
                      P + (size_t)k0 * NR, kc, m0, m1, load);
            C0 = C + j0, ldc0 = (size_t)ldc, load = 1;
            k0 += KC;
        } while (k0 < k);
    }
}

#else

void gemm_w_pack(gemm_w* g, int uses, int part, int parts)
{
    (void)g, (void)uses, (void)part, (void)parts;
}

void gemm_w_apply(real* C, int ldc, const real* A, int lda, int M, const gemm_w* g,
                  const real* bias, int accumulate)
{
    apply_cblas(C, ldc, A, lda, M, g, bias, accumulate);
}

#endif
