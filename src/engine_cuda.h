/* engine_cuda.h - the CUDA backend behind the engine interface (C linkage). Implemented in
 * cuda/engine_cuda.cu when the build has nvcc, else by src/engine_cuda_stub.c, which reports
 * "built without CUDA". */
#ifndef BQ_ENGINE_CUDA_H
#define BQ_ENGINE_CUDA_H

#include "common.h"
#include "engine.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bq_cuda_engine bq_cuda_engine;

/* Number of usable CUDA devices. No device / driver too old -> BQ_ERR_NO_DEVICE with a message
 * suggesting --device cpu. */
bq_status bq_cuda_device_count(int *count, bq_err *err);

/* Upload the weights (once, in the engine's precision) and size the workspace for opt->max_batch x
 * opt->seq_len. Out of device memory -> BQ_ERR_DEVICE_OOM with bytes needed and bytes free. */
bq_status bq_cuda_engine_create(const bq_model *model, const bq_engine_options *opt,
                                bq_cuda_engine **out, bq_err *err);
void bq_cuda_engine_free(bq_cuda_engine *e); /* accepts NULL */

/* One forward pass of `batch` sequences of `length` positions (1 <= length <= opt->seq_len; arrays
 * [batch, length]) on the engine's stream; blocks until the logits are on the host. Each (batch,
 * length) pair has its own timed choices and graph, made on its first pass. An engine created with
 * BQ_ATTENTION_CUDNN refuses length < opt->seq_len (BQ_ERR_UNSUPPORTED: cuDNN's attention is
 * planned for the full length); under auto, shorter lengths choose among our kernel's tilings. */
bq_status bq_cuda_engine_forward(bq_cuda_engine *e, int batch, int length, const int32_t *input_ids,
                                 const int32_t *input_mask, const int32_t *segment_ids,
                                 float *start_logits, float *end_logits, bq_err *err);
/* Packed sequences through the engine (bq_engine_forward_packed's contract): a pass shape of its
 * own per (batch, length, sequence capacity), graph included, our attention kernel over the
 * sequences. BQ_ERR_UNSUPPORTED for an engine created with BQ_ATTENTION_CUDNN. */
bq_status bq_cuda_engine_forward_packed(bq_cuda_engine *e, int batch, int length, int n_seqs,
                                        const int32_t *seq_offsets, const int32_t *input_ids,
                                        const int32_t *segment_ids, float *start_logits,
                                        float *end_logits, bq_err *err);
const char *bq_cuda_engine_describe(const bq_cuda_engine *e);

/* How many pass shapes (batch, length) the engine has met, and the wall seconds their first
 * forward calls took (each times its GEMMs and attention, compares whole passes and captures a
 * graph, on top of the pass itself). Zeros for NULL. */
void bq_cuda_engine_first_passes(const bq_cuda_engine *e, int *shapes, double *seconds);

/* Write the engine's timed decisions to its tuning cache (bq_engine_options.tuning_cache; the
 * decisions it read from there and did not meet this run are kept). No cache: nothing, BQ_OK.
 * Returns BQ_OK, BQ_ERR_IO (the path and errno text) or BQ_ERR_NOMEM. */
bq_status bq_cuda_engine_save_tuning(bq_cuda_engine *e, bq_err *err);

/* How many GEMM shapes and pass shapes took their decisions from the tuning cache, untimed
 * (zeros for NULL or without a cache). */
void bq_cuda_engine_tuning_cache(const bq_cuda_engine *e, int *gemm_presets_taken,
                                 int *shape_presets_taken);

/* ---- device-side benchmark API (the CLI's bench subcommand is built on it) ---- */

typedef struct {
    double compute_ms; /* CUDA events around the forward graph launch only */
    double total_ms;   /* events around host->device inputs + forward + device->host logits */
} bq_cuda_timing;

/* Time `iters` forward passes of `batch` sequences after `warmup` untimed ones. ids/mask/seg hold
 * n_input_sets consecutive input sets, each [batch, seq_len]; they are preloaded into pinned host
 * and device buffers and rotated per iteration. per_iter: [iters]. */
bq_status bq_cuda_engine_time(bq_cuda_engine *e, int batch, const int32_t *ids, const int32_t *mask,
                              const int32_t *seg, int warmup, int iters, int n_input_sets,
                              bq_cuda_timing *per_iter, bq_err *err);

/* Device bytes held by the resident weights and by the activation workspace (incl. cuBLASLt's). */
bq_status bq_cuda_engine_memory(const bq_cuda_engine *e, size_t *weights_bytes,
                                size_t *workspace_bytes, bq_err *err);

typedef enum {
    BQ_STAGE_GEMM,      /* QKV, attention-output and FFN-output GEMMs */
    BQ_STAGE_ATTENTION,
    BQ_STAGE_LAYERNORM,
    BQ_STAGE_GEMM_GELU, /* FFN-input GEMM with its bias + erf GELU (fused on Hopper + CUTLASS) */
    BQ_STAGE_EMBEDDINGS,
    BQ_STAGE_HEAD,
    BQ_STAGE_COUNT
} bq_stage;
const char *bq_stage_name(bq_stage s); /* "gemm", "attention", ...; "?" out of range (engine.c) */

/* One forward pass of `batch` sequences without the graph, CUDA events around every op, summed
 * per stage into stage_ms[BQ_STAGE_COUNT]; each op also sits in an NVTX range of its stage name. */
bq_status bq_cuda_engine_profile(bq_cuda_engine *e, int batch, const int32_t *ids,
                                 const int32_t *mask, const int32_t *seg,
                                 double stage_ms[BQ_STAGE_COUNT], bq_err *err);

/* What the GEMM layer chose for one shape (cuda/gemm.cu): cuBLASLt's heuristic candidates timed on
 * the shape's first eager call, and for bias + GELU whether the fused CUTLASS kernel or cuBLASLt +
 * the GELU kernel was faster. Times are per GEMM call, ms; 0 where nothing was timed. */
typedef struct {
    int rows, in, out;
    char dtype[8];       /* "fp32", "tf32", "fp16", "bf16" */
    char epilogue[12];   /* "none", "bias", "bias_gelu" */
    int candidates;      /* cuBLASLt algorithms the heuristic offered */
    int chosen;          /* index of the one used (0 = the heuristic's first choice) */
    int chosen_splitk;   /* its K split (1: none; > 1: one of gemm.cu's split-K variants) */
    double first_ms;     /* candidate 0 */
    double chosen_ms;    /* the chosen candidate */
    /* fp16/bf16 bias_gelu only (else ""/0): "unfused" (cuBLASLt + the GELU kernel),
     * "fused-large" / "fused-small" / "fused-pingpong" / "fused-pingpong-small" (CUTLASS,
     * 128 x 256 / 128 x 128 stream-K / 64 x 256 ping-pong / 64 x 128 ping-pong tiles), or
     * "by-rows" (untimed: fused-large from 512 rows) */
    char gelu_path[24];
    double unfused_ms;     /* the chosen cuBLASLt GEMM + the bias + GELU kernel */
    double fused_large_ms; /* CUTLASS fused GEMM + bias + GELU, large tiles (0: refused) */
    double fused_small_ms; /* the same, small stream-K tiles (0: refused) */
    double fused_pingpong_ms; /* the same, ping-pong tiles (0: refused) */
    double fused_pingpong_small_ms; /* the same, small ping-pong tiles (0: refused) */
    int runs_first; /* 1: the engine's whole-pass comparison kept the first choice and GELU rule */
    int from_cache; /* 1: the choices came from the tuning cache, untimed in this run */
    int shared_from_rows; /* > 0: taken untimed from the shape of this many rows (32 full
                           * sequences' rows and up share their choices) */
    /* fp32 with BQ_FP32_3XTF32=1 (an experiment, gemm_3xtf32.cuh): whether CUTLASS's 3xTF32 GEMM
     * runs instead of cuBLASLt's SGEMM, and the two as timed against each other (0: not timed) */
    int runs_fp32x3;
    double fp32x3_ms, sgemm_ms;
    /* Before timing, every candidate's output was compared with its stage's reference (cuBLASLt's
     * first choice; the GEMM + GELU kernel for the fused tilings; the SGEMM path for 3xTF32) on the
     * call's own operands: checked 1 when a candidate was compared with it (0: not timed, no device
     * memory for the reference copy, or no stage had a second candidate that ran), the largest
     * difference (the normwise one, or a quarter of the worst element's relative to the largest
     * reference element where that is larger; INFINITY: not finite), and how many candidates were
     * left out of the choice for differing by more than 1e-4 (true fp32) or 2e-2 (TF32, fp16,
     * bf16); their times above are still what they took. A fused tiling left out is not run by the
     * untimed rule either (the whole-pass comparison's first choices). */
    int checked, disagreeing;
    double worst_diff;
} bq_gemm_plan_info;

/* Per-layer attention times (ms) the engine measured on a batch size's first pass; 0 where a
 * kernel was not a candidate (or cuDNN's failed; see the description). */
typedef struct {
    double own_ms;    /* our kernel, 64-row blocks (the default) */
    double own128_ms; /* 128-row blocks (fp16/bf16 at head size 64) */
    double own32_ms;  /* 32-row blocks, keys split between two warp pairs (likewise) */
    double own64k3_ms; /* 64-row blocks, keys split among three groups of 4 warps (likewise) */
    double own_wgmma_ms; /* 128-row blocks on wgmma (likewise, where the build and card have it) */
    double own_wgmma_overlap_ms; /* the same, the next key tile's softmax overlapping P V */
    double cudnn_ms;  /* cuDNN's fused attention (auto only) */
    /* Before timing, every candidate's output is compared with the 64-row tiling's on the same
     * inputs: the largest difference (normwise, or a quarter of the worst element's relative to the
     * largest reference element where that is larger; 0: nothing compared), and the candidates left
     * out of the choice for differing by more than 2e-2 (their times above are still what they
     * took), comma-separated names as below ("" when none). */
    double worst_diff;
    char disagreeing[96];
} bq_attention_times;

/* The attention that runs for `batch`: "own" (our kernel, 64-row blocks), "own-128" / "own-32" /
 * "own-64k3" / "own-wgmma" / "own-wgmma-overlap" (its other tilings: fp16/bf16 at head size 64,
 * wgmma on sm_90 only),
 * "cudnn", or "undecided" (before
 * that batch size's first pass, where the engine times its candidates: our tilings under own
 * and auto, cuDNN's too under auto); "none" for a batch outside 1..max_batch. times (may be
 * NULL) gets what it measured (all 0 for a batch of 32 or more that took the choice of such a
 * batch decided before). */
const char *bq_cuda_engine_attention_choice(const bq_cuda_engine *e, int batch,
                                            bq_attention_times *times);

/* Whether `batch` runs the GEMM choices timed per shape ("timed") or cuBLASLt's first choices
 * and the untimed GELU rule ("first"): on a batch size's first pass the engine times whole passes
 * both ways and keeps the faster (timed only if at least 1% faster). "undecided" before that
 * pass, "untimed" with BQ_GEMM_AUTOTUNE=0, "none" for a batch outside 1..max_batch. timed_ms /
 * first_ms (may be NULL): the best pass time of each way, 0 when not measured (a batch of 32 or
 * more takes the decision of such a batch decided before, without timing). */
const char *bq_cuda_engine_gemm_choice(const bq_cuda_engine *e, int batch, double *timed_ms,
                                       double *first_ms);

/* Up to `max` entries of what the engine's GEMMs chose so far, in the order the shapes were first
 * run; returns how many were written (0 without CUDA or before the first forward pass). */
int bq_cuda_engine_gemm_plans(const bq_cuda_engine *e, bq_gemm_plan_info *out, int max);

/* Throughput of one large GEMM (8192^3) in each precision on `device`, in TFLOP/s, indexed by
 * bq_precision (fp16 and bf16 with fp32 accumulation, tf32, true fp32): the ceiling each
 * precision's "share of peak" figures are measured against. Returns BQ_OK (tflops all set), or
 * the failing call (those not measured are 0; BQ_ERR_NO_DEVICE without CUDA). */
bq_status bq_cuda_gemm_ceiling(int device, double tflops[BQ_PRECISION_COUNT], bq_err *err);

/* Device name ("NVIDIA H100 80GB HBM3") and CUDA driver version (e.g. 13000). */
bq_status bq_cuda_device_info(int device, char *name, size_t name_len, int *driver_version,
                              bq_err *err);

#ifdef __cplusplus
}
#endif
#endif
