// Evaluation measures (run/eval_pass.c) against independent computations: each task's measures
// at every TP x DP layout of the world against one rank's model outputs scored here in double
// (two-pass R^2, argmax, log-softmax), a closed-form regression case (a head that outputs a
// constant: MSE and R^2 from the CSV values alone), the confusion matrix summing to the number of
// windows with row sums equal to the class counts written into the records files, bits per
// character = loss / ln 2, R^2 of a target of mean 1e4 and variance 2e-5 (no cancellation), and
// one DP allreduce per evaluation. score = last: MSE and R^2 of per-sequence targets (fnn prepare
// --seq-len) and of the last step of stream windows, from the CSV values alone (constant head)
// and from one rank's outputs at the last step.
// ranks: 1 2 4
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "run/eval_pass.h"
#include "tests/check.h"

enum { T = 8, BG = 4, ROWS = 203, NCLS = 3, NSEQ = 23 };
#define DIR "build/tests/eval"
static const char* const class_files[NCLS] = {DIR "/alpha", DIR "/beta", DIR "/gamma"};
static const int class_records[NCLS] = {10, 6, 11}; // val (half, rounded down): 5, 3, 5
static float csv[ROWS][4];                          // 2 inputs, 2 targets
static float seqs[NSEQ][2 * T + 2];                 // per line: T steps of 2 inputs, 2 targets

static uint32_t lcg(uint32_t* s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

// Rank 0 writes the three datasets; every rank can read them after the barrier.
static void make_data(int rank)
{
    uint32_t s = 7;
    for (int i = 0; i < ROWS; i++) {
        float u = (float)(lcg(&s) % 1000) / 500 - 1, v = (float)(lcg(&s) % 1000) / 1000;
        csv[i][0] = u, csv[i][1] = v, csv[i][2] = u * v + 0.5f * (float)i / ROWS, csv[i][3] = u - 2 * v;
    }
    for (int i = 0; i < NSEQ; i++)
        for (int j = 0; j < 2 * T + 2; j++) seqs[i][j] = (float)(lcg(&s) % 1000) / 250 - 2;
    if (rank == 0) {
        char err[256];
        mkdir("build/tests", 0755), mkdir(DIR, 0755);
        FILE* f = fopen(DIR "/text.txt", "w");
        for (int i = 0; i < 1500; i++) fputc("abcdefgh ij\n"[lcg(&s) % 12], f);
        fclose(f);
        for (int k = 0; k < NCLS; k++) {
            f = fopen(class_files[k], "w");
            for (int r = 0; r < class_records[k]; r++) {
                int len = 1 + (int)(lcg(&s) % 20);
                for (int i = 0; i < len; i++) fputc("abcdefghij"[(lcg(&s) + (uint32_t)k) % (3 + 3 * k)], f);
                fputs("\n%\n", f);
            }
            fclose(f);
        }
        f = fopen(DIR "/rows.csv", "w");
        for (int i = 0; i < ROWS; i++) fprintf(f, "%.9g,%.9g,%.9g,%.9g\n", csv[i][0], csv[i][1], csv[i][2], csv[i][3]);
        fclose(f);
        // A first target of mean 1e4 and variance 2e-5 (exact in float32): its SST from
        // sum y^2 - (sum y)^2 / n would lose most of its digits.
        f = fopen(DIR "/offset.csv", "w");
        for (int i = 0; i < ROWS; i++)
            fprintf(f, "%.9g,%.9g,%.17g,%.9g\n", csv[i][0], csv[i][1], 1e4 + (lcg(&s) % 16) / 1024.0, csv[i][3]);
        fclose(f);
        const char* text[] = {DIR "/text.txt"};
        const char* rows[] = {DIR "/rows.csv"}, *offset[] = {DIR "/offset.csv"};
        CHECK(dataset_prepare("text", text, 1, DIR "/text.h5", 0.3, 0, err, sizeof err) == 0, "%s", err);
        CHECK(dataset_prepare("records", class_files, NCLS, DIR "/recs.h5", 0.5, 0, err, sizeof err) == 0, "%s", err);
        CHECK(dataset_prepare("csv", rows, 1, DIR "/rows.h5", 0.5, 2, err, sizeof err) == 0, "%s", err);
        CHECK(dataset_prepare("csv", offset, 1, DIR "/offset.h5", 0.5, 2, err, sizeof err) == 0, "%s", err);
        f = fopen(DIR "/seqs.csv", "w");
        for (int i = 0; i < NSEQ; i++)
            for (int j = 0; j < 2 * T + 2; j++) fprintf(f, "%.9g%c", seqs[i][j], j == 2 * T + 1 ? '\n' : ',');
        fclose(f);
        const char* seqfile[] = {DIR "/seqs.csv"};
        CHECK(dataset_prepare_steps("csv", seqfile, 1, DIR "/seqs.h5", 0.5, 2, T, err, sizeof err) == 0, "%s", err);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static model_config config(int task)
{
    model_config c = {.task = task, .act = ACT_TANH, .feedback = FB_ALL, .feedback_source = FBS_MODEL,
                      .wh_init = INIT_ORTHOGONAL, .V = BYTE_VOCAB, .D = 8, .H = 16, .L = 2, .O = BYTE_VOCAB, .seed = 3};
    if (task == TASK_CLASSIFY) c.O = NCLS;
    if (task == TASK_REGRESS) c.V = 0, c.D = 2, c.O = 2;
    return c;
}

// A head that outputs the constant (c0, c1) whatever the state: Wo = 0, bo = c.
static void constant_head(model* m, double c0, double c1)
{
    memset(m->params + m->Wo, 0, (size_t)m->c.O * m->Hl * sizeof(real));
    m->params[m->bo] = (real)c0;
    m->params[m->bo + 1] = (real)c1;
}

// The measures from one rank's outputs, computed here: the reference for every layout.
typedef struct reference {
    double loss, right, sse[2], sst[2];
    long confusion[NCLS][NCLS];
} reference;

static void score_window(const model* m, const model_batch* bt, int b, reference* r)
{
    const int O = m->c.O, B = m->B;
    for (int t = 0; t < bt->T; t++) {
        const real* y = m->Y + ((size_t)t * B + b) * O;
        int arg = 0;
        for (int o = 1; o < O; o++)
            if (y[o] > y[arg]) arg = o;
        if (m->c.task == TASK_LM) {
            double mx = y[arg], s = 0;
            for (int o = 0; o < O; o++) s += exp((double)y[o] - mx);
            int k = bt->next[(size_t)t * B + b];
            r->loss += mx + log(s) - y[k];
            r->right += arg == k;
        } else if (m->c.task == TASK_CLASSIFY && t == bt->last[b]) {
            r->confusion[bt->label[b]][arg]++;
        } else if (m->c.task == TASK_REGRESS) {
            for (int o = 0; o < O; o++) {
                double d = (double)y[o] - bt->target[((size_t)t * B + b) * O + o];
                r->sse[o] += d * d;
            }
        }
    }
}

// Runs the windows one rank at a time (a constant head (0.25, -0.5) with constant = 1, (1e4, -0.5)
// with 2), scoring each real row; SST about each target's mean over
// the same rows, by two passes over the dataset's targets.
static reference one_rank_reference(int task, const dataset* d, long n, int constant)
{
    dist_grid one;
    char err[256];
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    model_config c = config(task);
    model m;
    data_batch db;
    CHECK(model_init(&m, &c, &one, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    if (constant) constant_head(&m, constant == 2 ? 1e4 : 0.25, -0.5);
    data_batch_init(&db, d, T, BG);
    reference r = {0};
    double mean[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++)
        for (long first = 0; first < n; first += BG) {
            dataset_eval_batch(d, &db, SPLIT_VAL, first, 0);
            model_reset_state(&m);
            model_forward(&m, &db.view);
            for (int b = 0; b < BG && first + b < n; b++) {
                if (pass == 0) score_window(&m, &db.view, b, &r);
                for (int t = 0; task == TASK_REGRESS && t < T; t++)
                    for (int o = 0; o < 2; o++) {
                        double y = db.view.target[((size_t)t * BG + b) * 2 + o];
                        if (pass == 0) mean[o] += y / ((double)n * T);
                        else r.sst[o] += (y - mean[o]) * (y - mean[o]);
                    }
            }
        }
    data_batch_free(&db);
    model_free(&m);
    dist_grid_free(&one);
    return r;
}

static void check_layout(dist_grid* g, int task, const dataset* d, long n, const reference* ref,
                         int constant)
{
    model_config c = config(task);
    model m;
    data_batch db;
    char err[256];
    CHECK(model_init(&m, &c, g, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    if (constant) constant_head(&m, constant == 2 ? 1e4 : 0.25, -0.5);
    data_batch_init(&db, d, T, m.B);
    dist_reset_counts(g);
    eval_result e = evaluate(&m, d, &db, SPLIT_VAL, n, 0);
    // The measures of all tasks ride on one sum over DP; forward makes no allreduce.
    CHECK(g->count[DIST_ALLREDUCE] == (g->dp > 1), "tp %d dp %d: %ld allreduces, want %d",
          g->tp, g->dp, g->count[DIST_ALLREDUCE], g->dp > 1);
    CHECK(e.windows == n && e.scored == (task == TASK_CLASSIFY ? n : n * T), "scored %ld", e.scored);
    const char* what = task == TASK_LM ? "lm" : task == TASK_CLASSIFY ? "classify" : "regress";
    if (task == TASK_LM) {
        CHECK(check_close(e.loss, ref->loss / (n * T), 1e-5, 0), "lm tp %d dp %d: loss %.9g, reference %.9g",
              g->tp, g->dp, e.loss, ref->loss / (n * T));
        CHECK(fabs(e.bpc - e.loss / log(2.0)) <= 1e-12 * e.bpc, "bpc %.12g, loss / ln 2 %.12g", e.bpc, e.loss / log(2.0));
        CHECK(e.accuracy == ref->right / (n * T), "lm accuracy %.9g, reference %.9g", e.accuracy, ref->right / (n * T));
    }
    if (task == TASK_CLASSIFY) {
        long total = 0, trace = 0;
        for (int i = 0; i < NCLS; i++) {
            long row = 0;
            for (int j = 0; j < NCLS; j++) {
                long v = e.confusion[i * NCLS + j];
                CHECK(v == ref->confusion[i][j], "tp %d dp %d: confusion[%d][%d] = %ld, reference %ld",
                      g->tp, g->dp, i, j, v, ref->confusion[i][j]);
                row += v;
            }
            CHECK(row == class_records[i] / 2, "class %s: %ld windows, the file's val split has %d",
                  dataset_class_name(d, i), row, class_records[i] / 2);
            total += row;
            trace += e.confusion[i * NCLS + i];
        }
        CHECK(total == n, "confusion matrix sums to %ld, %ld windows", total, n);
        CHECK(e.accuracy == (double)trace / n, "accuracy %.9g, trace / windows %.9g", e.accuracy, (double)trace / n);
    }
    if (task == TASK_REGRESS) {
        double sse = ref->sse[0] + ref->sse[1], sst = ref->sst[0] + ref->sst[1];
        double mse = sse / (2.0 * n * T), r2 = 1 - sse / sst;
        CHECK(check_close(e.mse, mse, 1e-5, 0), "tp %d dp %d: mse %.9g, reference %.9g", g->tp, g->dp, e.mse, mse);
        CHECK(check_close(e.mse, e.loss, 1e-6, 0), "mse %.9g, loss %.9g", e.mse, e.loss);
        CHECK(check_close(e.r2, r2, 1e-5, 1e-6), "tp %d dp %d: r2 %.9g, reference %.9g", g->tp, g->dp, e.r2, r2);
        for (int o = 0; o < 2; o++)
            CHECK(check_close(e.r2_out[o], 1 - ref->sse[o] / ref->sst[o], 1e-5, 1e-6), "output %d: r2 %.9g, reference %.9g",
                  o, e.r2_out[o], 1 - ref->sse[o] / ref->sst[o]);
    }
    if (g->world_rank == 0)
        printf("%s%s tp %d x dp %d: %ld windows, loss %.6f bpc %.4f accuracy %.4f mse %.6g r2 %.6f\n", what,
               constant == 2 ? " (targets and head at 1e4)" : constant ? " (constant head)" : "", g->tp, g->dp, n, e.loss, e.bpc, e.accuracy, e.mse, e.r2);
    eval_result_free(&e);
    data_batch_free(&db);
    model_free(&m);
}

// Closed form: a head outputting (0.25, -0.5) on the val rows of the CSV, which are the last half.
static void check_constant_reference(const reference* ref, long n)
{
    const int first = ROWS - ROWS / 2;
    double sse[2] = {0, 0}, sst[2] = {0, 0}, mean[2] = {0, 0}, c[2] = {0.25, -0.5};
    for (int i = 0; i < n * T; i++)
        for (int o = 0; o < 2; o++) mean[o] += csv[first + i][2 + o] / ((double)n * T);
    for (int i = 0; i < n * T; i++)
        for (int o = 0; o < 2; o++) {
            double y = csv[first + i][2 + o];
            sse[o] += (y - c[o]) * (y - c[o]);
            sst[o] += (y - mean[o]) * (y - mean[o]);
        }
    for (int o = 0; o < 2; o++) {
        CHECK(check_close(ref->sse[o], sse[o], 1e-6, 0), "constant head output %d: sse %.9g, closed form %.9g", o, ref->sse[o], sse[o]);
        CHECK(check_close(ref->sst[o], sst[o], 1e-6, 0), "output %d: sst %.9g, from the csv %.9g", o, ref->sst[o], sst[o]);
    }
}

// score = last on dataset d (per-sequence targets, or a stream whose windows are scored at their
// last step): at every layout, MSE and R^2 of a constant head (0.25, -0.5) against the closed
// form from the last-step targets the caller read from the CSV (want: n x 2), and of the model's
// own outputs against one rank's outputs at the last step.
static void check_scored_last(const dataset* d, long n, const float* want, int world)
{
    char err[256];
    double sse_c[2] = {0, 0}, sst[2] = {0, 0}, mean[2] = {0, 0}, c[2] = {0.25, -0.5};
    for (long k = 0; k < n; k++)
        for (int o = 0; o < 2; o++) mean[o] += want[k * 2 + o] / (double)n;
    for (long k = 0; k < n; k++)
        for (int o = 0; o < 2; o++) {
            sse_c[o] += (want[k * 2 + o] - c[o]) * (want[k * 2 + o] - c[o]);
            sst[o] += (want[k * 2 + o] - mean[o]) * (want[k * 2 + o] - mean[o]);
        }
    // One rank's model outputs at step T - 1 of each window against the same targets.
    dist_grid one;
    dist_grid_init(MPI_COMM_SELF, 1, 0, &one, err, sizeof err);
    model_config mc = config(TASK_REGRESS);
    model m;
    data_batch db;
    CHECK(model_init(&m, &mc, &one, T, BG, err, sizeof err) == 0, "%s", err);
    model_init_params(&m);
    data_batch_init(&db, d, T, BG);
    double sse_m[2] = {0, 0};
    for (long first = 0; first < n; first += BG) {
        dataset_eval_batch(d, &db, SPLIT_VAL, first, 0);
        model_reset_state(&m);
        model_forward(&m, &db.view);
        for (int b = 0; b < BG && first + b < n; b++)
            for (int o = 0; o < 2; o++) {
                double e = m.Y[((size_t)(T - 1) * BG + b) * 2 + o] - want[(first + b) * 2 + o];
                sse_m[o] += e * e;
            }
    }
    data_batch_free(&db);
    model_free(&m);
    dist_grid_free(&one);
    for (int tp = 1; tp <= world; tp *= 2)
        for (int constant = 0; constant <= 1 && world % tp == 0; constant++) {
            dist_grid g;
            dist_grid_init(MPI_COMM_WORLD, tp, 0, &g, err, sizeof err);
            CHECK(model_init(&m, &mc, &g, T, BG, err, sizeof err) == 0, "%s", err);
            model_init_params(&m);
            if (constant) constant_head(&m, c[0], c[1]);
            data_batch_init(&db, d, T, m.B);
            data_batch_score_last(&db);
            eval_result e = evaluate(&m, d, &db, SPLIT_VAL, n, 0);
            const double* sse = constant ? sse_c : sse_m;
            double mse = (sse[0] + sse[1]) / (2.0 * n), r2 = 1 - (sse[0] + sse[1]) / (sst[0] + sst[1]);
            CHECK(e.scored == n, "score = last: %ld scored, want %ld windows", e.scored, n);
            CHECK(check_close(e.mse, mse, 1e-5, 0) && check_close(e.loss, mse, 1e-5, 0),
                  "score = last%s tp %d dp %d: mse %.9g loss %.9g, reference %.9g",
                  constant ? " constant head" : "", g.tp, g.dp, e.mse, e.loss, mse);
            CHECK(check_close(e.r2, r2, 1e-5, 1e-6), "score = last%s tp %d: r2 %.9g, reference %.9g",
                  constant ? " constant head" : "", g.tp, e.r2, r2);
            if (g.world_rank == 0)
                printf("regress score = last%s%s tp %d x dp %d: %ld windows, mse %.6g r2 %.6f\n",
                       dataset_seq_len(d) ? " (per-sequence targets)" : " (stream)",
                       constant ? " (constant head)" : "", g.tp, g.dp, n, e.mse, e.r2);
            eval_result_free(&e);
            data_batch_free(&db);
            model_free(&m);
            dist_grid_free(&g);
        }
}

// The last-step targets of the val windows, read from the CSV data this test wrote: the second
// half of the sequences, or rows [first + kT + T - 1] of the stream's val half.
static void check_scored_last_both(int world)
{
    char err[256];
    dataset* d = dataset_open(DIR "/seqs.h5", err, sizeof err);
    CHECK(d != NULL && dataset_seq_len(d) == T, "%s", d ? "seq_len" : err);
    float want[ROWS * 2];
    if (d) {
        long n = dataset_windows(d, SPLIT_VAL, T), first = NSEQ - NSEQ / 2;
        CHECK(n == NSEQ / 2 && dataset_windows(d, SPLIT_VAL, T + 1) == 0, "%ld windows", n);
        for (long k = 0; k < n; k++) want[k * 2] = seqs[first + k][2 * T], want[k * 2 + 1] = seqs[first + k][2 * T + 1];
        check_scored_last(d, n, want, world);
        dataset_free(&d);
    }
    d = dataset_open(DIR "/rows.h5", err, sizeof err);
    CHECK(d != NULL, "%s", err);
    if (!d) return;
    long n = dataset_windows(d, SPLIT_VAL, T), first = ROWS - ROWS / 2;
    for (long k = 0; k < n; k++)
        for (int o = 0; o < 2; o++) want[k * 2 + o] = csv[first + k * T + T - 1][2 + o];
    check_scored_last(d, n, want, world);
    dataset_free(&d);
}

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    make_data(rank);
    const char* files[3] = {DIR "/text.h5", DIR "/recs.h5", DIR "/rows.h5"};
    // Regression thrice: the model's outputs, a constant head, targets offset by 1e4.
    for (int task = TASK_LM; task <= TASK_REGRESS; task++)
        for (int variant = 0; variant <= (task == TASK_REGRESS ? 2 : 0); variant++) {
            char err[256];
            const int constant = variant; // 2: a head outputting (1e4, -0.5)
            dataset* d = dataset_open(variant == 2 ? DIR "/offset.h5" : files[task], err, sizeof err);
            CHECK(d != NULL, "%s", err);
            if (!d) break;
            long n = dataset_windows(d, SPLIT_VAL, T);
            reference ref = one_rank_reference(task, d, n, constant);
            if (constant == 1) check_constant_reference(&ref, n);
            for (int tp = 1; tp <= world; tp *= 2) {
                if (world % tp) continue;
                dist_grid g;
                dist_grid_init(MPI_COMM_WORLD, tp, 0, &g, err, sizeof err);
                check_layout(&g, task, d, n, &ref, constant);
                dist_grid_free(&g);
            }
            dataset_free(&d);
        }
    check_scored_last_both(world);
    int fails = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails != 0;
}
