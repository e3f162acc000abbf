// Dropout masks (model/dropout.h): element (row, t, j) of a connection's mask is kept when the
// 16-bit uniform u = (x >> 16 (j mod 4)) mod 2^16 of x = mix_at(mix_row(key, row, t), j / 4)
// has u 2^-16 >= p, key the connection's key drawn from the window's (model_batch.fb_key). One
// 64-bit draw serves four units, as one serves two of the feedback noise: the draw, not the
// multiply, is what a mask costs, and p's resolution of 2^-16 is far below any rate one trains
// with.
#include <math.h>
#include <string.h>
#include "model/dropout.h"
#include "model/init.h"
#include "model/mix.h"

static double prob(const model_batch* bt, int kind)
{
    return kind == DROP_RECURRENT ? bt->dropout_rec : bt->dropout;
}

static uint64_t connection_key(const model_batch* bt, int kind, int l)
{
    const char* name = kind == DROP_RECURRENT ? "dropout_recurrent" : "dropout";
    return splitmix64(init_key(bt->fb_key, name) ^ (uint64_t)l);
}

// The row's key at step t; the recurrent mask is the same at every step of the window (t = 0).
static uint64_t row_key(uint64_t key, int kind, long row, int t)
{
    return mix_row(key, (uint64_t)row, kind == DROP_RECURRENT ? 0 : t);
}

// u 2^-16 >= p for a 16-bit u: u >= the least such u, ceil(p 2^16) (exact in double).
static int threshold(double p)
{
    return (int)ceil(p * 65536);
}

// Unit j's 16 bits of its draw x.
static uint64_t unit_bits(uint64_t x, int j)
{
    return (x >> (16 * (j & 3))) & 0xffff;
}

// Draws per chunk of units: the draws first, then the mask (two loops that vectorise: the mask
// as a compare and a select, not a branch on which units are kept, which is random).
enum { DRAWS = 64 };

void dropout_apply(const model_batch* bt, int kind, int l, int t, real* x, int ldx, int j0, int n,
                   int B)
{
    const double p = prob(bt, kind);
    if (!(p > 0)) return;
    const real scale = (real)(1 / (1 - p));
    const uint64_t key = connection_key(bt, kind, l);
    const int thr = threshold(p);
    uint64_t d[DRAWS];
    uint16_t bits[4 * DRAWS]; // unit 4 i + k's: bits k of d[i] (x86 is little-endian)
    for (int b = 0; b < B; b++) {
        const uint64_t rk = row_key(key, kind, bt->row0 + b, t);
        real* xb = x + (size_t)b * ldx;
        for (int c0 = j0 & ~3; c0 < j0 + n; c0 += 4 * DRAWS) {
            for (int i = 0; i < DRAWS; i++) d[i] = mix_at(rk, (uint64_t)(c0 / 4 + i));
            memcpy(bits, d, sizeof bits);
            const int lo = c0 > j0 ? c0 : j0, hi = c0 + 4 * DRAWS < j0 + n ? c0 + 4 * DRAWS : j0 + n;
            real* restrict xs = xb + (lo - j0);
            const uint16_t* restrict bs = bits + (lo - c0);
            for (int i = 0; i < hi - lo; i++) xs[i] *= bs[i] >= thr ? scale : 0;
        }
    }
}

real dropout_mask(const model_batch* bt, int kind, int l, long row, int t, int j)
{
    const double p = prob(bt, kind);
    if (!(p > 0)) return 1;
    const uint64_t d = mix_at(row_key(connection_key(bt, kind, l), kind, row, t), (uint64_t)(j >> 2));
    return unit_bits(d, j) >= (uint64_t)threshold(p) ? (real)(1 / (1 - p)) : 0;
}
