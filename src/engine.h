/* engine.h - one interface over the forward-pass backends (CPU reference, CUDA). Input: a padded
 * batch [B, S] of int32 input_ids / input_mask / segment_ids; output: fp32 start/end logits [B, S]. */
#ifndef BQ_ENGINE_H
#define BQ_ENGINE_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { BQ_DEVICE_CPU, BQ_DEVICE_CUDA } bq_device_kind;
typedef enum { BQ_PRECISION_FP32, BQ_PRECISION_TF32, BQ_PRECISION_FP16, BQ_PRECISION_BF16 } bq_precision;
enum { BQ_PRECISION_COUNT = 4 }; /* arrays indexed by bq_precision */
/* own: our fused kernel; cudnn: cuDNN's fused attention (fp16/bf16); auto: in fp16/bf16 with cuDNN
 * available, per batch size the faster of the two, timed on that batch's first pass (else own). */
typedef enum { BQ_ATTENTION_OWN, BQ_ATTENTION_CUDNN, BQ_ATTENTION_AUTO } bq_attention_impl;

typedef struct {
    bq_device_kind device;
    int device_index;            /* cuda:N */
    bq_precision precision;      /* CPU supports fp32 only */
    bq_attention_impl attention; /* CUDA only */
    int max_batch;               /* workspace is sized once for this many sequences */
    int seq_len;                 /* S: every batch is padded to this length */
    int threads;                 /* CPU threads (0 = library default) */
    /* CUDA: 1 (default) times the GEMM algorithms and attention kernels on each pass shape's
     * first pass and captures its CUDA graph, which many passes repay; 0 does neither (cuBLASLt's
     * first choices, our default attention tiling, eager launches): for a single pass, as `ask`
     * makes, where that one-time work would cost more than it saves. */
    int tune;
    /* CUDA: a tuning cache file (NULL: none). Its decisions for this card, cuBLASLt, precision
     * and model (GEMM algorithms, GELU paths, attention tilings, per pass shape) are taken
     * instead of timing them again; bq_engine_save_tuning writes this run's back. A missing,
     * foreign or damaged file only costs the timing (the engine's description says which). */
    const char *tuning_cache;
} bq_engine_options;

void bq_engine_options_default(bq_engine_options *o); /* cpu, fp32, auto attention, 8 x 384, tune */

/* Parse "cpu", "cuda", "cuda:N"; "fp32" | "tf32" | "fp16" | "bf16"; "own" | "cudnn" | "auto". */
bq_status bq_parse_device(const char *s, bq_device_kind *kind, int *index, bq_err *err);
bq_status bq_parse_precision(const char *s, bq_precision *p, bq_err *err);
bq_status bq_parse_attention(const char *s, bq_attention_impl *a, bq_err *err);
const char *bq_precision_name(bq_precision p);
/* The normwise relative error of the logits against the fp32 CPU reference that a precision is
 * held to (fp32 1e-5, tf32 3e-3, fp16 and bf16 2e-2: issue 5's bounds, also bench/parity.py's). */
double bq_precision_parity_bound(bq_precision p);

typedef struct bq_engine bq_engine;

/* Create an engine over a loaded model (the model must outlive the engine). CUDA without a GPU ->
 * BQ_ERR_NO_DEVICE with a message that suggests --device cpu. */
bq_status bq_engine_create(const bq_model *model, const bq_engine_options *opt, bq_engine **out,
                           bq_err *err);
void bq_engine_free(bq_engine *e); /* accepts NULL */

/* Run batch rows [0, batch) (batch <= max_batch). Arrays are [batch, seq_len] row-major. */
bq_status bq_engine_forward(bq_engine *e, int batch, const int32_t *input_ids,
                            const int32_t *input_mask, const int32_t *segment_ids,
                            float *start_logits, float *end_logits, bq_err *err);

/* The same for a batch trimmed to `length` positions (1 <= length <= the engine's seq_len): arrays
 * are [batch, length]. Cutting trailing padding leaves the logits of the real positions as they
 * were (padded keys are masked out), for less work. On CUDA every new (batch, length) pair costs
 * a first eager pass (GEMM and attention timing, graph capture), so callers round lengths up to
 * a few buckets. cuDNN's attention is planned for the full length only: an engine created with
 * BQ_ATTENTION_CUDNN refuses a shorter length with BQ_ERR_UNSUPPORTED (under auto, our kernel
 * runs the shorter lengths). */
bq_status bq_engine_forward_length(bq_engine *e, int batch, int length, const int32_t *input_ids,
                                   const int32_t *input_mask, const int32_t *segment_ids,
                                   float *start_logits, float *end_logits, bq_err *err);

/* Packed sequences (no padding): the arrays are [batch, length] as for a (trimmed) padded batch
 * (1 <= length <= the engine's seq_len), but hold n_seqs sequences back to back: sequence i is
 * flat positions [seq_offsets[i], seq_offsets[i+1]) (host array [n_seqs + 1]: 0, then increasing
 * to batch * length; each sequence 1..seq_len long; one may cross a row boundary). Every position is a real token, in some sequence (callers fill
 * a tail with filler sequences). Each sequence's logits are those of its tokens run alone: its
 * positions count from 0 at its first token and it attends to itself only. The GEMMs see the
 * same rows as a padded batch; attention costs each sequence its own length squared. On CUDA a
 * packed (batch, length, sequence capacity) is a pass shape of its own, with its own graph (the
 * capacity: the next power of two of n_seqs up to 64, then the next multiple of 32), run with our
 * attention kernel (cuDNN's is planned for padded batches): an engine created with
 * BQ_ATTENTION_CUDNN refuses it with BQ_ERR_UNSUPPORTED. */
bq_status bq_engine_forward_packed(bq_engine *e, int batch, int length, int n_seqs,
                                   const int32_t *seq_offsets, const int32_t *input_ids,
                                   const int32_t *segment_ids, float *start_logits,
                                   float *end_logits, bq_err *err);

const bq_engine_options *bq_engine_get_options(const bq_engine *e);
/* The CUDA backend behind an engine created with BQ_DEVICE_CUDA (for its benchmark API), else NULL. */
struct bq_cuda_engine *bq_engine_cuda_backend(bq_engine *e);

/* Write a CUDA engine's timed decisions to its tuning cache (bq_engine_options.tuning_cache);
 * BQ_OK and nothing written for the CPU or without a cache. Returns BQ_OK, BQ_ERR_IO (the path
 * and errno text) or BQ_ERR_NOMEM. */
bq_status bq_engine_save_tuning(bq_engine *e, bq_err *err);

/* The CUDA backend's pass shapes met so far and the wall seconds of their first forward calls
 * (one-time timing and graph capture included; bq_cuda_engine_first_passes); zeros on the CPU. */
void bq_engine_first_passes(const bq_engine *e, int *shapes, double *seconds);

/* A one-line description ("cpu fp32, 2 threads", "NVIDIA H100 80GB HBM3 fp16 own-attention"). */
const char *bq_engine_describe(const bq_engine *e);

#ifdef __cplusplus
}
#endif
#endif
