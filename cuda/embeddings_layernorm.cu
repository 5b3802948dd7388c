/* embeddings_layernorm.cu - word + position + token-type embedding sum fused with LayerNorm, one
 * block per token row. Vector path (as in bias_residual_layernorm.cu: hidden a whole number of
 * warps of 16-byte slices, aligned tables): each thread gathers its slice of the three rows into
 * registers, two-pass statistics, one 16-byte store. General path: the summed row staged in shared
 * memory (fp32), block-wide Welford statistics, then the normalized row stored. */
#include "embeddings_layernorm.cuh"
#include "kernel_common.cuh"

/* Position embedding row of `token`: positions[token] (packed sequences restart theirs), else
 * token % seq_len. */
__device__ __forceinline__ size_t position_row(const int32_t *positions, size_t token,
                                               int seq_len) {
    return positions ? (size_t)positions[token] : token % (size_t)seq_len;
}

template <typename T>
__global__ void __launch_bounds__(1024)
embeddings_layernorm_vec_kernel(const int32_t *ids, const int32_t *segment_ids,
                                const int32_t *positions, int seq_len, int hidden,
                                const T *word_emb, const T *pos_emb, const T *type_emb,
                                const T *gamma, const T *beta, float eps, T *out) {
    constexpr int V = bq_vec16<T>::size;
    const size_t token = blockIdx.x;
    const int col = threadIdx.x * V;
    float v[V];
    bq_load16_f32(word_emb + (size_t)ids[token] * hidden + col, v);
    bq_add16_f32(pos_emb + position_row(positions, token, seq_len) * hidden + col, v);
    bq_add16_f32(type_emb + (size_t)segment_ids[token] * hidden + col, v);
    bq_vec_layernorm_store(v, hidden, eps, gamma, beta, col, out, token * hidden + col);
}

template <typename T>
__global__ void embeddings_layernorm_kernel(const int32_t *ids, const int32_t *segment_ids,
                                            const int32_t *positions, int seq_len, int hidden,
                                            const T *word_emb, const T *pos_emb, const T *type_emb,
                                            const T *gamma, const T *beta, float eps, T *out) {
    extern __shared__ float row[]; /* [hidden] summed embedding, fp32 */
    const size_t token = blockIdx.x;
    const size_t word_row = (size_t)ids[token] * hidden;
    const size_t pos_row = position_row(positions, token, seq_len) * hidden;
    const size_t type_row = (size_t)segment_ids[token] * hidden;

    bq_welford stats = {0.0f, 0.0f, 0.0f};
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
        float v = bq_load_f32(word_emb, word_row + c) + bq_load_f32(pos_emb, pos_row + c) +
                  bq_load_f32(type_emb, type_row + c);
        row[c] = v;
        stats = bq_welford_add(stats, v);
    }
    bq_block_layernorm_store(row, stats, hidden, eps, gamma, beta, out, token * hidden);
}

template <typename T>
static cudaError_t launch_embeddings_layernorm(const int32_t *ids, const int32_t *segment_ids,
                                               const int32_t *positions, int batch, int seq_len,
                                               int hidden, const void *word_emb,
                                               const void *pos_emb, const void *type_emb,
                                               const void *gamma, const void *beta, float eps,
                                               void *out, cudaStream_t stream) {
    const unsigned rows = (unsigned)batch * (unsigned)seq_len;
    const int vec_threads = bq_vec_row_threads(hidden, (int)sizeof(T));
    if (vec_threads && (((uintptr_t)word_emb | (uintptr_t)pos_emb | (uintptr_t)type_emb |
                         (uintptr_t)gamma | (uintptr_t)beta | (uintptr_t)out) & 15u) == 0) {
        embeddings_layernorm_vec_kernel<T><<<rows, vec_threads, 0, stream>>>(
            ids, segment_ids, positions, seq_len, hidden, (const T *)word_emb,
            (const T *)pos_emb, (const T *)type_emb, (const T *)gamma, (const T *)beta, eps,
            (T *)out);
        return cudaGetLastError();
    }
    const int threads = bq_row_block_threads(hidden);
    const size_t shared_bytes = (size_t)hidden * sizeof(float);
    embeddings_layernorm_kernel<T><<<rows, threads, shared_bytes, stream>>>(
        ids, segment_ids, positions, seq_len, hidden, (const T *)word_emb, (const T *)pos_emb,
        (const T *)type_emb, (const T *)gamma, (const T *)beta, eps, (T *)out);
    return cudaGetLastError();
}

extern "C" cudaError_t bq_cuda_embeddings_layernorm(const int32_t *ids, const int32_t *segment_ids,
                                                    const int32_t *positions, int batch,
                                                    int seq_len, int hidden, const void *word_emb,
                                                    const void *pos_emb, const void *type_emb,
                                                    const void *gamma, const void *beta, float eps,
                                                    void *out, bq_cuda_dtype dt,
                                                    cudaStream_t stream) {
    if (!ids || !segment_ids || !word_emb || !pos_emb || !type_emb || !gamma || !beta || !out)
        return cudaErrorInvalidValue;
    if (batch <= 0 || seq_len <= 0 || hidden <= 0 || hidden > BQ_MAX_ROW_HIDDEN)
        return cudaErrorInvalidValue;
    if ((long long)batch * seq_len > 0x7fffffffLL) return cudaErrorInvalidValue;
    switch (dt) {
    case BQ_CUDA_F32:
        return launch_embeddings_layernorm<float>(ids, segment_ids, positions, batch, seq_len,
                                                  hidden, word_emb, pos_emb, type_emb, gamma, beta,
                                                  eps, out, stream);
    case BQ_CUDA_F16:
        return launch_embeddings_layernorm<__half>(ids, segment_ids, positions, batch, seq_len,
                                                   hidden, word_emb, pos_emb, type_emb, gamma,
                                                   beta, eps, out, stream);
    case BQ_CUDA_BF16:
        return launch_embeddings_layernorm<__nv_bfloat16>(ids, segment_ids, positions, batch,
                                                          seq_len, hidden, word_emb, pos_emb,
                                                          type_emb, gamma, beta, eps, out, stream);
    }
    return cudaErrorInvalidValue;
}
