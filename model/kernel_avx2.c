// The avx2 variant (kernel.h): the packed kernel of gemm_kernel_avx2.h and, here, the forward
// pass's tanh and softmax 8 floats at a time. Compiled with the Makefile's AVX2 flags.
#ifndef FNN_DOUBLE
#include <immintrin.h>
#include <math.h>
#include "model/gemm_variants.h"
#include "model/kernel.h"

// glibc's vector tanhf and expf (libmvec), as in kernel_avx512.c.
__m256 _ZGVdN8v_tanhf(__m256 x);
__m256 _ZGVdN8v_expf(__m256 x);
__m256 _ZGVdN8v_logf(__m256 x);
__m256 _ZGVdN8v_sinf(__m256 x);
__m256 _ZGVdN8v_cosf(__m256 x);

static void tanh_avx2(real* h, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(h + i, _ZGVdN8v_tanhf(_mm256_loadu_ps(h + i)));
    for (; i < n; i++) h[i] = real_tanh(h[i]);
}

static float max8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

// The scalar version (kernel_generic.c), 8 outputs at a time, the sum in double.
static void softmax_avx2(real* p, const real* y, int rows, int O)
{
    for (int r = 0; r < rows; r++) {
        const real* yr = y + (size_t)r * O;
        real* pr = p + (size_t)r * O;
        __m256 vmx = _mm256_set1_ps(-INFINITY);
        int o = 0;
        for (; o + 8 <= O; o += 8) vmx = _mm256_max_ps(_mm256_loadu_ps(yr + o), vmx);
        real mx = max8(vmx);
        for (; o < O; o++) mx = yr[o] > mx ? yr[o] : mx;
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        for (o = 0; o + 8 <= O; o += 8) {
            __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(yr + o), _mm256_set1_ps(mx)));
            _mm256_storeu_ps(pr + o, e);
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        }
        double part[4];
        _mm256_storeu_pd(part, _mm256_add_pd(s0, s1));
        double s = (part[0] + part[1]) + (part[2] + part[3]);
        for (; o < O; o++) s += (pr[o] = real_exp(yr[o] - mx));
        const __m256d vs = _mm256_set1_pd(s);
        for (o = 0; o + 4 <= O; o += 4) {
            __m256d v = _mm256_div_pd(_mm256_cvtps_pd(_mm_loadu_ps(pr + o)), vs);
            _mm_storeu_ps(pr + o, _mm256_cvtpd_ps(v));
        }
        for (; o < O; o++) pr[o] = (real)(pr[o] / s);
    }
}

// As normal_avx512, 8 pairs at a time.
static void normal_avx2(float* z0, float* z1, const float* u1, const float* u2, float sigma, int n)
{
    const __m256 s = _mm256_set1_ps(sigma), m2 = _mm256_set1_ps(-2), w = _mm256_set1_ps(2 * (float)M_PI);
    for (int i = 0; i < n; i += 8) {
        const __m256 l = _ZGVdN8v_logf(_mm256_loadu_ps(u1 + i));
        const __m256 r = _mm256_mul_ps(s, _mm256_sqrt_ps(_mm256_mul_ps(m2, l)));
        const __m256 a = _mm256_mul_ps(w, _mm256_loadu_ps(u2 + i));
        _mm256_storeu_ps(z0 + i, _mm256_mul_ps(r, _ZGVdN8v_cosf(a)));
        _mm256_storeu_ps(z1 + i, _mm256_mul_ps(r, _ZGVdN8v_sinf(a)));
    }
}

const kernel_ops kernel_avx2 = {.name = "avx2", .panel = 16, .pack = gemm_avx2_pack,
                                .apply = gemm_avx2_apply, .atb_work = gemm_avx2_atb_work,
                                .atb = gemm_avx2_atb, .tanh = tanh_avx2, .softmax = softmax_avx2,
                                .normal = normal_avx2};
#endif
