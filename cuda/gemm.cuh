/* gemm.cuh - the dense layers of the model on cuBLASLt: y = x W^T (+ bias), row-major, with the
 * weight in Hugging Face layout W [out, in].
 *
 * Precision: F32 + allow_tf32 = 0 -> CUBLAS_COMPUTE_32F (true fp32, no TF32 anywhere);
 *            F32 + allow_tf32 = 1 -> CUBLAS_COMPUTE_32F_FAST_TF32;
 *            F16 / BF16           -> 16-bit A, B, C, D and bias with fp32 accumulation (CUBLAS_COMPUTE_32F).
 *
 * Epilogues: BQ_EPILOGUE_BIAS uses CUBLASLT_EPILOGUE_BIAS. BQ_EPILOGUE_BIAS_GELU does NOT use
 * CUBLASLT_EPILOGUE_GELU_BIAS: cuBLASLt documents only "GELU" without saying which form, and the
 * libraries that fuse it (PyTorch's _addmm_activation) do so only for the tanh approximation; BERT
 * needs the exact erf form. On Hopper with CUTLASS in the build, fp16/bf16 bias + GELU GEMMs run
 * bq_cuda_gemm_bias_gelu (CUTLASS, erf GELU fused in the epilogue; large tiles, small stream-K
 * tiles or ping-pong tiles) or the plain cuBLASLt GEMM followed by bq_cuda_bias_gelu (erf),
 * whichever of the four was fastest when the shape was first run (with BQ_GEMM_AUTOTUNE=0, or
 * first met under graph capture: large tiles from BQ_FUSED_GELU_MIN_ROWS rows up;
 * BQ_FUSED_GELU=0: never fused); elsewhere always the latter. */
#ifndef BQ_GEMM_CUH
#define BQ_GEMM_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "common.h"
#include "cuda_check.cuh"
#include "engine_cuda.h" /* bq_gemm_plan_info */

#ifdef __cplusplus
extern "C" {
#endif

/* A cuBLASLt handle, a device workspace allocated once, and the matmul descriptors + chosen
 * algorithms cached per shape/dtype/epilogue, so that a forward pass (and a CUDA-graph capture of
 * it) does no allocation and no heuristic search after the first call for a shape. The algorithm
 * is the fastest of cuBLASLt's heuristic candidates (up to 24), timed on the first eager call of
 * the shape (BQ_GEMM_AUTOTUNE=0: the heuristic's first choice, no timing). */
typedef struct bq_gemm_ctx bq_gemm_ctx;

bq_status bq_gemm_ctx_create(bq_gemm_ctx **out, size_t workspace_bytes, bq_err *err);
void bq_gemm_ctx_free(bq_gemm_ctx *g); /* accepts NULL */

typedef enum { BQ_EPILOGUE_NONE, BQ_EPILOGUE_BIAS, BQ_EPILOGUE_BIAS_GELU } bq_epilogue;

/* The emulated build's tests only: how many elements BQ_EMU_GEMM_FAULT=elements zeroes in every
 * checked candidate's output (from the middle on), so few that in 16 bits the norm of the
 * difference stays under the bound while the worst element's does not (in fp32 the norm alone
 * leaves them out). */
#define BQ_EMU_GEMM_FAULT_ELEMENTS 6

/* y[rows, out] = x[rows, in] . W[out, in]^T (+ bias[out]) (then erf-GELU for BIAS_GELU).
 * x, W, bias, y are device pointers in `dt`; bias ignored for BQ_EPILOGUE_NONE. allow_tf32 only
 * matters for F32. Enqueued on `stream`; does not synchronize, except on the first call of a
 * shape outside graph capture, which times the candidate algorithms on these operands (y is
 * written by each) and synchronizes the stream. Returns BQ_OK, or the failing cuBLASLt / CUDA call
 * with its statement, file and line in err. */
bq_status bq_gemm_linear(bq_gemm_ctx *g, const void *x, const void *W, const void *bias, int rows,
                         int in, int out, void *y, bq_cuda_dtype dt, int allow_tf32, bq_epilogue ep,
                         cudaStream_t stream, bq_err *err);

/* Up to `max` entries describing the cached shapes and what was chosen for each; returns the count.
 * g may be NULL (0). */
int bq_gemm_ctx_plans(const bq_gemm_ctx *g, bq_gemm_plan_info *out, int max);

/* For every cached shape of `rows` rows: prefer_first = 1 runs cuBLASLt's first choice and the
 * untimed GELU rule instead of what timing chose (0: the timed choices again). Host-only: takes
 * effect from the next call (and in graphs captured after it). The engine sets it per batch size
 * from a whole-pass comparison, since choices timed alone on warm operands need not make the
 * pass faster. Returns the number of shapes set (0 for g NULL). */
int bq_gemm_ctx_prefer_first(bq_gemm_ctx *g, int rows, int prefer_first);

/* One GEMM shape's timed decisions, as a tuning cache keeps them between runs
 * (bq_gemm_ctx_decisions, bq_gemm_ctx_preset). */
typedef struct {
    int rows, in, out;
    int dt;           /* bq_cuda_dtype */
    int allow_tf32;   /* F32 only */
    int ep;           /* bq_epilogue */
    int candidates;   /* the plan's candidate count when it was timed */
    int chosen;       /* the cuBLASLt candidate timing chose, an index among them */
    int gelu_variant; /* BIAS_GELU in 16 bits: the path timing chose (never 0) */
    /* bit t: fused tiling t's output differed from the GEMM + GELU kernel's when the shape was
     * timed, so that the untimed rule (under the whole-pass comparison's first choices) does not
     * run it either */
    int gelu_disagreed;
} bq_gemm_decision;

/* Take d's decision instead of timing a shape met later: a plan of d's shape whose cuBLASLt
 * heuristic returns as many candidates as d->candidates (the same library on the same card)
 * runs d's choices untimed; any other plan times as usual. Host-only; call before the shape's
 * first call. Returns BQ_OK, BQ_ERR_INVALID_ARG (g or d NULL, or d out of range) or
 * BQ_ERR_NOMEM. */
bq_status bq_gemm_ctx_preset(bq_gemm_ctx *g, const bq_gemm_decision *d, bq_err *err);

/* The decisions worth keeping: each cached shape's timed (or preset) choices, then the presets
 * no shape has taken. Fills up to `max` of them into out (may be NULL with max 0); returns how
 * many there are. *presets_taken (may be NULL): how many shapes took a preset. g NULL: 0. */
int bq_gemm_ctx_decisions(const bq_gemm_ctx *g, bq_gemm_decision *out, int max, int *presets_taken);

/* cuBLASLt's version (cublasLtGetVersion): part of a tuning cache's key. */
size_t bq_gemm_library_version(void);

/* 1 unless BQ_GEMM_AUTOTUNE=0 (then nothing is timed: first choices and the GELU rule). */
int bq_gemm_autotune_enabled(void);

/* Whether this context times the candidates of a new shape (default 1; 0: first choices and the
 * GELU rule, as BQ_GEMM_AUTOTUNE=0 does for every context). Host-only. */
void bq_gemm_ctx_set_autotune(bq_gemm_ctx *g, int autotune);

/* From `rows` rows up (0: never, the default), a GEMM shape met for the first time takes the
 * choices of the decided shape of the same GEMM nearest in rows (also of at least `rows` rows)
 * instead of timing its candidates: the same cuBLASLt algorithm, when it runs this shape, and the
 * same bias + GELU path. The engine sets it to 32 full sequences' rows, where its whole-pass
 * decision is shared too. Host-only; takes effect for shapes met after the call. */
void bq_gemm_ctx_share_from(bq_gemm_ctx *g, int rows);

#ifdef __cplusplus
}
#endif
#endif
