/* test_gpu_model.c - the whole model on the GPU against the fp32 CPU reference (bq_cpu_forward_*,
 * itself checked against float64 numpy in test_forward_cpu).
 *
 * Random-weight models built in memory at three shapes: tiny (head size 8, odd sequence length 33),
 * head size 64 (the shape of the fast attention path), and BERT-large (24 x 1024, S = 384; only when
 * BQ_TEST_LARGE=1, as bench/gpu-check.sh sets). Every precision, ragged padding, several batch
 * sizes, graph replay and eager. Error: normwise relative error ||gpu - cpu|| / ||cpu|| over the
 * start and end logits of real (mask = 1) tokens, held to the bounds the engine issue sets:
 * fp32 <= 1e-5, tf32 <= 3e-3, fp16 <= 2e-2, bf16 <= 2e-2. They are tight: a host emulation that
 * rounds weights and every stored activation (and the attention probabilities) exactly where the
 * GPU does (tools/precision_emulation.py, the test's model bit for bit) predicts, at the BERT-large
 * shape (test seed; seeds 1 and 2 in brackets), 1.3e-6 (0.9e-6, 1.8e-6) for a differently ordered
 * fp32 pass, 1.5e-3 (0.9e-3, 1.5e-3) / 4.1e-3 (2.6e-3, 5.7e-3) for tf32 GEMM inputs rounded to
 * nearest / truncated (the tensor cores may just drop the low 13 bits), 2.8e-3 (2.6e-3, 3.7e-3)
 * for fp16 and 2.3e-2 (1.6e-2, 3.4e-2) for bf16 (8-bit mantissa, 24 layers; 2.2e-2 with the
 * fused FFN-in GEMM + GELU of Hopper). Final-hidden-state error, the steadier measure: 1.0e-6,
 * 0.9e-3 / 3.5e-3, 2.4e-3, 1.9e-2. So bf16, and tf32 if the tensor cores truncate, are
 * predicted to miss as the engine stands.
 * These numbers are for the present weights (random_model_create): the former ones (U(-0.05,
 * 0.05) matrices, U(-0.1, 0.1) embeddings) collapsed every sequence onto one vector by layer ~16
 * (token cosine 1.000), so the logits were one constant per sequence, the metric a noisy projection
 * (seeds 5x apart) and token-level bugs nearly invisible; now the final token cosine is 0.64 mean,
 * 0.82 max, and the logits vary across tokens about as much as their mean magnitude. At the small
 * shapes the former weights gave 1.5e-7, 6.7e-4, 5.1e-3, 6e-5 / 2.3e-4 (not emulated again). A
 * real bug (layout, mask, scale) gives errors ~1. Where the bf16 error comes from: rounding the
 * weights to bf16 is 85-90% of its variance (weights rounded alone: 1.6-2.3e-2 hidden), so an fp32
 * residual stream or fp32 GEMM outputs do not move it (emulated: 2.3-2.5e-2); only splitting each
 * weight into two bf16 terms (twice the GEMM work) reaches ~1e-2. Against truncating tensor cores
 * the tf32 engine uploads its GEMM weights already rounded to TF32 (bq_round_tf32), which cost
 * nothing and took the emulated truncation error from 6.0e-3 to 1.7-2.0e-3 on the former weights.
 * Bounds stay as the issue sets them.
 * Every precision is run and printed before the test fails, so one GPU log shows all margins.
 * Plus cuDNN attention when the build offers it, and the engine's argument errors.
 * Without a GPU every test is skipped and the binary exits 77 (ctest: skipped). */
#include "test_support.h"

#include "engine_cuda.h"
#include "forward_cpu.h"
#include "model.h"
#include "safetensors.h"

#ifdef BQ_HAVE_CUDA
#include "attention.cuh"
#include "gemm.cuh"
#include "gemm_3xtf32.cuh"
#include "gemm_bias_gelu.cuh"
#include "normwise_diff.cuh"
#endif
#ifdef BQ_CUDA_EMULATED
#include "emu_faults.h"
#endif

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int gpu_available;

/* ---- a random model held in memory -------------------------------------------------------- */

typedef struct {
    bq_model model;
    float *storage; /* every tensor, one allocation */
} random_model;

static float *take(float **cursor, size_t n) {
    float *p = *cursor;
    *cursor += n;
    return p;
}

/* Weights near BERT's initialisation (initializer_range 0.02: N(0, 0.02), here the uniform with
 * the same std, U(-0.0346, 0.0346)), all uniform: embeddings, Q, K, FFN and QA-head matrices
 * U(-0.0346, 0.0346); value and attention-output matrices U(-0.025, 0.025); biases U(-0.02, 0.02);
 * LayerNorm gamma U(0.9, 1.1), beta U(-0.05, 0.05). The smaller V / output range keeps the model
 * from collapsing: random Q / K give near-uniform attention, which adds the sequence average to
 * every token in every layer; with all matrices at U(-0.0346, 0.0346) the final token cosine is
 * 0.93 (the former U(-0.05, 0.05) everywhere: 1.000 from layer ~16, one vector per sequence and
 * the logits one constant). At the BERT-large shape it is now 0.64 mean, 0.82 max (seeds 1, 2:
 * 0.62, 0.80). tools/precision_emulation.py mirrors this fill (order, ranges: its DIST) and prints
 * the token cosine (--collapse: after every layer). */
static random_model *random_model_create(int H, int heads, int I, int layers, int vocab, int max_pos,
                                         uint64_t seed) {
    random_model *r = calloc(1, sizeof *r);
    assert_non_null(r);
    bq_config *c = &r->model.config;
    c->hidden_size = H;
    c->num_layers = layers;
    c->num_heads = heads;
    c->intermediate_size = I;
    c->max_position_embeddings = max_pos;
    c->type_vocab_size = 2;
    c->vocab_size = vocab;
    c->layer_norm_eps = 1e-12f;
    snprintf(r->model.checkpoint_dtype, sizeof r->model.checkpoint_dtype, "F32");
    size_t h = (size_t)H, i = (size_t)I;
    size_t per_layer = 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h;
    size_t total = ((size_t)vocab + max_pos + 2) * h + 2 * h + per_layer * layers + 2 * h + 2;
    r->storage = malloc(total * sizeof(float));
    assert_non_null(r->storage);
    r->model.layers = calloc((size_t)layers, sizeof(bq_layer_weights));
    assert_non_null(r->model.layers);
    uint64_t state = seed;
    float *cur = r->storage;
#define FILL(dst, n, lo, hi)                                        \
    do {                                                            \
        float *p_ = take(&cur, (n));                                \
        bq_test_fill_uniform(p_, (n), &state, (lo), (hi));          \
        dst = p_;                                                   \
    } while (0)
    FILL(r->model.word_emb, (size_t)vocab * h, -0.0346f, 0.0346f);
    FILL(r->model.pos_emb, (size_t)max_pos * h, -0.0346f, 0.0346f);
    FILL(r->model.type_emb, 2 * h, -0.0346f, 0.0346f);
    FILL(r->model.emb_ln_g, h, 0.9f, 1.1f);
    FILL(r->model.emb_ln_b, h, -0.05f, 0.05f);
    for (int l = 0; l < layers; l++) {
        bq_layer_weights *w = &r->model.layers[l];
        FILL(w->q_w, h * h, -0.0346f, 0.0346f);
        FILL(w->q_b, h, -0.02f, 0.02f);
        FILL(w->k_w, h * h, -0.0346f, 0.0346f);
        FILL(w->k_b, h, -0.02f, 0.02f);
        FILL(w->v_w, h * h, -0.025f, 0.025f);
        FILL(w->v_b, h, -0.02f, 0.02f);
        FILL(w->attn_out_w, h * h, -0.025f, 0.025f);
        FILL(w->attn_out_b, h, -0.02f, 0.02f);
        FILL(w->attn_ln_g, h, 0.9f, 1.1f);
        FILL(w->attn_ln_b, h, -0.05f, 0.05f);
        FILL(w->ffn_in_w, i * h, -0.0346f, 0.0346f);
        FILL(w->ffn_in_b, i, -0.02f, 0.02f);
        FILL(w->ffn_out_w, h * i, -0.0346f, 0.0346f);
        FILL(w->ffn_out_b, h, -0.02f, 0.02f);
        FILL(w->ffn_ln_g, h, 0.9f, 1.1f);
        FILL(w->ffn_ln_b, h, -0.05f, 0.05f);
    }
    FILL(r->model.qa_w, 2 * h, -0.0346f, 0.0346f);
    FILL(r->model.qa_b, 2, -0.02f, 0.02f);
#undef FILL
    assert_true((size_t)(cur - r->storage) <= total);
    return r;
}

static void random_model_free(random_model *r) {
    if (!r) return;
    free(r->model.layers);
    free(r->storage);
    free(r);
}

/* ---- inputs and the CPU reference --------------------------------------------------------- */

typedef struct {
    int batch, seq_len;
    int32_t *ids, *mask, *seg; /* [batch, seq_len] */
    float *ref_start, *ref_end; /* CPU reference logits */
} batch_case;

/* Row b has lengths[b] real tokens: [CLS] question [SEP] context [SEP]-like segments, then pads. */
static batch_case make_batch(const bq_model *m, int batch, int seq_len, const int *lengths,
                             uint64_t seed) {
    batch_case bc;
    memset(&bc, 0, sizeof bc);
    bc.batch = batch;
    bc.seq_len = seq_len;
    size_t n = (size_t)batch * seq_len;
    bc.ids = calloc(n, sizeof(int32_t));
    bc.mask = calloc(n, sizeof(int32_t));
    bc.seg = calloc(n, sizeof(int32_t));
    bc.ref_start = calloc(n, sizeof(float));
    bc.ref_end = calloc(n, sizeof(float));
    assert_true(bc.ids && bc.mask && bc.seg && bc.ref_start && bc.ref_end);
    uint64_t state = seed;
    for (int b = 0; b < batch; b++) {
        int len = lengths[b];
        assert_true(len >= 1 && len <= seq_len);
        for (int t = 0; t < len; t++) {
            float u;
            bq_test_fill_uniform(&u, 1, &state, 0.0f, 1.0f);
            size_t k = (size_t)b * seq_len + t;
            bc.ids[k] = 1 + (int32_t)(u * (float)(m->config.vocab_size - 1)) % (m->config.vocab_size - 1);
            bc.mask[k] = 1;
            bc.seg[k] = t > len / 3 ? 1 : 0;
        }
    }
    bq_cpu_forward *cpu = NULL;
    bq_err err;
    bq_status s = bq_cpu_forward_create(m, batch, seq_len, 0, &cpu, &err);
    if (s != BQ_OK) fail_msg("cpu reference create: %s", err.message);
    s = bq_cpu_forward_run(cpu, batch, seq_len, bc.ids, bc.mask, bc.seg, bc.ref_start, bc.ref_end, &err);
    if (s != BQ_OK) fail_msg("cpu reference run: %s", err.message);
    bq_cpu_forward_free(cpu);
    return bc;
}

static void free_batch(batch_case *bc) {
    free(bc->ids);
    free(bc->mask);
    free(bc->seg);
    free(bc->ref_start);
    free(bc->ref_end);
}

/* ||gpu - cpu|| / ||cpu|| over the start and end logits of the first `batch` rows' real tokens. */
static double real_token_error(const batch_case *bc, int batch, const float *start,
                               const float *end) {
    size_t n = (size_t)batch * bc->seq_len, k = 0;
    float *got = malloc(2 * n * sizeof(float)), *ref = malloc(2 * n * sizeof(float));
    assert_true(got && ref);
    for (size_t i = 0; i < n; i++) {
        if (!bc->mask[i]) continue;
        if (!isfinite(start[i]) || !isfinite(end[i])) {
            printf("  non-finite logit at token %zu (start %g, end %g)\n", i, (double)start[i],
                   (double)end[i]);
            free(got);
            free(ref);
            return NAN;
        }
        got[k] = start[i], ref[k] = bc->ref_start[i], k++;
        got[k] = end[i], ref[k] = bc->ref_end[i], k++;
    }
    double e = bq_test_rel_error(got, ref, k);
    free(got);
    free(ref);
    return e;
}

/* ||gpu - ref|| / ||ref|| over start and end logits of n positions, NaN if any is not finite. */
static double logits_error(const float *start, const float *end, const float *ref_start,
                           const float *ref_end, size_t n) {
    float *got = malloc(2 * n * sizeof(float)), *ref = malloc(2 * n * sizeof(float));
    assert_true(got && ref);
    bool finite = true;
    for (size_t i = 0; i < n; i++) {
        got[2 * i] = start[i], got[2 * i + 1] = end[i];
        ref[2 * i] = ref_start[i], ref[2 * i + 1] = ref_end[i];
        finite = finite && isfinite(start[i]) && isfinite(end[i]);
    }
    const double e = finite ? bq_test_rel_error(got, ref, 2 * n) : NAN;
    free(got);
    free(ref);
    return e;
}

static double tolerance(bq_precision p) { return bq_precision_parity_bound(p); }

/* Options for a CUDA engine of `precision` and attention `attn` for batches up to max_batch x
 * seq_len; everything else at the defaults. */
static bq_engine_options cuda_options(bq_precision precision, bq_attention_impl attn, int max_batch,
                                      int seq_len) {
    bq_engine_options opt;
    bq_engine_options_default(&opt);
    opt.device = BQ_DEVICE_CUDA;
    opt.precision = precision;
    opt.attention = attn;
    opt.max_batch = max_batch;
    opt.seq_len = seq_len;
    return opt;
}

/* `bc` with its rows in reverse order (inputs and reference alike): other tokens at every row
 * position, with no second CPU reference run. */
static batch_case reversed_rows(const batch_case *bc) {
    batch_case r = *bc;
    size_t n = (size_t)bc->batch * bc->seq_len, row = (size_t)bc->seq_len;
    r.ids = malloc(n * sizeof(int32_t)), r.mask = malloc(n * sizeof(int32_t));
    r.seg = malloc(n * sizeof(int32_t));
    r.ref_start = malloc(n * sizeof(float)), r.ref_end = malloc(n * sizeof(float));
    assert_true(r.ids && r.mask && r.seg && r.ref_start && r.ref_end);
    for (int b = 0; b < bc->batch; b++) {
        size_t to = (size_t)b * row, from = (size_t)(bc->batch - 1 - b) * row;
        memcpy(r.ids + to, bc->ids + from, row * sizeof(int32_t));
        memcpy(r.mask + to, bc->mask + from, row * sizeof(int32_t));
        memcpy(r.seg + to, bc->seg + from, row * sizeof(int32_t));
        memcpy(r.ref_start + to, bc->ref_start + from, row * sizeof(float));
        memcpy(r.ref_end + to, bc->ref_end + from, row * sizeof(float));
    }
    return r;
}

/* Run `bc` on a fresh engine - all rows (eager, then its graph is captured), its first row alone
 * (eager + capture), then all rows in reverse order (graph replay: new inputs, so a replay that
 * computed nothing or read stale inputs fails) - and check every result against the CPU
 * reference; with graphs on, a failed capture is a failure too. Returns the number of failed
 * checks after printing each one, so that the caller can run every precision first. */
static int check_engine(const char *shape, const bq_model *m, const batch_case *bc, bq_precision p,
                        bq_attention_impl attn) {
    bq_engine_options opt = cuda_options(p, attn, bc->batch, bc->seq_len);
    bq_cuda_engine *e = NULL;
    bq_err err;
    bq_status s = bq_cuda_engine_create(m, &opt, &e, &err);
    if (s != BQ_OK) {
        printf("FAIL %s %s: engine create: %s\n", shape, bq_precision_name(p), err.message);
        return 1;
    }
    size_t n = (size_t)bc->batch * bc->seq_len;
    float *start = malloc(n * sizeof(float)), *end = malloc(n * sizeof(float));
    assert_true(start && end);
    batch_case reversed = reversed_rows(bc);
    const batch_case *inputs[3] = {bc, bc, &reversed};
    const int batches[3] = {bc->batch, 1, bc->batch};
    const char *runs[3] = {"first", "batch 1", "replay"};
    int failures = 0;
    for (int r = 0; r < 3; r++) {
        int b = batches[r];
        const batch_case *in = inputs[r];
        for (size_t i = 0; i < n; i++) start[i] = end[i] = NAN;
        s = bq_cuda_engine_forward(e, b, in->seq_len, in->ids, in->mask, in->seg, start, end, &err);
        if (s != BQ_OK) {
            printf("FAIL %s %s: forward (%s): %s\n", shape, bq_precision_name(p), runs[r], err.message);
            failures++;
            break; /* the engine's stream may be unusable after a device error */
        }
        double rel = real_token_error(in, b, start, end);
        bool ok = rel <= tolerance(p); /* false for NaN too */
        printf("  %s %-10s %-4s %-5s %-7s batch %d: rel error %.3e (limit %.0e) [%s]\n",
               ok ? "ok  " : "FAIL", shape, bq_precision_name(p),
               attn == BQ_ATTENTION_CUDNN ? "cudnn" : attn == BQ_ATTENTION_AUTO ? "auto" : "own",
               runs[r], b, rel, tolerance(p),
               bq_cuda_engine_describe(e));
        if (!ok) failures++;
    }
    const char *graphs_off = getenv("BQ_NO_CUDA_GRAPH");
    if (!(graphs_off && graphs_off[0] == '1') && strstr(bq_cuda_engine_describe(e), "capture failed")) {
        printf("FAIL %s %s: %s\n", shape, bq_precision_name(p), bq_cuda_engine_describe(e));
        failures++;
    }
    fflush(stdout);
    free_batch(&reversed);
    free(start);
    free(end);
    bq_cuda_engine_free(e);
    return failures;
}

/* Fail the current test when any check_engine call of it failed (they printed the details). */
#define EXPECT_NO_ENGINE_FAILURES(n)                                                  \
    do {                                                                              \
        if ((n) != 0) fail_msg("%d engine check(s) failed; see the FAIL lines above", (n)); \
    } while (0)

#define REQUIRE_GPU()                                                   \
    do {                                                                \
        if (!gpu_available) skip();                                     \
    } while (0)

static const bq_precision all_precisions[4] = {BQ_PRECISION_FP32, BQ_PRECISION_TF32,
                                               BQ_PRECISION_FP16, BQ_PRECISION_BF16};

/* Whether plan p, which should have taken the choices of the plan of donor_rows rows untimed,
 * timed its own instead because cuBLASLt refused the donor's algorithm for its shape (a real
 * library may; the emulator never does): then it must have been timed. Otherwise it must say it
 * shared, with nothing timed. */
static bool shared_or_refused(const bq_gemm_plan_info *p, int donor_rows) {
#ifndef BQ_CUDA_EMULATED
    if (p->shared_from_rows == 0) {
        printf("       (cuBLASLt refused the %d-row shape's algorithm at %d rows: timed)\n",
               donor_rows, p->rows);
        assert_true(p->chosen_ms > 0);
        return true;
    }
#endif
    assert_int_equal(p->shared_from_rows, donor_rows);
    assert_true(p->chosen_ms == 0 && p->first_ms == 0);
    return false;
}

/* The teardown of the tests that set the emulated build's fault hooks: none left for the tests
 * after them, even when an assertion ended one early */
static int unset_fault_hooks(void **state) {
    (void)state;
    unsetenv("BQ_EMU_GEMM_FAULT");
    unsetenv("BQ_EMU_ATTENTION_FAULT");
    unsetenv("BQ_EMU_FUSED_GELU_WRONG");
    unsetenv("BQ_EMU_3XTF32_WRONG");
    unsetenv("BQ_EMU_GEMM_FASTEST");
    unsetenv("BQ_FUSED_GELU");
#ifdef BQ_CUDA_EMULATED
    bq_emu_fail_call(NULL, 0);
    bq_emu_fail_device_alloc_from(0);
    bq_emu_set_device_memory(0);
#endif
    return 0;
}

/* Only the emulated build has the fault hooks (a real build has no way to break a kernel on
 * purpose): elsewhere the test skips. */
#ifdef BQ_CUDA_EMULATED
#define REQUIRE_FAULT_HOOKS() ((void)0)
#else
#define REQUIRE_FAULT_HOOKS()                                                                      \
    do {                                                                                           \
        print_message("skipped: the fault hooks exist in the emulated build only\n");              \
        skip();                                                                                    \
    } while (0)
#endif

#ifdef BQ_HAVE_CUDA
/* ---- the GEMM wrapper alone, so a whole-model failure can be told apart from a GEMM one ------ */

static void *upload_as(const float *x, size_t n, bq_cuda_dtype dt) {
    size_t es = bq_cuda_dtype_size(dt);
    void *d = NULL;
    assert_int_equal(cudaMalloc(&d, n * es), cudaSuccess);
    void *h = malloc(n * es);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++) {
        if (dt == BQ_CUDA_F32) ((float *)h)[i] = x[i];
        else ((uint16_t *)h)[i] = dt == BQ_CUDA_F16 ? bq_f32_to_f16(x[i]) : bq_f32_to_bf16(x[i]);
    }
    assert_int_equal(cudaMemcpy(d, h, n * es, cudaMemcpyHostToDevice), cudaSuccess);
    free(h);
    return d;
}

static void download_as(const void *d, size_t n, bq_cuda_dtype dt, float *out) {
    size_t es = bq_cuda_dtype_size(dt);
    void *h = malloc(n * es);
    assert_non_null(h);
    assert_int_equal(cudaMemcpy(h, d, n * es, cudaMemcpyDeviceToHost), cudaSuccess);
    for (size_t i = 0; i < n; i++) {
        if (dt == BQ_CUDA_F32) out[i] = ((float *)h)[i];
        else {
            uint16_t v = ((uint16_t *)h)[i];
            out[i] = dt == BQ_CUDA_F16 ? bq_f16_to_f32(v) : bq_bf16_to_f32(v);
        }
    }
    free(h);
}

static void round_as(float *x, size_t n, bq_cuda_dtype dt) {
    for (size_t i = 0; i < n; i++) {
        if (dt == BQ_CUDA_F16) x[i] = bq_f16_to_f32(bq_f32_to_f16(x[i]));
        else if (dt == BQ_CUDA_BF16) x[i] = bq_bf16_to_f32(bq_f32_to_bf16(x[i]));
    }
}

/* Host buffers of one GEMM shape: the operands x [R, K], w [N, K], b [N] (as the GPU sees them,
 * filled by gemm_operands) and the check's scratch ref, got [R, N]. */
typedef struct {
    float *x, *w, *b, *ref, *got;
} gemm_host;

static gemm_host gemm_host_alloc(int R, int K, int N) {
    const size_t nx = (size_t)R * K, nw = (size_t)N * K, ny = (size_t)R * N;
    gemm_host h = {malloc(nx * sizeof(float)), malloc(nw * sizeof(float)),
                   malloc((size_t)N * sizeof(float)), malloc(ny * sizeof(float)),
                   malloc(ny * sizeof(float))};
    assert_true(h.x && h.w && h.b && h.ref && h.got);
    return h;
}

static void gemm_host_free(gemm_host *h) {
    free(h->x), free(h->w), free(h->b), free(h->ref), free(h->got);
}

/* The device buffers gemm_operands allocated. */
static void gemm_device_free(void *dx, void *dw, void *db, void *dy) {
    cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dy);
}

/* Fresh operands for a y[R, N] = x[R, K] W[N, K]^T + b GEMM test: x U(-1, 1), W U(-0.1, 0.1),
 * b U(-0.5, 0.5), rounded to dt on the host (so the CPU reference sees the GPU's inputs), uploaded,
 * and y allocated (device buffers in dt; the caller frees them). */
static void gemm_operands(float *x, float *w, float *b, int R, int K, int N, bq_cuda_dtype dt,
                          uint64_t *seed, void **dx, void **dw, void **db, void **dy) {
    size_t nx = (size_t)R * K, nw = (size_t)N * K, ny = (size_t)R * N;
    bq_test_fill_uniform(x, nx, seed, -1.0f, 1.0f);
    bq_test_fill_uniform(w, nw, seed, -0.1f, 0.1f);
    bq_test_fill_uniform(b, (size_t)N, seed, -0.5f, 0.5f);
    round_as(x, nx, dt);
    round_as(w, nw, dt);
    round_as(b, (size_t)N, dt);
    *dx = upload_as(x, nx, dt);
    *dw = upload_as(w, nw, dt);
    *db = upload_as(b, (size_t)N, dt);
    *dy = NULL;
    assert_int_equal(cudaMalloc(dy, ny * bq_cuda_dtype_size(dt)), cudaSuccess);
}

/* Check y (device, dt) against bq_cpu_linear (+ bias, + erf GELU when gelu) on the host operands:
 * every element written and finite, normwise error within tol; prints one line. ref and got are
 * [R, N] host scratch. Returns whether it passed. */
static bool gemm_output_ok(const char *what, const void *dy, const float *x, const float *w,
                           const float *b, int gelu, int R, int K, int N, bq_cuda_dtype dt,
                           const char *dt_name, double tol, float *ref, float *got) {
    size_t ny = (size_t)R * N, unwritten = 0;
    download_as(dy, ny, dt, got);
    bq_cpu_linear(x, w, gelu ? NULL : b, R, K, N, ref);
    if (gelu) bq_cpu_bias_gelu(ref, b, R, N);
    for (size_t i = 0; i < ny; i++) unwritten += !isfinite(got[i]);
    double rel = unwritten ? NAN : bq_test_rel_error(got, ref, ny);
    bool ok = rel <= tol; /* false for NaN */
    printf("  %s %s rows %4d in %4d out %4d %-4s rel error %.3e (limit %.0e)%s\n",
           ok ? "ok  " : "FAIL", what, R, K, N, dt_name, rel, tol,
           unwritten ? " (outputs not written / not finite)" : "");
    return ok;
}

/* y = x W^T (+ b) (+ GELU) for odd and model-sized shapes, every dtype and epilogue, against
 * bq_cpu_linear / bq_cpu_bias_gelu on the same (dtype-rounded) inputs. Limits: fp32 1e-5, tf32
 * 3e-3, fp16 2e-3 and bf16 1e-2 (output rounding 2^-11 and 2^-8 plus accumulation order). */
static void test_gemm_linear(void **state) {
    (void)state;
    REQUIRE_GPU();
    /* 600 rows: at least BQ_FUSED_GELU_MIN_ROWS, so 16-bit BIAS_GELU takes the CUTLASS kernel on
     * Hopper builds that have it */
    const struct { int rows, in, out; } shapes[] = {{7, 32, 96}, {99, 64, 48},
#ifndef BQ_CUDA_EMULATED /* the model-sized ones: ~45 s on the emulator's host cuBLASLt */
                                                   {130, 1024, 3072}, {384, 4096, 1024},
#endif
                                                   {600, 256, 520}};
    const struct { bq_cuda_dtype dt; int tf32; double tol; const char *name; } modes[] = {
        {BQ_CUDA_F32, 0, 1e-5, "fp32"}, {BQ_CUDA_F32, 1, 3e-3, "tf32"},
        {BQ_CUDA_F16, 0, 2e-3, "fp16"}, {BQ_CUDA_BF16, 0, 1e-2, "bf16"}};
    const bq_epilogue eps[3] = {BQ_EPILOGUE_NONE, BQ_EPILOGUE_BIAS, BQ_EPILOGUE_BIAS_GELU};
    const char *ep_names[3] = {"none", "bias", "bias+gelu"};
    bq_gemm_ctx *g = NULL;
    bq_err err;
    if (bq_gemm_ctx_create(&g, (size_t)32 << 20, &err) != BQ_OK) fail_msg("gemm ctx: %s", err.message);
    uint64_t seed = 99;
    int failures = 0; /* every shape and mode runs and prints before the test fails */
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int R = shapes[si].rows, K = shapes[si].in, N = shapes[si].out;
        size_t ny = (size_t)R * N;
        gemm_host h = gemm_host_alloc(R, K, N);
        for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
            bq_cuda_dtype dt = modes[mi].dt;
            void *dx, *dw, *db, *dy;
            gemm_operands(h.x, h.w, h.b, R, K, N, dt, &seed, &dx, &dw, &db, &dy);
            for (int e = 0; e < 3; e++) {
                /* NaN poison, so that an output the GEMM never writes fails; BQ_TEST_NO_POISON=1
                 * (the device run's initcheck of this test) leaves the first epilogue's output
                 * unwritten instead, so that initcheck says whether it sees the GEMM's writes */
                const char *no_poison = getenv("BQ_TEST_NO_POISON");
                if (e > 0 || !no_poison || strcmp(no_poison, "1") != 0)
                    assert_int_equal(cudaMemset(dy, 0xFF, ny * bq_cuda_dtype_size(dt)), cudaSuccess);
                bq_status s = bq_gemm_linear(g, dx, dw, db, R, K, N, dy, dt, modes[mi].tf32, eps[e],
                                             0, &err);
                if (s != BQ_OK) fail_msg("gemm %dx%dx%d %s: %s", R, K, N, modes[mi].name, err.message);
                assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
                char what[64];
                snprintf(what, sizeof what, "gemm %-9s", ep_names[e]);
                failures += !gemm_output_ok(what, dy, h.x, h.w,
                                            eps[e] == BQ_EPILOGUE_NONE ? NULL : h.b,
                                            eps[e] == BQ_EPILOGUE_BIAS_GELU, R, K, N, dt,
                                            modes[mi].name, modes[mi].tol, h.ref, h.got);
            }
            gemm_device_free(dx, dw, db, dy);
        }
        gemm_host_free(&h);
    }
    /* the shapes' candidates were compared with their stage's reference before the timing, and
     * none differed (on a card: every cuBLASLt algorithm and CUTLASS tiling these shapes met) */
    bq_gemm_plan_info plans[64];
    const int n_plans = bq_gemm_ctx_plans(g, plans, 64);
    int timed = 0, checked = 0;
    for (int i = 0; i < n_plans; i++) {
        const bq_gemm_plan_info *p = &plans[i];
        const double bound = strcmp(p->dtype, "fp32") == 0 ? 1e-4 : 2e-2;
        timed += p->first_ms > 0 || p->chosen_ms > 0; /* none with BQ_GEMM_AUTOTUNE=0 */
        checked += p->checked;
        if (p->disagreeing || !(p->worst_diff <= bound)) {
            printf("  FAIL gemm %d x %d -> %d %s %s: %d candidate(s) of %d left out, largest "
                   "difference %.2e (bound %.0e)\n", p->rows, p->in, p->out, p->dtype, p->epilogue,
                   p->disagreeing, p->candidates, p->worst_diff, bound);
            failures++;
        }
    }
    printf("  %d of %d GEMM shapes timed, %d with their candidates' outputs compared\n", timed,
           n_plans, checked);
    if (timed && !checked) {
        printf("  FAIL no timed shape compared its candidates' outputs\n");
        failures++;
    }
    bq_gemm_ctx_free(g);
    if (failures) fail_msg("%d GEMM check(s) failed; see the FAIL lines above", failures);
}

/* Plan info of the GEMM shape (rows, in, out, epilogue name) a context holds; fails when absent. */
static bq_gemm_plan_info plan_of(const bq_gemm_ctx *g, int rows, int in, int out,
                                 const char *epilogue) {
    bq_gemm_plan_info plans[32];
    const int n = bq_gemm_ctx_plans(g, plans, 32);
    for (int i = 0; i < n; i++)
        if (plans[i].rows == rows && plans[i].in == in && plans[i].out == out &&
            strcmp(plans[i].epilogue, epilogue) == 0)
            return plans[i];
    fail_msg("no GEMM plan of %d x %d -> %d (%s)", rows, in, out, epilogue);
    return plans[0];
}

/* A GEMM candidate whose output differs from its stage's reference on the first call's operands
 * is timed but never kept. The emulated build has a hook for this (BQ_EMU_GEMM_FAULT=all spoils
 * every candidate's output but the reference's, in the check only); a real build has no way to
 * break a kernel on purpose, so on a GPU this test is skipped (test_gemm_linear checks there that
 * no candidate differs). At 512 rows the emulated heuristic's two algorithms that run and their
 * split-K variants are candidates: with all but cuBLASLt's first choice spoiled, the first must be
 * kept, every other left out, and the output still that of the CPU. fp32 and fp16, bias and
 * bias + GELU. Then with only BQ_EMU_GEMM_FAULT_ELEMENTS elements of each candidate's output zeroed
 * (=elements): in fp16 the norm of that difference stays under the bound (checked here on the CPU
 * output), so only the worst element's difference can leave them out, and must. */
static void test_gemm_candidate_disagrees(void **state) {
    (void)state;
    REQUIRE_FAULT_HOOKS();
    REQUIRE_GPU();
    const int R = 512, K = 64, N = 96;
    const struct { bq_cuda_dtype dt; double tol, bound; const char *name; } modes[] = {
        {BQ_CUDA_F32, 1e-5, 1e-4, "fp32"}, {BQ_CUDA_F16, 2e-3, 2e-2, "fp16"}};
    const bq_epilogue eps[2] = {BQ_EPILOGUE_BIAS, BQ_EPILOGUE_BIAS_GELU};
    const char *ep_names[2] = {"bias", "bias_gelu"};
    uint64_t seed = 23;
    int failures = 0;
    gemm_host h = gemm_host_alloc(R, K, N);
    static const char *const faults[3] = {NULL, "all", "elements"};
    for (int spoiled = 0; spoiled < 3; spoiled++) {
        if (spoiled) assert_int_equal(setenv("BQ_EMU_GEMM_FAULT", faults[spoiled], 1), 0);
        for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
            bq_gemm_ctx *g = NULL; /* one a mode: plan_of tells shapes apart, not dtypes */
            bq_err err;
            if (bq_gemm_ctx_create(&g, (size_t)32 << 20, &err) != BQ_OK)
                fail_msg("gemm ctx: %s", err.message);
            void *dx, *dw, *db, *dy;
            gemm_operands(h.x, h.w, h.b, R, K, N, modes[mi].dt, &seed, &dx, &dw, &db, &dy);
            for (int e = 0; e < 2; e++) {
                if (bq_gemm_linear(g, dx, dw, db, R, K, N, dy, modes[mi].dt, 0, eps[e], 0, &err) !=
                    BQ_OK)
                    fail_msg("gemm %s: %s", modes[mi].name, err.message);
                assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
                char what[64];
                snprintf(what, sizeof what, "%-8s %-9s", spoiled ? faults[spoiled] : "clean",
                         ep_names[e]);
                failures += !gemm_output_ok(what, dy, h.x, h.w, h.b, eps[e] == BQ_EPILOGUE_BIAS_GELU,
                                            R, K, N, modes[mi].dt, modes[mi].name, modes[mi].tol,
                                            h.ref, h.got);
                if (spoiled == 2 && modes[mi].dt != BQ_CUDA_F32) {
                    /* the premise: zeroing those elements of the right output moves its norm by
                     * less than the bound, its worst element by more; for bias + GELU both of
                     * the outputs checked (the GEMM's before the GELU, then the GELU paths') */
                    const size_t ny = (size_t)R * N, at = ny / 2;
                    for (int stage = 0; stage <= (eps[e] == BQ_EPILOGUE_BIAS_GELU); stage++) {
                        if (stage == 0 && eps[e] == BQ_EPILOGUE_BIAS_GELU)
                            bq_cpu_linear(h.x, h.w, h.b, R, K, N, h.got); /* before the GELU */
                        const float *out = stage == 0 && eps[e] == BQ_EPILOGUE_BIAS_GELU ? h.got
                                                                                     : h.ref;
                        double zeroed2 = 0.0, all2 = 0.0, zeroed_max = 0.0, all_max = 0.0;
                        for (size_t i = 0; i < ny; i++) {
                            const double r = out[i];
                            all2 += r * r;
                            all_max = fmax(all_max, fabs(r));
                            if (i >= at && i < at + BQ_EMU_GEMM_FAULT_ELEMENTS) {
                                zeroed2 += r * r;
                                zeroed_max = fmax(zeroed_max, fabs(r));
                            }
                        }
                        const double element = zeroed_max / all_max / BQ_NORMWISE_ELEMENT_SLACK;
                        printf("       %d elements zeroed%s: normwise %.2e, worst element %.2e "
                               "(bound %.0e)\n", BQ_EMU_GEMM_FAULT_ELEMENTS,
                               eps[e] != BQ_EPILOGUE_BIAS_GELU ? ""
                               : stage == 0                    ? " before the GELU"
                                                               : " after it",
                               sqrt(zeroed2 / all2), element, modes[mi].bound);
                        assert_true(sqrt(zeroed2 / all2) < modes[mi].bound);
                        assert_true(element > modes[mi].bound);
                    }
                }
                const bq_gemm_plan_info p = plan_of(g, R, K, N, ep_names[e]);
                printf("       algorithm %d of %d kept, %d left out, largest difference %.2e%s%s\n",
                       p.chosen, p.candidates, p.disagreeing, p.worst_diff,
                       p.gelu_path[0] ? "; GELU path " : "", p.gelu_path);
                /* 3 algorithms (one refuses) and 3 split-K variants of each that runs */
                assert_int_equal(p.candidates, 3 + 3 * 3);
                assert_int_equal(p.checked, 1);
                /* in 16 bits, bias + GELU also has the four fused tilings (the emulated build's
                 * stand-in for the CUTLASS kernel) */
                const int fused = eps[e] == BQ_EPILOGUE_BIAS_GELU && modes[mi].dt != BQ_CUDA_F32;
                if (spoiled) {
                    assert_int_equal(p.chosen, 0);
                    assert_int_equal(p.disagreeing, 2 + 2 * 3 - 1 + (fused ? BQ_GELU_TILE_COUNT : 0));
                    assert_true(p.worst_diff > modes[mi].bound);
                    if (fused) assert_string_equal(p.gelu_path, "unfused");
                } else {
                    assert_int_equal(p.disagreeing, 0);
                    assert_true(p.worst_diff <= modes[mi].bound);
                }
            }
            gemm_device_free(dx, dw, db, dy);
            bq_gemm_ctx_free(g);
        }
        unsetenv("BQ_EMU_GEMM_FAULT");
    }
    gemm_host_free(&h);
    if (failures) fail_msg("%d GEMM check(s) failed; see the FAIL lines above", failures);
}

/* y = x W^T + b, GELU, on g (fp16/bf16, R x K -> N) under the timed choices or, with first, the
 * whole-pass comparison's first choices (the untimed GELU rule); checked against the CPU. Returns
 * whether it passed. */
static bool fused_case_ok(bq_gemm_ctx *g, const char *what, int first, int R, int K, int N,
                          bq_cuda_dtype dt, const char *dt_name, double tol, uint64_t *seed) {
    gemm_host h = gemm_host_alloc(R, K, N);
    void *dx, *dw, *db, *dy;
    gemm_operands(h.x, h.w, h.b, R, K, N, dt, seed, &dx, &dw, &db, &dy);
    bq_err err;
    /* prefer_first applies to the shapes a context has: a new one's first call makes its plan */
    for (int call = 0; call < 1 + first; call++) {
        bq_gemm_ctx_prefer_first(g, R, first);
        if (bq_gemm_linear(g, dx, dw, db, R, K, N, dy, dt, 0, BQ_EPILOGUE_BIAS_GELU, 0, &err) != BQ_OK)
            fail_msg("%s: %s", what, err.message);
    }
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    const bool ok = gemm_output_ok(what, dy, h.x, h.w, h.b, 1, R, K, N, dt, dt_name, tol, h.ref, h.got);
    gemm_device_free(dx, dw, db, dy);
    gemm_host_free(&h);
    return ok;
}

/* A fused GEMM + GELU tiling that is wrong (the emulated build's stand-in leaving the bias out,
 * BQ_EMU_FUSED_GELU_WRONG=all or a tiling's name, as the CUTLASS kernel might on some card) never
 * gives a caller its output: the check leaves it out when the shape is timed, and the untimed
 * rule that the whole-pass comparison's first choices use (the large tiling from 512 rows) does
 * not run it either: not on the timed shape, not on a shape that takes the timed one's decisions
 * (from 1024 rows up here), not on a context that takes them as presets (a tuning cache). fp16
 * and bf16; the engine on the tiny model too. Emulated build only. */
static void test_fused_gelu_wrong(void **state) {
    (void)state;
    REQUIRE_FAULT_HOOKS();
    REQUIRE_GPU();
    const int R = 512, K = 64, N = 96;
    const struct { bq_cuda_dtype dt; double tol; const char *name; } modes[] = {
        {BQ_CUDA_F16, 2e-3, "fp16"}, {BQ_CUDA_BF16, 1e-2, "bf16"}};
    const struct { const char *wrong; int left_out; } faults[] = {{"all", BQ_GELU_TILE_COUNT},
                                                                  {"large", 1}};
    uint64_t seed = 29;
    int failures = 0;
    for (size_t fi = 0; fi < sizeof faults / sizeof *faults; fi++) {
        assert_int_equal(setenv("BQ_EMU_FUSED_GELU_WRONG", faults[fi].wrong, 1), 0);
        for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
            const bq_cuda_dtype dt = modes[mi].dt;
            const char *name = modes[mi].name;
            const double tol = modes[mi].tol;
            bq_gemm_ctx *g = NULL, *again = NULL;
            bq_err err;
            if (bq_gemm_ctx_create(&g, (size_t)32 << 20, &err) != BQ_OK ||
                bq_gemm_ctx_create(&again, (size_t)32 << 20, &err) != BQ_OK)
                fail_msg("gemm ctx: %s", err.message);
            bq_gemm_ctx_share_from(g, R); /* the first shape of R rows decides for the rest */
            printf("  wrong fused tiling(s): %s\n", faults[fi].wrong);
            failures += !fused_case_ok(g, "timed", 0, R, K, N, dt, name, tol, &seed);
            failures += !fused_case_ok(g, "first choices", 1, R, K, N, dt, name, tol, &seed);
            const bq_gemm_plan_info p = plan_of(g, R, K, N, "bias_gelu");
            printf("       GELU path %s; %d candidate(s) left out, largest difference %.2e\n",
                   p.gelu_path, p.disagreeing, p.worst_diff);
            assert_int_equal(p.disagreeing, faults[fi].left_out);
            if (strcmp(faults[fi].wrong, "all") == 0) assert_string_equal(p.gelu_path, "unfused");
            assert_string_not_equal(p.gelu_path, "fused-large");
            assert_true(p.fused_large_ms > 0); /* timed all the same */
            /* a shape that takes this one's decisions, untimed */
            failures += !fused_case_ok(g, "shared, first choices", 1, 2 * R, K, N, dt, name, tol, &seed);
            assert_int_equal(plan_of(g, 2 * R, K, N, "bias_gelu").shared_from_rows, R);
            /* another context with them as presets, as an engine reading a tuning cache */
            bq_gemm_decision kept[8];
            const int n_kept = bq_gemm_ctx_decisions(g, kept, 8, NULL);
            assert_in_range(n_kept, 1, 8);
            for (int i = 0; i < n_kept; i++)
                if (bq_gemm_ctx_preset(again, &kept[i], &err) != BQ_OK) fail_msg("preset: %s", err.message);
            failures += !fused_case_ok(again, "preset, first choices", 1, R, K, N, dt, name, tol, &seed);
            assert_int_equal(plan_of(again, R, K, N, "bias_gelu").from_cache, 1);
            bq_gemm_ctx_free(again);
            bq_gemm_ctx_free(g);
        }
    }
    /* BQ_FUSED_GELU=0 (the device run's fallback) never runs a fused tiling, under the first
     * choices either */
    assert_int_equal(setenv("BQ_EMU_FUSED_GELU_WRONG", "all", 1), 0);
    assert_int_equal(setenv("BQ_FUSED_GELU", "0", 1), 0);
    bq_gemm_ctx *g = NULL;
    bq_err err;
    if (bq_gemm_ctx_create(&g, (size_t)32 << 20, &err) != BQ_OK) fail_msg("gemm ctx: %s", err.message);
    failures += !fused_case_ok(g, "BQ_FUSED_GELU=0, first choices", 1, R, K, N, BQ_CUDA_F16, "fp16",
                               2e-3, &seed);
    assert_true(plan_of(g, R, K, N, "bias_gelu").fused_large_ms == 0); /* not even timed */
    bq_gemm_ctx_free(g);
    unsetenv("BQ_FUSED_GELU");
    /* the whole engine, whose FFN-in GEMM has the fused paths in fp16 */
    random_model *r = random_model_create(64, 2, 128, 2, 300, 128, 31);
    const int lengths[2] = {128, 77};
    batch_case bc = make_batch(&r->model, 2, 128, lengths, 12);
    failures += check_engine("wrong fused", &r->model, &bc, BQ_PRECISION_FP16, BQ_ATTENTION_OWN);
    free_batch(&bc);
    random_model_free(r);
    unsetenv("BQ_EMU_FUSED_GELU_WRONG"); /* the teardown does it too */
    if (failures) fail_msg("%d check(s) failed; see the FAIL lines above", failures);
}

/* bq_gemm_ctx_share_from: from 1024 rows up a new GEMM shape runs the choice of the decided one
 * nearest in rows, untimed, and computes the same as the CPU; below, it times its own. On the
 * emulator the 1024-row shape is preset to a split-K candidate, which the 1056-row shape (past
 * gemm.cu's split-K rows, so not among its candidates) must add through cublasLtMatmulAlgoCheck;
 * on a GPU the 1024-row shape times its candidates and the rest follows. fp16, bias and bias +
 * GELU. */
static void test_gemm_shared_choices(void **state) {
    (void)state;
    REQUIRE_GPU();
    const int K = 64, N = 96, rows[4] = {1024, 1056, 512, 4096};
    const bq_epilogue eps[2] = {BQ_EPILOGUE_BIAS, BQ_EPILOGUE_BIAS_GELU};
    const char *ep_names[2] = {"bias", "bias_gelu"};
    bq_gemm_ctx *g = NULL;
    bq_err err;
    if (bq_gemm_ctx_create(&g, (size_t)32 << 20, &err) != BQ_OK) fail_msg("gemm ctx: %s", err.message);
    bq_gemm_ctx_share_from(g, 1024);
#ifdef BQ_CUDA_EMULATED
    /* the emulated heuristic's 3 algorithms + 3 split-K variants of each; candidate 3 is the
     * first algorithm with K cut in 2 */
    for (int e = 0; e < 2; e++) {
        const bq_gemm_decision d = {1024, K, N, BQ_CUDA_F16, 0, (int)eps[e], 3 + 3 * 3, 3, -1, 0};
        if (bq_gemm_ctx_preset(g, &d, &err) != BQ_OK) fail_msg("preset: %s", err.message);
    }
#endif
    uint64_t seed = 5;
    int failures = 0;
    for (int ri = 0; ri < 4; ri++) {
        const int R = rows[ri];
        gemm_host h = gemm_host_alloc(R, K, N);
        void *dx, *dw, *db, *dy;
        gemm_operands(h.x, h.w, h.b, R, K, N, BQ_CUDA_F16, &seed, &dx, &dw, &db, &dy);
        for (int e = 0; e < 2; e++) {
            assert_int_equal(cudaMemset(dy, 0xFF, (size_t)R * N * 2), cudaSuccess);
            if (bq_gemm_linear(g, dx, dw, db, R, K, N, dy, BQ_CUDA_F16, 0, eps[e], 0, &err) != BQ_OK)
                fail_msg("gemm %d rows: %s", R, err.message);
            assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
            char what[64];
            snprintf(what, sizeof what, "shared %-9s", ep_names[e]);
            failures += !gemm_output_ok(what, dy, h.x, h.w, h.b, eps[e] == BQ_EPILOGUE_BIAS_GELU, R,
                                        K, N, BQ_CUDA_F16, "fp16", 2e-3, h.ref, h.got);
            const bq_gemm_plan_info p = plan_of(g, R, K, N, ep_names[e]);
            printf("       %d rows %s: algorithm %d of %d, split-K %d, shared from %d rows, "
                   "timed %.4f ms; GELU path %s\n", R, ep_names[e], p.chosen, p.candidates,
                   p.chosen_splitk, p.shared_from_rows, p.chosen_ms, p.gelu_path);
            if (R == 1024) {
                assert_int_equal(p.shared_from_rows, 0);
#ifdef BQ_CUDA_EMULATED
                assert_int_equal(p.from_cache, 1);
                assert_int_equal(p.chosen_splitk, 2);
#else
                assert_true(p.from_cache || p.chosen_ms > 0);
#endif
            } else if (R == 512) { /* below the rows that share: timed */
                assert_int_equal(p.shared_from_rows, 0);
                assert_true(p.chosen_ms > 0 && p.first_ms > 0);
            } else if (!shared_or_refused(&p, R == 1056 ? 1024 : 1056)) {
                /* the nearest decided shape from 1024 rows up (1056 for 4096): its algorithm
                 * and GELU path */
                const bq_gemm_plan_info donor = plan_of(g, p.shared_from_rows, K, N, ep_names[e]);
                assert_int_equal(p.chosen_splitk, donor.chosen_splitk);
                assert_string_equal(p.gelu_path, donor.gelu_path);
#ifdef BQ_CUDA_EMULATED
                /* past 1024 rows no split-K candidates: the donor's was added, last */
                assert_int_equal(p.candidates, 3 + 1);
                assert_int_equal(p.chosen, 3);
#endif
            }
        }
        gemm_device_free(dx, dw, db, dy);
        gemm_host_free(&h);
    }
    /* what a tuning cache keeps: the timed and preset shapes (1024 and 512 rows, and any whose
     * donor's algorithm cuBLASLt refused), never the shared ones */
    bq_gemm_decision kept[16];
    const int n_kept = bq_gemm_ctx_decisions(g, kept, 16, NULL);
    assert_in_range(n_kept, 4, 16);
    for (int i = 0; i < n_kept; i++)
        assert_int_equal(plan_of(g, kept[i].rows, K, N, ep_names[kept[i].ep == BQ_EPILOGUE_BIAS_GELU])
                             .shared_from_rows, 0);
    bq_gemm_ctx_free(g);
    if (failures) fail_msg("%d GEMM check(s) failed; see the FAIL lines above", failures);
}

/* A GEMM context created with BQ_FP32_3XTF32 = mode (read at create; unset again at once). */
static bq_gemm_ctx *gemm_ctx_with_3xtf32(const char *mode) {
    assert_int_equal(setenv("BQ_FP32_3XTF32", mode, 1), 0);
    bq_gemm_ctx *g = NULL;
    bq_err err;
    const bq_status st = bq_gemm_ctx_create(&g, (size_t)32 << 20, &err);
    unsetenv("BQ_FP32_3XTF32");
    if (st != BQ_OK) fail_msg("gemm ctx: %s", err.message);
    return g;
}

/* The 3xTF32 fp32 GEMM (gemm_3xtf32.cuh, CUTLASS, sm_90a) called directly, with and without a
 * bias, against bq_cpu_linear at the fp32 limit 1e-5 (the point of it: tensor cores at fp32
 * accuracy; plain TF32 misses this by two orders); then through bq_gemm_linear with
 * BQ_FP32_3XTF32=1, where it is timed against the SGEMM path, and =force, where it runs
 * whatever the timing says, every epilogue at the same limit. Where the build or the card has no
 * such kernel: =force must fail with a message, and the rest skips. The emulated build runs its
 * stand-in (the same arithmetic done plainly, gemm_3xtf32.cu) on shapes of at most 2^26
 * multiply-adds. */
static void test_gemm_3xtf32(void **state) {
    (void)state;
    REQUIRE_GPU();
    uint64_t seed = 41;
    {
        const int R = 100, K = 64, N = 96;
        gemm_host h = gemm_host_alloc(R, K, N);
        void *dx, *dw, *db, *dy;
        gemm_operands(h.x, h.w, h.b, R, K, N, BQ_CUDA_F32, &seed, &dx, &dw, &db, &dy);
        const cudaError_t rc = bq_cuda_gemm_3xtf32((const float *)dx, (const float *)dw, NULL, R,
                                                   K, N, (float *)dy, 0);
        if (rc == cudaErrorNotSupported) {
            bq_gemm_ctx *g = gemm_ctx_with_3xtf32("force");
            bq_err err;
            const bq_status st = bq_gemm_linear(g, dx, dw, db, R, K, N, dy, BQ_CUDA_F32, 0,
                                                BQ_EPILOGUE_BIAS, 0, &err);
            bq_gemm_ctx_free(g);
            gemm_device_free(dx, dw, db, dy);
            gemm_host_free(&h);
            assert_int_equal(st, BQ_ERR_UNSUPPORTED);
            assert_non_null(strstr(err.message, "BQ_FP32_3XTF32=force"));
            printf("  no 3xTF32 kernel here; force refused: %s\n", err.message);
            skip(); /* no CUTLASS in this build, or not compute capability 9.0 */
        }
        assert_int_equal(rc, cudaSuccess);
        gemm_device_free(dx, dw, db, dy);
        gemm_host_free(&h);
    }
#ifdef BQ_CUDA_EMULATED /* the stand-in refuses more than 2^26 multiply-adds */
    const struct { int rows, in, out; } shapes[] = {{100, 64, 96}, {384, 128, 128}, {130, 512, 64}};
    const int R = 384, K = 64, N = 128; /* through the GEMM layer, below */
#else
    const struct { int rows, in, out; } shapes[] = {{100, 64, 96}, {384, 1024, 1024},
                                                    {130, 4096, 1024}};
    const int R = 384, K = 1024, N = 4096;
#endif
    int failures = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int R = shapes[si].rows, K = shapes[si].in, N = shapes[si].out;
        gemm_host h = gemm_host_alloc(R, K, N);
        void *dx, *dw, *db, *dy;
        gemm_operands(h.x, h.w, h.b, R, K, N, BQ_CUDA_F32, &seed, &dx, &dw, &db, &dy);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            assert_int_equal(cudaMemset(dy, 0xFF, (size_t)R * N * sizeof(float)), cudaSuccess);
            assert_int_equal(bq_cuda_gemm_3xtf32((const float *)dx, (const float *)dw,
                                                 with_bias ? (const float *)db : NULL, R, K, N,
                                                 (float *)dy, 0),
                             cudaSuccess);
            assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
            failures += !gemm_output_ok(with_bias ? "3xtf32 bias" : "3xtf32 none", dy, h.x, h.w,
                                        with_bias ? h.b : NULL, 0, R, K, N, BQ_CUDA_F32, "fp32",
                                        1e-5, h.ref, h.got);
        }
        gemm_device_free(dx, dw, db, dy);
        gemm_host_free(&h);
    }
    /* through the GEMM layer: timed against SGEMM, then forced */
    const bq_epilogue eps[3] = {BQ_EPILOGUE_NONE, BQ_EPILOGUE_BIAS, BQ_EPILOGUE_BIAS_GELU};
    const char *ep_names[3] = {"none", "bias", "bias_gelu"};
    gemm_host h = gemm_host_alloc(R, K, N);
    void *dx, *dw, *db, *dy;
    gemm_operands(h.x, h.w, h.b, R, K, N, BQ_CUDA_F32, &seed, &dx, &dw, &db, &dy);
    for (int forced = 0; forced < 2; forced++) {
        bq_gemm_ctx *g = gemm_ctx_with_3xtf32(forced ? "force" : "1");
        for (int e = 0; e < 3; e++) {
            bq_err err;
            assert_int_equal(cudaMemset(dy, 0xFF, (size_t)R * N * sizeof(float)), cudaSuccess);
            if (bq_gemm_linear(g, dx, dw, db, R, K, N, dy, BQ_CUDA_F32, 0, eps[e], 0, &err) != BQ_OK)
                fail_msg("gemm: %s", err.message);
            assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
            char what[64];
            snprintf(what, sizeof what, "layer %s %-9s", forced ? "forced" : "timed", ep_names[e]);
            failures += !gemm_output_ok(what, dy, h.x, h.w, eps[e] == BQ_EPILOGUE_NONE ? NULL : h.b,
                                        eps[e] == BQ_EPILOGUE_BIAS_GELU, R, K, N, BQ_CUDA_F32,
                                        "fp32", 1e-5, h.ref, h.got);
            const bq_gemm_plan_info p = plan_of(g, R, K, N, ep_names[e]);
            printf("       %s: %s (SGEMM path %.4f ms, 3xTF32 %.4f ms)\n", ep_names[e],
                   p.runs_fp32x3 ? "3xTF32" : "SGEMM", p.sgemm_ms, p.fp32x3_ms);
            assert_true(p.sgemm_ms > 0 && p.fp32x3_ms > 0);
            assert_int_equal(p.runs_fp32x3, forced || p.fp32x3_ms < p.sgemm_ms);
        }
        bq_gemm_ctx_free(g);
    }
    gemm_device_free(dx, dw, db, dy);
    gemm_host_free(&h);
    if (failures) fail_msg("%d GEMM check(s) failed; see the FAIL lines above", failures);
}

/* A "3xTF32" kernel that computes in plain TF32 (the emulated build's stand-in under
 * BQ_EMU_3XTF32_WRONG=tf32: its big.big product only) misses fp32's 1e-5 by far: the GEMM layer's
 * output check (1e-4 in true fp32) must leave it out of the choice, say so in the plan, and give
 * the SGEMM path's output, even where it times fastest (BQ_EMU_GEMM_FASTEST=last: the stand-in
 * runs far slower than the emulated SGEMM, so without it the timing alone would keep SGEMM);
 * the right stand-in timed fastest is kept, its output within 1e-5. Called directly, the
 * premise: the wrong kernel misses 1e-4 against the CPU, the right one meets 1e-5. The emulated
 * build only; then, with BQ_FP32_3XTF32=force, a shape the kernel refuses (in not a multiple of
 * 4) fails with a message, and =1 runs it on the SGEMM path. */
static void test_gemm_3xtf32_plain_tf32(void **state) {
    (void)state;
    REQUIRE_FAULT_HOOKS();
    REQUIRE_GPU();
    const int R = 384, K = 64, N = 128;
    uint64_t seed = 43;
    gemm_host h = gemm_host_alloc(R, K, N);
    void *dx, *dw, *db, *dy;
    gemm_operands(h.x, h.w, h.b, R, K, N, BQ_CUDA_F32, &seed, &dx, &dw, &db, &dy);
    bq_cpu_linear(h.x, h.w, h.b, R, K, N, h.ref);
    int failures = 0;
    assert_int_equal(setenv("BQ_EMU_GEMM_FASTEST", "last", 1), 0);
    for (int wrong = 0; wrong < 2; wrong++) {
        if (wrong) assert_int_equal(setenv("BQ_EMU_3XTF32_WRONG", "tf32", 1), 0);
        assert_int_equal(bq_cuda_gemm_3xtf32((const float *)dx, (const float *)dw,
                                             (const float *)db, R, K, N, (float *)dy, 0),
                         cudaSuccess);
        assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
        download_as(dy, (size_t)R * N, BQ_CUDA_F32, h.got);
        const double rel = bq_test_rel_error(h.got, h.ref, (size_t)R * N);
        printf("  3xTF32 stand-in%s alone: rel error %.3e\n", wrong ? ", plain TF32," : "", rel);
        if (wrong) assert_true(rel > 1e-4 && rel < 1e-2);
        else assert_true(rel < 1e-5);

        bq_gemm_ctx *g = gemm_ctx_with_3xtf32("1");
        bq_err err;
        assert_int_equal(cudaMemset(dy, 0xFF, (size_t)R * N * sizeof(float)), cudaSuccess);
        if (bq_gemm_linear(g, dx, dw, db, R, K, N, dy, BQ_CUDA_F32, 0, BQ_EPILOGUE_BIAS, 0, &err) !=
            BQ_OK)
            fail_msg("gemm: %s", err.message);
        assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
        failures += !gemm_output_ok(wrong ? "plain-TF32 3xTF32 timed fastest"
                                          : "3xTF32 timed fastest",
                                    dy, h.x, h.w, h.b, 0, R, K, N, BQ_CUDA_F32, "fp32", 1e-5,
                                    h.ref, h.got);
        const bq_gemm_plan_info p = plan_of(g, R, K, N, "bias");
        printf("       %s kept, %d left out, largest difference %.2e (SGEMM path %.4f ms, 3xTF32 "
               "%.4f ms)\n", p.runs_fp32x3 ? "3xTF32" : "SGEMM", p.disagreeing, p.worst_diff,
               p.sgemm_ms, p.fp32x3_ms);
        assert_int_equal(p.checked, 1);
        assert_true(p.fp32x3_ms > 0 && p.fp32x3_ms < p.sgemm_ms); /* the hook's doing */
        assert_int_equal(p.runs_fp32x3, !wrong);
        assert_int_equal(p.disagreeing, wrong);
        if (wrong) assert_true(p.worst_diff > 1e-4);
        bq_gemm_ctx_free(g);
    }
    unsetenv("BQ_EMU_3XTF32_WRONG");
    unsetenv("BQ_EMU_GEMM_FASTEST");
    gemm_device_free(dx, dw, db, dy);
    gemm_host_free(&h);

    /* a shape the kernel refuses: =force says so, =1 takes the SGEMM path */
    const int RR = 8, KR = 66, NR = 8;
    gemm_host hr = gemm_host_alloc(RR, KR, NR);
    gemm_operands(hr.x, hr.w, hr.b, RR, KR, NR, BQ_CUDA_F32, &seed, &dx, &dw, &db, &dy);
    for (int forced = 1; forced >= 0; forced--) {
        bq_gemm_ctx *g = gemm_ctx_with_3xtf32(forced ? "force" : "1");
        bq_err err;
        const bq_status st = bq_gemm_linear(g, dx, dw, db, RR, KR, NR, dy, BQ_CUDA_F32, 0,
                                            BQ_EPILOGUE_BIAS, 0, &err);
        if (forced) {
            assert_int_equal(st, BQ_ERR_UNSUPPORTED);
            assert_non_null(strstr(err.message, "BQ_FP32_3XTF32=force"));
            printf("  in = 66, forced: %s\n", err.message);
        } else {
            assert_int_equal(st, BQ_OK);
            assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
            failures += !gemm_output_ok("in = 66, 3xTF32 refused", dy, hr.x, hr.w, hr.b, 0, RR,
                                        KR, NR, BQ_CUDA_F32, "fp32", 1e-5, hr.ref, hr.got);
            assert_int_equal(plan_of(g, RR, KR, NR, "bias").runs_fp32x3, 0);
        }
        bq_gemm_ctx_free(g);
    }
    gemm_device_free(dx, dw, db, dy);
    gemm_host_free(&hr);
    if (failures) fail_msg("%d GEMM check(s) failed; see the FAIL lines above", failures);
}

/* The fused CUTLASS GEMM + bias + erf-GELU called directly (bq_gemm_linear would fall back to
 * cuBLASLt + the GELU kernel without saying so), all three tilings (large, stream-K, ping-pong),
 * fp16 and bf16, against bq_cpu_linear + bq_cpu_bias_gelu on the same rounded inputs: rows that
 * are not multiples of the 128-row tile, outputs not multiples of 256, the BERT-large FFN shapes at
 * batch 1 (384 rows; K = 4096 gives stream-K long K loops to split) and at 2-3 sequences. Same
 * limits as above. */
static void test_gemm_bias_gelu_fused(void **state) {
    (void)state;
    REQUIRE_GPU();
    if (!bq_cuda_gemm_bias_gelu_built()) {
        printf("  fused GEMM + GELU not built (no CUTLASS at configure time, or not sm_90)\n");
        skip();
    }
    const struct { int rows, in, out; } shapes[] = {{1, 8, 8},           {130, 64, 136},
                                                   {1000, 1024, 4096}, {768, 1024, 4096},
                                                   {384, 1024, 4096},  {384, 4096, 1024}};
    const struct { bq_cuda_dtype dt; double tol; const char *name; } modes[] = {
        {BQ_CUDA_F16, 2e-3, "fp16"}, {BQ_CUDA_BF16, 1e-2, "bf16"}};
    void *workspace = NULL;
    const size_t workspace_bytes = (size_t)32 << 20;
    assert_int_equal(cudaMalloc(&workspace, workspace_bytes), cudaSuccess);
    uint64_t seed = 7;
    int failures = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int R = shapes[si].rows, K = shapes[si].in, N = shapes[si].out;
        size_t ny = (size_t)R * N;
        gemm_host h = gemm_host_alloc(R, K, N);
        for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
            bq_cuda_dtype dt = modes[mi].dt;
            void *dx, *dw, *db, *dy;
            gemm_operands(h.x, h.w, h.b, R, K, N, dt, &seed, &dx, &dw, &db, &dy);
            for (int tile = BQ_GELU_TILE_LARGE; tile < BQ_GELU_TILE_COUNT; tile++) {
                static const char *const names[BQ_GELU_TILE_COUNT] = {"fused gemm+gelu (large tiles)",
                                                    "fused gemm+gelu (small, stream-K)",
                                                    "fused gemm+gelu (ping-pong)",
                                                    "fused gemm+gelu (small ping-pong)"};
                const char *what = names[tile];
                assert_int_equal(cudaMemset(dy, 0xFF, ny * bq_cuda_dtype_size(dt)), cudaSuccess);
                cudaError_t rc = bq_cuda_gemm_bias_gelu(dx, dw, db, R, K, N, dy, dt,
                                                        (bq_gelu_tile)tile, workspace,
                                                        workspace_bytes, 0);
                if (rc == cudaErrorNotSupported) {
                    printf("  %s refused %dx%dx%d %s on this device: skipped\n", what, R, K, N,
                           modes[mi].name);
                    continue;
                }
                if (rc != cudaSuccess)
                    fail_msg("%s %dx%dx%d %s: %s", what, R, K, N, modes[mi].name,
                             cudaGetErrorString(rc));
                assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
                failures += !gemm_output_ok(what, dy, h.x, h.w, h.b, 1, R, K, N, dt,
                                            modes[mi].name, modes[mi].tol, h.ref, h.got);
            }
            gemm_device_free(dx, dw, db, dy);
        }
        gemm_host_free(&h);
    }
    cudaFree(workspace);
    if (failures) fail_msg("%d fused GEMM check(s) failed; see the FAIL lines above", failures);
}
#endif

/* ---- tests -------------------------------------------------------------------------------- */

/* The engine in every precision (own attention) on one batch; returns the failures. */
/* BQ_TEST_PRECISION=fp32,tf32 (a comma list; unset: all four) limits check_every_precision: the
 * device run's initcheck step runs the 32-bit modes alone (see bench/gpu-check.sh). */
static bool precision_selected(bq_precision p) {
    const char *list = getenv("BQ_TEST_PRECISION");
    if (!list || !list[0]) return true;
    const char *name = bq_precision_name(p);
    const size_t n = strlen(name);
    for (const char *at = strstr(list, name); at; at = strstr(at + 1, name))
        if ((at == list || at[-1] == ',') && (at[n] == ',' || at[n] == '\0')) return true;
    return false;
}

static int check_every_precision(const char *label, const bq_model *m, const batch_case *bc) {
    int failures = 0;
    for (int i = 0; i < 4; i++)
        if (precision_selected(all_precisions[i]))
            failures += check_engine(label, m, bc, all_precisions[i], BQ_ATTENTION_OWN);
        else
            printf("  %s %s skipped (BQ_TEST_PRECISION)\n", label, bq_precision_name(all_precisions[i]));
    return failures;
}

/* head size 8, S = 33 (odd), 2 layers, three rows of lengths 33, 20, 7 */
static void test_tiny_every_precision(void **state) {
    (void)state;
    REQUIRE_GPU();
    random_model *r = random_model_create(32, 4, 64, 2, 120, 64, 11);
    const int lengths[3] = {33, 20, 7};
    batch_case bc = make_batch(&r->model, 3, 33, lengths, 5);
    int failures = check_every_precision("tiny", &r->model, &bc);
    free_batch(&bc);
    random_model_free(r);
    EXPECT_NO_ENGINE_FAILURES(failures);
}

/* head size 64 (2 heads x 64), S = 64, lengths 64, 41 */
static void test_head64_every_precision(void **state) {
    (void)state;
    REQUIRE_GPU();
    random_model *r = random_model_create(128, 2, 256, 2, 300, 128, 12);
    const int lengths[2] = {64, 41};
    batch_case bc = make_batch(&r->model, 2, 64, lengths, 6);
    int failures = check_every_precision("head64", &r->model, &bc);
    free_batch(&bc);
    random_model_free(r);
    EXPECT_NO_ENGINE_FAILURES(failures);
}

/* The same checks with CUDA graphs turned off (the eager path on every call). */
static void test_without_graphs(void **state) {
    (void)state;
    REQUIRE_GPU();
    setenv("BQ_NO_CUDA_GRAPH", "1", 1);
    random_model *r = random_model_create(128, 2, 256, 2, 300, 128, 13);
    const int lengths[2] = {17, 64};
    batch_case bc = make_batch(&r->model, 2, 64, lengths, 7);
    int failures = check_engine("no-graph", &r->model, &bc, BQ_PRECISION_FP32, BQ_ATTENTION_OWN);
    failures += check_engine("no-graph", &r->model, &bc, BQ_PRECISION_FP16, BQ_ATTENTION_OWN);
    unsetenv("BQ_NO_CUDA_GRAPH");
    free_batch(&bc);
    random_model_free(r);
    EXPECT_NO_ENGINE_FAILURES(failures);
}

/* BERT-large shape: 24 x 1024, 16 heads of 64, FFN 4096, S = 384, rows of 384 and 171 tokens. */
static void test_large_every_precision(void **state) {
    (void)state;
    REQUIRE_GPU();
    const char *large = getenv("BQ_TEST_LARGE");
    if (!large || strcmp(large, "1") != 0) {
        printf("  BERT-large shape skipped (set BQ_TEST_LARGE=1)\n");
        skip();
    }
    random_model *r = random_model_create(1024, 16, 4096, 24, 30522, 512, 14);
    const int lengths[2] = {384, 171};
    batch_case bc = make_batch(&r->model, 2, 384, lengths, 8);
    int failures = check_every_precision("large", &r->model, &bc);
    bq_cuda_engine *e = NULL;
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_CUDNN, 2, 384);
    bq_err err;
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) == BQ_OK) {
        bq_cuda_engine_free(e);
        failures += check_engine("large", &r->model, &bc, BQ_PRECISION_FP16, BQ_ATTENTION_CUDNN);
        failures += check_engine("large", &r->model, &bc, BQ_PRECISION_BF16, BQ_ATTENTION_CUDNN);
    } else {
        printf("  large cudnn attention not checked: %s\n", err.message);
    }
    free_batch(&bc);
    random_model_free(r);
    EXPECT_NO_ENGINE_FAILURES(failures);
}

/* One forward pass of the first `batch` sequences of bc on e (a batch size's first pass makes the
 * engine's choices for it); fails the test on an error. The logits are not looked at. */
static void forward_batch(bq_cuda_engine *e, const batch_case *bc, int batch, const char *label) {
    const size_t n = (size_t)batch * bc->seq_len;
    float *start = malloc(n * sizeof(float)), *end = malloc(n * sizeof(float));
    assert_true(start && end);
    bq_err err;
    if (bq_cuda_engine_forward(e, batch, bc->seq_len, bc->ids, bc->mask, bc->seg, start, end, &err) != BQ_OK)
        fail_msg("%s forward, batch %d: %s", label, batch, err.message);
    free(start), free(end);
}

/* The fastest of our kernel's tilings in `t` (all four mma.sync ones must have been timed, and
 * the wgmma one exactly where it can run), and its name (the engine keeps the first of equals, in
 * this order). */
static double fastest_own(const bq_attention_times *t) {
    assert_true(t->own_ms > 0 && t->own128_ms > 0 && t->own32_ms > 0 && t->own64k3_ms > 0);
#ifdef BQ_HAVE_CUDA
    const int wgmma = bq_cuda_attention_tiling_available(BQ_ATTENTION_WGMMA128);
#else
    const int wgmma = 0; /* never reached without CUDA: REQUIRE_GPU skips first */
#endif
    assert_true(wgmma ? t->own_wgmma_ms > 0 : t->own_wgmma_ms == 0);
    assert_true(wgmma ? t->own_wgmma_overlap_ms > 0 : t->own_wgmma_overlap_ms == 0);
    double best = t->own_ms;
    if (t->own128_ms < best) best = t->own128_ms;
    if (t->own32_ms < best) best = t->own32_ms;
    if (t->own64k3_ms < best) best = t->own64k3_ms;
    if (wgmma && t->own_wgmma_ms < best) best = t->own_wgmma_ms;
    if (wgmma && t->own_wgmma_overlap_ms < best) best = t->own_wgmma_overlap_ms;
    return best;
}

static const char *own_choice_name(const bq_attention_times *t) {
    const double best = fastest_own(t);
    return best == t->own_ms       ? "own"
           : best == t->own128_ms  ? "own-128"
           : best == t->own32_ms   ? "own-32"
           : best == t->own64k3_ms ? "own-64k3"
           : best == t->own_wgmma_ms ? "own-wgmma"
                                     : "own-wgmma-overlap";
}

/* Our attention's tilings (64-, 128- and 32-row blocks, 64-row blocks with the keys split in
 * three, and 128 rows on wgmma where the build and device have it; fp16/bf16 at head size 64):
 * the engine times every available one on a batch size's first pass and keeps the fastest, with
 * no cuDNN in the running under --attention own (on the emulator wgmma wins); fp32 has one kernel
 * and nothing to decide. The logits match the CPU reference whichever wins (check_engine); each
 * tiling is checked on its own in test_gpu_ops.
 * Runs on the emulator too. */
static void test_attention_tiling_choice(void **state) {
    (void)state;
    REQUIRE_GPU();
    random_model *r = random_model_create(128, 2, 256, 1, 300, 128, 17);
    const int lengths[2] = {128, 50};
    batch_case bc = make_batch(&r->model, 2, 128, lengths, 10);
    int failures = check_engine("tiling", &r->model, &bc, BQ_PRECISION_BF16, BQ_ATTENTION_OWN);
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_OWN, 2, 128);
    bq_cuda_engine *e = NULL;
    bq_err err;
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("own: %s", err.message);
    assert_non_null(strstr(bq_cuda_engine_describe(e), "64-, 128- or 32-row blocks"));
    assert_non_null(strstr(bq_cuda_engine_describe(e), "keys split"));
    assert_string_equal(bq_cuda_engine_attention_choice(e, 2, NULL), "undecided");
    forward_batch(e, &bc, 2, "own");
    bq_attention_times t;
    const char *choice = bq_cuda_engine_attention_choice(e, 2, &t);
    printf("  own attention at batch 2: %s (64 rows %.4f ms, 128 rows %.4f, 32 rows %.4f, 64 rows "
           "with the keys split in three %.4f, wgmma in 128 rows %.4f, overlapped %.4f per layer)\n",
           choice, t.own_ms, t.own128_ms, t.own32_ms, t.own64k3_ms, t.own_wgmma_ms,
           t.own_wgmma_overlap_ms);
    assert_true(t.cudnn_ms == 0.0); /* not a candidate under own */
    /* every tiling's output against the 64-row one's before timing: rounding apart, the same */
    printf("  largest difference of a tiling's output from the 64-row tiling's: %.2e\n", t.worst_diff);
    assert_true(t.worst_diff < 2e-2);
    assert_string_equal(t.disagreeing, "");
    assert_string_equal(choice, own_choice_name(&t));
    assert_string_equal(bq_cuda_engine_attention_choice(e, 1, NULL), "undecided");
    assert_string_equal(bq_cuda_engine_attention_choice(e, 3, NULL), "none");
    bq_cuda_engine_free(e);

    /* fp32: one kernel, decided from the start, nothing timed */
    opt = cuda_options(BQ_PRECISION_FP32, BQ_ATTENTION_OWN, 2, 128);
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("fp32: %s", err.message);
    assert_null(strstr(bq_cuda_engine_describe(e), "row blocks"));
    forward_batch(e, &bc, 2, "fp32");
    assert_string_equal(bq_cuda_engine_attention_choice(e, 2, &t), "own");
    assert_true(t.own_ms == 0.0 && t.own128_ms == 0.0 && t.own32_ms == 0.0 && t.own64k3_ms == 0.0 &&
                t.own_wgmma_ms == 0.0 && t.own_wgmma_overlap_ms == 0.0);
    bq_cuda_engine_free(e);
    free_batch(&bc);
    random_model_free(r);
    EXPECT_NO_ENGINE_FAILURES(failures);
}

/* A tiling whose output disagrees with the 64-row tiling's on the first pass's inputs is timed
 * but never kept. The emulated engine has a hook for this (BQ_EMU_ATTENTION_FAULT=<name>, or
 * "all", spoils those candidates' outputs in the engine's check only; "refuse-all" makes their
 * runs there fail as a refused launch would); a real build has no way to break a kernel on
 * purpose, so on a GPU this test is skipped. With every other tiling spoiled the 64-row reference
 * must be kept, though on the emulator it is seldom the fastest (wgmma is); with every other
 * tiling refused, it must be kept and the others left out of the timing. */
static void test_attention_candidate_disagrees(void **state) {
    (void)state;
    REQUIRE_FAULT_HOOKS();
    REQUIRE_GPU();
    random_model *r = random_model_create(128, 2, 256, 1, 300, 128, 17);
    const int lengths[2] = {128, 50};
    batch_case bc = make_batch(&r->model, 2, 128, lengths, 10);
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_OWN, 2, 128);
    bq_cuda_engine *e = NULL;
    bq_err err;
    assert_int_equal(setenv("BQ_EMU_ATTENTION_FAULT", "all", 1), 0);
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("own: %s", err.message);
    forward_batch(e, &bc, 2, "spoiled");
    bq_attention_times t;
    const char *choice = bq_cuda_engine_attention_choice(e, 2, &t);
    printf("  every tiling but the 64-row one spoiled: kept %s; disagreeing \"%s\", largest "
           "difference %.2e; fastest own tiling %s\n", choice, t.disagreeing, t.worst_diff,
           own_choice_name(&t));
    assert_string_equal(choice, "own");
    assert_string_equal(t.disagreeing, "own-128,own-32,own-64k3,own-wgmma,own-wgmma-overlap");
    assert_true(t.worst_diff > 2e-2);
    fastest_own(&t); /* every tiling still timed */
    bq_cuda_engine_free(e);
    /* the whole engine still matches the CPU reference (check_engine) */
    int failures = check_engine("spoiled", &r->model, &bc, BQ_PRECISION_FP16, BQ_ATTENTION_OWN);

    /* every other candidate's run refused (as a launch configuration a card rejects): left out
     * of the timing too, the pass goes on, and the engine's description says why */
    assert_int_equal(setenv("BQ_EMU_ATTENTION_FAULT", "refuse-all", 1), 0);
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("own: %s", err.message);
    forward_batch(e, &bc, 2, "refused");
    choice = bq_cuda_engine_attention_choice(e, 2, &t);
    printf("  every tiling but the 64-row one refused: kept %s; disagreeing \"%s\"; %s\n", choice,
           t.disagreeing, bq_cuda_engine_describe(e));
    assert_string_equal(choice, "own");
    assert_string_equal(t.disagreeing, "own-128,own-32,own-64k3,own-wgmma,own-wgmma-overlap");
    assert_true(isinf(t.worst_diff));
    assert_true(t.own_ms > 0 && t.own128_ms == 0 && t.own32_ms == 0 && t.own64k3_ms == 0 &&
                t.own_wgmma_ms == 0 && t.own_wgmma_overlap_ms == 0);
    assert_non_null(strstr(bq_cuda_engine_describe(e), "attention failed at batch 2, left out"));
    bq_cuda_engine_free(e);
    failures += check_engine("refused", &r->model, &bc, BQ_PRECISION_FP16, BQ_ATTENTION_OWN);
    free_batch(&bc); /* the teardown unsets the hook */
    random_model_free(r);
    EXPECT_NO_ENGINE_FAILURES(failures);
}

/* The first `batch` rows of bc cut to `len` positions ([batch, len] arrays), run on e; the logits
 * go back to bc's [batch, seq_len] layout (NaN past len) for real_token_error. */
static bq_status forward_trimmed(bq_cuda_engine *e, const batch_case *bc, int batch, int len,
                                 float *start, float *end, bq_err *err) {
    const size_t S = (size_t)bc->seq_len, L = (size_t)len;
    int32_t *ids = malloc(batch * L * sizeof(int32_t)), *mask = malloc(batch * L * sizeof(int32_t));
    int32_t *seg = malloc(batch * L * sizeof(int32_t));
    float *s_t = malloc(batch * L * sizeof(float)), *e_t = malloc(batch * L * sizeof(float));
    assert_true(ids && mask && seg && s_t && e_t);
    for (int b = 0; b < batch; b++) {
        memcpy(ids + b * L, bc->ids + b * S, L * sizeof(int32_t));
        memcpy(mask + b * L, bc->mask + b * S, L * sizeof(int32_t));
        memcpy(seg + b * L, bc->seg + b * S, L * sizeof(int32_t));
    }
    bq_status st = bq_cuda_engine_forward(e, batch, len, ids, mask, seg, s_t, e_t, err);
    for (size_t i = 0; i < (size_t)batch * S; i++) start[i] = end[i] = NAN;
    for (int b = 0; st == BQ_OK && b < batch; b++) {
        memcpy(start + b * S, s_t + b * L, L * sizeof(float));
        memcpy(end + b * S, e_t + b * L, L * sizeof(float));
    }
    free(ids), free(mask), free(seg), free(s_t), free(e_t);
    return st;
}

/* Batches cut short of the engine's length (the SQuAD pipeline's length buckets): each (batch,
 * length) is a shape of its own, with its own timed choices and graph, and its real tokens'
 * logits match the CPU reference run at the full length. Lengths 80 (not a multiple of the
 * attention's 64-key tiles: the tail is zero-filled) and 64, eager then graph replay, in fp16
 * (mma.sync tilings, head size 64) and fp32; the full-length shape stays undecided meanwhile.
 * An engine with cuDNN's attention refuses shorter lengths. Runs on the emulator too. */
static void test_trimmed_passes(void **state) {
    (void)state;
    REQUIRE_GPU();
    random_model *r = random_model_create(128, 2, 256, 1, 300, 128, 18);
    const int lengths[2] = {78, 61};
    batch_case bc = make_batch(&r->model, 2, 128, lengths, 13);
    batch_case reversed = reversed_rows(&bc);
    float start[2 * 128], end[2 * 128];
    int failures = 0;
    const bq_precision precisions[2] = {BQ_PRECISION_FP16, BQ_PRECISION_FP32};
    for (int pi = 0; pi < 2; pi++) {
        const bq_precision p = precisions[pi];
        bq_engine_options opt = cuda_options(p, BQ_ATTENTION_OWN, 2, 128);
        bq_cuda_engine *e = NULL;
        bq_err err;
        if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("create: %s", err.message);
        /* (batch, len, rows): 80 eager, 80 replayed on other rows, 64 (row 1 only fits), 80 at batch 1 */
        const int runs[4][2] = {{2, 80}, {2, 80}, {1, 64}, {1, 80}};
        for (int k = 0; k < 4; k++) {
            const batch_case *in = k == 1 || k == 2 ? &reversed : &bc; /* reversed row 0 is 61 long */
            const int b = runs[k][0], len = runs[k][1];
            if (forward_trimmed(e, in, b, len, start, end, &err) != BQ_OK)
                fail_msg("%s trimmed forward (batch %d, length %d): %s", bq_precision_name(p), b, len,
                         err.message);
            const double rel = real_token_error(in, b, start, end);
            const bool ok = rel <= tolerance(p);
            printf("  %s trimmed %-4s batch %d length %d: rel error %.3e (limit %.0e)\n",
                   ok ? "ok  " : "FAIL", bq_precision_name(p), b, len, rel, tolerance(p));
            failures += !ok;
        }
        if (p == BQ_PRECISION_FP16)
            assert_string_equal(bq_cuda_engine_attention_choice(e, 2, NULL), "undecided");
        assert_string_equal(bq_cuda_engine_gemm_choice(e, 2, NULL, NULL), "undecided");
        assert_null(strstr(bq_cuda_engine_describe(e), "capture failed"));
        bq_cuda_engine_free(e);
    }
    /* cuDNN's attention is planned for the full length */
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_CUDNN, 2, 128);
    bq_cuda_engine *e = NULL;
    bq_err err;
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) == BQ_OK) {
        assert_int_equal(forward_trimmed(e, &bc, 2, 80, start, end, &err), BQ_ERR_UNSUPPORTED);
        assert_non_null(strstr(err.message, "full length"));
        bq_cuda_engine_free(e);
    } else {
        printf("  cudnn refusal not checked: %s\n", err.message);
    }
    free_batch(&reversed);
    free_batch(&bc);
    random_model_free(r);
    EXPECT_NO_ENGINE_FAILURES(failures);
}

/* Packed passes against the CPU reference's packed forward, in fp16 (the mma.sync path, the
 * tiling timed on each packed shape's first pass) and fp32, on one engine: 2 rows of 128 holding 5
 * sequences of 1 to 100 tokens back to back (two across the row boundary); another layout of the
 * same shape (replayed from the first one's graph, with its own offsets); a trimmed pass (1 row of 64 holding 2 sequences: a shape of its own); then a padded
 * pass (whose mask reuses the buffer that held the packed positions). An engine created with
 * cuDNN's attention refuses packing. Runs on the emulator. */
static void test_packed_passes(void **state) {
    (void)state;
    REQUIRE_GPU();
    enum { B = 2, S = 128, PASSES = 4 };
    random_model *r = random_model_create(128, 2, 256, 1, 300, S, 20);
    const int full[B] = {S, S};
    batch_case bc = make_batch(&r->model, B, S, full, 15); /* padded reference: every token real */
    static const struct {
        int batch, length, n_seqs;
        int32_t offsets[11];
        const char *name;
    } passes[PASSES] = {{B, S, 5, {0, 100, 101, 166, 230, B * S}, "packed 100 1 65 64 26"},
                        {B, S, 5, {0, 26, 90, 155, 156, B * S}, "packed 26 64 65 1 100"},
                        {1, 64, 2, {0, 30, 64}, "packed 1 x 64: 30 34"},
                        {B, S, 10, {0, 3, 40, 41, 90, 128, 129, 200, 230, 250, B * S},
                         "packed 10 sequences (capacity 16, the first's tiling)"}};
    static float ref[PASSES][2][B * S]; /* [pass][start, end] */
    bq_cpu_forward *cpu = NULL;
    bq_err err;
    if (bq_cpu_forward_create(&r->model, B, S, 0, &cpu, &err) != BQ_OK) fail_msg("cpu: %s", err.message);
    for (int k = 0; k < PASSES; k++)
        if (bq_cpu_forward_run_packed(cpu, passes[k].batch, passes[k].length, passes[k].n_seqs,
                                      passes[k].offsets, bc.ids, bc.seg, ref[k][0], ref[k][1],
                                      &err) != BQ_OK)
            fail_msg("cpu packed: %s", err.message);
    bq_cpu_forward_free(cpu);
    float start[B * S], end[B * S];
    int failures = 0;
    const bq_precision precisions[2] = {BQ_PRECISION_FP16, BQ_PRECISION_FP32};
    for (int pi = 0; pi < 2; pi++) {
        const bq_precision p = precisions[pi];
        bq_engine_options opt = cuda_options(p, BQ_ATTENTION_AUTO, B, S);
        bq_cuda_engine *e = NULL;
        if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("create: %s", err.message);
        for (int k = 0; k <= PASSES; k++) {
            const int packed = k < PASSES;
            bq_status st = packed ? bq_cuda_engine_forward_packed(e, passes[k].batch, passes[k].length,
                                                                  passes[k].n_seqs, passes[k].offsets,
                                                                  bc.ids, bc.seg, start, end, &err)
                                  : bq_cuda_engine_forward(e, B, S, bc.ids, bc.mask, bc.seg, start,
                                                           end, &err);
            if (st != BQ_OK) fail_msg("%s forward %d: %s", bq_precision_name(p), k, err.message);
            const double rel =
                packed ? logits_error(start, end, ref[k][0], ref[k][1],
                                      (size_t)passes[k].batch * (size_t)passes[k].length)
                       : real_token_error(&bc, B, start, end);
            const bool ok = rel <= tolerance(p);
            printf("  %s %-4s %s: rel error %.3e (limit %.0e)\n", ok ? "ok  " : "FAIL",
                   bq_precision_name(p), packed ? passes[k].name : "padded after", rel, tolerance(p));
            failures += !ok;
        }
        assert_null(strstr(bq_cuda_engine_describe(e), "capture failed"));
        /* the second layout replayed the first one's graph (5 sequences: both fit a capacity of
         * 8); the trimmed pass, the one of 10 sequences (capacity 16, which takes the attention
         * tiling the first one timed) and the padded one are shapes of their own */
        int shapes = 0;
        double seconds = 0.0;
        bq_cuda_engine_first_passes(e, &shapes, &seconds);
        assert_int_equal(shapes, 4);
        /* a mask NULL is packing's alone: padded passes, timed or profiled, still need one */
        double stage_ms[BQ_STAGE_COUNT];
        assert_int_equal(bq_cuda_engine_forward(e, B, S, bc.ids, NULL, bc.seg, start, end, &err),
                         BQ_ERR_INVALID_ARG);
        assert_int_equal(bq_cuda_engine_profile(e, B, bc.ids, NULL, bc.seg, stage_ms, &err),
                         BQ_ERR_INVALID_ARG);
        bq_cuda_engine_free(e);
    }
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_CUDNN, B, S);
    bq_cuda_engine *e = NULL;
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) == BQ_OK) {
        assert_int_equal(bq_cuda_engine_forward_packed(e, B, S, passes[0].n_seqs, passes[0].offsets,
                                                       bc.ids, bc.seg, start, end, &err),
                         BQ_ERR_UNSUPPORTED);
        assert_non_null(strstr(err.message, "cuDNN"));
        bq_cuda_engine_free(e);
    } else {
        printf("  cudnn refusal not checked: %s\n", err.message);
    }
    free_batch(&bc);
    random_model_free(r);
    EXPECT_NO_ENGINE_FAILURES(failures);
}

/* The first line of a file starting with `prefix` (static buffer), or NULL. */
static const char *file_line(const char *path, const char *prefix, int *count) {
    static char line[1200], found[1200];
    FILE *f = fopen(path, "r");
    *count = 0;
    if (!f) return NULL;
    found[0] = '\0';
    while (fgets(line, sizeof line, f))
        if (strncmp(line, prefix, strlen(prefix)) == 0 && (*count)++ == 0) snprintf(found, sizeof found, "%s", line);
    fclose(f);
    return *count ? found : NULL;
}

/* The tuning cache: a tuned engine writes its GEMM and attention decisions to the file, a second
 * engine of the same key takes them untimed (every GEMM shape and the pass shape) and still
 * matches the CPU reference (its plans say they came from the cache); an engine of another
 * precision adds its own section and keeps the first; a second section of one key is dropped; a
 * damaged line is noted and skipped; a file that is not a cache is neither read nor overwritten.
 * Runs on the emulator too. */
static void test_tuning_cache(void **state) {
    (void)state;
    REQUIRE_GPU();
    enum { B = 2, S = 64 };
    random_model *r = random_model_create(128, 2, 256, 1, 300, S, 23);
    const int lengths[B] = {64, 41};
    batch_case bc = make_batch(&r->model, B, S, lengths, 16);
    char *dir = bq_test_tmpdir("tuning");
    assert_non_null(dir);
    char path[1024], foreign[1024];
    snprintf(path, sizeof path, "%s/tuning.txt", dir);
    snprintf(foreign, sizeof foreign, "%s/notes.txt", dir);
    float start[B * S], end[B * S];
    bq_err err;
    int count = 0;
    const bq_precision precisions[3] = {BQ_PRECISION_FP16, BQ_PRECISION_FP32, BQ_PRECISION_FP16};
    int fp16_gemm_lines = 0;
    for (int run = 0; run < 3; run++) {
        bq_engine_options opt = cuda_options(precisions[run], BQ_ATTENTION_AUTO, B, S);
        opt.tuning_cache = path;
        bq_cuda_engine *e = NULL;
        if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("create: %s", err.message);
        const char *desc = bq_cuda_engine_describe(e);
        printf("  run %d (%s): %s\n", run, bq_precision_name(precisions[run]), desc);
        /* a first run finds no file; the fp32 engine no section of its own; the third its own */
        assert_non_null(strstr(desc, run == 0 ? "none yet" : run == 1 ? "nothing yet" : "GEMM and"));
        if (bq_cuda_engine_forward(e, B, S, bc.ids, bc.mask, bc.seg, start, end, &err) != BQ_OK)
            fail_msg("forward: %s", err.message);
        const double rel = real_token_error(&bc, B, start, end);
        printf("  run %d rel error %.3e (limit %.0e)\n", run, rel, tolerance(precisions[run]));
        assert_true(rel <= tolerance(precisions[run]));
        int gemm_taken = -1, shapes_taken = -1;
        bq_cuda_engine_tuning_cache(e, &gemm_taken, &shapes_taken);
        if (run < 2) {
            assert_int_equal(gemm_taken, 0);
            assert_int_equal(shapes_taken, 0);
        } else { /* every GEMM shape run 0 timed, and the pass shape */
            assert_int_equal(gemm_taken, fp16_gemm_lines);
            assert_int_equal(shapes_taken, 1);
        }
        bq_gemm_plan_info plans[8];
        const int n_plans = bq_cuda_engine_gemm_plans(e, plans, 8);
        for (int i = 0; i < n_plans && i < 8; i++) /* bench reports them so, not "not timed" */
            assert_int_equal(plans[i].from_cache, run == 2);
        assert_int_equal(bq_cuda_engine_save_tuning(e, &err), BQ_OK);
        bq_cuda_engine_free(e);
        assert_non_null(file_line(path, "bertqa-gpu tuning cache", &count));
        if (run == 0) {
            /* QKV, out, FFN in, FFN out at 128 rows; the padded shape */
            assert_non_null(file_line(path, "gemm ", &fp16_gemm_lines));
            assert_int_equal(fp16_gemm_lines, 4);
            assert_non_null(file_line(path, "shape 2 64 0 ", &count));
        }
        assert_non_null(file_line(path, "key ", &count));
        assert_int_equal(count, run == 0 ? 1 : 2); /* the fp32 section joins, the fp16 one stays */
    }
    /* a second section of the fp16 key (the file's last key line) is dropped on the next save */
    char last_key[1200] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1200];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "key ", 4) == 0) snprintf(last_key, sizeof last_key, "%s", line);
    fclose(f);
    f = fopen(path, "a");
    assert_non_null(f);
    fprintf(f, "%sshape 7 64 0 1 0\n", last_key);
    fclose(f);
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_AUTO, B, S);
    opt.tuning_cache = path;
    bq_cuda_engine *e = NULL;
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("create: %s", err.message);
    assert_int_equal(bq_cuda_engine_save_tuning(e, &err), BQ_OK);
    bq_cuda_engine_free(e);
    assert_non_null(file_line(path, "key ", &count));
    assert_int_equal(count, 2);
    assert_null(file_line(path, "shape 7 ", &count));
    /* a damaged line: noted, the decisions before it kept */
    f = fopen(path, "a");
    assert_non_null(f);
    fputs("gemm 1 2 three\n", f);
    fclose(f);
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("create: %s", err.message);
    printf("  damaged: %s\n", bq_cuda_engine_describe(e));
    assert_non_null(strstr(bq_cuda_engine_describe(e), "does not parse"));
    bq_cuda_engine_free(e);
    /* a number past INT_MAX is a damaged line too; another key's section with a 3,000-byte line
     * is kept whole through a save */
    char *long_line = malloc(3100);
    assert_non_null(long_line);
    snprintf(long_line, 3100, "key another card | ");
    for (size_t i = strlen(long_line); i < 3000; i++) long_line[i] = (char)('a' + i % 26);
    long_line[3000] = '\0';
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "bertqa-gpu tuning cache 1\n%sgemm 99999999999 64 192 1 0 1 12 0 -1 0\n%s\nshape 1 2 0 0 0\n",
            last_key, long_line);
    fclose(f);
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("create: %s", err.message);
    assert_non_null(strstr(bq_cuda_engine_describe(e), "line 3 does not parse"));
    assert_int_equal(bq_cuda_engine_save_tuning(e, &err), BQ_OK);
    bq_cuda_engine_free(e);
    char *saved = NULL;
    size_t saved_len = 0;
    assert_int_equal(bq_read_file(path, &saved, &saved_len, &err), BQ_OK);
    char *kept = strstr(saved, long_line);
    assert_non_null(kept);
    assert_true(kept[3000] == '\n' && strncmp(kept + 3001, "shape 1 2 0 0 0\n", 16) == 0);
    free(saved);
    free(long_line);
    /* two engines alive at once (tf32, and fp32 at length 32: keys of their own) share the file: the
     * later save keeps the earlier one's section, read again at the save */
    {
        int keys_before = 0;
        assert_non_null(file_line(path, "key ", &keys_before));
        bq_engine_options o1 = cuda_options(BQ_PRECISION_TF32, BQ_ATTENTION_AUTO, B, S);
        bq_engine_options o2 = cuda_options(BQ_PRECISION_FP32, BQ_ATTENTION_AUTO, B, S);
        o1.tuning_cache = o2.tuning_cache = path;
        o2.seq_len = S / 2;
        bq_cuda_engine *e1 = NULL, *e2 = NULL;
        if (bq_cuda_engine_create(&r->model, &o1, &e1, &err) != BQ_OK) fail_msg("create: %s", err.message);
        if (bq_cuda_engine_create(&r->model, &o2, &e2, &err) != BQ_OK) fail_msg("create: %s", err.message);
        assert_int_equal(bq_cuda_engine_forward(e1, B, S, bc.ids, bc.mask, bc.seg, start, end, &err), BQ_OK);
        assert_int_equal(bq_cuda_engine_save_tuning(e1, &err), BQ_OK);
        assert_int_equal(bq_cuda_engine_save_tuning(e2, &err), BQ_OK);
        bq_cuda_engine_free(e1);
        bq_cuda_engine_free(e2);
        assert_non_null(file_line(path, "key ", &count));
        assert_int_equal(count, keys_before + 2);
        char *text = NULL;
        assert_int_equal(bq_read_file(path, &text, NULL, &err), BQ_OK);
        assert_non_null(strstr(text, "| tf32 |"));
        assert_non_null(strstr(text, "| seq 32\n"));
        free(text);
    }
    /* not a cache: not read, and saving refuses to overwrite it */
    f = fopen(foreign, "w");
    assert_non_null(f);
    fputs("my notes\n", f);
    fclose(f);
    opt.tuning_cache = foreign;
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("create: %s", err.message);
    assert_non_null(strstr(bq_cuda_engine_describe(e), "not a bertqa-gpu tuning cache"));
    assert_int_equal(bq_cuda_engine_save_tuning(e, &err), BQ_ERR_IO);
    printf("  foreign: %s\n", err.message);
    bq_cuda_engine_free(e);
    assert_non_null(file_line(foreign, "my notes", &count));
    assert_int_equal(count, 1);
    remove(path);
    remove(foreign);
    rmdir(dir);
    free(dir);
    free_batch(&bc);
    random_model_free(r);
}

/* An untuned engine (tune = 0, what ask uses for its one pass): the logits match the
 * CPU reference, nothing is timed (GEMMs "untimed", attention our default tiling, no cuDNN
 * plan under auto) and no graph is captured, also on a second pass. Runs on the emulator too. */
static void test_single_pass_untuned(void **state) {
    (void)state;
    REQUIRE_GPU();
    random_model *r = random_model_create(128, 2, 256, 1, 300, 128, 19);
    const int lengths[2] = {64, 37};
    batch_case bc = make_batch(&r->model, 2, 64, lengths, 14);
    float start[2 * 64], end[2 * 64];
    const bq_precision precisions[2] = {BQ_PRECISION_FP16, BQ_PRECISION_FP32};
    for (int pi = 0; pi < 2; pi++) {
        bq_engine_options opt = cuda_options(precisions[pi], BQ_ATTENTION_AUTO, 2, 64);
        opt.tune = 0;
        bq_cuda_engine *e = NULL;
        bq_err err;
        if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("create: %s", err.message);
        assert_non_null(strstr(bq_cuda_engine_describe(e), "single-pass mode"));
        assert_null(strstr(bq_cuda_engine_describe(e), "cuDNN attention unavailable"));
        for (int pass = 0; pass < 2; pass++) {
            if (bq_cuda_engine_forward(e, 2, 64, bc.ids, bc.mask, bc.seg, start, end, &err) != BQ_OK)
                fail_msg("forward: %s", err.message);
            const double rel = real_token_error(&bc, 2, start, end);
            printf("  %s untuned %-4s pass %d: rel error %.3e (limit %.0e)\n",
                   rel <= tolerance(precisions[pi]) ? "ok  " : "FAIL", bq_precision_name(precisions[pi]),
                   pass + 1, rel, tolerance(precisions[pi]));
            assert_true(rel <= tolerance(precisions[pi]));
        }
        assert_string_equal(bq_cuda_engine_gemm_choice(e, 2, NULL, NULL), "untimed");
        bq_attention_times t;
        assert_string_equal(bq_cuda_engine_attention_choice(e, 2, &t), "own");
        assert_true(t.own_ms == 0.0 && t.own128_ms == 0.0 && t.cudnn_ms == 0.0);
        bq_gemm_plan_info plans[8];
        const int n = bq_cuda_engine_gemm_plans(e, plans, 8);
        assert_int_equal(n, 4);
        for (int i = 0; i < n; i++) assert_true(plans[i].chosen == 0 && plans[i].chosen_ms == 0.0);
        bq_cuda_engine_free(e);
    }
    free_batch(&bc);
    random_model_free(r);
}

/* cuDNN fused attention against the same CPU reference (fp16, bf16), when the build has it. */
static void test_cudnn_attention(void **state) {
    (void)state;
    REQUIRE_GPU();
    random_model *r = random_model_create(128, 2, 256, 2, 300, 128, 15);
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_CUDNN, 2, 64);
    bq_cuda_engine *e = NULL;
    bq_err err;
    bq_status s = bq_cuda_engine_create(&r->model, &opt, &e, &err);
    if (s == BQ_ERR_UNSUPPORTED) {
        printf("  cudnn attention unavailable: %s\n", err.message);
        random_model_free(r);
        skip();
    }
    if (s != BQ_OK) fail_msg("cudnn engine create: %s", err.message);
    bq_cuda_engine_free(e);
    const int lengths[2] = {64, 23};
    batch_case bc = make_batch(&r->model, 2, 64, lengths, 9);
    int failures = check_engine("cudnn", &r->model, &bc, BQ_PRECISION_FP16, BQ_ATTENTION_CUDNN);
    failures += check_engine("cudnn", &r->model, &bc, BQ_PRECISION_BF16, BQ_ATTENTION_CUDNN);
    /* attention auto: ours (every tiling) and cuDNN's timed on a batch size's first pass, the
     * fastest kept */
    failures += check_engine("auto", &r->model, &bc, BQ_PRECISION_FP16, BQ_ATTENTION_AUTO);
    failures += check_engine("auto", &r->model, &bc, BQ_PRECISION_BF16, BQ_ATTENTION_AUTO);
    opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_AUTO, 2, 64);
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("auto: %s", err.message);
    assert_string_equal(bq_cuda_engine_attention_choice(e, 2, NULL), "undecided");
    forward_batch(e, &bc, 2, "auto");
    bq_attention_times t;
    const char *choice = bq_cuda_engine_attention_choice(e, 2, &t);
    printf("  auto attention at batch 2: %s (own %.4f ms, own-128 %.4f, own-32 %.4f, "
           "own-64k3 %.4f, own-wgmma %.4f, own-wgmma-overlap %.4f, cudnn %.4f per layer)\n",
           choice, t.own_ms, t.own128_ms, t.own32_ms, t.own64k3_ms, t.own_wgmma_ms,
           t.own_wgmma_overlap_ms, t.cudnn_ms);
    if (strcmp(choice, "cudnn") == 0)
        assert_true(t.cudnn_ms > 0 && t.cudnn_ms < fastest_own(&t));
    else
        assert_string_equal(choice, own_choice_name(&t));
    assert_string_equal(bq_cuda_engine_attention_choice(e, 1, NULL), "undecided");
    bq_cuda_engine_free(e);
    free_batch(&bc);
    random_model_free(r);
    EXPECT_NO_ENGINE_FAILURES(failures);
}

static void test_engine_errors(void **state) {
    (void)state;
    REQUIRE_GPU();
    random_model *r = random_model_create(32, 4, 64, 1, 50, 40, 16);
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP32, BQ_ATTENTION_OWN, 2, 16);
    bq_err err;
    bq_cuda_engine *e = NULL;

    /* seq_len beyond the position table */
    opt.seq_len = 41;
    assert_int_equal(bq_cuda_engine_create(&r->model, &opt, &e, &err), BQ_ERR_INVALID_ARG);
    assert_null(e);
    opt.seq_len = 16;
    /* cuDNN attention is for 16-bit precisions only */
    opt.attention = BQ_ATTENTION_CUDNN;
    opt.precision = BQ_PRECISION_FP32;
    assert_int_equal(bq_cuda_engine_create(&r->model, &opt, &e, &err), BQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "cuDNN"));
    opt.attention = BQ_ATTENTION_OWN;
    /* a device that does not exist */
    opt.device_index = 1000;
    assert_int_equal(bq_cuda_engine_create(&r->model, &opt, &e, &err), BQ_ERR_INVALID_ARG);
    opt.device_index = 0;

    assert_int_equal(bq_cuda_engine_create(&r->model, &opt, &e, &err), BQ_OK);
    int32_t ids[3 * 16], mask[3 * 16], seg[3 * 16];
    float start[3 * 16], end[3 * 16];
    for (int i = 0; i < 3 * 16; i++) ids[i] = 1 + i % 40, mask[i] = 1, seg[i] = 0;
    assert_int_equal(bq_cuda_engine_forward(e, 3, 16, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG); /* batch > max_batch */
    assert_non_null(strstr(err.message, "batch 3"));
    assert_int_equal(bq_cuda_engine_forward(e, 0, 16, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    ids[5] = 50; /* == vocab_size */
    assert_int_equal(bq_cuda_engine_forward(e, 1, 16, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "input_ids[5]"));
    ids[5] = 3;
    seg[7] = 2;
    assert_int_equal(bq_cuda_engine_forward(e, 1, 16, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    seg[7] = 0;
    /* lengths outside 1..seq_len */
    assert_int_equal(bq_cuda_engine_forward(e, 1, 0, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_cuda_engine_forward(e, 1, 17, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "sequence length 17"));
    /* still usable after rejected calls */
    assert_int_equal(bq_cuda_engine_forward(e, 2, 16, ids, mask, seg, start, end, &err), BQ_OK);
    size_t wb = 0, wsb = 0;
    assert_int_equal(bq_cuda_engine_memory(e, &wb, &wsb, &err), BQ_OK);
    assert_true(wb >= sizeof(float) * (size_t)(50 + 40 + 2) * 32); /* at least the embeddings */
    assert_true(wsb > 0);
    bq_cuda_engine_free(e);
    bq_cuda_engine_free(NULL);
    random_model_free(r);
}

/* A device that runs out of memory (the emulated build's hook, emu_faults.h). An engine too large
 * for the device (64 MB) is refused before it allocates anything, saying what it needs. Then the
 * device is made full from its n-th allocation on, for every n up to the last allocation that
 * creating an fp16 engine and its first pass make: creation fails with BQ_ERR_DEVICE_OOM and a
 * message naming what it was allocating (weights, activations, the GEMM layer's workspace); the
 * first pass, whose only allocations are the copies its candidate checks compare against, goes on
 * with those shapes timed unchecked and the CPU reference's logits; either way freeing the engine
 * leaves no allocation behind. */
static void test_device_out_of_memory(void **state) {
    (void)state;
    REQUIRE_GPU();
    REQUIRE_FAULT_HOOKS();
#ifdef BQ_CUDA_EMULATED
    random_model *r = random_model_create(128, 2, 256, 1, 300, 128, 14); /* heads of 64 */
    const int lengths[2] = {64, 29};
    batch_case bc = make_batch(&r->model, 2, 64, lengths, 8);
    bq_err err;
    bq_cuda_engine *e = NULL;
    const long live_before = bq_emu_live_device_allocations();

    /* a 64 MB device: 2,048 windows of 64 tokens need 0.3 GB of activations */
    bq_emu_set_device_memory((size_t)64 << 20);
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_OWN, 2048, 64);
    const bq_status too_large = bq_cuda_engine_create(&r->model, &opt, &e, &err);
    bq_emu_set_device_memory(0);
    assert_int_equal(too_large, BQ_ERR_DEVICE_OOM);
    assert_null(e);
    if (!strstr(err.message, "not enough device memory") || !strstr(err.message, "of 67108864 are free") ||
        !strstr(err.message, "--max-batch"))
        fail_msg("message: %s", err.message);
    assert_int_equal(bq_emu_live_device_allocations(), live_before);

    opt.max_batch = 2;
    float start[2 * 64], end[2 * 64];
    int failed_create = 0, failed_pass = 0, went_on = 0;
    long n = 1;
    for (;; n++) {
        bq_emu_fail_device_alloc_from(n);
        bq_status s = bq_cuda_engine_create(&r->model, &opt, &e, &err);
        const char *where = "create";
        /* batch 2, then batch 1: two first passes, each timing and checking its candidates */
        if (s == BQ_OK) {
            for (int i = 0; i < 2 * 64; i++) start[i] = end[i] = NAN;
            where = "first pass";
            s = bq_cuda_engine_forward(e, 2, 64, bc.ids, bc.mask, bc.seg, start, end, &err);
            if (s == BQ_OK && !(real_token_error(&bc, 2, start, end) <= tolerance(BQ_PRECISION_FP16)))
                fail_msg("full from allocation %ld on: the pass went on with rel error %.3e", n,
                         real_token_error(&bc, 2, start, end));
        }
        const bool fired = bq_emu_device_alloc_failed();
        bq_emu_fail_device_alloc_from(0);
        if (s != BQ_OK) {
            if (s != BQ_ERR_DEVICE_OOM || !fired || !strstr(err.message, "device memory"))
                fail_msg("full from allocation %ld on: %s: %s (status %s)", n, where, err.message,
                         bq_status_string(s));
            if (strcmp(where, "create") == 0) {
                assert_null(e);
                failed_create++;
            } else {
                failed_pass++;
            }
        } else if (fired) {
            /* only a candidate check's copy found no room: that shape was timed unchecked */
            bq_gemm_plan_info plans[16];
            const int count = bq_cuda_engine_gemm_plans(e, plans, 16);
            int unchecked = 0;
            for (int i = 0; i < count; i++) unchecked += !plans[i].checked;
            if (unchecked == 0) fail_msg("full from allocation %ld on: every GEMM shape checked", n);
            went_on++;
        }
        bq_cuda_engine_free(e);
        e = NULL;
        if (bq_emu_live_device_allocations() != live_before)
            fail_msg("full from allocation %ld on: %ld allocations left behind", n,
                     bq_emu_live_device_allocations() - live_before);
        if (!fired) break; /* every allocation came before n: all of them were tried */
    }
    printf("  %ld device allocations; full from each on: creation failed %d times, a first pass "
           "%d times, the engine went on %d times\n", n - 1, failed_create, failed_pass, went_on);
    /* the engine's own allocations come first; a first pass only ever loses its checks */
    assert_true(failed_create > 0 && went_on > 0 && failed_pass == 0);
    free_batch(&bc);
    random_model_free(r);
#endif
}

#ifdef BQ_CUDA_EMULATED
/* A forward of `batch` rows of bc that must succeed with the CPU reference's logits. */
static void expect_right_pass(bq_cuda_engine *e, const batch_case *bc, int batch, const char *what) {
    const size_t n = (size_t)batch * bc->seq_len;
    float *start = malloc(n * sizeof(float)), *end = malloc(n * sizeof(float));
    assert_true(start && end);
    bq_err err;
    bq_status s = bq_cuda_engine_forward(e, batch, bc->seq_len, bc->ids, bc->mask, bc->seg, start, end, &err);
    if (s != BQ_OK) fail_msg("%s: %s (status %s)", what, err.message, bq_status_string(s));
    const double rel = real_token_error(bc, batch, start, end);
    if (!(rel <= tolerance(BQ_PRECISION_FP32))) fail_msg("%s: rel error %.3e", what, rel);
    free(start);
    free(end);
}

/* A forward of `batch` rows of bc that must fail with `status` and a message naming `call`. */
static void expect_failed_pass(bq_cuda_engine *e, const batch_case *bc, int batch, bq_status status,
                               const char *call, const char *what) {
    float start[64], end[64];
    assert_true((size_t)batch * bc->seq_len <= 64);
    bq_err err;
    bq_status s = bq_cuda_engine_forward(e, batch, bc->seq_len, bc->ids, bc->mask, bc->seg, start, end, &err);
    if (s != status || !strstr(err.message, call))
        fail_msg("%s: status %s, '%s'; want %s naming %s", what, bq_status_string(s), err.message,
                 bq_status_string(status), call);
}
#endif

/* A runtime call that fails (the emulated build's hooks, emu_faults.h) is reported once, against
 * itself: the engine call it happened in fails naming it (or, for a graph capture, goes on
 * without graphs), and the next call of that engine, or the next engine, is not blamed for it.
 * (Before, BQ_CUDA_TRY left CUDA's last error set, so the next kernel launch reported it again:
 * a new engine's first pass failed with the out of memory of the creation before it.) fp32 with
 * our attention: no cuDNN probe, which cleared the last error by chance. */
static void test_failed_calls_reported_once(void **state) {
    (void)state;
    REQUIRE_GPU();
    REQUIRE_FAULT_HOOKS();
#ifdef BQ_CUDA_EMULATED
    random_model *r = random_model_create(32, 4, 64, 1, 50, 40, 16);
    const int lengths[2] = {16, 9};
    batch_case bc = make_batch(&r->model, 2, 16, lengths, 9);
    const bq_engine_options opt = cuda_options(BQ_PRECISION_FP32, BQ_ATTENTION_OWN, 2, 16);
    bq_err err;
    bq_cuda_engine *e = NULL;
    const long live = bq_emu_live_device_allocations();

    /* creation: the device full at the GEMM layer's workspace (its third allocation), then no
     * pinned host memory (BQ_ERR_NOMEM: host memory, not the device's); then an engine that works */
    bq_emu_fail_device_alloc_from(3);
    assert_int_equal(bq_cuda_engine_create(&r->model, &opt, &e, &err), BQ_ERR_DEVICE_OOM);
    bq_emu_fail_device_alloc_from(0);
    if (!strstr(err.message, "gemm.cu")) fail_msg("message: %s", err.message);
    bq_emu_fail_call("cudaHostAlloc", 1);
    assert_int_equal(bq_cuda_engine_create(&r->model, &opt, &e, &err), BQ_ERR_NOMEM);
    assert_true(bq_emu_call_failed());
    bq_emu_fail_call(NULL, 0);
    if (!strstr(err.message, "cudaHostAlloc") || !strstr(err.message, "pinned host memory"))
        fail_msg("message: %s", err.message);
    assert_null(e);
    assert_int_equal(bq_emu_live_device_allocations(), live);
    assert_int_equal(bq_cuda_engine_create(&r->model, &opt, &e, &err), BQ_OK);
    expect_right_pass(e, &bc, 2, "first pass after two failed creations");
    bq_cuda_engine_free(e);

    /* a graph capture refused: that pass and the next right, without graphs */
    assert_int_equal(bq_cuda_engine_create(&r->model, &opt, &e, &err), BQ_OK);
    bq_emu_fail_call("cudaStreamBeginCapture", 1);
    expect_right_pass(e, &bc, 2, "a first pass whose capture was refused");
    assert_true(bq_emu_call_failed());
    bq_emu_fail_call(NULL, 0);
    expect_right_pass(e, &bc, 2, "the pass after a refused capture");
    if (!strstr(bq_cuda_engine_describe(e), "capture failed"))
        fail_msg("describe: %s", bq_cuda_engine_describe(e));
    bq_cuda_engine_free(e);

    /* the first pass's timing without its event: that pass fails naming it, the next is right */
    assert_int_equal(bq_cuda_engine_create(&r->model, &opt, &e, &err), BQ_OK);
    bq_emu_fail_call("cudaEventCreate", 1);
    expect_failed_pass(e, &bc, 2, BQ_ERR_DEVICE_OOM, "cudaEventCreate", "a first pass without its event");
    bq_emu_fail_call(NULL, 0);
    expect_right_pass(e, &bc, 2, "the pass after a failed cudaEventCreate");
    /* a graph replay refused: that pass fails naming it; a first pass of another batch size
     * (eager, timed) after it is right, and so is the replay after that */
    bq_emu_fail_call("cudaGraphLaunch", 1);
    expect_failed_pass(e, &bc, 2, BQ_ERR_DEVICE, "cudaGraphLaunch", "a refused replay");
    bq_emu_fail_call(NULL, 0);
    expect_right_pass(e, &bc, 1, "a first pass after a refused replay");
    expect_right_pass(e, &bc, 2, "the replay after a refused one");
    bq_cuda_engine_free(e);
    assert_int_equal(bq_emu_live_device_allocations(), live);
    free_batch(&bc);
    random_model_free(r);
#endif
}

/* The GEMM choices timed shape by shape are checked by whole passes on a batch size's first pass
 * (engine_cuda.cu choose_gemm): undecided before it, "timed" or "first" after with both pass
 * times, "first" only where that pass was the faster, every shape of the batch flagged alike; and
 * "untimed" with BQ_GEMM_AUTOTUNE=0. The logits of either way are checked by check_engine. */
static void test_gemm_whole_pass_choice(void **state) {
    (void)state;
    REQUIRE_GPU();
    random_model *r = random_model_create(64, 2, 128, 2, 300, 64, 17);
    const int lengths[2] = {32, 11};
    batch_case bc = make_batch(&r->model, 2, 32, lengths, 12);
    for (int autotune = 1; autotune >= 0; autotune--) {
        if (autotune)
            unsetenv("BQ_GEMM_AUTOTUNE");
        else
            assert_int_equal(setenv("BQ_GEMM_AUTOTUNE", "0", 1), 0);
        bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_OWN, 2, 32);
        bq_cuda_engine *e = NULL;
        bq_err err;
        if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK)
            fail_msg("create: %s", err.message);
        assert_string_equal(bq_cuda_engine_gemm_choice(e, 2, NULL, NULL), "undecided");
        forward_batch(e, &bc, 2, "gemm choice");
        double timed_ms = 0, first_ms = 0;
        const char *choice = bq_cuda_engine_gemm_choice(e, 2, &timed_ms, &first_ms);
        printf("  GEMM choices at batch 2 (autotune %d): %s (whole pass timed %.4f ms, first "
               "%.4f ms)\n", autotune, choice, timed_ms, first_ms);
        if (!autotune) {
            assert_string_equal(choice, "untimed");
        } else {
            assert_true(strcmp(choice, "timed") == 0 || strcmp(choice, "first") == 0);
            assert_true(timed_ms > 0 && first_ms > 0);
            /* the engine's rule, in its float arithmetic */
            assert_int_equal(strcmp(choice, "first") == 0,
                             (float)first_ms * 0.99f < (float)timed_ms);
            bq_gemm_plan_info plans[16];
            const int n = bq_cuda_engine_gemm_plans(e, plans, 16);
            int of_batch = 0;
            for (int i = 0; i < n; i++)
                if (plans[i].rows == 2 * 32) {
                    of_batch++;
                    assert_int_equal(plans[i].runs_first, strcmp(choice, "first") == 0);
                    assert_in_range(plans[i].chosen_splitk, 1, 4);
#ifdef BQ_CUDA_EMULATED
                    /* few rows: the emulated heuristic's 3 algorithms, then split-K variants of
                     * each (2, 3 and 4 parts; every emulated algorithm offers split-K) */
                    assert_int_equal(plans[i].candidates, 3 + 3 * 3);
                    /* the second refuses at run time: never chosen (candidate 0 always runs) */
                    assert_int_not_equal(plans[i].chosen, 1);
#endif
                    /* the fastest timed, candidate 0 among them */
                    assert_true(plans[i].chosen_ms > 0 && plans[i].chosen_ms <= plans[i].first_ms);
                }
            assert_int_equal(of_batch, 4); /* QKV, attention output, FFN in, FFN out */
        }
        assert_string_equal(bq_cuda_engine_gemm_choice(e, 1, NULL, NULL), "undecided");
        bq_cuda_engine_free(e);
    }
    unsetenv("BQ_GEMM_AUTOTUNE");
    free_batch(&bc);

    /* batches of 32 and more: the first decides by timing, a later one takes its decision */
    int lengths_big[33];
    for (int i = 0; i < 33; i++) lengths_big[i] = 1 + i % 8;
    batch_case big = make_batch(&r->model, 33, 8, lengths_big, 13);
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_OWN, 33, 8);
    bq_cuda_engine *e = NULL;
    bq_err err;
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("create: %s", err.message);
    for (int b = 32; b <= 33; b++) forward_batch(e, &big, b, "gemm choice");
    double timed32 = 0, first32 = 0, timed33 = 1, first33 = 1;
    const char *c32 = bq_cuda_engine_gemm_choice(e, 32, &timed32, &first32);
    const char *c33 = bq_cuda_engine_gemm_choice(e, 33, &timed33, &first33);
    printf("  GEMM choices at batch 32: %s (%.4f / %.4f ms), batch 33: %s (taken over)\n", c32,
           timed32, first32, c33);
    assert_true(timed32 > 0 && first32 > 0);
    assert_string_equal(c33, c32);
    assert_true(timed33 == 0 && first33 == 0);
    bq_cuda_engine_free(e);
    free_batch(&big);
    random_model_free(r);
}

/* From 32 full sequences' rows up a new padded batch size takes the decisions of a decided one:
 * the whole-pass GEMM choice, each GEMM's algorithm and the attention tiling, all untimed, and
 * still computes what the CPU does; a batch size below that many rows times its own. fp16, our
 * attention's four tilings (head size 64), sequences of 8. Runs on the emulator. */
static void test_large_shapes_share_decisions(void **state) {
    (void)state;
    REQUIRE_GPU();
    random_model *r = random_model_create(128, 2, 256, 1, 300, 64, 23);
    int lengths[33];
    for (int i = 0; i < 33; i++) lengths[i] = 1 + (5 * i) % 8;
    batch_case bc = make_batch(&r->model, 33, 8, lengths, 14);
    bq_engine_options opt = cuda_options(BQ_PRECISION_FP16, BQ_ATTENTION_OWN, 33, 8);
    bq_cuda_engine *e = NULL;
    bq_err err;
    if (bq_cuda_engine_create(&r->model, &opt, &e, &err) != BQ_OK) fail_msg("create: %s", err.message);
    float start[33 * 8], end[33 * 8];
    int failures = 0;
    const int batches[3] = {32, 33, 31};
    for (int k = 0; k < 3; k++) {
        const int b = batches[k];
        if (bq_cuda_engine_forward(e, b, 8, bc.ids, bc.mask, bc.seg, start, end, &err) != BQ_OK)
            fail_msg("batch %d: %s", b, err.message);
        const double rel = real_token_error(&bc, b, start, end);
        const bool ok = rel <= tolerance(BQ_PRECISION_FP16);
        bq_attention_times t;
        const char *attention = bq_cuda_engine_attention_choice(e, b, &t);
        double timed_ms = 0, first_ms = 0;
        const char *gemm = bq_cuda_engine_gemm_choice(e, b, &timed_ms, &first_ms);
        printf("  %s batch %d: rel error %.3e (limit %.0e); attention %s (64 rows %.4f ms), GEMMs "
               "%s (%.4f / %.4f ms)\n", ok ? "ok  " : "FAIL", b, rel, tolerance(BQ_PRECISION_FP16),
               attention, t.own_ms, gemm, timed_ms, first_ms);
        failures += !ok;
        bq_gemm_plan_info plans[32];
        const int n = bq_cuda_engine_gemm_plans(e, plans, 32);
        int of_batch = 0;
        for (int i = 0; i < n; i++) {
            if (plans[i].rows != b * 8) continue;
            of_batch++;
            if (b == 33)
                shared_or_refused(&plans[i], 32 * 8);
            else
                assert_true(plans[i].shared_from_rows == 0 && plans[i].chosen_ms > 0);
        }
        assert_int_equal(of_batch, 4);
        if (b == 33) { /* 264 rows, from 256 up: batch 32's choices, nothing timed */
            bq_attention_times t32;
            assert_string_equal(attention, bq_cuda_engine_attention_choice(e, 32, &t32));
            assert_true(t.own_ms == 0 && t.own128_ms == 0 && t.own32_ms == 0 && t.own64k3_ms == 0 &&
                        t.own_wgmma_ms == 0 && t.own_wgmma_overlap_ms == 0);
            assert_string_equal(gemm, bq_cuda_engine_gemm_choice(e, 32, NULL, NULL));
            assert_true(timed_ms == 0 && first_ms == 0);
        } else { /* 256 rows (the first) and 248 (below): timed */
            assert_true(t.own_ms > 0 && t.own128_ms > 0);
            assert_true(timed_ms > 0 && first_ms > 0);
        }
    }
    /* packed passes of 32 rows (timed) then 33 (the 32-row packed shape's attention tiling, the
     * padded shapes' GEMMs), sequences of 1 to 8 tokens back to back, against the CPU's packed
     * forward */
    bq_cpu_forward *cpu = NULL;
    if (bq_cpu_forward_create(&r->model, 33, 8, 0, &cpu, &err) != BQ_OK) fail_msg("cpu: %s", err.message);
    for (int b = 32; b <= 33; b++) {
        int32_t offsets[33 * 8 + 1];
        int n_seqs = 0;
        offsets[0] = 0;
        while (offsets[n_seqs] < b * 8) {
            const int next = offsets[n_seqs] + 1 + (3 * n_seqs) % 8;
            offsets[n_seqs + 1] = next < b * 8 ? next : b * 8;
            n_seqs++;
        }
        float ref_start[33 * 8], ref_end[33 * 8];
        if (bq_cpu_forward_run_packed(cpu, b, 8, n_seqs, offsets, bc.ids, bc.seg, ref_start,
                                      ref_end, &err) != BQ_OK)
            fail_msg("cpu packed: %s", err.message);
        if (bq_cuda_engine_forward_packed(e, b, 8, n_seqs, offsets, bc.ids, bc.seg, start, end,
                                          &err) != BQ_OK)
            fail_msg("packed batch %d: %s", b, err.message);
        const double rel = logits_error(start, end, ref_start, ref_end, (size_t)b * 8);
        const bool ok = rel <= tolerance(BQ_PRECISION_FP16);
        printf("  %s packed batch %d, %d sequences: rel error %.3e (limit %.0e)\n",
               ok ? "ok  " : "FAIL", b, n_seqs, rel, tolerance(BQ_PRECISION_FP16));
        failures += !ok;
    }
    bq_cpu_forward_free(cpu);
    assert_null(strstr(bq_cuda_engine_describe(e), "capture failed"));
    bq_cuda_engine_free(e);
    free_batch(&bc);
    random_model_free(r);
    EXPECT_NO_ENGINE_FAILURES(failures);
}

static int group_setup(void **state) {
    (void)state;
    int count = 0;
    bq_err err;
    bq_status s = bq_cuda_device_count(&count, &err);
    gpu_available = s == BQ_OK && count > 0;
    if (!gpu_available) printf("no GPU, skipping the GPU model tests: %s\n", err.message);
    return 0;
}

int main(int argc, char **argv) {
    (void)argc;
    /* the CPU reference at BERT-large shape is the slow side of this test: never on SSE3 kernels
     * (only then: the sanitizer runs of the small tests keep one process image) */
    if (getenv("BQ_TEST_LARGE")) bq_cpu_blas_restart_if_weak(argv);
    const struct CMUnitTest tests[] = {
#ifdef BQ_HAVE_CUDA
        cmocka_unit_test(test_gemm_linear),
        cmocka_unit_test_teardown(test_gemm_candidate_disagrees, unset_fault_hooks),
        cmocka_unit_test_teardown(test_fused_gelu_wrong, unset_fault_hooks),
        cmocka_unit_test_teardown(test_gemm_3xtf32_plain_tf32, unset_fault_hooks),
        cmocka_unit_test(test_gemm_bias_gelu_fused),
        cmocka_unit_test(test_gemm_shared_choices),
        cmocka_unit_test(test_gemm_3xtf32),
#endif
        cmocka_unit_test(test_engine_errors),
        cmocka_unit_test_teardown(test_device_out_of_memory, unset_fault_hooks),
        cmocka_unit_test_teardown(test_failed_calls_reported_once, unset_fault_hooks),
        cmocka_unit_test(test_tiny_every_precision),
        cmocka_unit_test(test_head64_every_precision),
        cmocka_unit_test(test_without_graphs),
        cmocka_unit_test(test_gemm_whole_pass_choice),
        cmocka_unit_test(test_large_shapes_share_decisions),
        cmocka_unit_test(test_attention_tiling_choice),
        cmocka_unit_test_teardown(test_attention_candidate_disagrees, unset_fault_hooks),
        cmocka_unit_test(test_trimmed_passes),
        cmocka_unit_test(test_packed_passes),
        cmocka_unit_test(test_tuning_cache),
        cmocka_unit_test(test_single_pass_untuned),
        cmocka_unit_test(test_cudnn_attention),
        cmocka_unit_test(test_large_every_precision),
    };
    bq_test_filter_from_env();
    int failed = cmocka_run_group_tests(tests, group_setup, NULL);
    if (failed == 0 && !gpu_available) return 77;
    return failed;
}
