/* attention_wgmma.cuh - fused attention on Hopper's warpgroup MMA (wgmma): fp16/bf16, head size
 * 64, 128 query rows a block. attention.cu dispatches to it as the tilings BQ_ATTENTION_WGMMA128
 * and BQ_ATTENTION_WGMMA128_OVERLAP; it exists only in builds that target sm_90 (compiled for
 * sm_90a) and runs only on an sm_90 device. */
#ifndef BQ_ATTENTION_WGMMA_CUH
#define BQ_ATTENTION_WGMMA_CUH

#include <stdint.h>

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build has the wgmma kernel (CMake compiled attention_wgmma.cu for sm_90a), else 0.
 * Says nothing about the device: see bq_cuda_device_is_sm90. */
int bq_attention_wgmma_built(void);

/* Launch it on `stream`: qkv, mask / seq_offsets, ctx and the shapes exactly as
 * bq_cuda_attention / bq_cuda_attention_varlen take them (one of mask and seq_offsets NULL),
 * already checked there; dt BQ_CUDA_F16 or BQ_CUDA_BF16, hidden / heads == 64, qkv 16-byte and
 * ctx 4-byte aligned. overlap: 0 for the plain schedule (each MMA group waited for at once), 1 for
 * the one where the next key tile's scores and softmax overlap this tile's P V. Returns cudaErrorNotSupported where the kernel is not built or the device
 * is not sm_90, cudaErrorInvalidValue for another dtype or head size, else the status of
 * cudaFuncSetAttribute (its shared memory passes 48 KB) or of the launch. */
cudaError_t bq_attention_wgmma_launch(const void *qkv, const int32_t *mask,
                                      const int32_t *seq_offsets, int batch, int seq_len,
                                      int hidden, int heads, void *ctx, bq_cuda_dtype dt,
                                      int overlap, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
