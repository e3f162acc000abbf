// The bf16 products (issue 19): the packed kernel of gemm.h with bfloat16 operands and float32
// accumulation, on VDPBF16PS (AVX512_BF16: 32 multiply-adds per instruction, twice the float32
// FMA rate on Zen 4 and 5). The masters stay float32; these calls round copies of them.
//
// Call them only where kernel_has_bf16() (kernel.h): they are compiled for AVX512_BF16 alone
// (the Makefile's BF16 flags) and stop with SIGILL on any other CPU.
//
// Rounding: every float32 becomes the nearest bf16 (8 significant bits, float32's exponent
// range), ties to the even one, as IEEE 754's conversion between binary formats rounds: a
// float32 denormal becomes the nearest bf16 denormal or zero, a value past the largest bf16
// becomes infinity, infinities stay, and a NaN stays a NaN (quiet, with its sign and the top of
// its payload). The kernels' products of two bf16 are exact in float32, and VDPBF16PS adds the
// two of a pair to the float32 sum one after the other, each addition rounded to nearest even,
// whatever MXCSR says; it also counts bf16 denormals as zero and flushes a denormal sum to zero
// (Intel SDM; the same on Zen 5): magnitudes below 2^-126 drop out of the products.
//
// Layouts (NR = 32 columns, k padded to the even kp = gemm_bf16_kpad(k) with zeros): VDPBF16PS
// multiplies pairs of bf16 in each 32-bit lane, so both operands hold their k dimension in
// pairs, element 2q in the low half of the lane and 2q + 1 in the high one.
//   operands  (gemm_bf16_round): row-major rows of kp bf16, each 32-bit word a pair (i, 2q..2q+1),
//             broadcast by the kernel;
//   weights   (gemm_bf16_pack): op(W) in panels of NR columns, panel j0 / NR at packed + j0 kp;
//             in a panel, pair q of column c is the 32-bit word q NR + c (both halves of a zmm
//             row hold 16 columns), the columns past n zero.
#ifndef MODEL_GEMM_BF16_H
#define MODEL_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>
#include "model/gemm.h"

typedef uint16_t bf16; // the bits of a bfloat16: the top half of a float32's

// k rounded up to even: the length of a row of operands and of a panel, in bf16.
static inline int gemm_bf16_kpad(int k) { return k + (k & 1); }

// rows x k float32 (row stride lds) into rows of gemm_bf16_kpad(k) bf16 (row stride ldd, even),
// rounded as above, the element past an odd k zero: the operand A of gemm_bf16_apply.
void gemm_bf16_round(bf16* dst, size_t ldd, const float* src, size_t lds, int rows, int k);

// bf16 elements of the packed copy of op(W) (k x n, described by g as gemm_w_set does).
size_t gemm_bf16_w_size(int k, int n);

// Rounds columns [c0, c1) (whole panels, c0 a multiple of 32) of op(W), read from the float32
// g->w, into their panels in packed (gemm_bf16_w_size(g->k, g->n) elements, 64-byte aligned):
// after every change of W (each optimiser step), as gemm_w_pack; g->packed is not used.
void gemm_bf16_pack(const gemm_w* g, bf16* packed, int c0, int c1);

// Columns [c0, c1) of every C[s] (M x n, row stride ldc) = A[s] op(W) from the panels, plus the
// bias (n) in every row when bias is not NULL, else plus C's old value when accumulate. A[s]:
// M rows of gemm_bf16_round's layout (row stride lda, even). Each element of C is summed over
// the pairs of k in order after its bias or old value, whatever M, c0 and c1 are.
void gemm_bf16_apply(int ns, float* const* C, int ldc, const bf16* const* A, int lda, int M,
                     const gemm_w* g, const bf16* packed, const float* bias, int accumulate,
                     int c0, int c1);

// The weight gradients: C (M x N, row stride ldc) += A^T B for float32 A (k x M, row stride
// lda) and B (k x N, row stride ldb), both rounded to bf16 as they are packed into work
// (gemm_bf16_atb_work(M, N, k) bf16, 64-byte aligned). Each element of C is summed over the pairs
// of k in order, whatever M and N are. Single-threaded.
size_t gemm_bf16_atb_work(int M, int N, int k);
void gemm_bf16_atb(float* C, int ldc, const float* A, int lda, const float* B, int ldb, int M,
                   int N, int k, bf16* work);

// gemm_kernel_rate (gemm.h) for the bf16 kernel: the same products, operands rounded to bf16
// once before the runs. Needs kernel_has_bf16().
double gemm_bf16_kernel_rate(int M, int K, int N, long reps, int runs, double* by_cpu);

#endif
