/* embeddings_layernorm.cuh - fused BERT embedding sum + LayerNorm:
 * out[t,:] = LN(word_emb[ids[t]] + pos_emb[p(t)] + type_emb[segment_ids[t]]) for t in [0, B*S),
 * p(t) = positions[t], or t % seq_len when positions is NULL (packed sequences restart theirs). */
#ifndef BQ_EMBEDDINGS_LAYERNORM_CUH
#define BQ_EMBEDDINGS_LAYERNORM_CUH

#include <stdint.h>

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* ids, segment_ids, positions (may be NULL; else each < seq_len): device [batch*seq_len] int32.
 * word_emb [vocab,H], pos_emb [>=seq_len,H], type_emb [types,H], gamma/beta [H], out [batch*seq_len, H], all in `dt` on the device.
 * Ids are not range-checked on the device (the caller validates them against the vocab size).
 * Returns cudaErrorInvalidValue on a NULL pointer or non-positive size, else the launch status. */
cudaError_t bq_cuda_embeddings_layernorm(const int32_t *ids, const int32_t *segment_ids,
                                         const int32_t *positions, int batch, int seq_len,
                                         int hidden, const void *word_emb, const void *pos_emb,
                                         const void *type_emb,
                                         const void *gamma, const void *beta, float eps, void *out,
                                         bq_cuda_dtype dt, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
