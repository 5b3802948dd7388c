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

#if defined(__cplusplus) && defined(BQ_HAVE_CUTLASS)
#include "cutlass/gemm/device/gemm.h"
/* The kernel, for CUTLASS targets (bench/gemm_fp32_probe.cu times it beside plain TF32): CUTLASS
 * 2's multistage GEMM, A = x row-major, B = W^T column-major (ld in), C = D = y row-major, 128 x
 * 128 x 16 tiles of 4 warps of 64 x 64, mma.sync m16n8k8, 4 stages (CUTLASS's 3xTF32 example
 * configuration). MathOp: cutlass::arch::OpMultiplyAddFastF32 (3xTF32) or OpMultiplyAdd (TF32). */
template <typename MathOp>
using bq_fp32_tensor_gemm = cutlass::gemm::device::Gemm<
    float, cutlass::layout::RowMajor, float, cutlass::layout::ColumnMajor, float,
    cutlass::layout::RowMajor, float, cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80,
    cutlass::gemm::GemmShape<128, 128, 16>, cutlass::gemm::GemmShape<64, 64, 16>,
    cutlass::gemm::GemmShape<16, 8, 8>,
    cutlass::epilogue::thread::LinearCombination<float, 4, float, float>,
    cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<>, 4, 4, 4, false, MathOp>;
#endif
#endif
