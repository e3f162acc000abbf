// The metrics file (metrics = F): one JSON object per line, written by world rank 0 only. Every
// write is flushed and checked, so a full disk or a lost file ends the run with a message
// instead of losing the metrics silently.
#ifndef RUN_METRICS_H
#define RUN_METRICS_H

#include <stdio.h>

// Opens path for appending (resume) or afresh; a failure ends the job.
FILE* metrics_open(const char* path, int append);
// Writes one line; a failure ends the job naming path.
void metrics_line(FILE* f, const char* path, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
// Closes f; a failure ends the job naming path.
void metrics_close(FILE* f, const char* path);

#endif
