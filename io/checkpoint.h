// Checkpoints: one HDF5 file written collectively with MPI-IO (docs/checkpoints.md). Every tensor
// is stored in its full logical shape; each rank writes and reads only its piece (model_tensor),
// so a file written at one TP x DP layout loads at any other whose tp divides H.
//
//   /config                attributes: every model_config field by name (task, activation, ... as
//                          strings; V, D, H, L, O, seed as integers) plus "format" = "fnn-checkpoint",
//                          "version" = 2, the full run config as text ("run_config"), the
//                          steps a regression scores ("score": all or last), and the
//                          build that wrote it: fnn_version, build_compiler, build_flags,
//                          gemm_kernel
//   /params/<tensor name>  e.g. /params/layer0/Wh, /params/head/Wo, /params/embed
//   /optim/m/<name>, /optim/v/<name> (Adam, AdamW), /optim/momentum/<name> (SGD)
//   /finetune              (fine-tuning runs) attributes "transferred" (names of the tensors taken
//                          from init_from) and "optim_state" (names of the tensors with optimiser
//                          state in /optim: frozen ones have none) and "optim_start"
//                          ("name=step,...": the step at which each of those began training,
//                          where Adam's bias correction counts from); /finetune/theta0/<name>: the
//                          transferred tensors as loaded, when l2_init keeps them
//   /train                 attributes: step, epoch, cursor, rng_seed, writer_tp, writer_dp,
//                          global_batch, seq_len, carry_state, optimizer, run_id (io/ckpt_dir_own.h);
//                          with carried state the datasets
//                          /train/state/h<l> (Bglobal x H) and /train/state/f (Bglobal x O)
//
// Every dataset carries the attribute fnn_digest (h5.h), checked whenever it is read.
//
// All functions are collective over m->g->world (or the given grid) and return 0, or -1 with a
// one-line message in err that names the file and what is wrong.
#ifndef IO_CHECKPOINT_H
#define IO_CHECKPOINT_H

#include <stddef.h>
#include "io/config.h"
#include "model/model.h"

typedef struct ckpt_train {
    long step;         // optimiser steps done
    long epoch;        // passes over the data (informational)
    long cursor;       // data position: the loader is keyed by step, so cursor = step
    uint64_t rng_seed; // the counter-based generators need only the seed
    int writer_tp, writer_dp;
    int global_batch, seq_len, carry_state;
    int optimizer;     // enum optim_kind: which /optim datasets the file holds
    int score;         // enum score_mode, /config/score (read; ckpt_save writes cfg->score)
    char run_id[24];   // lineage: chosen at a fresh start, kept on resume ("" = not recorded)
    // Fine-tuning (run/finetune.h), written by ckpt_save when transferred is set: per tensor of
    // the model, taken from init_from; has optimiser state (NULL: all); the step it began
    // training (of those with state); theta0 (params layout, or NULL): the transferred tensors'
    // values as loaded.
    const unsigned char* transferred;
    const unsigned char* optim_state;
    const long* start;
    const real* theta0;
} ckpt_train;

// Writes params, optimiser state (if with_optim), train attributes and carried state (if
// st->carry_state) to path. Writes "<path>.tmp" first, closes (flushes) it, then renames, so an
// interrupted save never touches an existing file at path.
int ckpt_save(const char* path, const model* m, const fnn_config* cfg, const ckpt_train* st,
              int with_optim, char* err, size_t errlen);

// Loading opens the file once (a collective open is a metadata storm on a parallel filesystem):
// ckpt_open, then the reads a load needs in this order (each collective over the file's
// communicator, m->g->world where a model is given), then ckpt_close.
typedef struct ckpt_file ckpt_file;
// Opens path read-only: the file, or NULL with a one-line message in err (every rank alike). err
// stays the file's message buffer until ckpt_close.
ckpt_file* ckpt_open(const char* path, MPI_Comm comm, char* err, size_t errlen);
// Reads /config into mc (and the stored run config text into run_config if not NULL, up to
// run_len bytes) and /train into st (if not NULL). Refuses files that are not fnn checkpoints.
// Returns ckpt_ok: the metadata sizes what comes next.
int ckpt_get_meta(ckpt_file* f, model_config* mc, ckpt_train* st, char* run_config, size_t run_len);
// The reads below record a failure in the file's message and go on (every rank must make the
// same calls); their data is checked against the digests at ckpt_close, which is the verdict.
// Loads the parameter tensors k of m with only[k] != 0 (only NULL: all of them; the others are
// left as they are), and the optimiser moments when with_optim (of the tensors that have them:
// /finetune/optim_state; the others keep theirs). Shapes must match m's full logical shapes: a
// mismatch names the tensor and both shapes.
void ckpt_get_params(ckpt_file* f, model* m, const unsigned char* only, int with_optim);
// Reads /finetune: transferred[k] for every tensor of m, start[k] (the step tensor k began
// training; -1 for those without optimiser state), and with theta0 (params layout) the
// transferred tensors' /finetune/theta0 values. A file without /finetune is refused.
void ckpt_get_finetune(ckpt_file* f, model* m, unsigned char* transferred, long* start, real* theta0);
// Loads the carried hidden state of this rank's batch rows (when resuming a carry_state run).
// Refuses when the stored global batch differs.
void ckpt_get_state(ckpt_file* f, model* m);
// 0 when every read so far succeeded on every rank, else -1 (the message in the err given to
// ckpt_open, the same on every rank). Collective.
int ckpt_ok(ckpt_file* f);
// Checks the digests of what was read, closes and frees f: 0, or -1 with the message in err.
int ckpt_close(ckpt_file* f);

// One-call forms, each one open: ckpt_get_meta and ckpt_get_params of path.
int ckpt_read_meta(const char* path, MPI_Comm comm, model_config* mc, ckpt_train* st,
                   char* run_config, size_t run_len, char* err, size_t errlen);
int ckpt_load(const char* path, model* m, const unsigned char* only, int with_optim, char* err,
              size_t errlen);

// Checks every dataset of the file against its digest and for non-finite values, and that
// /config and /train are readable and in range, without building a model.
int ckpt_verify(const char* path, MPI_Comm comm, char* err, size_t errlen);

// Writes m->grads as /grads/<tensor name>, full logical shapes, same hyperslab rules as params;
// gathers them first if a backward pass over DP replicas left only each rank's sub-pieces summed
// (model_grads_whole).
int ckpt_save_grads(const char* path, model* m, char* err, size_t errlen);

// Checkpoint directory management: files "<dir>/step-<8 digits>.h5" and a pointer file
// "<dir>/latest" holding the newest complete file's name, replaced atomically (write + rename).
// ckpt_dir_save saves step st->step, updates the pointer, and deletes all but the newest keep.
int ckpt_dir_save(const char* dir, int keep, const model* m, const fnn_config* cfg,
                  const ckpt_train* st, char* err, size_t errlen);
// ckpt_dir_save's steps around the file's own save, for a save that commits later
// (io/ckpt_async.h): ckpt_dir_prepare makes dir and a fresh temporary file for step, with the
// step's path into path; ckpt_dir_point points "latest" at step's saved file and prunes. 0, or
// -1 on every rank with the message in err. Collective over g->world.
int ckpt_dir_prepare(const char* dir, long step, dist_grid* g, char* path, size_t pathlen,
                     char* err, size_t errlen);
int ckpt_dir_point(const char* dir, int keep, long step, const char* run_id, dist_grid* g,
                   char* err, size_t errlen);
// Path of the newest complete checkpoint in dir into out: 0, or -1 when there is none. Without
// a valid pointer, the newest file if all are of one run; -2 with a one-line message in err if
// they are of several. Not collective (serial HDF5 without the pointer).
int ckpt_dir_latest(const char* dir, char* out, size_t outlen, char* err, size_t errlen);
// Points the file "best" of dir at the checkpoint of step (which must be saved) and records its
// validation loss score: rank 0 writes it durably as "latest" is; 0, or -1 on every rank with rank
// 0's one-line message in err. Collective over g's world.
int ckpt_dir_point_best(const char* dir, long step, double score, dist_grid* g, char* err,
                        size_t errlen);
// The step and score "best" names into step and score: 0, or -1 when there is none, its file is
// gone or it is of another run than run_id. Not collective (serial HDF5).
int ckpt_dir_best(const char* dir, const char* run_id, long* step, double* score);
// Names of the complete checkpoints in dir, oldest first: the count, or -1 if dir cannot be
// read; free *names with ckpt_dir_list_free. Not collective.
int ckpt_dir_list(const char* dir, char*** names);
void ckpt_dir_list_free(char** names, int n);
// The run id a checkpoint file records (/train/run_id) into out ("" when it has none or cannot
// be read), up to CKPT_RUN_ID bytes: which run's lineage the file belongs to. A local read: call
// on one rank only.
#define CKPT_RUN_ID 24 // bytes of a run id with its NUL
void ckpt_run_id(const char* path, char* out, size_t len);

#endif
