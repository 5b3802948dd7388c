/* attention_cudnn.cuh - multi-head self-attention through cuDNN's fused scaled-dot-product
 * attention (the --attention cudnn alternative to our own kernel). Same layout contract as
 * bq_cuda_attention: qkv [B*S, 3H] rows Q | K | V, mask [B, S], ctx [B*S, H], all in `dt`.
 * Only compiled against cuDNN when BQ_HAVE_CUDNN is defined; otherwise create() reports
 * BQ_ERR_UNSUPPORTED. */
#ifndef BQ_ATTENTION_CUDNN_CUH
#define BQ_ATTENTION_CUDNN_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "common.h"
#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bq_cudnn_attention bq_cudnn_attention;

/* Plans the attention for batches up to max_batch x seq_len: creates a cuDNN handle, allocates the
 * mask-bias buffer [max_batch, 1, S, S] and the cuDNN workspace, and builds the max_batch
 * execution plan. fp32 (and tf32) -> BQ_ERR_UNSUPPORTED: cuDNN's fused attention is for 16-bit
 * inputs; so is a head size that is not a multiple of 8 or above 128, and a graph no cuDNN engine
 * accepts on this GPU (the message says which and suggests --attention own). Call it with the
 * engine's device current. */
bq_status bq_cudnn_attention_create(int max_batch, int seq_len, int hidden, int heads,
                                    bq_cuda_dtype dt, bq_cudnn_attention **out, bq_err *err);
void bq_cudnn_attention_free(bq_cudnn_attention *a); /* accepts NULL */

/* Enqueue the expansion of mask [batch, S] (0/1, any pattern) into the additive bias the
 * attention reads (bq_mask_bias: 0 real key, -10000 padding): once per forward pass, before the
 * layers' bq_cudnn_attention_run calls for the same batch on the same stream. Graph-capturable. */
bq_status bq_cudnn_attention_set_mask(bq_cudnn_attention *a, const int32_t *mask, int batch,
                                      cudaStream_t stream, bq_err *err);

/* Enqueue attention for `batch` sequences on `stream` with the mask of the last set_mask (no
 * allocation, no synchronization, graph-capturable). The first call for a batch size other than
 * max_batch builds that size's plan, so it must not be the one inside a stream capture (it then
 * fails with BQ_ERR_INVALID_ARG); the engine's eager-then-capture order satisfies this. */
bq_status bq_cudnn_attention_run(bq_cudnn_attention *a, const void *qkv, int batch, void *ctx,
                                 cudaStream_t stream, bq_err *err);

#ifdef __cplusplus
}
#endif
#endif
