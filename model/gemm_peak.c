// The in-L1 ceiling of the packed kernels (gemm_bf16.h's gemm_peak): the same products as fnn
// bench's float32 ceiling, on either precision, so that the two are measured alike.
#ifndef FNN_DOUBLE
#include <stdlib.h>
#include <time.h>
#include "model/gemm_bf16.h"
#include "model/init.h"

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

double gemm_peak(int use_bf16, double* by_cpu)
{
    enum { M = 32, K = 128, N = 64, REPS = 20000 };
    float* w = malloc((size_t)K * N * sizeof(float));
    float* a = malloc((size_t)M * K * sizeof(float));
    float* c = malloc((size_t)M * N * sizeof(float));
    bf16* a16 = aligned_alloc(64, (size_t)M * K * sizeof(bf16));
    // Room for either packing, in whole cache lines.
    const size_t f32 = gemm_w_size(K, N) * sizeof(float);
    const size_t b16 = gemm_bf16_w_size(K, N) * sizeof(bf16);
    const size_t bytes = ((f32 > b16 ? f32 : b16) + 63) / 64 * 64;
    void* packed = aligned_alloc(64, bytes);
    if (!w || !a || !c || !a16 || !packed) abort();
    for (int i = 0; i < K * N; i++) w[i] = (float)init_normal(2, i, 0);
    for (int i = 0; i < M * K; i++) a[i] = (float)init_normal(3, i, 0);
    gemm_w g;
    gemm_w_set(&g, w, N, K, N, 0);
    if (use_bf16) {
        gemm_bf16_pack(&g, packed, 0, N);
        gemm_bf16_round(a16, K, a, K, M, K);
    } else {
        g.packed = packed;
        gemm_w_pack(&g, REPS, 0, 1);
    }
    const bf16* A16 = a16;
    double best = 0, flops = 2.0 * M * K * N * REPS;
    *by_cpu = 0;
    for (int r = 0; r < 5; r++) {
        const double t0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < REPS; i++) {
            if (use_bf16)
                gemm_bf16_apply(1, &c, N, &A16, K, M, &g, packed, NULL, i > 0, 0, N);
            else
                gemm_w_apply(c, N, a, K, M, &g, NULL, i > 0);
        }
        const double gf = flops / (seconds(CLOCK_MONOTONIC) - t0) / 1e9;
        const double gc = flops / (seconds(CLOCK_PROCESS_CPUTIME_ID) - c0) / 1e9;
        if (gf > best) best = gf;
        if (gc > *by_cpu) *by_cpu = gc;
    }
    free(w), free(a), free(c), free(a16), free(packed);
    return best;
}
#endif
