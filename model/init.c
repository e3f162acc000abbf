// Initialisation that does not depend on the rank layout: every element is a function of
// (seed, tensor name, global row, global column), so any TP/DP layout starts from bit-identical
// weights. What each tensor draws is its init rule (model/cell.h), set by the layout. Gaussians
// come from a counter-based generator, never from a stream.
#include <math.h>
#include <time.h>
#include "model/init.h"
#include "model/mix.h"

uint64_t init_key(uint64_t seed, const char* name)
{
    uint64_t h = 0xcbf29ce484222325ull; // FNV-1a of the name, then mixed with the seed
    for (const char* p = name; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return splitmix64(seed ^ splitmix64(h));
}

static uint64_t element_bits(uint64_t key, long row, long col)
{
    return splitmix64(key ^ splitmix64(((uint64_t)row << 32) ^ (uint64_t)col));
}

double init_uniform(uint64_t key, long row, long col)
{
    return (element_bits(key, row, col) >> 11) * 0x1.0p-53;
}

double init_normal(uint64_t key, long row, long col)
{
    uint64_t x = element_bits(key, row, col);
    uint64_t y = splitmix64(x);
    double u1 = ((x >> 11) + 1) * 0x1.0p-53; // (0, 1]: log is finite
    double u2 = (y >> 11) * 0x1.0p-53;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static double gaussian_std(const model_tensor* t)
{
    switch (t->init) {
    case CELL_INIT_UNIT:
        return 1;
    case CELL_INIT_FANIN:
    case CELL_INIT_RECURRENT:
        return 1 / sqrt((double)t->cols);
    default:
        return 0;
    }
}

// Gaussian tensors, zero biases, and the LSTM's forget-gate bias.
static void fill_gaussian(model* m, const model_tensor* t)
{
    uint64_t key = init_key(m->c.seed, t->name);
    double sd = gaussian_std(t);
    real c = t->init == CELL_INIT_FORGET ? (real)m->c.forget_bias : 0;
    real* p = m->params + t->offset;
    for (int i = 0; i < t->lrows; i++)
        for (int j = 0; j < t->lcols; j++)
            p[(size_t)i * t->ld + j] =
                sd ? (real)(sd * init_normal(key, t->row0 + i, t->col0 + j)) : c;
}

// Wh: this rank's rows of an orthogonal matrix (or of the identity).
static int fill_recurrent(model* m, const model_tensor* t)
{
    real* p = m->params + t->offset;
    const int n = t->cols;
    if (m->c.wh_init == INIT_IDENTITY) {
        for (int i = 0; i < t->lrows; i++)
            for (int j = 0; j < n; j++) p[(size_t)i * t->ld + j] = t->row0 + i == j;
        return 0;
    }
    return dist_orthogonal_rows(p, t->ld, n, init_normal, init_key(m->c.seed, t->name), m->g);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int model_init_params_timed(model* m, init_seconds* s)
{
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        const double t0 = seconds();
        if (t->init == CELL_INIT_RECURRENT && m->c.wh_init != INIT_NORMAL) {
            if (fill_recurrent(m, t)) return -1;
            *(m->c.wh_init == INIT_ORTHOGONAL ? &s->qr : &s->normal) += seconds() - t0;
        } else {
            fill_gaussian(m, t);
            s->normal += seconds() - t0;
        }
    }
    return 0;
}

int model_init_params(model* m)
{
    init_seconds s = {0};
    return model_init_params_timed(m, &s);
}
