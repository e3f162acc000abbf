// SplitMix64's finaliser: the counter-based mixer behind every random choice that must not depend
// on the rank layout (parameter init in model/init.c, the data order in io/dataset.c). A value is
// a function of its coordinates, never of a stream's position.
#ifndef MODEL_MIX_H
#define MODEL_MIX_H

#include <stdint.h>

static inline uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#endif
