// The avx512 and avx2 variants' products (kernel.h documents each slot): internal to
// model/kernel_*.c and the files that implement them, which the Makefile compiles with each
// variant's flags.
//
// The blocking around the micro-kernels is written once, below, as inline templates: each
// variant's file calls them with its own constants (NR, MR, KC, ...) and its own micro-kernel
// and packing functions, so that the constants unroll its loops and the calls resolve to its
// functions at compile time, as if the loops were written out in each file.
#ifndef MODEL_GEMM_VARIANTS_H
#define MODEL_GEMM_VARIANTS_H

#include "model/gemm.h"

void gemm_avx512_pack(gemm_w* g, int c0, int c1);
void gemm_avx512_apply(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                       const gemm_w* g, const real* bias, int accumulate, int c0, int c1);
size_t gemm_avx512_atb_work(int M, int N, int k);
void gemm_avx512_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M,
                     int N, int k, real* work);

void gemm_avx2_pack(gemm_w* g, int c0, int c1);
void gemm_avx2_apply(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                     const gemm_w* g, const real* bias, int accumulate, int c0, int c1);
size_t gemm_avx2_atb_work(int M, int N, int k);
void gemm_avx2_atb(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M,
                   int N, int k, real* work);

#ifndef FNN_DOUBLE
// A variant's micro-kernel over one KC block of one panel of nr columns, nc (<= nr) of them
// valid: C[0:M, 0:nc] = [C0 +] A[0:M, 0:kc] P[0:kc, 0:nr], row i of C0 at C0 + i ldc0, A's
// element (i, kk) at A[i ars + kk aks], its row tile t (of mr rows) at A + t at; each sum runs
// over kk in order from C0 (from zero without load).
typedef void gemm_rows_fn(float* C, int ldc, const float* C0, size_t ldc0, const float* A,
                          size_t at, size_t ars, size_t aks, int M, const float* P, int kc,
                          int nc, int load);
// Rows [0, kc) x columns [0, n) of the row-major B (row stride ldb) as panels of nr columns at
// P, panel p at P + p kc nr, the last one zero-padded.
typedef void gemm_pack_rows_fn(float* P, const float* B, size_t ldb, int kc, int n);
// Columns [0, mc) of rows [0, kc) of A (row stride lda) as tiles of mr: tile t holds
// Ap[t][kk][i] = A[kk][t mr + i], zero-padded past mc.
typedef void gemm_pack_at_fn(float* Ap, const float* A, size_t lda, int kc, int mc);

// Panels of op(W) for columns [c0, c1): W's rows as they are, or with trans op(W) = W^T, nr
// columns a panel, zero past n: column c of a panel is row j0 + c of W, so nr read streams feed
// one write stream.
static inline __attribute__((always_inline)) void
gemm_pack_template(gemm_w* g, int c0, int c1, const int nr, gemm_pack_rows_fn* pack_rows)
{
    const int k = g->k, n = g->n;
    if (!g->trans) {
        pack_rows(g->packed + (size_t)c0 * k, g->w + c0, (size_t)g->ldw, k, c1 - c0);
        return;
    }
    for (int j0 = c0; j0 < c1; j0 += nr) {
        float* P = g->packed + (size_t)j0 * k;
        const int nc = n - j0 < nr ? n - j0 : nr;
        const float* src[32];
        for (int c = 0; c < nr; c++) src[c] = g->w + (size_t)(j0 + (c < nc ? c : 0)) * g->ldw;
        for (int kk = 0; kk < k; kk++)
            for (int c = 0; c < nr; c++) P[(size_t)kk * nr + c] = c < nc ? src[c][kk] : 0;
    }
}

// The per-step products: op(W) packed whole, panel after panel, so one step streams it once;
// the k dimension is cut into KC blocks so that a block of a panel (kc_max x nr floats) stays
// in L1 while every row tile of each A[s] passes over it.
static inline __attribute__((always_inline)) void
gemm_apply_template(int ns, real* const* C, int ldc, const real* const* A, int lda, int M,
                    const gemm_w* g, const real* bias, int accumulate, int c0, int c1,
                    const int nr, const int mr, const int kc_max, gemm_rows_fn* rows)
{
    const int k = g->k, n = g->n;
    for (int j0 = c0; j0 < c1; j0 += nr) {
        const int nc = n - j0 < nr ? n - j0 : nr;
        const float* P = g->packed + (size_t)j0 * k;
        int k0 = 0;
        do { // once even for k = 0, which still has to set C
            const int kc = k - k0 < kc_max ? k - k0 : kc_max;
            // The first KC block starts from the bias, C or zero, the later ones from C.
            const int first = k0 == 0, load = !first || bias || accumulate;
            for (int s = 0; s < ns; s++) {
                float* Cs = C[s] + j0;
                const float* C0 = first && bias ? bias + j0 : Cs;
                const size_t ldc0 = first && bias ? 0 : (size_t)ldc;
                rows(Cs, ldc, C0, ldc0, A[s] + k0, (size_t)mr * lda, (size_t)lda, 1, M,
                     P + (size_t)k0 * nr, kc, nc, load);
            }
            k0 += kc_max;
        } while (k0 < k);
    }
}

// The weight gradients C += A^T B, blocked as GotoBLAS does: per KC block of the k rows, B is
// packed into panels (KC x N) and, per MC columns of A, A^T into tiles of MR rows (MC x KC);
// each KC x NR block of a panel (in L2) then serves all MC / MR tiles. KC is far larger than
// the per-step products' because C, a whole weight matrix here, is read and written once per
// KC block: for C 2048 x 4352 one thread of the avx512 variant measured 213, 226 and 241
// GFLOP/s at KC = 512, 1024, 2048 (MC = 512), at the price of a KC x N scratch (36 MB for that
// C). The scratch: the panels of B, then the tiles of A (MC rounded up to whole tiles).
static inline size_t gemm_atb_work_template(int N, int k, const int nr, const int mr,
                                            const int kc_max, const int mc_max)
{
    const size_t kc = k < kc_max ? (size_t)k : (size_t)kc_max;
    return kc * ((N + nr - 1) / nr * nr) + (size_t)((mc_max + mr - 1) / mr * mr) * kc;
}

static inline __attribute__((always_inline)) void
gemm_atb_template(real* C, int ldc, const real* A, int lda, const real* B, int ldb, int M, int N,
                  int k, real* work, const int nr, const int mr, const int kc_max,
                  const int mc_max, gemm_pack_rows_fn* pack_rows, gemm_pack_at_fn* pack_at,
                  gemm_rows_fn* rows)
{
    // The kernel is single-threaded; with more threads OpenBLAS wins these large products.
    if (openblas_get_num_threads() > 1) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, k, 1, A, lda, B, ldb, 1, C,
                    ldc);
        return;
    }
    float* Bp = work;
    // As gemm_atb_work_template laid the scratch out for at least k rows.
    float* Ap = work + (size_t)(k < kc_max ? k : kc_max) * ((N + nr - 1) / nr * nr);
    for (int k0 = 0; k0 < k; k0 += kc_max) {
        const int kc = k - k0 < kc_max ? k - k0 : kc_max;
        pack_rows(Bp, B + (size_t)k0 * ldb, (size_t)ldb, kc, N);
        for (int i0 = 0; i0 < M; i0 += mc_max) {
            const int mc = M - i0 < mc_max ? M - i0 : mc_max;
            pack_at(Ap, A + (size_t)k0 * lda + i0, (size_t)lda, kc, mc);
            for (int j0 = 0; j0 < N; j0 += nr) {
                const int nc = N - j0 < nr ? N - j0 : nr;
                float* Cij = C + (size_t)i0 * ldc + j0;
                rows(Cij, ldc, Cij, (size_t)ldc, Ap, (size_t)kc * mr, 1, mr, mc,
                     Bp + (size_t)j0 * kc, kc, nc, 1);
            }
        }
    }
}
#endif

#endif
