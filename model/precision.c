// The bf16 products of a precision = bf16 model (precision.h) on gemm_bf16.h.
#include "model/precision.h"
#include "dist/dist.h"
#include "model/gemm_bf16.h"

#ifndef FNN_DOUBLE
int precision_kpad(int k) { return gemm_bf16_kpad(k); }

size_t precision_panel_elems(int k, int n)
{
    return (gemm_bf16_w_size(k, n) * sizeof(bf16) + sizeof(real) - 1) / sizeof(real);
}

size_t precision_operand_elems(int rows, int k)
{
    return ((size_t)rows * gemm_bf16_kpad(k) * sizeof(bf16) + sizeof(real) - 1) / sizeof(real);
}

void precision_pack(const gemm_w* g, int c0, int c1)
{
    if (c1 > c0) gemm_bf16_pack(g, g->packed16, c0, c1);
}

void precision_round(uint16_t* dst, const real* src, int lds, int rows, int k)
{
    gemm_bf16_round(dst, (size_t)gemm_bf16_kpad(k), src, (size_t)lds, rows, k);
}

void precision_apply(int ns, real* const* C, int ldc, const uint16_t* const* A, int M,
                     const gemm_w* g, const real* bias, int accumulate, int c0, int c1)
{
    if (c1 > c0)
        gemm_bf16_apply(ns, C, ldc, A, gemm_bf16_kpad(g->k), M, g, g->packed16, bias, accumulate,
                        c0, c1);
}
#else
// model_init refuses precision = bf16 in this build, so none of these is reached.
int precision_kpad(int k) { return k; }
size_t precision_panel_elems(int k, int n) { (void)k, (void)n; return 0; }
size_t precision_operand_elems(int rows, int k) { (void)rows, (void)k; return 0; }
void precision_pack(const gemm_w* g, int c0, int c1)
{
    (void)g, (void)c0, (void)c1;
    dist_fail("internal error: a bf16 product in the float64 build");
}
void precision_round(uint16_t* dst, const real* src, int lds, int rows, int k)
{
    (void)dst, (void)src, (void)lds, (void)rows, (void)k;
    dist_fail("internal error: a bf16 product in the float64 build");
}
void precision_apply(int ns, real* const* C, int ldc, const uint16_t* const* A, int M,
                     const gemm_w* g, const real* bias, int accumulate, int c0, int c1)
{
    (void)ns, (void)C, (void)ldc, (void)A, (void)M, (void)g, (void)bias, (void)accumulate;
    (void)c0, (void)c1;
    dist_fail("internal error: a bf16 product in the float64 build");
}
#endif
