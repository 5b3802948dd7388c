/* launch.cuh - how the forward pass's own kernels after a GEMM are launched: as `<<<>>>` does, or
 * with programmatic dependent launch (PDL, compute capability 9.0 and up), which lets a kernel's
 * blocks be launched while the kernel before it on the stream drains, instead of after it has
 * completed and its writes have been flushed. Such a kernel must wait for its predecessor
 * (bq_pdl_wait, griddepcontrol.wait) before it reads or writes global memory; ours do it first
 * thing, and the CPU emulator fails a PDL launch whose threads reach a barrier, a warp collective
 * or their exit without it. A stream opts in (bq_cuda_stream_set_pdl): the engine's, when the
 * environment sets BQ_PDL=1 (an experiment until a device run has timed it). */
#ifndef BQ_LAUNCH_CUH
#define BQ_LAUNCH_CUH

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* At most this many streams launch with PDL at once (one per engine). */
#define BQ_PDL_MAX_STREAMS 16

/* on nonzero: launch our kernels on `stream` with PDL from now on; 0: as `<<<>>>` again (call it
 * before the stream is destroyed). Thread-safe. Returns cudaSuccess, or cudaErrorInvalidValue when
 * BQ_PDL_MAX_STREAMS other streams have it on already (the stream then launches as before). */
cudaError_t bq_cuda_stream_set_pdl(cudaStream_t stream, int on);

/* 1 when `stream` launches with PDL (bq_cuda_stream_set_pdl), else 0. */
int bq_cuda_stream_pdl(cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#if defined(__cplusplus) && (defined(__CUDACC__) || defined(BQ_CUDA_EMULATED))
#include <utility>

/* griddepcontrol.wait: returns once the kernels this grid depends on have completed and their
 * writes are visible. Immediate for a grid launched without PDL. First statement of every kernel
 * that bq_launch_kernel may launch on a PDL stream. */
__device__ __forceinline__ void bq_pdl_wait() {
#if defined(BQ_CUDA_EMULATED)
    ::bq_emu::grid_dependency_wait();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/* `kernel<<<grid, block, smem, stream>>>(args...)`, with PDL where the stream has it on. `name`
 * is the kernel's, for the emulator's messages. Returns the launch status (cudaGetLastError's
 * when the launch itself succeeded, as after `<<<>>>`). */
template <typename... P, typename... A>
static inline cudaError_t bq_launch_kernel(void (*kernel)(P...), const char *name, dim3 grid,
                                           dim3 block, size_t smem, cudaStream_t stream,
                                           A &&...args) {
    const int pdl = bq_cuda_stream_pdl(stream);
#if defined(BQ_CUDA_EMULATED)
    ::bq_emu::launch(kernel, name, grid, block, smem, stream, pdl != 0)(std::forward<A>(args)...);
    return cudaGetLastError();
#else
    (void)name;
    cudaLaunchAttribute attribute;
    attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    config.attrs = &attribute;
    config.numAttrs = pdl ? 1 : 0;
    const cudaError_t rc = cudaLaunchKernelEx(&config, kernel, std::forward<A>(args)...);
    const cudaError_t last = cudaGetLastError();
    return rc != cudaSuccess ? rc : last;
#endif
}
#endif

#endif
