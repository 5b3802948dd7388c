/* attention.cuh - fused multi-head self-attention (scores, mask, softmax, P.V in one kernel; the
 * seq x seq score matrix never reaches global memory):
 * ctx[b,s,h,:] = softmax_k(Q[b,s,h,:].K[b,k,h,:] / sqrt(d) + mask_bias(mask[b,k])) . V[b,k,h,:]. */
#ifndef BQ_ATTENTION_CUH
#define BQ_ATTENTION_CUH

#include <stdint.h>

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* qkv: [batch*seq_len, 3*hidden] rows laid out Q | K | V, head h at columns [h*d, (h+1)*d) of each
 * part (d = hidden/heads); mask: [batch, seq_len] int32 (nonzero = real token); ctx: [batch*seq_len,
 * hidden]. qkv/ctx in `dt`, all on the device. Requires hidden % heads == 0 and head size <= 128.
 * fp16/bf16 with head size 64 (any seq_len: tails are zero-filled) use the mma.sync tensor-core
 * path when qkv is 16-byte and ctx 4-byte aligned (else the WMMA path), fp32 with head size 64 and
 * 16-byte aligned qkv and ctx the register-tiled fp32 path, everything else the generic path.
 * block_rows: query rows per block of the mma.sync path, 64, 128, or 32 with the keys split
 * between two warp pairs (for small batches: more blocks); 0 = 64. The other paths have one tiling
 * and ignore it (see bq_cuda_attention_has_block_rows). Returns cudaErrorInvalidValue on bad
 * arguments (block_rows other than 0, 32, 64, 128 included), else the status of
 * cudaFuncSetAttribute (the fp32 path and the 128- and 32-row tilings opt in to more shared
 * memory) or of the launch. */
cudaError_t bq_cuda_attention(const void *qkv, const int32_t *mask, int batch, int seq_len,
                              int hidden, int heads, void *ctx, bq_cuda_dtype dt, int block_rows,
                              cudaStream_t stream);

/* 1 when bq_cuda_attention's block_rows changes the kernel for this dtype and shape (fp16/bf16,
 * head size 64, hidden % 8 == 0, BQ_ATTENTION_KERNEL not "wmma"; aligned buffers assumed), else 0:
 * whether the engine has tilings to time. */
int bq_cuda_attention_has_block_rows(bq_cuda_dtype dt, int hidden, int heads);

/* The WMMA tensor-core path for fp16/bf16 with head size 64 (the generic path otherwise): the first
 * tensor-core kernel, kept beside the mma.sync one until an H100 run has compared the two.
 * Same contract as bq_cuda_attention. */
cudaError_t bq_cuda_attention_wmma(const void *qkv, const int32_t *mask, int batch, int seq_len,
                                   int hidden, int heads, void *ctx, bq_cuda_dtype dt,
                                   cudaStream_t stream);

/* The generic path only (any supported shape and dtype), exported so tests can compare the two
 * paths on the same input. Same contract as bq_cuda_attention. */
cudaError_t bq_cuda_attention_generic(const void *qkv, const int32_t *mask, int batch, int seq_len,
                                      int hidden, int heads, void *ctx, bq_cuda_dtype dt,
                                      cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
