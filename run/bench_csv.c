// The CSV of fnn bench: the columns of issue 10 (H, L, T, B, nodes, ranks, tp, dp, tok/s,
// GFLOP/s per rank, comm fraction, efficiency), then threads and the kind of scaling.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run/bench_csv.h"

static const char header[] =
    "H,L,T,B,nodes,ranks,tp,dp,tok_s,gflops_per_rank,comm_fraction,efficiency,threads,scaling\n";

// Field i (0-based) of a CSV line, up to its comma or the line's end, into out.
static void field(const char* line, int i, char* out, size_t len)
{
    for (; i > 0 && line; i--)
        if ((line = strchr(line, ','))) line++;
    size_t n = line ? strcspn(line, ",\n") : 0;
    if (n >= len) n = len - 1;
    memcpy(out, line ? line : "", n);
    out[n] = '\0';
}

// tok/s of the one-rank run the row is measured against (same H, L, T, B, threads and kind of
// scaling), 0 when the file has none.
static double baseline(FILE* f, const bench_row* r)
{
    int base_B = strcmp(r->scaling, "weak") ? r->B : r->B / r->dp;
    char line[512], threads[16], scaling[16];
    double found = 0;
    while (fgets(line, sizeof line, f)) {
        int H, L, T, B, nodes, ranks;
        double tok_s;
        field(line, 12, threads, sizeof threads);
        field(line, 13, scaling, sizeof scaling);
        if (sscanf(line, "%d,%d,%d,%d,%d,%d,%*d,%*d,%lf", &H, &L, &T, &B, &nodes, &ranks, &tok_s) == 7 &&
            H == r->H && L == r->L && T == r->T && B == base_B && ranks == 1 &&
            atoi(threads) == r->threads && !strcmp(scaling, r->scaling))
            found = tok_s; // the latest such row
    }
    return found;
}

int bench_csv_append(const char* path, const bench_row* r)
{
    double base = 0;
    int empty = 1;
    FILE* f = fopen(path, "r");
    if (f) {
        empty = fgetc(f) == EOF;
        rewind(f);
        base = baseline(f, r);
        fclose(f);
    }
    if (r->ranks == 1) base = r->tok_s; // a one-rank run is its own baseline
    if (!(f = fopen(path, "a"))) return -1;
    if (empty) fputs(header, f);
    fprintf(f, "%d,%d,%d,%d,%d,%d,%d,%d,%.1f,%.2f,%.4f,", r->H, r->L, r->T, r->B, r->nodes, r->ranks,
            r->tp, r->dp, r->tok_s, r->gflops_per_rank, r->comm_fraction);
    if (base > 0) fprintf(f, "%.4f", r->tok_s / (r->ranks * base));
    fprintf(f, ",%d,%s\n", r->threads, r->scaling);
    return fclose(f) ? -1 : 0;
}
