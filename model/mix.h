// SplitMix64's finaliser: the counter-based mixer behind every random choice that must not depend
// on the rank layout (parameter init in model/init.c, the data order in io/dataset.c, the
// training draws below). A value is a function of its coordinates, never of a stream's position.
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

// The training draws of a window (model/feedback.c's noise, model/dropout.c's masks) at the
// coordinates (global batch row, step t, element i) under a draw's key: one mix per row and
// step, mix_row, then one per element, mix_at. Every layout holding that row and element draws
// the same 64 bits.
static inline uint64_t mix_row(uint64_t key, uint64_t row, int t)
{
    return splitmix64(key ^ row) ^ ((uint64_t)t << 32);
}

static inline uint64_t mix_at(uint64_t rowkey, uint64_t i)
{
    return splitmix64(rowkey ^ i);
}

#endif
