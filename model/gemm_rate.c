// The packed kernel's own rate (gemm.h): fnn bench's ceiling and the time model's calibration.
#include <stdlib.h>
#include <time.h>
#include "model/gemm.h"
#include "model/init.h"

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

double gemm_kernel_rate(int M, int K, int N, long reps, int runs, double* by_cpu)
{
    real* w = malloc((size_t)K * N * sizeof(real));
    real* a = malloc((size_t)M * K * sizeof(real));
    real* c = malloc((size_t)M * N * sizeof(real));
    real* packed = aligned_alloc(64, (gemm_w_size(K, N) + 16) * sizeof(real));
    if (!w || !a || !c || !packed) dist_fail("out of memory");
    for (int i = 0; i < K * N; i++) w[i] = (real)init_normal(2, i, 0);
    for (int i = 0; i < M * K; i++) a[i] = (real)init_normal(3, i, 0);
    gemm_w g;
    gemm_w_set(&g, w, N, K, N, 0);
    g.packed = packed;
    gemm_w_pack(&g, reps > 1 << 30 ? 1 << 30 : (int)reps, 0, 1);
    const double flops = 2.0 * M * K * N * reps;
    double best = 0;
    *by_cpu = 0;
    for (int r = 0; r < runs; r++) {
        const double t0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < reps; i++) gemm_w_apply(c, N, a, K, M, &g, NULL, i > 0);
        const double gf = flops / (seconds(CLOCK_MONOTONIC) - t0) / 1e9;
        const double gc = flops / (seconds(CLOCK_THREAD_CPUTIME_ID) - c0) / 1e9;
        if (gf > best) best = gf;
        if (gc > *by_cpu) *by_cpu = gc;
    }
    free(w), free(a), free(c), free(packed);
    return best;
}
