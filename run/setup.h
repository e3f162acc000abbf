// What train, eval, sample and bench share: the config from the command line (parsed on rank 0,
// broadcast to all), the grid, BLAS threads, and the model config a dataset implies.
#ifndef RUN_SETUP_H
#define RUN_SETUP_H

#include "io/checkpoint.h"
#include "io/config.h"
#include "io/dataset.h"

// --config FILE and --set key=value ... into c; rank 0 parses and validates, every rank gets the
// result; any error ends the job with one message.
void setup_config(int argc, char** argv, fnn_config* c, dist_grid* world);

// What train writes (metrics, ckpt_dir) checked on rank 0 before anything is opened: each of
// the right kind (a regular file, a directory) or not there yet, and none the same file as an
// input (--config, data, init_from, resume). Every rank gets the verdict; a refusal ends the
// job with one line. Collective over world.
void setup_check_outputs(int argc, char** argv, const fnn_config* c, dist_grid* world);
// The same for one output out (named what) against n inputs (NULL entries skipped).
void setup_refuse_overwrite(const char* what, const char* out, const char* const* inputs, int n,
                            dist_grid* world);

// FNN_SHARE_DP of rank 0's environment (every rank gets it): the most DP replicas of a node
// that share memory, 0 = all. Collective over world.
int setup_share_dp(dist_grid* world);

// The grid of c->tp over the world, or the job ends with a message.
void setup_grid(dist_grid* world, dist_grid* g, int tp);

// BLAS threads: threads, or the node's cores / ranks on the node when threads = 0.
int setup_threads(const dist_grid* g, int threads);

// Opens c->data and fills the dataset-dependent fields of c->model (V, D, O); refuses a dataset
// of the wrong kind for the task. The job ends with a message on error. Collective over world.
dataset* setup_data(fnn_config* c, const dist_grid* world);

// A checkpoint's model (ck, from path) against the one the run builds (want), the one comparison
// of models: SETUP_SAME (resume, eval): the same task, shapes and wiring; SETUP_TRANSFER
// (init_from): what no new tensor can absorb (cell, hidden, layers, activation) and the input,
// task and outputs, which SETUP_TRANSFER_NEW_HEAD lets differ. Returns 0, or ends the job with
// one line naming both values.
enum { SETUP_SAME, SETUP_TRANSFER, SETUP_TRANSFER_NEW_HEAD };
// A model's input as setup_check_model names it: "tokens (embed D)" or "dense (D inputs)".
void setup_input_text(const model_config* c, char* buf, size_t len);
int setup_check_model(const char* path, const model_config* ck, const model_config* want, int how);

// Value of "--name" in argv (the next argument), or def. Ends the job if the value is missing.
const char* setup_opt(int argc, char** argv, const char* name, const char* def);
int setup_flag(int argc, char** argv, const char* name);
// Refuses any "--x" in argv not in the NULL-terminated list of known option names, an option
// other than a flag (--json, --ckpt) without its value, and any argument that is not an option
// or its value.
void setup_check_opts(int argc, char** argv, const char* cmd, const char* const* known);
// The number value of option name, checked whole as written: not a number, out of range for the
// type (no clamping, no wrap into int) or below min ends the job with one line.
long setup_long(const char* name, const char* value, long min);
int setup_int(const char* name, const char* value, int min);
double setup_double(const char* name, const char* value, double min);

// Reads the checkpoint at path, makes the grid (tp over the world) and a model of its config for
// windows of T steps (0: the checkpoint's seq_len) and global batch Bglobal, and loads the
// parameters, opening the file once. The job ends with a message on any error.
void setup_open_checkpoint(const char* path, dist_grid* world, dist_grid* g, int tp, int T, int Bglobal, model* m,
               model_config* mc, ckpt_train* st);
// The same in two halves, for a caller that needs the metadata before it can size the model
// (eval: the dataset's windows): setup_ckpt_open opens path and reads mc and st (err, of errlen
// bytes, is the file's message buffer until the close); setup_load_checkpoint builds g and m,
// loads the parameters and closes f.
ckpt_file* setup_ckpt_open(const char* path, dist_grid* world, model_config* mc, ckpt_train* st,
                           char* err, size_t errlen);
void setup_load_checkpoint(ckpt_file* f, const char* err, dist_grid* world, dist_grid* g, int tp,
                           int T, int Bglobal, model* m, const model_config* mc,
                           const ckpt_train* st);

#endif
