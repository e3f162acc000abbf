// The run configuration: INI files (libinih) plus --set key=value overrides, one table of keys.
// Rank 0 parses and validates; the struct is then broadcast as bytes, so it holds no pointers.
#ifndef IO_CONFIG_H
#define IO_CONFIG_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "model/model.h"
#include "model/optim.h"

#define CONFIG_PATH 1024
// A seconds key set to `auto` (step_timeout): no number a user can write (the parser refuses
// infinities).
#define CONFIG_AUTO (-INFINITY)

typedef struct fnn_config {
    model_config model;  // V, D (dense input) and O come from the dataset, not the file
    optim_config optim;
    char data[CONFIG_PATH];      // dataset file from `fnn prepare`
    int batch;                   // global batch (sequences per step over all DP replicas)
    int seq_len;                 // T, steps per window
    int log_every;               // rank 0 prints a line every this many steps
    char metrics[CONFIG_PATH];   // JSON-lines file of per-step metrics, "" = none
    char ckpt_dir[CONFIG_PATH];  // checkpoint directory, "" = no checkpoints
    int ckpt_every;              // steps between checkpoints, 0 = only at the end
    int ckpt_keep;               // newest checkpoints kept
    char init_from[CONFIG_PATH]; // checkpoint whose parameters start the run (fine-tuning)
    char resume[CONFIG_PATH];    // "" = fresh, "auto" = newest in ckpt_dir, or a checkpoint file
    int new_head;                // with init_from: fresh output head (e.g. new number of classes)
    int head_ridge;              // with new_head: fit the head in closed form first (ridge)
    double ridge_lambda;         // regulariser of that fit
    char freeze[256];            // with init_from: comma-separated tensors or layers, e.g. "layer0,embed"
    int head_only_steps;         // with new_head: the first steps train only the new head and Wf
    double body_lr_scale;        // with init_from: factor (0, 1] on the lr of transferred tensors
    double l2_init;              // with init_from: lambda of lambda/2 ||theta - theta_0||^2 (L2-SP)
    int carry_state;             // carry h and f across consecutive windows of a stream
    int threads;                 // BLAS threads per rank, 0 = cores / ranks on this node
    int tp;                      // tensor-parallel ranks per replica (dp = world / tp)
    int eval_windows;            // windows of the validation split scored at the end, 0 = none
    int eval_every;              // steps between scores of those windows during training, 0 = off
    int ckpt_keep_best;          // keep the best-scored checkpoint, named by <ckpt_dir>/best
    int early_stop;              // scores without improvement that end training, 0 = off
    int ckpt_overwrite;          // a fresh run may remove other runs' checkpoints from ckpt_dir
    int ckpt_async;              // checkpoints written in the background (io/ckpt_async.h)
    int nonfinite;               // enum nonfinite_mode: a non-finite loss or gradient norm
    int nonfinite_max;           // with skip: the most such steps in a row before stopping
    double step_timeout;         // seconds a rank may spend in one step, 0 = no watchdog,
                                 // CONFIG_AUTO = from the steps' times (dist/watchdog.h)
    double ckpt_timeout;         // seconds a rank may spend in one save (or the wait for a
                                 // background one), 0 = unlimited, CONFIG_AUTO = dist/watchdog.h
    double feedback_noise;       // training: sigma of the Gaussian noise on the fed-back signal
    double dropout;              // training: p between layers and before the head (model/dropout.h)
    double dropout_recurrent;    // training: p on the recurrent input, one mask per window
    double teacher_prob;         // feedback_source = mix: chance of feeding back the target
    double teacher_prob_end;     // teacher_prob at the last step (linear), -1 = constant
    int score;                   // enum score_mode: the steps a regress loss scores
    uint64_t memory_limit;       // bytes a node may give the run, 0 = what it has (run/memory_plan.h)
    char bptt_memory[16];        // activations kept for backward: all, sqrt or N steps per
                                 // segment, the rest recomputed (model_bptt_keep)
} fnn_config;

enum nonfinite_mode { NONFINITE_STOP, NONFINITE_SKIP };
// regress: every step's target, or only each window's last step (per-sequence targets).
enum score_mode { SCORE_ALL, SCORE_LAST };

// Fills the defaults (configs/tiny.ini lists every key with them).
void config_defaults(fnn_config* c);

// Parses an INI file into c (sections are allowed and ignored; keys are global). Returns 0, or
// -1 with a one-line message naming the file, line and key in err.
int config_load(fnn_config* c, const char* path, char* err, size_t errlen);

// Applies one "key=value" override. Returns 0 or -1 with a message naming the key in err.
int config_set(fnn_config* c, const char* keyval, char* err, size_t errlen);

// Range and consistency checks that need all keys (hidden > 0, lr >= 0, ...). 0 or -1 + err.
int config_validate(const fnn_config* c, char* err, size_t errlen);

// Writes every key = value line, the same format config_load reads.
void config_print(const fnn_config* c, FILE* out);

// Every key with its default (or, for enumerations, the accepted names) and a line of help.
void config_help(FILE* out);

// Name <-> value of the enumerated keys, for config_print, checkpoints and inspect.
const char* config_enum_name(const char* key, int value);
int config_enum_value(const char* key, const char* name); // -1 if unknown
// The accepted names of an enumerated key, "elman|gru|...", for a message (empty if none).
void config_enum_names(const char* key, char* buf, size_t len);

#endif
