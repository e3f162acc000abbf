// Start-up time by phase (startup.h).
#include <stdio.h>
#include "run/startup.h"

void startup_begin(startup* s)
{
    *s = (startup){.t0 = dist_wtime()};
    s->last = s->t0;
}

static void add(startup* s, const char* name, double seconds, int part)
{
    if (s->n == STARTUP_MAX_PHASES) return; // a programming error: the line stays short
    s->phase[s->n].name = name;
    s->phase[s->n].seconds = seconds;
    s->phase[s->n++].part = part;
}

void startup_mark(startup* s, const char* name)
{
    const double now = dist_wtime();
    add(s, name, now - s->last, 0);
    s->last = now;
}

void startup_part(startup* s, const char* name, double seconds)
{
    add(s, name, seconds, 1);
}

void startup_print(const startup* s, const dist_grid* g)
{
    if (g->world_rank != 0) return;
    printf("start-up %.2f s:", s->last - s->t0);
    for (int i = 0; i < s->n; i++) {
        const int opens = s->phase[i].part && (i == 0 || !s->phase[i - 1].part);
        const int closes = s->phase[i].part && (i + 1 == s->n || !s->phase[i + 1].part);
        printf("%s%s %.2f%s", opens ? " (" : i ? ", " : " ", s->phase[i].name, s->phase[i].seconds,
               closes ? ")" : "");
    }
    printf("\n");
    fflush(stdout);
}
