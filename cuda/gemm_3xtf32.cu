/* gemm_3xtf32.cu - the fp32 GEMM of gemm_3xtf32.cuh: bq_fp32_tensor_gemm (CUTLASS 2's Ampere-style
 * multistage kernel, cp.async + mma.sync m16n8k8 TF32, which Hopper runs too) with
 * OpMultiplyAddFastF32, so the operand split and the three products happen in registers, per
 * fragment. The bias is C with a zero leading dimension (every row the same) and beta 1. */
#include "gemm_3xtf32.cuh"
#include "kernel_common.cuh" /* bq_aligned16 */

#ifdef BQ_HAVE_CUTLASS
using Gemm3xTf32 = bq_fp32_tensor_gemm<cutlass::arch::OpMultiplyAddFastF32>;
#endif

#if !defined(BQ_HAVE_CUTLASS) && defined(BQ_CUDA_EMULATED)
#include <stdlib.h>

/* TF32 parts of an fp32 value (10 explicit mantissa bits), as CUTLASS's OpMultiplyAddFastF32
 * splits an operand: the big part truncated, the rest rounded to nearest (ties away) */
__device__ __forceinline__ float tf32_truncate(float v) {
    return __uint_as_float(__float_as_uint(v) & 0xffffe000u);
}
__device__ __forceinline__ float tf32_round(float v) {
    if (!isfinite(v)) return v;
    return __uint_as_float((__float_as_uint(v) + 0x1000u) & 0xffffe000u);
}

/* The emulated build's stand-in for the CUTLASS kernel, which the CPU emulator cannot run: the
 * same contract and refusals, and the same arithmetic done plainly (an output element a thread,
 * grid-stride; each operand split as CUTLASS splits it, the products small.big + big.small +
 * big.big summed in fp32 in k order), so that gemm.cu's timing of it against the SGEMM path and
 * the output check run in CI. It refuses shapes of more than 2^26 multiply-adds, as the fused
 * GELU stand-in does. BQ_EMU_3XTF32_WRONG=tf32 keeps only big.big: plain TF32, as the tensor
 * cores take fp32 registers (truncated; 4.9e-4 off at test_gemm_3xtf32_plain_tf32's 384 x 64 ->
 * 128, where fp32 allows 1e-5), which the output check's 1e-4 bound must leave out. */
__global__ void emulated_3xtf32_kernel(const float *x, const float *w, const float *bias,
                                       int rows, int in, int out, float *y, int three_products) {
    const size_t n = (size_t)rows * out, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const size_t r = i / (size_t)out, o = i % (size_t)out;
        float acc = 0.0f;
        for (int k = 0; k < in; k++) {
            const float a = x[r * (size_t)in + k], b = w[o * (size_t)in + k];
            const float a_big = tf32_truncate(a), b_big = tf32_truncate(b);
            if (three_products)
                acc += tf32_round(a - a_big) * b_big + a_big * tf32_round(b - b_big);
            acc += a_big * b_big;
        }
        y[i] = bias ? acc + bias[o] : acc;
    }
}
#endif

extern "C" cudaError_t bq_cuda_gemm_3xtf32(const float *x, const float *w, const float *bias,
                                           int rows, int in, int out, float *y,
                                           cudaStream_t stream) {
    if (!x || !w || !y || rows <= 0 || in <= 0 || out <= 0) return cudaErrorInvalidValue;
#if defined(BQ_HAVE_CUTLASS) || defined(BQ_CUDA_EMULATED)
    /* what the kernel takes, and so its emulated stand-in */
    if (in % 4 != 0 || out % 4 != 0 || !bq_aligned16(x) || !bq_aligned16(w) || !bq_aligned16(y) ||
        (bias && !bq_aligned16(bias)))
        return cudaErrorNotSupported;
#endif
#ifdef BQ_HAVE_CUTLASS
    if (!bq_cuda_device_is_sm90()) return cudaErrorNotSupported;
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
#elif defined(BQ_CUDA_EMULATED) /* the stand-in above */
    if ((double)rows * in * out > (double)(1 << 26)) return cudaErrorNotSupported;
    const char *wrong = getenv("BQ_EMU_3XTF32_WRONG");
    emulated_3xtf32_kernel<<<64, 256, 0, stream>>>(x, w, bias, rows, in, out, y,
                                                   !(wrong && strcmp(wrong, "tf32") == 0));
    return cudaGetLastError();
#else /* built without CUTLASS */
    (void)bias, (void)stream;
    return cudaErrorNotSupported;
#endif
}
