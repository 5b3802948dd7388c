/* bias_gelu.cuh - fused bias add + exact (erf) GELU, in place: x[r,c] = gelu(x[r,c] + bias[c]). */
#ifndef BQ_BIAS_GELU_CUH
#define BQ_BIAS_GELU_CUH

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* x: [rows, cols] in `dt`, updated in place; bias: [cols] in `dt` (may be NULL: GELU only).
 * Returns cudaErrorInvalidValue on a NULL x or non-positive size, else the launch status. */
cudaError_t bq_cuda_bias_gelu(void *x, const void *bias, int rows, int cols, bq_cuda_dtype dt,
                              cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
