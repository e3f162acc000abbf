// The scored steps of a regression against what the dataset holds.
#include <stdio.h>
#include <string.h>
#include "run/score.h"

void score_check(const fnn_config* c, const dataset* d, int T)
{
    const int S = dataset_seq_len(d);
    if (!S) return;
    if (c->score != SCORE_LAST)
        dist_fail_all("%s holds one target per sequence of %d steps: it needs score = last, not "
                      "score = %s", c->data, S, config_enum_name("score", c->score));
    if (T != S)
        dist_fail_all("%s holds sequences of %d steps, each one window: seq_len must be %d, not %d",
                      c->data, S, S, T);
    if (c->carry_state)
        dist_fail_all("carry_state = true: %s holds independent sequences, one per window (the state "
                      "of one would start the next)", c->data);
    if (c->model.feedback_source != FBS_MODEL)
        dist_fail_all("feedback_source = %s: %s has no per-step targets to feed back (one target "
                      "per sequence, at its last step)",
                      config_enum_name("feedback_source", c->model.feedback_source), c->data);
}

int score_of_run_config(const char* path, const char* text)
{
    static const char key[] = "score = ";
    const char* line = text;
    while (line && strncmp(line, key, sizeof key - 1)) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    if (!line) return SCORE_ALL;
    const char* v = line + sizeof key - 1;
    int n = (int)strcspn(v, "\n");
    char name[16];
    snprintf(name, sizeof name, "%.*s", n, v);
    int score = n < (int)sizeof name ? config_enum_value("score", name) : -1;
    if (score < 0) dist_fail_all("%s: its run config says score = %.*s, not all or last", path, n, v);
    return score;
}
