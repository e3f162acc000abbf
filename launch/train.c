// fnn train: the training loop, logging, metrics, checkpoints and preemption by signal.
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include "dist/watchdog.h"
#include "io/checkpoint.h"
#include "io/ckpt_async.h"
#include "io/ckpt_dir_own.h"
#include "launch/commands.h"
#include "run/eval_pass.h"
#include "run/feedback_schedule.h"
#include "run/finetune.h"
#include "run/guard.h"
#include "run/metrics.h"
#include "run/memory_plan.h"
#include "run/resume.h"
#include "run/ridge_head.h"
#include "run/score.h"
#include "run/setup.h"
#include "run/startup.h"
#include "model/init.h"
#include "model/optim.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct run {
    fnn_config c;
    dist_grid g;
    dataset* d;
    model m;
    data_batch db;
    ckpt_train st;
    finetune ft;
    FILE* metrics;
    guard guard;
    plan plan;
    char resumed[CONFIG_PATH + 32]; // the checkpoint resumed from, "" = a fresh start
    init_seconds init;              // a fresh start's initialisation by kind
    double best;                    // eval_every: the lowest validation loss so far (or INFINITY)
    long best_step;                 // the step it was scored at
    int since_best;                 // evaluations since then without improvement
    long best_pending;              // ckpt_keep_best: the step whose save "best" names, -1 = none
    ckpt_async* async;              // ckpt_async: the staging and the save in flight
} run;

static void load_start(run* r)
{
    char err[512], *path = r->resumed;
    if (!strcmp(r->c.resume, "auto")) {
        int found = ckpt_dir_latest(r->c.ckpt_dir, path, sizeof r->resumed, err, sizeof err);
        // Only rank 0's choice counts (below): its failure alone ends the job.
        if (found == -2 && r->g.world_rank == 0) dist_fail("%s", err);
        if (found == -1 && r->g.world_rank == 0)
            printf("resume = auto: no checkpoint in '%s', starting fresh\n", r->c.ckpt_dir);
    } else {
        snprintf(path, sizeof r->resumed, "%s", r->c.resume);
    }
    // Rank 0's choice: ranks that see different directories must not open different files.
    dist_bcast_bytes(path, sizeof r->resumed, &r->g);
    if (path[0]) {
        resume_load(path, &r->m, &r->c, &r->st, &r->ft);
        if (r->st.optimizer != r->c.optim.kind)
            dist_fail_all("%s was trained with optimizer = %s, the config says %s", path,
                          config_enum_name("optimizer", r->st.optimizer),
                          config_enum_name("optimizer", r->c.optim.kind));
        if (r->g.world_rank == 0) printf("resumed from %s at step %ld\n", path, r->st.step);
        return;
    }
    if (model_init_params_timed(&r->m, &r->init)) dist_fail_all("out of memory initialising the parameters");
    if (r->c.init_from[0]) finetune_load(&r->ft, &r->m, &r->c);
}

// ckpt_async: waits for the save in flight and commits it.
static void save_wait(run* r)
{
    char err[512];
    if (!r->async) return;
    long step = ckpt_async_wait(r->async, err, sizeof err);
    if (step < 0) dist_fail_all("%s", err);
    double stall, write;
    ckpt_async_times(r->async, &stall, &write);
    if (step && r->g.world_rank == 0)
        printf("checkpoint %s/step-%08ld.h5 (stall %.3f s, written in the background in %.3f s)\n",
               r->c.ckpt_dir, step, stall, write);
}

// The checkpoint's bytes at most, for the automatic limit of a save (ckpt_timeout): every rank's
// shard of the state as if none were a replica's.
static double save_bytes(const run* r)
{
    return (double)r->g.world_size * (double)ckpt_async_bytes(&r->m, r->c.optim.kind);
}

// The end of the run: the save still written in the background, if any, is waited for and
// committed within a save's limit (a rank stalled in its write ends the job, not hangs it).
static void finish_saves(run* r)
{
    if (!r->async) return;
    dist_watchdog_save(r->st.step, save_bytes(r));
    save_wait(r);
    dist_watchdog_disarm();
}

static void save_now(run* r, long step)
{
    char err[512];
    finetune_ckpt(&r->ft, &r->c, step, &r->m, &r->st);
    guard_finite_state(&r->m, step, r->c.ckpt_dir);
    // Staged once, at the first save; a rank without room stops every rank with its message.
    if (r->c.ckpt_async && !r->async &&
        dist_comm_agree(!(r->async = ckpt_async_new(&r->m, r->c.optim.kind, err, sizeof err)), err, sizeof err, r->g.world))
        dist_fail_all("%s", err);
    save_wait(r); // the save in flight commits first: one at a time
    if (r->async ? ckpt_async_save(r->async, r->c.ckpt_dir, r->c.ckpt_keep, &r->m, &r->c, &r->st, err, sizeof err)
                 : ckpt_dir_save(r->c.ckpt_dir, r->c.ckpt_keep, &r->m, &r->c, &r->st, err, sizeof err))
        dist_fail_all("%s", err);
    if (r->g.world_rank == 0 && !r->async) printf("checkpoint %s/step-%08ld.h5\n", r->c.ckpt_dir, step);
    if (r->best_pending != step) return;
    save_wait(r); // "best" names a committed file
    if (ckpt_dir_point_best(r->c.ckpt_dir, step, r->best, &r->g, err, sizeof err)) dist_fail_all("%s", err);
    if (r->g.world_rank == 0) printf("best checkpoint %s/step-%08ld.h5 (val loss %.9g)\n", r->c.ckpt_dir, step, r->best);
    r->best_pending = -1;
}

static void save(run* r, long step)
{
    r->st.step = r->st.cursor = step;
    if (!r->c.ckpt_dir[0]) return;
    // Saving is I/O, not a step: timed against its own limit (ckpt_timeout), the wait for the
    // save before it in the background included, so that a rank stalled in it ends the job.
    dist_watchdog_save(step, save_bytes(r));
    save_now(r, step);
    dist_watchdog_disarm();
}

// The validation windows scored: eval_windows of them, at most all the split has.
static long val_windows(const run* r)
{
    long n = dataset_windows(r->d, SPLIT_VAL, r->c.seq_len);
    return r->c.eval_windows < n ? r->c.eval_windows : n;
}

// Copies the carried state, every layer's h0r (rows x H) and s0r (rows x state Hl) and f0r
// (rows x O) of this rank (rows: all its micro-batches'), into held (back = 0) or back from it
// (back = 1). Returns the count of values; held NULL: only that.
static size_t move_state(model* m, real* held, int back)
{
    const int L = m->c.L;
    const size_t rows = (size_t)model_rank_rows(m);
    real* part[2 * MODEL_MAX_LAYERS + 1];
    size_t n[2 * MODEL_MAX_LAYERS + 1], at = 0;
    for (int l = 0; l < L; l++) {
        part[2 * l] = m->h0r[l], n[2 * l] = rows * m->c.H;
        part[2 * l + 1] = m->s0r[l], n[2 * l + 1] = rows * m->cell->state * m->Hl;
    }
    part[2 * L] = m->f0r, n[2 * L] = rows * m->c.O;
    for (int k = 0; k <= 2 * L; at += n[k], k++)
        if (held && n[k]) memcpy(back ? part[k] : held + at, back ? held + at : part[k], n[k] * sizeof(real));
    return at;
}

// Scores the validation windows after `step` (as `fnn eval` does), prints and logs the score, and
// follows the best one. Returns 1 when early_stop ends the run here.
static int eval_during(run* r, long step)
{
    // Scoring is not a step: the step watchdog does not time it.
    dist_watchdog_disarm();
    const long n = val_windows(r);
    // Scoring resets the state before each window; carried rows go on from theirs.
    real* held = r->c.carry_state ? malloc(move_state(&r->m, NULL, 0) * sizeof(real)) : NULL;
    if (r->c.carry_state && !held) dist_fail("out of memory");
    if (held) move_state(&r->m, held, 0);
    eval_result e = evaluate(&r->m, r->d, &r->db, SPLIT_VAL, n, 0);
    if (held) move_state(&r->m, held, 1);
    free(held);
    double loss = e.loss;
    // The decisions below (save, stop) must be the same on every rank: rank 0's score decides.
    dist_bcast_bytes(&loss, sizeof loss, &r->g);
    if (r->g.world_rank == 0) {
        printf("eval step %ld: val loss %.9g over %ld windows", step, e.loss, n);
        eval_print_measures(stdout, &e);
        printf("\n");
        fflush(stdout);
    }
    if (r->metrics) {
        char fields[512];
        FILE* f = fmemopen(fields, sizeof fields, "w");
        if (!f) dist_fail("out of memory");
        eval_print_json_fields(f, &e, "val_");
        fclose(f);
        metrics_line(r->metrics, r->c.metrics, "{\"step\": %ld, \"val_windows\": %ld, %s}\n", step, n, fields);
    }
    eval_result_free(&e);
    if (loss < r->best) {
        r->best = loss, r->best_step = step, r->since_best = 0;
        if (r->c.ckpt_keep_best) r->best_pending = step;
        return 0;
    }
    if (!r->c.early_stop || ++r->since_best < r->c.early_stop) return 0;
    if (r->g.world_rank == 0)
        printf("early stop at step %ld: no improvement in %d evaluations (best val loss %.9g at step %ld)\n",
               step, r->since_best, r->best, r->best_step);
    return 1;
}

// The best score so far of a resumed run with ckpt_keep_best, from the directory's "best"; the
// evaluations since, from the steps (every eval_every-th).
static void resume_best(run* r)
{
    struct { double score; long step; int found; } b = {INFINITY, 0, 0};
    if (r->g.world_rank == 0 && r->resumed[0] && r->c.ckpt_keep_best)
        b.found = !ckpt_dir_best(r->c.ckpt_dir, r->st.run_id, &b.step, &b.score);
    // Rank 0 alone read the directory.
    dist_bcast_bytes(&b, sizeof b, &r->g);
    r->best_pending = -1;
    r->best = b.found ? b.score : INFINITY;
    r->best_step = b.step;
    r->since_best = b.found ? (int)(r->st.step / r->c.eval_every - b.step / r->c.eval_every) : 0;
    if (b.found && r->g.world_rank == 0)
        printf("best so far: val loss %.9g at step %ld, %d evaluations ago\n", r->best, r->best_step, r->since_best);
}

static void log_step(run* r, long s, double loss, double gnorm, double lr, double step_s,
                     double elapsed, long done)
{
    if (r->g.world_rank != 0) return;
    double tok_s = (double)r->c.batch * r->c.seq_len / step_s;
    // JSON has no NaN: a skipped step (nonfinite = skip) says so instead of its loss.
    if (r->metrics && !(isfinite(loss) && isfinite(gnorm)))
        metrics_line(r->metrics, r->c.metrics, "{\"step\": %ld, \"skipped\": true, \"lr\": %.9g}\n",
                     s + 1, lr);
    else if (r->metrics)
        metrics_line(r->metrics, r->c.metrics,
                     "{\"step\": %ld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, "
                     "\"tokens_per_s\": %.6g, \"step_s\": %.6g, \"comm_s\": %.6g}\n",
                     s + 1, loss, lr, gnorm, tok_s, step_s, r->g.comm_seconds);
    if ((s + 1) % r->c.log_every && s + 1 != r->c.optim.steps) return;
    double eta = elapsed / done * (r->c.optim.steps - s - 1);
    printf("step %ld/%d  loss %.4f  tok/s %.0f  lr %.3e  eta %.0fs\n", s + 1, r->c.optim.steps,
           loss, tok_s, lr, eta);
    fflush(stdout);
}

// The window of step s for the micro-batch selected in r->m: its rows of the global batch.
typedef struct step_batch {
    run* r;
    long s;
    model_batch bt;
} step_batch;

static const model_batch* micro_batch(model* m, void* arg)
{
    step_batch* sb = arg;
    run* r = sb->r;
    const long row0 = model_micro_row0(m);
    dataset_train_batch(r->d, &r->db, r->c.model.seed, sb->s, (int)row0, r->c.carry_state);
    sb->bt = feedback_plan(&r->db.view, &r->c, sb->s, row0);
    return &sb->bt;
}

// One optimiser step on the window of step s (accum_steps micro-batches). Returns the global
// mean loss.
static double train_step(run* r, long s, double* gnorm, double* lr)
{
    model* m = &r->m;
    if (!r->c.carry_state) model_reset_state(m);
    const double* scale = finetune_plan(&r->ft, &r->c, s, m);
    step_batch sb = {.r = r, .s = s};
    int bad;
    double loss = model_accumulate(m, micro_batch, &sb, &bad);
    finetune_regularise(&r->ft, &r->c, m);
    *gnorm = optim_grad_norm(m);
    // The guard looks for bad data in the window whose loss was not finite, if an earlier
    // micro-batch's than the last one (in the buffers).
    if (!(isfinite(loss) && isfinite(*gnorm)) && bad >= 0 && bad + 1 < m->accum) {
        model_select_micro(m, bad);
        micro_batch(m, &sb);
        model_select_micro(m, 0);
    }
    if (!guard_step(&r->guard, s, loss, *gnorm, &sb.bt, m)) {
        // Skipped: parameters and moments stay; the carried state restarts from zero, which a
        // resumed run repeats exactly (the state is saved with the checkpoint).
        *lr = optim_lr(&r->c.optim, s);
        if (r->c.carry_state) model_reset_state(m);
        return loss;
    }
    *lr = optim_step(m, &r->c.optim, s, *gnorm, scale, r->ft.start);
    if (r->c.carry_state) model_carry_state(m);
    return loss;
}

// A signal during the setup, before the first step: a fresh start saves what it has (step 0:
// the initial or transferred parameters, a fitted head), which a resume continues exactly; a
// resumed run's checkpoint is already the latest. Returns 1.
static int stop_before_steps(run* r)
{
    long first = r->st.step;
    if (!r->c.ckpt_dir[0])
        dist_fail_all("stopped by a signal before step %ld with no ckpt_dir: nothing saved", first + 1);
    if (r->g.world_rank == 0)
        printf("signal received before step %ld: %s\n", first + 1, r->resumed[0] ? "stop (resume continues from the checkpoint resumed from)" : "checkpoint and stop");
    if (!r->resumed[0]) save(r, first);
    return 1;
}

// Returns 1 when a signal stopped the run after its checkpoint, 0 when it ran to the end.
static int train_loop(run* r)
{
    // The ranks agree on a signal any of them got during the setup.
    if (dist_any(stop_requested, &r->g)) return stop_before_steps(r);
    double t_start = dist_wtime();
    long first = r->st.step;
    for (long s = first; s < r->c.optim.steps; s++) {
        dist_watchdog_arm(s + 1);
        double t0 = dist_wtime(), gnorm, lr;
        dist_reset_counts(&r->g);
        double loss = train_step(r, s, &gnorm, &lr);
        double now = dist_wtime();
        log_step(r, s, loss, gnorm, lr, now - t0, now - t_start, s + 1 - first);
        int at_end = s + 1 == r->c.optim.steps;
        int early = r->c.eval_every && ((s + 1) % r->c.eval_every == 0 || at_end) && eval_during(r, s + 1);
        // The best score's checkpoint and the last one before an early stop are saved now.
        int saved = !at_end && ((r->c.ckpt_every && (s + 1) % r->c.ckpt_every == 0) ||
                                r->best_pending == s + 1 || early);
        if (saved) save(r, s + 1);
        if (early && !at_end) return 0;
        // A signal reaches the ranks at different moments; they agree on one step boundary.
        if (!at_end && dist_any(stop_requested, &r->g)) {
            if (!r->c.ckpt_dir[0])
                dist_fail_all("stopped by a signal at step %ld with no ckpt_dir: nothing saved", s + 1);
            if (r->g.world_rank == 0) printf("signal received: checkpoint at step %ld and stop\n", s + 1);
            dist_watchdog_disarm();
            // On a ckpt_every step the checkpoint is written already: once is enough (a large
            // model's second write would eat the lead time before the kill).
            if (!saved) save(r, s + 1);
            return 1;
        }
    }
    dist_watchdog_disarm();
    // A head fitted in closed form with steps = 0 is a result of its own.
    if (r->c.optim.steps > first || (r->c.head_ridge && !r->resumed[0])) save(r, r->c.optim.steps);
    return 0;
}

static void final_eval(run* r)
{
    long n = val_windows(r);
    if (n <= 0) return;
    model_reset_state(&r->m);
    eval_result e = evaluate(&r->m, r->d, &r->db, SPLIT_VAL, n, 0);
    if (r->g.world_rank == 0) {
        printf("val: %ld windows  loss %.4f", n, e.loss);
        eval_print_measures(stdout, &e);
        printf("\n");
    }
    eval_result_free(&e);
}

// The memory plan, printed and checked before the model is allocated.
static void plan_memory(run* r, double baseline)
{
    const fnn_config* c = &r->c;
    const dist_grid* g = &r->g;
    plan_layout lay;
    char err[256];
    if (plan_layout_grid(&lay, g, c->model.H, c->batch, err, sizeof err) ||
        model_check_rows(&c->model, c->batch, g->dp, err, sizeof err))
        dist_fail_all("%s", err);
    const plan_run run = plan_run_of(c, baseline, (double)dataset_bytes(r->d));
    plan_compute(&r->plan, &c->model, c->seq_len, c->batch, &lay, &run);
    if (g->world_rank == 0) plan_print(&r->plan, stdout);
    plan_check(&r->plan, (double)c->memory_limit, &r->g);
}

int cmd_train(int argc, char** argv, dist_grid* world)
{
    static const char* const known[] = {"--config", "--set", NULL};
    // From the start: a signal during the setup (claim, data, init_from, the ridge fit) must
    // stop the run as one during the steps does, not kill it.
    signal(SIGTERM, on_signal);
    signal(SIGUSR1, on_signal);
    signal(SIGINT, on_signal);
    setup_check_opts(argc, argv, "train", known);
    run* r = calloc(1, sizeof *r);
    if (!r) dist_fail("out of memory");
    startup su;
    startup_begin(&su);
    setup_config(argc, argv, &r->c, world);
    setup_grid(world, &r->g, r->c.tp);
    setup_check_outputs(argc, argv, &r->c, world);
    char err[512];
    if (r->c.ckpt_dir[0] && ckpt_dir_claim(r->c.ckpt_dir, &r->g, err, sizeof err)) dist_fail_all("%s", err);
    int threads = setup_threads(&r->g, r->c.threads);
    startup_mark(&su, "setup");
    const double baseline = plan_rss(); // before the data and the model
    r->d = setup_data(&r->c, world);
    score_check(&r->c, r->d, r->c.seq_len);
    if (dataset_windows(r->d, SPLIT_TRAIN, r->c.seq_len) <= 0)
        dist_fail_all("%s: the train split is shorter than one window of seq_len = %d", r->c.data, r->c.seq_len);
    if (r->c.eval_every && dataset_windows(r->d, SPLIT_VAL, r->c.seq_len) <= 0)
        dist_fail_all("eval_every = %d: %s has no validation window of seq_len = %d", r->c.eval_every, r->c.data, r->c.seq_len);
    startup_mark(&su, "data");
    plan_memory(r, baseline);
    if (model_init_keep(&r->m, &r->c.model, &r->g, r->c.seq_len, r->c.batch, r->plan.run.keep, 0,
                        err, sizeof err))
        dist_fail_all("%s", err);
    if (data_batch_init(&r->db, r->d, r->c.seq_len, r->m.B)) dist_fail("out of memory for the batch");
    if (r->c.score == SCORE_LAST) data_batch_score_last(&r->db);
    r->st = (ckpt_train){.rng_seed = r->c.model.seed, .writer_tp = r->g.tp, .writer_dp = r->g.dp,
                         .global_batch = r->c.batch, .seq_len = r->c.seq_len,
                         .carry_state = r->c.carry_state, .optimizer = r->c.optim.kind};
    finetune_scratch(&r->ft, &r->m);
    startup_mark(&su, "allocation");
    load_start(r);
    startup_mark(&su, r->resumed[0] ? "checkpoint load" : "init");
    if (!r->resumed[0]) startup_part(&su, "QR", r->init.qr), startup_part(&su, "normal", r->init.normal);
    if (r->c.ckpt_dir[0] && ckpt_dir_adopt(r->c.ckpt_dir, r->resumed[0] ? r->resumed : NULL, r->c.ckpt_overwrite,
                                           r->c.init_from[0] ? r->c.init_from : NULL,
                                           r->st.run_id, &r->g, err, sizeof err))
        dist_fail_all("%s", err);
    resume_best(r);
    r->guard = (guard){.mode = r->c.nonfinite, .max = r->c.nonfinite_max};
    finetune_freeze(&r->ft, &r->m, &r->c);
    if (r->g.world_rank == 0) {
        printf("fnn train: %d ranks (tp %d x dp %d), %d BLAS threads each, %zu parameters per rank\n",
               r->g.world_size, r->g.tp, r->g.dp, threads, r->m.nparams);
        config_print(&r->c, stdout);
        if (r->c.metrics[0]) r->metrics = metrics_open(r->c.metrics, r->st.step != 0);
    }
    // A resumed checkpoint holds its head already, even at step 0.
    if (r->c.head_ridge && !r->resumed[0]) {
        ridge_fit_head(&r->m, r->d, &r->db, r->c.ridge_lambda);
        startup_mark(&su, "ridge head");
    }
    startup_print(&su, &r->g);
    dist_watchdog_start(&r->g, r->c.step_timeout, r->c.ckpt_dir[0] ? r->c.ckpt_timeout : 0);
    int stopped = train_loop(r);
    finish_saves(r);
    // The peak before the validation pass, whose `val:` line stays the run's last (docs/cli.md);
    // the pass runs on the model's own buffers.
    plan_report_peak(&r->plan, &r->g);
    if (!stopped) final_eval(r);
    if (r->metrics) metrics_close(r->metrics, r->c.metrics);
    data_batch_free(&r->db);
    finetune_free(&r->ft);
    ckpt_async_free(r->async);
    model_free(&r->m);
    dataset_free(&r->d);
    dist_grid_free(&r->g);
    free(r);
    // Slurm scripts requeue on this status only: stopped by a signal, checkpoint written.
    return stopped ? EX_TEMPFAIL : 0;
}
