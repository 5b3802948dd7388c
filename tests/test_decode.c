/* test_decode.c - answer decoding: synthetic logits where the right answer is known by hand, and
 * 500 dev questions with seeded pseudo-random logits against the independent Python implementation
 * of the original write_predictions / get_final_text (tools/golden_features.py -> decode.jsonl.gz). */
#include "decode.h"
#include "test_support.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bq_vocab *g_vocab;

static int setup(void **state) {
    (void)state;
    g_vocab = bq_test_load_vocab();
    return g_vocab ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    bq_vocab_free(g_vocab);
    return 0;
}

/* ---- synthetic cases -------------------------------------------------------------------------- */

/* Features plus logits [n_windows, S] filled with a background value. */
typedef struct {
    bq_features f;
    float *start, *end;
} case_data;

static void case_build(case_data *c, const char *question, const char *context,
                       const bq_squad_options *opt, float background) {
    bq_err err = {0};
    bq_status st = bq_features_build(g_vocab, opt, question, strlen(question), context,
                                     strlen(context), &c->f, &err);
    if (st != BQ_OK) fail_msg("features: %s", err.message);
    size_t n = (size_t)c->f.n_windows * (size_t)c->f.max_seq_length;
    c->start = malloc(n * sizeof(float));
    c->end = malloc(n * sizeof(float));
    assert_non_null(c->start);
    assert_non_null(c->end);
    for (size_t i = 0; i < n; i++) c->start[i] = c->end[i] = background;
}

static void case_free(case_data *c) {
    bq_features_free(&c->f);
    free(c->start);
    free(c->end);
}

/* Position in window `wi` of the context piece whose byte span starts at `byte`. */
static int pos_at(const case_data *c, int wi, int byte) {
    const bq_window *w = &c->f.windows[wi];
    for (int t = w->doc_offset; t < w->doc_offset + w->doc_len; t++)
        if (w->span_start[t] == byte) return t;
    fail_msg("no piece starts at byte %d in window %d", byte, wi);
    return -1;
}

static void set_logit(float *logits, const case_data *c, int wi, int pos, float v) {
    logits[(size_t)wi * (size_t)c->f.max_seq_length + (size_t)pos] = v;
}

static void decode_ok(const case_data *c, const bq_squad_options *opt, bq_answers *out) {
    bq_err err = {0};
    bq_status st = bq_decode(g_vocab, &c->f, c->start, c->end, opt, out, &err);
    if (st != BQ_OK) fail_msg("decode: %s", err.message);
    assert_true(out->n >= 1 && out->n <= opt->n_best);
    double total = 0;
    for (int i = 0; i < out->n; i++) {
        total += out->items[i].probability;
        if (i) assert_true(out->items[i].score <= out->items[i - 1].score);
        if (i) assert_true(out->items[i].probability <= out->items[i - 1].probability);
    }
    assert_true(fabs(total - 1.0) < 1e-5);
}

static void expect_answer(const bq_answer *a, const char *text, int byte_start, int byte_end,
                          int char_start, int char_end) {
    assert_string_equal(a->text, text);
    assert_int_equal(a->byte_start, byte_start);
    assert_int_equal(a->byte_end, byte_end);
    assert_int_equal(a->char_start, char_start);
    assert_int_equal(a->char_end, char_end);
}

/* Decode with one strong (start, end) pair over a low background; returns the best answer. */
static void single_span(const char *context, int start_byte, int end_byte_of_last_piece,
                        bq_answers *out) {
    bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
    case_data c;
    case_build(&c, "what?", context, &opt, -10.0f);
    set_logit(c.start, &c, 0, pos_at(&c, 0, start_byte), 5.0f);
    set_logit(c.end, &c, 0, pos_at(&c, 0, end_byte_of_last_piece), 5.0f);
    decode_ok(&c, &opt, out);
    assert_true(out->items[0].start_logit == 5.0f && out->items[0].end_logit == 5.0f);
    assert_true(out->items[0].score == 10.0f);
    case_free(&c);
}

/* Logits near FLT_MAX: their sum overflows a float but not the double score (it was once cast to
 * float, undefined behaviour that printed the score as null). */
static void test_huge_logits_score(void **state) {
    (void)state;
    bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
    case_data c;
    const char *context = "The quick brown fox jumps over the lazy dog.";
    case_build(&c, "what?", context, &opt, -10.0f);
    set_logit(c.start, &c, 0, pos_at(&c, 0, 10), 3e38f);
    set_logit(c.end, &c, 0, pos_at(&c, 0, 16), 3e38f);
    bq_answers a;
    decode_ok(&c, &opt, &a);
    expect_answer(&a.items[0], "brown fox", 10, 19, 10, 19);
    assert_true(isfinite(a.items[0].score));
    assert_true(a.items[0].score == (double)3e38f + (double)3e38f);
    bq_answers_free(&a);
    case_free(&c);
}

/* Infinite and NaN logits: NaN ranks lowest; a +inf score takes all the probability (the limit of
 * the softmax), not an even share as it once did. */
static void test_non_finite_logits(void **state) {
    (void)state;
    bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
    case_data c;
    const char *context = "The quick brown fox jumps over the lazy dog.";
    case_build(&c, "what?", context, &opt, -10.0f);
    set_logit(c.start, &c, 0, pos_at(&c, 0, 10), INFINITY); /* "brown" */
    set_logit(c.end, &c, 0, pos_at(&c, 0, 16), 5.0f);       /* "fox" */
    set_logit(c.start, &c, 0, pos_at(&c, 0, 4), NAN);       /* "quick": never first */
    set_logit(c.end, &c, 0, pos_at(&c, 0, 4), 9.0f);
    bq_answers a;
    decode_ok(&c, &opt, &a);
    expect_answer(&a.items[0], "brown fox", 10, 19, 10, 19);
    /* every span from "brown" scores +inf and they share the probability; the finite rest get 0 */
    int infinite = 0;
    for (int i = 0; i < a.n; i++) infinite += isinf(a.items[i].score) && a.items[i].score > 0;
    assert_true(infinite >= 2 && infinite < a.n);
    for (int i = 0; i < a.n; i++)
        assert_true(a.items[i].probability == (i < infinite ? 1.0f / (float)infinite : 0.0f));
    bq_answers_free(&a);
    /* every score NaN (+inf + -inf): an even share. All end logits tie, so the 20 best ends are
     * the first 20 positions, the document's among them (n-best 20). */
    for (size_t i = 0; i < (size_t)c.f.n_windows * (size_t)c.f.max_seq_length; i++) c.end[i] = -INFINITY;
    set_logit(c.start, &c, 0, pos_at(&c, 0, 4), -10.0f);
    decode_ok(&c, &opt, &a);
    assert_true(a.n > 3);
    assert_string_equal(a.items[0].text, "brown");
    for (int i = 0; i < a.n; i++) assert_true(fabsf(a.items[i].probability - 1.0f / (float)a.n) < 1e-6f);
    bq_answers_free(&a);
    case_free(&c);
}

static void test_known_span(void **state) {
    (void)state;
    bq_answers a;
    single_span("The quick brown fox jumps over the lazy dog.", 10, 16, &a);
    expect_answer(&a.items[0], "brown fox", 10, 19, 10, 19);
    bq_answers_free(&a);
}

/* Equal logits keep position order; equal scores keep generation order (start rank, end rank). */
static void test_ties(void **state) {
    (void)state;
    bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
    case_data c;
    /* [CLS] what ? [SEP] a b c d e f g h [SEP]: b=5 c=6 d=7 e=8 f=9 */
    case_build(&c, "what?", "a b c d e f g h", &opt, 0.0f);
    set_logit(c.start, &c, 0, 5, 5.0f); /* b */
    set_logit(c.start, &c, 0, 8, 5.0f); /* e */
    set_logit(c.end, &c, 0, 6, 5.0f);   /* c */
    set_logit(c.end, &c, 0, 9, 5.0f);   /* f */
    bq_answers a;
    decode_ok(&c, &opt, &a);
    /* Score 10: (b,c) (b,f) (e,f) in that order. Score 5, in generation order: start b with the
     * remaining ends by position: b, d, e, ... */
    const char *want[] = {"b c", "b c d e f", "e f", "b", "b c d", "b c d e"};
    assert_true(a.n >= 6);
    for (int i = 0; i < 6; i++) assert_string_equal(a.items[i].text, want[i]);
    assert_true(a.items[0].probability == a.items[1].probability);
    assert_true(a.items[1].probability == a.items[2].probability);
    assert_true(a.items[2].probability > a.items[3].probability);
    bq_answers_free(&a);
    case_free(&c);
}

/* An answer in the overlap of three windows comes from its max-context window only. */
static void test_span_in_window_overlap(void **state) {
    (void)state;
    char context[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(context + n, sizeof context - n, i ? " %d" : "%d", i);
    /* room 32 - 2 - 3 = 27, stride 8: windows start 0, 8, 16, ... 80 (11 windows). */
    bq_squad_options opt = {32, 64, 8, 20, 30, 0, 0};
    case_data c;
    case_build(&c, "what?", context, &opt, -20.0f);
    assert_int_equal(c.f.n_windows, 11);
    /* Piece 30 sits in windows 1 (8..34, min 4), 2 (16..42, min 12) and 3 (24..50, min 6). */
    int byte30 = 80, byte31 = 83;
    set_logit(c.start, &c, 1, pos_at(&c, 1, byte30), 15.0f);
    set_logit(c.end, &c, 1, pos_at(&c, 1, byte31), 15.0f);
    set_logit(c.start, &c, 3, pos_at(&c, 3, byte30), 15.0f);
    set_logit(c.end, &c, 3, pos_at(&c, 3, byte31), 15.0f);
    set_logit(c.start, &c, 2, pos_at(&c, 2, byte30), 10.0f);
    set_logit(c.end, &c, 2, pos_at(&c, 2, byte31), 10.0f);
    bq_answers a;
    decode_ok(&c, &opt, &a);
    expect_answer(&a.items[0], "30 31", 80, 85, 80, 85);
    assert_true(a.items[0].start_logit == 10.0f && a.items[0].end_logit == 10.0f);
    bq_answers_free(&a);
    case_free(&c);
}

/* Start and end of the context; a piece inside a word with punctuation; accents kept. */
static void test_context_edges_and_punctuation(void **state) {
    (void)state;
    const char *context = " Caf\xc3\xa9 au lait (1990)"; /* " Café au lait (1990)" */
    bq_answers a;
    single_span(context, 1, 1, &a); /* first piece: "cafe" */
    expect_answer(&a.items[0], "Caf\xc3\xa9", 1, 6, 1, 5);
    bq_answers_free(&a);
    single_span(context, 16, 16, &a); /* "1990" inside "(1990)" */
    expect_answer(&a.items[0], "1990", 16, 20, 15, 19);
    bq_answers_free(&a);
    single_span(context, 16, 20, &a); /* "1990 )": ends on the context's last character */
    expect_answer(&a.items[0], "1990)", 16, 21, 15, 20);
    bq_answers_free(&a);
    single_span(context, 1, 20, &a); /* the whole context */
    expect_answer(&a.items[0], "Caf\xc3\xa9 au lait (1990)", 1, 21, 1, 20);
    bq_answers_free(&a);
    single_span(context, 10, 13, &a); /* "lai ##t" glued back */
    expect_answer(&a.items[0], "lait", 10, 14, 9, 13);
    bq_answers_free(&a);
}

static void test_unicode(void **state) {
    (void)state;
    const char *swedish = "\xc3\x85ngstr\xc3\xb6m was born in \xc3\x96rebro.";
    bq_answers a;
    single_span(swedish, 23, 27, &a); /* "ore ##bro": "Örebro", not "Örebro." */
    expect_answer(&a.items[0], "\xc3\x96rebro", 23, 30, 21, 27);
    bq_answers_free(&a);
    single_span(swedish, 0, 4, &a); /* "ang ##strom" */
    expect_answer(&a.items[0], "\xc3\x85ngstr\xc3\xb6m", 0, 10, 0, 8);
    bq_answers_free(&a);

    /* "東京は日本の首都です": one context word; CJK ideographs are pieces of their own. */
    const char *cjk = "\xe6\x9d\xb1\xe4\xba\xac\xe3\x81\xaf\xe6\x97\xa5\xe6\x9c\xac\xe3\x81\xae"
                      "\xe9\xa6\x96\xe9\x83\xbd\xe3\x81\xa7\xe3\x81\x99";
    single_span(cjk, 9, 12, &a); /* 日 本 -> "日本" */
    expect_answer(&a.items[0], "\xe6\x97\xa5\xe6\x9c\xac", 9, 15, 3, 5);
    bq_answers_free(&a);
    single_span(cjk, 24, 27, &a); /* "て ##す" (dakuten stripped) -> "です" */
    expect_answer(&a.items[0], "\xe3\x81\xa7\xe3\x81\x99", 24, 30, 8, 10);
    bq_answers_free(&a);
    /* 首 is [UNK] in this vocabulary: the piece text is not found, so the whole word comes back. */
    single_span(cjk, 18, 21, &a);
    expect_answer(&a.items[0], cjk, 0, 30, 0, 10);
    bq_answers_free(&a);

    /* "ΑΣ-Β": the pieces "α ##σ" lower sigma letter by letter, but run_squad's get_final_text
     * lower-cases the word "ΑΣ-Β" whole (BasicTokenizer, str.lower()), where the sigma is final
     * (ς): "ασ" is not found in "ας - β", so the whole word comes back, as Hugging Face's does */
    const char *greek = "\xce\x91\xce\xa3-\xce\x92";
    single_span(greek, 0, 2, &a);
    expect_answer(&a.items[0], greek, 0, 7, 0, 4);
    bq_answers_free(&a);
    /* a sigma inside a word stays σ: "ΑΣΑ" answers as its pieces say */
    single_span("\xce\x91\xce\xa3\xce\x91 x", 0, 2, &a);
    expect_answer(&a.items[0], "\xce\x91\xce\xa3", 0, 4, 0, 2);
    bq_answers_free(&a);
}

static void test_empty(void **state) {
    (void)state;
    bq_squad_options opt = {384, 64, 128, 3, 30, 0, 0};
    case_data c;
    case_build(&c, "what?", "a b c", &opt, -10.0f);
    for (int p = 0; p < 3; p++) set_logit(c.start, &c, 0, p, 10.0f); /* [CLS] what ? */
    bq_answers a;
    decode_ok(&c, &opt, &a);
    assert_int_equal(a.n, 1);
    expect_answer(&a.items[0], "empty", -1, -1, -1, -1);
    assert_true(a.items[0].probability == 1.0f);
    assert_true(a.items[0].start_logit == 0.0f && a.items[0].end_logit == 0.0f);
    bq_answers_free(&a);
    case_free(&c);
}

static void test_nbest_limit_and_probabilities(void **state) {
    (void)state;
    bq_squad_options opt = {384, 64, 128, 5, 30, 0, 0};
    case_data c;
    case_build(&c, "what?", "one two three four five six seven eight nine ten", &opt, -100.0f);
    /* Random starts on the first five words, random ends on the last five: 25 valid spans with
     * distinct texts, of which n_best = 5 are kept. */
    uint64_t seed = 42;
    int doc = c.f.windows[0].doc_offset;
    bq_test_fill_uniform(c.start + doc, 5, &seed, -3.0f, 3.0f);
    bq_test_fill_uniform(c.end + doc + 5, 5, &seed, -3.0f, 3.0f);
    bq_answers a;
    decode_ok(&c, &opt, &a);
    assert_int_equal(a.n, 5);
    double max_score = a.items[0].start_logit + (double)a.items[0].end_logit, total = 0;
    for (int i = 0; i < a.n; i++) {
        for (int j = 0; j < i; j++) assert_string_not_equal(a.items[i].text, a.items[j].text);
        total += exp(a.items[i].start_logit + (double)a.items[i].end_logit - max_score);
    }
    for (int i = 0; i < a.n; i++) {
        double p = exp(a.items[i].start_logit + (double)a.items[i].end_logit - max_score) / total;
        assert_true(fabs(p - a.items[i].probability) < 1e-6);
    }
    bq_answers_free(&a);
    case_free(&c);
}

/* The same text at two places counts once; spans longer than max_answer_length never qualify. */
static void test_duplicates_and_length_limit(void **state) {
    (void)state;
    bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
    case_data c;
    case_build(&c, "what?", "a fox and a fox", &opt, -10.0f);
    set_logit(c.start, &c, 0, pos_at(&c, 0, 2), 5.0f);
    set_logit(c.end, &c, 0, pos_at(&c, 0, 2), 5.0f);
    set_logit(c.start, &c, 0, pos_at(&c, 0, 12), 4.0f);
    set_logit(c.end, &c, 0, pos_at(&c, 0, 12), 4.0f);
    bq_answers a;
    decode_ok(&c, &opt, &a);
    expect_answer(&a.items[0], "fox", 2, 5, 2, 5);
    for (int i = 1; i < a.n; i++) assert_string_not_equal(a.items[i].text, "fox");
    assert_string_equal(a.items[1].text, "fox and a fox"); /* 5 + 4 */
    bq_answers_free(&a);

    opt.max_answer_length = 3; /* "fox and a fox" is 4 pieces */
    decode_ok(&c, &opt, &a);
    for (int i = 0; i < a.n; i++) assert_string_not_equal(a.items[i].text, "fox and a fox");
    bq_answers_free(&a);
    case_free(&c);
}

static void test_errors(void **state) {
    (void)state;
    bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
    case_data c;
    case_build(&c, "what?", "a b", &opt, 0.0f);
    bq_answers a;
    bq_err err = {0};
    opt.n_best = 0;
    assert_int_equal(bq_decode(g_vocab, &c.f, c.start, c.end, &opt, &a, &err), BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "n_best"));
    opt.n_best = 20;
    assert_int_equal(bq_decode(g_vocab, &c.f, NULL, c.end, &opt, &a, &err), BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_decode(g_vocab, NULL, c.start, c.end, &opt, &a, &err), BQ_ERR_INVALID_ARG);
    bq_answers_free(NULL);
    bq_answers zero = {0};
    bq_answers_free(&zero);
    case_free(&c);
}

/* ---- golden: the Python reference on dev questions with seeded logits ------------------------- */

/* Same numbers as logits_for() in tools/golden_features.py. */
static float golden_logit(uint64_t *s, bool ties) {
    uint64_t z = bq_splitmix64(s);
    if (ties) return (float)((double)((z >> 33) % 9) * 0.5 - 2.0);
    return (float)((double)(z >> 11) * (1.0 / 9007199254740992.0) * 16.0 - 8.0);
}

static const cJSON *find_question(const cJSON *dev, const char *qid, const char **question,
                                  const char **context) {
    const cJSON *article, *para, *qa;
    cJSON_ArrayForEach(article, cJSON_GetObjectItem(dev, "data")) {
        cJSON_ArrayForEach(para, cJSON_GetObjectItem(article, "paragraphs")) {
            cJSON_ArrayForEach(qa, cJSON_GetObjectItem(para, "qas")) {
                if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(qa, "id")), qid) == 0) {
                    *question = cJSON_GetStringValue(cJSON_GetObjectItem(qa, "question"));
                    *context = cJSON_GetStringValue(cJSON_GetObjectItem(para, "context"));
                    return qa;
                }
            }
        }
    }
    return NULL;
}

static void test_golden_dev_decodes(void **state) {
    (void)state;
    char *json = bq_test_gunzip("tests/data/squad/dev-v1.1.json.gz", NULL);
    assert_non_null(json);
    cJSON *dev = cJSON_Parse(json);
    free(json);
    assert_non_null(dev);
    char *lines = bq_test_gunzip("tests/data/features/decode.jsonl.gz", NULL);
    assert_non_null(lines);

    int n_questions = 0, n_bad = 0, n_answers = 0, n_empty = 0;
    char *save = NULL;
    for (char *line = strtok_r(lines, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *g = cJSON_Parse(line);
        assert_non_null(g);
        const char *qid = cJSON_GetStringValue(cJSON_GetObjectItem(g, "qid"));
        const char *question = NULL, *context = NULL;
        assert_non_null(find_question(dev, qid, &question, &context));
        bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
        opt.n_best = cJSON_GetObjectItem(g, "n_best")->valueint;
        opt.max_answer_length = cJSON_GetObjectItem(g, "max_answer_length")->valueint;
        bool ties = strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(g, "mode")), "ties") == 0;
        uint64_t seed = (uint64_t)cJSON_GetObjectItem(g, "seed")->valuedouble;

        case_data c;
        case_build(&c, question, context, &opt, 0.0f);
        size_t S = (size_t)c.f.max_seq_length;
        for (int wi = 0; wi < c.f.n_windows; wi++) {
            for (size_t i = 0; i < S; i++) c.start[wi * S + i] = golden_logit(&seed, ties);
            for (size_t i = 0; i < S; i++) c.end[wi * S + i] = golden_logit(&seed, ties);
        }
        bq_answers a;
        decode_ok(&c, &opt, &a);
        const cJSON *nbest = cJSON_GetObjectItem(g, "nbest");
        bool ok = cJSON_GetArraySize(nbest) == a.n;
        if (!ok) fprintf(stderr, "%s: %d answers, golden %d\n", qid, a.n, cJSON_GetArraySize(nbest));
        for (int i = 0; ok && i < a.n; i++) {
            const cJSON *e = cJSON_GetArrayItem(nbest, i);
            const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(e, "text"));
            int cs = cJSON_GetObjectItem(e, "char_start")->valueint;
            int ce = cJSON_GetObjectItem(e, "char_end")->valueint;
            double p = cJSON_GetObjectItem(e, "probability")->valuedouble;
            float sl = (float)cJSON_GetObjectItem(e, "start_logit")->valuedouble;
            float el = (float)cJSON_GetObjectItem(e, "end_logit")->valuedouble;
            const bq_answer *x = &a.items[i];
            if (strcmp(text, x->text) != 0 || cs != x->char_start || ce != x->char_end ||
                fabs(p - x->probability) > 1e-5 || sl != x->start_logit || el != x->end_logit) {
                fprintf(stderr, "%s #%d: '%s' [%d,%d) p=%.6f, golden '%s' [%d,%d) p=%.6f\n", qid, i,
                        x->text, x->char_start, x->char_end, x->probability, text, cs, ce, p);
                ok = false;
            }
        }
        n_answers += a.n;
        n_empty += strcmp(a.items[0].text, "empty") == 0;
        n_bad += !ok;
        n_questions++;
        bq_answers_free(&a);
        case_free(&c);
        cJSON_Delete(g);
    }
    printf("decode golden: %d questions, %d answers compared, %d empty, %d questions differ\n",
           n_questions, n_answers, n_empty, n_bad);
    free(lines);
    cJSON_Delete(dev);
    assert_int_equal(n_questions, 500);
    assert_int_equal(n_bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_span),
        cmocka_unit_test(test_huge_logits_score),
        cmocka_unit_test(test_non_finite_logits),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_span_in_window_overlap),
        cmocka_unit_test(test_context_edges_and_punctuation),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_nbest_limit_and_probabilities),
        cmocka_unit_test(test_duplicates_and_length_limit),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_golden_dev_decodes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
