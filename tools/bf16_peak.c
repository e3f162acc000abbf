// The bf16 kernels (model/gemm_bf16.h) against the float32 ones on one thread: the in-L1 ceiling
// of fnn bench (gemm_kernel_rate), a per-step product whose packed weight streams from beyond L2 (M = 32
// rows, k = n = 2048: 16 MB of float32 panels, 8 MB of bf16), a weight-gradient GEMM (C 1024 x
// 1024 += A^T B over k = 2048 rows) and the packing of a 2048 x 2048 weight (either form of
// op(W)), best of 5 by CPU time (the ceiling also by wall time). Build and run from the
// repository root after make (one command):
//   mpicc -O3 -march=x86-64-v3 -std=c11 -D_GNU_SOURCE -I. $(pkg-config --cflags openblas) tools/bf16_peak.c
//     build/libfnn.a $(pkg-config --libs ompi hdf5-openmpi scalapack-openmpi openblas inih) -lmvec -lm -o build/bf16_peak
//   build/bf16_peak
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model/gemm_bf16.h"
#include "model/kernel.h"

// This process's CPU time: on a loaded machine the wall time counts the waits for a core.
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float* filled(size_t n, float scale)
{
    float* a = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++)
        a[i] = scale * (float)((i * 2654435761u) % 1000) / 1000 - scale / 2;
    return a;
}

// GFLOP/s of reps products M x k by k x n, best of 5, for the float32 kernel and the bf16 one.
static void streamed(int M, int k, int n, int reps, double* f32, double* b16)
{
    float *w = filled((size_t)k * n, 1), *a = filled((size_t)M * k, 1);
    float* c = filled((size_t)M * n, 0);
    float* p32 = aligned_alloc(64, (gemm_w_size(k, n) * sizeof(float) + 63) / 64 * 64);
    bf16* p16 = aligned_alloc(64, (gemm_bf16_w_size(k, n) * sizeof(bf16) + 63) / 64 * 64);
    bf16* a16 = aligned_alloc(64, ((size_t)M * k * sizeof(bf16) + 63) / 64 * 64);
    gemm_w g;
    gemm_w_set(&g, w, n, k, n, 0);
    g.packed = p32;
    gemm_w_pack(&g, reps, 0, 1);
    gemm_bf16_pack(&g, p16, 0, n);
    gemm_bf16_round(a16, (size_t)k, a, (size_t)k, M, k);
    const bf16* A16 = a16;
    const double flops = 2.0 * M * k * n * reps;
    *f32 = *b16 = 0;
    for (int r = 0; r < 5; r++) {
        double t = now();
        for (int i = 0; i < reps; i++) gemm_w_apply(c, n, a, k, M, &g, NULL, 0);
        t = flops / (now() - t) / 1e9;
        if (t > *f32) *f32 = t;
        t = now();
        for (int i = 0; i < reps; i++)
            gemm_bf16_apply(1, &c, n, &A16, k, M, &g, p16, NULL, 0, 0, n);
        t = flops / (now() - t) / 1e9;
        if (t > *b16) *b16 = t;
    }
    free(w), free(a), free(c), free(p32), free(p16), free(a16);
}

// Milliseconds to pack op(W) of k x n (trans: from an n x k W), best of 5, float32 and bf16.
static void pack(int k, int n, int trans, double* f32, double* b16)
{
    float* w = filled((size_t)k * n, 1);
    float* p32 = aligned_alloc(64, (gemm_w_size(k, n) * sizeof(float) + 63) / 64 * 64);
    bf16* p16 = aligned_alloc(64, (gemm_bf16_w_size(k, n) * sizeof(bf16) + 63) / 64 * 64);
    gemm_w g;
    gemm_w_set(&g, w, trans ? k : n, k, n, trans);
    g.packed = p32;
    *f32 = *b16 = 1e9;
    for (int r = 0; r < 5; r++) {
        double t = now();
        gemm_w_pack(&g, 100, 0, 1);
        t = 1e3 * (now() - t);
        if (t < *f32) *f32 = t;
        t = now();
        gemm_bf16_pack(&g, p16, 0, n);
        t = 1e3 * (now() - t);
        if (t < *b16) *b16 = t;
    }
    free(w), free(p32), free(p16);
}

static void atb(int M, int N, int k, double* f32, double* b16)
{
    float *A = filled((size_t)k * M, 1), *B = filled((size_t)k * N, 1);
    float* C = filled((size_t)M * N, 0);
    float* w32 = aligned_alloc(64, (gemm_atb_work(M, N, k) * sizeof(float) + 63) / 64 * 64);
    bf16* w16 = aligned_alloc(64, (gemm_bf16_atb_work(M, N, k) * sizeof(bf16) + 63) / 64 * 64);
    const double flops = 2.0 * M * N * k;
    *f32 = *b16 = 0;
    for (int r = 0; r < 5; r++) {
        double t = now();
        gemm_atb(C, N, A, M, B, N, M, N, k, w32);
        t = flops / (now() - t) / 1e9;
        if (t > *f32) *f32 = t;
        t = now();
        gemm_bf16_atb(C, N, A, M, B, N, M, N, k, w16);
        t = flops / (now() - t) / 1e9;
        if (t > *b16) *b16 = t;
    }
    free(A), free(B), free(C), free(w32), free(w16);
}

int main(void)
{
    openblas_set_num_threads(1);
    if (kernel_bf16_missing()) {
        printf("the bf16 kernels cannot run: this CPU lacks %s\n", kernel_bf16_missing());
        return 1;
    }
    double cpu32, cpu16;
    const double l1_32 = gemm_kernel_rate(32, 128, 64, 20000, 5, &cpu32),
                 l1_16 = gemm_bf16_kernel_rate(32, 128, 64, 20000, 5, &cpu16);
    double s32, s16, a32, a16;
    streamed(32, 2048, 2048, 20, &s32, &s16);
    atb(1024, 1024, 2048, &a32, &a16);
    printf("GFLOP/s, one thread, %s kernel     float32    bf16   ratio\n", gemm_kernel_name());
    printf("in L1 (32x128 by 128x64)            %7.1f %7.1f   %.2f  (by wall time %.1f, %.1f)\n",
           cpu32, cpu16, cpu16 / cpu32, l1_32, l1_16);
    printf("streamed (32x2048 by 2048x2048)     %7.1f %7.1f   %.2f\n", s32, s16, s16 / s32);
    printf("weight gradient (1024^2, k 2048)    %7.1f %7.1f   %.2f\n", a32, a16, a16 / a32);
    for (int trans = 0; trans < 2; trans++) {
        double p32, p16;
        pack(2048, 2048, trans, &p32, &p16);
        printf("ms to pack op(W) 2048^2, trans %d    %7.2f %7.2f\n", trans, p32, p16);
    }
    return 0;
}
