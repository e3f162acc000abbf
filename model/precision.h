// precision = bf16 (docs/model.md, Precision): the per-step recurrent products on the bf16
// kernels (gemm_bf16.h), their panels rounded from the float32 master weights and their
// operands rounded as they are handed over, the sums in float32. The float64 build has no bf16
// kernels: model_init refuses bf16 there (kernel_bf16_missing) and nothing here runs.
#ifndef MODEL_PRECISION_H
#define MODEL_PRECISION_H

#include <stddef.h>
#include <stdint.h>
#include "model/gemm.h"

// The length of an operand row of a product over k: k rounded up to even, in bf16.
int precision_kpad(int k);
// Elements of real that hold the bf16 panels of op(W) (k x n), and rows operand rows over k.
size_t precision_panel_elems(int k, int n);
size_t precision_operand_elems(int rows, int k);
// Rounds columns [c0, c1) (whole panels) of op(W) from g->w into g->packed16.
void precision_pack(const gemm_w* g, int c0, int c1);
// rows x k of src (row stride lds) into rows of precision_kpad(k) bf16 at dst.
void precision_round(uint16_t* dst, const real* src, int lds, int rows, int k);
// Columns [c0, c1) of every C[s] = A[s] op(W) [+ bias | + C] from g->packed16; A[s]: M rows
// of precision_round's.
void precision_apply(int ns, real* const* C, int ldc, const uint16_t* const* A, int M,
                     const gemm_w* g, const real* bias, int accumulate, int c0, int c1);

#endif
