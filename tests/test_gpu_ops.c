/* test_gpu_ops.c - op-level harness for our CUDA kernels (after ggml's test-backend-ops).
 *
 * For every op, every storage dtype (f32, f16, bf16), odd shapes and padding patterns: fresh seeded
 * random inputs are rounded to the op dtype on the host, the GPU op runs on them and its CPU twin
 * (src/forward_cpu.h, fp32) runs on the SAME rounded values; we then require
 *   - every output finite (outputs are pre-filled with NaN bytes, so an unwritten element fails),
 *   - normwise error ||gpu - cpu|| / ||cpu|| below the dtype tolerance,
 *   - the 256 guard bytes before and after every device output untouched.
 *
 * Tolerances (normwise): the GPU output is rounded to the dtype once (unit roundoff u = 2^-24 f32,
 * 2^-11 = 4.9e-4 f16, 2^-8 = 3.9e-3 bf16) and the tensor-core attention also rounds the softmax
 * probabilities to the dtype before P.V (another <= u). f32 1e-5 leaves room for differing
 * summation orders and device vs libm expf/erff (a few ulp); f16 2e-3 ~ 4u; bf16 1e-2 ~ 2.5u.
 * The QA head writes fp32 from identically rounded inputs, so it is held to 1e-4 in every dtype
 * (fp32 accumulation over up to 1024 terms vs a double-accumulating reference).
 *
 * Every case of a test runs and prints its margin (or FAIL) before the test fails, so one GPU log
 * shows all of them.
 *
 * Without a GPU (or a CUDA build) every GPU test is skipped with the reason and main returns 77;
 * the argument-validation and status-mapping tests need no GPU and always run. */
#include "test_support.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BQ_HAVE_CUDA

int main(void) {
    printf("test_gpu_ops: skipped: this build has no CUDA backend (BQ_ENABLE_CUDA=OFF or no nvcc)\n");
    return 77;
}

#else

#include "attention.cuh"
#ifndef BQ_CUDA_EMULATED
#include "attention_cudnn.cuh"
#endif
#include "attention_wgmma.cuh"
#include "bias_gelu.cuh"
#include "bias_residual_layernorm.cuh"
#include "cuda_check.cuh"
#include "embeddings_layernorm.cuh"
#include "forward_cpu.h"
#include "normwise_diff.cuh"
#include "qa_head.cuh"
#include "safetensors.h"

#define GUARD_BYTES 256
#define GUARD_PATTERN 0xA5
#define LN_EPS 1e-12f

static bool g_have_gpu;
static int g_case_failures; /* failed cases of the running test (printed as they happen) */
static char g_no_gpu_reason[512];

static const bq_cuda_dtype k_dtypes[] = {BQ_CUDA_F32, BQ_CUDA_F16, BQ_CUDA_BF16};
#define N_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

static double tolerance(bq_cuda_dtype dt) {
    switch (dt) {
    case BQ_CUDA_F32: return 1e-5;
    case BQ_CUDA_F16: return 2e-3;
    case BQ_CUDA_BF16: return 1e-2;
    }
    return 0.0;
}

#define SKIP_WITHOUT_GPU()                                                      \
    do {                                                                        \
        g_case_failures = 0;                                                    \
        if (!g_have_gpu) {                                                      \
            print_message("skipped: %s\n", g_no_gpu_reason);                    \
            skip();                                                             \
        }                                                                       \
    } while (0)

/* At the end of a GPU test: fail it when any of its cases failed. */
#define EXPECT_NO_CASE_FAILURES()                                                          \
    do {                                                                                   \
        if (g_case_failures) fail_msg("%d case(s) failed; see the FAIL lines above", g_case_failures); \
    } while (0)

#define CUDA_OK(stmt)                                                                     \
    do {                                                                                  \
        cudaError_t rc_ = (stmt);                                                         \
        if (rc_ != cudaSuccess)                                                           \
            fail_msg("%s failed: %s (%s)", #stmt, cudaGetErrorName(rc_), cudaGetErrorString(rc_)); \
    } while (0)

/* ---- host helpers --------------------------------------------------------------------------- */

static float *host_floats(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    return p;
}

/* Round every value to what `dt` can hold, so the CPU twin sees exactly the GPU's inputs. */
static void round_to_dtype(float *x, size_t n, bq_cuda_dtype dt) {
    for (size_t i = 0; i < n; i++) {
        if (dt == BQ_CUDA_F16) x[i] = bq_f16_to_f32(bq_f32_to_f16(x[i]));
        else if (dt == BQ_CUDA_BF16) x[i] = bq_bf16_to_f32(bq_f32_to_bf16(x[i]));
    }
}

/* Seeded uniform values in [lo, hi), already rounded to `dt`. */
static float *random_tensor(size_t n, uint64_t *seed, float lo, float hi, bq_cuda_dtype dt) {
    float *x = host_floats(n);
    bq_test_fill_uniform(x, n, seed, lo, hi);
    round_to_dtype(x, n, dt);
    return x;
}

/* ---- device buffers with guard bytes on both sides ------------------------------------------ */

typedef struct {
    unsigned char *base; /* cudaMalloc result: [guard | offset | payload | guard] */
    void *ptr;           /* payload */
    size_t bytes;        /* payload size */
} dev_buf;

/* Payload filled with 0xFF bytes: NaN in f32, f16 and bf16, so unwritten outputs are caught.
 * `offset` bytes between the first guard and the payload move it off the allocation's alignment
 * (tests of the dispatch's alignment checks). */
static dev_buf dev_alloc_at(size_t bytes, size_t offset) {
    dev_buf b;
    b.bytes = bytes;
    CUDA_OK(cudaMalloc((void **)&b.base, offset + bytes + 2 * GUARD_BYTES));
    CUDA_OK(cudaMemset(b.base, GUARD_PATTERN, GUARD_BYTES));
    CUDA_OK(cudaMemset(b.base + GUARD_BYTES, 0xFF, offset + bytes));
    CUDA_OK(cudaMemset(b.base + GUARD_BYTES + offset + bytes, GUARD_PATTERN, GUARD_BYTES));
    b.ptr = b.base + GUARD_BYTES + offset;
    return b;
}

static dev_buf dev_alloc(size_t bytes) { return dev_alloc_at(bytes, 0); }

static void dev_free(dev_buf *b) {
    if (b->base) cudaFree(b->base);
    b->base = NULL;
    b->ptr = NULL;
}

static void expect_guards_intact(const dev_buf *b, const char *what) {
    unsigned char before[GUARD_BYTES], after[GUARD_BYTES];
    CUDA_OK(cudaMemcpy(before, b->base, GUARD_BYTES, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(after, (unsigned char *)b->ptr + b->bytes, GUARD_BYTES, cudaMemcpyDeviceToHost));
    for (int i = 0; i < GUARD_BYTES; i++) {
        if (before[i] != GUARD_PATTERN) {
            print_message("FAIL %s: guard byte %d before the buffer overwritten (0x%02x)\n", what,
                          GUARD_BYTES - i, before[i]);
            g_case_failures++;
            return;
        }
        if (after[i] != GUARD_PATTERN) {
            print_message("FAIL %s: guard byte %d after the buffer overwritten (0x%02x)\n", what, i,
                          after[i]);
            g_case_failures++;
            return;
        }
    }
}

/* Upload fp32 values converted to `dt`, `offset` bytes past the allocation's alignment. */
static dev_buf dev_upload_at(const float *x, size_t n, bq_cuda_dtype dt, size_t offset) {
    size_t es = bq_cuda_dtype_size(dt);
    dev_buf b = dev_alloc_at(n * es, offset);
    if (dt == BQ_CUDA_F32) {
        CUDA_OK(cudaMemcpy(b.ptr, x, n * es, cudaMemcpyHostToDevice));
        return b;
    }
    uint16_t *h = malloc((n ? n : 1) * sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++)
        h[i] = dt == BQ_CUDA_F16 ? bq_f32_to_f16(x[i]) : bq_f32_to_bf16(x[i]);
    CUDA_OK(cudaMemcpy(b.ptr, h, n * es, cudaMemcpyHostToDevice));
    free(h);
    return b;
}

static dev_buf dev_upload(const float *x, size_t n, bq_cuda_dtype dt) {
    return dev_upload_at(x, n, dt, 0);
}

static dev_buf dev_upload_ints(const int32_t *x, size_t n) {
    dev_buf b = dev_alloc(n * sizeof *x);
    CUDA_OK(cudaMemcpy(b.ptr, x, n * sizeof *x, cudaMemcpyHostToDevice));
    return b;
}

/* Download `n` values of `dt` as fp32 (caller frees). */
static float *dev_download(const dev_buf *b, size_t n, bq_cuda_dtype dt) {
    float *out = host_floats(n);
    if (dt == BQ_CUDA_F32) {
        CUDA_OK(cudaMemcpy(out, b->ptr, n * sizeof(float), cudaMemcpyDeviceToHost));
        return out;
    }
    uint16_t *h = malloc((n ? n : 1) * sizeof *h);
    assert_non_null(h);
    CUDA_OK(cudaMemcpy(h, b->ptr, n * sizeof *h, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++)
        out[i] = dt == BQ_CUDA_F16 ? bq_f16_to_f32(h[i]) : bq_bf16_to_f32(h[i]);
    free(h);
    return out;
}

/* All finite and normwise-close; prints one line per case so a GPU log shows the margins. */
static void expect_close(const char *what, const float *gpu, const float *ref, size_t n, double tol) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(gpu[i])) {
            print_message("FAIL %s: element %zu is not finite (%g)\n", what, i, (double)gpu[i]);
            g_case_failures++;
            return;
        }
    }
    double err = bq_test_rel_error(gpu, ref, n);
    double max_diff, max_ref;
    bq_test_max_diff(gpu, ref, n, &max_diff, &max_ref);
    const bool ok = err <= tol;
    print_message("%s %-60s rel_err %.3e (tol %.0e) max_diff %.3e max_ref %.3e\n",
                  ok ? "ok  " : "FAIL", what, err, tol, max_diff, max_ref);
    if (!ok) g_case_failures++;
}

/* ---- embeddings + LayerNorm ----------------------------------------------------------------- */

/* One embeddings case against the CPU twin. packed: positions restart at each sequence of a packed
 * batch (lengths cycling through 3, 1, S, S/2 + 1, 7, clipped to S, so some cross a batch row)
 * instead of t % S. */
static void embeddings_case(int B, int S, int H, bq_cuda_dtype dt, bool packed, uint64_t *seed) {
    const int vocab = 97, types = 2;
    const size_t tokens = (size_t)B * S;
    int32_t *ids = malloc(tokens * sizeof *ids), *seg = malloc(tokens * sizeof *seg);
    int32_t *positions = malloc(tokens * sizeof *positions);
    assert_non_null(ids);
    assert_non_null(seg);
    assert_non_null(positions);
    float pick[2];
    for (size_t t = 0; t < tokens; t++) {
        bq_test_fill_uniform(pick, 2, seed, 0.0f, 1.0f);
        ids[t] = (int32_t)(pick[0] * vocab) % vocab;
        seg[t] = (int32_t)(pick[1] * types) % types;
    }
    const int lengths[] = {3, 1, S, S / 2 + 1, 7};
    size_t k = 0; /* the sequence of token t */
    int32_t next = 0;
    for (size_t t = 0; t < tokens; t++) {
        int len = lengths[k % (sizeof lengths / sizeof lengths[0])];
        if (len > S) len = S;
        positions[t] = next++;
        if (next == len) next = 0, k++;
    }
    float *word = random_tensor((size_t)vocab * H, seed, -1.0f, 1.0f, dt);
    float *pos = random_tensor((size_t)S * H, seed, -1.0f, 1.0f, dt);
    float *type = random_tensor((size_t)types * H, seed, -1.0f, 1.0f, dt);
    float *gamma = random_tensor((size_t)H, seed, 0.5f, 1.5f, dt);
    float *beta = random_tensor((size_t)H, seed, -0.5f, 0.5f, dt);
    float *ref = host_floats(tokens * H);
    bq_cpu_embeddings_layernorm(ids, seg, packed ? positions : NULL, B, S, H, word, pos, type,
                                gamma, beta, LN_EPS, ref);

    dev_buf d_ids = dev_upload_ints(ids, tokens), d_seg = dev_upload_ints(seg, tokens);
    dev_buf d_positions = dev_upload_ints(positions, tokens);
    dev_buf d_word = dev_upload(word, (size_t)vocab * H, dt);
    dev_buf d_pos = dev_upload(pos, (size_t)S * H, dt);
    dev_buf d_type = dev_upload(type, (size_t)types * H, dt);
    dev_buf d_gamma = dev_upload(gamma, H, dt), d_beta = dev_upload(beta, H, dt);
    dev_buf d_out = dev_alloc(tokens * H * bq_cuda_dtype_size(dt));
    CUDA_OK(bq_cuda_embeddings_layernorm(d_ids.ptr, d_seg.ptr, packed ? d_positions.ptr : NULL, B,
                                         S, H, d_word.ptr, d_pos.ptr, d_type.ptr, d_gamma.ptr,
                                         d_beta.ptr, LN_EPS, d_out.ptr, dt, 0));
    CUDA_OK(cudaDeviceSynchronize());
    char what[160];
    snprintf(what, sizeof what, "embeddings_layernorm %s B=%d S=%d H=%d%s", bq_cuda_dtype_name(dt),
             B, S, H, packed ? " packed positions" : "");
    expect_guards_intact(&d_out, what);
    float *got = dev_download(&d_out, tokens * H, dt);
    expect_close(what, got, ref, tokens * H, tolerance(dt));

    free(got);
    dev_free(&d_ids), dev_free(&d_seg), dev_free(&d_positions), dev_free(&d_word);
    dev_free(&d_pos), dev_free(&d_type), dev_free(&d_gamma), dev_free(&d_beta), dev_free(&d_out);
    free(ids), free(seg), free(positions), free(word), free(pos), free(type), free(gamma);
    free(beta), free(ref);
}

static void test_embeddings_layernorm(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    const struct { int batch, seq, hidden; } shapes[] = {
        {1, 1, 20}, {2, 7, 24}, {3, 33, 64}, {3, 5, 768}, {2, 16, 1024}, {1, 384, 1024}};
    uint64_t seed = 0x5eed0001;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t di = 0; di < N_DTYPES; di++)
            embeddings_case(shapes[si].batch, shapes[si].seq, shapes[si].hidden, k_dtypes[di], false,
                            &seed);
    EXPECT_NO_CASE_FAILURES();
}

/* Packed sequences: an explicit position per token, restarting at each sequence, on both kernels
 * (H = 20, 24, 64: the shared-memory path; 768 and 1024: the 16-byte vector path). */
static void test_embeddings_positions(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    const struct { int batch, seq, hidden; } shapes[] = {
        {1, 1, 20}, {2, 7, 24}, {3, 33, 64}, {3, 16, 768}, {2, 384, 1024}};
    uint64_t seed = 0x5eed000c;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t di = 0; di < N_DTYPES; di++)
            embeddings_case(shapes[si].batch, shapes[si].seq, shapes[si].hidden, k_dtypes[di], true,
                            &seed);
    EXPECT_NO_CASE_FAILURES();
}

/* ---- bias + residual + LayerNorm ------------------------------------------------------------ */

typedef enum { OUT_SEPARATE, OUT_ALIASES_X, OUT_ALIASES_RESIDUAL } out_placement;

static void test_bias_residual_layernorm(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    const int rows_list[] = {1, 7, 33};
    /* 256, 768 and 1024 take the 16-byte vector path in every dtype (32 to 256 threads) */
    const int hidden_list[] = {20, 24, 32, 64, 256, 768, 1024};
    static const char *placement_name[] = {"out separate", "out = x", "out = residual"};
    uint64_t seed = 0x5eed0002;
    for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++)
    for (size_t hi = 0; hi < sizeof hidden_list / sizeof hidden_list[0]; hi++)
    for (size_t di = 0; di < N_DTYPES; di++)
    for (int with_bias = 0; with_bias <= 1; with_bias++)
    for (int placement = OUT_SEPARATE; placement <= OUT_ALIASES_RESIDUAL; placement++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        const int rows = rows_list[ri], H = hidden_list[hi];
        const size_t n = (size_t)rows * H;
        float *x = random_tensor(n, &seed, -2.0f, 2.0f, dt);
        float *residual = random_tensor(n, &seed, -2.0f, 2.0f, dt);
        float *bias = random_tensor(H, &seed, -1.0f, 1.0f, dt);
        float *gamma = random_tensor(H, &seed, 0.5f, 1.5f, dt);
        float *beta = random_tensor(H, &seed, -0.5f, 0.5f, dt);
        float *ref = host_floats(n);
        bq_cpu_bias_residual_layernorm(x, with_bias ? bias : NULL, residual, gamma, beta, rows, H,
                                       LN_EPS, ref);

        dev_buf d_x = dev_upload(x, n, dt), d_res = dev_upload(residual, n, dt);
        dev_buf d_bias = dev_upload(bias, H, dt), d_gamma = dev_upload(gamma, H, dt);
        dev_buf d_beta = dev_upload(beta, H, dt);
        dev_buf d_sep = {0};
        dev_buf *out = placement == OUT_ALIASES_X ? &d_x
                     : placement == OUT_ALIASES_RESIDUAL ? &d_res : NULL;
        if (!out) {
            d_sep = dev_alloc(n * bq_cuda_dtype_size(dt));
            out = &d_sep;
        }
        CUDA_OK(bq_cuda_bias_residual_layernorm(d_x.ptr, with_bias ? d_bias.ptr : NULL, d_res.ptr,
                                                d_gamma.ptr, d_beta.ptr, rows, H, LN_EPS, out->ptr,
                                                dt, 0));
        CUDA_OK(cudaDeviceSynchronize());
        char what[160];
        snprintf(what, sizeof what, "bias_residual_layernorm %s rows=%d H=%d %s %s",
                 bq_cuda_dtype_name(dt), rows, H, with_bias ? "bias" : "no-bias",
                 placement_name[placement]);
        expect_guards_intact(out, what);
        float *got = dev_download(out, n, dt);
        expect_close(what, got, ref, n, tolerance(dt));

        free(got);
        dev_free(&d_x), dev_free(&d_res), dev_free(&d_bias), dev_free(&d_gamma);
        dev_free(&d_beta), dev_free(&d_sep);
        free(x), free(residual), free(bias), free(gamma), free(beta), free(ref);
    }
    EXPECT_NO_CASE_FAILURES();
}

/* ---- bias + GELU ---------------------------------------------------------------------------- */

static void test_bias_gelu(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    const int rows_list[] = {1, 7, 33};
    const int cols_list[] = {20, 24, 1024, 4096};
    uint64_t seed = 0x5eed0003;
    for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++)
    for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++)
    for (size_t di = 0; di < N_DTYPES; di++)
    for (int with_bias = 0; with_bias <= 1; with_bias++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        const int rows = rows_list[ri], cols = cols_list[ci];
        const size_t n = (size_t)rows * cols;
        float *x = random_tensor(n, &seed, -4.0f, 4.0f, dt); /* covers both GELU tails */
        float *bias = random_tensor(cols, &seed, -1.0f, 1.0f, dt);
        float *ref = host_floats(n);
        memcpy(ref, x, n * sizeof *ref);
        bq_cpu_bias_gelu(ref, with_bias ? bias : NULL, rows, cols);

        dev_buf d_x = dev_upload(x, n, dt), d_bias = dev_upload(bias, cols, dt);
        CUDA_OK(bq_cuda_bias_gelu(d_x.ptr, with_bias ? d_bias.ptr : NULL, rows, cols, dt, 0));
        CUDA_OK(cudaDeviceSynchronize());
        char what[160];
        snprintf(what, sizeof what, "bias_gelu %s rows=%d cols=%d %s", bq_cuda_dtype_name(dt),
                 rows, cols, with_bias ? "bias" : "no-bias");
        expect_guards_intact(&d_x, what);
        float *got = dev_download(&d_x, n, dt);
        expect_close(what, got, ref, n, tolerance(dt));

        free(got);
        dev_free(&d_x), dev_free(&d_bias);
        free(x), free(bias), free(ref);
    }
    EXPECT_NO_CASE_FAILURES();
}

/* ---- attention ------------------------------------------------------------------------------ */

/* Our kernels take any 0/1 mask (only cuDNN needs the SQuAD prefix form), so besides prefixes the
 * cases put padding FIRST (the online softmax must then discard the running state of whole tiles
 * of masked keys once a real key appears) and scatter it. */
typedef enum {
    MASK_ALL_REAL, MASK_ONE_REAL, MASK_RAGGED, MASK_PAD_FIRST, MASK_SCATTERED, MASK_NO_REAL
} mask_pattern;
static const char *const k_mask_names[] = {"all-real", "one-real", "ragged", "pad-first",
                                           "scattered", "no-real"};

/* Batch row b of a ragged mask keeps S - b*S/(B+1) real tokens (at least 1), then padding;
 * pad-first puts the same padding before the real tokens; scattered pads keys s with
 * (s + b) % 3 == 1 (and keeps key 0); no-real pads everything. */
static void fill_mask(int32_t *mask, int B, int S, mask_pattern pattern) {
    for (int b = 0; b < B; b++) {
        int real = S;
        if (pattern == MASK_ONE_REAL) real = 1;
        if (pattern == MASK_RAGGED || pattern == MASK_PAD_FIRST) real = S - b * S / (B + 1);
        if (real < 1) real = 1;
        for (int s = 0; s < S; s++) {
            int32_t m = s < real;
            if (pattern == MASK_PAD_FIRST) m = s >= S - real;
            if (pattern == MASK_SCATTERED) m = s == 0 || (s + b) % 3 != 1;
            if (pattern == MASK_NO_REAL) m = 0;
            mask[(size_t)b * S + s] = m;
        }
    }
}

/* One attention case: qkv [B*S, 3H] uniform in [-2, 2) and rounded to dt (scores q.k/sqrt(d)
 * spread over a few units, so softmax is far from uniform), a mask of `pattern`, and the CPU
 * twin's output ref [B*S, H]. */
typedef struct {
    float *qkv, *ref;
    int32_t *mask;
} attention_case;

static attention_case attention_case_make(int B, int S, int H, int heads, mask_pattern pattern,
                                          bq_cuda_dtype dt, uint64_t *seed) {
    const size_t rows = (size_t)B * S;
    attention_case c;
    c.qkv = random_tensor(rows * 3 * H, seed, -2.0f, 2.0f, dt);
    c.mask = malloc(rows * sizeof *c.mask);
    assert_non_null(c.mask);
    fill_mask(c.mask, B, S, pattern);
    c.ref = host_floats(rows * H);
    bq_cpu_attention(c.qkv, c.mask, B, S, H, heads, c.ref);
    return c;
}

static void attention_case_free(attention_case *c) {
    free(c->qkv), free(c->mask), free(c->ref);
}

typedef cudaError_t (*attention_fn)(const void *, const int32_t *, int, int, int, int, void *,
                                    bq_cuda_dtype, cudaStream_t);

/* bq_cuda_attention with each tiling of the 16-bit head-64 path (the same kernel as the default
 * elsewhere), in attention_fn's shape */
#define ATTENTION_DISPATCH(name, tiling)                                                           \
    static cudaError_t name(const void *qkv, const int32_t *mask, int batch, int seq_len,         \
                            int hidden, int heads, void *ctx, bq_cuda_dtype dt,                   \
                            cudaStream_t stream) {                                                \
        return bq_cuda_attention(qkv, mask, batch, seq_len, hidden, heads, ctx, dt, tiling,        \
                                 stream);                                                          \
    }
ATTENTION_DISPATCH(attention_dispatch, BQ_ATTENTION_ROWS64)
ATTENTION_DISPATCH(attention_dispatch_128, BQ_ATTENTION_ROWS128)
ATTENTION_DISPATCH(attention_dispatch_32, BQ_ATTENTION_ROWS32_KEYS2)
ATTENTION_DISPATCH(attention_dispatch_64k3, BQ_ATTENTION_ROWS64_KEYS3)
ATTENTION_DISPATCH(attention_dispatch_wgmma, BQ_ATTENTION_WGMMA128)
ATTENTION_DISPATCH(attention_dispatch_wgmma_overlap, BQ_ATTENTION_WGMMA128_OVERLAP)

/* Whether a tiling runs here (the wgmma one needs an sm_90 build and device); says once per
 * tiling and test when it does not, so that a skipped kernel is visible in the log. */
static bool tiling_runs_here(bq_attention_tiling t, const char *test) {
    if (bq_cuda_attention_tiling_available(t)) return true;
    static char said[BQ_ATTENTION_TILINGS][64];
    if (strncmp(said[t], test, sizeof said[t]) != 0) {
        printf("  %s: attention tiling %d not available in this build or on this device: skipped\n",
               test, (int)t);
        snprintf(said[t], sizeof said[t], "%s", test);
    }
    return false;
}

/* How a case names a tiling of the mma.sync kernel ("" for the default). */
static const char *tiling_label(bq_attention_tiling t) {
    switch (t) {
    case BQ_ATTENTION_ROWS128: return "rows=128 ";
    case BQ_ATTENTION_ROWS32_KEYS2: return "rows=32 keys/2 ";
    case BQ_ATTENTION_ROWS64_KEYS3: return "rows=64 keys/3 ";
    case BQ_ATTENTION_WGMMA128: return "wgmma rows=128 ";
    case BQ_ATTENTION_WGMMA128_OVERLAP: return "wgmma rows=128 overlap ";
    default: return "";
    }
}

static void test_attention(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    /* head sizes 4, 6, 8, 32, 64, 128; seq 1..384; d=64 in 16-bit takes the tensor-core path,
     * including seq lengths that are not multiples of 16 or 64 (tails) */
    const struct { int batch, seq, hidden, heads; } shapes[] = {
        {1, 1, 8, 2},   {2, 7, 24, 4},   {2, 16, 64, 8},    {2, 33, 32, 1},
        {1, 1, 64, 1},  {2, 64, 128, 2}, {3, 100, 192, 3},  {1, 33, 256, 2},
#ifdef BQ_CUDA_EMULATED
        /* BERT-large's 16 heads of 64 at a shorter length under the CPU emulator (tests/emu),
         * where the generic path at S=384 takes 14 s per run; test_attention_head64 covers S=384 */
        {2, 130, 1024, 16}};
#else
        {2, 384, 1024, 16}};
#endif
    const struct { attention_fn fn; const char *name; } paths[] = {
        {attention_dispatch, "dispatch"}, {bq_cuda_attention_generic, "generic"},
        {bq_cuda_attention_wmma, "wmma"}, {attention_dispatch_128, "dispatch-128"},
        {attention_dispatch_32, "dispatch-32"}, {attention_dispatch_64k3, "dispatch-64k3"},
        {attention_dispatch_wgmma, "dispatch-wgmma"},
        {attention_dispatch_wgmma_overlap, "dispatch-wgmma-overlap"}};
    uint64_t seed = 0x5eed0004;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (size_t di = 0; di < N_DTYPES; di++)
    for (int pattern = MASK_ALL_REAL; pattern <= MASK_SCATTERED; pattern++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        const int B = shapes[si].batch, S = shapes[si].seq, H = shapes[si].hidden;
        const int heads = shapes[si].heads;
        const size_t rows = (size_t)B * S;
        attention_case ac = attention_case_make(B, S, H, heads, (mask_pattern)pattern, dt, &seed);
        dev_buf d_qkv = dev_upload(ac.qkv, rows * 3 * H, dt);
        dev_buf d_mask = dev_upload_ints(ac.mask, rows);
        /* the generic path differs from the dispatch only for head size 64 (mma.sync tensor
         * cores in 16-bit, the register-tiled fp32 path in f32), the WMMA one only in 16-bit
         * (in f32 it is the generic path again), and so do the other tilings */
        const size_t n_paths = H / heads != 64           ? 1
                               : dt == BQ_CUDA_F32       ? 2
                                                         : sizeof paths / sizeof paths[0];
        for (size_t pi = 0; pi < n_paths; pi++) {
            if ((paths[pi].fn == attention_dispatch_wgmma &&
                 !tiling_runs_here(BQ_ATTENTION_WGMMA128, "test_attention")) ||
                (paths[pi].fn == attention_dispatch_wgmma_overlap &&
                 !tiling_runs_here(BQ_ATTENTION_WGMMA128_OVERLAP, "test_attention")))
                continue;
            dev_buf d_ctx = dev_alloc(rows * H * bq_cuda_dtype_size(dt));
            CUDA_OK(paths[pi].fn(d_qkv.ptr, d_mask.ptr, B, S, H, heads, d_ctx.ptr, dt, 0));
            CUDA_OK(cudaDeviceSynchronize());
            char what[160];
            snprintf(what, sizeof what, "attention/%s %s B=%d S=%d H=%d heads=%d %s",
                     paths[pi].name, bq_cuda_dtype_name(dt), B, S, H, heads, k_mask_names[pattern]);
            expect_guards_intact(&d_ctx, what);
            float *got = dev_download(&d_ctx, rows * H, dt);
            expect_close(what, got, ac.ref, rows * H, tolerance(dt));
            free(got);
            dev_free(&d_ctx);
        }
        dev_free(&d_qkv), dev_free(&d_mask);
        attention_case_free(&ac);
    }
    EXPECT_NO_CASE_FAILURES();
}

/* The head-size-64 paths (fp32: 128 query rows per block, 64-key tiles; fp16/bf16: mma.sync, 64
 * query rows per block, 64-key tiles double-buffered; both skip padding-only key tiles) against
 * the CPU twin and against a second path (fp32: generic; 16-bit: WMMA), over sequence lengths
 * around their tile sizes and every mask pattern. A sequence with no real token at all (no-real)
 * softmaxes over all keys at score - 10000, where fp32 has a spacing of 2^-10: scores that differ
 * in their last bits (summation order) can round to neighbouring values there and move
 * probabilities by ~1e-3 relative, so in fp32 that pattern gets 1e-4 (measured under 4e-5 in CPU
 * emulation); it still catches a kernel that skipped every tile (NaN) or dropped keys. The last
 * case passes buffers 4 bytes off 16-byte alignment, which the dispatch must route to the generic
 * (fp32) or WMMA (16-bit) path. */
static void test_attention_head64(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    /* BQ_TEST_QUICK=1 (the device run's racecheck and synccheck, which run each launch many times
     * slower): a single tile, a partial tile after two, and BERT's 384, instead of ten lengths */
    const int all_seqs[] = {1, 7, 63, 64, 65, 100, 128, 129, 384, 512};
    const int quick_seqs[] = {1, 129, 384};
    const char *quick_env = getenv("BQ_TEST_QUICK");
    const bool quick = quick_env && strcmp(quick_env, "1") == 0;
    const int *seqs = quick ? quick_seqs : all_seqs;
    const size_t n_seqs = quick ? sizeof quick_seqs / sizeof quick_seqs[0]
                                : sizeof all_seqs / sizeof all_seqs[0];
    const int B = 2, H = 128, heads = 2;
    uint64_t seed = 0x5eed0006;
    /* every tiling of the mma.sync kernel (16-bit; fp32 has one) */
    for (int ti = 0; ti < BQ_ATTENTION_TILINGS; ti++)
    for (size_t di = 0; di < N_DTYPES; di++)
    for (size_t si = 0; si <= n_seqs; si++)
    for (int pattern = MASK_ALL_REAL; pattern <= MASK_NO_REAL; pattern++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        const bq_attention_tiling tiling = (bq_attention_tiling)ti;
        if (tiling != BQ_ATTENTION_ROWS64 && dt == BQ_CUDA_F32) continue;
        if (!tiling_runs_here(tiling, "test_attention_head64")) continue;
        const size_t es = bq_cuda_dtype_size(dt);
        const bool unaligned = si == n_seqs; /* one extra case */
        if (unaligned && pattern != MASK_RAGGED) continue;
        const int S = unaligned ? 65 : seqs[si];
        const size_t rows = (size_t)B * S, offset = unaligned ? 4 : 0; /* in bytes */
        const double tol = pattern == MASK_NO_REAL && dt == BQ_CUDA_F32 ? 1e-4 : tolerance(dt);
        attention_case ac = attention_case_make(B, S, H, heads, (mask_pattern)pattern, dt, &seed);
        dev_buf d_qkv = dev_upload_at(ac.qkv, rows * 3 * H, dt, offset);
        dev_buf d_mask = dev_upload_ints(ac.mask, rows);
        dev_buf d_fast = dev_alloc_at(rows * H * es, offset);
        dev_buf d_other = dev_alloc(rows * H * es);
        const attention_fn other = dt == BQ_CUDA_F32 ? bq_cuda_attention_generic : bq_cuda_attention_wmma;
        const char *other_name = dt == BQ_CUDA_F32 ? "generic" : "wmma";
        CUDA_OK(
            bq_cuda_attention(d_qkv.ptr, d_mask.ptr, B, S, H, heads, d_fast.ptr, dt, tiling, 0));
        CUDA_OK(other(d_qkv.ptr, d_mask.ptr, B, S, H, heads, d_other.ptr, dt, 0));
        CUDA_OK(cudaDeviceSynchronize());

        char what[160];
        snprintf(what, sizeof what, "attention d=64 %s %s%sB=%d S=%d heads=%d %s",
                 bq_cuda_dtype_name(dt),
                 tiling_label(tiling),
                 unaligned ? "unaligned " : "", B, S, heads, k_mask_names[pattern]);
        expect_guards_intact(&d_fast, what);
        expect_guards_intact(&d_other, what);
        float *fast = dev_download(&d_fast, rows * H, dt);
        float *second = dev_download(&d_other, rows * H, dt);
        char label[200];
        snprintf(label, sizeof label, "%s: dispatch vs CPU", what);
        expect_close(label, fast, ac.ref, rows * H, tol);
        snprintf(label, sizeof label, "%s: %s vs CPU", what, other_name);
        expect_close(label, second, ac.ref, rows * H, tol);
        snprintf(label, sizeof label, "%s: dispatch vs %s", what, other_name);
        expect_close(label, fast, second, rows * H, 2 * tol);

        free(fast), free(second);
        dev_free(&d_qkv), dev_free(&d_mask), dev_free(&d_fast), dev_free(&d_other);
        attention_case_free(&ac);
    }
    EXPECT_NO_CASE_FAILURES();
}

/* Scores that rise along the sequence: key s's vector scaled by 1 + 4 s / S, so a row's max keeps
 * growing from tile to tile for some rows of a warp and not for others (those whose query points
 * away from the large keys): the online softmax's rescale of the running sums and accumulators
 * matters on every tile. Every tiling of the head-size-64 path against the CPU twin. */
static void test_attention_rising_scores(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    const int B = 2, H = 128, heads = 2;
    const int seqs[] = {200, 384};
    uint64_t seed = 0x5eed0009;
    for (int ti = 0; ti < BQ_ATTENTION_TILINGS; ti++)
    for (size_t di = 0; di < N_DTYPES; di++)
    for (size_t si = 0; si < sizeof seqs / sizeof seqs[0]; si++)
    for (int pattern = MASK_ALL_REAL; pattern <= MASK_RAGGED; pattern++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        const bq_attention_tiling tiling = (bq_attention_tiling)ti;
        const int S = seqs[si];
        if (tiling != BQ_ATTENTION_ROWS64 && dt == BQ_CUDA_F32) continue;
        if (!tiling_runs_here(tiling, "test_attention_rising_scores")) continue;
        if (pattern == MASK_ONE_REAL) continue;
        const size_t rows = (size_t)B * S;
        attention_case ac = attention_case_make(B, S, H, heads, (mask_pattern)pattern, dt, &seed);
        for (int b = 0; b < B; b++)
            for (int k = 0; k < S; k++) {
                float *key = ac.qkv + ((size_t)b * S + k) * 3 * H + H; /* the K third of the row */
                for (int c = 0; c < H; c++) key[c] *= 1.0f + 4.0f * (float)k / (float)S;
                round_to_dtype(key, (size_t)H, dt);
            }
        bq_cpu_attention(ac.qkv, ac.mask, B, S, H, heads, ac.ref);
        dev_buf d_qkv = dev_upload(ac.qkv, rows * 3 * H, dt);
        dev_buf d_mask = dev_upload_ints(ac.mask, rows);
        dev_buf d_ctx = dev_alloc(rows * H * bq_cuda_dtype_size(dt));
        CUDA_OK(bq_cuda_attention(d_qkv.ptr, d_mask.ptr, B, S, H, heads, d_ctx.ptr, dt, tiling, 0));
        CUDA_OK(cudaDeviceSynchronize());
        char what[160];
        snprintf(what, sizeof what, "attention rising scores %s %sB=%d S=%d %s",
                 bq_cuda_dtype_name(dt), tiling_label(tiling), B, S, k_mask_names[pattern]);
        expect_guards_intact(&d_ctx, what);
        float *got = dev_download(&d_ctx, rows * H, dt);
        expect_close(what, got, ac.ref, rows * H, tolerance(dt));
        free(got);
        dev_free(&d_qkv), dev_free(&d_mask), dev_free(&d_ctx);
        attention_case_free(&ac);
    }
    EXPECT_NO_CASE_FAILURES();
}

#ifndef BQ_CUDA_EMULATED /* cuDNN is a library, not one of our kernels: not emulated */
/* cuDNN's fused attention (--attention cudnn, and auto's other candidate) against the same CPU twin,
 * over every mask pattern, non-prefix ones included (the mask becomes an additive bias, so any 0/1
 * mask is exact), and lengths around its tiles. A shape no cuDNN engine takes on this GPU, or a
 * build without cuDNN, is reported and skipped. */
static void test_attention_cudnn(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    const int seqs[] = {1, 7, 64, 100, 384};
    const int B = 2, H = 128, heads = 2;
    uint64_t seed = 0x5eed000a;
    int ran = 0;
    for (size_t di = 0; di < N_DTYPES; di++)
    for (size_t si = 0; si < sizeof seqs / sizeof seqs[0]; si++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        const int S = seqs[si];
        if (dt == BQ_CUDA_F32) continue;
        bq_cudnn_attention *a = NULL;
        bq_err err;
        bq_err_clear(&err);
        if (bq_cudnn_attention_create(B, S, H, heads, dt, &a, &err) != BQ_OK) {
            print_message("  cuDNN attention %s S=%d not available: %s\n", bq_cuda_dtype_name(dt), S,
                          err.message);
            continue;
        }
        const size_t rows = (size_t)B * S;
        for (int pattern = MASK_ALL_REAL; pattern <= MASK_NO_REAL; pattern++) {
            attention_case ac =
                attention_case_make(B, S, H, heads, (mask_pattern)pattern, dt, &seed);
            dev_buf d_qkv = dev_upload(ac.qkv, rows * 3 * H, dt);
            dev_buf d_mask = dev_upload_ints(ac.mask, rows);
            dev_buf d_ctx = dev_alloc(rows * H * bq_cuda_dtype_size(dt));
            char what[160];
            snprintf(what, sizeof what, "attention/cudnn %s B=%d S=%d H=%d heads=%d %s",
                     bq_cuda_dtype_name(dt), B, S, H, heads, k_mask_names[pattern]);
            if (bq_cudnn_attention_set_mask(a, d_mask.ptr, B, 0, &err) != BQ_OK ||
                bq_cudnn_attention_run(a, d_qkv.ptr, B, d_ctx.ptr, 0, &err) != BQ_OK) {
                print_message("FAIL %s: %s\n", what, err.message);
                g_case_failures++;
            } else {
                CUDA_OK(cudaDeviceSynchronize());
                expect_guards_intact(&d_ctx, what);
                float *got = dev_download(&d_ctx, rows * H, dt);
                expect_close(what, got, ac.ref, rows * H, tolerance(dt));
                free(got);
                ran++;
            }
            dev_free(&d_qkv), dev_free(&d_mask), dev_free(&d_ctx);
            attention_case_free(&ac);
        }
        bq_cudnn_attention_free(a);
    }
    EXPECT_NO_CASE_FAILURES();
    if (ran == 0) {
        print_message("skipped: no cuDNN attention engine for any shape here\n");
        skip();
    }
}
#endif

/* BQ_ATTENTION_KERNEL=wmma (the device run's fallback) must route 16-bit head-64 attention to the
 * WMMA kernel: the dispatcher's output is then bit for bit bq_cuda_attention_wmma's. */
static void test_attention_kernel_switch(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    const int B = 2, S = 100, H = 128, heads = 2;
    const size_t rows = (size_t)B * S;
    uint64_t seed = 0x5eed0009;
    for (size_t di = 0; di < N_DTYPES; di++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        if (dt == BQ_CUDA_F32) continue;
        const size_t es = bq_cuda_dtype_size(dt);
        attention_case ac = attention_case_make(B, S, H, heads, MASK_RAGGED, dt, &seed);
        dev_buf d_qkv = dev_upload(ac.qkv, rows * 3 * H, dt);
        dev_buf d_mask = dev_upload_ints(ac.mask, rows);
        dev_buf d_switched = dev_alloc(rows * H * es), d_wmma = dev_alloc(rows * H * es);
        assert_int_equal(setenv("BQ_ATTENTION_KERNEL", "wmma", 1), 0);
        CUDA_OK(bq_cuda_attention(d_qkv.ptr, d_mask.ptr, B, S, H, heads, d_switched.ptr, dt,
                                  BQ_ATTENTION_ROWS64, 0));
        unsetenv("BQ_ATTENTION_KERNEL");
        CUDA_OK(bq_cuda_attention_wmma(d_qkv.ptr, d_mask.ptr, B, S, H, heads, d_wmma.ptr, dt, 0));
        CUDA_OK(cudaDeviceSynchronize());
        float *switched = dev_download(&d_switched, rows * H, dt);
        float *wmma = dev_download(&d_wmma, rows * H, dt);
        size_t differ = 0;
        for (size_t i = 0; i < rows * H; i++)
            differ += memcmp(&switched[i], &wmma[i], sizeof(float)) != 0;
        if (differ) {
            print_message("FAIL BQ_ATTENTION_KERNEL=wmma %s: %zu of %zu outputs differ from the WMMA "
                          "kernel's\n",
                          bq_cuda_dtype_name(dt), differ, rows * H);
            g_case_failures++;
        }
        free(switched), free(wmma);
        dev_free(&d_qkv), dev_free(&d_mask), dev_free(&d_switched), dev_free(&d_wmma);
        attention_case_free(&ac);
    }
    EXPECT_NO_CASE_FAILURES();
}

/* Packed sequences (bq_cuda_attention_varlen) against the CPU twin: lengths around the tiles (1,
 * 63 / 64 / 65, 200, 384; the longest not last) and an empty one on every path: head size 64 (fp32: the
 * register-tiled kernel; 16-bit: mma.sync in every tiling, WMMA under BQ_ATTENTION_KERNEL=wmma),
 * the same with qkv and ctx 4 bytes off 16-byte alignment (fp32: generic; 16-bit: WMMA), head
 * size 32 (generic). The default tiling also runs with max_len past the longest (blocks with no
 * rows at all). Then varlen over one sequence must equal the padded call on it alone (batch 1,
 * all-ones mask) bit for bit: the same kernel on the same keys. */
static void test_attention_varlen(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    static const int lens[] = {65, 1, 384, 0, 63, 200, 64}; /* 0: an empty sequence returns at once */
    enum { N_SEQS = sizeof lens / sizeof lens[0], SINGLE = 200 };
    int32_t offsets[N_SEQS + 1] = {0};
    int longest = 0;
    for (int i = 0; i < N_SEQS; i++) {
        offsets[i + 1] = offsets[i] + lens[i];
        if (lens[i] > longest) longest = lens[i];
    }
    const int32_t single_offsets[2] = {0, SINGLE};
    int32_t ones[SINGLE];
    for (int i = 0; i < SINGLE; i++) ones[i] = 1;
    const struct { int hidden, heads; size_t offset; bool wmma_env; const char *name; } paths[] = {
        {128, 2, 0, false, "d=64"},
        {128, 2, 0, true, "d=64 BQ_ATTENTION_KERNEL=wmma"},
        {128, 2, 4, false, "d=64 unaligned"},
        {64, 2, 0, false, "d=32"}};
    const size_t rows = (size_t)offsets[N_SEQS];
    uint64_t seed = 0x5eed000b;
    for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++)
    for (size_t di = 0; di < N_DTYPES; di++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        const int H = paths[pi].hidden, heads = paths[pi].heads;
        const size_t es = bq_cuda_dtype_size(dt), offset = paths[pi].offset;
        if (paths[pi].wmma_env && dt == BQ_CUDA_F32) continue;
        if (paths[pi].wmma_env) assert_int_equal(setenv("BQ_ATTENTION_KERNEL", "wmma", 1), 0);
        const int n_tilings =
            bq_cuda_attention_has_tilings(dt, H, heads) && offset == 0 ? BQ_ATTENTION_TILINGS : 1;
        float *qkv = random_tensor(rows * 3 * H, &seed, -2.0f, 2.0f, dt);
        float *ref = host_floats(rows * H);
        bq_cpu_attention_varlen(qkv, offsets, N_SEQS, H, heads, ref);
        dev_buf d_qkv = dev_upload_at(qkv, rows * 3 * H, dt, offset);
        dev_buf d_offsets = dev_upload_ints(offsets, N_SEQS + 1);
        dev_buf d_single_offsets = dev_upload_ints(single_offsets, 2);
        dev_buf d_ones = dev_upload_ints(ones, SINGLE);
        for (int ti = 0; ti < n_tilings; ti++)
        for (int slack = 0; slack <= (ti == 0 ? 100 : 0); slack += 100) {
            const bq_attention_tiling tiling = (bq_attention_tiling)ti;
            if (!tiling_runs_here(tiling, "test_attention_varlen")) continue;
            dev_buf d_ctx = dev_alloc_at(rows * H * es, offset);
            CUDA_OK(bq_cuda_attention_varlen(d_qkv.ptr, d_offsets.ptr, N_SEQS, longest + slack, H,
                                             heads, d_ctx.ptr, dt, tiling, 0));
            CUDA_OK(cudaDeviceSynchronize());
            char what[160];
            snprintf(what, sizeof what, "attention varlen %s %s %sheads=%d max_len=%d",
                     bq_cuda_dtype_name(dt), paths[pi].name, tiling_label(tiling), heads,
                     longest + slack);
            expect_guards_intact(&d_ctx, what);
            float *got = dev_download(&d_ctx, rows * H, dt);
            expect_close(what, got, ref, rows * H, tolerance(dt));
            free(got);
            dev_free(&d_ctx);
        }
        for (int ti = 0; ti < n_tilings; ti++) {
            const bq_attention_tiling tiling = (bq_attention_tiling)ti;
            const size_t bytes = (size_t)SINGLE * H * es;
            dev_buf d_varlen = dev_alloc_at(bytes, offset), d_padded = dev_alloc_at(bytes, offset);
            CUDA_OK(bq_cuda_attention_varlen(d_qkv.ptr, d_single_offsets.ptr, 1, SINGLE, H, heads,
                                             d_varlen.ptr, dt, tiling, 0));
            CUDA_OK(bq_cuda_attention(d_qkv.ptr, d_ones.ptr, 1, SINGLE, H, heads, d_padded.ptr, dt,
                                      tiling, 0));
            CUDA_OK(cudaDeviceSynchronize());
            unsigned char *varlen = malloc(bytes), *padded = malloc(bytes);
            assert_non_null(varlen);
            assert_non_null(padded);
            CUDA_OK(cudaMemcpy(varlen, d_varlen.ptr, bytes, cudaMemcpyDeviceToHost));
            CUDA_OK(cudaMemcpy(padded, d_padded.ptr, bytes, cudaMemcpyDeviceToHost));
            size_t differ = 0;
            for (size_t i = 0; i < (size_t)SINGLE * H; i++)
                differ += memcmp(varlen + i * es, padded + i * es, es) != 0;
            char what[160];
            snprintf(what, sizeof what, "attention varlen %s %s %sone sequence S=%d vs padded",
                     bq_cuda_dtype_name(dt), paths[pi].name, tiling_label(tiling), SINGLE);
            print_message("%s %-60s %zu of %zu outputs differ\n", differ ? "FAIL" : "ok  ", what,
                          differ, (size_t)SINGLE * H);
            if (differ) g_case_failures++;
            free(varlen), free(padded);
            dev_free(&d_varlen), dev_free(&d_padded);
        }
        if (paths[pi].wmma_env) unsetenv("BQ_ATTENTION_KERNEL");
        dev_free(&d_qkv), dev_free(&d_offsets), dev_free(&d_single_offsets), dev_free(&d_ones);
        free(qkv), free(ref);
    }
    EXPECT_NO_CASE_FAILURES();
}

/* ---- QA head -------------------------------------------------------------------------------- */

static void test_qa_head(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    const int rows_list[] = {1, 7, 33, 384};
    const int hidden_list[] = {20, 24, 64, 1024};
    uint64_t seed = 0x5eed0005;
    for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++)
    for (size_t hi = 0; hi < sizeof hidden_list / sizeof hidden_list[0]; hi++)
    for (size_t di = 0; di < N_DTYPES; di++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        const int rows = rows_list[ri], H = hidden_list[hi];
        float *x = random_tensor((size_t)rows * H, &seed, -2.0f, 2.0f, dt);
        float *W = random_tensor((size_t)2 * H, &seed, -0.5f, 0.5f, dt);
        float *b = random_tensor(2, &seed, -1.0f, 1.0f, dt);
        float *ref = host_floats((size_t)2 * rows); /* start logits then end logits */
        bq_cpu_qa_head(x, W, b, rows, H, ref, ref + rows);

        dev_buf d_x = dev_upload(x, (size_t)rows * H, dt), d_W = dev_upload(W, (size_t)2 * H, dt);
        dev_buf d_b = dev_upload(b, 2, dt);
        dev_buf d_start = dev_alloc((size_t)rows * sizeof(float));
        dev_buf d_end = dev_alloc((size_t)rows * sizeof(float));
        CUDA_OK(bq_cuda_qa_head(d_x.ptr, d_W.ptr, d_b.ptr, rows, H, d_start.ptr, d_end.ptr, dt, 0));
        CUDA_OK(cudaDeviceSynchronize());
        char what[160];
        snprintf(what, sizeof what, "qa_head %s rows=%d H=%d", bq_cuda_dtype_name(dt), rows, H);
        expect_guards_intact(&d_start, what);
        expect_guards_intact(&d_end, what);
        float *got = host_floats((size_t)2 * rows);
        CUDA_OK(cudaMemcpy(got, d_start.ptr, rows * sizeof(float), cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(got + rows, d_end.ptr, rows * sizeof(float), cudaMemcpyDeviceToHost));
        expect_close(what, got, ref, (size_t)2 * rows, 1e-4);

        free(got);
        dev_free(&d_x), dev_free(&d_W), dev_free(&d_b), dev_free(&d_start), dev_free(&d_end);
        free(x), free(W), free(b), free(ref);
    }
    EXPECT_NO_CASE_FAILURES();
}

/* bq_cuda_normwise_diff (the engine's check of attention and GEMM candidates) against double sums
 * and exact maxima on the host, over lengths around its block and grid sizes; then its two
 * special rules: equal bits (here NaN bytes in both) add nothing, and a NaN against a number
 * makes the difference sum and the largest difference infinite. The sums accumulate onto what the
 * buffer held, the maxima only rise. */
static void test_normwise_diff(void **state) {
    (void)state;
    SKIP_WITHOUT_GPU();
    const size_t lengths[] = {1, 31, 256, 1000, 262145, 300000};
    uint64_t seed = 0x5eed0006;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++)
    for (size_t di = 0; di < N_DTYPES; di++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        const size_t n = lengths[li];
        float *ref = random_tensor(n, &seed, -2.0f, 2.0f, dt);
        float *a = host_floats(n);
        memcpy(a, ref, n * sizeof *a);
        /* every third element moved by a little, so that equal and differing bits both occur */
        for (size_t i = 0; i < n; i += 3) a[i] += 0.05f * (float)((i % 7) + 1);
        round_to_dtype(a, n, dt);
        double want[BQ_NORMWISE_SUMS] = {0.0, 0.0, 0.0, 0.0};
        for (size_t i = 0; i < n; i++) {
            want[0] += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
            want[1] += (double)ref[i] * ref[i];
            want[2] = fmax(want[2], fabsf(a[i] - ref[i])); /* the kernel's fp32 difference */
            want[3] = fmax(want[3], fabsf(ref[i]));
        }
        dev_buf d_a = dev_upload(a, n, dt), d_ref = dev_upload(ref, n, dt);
        dev_buf d_sums = dev_alloc(BQ_NORMWISE_SUMS * sizeof(double));
        /* sums added onto, maxima raised from below any */
        const double start[BQ_NORMWISE_SUMS] = {1.0, 2.0, 1e-9, 1e-9};
        CUDA_OK(cudaMemcpy(d_sums.ptr, start, sizeof start, cudaMemcpyHostToDevice));
        CUDA_OK(bq_cuda_normwise_diff(d_a.ptr, d_ref.ptr, n, dt, (double *)d_sums.ptr, 0));
        CUDA_OK(cudaDeviceSynchronize());
        char what[96];
        snprintf(what, sizeof what, "normwise_diff %s n=%zu", bq_cuda_dtype_name(dt), n);
        expect_guards_intact(&d_sums, what);
        double got[BQ_NORMWISE_SUMS];
        CUDA_OK(cudaMemcpy(got, d_sums.ptr, sizeof got, cudaMemcpyDeviceToHost));
        const double e0 = fabs(got[0] - 1.0 - want[0]) / want[0];
        const double e1 = fabs(got[1] - 2.0 - want[1]) / want[1];
        /* fp32 per element, double sums: a few fp32 ulps of each square; the maxima exact */
        bool ok = e0 < 1e-6 && e1 < 1e-6 && got[2] == want[2] && got[3] == want[3];
        if (!ok)
            print_message("FAIL %s: sums %.9g / %.9g, want %.9g / %.9g; largest difference %.9g, "
                          "want %.9g; largest reference %.9g, want %.9g\n", what, got[0] - 1.0,
                          got[1] - 2.0, want[0], want[1], got[2], want[2], got[3], want[3]);
        /* maxima only rise: a second measure onto maxima above the data leaves them */
        const double high[BQ_NORMWISE_SUMS] = {0.0, 0.0, 1e9, 1e9};
        CUDA_OK(cudaMemcpy(d_sums.ptr, high, sizeof high, cudaMemcpyHostToDevice));
        CUDA_OK(bq_cuda_normwise_diff(d_a.ptr, d_ref.ptr, n, dt, (double *)d_sums.ptr, 0));
        CUDA_OK(cudaMemcpy(got, d_sums.ptr, sizeof got, cudaMemcpyDeviceToHost));
        if (ok && (got[2] != 1e9 || got[3] != 1e9)) {
            print_message("FAIL %s: maxima above the data lowered to %.9g / %.9g\n", what, got[2],
                          got[3]);
            ok = false;
        }
        if (!ok) {
            g_case_failures++;
        } else {
            print_message("ok   %s (relative error of the sums %.1e, %.1e)\n", what, e0, e1);
        }
        dev_free(&d_a), dev_free(&d_ref), dev_free(&d_sums);
        free(a), free(ref);
    }
    /* NaN bytes (dev_alloc's fill) in both: equal bits, nothing added; then one element made a
     * number in a only: an infinite difference */
    for (size_t di = 0; di < N_DTYPES; di++) {
        const bq_cuda_dtype dt = k_dtypes[di];
        const size_t n = 100, es = bq_cuda_dtype_size(dt);
        dev_buf d_a = dev_alloc(n * es), d_ref = dev_alloc(n * es);
        dev_buf d_sums = dev_alloc(BQ_NORMWISE_SUMS * sizeof(double));
        CUDA_OK(cudaMemset(d_sums.ptr, 0, BQ_NORMWISE_SUMS * sizeof(double)));
        CUDA_OK(bq_cuda_normwise_diff(d_a.ptr, d_ref.ptr, n, dt, (double *)d_sums.ptr, 0));
        double got[BQ_NORMWISE_SUMS];
        CUDA_OK(cudaMemcpy(got, d_sums.ptr, sizeof got, cudaMemcpyDeviceToHost));
        char what[96];
        snprintf(what, sizeof what, "normwise_diff %s, NaN bytes in both", bq_cuda_dtype_name(dt));
        if (got[0] != 0.0 || got[2] != 0.0) {
            print_message("FAIL %s: difference sum %g, largest %g, want 0 (equal bits)\n", what,
                          got[0], got[2]);
            g_case_failures++;
        }
        CUDA_OK(cudaMemset((unsigned char *)d_a.ptr + 7 * es, 0, es)); /* a[7] = 0.0 */
        CUDA_OK(cudaMemset(d_sums.ptr, 0, BQ_NORMWISE_SUMS * sizeof(double)));
        CUDA_OK(bq_cuda_normwise_diff(d_a.ptr, d_ref.ptr, n, dt, (double *)d_sums.ptr, 0));
        CUDA_OK(cudaMemcpy(got, d_sums.ptr, sizeof got, cudaMemcpyDeviceToHost));
        if (!isinf(got[0]) || !isinf(got[2]) || !isinf(got[3])) {
            print_message("FAIL %s: a number against NaN gave a difference sum %g, largest "
                          "difference %g, largest reference %g, want inf\n", what, got[0], got[2],
                          got[3]);
            g_case_failures++;
        } else {
            print_message("ok   %s: equal bits add 0, a number against NaN inf\n", what);
        }
        dev_free(&d_a), dev_free(&d_ref), dev_free(&d_sums);
    }
    EXPECT_NO_CASE_FAILURES();
}

/* ---- no GPU needed: argument validation and status mapping ---------------------------------- */

/* Entry points reject bad arguments before touching the device. The pointers are never
 * dereferenced: validation fails first. */
static void test_invalid_arguments(void **state) {
    (void)state;
    char dummy[64] = {0};
    void *p = dummy;
    const int32_t *ip = (const int32_t *)dummy;
    float *fp = (float *)dummy;
    const cudaError_t bad = cudaErrorInvalidValue;

    assert_int_equal(bq_cuda_embeddings_layernorm(NULL, ip, NULL, 1, 1, 8, p, p, p, p, p, LN_EPS, p,
                                                  BQ_CUDA_F32, 0), bad);
    assert_int_equal(bq_cuda_embeddings_layernorm(ip, ip, NULL, 1, 0, 8, p, p, p, p, p, LN_EPS, p,
                                                  BQ_CUDA_F32, 0), bad);
    assert_int_equal(bq_cuda_embeddings_layernorm(ip, ip, ip, 1, 1, 8, p, p, p, p, p, LN_EPS, p,
                                                  (bq_cuda_dtype)7, 0), bad);

    assert_int_equal(bq_cuda_bias_residual_layernorm(p, NULL, NULL, p, p, 1, 8, LN_EPS, p,
                                                     BQ_CUDA_F16, 0), bad);
    assert_int_equal(bq_cuda_bias_residual_layernorm(p, NULL, p, p, p, -1, 8, LN_EPS, p,
                                                     BQ_CUDA_F16, 0), bad);
    assert_int_equal(bq_cuda_bias_residual_layernorm(p, NULL, p, p, p, 1, 0, LN_EPS, p,
                                                     BQ_CUDA_F16, 0), bad);

    assert_int_equal(bq_cuda_bias_gelu(NULL, p, 1, 8, BQ_CUDA_BF16, 0), bad);
    assert_int_equal(bq_cuda_bias_gelu(p, p, 0, 8, BQ_CUDA_BF16, 0), bad);

    /* several tilings only on the 16-bit head-64 path */
    assert_int_equal(bq_cuda_attention_has_tilings(BQ_CUDA_F16, 1024, 16), 1);
    assert_int_equal(bq_cuda_attention_has_tilings(BQ_CUDA_BF16, 128, 2), 1);
    assert_int_equal(bq_cuda_attention_has_tilings(BQ_CUDA_F32, 1024, 16), 0);
    assert_int_equal(bq_cuda_attention_has_tilings(BQ_CUDA_F16, 64, 4), 0); /* head size 16 */
    /* hidden not divisible by heads; head size above 128; NULL mask; zero batch */
    const bq_attention_tiling rows64 = BQ_ATTENTION_ROWS64;
    assert_int_equal(bq_cuda_attention(p, ip, 1, 4, 30, 4, p, BQ_CUDA_F32, rows64, 0), bad);
    assert_int_equal(bq_cuda_attention(p, ip, 1, 4, 512, 2, p, BQ_CUDA_F16, rows64, 0), bad);
    assert_int_equal(bq_cuda_attention(p, NULL, 1, 4, 64, 1, p, BQ_CUDA_F16, rows64, 0), bad);
    /* which tilings run: every mma.sync one; nothing out of range; wgmma only where its
     * kernel is built and the device is sm_90, and where it is not, asking for it on the
     * tensor-core path says "not supported" */
    assert_int_equal(bq_cuda_attention_tiling_available(BQ_ATTENTION_ROWS64), 1);
    assert_int_equal(bq_cuda_attention_tiling_available(BQ_ATTENTION_ROWS64_KEYS3), 1);
    assert_int_equal(bq_cuda_attention_tiling_available(BQ_ATTENTION_TILINGS), 0);
    assert_int_equal(bq_cuda_attention_tiling_available((bq_attention_tiling)-1), 0);
    assert_int_equal(bq_cuda_attention_tiling_available(BQ_ATTENTION_WGMMA128),
                     bq_attention_wgmma_built() && bq_cuda_device_is_sm90());
    assert_int_equal(bq_cuda_attention_tiling_available(BQ_ATTENTION_WGMMA128_OVERLAP),
                     bq_attention_wgmma_built() && bq_cuda_device_is_sm90());
    assert_int_equal(setenv("BQ_ATTENTION_KERNEL", "mma", 1), 0); /* the switch that drops it */
    assert_int_equal(bq_cuda_attention_tiling_available(BQ_ATTENTION_WGMMA128), 0);
    assert_int_equal(bq_cuda_attention_tiling_available(BQ_ATTENTION_WGMMA128_OVERLAP), 0);
    assert_int_equal(bq_cuda_attention_tiling_available(BQ_ATTENTION_ROWS128), 1);
    unsetenv("BQ_ATTENTION_KERNEL");
    if (!bq_attention_wgmma_built() || !bq_cuda_device_is_sm90()) {
        /* refused before anything is read or launched, so host pointers do (16-byte aligned) */
        _Alignas(16) char host[16] = {0};
        assert_int_equal(bq_cuda_attention(host, (const int32_t *)host, 1, 4, 64, 1, host,
                                           BQ_CUDA_F16, BQ_ATTENTION_WGMMA128, 0),
                         cudaErrorNotSupported);
        assert_int_equal(bq_cuda_attention(host, (const int32_t *)host, 1, 4, 64, 1, host,
                                           BQ_CUDA_F16, BQ_ATTENTION_WGMMA128_OVERLAP, 0),
                         cudaErrorNotSupported);
    }
    /* a tiling the kernels do not have */
    assert_int_equal(bq_cuda_attention(p, ip, 1, 4, 64, 1, p, BQ_CUDA_F16, BQ_ATTENTION_TILINGS, 0),
                     bad);
    assert_int_equal(bq_cuda_attention(p, ip, 1, 4, 64, 1, p, BQ_CUDA_F16, (bq_attention_tiling)-1,
                                       0),
                     bad);
    assert_int_equal(bq_cuda_attention_generic(p, ip, 0, 4, 64, 1, p, BQ_CUDA_F32, 0), bad);
    /* more padded rows than an int indexes */
    assert_int_equal(bq_cuda_attention(p, ip, 65535, 65535, 64, 1, p, BQ_CUDA_F16, rows64, 0), bad);
    /* packed: NULL qkv / offsets / ctx; no sequence; max_len 0; too many sequences for grid z;
     * hidden not divisible by heads; head size above 128; tilings out of range */
    assert_int_equal(bq_cuda_attention_varlen(NULL, ip, 1, 4, 64, 1, p, BQ_CUDA_F16, rows64, 0), bad);
    assert_int_equal(bq_cuda_attention_varlen(p, NULL, 1, 4, 64, 1, p, BQ_CUDA_F16, rows64, 0), bad);
    assert_int_equal(bq_cuda_attention_varlen(p, ip, 1, 4, 64, 1, NULL, BQ_CUDA_F16, rows64, 0), bad);
    assert_int_equal(bq_cuda_attention_varlen(p, ip, 0, 4, 64, 1, p, BQ_CUDA_F16, rows64, 0), bad);
    assert_int_equal(bq_cuda_attention_varlen(p, ip, 1, 0, 64, 1, p, BQ_CUDA_F16, rows64, 0), bad);
    assert_int_equal(bq_cuda_attention_varlen(p, ip, 65536, 4, 64, 1, p, BQ_CUDA_F16, rows64, 0),
                     bad);
    assert_int_equal(bq_cuda_attention_varlen(p, ip, 1, 4, 30, 4, p, BQ_CUDA_F32, rows64, 0), bad);
    assert_int_equal(bq_cuda_attention_varlen(p, ip, 1, 4, 512, 2, p, BQ_CUDA_F16, rows64, 0), bad);
    assert_int_equal(bq_cuda_attention_varlen(p, ip, 1, 4, 64, 1, p, BQ_CUDA_F16,
                                              BQ_ATTENTION_TILINGS, 0),
                     bad);
    assert_int_equal(bq_cuda_attention_varlen(p, ip, 1, 4, 64, 1, p, BQ_CUDA_F16,
                                              (bq_attention_tiling)-1, 0),
                     bad);

    assert_int_equal(bq_cuda_qa_head(p, p, p, 1, 8, fp, NULL, BQ_CUDA_F32, 0), bad);
    assert_int_equal(bq_cuda_qa_head(p, p, p, 1, -8, fp, fp, BQ_CUDA_F32, 0), bad);

    double *dp = (double *)dummy;
    assert_int_equal(bq_cuda_normwise_diff(NULL, p, 8, BQ_CUDA_F16, dp, 0), bad);
    assert_int_equal(bq_cuda_normwise_diff(p, p, 8, BQ_CUDA_F16, NULL, 0), bad);
    assert_int_equal(bq_cuda_normwise_diff(p, p, 0, BQ_CUDA_F16, dp, 0), bad);
    assert_int_equal(bq_cuda_normwise_diff(p, p, 8, (bq_cuda_dtype)7, dp, 0), bad);
}

static void test_status_mapping(void **state) {
    (void)state;
    bq_err err;
    assert_int_equal(bq_cuda_check(cudaSuccess, "ok()", "x.cu", 1, &err), BQ_OK);

    assert_int_equal(bq_cuda_check(cudaErrorMemoryAllocation, "cudaMalloc(&p, n)", "gemm.cu", 42,
                                   &err), BQ_ERR_DEVICE_OOM);
    assert_int_equal(err.status, BQ_ERR_DEVICE_OOM);
    assert_non_null(strstr(err.message, "cudaMalloc(&p, n)"));
    assert_non_null(strstr(err.message, "gemm.cu:42"));

    assert_int_equal(bq_cuda_check(cudaErrorNoDevice, "cudaSetDevice(0)", "e.cu", 7, &err),
                     BQ_ERR_NO_DEVICE);
    assert_non_null(strstr(err.message, "--device cpu"));
    assert_int_equal(bq_cuda_check(cudaErrorInsufficientDriver, "cudaSetDevice(0)", "e.cu", 7,
                                   &err), BQ_ERR_NO_DEVICE);

    assert_int_equal(bq_cuda_check(cudaErrorInvalidValue, "k<<<>>>", "a.cu", 3, &err), BQ_ERR_DEVICE);
    assert_non_null(strstr(err.message, "cudaErrorInvalidValue"));

    assert_int_equal(bq_cublas_check(CUBLAS_STATUS_SUCCESS, "s", "g.cu", 1, &err), BQ_OK);
    assert_int_equal(bq_cublas_check(CUBLAS_STATUS_ALLOC_FAILED, "cublasCreate(&h)", "g.cu", 9,
                                     &err), BQ_ERR_DEVICE_OOM);
    assert_non_null(strstr(err.message, "cublasCreate(&h)"));
    assert_int_equal(bq_cublas_check(CUBLAS_STATUS_EXECUTION_FAILED, "s", "g.cu", 1, &err),
                     BQ_ERR_DEVICE);
    /* a NULL bq_err is allowed */
    assert_int_equal(bq_cuda_check(cudaErrorMemoryAllocation, "s", "f", 1, NULL), BQ_ERR_DEVICE_OOM);
#ifdef BQ_HAVE_CUDNN
    assert_int_equal(bq_cudnn_check(CUDNN_STATUS_NOT_SUPPORTED_SHAPE, "plan", "c.cu", 5, &err),
                     BQ_ERR_UNSUPPORTED);
    assert_int_equal(bq_cudnn_check(CUDNN_STATUS_EXECUTION_FAILED, "run", "c.cu", 6, &err),
                     BQ_ERR_DEVICE);
#endif
}

/* ---- main ----------------------------------------------------------------------------------- */

static void detect_gpu(void) {
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess) {
        snprintf(g_no_gpu_reason, sizeof g_no_gpu_reason, "no usable CUDA device: %s (%s)",
                 cudaGetErrorName(rc), cudaGetErrorString(rc));
        return;
    }
    if (count == 0) {
        snprintf(g_no_gpu_reason, sizeof g_no_gpu_reason, "no CUDA device present");
        return;
    }
    g_have_gpu = true;
}

int main(void) {
    detect_gpu();
    if (!g_have_gpu) printf("test_gpu_ops: GPU tests will be skipped: %s\n", g_no_gpu_reason);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_embeddings_layernorm),
        cmocka_unit_test(test_embeddings_positions),
        cmocka_unit_test(test_bias_residual_layernorm),
        cmocka_unit_test(test_bias_gelu),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_head64),
        cmocka_unit_test(test_attention_rising_scores),
        cmocka_unit_test(test_attention_kernel_switch),
        cmocka_unit_test(test_attention_varlen),
#ifndef BQ_CUDA_EMULATED
        cmocka_unit_test(test_attention_cudnn),
#endif
        cmocka_unit_test(test_qa_head),
        cmocka_unit_test(test_normwise_diff),
    };
    bq_test_filter_from_env();
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (failed) return failed;
    return g_have_gpu ? 0 : 77; /* 77: ctest reports the binary as skipped */
}

#endif /* BQ_HAVE_CUDA */
