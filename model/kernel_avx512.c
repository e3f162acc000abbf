// The avx512 variant (kernel.h): the packed kernel and, here, the forward pass's tanh and
// softmax. Compiled with the Makefile's AVX512 flags.
#ifndef FNN_DOUBLE
#include <immintrin.h>
#include <math.h>
#include "model/gemm_variants.h"
#include "model/kernel.h"

// glibc's vector tanhf (libmvec, within 4 ulp): GCC calls it only under -ffast-math, which this
// project does not use, and tanh is a tenth of the forward pass when scalar. The AVX-512 one
// takes half the time of the AVX2 one.
__m512 _ZGVeN16v_tanhf(__m512 x);
__m512 _ZGVeN16v_expf(__m512 x);
__m512 _ZGVeN16v_logf(__m512 x);
__m512 _ZGVeN16v_sinf(__m512 x);
__m512 _ZGVeN16v_cosf(__m512 x);

static void tanh_avx512(real* h, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(h + i, _ZGVeN16v_tanhf(_mm512_loadu_ps(h + i)));
    for (; i < n; i++) h[i] = real_tanh(h[i]);
}

// The scalar version (kernel_generic.c), 16 outputs at a time: its expf calls and serial max
// took over a millisecond per window, a tenth of the forward pass at H = 512. The sum stays in
// double.
static void softmax_avx512(real* p, const real* y, int rows, int O)
{
    for (int r = 0; r < rows; r++) {
        const real* yr = y + (size_t)r * O;
        real* pr = p + (size_t)r * O;
        __m512 vmx = _mm512_set1_ps(-INFINITY);
        int o = 0;
        for (; o + 16 <= O; o += 16) vmx = _mm512_max_ps(_mm512_loadu_ps(yr + o), vmx);
        real mx = _mm512_reduce_max_ps(vmx);
        for (; o < O; o++) mx = yr[o] > mx ? yr[o] : mx;
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
        for (o = 0; o + 16 <= O; o += 16) {
            __m512 e = _ZGVeN16v_expf(_mm512_sub_ps(_mm512_loadu_ps(yr + o), _mm512_set1_ps(mx)));
            _mm512_storeu_ps(pr + o, e);
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(
                                       _mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
        }
        double s = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
        for (; o < O; o++) s += (pr[o] = real_exp(yr[o] - mx));
        const __m512d vs = _mm512_set1_pd(s);
        for (o = 0; o + 8 <= O; o += 8) {
            __m512d v = _mm512_div_pd(_mm512_cvtps_pd(_mm256_loadu_ps(pr + o)), vs);
            _mm256_storeu_ps(pr + o, _mm512_cvtpd_ps(v));
        }
        for (; o < O; o++) pr[o] = (real)(pr[o] / s);
    }
}

// 16 pairs at a time: scalar, logf and sincosf took about 11 ns per element of the noise, a fifth
// of a step at H = 256.
static void normal_avx512(float* z0, float* z1, const float* u1, const float* u2, float sigma,
                          int n)
{
    const __m512 s = _mm512_set1_ps(sigma), m2 = _mm512_set1_ps(-2), w = _mm512_set1_ps(2 * (float)M_PI);
    for (int i = 0; i < n; i += 16) {
        const __m512 l = _ZGVeN16v_logf(_mm512_loadu_ps(u1 + i));
        const __m512 r = _mm512_mul_ps(s, _mm512_sqrt_ps(_mm512_mul_ps(m2, l)));
        const __m512 a = _mm512_mul_ps(w, _mm512_loadu_ps(u2 + i));
        _mm512_storeu_ps(z0 + i, _mm512_mul_ps(r, _ZGVeN16v_cosf(a)));
        _mm512_storeu_ps(z1 + i, _mm512_mul_ps(r, _ZGVeN16v_sinf(a)));
    }
}

const kernel_ops kernel_avx512 = {.name = "avx512", .panel = 32, .pack = gemm_avx512_pack,
                                  .apply = gemm_avx512_apply, .atb_work = gemm_avx512_atb_work,
                                  .atb = gemm_avx512_atb, .tanh = tanh_avx512,
                                  .softmax = softmax_avx512, .normal = normal_avx512};
#endif
