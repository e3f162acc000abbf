// Packed-weight GEMM for the per-step products and the weight gradients (see gemm.h): the
// packing and the kernel of the chosen variant (kernel.h) when it has one, cblas otherwise.
// The weight's columns are split into shares of whole NR-column panels, so that processes
// sharing the packed storage each pack and stream their own.
#include <string.h>
#include "model/gemm.h"
#include "model/kernel.h"

// The unit of the shares; every variant's panel width divides it.
enum { NR = 32 };

// Packing costs a few passes over W and OpenBLAS packs W inside every call anyway, so the copy
// pays from a handful of products on (a window of a few steps); sampling runs windows of one.
enum { MIN_USES = 4 };

const char* gemm_kernel_name(void) { return kernel->name; }

size_t gemm_w_size(int k, int n)
{
    return kernel->panel ? (size_t)k * (size_t)((n + NR - 1) / NR * NR) : 0;
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

void gemm_w_share(const gemm_w* g, int part, int parts, int* j0, int* j1)
{
    const long panels = (g->n + NR - 1) / NR;
    *j0 = (int)(panels * part / parts) * NR;
    *j1 = (int)(panels * (part + 1) / parts) * NR;
    if (*j1 > g->n) *j1 = g->n;
    if (*j0 > *j1) *j0 = *j1;
}

void gemm_w_pack(gemm_w* g, int uses, int part, int parts)
{
    g->ready = kernel->panel && uses >= MIN_USES;
    if (!g->ready) return;
    int c0, c1;
    gemm_w_share(g, part, parts, &c0, &c1);
    if (c1 > c0) kernel->pack(g, c0, c1);
}

void gemm_w_apply(real* C, int ldc, const real* A, int lda, int M, const gemm_w* g,
                  const real* bias, int accumulate)
{
    gemm_w_apply_part(1, &C, ldc, &A, lda, M, g, bias, accumulate, 0, 1);
}

void gemm_w_apply_part(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                       const gemm_w* g, const real* bias, int accumulate, int part, int parts)
{
    int c0, c1;
    gemm_w_share(g, part, parts, &c0, &c1);
    if (g->ready) {
        kernel->apply(ns, C, ldc, A, lda, M, g, bias, accumulate, c0, c1);
        return;
    }
    for (int s = 0; s < ns; s++) apply_cblas(C[s], ldc, A[s], lda, M, g, bias, accumulate, c0, c1);
}

size_t gemm_atb_work(int M, int N, int k) { return kernel->atb ? kernel->atb_work(M, N, k) : 0; }

void gemm_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M, int N,
              int k, real* work)
{
    if (kernel->atb) {
        kernel->atb(C, ldc, A, lda, B, ldb, M, N, k, work);
        return;
    }
    real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, k, 1, A, lda, B, ldb, 1, C, ldc);
}
