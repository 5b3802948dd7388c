/* test_qa.c - the question-answering pipeline's batching: where chunks are cut
 * (bq_qa_whole_batch_prefix, by hand), and bq_qa_pipeline on a tiny random model on the CPU: every
 * request answered, in order, exactly as bq_qa_answer answers it alone, with no partial engine
 * batch but the last where the windows allow. */
#include "qa.h"
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BQ_MAKE_MODEL
#error "BQ_MAKE_MODEL (path of bertqa-make-model) must be defined by the build"
#endif

/* ---- where a chunk is cut ---------------------------------------------------------------------- */

static void test_whole_batch_prefix(void **state) {
    (void)state;
    /* 10 windows, batch 4 -> the first 8: requests 0..7 */
    const int ones[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(bq_qa_whole_batch_prefix(ones, 10, 4), 8);
    /* exactly whole batches: everything */
    assert_int_equal(bq_qa_whole_batch_prefix(ones, 8, 4), 8);
    /* fewer windows than one batch: nothing gained by cutting */
    assert_int_equal(bq_qa_whole_batch_prefix(ones, 3, 4), 3);
    /* failed requests (0 windows) cost nothing and stay with their neighbours */
    const int holes[7] = {1, 0, 1, 1, 0, 1, 1};
    assert_int_equal(bq_qa_whole_batch_prefix(holes, 7, 4), 6);
    /* a two-window request straddling the cut (windows 4 and 5 of 5+): stop before it, 3 rows */
    const int straddle[5] = {1, 1, 1, 2, 1};
    assert_int_equal(bq_qa_whole_batch_prefix(straddle, 5, 4), 3);
    /* a straddler at the last cut, but the cut one batch earlier is exact: 4 rows, not 7 */
    const int late[9] = {1, 1, 1, 1, 1, 1, 1, 2, 1};
    assert_int_equal(bq_qa_whole_batch_prefix(late, 9, 4), 4);
    /* one request with more windows than a batch still makes progress */
    const int big[2] = {9, 1};
    assert_int_equal(bq_qa_whole_batch_prefix(big, 2, 4), 1);
    /* batch 1: every prefix is whole */
    assert_int_equal(bq_qa_whole_batch_prefix(straddle, 5, 1), 5);
}

/* Rows sorted by length (stable), each batch at its longest row rounded up to the bucket, capped
 * at the sequence length. */
static void test_plan_buckets(void **state) {
    (void)state;
    const int n_tokens[7] = {30, 5, 64, 12, 12, 40, 7};
    int order[7], lengths[3];
    assert_int_equal(bq_qa_plan_buckets(n_tokens, 7, 3, 16, 64, order, lengths), 3);
    const int want_order[7] = {1, 6, 3, 4, 0, 5, 2};
    for (int i = 0; i < 7; i++) assert_int_equal(order[i], want_order[i]);
    assert_int_equal(lengths[0], 16); /* 5, 7, 12 */
    assert_int_equal(lengths[1], 48); /* 12, 30, 40 */
    assert_int_equal(lengths[2], 64); /* 64 */
    /* a bucket that does not divide the length: capped at it */
    assert_int_equal(bq_qa_plan_buckets(n_tokens, 7, 4, 48, 64, order, lengths), 2);
    assert_int_equal(lengths[0], 48);
    assert_int_equal(lengths[1], 64);
    /* one batch */
    assert_int_equal(bq_qa_plan_buckets(n_tokens, 2, 8, 8, 64, order, lengths), 1);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 0);
    assert_int_equal(lengths[0], 32);
}

/* Packing: windows back to back in row order, a pass closed when the next would not fit; the last
 * pass rounded up to the next power of two or multiple of max_batch / 8 rows, the smaller. */
static void test_plan_packs(void **state) {
    (void)state;
    const int n_tokens[6] = {30, 40, 64, 10, 50, 5};
    int first[21], batches[20], lengths[20];
    /* passes of 2 x 64 = 128 tokens: 30 + 40 (+ 64 > 128), 64 + 10 + 50 (+ 5 > 128), 5 */
    assert_int_equal(bq_qa_plan_packs(n_tokens, 6, 2, 64, 0, first, batches, lengths), 3);
    const int want_first[4] = {0, 2, 5, 6}, want_batches[3] = {2, 2, 1};
    for (int k = 0; k < 4; k++) assert_int_equal(first[k], want_first[k]);
    for (int k = 0; k < 3; k++) assert_int_equal(batches[k], want_batches[k]);
    for (int k = 0; k < 3; k++) assert_int_equal(lengths[k], 64); /* one row of 64: 5 -> 64 */
    /* max batch 16: one pass of 199 tokens = 4 rows (a power of two and a multiple of 2) */
    assert_int_equal(bq_qa_plan_packs(n_tokens, 6, 16, 64, 0, first, batches, lengths), 1);
    assert_int_equal(first[1], 6);
    assert_int_equal(batches[0], 4);
    assert_int_equal(bq_qa_plan_packs(n_tokens, 1, 16, 64, 0, first, batches, lengths), 1);
    assert_int_equal(batches[0], 1); /* 30 tokens: 1 row stays 1 */
    /* max batch 64 (multiples of 8): 3 rows -> 4 (power of two); 10 rows (583 tokens) -> 16, the
     * smaller of 16 and 16; 20 rows -> 24, not 32 */
    const int three_rows[3] = {64, 64, 10}, ten_rows[10] = {64, 64, 64, 64, 64, 64, 64, 64, 64, 7};
    assert_int_equal(bq_qa_plan_packs(three_rows, 3, 64, 64, 0, first, batches, lengths), 1);
    assert_int_equal(batches[0], 4);
    assert_int_equal(bq_qa_plan_packs(ten_rows, 10, 64, 64, 0, first, batches, lengths), 1);
    assert_int_equal(batches[0], 16);
    int twenty_rows[20];
    for (int i = 0; i < 20; i++) twenty_rows[i] = 64;
    assert_int_equal(bq_qa_plan_packs(twenty_rows, 20, 64, 64, 0, first, batches, lengths), 1);
    assert_int_equal(batches[0], 24);
    /* a pass exactly full, and windows of the full length */
    const int full[3] = {64, 64, 64};
    assert_int_equal(bq_qa_plan_packs(full, 3, 2, 64, 0, first, batches, lengths), 2);
    assert_int_equal(batches[0], 2);
    assert_int_equal(batches[1], 1);
    assert_int_equal(bq_qa_plan_packs(full, 0, 2, 64, 0, first, batches, lengths), 0);
    /* windows of 384: a pass of one row runs its tokens rounded up to 64, more rows run 384 */
    const int short_windows[4] = {100, 150, 300, 90};
    assert_int_equal(bq_qa_plan_packs(short_windows, 2, 8, 384, 0, first, batches, lengths), 1);
    assert_int_equal(batches[0], 1);
    assert_int_equal(lengths[0], 256); /* 250 tokens */
    assert_int_equal(bq_qa_plan_packs(short_windows, 4, 8, 384, 0, first, batches, lengths), 1);
    assert_int_equal(batches[0], 2);
    assert_int_equal(lengths[0], 384); /* 640 tokens: 2 rows */
    /* max batch 1: every pass one row, each cut to its tokens */
    assert_int_equal(bq_qa_plan_packs(short_windows, 4, 1, 384, 0, first, batches, lengths), 3);
    const int want_lengths[3] = {256, 320, 128}; /* 100 + 150, 300, 90 */
    for (int k = 0; k < 3; k++) assert_int_equal(lengths[k], want_lengths[k]);
    /* more windows follow: the last pass runs max_batch rows, as a closed one does */
    assert_int_equal(bq_qa_plan_packs(n_tokens, 6, 16, 64, 1, first, batches, lengths), 1);
    assert_int_equal(batches[0], 16);
    assert_int_equal(lengths[0], 64);
    assert_int_equal(bq_qa_plan_packs(n_tokens, 6, 2, 64, 1, first, batches, lengths), 3);
    for (int k = 0; k < 3; k++) assert_int_equal(batches[k], 2);
    /* ... and at max batch 1 it is still cut to its tokens */
    assert_int_equal(bq_qa_plan_packs(short_windows, 4, 1, 384, 1, first, batches, lengths), 3);
    assert_int_equal(batches[2], 1);
    assert_int_equal(lengths[2], 128);
}

/* Partial batches on a tuning CUDA engine: the next power of two or multiple of max_batch / 8,
 * the smaller, at most max_batch. */
static void test_batch_rows(void **state) {
    (void)state;
    const int mb64[][2] = {{1, 1}, {2, 2}, {3, 4}, {8, 8}, {9, 16}, {10, 16}, {17, 24}, {20, 24},
                           {33, 40}, {63, 64}, {64, 64}};
    for (size_t i = 0; i < sizeof mb64 / sizeof mb64[0]; i++)
        assert_int_equal(bq_qa_batch_rows(mb64[i][0], 64), mb64[i][1]);
    assert_int_equal(bq_qa_batch_rows(81, 128), 96); /* the SQuAD dev set's last batch of 128 */
    assert_int_equal(bq_qa_batch_rows(5, 8), 5);     /* steps of 1 below 16 */
    assert_int_equal(bq_qa_batch_rows(1, 1), 1);
    assert_int_equal(bq_qa_batch_rows(7, 6), 6);     /* never past max_batch */
    /* at most a dozen sizes for every partial batch of 128 */
    int sizes = 0, last = 0;
    for (int b = 1; b <= 128; b++) {
        const int r = bq_qa_batch_rows(b, 128);
        assert_true(r >= b && r <= 128);
        sizes += r != last;
        last = r;
    }
    assert_int_equal(sizes, 12); /* 1 2 4 8 16 32 48 64 80 96 112 128 */
}

/* A chunk kept up to where a packed pass closes at a request boundary. */
static void test_whole_pack_prefix(void **state) {
    (void)state;
    /* passes of 2 x 64 = 128 tokens over windows 30 40 | 64 10 50 | 5 (as test_plan_packs) */
    const int n_tokens[6] = {30, 40, 64, 10, 50, 5};
    const int singles[6] = {1, 1, 1, 1, 1, 1};
    assert_int_equal(bq_qa_whole_pack_prefix(singles, n_tokens, 6, 2, 64), 5); /* the last pass starts at 5 */
    /* request 3 holds windows 4 and 5 (50, 5): the pass at window 5 starts inside it, so the cut
     * is the pass before, at window 2 = request 2 */
    const int last_two[5] = {1, 1, 1, 1, 2};
    assert_int_equal(bq_qa_whole_pack_prefix(last_two, n_tokens, 5, 2, 64), 2);
    /* a failed request (no windows) just before the cut stays in the chunk */
    const int failed[7] = {1, 1, 1, 1, 1, 0, 1};
    assert_int_equal(bq_qa_whole_pack_prefix(failed, n_tokens, 7, 2, 64), 6);
    /* one pass only, or every pass start inside a request: keep all */
    assert_int_equal(bq_qa_whole_pack_prefix(singles, n_tokens, 2, 2, 64), 2);
    const int straddle[2] = {3, 3};
    assert_int_equal(bq_qa_whole_pack_prefix(straddle, n_tokens, 2, 2, 64), 2);
    /* the cut matches bq_qa_plan_packs over the same windows: its first[] holds the cut */
    int first[7], batches[6], lengths[6];
    const int passes = bq_qa_plan_packs(n_tokens, 6, 2, 64, 0, first, batches, lengths);
    assert_int_equal(first[passes - 1], 5);
}

/* ---- the pipeline on a tiny model -------------------------------------------------------------- */

static char *g_tmpdir;
static bq_model *g_model;

static int setup(void **state) {
    (void)state;
    g_tmpdir = bq_test_tmpdir("qa");
    if (!g_tmpdir) return -1;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --out '%s/tiny' --preset tiny --seed 3 2>&1", BQ_MAKE_MODEL,
             g_tmpdir);
    int status = -1;
    char *output = bq_test_run(cmd, &status);
    if (status != 0) print_error("%s failed (%d): %s\n", cmd, status, output ? output : "");
    free(output);
    if (status != 0) return -1;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/tiny", g_tmpdir);
    bq_err err = {0};
    if (bq_model_load(dir, NULL, &g_model, &err) != BQ_OK) {
        print_error("bq_model_load(%s): %s\n", dir, err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    bq_model_free(g_model);
    if (g_tmpdir) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
        free(bq_test_run(cmd, NULL));
    }
    free(g_tmpdir);
    return 0;
}

typedef struct {
    bq_qa_result *got; /* [n], copied from the emitted results */
    int n, next_index, out_of_order;
} emit_sink;

static void collect(void *ctx, int index, const bq_qa_result *r) {
    emit_sink *s = ctx;
    if (index != s->next_index || index >= s->n) {
        s->out_of_order++;
        return;
    }
    s->next_index++;
    bq_qa_result *dst = &s->got[index];
    *dst = *r;
    /* the pipeline frees its results after emitting them: keep our own copy of the answers */
    dst->answers.items = calloc((size_t)(r->answers.n ? r->answers.n : 1), sizeof(bq_answer));
    for (int i = 0; i < r->answers.n; i++) {
        dst->answers.items[i] = r->answers.items[i];
        dst->answers.items[i].text = strdup(r->answers.items[i].text);
    }
}

static void free_sink(emit_sink *sink) {
    for (int i = 0; i < sink->n; i++) {
        for (int a = 0; a < sink->got[i].answers.n; a++) free(sink->got[i].answers.items[a].text);
        free(sink->got[i].answers.items);
    }
    free(sink->got);
}

/* 40 requests: most one window, every seventh a failed request (empty context: no windows), and
 * a few long contexts that take several 64-token windows. With max_batch 4 the pipeline's chunks
 * of 16 requests hold 13-15 windows, which the old cut (16 requests a chunk) ran as 3 full
 * batches and a partial one; cut at whole batches, only the last chunk may end partial. */
static void test_pipeline_whole_batches(void **state) {
    (void)state;
    enum { N = 40 };
    const char *short_ctx = "The river Avon flows through the city of Bath, which was founded by the "
                            "Romans as a spa in 60 AD.";
    const char *long_ctx =
        "Bath is a city in Somerset, England, known for its Roman-built baths. In 2021 the "
        "population was 101,557. Bath is in the valley of the River Avon, 97 miles west of London "
        "and 11 miles south-east of Bristol. The city became a World Heritage Site in 1987, and was "
        "later added to the transnational World Heritage Site known as the Great Spa Towns of "
        "Europe in 2021. Bath is also the largest city and settlement in Somerset. The city became "
        "part of Avon in 1974, and, following Avon's abolition in 1996, has been the principal "
        "centre of Bath and North East Somerset.";
    bq_qa_request req[N];
    for (int i = 0; i < N; i++) {
        const char *q = i % 3 ? "Who founded Bath?" : "When did Bath become a World Heritage Site?";
        const char *ctx = i % 7 == 3 ? "" : i % 11 == 5 ? long_ctx : short_ctx;
        req[i] = (bq_qa_request){q, strlen(q), ctx, strlen(ctx)};
    }

    bq_engine_options eo;
    bq_engine_options_default(&eo);
    eo.max_batch = 4;
    eo.seq_len = 64;
    bq_squad_options so = BQ_SQUAD_OPTIONS_DEFAULT;
    so.max_seq_length = 64, so.max_query_length = 16, so.doc_stride = 32;
    bq_engine *engine = NULL;
    bq_qa *qa = NULL;
    bq_err err = {0};
    if (bq_engine_create(g_model, &eo, &engine, &err) != BQ_OK) fail_msg("engine: %s", err.message);
    if (bq_qa_create(g_model, engine, &so, &qa, &err) != BQ_OK) fail_msg("qa: %s", err.message);

    emit_sink sink = {calloc(N, sizeof(bq_qa_result)), N, 0, 0};
    bq_qa_stats stats;
    assert_int_equal(bq_qa_pipeline(qa, req, N, collect, &sink, &stats, &err), BQ_OK);
    assert_int_equal(sink.out_of_order, 0);
    assert_int_equal(sink.next_index, N);

    long windows = 0;
    int multi_window = 0;
    for (int i = 0; i < N; i++) {
        bq_qa_result alone;
        assert_int_equal(bq_qa_answer(qa, &req[i], 1, &alone, &err), BQ_OK);
        const bq_qa_result *got = &sink.got[i];
        assert_int_equal(got->status, alone.status);
        if (i % 7 == 3) assert_int_not_equal(got->status, BQ_OK); /* empty context */
        if (alone.status == BQ_OK) {
            assert_int_equal(got->n_windows, alone.n_windows);
            windows += alone.n_windows;
            multi_window += alone.n_windows > 1;
            assert_int_equal(got->answers.n, alone.answers.n);
            assert_string_equal(got->answers.items[0].text, alone.answers.items[0].text);
            /* same rows, other batch neighbours: the CPU reference computes each row alone */
            assert_float_equal(got->answers.items[0].score, alone.answers.items[0].score, 1e-4);
        }
        bq_qa_result_free(&alone);
    }
    assert_true(multi_window >= 2); /* the long contexts did take several windows */
    assert_int_equal(stats.windows, windows);
    /* whole batches but the last: as few engine calls as the windows allow */
    assert_true(stats.partial_batches <= 1);
    assert_int_equal(stats.batches, (windows + eo.max_batch - 1) / eo.max_batch);

    free_sink(&sink);
    bq_qa_free(qa);
    bq_engine_free(engine);
}

/* Length buckets: windows sorted by length and each batch cut to its longest window (rounded up to
 * 16 of the 64 positions) give the answers of untrimmed batches with padding excluded from
 * decoding (bucket = the full length), whatever the batch neighbours (each request alone), for
 * fewer positions run; out-of-range buckets are refused. */
enum { N_BATH = 30 };

/* N_BATH requests: two questions on three contexts of 1 to 3 windows of 64. */
static void bath_requests(bq_qa_request *req) {
    static const char *const ctx[3] = {
        "Bath was founded by the Romans.",
        "The river Avon flows through the city of Bath, which was founded by the Romans as a spa in "
        "60 AD.",
        "Bath is a city in Somerset, England, known for its Roman-built baths. In 2021 the "
        "population was 101,557. Bath is in the valley of the River Avon, 97 miles west of London "
        "and 11 miles south-east of Bristol. The city became a World Heritage Site in 1987."};
    static const char *const q[2] = {"Who founded Bath?",
                                     "When did the city of Bath become a World Heritage Site?"};
    for (int i = 0; i < N_BATH; i++)
        req[i] = (bq_qa_request){q[i % 2], strlen(q[i % 2]), ctx[i % 3], strlen(ctx[i % 3])};
}

/* The answers of two sinks are the same, text and score. */
static void assert_same_answers(const emit_sink *x, const emit_sink *y, int n) {
    for (int i = 0; i < n; i++) {
        const bq_answers *a = &x->got[i].answers, *b = &y->got[i].answers;
        assert_int_equal(x->got[i].status, BQ_OK);
        assert_int_equal(a->n, b->n);
        for (int j = 0; j < a->n; j++) {
            assert_string_equal(a->items[j].text, b->items[j].text);
            assert_float_equal(a->items[j].score, b->items[j].score, 1e-4);
        }
    }
}

/* Each request alone through bq_qa_answer gives the pipeline's best answer and score. */
static void assert_alone_same(bq_qa *qa, const bq_qa_request *req, const emit_sink *sink, int n) {
    bq_err err = {0};
    for (int i = 0; i < n; i++) {
        bq_qa_result alone;
        assert_int_equal(bq_qa_answer(qa, &req[i], 1, &alone, &err), BQ_OK);
        assert_int_equal(alone.status, BQ_OK);
        assert_string_equal(sink->got[i].answers.items[0].text, alone.answers.items[0].text);
        assert_float_equal(sink->got[i].answers.items[0].score, alone.answers.items[0].score, 1e-4);
        bq_qa_result_free(&alone);
    }
}

static void test_pipeline_length_buckets(void **state) {
    (void)state;
    enum { N = N_BATH };
    bq_qa_request req[N];
    bath_requests(req);

    bq_engine_options eo;
    bq_engine_options_default(&eo);
    eo.max_batch = 4;
    eo.seq_len = 64;
    bq_engine *engine = NULL;
    bq_err err = {0};
    if (bq_engine_create(g_model, &eo, &engine, &err) != BQ_OK) fail_msg("engine: %s", err.message);
    bq_squad_options so = BQ_SQUAD_OPTIONS_DEFAULT;
    so.max_seq_length = 64, so.max_query_length = 16, so.doc_stride = 32;
    bq_qa *qa = NULL;
    so.length_bucket = 65;
    assert_int_equal(bq_qa_create(g_model, engine, &so, &qa, &err), BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "length bucket 65"));
    so.length_bucket = -1;
    assert_int_equal(bq_qa_create(g_model, engine, &so, &qa, &err), BQ_ERR_INVALID_ARG);
    /* the engine's own bounds on a trimmed length */
    int32_t ids[65] = {0}, mask[65] = {0}, seg[65] = {0};
    float start[65], end[65];
    assert_int_equal(bq_engine_forward_length(engine, 1, 0, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_engine_forward_length(engine, 1, 65, ids, mask, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "sequence length 65 outside [1, 64]"));
    assert_int_equal(bq_engine_forward_length(engine, 1, 3, ids, mask, seg, start, end, &err), BQ_OK);

    const int buckets[2] = {64, 16}; /* untrimmed (padding excluded), then trimmed */
    emit_sink sinks[2];
    bq_qa_stats stats[2];
    for (int k = 0; k < 2; k++) {
        so.length_bucket = buckets[k];
        if (bq_qa_create(g_model, engine, &so, &qa, &err) != BQ_OK) fail_msg("qa: %s", err.message);
        sinks[k] = (emit_sink){calloc(N, sizeof(bq_qa_result)), N, 0, 0};
        assert_int_equal(bq_qa_pipeline(qa, req, N, collect, &sinks[k], &stats[k], &err), BQ_OK);
        assert_int_equal(sinks[k].out_of_order, 0);
        assert_int_equal(sinks[k].next_index, N);
        if (k == 1) /* each request alone: other neighbours, other batch lengths */
            assert_alone_same(qa, req, &sinks[1], N);
        bq_qa_free(qa);
    }
    assert_int_equal(stats[0].windows, stats[1].windows);
    assert_int_equal(stats[0].positions, stats[0].windows * 64);
    printf("[ buckets  ] %ld windows: %ld positions untrimmed, %ld in buckets of 16\n",
           stats[0].windows, stats[0].positions, stats[1].positions);
    assert_true(stats[1].positions < stats[0].positions * 3 / 4);
    assert_same_answers(&sinks[0], &sinks[1], N);
    free_sink(&sinks[0]);
    free_sink(&sinks[1]);
    bq_engine_free(engine);
}

/* Packing: windows back to back with no padding, each attending to itself, give the answers of
 * padded batches with padding excluded from decoding (buckets of the full length), whatever the
 * pass neighbours (each request alone), for fewer positions than length buckets; the engine
 * refuses a bad layout and bq_qa_create refuses packing with length buckets. */
static void test_pipeline_packed(void **state) {
    (void)state;
    enum { N = N_BATH, S = 64 };
    bq_qa_request req[N];
    bath_requests(req);
    bq_engine_options eo;
    bq_engine_options_default(&eo);
    eo.max_batch = 4;
    eo.seq_len = S;
    bq_engine *engine = NULL;
    bq_err err = {0};
    if (bq_engine_create(g_model, &eo, &engine, &err) != BQ_OK) fail_msg("engine: %s", err.message);
    bq_squad_options so = BQ_SQUAD_OPTIONS_DEFAULT;
    so.max_seq_length = S, so.max_query_length = 16, so.doc_stride = 32;
    bq_qa *qa = NULL;
    so.pack = 1, so.length_bucket = 16;
    assert_int_equal(bq_qa_create(g_model, engine, &so, &qa, &err), BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "alternatives"));

    /* the engine's checks of a packed layout: 2 rows of 64 */
    int32_t ids[2 * S] = {0}, seg[2 * S] = {0};
    float start[2 * S], end[2 * S];
    const int32_t good[4] = {0, 50, 100, 2 * S}, short_end[4] = {0, 50, 100, 120},
                  too_long[4] = {0, 65, 100, 2 * S}, empty[4] = {0, 50, 50, 2 * S},
                  late[4] = {1, 50, 100, 2 * S};
    assert_int_equal(bq_engine_forward_packed(engine, 2, S, 3, good, ids, seg, start, end, &err), BQ_OK);
    assert_int_equal(bq_engine_forward_packed(engine, 2, S, 3, short_end, ids, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "end at 120, not at the batch's 128"));
    assert_int_equal(bq_engine_forward_packed(engine, 2, S, 3, too_long, ids, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "sequence 0 is 65 positions long, outside 1..64"));
    assert_int_equal(bq_engine_forward_packed(engine, 2, S, 3, empty, ids, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "sequence 1 is 0"));
    assert_int_equal(bq_engine_forward_packed(engine, 2, S, 3, late, ids, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_engine_forward_packed(engine, 5, S, 3, good, ids, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    /* a trimmed packed pass: 2 rows of 50 hold 3 sequences; its layout must end at 100 */
    const int32_t trimmed[4] = {0, 30, 64, 100};
    assert_int_equal(bq_engine_forward_packed(engine, 2, 50, 3, trimmed, ids, seg, start, end, &err), BQ_OK);
    assert_int_equal(bq_engine_forward_packed(engine, 2, 50, 3, good, ids, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_engine_forward_packed(engine, 2, 65, 3, good, ids, seg, start, end, &err),
                     BQ_ERR_INVALID_ARG);

    emit_sink sinks[2];
    bq_qa_stats stats[2];
    for (int k = 0; k < 2; k++) {
        so.length_bucket = k == 0 ? S : 0; /* padded with padding excluded; packed */
        so.pack = k == 1;
        if (bq_qa_create(g_model, engine, &so, &qa, &err) != BQ_OK) fail_msg("qa: %s", err.message);
        sinks[k] = (emit_sink){calloc(N, sizeof(bq_qa_result)), N, 0, 0};
        assert_int_equal(bq_qa_pipeline(qa, req, N, collect, &sinks[k], &stats[k], &err), BQ_OK);
        assert_int_equal(sinks[k].out_of_order, 0);
        assert_int_equal(sinks[k].next_index, N);
        if (k == 1) assert_alone_same(qa, req, &sinks[1], N);
        bq_qa_free(qa);
    }
    assert_int_equal(stats[0].windows, stats[1].windows);
    printf("[ packed   ] %ld windows: %ld positions padded, %ld packed in %ld passes\n",
           stats[0].windows, stats[0].positions, stats[1].positions, stats[1].batches);
    assert_true(stats[1].positions < stats[0].positions * 3 / 4);
    assert_same_answers(&sinks[0], &sinks[1], N);
    free_sink(&sinks[0]);
    free_sink(&sinks[1]);
    bq_engine_free(engine);
}

int main(void) {
    bq_test_filter_from_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_batch_prefix),
        cmocka_unit_test(test_plan_buckets),
        cmocka_unit_test(test_plan_packs),
        cmocka_unit_test(test_whole_pack_prefix),
        cmocka_unit_test(test_batch_rows),
        cmocka_unit_test_setup_teardown(test_pipeline_whole_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_length_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_packed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
