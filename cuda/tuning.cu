/* tuning.cu - see tuning.cuh. */
#include "tuning.cuh"

#include <string.h>

#include "cuda_check.cuh"

extern "C" bq_status bq_tuning_timer_begin(bq_tuning_timer *t, cudaStream_t stream, int *ready,
                                           bq_err *err) {
    memset(t, 0, sizeof *t);
    *ready = 0;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    BQ_CUDA_TRY(cudaStreamIsCapturing(stream, &capture), err);
    if (capture != cudaStreamCaptureStatusNone) return BQ_OK;
    bq_status s = bq_cuda_check(cudaEventCreate(&t->start), "cudaEventCreate(&t->start)", __FILE__,
                                __LINE__, err);
    if (s == BQ_OK)
        s = bq_cuda_check(cudaEventCreate(&t->stop), "cudaEventCreate(&t->stop)", __FILE__,
                          __LINE__, err);
    if (s != BQ_OK) {
        bq_tuning_timer_end(t);
        return s;
    }
    *ready = 1;
    return BQ_OK;
}

extern "C" void bq_tuning_timer_end(bq_tuning_timer *t) {
    if (t->start) cudaEventDestroy(t->start);
    if (t->stop) cudaEventDestroy(t->stop);
    t->start = t->stop = NULL;
}

/* Mean ms per run over `reps` runs between the timer's events, no warm-up; *ms stays as it was
 * when a run was refused. */
static bq_status time_runs(const bq_tuning_timer *t, cudaStream_t stream, int reps,
                           bq_tuning_run_fn run, void *ctx, float *ms, bq_err *err) {
    int ran = 1;
    bq_status s = BQ_OK;
    BQ_CUDA_TRY(cudaEventRecord(t->start, stream), err);
    for (int r = 0; r < reps && s == BQ_OK && ran; r++) s = run(ctx, &ran, err);
    if (s != BQ_OK) return s;
    BQ_CUDA_TRY(cudaEventRecord(t->stop, stream), err);
    BQ_CUDA_TRY(cudaEventSynchronize(t->stop), err);
    float total = 0.0f;
    BQ_CUDA_TRY(cudaEventElapsedTime(&total, t->start, t->stop), err);
    if (ran) *ms = total / (float)reps;
    return BQ_OK;
}

/* bq_tuning_candidate_fn bound to one candidate, as a bq_tuning_run_fn for time_runs */
typedef struct {
    bq_tuning_candidate_fn run;
    void *ctx;
    int candidate;
} candidate_run;

static bq_status run_candidate(void *ctx, int *ran, bq_err *err) {
    const candidate_run *c = (const candidate_run *)ctx;
    return c->run(c->ctx, c->candidate, ran, err);
}

extern "C" bq_status bq_tuning_time_candidates(const bq_tuning_timer *t, cudaStream_t stream, int n,
                                               int rounds, int reps, bq_tuning_candidate_fn run,
                                               bq_tuning_check_fn check, void *ctx, float *ms,
                                               bq_err *err) {
    bq_status s = BQ_OK;
    for (int i = 0; i < n && s == BQ_OK; i++) { /* warm-ups: which candidates run at all */
        int ran = 0;
        s = run(ctx, i, &ran, err);
        ms[i] = ran ? 0.0f : -1.0f;
        if (s == BQ_OK && ran && check) s = check(ctx, i, err);
    }
    for (int r = 0; r < rounds && s == BQ_OK; r++)
        for (int i = 0; i < n && s == BQ_OK; i++) {
            if (ms[i] < 0.0f) continue;
            candidate_run c = {run, ctx, i};
            float round_ms = -1.0f;
            s = time_runs(t, stream, reps, run_candidate, &c, &round_ms, err);
            if (s != BQ_OK) break;
            if (round_ms < 0.0f) /* refused after all */
                ms[i] = -1.0f;
            else if (ms[i] == 0.0f || round_ms < ms[i])
                ms[i] = round_ms;
        }
    return s;
}

extern "C" bq_status bq_tuning_time_once(const bq_tuning_timer *t, cudaStream_t stream,
                                         bq_tuning_run_fn run, void *ctx, float *ms, bq_err *err) {
    *ms = -1.0f;
    return time_runs(t, stream, 1, run, ctx, ms, err);
}
