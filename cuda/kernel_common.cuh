/* kernel_common.cuh - device-side helpers shared by our kernels (CUDA C++ only, never included from
 * C): load/store of the three storage dtypes as fp32, warp reductions, and the block-wide Welford
 * merge the LayerNorm kernels use. */
#ifndef BQ_KERNEL_COMMON_CUH
#define BQ_KERNEL_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bq_math.h"
#include "cuda_check.cuh"

/* Element load / store: storage type T <-> fp32 compute. */
__device__ __forceinline__ float bq_load_f32(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float bq_load_f32(const __half *p, size_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float bq_load_f32(const __nv_bfloat16 *p, size_t i) {
    return __bfloat162float(p[i]);
}
__device__ __forceinline__ void bq_store_f32(float *p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void bq_store_f32(__half *p, size_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void bq_store_f32(__nv_bfloat16 *p, size_t i, float v) {
    p[i] = __float2bfloat16_rn(v);
}

#define BQ_FULL_WARP 0xffffffffu

__device__ __forceinline__ float bq_warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(BQ_FULL_WARP, v, offset);
    return v;
}

__device__ __forceinline__ float bq_warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(BQ_FULL_WARP, v, offset));
    return v;
}

__device__ __forceinline__ bq_welford bq_warp_welford(bq_welford s) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        bq_welford other;
        other.mean = __shfl_xor_sync(BQ_FULL_WARP, s.mean, offset);
        other.m2 = __shfl_xor_sync(BQ_FULL_WARP, s.m2, offset);
        other.count = __shfl_xor_sync(BQ_FULL_WARP, s.count, offset);
        s = bq_welford_merge(s, other);
    }
    return s;
}

/* Merge every thread's Welford state into one, returned to all threads of the block.
 * blockDim.x must be a multiple of 32 (at most 1024); every thread of the block must call it.
 * Contains __syncthreads(). Call it at most once per kernel: the result is read from per_warp[0]
 * after the last barrier, so a second call could overwrite it while slow warps still read. */
__device__ __forceinline__ bq_welford bq_block_welford(bq_welford s) {
    __shared__ bq_welford per_warp[32];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    s = bq_warp_welford(s);
    if (lane == 0) per_warp[warp] = s;
    __syncthreads();
    if (warp == 0) {
        bq_welford w = {0.0f, 0.0f, 0.0f};
        if (lane < warps) w = per_warp[lane];
        w = bq_warp_welford(w);
        if (lane == 0) per_warp[0] = w;
    }
    __syncthreads();
    return per_warp[0];
}

/* The shared end of the row LayerNorm kernels: each thread has staged its share of the row in
 * row[] (shared, fp32) and folded it into `stats`. Merge the statistics across the block (also the
 * barrier that publishes row[]), then store (row - mean) * rstd * gamma + beta at out[out_row + c]. */
template <typename T>
__device__ __forceinline__ void bq_block_layernorm_store(const float *row, bq_welford stats, int hidden,
                                                         float eps, const T *gamma, const T *beta, T *out,
                                                         size_t out_row) {
    stats = bq_block_welford(stats);
    const float rstd = bq_layernorm_rstd(stats, eps);
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
        float y = bq_layernorm_apply(row[c], stats.mean, rstd, bq_load_f32(gamma, (size_t)c),
                                     bq_load_f32(beta, (size_t)c));
        bq_store_f32(out, out_row + c, y);
    }
}

/* 16-byte vector access: 4 fp32 or 8 fp16/bf16 values per load or store, converted to / from fp32.
 * p must be 16-byte aligned. */
template <typename T> struct bq_vec16 {
    static constexpr int size = 16 / (int)sizeof(T);
};

template <typename T> __device__ __forceinline__ void bq_load16_f32(const T *p, float v[bq_vec16<T>::size]) {
    const uint4 raw = *reinterpret_cast<const uint4 *>(p);
    T e[bq_vec16<T>::size];
    memcpy((void *)e, &raw, sizeof raw); /* not a T* into the uint4: that breaks strict aliasing */
#pragma unroll
    for (int i = 0; i < bq_vec16<T>::size; i++) v[i] = bq_load_f32(e, (size_t)i);
}

/* v[i] += p[i] for one 16-byte slice of p (the bias / residual / embedding sums of the vector
 * kernels). */
template <typename T> __device__ __forceinline__ void bq_add16_f32(const T *p, float v[bq_vec16<T>::size]) {
    float w[bq_vec16<T>::size];
    bq_load16_f32(p, w);
#pragma unroll
    for (int i = 0; i < bq_vec16<T>::size; i++) v[i] += w[i];
}

template <typename T> __device__ __forceinline__ void bq_store16_f32(T *p, const float v[bq_vec16<T>::size]) {
    T e[bq_vec16<T>::size];
#pragma unroll
    for (int i = 0; i < bq_vec16<T>::size; i++) bq_store_f32(e, (size_t)i, v[i]);
    uint4 raw;
    memcpy(&raw, (const void *)e, sizeof raw);
    *reinterpret_cast<uint4 *>(p) = raw;
}

/* Sum of v over the block, returned to every thread. scratch: 33 shared floats (32 warp partials
 * and a separate result slot, so that back-to-back calls with the same scratch do not race).
 * blockDim.x a multiple of 32; every thread of the block must call it; contains __syncthreads(). */
__device__ __forceinline__ float bq_block_sum(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = bq_warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < warps ? scratch[lane] : 0.0f;
        w = bq_warp_sum(w);
        if (lane == 0) scratch[32] = w;
    }
    __syncthreads();
    return scratch[32];
}

/* The shared end of the vector LayerNorm kernels: each thread holds one 16-byte slice of the row
 * (columns col .. col + V - 1, fp32 in v); exact two-pass mean and biased variance over the block,
 * then out[at ..] = (v - mean) * rstd * gamma + beta as one 16-byte store. Every thread of the block
 * must call it (two bq_block_sum barriers); blockDim.x * V == hidden. */
template <typename T>
__device__ __forceinline__ void bq_vec_layernorm_store(float v[bq_vec16<T>::size], int hidden,
                                                       float eps, const T *gamma, const T *beta,
                                                       int col, T *out, size_t at) {
    constexpr int V = bq_vec16<T>::size;
    __shared__ float scratch[33];
    /* gamma and beta first: their loads then overlap the two reductions instead of adding a
     * memory round trip after them (a row is short: at batch 1 these kernels are latency) */
    float g[V], b[V];
    bq_load16_f32(gamma + col, g);
    bq_load16_f32(beta + col, b);
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < V; i++) sum += v[i];
    const float mean = bq_block_sum(sum, scratch) / (float)hidden;
    float sq = 0.0f;
#pragma unroll
    for (int i = 0; i < V; i++) sq += (v[i] - mean) * (v[i] - mean);
    const float var = bq_block_sum(sq, scratch) / (float)hidden; /* biased, as PyTorch */
    const float rstd = 1.0f / sqrtf(var + eps);
#pragma unroll
    for (int i = 0; i < V; i++) v[i] = bq_layernorm_apply(v[i], mean, rstd, g[i], b[i]);
    bq_store16_f32(out + at, v);
}

/* 16-byte aligned: what 16-byte vector loads, cp.async and TMA need of a pointer. */
static inline bool bq_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* Threads for the vector LayerNorm kernels (one 16-byte slice per thread), or 0 when a row of
 * `hidden` elements of `elem_bytes` does not split into a whole number of warps of slices (at
 * most 1,024 threads). */
static inline int bq_vec_row_threads(int hidden, int elem_bytes) {
    const int per_vector = 16 / elem_bytes;
    if (hidden % per_vector != 0) return 0;
    const int vectors = hidden / per_vector;
    return vectors % 32 == 0 && vectors <= 1024 ? vectors : 0;
}

/* Threads per block for a one-block-per-row kernel over `hidden` columns: a multiple of 32
 * covering the row once where possible, between 32 and 256. */
static inline int bq_row_block_threads(int hidden) {
    int threads = ((hidden + 31) / 32) * 32;
    if (threads < 32) threads = 32;
    if (threads > 256) threads = 256;
    return threads;
}

/* Largest row (in fp32 elements) the one-block-per-row kernels stage in shared memory. */
#define BQ_MAX_ROW_HIDDEN 8192

#endif
