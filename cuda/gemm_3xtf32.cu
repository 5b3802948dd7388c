/* gemm_3xtf32.cu - the fp32 GEMM of gemm_3xtf32.cuh on CUTLASS 2's Ampere-style multistage kernel
 * (cp.async + mma.sync m16n8k8 TF32, which Hopper runs too) with OpMultiplyAddFastF32: the operand
 * split and the three products happen in registers, per fragment. Tiles 128 x 128 x 16 of 4 warps
 * of 64 x 64, 4 stages: CUTLASS's 3xTF32 example configuration. Row-major y = x W^T is
 * A = x (row-major rows x in), B = W^T (column-major in x out, ld in), C = D = y (row-major); the
 * bias is C with a zero leading dimension (every row the same) and beta 1. */
#include "gemm_3xtf32.cuh"
#include "kernel_common.cuh" /* bq_aligned16 */

#ifdef BQ_HAVE_CUTLASS
#include "cutlass/gemm/device/gemm.h"

namespace {

using Gemm3xTf32 = cutlass::gemm::device::Gemm<
    float, cutlass::layout::RowMajor, float, cutlass::layout::ColumnMajor, float,
    cutlass::layout::RowMajor, float, cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80,
    cutlass::gemm::GemmShape<128, 128, 16>, cutlass::gemm::GemmShape<64, 64, 16>,
    cutlass::gemm::GemmShape<16, 8, 8>,
    cutlass::epilogue::thread::LinearCombination<float, 4, float, float>,
    cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<>, 4, 4, 4, false,
    cutlass::arch::OpMultiplyAddFastF32>;

} // namespace
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
    if (gemm.initialize(args, nullptr, stream) != cutlass::Status::kSuccess)
        return cudaErrorNotSupported;
    if (gemm(stream) != cutlass::Status::kSuccess) {
        const cudaError_t rc = cudaGetLastError();
        return rc != cudaSuccess ? rc : cudaErrorLaunchFailure;
    }
    return cudaGetLastError();
#else /* built without CUTLASS */
    (void)bias, (void)stream;
    return cudaErrorNotSupported;
#endif
}
