// The bf16 kernels (model/gemm_bf16.h): the rounding against a reference that picks the nearer
// of the two neighbouring bf16 in double (ties, denormals, overflow, infinities, NaN, and a
// million random bit patterns), and both products against double-precision sums over shapes
// that cut the kernels' blocks anywhere (M, N, k not multiples of MR = 8, NR = 32, the pairs
// of k, the blocks of k and the MC rows of the weight gradients). Skipped, with a line saying
// so, on a CPU without AVX512_BF16.
//
// Two tolerances, for Sum|terms| the sum of the magnitudes of an element's terms (its k
// products and its bias or old value):
// - against the same bf16-rounded operands: a product of two bf16 (8 significant bits each) has
//   at most 16 and is exact in float32, so the only error is the float32 accumulation of k + 1
//   terms, |fl(s) - s| <= gamma(k) Sum|terms|, gamma(k) = k u / (1 - k u), u = 2^-24 (Higham,
//   Accuracy and Stability, 4.2: one rounding per addition, whatever the order; VDPBF16PS adds
//   each pair's two products one after the other, or with fewer roundings);
// - against the float32 operands: rounding each to bf16 changes it by a factor within 1 +- u_b,
//   u_b = 2^-8 (half an ulp at 8 significant bits), so each product by a factor within
//   (1 +- u_b)^2, the exact sums differ by at most (2 u_b + u_b^2) Sum|terms| and the tolerance
//   is that plus gamma(k) (1 + u_b)^2 Sum|terms| for the accumulation.
// A kernel that drops or repeats a pair of k is off by a whole term, far outside the first (the
// second, 2^-7 Sum|terms| wider, may hold it at large k: the first is the sharp check).
// ranks: 1
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "model/gemm_bf16.h"
#include "model/kernel.h"
#include "tests/check.h"

static const double U = 0x1.0p-24, UB = 0x1.0p-8;

static double gamma_k(int k) { return k * U / (1 - k * U); }

static float from_bits(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

// Round to nearest even by distances: the candidates are x with its low 16 bits cleared
// (toward zero) and the next bf16 away from zero, the one past the largest finite bf16 counting
// as 2^128 (IEEE 754's threshold of overflow); the nearer wins, a tie goes to the even one.
static bf16 ref_round(float f)
{
    const uint32_t x = to_bits(f);
    if (isnan(f)) return (bf16)(x >> 16 | 0x40);
    if (isinf(f)) return (bf16)(x >> 16);
    const uint32_t lo = x & 0xffff0000u, hi = lo + 0x10000u;
    const double vlo = fabs((double)from_bits(lo));
    const double vhi = (hi & 0x7fffffffu) == 0x7f800000u ? 0x1.0p128 : fabs((double)from_bits(hi));
    const double dlo = fabs(f) - vlo, dhi = vhi - fabs(f);
    if (dlo < dhi || (dlo == dhi && !(lo >> 16 & 1))) return (bf16)(lo >> 16);
    return (bf16)(hi >> 16);
}

static double bf16_value(bf16 b) { return from_bits((uint32_t)b << 16); }

static double rounded(float f) { return bf16_value(ref_round(f)); }

// gemm_bf16_round on rows of 37 (the vector body and a tail, an odd k with its zero pad): the
// special values of every kind, then random bit patterns.
static void test_round(void)
{
    static const uint32_t special[] = {
        0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0xbf808000, 0xbf818000, // ties, either side
        0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x00008000, 0x00018000, // denormals
        0x00017fff, 0x007fffff, 0x007f8000, 0x807f8000, 0x00800000, 0x00808000,
        0x7f7f7fff, 0x7f7f8000, 0x7f7fffff, 0xff7f8000, 0x7f7e8000,             // near overflow
        0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x7fbfffff, // inf, NaN
        0xff800001, 0x7fffffff, 0x3fffffff, 0x4049f0d0};
    enum { NSPECIAL = sizeof special / sizeof special[0], K = 37, LD = 38 };
    enum { ROWS = (1 << 20) / K };
    float* src = malloc((size_t)ROWS * K * sizeof(float));
    bf16* dst = malloc((size_t)ROWS * LD * sizeof(bf16));
    unsigned seed = 12345;
    for (size_t i = 0; i < (size_t)ROWS * K; i++) {
        seed = seed * 1664525u + 1013904223u;
        // Every special value at every position of a row in the first rows, random after.
        src[i] = from_bits(i < (size_t)NSPECIAL * K ? special[(i / K + i) % NSPECIAL]
                                                   : seed ^ (seed << 13));
    }
    for (size_t i = 0; i < (size_t)ROWS * LD; i++) dst[i] = 0xdead;
    gemm_bf16_round(dst, LD, src, K, ROWS, K);
    int bad = 0, pads = 0;
    for (int r = 0; r < ROWS; r++) {
        for (int c = 0; c < K; c++) {
            const float f = src[(size_t)r * K + c];
            const bf16 want = ref_round(f), got = dst[(size_t)r * LD + c];
            if (got != want && bad++ < 5)
                fprintf(stderr, "round(0x%08x) = 0x%04x, expected 0x%04x\n", to_bits(f), got, want);
        }
        pads += dst[(size_t)r * LD + K] != 0;
    }
    CHECK(bad == 0, "gemm_bf16_round: %d of %d values not rounded to nearest even", bad, ROWS * K);
    CHECK(pads == 0, "gemm_bf16_round: %d rows without the zero past an odd k", pads);
    free(src), free(dst);
}

static float* random_matrix(size_t n, unsigned* seed)
{
    float* a = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        a[i] = (float)((*seed >> 8) / 16777216.0 - 0.5);
    }
    return a;
}

static void* aligned(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

// The references of an M x n result whose element (i, j) sums init[i ldi + j] (init NULL: 0;
// ldi 0: a bias row) and the k products a[i ars + kk aks] w[kk wks + j wjs]: with the operands
// rounded to bf16 (r16, m16 = Sum|terms|) and as they are (r32, m32).
typedef struct reference {
    double *r16, *m16, *r32, *m32;
} reference;

static reference reference_of(const float* init, size_t ldi, const float* a, size_t ars,
                              size_t aks, const float* w, size_t wks, size_t wjs, int M, int n,
                              int k)
{
    const size_t bytes = (size_t)M * n * sizeof(double) + 1;
    reference r = {malloc(bytes), malloc(bytes), malloc(bytes), malloc(bytes)};
    for (int i = 0; i < M; i++)
        for (int j = 0; j < n; j++) {
            const double c = init ? init[i * ldi + j] : 0;
            double r16 = c, m16 = fabs(c), r32 = c, m32 = fabs(c);
            for (int kk = 0; kk < k; kk++) {
                const float x = a[i * ars + kk * aks], y = w[kk * wks + j * wjs];
                r16 += rounded(x) * rounded(y), m16 += fabs(rounded(x) * rounded(y));
                r32 += (double)x * y, m32 += fabs((double)x * y);
            }
            const size_t e = (size_t)i * n + j;
            r.r16[e] = r16, r.m16[e] = m16, r.r32[e] = r32, r.m32[e] = m32;
        }
    return r;
}

static void reference_free(reference* r) { free(r->r16), free(r->m16), free(r->r32), free(r->m32); }

// The largest error against the float32 operands seen, in units of gamma(k) Sum|terms|: above 1
// shows that the operands were rounded to bf16 (a float32 kernel stays below).
static double bf16_seen;

// The elements of C (M x n, row stride ldc) outside either tolerance, into *tight and *loose.
static void judge(const float* C, int ldc, int M, int n, int k, const reference* r, int* tight,
                  int* loose)
{
    const double g = gamma_k(k), tol = 2 * UB + UB * UB + g * (1 + UB) * (1 + UB);
    *tight = *loose = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < n; j++) {
            const size_t e = (size_t)i * n + j;
            const double c = C[(size_t)i * ldc + j];
            *tight += !(fabs(c - r->r16[e]) <= g * r->m16[e]);
            *loose += !(fabs(c - r->r32[e]) <= tol * r->m32[e]);
            if (k > 0 && fabs(c - r->r32[e]) > bf16_seen * g * r->m32[e])
                bf16_seen = fabs(c - r->r32[e]) / (g * r->m32[e]);
        }
}

// C[s] = A[s] op(W) + (init: 0 nothing, 1 C's old value, 2 a bias row) for ns = 2 products,
// with padded strides, W packed and the products formed in 1 to 3 shares of whole panels (as
// the DP replicas of a node do).
static void test_apply(int M, int k, int n, int trans, int init, unsigned seed)
{
    enum { NS = 2 };
    const int lda = k + 3, ldw = (trans ? k : n) + 5, ldc = n + 2, lda16 = gemm_bf16_kpad(k) + 4;
    float* W = random_matrix((size_t)(trans ? n : k) * ldw, &seed);
    float* bias = random_matrix((size_t)n, &seed);
    gemm_w g;
    gemm_w_set(&g, W, ldw, k, n, trans);
    bf16* packed = aligned(gemm_bf16_w_size(k, n) * sizeof(bf16));
    const int parts = 1 + (k + n + trans) % 3, panels = (n + 31) / 32;
    for (int part = 0; part < parts; part++) {
        const int c0 = panels * part / parts * 32, c1 = panels * (part + 1) / parts * 32;
        if (c0 < n) gemm_bf16_pack(&g, packed, c0, c1 < n ? c1 : n);
    }
    float *A[NS], *C[NS];
    bf16* A16[NS];
    reference r[NS];
    for (int s = 0; s < NS; s++) {
        A[s] = random_matrix((size_t)M * lda, &seed);
        C[s] = random_matrix((size_t)M * ldc, &seed);
        A16[s] = aligned((size_t)M * lda16 * sizeof(bf16));
        gemm_bf16_round(A16[s], lda16, A[s], lda, M, k);
        r[s] = reference_of(init == 1 ? C[s] : init == 2 ? bias : NULL, init == 1 ? ldc : 0, A[s],
                            lda, 1, W, trans ? 1 : ldw, trans ? ldw : 1, M, n, k);
    }
    // C as it was: the row stride's two columns past n must stay so (masked stores), and one
    // product over all columns at once must give the shares' bits (the order of the sums is
    // fixed).
    float *old[NS], *whole = malloc((size_t)M * ldc * sizeof(float));
    for (int s = 0; s < NS; s++) {
        old[s] = malloc((size_t)M * ldc * sizeof(float));
        memcpy(old[s], C[s], (size_t)M * ldc * sizeof(float));
    }
    for (int part = 0; part < parts; part++) {
        const int c0 = panels * part / parts * 32, c1 = panels * (part + 1) / parts * 32;
        if (c0 < n)
            gemm_bf16_apply(NS, C, ldc, (const bf16* const*)A16, lda16, M, &g, packed,
                            init == 2 ? bias : NULL, init == 1, c0, c1 < n ? c1 : n);
    }
    for (int s = 0; s < NS; s++) {
        int tight, loose;
        judge(C[s], ldc, M, n, k, &r[s], &tight, &loose);
        CHECK(tight == 0 && loose == 0, "gemm_bf16_apply M=%d k=%d n=%d trans=%d init=%d "
              "parts=%d product %d: %d elements off the bf16-operand sum, %d off the float32 one",
              M, k, n, trans, init, parts, s, tight, loose);
        memcpy(whole, old[s], (size_t)M * ldc * sizeof(float));
        const bf16* a16 = A16[s];
        gemm_bf16_apply(1, &whole, ldc, &a16, lda16, M, &g, packed, init == 2 ? bias : NULL,
                        init == 1, 0, n);
        int over = 0, differ = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < ldc; j++) {
                const size_t e = (size_t)i * ldc + j;
                if (j >= n) over += C[s][e] != old[s][e];
                else differ += memcmp(&C[s][e], &whole[e], sizeof(float)) != 0;
            }
        CHECK(over == 0, "gemm_bf16_apply M=%d k=%d n=%d: %d elements past column n written", M,
              k, n, over);
        CHECK(differ == 0, "gemm_bf16_apply M=%d k=%d n=%d in %d shares of 2 products: %d "
              "elements not the bits of one product over all columns", M, k, n, parts, differ);
        free(old[s]), free(A[s]), free(C[s]), free(A16[s]), reference_free(&r[s]);
    }
    free(W), free(bias), free(packed), free(whole);
}

// C += A^T B for A (k x M), B (k x N), with padded row strides.
static void test_atb(int M, int N, int k, unsigned seed)
{
    const int lda = M + 1, ldb = N + 7, ldc = N + 3;
    float* A = random_matrix((size_t)k * lda, &seed);
    float* B = random_matrix((size_t)k * ldb, &seed);
    float* C = random_matrix((size_t)M * ldc, &seed);
    reference r = reference_of(C, ldc, A, 1, lda, B, ldb, 1, M, N, k);
    bf16* work = aligned(gemm_bf16_atb_work(M, N, k) * sizeof(bf16));
    gemm_bf16_atb(C, ldc, A, lda, B, ldb, M, N, k, work);
    int tight, loose;
    judge(C, ldc, M, N, k, &r, &tight, &loose);
    CHECK(tight == 0 && loose == 0, "gemm_bf16_atb M=%d N=%d k=%d: %d elements off the "
          "bf16-operand sum, %d off the float32 one", M, N, k, tight, loose);
    free(A), free(B), free(C), free(work), reference_free(&r);
}

int main(void)
{
    // The refusal's line names the feature on every CPU, this one included: FNN_CPU_HIDE is the
    // tests' stand-in for one without it (set from outside, it makes this test skip).
    char* outer = getenv("FNN_CPU_HIDE") ? strdup(getenv("FNN_CPU_HIDE")) : NULL;
    setenv("FNN_CPU_HIDE", "avx512bf16", 1);
    const char* hidden = kernel_bf16_missing();
    CHECK(hidden && strstr(hidden, "avx512bf16"),
          "kernel_bf16_missing() with avx512bf16 hidden: %s", hidden ? hidden : "NULL");
    if (outer) setenv("FNN_CPU_HIDE", outer, 1), free(outer);
    else unsetenv("FNN_CPU_HIDE");
    const char* missing = kernel_bf16_missing();
    if (missing) {
        printf("SKIPPED: the bf16 kernels: this CPU lacks %s\n", missing);
        return check_failures != 0;
    }
    test_round();
    // M: under, at and past MR = 8 and its multiples; k: 0, odd (a pad), around the pairs and
    // the apply's KC = 512; n: under, at and past the NR = 32 panels.
    static const int Ms[] = {1, 7, 8, 9, 33}, ks[] = {0, 1, 2, 3, 127, 512, 513, 1101},
                     ns[] = {1, 31, 32, 33, 70};
    unsigned seed = 1;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 8; b++)
            for (int c = 0; c < 5; c++, seed++)
                test_apply(Ms[a], ks[b], ns[c], seed & 1, seed % 3, seed);
    // The weight gradients: k around the pairs and KC = 4096, M past MC = 512.
    static const int am[] = {1, 9, 40}, an[] = {1, 33, 70}, ak[] = {1, 2, 7, 4095, 4097, 8193};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 6; c++, seed++) test_atb(am[a], an[b], ak[c], seed);
    test_atb(521, 35, 9, seed++);
    CHECK(bf16_seen > 1, "every product within gamma(k) of its float32 operands (worst %.2f): "
          "were they rounded to bf16?", bf16_seen);
    printf("bf16 kernels: worst error against float32 operands %.0f gamma(k) Sum|terms|\n",
           bf16_seen);
    return check_failures != 0;
}
