/* gemm_bias_gelu.cuh - y = gelu_erf(x W^T + bias) in one GEMM: the bias and the exact (erf) GELU
 * run in the epilogue, on the fp32 accumulators, so the [rows, out] intermediate is written once
 * instead of written, read and written again by a separate bias + GELU pass. Hopper (sm_90a) only:
 * a CUTLASS warp-specialized TMA + WGMMA kernel (cuBLASLt cannot do this: its GELU epilogue is not
 * documented as the erf form, see gemm.cuh). Four tilings: two cooperative (large tiles, stream-K
 * small tiles) and two ping-pong, whose epilogue overlaps the next tile's MMAs. */
#ifndef BQ_GEMM_BIAS_GELU_CUH
#define BQ_GEMM_BIAS_GELU_CUH

#include <stddef.h>

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* The kernel's tiling (gemm_bias_gelu.cu): LARGE (128 x 256, cluster 2 x 1) for many rows, SMALL
 * (128 x 128, stream-K) for few, PINGPONG (64 x 256 per consumer warpgroup, cluster 2 x 1,
 * ping-pong schedule: one warpgroup's GELU epilogue overlaps the other's MMAs), PINGPONG_SMALL
 * (64 x 128 per consumer warpgroup, no cluster: twice PINGPONG's tiles, for batch 1). The
 * values run from 0 to BQ_GELU_TILE_COUNT - 1. */
typedef enum {
    BQ_GELU_TILE_LARGE,
    BQ_GELU_TILE_SMALL,
    BQ_GELU_TILE_PINGPONG,
    BQ_GELU_TILE_PINGPONG_SMALL
} bq_gelu_tile;
#define BQ_GELU_TILE_COUNT (BQ_GELU_TILE_PINGPONG_SMALL + 1)

/* x: [rows, in], w: [out, in] (Hugging Face layout), bias: [out], y: [rows, out]; all device
 * pointers in `dt` (fp16 or bf16), 16-byte aligned, with in and out multiples of 8; fp32
 * accumulation. workspace: device scratch for the tile scheduler (a few KB; stream-K's partial
 * sums: up to a few MB; the GEMM context's 32 MB); too small -> cudaErrorNotSupported. Enqueued on
 * `stream` (stream-K also clears its part of the workspace there), capturable in a CUDA graph.
 * Returns cudaSuccess once enqueued; cudaErrorNotSupported when this build has no CUTLASS, the
 * current device is not compute capability 9.0, dt is fp32, or the shape / alignment is not one
 * the kernel takes (the caller then uses cuBLASLt + bq_cuda_bias_gelu); cudaErrorInvalidValue for
 * NULL pointers, non-positive sizes or an unknown tile; otherwise the status of the launch. */
cudaError_t bq_cuda_gemm_bias_gelu(const void *x, const void *w, const void *bias, int rows, int in,
                                   int out, void *y, bq_cuda_dtype dt, bq_gelu_tile tile,
                                   void *workspace, size_t workspace_bytes, cudaStream_t stream);

/* 1 when this build contains the fused kernel (CUTLASS found at configure time), else 0. */
int bq_cuda_gemm_bias_gelu_built(void);

#ifdef __cplusplus
}
#endif

#if defined(__cplusplus) && defined(BQ_HAVE_CUTLASS)
/* For bq_cuda_gemm_bias_gelu only, which checks the arguments first: the kernel in tiling Tile,
 * dt fp16 or bf16, enqueued on `stream`; its return as above. Instantiated by
 * gemm_bias_gelu_tiling.cu, one tiling per compilation. */
template <bq_gelu_tile Tile>
cudaError_t bq_gemm_bias_gelu_tiled(const void *x, const void *w, const void *bias, int rows,
                                    int in, int out, void *y, bq_cuda_dtype dt, void *workspace,
                                    size_t workspace_bytes, cudaStream_t stream);
#endif
#endif
