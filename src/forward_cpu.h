/* forward_cpu.h - the fp32 CPU reference forward pass and its per-operation pieces ("CPU twins"),
 * which the GPU kernels are checked against op by op. Written for clarity, dense layers via CBLAS. */
#ifndef BQ_FORWARD_CPU_H
#define BQ_FORWARD_CPU_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- CPU twins of the GPU kernels (all row-major fp32) --- */

/* out[t,:] = LN(word[ids[t]] + pos[p(t)] + type[seg[t]]) for t in [0, B*S), where p(t) =
 * positions[t], or t % S when positions is NULL. */
void bq_cpu_embeddings_layernorm(const int32_t *ids, const int32_t *seg, const int32_t *positions,
                                 int B, int S, int H,
                                 const float *word, const float *pos, const float *type,
                                 const float *gamma, const float *beta, float eps, float *out);
/* y[r,:] = x[r,:] W^T + b ; x [rows, in], W [out, in], b [out] (b may be NULL). */
void bq_cpu_linear(const float *x, const float *W, const float *b, int rows, int in, int out,
                   float *y);
/* out[r,:] = LN(x[r,:] + bias + residual[r,:]) (bias may be NULL). out may alias x. */
void bq_cpu_bias_residual_layernorm(const float *x, const float *bias, const float *residual,
                                    const float *gamma, const float *beta, int rows, int H,
                                    float eps, float *out);
/* x[r,c] = gelu_erf(x[r,c] + bias[c]) in place. */
void bq_cpu_bias_gelu(float *x, const float *bias, int rows, int cols);
/* Multi-head attention. qkv: [B*S, 3H] (Q | K | V), mask [B, S] (1 = real token),
 * ctx out: [B*S, H]. scores = QK^T / sqrt(d) + (1 - mask) * -10000, softmax over keys. */
void bq_cpu_attention(const float *qkv, const int32_t *mask, int B, int S, int H, int heads,
                      float *ctx);
/* Attention over packed sequences: sequence i is rows [seq_offsets[i], seq_offsets[i+1]) of qkv
 * [rows, 3H] and ctx [rows, H] (rows = seq_offsets[n_seqs]); every token is real and attends to
 * the keys of its own sequence only. The same per sequence as bq_cpu_attention on it alone. */
void bq_cpu_attention_varlen(const float *qkv, const int32_t *seq_offsets, int n_seqs, int H,
                             int heads, float *ctx);
/* start[r] = x[r,:] . W[0,:] + b[0]; end[r] = x[r,:] . W[1,:] + b[1]. */
void bq_cpu_qa_head(const float *x, const float *W, const float *b, int rows, int H, float *start,
                    float *end);

/* --- the BLAS under it --- */

/* The kernel set OpenBLAS chose for this CPU (its core name, "SkylakeX", "Haswell", ...). */
const char *bq_cpu_blas_kernels(void);
/* OpenBLAS's own description of its build ("OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX
 * MAX_THREADS=64"), static. */
const char *bq_cpu_blas_config(void);
/* The core name to give OpenBLAS in OPENBLAS_CORETYPE when it chose kernels weaker than this CPU
 * runs, or NULL when its choice is fine (or the CPU is not x86). OpenBLAS picks its kernels by CPU
 * model and falls back to Prescott's SSE3 ones for a model it does not know: Debian 12's 0.3.21
 * on an Emerald Rapids Xeon (model 207) runs SGEMM at 19 GFLOP/s a core where its SkylakeX
 * kernels run 124. OpenBLAS reads the variable once, as it loads, so a program must set it before
 * it starts. */
const char *bq_cpu_blas_better_kernels(void);
/* For a program's main, before it has read or written anything: where bq_cpu_blas_better_kernels
 * names better kernels and OPENBLAS_CORETYPE is unset (a user's own choice is kept), start the
 * program again (/proc/self/exe, the same argv) with the variable set. Returns only where it did
 * not restart (nothing to do; a program started through the dynamic loader, which cannot be
 * started again this way; or the restart failed): the kernels chosen stay. */
void bq_cpu_blas_restart_if_weak(char **argv);

/* --- whole model --- */

typedef struct bq_cpu_forward bq_cpu_forward;

/* Workspace for batches up to max_batch x seq_len. threads <= 0: OpenBLAS default (its
 * OPENBLAS_NUM_THREADS, else the cores, as it was before any workspace set a count: OpenBLAS's
 * count is the process's, and each create sets it); the row-wise ops (softmax, LayerNorm, GELU,
 * biases) run on as many threads as OpenBLAS's GEMMs (row_pool.h), each row as on one thread. */
bq_status bq_cpu_forward_create(const bq_model *m, int max_batch, int seq_len, int threads,
                                bq_cpu_forward **out, bq_err *err);
void bq_cpu_forward_free(bq_cpu_forward *f); /* accepts NULL */
/* Arrays are [batch, seq_len] row-major, 1 <= seq_len <= the workspace's seq_len (a batch trimmed
 * of its trailing padding computes the same logits at its real positions). */
bq_status bq_cpu_forward_run(bq_cpu_forward *f, int batch, int seq_len, const int32_t *input_ids,
                             const int32_t *input_mask, const int32_t *segment_ids,
                             float *start_logits, float *end_logits, bq_err *err);

/* Packed sequences: the arrays are [batch, length] as for a (trimmed) padded batch (1 <= length
 * <= the workspace's seq_len), but hold n_seqs sequences back to back with no padding: sequence i
 * is flat positions [seq_offsets[i], seq_offsets[i+1]) (seq_offsets[0] = 0, seq_offsets[n_seqs] =
 * batch * length, each 1..seq_len long; a sequence may cross a row boundary). Each sequence's logits equal those of the same
 * tokens run alone (positions count from 0 at its first token; it attends to itself only). */
bq_status bq_cpu_forward_run_packed(bq_cpu_forward *f, int batch, int length, int n_seqs,
                                    const int32_t *seq_offsets, const int32_t *input_ids,
                                    const int32_t *segment_ids, float *start_logits,
                                    float *end_logits, bq_err *err);

#ifdef __cplusplus
}
#endif
#endif
