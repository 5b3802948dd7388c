/* engine_cuda.cu - the CUDA backend: weights resident on the device in the engine's precision, one
 * stream, cuBLASLt GEMMs, our fused kernels, and one CUDA graph per batch size.
 *
 * One forward pass (M = batch * S token rows, S <= opt.seq_len the pass's length, H hidden,
 * I intermediate, all activations in dt):
 *   inputs (pinned host) -> device; x = LN(word[ids] + pos + type[seg])          [M, H]
 *   per layer:  qkv = x Wqkv^T + bqkv (bias epilogue)                              [M, 3H]
 *               ctx = attention(qkv, mask)                                         [M, H]
 *               tmp = ctx Wo^T;          h = LN(tmp + bo + x)                      [M, H]
 *               ffn = gelu(h Wi^T + bi)  (fused on Hopper + CUTLASS, else GEMM + kernel) [M, I]
 *               tmp = ffn Wf^T;          x = LN(tmp + bf + h)                      [M, H]
 *   start/end = x Wqa^T + bqa (fp32)                                               [M]
 *   logits -> pinned host; one stream synchronize; copy to the caller.
 * The device part (embeddings .. QA head) is what a graph captures; the copies stay outside it so
 * that the graph reads and writes fixed device buffers. Everything decided per pass shape (batch,
 * length) lives in a pass_shape: a batch trimmed of trailing padding is a shape of its own, and so
 * is a packed batch (sequences back to back: positions per token, attention over their offsets,
 * its grid sized for a sequence capacity so that one graph serves every layout up to it). */
#include "engine_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attention.cuh"
#include "bq_math.h"
#include "attention_cudnn.cuh"
#include "bias_residual_layernorm.cuh"
#include "cuda_check.cuh"
#include "embeddings_layernorm.cuh"
#include "gemm.cuh"
#include "normwise_diff.cuh"
#include "qa_head.cuh"
#include "tuning.cuh"
#include "tuning_cache.h"

/* room for every attention candidate's pair of sums in check_attention_candidates */
#define ATTN_CHECK_SLOTS 8

/* cuBLASLt's recommended workspace on Hopper */
#define GEMM_WORKSPACE_BYTES ((size_t)32 << 20)

typedef struct {
    const void *qkv_w, *qkv_b;     /* [3H, H], [3H]: Q, K, V rows concatenated */
    const void *attn_out_w, *attn_out_b; /* [H, H], [H] */
    const void *attn_ln_g, *attn_ln_b;   /* [H] */
    const void *ffn_in_w, *ffn_in_b;     /* [I, H], [I] */
    const void *ffn_out_w, *ffn_out_b;   /* [H, I], [H] */
    const void *ffn_ln_g, *ffn_ln_b;     /* [H] */
} layer_device;

/* One forward-pass shape: `batch` sequences of `len` positions (packed: `batch` rows of `len`
 * holding sequences back to back), and what its first pass decided. */
typedef struct {
    int batch, len;
    /* 0: padded; else packed, with room for this many sequences (packed_capacity): the attention
     * grid's z, whose blocks past the pass's sequences find empty ones and return */
    int packed;
    /* ATTN_UNDECIDED until the first eager pass times the candidates (our kernel's tilings where
     * it has several, cuDNN's under auto at the full length); attention_ms: their per-layer
     * times, ms, 0 where not timed */
    signed char attention_choice;
    float attention_ms[8]; /* [ATTN_KINDS] (checked below) */
    /* [ATTN_KINDS]: each candidate's difference from the 64-row tiling's output on the first
     * pass's inputs (bq_normwise_from_sums: normwise, or a quarter of the worst element's where
     * that is larger; check_attention_candidates; 0 where not compared) */
    float attention_diff[8];
    /* GEMM_UNDECIDED until the first pass's whole-pass comparison of the timed GEMM choices
     * against the first choices; the best pass ms of each way */
    signed char gemm_choice;
    signed char gemm_preset; /* GEMM_TIMED or GEMM_FIRST from the tuning cache, else 0 */
    float gemm_timed_ms, gemm_first_ms;
    cudaGraphExec_t graph; /* NULL until captured */
} pass_shape;

struct bq_cuda_engine {
    bq_engine_options opt;
    bq_config cfg;
    bq_cuda_dtype dt;
    int allow_tf32;
    cudaStream_t stream;
    bq_gemm_ctx *gemm;
    bq_cudnn_attention *cudnn_attention; /* attention cudnn, or auto in fp16/bf16 when available */
    pass_shape **shapes; /* [n_shapes], in the order first run; each allocated once (stable) */
    int n_shapes, shapes_cap;
    double first_pass_seconds; /* wall time of the shapes' first forward calls */
    int attention_tilings; /* bq_cuda_attention_has_tilings for this model and dtype */
    char attention_note[300]; /* auto without cuDNN: why; or a candidate that failed */
    int attention_note_pending; /* written after create: bq_cuda_engine_describe appends it once */
    int attention_candidate_failed; /* a candidate's run failed on a first pass (cuDNN's first
                                     * run, or check_attention_candidates) */

    /* weights: one device allocation */
    void *weights;
    size_t weights_bytes;
    const void *word_emb, *pos_emb, *type_emb, *emb_ln_g, *emb_ln_b; /* [V,H] [P,H] [T,H] [H] [H] */
    const void *qa_w, *qa_b;                                         /* [2, H], [2] */
    layer_device *layers;                                            /* [num_layers] */

    /* activation workspace: one device allocation, sized for max_batch x seq_len */
    void *workspace;
    size_t workspace_bytes;
    void *x, *h, *tmp, *ctx; /* [M, H] */
    void *qkv;               /* [M, 3H] */
    void *ffn;               /* [M, I] */
    int32_t *d_ids, *d_mask, *d_seg; /* [M]; a packed pass keeps its positions in d_mask */
    float *d_start, *d_end;          /* [M] */
    int32_t *d_offsets;              /* [M + 1]: a packed pass's sequence offsets */
    double *d_check; /* [BQ_NORMWISE_SUMS * ATTN_CHECK_SLOTS]: check_attention_candidates' sums */

    /* pinned host staging: one allocation */
    void *pinned;
    int32_t *h_ids, *h_mask, *h_seg; /* [M] */
    float *h_start, *h_end;          /* [M] */
    int32_t *h_offsets;              /* [M + 1] */

    int use_graphs;
    char graph_note[512];    /* why graphs were turned off, when a capture failed */
    char description[2048];

    /* tuning cache (bq_engine_options.tuning_cache): its path, the shape decisions it held
     * (those no shape has taken are written back too), and what loading it found */
    char tuning_path[1024];
    struct shape_preset *shape_presets; /* [n_shape_presets] */
    size_t n_shape_presets, shape_presets_cap;
    int shape_presets_taken;
    char tuning_note[512];
};

/* A pass shape's decisions from the tuning cache: attention per (batch, len, padded or packed;
 * a packed one serves every capacity), the whole-pass GEMM decision per shape (per rows). */
struct shape_preset {
    int batch, len, packed;
    signed char attention, gemm; /* ATTN_*, GEMM_* (0: none) */
    unsigned char taken;
};

static size_t align_up(size_t n) { return (n + 255) & ~(size_t)255; }

/* ---- device selection and errors ---------------------------------------------------------- */

extern "C" bq_status bq_cuda_device_count(int *count, bq_err *err) {
    *count = 0;
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess) {
        cudaGetLastError();
        if (rc == cudaErrorNoDevice || rc == cudaErrorInsufficientDriver)
            return bq_fail(err, BQ_ERR_NO_DEVICE, "no usable CUDA device (%s: %s); " BQ_USE_CPU_HINT,
                           cudaGetErrorName(rc), cudaGetErrorString(rc));
        return bq_cuda_check(rc, "cudaGetDeviceCount(&n)", __FILE__, __LINE__, err);
    }
    if (n == 0) return bq_fail(err, BQ_ERR_NO_DEVICE, "no CUDA device present; " BQ_USE_CPU_HINT);
    *count = n;
    return BQ_OK;
}

static bq_status select_device(int index, bq_err *err) {
    int n = 0;
    bq_status s = bq_cuda_device_count(&n, err);
    if (s != BQ_OK) return s;
    if (index < 0 || index >= n)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "CUDA device %d requested but only %d present", index,
                       n);
    BQ_CUDA_TRY(cudaSetDevice(index), err);
    return BQ_OK;
}

extern "C" bq_status bq_cuda_device_info(int device, char *name, size_t name_len,
                                         int *driver_version, bq_err *err) {
    if (name && name_len) name[0] = '\0';
    if (driver_version) *driver_version = 0;
    bq_status s = select_device(device, err);
    if (s != BQ_OK) return s;
    cudaDeviceProp prop;
    BQ_CUDA_TRY(cudaGetDeviceProperties(&prop, device), err);
    if (name && name_len) snprintf(name, name_len, "%s", prop.name);
    if (driver_version) BQ_CUDA_TRY(cudaDriverGetVersion(driver_version), err);
    return BQ_OK;
}

/* ---- weights ------------------------------------------------------------------------------ */

/* Lays the weights out in one allocation. Run once with upload = 0 to size it, then with
 * upload = 1 to convert (fp32 -> dt on the host) and copy each tensor to its place. */
typedef struct {
    char *base;       /* device allocation (upload pass) */
    size_t cursor;    /* bytes placed so far */
    int upload;
    bq_cuda_dtype dt;
    size_t elem;      /* bytes per element of dt */
    int tf32_gemm_weights; /* tf32 mode: GEMM weight matrices rounded to TF32 on upload */
    void *staging;    /* host buffer for the converted copy, large enough for any one tensor */
} weight_builder;

static void convert_into(bq_cuda_dtype dt, const float *src, size_t n, void *dst) {
    if (dt == BQ_CUDA_F16) {
        __half *d = (__half *)dst;
        for (size_t i = 0; i < n; i++) d[i] = __float2half_rn(src[i]);
    } else if (dt == BQ_CUDA_BF16) {
        __nv_bfloat16 *d = (__nv_bfloat16 *)dst;
        for (size_t i = 0; i < n; i++) d[i] = __float2bfloat16_rn(src[i]);
    } else {
        memcpy(dst, src, n * sizeof(float));
    }
}

/* Place up to three host tensors of n elements each back to back (Q|K|V concatenation), or one.
 * gemm_weight: a matrix the GEMMs read (rounded to TF32 in tf32 mode; embeddings, LayerNorm,
 * biases and the QA head, which our fp32 kernels read, are not). */
static bq_status place(weight_builder *b, const char *what, const float *p0, const float *p1,
                       const float *p2, size_t n, int gemm_weight, const void **dst, bq_err *err) {
    const float *parts[3] = {p0, p1, p2};
    int count = p1 ? (p2 ? 3 : 2) : 1;
    size_t off = b->cursor;
    b->cursor = align_up(off + (size_t)count * n * b->elem);
    if (!b->upload) return BQ_OK;
    for (int i = 0; i < count; i++) {
        if (!parts[i]) return bq_fail(err, BQ_ERR_INVALID_ARG, "model tensor %s is missing", what);
        convert_into(b->dt, parts[i], n, (char *)b->staging + (size_t)i * n * b->elem);
    }
    if (gemm_weight && b->tf32_gemm_weights) {
        float *f = (float *)b->staging;
        for (size_t i = 0; i < (size_t)count * n; i++) f[i] = bq_round_tf32(f[i]);
    }
    bq_status s = bq_cuda_check(cudaMemcpy(b->base + off, b->staging, (size_t)count * n * b->elem,
                                           cudaMemcpyHostToDevice),
                                "cudaMemcpy(weights + offset, staging, bytes, cudaMemcpyHostToDevice)",
                                __FILE__, __LINE__, err);
    if (s != BQ_OK) {
        bq_err_prefix(err, "uploading %s: ", what);
        return s;
    }
    *dst = b->base + off;
    return BQ_OK;
}

static bq_status place_weights(bq_cuda_engine *e, const bq_model *m, weight_builder *b, bq_err *err) {
    const bq_config *c = &m->config;
    size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    char name[64];
#define PLACE_AS(gemm_weight, what, p0, p1, p2, n, dst)                             \
    do {                                                                           \
        bq_status s_ = place(b, what, p0, p1, p2, n, gemm_weight, (const void **)(dst), err); \
        if (s_ != BQ_OK) return s_;                                                \
    } while (0)
#define PLACE(what, p0, p1, p2, n, dst) PLACE_AS(0, what, p0, p1, p2, n, dst)
#define PLACE_MATRIX(what, p0, p1, p2, n, dst) PLACE_AS(1, what, p0, p1, p2, n, dst)
    PLACE("word_embeddings", m->word_emb, NULL, NULL, (size_t)c->vocab_size * H, &e->word_emb);
    PLACE("position_embeddings", m->pos_emb, NULL, NULL, (size_t)c->max_position_embeddings * H,
          &e->pos_emb);
    PLACE("token_type_embeddings", m->type_emb, NULL, NULL, (size_t)c->type_vocab_size * H,
          &e->type_emb);
    PLACE("embeddings.LayerNorm.weight", m->emb_ln_g, NULL, NULL, H, &e->emb_ln_g);
    PLACE("embeddings.LayerNorm.bias", m->emb_ln_b, NULL, NULL, H, &e->emb_ln_b);
    for (int l = 0; l < c->num_layers; l++) {
        const bq_layer_weights *w = &m->layers[l];
        layer_device *d = &e->layers[l];
        snprintf(name, sizeof name, "layer %d query|key|value weight", l);
        PLACE_MATRIX(name, w->q_w, w->k_w, w->v_w, H * H, &d->qkv_w);
        snprintf(name, sizeof name, "layer %d query|key|value bias", l);
        PLACE(name, w->q_b, w->k_b, w->v_b, H, &d->qkv_b);
        snprintf(name, sizeof name, "layer %d attention.output.dense", l);
        PLACE_MATRIX(name, w->attn_out_w, NULL, NULL, H * H, &d->attn_out_w);
        PLACE(name, w->attn_out_b, NULL, NULL, H, &d->attn_out_b);
        snprintf(name, sizeof name, "layer %d attention.output.LayerNorm", l);
        PLACE(name, w->attn_ln_g, NULL, NULL, H, &d->attn_ln_g);
        PLACE(name, w->attn_ln_b, NULL, NULL, H, &d->attn_ln_b);
        snprintf(name, sizeof name, "layer %d intermediate.dense", l);
        PLACE_MATRIX(name, w->ffn_in_w, NULL, NULL, I * H, &d->ffn_in_w);
        PLACE(name, w->ffn_in_b, NULL, NULL, I, &d->ffn_in_b);
        snprintf(name, sizeof name, "layer %d output.dense", l);
        PLACE_MATRIX(name, w->ffn_out_w, NULL, NULL, H * I, &d->ffn_out_w);
        PLACE(name, w->ffn_out_b, NULL, NULL, H, &d->ffn_out_b);
        snprintf(name, sizeof name, "layer %d output.LayerNorm", l);
        PLACE(name, w->ffn_ln_g, NULL, NULL, H, &d->ffn_ln_g);
        PLACE(name, w->ffn_ln_b, NULL, NULL, H, &d->ffn_ln_b);
    }
    PLACE("qa_outputs.weight", m->qa_w, NULL, NULL, 2 * H, &e->qa_w);
    PLACE("qa_outputs.bias", m->qa_b, NULL, NULL, 2, &e->qa_b);
#undef PLACE
#undef PLACE_MATRIX
#undef PLACE_AS
    return BQ_OK;
}

/* ---- the activation workspace ------------------------------------------------------------- */

static size_t layout_workspace(bq_cuda_engine *e, char *base) {
    size_t M = (size_t)e->opt.max_batch * e->opt.seq_len;
    size_t H = (size_t)e->cfg.hidden_size, I = (size_t)e->cfg.intermediate_size;
    size_t elem = bq_cuda_dtype_size(e->dt);
    size_t off = 0;
#define CARVE(ptr, type, bytes)                          \
    do {                                                 \
        if (base) ptr = (type)(base + off);              \
        off = align_up(off + (bytes));                   \
    } while (0)
    CARVE(e->x, void *, M * H * elem);
    CARVE(e->h, void *, M * H * elem);
    CARVE(e->tmp, void *, M * H * elem);
    CARVE(e->ctx, void *, M * H * elem);
    CARVE(e->qkv, void *, M * 3 * H * elem);
    CARVE(e->ffn, void *, M * I * elem);
    CARVE(e->d_ids, int32_t *, M * sizeof(int32_t));
    CARVE(e->d_mask, int32_t *, M * sizeof(int32_t));
    CARVE(e->d_seg, int32_t *, M * sizeof(int32_t));
    CARVE(e->d_start, float *, M * sizeof(float));
    CARVE(e->d_end, float *, M * sizeof(float));
    CARVE(e->d_offsets, int32_t *, (M + 1) * sizeof(int32_t));
    CARVE(e->d_check, double *, BQ_NORMWISE_SUMS * ATTN_CHECK_SLOTS * sizeof(double));
#undef CARVE
    return off;
}

/* cudaHostAlloc (pinned host memory: out of it is BQ_ERR_NOMEM, not the device's memory). */
#define PINNED_ALLOC(ptr, bytes, what, err) pinned_alloc((void **)(ptr), (bytes), (what), __FILE__, __LINE__, (err))
static bq_status pinned_alloc(void **p, size_t bytes, const char *what, const char *file, int line,
                              bq_err *err) {
    const cudaError_t rc = cudaHostAlloc(p, bytes, cudaHostAllocDefault);
    if (rc == cudaSuccess) return BQ_OK;
    *p = NULL;
    if (rc != cudaErrorMemoryAllocation)
        return bq_cuda_check(rc, "cudaHostAlloc(p, bytes, cudaHostAllocDefault)", file, line, err);
    (void)cudaGetLastError();
    return bq_fail(err, BQ_ERR_NOMEM, "%s:%d: cudaHostAlloc(p, bytes, cudaHostAllocDefault): out of "
                   "pinned host memory allocating %s (%zu bytes)", file, line, what, bytes);
}

/* cudaMalloc with an out-of-memory message that says how much was needed and how much is free. */
static bq_status device_alloc(void **p, size_t bytes, const char *what, size_t total_needed,
                              bq_err *err) {
    cudaError_t rc = cudaMalloc(p, bytes);
    if (rc == cudaSuccess) return BQ_OK;
    *p = NULL;
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    if (rc == cudaErrorMemoryAllocation)
        return bq_fail(err, BQ_ERR_DEVICE_OOM,
                       "out of device memory allocating %s: %zu bytes (engine needs %zu in all), %zu "
                       "of %zu bytes free; lower --max-batch / --seq-len or use fp16",
                       what, bytes, total_needed, free_b, total_b);
    return bq_cuda_check(rc, "cudaMalloc(p, bytes)", __FILE__, __LINE__, err);
}

/* ---- the forward pass --------------------------------------------------------------------- */

/* Optional per-op timing for bq_cuda_engine_profile: events around each op, NVTX ranges. */
typedef struct {
    cudaEvent_t *start, *stop; /* [cap] */
    bq_stage *stage;           /* [cap] */
    int count, cap;
} op_profile;

static bq_status op_begin(op_profile *p, bq_stage stage, cudaStream_t stream, bq_err *err) {
    if (!p) return BQ_OK;
    if (p->count >= p->cap) return bq_fail(err, BQ_ERR_INVALID_ARG, "profile: too many ops");
    nvtxRangePushA(bq_stage_name(stage));
    p->stage[p->count] = stage;
    BQ_CUDA_TRY(cudaEventRecord(p->start[p->count], stream), err);
    return BQ_OK;
}

static bq_status op_end(op_profile *p, cudaStream_t stream, bq_err *err) {
    if (!p) return BQ_OK;
    BQ_CUDA_TRY(cudaEventRecord(p->stop[p->count], stream), err);
    nvtxRangePop();
    p->count++;
    return BQ_OK;
}

/* A kernel launch (returns cudaError_t) as one profiled op. */
#define KERNEL_OP(stage, call)                                                      \
    do {                                                                            \
        bq_status s_ = op_begin(prof, stage, st, err);                              \
        if (s_ != BQ_OK) return s_;                                                 \
        BQ_CUDA_TRY(call, err);                                                     \
        s_ = op_end(prof, st, err);                                                 \
        if (s_ != BQ_OK) return s_;                                                 \
    } while (0)

/* A call returning bq_status (GEMM, cuDNN attention) as one profiled op. */
#define STATUS_OP(stage, call)                                                      \
    do {                                                                            \
        bq_status s_ = op_begin(prof, stage, st, err);                              \
        if (s_ != BQ_OK) return s_;                                                 \
        s_ = (call);                                                                \
        if (s_ != BQ_OK) return s_;                                                 \
        s_ = op_end(prof, st, err);                                                 \
        if (s_ != BQ_OK) return s_;                                                 \
    } while (0)

/* attention candidates: ours in each tiling t (ATTN_OWN + t; ATTN_OWN itself is the default,
 * 64-row blocks), and cuDNN's */
enum {
    ATTN_UNDECIDED = 0,
    ATTN_OWN = 1,
    ATTN_OWN_128 = ATTN_OWN + BQ_ATTENTION_ROWS128,
    ATTN_OWN_32 = ATTN_OWN + BQ_ATTENTION_ROWS32_KEYS2,
    ATTN_OWN_64K3 = ATTN_OWN + BQ_ATTENTION_ROWS64_KEYS3,
    ATTN_OWN_WGMMA = ATTN_OWN + BQ_ATTENTION_WGMMA128,
    ATTN_OWN_WGMMA_OVERLAP = ATTN_OWN + BQ_ATTENTION_WGMMA128_OVERLAP,
    ATTN_CUDNN = ATTN_OWN + BQ_ATTENTION_TILINGS
};
#define ATTN_KINDS (ATTN_CUDNN + 1)
static_assert(ATTN_KINDS <= sizeof(((pass_shape *)0)->attention_ms) / sizeof(float) &&
                  ATTN_KINDS <= sizeof(((pass_shape *)0)->attention_diff) / sizeof(float) &&
                  ATTN_KINDS <= ATTN_CHECK_SLOTS,
              "pass_shape.attention_ms / attention_diff and d_check hold every attention candidate");
/* The most a candidate's attention output may differ (bq_normwise_from_sums: normwise, or a
 * quarter of its worst element's difference relative to the largest output element) from the
 * 64-row tiling's on the same inputs and still be kept: tilings and cuDNN differ by rounding only
 * (a few 1e-3 in bf16, where the probabilities are rounded to 8 bits at other running maxima); a
 * wrong layout, mask or scale differs by ~1. */
#define ATTN_AGREE_BOUND 2e-2f
enum { GEMM_UNDECIDED = 0, GEMM_TIMED = 1, GEMM_FIRST = 2, GEMM_UNTIMED = 3 };

/* Our kernel's tiling for a choice (ATTN_OWN .. ATTN_CUDNN - 1). */
static bq_attention_tiling own_tiling(int choice) {
    return (bq_attention_tiling)(choice - ATTN_OWN);
}

static void shape_take_preset(bq_cuda_engine *e, pass_shape *p);

/* From this many rows (32 full-length sequences) up a pass keeps the GPU busy many times over, so
 * a shape's decisions hold for the others: a new shape of that many rows takes the whole-pass GEMM
 * decision (choose_gemm), each GEMM's algorithm (bq_gemm_ctx_share_from) and, padded at the same
 * length, the attention choice (shape_for) of a decided one, untimed. */
static long shared_decision_rows(const bq_cuda_engine *e) { return 32L * e->opt.seq_len; }

/* The shape of `batch` x `len` passes (packed or padded), or NULL before its first pass. */
static pass_shape *find_shape(const bq_cuda_engine *e, int batch, int len, int packed) {
    for (int i = 0; i < e->n_shapes; i++) {
        const pass_shape *p = e->shapes[i];
        if (p->batch == batch && p->len == len && p->packed == packed) return e->shapes[i];
    }
    return NULL;
}

/* The shape of `batch` x `len` passes, added (undecided, no graph) on first use; *created says
 * whether it was. */
static bq_status shape_for(bq_cuda_engine *e, int batch, int len, int packed, pass_shape **out,
                           int *created, bq_err *err) {
    *out = find_shape(e, batch, len, packed);
    *created = *out == NULL;
    if (*out) return BQ_OK;
    if (e->n_shapes == e->shapes_cap) {
        int cap = e->shapes_cap ? 2 * e->shapes_cap : 16;
        pass_shape **grown = (pass_shape **)realloc(e->shapes, (size_t)cap * sizeof *grown);
        if (!grown) return bq_fail(err, BQ_ERR_NOMEM, "cuda engine: no host memory for a new pass shape");
        e->shapes = grown;
        e->shapes_cap = cap;
    }
    pass_shape *p = (pass_shape *)calloc(1, sizeof *p);
    if (!p) return bq_fail(err, BQ_ERR_NOMEM, "cuda engine: no host memory for a new pass shape");
    p->batch = batch;
    p->len = len;
    p->packed = packed;
    shape_take_preset(e, p); /* the tuning cache's decisions for this very shape come first */
    /* a shape takes the attention choice of a decided one that speaks for it, untimed: a packed
     * shape that of a packed one of the same rows (only the sequence capacity differs; on the
     * H200 the first passes of a packed SQuAD dev run were half its engine time, run cf3337d),
     * and from shared_decision_rows up that of one of the same kind with that many rows too
     * (padded: of the same length; the H200 kept the same kernel at batch 32 and 128, run
     * cf3337d), so that a long run's last partial batch neither plans cuDNN for its batch nor
     * times attention. Only our tilings are passed on: cuDNN's needs a plan per batch size, whose
     * first build choose_attention guards (a failed build keeps ours), so a shape whose donor
     * chose cuDNN decides for itself. */
    const long rows = (long)batch * len, large = shared_decision_rows(e);
    for (int i = 0; p->attention_choice == ATTN_UNDECIDED && i < e->n_shapes; i++) {
        const pass_shape *o = e->shapes[i];
        const long o_rows = (long)o->batch * o->len;
        if (o->attention_choice == ATTN_UNDECIDED || o->attention_choice == ATTN_CUDNN ||
            (o->packed != 0) != (packed != 0))
            continue;
        if ((packed && o_rows == rows) ||
            (rows >= large && o_rows >= large && (packed || o->len == len)))
            p->attention_choice = o->attention_choice;
    }
    e->shapes[e->n_shapes++] = p;
    *out = p;
    return BQ_OK;
}

/* Whether cuDNN's attention is timed beside ours for passes of `len` positions (auto, with a
 * cuDNN engine, which is planned for padded passes of the full length only). */
static int cudnn_is_candidate(const bq_cuda_engine *e, int len, int packed) {
    return e->opt.attention == BQ_ATTENTION_AUTO && e->cudnn_attention && len == e->opt.seq_len &&
           !packed;
}

/* Whether the engine times attention candidates for passes of `len` positions: our tilings (own
 * or auto), and cuDNN's beside ours (auto, full length, padded); never untuned. */
static int attention_has_choice(const bq_cuda_engine *e, int len, int packed) {
    if (!e->opt.tune || e->opt.attention == BQ_ATTENTION_CUDNN) return 0;
    return e->attention_tilings || cudnn_is_candidate(e, len, packed);
}

/* Whether a cached attention choice can run for a shape of `len` (packed or not) here: one of
 * our tilings this model and dtype have, or cuDNN's where it is a candidate. */
static int attention_choice_valid(const bq_cuda_engine *e, int choice, int len, int packed) {
    if (choice == ATTN_OWN) return 1;
    if (choice > ATTN_OWN && choice < ATTN_CUDNN)
        return e->attention_tilings && bq_cuda_attention_tiling_available(own_tiling(choice));
    return choice == ATTN_CUDNN && cudnn_is_candidate(e, len, packed);
}

/* A new shape takes the tuning cache's decisions for its (batch, len, padded or packed): its
 * first pass then times nothing. */
static void shape_take_preset(bq_cuda_engine *e, pass_shape *p) {
    for (size_t i = 0; i < e->n_shape_presets; i++) {
        shape_preset *q = &e->shape_presets[i];
        if (q->batch != p->batch || q->len != p->len || q->packed != (p->packed != 0)) continue;
        /* cuDNN's plan for a batch size other than max_batch (planned at create) is built on its
         * first run, which only choose_attention guards (a failed build keeps ours): such a shape
         * times its attention again rather than trust the cache */
        if (p->attention_choice == ATTN_UNDECIDED &&
            attention_choice_valid(e, q->attention, p->len, p->packed) &&
            (q->attention != ATTN_CUDNN || p->batch == e->opt.max_batch))
            p->attention_choice = q->attention;
        if (q->gemm == GEMM_TIMED || q->gemm == GEMM_FIRST) p->gemm_preset = q->gemm;
        if (!q->taken) e->shape_presets_taken++;
        q->taken = 1;
        return;
    }
}

/* Which attention runs for a shape (NULL: one not run yet): cudnn as asked, else as decided
 * (own, 64 rows, until then). */
static int attention_for(const bq_cuda_engine *e, const pass_shape *p) {
    if (e->opt.attention == BQ_ATTENTION_CUDNN) return ATTN_CUDNN;
    const int c = p ? p->attention_choice : ATTN_UNDECIDED;
    if (c == ATTN_CUDNN && e->cudnn_attention) return ATTN_CUDNN;
    return c > ATTN_OWN && c < ATTN_CUDNN ? c : ATTN_OWN;
}

/* A choice's name, as bq_cuda_engine_attention_choice gives it. */
static const char *attention_name(int choice) {
    switch (choice) {
    case ATTN_CUDNN: return "cudnn";
    case ATTN_OWN_128: return "own-128";
    case ATTN_OWN_32: return "own-32";
    case ATTN_OWN_64K3: return "own-64k3";
    case ATTN_OWN_WGMMA: return "own-wgmma";
    case ATTN_OWN_WGMMA_OVERLAP: return "own-wgmma-overlap";
    default: return "own";
    }
}

/* The first attention candidate that fails on a first pass (cuDNN's plan, or a run in
 * check_attention_candidates) goes into e->attention_note, which bq_cuda_engine_describe then
 * appends once; later failures are not repeated. */
static void note_attention_failure(bq_cuda_engine *e, const char *what, int batch,
                                   const char *outcome, const char *message) {
    if (e->attention_candidate_failed) return;
    snprintf(e->attention_note, sizeof e->attention_note, "%s attention failed at batch %d, %s: "
             "%.200s", what, batch, outcome, message);
    e->attention_note_pending = 1;
    e->attention_candidate_failed = 1;
}

/* Whether a shape may keep candidate `kind`: its output agreed with the 64-row tiling's. */
static int attention_agrees(const pass_shape *p, int kind) {
    return p->attention_diff[kind] <= ATTN_AGREE_BOUND; /* false for NaN */
}

/* One run of an attention candidate (ATTN_OWN .. ATTN_CUDNN) on the current qkv -> ctx. */
static bq_status run_attention(bq_cuda_engine *e, const pass_shape *p, int kind, int *ran,
                               bq_err *err) {
    *ran = 0;
    const int batch = p->batch, len = p->len;
    if (kind == ATTN_CUDNN) {
        bq_status s = bq_cudnn_attention_run(e->cudnn_attention, e->qkv, batch, e->ctx, e->stream,
                                             err);
        if (s != BQ_OK) return s;
    } else if (p->packed) {
        BQ_CUDA_TRY(bq_cuda_attention_varlen(e->qkv, e->d_offsets, p->packed, len,
                                             e->cfg.hidden_size,
                                             e->cfg.num_heads, e->ctx, e->dt, own_tiling(kind),
                                             e->stream),
                    err);
    } else {
        BQ_CUDA_TRY(bq_cuda_attention(e->qkv, e->d_mask, batch, len, e->cfg.hidden_size,
                                      e->cfg.num_heads, e->ctx, e->dt, own_tiling(kind), e->stream),
                    err);
    }
    *ran = 1;
    return BQ_OK;
}

/* The candidates choose_attention times: kinds[i] on one shape (bq_tuning_time_candidates'
 * callback). */
typedef struct {
    bq_cuda_engine *e;
    const pass_shape *p;
    const int *kinds;
} attention_runs;

static bq_status run_attention_candidate(void *ctx, int i, int *ran, bq_err *err) {
    const attention_runs *a = (const attention_runs *)ctx;
    return run_attention(a->e, a->p, a->kinds[i], ran, err);
}

/* Every candidate of kinds[0 .. *n) against the 64-row tiling (ATTN_OWN: the first tiling, run
 * on every card since the first device run) on the first pass's own inputs: the reference output
 * goes to e->tmp (free until the attention-output GEMM writes it), each candidate's to e->ctx, and
 * p->attention_diff gets their differences (bq_normwise_from_sums). choose_attention still times a
 * candidate that differs by more than ATTN_AGREE_BOUND (its time says what it would cost), but
 * never keeps it: a kernel that is wrong on this card, these shapes or this driver cannot win on
 * speed. A
 * candidate whose run fails without spoiling the context (a launch it refuses here) is taken out
 * of kinds, its difference infinite and the reason in e->attention_note; a failure that leaves the
 * stream broken is returned. Synchronizes the stream. */
static bq_status check_attention_candidates(bq_cuda_engine *e, pass_shape *p, int *kinds, int *n,
                                            bq_err *err) {
    const size_t count = (size_t)p->batch * p->len * e->cfg.hidden_size;
    const size_t bytes = count * bq_cuda_dtype_size(e->dt);
    int ran = 0;
    bq_status s = run_attention(e, p, ATTN_OWN, &ran, err);
    if (s != BQ_OK) return s;
    BQ_CUDA_TRY(cudaMemcpyAsync(e->tmp, e->ctx, bytes, cudaMemcpyDeviceToDevice, e->stream), err);
    BQ_CUDA_TRY(cudaMemsetAsync(e->d_check, 0, BQ_NORMWISE_SUMS * ATTN_CHECK_SLOTS * sizeof(double),
                                e->stream),
                err);
    int failed[ATTN_KINDS] = {0};
#ifdef BQ_CUDA_EMULATED
    /* the emulated build's tests only: BQ_EMU_ATTENTION_FAULT=refuse-all makes every candidate's
     * run fail here as a refused launch configuration would; =<choice name> (or "all") spoils
     * that candidate's output, as a kernel wrong on some card would */
    const char *fault = getenv("BQ_EMU_ATTENTION_FAULT");
#endif
    for (int i = 0; i < *n; i++) {
        if (kinds[i] == ATTN_OWN) continue;
        bq_err run_err;
        bq_err_clear(&run_err);
#ifdef BQ_CUDA_EMULATED
        if (fault && strcmp(fault, "refuse-all") == 0)
            s = bq_cuda_check(cudaErrorInvalidConfiguration, "the refuse-all fault hook", __FILE__,
                              __LINE__, &run_err);
        else
#endif
            s = run_attention(e, p, kinds[i], &ran, &run_err);
        if (s != BQ_OK) {
            (void)cudaGetLastError(); /* a refused launch configuration is not sticky */
            const cudaError_t sync = cudaStreamSynchronize(e->stream);
            if (sync != cudaSuccess) /* sticky: an earlier kernel's fault may surface here too */
                return bq_fail(err, s, "%.400s (then the stream: %s)", run_err.message,
                               cudaGetErrorName(sync));
            note_attention_failure(e, attention_name(kinds[i]), p->batch, "left out",
                                   run_err.message);
            failed[kinds[i]] = 1;
            continue;
        }
#ifdef BQ_CUDA_EMULATED
        if (fault && (strcmp(fault, "all") == 0 || strcmp(fault, attention_name(kinds[i])) == 0))
            BQ_CUDA_TRY(cudaMemsetAsync(e->ctx, 0x3c, bytes, e->stream), err);
#endif
        BQ_CUDA_TRY(bq_cuda_normwise_diff(e->ctx, e->tmp, count, e->dt,
                                          e->d_check + BQ_NORMWISE_SUMS * kinds[i], e->stream),
                    err);
    }
    double sums[BQ_NORMWISE_SUMS * ATTN_CHECK_SLOTS];
    BQ_CUDA_TRY(cudaMemcpyAsync(sums, e->d_check, sizeof sums, cudaMemcpyDeviceToHost, e->stream), err);
    BQ_CUDA_TRY(cudaStreamSynchronize(e->stream), err);
    int kept = 0;
    for (int i = 0; i < *n; i++) {
        const int k = kinds[i];
        p->attention_diff[k] = failed[k]       ? INFINITY
                               : k == ATTN_OWN ? 0.0f
                                               : (float)bq_normwise_from_sums(sums + BQ_NORMWISE_SUMS * k);
        if (!failed[k]) kinds[kept++] = k;
    }
    *n = kept;
    return BQ_OK;
}

/* First eager pass of a shape (qkv of layer 0 ready, cuDNN's mask bias set when it is a
 * candidate): time our kernel in 64-row blocks, in its other tilings where it has them (128 rows;
 * 32 rows with the keys split in two; 64 rows split in three; 128 rows on wgmma in two schedules
 * where the build and the device have it), and cuDNN's under auto at the
 * full length, in two interleaved rounds (bq_tuning_time_candidates); keep the fastest of those
 * whose output agrees with the 64-row tiling's (check_attention_candidates) for this shape. Under
 * graph capture it decides nothing (own, 64 rows, runs). cuDNN's first run (which builds its plan
 * for this batch) is tried alone first: if it fails, ours is kept and the reason noted.
 * Synchronizes the stream. */
static bq_status choose_attention(bq_cuda_engine *e, pass_shape *p, bq_err *err) {
    bq_tuning_timer timer;
    int ready = 0;
    bq_status s = bq_tuning_timer_begin(&timer, e->stream, &ready, err);
    if (s != BQ_OK || !ready) return s;
    int kinds[ATTN_KINDS], n = 0;
    for (int k = ATTN_OWN; k < ATTN_CUDNN; k++)
        if (k == ATTN_OWN || (e->attention_tilings && bq_cuda_attention_tiling_available(own_tiling(k))))
            kinds[n++] = k;
    if (cudnn_is_candidate(e, p->len, p->packed)) {
        bq_err cerr;
        bq_err_clear(&cerr);
        int ran = 0;
        if (run_attention(e, p, ATTN_CUDNN, &ran, &cerr) == BQ_OK) {
            kinds[n++] = ATTN_CUDNN;
        } else {
            note_attention_failure(e, "cuDNN", p->batch, "own kept", cerr.message);
            /* a launch error would be sticky: make sure the stream still works */
            s = bq_cuda_check(cudaStreamSynchronize(e->stream), "cudaStreamSynchronize(e->stream)",
                              __FILE__, __LINE__, err);
        }
    }
    /* repetitions by the work (5 from 16 full-length sequences' tokens up, else 20), over two
     * rounds */
    const int reps = (long)p->batch * p->len >= 16L * e->opt.seq_len ? 5 : 20;
    const int rounds = 2;
    float kind_ms[ATTN_KINDS];
    attention_runs runs = {e, p, kinds};
    if (s == BQ_OK && n > 1) s = check_attention_candidates(e, p, kinds, &n, err);
    if (s == BQ_OK)
        s = bq_tuning_time_candidates(&timer, e->stream, n, rounds, (reps + rounds - 1) / rounds,
                                      run_attention_candidate, NULL, &runs, kind_ms, err);
    bq_tuning_timer_end(&timer);
    if (s != BQ_OK) return s;
    float ms[ATTN_KINDS] = {0};
    for (int i = 0; i < n; i++) ms[kinds[i]] = kind_ms[i] > 0.0f ? kind_ms[i] : 0.0f;
    int choice = ATTN_OWN;
    for (int k = ATTN_OWN; k < ATTN_KINDS; k++) {
        p->attention_ms[k] = ms[k];
        if (ms[k] > 0.0f && attention_agrees(p, k) && (ms[choice] <= 0.0f || ms[k] < ms[choice]))
            choice = k;
    }
    p->attention_choice = (signed char)choice;
    return BQ_OK;
}

/* Enqueue embeddings .. QA head for a shape's batch x len inputs already in d_ids/d_mask/d_seg.
 * No allocation, no synchronization (except attention auto's one-time timing, never under
 * capture): capturable. */
static bq_status enqueue_compute(bq_cuda_engine *e, pass_shape *p, op_profile *prof, bq_err *err) {
    const bq_config *c = &e->cfg;
    cudaStream_t st = e->stream;
    bq_cuda_dtype dt = e->dt;
    const int batch = p->batch;
    int S = p->len, H = c->hidden_size, I = c->intermediate_size;
    int M = batch * S;
    float eps = c->layer_norm_eps;
    bq_gemm_ctx *g = e->gemm;
    int tf32 = e->allow_tf32;

    KERNEL_OP(BQ_STAGE_EMBEDDINGS,
              bq_cuda_embeddings_layernorm(e->d_ids, e->d_seg, p->packed ? e->d_mask : NULL, batch,
                                           S, H, e->word_emb, e->pos_emb, e->type_emb, e->emb_ln_g,
                                           e->emb_ln_b, eps, e->x, dt, st));
    const int undecided =
        attention_has_choice(e, S, p->packed) && p->attention_choice == ATTN_UNDECIDED;
    if ((undecided && cudnn_is_candidate(e, S, p->packed)) || attention_for(e, p) == ATTN_CUDNN)
        /* the mask bias, once per pass */
        STATUS_OP(BQ_STAGE_ATTENTION,
                  bq_cudnn_attention_set_mask(e->cudnn_attention, e->d_mask, batch, st, err));
    for (int l = 0; l < c->num_layers; l++) {
        const layer_device *w = &e->layers[l];
        STATUS_OP(BQ_STAGE_GEMM, bq_gemm_linear(g, e->x, w->qkv_w, w->qkv_b, M, H, 3 * H, e->qkv, dt,
                                                tf32, BQ_EPILOGUE_BIAS, st, err));
        if (l == 0 && undecided) {
            bq_status s_ = choose_attention(e, p, err);
            if (s_ != BQ_OK) return s_;
        }
        const int attention = attention_for(e, p);
        if (attention == ATTN_CUDNN)
            STATUS_OP(BQ_STAGE_ATTENTION, bq_cudnn_attention_run(e->cudnn_attention, e->qkv, batch,
                                                                 e->ctx, st, err));
        else if (p->packed)
            KERNEL_OP(BQ_STAGE_ATTENTION,
                      bq_cuda_attention_varlen(e->qkv, e->d_offsets, p->packed, S, H,
                                               c->num_heads, e->ctx, dt,
                                               own_tiling(attention), st));
        else
            KERNEL_OP(BQ_STAGE_ATTENTION,
                      bq_cuda_attention(e->qkv, e->d_mask, batch, S, H, c->num_heads, e->ctx, dt,
                                        own_tiling(attention), st));
        STATUS_OP(BQ_STAGE_GEMM, bq_gemm_linear(g, e->ctx, w->attn_out_w, NULL, M, H, H, e->tmp, dt,
                                                tf32, BQ_EPILOGUE_NONE, st, err));
        KERNEL_OP(BQ_STAGE_LAYERNORM,
                  bq_cuda_bias_residual_layernorm(e->tmp, w->attn_out_b, e->x, w->attn_ln_g,
                                                  w->attn_ln_b, M, H, eps, e->h, dt, st));
        STATUS_OP(BQ_STAGE_GEMM_GELU, bq_gemm_linear(g, e->h, w->ffn_in_w, w->ffn_in_b, M, H, I,
                                                     e->ffn, dt, tf32, BQ_EPILOGUE_BIAS_GELU, st, err));
        STATUS_OP(BQ_STAGE_GEMM, bq_gemm_linear(g, e->ffn, w->ffn_out_w, NULL, M, I, H, e->tmp, dt,
                                                tf32, BQ_EPILOGUE_NONE, st, err));
        KERNEL_OP(BQ_STAGE_LAYERNORM,
                  bq_cuda_bias_residual_layernorm(e->tmp, w->ffn_out_b, e->h, w->ffn_ln_g,
                                                  w->ffn_ln_b, M, H, eps, e->x, dt, st));
    }
    KERNEL_OP(BQ_STAGE_HEAD,
              bq_cuda_qa_head(e->x, e->qa_w, e->qa_b, M, H, e->d_start, e->d_end, dt, st));
    return BQ_OK;
}

/* Capture enqueue_compute for a shape into an executable graph. On failure the stream is left
 * out of capture mode. */
static bq_status capture_graph(bq_cuda_engine *e, pass_shape *p, bq_err *err) {
    BQ_CUDA_TRY(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal), err);
    bq_status s = enqueue_compute(e, p, NULL, err);
    cudaGraph_t graph = NULL;
    cudaError_t rc = cudaStreamEndCapture(e->stream, &graph);
    if (s == BQ_OK)
        s = bq_cuda_check(rc, "cudaStreamEndCapture(e->stream, &graph)", __FILE__, __LINE__, err);
    if (s == BQ_OK)
        s = bq_cuda_check(cudaGraphInstantiate(&p->graph, graph, 0),
                          "cudaGraphInstantiate(&p->graph, graph, 0)", __FILE__, __LINE__, err);
    if (graph) cudaGraphDestroy(graph);
    if (s != BQ_OK) {
        p->graph = NULL;
        cudaGetLastError(); /* clear a capture-invalidated status so the stream stays usable */
    }
    return s;
}

/* packed: a packed pass, which has no mask (mask NULL; its layout is bq_packed_positions' to
 * check); every other pass needs one. */
static bq_status check_inputs(const bq_cuda_engine *e, int batch, int len, const int32_t *ids,
                              const int32_t *mask, const int32_t *seg, int packed, bq_err *err) {
    if (!e) return bq_fail(err, BQ_ERR_INVALID_ARG, "cuda engine is NULL");
    if (batch < 1 || batch > e->opt.max_batch)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "batch %d outside 1..%d (the engine's max batch)",
                       batch, e->opt.max_batch);
    if (len < 1 || len > e->opt.seq_len)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "sequence length %d outside 1..%d (the engine's)",
                       len, e->opt.seq_len);
    if (len < e->opt.seq_len && e->opt.attention == BQ_ATTENTION_CUDNN)
        return bq_fail(err, BQ_ERR_UNSUPPORTED,
                       "cuDNN attention is planned for the full length %d only (asked for %d); "
                       "use --attention own or auto for trimmed batches",
                       e->opt.seq_len, len);
    if (!ids || !seg || (!mask && !packed))
        return bq_fail(err, BQ_ERR_INVALID_ARG, "input arrays must not be NULL");
    size_t n = (size_t)batch * len;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= e->cfg.vocab_size)
            return bq_fail(err, BQ_ERR_INVALID_ARG, "input_ids[%zu] = %d outside the vocabulary (0..%d)",
                           i, ids[i], e->cfg.vocab_size - 1);
        if (seg[i] < 0 || seg[i] >= e->cfg.type_vocab_size)
            return bq_fail(err, BQ_ERR_INVALID_ARG, "segment_ids[%zu] = %d outside 0..%d", i, seg[i],
                           e->cfg.type_vocab_size - 1);
        if (mask && mask[i] != 0 && mask[i] != 1)
            return bq_fail(err, BQ_ERR_INVALID_ARG, "input_mask[%zu] = %d is not 0 or 1", i, mask[i]);
    }
    return BQ_OK;
}

/* Run the device part of a shape: graph replay when available, else eager (and then capture). */
static bq_status run_compute(bq_cuda_engine *e, pass_shape *p, bq_err *err) {
    if (e->use_graphs && p->graph) {
        BQ_CUDA_TRY(cudaGraphLaunch(p->graph, e->stream), err);
        return BQ_OK;
    }
    return enqueue_compute(e, p, NULL, err);
}

/* One eager pass of the device part (bq_tuning_time_once's callback). */
typedef struct {
    bq_cuda_engine *e;
    pass_shape *p;
} compute_run;

static bq_status run_pass_once(void *ctx, int *ran, bq_err *err) {
    const compute_run *c = (const compute_run *)ctx;
    bq_status s = enqueue_compute(c->e, c->p, NULL, err);
    *ran = s == BQ_OK;
    return s;
}

/* After the first eager pass of a shape (every GEMM shape of it timed alone, on warm operands):
 * time whole passes with those timed choices and with cuBLASLt's first choices + the untimed GELU
 * rule, alternately, and keep the timed ones only if their best pass is at least 1% faster than
 * the best of the others. On the H200 the timed choices, each faster alone, made fp16 passes 2-6%
 * slower. The first pass left everything warm, so no warm-up; the best of a few passes, since a
 * batch-128 pass's p99 was 20% over its p50. Costs 4 passes from 32 full sequences' rows up
 * (0.27 s at batch 128 on the H200), 6 below, once per shape; a shape of that many rows takes the
 * decision of one made before, and so does a shape with the same rows as a decided one (the GEMM
 * choices are per row count). Synchronizes the stream; decides nothing under capture or with
 * BQ_GEMM_AUTOTUNE=0. On a failed timing the timed choices stay. */
static bq_status choose_gemm(bq_cuda_engine *e, pass_shape *p, bq_err *err) {
    if (p->gemm_choice != GEMM_UNDECIDED) return BQ_OK;
    if (p->gemm_preset) { /* the tuning cache's decision, untimed */
        bq_gemm_ctx_prefer_first(e->gemm, p->batch * p->len, p->gemm_preset == GEMM_FIRST);
        p->gemm_choice = p->gemm_preset;
        return BQ_OK;
    }
    if (!bq_gemm_autotune_enabled() || !e->opt.tune) {
        p->gemm_choice = GEMM_UNTIMED;
        return BQ_OK;
    }
    const long rows = (long)p->batch * p->len, large = shared_decision_rows(e);
    /* a decided shape speaks for this one too (its times stay 0): a long run's partial and
     * trimmed batches cost nothing */
    for (int i = 0; i < e->n_shapes; i++) {
        const pass_shape *o = e->shapes[i];
        const long o_rows = (long)o->batch * o->len;
        if ((o->gemm_choice == GEMM_TIMED || o->gemm_choice == GEMM_FIRST) &&
            (o_rows == rows || (rows >= large && o_rows >= large))) {
            bq_gemm_ctx_prefer_first(e->gemm, (int)rows, o->gemm_choice == GEMM_FIRST);
            p->gemm_choice = o->gemm_choice;
            return BQ_OK;
        }
    }
    bq_tuning_timer timer;
    int ready = 0;
    bq_status s = bq_tuning_timer_begin(&timer, e->stream, &ready, err);
    if (s != BQ_OK || !ready) return s;
    const int rounds = rows >= large ? 2 : 3;
    compute_run pass = {e, p};
    float best[2] = {0.0f, 0.0f}; /* [0] timed choices, [1] first choices */
    for (int r = 0; r < rounds && s == BQ_OK; r++)
        for (int first = 0; first < 2 && s == BQ_OK; first++) {
            float ms = 0.0f;
            bq_gemm_ctx_prefer_first(e->gemm, (int)rows, first);
            s = bq_tuning_time_once(&timer, e->stream, run_pass_once, &pass, &ms, err);
            if (s == BQ_OK && (r == 0 || ms < best[first])) best[first] = ms;
        }
    bq_tuning_timer_end(&timer);
    const int keep_first = s == BQ_OK && best[1] > 0.0f && best[1] * 0.99f < best[0];
    bq_gemm_ctx_prefer_first(e->gemm, (int)rows, keep_first);
    if (s != BQ_OK) return s;
    p->gemm_timed_ms = best[0];
    p->gemm_first_ms = best[1];
    p->gemm_choice = keep_first ? GEMM_FIRST : GEMM_TIMED;
    return BQ_OK;
}

/* After a successful eager pass of a shape (cuBLASLt plans cached, kernels loaded), capture its
 * graph; if capture fails, turn graphs off for this engine and remember why. */
static void ensure_graph(bq_cuda_engine *e, pass_shape *p) {
    if (!e->use_graphs || p->graph) return;
    bq_err gerr;
    bq_err_clear(&gerr);
    if (capture_graph(e, p, &gerr) != BQ_OK) {
        e->use_graphs = 0;
        snprintf(e->graph_note, sizeof e->graph_note, "CUDA graphs off (capture failed: %.400s)",
                 gerr.message);
    }
}

/* The sequence capacity of a packed pass of n_seqs sequences in `rows` rows (pass_shape.packed):
 * few capacities, so that few shapes (graphs) serve every layout, and few spare sequences, whose
 * attention blocks cost a launch each: the next power of two up to 64, then the next multiple of
 * 32; at most rows (a sequence has a row at least). */
static int packed_capacity(int n_seqs, int rows) {
    int capacity = 1;
    while (capacity < n_seqs && capacity < 64) capacity *= 2;
    if (capacity < n_seqs) capacity = (n_seqs + 31) / 32 * 32;
    return capacity < rows ? capacity : rows;
}

/* The rest of a forward call whose inputs are staged in pinned memory (h_ids, h_mask, h_seg, and
 * for a packed pass h_offsets up to its capacity): copies in, the pass, logits out; a new shape's
 * one-time decisions and graph after its first pass. packed: 0, or the packed pass's sequence
 * capacity. */
static bq_status forward_staged(bq_cuda_engine *e, int batch, int length, int packed,
                                float *start_logits, float *end_logits, bq_err *err) {
    if (!start_logits || !end_logits)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "output logits arrays must not be NULL");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pass_shape *p = NULL;
    int first_pass = 0;
    bq_status s = shape_for(e, batch, length, packed, &p, &first_pass, err);
    if (s != BQ_OK) return s;
    const size_t n = (size_t)batch * length;
    int had_graph = e->use_graphs && p->graph;
    cudaStream_t st = e->stream;
    BQ_CUDA_TRY(cudaMemcpyAsync(e->d_ids, e->h_ids, n * sizeof(int32_t), cudaMemcpyHostToDevice, st), err);
    BQ_CUDA_TRY(cudaMemcpyAsync(e->d_mask, e->h_mask, n * sizeof(int32_t), cudaMemcpyHostToDevice, st), err);
    BQ_CUDA_TRY(cudaMemcpyAsync(e->d_seg, e->h_seg, n * sizeof(int32_t), cudaMemcpyHostToDevice, st), err);
    if (packed)
        BQ_CUDA_TRY(cudaMemcpyAsync(e->d_offsets, e->h_offsets, ((size_t)packed + 1) * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, st),
                    err);
    s = run_compute(e, p, err);
    if (s != BQ_OK) {
        cudaStreamSynchronize(st);
        return s;
    }
    BQ_CUDA_TRY(cudaMemcpyAsync(e->h_start, e->d_start, n * sizeof(float), cudaMemcpyDeviceToHost, st), err);
    BQ_CUDA_TRY(cudaMemcpyAsync(e->h_end, e->d_end, n * sizeof(float), cudaMemcpyDeviceToHost, st), err);
    BQ_CUDA_TRY(cudaStreamSynchronize(st), err);
    memcpy(start_logits, e->h_start, n * sizeof(float));
    memcpy(end_logits, e->h_end, n * sizeof(float));
    if (!had_graph) {
        s = choose_gemm(e, p, err); /* once per shape, before its graph is captured */
        if (s != BQ_OK) return s;
        ensure_graph(e, p);
    }
    if (first_pass) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        e->first_pass_seconds += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
    return BQ_OK;
}

extern "C" bq_status bq_cuda_engine_forward(bq_cuda_engine *e, int batch, int length,
                                            const int32_t *input_ids, const int32_t *input_mask,
                                            const int32_t *segment_ids, float *start_logits,
                                            float *end_logits, bq_err *err) {
    bq_status s = check_inputs(e, batch, length, input_ids, input_mask, segment_ids, 0, err);
    if (s != BQ_OK) return s;
    BQ_CUDA_TRY(cudaSetDevice(e->opt.device_index), err);
    size_t n = (size_t)batch * length;
    memcpy(e->h_ids, input_ids, n * sizeof(int32_t));
    memcpy(e->h_mask, input_mask, n * sizeof(int32_t));
    memcpy(e->h_seg, segment_ids, n * sizeof(int32_t));
    return forward_staged(e, batch, length, 0, start_logits, end_logits, err);
}

extern "C" bq_status bq_cuda_engine_forward_packed(bq_cuda_engine *e, int batch, int length,
                                                   int n_seqs, const int32_t *seq_offsets,
                                                   const int32_t *input_ids,
                                                   const int32_t *segment_ids, float *start_logits,
                                                   float *end_logits, bq_err *err) {
    if (e && e->opt.attention == BQ_ATTENTION_CUDNN)
        return bq_fail(err, BQ_ERR_UNSUPPORTED,
                       "packed sequences need our attention kernel (cuDNN's is planned for padded "
                       "batches): use --attention own or auto");
    bq_status s = check_inputs(e, batch, length, input_ids, NULL, segment_ids, 1, err);
    if (s != BQ_OK) return s;
    const size_t n = (size_t)batch * length;
    /* the positions go where a padded pass's mask goes (h_mask / d_mask) */
    s = bq_packed_positions(seq_offsets, n_seqs, (long)n, e->opt.seq_len, e->h_mask, err);
    if (s != BQ_OK) return s;
    BQ_CUDA_TRY(cudaSetDevice(e->opt.device_index), err);
    /* the offsets up to the shape's capacity: the spare sequences start and end at the last row,
     * empty, so their attention blocks return at once */
    const int capacity = packed_capacity(n_seqs, (int)n);
    memcpy(e->h_offsets, seq_offsets, ((size_t)n_seqs + 1) * sizeof(int32_t));
    for (int i = n_seqs + 1; i <= capacity; i++) e->h_offsets[i] = (int32_t)n;
    memcpy(e->h_ids, input_ids, n * sizeof(int32_t));
    memcpy(e->h_seg, segment_ids, n * sizeof(int32_t));
    return forward_staged(e, batch, length, capacity, start_logits, end_logits, err);
}

/* ---- tuning cache ------------------------------------------------------------------------- */
/* The file's format is src/tuning_cache.c's; here its key and the meaning of its lines. The key
 * is "<card> | sm_<cc> | cublasLt <version> | <precision> | attention <mode> of <kinds> | <model
 * sizes> | seq <len>"; a "gemm" line is a bq_gemm_decision (rows in out dtype tf32 epilogue
 * candidates chosen gelu-path gelu-disagreed; a section of the 9-number lines written before the
 * GEMM output check ends at its first such line, as a damaged one does, so its unchecked
 * decisions are timed again and replaced), a "shape" line "batch len packed attention gemm" (ATTN_*, GEMM_*;
 * packed 1 serves every sequence capacity). <kinds> (ATTN_KINDS) is in the key because the
 * attention numbers follow our tilings: a build with another set of them reads another section.
 * A save reads the file again and keeps the other sections as they are then, so engines share a
 * file (two processes saving at the same moment: the later rename wins). */

static void tuning_key(const bq_cuda_engine *e, char *key, size_t size) {
    cudaDeviceProp prop;
    memset(&prop, 0, sizeof prop);
    if (cudaGetDeviceProperties(&prop, e->opt.device_index) != cudaSuccess) {
        cudaGetLastError();
        snprintf(prop.name, sizeof prop.name, "cuda");
    }
    static const char *const attention[] = {"own", "cudnn", "auto"};
    const bq_config *c = &e->cfg;
    snprintf(key, size, "%.200s | sm_%d%d | cublasLt %zu | %s | attention %s of %d | hidden %d "
             "ffn %d heads %d layers %d | seq %d", prop.name, prop.major, prop.minor,
             bq_gemm_library_version(), bq_precision_name(e->opt.precision),
             attention[e->opt.attention], ATTN_KINDS, c->hidden_size, c->intermediate_size,
             c->num_heads, c->num_layers, e->opt.seq_len);
}

static bq_status shape_preset_add(bq_cuda_engine *e, const shape_preset *q, bq_err *err) {
    if (!bq_grow((void **)&e->shape_presets, &e->shape_presets_cap, e->n_shape_presets + 1,
                 sizeof *e->shape_presets))
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory for the tuning cache");
    e->shape_presets[e->n_shape_presets++] = *q;
    return BQ_OK;
}

/* One decision of this engine's section into the presets; 0 when its values are out of range (a
 * damaged line). */
static int tuning_apply(bq_cuda_engine *e, const bq_tuning_record *r, int *gemms, int *shapes,
                        bq_status *s, bq_err *err) {
    const int *f = r->field;
    if (r->kind == BQ_TUNING_GEMM) {
        bq_gemm_decision d;
        d.rows = f[0], d.in = f[1], d.out = f[2], d.dt = f[3], d.allow_tf32 = f[4], d.ep = f[5];
        d.candidates = f[6], d.chosen = f[7], d.gelu_variant = f[8], d.gelu_disagreed = f[9];
        bq_err gerr;
        bq_err_clear(&gerr);
        *s = bq_gemm_ctx_preset(e->gemm, &d, &gerr);
        if (*s == BQ_ERR_INVALID_ARG) { /* out of range: a damaged line */
            *s = BQ_OK;
            return 0;
        }
        if (*s != BQ_OK && err) *err = gerr;
        *gemms += *s == BQ_OK;
        return 1;
    }
    const int packed = f[2], attention = f[3], gemm = f[4];
    if (f[0] < 1 || f[1] < 1 || (packed != 0 && packed != 1) || attention < ATTN_UNDECIDED ||
        attention > ATTN_CUDNN || gemm < GEMM_UNDECIDED || gemm > GEMM_FIRST)
        return 0;
    shape_preset q;
    q.batch = f[0], q.len = f[1];
    q.packed = packed, q.attention = (signed char)attention, q.gemm = (signed char)gemm;
    q.taken = 0;
    *s = shape_preset_add(e, &q, err);
    *shapes += *s == BQ_OK;
    return 1;
}

/* Read the tuning cache at e->tuning_path: this engine's section into presets. A missing file is
 * a first run; a damaged line of this section is noted and it and the rest of the section
 * ignored; a file that is not a tuning cache is noted and never overwritten (nor is one that is
 * not a regular file, or whose read failed). A cache only saves time, so it fails the engine only
 * out of memory. */
static bq_status tuning_load(bq_cuda_engine *e, bq_err *err) {
    char key[1024];
    tuning_key(e, key, sizeof key);
    bq_tuning_cache read; /* the other sections are read again at the save */
    memset(&read, 0, sizeof read);
    const bq_tuning_cache *c = &read;
    bq_status s = bq_tuning_cache_read(e->tuning_path, key, &read, err);
    if (s != BQ_OK) return s;
    int gemms = 0, shapes = 0, bad_line = c->bad_line;
    for (size_t i = 0; i < c->n_records && s == BQ_OK; i++) {
        if (!tuning_apply(e, &c->records[i], &gemms, &shapes, &s, err)) {
            bad_line = c->records[i].line; /* it and the rest of the section left out */
            break;
        }
    }
    if (s != BQ_OK) {
        bq_tuning_cache_clear(&read);
        return s;
    }
    if (c->missing)
        snprintf(e->tuning_note, sizeof e->tuning_note, "tuning cache %.300s: none yet",
                 e->tuning_path);
    else if (c->open_errno || c->read_errno)
        snprintf(e->tuning_note, sizeof e->tuning_note, "tuning cache %.300s not read: %.100s",
                 e->tuning_path, strerror(c->open_errno ? c->open_errno : c->read_errno));
    else if (c->not_regular)
        snprintf(e->tuning_note, sizeof e->tuning_note,
                 "tuning cache %.300s is not a regular file: not read, not overwritten", e->tuning_path);
    else if (c->foreign)
        snprintf(e->tuning_note, sizeof e->tuning_note,
                 "%.300s is not a bertqa-gpu tuning cache: not read, not overwritten",
                 e->tuning_path);
    else if (bad_line)
        snprintf(e->tuning_note, sizeof e->tuning_note,
                 "tuning cache %.300s: line %d does not parse; %d GEMM and %d shape decisions "
                 "before it", e->tuning_path, bad_line, gemms, shapes);
    else if (!c->found)
        snprintf(e->tuning_note, sizeof e->tuning_note,
                 "tuning cache %.300s: nothing yet for this card, library, precision and model",
                 e->tuning_path);
    else
        snprintf(e->tuning_note, sizeof e->tuning_note,
                 "tuning cache %.300s: %d GEMM and %d shape decisions", e->tuning_path, gemms,
                 shapes);
    bq_tuning_cache_clear(&read);
    return BQ_OK;
}

/* A "shape" record: what tuning_apply reads back. */
static bq_tuning_record shape_record(int batch, int len, int packed, int attention, int gemm) {
    bq_tuning_record r;
    memset(&r, 0, sizeof r);
    r.kind = BQ_TUNING_SHAPE;
    r.field[0] = batch, r.field[1] = len, r.field[2] = packed, r.field[3] = attention;
    r.field[4] = gemm;
    return r;
}

extern "C" bq_status bq_cuda_engine_save_tuning(bq_cuda_engine *e, bq_err *err) {
    if (!e || !e->tuning_path[0]) return BQ_OK;
    char key[1024];
    tuning_key(e, key, sizeof key);
    /* the other sections as they are now, not as they were when this engine started: another
     * engine may have saved since (this process's or another's) */
    bq_tuning_cache now;
    memset(&now, 0, sizeof now);
    bq_status s = bq_tuning_cache_read(e->tuning_path, key, &now, err);
    if (s != BQ_OK) return s;
    const int unread = now.open_errno ? now.open_errno : now.read_errno;
    if (now.foreign || now.not_regular || unread) {
        if (now.foreign)
            bq_fail(err, BQ_ERR_IO, "%s is not a bertqa-gpu tuning cache: not overwritten", e->tuning_path);
        else if (now.not_regular)
            bq_fail(err, BQ_ERR_IO, "%s is not a regular file: not overwritten", e->tuning_path);
        else
            bq_fail(err, BQ_ERR_IO, "tuning cache %s could not be read (%s): not overwritten",
                    e->tuning_path, strerror(unread));
        bq_tuning_cache_clear(&now);
        return BQ_ERR_IO;
    }
    const int n_gemm = bq_gemm_ctx_decisions(e->gemm, NULL, 0, NULL);
    bq_gemm_decision *gemm =
        (bq_gemm_decision *)malloc((size_t)(n_gemm > 0 ? n_gemm : 1) * sizeof *gemm);
    /* [n_gemm + shapes decided here + the cache's shapes] */
    bq_tuning_record *records = (bq_tuning_record *)malloc(
        ((size_t)(n_gemm > 0 ? n_gemm : 0) + (size_t)e->n_shapes + e->n_shape_presets + 1) *
        sizeof *records);
    if (!gemm || !records) {
        free(gemm);
        free(records);
        bq_tuning_cache_clear(&now);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory writing the tuning cache");
    }
    bq_gemm_ctx_decisions(e->gemm, gemm, n_gemm, NULL);
    size_t n = 0;
    for (int i = 0; i < n_gemm; i++) {
        const bq_gemm_decision *d = &gemm[i];
        bq_tuning_record *r = &records[n++];
        memset(r, 0, sizeof *r);
        r->kind = BQ_TUNING_GEMM;
        const int f[BQ_TUNING_GEMM_FIELDS] = {d->rows,       d->in,         d->out,
                                              d->dt,         d->allow_tf32, d->ep,
                                              d->candidates, d->chosen,     d->gelu_variant,
                                              d->gelu_disagreed};
        memcpy(r->field, f, sizeof f);
    }
    free(gemm);
    /* the shapes decided in this run (a packed (batch, len) once, for every capacity), then
     * the cache's shapes this run did not meet */
    for (int i = 0; i < e->n_shapes; i++) {
        const pass_shape *p = e->shapes[i];
        const int gemm_choice =
            p->gemm_choice == GEMM_TIMED || p->gemm_choice == GEMM_FIRST ? p->gemm_choice : 0;
        if (p->attention_choice == ATTN_UNDECIDED && !gemm_choice) continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = e->shapes[j]->batch == p->batch && e->shapes[j]->len == p->len &&
                   (e->shapes[j]->packed != 0) == (p->packed != 0);
        if (!seen)
            records[n++] = shape_record(p->batch, p->len, p->packed != 0, p->attention_choice, gemm_choice);
    }
    for (size_t i = 0; i < e->n_shape_presets; i++) {
        const shape_preset *q = &e->shape_presets[i];
        if (!q->taken) records[n++] = shape_record(q->batch, q->len, q->packed, q->attention, q->gemm);
    }
    s = bq_tuning_cache_write(e->tuning_path, now.other, key, records, n, err);
    free(records);
    bq_tuning_cache_clear(&now);
    return s;
}

extern "C" void bq_cuda_engine_tuning_cache(const bq_cuda_engine *e, int *gemm_presets_taken,
                                            int *shape_presets_taken) {
    int taken = 0;
    if (e) bq_gemm_ctx_decisions(e->gemm, NULL, 0, &taken);
    if (gemm_presets_taken) *gemm_presets_taken = taken;
    if (shape_presets_taken) *shape_presets_taken = e ? e->shape_presets_taken : 0;
}

/* ---- create / free ------------------------------------------------------------------------ */

static bq_cuda_dtype dtype_for(bq_precision p) {
    if (p == BQ_PRECISION_FP16) return BQ_CUDA_F16;
    if (p == BQ_PRECISION_BF16) return BQ_CUDA_BF16;
    return BQ_CUDA_F32;
}

static bq_status create_inner(bq_cuda_engine *e, const bq_model *model, bq_err *err) {
    const bq_config *c = &model->config;
    bq_status s = select_device(e->opt.device_index, err);
    if (s != BQ_OK) return s;
    e->attention_tilings = bq_cuda_attention_has_tilings(e->dt, c->hidden_size, c->num_heads);
    BQ_CUDA_TRY(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking), err);
    /* cuDNN attention first: an unsupported combination fails before the weights are uploaded;
     * auto goes on with our kernel alone (fp32/tf32, no cuDNN, no engine for this shape; and
     * untuned, where nothing would time cuDNN's against ours) */
    if (e->opt.attention == BQ_ATTENTION_CUDNN) {
        s = bq_cudnn_attention_create(e->opt.max_batch, e->opt.seq_len, c->hidden_size,
                                      c->num_heads, e->dt, &e->cudnn_attention, err);
        if (s != BQ_OK) return s;
    } else if (e->opt.attention == BQ_ATTENTION_AUTO && e->dt != BQ_CUDA_F32 && e->opt.tune) {
        bq_err cerr;
        bq_err_clear(&cerr);
        if (bq_cudnn_attention_create(e->opt.max_batch, e->opt.seq_len, c->hidden_size,
                                      c->num_heads, e->dt, &e->cudnn_attention, &cerr) != BQ_OK) {
            e->cudnn_attention = NULL;
            snprintf(e->attention_note, sizeof e->attention_note, "cuDNN attention unavailable: %.240s",
                     cerr.message);
            cudaGetLastError(); /* a failed cuDNN probe must not leave a status behind */
        }
    }

    /* size everything first, so an oversized request fails with one clear message */
    weight_builder b;
    memset(&b, 0, sizeof b);
    b.dt = e->dt;
    b.elem = bq_cuda_dtype_size(e->dt);
    b.tf32_gemm_weights = e->allow_tf32;
    s = place_weights(e, model, &b, err);
    if (s != BQ_OK) return s;
    e->weights_bytes = b.cursor;
    e->workspace_bytes = layout_workspace(e, NULL);
    size_t needed = e->weights_bytes + e->workspace_bytes + GEMM_WORKSPACE_BYTES;
    size_t free_b = 0, total_b = 0;
    BQ_CUDA_TRY(cudaMemGetInfo(&free_b, &total_b), err);
    if (needed > free_b)
        return bq_fail(err, BQ_ERR_DEVICE_OOM,
                       "not enough device memory: the engine needs %zu bytes (weights %zu, "
                       "activations for %d x %d tokens %zu, GEMM workspace %zu) but only %zu of %zu "
                       "are free; lower --max-batch / --seq-len or use fp16",
                       needed, e->weights_bytes, e->opt.max_batch, e->opt.seq_len,
                       e->workspace_bytes, GEMM_WORKSPACE_BYTES, free_b, total_b);

    s = device_alloc(&e->weights, e->weights_bytes, "weights", needed, err);
    if (s != BQ_OK) return s;
    s = device_alloc(&e->workspace, e->workspace_bytes, "activation workspace", needed, err);
    if (s != BQ_OK) return s;
    layout_workspace(e, (char *)e->workspace);
    s = bq_gemm_ctx_create(&e->gemm, GEMM_WORKSPACE_BYTES, err);
    if (s != BQ_OK) return s;
    bq_gemm_ctx_set_autotune(e->gemm, e->opt.tune);
    bq_gemm_ctx_share_from(e->gemm, (int)shared_decision_rows(e));

    /* staging for the largest single placement (word embeddings, QKV, or FFN weight) */
    size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    size_t largest = (size_t)c->vocab_size * H;
    if ((size_t)c->max_position_embeddings * H > largest) largest = (size_t)c->max_position_embeddings * H;
    if (3 * H * H > largest) largest = 3 * H * H;
    if (I * H > largest) largest = I * H;
    b.staging = malloc(largest * b.elem);
    if (!b.staging) return bq_fail(err, BQ_ERR_NOMEM, "no host memory to stage %zu weight bytes", largest * b.elem);
    b.base = (char *)e->weights;
    b.cursor = 0;
    b.upload = 1;
    s = place_weights(e, model, &b, err);
    free(b.staging);
    if (s != BQ_OK) return s;

    size_t M = (size_t)e->opt.max_batch * e->opt.seq_len;
    s = PINNED_ALLOC(&e->pinned, M * (3 * sizeof(int32_t) + 2 * sizeof(float)) + (M + 1) * sizeof(int32_t),
                     "the inputs' and logits' staging", err);
    if (s != BQ_OK) return s;
    e->h_ids = (int32_t *)e->pinned;
    e->h_mask = e->h_ids + M;
    e->h_seg = e->h_mask + M;
    e->h_start = (float *)(e->h_seg + M);
    e->h_end = e->h_start + M;
    e->h_offsets = (int32_t *)(e->h_end + M);

    const char *no_graph = getenv("BQ_NO_CUDA_GRAPH");
    e->use_graphs = e->opt.tune && !(no_graph && no_graph[0] == '1');
    if (!e->opt.tune)
        snprintf(e->graph_note, sizeof e->graph_note, "single-pass mode: nothing timed, no CUDA graph");
    else if (!e->use_graphs)
        snprintf(e->graph_note, sizeof e->graph_note, "CUDA graphs off (BQ_NO_CUDA_GRAPH=1)");
    BQ_CUDA_TRY(cudaDeviceSynchronize(), err);
    return BQ_OK;
}

extern "C" bq_status bq_cuda_engine_create(const bq_model *model, const bq_engine_options *opt,
                                           bq_cuda_engine **out, bq_err *err) {
    *out = NULL;
    if (!model || !opt) return bq_fail(err, BQ_ERR_INVALID_ARG, "cuda engine: model and options required");
    const bq_config *c = &model->config;
    if (opt->max_batch < 1 || opt->seq_len < 1 || opt->seq_len > c->max_position_embeddings)
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "cuda engine: max batch %d must be >= 1 and seq_len %d within 1..%d",
                       opt->max_batch, opt->seq_len, c->max_position_embeddings);
    if (c->num_heads < 1 || c->hidden_size % c->num_heads != 0 || !model->layers)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cuda engine: model config is inconsistent");
    if ((double)opt->max_batch * opt->seq_len * (c->intermediate_size > 3 * c->hidden_size
                                                     ? c->intermediate_size
                                                     : 3 * c->hidden_size) > 2147483647.0)
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "cuda engine: %d x %d tokens make activations beyond 2^31 elements",
                       opt->max_batch, opt->seq_len);
    bq_cuda_engine *e = (bq_cuda_engine *)calloc(1, sizeof *e);
    if (!e) return bq_fail(err, BQ_ERR_NOMEM, "cuda engine: out of host memory");
    e->opt = *opt;
    e->cfg = *c;
    e->dt = dtype_for(opt->precision);
    e->allow_tf32 = opt->precision == BQ_PRECISION_TF32;
    e->layers = (layer_device *)calloc((size_t)c->num_layers, sizeof(layer_device));
    bq_status s = e->layers ? create_inner(e, model, err)
                            : bq_fail(err, BQ_ERR_NOMEM, "cuda engine: out of host memory");
    e->opt.tuning_cache = NULL;
    if (s == BQ_OK && opt->tuning_cache && opt->tuning_cache[0]) {
        if (strlen(opt->tuning_cache) >= sizeof e->tuning_path)
            s = bq_fail(err, BQ_ERR_INVALID_ARG, "tuning cache path too long (%zu bytes)",
                        strlen(opt->tuning_cache));
        else {
            snprintf(e->tuning_path, sizeof e->tuning_path, "%s", opt->tuning_cache);
            e->opt.tuning_cache = e->tuning_path;
            s = tuning_load(e, err);
        }
    }
    if (s != BQ_OK) {
        bq_cuda_engine_free(e);
        return s;
    }
    char name[256] = "cuda";
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, opt->device_index) == cudaSuccess)
        snprintf(name, sizeof name, "%s", prop.name);
    const char *wgmma =
        bq_cuda_attention_tiling_available(BQ_ATTENTION_WGMMA128) ? ", or wgmma in 128-row blocks (two schedules)" : "";
    char attention[192] = "own";
    if (opt->attention == BQ_ATTENTION_CUDNN)
        snprintf(attention, sizeof attention, "cudnn");
    else if (cudnn_is_candidate(e, opt->seq_len, 0) && e->attention_tilings)
        snprintf(attention, sizeof attention, "auto (own in 64-, 128- or 32-row blocks, keys split "
                 "or not%s, or cudnn, per batch size)", wgmma);
    else if (cudnn_is_candidate(e, opt->seq_len, 0))
        snprintf(attention, sizeof attention, "auto (own or cudnn per batch size)");
    else if (e->attention_tilings)
        snprintf(attention, sizeof attention, "own (64-, 128- or 32-row blocks, keys split or "
                 "not%s, per batch size)", wgmma);
    snprintf(e->description, sizeof e->description, "%.200s %s, %s attention%s%.200s%s%.300s%s%.400s",
             name, bq_precision_name(opt->precision), attention, e->attention_note[0] ? " - " : "",
             e->attention_note, e->graph_note[0] ? ", " : "", e->graph_note,
             e->tuning_note[0] ? ", " : "", e->tuning_note);
    *out = e;
    return BQ_OK;
}

extern "C" void bq_cuda_engine_free(bq_cuda_engine *e) {
    if (!e) return;
    if (e->stream) cudaStreamSynchronize(e->stream);
    for (int i = 0; i < e->n_shapes; i++) {
        if (e->shapes[i]->graph) cudaGraphExecDestroy(e->shapes[i]->graph);
        free(e->shapes[i]);
    }
    free(e->shapes);
    free(e->shape_presets);
    bq_cudnn_attention_free(e->cudnn_attention);
    bq_gemm_ctx_free(e->gemm);
    if (e->pinned) cudaFreeHost(e->pinned);
    if (e->workspace) cudaFree(e->workspace);
    if (e->weights) cudaFree(e->weights);
    if (e->stream) cudaStreamDestroy(e->stream);
    free(e->layers);
    free(e);
}

extern "C" void bq_cuda_engine_first_passes(const bq_cuda_engine *e, int *shapes, double *seconds) {
    *shapes = e ? e->n_shapes : 0;
    *seconds = e ? e->first_pass_seconds : 0.0;
}

extern "C" const char *bq_cuda_engine_describe(const bq_cuda_engine *e) {
    if (!e) return "cuda (none)";
    bq_cuda_engine *m = (bq_cuda_engine *)e;
    if (e->graph_note[0] && !strstr(e->description, e->graph_note)) {
        /* a capture failed after create: say so */
        size_t len = strlen(m->description);
        snprintf(m->description + len, sizeof m->description - len, ", %s", m->graph_note);
    }
    if (e->attention_note_pending) { /* an attention candidate failed on a first pass */
        size_t len = strlen(m->description);
        snprintf(m->description + len, sizeof m->description - len, ", %s", m->attention_note);
        m->attention_note_pending = 0;
    }
    return e->description;
}

/* ---- benchmark API ------------------------------------------------------------------------ */

extern "C" const char *bq_cuda_engine_attention_choice(const bq_cuda_engine *e, int batch,
                                                        bq_attention_times *times) {
    if (times) memset(times, 0, sizeof *times);
    if (!e || batch < 1 || batch > e->opt.max_batch) return "none";
    const pass_shape *p = find_shape(e, batch, e->opt.seq_len, 0);
    if (times && p) {
        const float *ms = p->attention_ms;
        times->own_ms = ms[ATTN_OWN];
        times->own128_ms = ms[ATTN_OWN_128];
        times->own32_ms = ms[ATTN_OWN_32];
        times->own64k3_ms = ms[ATTN_OWN_64K3];
        times->own_wgmma_ms = ms[ATTN_OWN_WGMMA];
        times->own_wgmma_overlap_ms = ms[ATTN_OWN_WGMMA_OVERLAP];
        times->cudnn_ms = ms[ATTN_CUDNN];
        for (int k = ATTN_OWN; k < ATTN_KINDS; k++) {
            const double d = p->attention_diff[k]; /* never NaN: 0, finite or infinite */
            if (d > times->worst_diff) times->worst_diff = d;
            if (attention_agrees(p, k)) continue;
            const size_t used = strlen(times->disagreeing);
            snprintf(times->disagreeing + used, sizeof times->disagreeing - used, "%s%s",
                     used ? "," : "", attention_name(k));
        }
    }
    if (attention_has_choice(e, e->opt.seq_len, 0) && (!p || p->attention_choice == ATTN_UNDECIDED))
        return "undecided";
    return attention_name(attention_for(e, p));
}

extern "C" const char *bq_cuda_engine_gemm_choice(const bq_cuda_engine *e, int batch,
                                                   double *timed_ms, double *first_ms) {
    if (timed_ms) *timed_ms = 0.0;
    if (first_ms) *first_ms = 0.0;
    if (!e || batch < 1 || batch > e->opt.max_batch) return "none";
    const pass_shape *p = find_shape(e, batch, e->opt.seq_len, 0);
    if (!p) return "undecided";
    if (timed_ms) *timed_ms = p->gemm_timed_ms;
    if (first_ms) *first_ms = p->gemm_first_ms;
    switch (p->gemm_choice) {
    case GEMM_TIMED: return "timed";
    case GEMM_FIRST: return "first";
    case GEMM_UNTIMED: return "untimed";
    default: return "undecided";
    }
}

extern "C" int bq_cuda_engine_gemm_plans(const bq_cuda_engine *e, bq_gemm_plan_info *out,
                                         int max) {
    return bq_gemm_ctx_plans(e ? e->gemm : NULL, out, max);
}

extern "C" bq_status bq_cuda_engine_memory(const bq_cuda_engine *e, size_t *weights_bytes,
                                           size_t *workspace_bytes, bq_err *err) {
    if (!e) return bq_fail(err, BQ_ERR_INVALID_ARG, "cuda engine is NULL");
    if (weights_bytes) *weights_bytes = e->weights_bytes;
    if (workspace_bytes) *workspace_bytes = e->workspace_bytes + GEMM_WORKSPACE_BYTES;
    return BQ_OK;
}

/* The time between two recorded events; a failure (an event not completed) is the caller's, so
 * that no -1 ms ever enters the statistics. */
static bq_status elapsed_ms(cudaEvent_t a, cudaEvent_t b, double *ms, bq_err *err) {
    float f = 0.0f;
    BQ_CUDA_TRY(cudaEventElapsedTime(&f, a, b), err);
    *ms = f;
    return BQ_OK;
}

/* Timing loop. Per iteration, on the engine's stream:
 *   [ev0] H2D of input set k (pinned) [ev1] forward graph [ev2] D2H logits [ev3], then sync;
 * compute = ev1..ev2, total = ev0..ev3. Input sets rotate (k = i mod n_input_sets) so that no two
 * consecutive passes see the same tokens. */
static bq_status time_loop(bq_cuda_engine *e, pass_shape *p, int32_t *sets, int n_sets, int warmup,
                           int iters, bq_cuda_timing *per_iter, cudaEvent_t ev[4], bq_err *err) {
    size_t n = (size_t)p->batch * p->len;
    cudaStream_t st = e->stream;
    for (int i = 0; i < warmup + iters; i++) {
        const int32_t *set = sets + (size_t)(i % n_sets) * 3 * n; /* ids | mask | seg */
        BQ_CUDA_TRY(cudaEventRecord(ev[0], st), err);
        BQ_CUDA_TRY(cudaMemcpyAsync(e->d_ids, set, n * sizeof(int32_t), cudaMemcpyHostToDevice, st), err);
        BQ_CUDA_TRY(cudaMemcpyAsync(e->d_mask, set + n, n * sizeof(int32_t), cudaMemcpyHostToDevice, st), err);
        BQ_CUDA_TRY(cudaMemcpyAsync(e->d_seg, set + 2 * n, n * sizeof(int32_t), cudaMemcpyHostToDevice, st), err);
        BQ_CUDA_TRY(cudaEventRecord(ev[1], st), err);
        bq_status s = run_compute(e, p, err);
        if (s != BQ_OK) return s;
        BQ_CUDA_TRY(cudaEventRecord(ev[2], st), err);
        BQ_CUDA_TRY(cudaMemcpyAsync(e->h_start, e->d_start, n * sizeof(float), cudaMemcpyDeviceToHost, st), err);
        BQ_CUDA_TRY(cudaMemcpyAsync(e->h_end, e->d_end, n * sizeof(float), cudaMemcpyDeviceToHost, st), err);
        BQ_CUDA_TRY(cudaEventRecord(ev[3], st), err);
        BQ_CUDA_TRY(cudaStreamSynchronize(st), err);
        if (i >= warmup) {
            bq_status s2 = elapsed_ms(ev[1], ev[2], &per_iter[i - warmup].compute_ms, err);
            if (s2 == BQ_OK) s2 = elapsed_ms(ev[0], ev[3], &per_iter[i - warmup].total_ms, err);
            if (s2 != BQ_OK) return s2;
        }
    }
    return BQ_OK;
}

extern "C" bq_status bq_cuda_engine_time(bq_cuda_engine *e, int batch, const int32_t *ids,
                                         const int32_t *mask, const int32_t *seg, int warmup,
                                         int iters, int n_input_sets, bq_cuda_timing *per_iter,
                                         bq_err *err) {
    if (!e || iters < 0 || warmup < 0 || n_input_sets < 1 || (iters > 0 && !per_iter))
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "bq_cuda_engine_time: bad arguments (iters %d, warmup %d, input sets %d)", iters,
                       warmup, n_input_sets);
    const int S = e->opt.seq_len;
    size_t n = (size_t)batch * S;
    for (int k = 0; k < n_input_sets; k++) {
        bq_status s = check_inputs(e, batch, S, ids + k * n, mask + k * n, seg + k * n, 0, err);
        if (s != BQ_OK) return s;
    }
    /* one ordinary forward first: it validates the inputs end to end and captures the graph */
    float *logits = (float *)malloc(2 * n * sizeof(float));
    if (!logits) return bq_fail(err, BQ_ERR_NOMEM, "bq_cuda_engine_time: out of host memory");
    bq_status s = bq_cuda_engine_forward(e, batch, S, ids, mask, seg, logits, logits + n, err);
    free(logits);
    if (s != BQ_OK) return s;
    pass_shape *p = find_shape(e, batch, S, 0); /* made by the forward */

    int32_t *sets = NULL;
    s = PINNED_ALLOC(&sets, (size_t)n_input_sets * 3 * n * sizeof(int32_t), "the benchmark's input sets", err);
    if (s != BQ_OK) return s;
    for (int k = 0; k < n_input_sets; k++) {
        int32_t *set = sets + (size_t)k * 3 * n;
        memcpy(set, ids + k * n, n * sizeof(int32_t));
        memcpy(set + n, mask + k * n, n * sizeof(int32_t));
        memcpy(set + 2 * n, seg + k * n, n * sizeof(int32_t));
    }
    cudaEvent_t ev[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4 && s == BQ_OK; i++)
        s = bq_cuda_check(cudaEventCreate(&ev[i]), "cudaEventCreate(&ev[i])", __FILE__, __LINE__, err);
    if (s == BQ_OK) s = time_loop(e, p, sets, n_input_sets, warmup, iters, per_iter, ev, err);
    cudaStreamSynchronize(e->stream);
    for (int i = 0; i < 4; i++)
        if (ev[i]) cudaEventDestroy(ev[i]);
    cudaFreeHost(sets);
    return s;
}

extern "C" bq_status bq_cuda_engine_profile(bq_cuda_engine *e, int batch, const int32_t *ids,
                                            const int32_t *mask, const int32_t *seg,
                                            double stage_ms[BQ_STAGE_COUNT], bq_err *err) {
    for (int i = 0; i < BQ_STAGE_COUNT; i++) stage_ms[i] = 0.0;
    const int S = e ? e->opt.seq_len : 0;
    bq_status s = check_inputs(e, batch, S, ids, mask, seg, 0, err);
    if (s != BQ_OK) return s;
    size_t n = (size_t)batch * S;
    /* one ordinary forward first so cuBLASLt plans and kernels are warm */
    float *logits = (float *)malloc(2 * n * sizeof(float));
    if (!logits) return bq_fail(err, BQ_ERR_NOMEM, "bq_cuda_engine_profile: out of host memory");
    s = bq_cuda_engine_forward(e, batch, S, ids, mask, seg, logits, logits + n, err);
    free(logits);
    if (s != BQ_OK) return s;
    pass_shape *p = find_shape(e, batch, S, 0);

    op_profile prof;
    memset(&prof, 0, sizeof prof);
    prof.cap = 2 + 8 * e->cfg.num_layers;
    prof.start = (cudaEvent_t *)calloc((size_t)prof.cap, sizeof(cudaEvent_t));
    prof.stop = (cudaEvent_t *)calloc((size_t)prof.cap, sizeof(cudaEvent_t));
    prof.stage = (bq_stage *)calloc((size_t)prof.cap, sizeof(bq_stage));
    if (!prof.start || !prof.stop || !prof.stage)
        s = bq_fail(err, BQ_ERR_NOMEM, "bq_cuda_engine_profile: out of host memory");
    for (int i = 0; i < prof.cap && s == BQ_OK; i++) {
        s = bq_cuda_check(cudaEventCreate(&prof.start[i]), "cudaEventCreate(&prof.start[i])",
                          __FILE__, __LINE__, err);
        if (s == BQ_OK)
            s = bq_cuda_check(cudaEventCreate(&prof.stop[i]), "cudaEventCreate(&prof.stop[i])",
                              __FILE__, __LINE__, err);
    }
    if (s == BQ_OK) {
        /* inputs are still on the device from the forward above */
        s = enqueue_compute(e, p, &prof, err);
        bq_status sync = bq_cuda_check(cudaStreamSynchronize(e->stream),
                                       "cudaStreamSynchronize(e->stream)", __FILE__, __LINE__,
                                       s == BQ_OK ? err : NULL);
        if (s == BQ_OK) s = sync;
    }
    for (int i = 0; i < prof.count && s == BQ_OK; i++) {
        double ms = 0;
        s = elapsed_ms(prof.start[i], prof.stop[i], &ms, err);
        stage_ms[prof.stage[i]] += ms;
    }
    for (int i = 0; i < prof.cap; i++) {
        if (prof.start && prof.start[i]) cudaEventDestroy(prof.start[i]);
        if (prof.stop && prof.stop[i]) cudaEventDestroy(prof.stop[i]);
    }
    free(prof.start);
    free(prof.stop);
    free(prof.stage);
    return s;
}

/* ---- GEMM ceiling ------------------------------------------------------------------------- */

static bq_status time_big_gemm(bq_gemm_ctx *g, bq_cuda_dtype dt, int allow_tf32, int size, double *tflops,
                               bq_err *err) {
    *tflops = 0.0;
    size_t elems = (size_t)size * size, bytes = elems * bq_cuda_dtype_size(dt);
    void *a = NULL, *b = NULL, *c = NULL;
    cudaEvent_t t0 = NULL, t1 = NULL;
    bq_status s = bq_cuda_check(cudaMalloc(&a, bytes), "cudaMalloc(&a, bytes)", __FILE__, __LINE__, err);
    if (s == BQ_OK) s = bq_cuda_check(cudaMalloc(&b, bytes), "cudaMalloc(&b, bytes)", __FILE__, __LINE__, err);
    if (s == BQ_OK) s = bq_cuda_check(cudaMalloc(&c, bytes), "cudaMalloc(&c, bytes)", __FILE__, __LINE__, err);
    /* 0x3c bytes: fp16 1.06, fp32 0.0115 - finite, non-zero operands */
    if (s == BQ_OK) s = bq_cuda_check(cudaMemset(a, 0x3c, bytes), "cudaMemset(a, 0x3c, bytes)", __FILE__, __LINE__, err);
    if (s == BQ_OK) s = bq_cuda_check(cudaMemset(b, 0x3c, bytes), "cudaMemset(b, 0x3c, bytes)", __FILE__, __LINE__, err);
    if (s == BQ_OK) s = bq_cuda_check(cudaEventCreate(&t0), "cudaEventCreate(&t0)", __FILE__, __LINE__, err);
    if (s == BQ_OK) s = bq_cuda_check(cudaEventCreate(&t1), "cudaEventCreate(&t1)", __FILE__, __LINE__, err);
    const int warmup = 2, iters = 10;
    for (int i = 0; i < warmup && s == BQ_OK; i++)
        s = bq_gemm_linear(g, b, a, NULL, size, size, size, c, dt, allow_tf32, BQ_EPILOGUE_NONE, 0, err);
    if (s == BQ_OK) s = bq_cuda_check(cudaEventRecord(t0, 0), "cudaEventRecord(t0, 0)", __FILE__, __LINE__, err);
    for (int i = 0; i < iters && s == BQ_OK; i++)
        s = bq_gemm_linear(g, b, a, NULL, size, size, size, c, dt, allow_tf32, BQ_EPILOGUE_NONE, 0, err);
    if (s == BQ_OK) s = bq_cuda_check(cudaEventRecord(t1, 0), "cudaEventRecord(t1, 0)", __FILE__, __LINE__, err);
    if (s == BQ_OK) s = bq_cuda_check(cudaEventSynchronize(t1), "cudaEventSynchronize(t1)", __FILE__, __LINE__, err);
    if (s == BQ_OK) {
        double ms = 0;
        s = elapsed_ms(t0, t1, &ms, err);
        if (s == BQ_OK && ms > 0) *tflops = 2.0 * size * (double)size * size * iters / (ms * 1e-3) / 1e12;
    }
    if (t0) cudaEventDestroy(t0);
    if (t1) cudaEventDestroy(t1);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    return s;
}

extern "C" bq_status bq_cuda_gemm_ceiling(int device, double tflops[BQ_PRECISION_COUNT], bq_err *err) {
    for (int p = 0; p < BQ_PRECISION_COUNT; p++) tflops[p] = 0.0;
    bq_status s = select_device(device, err);
    if (s != BQ_OK) return s;
    bq_gemm_ctx *g = NULL;
    s = bq_gemm_ctx_create(&g, GEMM_WORKSPACE_BYTES, err);
#ifdef BQ_CUDA_EMULATED
    const int size = 256; /* the emulator says nothing of speed: 8192^3 x 12 took it 4 minutes */
#else
    const int size = 8192;
#endif
    /* each precision's own: the peaks of fp16 and bf16, or of tf32 and fp32, need not agree */
    static const struct {
        bq_precision precision;
        bq_cuda_dtype dt;
        int allow_tf32;
    } runs[] = {{BQ_PRECISION_FP16, BQ_CUDA_F16, 0}, {BQ_PRECISION_BF16, BQ_CUDA_BF16, 0},
                {BQ_PRECISION_TF32, BQ_CUDA_F32, 1}, {BQ_PRECISION_FP32, BQ_CUDA_F32, 0}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0] && s == BQ_OK; i++)
        s = time_big_gemm(g, runs[i].dt, runs[i].allow_tf32, size, &tflops[runs[i].precision], err);
    bq_gemm_ctx_free(g);
    return s;
}
