// safetensors files (the format of Hugging Face's safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin,
// end]}, ..., "__metadata__": {string: string}}, then the tensors' raw little-endian bytes, the
// offsets counted from the byte after the header. fnn writes and reads F32 tensors of rank 1
// or 2 under PyTorch's names where a module computes the same thing (docs/checkpoints.md):
//
//   rnn.weight_ih_l{k}, rnn.weight_hh_l{k}  G*H x D_k, G*H x H: the gates' Wx, Wh stacked in
//                                            fnn's gate order (PyTorch's: GRU r,z,n; LSTM i,f,g,o)
//   rnn.bias_ih_l{k}, rnn.bias_hh_l{k}      G*H: b and bh (bias_hh zero for cells with one bias)
//   feedback_l{k}.weight                     G*H x O: the gates' Wf stacked (no PyTorch module)
//   embedding.weight, head.weight, head.bias V x D, O x H, O
//   layer{k}/...                             the MGU's tensors under fnn's own names
//
// Not collective: every rank reads the file itself; the caller agrees on the verdict.
#ifndef IO_SAFETENSORS_H
#define IO_SAFETENSORS_H

#include <stddef.h>
#include "model/model.h"

#define ST_NAME 64 // bytes of a tensor name with its NUL
#define ST_META 32 // metadata entries kept

typedef struct st_tensor {
    char name[ST_NAME];
    int rank;       // 1 or 2
    long shape[2];  // shape[1] = 1 for rank 1
    size_t begin;   // byte offset in data
} st_tensor;

typedef struct st_file {
    int n;
    st_tensor* t;
    int nmeta;
    char meta_key[ST_META][32], meta_val[ST_META][64];
    unsigned char* data; // the bytes after the header
    size_t data_len;
} st_file;

// Whether the file at path is a safetensors file, by its first bytes (a length, then '{'),
// whatever its name: 1, or 0 (also when it cannot be read or is not a regular file).
int st_is_safetensors(const char* path);

// Reads and checks the whole file: the header length against the file's size, the JSON, every
// tensor's dtype (F32), rank, and data_offsets (in the data, not overlapping, and shape x 4
// bytes long). 0, or -1 with one line naming the file and what is wrong; free with st_free.
int st_read(const char* path, st_file* f, char* err, size_t errlen);
void st_free(st_file* f);
// The tensor or metadata value of that name, NULL if none.
const st_tensor* st_find(const st_file* f, const char* name);
const char* st_meta(const st_file* f, const char* key);

// The safetensors name of model tensor t of m and where t lies in it: rows [*row0, *row0 +
// t->rows) of a tensor of full shape rows x cols (rank 1 when cols is 0).
void st_name(const model* m, const model_tensor* t, char* name, size_t len, int* row0, int* rows,
             int* cols);

// The model config the file describes: shapes give H, L, V, D, O and which layers have
// feedback; metadata (written by fnn export) the cell, task and activation; the rest (and
// what neither gives) is run's.
void st_model_config(const st_file* f, const model_config* run, model_config* ck);

// Loads the tensors k of m with only[k] set from f (this rank's pieces), after checking that
// every one is there with the shape m needs (nothing is loaded when one is not). For cells
// with one bias per gate, b = bias_ih + bias_hh (PyTorch's two biases). 0, or -1 with one line.
int st_load(const char* path, const st_file* f, model* m, const unsigned char* only, char* err,
            size_t errlen);

// Writes m's parameters (whole on this rank: tp = 1) to path under the names above, with the
// metadata pairs meta[0..2*nmeta). 0, or -1 with one line naming the file.
int st_save(const char* path, const model* m, const char* const* meta, int nmeta, char* err,
            size_t errlen);

#endif
