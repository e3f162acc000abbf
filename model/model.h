// The feedback RNN of docs/model.md, sharded over the hidden units of a TP group.
//
// Legend: T = steps in a window, B = local batch (rows of this DP replica), L = layers,
// H = hidden units, Hl = H / tp (this rank's block, rows h0 .. h0+Hl of every layer),
// D = embedding or dense input size, O = outputs, V = vocabulary, K = D_l + H + O_l (the width of
// a layer's concatenated input [u_t | h_{t-1} | f_{t-1}], O_l = O with feedback, 0 without).
//
// Each layer keeps [Wx | Wh | Wf] as one G Hl x K block (G = the cell's gates, rows gate by gate;
// model/cell.h) so that one GEMM per step serves all three, and the weight gradient of all three
// is one GEMM after the time loop. A cell whose recurrent part is its own product (split_h)
// orders the columns [u | f | h] instead, so that [u | f] [Wx | Wf]^T stays one product.
#ifndef MODEL_MODEL_H
#define MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "model/cell.h"
#include "model/gemm.h"
#include "dist/real.h"
#include "dist/dist.h"

#define MODEL_MAX_LAYERS 16
// Per layer at most 4 gates x (Wx, Wh, Wf, b) or 3 x (Wx, Wh, Wf, b, bh); then Wo, bo, E.
#define MODEL_MAX_TENSORS (16 * MODEL_MAX_LAYERS + 3)

enum model_task { TASK_LM, TASK_CLASSIFY, TASK_REGRESS };
enum model_feedback { FB_ALL, FB_FIRST, FB_NONE };
enum model_fb_source { FBS_MODEL, FBS_TARGET, FBS_MIX };
enum model_wh_init { INIT_ORTHOGONAL, INIT_IDENTITY, INIT_NORMAL };
// The operands of the per-step recurrent products (docs/model.md, Precision).
enum model_precision { PRECISION_FP32, PRECISION_BF16 };

typedef struct model_config {
    int cell; // enum model_cell
    int task, act, feedback, feedback_source, wh_init;
    double forget_bias; // LSTM: initial bias of the forget gate
    int V; // vocabulary (token input), 0 for dense input
    int D; // embedding size (token input) or input size (dense input)
    int H, L, O;
    uint64_t seed;
    int precision; // enum model_precision: a run's choice, not the model's (masters are float32)
    int accum;     // micro-batches per optimiser step (accum_steps; 0 = 1): a run's choice too
} model_config;

// What part of the model a tensor is: a gate's column run of a layer's block (u, h or f), a
// gate's bias (b, or bh of the recurrent product), or the head and embedding.
enum tensor_part { PART_WX, PART_WH, PART_WF, PART_B, PART_BH, PART_WO, PART_BO, PART_EMBED };

// One named parameter tensor: its full logical shape and this rank's piece of it, which is
// rows [row0, row0+lrows) x cols [col0, col0+lcols) stored at ptr with row stride ld.
typedef struct model_tensor {
    char name[32];      // as in the checkpoint, e.g. "layer0/Wh"
    int rank;           // 1 (vector) or 2 (matrix)
    int rows, cols;     // global shape (cols = 1 for vectors)
    int row0, col0;     // offset of this rank's piece
    int lrows, lcols;   // shape of this rank's piece
    int ld;             // row stride in memory
    int replicated;     // every TP rank holds the whole tensor
    size_t offset;      // of the piece's first element in the parameter buffer
    int layer, part;    // layer (-1: head, embedding) and enum tensor_part
    int init;           // enum cell_init
} model_tensor;

typedef struct model {
    model_config c;
    const cell_kind* cell; // of c.cell; G = cell->gates below
    dist_grid* g;
    int Hl, h0;          // this rank's block of hidden units
    int T, B, Bglobal;   // window length, rows of one pass (a micro-batch) and the global batch
    int accum, micro;    // micro-batches per step (this replica's rows: model_rank_rows) and the
                         // one in hand (model_select_micro; 0 outside a step)
    int K[MODEL_MAX_LAYERS], Of[MODEL_MAX_LAYERS]; // concatenated input width, feedback width
    int hc[MODEL_MAX_LAYERS], fc[MODEL_MAX_LAYERS]; // first column of h_{t-1} and f_{t-1} in it

    // Parameters and gradients: one buffer each, same layout: per layer
    // W (G Hl x K) then b (G Hl) and bh (G Hl, bias_h cells), then Wo (O x Hl), bo (O), E (V x D,
    // token input only). They lie in this rank's segment of the replicas' shared memory, where
    // the node's other DP replicas read them (model/share.c). m and v (the optimiser's moments:
    // Adam's, or SGD's momentum in m) hold only this rank's sub-pieces, one after another
    // (model_own).
    dist_replicas* rep; // the DP replicas of this shard: shared memory and exchanges
    size_t nparams;
    real* params;
    real* grads;
    real* m;
    real* v;
    size_t W[MODEL_MAX_LAYERS], b[MODEL_MAX_LAYERS], bh[MODEL_MAX_LAYERS], Wo, bo, E; // offsets
    int ntensors;
    model_tensor tensors[MODEL_MAX_TENSORS];
    // Tensors not trained this step (frozen): backward forms no weight gradient for them and a
    // region of them all is not reduced over DP. All zero (the default) trains everything; set
    // by model_set_no_grad.
    unsigned char no_grad[MODEL_MAX_TENSORS];
    // A backward pass over DP replicas left only this rank's sub-pieces of grads summed: the
    // buffer is whole again after model_grads_whole (what saving the gradients calls).
    int grads_partial;

    // Activations of one window, allocated once. Backpropagation through time keeps those of
    // one segment of `keep` steps (bptt_memory; keep = T: the whole window): forward stores the
    // segments' starting points (ckX, ckS) and backward recomputes each segment from its own
    // (model_forward_segment) before running back through it. Rows of a segment's buffers are
    // its steps t - seg0 (model_row). The weight gradients are formed during the backward loop
    // from chunks of `chunk` steps (model_grad_chunk): dA, dAH, Xs, Hs hold one.
    int keep, chunk, seg0;
    real* X[MODEL_MAX_LAYERS];  // (keep (+1 when keep < T), B, K): [u_t | h_{t-1} | f_{t-1}]
                                // (split_h: [u | f | h]), all full width, u and h as dropout
                                // masked them (model/dropout.h); row keep holds the next
                                // segment's first row, its h not yet masked
    real* HB[MODEL_MAX_LAYERS]; // (keep, B, Hl): this rank's block of h_t
    real* A[MODEL_MAX_LAYERS];  // (keep, B, G Hl): the product a_t, left as the cell's forward
                                // leaves it (layer 0: holds the input projection, batched over
                                // the segment, until step t); HB itself for the Elman cell
    real* AH[MODEL_MAX_LAYERS]; // (keep, B, G Hl): the recurrent product ah_t (split_h cells)
    real* Q[MODEL_MAX_LAYERS];  // (keep, B, H): the gated state q_t, gathered (gated cells)
    real* dQ[MODEL_MAX_LAYERS]; // (B, H): gradient of q_t, summed over TP (gated cells)
    real* dA[MODEL_MAX_LAYERS]; // (chunk, B, G Hl): gradient of a_t
    real* dAH[MODEL_MAX_LAYERS];// (chunk, B, G Hl): gradient of ah_t (split_h cells)
    real* Xs[MODEL_MAX_LAYERS]; // (chunk, B, K): X of the chunk's steps, for dW = dA^T X
    real* Qs[MODEL_MAX_LAYERS]; // (chunk, B, H): Q of the chunk's steps (gated cells)
    real* Hs;                   // (chunk, B, Hl): the top layer's h of the chunk, for dWo
    real* ckX[MODEL_MAX_LAYERS];// (segments - 1, B, K): first row of X of segments 1, 2, ...,
                                // h unmasked (model_hprev)
    real* ckS[MODEL_MAX_LAYERS];// (segments - 1, B, state Hl): the state before them
    real* S[MODEL_MAX_LAYERS];  // (keep, B, state Hl): the cell's state after step t (LSTM's c)
    real* s0s[MODEL_MAX_LAYERS];// (B, state Hl) the cell's state before the first step
    real* sT[MODEL_MAX_LAYERS]; // (B, state Hl) after the last step, carried to the next window
    real* cg[MODEL_MAX_LAYERS]; // (B, carry Hl) the gradient the cell passes back a step
    real* Y;                    // (T, B, O) outputs
    real* F;                    // (T, B, O) fed-back signal (softmax(y), y, or the target,
                                // noise included): a recomputed segment reads f_{t-1} here
    real* dY;                   // (T, B, O)
    real* hT[MODEL_MAX_LAYERS]; // (B, H) state after the last step, carried to the next window
    real* fT;                   // (B, O)
    real* h0s[MODEL_MAX_LAYERS];// (B, H) state before the first step
    real* f0;                   // (B, O)
    real* dX[2][MODEL_MAX_LAYERS]; // (B, K) input gradients of the current and the later step
    // The carried state of all this replica's rows (accum micro-batches of B: model_rank_rows,
    // rows as h0s ... fT above): h0s, s0s, f0, hT, sT and fT are micro-batch `micro`'s rows of
    // these, so that each micro-batch carries its own rows from step to step.
    real* h0r[MODEL_MAX_LAYERS];
    real* s0r[MODEL_MAX_LAYERS];
    real* hTr[MODEL_MAX_LAYERS];
    real* sTr[MODEL_MAX_LAYERS];
    real* f0r;
    real* fTr;
    real* send;                 // (B, Hl + O) allgather send chunk
    real* recv;                 // (tp, B, Hl + O) allgather result
    real* dh;                   // (B, Hl)

    // The weights of the per-step GEMMs, packed for model/gemm.c at the start of each forward
    // and backward pass: a_t = x_t W^T (layer 0: u W[:, :D]^T for the window, then the rest
    // per step), y_t = h_t Wo^T, dX_t = dA_t W, dh_t = dY_t Wo. The packed copies are one for
    // the node's DP group, in the replicas' common area. A split_h cell's layers use fwdW and bwdW
    // for the [u | f] columns (fwdW: from column D at layer 0, as above) and fwdWh, bwdWh for h
    // (the gates before the gated ones), fwdWq, bwdWq for the gated gates' h columns.
    gemm_w fwdW[MODEL_MAX_LAYERS], bwdW[MODEL_MAX_LAYERS], fwdWx0, fwdWo, bwdWo;
    gemm_w fwdWh[MODEL_MAX_LAYERS], bwdWh[MODEL_MAX_LAYERS];
    gemm_w fwdWq[MODEL_MAX_LAYERS], bwdWq[MODEL_MAX_LAYERS];
    // precision = bf16: the per-step products' operand, rounded (B rows of the widest k, bf16),
    // in the shared segment like the operands it copies (model_apply); NULL at fp32.
    uint16_t* op16;
    real* atb_work;             // scratch of the weight-gradient GEMMs (gemm_atb), in the
                                // same area as the packed copies (model.c: describe_weights)
} model;

// One window of inputs and targets for the local batch rows. Exactly one of tokens/dense is set.
typedef struct model_batch {
    int T;                 // steps in this window, <= model T
    const int32_t* tokens; // (T, B) token ids (lm, classify)
    const real* dense;     // (T, B, D) inputs (regress)
    const int32_t* next;   // (T, B) lm targets
    const real* target;    // (T, B, O) regress targets
    const int32_t* label;  // (B) classify labels
    const int32_t* last;   // (B) classify, regress with score = last: step whose output is scored
    const real* weight;    // (B) weight of each row in the loss, NULL = all 1 (evaluation
                           // passes give padding rows weight 0)
    // The training draws on the fed-back signal (model/feedback.c) and the dropout masks
    // (model/dropout.h); all zero in evaluation and sampling, which so feed back the model's
    // output (with feedback_source = mix too) and drop nothing.
    double fb_noise;       // sigma of the Gaussian noise added to every fed-back f_t
    double teacher_prob;   // feedback_source = mix: chance that row b's f_t is its true target
    double dropout;        // p of dropout between layers and before the head
    double dropout_rec;    // p of dropout on the recurrent input h_{t-1}, a mask per window
    uint64_t fb_key;       // this window's key of every draw (feedback_key)
    long row0;             // global batch row of local row 0 (dp_rank * B): draws follow it
} model_batch;

// Fills the parameter table (shapes, shards, offsets, K) of a model with config c held at
// (tp, tp_rank), without allocating: for inspecting a checkpoint's shapes.
void model_layout(model* m, const model_config* c, int tp, int tp_rank);

// Sizes m for config c at tp ranks per replica, T steps, a local batch of B rows (c->accum
// micro-batches of B / c->accum) and segments of keep steps (model_init_keep), without
// allocating (the layout of tp_rank 0: every TP rank holds as much).
void model_size(model* m, const model_config* c, int tp, int T, int B, int keep);

// What one rank of a model holds, in bytes, computed by the functions that size model_init's
// allocations (so the memory plan, run/memory_plan.c, cannot drift from them).
typedef struct model_bytes {
    size_t params, grads, moments; // in this rank's shared segment; moments: the optimiser's
    size_t activations;            // one window's, forward and backward
    size_t buffers;                // carried state, the allgather's send and receive, dh
    size_t segment;                // the segment: params, grads, moments, segment activations
    size_t shared;                 // one area per node's DP group (dpn members): the packed
                                   // weights and the dpn weight-gradient scratches
} model_bytes;
// m: sized by model_size or model_init; dpn: members of the node's DP group, dpx: the groups
// (the optimiser's moments are split over dpn x dpx, ZeRO-1).
void model_memory(const model* m, int dpn, int dpx, model_bytes* b);

// Whether the rows of each of dp replicas of a global batch of Bglobal rows (which dp divides)
// split into c->accum micro-batches. 0, or -1 with a one-line message naming the values in err.
int model_check_rows(const model_config* c, int Bglobal, int dp, char* err, size_t errlen);

// Collective over the node's DP group (the shared window). Returns 0, or -1 with a message in
// err (H not divisible by tp, too many layers, rows model_check_rows refuses); running out of
// memory ends the job (dist_fail), since the other ranks may not have.
int model_init(model* m, const model_config* c, dist_grid* g, int T, int Bglobal, char* err,
               size_t errlen);
// The same, keeping the activations of segments of `keep` steps (bptt_memory; 0 or >= T: the
// whole window) and recomputing each in backward, the weight gradients formed per `chunk`
// steps (0: model_grad_chunk's; tests choose others to cross the segments).
int model_init_keep(model* m, const model_config* c, dist_grid* g, int T, int Bglobal, int keep,
                    int chunk, char* err, size_t errlen);
// Collective over the node's DP group (frees the shared window).
void model_free(model* m);

// Steps per stored segment for a bptt_memory setting: "all" (T), "sqrt" (round(sqrt(T))) or a
// number of steps 1..T. Returns it, or -1 when the setting is none of these.
int model_bptt_keep(const char* setting, int T);
// Bytes of the activation and state buffers one rank allocates for windows of T steps, local
// batch B, at tp, keeping segments of `keep` steps (as model_init_keep): the model's allocation
// takes its sizes from the same function.
size_t model_activation_bytes(const model_config* c, int tp, int B, int T, int keep);
// Steps per chunk of the weight gradients (model.chunk): a function of B and T only, so
// every bptt_memory setting sums dW = dA^T X in the same order and gets the same bits.
int model_grad_chunk(int B, int T);
// The first of step t's B rows in the buffers of the segment held (from step seg0).
static inline size_t model_row(const model* m, int t)
{
    return (size_t)(t - m->seg0) * (size_t)m->B;
}
// The cell state of layer l before step t: carried, stored at the segment's start, or step
// t-1's (NULL for a cell without state).
static inline const real* model_state_before(const model* m, int l, int t)
{
    const size_t sHl = (size_t)m->cell->state * m->Hl;
    if (!sHl) return NULL;
    if (t == 0) return m->s0s[l];
    if (t == m->seg0) return m->ckS[l] + (size_t)(t / m->keep - 1) * m->B * sHl;
    return m->S[l] + model_row(m, t - 1) * sHl;
}
// This rank's block of h_{t-1} of layer l as the cells read it, unmasked (rows *ld apart): in
// the layer's input row, unless the recurrent dropout mask is on that row (model/dropout.h);
// then the carried state (t = 0), the segment's stored first row (unmasked), or h_{t-1} in HB.
static inline const real* model_hprev(const model* m, const model_batch* bt, int l, int t, int* ld)
{
    const int K = m->K[l], off = m->hc[l] + m->h0;
    *ld = K;
    if (!(bt->dropout_rec > 0)) return m->X[l] + model_row(m, t) * K + off;
    if (t == 0) return *ld = m->c.H, m->h0s[l] + m->h0;
    if (t == m->seg0) return m->ckX[l] + (size_t)(t / m->keep - 1) * m->B * K + off;
    *ld = m->Hl;
    return m->HB[l] + model_row(m, t - 1) * m->Hl;
}
// Runs the forward of steps [s0, s1) again from the segment's stored start, refilling its
// buffers for backward (f_t from F; no output head, no draws). Collective like model_forward.
void model_forward_segment(model* m, const model_batch* bt, int s0, int s1);

// Parameter values that depend only on (seed, tensor, global row, global column). Collective
// over g->tp_comm (orthogonal Wh by distributed QR). 0, or -1 if the QR failed.
int model_init_params(model* m);

// This replica's rows of the global batch: accum micro-batches of B.
static inline int model_rank_rows(const model* m)
{
    return m->B * m->accum;
}
// The global batch row of the micro-batch in hand's first row (model_batch.row0, and the row
// its data is drawn for): the micro-batches of a replica are consecutive runs of its rows, so a
// row is the same one at any (dp, accum) of the same global batch.
static inline long model_micro_row0(const model* m)
{
    return (long)m->g->dp_rank * model_rank_rows(m) + (long)m->micro * m->B;
}
// Makes micro-batch j (0 <= j < accum) the one the passes run: its rows of the carried state.
void model_select_micro(model* m, int j);
// The step's forward, loss and backward over each of the accum micro-batches in turn, batch(m,
// arg) giving the one selected (rows from model_micro_row0): grads (zeroed first) takes the
// gradient of the global batch's mean loss, summed over the micro-batches locally and then
// reduced over DP once, in the last one's backward (model_backward). Returns that loss (summed
// over the DP replicas: every rank the same); *bad (NULL: not wanted): the first micro-batch
// whose loss was not finite on this rank, or -1. Micro-batch 0 is selected after.
double model_accumulate(model* m, const model_batch* (*batch)(model* m, void* arg), void* arg,
                        int* bad);

// Zero the carried state (h_0 = 0, f_0 = 0) of all this replica's rows.
void model_reset_state(model* m);
// Make the state after the last window the state before the next one, for all the rows.
void model_carry_state(model* m);
// What the model feeds back from the next forward pass on (enum model_fb_source): the ridge
// head's passes feed back the true targets while the head is being fitted.
void model_set_feedback_source(model* m, int source);
// A model fed back its true targets (feedback_source = target) whose window's last target was
// not known when the window ran (sampling draws it from the output afterwards): the next
// window's f_0 is the one-hot of token tok on every row. Nothing for other sources.
void model_feed_back_token(model* m, int tok);

// Forward over one window; fills Y, F, HB, X. Collective over tp_comm (one allgather per layer
// and step) and over the node's DP group (the per-step products, model_apply): every replica
// runs the same windows.
void model_forward(model* m, const model_batch* bt);
// Mean loss over the window's scored outputs (normalised by the global batch, so summing the
// DP replicas gives the global mean) and its gradient dY. acc_correct counts right argmaxes of
// scored outputs (lm and classify), NULL to skip.
double model_loss(model* m, const model_batch* bt, long* acc_correct);
// Backpropagation through time; accumulates into grads (zero them first with model_zero_grad).
// Collective over tp_comm (one allreduce per layer and step), over the node's DP group (the
// per-step products) and over dpx_comm (the reduction between nodes). The DP reduction runs
// region by region as the weight gradients are formed: afterwards the pieces of grads that this
// rank owns (model_own) hold the sum over the DP replicas, the rest of grads is undefined; the
// optimiser reads just those sub-pieces, model_gather completes the buffer. Only the step's last
// micro-batch reduces (micro + 1 == accum): the earlier ones' gradients stay in grads, local.
void model_backward(model* m, const model_batch* bt);
void model_zero_grad(model* m);
// dY of the window's T steps times factor (rounded to real once): for a loss that is a mean over
// other than the global batch's rows (model_loss divides by Bglobal), before model_backward.
void model_scale_loss_grad(model* m, int T, double factor);
// The tensors that do not train from the next step on: no_grad[k] for tensor k (ntensors of
// them). Every rank must pass the same set (the DP reduction skips the regions it freezes).
void model_set_no_grad(model* m, const unsigned char* no_grad);
// Zeroes this rank's piece of tensor t (one of m->tensors).
void model_zero_tensor(model* m, const model_tensor* t);
// A state for timing and checking a save and its load (fnn bench --ckpt): moments that differ
// from the parameters (m = p / 2, v = p^2), so that a load swapping them is caught. With dp = 1
// only, where a rank's moments are those of all its parameters, in order.
void model_state_pattern(model* m);
// Zeroes the parameters and the moments, which a load must then restore.
void model_state_clear(model* m);
// Makes grads whole on every rank (the DP sum of every region that trains) when a backward pass
// left only this rank's sub-pieces summed; nothing otherwise. Collective over the DP group
// (every rank has the same grads_partial).
void model_grads_whole(model* m);

// The DP split of the parameter buffers (model/share.c). Region i < L is layer i's [W | b],
// region L the head [Wo | bo], region L+1 the embedding; member r of the node's DP group owns
// piece r of every region: elements [*off, *off + *n). Each piece is split again over dpx_comm
// (dist_part): this rank's part of its piece is its sub-piece, whose gradient sum, update and
// moments are this rank's alone.
int model_regions(const model* m);
// The region that holds element off of the buffers.
int model_region_of(const model* m, size_t off);
void model_piece(const model* m, int region, int r, size_t* off, size_t* n);
// This rank's sub-piece of region i: elements [*off, *off + *n) of params and grads, held in
// the compact moments m->m and m->v from element *at (the sub-pieces of the regions before it
// come first).
void model_own(const model* m, int region, size_t* off, size_t* n, size_t* at);
// The elements of m->m (and m->v) this rank uses: about nparams / dp.
size_t model_own_elems(const model* m);
// Bytes of optimiser state (m and v; SGD uses only m) that a rank allocates for the model laid
// out in m (model_layout suffices: for a memory plan before allocating) with the DP group split
// as dpn replicas per node times dpx nodes: the most any rank's sub-pieces need, rounded to 64
// bytes per moment. 1 / (dpn dpx) of the whole, whatever the split.
size_t model_optim_bytes(const model* m, int dpn, int dpx);
// Starts the DP sum of regions [first, first + count) of grads once every local replica has
// them: this rank sums its pieces through shared memory, then starts the sum of each piece's
// sub-pieces over the other nodes into their owners (one more exchange in flight per region;
// the sums are in place after model_reduce_finish).
void model_reduce_regions(model* m, int first, int count);
// After the last model_reduce_regions of a pass: waits until every replica has read the others'
// gradients (from here each may zero or rewrite its own) and the exchanges are done.
void model_reduce_finish(model* m);
// Whether region i holds a tensor that trains (m->no_grad), i.e. needs its DP reduction.
int model_region_trains(const model* m, int i);
// The runs of tensor t's rows (elements [off, off + n) of params and grads, [at, at + n) of
// the moments) that lie in this rank's sub-piece, passed to f.
void model_owned_runs(const model* m, const model_tensor* t,
                      void (*f)(size_t off, size_t n, size_t at, void* arg), void* arg);
// buf (params or grads of this model), whose sub-pieces this rank holds, takes the other ranks'
// sub-pieces of every region that trains: model_gather_start for region i starts the exchange
// over dpx_comm (one more in flight), model_gather_finish waits and copies the node's other
// pieces. model_gather does both for all regions. Collective over the DP group.
void model_gather_start(model* m, real* buf, int region);
void model_gather_finish(model* m, real* buf);
void model_gather(model* m, real* buf);
// Packs the n weights for the kernel, each member of the node's DP group its share of the
// panels. Collective over the node's DP group.
void model_pack(model* m, gemm_w* const* w, int n, int uses);
// C = A op(W) [+ bias | + C] for the local batch (M = B rows) of this rank and of every other
// member of the node's DP group, C and A in this rank's segment of the shared memory (their
// rows at the same places in the others'): each member computes its share of the columns for
// all of them, so it streams 1 / dpn of the packed weights with dpn times the rows. Collective
// over the node's DP group.
void model_apply(model* m, real* C, int ldc, const real* A, int lda, const gemm_w* w,
                 const real* bias, int accumulate);

// Flops of one forward+backward window for this replica (both counted as multiply-adds x 2).
double model_flops(const model* m, int T);

#endif
