/* cutlass_fused_gemm.cuh - y = act(x W^T + bias) on CUTLASS 3 (Hopper): TMA loads, WGMMA with fp32
 * accumulators, the per-column bias and an elementwise activation (a cutlass::epilogue::thread
 * functor) in the epilogue, and the three tilings gemm_bias_gelu.cu times (see there for why each).
 * Shared by cuda/gemm_bias_gelu.cu (activation: the erf GELU) and bench/gemm_epilogue_probe.cu,
 * which times the same kernels with other activations to show what the epilogue costs.
 *
 * Layout: CUTLASS computes D[M, N] = A[M, K] B[N, K]^T ("TN"): A row-major (our x, K contiguous),
 * B column-major = stored [N, K] with K contiguous (our W [out, in] exactly), D row-major (our y).
 * The bias is per column of D (one per output feature): LinCombPerColBiasEltAct. beta = 0, so C
 * is never read (it is given y's address only because the epilogue wants a valid descriptor).
 * Include only from a translation unit built for sm_90a with CUTLASS on the include path, with
 * -DNDEBUG (a device assert() between WGMMAs serializes them, ptxas warning C7510). */
#ifndef BQ_CUTLASS_FUSED_GEMM_CUH
#define BQ_CUTLASS_FUSED_GEMM_CUH

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

#include "bq_math.h"

namespace bq_cutlass {

/* The erf GELU as an epilogue activation, through bq_gelu_erf_fast (bq_math.h): the same function
 * as cutlass::epilogue::thread::GELU to within 3e-7 x max(1, |x|), at about half the FP32
 * instructions and with no divergent branch. */
template <typename T>
struct GeluErfFast {
    static const bool kIsHeavy = true;
    CUTLASS_HOST_DEVICE T operator()(T const &value) const {
        return T(bq_gelu_erf_fast(static_cast<float>(value)));
    }
};

template <typename T, int N>
struct GeluErfFast<cutlass::Array<T, N>> {
    static const bool kIsHeavy = true;
    CUTLASS_HOST_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const &value) const {
        cutlass::Array<T, N> y;
        const GeluErfFast<T> gelu;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; ++i) y[i] = gelu(value[i]);
        return y;
    }
};

/* MainloopSchedule and EpilogueSchedule must match: KernelTmaWarpSpecializedCooperative with
 * TmaWarpSpecializedCooperative, KernelTmaWarpSpecializedPingpong with TmaWarpSpecialized. */
/* EpilogueTile: the sub-tile the epilogue converts, stores to shared memory and sends by TMA at a
 * time, between barriers (Auto: 128 x 32 for the large tiles); a larger one means fewer barriers
 * and more independent GELUs in flight per thread, and less shared memory for the mainloop. */
template <typename Element, template <typename> class Activation, typename TileShape,
          typename ClusterShape, typename MainloopSchedule, typename EpilogueSchedule,
          typename Scheduler,
          typename EpilogueTile = cutlass::epilogue::collective::EpilogueTileAuto>
struct FusedGemm {
    using Accumulator = float;
    using Compute = float;
    static constexpr int kAlignment = 16 / sizeof(Element); /* 16-byte TMA rows */
    using FusionOp =
        cutlass::epilogue::fusion::LinCombPerColBiasEltAct<Activation, Element,
                                                           Compute, Element, Element, Compute>;
    using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
        cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
        EpilogueTile, Accumulator, Compute, Element,
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

template <typename Element, template <typename> class Activation,
          typename EpilogueTile = cutlass::epilogue::collective::EpilogueTileAuto>
using LargeTileGemm = typename FusedGemm<
    Element, Activation, cute::Shape<cute::_128, cute::_256, cute::_64>,
    cute::Shape<cute::_2, cute::_1, cute::_1>, cutlass::gemm::KernelTmaWarpSpecializedCooperative,
    cutlass::epilogue::TmaWarpSpecializedCooperative, cutlass::gemm::PersistentScheduler,
    EpilogueTile>::Gemm;
template <typename Element, template <typename> class Activation>
using SmallTileGemm = typename FusedGemm<
    Element, Activation, cute::Shape<cute::_128, cute::_128, cute::_64>,
    cute::Shape<cute::_1, cute::_1, cute::_1>, cutlass::gemm::KernelTmaWarpSpecializedCooperative,
    cutlass::epilogue::TmaWarpSpecializedCooperative, cutlass::gemm::StreamKScheduler>::Gemm;
/* The ping-pong schedule: each consumer warpgroup owns a TileShape tile, persistent scheduler. */
template <typename Element, template <typename> class Activation, typename TileShape,
          typename ClusterShape, typename EpilogueTile>
using PingpongGemm = typename FusedGemm<
    Element, Activation, TileShape, ClusterShape, cutlass::gemm::KernelTmaWarpSpecializedPingpong,
    cutlass::epilogue::TmaWarpSpecialized, cutlass::gemm::PersistentScheduler, EpilogueTile>::Gemm;
/* 64 x 256 per consumer warpgroup: 128 fp32 accumulators a thread, within the 232 registers the
 * ping-pong kernel gives its MMA warpgroups. */
template <typename Element, template <typename> class Activation,
          typename EpilogueTile = cutlass::epilogue::collective::EpilogueTileAuto>
using PingpongTileGemm =
    PingpongGemm<Element, Activation, cute::Shape<cute::_64, cute::_256, cute::_64>,
                 cute::Shape<cute::_2, cute::_1, cute::_1>, EpilogueTile>;
/* 64 x 128 per consumer warpgroup, no cluster: for few rows (batch 1's 384), twice the tiles of
 * PingpongTileGemm and no pair of CTAs that must be co-scheduled. */
template <typename Element, template <typename> class Activation,
          typename EpilogueTile = cutlass::epilogue::collective::EpilogueTileAuto>
using PingpongSmallTileGemm =
    PingpongGemm<Element, Activation, cute::Shape<cute::_64, cute::_128, cute::_64>,
                 cute::Shape<cute::_1, cute::_1, cute::_1>, EpilogueTile>;

/* Enqueues y = act(x W^T + bias) ([rows, in] x [out, in]^T + [out] -> [rows, out]) on `stream`.
 * cudaErrorNotSupported when the kernel cannot take the shape / alignment or the workspace is too
 * small; else the status of the launch. */
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

} // namespace bq_cutlass

#endif
