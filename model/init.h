// Layout-independent initialisation (see init.c).
#ifndef MODEL_INIT_H
#define MODEL_INIT_H

#include <stdint.h>
#include "model/model.h"

// Key of one tensor's generator.
uint64_t init_key(uint64_t seed, const char* name);
// Standard normal value of element (row, col) of the tensor with this key.
double init_normal(uint64_t key, long row, long col);
// Uniform value in [0, 1) of element (row, col).
double init_uniform(uint64_t key, long row, long col);

// Seconds model_init_params spends on each kind of tensor: the orthogonal Wh (the distributed QR),
// and the rest (Gaussian draws, constants, the identity).
typedef struct init_seconds {
    double qr, normal;
} init_seconds;
// model_init_params, adding this rank's seconds of each kind to *s.
int model_init_params_timed(model* m, init_seconds* s);

#endif
