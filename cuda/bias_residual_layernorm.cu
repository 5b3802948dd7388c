/* bias_residual_layernorm.cu - bias add + residual add + LayerNorm in one pass, one block per row.
 *
 * Vector path (hidden a multiple of 32 x 16-byte vectors, at most 1,024 vectors, 16-byte aligned
 * pointers; BERT's 1024 and 768 in every dtype): each thread holds one 16-byte slice of the row
 * (8 fp16/bf16 or 4 fp32 values) in registers from its loads to its store: one read of x, residual
 * and bias, one write of out, exact two-pass mean and variance over the registers. A thread reads
 * only the slice it later writes, so out may alias x or residual.
 * General path (any hidden up to BQ_MAX_ROW_HIDDEN): element-strided, x + bias + residual staged
 * in shared memory (fp32) before any output is written, Welford statistics. */
#include "bias_residual_layernorm.cuh"
#include "kernel_common.cuh"

template <typename T>
__global__ void __launch_bounds__(1024)
bias_residual_layernorm_vec_kernel(const T *x, const T *bias, const T *residual, const T *gamma,
                                   const T *beta, int hidden, float eps, T *out) {
    constexpr int V = bq_vec16<T>::size;
    const int col = threadIdx.x * V;
    const size_t at = (size_t)blockIdx.x * hidden + col;
    float v[V]; /* this thread's slice of x + residual + bias, fp32 */
    bq_load16_f32(x + at, v);
    bq_add16_f32(residual + at, v);
    if (bias) bq_add16_f32(bias + col, v);
    bq_vec_layernorm_store(v, hidden, eps, gamma, beta, col, out, at);
}

template <typename T>
__global__ void bias_residual_layernorm_kernel(const T *x, const T *bias, const T *residual,
                                               const T *gamma, const T *beta, int hidden,
                                               float eps, T *out) {
    extern __shared__ float row[]; /* [hidden] x + bias + residual, fp32 */
    const size_t base = (size_t)blockIdx.x * hidden;

    bq_welford stats = {0.0f, 0.0f, 0.0f};
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
        float v = bq_load_f32(x, base + c) + bq_load_f32(residual, base + c);
        if (bias) v += bq_load_f32(bias, (size_t)c);
        row[c] = v;
        stats = bq_welford_add(stats, v);
    }
    /* its barrier comes after every read of x and residual, so out may alias either */
    bq_block_layernorm_store(row, stats, hidden, eps, gamma, beta, out, base);
}

template <typename T>
static cudaError_t launch_bias_residual_layernorm(const void *x, const void *bias,
                                                  const void *residual, const void *gamma,
                                                  const void *beta, int rows, int hidden,
                                                  float eps, void *out, cudaStream_t stream) {
    const int vec_threads = bq_vec_row_threads(hidden, (int)sizeof(T));
    const bool aligned = (((uintptr_t)x | (uintptr_t)bias | (uintptr_t)residual | (uintptr_t)gamma |
                           (uintptr_t)beta | (uintptr_t)out) & 15u) == 0;
    if (vec_threads && aligned) {
        bias_residual_layernorm_vec_kernel<T><<<(unsigned)rows, vec_threads, 0, stream>>>(
            (const T *)x, (const T *)bias, (const T *)residual, (const T *)gamma, (const T *)beta,
            hidden, eps, (T *)out);
        return cudaGetLastError();
    }
    const int threads = bq_row_block_threads(hidden);
    const size_t shared_bytes = (size_t)hidden * sizeof(float);
    bias_residual_layernorm_kernel<T><<<(unsigned)rows, threads, shared_bytes, stream>>>(
        (const T *)x, (const T *)bias, (const T *)residual, (const T *)gamma, (const T *)beta,
        hidden, eps, (T *)out);
    return cudaGetLastError();
}

extern "C" cudaError_t bq_cuda_bias_residual_layernorm(const void *x, const void *bias,
                                                       const void *residual, const void *gamma,
                                                       const void *beta, int rows, int hidden,
                                                       float eps, void *out, bq_cuda_dtype dt,
                                                       cudaStream_t stream) {
    if (!x || !residual || !gamma || !beta || !out) return cudaErrorInvalidValue;
    if (rows <= 0 || hidden <= 0 || hidden > BQ_MAX_ROW_HIDDEN) return cudaErrorInvalidValue;
    switch (dt) {
    case BQ_CUDA_F32:
        return launch_bias_residual_layernorm<float>(x, bias, residual, gamma, beta, rows, hidden,
                                                     eps, out, stream);
    case BQ_CUDA_F16:
        return launch_bias_residual_layernorm<__half>(x, bias, residual, gamma, beta, rows, hidden,
                                                      eps, out, stream);
    case BQ_CUDA_BF16:
        return launch_bias_residual_layernorm<__nv_bfloat16>(x, bias, residual, gamma, beta, rows,
                                                             hidden, eps, out, stream);
    }
    return cudaErrorInvalidValue;
}
