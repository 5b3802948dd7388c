/* engine.c - the backend-neutral engine: option parsing and dispatch to the CPU reference or CUDA. */
#include "engine.h"

#include "engine_cuda.h"
#include "forward_cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bq_engine {
    bq_engine_options opt;
    bq_cpu_forward *cpu;   /* set when opt.device == BQ_DEVICE_CPU */
    bq_cuda_engine *cuda;  /* set when opt.device == BQ_DEVICE_CUDA */
    char description[2048];
};

void bq_engine_options_default(bq_engine_options *o) {
    memset(o, 0, sizeof *o);
    o->device = BQ_DEVICE_CPU;
    o->device_index = 0;
    o->precision = BQ_PRECISION_FP32;
    o->attention = BQ_ATTENTION_AUTO;
    o->max_batch = 8;
    o->seq_len = 384;
    o->threads = 0;
    o->tune = 1;
}

bq_status bq_parse_device(const char *s, bq_device_kind *kind, int *index, bq_err *err) {
    if (!s) return bq_fail(err, BQ_ERR_INVALID_ARG, "missing device");
    if (strcmp(s, "cpu") == 0) {
        *kind = BQ_DEVICE_CPU;
        *index = 0;
        return BQ_OK;
    }
    if (strncmp(s, "cuda", 4) == 0) {
        *kind = BQ_DEVICE_CUDA;
        *index = 0;
        if (s[4] == '\0') return BQ_OK;
        if (s[4] == ':' && s[5] >= '0' && s[5] <= '9') {
            char *end;
            long v = strtol(s + 5, &end, 10);
            if (*end == '\0' && v >= 0 && v < 1024) {
                *index = (int)v;
                return BQ_OK;
            }
        }
    }
    return bq_fail(err, BQ_ERR_INVALID_ARG, "unknown device '%s' (expected cpu, cuda or cuda:N)", s);
}

static const char *const precision_names[] = {"fp32", "tf32", "fp16", "bf16"};

double bq_precision_parity_bound(bq_precision p) {
    switch (p) {
    case BQ_PRECISION_FP32: return 1e-5;
    case BQ_PRECISION_TF32: return 3e-3;
    case BQ_PRECISION_FP16: return 2e-2;
    case BQ_PRECISION_BF16: return 2e-2;
    }
    return 0.0;
}

const char *bq_precision_name(bq_precision p) {
    return (unsigned)p < 4 ? precision_names[p] : "?";
}

bq_status bq_parse_precision(const char *s, bq_precision *p, bq_err *err) {
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, precision_names[i]) == 0) {
            *p = (bq_precision)i;
            return BQ_OK;
        }
    }
    return bq_fail(err, BQ_ERR_INVALID_ARG, "unknown precision '%s' (expected fp32, tf32, fp16 or bf16)",
                   s ? s : "");
}

static const char *const attention_names[] = {"own", "cudnn", "auto"}; /* bq_attention_impl order */

bq_status bq_parse_attention(const char *s, bq_attention_impl *a, bq_err *err) {
    for (int i = 0; i < 3; i++) {
        if (s && strcmp(s, attention_names[i]) == 0) {
            *a = (bq_attention_impl)i;
            return BQ_OK;
        }
    }
    return bq_fail(err, BQ_ERR_INVALID_ARG, "unknown attention '%s' (expected auto, own or cudnn)",
                   s ? s : "");
}

bq_status bq_engine_create(const bq_model *model, const bq_engine_options *opt, bq_engine **out,
                           bq_err *err) {
    *out = NULL;
    if (!model || !opt) return bq_fail(err, BQ_ERR_INVALID_ARG, "engine: model and options are required");
    if (opt->max_batch < 1 || opt->seq_len < 1)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "engine: max batch (%d) and sequence length (%d) must be positive",
                       opt->max_batch, opt->seq_len);
    if (opt->seq_len > model->config.max_position_embeddings)
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "sequence length %d exceeds the model's max_position_embeddings %d (set a "
                       "shorter one: the CLI's --max-seq-length, or bench's --seq-len)", opt->seq_len,
                       model->config.max_position_embeddings);
    bq_engine *e = calloc(1, sizeof *e);
    if (!e) return bq_fail(err, BQ_ERR_NOMEM, "out of memory creating the engine");
    e->opt = *opt;
    bq_status st;
    if (opt->device == BQ_DEVICE_CPU) {
        if (opt->precision != BQ_PRECISION_FP32) {
            free(e);
            return bq_fail(err, BQ_ERR_UNSUPPORTED,
                           "the CPU backend computes in fp32 only (asked for %s); use --precision fp32",
                           bq_precision_name(opt->precision));
        }
        st = bq_cpu_forward_create(model, opt->max_batch, opt->seq_len, opt->threads, &e->cpu, err);
        if (opt->threads > 0)
            snprintf(e->description, sizeof e->description, "cpu fp32 reference (OpenBLAS %s), %d threads",
                     bq_cpu_blas_kernels(), opt->threads);
        else
            snprintf(e->description, sizeof e->description, "cpu fp32 reference (OpenBLAS %s)",
                     bq_cpu_blas_kernels());
    } else {
        st = bq_cuda_engine_create(model, opt, &e->cuda, err);
        if (st == BQ_OK)
            snprintf(e->description, sizeof e->description, "%s", bq_cuda_engine_describe(e->cuda));
    }
    if (st != BQ_OK) {
        free(e);
        return st;
    }
    *out = e;
    return BQ_OK;
}

void bq_engine_free(bq_engine *e) {
    if (!e) return;
    bq_cpu_forward_free(e->cpu);
    bq_cuda_engine_free(e->cuda);
    free(e);
}

/* The engine exists, and batch and length are within its max batch and seq_len. */
static bq_status check_pass(const bq_engine *e, int batch, int length, bq_err *err) {
    if (!e) return bq_fail(err, BQ_ERR_INVALID_ARG, "engine is NULL");
    if (batch < 1 || batch > e->opt.max_batch)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "batch %d outside [1, %d] (the engine's max batch)", batch,
                       e->opt.max_batch);
    if (length < 1 || length > e->opt.seq_len)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "sequence length %d outside [1, %d] (the engine's)",
                       length, e->opt.seq_len);
    return BQ_OK;
}

bq_status bq_engine_forward_length(bq_engine *e, int batch, int length, const int32_t *input_ids,
                                   const int32_t *input_mask, const int32_t *segment_ids,
                                   float *start_logits, float *end_logits, bq_err *err) {
    bq_status st = check_pass(e, batch, length, err);
    if (st != BQ_OK) return st;
    if (e->cpu)
        return bq_cpu_forward_run(e->cpu, batch, length, input_ids, input_mask, segment_ids,
                                  start_logits, end_logits, err);
    return bq_cuda_engine_forward(e->cuda, batch, length, input_ids, input_mask, segment_ids,
                                  start_logits, end_logits, err);
}

bq_status bq_engine_forward(bq_engine *e, int batch, const int32_t *input_ids,
                            const int32_t *input_mask, const int32_t *segment_ids,
                            float *start_logits, float *end_logits, bq_err *err) {
    if (!e) return bq_fail(err, BQ_ERR_INVALID_ARG, "engine is NULL");
    return bq_engine_forward_length(e, batch, e->opt.seq_len, input_ids, input_mask, segment_ids,
                                    start_logits, end_logits, err);
}

bq_status bq_engine_forward_packed(bq_engine *e, int batch, int length, int n_seqs,
                                   const int32_t *seq_offsets, const int32_t *input_ids,
                                   const int32_t *segment_ids, float *start_logits,
                                   float *end_logits, bq_err *err) {
    bq_status st = check_pass(e, batch, length, err);
    if (st != BQ_OK) return st;
    if (e->cpu)
        return bq_cpu_forward_run_packed(e->cpu, batch, length, n_seqs, seq_offsets, input_ids,
                                         segment_ids, start_logits, end_logits, err);
    return bq_cuda_engine_forward_packed(e->cuda, batch, length, n_seqs, seq_offsets, input_ids,
                                         segment_ids, start_logits, end_logits, err);
}

const bq_engine_options *bq_engine_get_options(const bq_engine *e) { return &e->opt; }

const char *bq_engine_describe(const bq_engine *e) { return e->description; }

bq_status bq_engine_save_tuning(bq_engine *e, bq_err *err) {
    return e && e->cuda ? bq_cuda_engine_save_tuning(e->cuda, err) : BQ_OK;
}

void bq_engine_first_passes(const bq_engine *e, int *shapes, double *seconds) {
    *shapes = 0;
    *seconds = 0.0;
    if (e && e->cuda) bq_cuda_engine_first_passes(e->cuda, shapes, seconds);
}

struct bq_cuda_engine *bq_engine_cuda_backend(bq_engine *e) { return e ? e->cuda : NULL; }

const char *bq_stage_name(bq_stage s) {
    static const char *const names[BQ_STAGE_COUNT] = {"gemm", "attention", "layernorm",
                                                      "gemm_gelu", "embeddings", "head"};
    return (unsigned)s < BQ_STAGE_COUNT ? names[s] : "?";
}
