/* gemm_3xtf32.cu - the fp32 GEMM of gemm_3xtf32.cuh: bq_fp32_tensor_gemm (CUTLASS 2's Ampere-style
 * multistage kernel, cp.async + mma.sync m16n8k8 TF32, which Hopper runs too) with
 * OpMultiplyAddFastF32, so the operand split and the three products happen in registers, per
 * fragment. The bias is C with a zero leading dimension (every row the same) and beta 1. */
#include "gemm_3xtf32.cuh"
#include "kernel_common.cuh" /* bq_aligned16 */

#ifdef BQ_HAVE_CUTLASS
using Gemm3xTf32 = bq_fp32_tensor_gemm<cutlass::arch::OpMultiplyAddFastF32>;
#endif

extern "C" cudaError_t bq_cuda_gemm_3xtf32(const float *x, const float *w, const float *bias,
                                           int rows, int in, int out, float *y,
                                           cudaStream_t stream) {
    if (!x || !w || !y || rows <= 0 || in <= 0 || out <= 0) return cudaErrorInvalidValue;
#ifdef BQ_HAVE_CUTLASS
    if (in % 4 != 0 || out % 4 != 0 || !bq_aligned16(x) || !bq_aligned16(w) || !bq_aligned16(y) ||
        (bias && !bq_aligned16(bias)) || !bq_cuda_device_is_sm90())
        return cudaErrorNotSupported;
    /* bias: C = the bias row, repeated (ld 0), added with beta 1 */
    typename Gemm3xTf32::Arguments args({rows, out, in}, {x, in}, {w, in},
                                        {bias ? bias : y, bias ? 0 : out}, {y, out},
                                        {1.0f, bias ? 1.0f : 0.0f});
    Gemm3xTf32 gemm;
    if (gemm.can_implement(args) != cutlass::Status::kSuccess) return cudaErrorNotSupported;
    if (gemm.initialize(args, nullptr, stream) != cutlass::Status::kSuccess) {
        cudaGetLastError(); /* a refused cudaFuncSetAttribute inside: not for a later check */
        return cudaErrorNotSupported;
    }
    /* run() reads (and so clears) the launch's error itself: only its verdict is left */
    return gemm(stream) == cutlass::Status::kSuccess ? cudaSuccess : cudaErrorLaunchFailure;
#else /* built without CUTLASS */
    (void)bias, (void)stream;
    return cudaErrorNotSupported;
#endif
}
