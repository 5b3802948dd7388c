/* qa.c - question answering end to end, with host work overlapping the engine in bq_qa_pipeline. */
#include "qa.h"
#include "row_pool.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct bq_qa {
    const bq_model *model;
    bq_engine *engine;
    bq_squad_options opt;
    int max_batch, seq_len;
    bq_row_pool *host_pool; /* features and decoding, a request a row (the engine has its own
                             * threads); NULL: on the calling thread */
    /* a CUDA engine that times and captures each new batch shape: partial batches run rounded
     * up to a few sizes (bq_qa_batch_rows) */
    int round_batches;
};

/* One chunk of requests on its way through features -> engine -> decoding. */
typedef struct {
    const bq_qa_request *req; /* [n] */
    bq_qa_result *res;        /* [n] */
    int n;
    bq_features *feats;       /* [n] */
    int *first_row;           /* [n] engine row of each request's first window, -1 if none */
    int n_rows;
    int32_t *ids, *mask, *seg; /* [n_rows, S] */
    float *start, *end;        /* [n_rows, S] */
    int more;                  /* requests follow this chunk in the same pipeline call */
    double host_seconds;
} qa_chunk;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void bq_qa_result_free(bq_qa_result *r) {
    if (!r) return;
    bq_answers_free(&r->answers);
}

bq_status bq_qa_create(const bq_model *model, bq_engine *engine, const bq_squad_options *opt,
                       bq_qa **out, bq_err *err) {
    *out = NULL;
    const bq_engine_options *eo = bq_engine_get_options(engine);
    if (opt->max_seq_length != eo->seq_len)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "max sequence length %d differs from the engine's %d",
                       opt->max_seq_length, eo->seq_len);
    if (opt->length_bucket < 0 || opt->length_bucket > opt->max_seq_length)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "length bucket %d outside 0..%d (the max sequence length)",
                       opt->length_bucket, opt->max_seq_length);
    if (opt->pack && opt->length_bucket > 0)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "packing and length buckets are alternatives: "
                       "choose one");
    if (opt->pack && eo->device == BQ_DEVICE_CUDA && eo->attention == BQ_ATTENTION_CUDNN)
        return bq_fail(err, BQ_ERR_UNSUPPORTED, "packed windows need our attention kernel (cuDNN's "
                       "is planned for padded batches): use --attention auto or own with --pack");
    if (opt->length_bucket > 0 && opt->length_bucket < opt->max_seq_length &&
        eo->device == BQ_DEVICE_CUDA && eo->attention == BQ_ATTENTION_CUDNN)
        return bq_fail(err, BQ_ERR_UNSUPPORTED, "length buckets trim batches below %d positions, and "
                       "cuDNN's attention is planned for the full length only: use --attention auto "
                       "or own with --length-bucket", opt->max_seq_length);
    if (model->config.type_vocab_size < 2) /* caught here, not at the first batch */
        return bq_fail(err, BQ_ERR_FORMAT, "the model's type_vocab_size is %d: question answering "
                       "needs 2 segments (question 0, context 1)", model->config.type_vocab_size);
    bq_qa *qa = calloc(1, sizeof *qa);
    if (!qa) return bq_fail(err, BQ_ERR_NOMEM, "out of memory");
    qa->model = model;
    qa->engine = engine;
    qa->opt = *opt;
    qa->max_batch = eo->max_batch;
    qa->seq_len = eo->seq_len;
    qa->round_batches = eo->device == BQ_DEVICE_CUDA && eo->tune;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    /* leave a core to the thread that drives the engine; without threads, the host work runs on
     * the calling thread (slower, the same answers) */
    const int host_threads = cores > 2 ? (int)(cores - 1 < 8 ? cores - 1 : 8) : 1;
    if (bq_row_pool_create(host_threads, &qa->host_pool, NULL) != BQ_OK) qa->host_pool = NULL;
    *out = qa;
    return BQ_OK;
}

void bq_qa_free(bq_qa *qa) {
    if (!qa) return;
    bq_row_pool_free(qa->host_pool);
    free(qa);
}

static void chunk_release(qa_chunk *c) {
    if (c->feats)
        for (int i = 0; i < c->n; i++) bq_features_free(&c->feats[i]);
    free(c->feats);
    free(c->first_row);
    free(c->ids);
    free(c->mask);
    free(c->seg);
    free(c->start);
    free(c->end);
    memset(c, 0, sizeof *c);
}

typedef struct {
    const bq_qa *qa;
    qa_chunk *c;
} chunk_job;

/* Features of requests [begin, end); a bad request records its own error. */
static void build_features(void *arg, int begin, int end) {
    chunk_job *j = arg;
    qa_chunk *c = j->c;
    for (int i = begin; i < end; i++) {
        bq_qa_result *r = &c->res[i];
        memset(r, 0, sizeof *r);
        bq_err e;
        bq_err_clear(&e);
        const bq_qa_request *q = &c->req[i];
        r->status = bq_features_build(j->qa->model->vocab, &j->qa->opt, q->question, q->question_len,
                                      q->context, q->context_len, &c->feats[i], &e);
        if (r->status != BQ_OK) memcpy(r->error, e.message, sizeof r->error);
    }
}

/* The largest k whose first k requests hold at most `target` windows; *sum = their windows. */
static int prefix_within(const int *windows, int n, long target, long *sum) {
    int k = 0;
    *sum = 0;
    while (k < n && *sum + windows[k] <= target) *sum += windows[k++];
    return k;
}

int bq_qa_whole_batch_prefix(const int *windows, int n, int max_batch) {
    long total = 0;
    for (int i = 0; i < n; i++) total += windows[i];
    if (total < max_batch) return n;
    const long most = total / max_batch * max_batch;
    long sum;
    const int k_most = prefix_within(windows, n, most, &sum);
    if (sum == most) return k_most;
    /* a multi-window request straddles that cut: a cut a batch or more earlier may be exact */
    for (long target = most - max_batch; target >= max_batch; target -= max_batch) {
        const int k = prefix_within(windows, n, target, &sum);
        if (sum == target) return k;
    }
    return k_most > 0 ? k_most : 1;
}

/* Engine inputs and logits for `cells` positions (each pointer NULL before; false when any
 * allocation failed, whose caller frees what was allocated). */
static bool alloc_rows(size_t cells, int32_t **ids, int32_t **mask, int32_t **seg, float **start,
                       float **end) {
    *ids = malloc(cells * sizeof **ids);
    *mask = malloc(cells * sizeof **mask);
    *seg = malloc(cells * sizeof **seg);
    *start = malloc(cells * sizeof **start);
    *end = malloc(cells * sizeof **end);
    return *ids && *mask && *seg && *start && *end;
}

/* Features of every request (in parallel), then rows laid out request after request. With
 * `whole_batches` (more requests follow), the chunk is cut back to the requests whose windows fill
 * whole engine batches, or when packing, whole packed passes (c->n shrinks; the caller gives the
 * rest to the next chunk). */
static bq_status chunk_prepare(const bq_qa *qa, qa_chunk *c, int whole_batches, bq_err *err) {
    double t0 = now_seconds();
    const int S = qa->seq_len;
    /* results defined on every return, the early ones included: a caller frees them */
    if (c->n > 0) memset(c->res, 0, (size_t)c->n * sizeof *c->res);
    c->feats = calloc((size_t)c->n, sizeof *c->feats);
    c->first_row = malloc((size_t)c->n * sizeof *c->first_row);
    if (!c->feats || !c->first_row) return bq_fail(err, BQ_ERR_NOMEM, "out of memory building features");
    chunk_job job = {qa, c};
    bq_row_pool_run(qa->host_pool, c->n, build_features, &job);
    for (int i = 0; i < c->n; i++) {
        bq_qa_result *r = &c->res[i];
        if (r->status == BQ_ERR_NOMEM) return bq_fail(err, r->status, "%s", r->error);
        /* first_row holds the window counts until the rows are laid out below */
        c->first_row[i] = r->status == BQ_OK ? c->feats[i].n_windows : 0;
    }
    c->more = whole_batches;
    if (whole_batches) {
        int keep = c->n;
        if (qa->opt.pack) {
            long windows = 0;
            for (int i = 0; i < c->n; i++) windows += c->first_row[i];
            int *n_tokens = malloc((size_t)(windows ? windows : 1) * sizeof *n_tokens);
            if (!n_tokens) return bq_fail(err, BQ_ERR_NOMEM, "out of memory building features");
            long w = 0;
            for (int i = 0; i < c->n; i++)
                for (int k = 0; k < c->first_row[i]; k++)
                    n_tokens[w++] = c->feats[i].windows[k].n_tokens;
            keep = bq_qa_whole_pack_prefix(c->first_row, n_tokens, c->n, qa->max_batch, qa->seq_len);
            free(n_tokens);
        } else {
            keep = bq_qa_whole_batch_prefix(c->first_row, c->n, qa->max_batch);
        }
        for (int i = keep; i < c->n; i++) bq_features_free(&c->feats[i]); /* built again next chunk */
        c->n = keep;
    }
    c->n_rows = 0;
    for (int i = 0; i < c->n; i++) {
        bq_qa_result *r = &c->res[i];
        c->first_row[i] = -1;
        if (r->status != BQ_OK) continue;
        c->first_row[i] = c->n_rows;
        r->n_windows = c->feats[i].n_windows;
        c->n_rows += c->feats[i].n_windows;
    }
    size_t cells = (size_t)c->n_rows * (size_t)S;
    if (cells && !alloc_rows(cells, &c->ids, &c->mask, &c->seg, &c->start, &c->end))
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory for %d windows", c->n_rows);
    for (int i = 0; i < c->n; i++) {
        if (c->first_row[i] < 0) continue;
        const bq_features *f = &c->feats[i];
        for (int w = 0; w < f->n_windows; w++) {
            size_t at = (size_t)(c->first_row[i] + w) * (size_t)S;
            memcpy(c->ids + at, f->windows[w].input_ids, (size_t)S * sizeof(int32_t));
            memcpy(c->mask + at, f->windows[w].input_mask, (size_t)S * sizeof(int32_t));
            memcpy(c->seg + at, f->windows[w].segment_ids, (size_t)S * sizeof(int32_t));
        }
    }
    c->host_seconds += now_seconds() - t0;
    return BQ_OK;
}

int bq_qa_batch_rows(int rows, int max_batch) {
    const int step = max_batch / 8 > 1 ? max_batch / 8 : 1;
    int pow2 = 1;
    while (pow2 < rows) pow2 *= 2;
    const int multiple = (rows + step - 1) / step * step;
    const int b = pow2 < multiple ? pow2 : multiple;
    return b < max_batch ? b : max_batch;
}

int bq_qa_plan_buckets(const int *n_tokens, int n, int max_batch, int bucket, int seq_len, int *order,
                       int *lengths) {
    /* counting sort by length: stable, O(n + seq_len) */
    int *start = calloc((size_t)seq_len + 2, sizeof *start);
    if (!start) return -1;
    for (int r = 0; r < n; r++) start[n_tokens[r] + 1]++;
    for (int t = 0; t <= seq_len; t++) start[t + 1] += start[t];
    for (int r = 0; r < n; r++) order[start[n_tokens[r]]++] = r;
    free(start);
    int batches = 0;
    for (int first = 0; first < n; first += max_batch) {
        const int last = (first + max_batch < n ? first + max_batch : n) - 1;
        int len = (n_tokens[order[last]] + bucket - 1) / bucket * bucket;
        if (len > seq_len) len = seq_len;
        lengths[batches++] = len > 0 ? len : 1;
    }
    return batches;
}

/* Buffers for one batch gathered at its length (a length-bucketed batch, or a partial batch
 * rounded up to more rows). */
typedef struct {
    int *n_tokens, *order, *lengths; /* [n_rows], [n_rows], [batches] */
    int32_t *ids, *mask, *seg;       /* [max_batch, L] */
    float *start, *end;              /* [max_batch, L] */
} bucket_scratch;

static void bucket_scratch_free(bucket_scratch *b) {
    free(b->n_tokens), free(b->order), free(b->lengths);
    free(b->ids), free(b->mask), free(b->seg), free(b->start), free(b->end);
}

/* The batch buffers of `x` for max_batch rows of the full length. */
static bq_status batch_scratch_alloc(const bq_qa *qa, bucket_scratch *x, bq_err *err) {
    const size_t cells = (size_t)qa->max_batch * (size_t)qa->seq_len;
    if (!alloc_rows(cells, &x->ids, &x->mask, &x->seg, &x->start, &x->end))
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory for a batch of %d windows", qa->max_batch);
    return BQ_OK;
}

/* Row j of a batch of `run` gathered into x at length L: chunk row `from` (of length S). */
static void gather_row(const qa_chunk *c, bucket_scratch *x, int j, int from, int L, int S) {
    const size_t src = (size_t)from * (size_t)S, to = (size_t)j * (size_t)L;
    memcpy(x->ids + to, c->ids + src, (size_t)L * sizeof(int32_t));
    memcpy(x->mask + to, c->mask + src, (size_t)L * sizeof(int32_t));
    memcpy(x->seg + to, c->seg + src, (size_t)L * sizeof(int32_t));
}

/* Rows [row, row + b) through the engine at full length, as a batch of `run` >= b rows (a
 * partial batch rounded up, gathered in x: the rows past b repeat the last, their logits
 * dropped; x is unused when run == b). */
static bq_status infer_padded(const bq_qa *qa, qa_chunk *c, bucket_scratch *x, int row, int b,
                              int run, bq_err *err) {
    const int S = qa->seq_len;
    const size_t at = (size_t)row * (size_t)S;
    if (run == b)
        return bq_engine_forward(qa->engine, b, c->ids + at, c->mask + at, c->seg + at,
                                 c->start + at, c->end + at, err);
    for (int j = 0; j < run; j++) gather_row(c, x, j, row + (j < b ? j : b - 1), S, S);
    bq_status st = bq_engine_forward(qa->engine, run, x->ids, x->mask, x->seg, x->start, x->end, err);
    if (st != BQ_OK) return st;
    memcpy(c->start + at, x->start, (size_t)b * (size_t)S * sizeof(float));
    memcpy(c->end + at, x->end, (size_t)b * (size_t)S * sizeof(float));
    return BQ_OK;
}

/* The rows order[0..b) through the engine at length L as a batch of `run` >= b rows (the rows
 * past b repeat the last), their logits back in their rows (at full length; padding positions
 * -inf, so that decoding never ranks them). */
static bq_status infer_trimmed(const bq_qa *qa, qa_chunk *c, bucket_scratch *x, const int *rows,
                               int b, int run, int L, bq_err *err) {
    const size_t S = (size_t)qa->seq_len;
    for (int j = 0; j < run; j++) gather_row(c, x, j, rows[j < b ? j : b - 1], L, (int)S);
    bq_status st = bq_engine_forward_length(qa->engine, run, L, x->ids, x->mask, x->seg, x->start,
                                            x->end, err);
    if (st != BQ_OK) return st;
    for (int j = 0; j < b; j++) {
        float *start = c->start + (size_t)rows[j] * S, *end = c->end + (size_t)rows[j] * S;
        const int real = x->n_tokens[rows[j]];
        memcpy(start, x->start + (size_t)j * L, (size_t)real * sizeof(float));
        memcpy(end, x->end + (size_t)j * L, (size_t)real * sizeof(float));
        for (size_t p = (size_t)real; p < S; p++) start[p] = end[p] = -INFINITY;
    }
    return BQ_OK;
}

/* A pass's length: seq_len, or for one row its tokens rounded up to BQ_PACK_LENGTH_STEP. */
static int pack_length(long tokens, int rows, int seq_len) {
    if (rows > 1) return seq_len;
    const long len = (tokens + BQ_PACK_LENGTH_STEP - 1) / BQ_PACK_LENGTH_STEP * BQ_PACK_LENGTH_STEP;
    return len < seq_len ? (int)len : seq_len;
}

/* Whether a packed pass holding `used` tokens closes before a window of `next` tokens: it has
 * some, and the window would not fit in its capacity. The planner and the chunk cut share it. */
static bool pass_closes(long used, int next, long capacity) {
    return used > 0 && used + next > capacity;
}

int bq_qa_whole_pack_prefix(const int *windows, const int *n_tokens, int n, int max_batch, int seq_len) {
    const long capacity = (long)max_batch * seq_len;
    long used = 0; /* tokens in the open pass */
    int keep = n, w = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < windows[i]; k++, w++) {
            if (pass_closes(used, n_tokens[w], capacity)) { /* before window w */
                if (k == 0) keep = i;                      /* at a request boundary */
                used = 0;
            }
            used += n_tokens[w];
        }
    return keep;
}

int bq_qa_plan_packs(const int *n_tokens, int n, int max_batch, int seq_len, int more, int *first,
                     int *batches, int *lengths) {
    const long capacity = (long)max_batch * seq_len;
    int passes = 0;
    long used = 0; /* tokens in the open pass */
    first[0] = 0;
    for (int r = 0; r < n; r++) {
        if (pass_closes(used, n_tokens[r], capacity)) {
            batches[passes] = (int)((used + seq_len - 1) / seq_len);
            lengths[passes] = pack_length(used, batches[passes], seq_len);
            first[++passes] = r;
            used = 0;
        }
        used += n_tokens[r];
    }
    if (used > 0) { /* the last pass: a few batch sizes only, and a small one stays small */
        const int rows = (int)((used + seq_len - 1) / seq_len);
        batches[passes] = more ? max_batch : bq_qa_batch_rows(rows, max_batch);
        lengths[passes] = pack_length(used, batches[passes], seq_len);
        first[++passes] = n;
    }
    return passes;
}

/* Buffers for the packed passes of a chunk. */
typedef struct {
    int *n_tokens, *first, *batches, *lengths; /* [n_rows], [n_rows + 1], [n_rows], [n_rows] */
    int32_t *offsets;                /* [max_batch * S + 1] */
    int32_t *ids, *seg;              /* [max_batch * S] */
    float *start, *end;              /* [max_batch * S] */
} pack_scratch;

static void pack_scratch_free(pack_scratch *p) {
    free(p->n_tokens), free(p->first), free(p->batches), free(p->lengths), free(p->offsets);
    free(p->ids), free(p->seg), free(p->start), free(p->end);
}

/* Rows [row0, row1) of the chunk packed into b engine rows of length L (the tail filled with [PAD]
 * sequences of at most S tokens), through the engine; their logits back in their rows (padding
 * -inf). */
static bq_status infer_packed(const bq_qa *qa, qa_chunk *c, pack_scratch *x, int row0, int row1, int b,
                              int L, bq_err *err) {
    const int S = qa->seq_len;
    const long total = (long)b * L;
    int n_seqs = 0;
    long at = 0;
    for (int r = row0; r < row1; r++) {
        const int len = x->n_tokens[r];
        x->offsets[n_seqs++] = (int32_t)at;
        memcpy(x->ids + at, c->ids + (size_t)r * S, (size_t)len * sizeof(int32_t));
        memcpy(x->seg + at, c->seg + (size_t)r * S, (size_t)len * sizeof(int32_t));
        at += len;
    }
    const int32_t pad = bq_vocab_special(qa->model->vocab)->pad;
    while (at < total) { /* filler: real tokens to the engine, attending to themselves only */
        const long len = total - at < S ? total - at : S;
        x->offsets[n_seqs++] = (int32_t)at;
        for (long t = 0; t < len; t++) x->ids[at + t] = pad, x->seg[at + t] = 0;
        at += len;
    }
    x->offsets[n_seqs] = (int32_t)total;
    bq_status st = bq_engine_forward_packed(qa->engine, b, L, n_seqs, x->offsets, x->ids, x->seg,
                                            x->start, x->end, err);
    if (st != BQ_OK) return st;
    for (int r = row0, k = 0; r < row1; r++, k++) {
        float *start = c->start + (size_t)r * S, *end = c->end + (size_t)r * S;
        const int len = x->n_tokens[r];
        memcpy(start, x->start + x->offsets[k], (size_t)len * sizeof(float));
        memcpy(end, x->end + x->offsets[k], (size_t)len * sizeof(float));
        for (int p = len; p < S; p++) start[p] = end[p] = -INFINITY;
    }
    return BQ_OK;
}

/* n_tokens[row] = the real tokens of each engine row (window) of a prepared chunk. */
static void window_tokens(const qa_chunk *c, int *n_tokens) {
    for (int i = 0; i < c->n; i++)
        for (int w = 0; c->first_row[i] >= 0 && w < c->feats[i].n_windows; w++)
            n_tokens[c->first_row[i] + w] = c->feats[i].windows[w].n_tokens;
}

/* One engine call for b windows that ran `run` rows at length len, counted into `stats` (may be
 * NULL). */
static void count_batch(bq_qa_stats *stats, int b, int run, int max_batch, int len) {
    if (!stats) return;
    stats->batches++;
    stats->partial_batches += b < max_batch;
    stats->positions += (long)run * len;
}

/* The rows a batch of b windows runs: b, or on a CUDA engine that times and captures every new
 * batch shape, b rounded up to a few sizes (bq_qa_batch_rows), so that the partial batches a
 * stream of requests ends its reads with do not each cost a first pass. */
static int run_rows(const bq_qa *qa, int b) {
    return qa->round_batches ? bq_qa_batch_rows(b, qa->max_batch) : b;
}

/* Every window of a chunk through the engine as packed passes. */
static bq_status chunk_infer_packed(const bq_qa *qa, qa_chunk *c, bq_qa_stats *stats, bq_err *err) {
    if (c->n_rows == 0) return BQ_OK;
    const int mb = qa->max_batch;
    const size_t cells = (size_t)mb * (size_t)qa->seq_len;
    pack_scratch x = {0};
    x.n_tokens = malloc((size_t)c->n_rows * sizeof *x.n_tokens);
    x.first = malloc(((size_t)c->n_rows + 1) * sizeof *x.first);
    x.batches = malloc((size_t)c->n_rows * sizeof *x.batches);
    x.lengths = malloc((size_t)c->n_rows * sizeof *x.lengths);
    x.offsets = malloc((cells + 1) * sizeof *x.offsets);
    x.ids = malloc(cells * sizeof *x.ids);
    x.seg = malloc(cells * sizeof *x.seg);
    x.start = malloc(cells * sizeof *x.start);
    x.end = malloc(cells * sizeof *x.end);
    bq_status st = BQ_OK;
    if (!x.n_tokens || !x.first || !x.batches || !x.lengths || !x.offsets || !x.ids || !x.seg ||
        !x.start || !x.end)
        st = bq_fail(err, BQ_ERR_NOMEM, "out of memory packing %d windows", c->n_rows);
    if (st == BQ_OK) window_tokens(c, x.n_tokens);
    const int passes =
        st == BQ_OK ? bq_qa_plan_packs(x.n_tokens, c->n_rows, mb, qa->seq_len, c->more, x.first,
                                       x.batches, x.lengths)
                    : 0;
    for (int k = 0; k < passes && st == BQ_OK; k++) {
        st = infer_packed(qa, c, &x, x.first[k], x.first[k + 1], x.batches[k], x.lengths[k], err);
        if (st == BQ_OK) count_batch(stats, x.batches[k], x.batches[k], mb, x.lengths[k]);
    }
    pack_scratch_free(&x);
    return st;
}

/* Every row through the engine, max_batch at a time: padded in row order, or (trim, with a length
 * bucket) sorted by length and trimmed, or (trim, packing) packed. Counts the calls into `stats`
 * (may be NULL). */
static bq_status chunk_infer(const bq_qa *qa, qa_chunk *c, int trim, bq_qa_stats *stats, bq_err *err) {
    const int mb = qa->max_batch, bucket = qa->opt.length_bucket;
    if (trim && qa->opt.pack) return chunk_infer_packed(qa, c, stats, err);
    if (!trim || bucket <= 0) {
        bucket_scratch x = {0}; /* for a partial batch rounded up */
        bq_status st = BQ_OK;
        for (int row = 0; row < c->n_rows && st == BQ_OK; row += mb) {
            const int b = c->n_rows - row < mb ? c->n_rows - row : mb, run = run_rows(qa, b);
            if (run > b && !x.ids) st = batch_scratch_alloc(qa, &x, err);
            if (st == BQ_OK) st = infer_padded(qa, c, &x, row, b, run, err);
            if (st == BQ_OK) count_batch(stats, b, run, mb, qa->seq_len);
        }
        bucket_scratch_free(&x);
        return st;
    }
    if (c->n_rows == 0) return BQ_OK;
    bucket_scratch x = {0};
    x.n_tokens = malloc((size_t)c->n_rows * sizeof *x.n_tokens);
    x.order = malloc((size_t)c->n_rows * sizeof *x.order);
    x.lengths = malloc(((size_t)c->n_rows / (size_t)mb + 1) * sizeof *x.lengths);
    bq_status st = BQ_OK;
    if (!x.n_tokens || !x.order || !x.lengths)
        st = bq_fail(err, BQ_ERR_NOMEM, "out of memory sorting %d windows by length", c->n_rows);
    if (st == BQ_OK) st = batch_scratch_alloc(qa, &x, err);
    if (st == BQ_OK) window_tokens(c, x.n_tokens);
    int batches = st == BQ_OK ? bq_qa_plan_buckets(x.n_tokens, c->n_rows, mb, bucket, qa->seq_len,
                                                   x.order, x.lengths)
                              : 0;
    if (batches < 0) st = bq_fail(err, BQ_ERR_NOMEM, "out of memory sorting %d windows by length", c->n_rows);
    for (int k = 0; k < batches && st == BQ_OK; k++) {
        const int first = k * mb, b = c->n_rows - first < mb ? c->n_rows - first : mb;
        const int run = run_rows(qa, b);
        st = infer_trimmed(qa, c, &x, x.order + first, b, run, x.lengths[k], err);
        if (st == BQ_OK) count_batch(stats, b, run, mb, x.lengths[k]);
    }
    bucket_scratch_free(&x);
    return st;
}

/* Answers of requests [begin, end) from their logits (a request that failed has no rows). */
static void decode(void *arg, int begin, int end) {
    chunk_job *j = arg;
    qa_chunk *c = j->c;
    for (int i = begin; i < end; i++) {
        if (c->first_row[i] < 0) continue;
        bq_qa_result *r = &c->res[i];
        bq_err e;
        bq_err_clear(&e);
        size_t at = (size_t)c->first_row[i] * (size_t)j->qa->seq_len;
        r->status = bq_decode(j->qa->model->vocab, &c->feats[i], c->start + at, c->end + at, &j->qa->opt,
                              &r->answers, &e);
        if (r->status != BQ_OK) memcpy(r->error, e.message, sizeof r->error);
    }
}

static bq_status chunk_decode(const bq_qa *qa, qa_chunk *c, bq_err *err) {
    double t0 = now_seconds();
    chunk_job job = {qa, c};
    bq_row_pool_run(qa->host_pool, c->n, decode, &job);
    for (int i = 0; i < c->n; i++)
        if (c->first_row[i] >= 0 && c->res[i].status == BQ_ERR_NOMEM)
            return bq_fail(err, BQ_ERR_NOMEM, "%s", c->res[i].error);
    c->host_seconds += now_seconds() - t0;
    return BQ_OK;
}

bq_status bq_qa_answer(bq_qa *qa, const bq_qa_request *requests, int n, bq_qa_result *results,
                       bq_err *err) {
    qa_chunk c = {.req = requests, .res = results, .n = n};
    bq_status st = chunk_prepare(qa, &c, 0, err);
    if (st == BQ_OK) st = chunk_infer(qa, &c, 1, NULL, err);
    if (st == BQ_OK) st = chunk_decode(qa, &c, err);
    chunk_release(&c);
    return st;
}

bq_status bq_qa_compute_logits(bq_qa *qa, const bq_qa_request *request, bq_qa_logits *out, bq_err *err) {
    memset(out, 0, sizeof *out);
    bq_qa_result res;
    qa_chunk c = {.req = request, .res = &res, .n = 1};
    bq_status st = chunk_prepare(qa, &c, 0, err);
    if (st == BQ_OK && res.status != BQ_OK) st = bq_fail(err, res.status, "%s", res.error);
    if (st == BQ_OK) st = chunk_infer(qa, &c, 0, NULL, err);
    if (st == BQ_OK) {
        out->features = c.feats[0];
        memset(&c.feats[0], 0, sizeof c.feats[0]);
        out->start_logits = c.start;
        out->end_logits = c.end;
        c.start = c.end = NULL;
    }
    chunk_release(&c);
    return st;
}

void bq_qa_logits_free(bq_qa_logits *l) {
    if (!l) return;
    bq_features_free(&l->features);
    free(l->start_logits);
    free(l->end_logits);
    memset(l, 0, sizeof *l);
}

/* ---- pipeline: a host thread prepares chunk k+1 and decodes chunk k-1 while the engine runs k --- */

typedef struct {
    bq_qa *qa;
    qa_chunk *prepare;  /* may be NULL */
    int prepare_whole;  /* cut `prepare` at whole batches (more requests follow it) */
    qa_chunk *decode;   /* may be NULL */
    bq_status status;
    bq_err err;
} host_job;

static void *host_job_run(void *arg) {
    host_job *j = arg;
    j->status = BQ_OK;
    if (j->decode) j->status = chunk_decode(j->qa, j->decode, &j->err);
    if (j->status == BQ_OK && j->prepare)
        j->status = chunk_prepare(j->qa, j->prepare, j->prepare_whole, &j->err);
    return NULL;
}

/* Points chunk c at the requests from `first` on: per_chunk of them, or what is left. */
static void chunk_assign(qa_chunk *c, const bq_qa_request *requests, bq_qa_result *results, int n,
                         int first, int per_chunk) {
    c->req = requests + first;
    c->res = results + first;
    c->n = n - first < per_chunk ? n - first : per_chunk;
}

bq_status bq_qa_pipeline(bq_qa *qa, const bq_qa_request *requests, int n, bq_qa_emit_fn emit,
                         void *emit_ctx, bq_qa_stats *stats, bq_err *err) {
    double t_start = now_seconds();
    bq_qa_stats local = {0};
    /* Chunks of a few engine batches: big enough to keep the engine busy, small enough that the
     * first answers come out soon. Length buckets sort each chunk's windows, so they take more
     * batches a chunk: the more windows sorted together, the closer each batch's length comes to
     * its windows' own (SQuAD dev set, batch 64, buckets of 64: 63.7% of the padded positions
     * with 4 batches a chunk, 57.2% with 16; 54.7% if every window ran at its own bucket). */
    int per_chunk = qa->max_batch * (qa->opt.length_bucket > 0 || qa->opt.pack ? 16 : 4);
    if (per_chunk < 16) per_chunk = 16;
    bq_qa_result *results = calloc(n ? (size_t)n : 1, sizeof *results);
    qa_chunk ring[3];
    memset(ring, 0, sizeof ring);
    if (!results) return bq_fail(err, BQ_ERR_NOMEM, "out of memory");

    bq_status st = BQ_OK;
    int emitted = 0;
    int assigned = 0; /* requests given to a chunk so far; a chunk's prepare can hand some back */
    qa_chunk *cur = NULL, *prev = NULL;
    if (n > 0) {
        cur = &ring[0];
        chunk_assign(cur, requests, results, n, 0, per_chunk);
        st = chunk_prepare(qa, cur, cur->n < n, err);
        assigned = cur->n;
    }
    for (int k = 0; (cur || prev) && st == BQ_OK; k++) {
        /* chunk k (cur) is prepared; run it while the host decodes k-1 and prepares k+1 */
        qa_chunk *next = NULL;
        if (cur && assigned < n) {
            next = &ring[(k + 1) % 3];
            chunk_assign(next, requests, results, n, assigned, per_chunk);
        }
        host_job job = {.qa = qa, .prepare = next, .decode = prev};
        job.prepare_whole = next && assigned + next->n < n;
        bq_err_clear(&job.err);
        pthread_t th;
        int threaded = (next || prev) && cur && pthread_create(&th, NULL, host_job_run, &job) == 0;
        if (!threaded) host_job_run(&job);
        if (cur) {
            double t0 = now_seconds();
            st = chunk_infer(qa, cur, 1, &local, err);
            local.engine_seconds += now_seconds() - t0;
            local.windows += cur->n_rows;
        }
        if (threaded) pthread_join(th, NULL);
        if (st == BQ_OK && job.status != BQ_OK) {
            st = job.status;
            if (err) *err = job.err;
        }
        if (next) assigned += next->n; /* after its prepare: the requests it kept */
        if (prev) {
            /* decoded while the engine ran cur: its answers go out even when cur failed (each
             * result carries its own status, a decode out of memory too) */
            local.host_seconds += prev->host_seconds;
            for (int i = 0; i < prev->n; i++) {
                emit(emit_ctx, emitted, &prev->res[i]);
                emitted++;
            }
            for (int i = 0; i < prev->n; i++) bq_qa_result_free(&prev->res[i]);
            chunk_release(prev);
        }
        prev = cur;
        cur = next;
    }
    for (int i = 0; i < 3; i++) {
        if (ring[i].res)
            for (int j = 0; j < ring[i].n; j++) bq_qa_result_free(&ring[i].res[j]);
        chunk_release(&ring[i]);
    }
    free(results);
    local.wall_seconds = now_seconds() - t_start;
    if (stats) *stats = local;
    return st;
}
