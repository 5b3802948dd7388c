/* normwise_diff.cu - sums of squared differences and of squares, and the largest difference and
 * reference element, for bq_cuda_normwise_diff: a grid-stride loop, per-thread double sums and
 * maxima, warp shuffles, then per warp two atomicAdds and two atomicMaxes (a non-negative double's
 * bits order as the double does). */
#include "kernel_common.cuh"
#include "normwise_diff.cuh"

#define NORMWISE_DIFF_THREADS 256
#define NORMWISE_DIFF_MAX_BLOCKS 1024

/* Bits: the storage type's unsigned twin, so that equal elements are found without a float
 * comparison (NaN != NaN). */
template <typename T> struct storage_bits;
template <> struct storage_bits<float> { typedef unsigned int type; };
template <> struct storage_bits<__half> { typedef unsigned short type; };
template <> struct storage_bits<__nv_bfloat16> { typedef unsigned short type; };

__device__ __forceinline__ double warp_sum_double(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ double warp_max_double(double v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v = fmax(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

/* *at = max(*at, v) for v >= 0 (+inf included) */
__device__ __forceinline__ void atomic_max_nonnegative(double *at, double v) {
    atomicMax(reinterpret_cast<unsigned long long *>(at),
              (unsigned long long)__double_as_longlong(v));
}

template <typename T>
__global__ void normwise_diff_kernel(const T *a, const T *ref, size_t n, double *sums) {
    typedef typename storage_bits<T>::type bits;
    const bits *a_bits = reinterpret_cast<const bits *>(a);
    const bits *ref_bits = reinterpret_cast<const bits *>(ref);
    double diff2 = 0.0, ref2 = 0.0, diff_max = 0.0, ref_max = 0.0;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float r = bq_load_f32(ref, i);
        ref2 += (double)r * r;
        ref_max = fmax(ref_max, isfinite(r) ? (double)fabsf(r) : (double)INFINITY);
        if (a_bits[i] == ref_bits[i]) continue;
        const float d = bq_load_f32(a, i) - r;
        diff2 += isfinite(d) ? (double)d * d : (double)INFINITY;
        diff_max = fmax(diff_max, isfinite(d) ? (double)fabsf(d) : (double)INFINITY);
    }
    diff2 = warp_sum_double(diff2);
    ref2 = warp_sum_double(ref2);
    diff_max = warp_max_double(diff_max);
    ref_max = warp_max_double(ref_max);
    if ((threadIdx.x & 31) == 0) {
        atomicAdd(&sums[0], diff2);
        atomicAdd(&sums[1], ref2);
        atomic_max_nonnegative(&sums[2], diff_max);
        atomic_max_nonnegative(&sums[3], ref_max);
    }
}

template <typename T>
static cudaError_t launch_normwise_diff(const void *a, const void *ref, size_t n, double *sums,
                                        cudaStream_t stream) {
    size_t blocks = (n + NORMWISE_DIFF_THREADS - 1) / NORMWISE_DIFF_THREADS;
    if (blocks > NORMWISE_DIFF_MAX_BLOCKS) blocks = NORMWISE_DIFF_MAX_BLOCKS;
    normwise_diff_kernel<T><<<(unsigned)blocks, NORMWISE_DIFF_THREADS, 0, stream>>>(
        (const T *)a, (const T *)ref, n, sums);
    return cudaGetLastError();
}

extern "C" cudaError_t bq_cuda_normwise_diff(const void *a, const void *ref, size_t n,
                                             bq_cuda_dtype dt, double *sums, cudaStream_t stream) {
    if (!a || !ref || !sums || n == 0) return cudaErrorInvalidValue;
    switch (dt) {
    case BQ_CUDA_F32: return launch_normwise_diff<float>(a, ref, n, sums, stream);
    case BQ_CUDA_F16: return launch_normwise_diff<__half>(a, ref, n, sums, stream);
    case BQ_CUDA_BF16: return launch_normwise_diff<__nv_bfloat16>(a, ref, n, sums, stream);
    }
    return cudaErrorInvalidValue;
}
