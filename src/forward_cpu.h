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

/* out[t,:] = LN(word[ids[t]] + pos[t % S] + type[seg[t]]) for t in [0, B*S). */
void bq_cpu_embeddings_layernorm(const int32_t *ids, const int32_t *seg, int B, int S, int H,
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
/* start[r] = x[r,:] . W[0,:] + b[0]; end[r] = x[r,:] . W[1,:] + b[1]. */
void bq_cpu_qa_head(const float *x, const float *W, const float *b, int rows, int H, float *start,
                    float *end);

/* --- whole model --- */

typedef struct bq_cpu_forward bq_cpu_forward;

/* Workspace for batches up to max_batch x seq_len. threads <= 0: OpenBLAS default. */
bq_status bq_cpu_forward_create(const bq_model *m, int max_batch, int seq_len, int threads,
                                bq_cpu_forward **out, bq_err *err);
void bq_cpu_forward_free(bq_cpu_forward *f); /* accepts NULL */
/* Arrays are [batch, seq_len] row-major, 1 <= seq_len <= the workspace's seq_len (a batch trimmed
 * of its trailing padding computes the same logits at its real positions). */
bq_status bq_cpu_forward_run(bq_cpu_forward *f, int batch, int seq_len, const int32_t *input_ids,
                             const int32_t *input_mask, const int32_t *segment_ids,
                             float *start_logits, float *end_logits, bq_err *err);

#ifdef __cplusplus
}
#endif
#endif
