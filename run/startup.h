// Start-up time by phase (set-up, data, allocation, initialisation or checkpoint load, ...),
// printed by rank 0 as one line before the first step: at large H the orthogonal initialisation
// and the loads dominate the start, and a slow start should say which phase made it slow.
#ifndef RUN_STARTUP_H
#define RUN_STARTUP_H

#include "dist/dist.h"

enum { STARTUP_MAX_PHASES = 12 };

typedef struct startup {
    double t0, last;
    int n;
    struct {
        const char* name;
        double seconds;
        int part; // a part of the phase before it (printed in its parentheses)
    } phase[STARTUP_MAX_PHASES];
} startup;

// Starts the clock.
void startup_begin(startup* s);
// The phase that ends now (it began at the end of the previous one). name: a string literal.
void startup_mark(startup* s, const char* name);
// A part of the phase marked last, timed by whoever ran it (init's QR and normal draws).
void startup_part(startup* s, const char* name, double seconds);
// "start-up 0.49 s: setup 0.00, data 0.01, allocation 0.18, init 0.29 (QR 0.25, normal 0.04)" on
// rank 0, by its own clock (the collective phases end together on every rank).
void startup_print(const startup* s, const dist_grid* g);

#endif
