/* bias_gelu.cu - x = gelu_erf(x + bias), in place, grid-stride over all elements. */
#include "bias_gelu.cuh"
#include "kernel_common.cuh"

template <typename T>
__global__ void bias_gelu_kernel(T *x, const T *bias, size_t n, int cols) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = bq_load_f32(x, i);
        if (bias) v += bq_load_f32(bias, i % (size_t)cols);
        bq_store_f32(x, i, bq_gelu_erf(v));
    }
}

template <typename T>
static cudaError_t launch_bias_gelu(void *x, const void *bias, int rows, int cols,
                                    cudaStream_t stream) {
    const size_t n = (size_t)rows * (size_t)cols;
    const int threads = 256;
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
