/* bias_residual_layernorm.cuh - fused bias add + residual add + LayerNorm (BERT's "output" blocks):
 * out[r,:] = LN(x[r,:] + bias + residual[r,:]). */
#ifndef BQ_BIAS_RESIDUAL_LAYERNORM_CUH
#define BQ_BIAS_RESIDUAL_LAYERNORM_CUH

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* x, residual, out: [rows, hidden]; bias (may be NULL), gamma, beta: [hidden]; all `dt`, device.
 * out may alias x or residual (each row is read completely before any of it is written).
 * Returns cudaErrorInvalidValue on a NULL pointer or non-positive size, else the launch status. */
cudaError_t bq_cuda_bias_residual_layernorm(const void *x, const void *bias, const void *residual,
                                            const void *gamma, const void *beta, int rows,
                                            int hidden, float eps, void *out, bq_cuda_dtype dt,
                                            cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
