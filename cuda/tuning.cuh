/* tuning.cuh - the timing behind the engine's one-time choices (cuBLASLt algorithms and
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

/* One run of what is being timed, enqueued on the timer's stream: *ran = 0 when it was refused
 * (nothing enqueued). Returns BQ_OK or the error of the run. */
typedef bq_status (*bq_tuning_run_fn)(void *ctx, int *ran, bq_err *err);

/* One run of candidate `candidate` (0 .. n-1) of a choice, enqueued on the timer's stream; *ran = 0
 * when it was refused (nothing enqueued). */
typedef bq_status (*bq_tuning_candidate_fn)(void *ctx, int candidate, int *ran, bq_err *err);

/* Called after candidate `candidate`'s warm-up run (when it ran), on the same ctx: work enqueued
 * on the stream before any timing starts, such as a check of the output that run left. Returns
 * BQ_OK or the error of what it enqueued. */
typedef bq_status (*bq_tuning_check_fn)(void *ctx, int candidate, bq_err *err);

/* Times n candidates interleaved: one warm-up run of each (a refused one gets ms[i] = -1 and is
 * left out; after each that ran, `check` when not NULL), then `rounds` rounds in each of which
 * every accepted candidate runs `reps` times between the timer's events; ms[i] = its best round's
 * mean, ms per run. Timed one after another, candidates met a card still raising its clocks in
 * turn and the later ones looked faster (GEMM timings 30-45% slow at batch 1 on a cold H200, run
 * 1aa4dcc); in rounds, every candidate gets a round on the warm card. Synchronizes the stream.
 * Returns BQ_OK, a run's error, or the check's or the failing CUDA call's. */
bq_status bq_tuning_time_candidates(const bq_tuning_timer *t, cudaStream_t stream, int n, int rounds,
                                    int reps, bq_tuning_candidate_fn run,
                                    bq_tuning_check_fn check, void *ctx, float *ms, bq_err *err);

/* ms of one run of `run` on `stream`, without a warm-up (for a caller that has just run it, or
 * that takes the best of several such runs): *ms = -1 when refused. Synchronizes the stream.
 * Returns BQ_OK, the run's error, or the failing CUDA call. */
bq_status bq_tuning_time_once(const bq_tuning_timer *t, cudaStream_t stream, bq_tuning_run_fn run,
                              void *ctx, float *ms, bq_err *err);

#ifdef __cplusplus
}
#endif
#endif
