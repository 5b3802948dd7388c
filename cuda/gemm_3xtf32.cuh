/* gemm_3xtf32.cuh - y = x W^T (+ bias) in fp32 on tensor cores with fp32 accuracy kept ("3xTF32"):
 * each fp32 operand is split into a TF32 part and a TF32 remainder, and three TF32 products
 * (big.big + big.small + small.big) are summed in fp32. cuBLAS's fp32 GEMM (SGEMM) runs on the
 * CUDA cores, whose fp32 rate (51.3 TFLOP/s measured on the H200, run cf3337d) bounds the fp32
 * precision's GEMMs; this runs on the tensor cores. A candidate the GEMM layer times against
 * cuBLASLt's SGEMM for the fp32 precision when BQ_FP32_3XTF32=1 (gemm.cu), until a device run has
 * measured its speed and its error (bench/gemm_fp32_probe.cu, bench/parity.py). */
#ifndef BQ_GEMM_3XTF32_CUH
#define BQ_GEMM_3XTF32_CUH

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* x: [rows, in], w: [out, in] (Hugging Face layout), bias: [out] or NULL, y: [rows, out]; fp32
 * device pointers, 16-byte aligned, in and out multiples of 4. Enqueued on `stream` (no workspace,
 * no synchronization: capturable). Returns cudaSuccess once enqueued; cudaErrorNotSupported when
 * this build has no CUTLASS, the device is not compute capability 9.0 (the kernel is built for
 * sm_90a) or the shape / alignment is not one it takes; cudaErrorInvalidValue for NULL pointers or
 * non-positive sizes; otherwise the status of the launch. */
cudaError_t bq_cuda_gemm_3xtf32(const float *x, const float *w, const float *bias, int rows, int in,
                                int out, float *y, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
