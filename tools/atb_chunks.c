// The cost of forming the weight gradient in chunks (model_grad_chunk, README "Memory-efficient
// BPTT"): C += A^T B on fnn's kernel, C M x N over 8192 rows of A and B, in one call or in calls of R
// rows each (the latest first, as backward makes them), best of 5 by CPU time, one thread. Build
// and run from the repository root after make:
//   mpicc -O3 -march=x86-64-v3 -std=c11 -D_GNU_SOURCE -I. $(pkg-config --cflags openblas) tools/atb_chunks.c \
//     build/libfnn.a $(pkg-config --libs ompi hdf5-openmpi scalapack-openmpi openblas inih) -lmvec -lm -o build/atb_chunks
//   build/atb_chunks 1024 1408 8192 512 256 128 32     (M N, then the rows per call to time)

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model/gemm.h"
#include "model/kernel.h"
static double cpu(void) { struct timespec ts; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
int main(int argc, char** argv)
{
    openblas_set_num_threads(1);
    const int M = atoi(argv[1]), N = atoi(argv[2]), k = 8192;
    float* A = aligned_alloc(64, (size_t)k * M * 4); float* B = aligned_alloc(64, (size_t)k * N * 4);
    float* C = aligned_alloc(64, (size_t)M * N * 4);
    float* w = aligned_alloc(64, (gemm_atb_work(M, N, k) + 16) * 4);
    for (size_t i = 0; i < (size_t)k * M; i++) A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * N; i++) B[i] = (float)(i % 5) * 0.1f;
    for (size_t i = 0; i < (size_t)M * N; i++) C[i] = 0;
    for (int a = 3; a < argc; a++) {
        const int R = atoi(argv[a]);
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = cpu();
            for (int r0 = (k - 1) / R * R; r0 >= 0; r0 -= R)
                gemm_atb(C, N, A + (size_t)r0 * M, M, B + (size_t)r0 * N, N, M, N, k - r0 < R ? k - r0 : R, w);
            double t = cpu() - t0; if (t < best) best = t;
        }
        printf("rows per call %5d: %.3f s CPU, %.1f GFLOP/s\n", R, best, 2.0 * M * N * k / best / 1e9);
    }
    return 0;
}
