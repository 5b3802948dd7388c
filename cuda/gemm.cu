/* gemm.cu - y = x W^T (+ bias) on cuBLASLt with per-shape cached descriptors and algorithms (the
 * fastest of the heuristic's candidates, timed on the first call of each shape).
 *
 * Layout reasoning (cuBLASLt is column-major). A row-major matrix [R, C] with leading dimension C
 * is, byte for byte, the column-major matrix [C, R] with ld = C. So:
 *   x row-major [rows, in]  == column-major X' [in, rows],  ld = in
 *   W row-major [out, in]   == column-major W' [in, out],   ld = in
 *   y row-major [rows, out] == column-major Y' [out, rows], ld = out
 * and y = x W^T  <=>  y^T = W x^T  <=>  Y' = W'^T X'. Hence cuBLASLt's D = op(A) op(B) with
 *   A = W' (stored [in, out], ld in, transa = T -> op(A) is [out, in]),
 *   B = X' (stored [in, rows], ld in, transb = N),
 *   C = D = Y' ([out, rows], ld out), m = out, n = rows, k = in.
 * The bias epilogue adds a vector of length m (= out) to every column of D, i.e. one bias per
 * output feature for every token row - exactly the Linear layer's bias. */
#include "gemm.cuh"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bias_gelu.cuh"
#include "gemm_3xtf32.cuh"
#include "gemm_bias_gelu.cuh"
#include "normwise_diff.cuh"
#include "tuning.cuh"

/* Fused CUTLASS GEMM + bias + GELU or cuBLASLt + the GELU kernel: timed per shape (plan_tune).
 * Untimed (BQ_GEMM_AUTOTUNE=0), the fused kernel runs from this many rows up: below, its 128 x 256
 * tiles leave most of an H100's 132 SMs idle while the separate GELU pass it saves is small. */
#define BQ_FUSED_GELU_MIN_ROWS 512

/* Plans kept (4 GEMM shapes a row count): the batch sizes a run meets times, with length buckets,
 * the lengths (6 at buckets of 64 in 384) */
#define BQ_GEMM_CACHE_MAX 256

/* The heuristic's candidates per shape. Its first choice is often not the fastest for BERT's
 * small-row shapes (batch 1 = 384 rows: few tiles for 132 SMs, where tile shape and split-K
 * decide), so the first eager call of a shape times them all on the real operands and keeps the
 * fastest, the way TensorRT picks tactics. BQ_GEMM_AUTOTUNE=0: the heuristic's first choice.
 * On the H200 the timed choice made batch 1's four GEMMs 0.0377 ms a layer instead of 0.0468,
 * and the heuristic filled all of the 8 slots asked for then: 24 lets it offer the split-K and
 * tile variants further down its list (the timing costs a few ms per shape once). */
#define BQ_GEMM_CANDIDATES 24

/* For shapes of at most BQ_GEMM_SPLITK_MAX_ROWS rows, split-K variants (K cut in 2, 3 or 4 parts,
 * fp32 partial sums reduced in the workspace) of the heuristic's first BQ_GEMM_SPLITK_BASES
 * candidates join the timed ones. At batch 1 the heuristic offered none: its choice for FFN-out
 * (384 x 4096 -> 1024) ran 96 CTAs of 64 x 64 over the whole K = 4096 on 132 SMs, 11 us where the
 * math takes ~5 (run 349ae86, ncu). Beyond batch 2 the tiles fill the GPU. */
#define BQ_GEMM_SPLITK_MAX_ROWS 1024
#define BQ_GEMM_SPLITK_BASES 4
#define BQ_GEMM_MAX_ALGOS (BQ_GEMM_CANDIDATES + 3 * BQ_GEMM_SPLITK_BASES)

/* Before timing, every candidate's output on the call's own operands is compared with its stage's
 * reference (cuBLASLt's first choice; the chosen GEMM + the GELU kernel; the chosen SGEMM path):
 * one whose difference (bq_normwise_from_sums: normwise, or a quarter of the worst element's
 * relative to the largest reference element where that is larger) is over this bound is timed but
 * never kept, since a kernel wrong on this card, shape or library version cannot win on speed. Two
 * correct kernels differ by their rounding: ~1e-3 in 16 bits and TF32 (bf16's output rounding alone
 * is 2^-9), ~1e-6 in true fp32, where the bound is tight enough to refuse a "3xTF32" kernel that
 * computes in plain TF32 (~5e-4). */
#define BQ_GEMM_AGREE_BOUND_16 2e-2
#define BQ_GEMM_AGREE_BOUND_FP32 1e-4

typedef struct {
    int rows, in, out;
    bq_cuda_dtype dt;
    int allow_tf32;
    bq_epilogue ep;              /* what the caller asked for */
    cublasLtEpilogue_t epilogue; /* what cuBLASLt does of it (GELU never) */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t candidates[BQ_GEMM_MAX_ALGOS]; /* the heuristic's, then split-K ones */
    int candidate_count, chosen; /* candidates[chosen] is the one that runs */
    int tuned; /* 1 once the choices were timed, or timing is off (BQ_GEMM_AUTOTUNE=0) */
    int gelu_variant; /* BIAS_GELU in 16 bits: a VARIANT_* below, or 0 = undecided */
    /* 1: run the heuristic's first choice and the untimed GELU rule whatever the timing found
     * (the engine's whole-pass comparison for this shape's batch size, bq_gemm_ctx_prefer_first) */
    int prefer_first;
    int preset; /* 1: the choices came from a preset (bq_gemm_ctx_preset), untimed */
    /* true fp32 with BQ_FP32_3XTF32=1: 1 runs CUTLASS's 3xTF32 GEMM (faster than the chosen
     * cuBLASLt SGEMM when timed), -1 cuBLASLt, 0 not timed (not asked, or a preset) */
    int f32x3;
    float f32x3_ms, sgemm_ms; /* the two timed against each other (0: not timed / refused) */
    int shared_from; /* > 0: the choices of the plan of this many rows, untimed (plan_take_shared) */
    float first_ms, chosen_ms, unfused_ms;
    float fused_ms[BQ_GELU_TILE_COUNT]; /* per bq_gelu_tile; per call, timed; 0 = not */
    /* the output check of plan_tune (BQ_GEMM_AGREE_BOUND_*): 1 when a candidate was compared with
     * its stage's reference (0: not timed, no device memory for the reference copy, or no stage
     * had a second candidate that ran), the largest difference from a stage's reference
     * (INFINITY: not finite), and the candidates left out for it */
    int checked, disagreeing;
    float worst_diff;
    unsigned gelu_disagreed; /* bit t: fused tiling t differed, so not even the untimed rule runs it */
} gemm_plan;

/* The operands of one call, for timing its variants. */
typedef struct {
    const void *x, *W, *bias;
    void *y;
} gemm_operands;

/* A decision of an earlier run, and whether a plan took it. */
typedef struct {
    bq_gemm_decision d;
    int taken;
} gemm_preset;

/* BQ_FP32_3XTF32: 1 makes the fp32 precision's GEMMs time CUTLASS's 3xTF32 kernel against
 * cuBLASLt's SGEMM and keep the faster; force runs it for every fp32 GEMM (an error where it
 * cannot run), so that a parity check knows what it measured. An experiment until a device run
 * has measured its speed and error: off by default, fp32 stays SGEMM (gemm_3xtf32.cuh). Read when
 * a context is created. */
enum { F32X3_OFF, F32X3_TIMED, F32X3_FORCED };
static int f32x3_mode_from_env(void) {
    const char *v = getenv("BQ_FP32_3XTF32");
    if (!v) return F32X3_OFF;
    return strcmp(v, "force") == 0 ? F32X3_FORCED : strcmp(v, "1") == 0 ? F32X3_TIMED : F32X3_OFF;
}

struct bq_gemm_ctx {
    cublasLtHandle_t handle;
    void *workspace; /* device, workspace_bytes */
    size_t workspace_bytes;
    double *d_check; /* device [BQ_NORMWISE_SUMS * BQ_GEMM_MAX_ALGOS]: the output check's sums, per
                      * candidate */
    gemm_plan plans[BQ_GEMM_CACHE_MAX];
    int plan_count;
    int untimed; /* bq_gemm_ctx_set_autotune(g, 0) */
    int share_rows; /* bq_gemm_ctx_share_from: plans of at least this many rows share (0: none) */
    int f32x3_mode; /* F32X3_*: BQ_FP32_3XTF32 at create */
    gemm_preset *presets; /* [n_presets]: decisions of an earlier run (a tuning cache) */
    size_t n_presets, presets_cap;
};

/* The BQ_FP32_3XTF32 mode that applies to a GEMM of dtype dt: the context's for true fp32 (not
 * TF32, not 16-bit), else off. */
static int f32x3_mode_for(const bq_gemm_ctx *g, bq_cuda_dtype dt, int allow_tf32) {
    return dt == BQ_CUDA_F32 && !allow_tf32 ? g->f32x3_mode : F32X3_OFF;
}

static void plan_destroy(gemm_plan *p) {
    if (p->a) cublasLtMatrixLayoutDestroy(p->a);
    if (p->b) cublasLtMatrixLayoutDestroy(p->b);
    if (p->c) cublasLtMatrixLayoutDestroy(p->c);
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    memset(p, 0, sizeof *p);
}

bq_status bq_gemm_ctx_create(bq_gemm_ctx **out, size_t workspace_bytes, bq_err *err) {
    *out = NULL;
    bq_gemm_ctx *g = (bq_gemm_ctx *)calloc(1, sizeof *g);
    if (!g) return bq_fail(err, BQ_ERR_NOMEM, "gemm context: out of host memory");
    g->f32x3_mode = f32x3_mode_from_env();
    bq_status s = bq_cublas_check(cublasLtCreate(&g->handle), "cublasLtCreate(&g->handle)", __FILE__,
                                  __LINE__, err);
    if (s == BQ_OK && workspace_bytes > 0) {
        s = bq_cuda_check(cudaMalloc(&g->workspace, workspace_bytes),
                          "cudaMalloc(&g->workspace, workspace_bytes)", __FILE__, __LINE__, err);
        if (s == BQ_OK) g->workspace_bytes = workspace_bytes;
    }
    if (s == BQ_OK)
        s = bq_cuda_check(cudaMalloc(&g->d_check, BQ_NORMWISE_SUMS * BQ_GEMM_MAX_ALGOS * sizeof(double)),
                          "cudaMalloc(&g->d_check, BQ_NORMWISE_SUMS * BQ_GEMM_MAX_ALGOS * sizeof(double))",
                          __FILE__, __LINE__, err);
    if (s != BQ_OK) {
        bq_gemm_ctx_free(g);
        return s;
    }
    *out = g;
    return BQ_OK;
}

void bq_gemm_ctx_free(bq_gemm_ctx *g) {
    if (!g) return;
    for (int i = 0; i < g->plan_count; i++) plan_destroy(&g->plans[i]);
    if (g->workspace) cudaFree(g->workspace);
    if (g->d_check) cudaFree(g->d_check);
    if (g->handle) cublasLtDestroy(g->handle);
    free(g->presets);
    free(g);
}

static cudaDataType_t data_type_of(bq_cuda_dtype dt) {
    switch (dt) {
    case BQ_CUDA_F16: return CUDA_R_16F;
    case BQ_CUDA_BF16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
    }
}

/* Appends split-K variants of the plan's first BQ_GEMM_SPLITK_BASES candidates: those whose
 * algorithm supports split-K with fp32 (compute type) partial sums, for 2, 3 and 4 parts, where
 * cublasLtMatmulAlgoCheck accepts the shape within the workspace. Only the compute-type reduction:
 * the in-place and output-type ones would add the parts in fp16/bf16. An algorithm that answers
 * no capability query simply gets no variant. */
static void add_splitk_candidates(bq_gemm_ctx *g, gemm_plan *p) {
    const int bases = p->candidate_count < BQ_GEMM_SPLITK_BASES ? p->candidate_count
                                                                 : BQ_GEMM_SPLITK_BASES;
    for (int i = 0; i < bases; i++) {
        int32_t splitk_support = 0;
        uint32_t schemes = 0;
        size_t written = 0;
        if (cublasLtMatmulAlgoCapGetAttribute(&p->candidates[i], CUBLASLT_ALGO_CAP_SPLITK_SUPPORT,
                                              &splitk_support, sizeof splitk_support,
                                              &written) != CUBLAS_STATUS_SUCCESS ||
            !splitk_support)
            continue;
        if (cublasLtMatmulAlgoCapGetAttribute(&p->candidates[i],
                                              CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &schemes,
                                              sizeof schemes, &written) != CUBLAS_STATUS_SUCCESS ||
            !(schemes & CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE))
            continue;
        for (int32_t parts = 2; parts <= 4 && p->candidate_count < BQ_GEMM_MAX_ALGOS; parts++) {
            cublasLtMatmulAlgo_t algo = p->candidates[i];
            const uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
            cublasLtMatmulHeuristicResult_t check;
            memset(&check, 0, sizeof check);
            if (cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &parts,
                                                     sizeof parts) != CUBLAS_STATUS_SUCCESS ||
                cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                                     &scheme, sizeof scheme) !=
                    CUBLAS_STATUS_SUCCESS ||
                cublasLtMatmulAlgoCheck(g->handle, p->desc, p->a, p->b, p->c, p->c, &algo,
                                        &check) != CUBLAS_STATUS_SUCCESS ||
                check.workspaceSize > g->workspace_bytes)
                continue;
            p->candidates[p->candidate_count++] = algo;
        }
    }
}

/* K split of a candidate (1 when not split or not known). */
static int algo_splitk(const cublasLtMatmulAlgo_t *algo) {
    int32_t parts = 1;
    size_t written = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &parts,
                                             sizeof parts, &written) != CUBLAS_STATUS_SUCCESS ||
        parts < 1)
        return 1;
    return parts;
}

/* Build the descriptors for one shape and ask the heuristic for the best algorithm that fits the
 * workspace. Host-only work; done once per shape. */
static bq_status plan_build(bq_gemm_ctx *g, gemm_plan *p, bq_err *err) {
    cudaDataType_t type = data_type_of(p->dt);
    cublasComputeType_t compute = (p->dt == BQ_CUDA_F32 && p->allow_tf32)
                                      ? CUBLAS_COMPUTE_32F_FAST_TF32
                                      : CUBLAS_COMPUTE_32F;
    cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    BQ_CUBLAS_TRY(cublasLtMatmulDescCreate(&p->desc, compute, CUDA_R_32F), err);
    BQ_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transa,
                                                 sizeof transa),
                  err);
    BQ_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &transb,
                                                 sizeof transb),
                  err);
    BQ_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                 &p->epilogue, sizeof p->epilogue),
                  err);
    if (p->epilogue == CUBLASLT_EPILOGUE_BIAS) {
        /* bias stored in the activation dtype (the default is the D type; set it explicitly) */
        BQ_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                     &type, sizeof type),
                      err);
    }
    /* A = W' [in, out] ld in; B = X' [in, rows] ld in; C = D = Y' [out, rows] ld out */
    BQ_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->a, type, (uint64_t)p->in, (uint64_t)p->out, p->in),
                  err);
    BQ_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->b, type, (uint64_t)p->in, (uint64_t)p->rows, p->in),
                  err);
    BQ_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->c, type, (uint64_t)p->out, (uint64_t)p->rows,
                                             p->out),
                  err);

    cublasLtMatmulPreference_t pref = NULL;
    BQ_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&pref), err);
    size_t ws = g->workspace_bytes;
    cublasStatus_t rc = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulHeuristicResult_t results[BQ_GEMM_CANDIDATES];
    memset(results, 0, sizeof results);
    int found = 0;
    if (rc == CUBLAS_STATUS_SUCCESS)
        rc = cublasLtMatmulAlgoGetHeuristic(g->handle, p->desc, p->a, p->b, p->c, p->c, pref,
                                            BQ_GEMM_CANDIDATES, results, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    BQ_CUBLAS_TRY(rc, err);
    if (found < 1)
        return bq_fail(err, BQ_ERR_UNSUPPORTED,
                       "cuBLASLt has no algorithm for %s GEMM rows=%d in=%d out=%d (tf32 %d, "
                       "epilogue %d) within %zu workspace bytes",
                       bq_cuda_dtype_name(p->dt), p->rows, p->in, p->out, p->allow_tf32,
                       (int)p->epilogue, g->workspace_bytes);
    for (int i = 0; i < found && i < BQ_GEMM_CANDIDATES; i++)
        if (results[i].state == CUBLAS_STATUS_SUCCESS)
            p->candidates[p->candidate_count++] = results[i].algo;
    if (p->candidate_count == 0)
        return bq_fail(err, BQ_ERR_UNSUPPORTED, "cuBLASLt's heuristic returned no usable algorithm");
    if (p->rows <= BQ_GEMM_SPLITK_MAX_ROWS) add_splitk_candidates(g, p);
    p->chosen = 0;
    return BQ_OK;
}

static int autotune_enabled(void) {
    const char *v = getenv("BQ_GEMM_AUTOTUNE");
    return !(v && v[0] == '0');
}

int bq_gemm_autotune_enabled(void) { return autotune_enabled(); }

void bq_gemm_ctx_set_autotune(bq_gemm_ctx *g, int autotune) {
    if (g) g->untimed = !autotune;
}

void bq_gemm_ctx_share_from(bq_gemm_ctx *g, int rows) {
    if (g) g->share_rows = rows > 0 ? rows : 0;
}

/* BQ_FUSED_GELU=0: never the CUTLASS kernel (a diagnostic switch: the device run falls back to it
 * when the fast paths fail). */
static int fused_gelu_allowed(void) {
    const char *v = getenv("BQ_FUSED_GELU");
    return !(v && v[0] == '0');
}

/* Variants of one GEMM call that can be timed against each other. */
enum { /* >= 0: cuBLASLt candidate index */
    VARIANT_UNFUSED = -1,     /* the chosen cuBLASLt GEMM, then the bias + GELU kernel */
    VARIANT_FUSED_LARGE = -2, /* CUTLASS GEMM + bias + GELU, BQ_GELU_TILE_LARGE; tiling t is
                               * VARIANT_FUSED_LARGE - t (fused_variant) */
    VARIANT_3XTF32 = -100,    /* true fp32: CUTLASS's 3xTF32 GEMM (+ bias), then for bias +
                               * GELU the GELU kernel */
};

/* The variant of fused tiling `tile`. */
static int fused_variant(bq_gelu_tile tile) { return VARIANT_FUSED_LARGE - (int)tile; }

/* The tiling of a fused variant (variant <= VARIANT_FUSED_LARGE). */
static bq_gelu_tile variant_tile(int variant) {
    return (bq_gelu_tile)(VARIANT_FUSED_LARGE - variant);
}

/* The cuBLASLt candidate a plan runs: the timed choice, or the heuristic's first when the
 * engine's whole-pass comparison preferred the first choices. */
static int plan_algo(const gemm_plan *p) { return p->prefer_first ? 0 : p->chosen; }

/* Enqueues one run of `variant`. *ran = 1 when it ran, 0 when cuBLASLt / CUTLASS refused it
 * (nothing enqueued; with `report`, a refused cuBLASLt call is an error instead). Returns BQ_OK,
 * or the failing call with its statement, file and line. */
static bq_status run_variant(bq_gemm_ctx *g, gemm_plan *p, int variant, const gemm_operands *o,
                             cudaStream_t stream, int report, int *ran, bq_err *err) {
    const float one = 1.0f, zero = 0.0f;
    *ran = 0;
    if (variant == VARIANT_3XTF32) {
        cudaError_t rc = bq_cuda_gemm_3xtf32(
            (const float *)o->x, (const float *)o->W,
            p->ep == BQ_EPILOGUE_BIAS ? (const float *)o->bias : NULL, p->rows, p->in, p->out,
            (float *)o->y, stream);
        if (rc == cudaErrorNotSupported) return BQ_OK;
        BQ_CUDA_TRY(rc, err);
        if (p->ep == BQ_EPILOGUE_BIAS_GELU)
            BQ_CUDA_TRY(bq_cuda_bias_gelu(o->y, o->bias, p->rows, p->out, p->dt, stream), err);
        *ran = 1;
        return BQ_OK;
    }
    if (variant <= VARIANT_FUSED_LARGE) {
        cudaError_t rc = bq_cuda_gemm_bias_gelu(o->x, o->W, o->bias, p->rows, p->in, p->out, o->y,
                                                p->dt, variant_tile(variant), g->workspace,
                                                g->workspace_bytes, stream);
        if (rc == cudaErrorNotSupported) return BQ_OK;
        BQ_CUDA_TRY(rc, err);
        *ran = 1;
        return BQ_OK;
    }
    const cublasLtMatmulAlgo_t *algo = &p->candidates[variant >= 0 ? variant : plan_algo(p)];
    cublasStatus_t rc = cublasLtMatmul(g->handle, p->desc, &one, o->W, p->a, o->x, p->b, &zero,
                                       o->y, p->c, o->y, p->c, algo, g->workspace,
                                       g->workspace_bytes, stream);
    if (rc != CUBLAS_STATUS_SUCCESS) {
        if (!report) return BQ_OK;
        return bq_cublas_check(rc, "cublasLtMatmul(g->handle, p->desc, ..., algo, ...)", __FILE__,
                               __LINE__, err);
    }
    if (variant == VARIANT_UNFUSED)
        BQ_CUDA_TRY(bq_cuda_bias_gelu(o->y, o->bias, p->rows, p->out, p->dt, stream), err);
    *ran = 1;
    return BQ_OK;
}

/* The output check of one stage of plan_tune: a copy of the stage's reference output (the first
 * of its candidates that ran) and which candidate that was. */
typedef struct {
    void *ref; /* device [rows * out] in the plan's dtype; NULL: no check */
    int ref_candidate; /* -1 until a candidate ran */
} output_check;

/* The candidates of one stage of plan_tune (bq_tuning_time_candidates' callback): cuBLASLt's
 * algorithms (candidate i = variant i), or the bias + GELU paths (0: the chosen GEMM + the GELU
 * kernel, 1 + t: CUTLASS tiling t). */
typedef struct {
    bq_gemm_ctx *g;
    gemm_plan *p;
    const gemm_operands *o;
    cudaStream_t stream;
    int gelu_paths;
    int f32x3; /* 1: candidate 0 the chosen cuBLASLt path, 1 the 3xTF32 one */
    output_check check;
} candidate_runs;

static int gelu_path_variant(int v) {
    return v == 0 ? VARIANT_UNFUSED : fused_variant((bq_gelu_tile)(v - 1));
}

static bq_status run_candidate(void *ctx, int candidate, int *ran, bq_err *err) {
    const candidate_runs *c = (const candidate_runs *)ctx;
    int variant = c->gelu_paths ? gelu_path_variant(candidate) : candidate;
    if (c->f32x3)
        variant = candidate == 1                              ? VARIANT_3XTF32
                  : c->p->ep == BQ_EPILOGUE_BIAS_GELU ? VARIANT_UNFUSED
                                                              : c->p->chosen;
    return run_variant(c->g, c->p, variant, c->o, c->stream, 0, ran, err);
}

/* After a candidate's warm-up run (bq_tuning_check_fn): the stage's first output to arrive is
 * copied as the reference; every later one adds its sums against it (bq_cuda_normwise_diff) to
 * g->d_check[BQ_NORMWISE_SUMS * candidate ..]. */
static bq_status check_candidate(void *ctx, int candidate, bq_err *err) {
    candidate_runs *c = (candidate_runs *)ctx;
    output_check *k = &c->check;
    const size_t count = (size_t)c->p->rows * c->p->out;
    if (!k->ref) return BQ_OK;
    if (k->ref_candidate < 0) {
        k->ref_candidate = candidate;
        BQ_CUDA_TRY(cudaMemcpyAsync(k->ref, c->o->y, count * bq_cuda_dtype_size(c->p->dt),
                                    cudaMemcpyDeviceToDevice, c->stream),
                    err);
        return BQ_OK;
    }
#ifdef BQ_CUDA_EMULATED
    /* the emulated build's tests only: BQ_EMU_GEMM_FAULT=all spoils every candidate's output but
     * the reference's, here in the check only, as a kernel wrong on some card would; =elements
     * zeroes BQ_EMU_GEMM_FAULT_ELEMENTS of them from the middle on, an error the norm dilutes */
    const char *fault = getenv("BQ_EMU_GEMM_FAULT");
    const size_t es = bq_cuda_dtype_size(c->p->dt);
    if (fault && strcmp(fault, "all") == 0)
        BQ_CUDA_TRY(cudaMemsetAsync(c->o->y, 0x3c, count * es, c->stream), err);
    if (fault && strcmp(fault, "elements") == 0 && count >= 2 * BQ_EMU_GEMM_FAULT_ELEMENTS)
        BQ_CUDA_TRY(cudaMemsetAsync((char *)c->o->y + count / 2 * es, 0,
                                    BQ_EMU_GEMM_FAULT_ELEMENTS * es, c->stream),
                    err);
#endif
    BQ_CUDA_TRY(bq_cuda_normwise_diff(c->o->y, k->ref, count, c->p->dt,
                                      c->g->d_check + BQ_NORMWISE_SUMS * candidate, c->stream),
                err);
    return BQ_OK;
}

/* One stage of plan_tune: times its n candidates (bq_tuning_time_candidates, two rounds of
 * `reps`) with the output check after each warm-up run; agrees[i] = 0 for a candidate whose
 * output differed from the reference's by more than the plan's bound (its ms[i] is still what it
 * took), 1 otherwise, and the plan's check record takes the stage's results. Synchronizes. */
static bq_status time_stage(candidate_runs *runs, const bq_tuning_timer *timer, int n, int reps,
                            float *ms, int *agrees, bq_err *err) {
    gemm_plan *p = runs->p;
    output_check *k = &runs->check;
    k->ref_candidate = -1;
    for (int i = 0; i < n; i++) agrees[i] = 1;
    if (k->ref)
        BQ_CUDA_TRY(cudaMemsetAsync(runs->g->d_check, 0, BQ_NORMWISE_SUMS * (size_t)n * sizeof(double),
                                    runs->stream),
                    err);
    bq_status s = bq_tuning_time_candidates(timer, runs->stream, n, 2, reps, run_candidate,
                                            k->ref ? check_candidate : NULL, runs, ms, err);
#ifdef BQ_CUDA_EMULATED
    /* the emulated build's tests only: BQ_EMU_GEMM_FASTEST=last times the stage's last candidate
     * (the 3xTF32 kernel against the SGEMM path) at half the best of the others, as a kernel that
     * the emulator runs slowest may be fastest on a card: only the output check can then keep a
     * wrong one out */
    const char *fastest = getenv("BQ_EMU_GEMM_FASTEST");
    if (s == BQ_OK && fastest && strcmp(fastest, "last") == 0 && n > 1 && ms[n - 1] >= 0.0f) {
        for (int i = 0; i < n - 1; i++)
            if (ms[i] >= 0.0f && ms[i] < ms[n - 1]) ms[n - 1] = ms[i];
        ms[n - 1] *= 0.5f;
    }
#endif
    if (s != BQ_OK || !k->ref || k->ref_candidate < 0) return s;
    double sums[BQ_NORMWISE_SUMS * BQ_GEMM_MAX_ALGOS];
    BQ_CUDA_TRY(cudaMemcpyAsync(sums, runs->g->d_check, BQ_NORMWISE_SUMS * (size_t)n * sizeof(double),
                                cudaMemcpyDeviceToHost, runs->stream),
                err);
    BQ_CUDA_TRY(cudaStreamSynchronize(runs->stream), err);
    const double bound = p->dt == BQ_CUDA_F32 && !p->allow_tf32 ? BQ_GEMM_AGREE_BOUND_FP32
                                                                : BQ_GEMM_AGREE_BOUND_16;
    for (int i = 0; i < n; i++) {
        if (ms[i] < 0.0f || i == k->ref_candidate) continue;
        const double diff = bq_normwise_from_sums(sums + BQ_NORMWISE_SUMS * i);
        p->checked = 1;
        if (!(diff <= p->worst_diff)) p->worst_diff = (float)diff;
        if (!(diff <= bound)) {
            agrees[i] = 0;
            p->disagreeing++;
        }
    }
    return BQ_OK;
}

/* The fastest of ms[0..n) that ran (>= 0) and agrees, or -1. */
static int fastest(const float *ms, const int *agrees, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (ms[i] >= 0.0f && agrees[i] && (best < 0 || ms[i] < ms[best])) best = i;
    return best;
}

/* Whether a GEMM has a bias + GELU path to choose (16-bit bias + GELU: cuBLASLt + our GELU
 * kernel, or a CUTLASS fused tiling); fp32 always runs the GELU kernel after the GEMM. */
static int has_gelu_path(int ep, int dt) {
    return ep == BQ_EPILOGUE_BIAS_GELU && dt != BQ_CUDA_F32;
}

/* Times every cuBLASLt candidate of p on the call's own operands (y is written; the caller's run
 * overwrites it right after) and keeps the fastest; for a 16-bit bias + GELU, then times the chosen
 * GEMM + the GELU kernel against the CUTLASS tilings of the fused kernel. Each stage's candidates
 * are timed in two interleaved rounds (bq_tuning_time_candidates), the best round of each kept,
 * among those whose output agreed with the stage's reference (time_stage). The reference copy is
 * allocated here for the call and freed after it; where the device has no room for it, the
 * candidates are timed unchecked (the plan says so: checked 0). Synchronizes the stream: only on
 * the first eager call of a shape, never while the stream is being captured into a graph (the
 * shape then waits for an eager call and runs untimed choices meanwhile). */
static bq_status plan_tune(bq_gemm_ctx *g, gemm_plan *p, const gemm_operands *o,
                           cudaStream_t stream, bq_err *err) {
    const int gelu16 = has_gelu_path(p->ep, p->dt);
    if (!autotune_enabled() || g->untimed) {
        p->tuned = 1;
        return BQ_OK;
    }
    bq_tuning_timer timer;
    int ready = 0;
    bq_status s = bq_tuning_timer_begin(&timer, stream, &ready, err);
    if (s != BQ_OK || !ready) return s;
    /* enough repetitions to see past launch noise, few for the big fp32 shapes; split over the
     * two rounds */
    const double flop = 2.0 * p->rows * (double)p->in * p->out;
    const int reps = flop > 1e11 ? 2 : flop > 1e10 ? 5 : 20;
    const int reps_per_round = (reps + 1) / 2;
    candidate_runs runs = {g, p, o, stream, 0, 0, {NULL, -1}};
    if (cudaMalloc(&runs.check.ref, (size_t)p->rows * p->out * bq_cuda_dtype_size(p->dt)) !=
        cudaSuccess) {
        (void)cudaGetLastError(); /* out of memory is not sticky: time unchecked */
        runs.check.ref = NULL;
    }
    p->checked = 0, p->disagreeing = 0, p->worst_diff = 0.0f, p->gelu_disagreed = 0;
    float ms[BQ_GEMM_MAX_ALGOS];
    int agrees[BQ_GEMM_MAX_ALGOS];
    s = time_stage(&runs, &timer, p->candidate_count, reps_per_round, ms, agrees, err);
    if (s == BQ_OK) {
        p->first_ms = p->candidate_count > 0 && ms[0] > 0.0f ? ms[0] : 0.0f;
        const int best = fastest(ms, agrees, p->candidate_count);
        if (best >= 0) {
            p->chosen = best;
            p->chosen_ms = ms[best];
        }
    }
    if (s == BQ_OK && gelu16 && p->gelu_variant == 0) {
        /* the chosen GEMM + GELU kernel, then each CUTLASS tiling: the fastest that ran stays */
        float path_ms[1 + BQ_GELU_TILE_COUNT];
        runs.gelu_paths = 1;
        s = time_stage(&runs, &timer, 1 + BQ_GELU_TILE_COUNT, reps_per_round, path_ms, agrees, err);
        if (s == BQ_OK) {
            const int best_v = fastest(path_ms, agrees, 1 + BQ_GELU_TILE_COUNT);
            p->unfused_ms = path_ms[0] > 0.0f ? path_ms[0] : 0.0f;
            for (int t = 0; t < BQ_GELU_TILE_COUNT; t++)
                p->fused_ms[t] = path_ms[t + 1] > 0.0f ? path_ms[t + 1] : 0.0f;
            p->gelu_variant = best_v > 0 ? gelu_path_variant(best_v) : VARIANT_UNFUSED;
            for (int t = 0; t < BQ_GELU_TILE_COUNT; t++)
                if (!agrees[t + 1]) p->gelu_disagreed |= 1u << t;
        }
    }
    if (s == BQ_OK && f32x3_mode_for(g, p->dt, p->allow_tf32) != F32X3_OFF) {
        /* the chosen SGEMM path against the 3xTF32 one (each with the GELU kernel after it for
         * bias + GELU) */
        float path_ms[2];
        runs.gelu_paths = 0, runs.f32x3 = 1;
        s = time_stage(&runs, &timer, 2, reps_per_round, path_ms, agrees, err);
        if (s == BQ_OK) {
            p->sgemm_ms = path_ms[0] > 0.0f ? path_ms[0] : 0.0f;
            p->f32x3_ms = path_ms[1] > 0.0f ? path_ms[1] : 0.0f;
            p->f32x3 = fastest(path_ms, agrees, 2) == 1 ? 1 : -1;
        }
    }
    bq_tuning_timer_end(&timer);
    if (runs.check.ref) cudaFree(runs.check.ref);
    if (s != BQ_OK) return s;
    p->tuned = 1;
    return BQ_OK;
}

/* Whether decision d is about plan p's shape. */
static int decision_matches(const bq_gemm_decision *d, const gemm_plan *p) {
    return d->rows == p->rows && d->in == p->in && d->out == p->out && d->dt == (int)p->dt &&
           d->allow_tf32 == p->allow_tf32 && d->ep == (int)p->ep;
}

/* A new plan takes a preset of its shape when its candidates are as many as the preset's (the
 * same cuBLASLt on the same card lists the same ones): its choices then need no timing. */
static void plan_take_preset(bq_gemm_ctx *g, gemm_plan *p) {
    const int gelu16 = has_gelu_path(p->ep, p->dt);
    /* the cache keeps no 3xTF32 choice: with BQ_FP32_3XTF32 set, fp32 shapes are timed again */
    if (f32x3_mode_for(g, p->dt, p->allow_tf32) != F32X3_OFF) return;
    for (size_t i = 0; i < g->n_presets; i++) {
        const bq_gemm_decision *d = &g->presets[i].d;
        if (!decision_matches(d, p) || d->candidates != p->candidate_count) continue;
        p->chosen = d->chosen;
        /* BQ_FUSED_GELU=0 keeps its unfused path whatever was cached */
        if (gelu16 && p->gelu_variant == 0) p->gelu_variant = d->gelu_variant;
        p->gelu_disagreed = (unsigned)d->gelu_disagreed;
        p->tuned = 1;
        p->preset = 1;
        g->presets[i].taken = 1;
        return;
    }
}

/* Whether plan p's calls run the 3xTF32 kernel: always under BQ_FP32_3XTF32=force (true fp32),
 * else when timing chose it and the engine's whole-pass comparison kept the timed choices. */
static int plan_runs_3xtf32(const bq_gemm_ctx *g, const gemm_plan *p) {
    return f32x3_mode_for(g, p->dt, p->allow_tf32) == F32X3_FORCED ||
           (p->f32x3 == 1 && !p->prefer_first);
}

/* Whether plan q holds choices worth passing on: timed, from a preset or shared, not the untimed
 * first choices. */
static int plan_decided(const gemm_plan *q) {
    return q->tuned && (q->preset || q->shared_from > 0 || q->chosen_ms > 0.0f) &&
           (!has_gelu_path(q->ep, q->dt) || q->gelu_variant != 0);
}

/* A new plan of at least share_rows rows takes the choices of the decided plan of the same GEMM
 * (in, out, dtype, epilogue) nearest in rows, also of at least share_rows rows: the same cuBLASLt
 * algorithm (found among its own candidates, or added when cublasLtMatmulAlgoCheck accepts it for
 * this shape) and the same bias + GELU path, untimed. From that many rows up the tiles fill the
 * GPU many times over and the fastest algorithm stays the fastest; timing a new row count costs
 * about as much as one batch-128 pass (24 candidates x 4 GEMMs), which the last partial batch of
 * a run, or a length bucket's batch, pays once for a pass or a few. Without a donor (or when the
 * check refuses) the plan times its candidates as usual. */
static void plan_take_shared(bq_gemm_ctx *g, gemm_plan *p) {
    if (g->share_rows <= 0 || p->rows < g->share_rows || g->untimed || !autotune_enabled()) return;
    const gemm_plan *donor = NULL;
    for (int i = 0; i < g->plan_count; i++) {
        const gemm_plan *q = &g->plans[i];
        if (q == p || q->rows < g->share_rows || q->in != p->in || q->out != p->out ||
            q->dt != p->dt || q->allow_tf32 != p->allow_tf32 || q->ep != p->ep || !plan_decided(q))
            continue;
        if (!donor || abs(q->rows - p->rows) < abs(donor->rows - p->rows)) donor = q;
    }
    if (!donor) return;
    const cublasLtMatmulAlgo_t *algo = &donor->candidates[donor->chosen];
    int index = -1;
    for (int i = 0; i < p->candidate_count && index < 0; i++)
        if (memcmp(&p->candidates[i], algo, sizeof *algo) == 0) index = i;
    if (index < 0) {
        cublasLtMatmulHeuristicResult_t check;
        memset(&check, 0, sizeof check);
        if (p->candidate_count == BQ_GEMM_MAX_ALGOS ||
            cublasLtMatmulAlgoCheck(g->handle, p->desc, p->a, p->b, p->c, p->c, algo, &check) !=
                CUBLAS_STATUS_SUCCESS ||
            check.state != CUBLAS_STATUS_SUCCESS || check.workspaceSize > g->workspace_bytes)
            return;
        index = p->candidate_count;
        p->candidates[p->candidate_count++] = *algo;
    }
    p->chosen = index;
    p->f32x3 = donor->f32x3;
    /* BQ_FUSED_GELU=0 keeps its unfused path whatever the donor runs */
    if (has_gelu_path(p->ep, p->dt) && p->gelu_variant == 0) p->gelu_variant = donor->gelu_variant;
    p->gelu_disagreed = donor->gelu_disagreed; /* the untimed rule's tiling differed there */
    p->tuned = 1;
    p->shared_from = donor->rows;
}

static bq_status plan_get(bq_gemm_ctx *g, int rows, int in, int out, bq_cuda_dtype dt,
                          int allow_tf32, bq_epilogue ep, gemm_plan **plan, bq_err *err) {
    allow_tf32 = (dt == BQ_CUDA_F32 && allow_tf32) ? 1 : 0;
    for (int i = 0; i < g->plan_count; i++) {
        gemm_plan *p = &g->plans[i];
        if (p->rows == rows && p->in == in && p->out == out && p->dt == dt &&
            p->allow_tf32 == allow_tf32 && p->ep == ep) {
            *plan = p;
            return BQ_OK;
        }
    }
    if (g->plan_count == BQ_GEMM_CACHE_MAX) {
        /* more distinct shapes than a model uses: recycle the oldest slot */
        plan_destroy(&g->plans[0]);
        memmove(&g->plans[0], &g->plans[1], sizeof g->plans[0] * (BQ_GEMM_CACHE_MAX - 1));
        memset(&g->plans[BQ_GEMM_CACHE_MAX - 1], 0, sizeof g->plans[0]);
        g->plan_count--;
    }
    gemm_plan *p = &g->plans[g->plan_count];
    memset(p, 0, sizeof *p);
    p->rows = rows, p->in = in, p->out = out, p->dt = dt, p->allow_tf32 = allow_tf32;
    p->ep = ep;
    /* erf GELU is never taken from cuBLASLt (see gemm.cuh): plain GEMM, then bias + GELU kernel */
    p->epilogue = ep == BQ_EPILOGUE_BIAS ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    p->gelu_variant = fused_gelu_allowed() ? 0 : VARIANT_UNFUSED;
    bq_status s = plan_build(g, p, err);
    if (s != BQ_OK) {
        plan_destroy(p);
        return s;
    }
    plan_take_preset(g, p);
    if (!p->tuned) plan_take_shared(g, p);
    g->plan_count++;
    *plan = p;
    return BQ_OK;
}

bq_status bq_gemm_linear(bq_gemm_ctx *g, const void *x, const void *W, const void *bias, int rows,
                         int in, int out, void *y, bq_cuda_dtype dt, int allow_tf32, bq_epilogue ep,
                         cudaStream_t stream, bq_err *err) {
    if (!g || !x || !W || !y || rows <= 0 || in <= 0 || out <= 0 || (ep != BQ_EPILOGUE_NONE && !bias))
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "bq_gemm_linear: bad arguments (rows=%d in=%d out=%d, epilogue %d, bias %s)",
                       rows, in, out, (int)ep, bias ? "set" : "NULL");
    if (dt != BQ_CUDA_F32 && dt != BQ_CUDA_F16 && dt != BQ_CUDA_BF16)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_gemm_linear: unknown dtype %d", (int)dt);
    gemm_plan *p = NULL;
    bq_status s = plan_get(g, rows, in, out, dt, allow_tf32, ep, &p, err);
    if (s != BQ_OK) return s;
    if (p->epilogue == CUBLASLT_EPILOGUE_BIAS) {
        /* the pointer is a launch parameter: setting it is host-only, safe under graph capture */
        BQ_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof bias),
                      err);
    }
    const gemm_operands o = {x, W, bias, y};
    if (!p->tuned) {
        s = plan_tune(g, p, &o, stream, err);
        if (s != BQ_OK) return s;
    }
    int ran = 0;
    if (has_gelu_path(ep, dt)) {
        /* 0: untimed (or the first choices preferred), then the fused kernel from 512 rows,
         * unless its output differed when the shape was timed */
        int v = p->prefer_first ? 0 : p->gelu_variant;
        if (v == 0)
            v = rows >= BQ_FUSED_GELU_MIN_ROWS && fused_gelu_allowed() &&
                        !(p->gelu_disagreed & (1u << BQ_GELU_TILE_LARGE))
                    ? VARIANT_FUSED_LARGE
                    : VARIANT_UNFUSED;
        if (v != VARIANT_UNFUSED) {
            /* Hopper + CUTLASS: bias and erf GELU in the GEMM's epilogue; refused = fall back */
            s = run_variant(g, p, v, &o, stream, 1, &ran, err);
            if (s != BQ_OK || ran) return s;
            if (!p->prefer_first) p->gelu_variant = VARIANT_UNFUSED;
        }
    }
    if (plan_runs_3xtf32(g, p)) {
        const int forced = f32x3_mode_for(g, p->dt, p->allow_tf32) == F32X3_FORCED;
        s = run_variant(g, p, VARIANT_3XTF32, &o, stream, 1, &ran, err);
        if (s != BQ_OK || ran) return s;
        if (forced)
            return bq_fail(err, BQ_ERR_UNSUPPORTED,
                           "BQ_FP32_3XTF32=force, but the 3xTF32 GEMM cannot run %d x %d -> %d "
                           "here (a build without CUTLASS, a card other than compute capability "
                           "9.0, sizes that are not multiples of 4 or operands not 16-byte "
                           "aligned; the emulated build's stand-in: over 2^26 multiply-adds)",
                           rows, in, out);
        p->f32x3 = -1; /* refused here after all: cuBLASLt from now on */
    }
    return run_variant(g, p, ep == BQ_EPILOGUE_BIAS_GELU ? VARIANT_UNFUSED : plan_algo(p), &o,
                       stream, 1, &ran, err);
}

size_t bq_gemm_library_version(void) { return cublasLtGetVersion(); }

int bq_gemm_ctx_prefer_first(bq_gemm_ctx *g, int rows, int prefer_first) {
    int n = 0;
    for (int i = 0; g && i < g->plan_count; i++)
        if (g->plans[i].rows == rows) {
            g->plans[i].prefer_first = prefer_first ? 1 : 0;
            n++;
        }
    return n;
}

bq_status bq_gemm_ctx_preset(bq_gemm_ctx *g, const bq_gemm_decision *d, bq_err *err) {
    if (!g || !d)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_gemm_ctx_preset: context or decision NULL");
    const int fused = d->gelu_variant <= VARIANT_FUSED_LARGE &&
                      d->gelu_variant > VARIANT_FUSED_LARGE - (int)BQ_GELU_TILE_COUNT;
    const int gelu16 = has_gelu_path(d->ep, d->dt);
    if (d->rows <= 0 || d->in <= 0 || d->out <= 0 || d->candidates < 1 ||
        d->candidates > BQ_GEMM_MAX_ALGOS || d->chosen < 0 || d->chosen >= d->candidates ||
        (d->dt != BQ_CUDA_F32 && d->dt != BQ_CUDA_F16 && d->dt != BQ_CUDA_BF16) || d->ep < 0 ||
        d->ep > BQ_EPILOGUE_BIAS_GELU || (gelu16 && !fused && d->gelu_variant != VARIANT_UNFUSED) ||
        d->gelu_disagreed < 0 || d->gelu_disagreed >= (1 << BQ_GELU_TILE_COUNT))
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "GEMM decision out of range (rows=%d in=%d out=%d dtype %d epilogue %d, "
                       "candidate %d of %d, GELU path %d, fused tilings differing %d)",
                       d->rows, d->in, d->out, d->dt, d->ep, d->chosen, d->candidates,
                       d->gelu_variant, d->gelu_disagreed);
    if (!bq_grow((void **)&g->presets, &g->presets_cap, g->n_presets + 1, sizeof *g->presets))
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory for GEMM presets");
    g->presets[g->n_presets++] = (gemm_preset){*d, 0};
    return BQ_OK;
}

int bq_gemm_ctx_decisions(const bq_gemm_ctx *g, bq_gemm_decision *out, int max, int *presets_taken) {
    int n = 0, taken = 0;
    for (int i = 0; g && i < g->plan_count; i++) {
        const gemm_plan *p = &g->plans[i];
        taken += p->preset;
        /* what timing chose (or a preset gave): not the untimed first choices, nor a shared
         * choice, which the shape it came from stands for */
        if (!plan_decided(p) || p->shared_from > 0) continue;
        if (n < max)
            out[n] = (bq_gemm_decision){p->rows,         p->in,           p->out,
                                        (int)p->dt,      p->allow_tf32,   (int)p->ep,
                                        p->candidate_count, p->chosen,    p->gelu_variant,
                                        (int)p->gelu_disagreed};
        n++;
    }
    for (size_t i = 0; g && i < g->n_presets; i++) {
        if (g->presets[i].taken) continue;
        if (n < max) out[n] = g->presets[i].d;
        n++;
    }
    if (presets_taken) *presets_taken = taken;
    return n;
}

int bq_gemm_ctx_plans(const bq_gemm_ctx *g, bq_gemm_plan_info *out, int max) {
    static const char *const ep_names[] = {"none", "bias", "bias_gelu"};
    int n = 0;
    for (int i = 0; g && out && i < g->plan_count && n < max; i++) {
        const gemm_plan *p = &g->plans[i];
        bq_gemm_plan_info *q = &out[n++];
        memset(q, 0, sizeof *q);
        q->rows = p->rows, q->in = p->in, q->out = p->out;
        snprintf(q->dtype, sizeof q->dtype, "%s",
                 p->dt == BQ_CUDA_F32 ? (p->allow_tf32 ? "tf32" : "fp32") : bq_cuda_dtype_name(p->dt));
        snprintf(q->epilogue, sizeof q->epilogue, "%s", ep_names[p->ep]);
        q->candidates = p->candidate_count, q->chosen = p->chosen;
        q->chosen_splitk = p->candidate_count > 0 ? algo_splitk(&p->candidates[p->chosen]) : 1;
        q->first_ms = p->first_ms, q->chosen_ms = p->chosen_ms;
        q->runs_first = p->prefer_first;
        q->from_cache = p->preset;
        q->shared_from_rows = p->shared_from;
        q->runs_fp32x3 = plan_runs_3xtf32(g, p);
        q->fp32x3_ms = p->f32x3_ms, q->sgemm_ms = p->sgemm_ms;
        q->checked = p->checked, q->disagreeing = p->disagreeing;
        q->worst_diff = p->worst_diff;
        if (has_gelu_path(p->ep, p->dt)) {
            static const char *const fused_paths[BQ_GELU_TILE_COUNT] = {
                "fused-large", "fused-small", "fused-pingpong", "fused-pingpong-small"};
            const char *path = p->gelu_variant <= VARIANT_FUSED_LARGE
                                   ? fused_paths[variant_tile(p->gelu_variant)]
                               : p->gelu_variant == VARIANT_UNFUSED ? "unfused"
                                                                    : "by-rows";
            snprintf(q->gelu_path, sizeof q->gelu_path, "%s", path);
            q->unfused_ms = p->unfused_ms;
            q->fused_large_ms = p->fused_ms[0], q->fused_small_ms = p->fused_ms[1];
            q->fused_pingpong_ms = p->fused_ms[2];
            q->fused_pingpong_small_ms = p->fused_ms[3];
        }
    }
    return n;
}
