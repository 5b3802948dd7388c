/* forward_cpu.c - the fp32 CPU reference forward pass of BERT question answering.
 *
 * Written for clarity: every GPU kernel is checked against these functions. Dense layers (and the
 * two attention products) go through CBLAS; everything element-wise uses the formulas in bq_math.h
 * so the CPU and the GPU evaluate the very same expressions. */
#include "forward_cpu.h"

#include "bq_math.h"
#include "row_pool.h"

#include <cblas.h> /* note: pulls in <complex.h>, so no variable may be named I */
#include <float.h>
#include <pthread.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct {
    float *y;
    const float *b;
    int out, ldy;
} bias_rows_args;

static void bias_rows(void *ctx, int begin, int end) {
    const bias_rows_args *a = ctx;
    for (int r = begin; r < end; r++) {
        float *yr = a->y + (size_t)r * a->ldy;
        for (int c = 0; c < a->out; c++) yr[c] += a->b[c];
    }
}

/* y[r, c] (row stride ldy) = x[r,:] . W[c,:] + b[c]; x [rows, in] row stride ldx, W [out, in].
 * The bias is added on the pool's threads (NULL: the caller's). */
static void linear_strided(bq_row_pool *pool, const float *x, int ldx, const float *W, const float *b,
                           int rows, int in, int out, float *y, int ldy) {
    if (rows <= 0 || out <= 0) return;
    if (in <= 0) {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < out; c++) y[(size_t)r * ldy + c] = b ? b[c] : 0.0f;
        return;
    }
    /* HF weights are [out, in] row-major, so y = x W^T: B is transposed. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x, ldx, W, in, 0.0f,
                y, ldy);
    if (b) {
        bias_rows_args a = {y, b, out, ldy};
        bq_row_pool_run(pool, rows, bias_rows, &a);
    }
}

/* In-place LayerNorm of one row of H values (population variance, Welford statistics in fp32). */
static void layernorm_row(float *v, const float *gamma, const float *beta, int H, float eps) {
    bq_welford s = {0.0f, 0.0f, 0.0f};
    for (int c = 0; c < H; c++) s = bq_welford_add(s, v[c]);
    float rstd = bq_layernorm_rstd(s, eps);
    for (int c = 0; c < H; c++) v[c] = bq_layernorm_apply(v[c], s.mean, rstd, gamma[c], beta[c]);
}

/* ---- CPU twins of the GPU kernels --------------------------------------------------------- */

/* Each twin computes rows [begin, end) of its op from an args struct, so that the forward pass
 * can spread the rows over its row pool and the twin itself runs them all on the caller. */
typedef struct {
    const int32_t *ids, *seg, *positions;
    int S, H;
    const float *word, *pos, *type, *gamma, *beta;
    float eps;
    float *out;
} embeddings_args;

static void embeddings_rows(void *ctx, int begin, int end) {
    const embeddings_args *a = ctx;
    const int H = a->H;
    for (int t = begin; t < end; t++) {
        const float *w = a->word + (size_t)a->ids[t] * H;
        const float *p = a->pos + (size_t)(a->positions ? a->positions[t] : t % a->S) * H;
        const float *ty = a->type + (size_t)a->seg[t] * H;
        float *o = a->out + (size_t)t * H;
        for (int c = 0; c < H; c++) o[c] = w[c] + p[c] + ty[c];
        layernorm_row(o, a->gamma, a->beta, H, a->eps);
    }
}

static void embeddings_layernorm(bq_row_pool *pool, const int32_t *ids, const int32_t *seg,
                                 const int32_t *positions, int B, int S, int H, const float *word,
                                 const float *pos, const float *type, const float *gamma,
                                 const float *beta, float eps, float *out) {
    embeddings_args a = {ids, seg, positions, S, H, word, pos, type, gamma, beta, eps, out};
    bq_row_pool_run(pool, B * S, embeddings_rows, &a);
}

void bq_cpu_embeddings_layernorm(const int32_t *ids, const int32_t *seg, const int32_t *positions,
                                 int B, int S, int H, const float *word, const float *pos,
                                 const float *type, const float *gamma, const float *beta, float eps,
                                 float *out) {
    embeddings_layernorm(NULL, ids, seg, positions, B, S, H, word, pos, type, gamma, beta, eps, out);
}

void bq_cpu_linear(const float *x, const float *W, const float *b, int rows, int in, int out,
                   float *y) {
    linear_strided(NULL, x, in, W, b, rows, in, out, y, out);
}

typedef struct {
    const float *x, *bias, *residual, *gamma, *beta;
    int H;
    float eps;
    float *out;
} residual_layernorm_args;

static void residual_layernorm_rows(void *ctx, int begin, int end) {
    const residual_layernorm_args *a = ctx;
    const int H = a->H;
    for (int r = begin; r < end; r++) {
        const float *xr = a->x + (size_t)r * H;
        const float *rr = a->residual + (size_t)r * H;
        float *o = a->out + (size_t)r * H;
        /* Element-wise, so writing o[c] after reading xr[c] is safe when out aliases x. */
        for (int c = 0; c < H; c++) o[c] = xr[c] + (a->bias ? a->bias[c] : 0.0f) + rr[c];
        layernorm_row(o, a->gamma, a->beta, H, a->eps);
    }
}

static void bias_residual_layernorm(bq_row_pool *pool, const float *x, const float *bias,
                                    const float *residual, const float *gamma, const float *beta,
                                    int rows, int H, float eps, float *out) {
    residual_layernorm_args a = {x, bias, residual, gamma, beta, H, eps, out};
    bq_row_pool_run(pool, rows, residual_layernorm_rows, &a);
}

void bq_cpu_bias_residual_layernorm(const float *x, const float *bias, const float *residual,
                                    const float *gamma, const float *beta, int rows, int H,
                                    float eps, float *out) {
    bias_residual_layernorm(NULL, x, bias, residual, gamma, beta, rows, H, eps, out);
}

typedef struct {
    float *x;
    const float *bias;
    int cols;
} gelu_args;

static void gelu_rows(void *ctx, int begin, int end) {
    const gelu_args *a = ctx;
    for (int r = begin; r < end; r++) {
        float *xr = a->x + (size_t)r * a->cols;
        for (int c = 0; c < a->cols; c++) xr[c] = bq_gelu_erf(xr[c] + (a->bias ? a->bias[c] : 0.0f));
    }
}

static void bias_gelu(bq_row_pool *pool, float *x, const float *bias, int rows, int cols) {
    gelu_args a = {x, bias, cols};
    bq_row_pool_run(pool, rows, gelu_rows, &a);
}

void bq_cpu_bias_gelu(float *x, const float *bias, int rows, int cols) {
    bias_gelu(NULL, x, bias, rows, cols);
}

typedef struct {
    float *probs;          /* [S, S] */
    const int32_t *mrow;   /* [S] key mask */
    int S;
} softmax_args;

/* Rows [begin, end) of the masked softmax of one head's scores, in place. */
static void softmax_rows(void *ctx, int begin, int end) {
    const softmax_args *a = ctx;
    const int S = a->S;
    for (int i = begin; i < end; i++) {
        float *p = a->probs + (size_t)i * S;
        float row_max = -FLT_MAX;
        for (int j = 0; j < S; j++) {
            p[j] += bq_mask_bias(a->mrow[j]);
            if (p[j] > row_max) row_max = p[j];
        }
        double sum = 0.0; /* double: cheap, and keeps the reference's rounding small */
        for (int j = 0; j < S; j++) {
            /* Below -104, expf underflows to exactly 0 (through libm's slow errno path:
             * a quarter of the run time with padded batches), so write the 0 directly. */
            float z = p[j] - row_max;
            p[j] = z < -104.0f ? 0.0f : expf(z);
            sum += p[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < S; j++) p[j] *= inv;
    }
}

/* Attention with caller-provided scratch `probs` [S, S] (one head of one sequence at a time); the
 * softmax rows on the pool's threads (NULL: the caller's). */
static void attention_with_scratch(bq_row_pool *pool, const float *qkv, const int32_t *mask, int B,
                                   int S, int H, int heads, float *ctx, float *probs) {
    const int d = H / heads;
    const int ld = 3 * H; /* row stride of qkv: Q | K | V */
    const float scale = 1.0f / sqrtf((float)d);
    for (int b = 0; b < B; b++) {
        const float *rows = qkv + (size_t)b * S * ld;
        const int32_t *mrow = mask + (size_t)b * S;
        for (int h = 0; h < heads; h++) {
            const float *q = rows + (size_t)h * d;
            const float *k = rows + H + (size_t)h * d;
            const float *v = rows + 2 * H + (size_t)h * d;
            float *c = ctx + (size_t)b * S * H + (size_t)h * d;
            /* probs [S_query, S_key] = scale * Q K^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, S, d, scale, q, ld, k, ld,
                        0.0f, probs, S);
            softmax_args a = {probs, mrow, S};
            bq_row_pool_run(pool, S, softmax_rows, &a);
            /* ctx [S, d] (row stride H) = probs V */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S, d, S, 1.0f, probs, S, v, ld,
                        0.0f, c, H);
        }
    }
}

void bq_cpu_attention(const float *qkv, const int32_t *mask, int B, int S, int H, int heads,
                      float *ctx) {
    if (B <= 0 || S <= 0 || H <= 0 || heads <= 0) return;
    float *probs = malloc((size_t)S * S * sizeof *probs);
    if (!probs) {
        /* This void twin cannot report failure; NaN output makes any comparison fail loudly. */
        for (size_t i = 0; i < (size_t)B * S * H; i++) ctx[i] = NAN;
        return;
    }
    attention_with_scratch(NULL, qkv, mask, B, S, H, heads, ctx, probs);
    free(probs);
}

/* Attention of each packed sequence alone; ones: all 1, at least the longest sequence long. */
static void attention_varlen_with_scratch(bq_row_pool *pool, const float *qkv,
                                          const int32_t *seq_offsets, int n_seqs, int H, int heads,
                                          float *ctx, float *probs, const int32_t *ones) {
    for (int i = 0; i < n_seqs; i++) {
        const int first = seq_offsets[i], len = seq_offsets[i + 1] - first;
        if (len <= 0) continue; /* an empty sequence has no rows (the kernels return at once too) */
        attention_with_scratch(pool, qkv + (size_t)first * 3 * H, ones, 1, len, H, heads,
                               ctx + (size_t)first * H, probs);
    }
}

void bq_cpu_attention_varlen(const float *qkv, const int32_t *seq_offsets, int n_seqs, int H,
                             int heads, float *ctx) {
    if (n_seqs <= 0 || H <= 0 || heads <= 0) return;
    int longest = 0;
    for (int i = 0; i < n_seqs; i++)
        if (seq_offsets[i + 1] - seq_offsets[i] > longest) longest = seq_offsets[i + 1] - seq_offsets[i];
    float *probs = malloc((size_t)longest * longest * sizeof *probs + 1);
    int32_t *ones = malloc((size_t)longest * sizeof *ones + 1);
    if (!probs || !ones) {
        for (size_t i = 0; i < (size_t)seq_offsets[n_seqs] * H; i++) ctx[i] = NAN;
    } else {
        for (int i = 0; i < longest; i++) ones[i] = 1;
        attention_varlen_with_scratch(NULL, qkv, seq_offsets, n_seqs, H, heads, ctx, probs, ones);
    }
    free(probs);
    free(ones);
}

void bq_cpu_qa_head(const float *x, const float *W, const float *b, int rows, int H, float *start,
                    float *end) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * H;
        double s = 0.0, e = 0.0;
        for (int c = 0; c < H; c++) {
            s += (double)xr[c] * W[c];
            e += (double)xr[c] * W[H + c];
        }
        start[r] = (float)s + b[0];
        end[r] = (float)e + b[1];
    }
}

/* ---- whole model -------------------------------------------------------------------------- */

struct bq_cpu_forward {
    const bq_model *model;
    int max_batch, seq_len;
    float *hidden;  /* [max_batch*S, H]: layer input / output */
    float *qkv;     /* [max_batch*S, 3H] */
    float *ctx;     /* [max_batch*S, H]: attention context */
    float *attn;    /* [max_batch*S, H]: post-attention LayerNorm output */
    float *inter;   /* [max_batch*S, I]: FFN intermediate */
    float *dense;   /* [max_batch*S, H]: output of a dense layer before bias+residual+LN */
    float *probs;   /* [S, S]: attention probabilities of one head */
    int32_t *positions; /* [max_batch*S]: a packed batch's positions in their sequences */
    int32_t *ones;      /* [S] all 1: the key mask of a packed sequence (all of it real) */
    bq_row_pool *pool;  /* the row-wise ops' threads, as many as OpenBLAS's */
};

void bq_cpu_forward_free(bq_cpu_forward *f) {
    if (!f) return;
    free(f->hidden);
    free(f->qkv);
    free(f->ctx);
    free(f->attn);
    free(f->inter);
    free(f->dense);
    free(f->probs);
    free(f->positions);
    free(f->ones);
    bq_row_pool_free(f->pool);
    free(f);
}

static float *alloc_floats(size_t a, size_t b, bool *ok) {
    if (b != 0 && a > SIZE_MAX / sizeof(float) / b) {
        *ok = false;
        return NULL;
    }
    float *p = malloc(a * b * sizeof(float) + (a * b == 0));
    if (!p) *ok = false;
    return p;
}

const char *bq_cpu_blas_kernels(void) { return openblas_get_corename(); }

const char *bq_cpu_blas_config(void) { return openblas_get_config(); }

const char *bq_cpu_blas_better_kernels(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    /* kernels that use AVX2 and FMA at least: OpenBLAS chose knowing the CPU */
    static const char *const modern[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    const char *chosen = bq_cpu_blas_kernels();
    for (size_t i = 0; chosen && i < sizeof modern / sizeof *modern; i++)
        if (strcasecmp(chosen, modern[i]) == 0) return NULL;
    /* what the CPU and the OS both support (libgcc checks XCR0 for the AVX/AVX-512 state) */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

void bq_cpu_blas_restart_if_weak(char **argv) {
    const char *better = bq_cpu_blas_better_kernels();
    if (!better || getenv("OPENBLAS_CORETYPE")) return;
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    /* started through the dynamic loader (ld-linux-x86-64.so.2 PROGRAM ...): the image is the
     * loader's, and running it again with this argv would load the wrong program */
    const char *base = strrchr(exe, '/');
    if (strncmp(base ? base + 1 : exe, "ld-", 3) == 0) return;
    if (setenv("OPENBLAS_CORETYPE", better, 1) != 0) return;
    fflush(NULL);
    execv(exe, argv);
    unsetenv("OPENBLAS_CORETYPE"); /* could not start again: run on the kernels chosen */
}

/* OpenBLAS's thread count before any engine set one (OPENBLAS_NUM_THREADS, else all cores). */
static pthread_once_t default_threads_once = PTHREAD_ONCE_INIT;
static int default_threads = 1;
static void read_default_threads(void) {
    const int n = openblas_get_num_threads();
    default_threads = n > 0 ? n : 1;
}

bq_status bq_cpu_forward_create(const bq_model *m, int max_batch, int seq_len, int threads,
                                bq_cpu_forward **out, bq_err *err) {
    if (!out) return bq_fail(err, BQ_ERR_INVALID_ARG, "cpu forward: out is NULL");
    *out = NULL;
    if (!m) return bq_fail(err, BQ_ERR_INVALID_ARG, "cpu forward: model is NULL");
    const bq_config *c = &m->config;
    if (c->hidden_size <= 0 || c->num_heads <= 0 || c->hidden_size % c->num_heads != 0 ||
        c->intermediate_size <= 0 || c->num_layers < 0)
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "cpu forward: bad model config (hidden %d, heads %d, intermediate %d, "
                       "layers %d)",
                       c->hidden_size, c->num_heads, c->intermediate_size, c->num_layers);
    if (max_batch <= 0)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cpu forward: max_batch %d must be positive",
                       max_batch);
    if (seq_len <= 0 || seq_len > c->max_position_embeddings)
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "cpu forward: seq_len %d outside [1, max_position_embeddings %d]", seq_len,
                       c->max_position_embeddings);
    /* OpenBLAS's count is the process's: a reader left at the default sets OpenBLAS's own
     * default again, not whatever an earlier reader asked for */
    pthread_once(&default_threads_once, read_default_threads);
    const int want = threads > 0 ? threads : default_threads;
    openblas_set_num_threads(want);

    bq_cpu_forward *f = calloc(1, sizeof *f);
    if (!f) return bq_fail(err, BQ_ERR_NOMEM, "cpu forward: out of memory");
    f->model = m;
    f->max_batch = max_batch;
    f->seq_len = seq_len;
    size_t tokens = (size_t)max_batch * (size_t)seq_len;
    size_t H = (size_t)c->hidden_size, inter = (size_t)c->intermediate_size;
    bool ok = true;
    f->hidden = alloc_floats(tokens, H, &ok);
    f->qkv = alloc_floats(tokens, 3 * H, &ok);
    f->ctx = alloc_floats(tokens, H, &ok);
    f->attn = alloc_floats(tokens, H, &ok);
    f->inter = alloc_floats(tokens, inter, &ok);
    f->dense = alloc_floats(tokens, H, &ok);
    f->probs = alloc_floats((size_t)seq_len, (size_t)seq_len, &ok);
    f->positions = malloc(tokens * sizeof *f->positions);
    f->ones = malloc((size_t)seq_len * sizeof *f->ones);
    if (!f->positions || !f->ones) ok = false;
    for (int i = 0; f->ones && i < seq_len; i++) f->ones[i] = 1;
    if (!ok) {
        bq_cpu_forward_free(f);
        return bq_fail(err, BQ_ERR_NOMEM,
                       "cpu forward: out of memory for a %d x %d workspace (hidden %zu, "
                       "intermediate %zu)",
                       max_batch, seq_len, H, inter);
    }
    /* OpenBLAS may cap the count it was given: the row pool takes what its GEMMs run on */
    bq_status st = bq_row_pool_create(openblas_get_num_threads(), &f->pool, err);
    if (st != BQ_OK) {
        bq_cpu_forward_free(f);
        return st;
    }
    *out = f;
    return BQ_OK;
}

static bq_status validate_inputs(const bq_cpu_forward *f, int batch, int S, const int32_t *ids,
                                 const int32_t *mask, const int32_t *seg, bq_err *err) {
    const bq_config *c = &f->model->config;
    for (int b = 0; b < batch; b++) {
        for (int t = 0; t < S; t++) {
            size_t i = (size_t)b * S + t;
            if (ids[i] < 0 || ids[i] >= c->vocab_size)
                return bq_fail(err, BQ_ERR_INVALID_ARG,
                               "cpu forward: input_ids[row %d, position %d] = %d outside "
                               "[0, vocab_size %d)",
                               b, t, (int)ids[i], c->vocab_size);
            if (seg[i] < 0 || seg[i] >= c->type_vocab_size)
                return bq_fail(err, BQ_ERR_INVALID_ARG,
                               "cpu forward: segment_ids[row %d, position %d] = %d outside "
                               "[0, type_vocab_size %d)",
                               b, t, (int)seg[i], c->type_vocab_size);
            if (mask && mask[i] != 0 && mask[i] != 1)
                return bq_fail(err, BQ_ERR_INVALID_ARG,
                               "cpu forward: input_mask[row %d, position %d] = %d is not 0 or 1",
                               b, t, (int)mask[i]);
        }
    }
    return BQ_OK;
}

/* The layers and the head over `rows` = batch x S positions whose embeddings input is set up:
 * padded rows (input_mask [batch, S]) or, with seq_offsets, packed sequences. */
static void forward_layers(bq_cpu_forward *f, int batch, int S, const int32_t *input_ids,
                           const int32_t *input_mask, const int32_t *segment_ids,
                           const int32_t *positions, const int32_t *seq_offsets, int n_seqs,
                           float *start_logits, float *end_logits) {
    const bq_model *m = f->model;
    const bq_config *c = &m->config;
    const int H = c->hidden_size, inter = c->intermediate_size;
    const int rows = batch * S;
    const float eps = c->layer_norm_eps;

    embeddings_layernorm(f->pool, input_ids, segment_ids, positions, batch, S, H, m->word_emb,
                         m->pos_emb, m->type_emb, m->emb_ln_g, m->emb_ln_b, eps, f->hidden);
    for (int l = 0; l < c->num_layers; l++) {
        const bq_layer_weights *w = &m->layers[l];
        /* Q, K, V side by side in qkv [rows, 3H]. */
        bq_row_pool *pool = f->pool;
        linear_strided(pool, f->hidden, H, w->q_w, w->q_b, rows, H, H, f->qkv, 3 * H);
        linear_strided(pool, f->hidden, H, w->k_w, w->k_b, rows, H, H, f->qkv + H, 3 * H);
        linear_strided(pool, f->hidden, H, w->v_w, w->v_b, rows, H, H, f->qkv + 2 * H, 3 * H);
        if (seq_offsets)
            attention_varlen_with_scratch(pool, f->qkv, seq_offsets, n_seqs, H, c->num_heads, f->ctx,
                                          f->probs, f->ones);
        else
            attention_with_scratch(pool, f->qkv, input_mask, batch, S, H, c->num_heads, f->ctx,
                                   f->probs);
        /* attn = LN(ctx Wo^T + bo + hidden) */
        bq_cpu_linear(f->ctx, w->attn_out_w, NULL, rows, H, H, f->dense);
        bias_residual_layernorm(pool, f->dense, w->attn_out_b, f->hidden, w->attn_ln_g, w->attn_ln_b,
                                rows, H, eps, f->attn);
        /* hidden = LN(gelu(attn W1^T + b1) W2^T + b2 + attn) */
        bq_cpu_linear(f->attn, w->ffn_in_w, NULL, rows, H, inter, f->inter);
        bias_gelu(pool, f->inter, w->ffn_in_b, rows, inter);
        bq_cpu_linear(f->inter, w->ffn_out_w, NULL, rows, inter, H, f->dense);
        bias_residual_layernorm(pool, f->dense, w->ffn_out_b, f->attn, w->ffn_ln_g, w->ffn_ln_b,
                                rows, H, eps, f->hidden);
    }
    bq_cpu_qa_head(f->hidden, m->qa_w, m->qa_b, rows, H, start_logits, end_logits);
}

/* The checks both entry points share: handle, arrays, batch size. */
static bq_status check_run(const bq_cpu_forward *f, int batch, const void *ids, const void *seg,
                           const void *start, const void *end, bq_err *err) {
    if (!f) return bq_fail(err, BQ_ERR_INVALID_ARG, "cpu forward: handle is NULL");
    if (!ids || !seg || !start || !end)
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "cpu forward: input_ids, segment_ids, start_logits and end_logits must "
                       "all be non-NULL");
    if (batch <= 0 || batch > f->max_batch)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cpu forward: batch %d outside [1, max_batch %d]",
                       batch, f->max_batch);
    return BQ_OK;
}

bq_status bq_cpu_forward_run(bq_cpu_forward *f, int batch, int seq_len, const int32_t *input_ids,
                             const int32_t *input_mask, const int32_t *segment_ids,
                             float *start_logits, float *end_logits, bq_err *err) {
    bq_status st = check_run(f, batch, input_ids, segment_ids, start_logits, end_logits, err);
    if (st != BQ_OK) return st;
    if (!input_mask) return bq_fail(err, BQ_ERR_INVALID_ARG, "cpu forward: input_mask is NULL");
    if (seq_len <= 0 || seq_len > f->seq_len)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cpu forward: sequence length %d outside [1, %d]",
                       seq_len, f->seq_len);
    st = validate_inputs(f, batch, seq_len, input_ids, input_mask, segment_ids, err);
    if (st != BQ_OK) return st;
    forward_layers(f, batch, seq_len, input_ids, input_mask, segment_ids, NULL, NULL, 0,
                   start_logits, end_logits);
    return BQ_OK;
}

bq_status bq_cpu_forward_run_packed(bq_cpu_forward *f, int batch, int length, int n_seqs,
                                    const int32_t *seq_offsets, const int32_t *input_ids,
                                    const int32_t *segment_ids, float *start_logits,
                                    float *end_logits, bq_err *err) {
    bq_status st = check_run(f, batch, input_ids, segment_ids, start_logits, end_logits, err);
    if (st != BQ_OK) return st;
    if (length <= 0 || length > f->seq_len)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cpu forward: sequence length %d outside [1, %d]",
                       length, f->seq_len);
    const int S = length;
    st = bq_packed_positions(seq_offsets, n_seqs, (long)batch * S, f->seq_len, f->positions, err);
    if (st == BQ_OK) st = validate_inputs(f, batch, S, input_ids, NULL, segment_ids, err);
    if (st != BQ_OK) return st;
    forward_layers(f, batch, S, input_ids, NULL, segment_ids, f->positions, seq_offsets, n_seqs,
                   start_logits, end_logits);
    return BQ_OK;
}
