/* engine_cuda_stub.c - the CUDA backend of a build without nvcc: every entry reports it plainly. */
#include "engine_cuda.h"

#include <string.h>

#define NO_CUDA_MESSAGE "this bertqa-gpu was built without CUDA (nvcc not found at build time); " BQ_USE_CPU_HINT

bq_status bq_cuda_device_count(int *count, bq_err *err) {
    *count = 0;
    return bq_fail(err, BQ_ERR_NO_DEVICE, NO_CUDA_MESSAGE);
}

bq_status bq_cuda_engine_create(const bq_model *model, const bq_engine_options *opt,
                                bq_cuda_engine **out, bq_err *err) {
    (void)model;
    (void)opt;
    *out = NULL;
    return bq_fail(err, BQ_ERR_NO_DEVICE, NO_CUDA_MESSAGE);
}

void bq_cuda_engine_free(bq_cuda_engine *e) { (void)e; }

bq_status bq_cuda_engine_forward(bq_cuda_engine *e, int batch, int length, const int32_t *input_ids,
                                 const int32_t *input_mask, const int32_t *segment_ids,
                                 float *start_logits, float *end_logits, bq_err *err) {
    (void)e, (void)batch, (void)length, (void)input_ids, (void)input_mask, (void)segment_ids;
    (void)start_logits, (void)end_logits;
    return bq_fail(err, BQ_ERR_NO_DEVICE, NO_CUDA_MESSAGE);
}

bq_status bq_cuda_engine_forward_packed(bq_cuda_engine *e, int batch, int length, int n_seqs,
                                        const int32_t *seq_offsets, const int32_t *input_ids,
                                        const int32_t *segment_ids, float *start_logits,
                                        float *end_logits, bq_err *err) {
    (void)e, (void)batch, (void)length, (void)n_seqs, (void)seq_offsets, (void)input_ids, (void)segment_ids;
    (void)start_logits, (void)end_logits;
    return bq_fail(err, BQ_ERR_NO_DEVICE, NO_CUDA_MESSAGE);
}

void bq_cuda_engine_first_passes(const bq_cuda_engine *e, int *shapes, double *seconds) {
    (void)e;
    *shapes = 0;
    *seconds = 0.0;
}

bq_status bq_cuda_engine_save_tuning(bq_cuda_engine *e, bq_err *err) {
    (void)e, (void)err;
    return BQ_OK;
}

void bq_cuda_engine_tuning_cache(const bq_cuda_engine *e, int *gemm_presets_taken,
                                 int *shape_presets_taken) {
    (void)e;
    if (gemm_presets_taken) *gemm_presets_taken = 0;
    if (shape_presets_taken) *shape_presets_taken = 0;
}

const char *bq_cuda_engine_describe(const bq_cuda_engine *e) {
    (void)e;
    return "cuda (not built)";
}

bq_status bq_cuda_engine_time(bq_cuda_engine *e, int batch, const int32_t *ids, const int32_t *mask,
                              const int32_t *seg, int warmup, int iters, int n_input_sets,
                              bq_cuda_timing *per_iter, bq_err *err) {
    (void)e, (void)batch, (void)ids, (void)mask, (void)seg, (void)warmup, (void)iters;
    (void)n_input_sets, (void)per_iter;
    return bq_fail(err, BQ_ERR_NO_DEVICE, NO_CUDA_MESSAGE);
}

bq_status bq_cuda_engine_memory(const bq_cuda_engine *e, size_t *weights_bytes,
                                size_t *workspace_bytes, bq_err *err) {
    (void)e;
    if (weights_bytes) *weights_bytes = 0;
    if (workspace_bytes) *workspace_bytes = 0;
    return bq_fail(err, BQ_ERR_NO_DEVICE, NO_CUDA_MESSAGE);
}

bq_status bq_cuda_engine_profile(bq_cuda_engine *e, int batch, const int32_t *ids,
                                 const int32_t *mask, const int32_t *seg,
                                 double stage_ms[BQ_STAGE_COUNT], bq_err *err) {
    (void)e, (void)batch, (void)ids, (void)mask, (void)seg;
    for (int i = 0; i < BQ_STAGE_COUNT; i++) stage_ms[i] = 0.0;
    return bq_fail(err, BQ_ERR_NO_DEVICE, NO_CUDA_MESSAGE);
}

const char *bq_cuda_engine_attention_choice(const bq_cuda_engine *e, int batch,
                                            bq_attention_times *times) {
    (void)e, (void)batch;
    if (times) memset(times, 0, sizeof *times);
    return "none";
}

const char *bq_cuda_engine_gemm_choice(const bq_cuda_engine *e, int batch, double *timed_ms,
                                       double *first_ms) {
    (void)e, (void)batch;
    if (timed_ms) *timed_ms = 0.0;
    if (first_ms) *first_ms = 0.0;
    return "none";
}

int bq_cuda_engine_gemm_plans(const bq_cuda_engine *e, bq_gemm_plan_info *out, int max) {
    (void)e, (void)out, (void)max;
    return 0;
}

bq_status bq_cuda_gemm_ceiling(int device, double tflops[BQ_PRECISION_COUNT], bq_err *err) {
    (void)device;
    for (int p = 0; p < BQ_PRECISION_COUNT; p++) tflops[p] = 0.0;
    return bq_fail(err, BQ_ERR_NO_DEVICE, NO_CUDA_MESSAGE);
}

bq_status bq_cuda_device_info(int device, char *name, size_t name_len, int *driver_version,
                              bq_err *err) {
    (void)device;
    if (name && name_len) name[0] = '\0';
    if (driver_version) *driver_version = 0;
    return bq_fail(err, BQ_ERR_NO_DEVICE, NO_CUDA_MESSAGE);
}
