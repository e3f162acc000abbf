// The TP x DP layouts a multi-rank test runs at, shared so that every test covers the same ones:
// tp = 1, 2, 4 where it divides the world, and the DP replicas all sharing memory (share 0),
// none (1), or in pairs that also sum by message (2 of 4).
#ifndef TESTS_LAYOUTS_H
#define TESTS_LAYOUTS_H

enum { MAX_LAYOUTS = 8 };

typedef struct layout {
    int tp, share;
} layout;

// Fills out (MAX_LAYOUTS at most) in the order tp, then share; returns how many.
static inline int layouts(int world, layout* out)
{
    int n = 0;
    for (int tp = 1; tp <= world; tp *= 2)
        for (int share = 0; share <= 2; share++) {
            const int dp = world / tp;
            if (world % tp || (share == 1 && dp == 1) || (share == 2 && dp != 4)) continue;
            out[n++] = (layout){tp, share};
        }
    return n;
}

#endif
