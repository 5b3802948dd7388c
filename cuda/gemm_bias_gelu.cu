/* gemm_bias_gelu.cu - y = gelu_erf(x W^T + bias) on CUTLASS 3 (Hopper): TMA loads, WGMMA with fp32
 * accumulators, and the per-column bias + erf GELU (0.5 x (1 + erf(x / sqrt 2)), the form BERT
 * uses; bq_gelu_erf_fast) fused into the epilogue.
 *
 * The kernel template, its layout and the tilings: cutlass_fused_gemm.cuh.
 *
 * Four tilings. Two use the cooperative warp-specialized schedule (both consumer warpgroups share
 * each tile, so the epilogue runs after the tile's mainloop with no MMA in flight):
 *   BQ_GELU_TILE_LARGE: 128 x 256 x 64, cluster 2 x 1, persistent tile scheduler, the
 *     configuration CUTLASS's own Hopper examples use for large fp16 GEMMs (batches of BERT rows);
 *   BQ_GELU_TILE_SMALL: 128 x 128 x 64, cluster 1 x 1, stream-K scheduler: for few rows (batch 1 =
 *     384 rows x 4096 outputs is 48 large tiles for 132 SMs), stream-K splits the K loop of the
 *     tiles over all SMs and reduces the partial sums through the workspace.
 * The other two use the ping-pong schedule, because the erf GELU epilogue is not cheap (on an H200 the
 * cooperative LARGE kernel took ~0.24 ms more than the plain GEMM for 49152 x 1024 -> 4096):
 *   BQ_GELU_TILE_PINGPONG: 64 x 256 x 64, cluster 2 x 1, persistent: each consumer warpgroup owns
 *     a whole tile and the two take turns on the tensor cores, so one warpgroup's bias + GELU
 *     epilogue overlaps the other's MMAs. 64 x 256 is one m64n256 WGMMA per k step (128 x 128, the
 *     tile of CUTLASS's collective-builder example, was slower than LARGE at every batch on the
 *     H200: 0.971 vs 0.786 ms at 49152 rows). The ping-pong kernel takes no stream-K scheduler.
 *   BQ_GELU_TILE_PINGPONG_SMALL: 64 x 128 x 64, cluster 1 x 1, persistent: for batch 1, where
 *     cuBLASLt's GEMM (8.5 us for 384 x 1024 -> 4096 on the H200) + the GELU kernel (~4.4 us) beat
 *     every other tiling (SMALL 13.5 us: stream-K's partial-sum fixup; PINGPONG 15.9: its 96 tiles
 *     leave SMs idle). 384 rows give it 192 tiles, about one and a half per SM, with the two
 *     warpgroups of an SM taking turns.
 * gemm.cu times all four against cuBLASLt + the GELU kernel per shape. Built only for sm_90a (see
 * CMakeLists.txt). The kernels themselves are instantiated in gemm_bias_gelu_tiling.cu, one tiling
 * per compilation, so that nvcc builds the four in parallel. */
#include "gemm_bias_gelu.cuh"
#include "kernel_common.cuh" /* bq_aligned16 */

#if !defined(BQ_HAVE_CUTLASS) && defined(BQ_CUDA_EMULATED)
#include <stdlib.h>

/* The emulated build's stand-in for the CUTLASS kernel, which the CPU emulator cannot run: the
 * same contract and refusals, computed plainly (an output element a thread, grid-stride, fp32
 * sums in k order, bq_gelu_erf_fast), so that gemm.cu's choice among the fused tilings (timing,
 * output check, untimed rule, presets) runs in CI. It models neither the kernel's tiles nor its
 * speed, and it refuses shapes of more than 2^26 multiply-adds (as the kernel refuses a shape it
 * does not take), which the emulator would spend seconds a run on while a shape is timed.
 * BQ_EMU_FUSED_GELU_WRONG=all (or one tiling: large, small, pingpong, pingpong-small) leaves the
 * bias out, as a fused kernel wrong on some card would: such output must never reach a caller. */
template <typename T>
__global__ void emulated_fused_gelu_kernel(const T *x, const T *w, const T *bias, int rows,
                                           int in, int out, T *y, int with_bias) {
    const size_t n = (size_t)rows * out, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const size_t r = i / (size_t)out, o = i % (size_t)out;
        float acc = 0.0f;
        for (int k = 0; k < in; k++)
            acc += bq_load_f32(x, r * (size_t)in + k) * bq_load_f32(w, o * (size_t)in + k);
        if (with_bias) acc += bq_load_f32(bias, o);
        bq_store_f32(y, i, bq_gelu_erf_fast(acc));
    }
}

template <typename T>
static cudaError_t launch_emulated_fused_gelu(const void *x, const void *w, const void *bias,
                                              int rows, int in, int out, void *y,
                                              bq_gelu_tile tile, cudaStream_t stream) {
    static const char *const names[BQ_GELU_TILE_COUNT] = {"large", "small", "pingpong",
                                                          "pingpong-small"};
    const char *wrong = getenv("BQ_EMU_FUSED_GELU_WRONG");
    const int with_bias = !(wrong && (strcmp(wrong, "all") == 0 || strcmp(wrong, names[tile]) == 0));
    emulated_fused_gelu_kernel<T><<<64, 256, 0, stream>>>((const T *)x, (const T *)w,
                                                          (const T *)bias, rows, in, out, (T *)y,
                                                          with_bias);
    return cudaGetLastError();
}
#endif

extern "C" int bq_cuda_gemm_bias_gelu_built(void) {
#ifdef BQ_HAVE_CUTLASS
    return 1;
#else
    return 0;
#endif
}

extern "C" cudaError_t bq_cuda_gemm_bias_gelu(const void *x, const void *w, const void *bias,
                                              int rows, int in, int out, void *y, bq_cuda_dtype dt,
                                              bq_gelu_tile tile, void *workspace,
                                              size_t workspace_bytes, cudaStream_t stream) {
    if (!x || !w || !bias || !y || rows <= 0 || in <= 0 || out <= 0) return cudaErrorInvalidValue;
#if defined(BQ_HAVE_CUTLASS) || defined(BQ_CUDA_EMULATED)
    /* what the kernel takes, and so its emulated stand-in */
    if (dt == BQ_CUDA_F32 || in % 8 != 0 || out % 8 != 0) return cudaErrorNotSupported;
    if (!bq_aligned16(x) || !bq_aligned16(w) || !bq_aligned16(bias) || !bq_aligned16(y) ||
        !bq_aligned16(workspace))
        return cudaErrorNotSupported;
#endif
#ifdef BQ_HAVE_CUTLASS
    if (!bq_cuda_device_is_sm90()) return cudaErrorNotSupported;
    switch (tile) {
    case BQ_GELU_TILE_LARGE:
        return bq_gemm_bias_gelu_tiled<BQ_GELU_TILE_LARGE>(x, w, bias, rows, in, out, y, dt,
                                                           workspace, workspace_bytes, stream);
    case BQ_GELU_TILE_SMALL:
        return bq_gemm_bias_gelu_tiled<BQ_GELU_TILE_SMALL>(x, w, bias, rows, in, out, y, dt,
                                                           workspace, workspace_bytes, stream);
    case BQ_GELU_TILE_PINGPONG:
        return bq_gemm_bias_gelu_tiled<BQ_GELU_TILE_PINGPONG>(x, w, bias, rows, in, out, y, dt,
                                                              workspace, workspace_bytes, stream);
    case BQ_GELU_TILE_PINGPONG_SMALL:
        return bq_gemm_bias_gelu_tiled<BQ_GELU_TILE_PINGPONG_SMALL>(
            x, w, bias, rows, in, out, y, dt, workspace, workspace_bytes, stream);
    }
    return cudaErrorInvalidValue;
#elif defined(BQ_CUDA_EMULATED) /* the stand-in above */
    (void)workspace_bytes;
    if ((double)rows * in * out > (double)(1 << 26)) return cudaErrorNotSupported;
    if ((int)tile < 0 || (int)tile >= BQ_GELU_TILE_COUNT) return cudaErrorInvalidValue;
    return dt == BQ_CUDA_F16
               ? launch_emulated_fused_gelu<__half>(x, w, bias, rows, in, out, y, tile, stream)
               : launch_emulated_fused_gelu<__nv_bfloat16>(x, w, bias, rows, in, out, y, tile,
                                                           stream);
#else /* built without CUTLASS */
    (void)dt, (void)tile, (void)workspace, (void)workspace_bytes, (void)stream;
    return cudaErrorNotSupported;
#endif
}
