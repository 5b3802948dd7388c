/* tuning.cuh - the events behind the engine's one-time choices by timing (cuBLASLt algorithms and
 * the fused GELU path in gemm.cu, our attention kernel or cuDNN's in engine_cuda.cu). Choices are
 * made on a shape's first eager call; a stream that is being captured into a graph times nothing. */
#ifndef BQ_TUNING_CUH
#define BQ_TUNING_CUH

#include <cuda_runtime.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    cudaEvent_t start, stop;
} bq_tuning_timer;

/* Zeroes *t, then creates its two events unless `stream` is being captured. *ready: 1 when the
 * caller may time now, 0 under capture (nothing created). Returns BQ_OK, or the failing CUDA call
 * with its statement, file and line (the timer is then released). */
bq_status bq_tuning_timer_begin(bq_tuning_timer *t, cudaStream_t stream, int *ready, bq_err *err);

/* Destroys the events; accepts a zeroed or already ended timer. */
void bq_tuning_timer_end(bq_tuning_timer *t);

#ifdef __cplusplus
}
#endif
#endif
