/* gemm_bias_gelu.cu - y = gelu_erf(x W^T + bias) on CUTLASS 3 (Hopper): TMA loads, WGMMA with fp32
 * accumulators, and the per-column bias + erf GELU (cutlass::epilogue::thread::GELU, which is
 * 0.5 x (1 + erf(x / sqrt 2)), the form BERT uses) fused into the epilogue.
 *
 * Layout: CUTLASS computes D[M, N] = A[M, K] B[N, K]^T ("TN"): A row-major (our x, K contiguous),
 * B column-major = stored [N, K] with K contiguous (our W [out, in] exactly), D row-major (our y).
 * The bias is per column of D (one per output feature): LinCombPerColBiasEltAct. beta = 0, so C
 * is never read (it is given y's address only because the epilogue wants a valid descriptor).
 *
 * Three tilings. Two use the cooperative warp-specialized schedule (both consumer warpgroups share
 * each tile, so the epilogue runs after the tile's mainloop with no MMA in flight):
 *   BQ_GELU_TILE_LARGE: 128 x 256 x 64, cluster 2 x 1, persistent tile scheduler, the
 *     configuration CUTLASS's own Hopper examples use for large fp16 GEMMs (batches of BERT rows);
 *   BQ_GELU_TILE_SMALL: 128 x 128 x 64, cluster 1 x 1, stream-K scheduler: for few rows (batch 1 =
 *     384 rows x 4096 outputs is 48 large tiles for 132 SMs), stream-K splits the K loop of the
 *     tiles over all SMs and reduces the partial sums through the workspace.
 * The third uses the ping-pong schedule, because the erf GELU epilogue is not cheap (on an H200 the
 * cooperative LARGE kernel took ~0.24 ms more than the plain GEMM for 49152 x 1024 -> 4096):
 *   BQ_GELU_TILE_PINGPONG: 64 x 256 x 64, cluster 2 x 1, persistent: each consumer warpgroup owns
 *     a whole tile and the two take turns on the tensor cores, so one warpgroup's bias + GELU
 *     epilogue overlaps the other's MMAs. 64 x 256 is one m64n256 WGMMA per k step (128 x 128, the
 *     tile of CUTLASS's collective-builder example, was slower than LARGE at every batch on the
 *     H200: 0.971 vs 0.786 ms at 49152 rows). The ping-pong kernel takes no stream-K scheduler.
 * gemm.cu times all three against cuBLASLt + the GELU kernel per shape. Built only for sm_90a (see
 * CMakeLists.txt); -DNDEBUG is required, since a device assert() between WGMMAs serializes them
 * (ptxas warning C7510). */
#include "gemm_bias_gelu.cuh"
#include "kernel_common.cuh" /* bq_aligned16 */

#ifdef BQ_HAVE_CUTLASS

#include <cuda_runtime.h>

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/operations.hpp"
#include "cutlass/epilogue/thread/activation.h"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/util/packed_stride.hpp"

namespace {

/* MainloopSchedule and EpilogueSchedule must match: KernelTmaWarpSpecializedCooperative with
 * TmaWarpSpecializedCooperative, KernelTmaWarpSpecializedPingpong with TmaWarpSpecialized. */
template <typename Element, typename TileShape, typename ClusterShape, typename MainloopSchedule,
          typename EpilogueSchedule, typename Scheduler>
struct FusedGemm {
    using Accumulator = float;
    using Compute = float;
    static constexpr int kAlignment = 16 / sizeof(Element); /* 16-byte TMA rows */
    using FusionOp =
        cutlass::epilogue::fusion::LinCombPerColBiasEltAct<cutlass::epilogue::thread::GELU, Element,
                                                           Compute, Element, Element, Compute>;
    using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
        cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
        cutlass::epilogue::collective::EpilogueTileAuto, Accumulator, Compute, Element,
        cutlass::layout::RowMajor, kAlignment, Element, cutlass::layout::RowMajor, kAlignment,
        EpilogueSchedule, FusionOp>::CollectiveOp;
    using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
        cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Element, cutlass::layout::RowMajor,
        kAlignment, Element, cutlass::layout::ColumnMajor, kAlignment, Accumulator, TileShape,
        ClusterShape,
        cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
            sizeof(typename Epilogue::SharedStorage))>,
        MainloopSchedule>::CollectiveOp;
    using Kernel = cutlass::gemm::kernel::GemmUniversal<cute::Shape<int, int, int, int>, Mainloop,
                                                        Epilogue, Scheduler>;
    using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;
};

template <typename Element>
using LargeTileGemm = typename FusedGemm<
    Element, cute::Shape<cute::_128, cute::_256, cute::_64>,
    cute::Shape<cute::_2, cute::_1, cute::_1>, cutlass::gemm::KernelTmaWarpSpecializedCooperative,
    cutlass::epilogue::TmaWarpSpecializedCooperative, cutlass::gemm::PersistentScheduler>::Gemm;
template <typename Element>
using SmallTileGemm = typename FusedGemm<
    Element, cute::Shape<cute::_128, cute::_128, cute::_64>,
    cute::Shape<cute::_1, cute::_1, cute::_1>, cutlass::gemm::KernelTmaWarpSpecializedCooperative,
    cutlass::epilogue::TmaWarpSpecializedCooperative, cutlass::gemm::StreamKScheduler>::Gemm;
/* 64 x 256 per consumer warpgroup: 128 fp32 accumulators a thread, within the 232 registers the
 * ping-pong kernel gives its MMA warpgroups. */
template <typename Element>
using PingpongTileGemm = typename FusedGemm<
    Element, cute::Shape<cute::_64, cute::_256, cute::_64>,
    cute::Shape<cute::_2, cute::_1, cute::_1>, cutlass::gemm::KernelTmaWarpSpecializedPingpong,
    cutlass::epilogue::TmaWarpSpecialized, cutlass::gemm::PersistentScheduler>::Gemm;

template <typename Element, typename Gemm>
cudaError_t run_fused(const void *x, const void *w, const void *bias, int rows, int in, int out,
                      void *y, void *workspace, size_t workspace_bytes, cudaStream_t stream) {
    using Kernel = typename Gemm::GemmKernel;
    const int M = rows, N = out, K = in;
    auto stride_a = cutlass::make_cute_packed_stride(typename Kernel::StrideA{}, cute::make_shape(M, K, 1));
    auto stride_b = cutlass::make_cute_packed_stride(typename Kernel::StrideB{}, cute::make_shape(N, K, 1));
    auto stride_c = cutlass::make_cute_packed_stride(typename Kernel::StrideC{}, cute::make_shape(M, N, 1));
    auto stride_d = cutlass::make_cute_packed_stride(typename Kernel::StrideD{}, cute::make_shape(M, N, 1));
    typename Gemm::Arguments args{cutlass::gemm::GemmUniversalMode::kGemm,
                                  {M, N, K, 1},
                                  {static_cast<const Element *>(x), stride_a,
                                   static_cast<const Element *>(w), stride_b},
                                  {{}, static_cast<const Element *>(y), stride_c,
                                   static_cast<Element *>(y), stride_d}};
    args.epilogue.thread.alpha = 1.0f;
    args.epilogue.thread.beta = 0.0f;
    args.epilogue.thread.bias_ptr = static_cast<const Element *>(bias);

    Gemm gemm;
    if (gemm.can_implement(args) != cutlass::Status::kSuccess) return cudaErrorNotSupported;
    if (Gemm::get_workspace_size(args) > workspace_bytes) return cudaErrorNotSupported;
    if (gemm.initialize(args, workspace, stream) != cutlass::Status::kSuccess) {
        const cudaError_t rc = cudaGetLastError();
        return rc != cudaSuccess ? rc : cudaErrorLaunchFailure;
    }
    if (gemm.run(stream) != cutlass::Status::kSuccess) {
        const cudaError_t rc = cudaGetLastError();
        return rc != cudaSuccess ? rc : cudaErrorLaunchFailure;
    }
    return cudaGetLastError();
}

/* One tiling (LargeTileGemm / SmallTileGemm / PingpongTileGemm) in the element type of dt (fp16
 * or bf16). */
template <template <typename> class TiledGemm>
cudaError_t run_tiling(const void *x, const void *w, const void *bias, int rows, int in, int out,
                       void *y, bq_cuda_dtype dt, void *workspace, size_t workspace_bytes,
                       cudaStream_t stream) {
    using half = cutlass::half_t;
    using bf16 = cutlass::bfloat16_t;
    if (dt == BQ_CUDA_F16)
        return run_fused<half, TiledGemm<half>>(x, w, bias, rows, in, out, y, workspace,
                                                workspace_bytes, stream);
    return run_fused<bf16, TiledGemm<bf16>>(x, w, bias, rows, in, out, y, workspace,
                                            workspace_bytes, stream);
}

/* sm_90a code runs on compute capability 9.0 only; asked once per device. */
bool device_is_sm90() {
    static int known[64]; /* 0 unknown, 1 yes, 2 no; a benign race writes the same value */
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return false;
    if (!known[device]) {
        int major = 0, minor = 0;
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
        known[device] = major == 9 && minor == 0 ? 1 : 2;
    }
    return known[device] == 1;
}

} // namespace

#endif /* BQ_HAVE_CUTLASS */

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
#ifdef BQ_HAVE_CUTLASS
    if (dt == BQ_CUDA_F32 || in % 8 != 0 || out % 8 != 0) return cudaErrorNotSupported;
    if (!bq_aligned16(x) || !bq_aligned16(w) || !bq_aligned16(bias) || !bq_aligned16(y) ||
        !bq_aligned16(workspace))
        return cudaErrorNotSupported;
    if (!device_is_sm90()) return cudaErrorNotSupported;
    if (tile == BQ_GELU_TILE_LARGE)
        return run_tiling<LargeTileGemm>(x, w, bias, rows, in, out, y, dt, workspace,
                                         workspace_bytes, stream);
    if (tile == BQ_GELU_TILE_SMALL)
        return run_tiling<SmallTileGemm>(x, w, bias, rows, in, out, y, dt, workspace,
                                         workspace_bytes, stream);
    if (tile == BQ_GELU_TILE_PINGPONG)
        return run_tiling<PingpongTileGemm>(x, w, bias, rows, in, out, y, dt, workspace,
                                            workspace_bytes, stream);
    return cudaErrorInvalidValue;
#else /* built without CUTLASS */
    (void)dt, (void)tile, (void)workspace, (void)workspace_bytes, (void)stream;
    return cudaErrorNotSupported;
#endif
}
