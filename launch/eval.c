// fnn eval: loss and the task's measures (bits per character; accuracy and confusion matrix;
// MSE and R^2) of a checkpoint on a dataset, at any layout, as text or JSON; optionally the
// gradient of that loss for every parameter, for checking fnn against another implementation.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/checkpoint.h"
#include "launch/commands.h"
#include "run/eval_pass.h"
#include "run/score.h"
#include "run/setup.h"

int cmd_eval(int argc, char** argv, dist_grid* world)
{
    static const char* const known[] = {"--checkpoint", "--data", "--split", "--windows",
                                        "--grads", "--tp", "--batch", "--seq-len", "--threads", "--json",
                                        NULL};
    setup_check_opts(argc, argv, "eval", known);
    const char* path = setup_opt(argc, argv, "--checkpoint", NULL);
    const char* data = setup_opt(argc, argv, "--data", NULL);
    if (!path || !data) dist_fail_all("usage: fnn eval --checkpoint C --data D [--split val|train] "
                                      "[--windows N] [--grads OUT.h5] [--tp N] [--batch B] [--json]");
    const char* split_name = setup_opt(argc, argv, "--split", "val");
    if (strcmp(split_name, "val") && strcmp(split_name, "train"))
        dist_fail_all("--split %s: must be val or train", split_name);
    int split = strcmp(split_name, "val") ? SPLIT_TRAIN : SPLIT_VAL;
    int tp = setup_int("--tp", setup_opt(argc, argv, "--tp", "1"), 1);
    int batch = setup_int("--batch", setup_opt(argc, argv, "--batch", "0"), 0);
    int T = setup_int("--seq-len", setup_opt(argc, argv, "--seq-len", "0"), 0);
    const char* grads = setup_opt(argc, argv, "--grads", NULL);
    const int json = setup_flag(argc, argv, "--json");
    const char* inputs[] = {path, data};
    if (grads) setup_refuse_overwrite("--grads", grads, inputs, 2, world);

    // The checkpoint's window length and the dataset decide how many windows there are; the
    // checkpoint says which steps a regression scores.
    char err[512];
    model_config mc;
    ckpt_train st;
    ckpt_file* f = setup_ckpt_open(path, world, &mc, &st, err, sizeof err);
    if (T == 0) T = st.seq_len;
    fnn_config c;
    config_defaults(&c);
    c.model = mc;
    c.score = st.score;
    snprintf(c.data, sizeof c.data, "%s", data);
    dataset* d = setup_data(&c, world);
    score_check(&c, d, T);
    setup_check_model(path, &mc, &c.model, SETUP_SAME);
    long avail = dataset_windows(d, split, T);
    long n = (long)setup_long("--windows", setup_opt(argc, argv, "--windows", "0"), 0);
    if (n == 0 || n > avail) n = avail;
    if (n <= 0) dist_fail_all("%s: the %s split has no window of %d steps", data, split_name, T);
    // Gradients come from one pass over all n windows: backward reduces over DP once per pass.
    int dp = world->world_size / tp > 0 ? world->world_size / tp : 1;
    long rows = grads ? n : 16;
    if (batch == 0) batch = (int)(dp * ((rows + dp - 1) / dp));
    else if (grads && batch < n) dist_fail_all("--batch %d: --grads takes all %ld windows in one batch", batch, n);

    dist_grid g;
    model m;
    setup_load_checkpoint(f, err, world, &g, tp, T, batch, &m, &mc, &st);
    setup_threads(&g, setup_int("--threads", setup_opt(argc, argv, "--threads", "0"), 0));
    data_batch db;
    if (data_batch_init(&db, d, m.T, m.B)) dist_fail("out of memory for the batch");
    if (c.score == SCORE_LAST) data_batch_score_last(&db);
    eval_result e = evaluate(&m, d, &db, split, n, grads != NULL);
    if (g.world_rank == 0 && json) eval_print_json(stdout, &e, d, path, data, split_name);
    if (g.world_rank == 0 && !json) {
        printf("loss %.9g over %ld windows of %d steps (%s split)", e.loss, n, m.T, split_name);
        eval_print_measures(stdout, &e);
        printf("\n");
        eval_print_confusion(stdout, &e, d);
    }
    if (!isfinite(e.loss))
        dist_fail_all("%s: the loss on %s is %g: non-finite values in the model's computation",
                      path, data, e.loss);
    eval_result_free(&e);
    if (grads && ckpt_save_grads(grads, &m, err, sizeof err)) dist_fail_all("%s", err);
    data_batch_free(&db);
    dataset_free(&d);
    model_free(&m);
    dist_grid_free(&g);
    return 0;
}
