// The measures of an evaluation as text and as JSON.
#include <math.h>
#include <string.h>
#include "run/eval_pass.h"

static const char* const task_names[] = {"lm", "classify", "regress"};

// Accuracy of always answering the most frequent true class of the evaluated windows.
static double majority(const eval_result* e, int* cls)
{
    long best = -1;
    for (int t = 0; t < e->O; t++) {
        long n = 0;
        for (int p = 0; p < e->O; p++) n += e->confusion[(size_t)t * e->O + p];
        if (n > best) best = n, *cls = t;
    }
    return (double)best / e->windows;
}

void eval_print_measures(FILE* f, const eval_result* e)
{
    int cls = 0;
    if (e->task == TASK_LM) fprintf(f, "  bpc %.4f  accuracy %.4f", e->bpc, e->accuracy);
    if (e->task == TASK_CLASSIFY)
        fprintf(f, "  accuracy %.4f  majority %.4f", e->accuracy, majority(e, &cls));
    if (e->task == TASK_REGRESS) fprintf(f, "  mse %.6g  r2 %.4f", e->mse, e->r2);
}

void eval_print_confusion(FILE* f, const eval_result* e, const dataset* d)
{
    if (e->task != TASK_CLASSIFY) return;
    int w = 9;
    for (int k = 0; k < e->O; k++) {
        int n = (int)strlen(dataset_class_name(d, k));
        if (n > w) w = n;
    }
    fprintf(f, "confusion (rows: true class, columns: predicted)\n%*s", w, "");
    for (int k = 0; k < e->O; k++) fprintf(f, " %*s", w, dataset_class_name(d, k));
    fprintf(f, "\n");
    for (int t = 0; t < e->O; t++) {
        fprintf(f, "%*s", w, dataset_class_name(d, t));
        for (int p = 0; p < e->O; p++) fprintf(f, " %*ld", w, e->confusion[(size_t)t * e->O + p]);
        fprintf(f, "\n");
    }
}

static void json_string(FILE* f, const char* s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

// JSON has no NaN: an undefined R^2 (targets without variance) is null.
static void json_number(FILE* f, double x)
{
    if (isfinite(x)) fprintf(f, "%.9g", x);
    else fprintf(f, "null");
}

void eval_print_json(FILE* f, const eval_result* e, const dataset* d, const char* checkpoint,
                     const char* data, const char* split)
{
    fprintf(f, "{\"checkpoint\": ");
    json_string(f, checkpoint);
    fprintf(f, ", \"data\": ");
    json_string(f, data);
    fprintf(f, ", \"split\": ");
    json_string(f, split);
    fprintf(f, ", \"task\": \"%s\", \"windows\": %ld, \"steps\": %d, \"scored\": %ld, ",
            task_names[e->task], e->windows, e->T, e->scored);
    eval_print_json_fields(f, e, "");
    if (e->task == TASK_CLASSIFY) {
        int cls = 0;
        double maj = majority(e, &cls);
        fprintf(f, ", \"majority\": ");
        json_number(f, maj);
        fprintf(f, ", \"majority_class\": ");
        json_string(f, dataset_class_name(d, cls));
        fprintf(f, ", \"classes\": [");
        for (int k = 0; k < e->O; k++) {
            fprintf(f, k ? ", " : "");
            json_string(f, dataset_class_name(d, k));
        }
        fprintf(f, "], \"confusion\": [");
        for (int t = 0; t < e->O; t++) {
            fprintf(f, t ? ", [" : "[");
            for (int p = 0; p < e->O; p++) fprintf(f, p ? ", %ld" : "%ld", e->confusion[(size_t)t * e->O + p]);
            fprintf(f, "]");
        }
        fprintf(f, "]");
    }
    if (e->task == TASK_REGRESS) {
        fprintf(f, ", \"r2_per_output\": [");
        for (int o = 0; o < e->O; o++) {
            fprintf(f, o ? ", " : "");
            json_number(f, e->r2_out[o]);
        }
        fprintf(f, "], \"r2_sst\": \"about each output's mean target over the evaluated windows\"");
    }
    fprintf(f, "}\n");
}

void eval_print_json_fields(FILE* f, const eval_result* e, const char* prefix)
{
    fprintf(f, "\"%sloss\": ", prefix);
    json_number(f, e->loss);
    if (e->task == TASK_LM) {
        fprintf(f, ", \"%sbpc\": ", prefix);
        json_number(f, e->bpc);
    }
    if (e->task != TASK_REGRESS) {
        fprintf(f, ", \"%saccuracy\": ", prefix);
        json_number(f, e->accuracy);
    }
    if (e->task == TASK_REGRESS) {
        fprintf(f, ", \"%smse\": ", prefix);
        json_number(f, e->mse);
        fprintf(f, ", \"%sr2\": ", prefix);
        json_number(f, e->r2);
    }
}
