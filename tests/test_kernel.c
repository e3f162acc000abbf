// The model's GEMMs (model/gemm.h) against a plain triple loop in double, for shapes that are not
// multiples of the kernel's tiles: odd rows, k and columns, both forms of op(W), accumulation;
// and the forward pass's tanh and softmax against libm in double. Every kernel variant the CPU
// runs (model/kernel.h) in turn; one it cannot run is reported as skipped.
// ranks: 1
#include <stdlib.h>
#include <string.h>
#include "model/gemm.h"
#include "model/kernel.h"
#include "tests/check.h"

static real* random_matrix(size_t n, unsigned* seed)
{
    real* a = malloc(n * sizeof(real));
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        a[i] = (real)((*seed >> 8) / 16777216.0 - 0.5);
    }
    return a;
}

static real* packed_storage(size_t n)
{
    return n ? aligned_alloc(64, (n + 15) / 16 * 16 * sizeof(real)) : NULL;
}

// Worst |C - ref| relative to the sum of |terms| of each element, over M x n.
static double worst_error(const real* C, const double* ref, const double* mag, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(C[i] - ref[i]) / (mag[i] > 0 ? mag[i] : 1);
        if (e > worst) worst = e;
    }
    return worst;
}

// C = A op(W) + (init: 0 nothing, 1 C's old value, 2 a bias row) for A (M x k) with row stride
// lda = k + 3, W stored with row stride k + 5 (trans: n x k) or n + 5 (k x n); W packed for
// `uses` products (few: the cblas path).
static void test_apply(int M, int k, int n, int trans, int init, int uses, unsigned seed)
{
    const int lda = k + 3, ldw = (trans ? k : n) + 5, ldc = n + 2;
    real* A = random_matrix((size_t)M * lda, &seed);
    real* W = random_matrix((size_t)(trans ? n : k) * ldw, &seed);
    real* C = random_matrix((size_t)M * ldc, &seed);
    real* bias = random_matrix((size_t)n, &seed);
    double* ref = malloc((size_t)M * n * sizeof(double));
    double* mag = malloc((size_t)M * n * sizeof(double));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < n; j++) {
            double s = init == 1 ? C[(size_t)i * ldc + j] : init == 2 ? bias[j] : 0, a = fabs(s);
            for (int kk = 0; kk < k; kk++) {
                double w = trans ? W[(size_t)j * ldw + kk] : W[(size_t)kk * ldw + j];
                s += (double)A[(size_t)i * lda + kk] * w;
                a += fabs((double)A[(size_t)i * lda + kk] * w);
            }
            ref[(size_t)i * n + j] = s;
            mag[(size_t)i * n + j] = a;
        }
    gemm_w g;
    gemm_w_set(&g, W, ldw, k, n, trans);
    g.packed = packed_storage(gemm_w_size(k, n));
    // Packed in shares, as the DP replicas of a node do, 1 to 3 of them.
    const int parts = 1 + (k + n + trans) % 3;
    for (int part = 0; part < parts; part++) gemm_w_pack(&g, uses, part, parts);
    gemm_w_apply(C, ldc, A, lda, M, &g, init == 2 ? bias : NULL, init == 1);
    real* Cc = malloc((size_t)M * n * sizeof(real));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < n; j++) Cc[(size_t)i * n + j] = C[(size_t)i * ldc + j];
    double e = worst_error(Cc, ref, mag, (size_t)M * n);
    CHECK(e < 1e-5, "gemm_w_apply M=%d k=%d n=%d trans=%d init=%d uses=%d: error %.2e", M, k, n,
          trans, init, uses, e);
    free(A), free(W), free(C), free(bias), free(Cc), free(ref), free(mag), free(g.packed);
}

// C += A^T B for A (k x M), B (k x N), with padded row strides.
static void test_atb(int M, int N, int k, unsigned seed)
{
    const int lda = M + 1, ldb = N + 7, ldc = N + 3;
    real* A = random_matrix((size_t)k * lda, &seed);
    real* B = random_matrix((size_t)k * ldb, &seed);
    real* C = random_matrix((size_t)M * ldc, &seed);
    double* ref = malloc((size_t)M * N * sizeof(double));
    double* mag = malloc((size_t)M * N * sizeof(double));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = C[(size_t)i * ldc + j], a = fabs(s);
            for (int kk = 0; kk < k; kk++) {
                double p = (double)A[(size_t)kk * lda + i] * B[(size_t)kk * ldb + j];
                s += p;
                a += fabs(p);
            }
            ref[(size_t)i * N + j] = s;
            mag[(size_t)i * N + j] = a;
        }
    real* work = packed_storage(gemm_atb_work(M, N, k));
    gemm_atb(C, ldc, A, lda, B, ldb, M, N, k, work);
    real* Cc = malloc((size_t)M * N * sizeof(real));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) Cc[(size_t)i * N + j] = C[(size_t)i * ldc + j];
    double e = worst_error(Cc, ref, mag, (size_t)M * N);
    CHECK(e < 1e-5, "gemm_atb M=%d N=%d k=%d: error %.2e", M, N, k, e);
    free(A), free(B), free(C), free(Cc), free(ref), free(mag), free(work);
}

// The row stride of C leaves room past column n: the kernel's masked stores must not write it.
static void test_no_overrun(void)
{
    enum { M = 5, K = 7, N = 19, LDC = 40 };
    unsigned seed = 99;
    real* A = random_matrix((size_t)M * K, &seed);
    real* W = random_matrix((size_t)N * K, &seed);
    real C[M * LDC];
    for (int i = 0; i < M * LDC; i++) C[i] = 42;
    gemm_w g;
    gemm_w_set(&g, W, K, K, N, 1);
    g.packed = packed_storage(gemm_w_size(K, N));
    gemm_w_pack(&g, 64, 0, 1);
    gemm_w_apply(C, LDC, A, K, M, &g, NULL, 0);
    int bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = N; j < LDC; j++) bad += C[i * LDC + j] != 42;
    CHECK(bad == 0, "gemm_w_apply wrote %d elements past column %d", bad, N);
    free(A), free(W), free(g.packed);
}

// Three row blocks computed share by share (as the DP replicas of a node do) against each block
// by itself, every init, 1 to 3 shares. With the packed kernel (g.ready) fnn fixes the order of
// the sums (gemm.h), so the shares must give the same bits. Without it (the generic variant, or
// too few uses to pack) each share is a cblas call over its own columns, and OpenBLAS promises no
// order of the sums: its blocking and edge kernels change with the call's width, so a column may
// round differently (it does on Zen 5). What holds for every order is the bound of a sum of k + 1
// terms (the k products and the bias or old value) in float: |fl(s) - s| <= gamma(k + 1) sum|terms|
// with gamma(m) = m u / (1 - m u), u = 2^-24 (Higham, Accuracy and Stability, 3.1; an FMA only
// removes roundings). Two orders thus differ by at most 2 gamma(k + 1) sum|terms|, which is
// the tolerance; a share missed or computed on the wrong columns is off by the size of the terms.
static void test_shared(int M, int k, int n, int trans, int init, int uses, unsigned seed)
{
    enum { NS = 3 };
    const int ld = k, ldw = trans ? k : n;
    real* W = random_matrix((size_t)(trans ? n : k) * ldw, &seed);
    real* bias = random_matrix((size_t)n, &seed);
    real *A[NS], *C[NS], *ref[NS];
    double* mag[NS];
    for (int s = 0; s < NS; s++) {
        A[s] = random_matrix((size_t)M * ld, &seed);
        ref[s] = random_matrix((size_t)M * n, &seed);
        C[s] = malloc((size_t)M * n * sizeof(real));
        mag[s] = malloc((size_t)M * n * sizeof(double));
        for (int i = 0; i < M; i++)
            for (int j = 0; j < n; j++) {
                double a = init == 1 ? fabs(ref[s][(size_t)i * n + j]) : init == 2 ? fabs(bias[j])
                                                                                 : 0;
                for (int kk = 0; kk < k; kk++)
                    a += fabs((double)A[s][(size_t)i * ld + kk] *
                              (trans ? W[(size_t)j * ldw + kk] : W[(size_t)kk * ldw + j]));
                mag[s][(size_t)i * n + j] = a;
            }
    }
    gemm_w g;
    gemm_w_set(&g, W, ldw, k, n, trans);
    g.packed = packed_storage(gemm_w_size(k, n));
    gemm_w_pack(&g, uses, 0, 1);
    const double mu = (k + 1) * (sizeof(real) == 4 ? 0x1.0p-24 : 0x1.0p-53);
    const double tol = g.ready ? 0 : 2 * mu / (1 - mu);
    for (int parts = 1; parts <= 3; parts++) {
        for (int s = 0; s < NS; s++) memcpy(C[s], ref[s], (size_t)M * n * sizeof(real));
        for (int part = 0; part < parts; part++)
            gemm_w_apply_part(NS, C, n, (const real* const*)A, ld, M, &g, init == 2 ? bias : NULL,
                              init == 1, part, parts);
        int bad = 0;
        for (int s = 0; s < NS; s++) {
            real* one = malloc((size_t)M * n * sizeof(real));
            memcpy(one, ref[s], (size_t)M * n * sizeof(real));
            gemm_w_apply(one, n, A[s], ld, M, &g, init == 2 ? bias : NULL, init == 1);
            for (size_t i = 0; i < (size_t)M * n; i++)
                bad += !(fabs((double)one[i] - C[s][i]) <= tol * mag[s][i]);
            free(one);
        }
        CHECK(bad == 0, "%s gemm_w_apply_part M=%d k=%d n=%d trans=%d init=%d uses=%d parts=%d "
              "(%s): %d elements differ", kernel->name, M, k, n, trans, init, uses, parts,
              g.ready ? "packed, bit for bit" : "cblas, to rounding", bad);
    }
    for (int s = 0; s < NS; s++) free(A[s]), free(C[s]), free(ref[s]), free(mag[s]);
    free(W), free(bias), free(g.packed);
}

// kernel->tanh and kernel->softmax on rows x O values (not multiples of the vector width, some
// large) against tanh and a softmax in double; the softmax's float inputs up to 30 in magnitude
// carry a relative rounding of 30 2^-24 = 2e-6 into exp.
static void test_vmath(int rows, int O, unsigned seed)
{
    const size_t n = (size_t)rows * O;
    real* y = random_matrix(n, &seed);
    real* h = malloc(n * sizeof(real));
    real* p = malloc(n * sizeof(real));
    for (size_t i = 0; i < n; i++) y[i] *= i % 7 == 3 ? 60 : 8, h[i] = y[i];
    kernel->tanh(h, n);
    kernel->softmax(p, y, rows, O);
    double worst_t = 0, worst_p = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(h[i] - tanh((double)y[i]));
        if (e > worst_t) worst_t = e;
    }
    for (int r = 0; r < rows; r++) {
        const real* yr = y + (size_t)r * O;
        double mx = -INFINITY, s = 0;
        for (int o = 0; o < O; o++) mx = yr[o] > mx ? yr[o] : mx;
        for (int o = 0; o < O; o++) s += exp(yr[o] - mx);
        for (int o = 0; o < O; o++) {
            double ref = exp(yr[o] - mx) / s;
            double e = fabs(p[(size_t)r * O + o] - ref) / (ref > 1e-30 ? ref : 1e-30);
            if (ref > 1e-30 && e > worst_p) worst_p = e;
        }
    }
    CHECK(worst_t < 1e-6, "%s tanh n=%zu: error %.2e", kernel->name, n, worst_t);
    CHECK(worst_p < 1e-5, "%s softmax %d x %d: relative error %.2e", kernel->name, rows, O,
          worst_p);
    free(y), free(h), free(p);
}

// kernel->normal on 4096 pairs against Box-Muller in double, the uniforms at both ends included
// (u1 = 2^-24 gives the largest radius, 5.8 sigma; u1 = 1 a zero pair): libmvec's logf, sinf and
// cosf are within 4 ulp, and the float angle 2 pi u2 carries a rounding of 2 pi 2^-24.
static void test_normal(unsigned seed)
{
    enum { N = 4096 };
    static float u1[N], u2[N], z0[N], z1[N];
    const float sigma = 0.75f;
    for (int i = 0; i < N; i++) {
        u1[i] = (float)(rand_r(&seed) % (1 << 24) + 1) * 0x1.0p-24f;
        u2[i] = (float)(rand_r(&seed) % (1 << 24)) * 0x1.0p-24f;
    }
    u1[0] = 0x1.0p-24f, u1[1] = 1, u2[2] = 0, u2[3] = 1 - 0x1.0p-24f;
    kernel->normal(z0, z1, u1, u2, sigma, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        const double r = sigma * sqrt(-2 * log((double)u1[i])), a = 2 * M_PI * u2[i];
        const double e0 = fabs(z0[i] - r * cos(a)), e1 = fabs(z1[i] - r * sin(a));
        worst = fmax(worst, fmax(e0, e1) / (1 + r));
    }
    CHECK(worst < 4e-6, "%s normal: error %.2e (per 1 + radius)", kernel->name, worst);
}

static void test_all(void)
{
    static const int rows[] = {1, 3, 7, 8, 9, 17, 32, 45};
    unsigned seed = 1;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (int trans = 0; trans < 2; trans++) {
            test_apply(rows[r], 37, 51, trans, 0, 64, seed++);
            test_apply(rows[r], 301, 33, trans, 1, 64, seed++);
            test_apply(rows[r], 5, 97, trans, 1, 64, seed++);
            test_apply(rows[r], 600, 16, trans, 0, 64, seed++);
            test_apply(rows[r], 300, 70, trans, 2, 64, seed++);
        }
    test_apply(4, 0, 9, 1, 0, 64, seed++);
    test_apply(4, 0, 9, 1, 2, 64, seed++);
    for (int init = 0; init < 3; init++) {
        test_apply(9, 301, 33, 1, init, 1, seed++);
        test_apply(9, 301, 33, 0, init, 1, seed++);
    }
    for (int init = 0; init < 3; init++)
        for (int trans = 0; trans < 2; trans++) {
            test_shared(16, 301, 97, trans, init, 64, seed++);
            test_shared(5, 37, 130, trans, init, 1, seed++);
        }
    test_atb(1, 1, 1, seed++);
    test_atb(13, 45, 77, seed++);
    test_atb(37, 29, 1201, seed++);
    test_atb(600, 67, 33, seed++);
    test_atb(9, 700, 515, seed++);
    test_atb(21, 40, 4500, seed++); // k over two KC blocks
    test_no_overrun();
    test_vmath(1, 1, seed++);
    test_vmath(3, 256, seed++);
    test_vmath(5, 37, seed++);
    test_vmath(2, 1000, seed++);
    test_normal(seed++);
}

int main(void)
{
    // gemm_atb hands its products to OpenBLAS when OpenBLAS has more than one thread.
    openblas_set_num_threads(1);
    for (int i = 0; kernel_names[i]; i++) {
        char err[256];
        if (kernel_use(kernel_names[i], err, sizeof err)) {
            printf("kernel %s skipped: %s\n", kernel_names[i], err);
            continue;
        }
        const int before = check_failures;
        test_all();
        printf("kernel %s: %d failures\n", kernel->name, check_failures - before);
    }
    printf("gemm kernels: %d failures\n", check_failures);
    return check_failures != 0;
}
