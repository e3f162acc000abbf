// Reading a metrics file (run/metrics.h writes it; docs/cli.md, Metrics file) back into its
// training and validation series, for fnn plot. Every line must be one flat JSON object with a
// "step": a file that is not a metrics file is refused at its first other line.
#ifndef RUN_METRICS_READ_H
#define RUN_METRICS_READ_H

#include <stddef.h>

typedef struct metrics_series {
    long n_train;       // training rows: lines with "loss" (skipped steps have none)
    long* train_step;   // (n_train)
    double* loss;       // (n_train)
    double* tokens_per_s; // (n_train)
    long n_val;         // validation rows: lines with a finite "val_loss" (eval_every)
    long* val_step;     // (n_val)
    double* val_loss;   // (n_val)
} metrics_series;

// Reads path into s. A resumed run appends the steps after its checkpoint again: a row whose
// step is not after the last one kept replaces the rows from that step on, so each series keeps
// the steps of the run that went on. Returns 0, or -1 with one line naming path in err (cannot
// open or read, line N is not a metrics line, no data rows); s is then empty.
int metrics_read(const char* path, metrics_series* s, char* err, size_t errlen);
void metrics_series_free(metrics_series* s);

#endif
