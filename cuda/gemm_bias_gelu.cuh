/* gemm_bias_gelu.cuh - y = gelu_erf(x W^T + bias) in one GEMM: the bias and the exact (erf) GELU
 * run in the epilogue, on the fp32 accumulators, so the [rows, out] intermediate is written once
 * instead of written, read and written again by a separate bias + GELU pass. Hopper (sm_90a) only:
 * a CUTLASS warp-specialized TMA + WGMMA kernel (cuBLASLt cannot do this: its GELU epilogue is not
 * documented as the erf form, see gemm.cuh). */
#ifndef BQ_GEMM_BIAS_GELU_CUH
#define BQ_GEMM_BIAS_GELU_CUH

#include <stddef.h>

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* x: [rows, in], w: [out, in] (Hugging Face layout), bias: [out], y: [rows, out]; all device
 * pointers in `dt` (fp16 or bf16), 16-byte aligned, with in and out multiples of 8; fp32
 * accumulation. workspace: device scratch for the kernel's tile scheduler (a few KB; the GEMM
 * context's workspace). Enqueued on `stream`, capturable in a CUDA graph.
 * Returns cudaSuccess once enqueued; cudaErrorNotSupported when this build has no CUTLASS, the
 * current device is not compute capability 9.0, dt is fp32, or the shape / alignment is not one
 * the kernel takes (the caller then uses cuBLASLt + bq_cuda_bias_gelu); cudaErrorInvalidValue for
 * NULL pointers or non-positive sizes; otherwise the status of the launch. */
cudaError_t bq_cuda_gemm_bias_gelu(const void *x, const void *w, const void *bias, int rows, int in,
                                   int out, void *y, bq_cuda_dtype dt, void *workspace,
                                   size_t workspace_bytes, cudaStream_t stream);

/* 1 when this build contains the fused kernel (CUTLASS found at configure time), else 0. */
int bq_cuda_gemm_bias_gelu_built(void);

#ifdef __cplusplus
}
#endif
#endif
