/* bias_gelu.cu - x = gelu_erf(x + bias), in place, grid-stride over all elements: 16-byte vectors
 * (4 fp32 or 8 fp16/bf16 values per thread and step) when cols is a multiple of the vector and the
 * pointers are 16-byte aligned, single elements otherwise. (On Hopper the fp16/bf16 FFN GEMM fuses
 * this into its epilogue, cuda/gemm_bias_gelu.cu; this pass serves fp32/tf32, the fallback, and
 * batch 1, where cuBLASLt's GEMM and this pass beat the fused kernel.) The GELU is the epilogue's
 * bq_gelu_erf_fast (within 3e-7 x max(1, |x|) of the double erf, tests/test_forward_cpu.c): erff
 * takes about twice its instructions and branches, and at batch 1 (384 x 4096) this pass is short
 * enough for its instructions to show. */
#include "bias_gelu.cuh"
#include "kernel_common.cuh"

template <typename T>
__global__ void bias_gelu_vec_kernel(T *x, const T *bias, size_t n_vectors, int cols) {
    constexpr int V = bq_vec16<T>::size;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n_vectors; i += stride) {
        float v[V];
        bq_load16_f32(x + i * V, v);
        if (bias) bq_add16_f32(bias + (i * V) % (size_t)cols, v); /* cols % V == 0: one slice */
#pragma unroll
        for (int k = 0; k < V; k++) v[k] = bq_gelu_erf_fast(v[k]);
        bq_store16_f32(x + i * V, v);
    }
}

template <typename T>
__global__ void bias_gelu_kernel(T *x, const T *bias, size_t n, int cols) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = bq_load_f32(x, i);
        if (bias) v += bq_load_f32(bias, i % (size_t)cols);
        bq_store_f32(x, i, bq_gelu_erf_fast(v));
    }
}

template <typename T>
static cudaError_t launch_bias_gelu(void *x, const void *bias, int rows, int cols,
                                    cudaStream_t stream) {
    const size_t n = (size_t)rows * (size_t)cols;
    const int threads = 256;
    constexpr int V = bq_vec16<T>::size;
    if (cols % V == 0 && (((uintptr_t)x | (uintptr_t)bias) & 15u) == 0) {
        size_t blocks = (n / V + threads - 1) / threads;
        if (blocks > 65535) blocks = 65535;
        bias_gelu_vec_kernel<T><<<(unsigned)blocks, threads, 0, stream>>>((T *)x, (const T *)bias,
                                                                          n / V, cols);
        return cudaGetLastError();
    }
    size_t blocks = (n + threads - 1) / threads;
    if (blocks > 65535) blocks = 65535; /* the grid-stride loop covers the rest */
    bias_gelu_kernel<T><<<(unsigned)blocks, threads, 0, stream>>>((T *)x, (const T *)bias, n, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t bq_cuda_bias_gelu(void *x, const void *bias, int rows, int cols,
                                         bq_cuda_dtype dt, cudaStream_t stream) {
    if (!x || rows <= 0 || cols <= 0) return cudaErrorInvalidValue;
    switch (dt) {
    case BQ_CUDA_F32: return launch_bias_gelu<float>(x, bias, rows, cols, stream);
    case BQ_CUDA_F16: return launch_bias_gelu<__half>(x, bias, rows, cols, stream);
    case BQ_CUDA_BF16: return launch_bias_gelu<__nv_bfloat16>(x, bias, rows, cols, stream);
    }
    return cudaErrorInvalidValue;
}
