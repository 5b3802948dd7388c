/* probe_common.cuh - what bench's GEMM probes (gemm_epilogue_probe.cu, gemm_fp32_probe.cu) share:
 * a CUDA check that prints the statement, file and line and makes the probe's current function
 * return false, and a hash-based uniform fill (no cuRAND dependency). */
#ifndef BQ_PROBE_COMMON_CUH
#define BQ_PROBE_COMMON_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>

/* PROBE_NAME: the probe's name for its messages, defined before this header is included. */
#define PROBE_CHECK(stmt)                                                                          \
    do {                                                                                           \
        cudaError_t rc_ = (stmt);                                                                  \
        if (rc_ != cudaSuccess) {                                                                  \
            fprintf(stderr, "%s: %s failed: %s (%s:%d)\n", PROBE_NAME, #stmt,                      \
                    cudaGetErrorString(rc_), __FILE__, __LINE__);                                  \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

__device__ __forceinline__ void probe_store(float v, float *p) { *p = v; }
__device__ __forceinline__ void probe_store(float v, __half *p) { *p = __float2half(v); }

/* p[i] = uniform in [-scale, scale) from a hash of i and seed. */
template <typename T>
__global__ void probe_fill_uniform(T *p, size_t n, float scale, unsigned seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 16, h *= 0x7feb352du, h ^= h >> 15, h *= 0x846ca68bu, h ^= h >> 16;
        probe_store(scale * ((float)(h >> 8) * (1.0f / 8388608.0f) - 1.0f), p + i);
    }
}

#endif
