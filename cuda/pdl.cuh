/* pdl.cuh - programmatic dependent launch (PDL, sm_90+) for our kernels (CUDA C++ only).
 *
 * Why: at batch 1 a layer is ~10 kernels of 3-13 us each, and every boundary costs the next
 * kernel's launch and prologue on top of the previous one's tail. Launched as a programmatic
 * dependent, a kernel may be scheduled before the kernel ahead of it on the stream has finished;
 * it then waits at bq_pdl_wait() until that kernel has completed and its writes are visible.
 *
 * The contract every kernel launched through bq_launch() keeps: bq_pdl_wait() is its first
 * statement, in every thread, before any global read or write. Then the overlap covers launch
 * and scheduling only, and the result is the same as with plain stream order. (A kernel that
 * waits also keeps the chain intact: it cannot finish before the kernel ahead of it has.)
 *
 * Our kernels after a GEMM (attention, the LayerNorms, GELU) and the QA head go out this way. The
 * GEMMs do not: cuBLASLt launches its own, and CUTLASS 4.2's stream-K scheduler (our batch-1
 * fused GEMM + GELU) does not compile with its PDL switch (CUTLASS_ENABLE_GDC_FOR_SM90).
 *
 * BQ_PDL=0 turns it off (plain launches), so a benchmark can measure both in one run. */
#ifndef BQ_PDL_CUH
#define BQ_PDL_CUH

#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

/* Wait for the kernel this one was launched after (as a programmatic dependent) to complete and
 * flush its memory. Returns at once when the launch was a plain one or on cards before sm_90. */
__device__ __forceinline__ void bq_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/* 1 when launches on the current device go out as programmatic dependents: compute capability
 * 9.0 or newer and BQ_PDL is not "0". Asked once per device (a benign race writes the same
 * value). */
inline bool bq_pdl_enabled() {
    static int known[64]; /* 0 unknown, 1 yes, 2 no */
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return false;
    if (!known[device]) {
        int major = 0;
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
        const char *v = getenv("BQ_PDL");
        known[device] = major >= 9 && !(v && strcmp(v, "0") == 0) ? 1 : 2;
    }
    return known[device] == 1;
}

/* kernel<<<grid, block, shared_bytes, stream>>>(args...), as a programmatic dependent of the work
 * ahead of it on the stream when bq_pdl_enabled(). The kernel must keep the contract above.
 * Returns the launch's status. */
template <typename... Params, typename... Args>
inline cudaError_t bq_launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                             cudaStream_t stream, Args... args) {
#ifdef BQ_CUDA_EMULATED
    /* the CPU emulator (tests/emu) runs a stream's work in order, one launch at a time: a plain
     * launch there gives what a programmatic one gives on the device */
    ::bq_emu::launch(kernel, "bq_launch", grid, block, shared_bytes, stream)(args...);
    return cudaGetLastError();
#else
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = shared_bytes;
    config.stream = stream;
    config.attrs = attribute;
    config.numAttrs = bq_pdl_enabled() ? 1 : 0;
    return cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
#endif
}

#endif
