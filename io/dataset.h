// Datasets made by `fnn prepare` (one HDF5 file) and the loader that cuts them into windows.
//
// File layout, by kind (root attribute "kind"):
//   tokens:    /train/tokens, /val/tokens            uint8 (N)           byte-level text, V = BYTE_VOCAB
//   sequences: /train/seqs uint8 (sum of lens), /train/lens int32 (n), /train/labels int32 (n),
//              same under /val; root attribute "classes": the class names, one string each
//   dense:     /train/x float32 (N x D), /train/y float32 (N x O), same under /val
//   dense with per-sequence targets (root attribute "seq_len" = S, an integer): n sequences of S
//              steps, /train/x float32 (n S x D): sequence k is rows [kS, kS + S); /train/y
//              float32 (n x O): its one target, scored at its last step (score = last)
// Windows: tokens and dense are streams; window k of an evaluation pass is rows
// [k*T, k*T + T + 1) of tokens (inputs are the first T, targets the last T) or [k*T, k*T + T) of
// x and y. Training windows start at positions drawn from a counter-based generator keyed by
// (seed, step, global row), so the union of all DP replicas' rows equals one rank's batch.
// A sequences window is one whole record truncated to T bytes, scored at its last byte.
// A per-sequence dense window is one whole sequence (T = S), its target at step T - 1.
#ifndef IO_DATASET_H
#define IO_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include "model/model.h"

// V of byte-level text, the one definition: a token is one byte, so the vocabulary (and a
// language model's outputs) is every byte value.
enum { BYTE_VOCAB = 256 };

enum dataset_kind { DATA_TOKENS, DATA_SEQUENCES, DATA_DENSE };
enum dataset_split { SPLIT_TRAIN, SPLIT_VAL };

typedef struct dataset dataset; // opaque: the open file, its shapes and the records' index

// Opens the file and checks it (shapes, types, the records' index, dense values finite); every
// rank opens it and reads each window's rows from it as it draws them (io/dataset.c), so a rank
// holds no split in memory. Returns NULL with a one-line message naming the file and what is
// wrong in err (missing, not HDF5 or truncated, missing dataset). A read that fails later (the
// file truncated while in use) ends the job with a message naming the file.
dataset* dataset_open(const char* path, char* err, size_t errlen);
void dataset_free(dataset** d);

int dataset_kind(const dataset* d);
int dataset_inputs(const dataset* d);   // D for dense, 0 otherwise
int dataset_outputs(const dataset* d);  // O: BYTE_VOCAB tokens, number of classes, or outputs of dense
int dataset_nclasses(const dataset* d);
int dataset_seq_len(const dataset* d);  // S of per-sequence dense targets, 0 for any other data
// Bytes this process holds of the file's arrays: the records' index (16 bytes per record).
size_t dataset_bytes(const dataset* d);
const char* dataset_class_name(const dataset* d, int k);

// Task this dataset serves, or -1 if none: tokens -> lm, sequences -> classify, dense -> regress.
int dataset_task(const dataset* d);

// Tokens, records, rows or (per-sequence dense) sequences of a split.
long dataset_length(const dataset* d, int split);

// Number of evaluation windows of length T in a split.
long dataset_windows(const dataset* d, int split, int T);

// Host buffers for one window of B local rows, and the model_batch view of them.
typedef struct data_batch {
    int T, B;
    int32_t* tokens; // (T, B)
    int32_t* next;   // (T, B)
    int32_t* label;  // (B)
    int32_t* last;   // (B)
    real* dense;     // (T, B, D)
    real* target;    // (T, B, O)
    void* scratch;   // one window's rows as read from the file
    model_batch view;
} data_batch;

// With per-sequence dense targets the view scores only the last step (view.last = T - 1).
int data_batch_init(data_batch* b, const dataset* d, int T, int B); // 0, or -1 out of memory
// Dense data: the view scores only each window's last step, T - 1 (score = last).
void data_batch_score_last(data_batch* b);
void data_batch_free(data_batch* b);

// Training window of step `step` for global rows [row0, row0 + B). With carry = 1 each global row
// is a stream that advances T positions per step (state carried between windows), otherwise each
// window starts at an independent position.
void dataset_train_batch(const dataset* d, data_batch* b, uint64_t seed, long step, int row0,
                         int carry);
// Evaluation windows first + row0 .. first + row0 + B - 1 of a split, in order (rows past the end
// of the split repeat the last window; callers score only rows that exist).
void dataset_eval_batch(const dataset* d, data_batch* b, int split, long first, int row0);

// `fnn prepare`: kind "text" (byte-level tokens), "records" (fortunes format, class = file name),
// "csv" (dense; the first `inputs` columns are inputs, the rest outputs). The last val_fraction of
// each input file goes to /val. Writes to a temporary name and renames, so a failure leaves no
// output file. Returns 0 or -1 with a message naming the file at fault in err.
int dataset_prepare(const char* kind, const char* const* inputs, int ninputs, const char* out,
                    double val_fraction, int csv_inputs, char* err, size_t errlen);
// The same with csv_steps > 0: every CSV line is one sequence of csv_steps steps, its
// csv_steps x csv_inputs inputs step by step (step 1's inputs, step 2's, ...), then its targets
// (per-sequence dense targets, above); csv_steps = 0 is dataset_prepare.
int dataset_prepare_steps(const char* kind, const char* const* inputs, int ninputs,
                          const char* out, double val_fraction, int csv_inputs, int csv_steps,
                          char* err, size_t errlen);

#endif
