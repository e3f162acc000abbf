// The checkpoint tests (test_checkpoint.c, test_cells.c) give every element a value that is a
// function of its global index alone, save at one layout and compare at another: these set or
// compare them. Include after check.h and model/init.h.
#ifndef TESTS_ELEMENTS_H
#define TESTS_ELEMENTS_H

// The value each buffer gets at global element (i, j) of tensor k: no two alike. Buffers 0-2 are
// params, m and v; 3 the carried h (layer k < L) and f (k = L); 4 the cell's state of layer k.
static inline real value(int buf, int k, int i, int j)
{
    return (real)init_normal(100 + 10 * buf + k, i, j);
}

typedef struct elements_arg {
    const model_tensor* t;
    real* buf;
    int b, k, check;
    long bad;
} elements_arg;

// One owned run of a tensor's moments (model_owned_runs).
static inline void moment_run(size_t off, size_t n, size_t at, void* arg)
{
    elements_arg* a = arg;
    for (size_t e = off; e < off + n; e++) {
        const size_t ld = (size_t)a->t->ld, i = (e - a->t->offset) / ld, j = (e - a->t->offset) % ld;
        real* p = a->buf + at + (e - off);
        real want = value(a->b, a->k, a->t->row0 + (int)i, a->t->col0 + (int)j);
        if (a->check) a->bad += *p != want;
        else *p = want;
    }
}

// Sets (check = 0) or compares (check = 1) every held element of params, and of m and v those
// this rank owns (model_own); returns the number of mismatches.
static inline long elements(model* m, int check)
{
    long bad = 0;
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        for (int i = 0; i < t->lrows; i++)
            for (int j = 0; j < t->lcols; j++) {
                real* p = m->params + t->offset + (size_t)i * t->ld + j;
                real want = value(0, k, t->row0 + i, t->col0 + j);
                if (check) bad += *p != want;
                else *p = want;
            }
        for (int b = 1; b < 3; b++) {
            elements_arg a = {.t = t, .buf = b == 1 ? m->m : m->v, .b = b, .k = k, .check = check};
            model_owned_runs(m, t, moment_run, &a);
            bad += a.bad;
        }
    }
    return bad;
}

// The same for the carried state of this rank's rows (all its micro-batches', model_rank_rows),
// by global row and column: h (rows x H) per layer, f (rows x O), and the cell's state (rows x
// Hl, this rank's units) per layer where it has one.
static inline long state(model* m, int check)
{
    const int L = m->c.L, H = m->c.H, Hl = m->Hl, rows = model_rank_rows(m);
    const int row0 = m->g->dp_rank * rows;
    long bad = 0;
    for (int l = 0; l <= L; l++) {
        const int cols = l < L ? H : m->c.O;
        real* h = l < L ? m->h0r[l] : m->f0r;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++) {
                real want = value(3, l, row0 + r, j);
                if (check) bad += h[(size_t)r * cols + j] != want;
                else h[(size_t)r * cols + j] = want;
                if (l == L || !m->cell->state || j < m->h0 || j >= m->h0 + Hl) continue;
                real* s = m->s0r[l] + (size_t)r * Hl + j - m->h0;
                want = value(4, l, row0 + r, j);
                if (check) bad += *s != want;
                else *s = want;
            }
    }
    return bad;
}

#endif
