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

/* The tensor-core path's tilings (16-bit, head size 64), which the engine times per batch size:
 * the mma.sync kernel's block shapes, and the wgmma kernel (attention_wgmma.cu) where the build
 * and the device have it (bq_cuda_attention_tiling_available). */
typedef enum {
    BQ_ATTENTION_ROWS64 = 0,   /* 64 query rows a block, 4 warps (the default) */
    BQ_ATTENTION_ROWS128,      /* 128 rows, 4 warps of two m-tiles each */
    BQ_ATTENTION_ROWS32_KEYS2, /* 32 rows, the keys split between two pairs of warps */
    BQ_ATTENTION_ROWS64_KEYS3, /* 64 rows, the keys split among three groups of 4 warps */
    BQ_ATTENTION_WGMMA128,     /* 128 rows, 2 warpgroups of wgmma (sm_90 only) */
    BQ_ATTENTION_WGMMA128_OVERLAP, /* the same, the next key tile's softmax overlapping P V */
    BQ_ATTENTION_TILINGS       /* how many */
} bq_attention_tiling;

/* qkv: [batch*seq_len, 3*hidden] rows laid out Q | K | V, head h at columns [h*d, (h+1)*d) of each
 * part (d = hidden/heads); mask: [batch, seq_len] int32 (nonzero = real token); ctx: [batch*seq_len,
 * hidden]. qkv/ctx in `dt`, all on the device. Requires hidden % heads == 0 and head size <= 128.
 * fp16/bf16 with head size 64 (any seq_len: tails are zero-filled) use the mma.sync tensor-core
 * path when qkv is 16-byte and ctx 4-byte aligned (else the WMMA path), fp32 with head size 64 and
 * 16-byte aligned qkv and ctx the register-tiled fp32 path, everything else the generic path.
 * tiling: the mma.sync path's block shape (the split ones are for small batches: more warps on
 * the same keys); the other paths have one tiling and ignore it (see
 * bq_cuda_attention_has_tilings). Returns cudaErrorInvalidValue on bad arguments (a tiling out of
 * range included), cudaErrorNotSupported for a tiling this build or device lacks (see
 * bq_cuda_attention_tiling_available) where the tensor-core path applies, else the status of
 * cudaFuncSetAttribute (the fp32 path and the tilings past 48 KB of shared memory opt in to more)
 * or of the launch. */
cudaError_t bq_cuda_attention(const void *qkv, const int32_t *mask, int batch, int seq_len,
                              int hidden, int heads, void *ctx, bq_cuda_dtype dt,
                              bq_attention_tiling tiling, cudaStream_t stream);

/* Attention over packed sequences (no padding): sequence i is rows [seq_offsets[i],
 * seq_offsets[i+1]) of qkv [rows, 3*hidden] and ctx [rows, hidden]; every token is real and
 * attends to the keys of its own sequence only (each sequence as bq_cuda_attention would treat
 * it alone with an all-ones mask). seq_offsets: device [n_seqs + 1] int32, nondecreasing from 0;
 * max_len >= the longest sequence (it sizes the grid: blocks past a shorter sequence's end return
 * at once). Same dtypes, paths and tilings as bq_cuda_attention. Returns cudaErrorInvalidValue on
 * bad arguments, else as bq_cuda_attention. */
cudaError_t bq_cuda_attention_varlen(const void *qkv, const int32_t *seq_offsets, int n_seqs,
                                     int max_len, int hidden, int heads, void *ctx,
                                     bq_cuda_dtype dt, bq_attention_tiling tiling,
                                     cudaStream_t stream);

/* 1 when bq_cuda_attention's tiling changes the kernel for this dtype and shape (fp16/bf16, head
 * size 64, hidden % 8 == 0, BQ_ATTENTION_KERNEL not "wmma"; aligned buffers assumed), else 0:
 * whether the engine has tilings to time. */
int bq_cuda_attention_has_tilings(bq_cuda_dtype dt, int hidden, int heads);

/* 1 when `tiling` can run here: every mma.sync tiling; the wgmma ones only in a build
 * with the wgmma kernel (a CUDA architecture list holding 90) on an sm_90 device, and not under
 * BQ_ATTENTION_KERNEL=mma. 0 otherwise, and for a value out of range. (bq_cuda_attention itself
 * runs the wgmma tiling wherever the build and device have it.) */
int bq_cuda_attention_tiling_available(bq_attention_tiling tiling);

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
