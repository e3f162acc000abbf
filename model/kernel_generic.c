// The generic variant (kernel.h): products by OpenBLAS, scalar tanh, softmax and normal draws;
// the float64 build's only one. Compiled with the baseline flags.
#include <math.h>
#include "model/kernel.h"

static void tanh_generic(real* h, size_t n)
{
    for (size_t i = 0; i < n; i++) h[i] = real_tanh(h[i]);
}

static void softmax_generic(real* p, const real* y, int rows, int O)
{
    for (int r = 0; r < rows; r++) {
        const real* yr = y + (size_t)r * O;
        real* pr = p + (size_t)r * O;
        real mx = -INFINITY;
        for (int o = 0; o < O; o++) mx = yr[o] > mx ? yr[o] : mx;
        double s = 0;
        for (int o = 0; o < O; o++) s += (pr[o] = real_exp(yr[o] - mx));
        for (int o = 0; o < O; o++) pr[o] = (real)(pr[o] / s);
    }
}

static void normal_generic(float* z0, float* z1, const float* u1, const float* u2, float sigma,
                           int n)
{
    for (int i = 0; i < n; i++) {
        const float r = sigma * sqrtf(-2 * logf(u1[i]));
        float s, c;
        sincosf(2 * (float)M_PI * u2[i], &s, &c);
        z0[i] = r * c;
        z1[i] = r * s;
    }
}

const kernel_ops kernel_generic = {.name = "generic", .tanh = tanh_generic,
                                   .softmax = softmax_generic, .normal = normal_generic};
