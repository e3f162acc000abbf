// fnn bench --csv: one row per run for the scaling study (slurm/scaling.sbatch, make bench) and
// its report (slurm/report).
#pragma once

typedef struct bench_row {
    int H, L, T, B, nodes, ranks, tp, dp, threads;
    double tok_s, gflops_per_rank, comm_fraction;
    const char* scaling; // "strong" (fixed global batch) or "weak" (fixed batch per replica)
} bench_row;

// Appends row to the CSV file at path (the header first when the file is new or empty). Its
// efficiency is tok_s / (ranks x tok_s of the latest one-rank row already in the file with the
// same H, L, T, threads, scaling and B = row B (strong) or row B / dp (weak)); empty when there
// is no such row. Rank 0
// only. Returns 0, or -1 when the file cannot be read or written.
int bench_csv_append(const char* path, const bench_row* row);
