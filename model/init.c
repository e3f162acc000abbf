// Initialisation that does not depend on the rank layout: every element is a function of
// (seed, tensor name, global row, global column), so any TP/DP layout starts from bit-identical
// weights. Gaussians come from a counter-based generator, never from a stream.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "model/init.h"

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

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

void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work,
             const int* lwork, int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda,
             const double* tau, double* work, const int* lwork, int* info);

int init_orthogonal(double* Q, int n, uint64_t key)
{
    for (int c = 0; c < n; c++)
        for (int r = 0; r < n; r++) Q[(size_t)c * n + r] = init_normal(key, r, c);
    double* tau = malloc((size_t)n * sizeof(double));
    double* sign = malloc((size_t)n * sizeof(double));
    int lwork = 64 * n, info = 0;
    double* work = malloc((size_t)lwork * sizeof(double));
    if (!tau || !sign || !work) {
        free(tau), free(sign), free(work);
        return -1;
    }
    dgeqrf_(&n, &n, Q, &n, tau, work, &lwork, &info);
    // Q is unique once R has a positive diagonal: flip each column with the sign of R's entry.
    for (int j = 0; j < n && !info; j++) sign[j] = Q[(size_t)j * n + j] < 0 ? -1 : 1;
    if (!info) dorgqr_(&n, &n, &n, Q, &n, tau, work, &lwork, &info);
    for (int j = 0; j < n && !info; j++)
        for (int r = 0; r < n; r++) Q[(size_t)j * n + r] *= sign[j];
    free(tau), free(sign), free(work);
    return info ? -1 : 0;
}

static double gaussian_std(const model_tensor* t)
{
    if (t->rank == 1) return 0; // biases start at zero
    if (!strcmp(t->name, "embed")) return 1;
    return 1 / sqrt((double)t->cols); // fan-in scaling: Wx, Wf, Wh (normal), Wo
}

static int is_wh(const model_tensor* t)
{
    size_t n = strlen(t->name);
    return n > 3 && !strcmp(t->name + n - 3, "/Wh");
}

static void fill_gaussian(model* m, const model_tensor* t)
{
    uint64_t key = init_key(m->c.seed, t->name);
    double sd = gaussian_std(t);
    real* p = m->params + t->offset;
    for (int i = 0; i < t->lrows; i++)
        for (int j = 0; j < t->lcols; j++)
            p[(size_t)i * t->ld + j] =
                sd ? (real)(sd * init_normal(key, t->row0 + i, t->col0 + j)) : 0;
}

// Wh: rows row0.. of an orthogonal matrix (or of the identity).
static int fill_recurrent(model* m, const model_tensor* t)
{
    real* p = m->params + t->offset;
    const int n = t->cols;
    if (m->c.wh_init == INIT_IDENTITY) {
        for (int i = 0; i < t->lrows; i++)
            for (int j = 0; j < n; j++) p[(size_t)i * t->ld + j] = t->row0 + i == j;
        return 0;
    }
    double* Q = malloc((size_t)n * n * sizeof(double));
    if (!Q || init_orthogonal(Q, n, init_key(m->c.seed, t->name))) {
        free(Q);
        return -1;
    }
    for (int i = 0; i < t->lrows; i++)
        for (int j = 0; j < n; j++) p[(size_t)i * t->ld + j] = (real)Q[(size_t)j * n + t->row0 + i];
    free(Q);
    return 0;
}

int model_init_params(model* m)
{
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        if (is_wh(t) && m->c.wh_init != INIT_NORMAL) {
            if (fill_recurrent(m, t)) return -1;
        } else {
            fill_gaussian(m, t);
        }
    }
    return 0;
}
