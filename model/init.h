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

#endif
