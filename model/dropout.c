// Dropout masks (model/dropout.h): element (row, t, j) of a connection's mask is kept when the
// uniform (x >> 11) 2^-53 of x = mix_at(mix_row(key, row, t), j) is at least p, key the
// connection's key drawn from the window's (model_batch.fb_key).
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

static int kept(uint64_t rowkey, int j, double p)
{
    return (double)(mix_at(rowkey, (uint64_t)j) >> 11) * 0x1.0p-53 >= p;
}

void dropout_apply(const model_batch* bt, int kind, int l, int t, real* x, int ldx, int j0, int n,
                   int B)
{
    const double p = prob(bt, kind);
    if (!(p > 0)) return;
    const real scale = (real)(1 / (1 - p));
    const uint64_t key = connection_key(bt, kind, l);
    for (int b = 0; b < B; b++) {
        const uint64_t rk = row_key(key, kind, bt->row0 + b, t);
        real* xb = x + (size_t)b * ldx;
        for (int j = 0; j < n; j++) xb[j] = kept(rk, j0 + j, p) ? xb[j] * scale : 0;
    }
}

real dropout_mask(const model_batch* bt, int kind, int l, long row, int t, int j)
{
    const double p = prob(bt, kind);
    if (!(p > 0)) return 1;
    return kept(row_key(connection_key(bt, kind, l), kind, row, t), j, p) ? (real)(1 / (1 - p)) : 0;
}
