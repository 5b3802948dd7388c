/* qa_head.cuh - the SQuAD span head: two logits per token,
 * start[r] = x[r,:] . W[0,:] + b[0], end[r] = x[r,:] . W[1,:] + b[1]. */
#ifndef BQ_QA_HEAD_CUH
#define BQ_QA_HEAD_CUH

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* x: [rows, hidden], W: [2, hidden], b: [2] in `dt`; start_logits / end_logits: [rows] fp32; all on
 * the device. Dot products accumulate in fp32.
 * Returns cudaErrorInvalidValue on a NULL pointer or non-positive size, else the launch status. */
cudaError_t bq_cuda_qa_head(const void *x, const void *W, const void *b, int rows, int hidden,
                            float *start_logits, float *end_logits, bq_cuda_dtype dt,
                            cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
