/* qa_head.cu - start/end logits: one warp per row, two fp32 dot products, reduced by shuffles. */
#include "kernel_common.cuh"
#include "qa_head.cuh"

#define QA_HEAD_WARPS_PER_BLOCK 8

template <typename T>
__global__ void qa_head_kernel(const T *x, const T *W, const T *b, int rows, int hidden,
                               float *start_logits, float *end_logits) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * QA_HEAD_WARPS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= rows) return; /* whole warp leaves together: no shuffle is left half-joined */
    const size_t base = (size_t)row * hidden;
    float start = 0.0f, end = 0.0f;
    for (int c = lane; c < hidden; c += 32) {
        float v = bq_load_f32(x, base + c);
        start += v * bq_load_f32(W, (size_t)c);
        end += v * bq_load_f32(W, (size_t)hidden + c);
    }
    start = bq_warp_sum(start);
    end = bq_warp_sum(end);
    if (lane == 0) {
        start_logits[row] = start + bq_load_f32(b, 0);
        end_logits[row] = end + bq_load_f32(b, 1);
    }
}

template <typename T>
static cudaError_t launch_qa_head(const void *x, const void *W, const void *b, int rows,
                                  int hidden, float *start_logits, float *end_logits,
                                  cudaStream_t stream) {
    const unsigned blocks = (unsigned)((rows + QA_HEAD_WARPS_PER_BLOCK - 1) / QA_HEAD_WARPS_PER_BLOCK);
    qa_head_kernel<T><<<blocks, QA_HEAD_WARPS_PER_BLOCK * 32, 0, stream>>>(
        (const T *)x, (const T *)W, (const T *)b, rows, hidden, start_logits, end_logits);
    return cudaGetLastError();
}

extern "C" cudaError_t bq_cuda_qa_head(const void *x, const void *W, const void *b, int rows,
                                       int hidden, float *start_logits, float *end_logits,
                                       bq_cuda_dtype dt, cudaStream_t stream) {
    if (!x || !W || !b || !start_logits || !end_logits || rows <= 0 || hidden <= 0)
        return cudaErrorInvalidValue;
    switch (dt) {
    case BQ_CUDA_F32:
        return launch_qa_head<float>(x, W, b, rows, hidden, start_logits, end_logits, stream);
    case BQ_CUDA_F16:
        return launch_qa_head<__half>(x, W, b, rows, hidden, start_logits, end_logits, stream);
    case BQ_CUDA_BF16:
        return launch_qa_head<__nv_bfloat16>(x, W, b, rows, hidden, start_logits, end_logits,
                                             stream);
    }
    return cudaErrorInvalidValue;
}
