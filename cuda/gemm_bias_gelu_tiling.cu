/* gemm_bias_gelu_tiling.cu - one tiling of gemm_bias_gelu.cu's CUTLASS kernel, in fp16 and bf16.
 * CMakeLists.txt compiles this file four times, with BQ_GELU_TILING = each bq_gelu_tile value:
 * with all six kernels of the first three in one translation unit, that unit alone held the device
 * run's build of bertqa-gpu at 100 s on 16 cores (run 2ed4429); one unit per tiling builds in
 * parallel. The tilings and why each exists: gemm_bias_gelu.cu; the kernel template:
 * cutlass_fused_gemm.cuh. */
#include "gemm_bias_gelu.cuh"

#include "cutlass_fused_gemm.cuh"

namespace {

/* The erf GELU through bq_gelu_erf_fast rather than CUTLASS's GELU (erff): the same function to
 * 3e-7 x max(1, |x|) and, on the H200 (bench/gemm_epilogue_probe), 49152 x 1024 -> 4096 in 0.857
 * vs 0.925 ms (large tiles) and 0.846 vs 1.010 ms (ping-pong), with the same error against cuBLAS
 * + the GELU kernel (3.86e-4 normwise, both rounding to fp16) at batches 1, 8, 32 and 128.
 * The epilogue converts and stores 64 columns of the tile at a time (CUTLASS's default: 32):
 * fewer barriers and twice the GELUs in flight per thread. On the H200 (gemm_epilogue_probe, FFN-in
 * at 49152 / 12288 / 3072 / 384 rows) 0.819 / 0.196 / 0.053 / 0.019 ms against 0.835 / 0.198 /
 * 0.054 / 0.019 with large tiles, 0.832 / 0.207 / 0.057 / 0.015 against 0.846 / 0.220 / 0.062 /
 * 0.015 with ping-pong. */
using bq_cutlass::GeluErfFast;
template <typename Element>
using LargeTileGemm =
    bq_cutlass::LargeTileGemm<Element, GeluErfFast, cute::Shape<cute::_128, cute::_64>>;
template <typename Element> using SmallTileGemm = bq_cutlass::SmallTileGemm<Element, GeluErfFast>;
template <typename Element>
using PingpongTileGemm =
    bq_cutlass::PingpongTileGemm<Element, GeluErfFast, cute::Shape<cute::_64, cute::_64>>;
template <typename Element>
using PingpongSmallTileGemm =
    bq_cutlass::PingpongSmallTileGemm<Element, GeluErfFast, cute::Shape<cute::_64, cute::_64>>;

/* The kernel type of each tiling, for one element type. */
template <bq_gelu_tile Tile, typename Element> struct TiledGemm;
template <typename Element> struct TiledGemm<BQ_GELU_TILE_LARGE, Element> {
    using type = LargeTileGemm<Element>;
};
template <typename Element> struct TiledGemm<BQ_GELU_TILE_SMALL, Element> {
    using type = SmallTileGemm<Element>;
};
template <typename Element> struct TiledGemm<BQ_GELU_TILE_PINGPONG, Element> {
    using type = PingpongTileGemm<Element>;
};
template <typename Element> struct TiledGemm<BQ_GELU_TILE_PINGPONG_SMALL, Element> {
    using type = PingpongSmallTileGemm<Element>;
};

} // namespace

template <bq_gelu_tile Tile>
cudaError_t bq_gemm_bias_gelu_tiled(const void *x, const void *w, const void *bias, int rows,
                                    int in, int out, void *y, bq_cuda_dtype dt, void *workspace,
                                    size_t workspace_bytes, cudaStream_t stream) {
    using half = cutlass::half_t;
    using bf16 = cutlass::bfloat16_t;
    if (dt == BQ_CUDA_F16)
        return bq_cutlass::run_fused<half, typename TiledGemm<Tile, half>::type>(
            x, w, bias, rows, in, out, y, workspace, workspace_bytes, stream);
    return bq_cutlass::run_fused<bf16, typename TiledGemm<Tile, bf16>::type>(
        x, w, bias, rows, in, out, y, workspace, workspace_bytes, stream);
}

/* this compilation's tiling: BQ_GELU_TILING is BQ_GELU_TILE_LARGE, _SMALL, _PINGPONG or
 * _PINGPONG_SMALL (CMakeLists.txt) */
#ifndef BQ_GELU_TILING
#error "compile gemm_bias_gelu_tiling.cu with BQ_GELU_TILING defined to one bq_gelu_tile value"
#endif
template cudaError_t bq_gemm_bias_gelu_tiled<BQ_GELU_TILING>(const void *, const void *,
                                                              const void *, int, int, int, void *,
                                                              bq_cuda_dtype, void *, size_t,
                                                              cudaStream_t);
