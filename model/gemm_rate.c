// The packed kernels' own rates (gemm.h, gemm_bf16.h): fnn bench's ceilings and the time model's
// calibration. Both precisions run the same products and are timed alike.
#include <stdlib.h>
#include <time.h>
#include "model/gemm.h"
#include "model/gemm_bf16.h"
#include "model/init.h"

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// The operands of C (M x N) = A (M x K) W (K x N), W packed for the chosen precision.
typedef struct rate_case {
    int M, K, N, bf16;
    gemm_w g;
    real *w, *a, *c;
    void* packed;
    void* a16; // A rounded to bf16 (bf16 only)
} rate_case;

static void one_product(rate_case* rc, long i)
{
#ifndef FNN_DOUBLE
    if (rc->bf16) {
        const bf16* A16 = rc->a16;
        gemm_bf16_apply(1, &rc->c, rc->N, &A16, rc->K, rc->M, &rc->g, rc->packed, NULL, i > 0, 0, rc->N);
        return;
    }
#endif
    gemm_w_apply(rc->c, rc->N, rc->a, rc->K, rc->M, &rc->g, NULL, i > 0);
}

static double rate(int M, int K, int N, long reps, int runs, int use_bf16, double* by_cpu)
{
    rate_case rc = {.M = M, .K = K, .N = N, .bf16 = use_bf16};
    size_t bytes = (gemm_w_size(K, N) + 16) * sizeof(real);
#ifndef FNN_DOUBLE
    if (use_bf16) bytes = (gemm_bf16_w_size(K, N) * sizeof(bf16) + 63) / 64 * 64;
    rc.a16 = use_bf16 ? aligned_alloc(64, ((size_t)M * K * sizeof(bf16) + 63) / 64 * 64) : NULL;
    if (use_bf16 && !rc.a16) dist_fail("out of memory");
#endif
    rc.w = malloc((size_t)K * N * sizeof(real));
    rc.a = malloc((size_t)M * K * sizeof(real));
    rc.c = malloc((size_t)M * N * sizeof(real));
    rc.packed = aligned_alloc(64, bytes);
    if (!rc.w || !rc.a || !rc.c || !rc.packed) dist_fail("out of memory");
    for (int i = 0; i < K * N; i++) rc.w[i] = (real)init_normal(2, i, 0);
    for (int i = 0; i < M * K; i++) rc.a[i] = (real)init_normal(3, i, 0);
    gemm_w_set(&rc.g, rc.w, N, K, N, 0);
#ifndef FNN_DOUBLE
    if (use_bf16) {
        gemm_bf16_pack(&rc.g, rc.packed, 0, N);
        gemm_bf16_round(rc.a16, K, rc.a, K, M, K);
    }
#endif
    if (!use_bf16) {
        rc.g.packed = rc.packed;
        gemm_w_pack(&rc.g, reps > 1 << 30 ? 1 << 30 : (int)reps, 0, 1);
    }
    const double flops = 2.0 * M * K * N * reps;
    double best = 0;
    *by_cpu = 0;
    for (int r = 0; r < runs; r++) {
        const double t0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < reps; i++) one_product(&rc, i);
        const double gf = flops / (seconds(CLOCK_MONOTONIC) - t0) / 1e9;
        const double gc = flops / (seconds(CLOCK_THREAD_CPUTIME_ID) - c0) / 1e9;
        if (gf > best) best = gf;
        if (gc > *by_cpu) *by_cpu = gc;
    }
    free(rc.w), free(rc.a), free(rc.c), free(rc.packed), free(rc.a16);
    return best;
}

double gemm_kernel_rate(int M, int K, int N, long reps, int runs, double* by_cpu)
{
    return rate(M, K, N, reps, runs, 0, by_cpu);
}

#ifndef FNN_DOUBLE
double gemm_bf16_kernel_rate(int M, int K, int N, long reps, int runs, double* by_cpu)
{
    return rate(M, K, N, reps, runs, 1, by_cpu);
}
#endif
