/* test_forward_cpu.c - the fp32 CPU reference forward pass.
 *
 * Op level: every bq_cpu_* twin against naive double-precision loops written here.
 * Model level: tiny random checkpoints (F32, F16, BF16) against float64 numpy logits produced by
 * tools/golden_forward.py (an independent implementation), tolerance 1e-4 * max|reference|. */
#include "test_support.h"

#include "bq_math.h"
#include "forward_cpu.h"
#include "row_pool.h"
#include "model.h"

#include <cblas.h> /* openblas_get_num_threads */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------ */

static float *random_floats(size_t n, uint64_t *state, float lo, float hi) {
    float *x = malloc(n * sizeof *x + 1);
    assert_non_null(x);
    bq_test_fill_uniform(x, n, state, lo, hi);
    return x;
}

/* Asserts max|got - ref| <= rel * max|ref| + abs_floor and returns the measured ratio. */
static double check_close(const char *what, const float *got, const double *ref, size_t n,
                          double rel, double abs_floor) {
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= max_diff)) max_diff = d; /* also catches NaN */
        if (fabs(ref[i]) > max_ref) max_ref = fabs(ref[i]);
    }
    double ratio = max_ref > 0 ? max_diff / max_ref : max_diff;
    if (!(max_diff <= rel * max_ref + abs_floor))
        fail_msg("%s: max|diff| %.3e vs max|ref| %.3e (ratio %.3e > %.1e)", what, max_diff,
                 max_ref, ratio, rel);
    return ratio;
}

static void naive_layernorm(const double *v, const float *g, const float *b, int H, double eps,
                            double *out) {
    double mean = 0, var = 0;
    for (int c = 0; c < H; c++) mean += v[c];
    mean /= H;
    for (int c = 0; c < H; c++) var += (v[c] - mean) * (v[c] - mean);
    var /= H;
    for (int c = 0; c < H; c++) out[c] = (v[c] - mean) / sqrt(var + eps) * g[c] + b[c];
}

/* ---- op-level tests ----------------------------------------------------------------------- */

static void test_linear(void **state) {
    (void)state;
    uint64_t seed = 11;
    const int rows = 5, in = 7, out = 3;
    float *x = random_floats((size_t)rows * in, &seed, -1, 1);
    float *W = random_floats((size_t)out * in, &seed, -1, 1);
    float *b = random_floats(out, &seed, -1, 1);
    float y[5 * 3], y_nobias[5 * 3];
    double ref[5 * 3], ref_nobias[5 * 3];
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < out; c++) {
            double s = 0;
            for (int k = 0; k < in; k++) s += (double)x[r * in + k] * W[c * in + k];
            ref_nobias[r * out + c] = s;
            ref[r * out + c] = s + b[c];
        }
    bq_cpu_linear(x, W, b, rows, in, out, y);
    bq_cpu_linear(x, W, NULL, rows, in, out, y_nobias);
    check_close("linear", y, ref, (size_t)rows * out, 1e-6, 0);
    check_close("linear without bias", y_nobias, ref_nobias, (size_t)rows * out, 1e-6, 0);
    free(x);
    free(W);
    free(b);
}

static void test_bias_gelu(void **state) {
    (void)state;
    const int rows = 4, cols = 101;
    float *x = malloc(sizeof(float) * rows * cols);
    float bias[101];
    double *ref = malloc(sizeof(double) * rows * cols);
    for (int c = 0; c < cols; c++) bias[c] = 0.01f * (float)(c % 7) - 0.03f;
    for (int i = 0; i < rows * cols; i++) {
        x[i] = -8.0f + 16.0f * (float)i / (float)(rows * cols - 1); /* covers both tails */
        double v = (double)x[i] + bias[i % cols];
        ref[i] = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    }
    bq_cpu_bias_gelu(x, bias, rows, cols);
    check_close("bias+gelu", x, ref, (size_t)rows * cols, 1e-6, 1e-7);
    /* Known values of the erf GELU (the tanh approximation gives 0.841192 at 1). */
    float probe[3] = {1.0f, -1.0f, 3.0f};
    bq_cpu_bias_gelu(probe, NULL, 1, 3);
    assert_true(fabs(probe[0] - 0.8413447) < 1e-6);
    assert_true(fabs(probe[1] + 0.1586553) < 1e-6);
    assert_true(fabs(probe[2] - 2.9959502) < 1e-5);
    free(x);
    free(ref);
}

static void test_bias_residual_layernorm(void **state) {
    (void)state;
    uint64_t seed = 12;
    const int rows = 6, H = 37;
    const float eps = 1e-5f;
    float *x = random_floats((size_t)rows * H, &seed, -2, 3); /* non-zero mean on purpose */
    float *res = random_floats((size_t)rows * H, &seed, -1, 1);
    float *bias = random_floats(H, &seed, -0.5f, 0.5f);
    float *g = random_floats(H, &seed, 0.5f, 1.5f);
    float *b = random_floats(H, &seed, -0.2f, 0.2f);
    float *out = malloc(sizeof(float) * rows * H);
    double ref[6 * 37], ref_nobias[6 * 37], v[37];
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < H; c++) v[c] = (double)x[r * H + c] + bias[c] + res[r * H + c];
        naive_layernorm(v, g, b, H, eps, ref + r * H);
        for (int c = 0; c < H; c++) v[c] = (double)x[r * H + c] + res[r * H + c];
        naive_layernorm(v, g, b, H, eps, ref_nobias + r * H);
    }
    bq_cpu_bias_residual_layernorm(x, bias, res, g, b, rows, H, eps, out);
    check_close("bias+residual+layernorm", out, ref, (size_t)rows * H, 1e-5, 0);
    bq_cpu_bias_residual_layernorm(x, NULL, res, g, b, rows, H, eps, out);
    check_close("residual+layernorm without bias", out, ref_nobias, (size_t)rows * H, 1e-5, 0);
    /* out aliasing x, as the header allows */
    bq_cpu_bias_residual_layernorm(x, bias, res, g, b, rows, H, eps, x);
    check_close("bias+residual+layernorm in place", x, ref, (size_t)rows * H, 1e-5, 0);
    free(x);
    free(res);
    free(bias);
    free(g);
    free(b);
    free(out);
}

static void test_embeddings_layernorm(void **state) {
    (void)state;
    uint64_t seed = 13;
    const int B = 2, S = 3, H = 9, V = 11, P = 5;
    const float eps = 1e-12f;
    float *word = random_floats((size_t)V * H, &seed, -1, 1);
    float *pos = random_floats((size_t)P * H, &seed, -1, 1);
    float *type = random_floats(2 * (size_t)H, &seed, -1, 1);
    float *g = random_floats(H, &seed, 0.5f, 1.5f);
    float *b = random_floats(H, &seed, -0.2f, 0.2f);
    const int32_t ids[6] = {2, 10, 0, 7, 7, 3};
    const int32_t seg[6] = {0, 1, 1, 0, 0, 1};
    float out[6 * 9];
    double ref[6 * 9], v[9];
    for (int t = 0; t < B * S; t++) {
        for (int c = 0; c < H; c++)
            v[c] = (double)word[ids[t] * H + c] + pos[(t % S) * H + c] + type[seg[t] * H + c];
        naive_layernorm(v, g, b, H, eps, ref + t * H);
    }
    bq_cpu_embeddings_layernorm(ids, seg, NULL, B, S, H, word, pos, type, g, b, eps, out);
    check_close("embeddings+layernorm", out, ref, (size_t)B * S * H, 1e-5, 0);
    free(word);
    free(pos);
    free(type);
    free(g);
    free(b);
}

/* Naive attention in double: scores, -10000 mask bias, softmax over keys, times V. */
static void naive_attention(const float *qkv, const int32_t *mask, int B, int S, int H, int heads,
                            double *ctx) {
    int d = H / heads;
    double *p = malloc(sizeof(double) * S);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < S; i++) {
                const float *q = qkv + ((size_t)b * S + i) * 3 * H + h * d;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < S; j++) {
                    const float *k = qkv + ((size_t)b * S + j) * 3 * H + H + h * d;
                    double s = 0;
                    for (int e = 0; e < d; e++) s += (double)q[e] * k[e];
                    p[j] = s / sqrt((double)d) + (mask[b * S + j] ? 0.0 : -10000.0);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < S; j++) sum += (p[j] = exp(p[j] - mx));
                for (int e = 0; e < d; e++) {
                    double acc = 0;
                    for (int j = 0; j < S; j++)
                        acc += p[j] / sum * qkv[((size_t)b * S + j) * 3 * H + 2 * H + h * d + e];
                    ctx[((size_t)b * S + i) * H + h * d + e] = acc;
                }
            }
    free(p);
}

static void test_attention(void **state) {
    (void)state;
    uint64_t seed = 14;
    const int B = 3, S = 6, H = 12, heads = 3;
    const int32_t mask[18] = {1, 1, 1, 1, 0, 0, /* padded tail */
                              1, 1, 1, 1, 1, 1, /* full */
                              1, 0, 0, 0, 0, 0}; /* one real token */
    size_t n_qkv = (size_t)B * S * 3 * H, n_ctx = (size_t)B * S * H;
    float *qkv = random_floats(n_qkv, &seed, -2, 2); /* |scores| up to ~4: far from uniform */
    float *ctx = malloc(sizeof(float) * n_ctx);
    float *ctx_changed = malloc(sizeof(float) * n_ctx);
    double *ref = malloc(sizeof(double) * n_ctx);
    naive_attention(qkv, mask, B, S, H, heads, ref);
    bq_cpu_attention(qkv, mask, B, S, H, heads, ctx);
    check_close("attention", ctx, ref, n_ctx, 1e-5, 0);

    /* A masked key gets ~0 weight: rewriting K and V at masked positions (V huge) changes nothing. */
    for (int t = 0; t < B * S; t++)
        if (!mask[t])
            for (int c = H; c < 3 * H; c++) qkv[(size_t)t * 3 * H + c] = 1000.0f;
    bq_cpu_attention(qkv, mask, B, S, H, heads, ctx_changed);
    for (size_t i = 0; i < n_ctx; i++) assert_true(fabsf(ctx_changed[i] - ctx[i]) <= 1e-5f);
    /* The one-real-token row attends only to key 0: every query's context is V[0]. */
    for (int i = 0; i < S; i++)
        for (int c = 0; c < H; c++)
            assert_true(fabsf(ctx[((size_t)2 * S + i) * H + c] -
                              qkv[(size_t)2 * S * 3 * H + 2 * H + c]) <= 1e-6f);
    free(qkv);
    free(ctx);
    free(ctx_changed);
    free(ref);
}

static void test_qa_head(void **state) {
    (void)state;
    uint64_t seed = 15;
    const int rows = 7, H = 13;
    float *x = random_floats((size_t)rows * H, &seed, -1, 1);
    float *W = random_floats(2 * (size_t)H, &seed, -1, 1);
    const float b[2] = {0.25f, -0.5f};
    float start[7], end[7];
    double ref_start[7], ref_end[7];
    for (int r = 0; r < rows; r++) {
        double s = b[0], e = b[1];
        for (int c = 0; c < H; c++) {
            s += (double)x[r * H + c] * W[c];
            e += (double)x[r * H + c] * W[H + c];
        }
        ref_start[r] = s;
        ref_end[r] = e;
    }
    bq_cpu_qa_head(x, W, b, rows, H, start, end);
    check_close("qa head start", start, ref_start, rows, 1e-6, 0);
    check_close("qa head end", end, ref_end, rows, 1e-6, 0);
    free(x);
    free(W);
}

/* ---- whole model against the numpy goldens ------------------------------------------------ */

typedef struct {
    int batch, seq;
    int32_t *ids, *mask, *seg; /* [batch*seq] */
} golden_inputs;

static int32_t *read_ints(char **cursor, size_t n) {
    int32_t *v = malloc(n * sizeof *v + 1);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        char *end;
        long x = strtol(*cursor, &end, 10);
        assert_true(end != *cursor);
        v[i] = (int32_t)x;
        *cursor = end;
    }
    return v;
}

static golden_inputs load_inputs(const char *case_name) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/forward/%s/inputs.txt", case_name);
    char *text = NULL;
    size_t len = 0;
    bq_err err;
    assert_int_equal(bq_read_file(bq_test_src_path(rel), &text, &len, &err), BQ_OK);
    golden_inputs in;
    char *cur = text;
    in.batch = (int)strtol(cur, &cur, 10);
    in.seq = (int)strtol(cur, &cur, 10);
    assert_true(in.batch > 0 && in.seq > 0);
    size_t n = (size_t)in.batch * in.seq;
    in.ids = read_ints(&cur, n);
    in.mask = read_ints(&cur, n);
    in.seg = read_ints(&cur, n);
    free(text);
    return in;
}

static void free_inputs(golden_inputs *in) {
    free(in->ids);
    free(in->mask);
    free(in->seg);
}

/* logits.txt: n start logits then n end logits -> double [2n]. */
static double *load_logits(const char *case_name, const char *dtype, size_t n) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/forward/%s/%s/logits.txt", case_name, dtype);
    char *text = NULL;
    size_t len = 0;
    bq_err err;
    assert_int_equal(bq_read_file(bq_test_src_path(rel), &text, &len, &err), BQ_OK);
    double *v = malloc(2 * n * sizeof *v);
    char *cur = text;
    for (size_t i = 0; i < 2 * n; i++) {
        char *end;
        v[i] = strtod(cur, &end);
        assert_true(end != cur);
        cur = end;
    }
    free(text);
    return v;
}

static bq_model *load_model(const char *case_name, const char *dtype) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/forward/%s/%s", case_name, dtype);
    bq_model *m = NULL;
    bq_err err = {0};
    bq_status st = bq_model_load(bq_test_src_path(rel), NULL, &m, &err);
    if (st != BQ_OK) fail_msg("bq_model_load(%s): %s", rel, err.message);
    return m;
}

static void check_case(const char *case_name, const char *dtype) {
    golden_inputs in = load_inputs(case_name);
    size_t n = (size_t)in.batch * in.seq;
    double *ref = load_logits(case_name, dtype, n);
    bq_model *m = load_model(case_name, dtype);
    bq_cpu_forward *f = NULL;
    bq_err err = {0};
    /* max_batch larger than used: the workspace bound, not the batch, is what create fixes. */
    if (bq_cpu_forward_create(m, in.batch + 1, in.seq, 1, &f, &err) != BQ_OK)
        fail_msg("create: %s", err.message);
    float *logits = malloc(2 * n * sizeof *logits); /* start | end, like the golden file */
    if (bq_cpu_forward_run(f, in.batch, in.seq, in.ids, in.mask, in.seg, logits, logits + n, &err) != BQ_OK)
        fail_msg("run: %s", err.message);
    char what[128];
    snprintf(what, sizeof what, "%s/%s logits", case_name, dtype);
    double ratio = check_close(what, logits, ref, 2 * n, 1e-4, 0);
    printf("[ forward  ] %-12s %-4s max|diff|/max|ref| = %.3e\n", case_name, dtype, ratio);

    /* Rows are independent: the first row alone gives the same logits as within the batch. */
    float *one = malloc(2 * (size_t)in.seq * sizeof *one);
    assert_int_equal(bq_cpu_forward_run(f, 1, in.seq, in.ids, in.mask, in.seg, one, one + in.seq, &err),
                     BQ_OK);
    double *ref_one = malloc(2 * (size_t)in.seq * sizeof *ref_one);
    memcpy(ref_one, ref, (size_t)in.seq * sizeof *ref_one);
    memcpy(ref_one + in.seq, ref + n, (size_t)in.seq * sizeof *ref_one);
    snprintf(what, sizeof what, "%s/%s first row alone", case_name, dtype);
    check_close(what, one, ref_one, 2 * (size_t)in.seq, 1e-4, 0);

    free(one);
    free(ref_one);
    free(logits);
    bq_cpu_forward_free(f);
    bq_model_free(m);
    free(ref);
    free_inputs(&in);
}

#define CASE_TESTS(name)                                                                         \
    static void test_##name##_f32(void **s) { (void)s; check_case(#name, "f32"); }              \
    static void test_##name##_f16(void **s) { (void)s; check_case(#name, "f16"); }              \
    static void test_##name##_bf16(void **s) { (void)s; check_case(#name, "bf16"); }

CASE_TESTS(h24_l2_s7)
CASE_TESTS(h32_l3_s16)
CASE_TESTS(h20_l1_s33)

/* ---- trimmed batches ---------------------------------------------------------------------- */

/* A batch cut after its longest real row gives the padded batch's logits at every real position:
 * padded keys are masked out, and each position's embedding is its own. */
static void test_trimmed_batch(void **state) {
    (void)state;
    bq_model *m = load_model("h32_l3_s16", "f32");
    enum { B = 3, S = 16, L = 12 };
    const int real[B] = {5, 9, L};
    int32_t ids[B * S] = {0}, mask[B * S] = {0}, seg[B * S] = {0};
    int32_t ids_t[B * L], mask_t[B * L], seg_t[B * L];
    uint32_t rng = 12345;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < real[b]; t++) {
            rng = rng * 1664525u + 1013904223u;
            ids[b * S + t] = 1 + (int32_t)((rng >> 8) % (uint32_t)(m->config.vocab_size - 1));
            mask[b * S + t] = 1;
            seg[b * S + t] = t >= real[b] / 2;
        }
    for (int b = 0; b < B; b++) {
        memcpy(ids_t + b * L, ids + b * S, L * sizeof(int32_t));
        memcpy(mask_t + b * L, mask + b * S, L * sizeof(int32_t));
        memcpy(seg_t + b * L, seg + b * S, L * sizeof(int32_t));
    }
    bq_cpu_forward *f = NULL;
    bq_err err = {0};
    assert_int_equal(bq_cpu_forward_create(m, B, S, 1, &f, &err), BQ_OK);
    float start[B * S], end[B * S], start_t[B * L], end_t[B * L];
    assert_int_equal(bq_cpu_forward_run(f, B, S, ids, mask, seg, start, end, &err), BQ_OK);
    assert_int_equal(bq_cpu_forward_run(f, B, L, ids_t, mask_t, seg_t, start_t, end_t, &err), BQ_OK);
    double ref[2 * B * S];
    float got[2 * B * S];
    size_t n = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < real[b]; t++, n += 2) {
            ref[n] = start[b * S + t], ref[n + 1] = end[b * S + t];
            got[n] = start_t[b * L + t], got[n + 1] = end_t[b * L + t];
        }
    double ratio = check_close("trimmed batch vs padded, real positions", got, ref, n, 1e-5, 0);
    printf("[ trimmed  ] %zu real positions, max|diff|/max|ref| = %.3e\n", n / 2, ratio);
    bq_cpu_forward_free(f);
    bq_model_free(m);
}

/* The row pool computes every row exactly once, whatever the thread count and row count. */
static void count_rows(void *ctx, int begin, int end) {
    int *count = ctx;
    for (int r = begin; r < end; r++) count[r]++;
}

static void test_row_pool(void **state) {
    (void)state;
    for (int threads = 0; threads <= 5; threads++) {
        bq_row_pool *pool = NULL;
        bq_err err = {0};
        assert_int_equal(bq_row_pool_create(threads, &pool, &err), BQ_OK);
        for (int n = 0; n <= 50; n++) {
            int count[50] = {0};
            for (int k = 0; k < 3; k++) bq_row_pool_run(pool, n, count_rows, count);
            for (int r = 0; r < n; r++) assert_int_equal(count[r], 3);
        }
        bq_row_pool_free(pool);
    }
    bq_row_pool_free(NULL);
    int count[4] = {0};
    bq_row_pool_run(NULL, 4, count_rows, count); /* no pool: all on the caller */
    for (int r = 0; r < 4; r++) assert_int_equal(count[r], 1);

    /* a child forked after the pool started (a pre-forking server) has none of its workers: its
     * runs compute every row on the caller instead of waiting for them forever (the alarm ends a
     * wait), and freeing the pool there joins nothing */
    bq_row_pool *pool = NULL;
    bq_err err = {0};
    assert_int_equal(bq_row_pool_create(4, &pool, &err), BQ_OK);
    int before[8] = {0};
    bq_row_pool_run(pool, 8, count_rows, before);
    fflush(NULL);
    const pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        alarm(20);
        int rows[8] = {0};
        bq_row_pool_run(pool, 8, count_rows, rows);
        int ok = 1;
        for (int r = 0; r < 8; r++) ok &= rows[r] == 1;
        bq_row_pool_free(pool);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    int after[8] = {0};
    bq_row_pool_run(pool, 8, count_rows, after); /* the parent's workers are still there */
    for (int r = 0; r < 8; r++) assert_int_equal(after[r], 1);
    bq_row_pool_free(pool);
}

/* OpenBLAS's thread count is the process's: a workspace left at the default (threads 0) sets
 * OpenBLAS's own default again after one that asked for another count (it kept that one). */
static void test_default_threads_restored(void **state) {
    (void)state;
    bq_model *m = load_model("h32_l3_s16", "f32");
    bq_err err = {0};
    bq_cpu_forward *f = NULL;
    assert_int_equal(bq_cpu_forward_create(m, 1, 16, 0, &f, &err), BQ_OK);
    const int initial = openblas_get_num_threads();
    const int other = initial == 1 ? 2 : 1; /* a count that differs from the default */
    bq_cpu_forward_free(f);
    assert_int_equal(bq_cpu_forward_create(m, 1, 16, other, &f, &err), BQ_OK);
    assert_int_equal(openblas_get_num_threads(), other);
    bq_cpu_forward_free(f);
    assert_int_equal(bq_cpu_forward_create(m, 1, 16, 0, &f, &err), BQ_OK);
    assert_int_equal(openblas_get_num_threads(), initial);
    bq_cpu_forward_free(f);
    bq_model_free(m);
}

/* The row-wise ops spread over 4 threads give the logits of 1 thread to the bit, padded and
 * packed (each row is computed as on one thread). OpenBLAS runs both on one thread: the
 * process-wide count is the last one set, and the comparison is of the row pool alone. */
static void test_row_threads_same_logits(void **state) {
    (void)state;
    bq_model *m = load_model("h32_l3_s16", "f32");
    enum { B = 3, S = 16, N_SEQS = 4 };
    const int32_t offsets[N_SEQS + 1] = {0, 5, 21, 33, B * S};
    int32_t ids[B * S], mask[B * S], seg[B * S];
    uint32_t rng = 4242;
    for (int t = 0; t < B * S; t++) {
        rng = rng * 1664525u + 1013904223u;
        ids[t] = 1 + (int32_t)((rng >> 8) % (uint32_t)(m->config.vocab_size - 1));
        seg[t] = (int32_t)((rng >> 4) & 1);
        mask[t] = t % S < 11 + t / S; /* 11, 12, 13 real positions */
    }
    bq_cpu_forward *many = NULL, *one = NULL;
    bq_err err = {0};
    assert_int_equal(bq_cpu_forward_create(m, B, S, 4, &many, &err), BQ_OK);
    assert_int_equal(bq_cpu_forward_create(m, B, S, 1, &one, &err), BQ_OK);
    float s4[B * S], e4[B * S], s1[B * S], e1[B * S];
    assert_int_equal(bq_cpu_forward_run(many, B, S, ids, mask, seg, s4, e4, &err), BQ_OK);
    assert_int_equal(bq_cpu_forward_run(one, B, S, ids, mask, seg, s1, e1, &err), BQ_OK);
    assert_memory_equal(s4, s1, sizeof s1);
    assert_memory_equal(e4, e1, sizeof e1);
    assert_int_equal(bq_cpu_forward_run_packed(many, B, S, N_SEQS, offsets, ids, seg, s4, e4, &err), BQ_OK);
    assert_int_equal(bq_cpu_forward_run_packed(one, B, S, N_SEQS, offsets, ids, seg, s1, e1, &err), BQ_OK);
    assert_memory_equal(s4, s1, sizeof s1);
    assert_memory_equal(e4, e1, sizeof e1);
    bq_cpu_forward_free(many);
    bq_cpu_forward_free(one);
    bq_model_free(m);
}

/* Packed sequences (3 rows of 16 holding 6 sequences back to back, two of them across a row
 * boundary) give each sequence the logits it gets run alone in a padded batch of 1; so does a
 * trimmed packed pass (2 rows of 7 holding the first two). */
static void test_packed_batch(void **state) {
    (void)state;
    bq_model *m = load_model("h32_l3_s16", "f32");
    enum { B = 3, S = 16, N_SEQS = 6 };
    const int32_t offsets[N_SEQS + 1] = {0, 5, 14, 26, 42, 45, B * S}; /* 5, 9, 12, 16, 3, 3 */
    int32_t ids[B * S], seg[B * S];
    uint32_t rng = 777;
    for (int t = 0; t < B * S; t++) {
        rng = rng * 1664525u + 1013904223u;
        ids[t] = 1 + (int32_t)((rng >> 8) % (uint32_t)(m->config.vocab_size - 1));
        seg[t] = (int32_t)((rng >> 4) & 1);
    }
    bq_cpu_forward *f = NULL;
    bq_err err = {0};
    assert_int_equal(bq_cpu_forward_create(m, B, S, 1, &f, &err), BQ_OK);
    float start[B * S], end[B * S];
    assert_int_equal(bq_cpu_forward_run_packed(f, B, S, N_SEQS, offsets, ids, seg, start, end, &err), BQ_OK);
    double ref[2 * B * S];
    float got[2 * B * S];
    size_t n = 0;
    for (int i = 0; i < N_SEQS; i++) {
        const int len = offsets[i + 1] - offsets[i];
        int32_t one_ids[S] = {0}, one_mask[S] = {0}, one_seg[S] = {0};
        memcpy(one_ids, ids + offsets[i], (size_t)len * sizeof(int32_t));
        memcpy(one_seg, seg + offsets[i], (size_t)len * sizeof(int32_t));
        for (int t = 0; t < len; t++) one_mask[t] = 1;
        float one_start[S], one_end[S];
        assert_int_equal(bq_cpu_forward_run(f, 1, S, one_ids, one_mask, one_seg, one_start, one_end, &err),
                         BQ_OK);
        for (int t = 0; t < len; t++, n += 2) {
            ref[n] = one_start[t], ref[n + 1] = one_end[t];
            got[n] = start[offsets[i] + t], got[n + 1] = end[offsets[i] + t];
        }
    }
    double ratio = check_close("packed sequences vs each alone", got, ref, n, 1e-5, 0);
    printf("[ packed   ] %d sequences, %zu positions, max|diff|/max|ref| = %.3e\n", N_SEQS, n / 2, ratio);
    /* a layout that does not cover the batch, and a sequence past S */
    const int32_t short_end[3] = {0, 16, 40}, too_long[3] = {0, 17, B * S};
    assert_int_equal(bq_cpu_forward_run_packed(f, B, S, 2, short_end, ids, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_cpu_forward_run_packed(f, B, S, 2, too_long, ids, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "sequence 0 is 17 positions long"));
    /* a trimmed packed pass: 2 rows of 7 hold sequences 0 and 1 (5 + 9 tokens) */
    float start_t[2 * 7], end_t[2 * 7];
    assert_int_equal(bq_cpu_forward_run_packed(f, 2, 7, 2, offsets, ids, seg, start_t, end_t, &err), BQ_OK);
    for (int t = 0; t < 14; t++) {
        assert_float_equal(start_t[t], start[t], 1e-5);
        assert_float_equal(end_t[t], end[t], 1e-5);
    }
    assert_int_equal(bq_cpu_forward_run_packed(f, 2, 17, 2, offsets, ids, seg, start_t, end_t, &err),
                     BQ_ERR_INVALID_ARG);
    bq_cpu_forward_free(f);
    bq_model_free(m);
}

/* ---- invalid input ------------------------------------------------------------------------ */

static void test_invalid_inputs(void **state) {
    (void)state;
    bq_model *m = load_model("h24_l2_s7", "f32"); /* vocab 97, max_pos 12, type_vocab 2 */
    bq_cpu_forward *f = NULL;
    bq_err err = {0};
    /* seq_len beyond max_position_embeddings, and non-positive sizes */
    assert_int_equal(bq_cpu_forward_create(m, 1, 13, 0, &f, &err), BQ_ERR_INVALID_ARG);
    assert_null(f);
    assert_non_null(strstr(err.message, "max_position_embeddings"));
    assert_int_equal(bq_cpu_forward_create(m, 0, 4, 0, &f, &err), BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_cpu_forward_create(NULL, 1, 4, 0, &f, &err), BQ_ERR_INVALID_ARG);

    const int S = 4;
    assert_int_equal(bq_cpu_forward_create(m, 2, S, 0, &f, &err), BQ_OK);
    int32_t ids[8] = {2, 10, 3, 0, 2, 11, 12, 3};
    int32_t mask[8] = {1, 1, 1, 0, 1, 1, 1, 1};
    int32_t seg[8] = {0, 0, 0, 0, 0, 1, 1, 1};
    float start[8], end[8];
    assert_int_equal(bq_cpu_forward_run(f, 2, S, ids, mask, seg, start, end, &err), BQ_OK);

    assert_int_equal(bq_cpu_forward_run(f, 3, S, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG); /* batch > max_batch */
    assert_int_equal(bq_cpu_forward_run(f, 0, S, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_cpu_forward_run(f, 2, S, NULL, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_cpu_forward_run(NULL, 2, S, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);

    ids[6] = 97; /* == vocab_size */
    assert_int_equal(bq_cpu_forward_run(f, 2, S, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "input_ids[row 1, position 2] = 97"));
    ids[6] = -1;
    assert_int_equal(bq_cpu_forward_run(f, 2, S, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "input_ids[row 1, position 2] = -1"));
    ids[6] = 12;

    seg[1] = 2; /* == type_vocab_size */
    assert_int_equal(bq_cpu_forward_run(f, 2, S, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "segment_ids[row 0, position 1] = 2"));
    seg[1] = 0;

    mask[3] = 2;
    assert_int_equal(bq_cpu_forward_run(f, 2, S, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "input_mask[row 0, position 3] = 2"));
    mask[3] = 0;

    /* A bad value in a row beyond `batch` is not read. */
    ids[5] = 500;
    assert_int_equal(bq_cpu_forward_run(f, 1, S, ids, mask, seg, start, end, &err), BQ_OK);
    ids[5] = 11;

    /* sequence lengths outside 1..S */
    assert_int_equal(bq_cpu_forward_run(f, 2, 0, ids, mask, seg, start, end, &err), BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_cpu_forward_run(f, 2, S + 1, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "sequence length 5 outside [1, 4]"));

    bq_cpu_forward_free(f);
    bq_cpu_forward_free(NULL);
    bq_model_free(m);
}

/* bq_round_tf32 (the tf32 engine's weight rounding) against values worked out by hand: TF32 keeps
 * 10 explicit mantissa bits, so the spacing at 1 is 2^-10. */
static void test_round_tf32(void **state) {
    (void)state;
    const float u = ldexpf(1.0f, -10); /* one TF32 ulp at 1 */
    assert_true(bq_round_tf32(1.0f) == 1.0f);
    assert_true(bq_round_tf32(1.0f + u) == 1.0f + u);               /* representable: kept */
    assert_true(bq_round_tf32(1.0f + 0.25f * u) == 1.0f);           /* below half: down */
    assert_true(bq_round_tf32(1.0f + 0.75f * u) == 1.0f + u);       /* above half: up */
    assert_true(bq_round_tf32(1.0f + 0.5f * u) == 1.0f);            /* tie: to even (down) */
    assert_true(bq_round_tf32(1.0f + 1.5f * u) == 1.0f + 2.0f * u); /* tie: to even (up) */
    assert_true(bq_round_tf32(-1.0f - 0.75f * u) == -1.0f - u);     /* sign kept */
    assert_true(bq_round_tf32(1.0f + 0.5f * u + ldexpf(1.0f, -23)) == 1.0f + u); /* past tie */
    assert_true(bq_round_tf32(2.0f - 0.25f * u) == 2.0f);           /* carry into the exponent */
    assert_true(isinf(bq_round_tf32(INFINITY)) && bq_round_tf32(-INFINITY) < 0.0f);
    assert_true(isnan(bq_round_tf32(NAN)));
    /* every result has its low 13 bits clear and lies within half a TF32 ulp of the input */
    uint64_t seed = 3;
    for (int i = 0; i < 100000; i++) {
        float x;
        bq_test_fill_uniform(&x, 1, &seed, -1000.0f, 1000.0f);
        float r = bq_round_tf32(x);
        uint32_t bits;
        memcpy(&bits, &r, sizeof bits);
        assert_int_equal(bits & 0x1fffu, 0);
        int e;
        frexpf(x, &e);
        assert_true(fabsf(r - x) <= ldexpf(1.0f, e - 12));
    }
}

/* bq_gelu_erf_fast (the CUTLASS epilogue's GELU) against the double-precision erf GELU on a dense
 * grid over both tails: within 3e-7 x max(1, |x|) (it measures 1.63e-7; erff's form 1.0e-7), and
 * the erf form, not the tanh one, at 1; +Inf stays +Inf, NaN stays NaN. */
static void test_gelu_erf_fast(void **state) {
    (void)state;
    double worst = 0.0;
    for (int i = -120000; i <= 120000; i++) {
        const float x = (float)i * 1e-4f;
        const double exact = 0.5 * (double)x * (1.0 + erf((double)x / sqrt(2.0)));
        const double err = fabs((double)bq_gelu_erf_fast(x) - exact) / fmax(1.0, fabs((double)x));
        if (err > worst) worst = err;
    }
    printf("bq_gelu_erf_fast: worst error %.3g x max(1, |x|)\n", worst);
    assert_true(worst <= 3e-7);
    assert_true(fabs(bq_gelu_erf_fast(1.0f) - 0.8413447) < 1e-6);
    assert_true(fabs(bq_gelu_erf_fast(-1.0f) + 0.1586553) < 1e-6);
    assert_true(isinf(bq_gelu_erf_fast(INFINITY)) && bq_gelu_erf_fast(INFINITY) > 0.0f);
    assert_true(isnan(bq_gelu_erf_fast(NAN)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gelu_erf_fast),
        cmocka_unit_test(test_round_tf32),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_bias_gelu),
        cmocka_unit_test(test_bias_residual_layernorm),
        cmocka_unit_test(test_embeddings_layernorm),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_qa_head),
        cmocka_unit_test(test_h24_l2_s7_f32),
        cmocka_unit_test(test_h24_l2_s7_f16),
        cmocka_unit_test(test_h24_l2_s7_bf16),
        cmocka_unit_test(test_h32_l3_s16_f32),
        cmocka_unit_test(test_h32_l3_s16_f16),
        cmocka_unit_test(test_h32_l3_s16_bf16),
        cmocka_unit_test(test_h20_l1_s33_f32),
        cmocka_unit_test(test_h20_l1_s33_f16),
        cmocka_unit_test(test_h20_l1_s33_bf16),
        cmocka_unit_test(test_trimmed_batch),
        cmocka_unit_test(test_packed_batch),
        cmocka_unit_test(test_row_pool),
        cmocka_unit_test(test_default_threads_restored),
        cmocka_unit_test(test_row_threads_same_logits),
        cmocka_unit_test(test_invalid_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
