/* test_squad_features.c - SQuAD windows against the independent Python reference
 * (tools/golden_features.py: run_squad's convert_examples_to_features with Hugging Face BertTokenizer)
 * on every dev-set question, plus hand-checked cases and error handling. */
#include "squad_features.h"
#include "test_support.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bq_vocab *g_vocab;

typedef struct {
    const char *qid, *question, *context;
} dev_question;

static cJSON *g_dev;
static dev_question *g_questions;
static size_t g_n_questions;

static int setup(void **state) {
    (void)state;
    g_vocab = bq_test_load_vocab();
    if (!g_vocab) return -1;
    char *json = bq_test_gunzip("tests/data/squad/dev-v1.1.json.gz", NULL);
    if (!json) return -1;
    g_dev = cJSON_Parse(json);
    free(json);
    if (!g_dev) return -1;
    size_t cap = 0;
    const cJSON *article, *para, *qa;
    cJSON_ArrayForEach(article, cJSON_GetObjectItem(g_dev, "data")) {
        cJSON_ArrayForEach(para, cJSON_GetObjectItem(article, "paragraphs")) {
            const char *context = cJSON_GetStringValue(cJSON_GetObjectItem(para, "context"));
            cJSON_ArrayForEach(qa, cJSON_GetObjectItem(para, "qas")) {
                if (!bq_grow((void **)&g_questions, &cap, g_n_questions + 1, sizeof(dev_question)))
                    return -1;
                g_questions[g_n_questions++] = (dev_question){
                    cJSON_GetStringValue(cJSON_GetObjectItem(qa, "id")),
                    cJSON_GetStringValue(cJSON_GetObjectItem(qa, "question")), context};
            }
        }
    }
    return g_n_questions == 10570 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    bq_vocab_free(g_vocab);
    cJSON_Delete(g_dev);
    free(g_questions);
    return 0;
}

/* ---- golden comparison ------------------------------------------------------------------------ */

/* One golden line split into its 7 tab-separated fields (pointers into the line). */
typedef struct {
    char *qid, *window, *n_tokens, *ids, *first_seg1, *max_context, *token_to_word;
} golden_line;

static bool split_line(char *line, golden_line *g) {
    char **fields[7] = {&g->qid, &g->window, &g->n_tokens, &g->ids, &g->first_seg1,
                        &g->max_context, &g->token_to_word};
    for (int i = 0; i < 7; i++) {
        *fields[i] = line;
        char *tab = strchr(line, '\t');
        if (i < 6) {
            if (!tab) return false;
            *tab = '\0';
            line = tab + 1;
        } else if (tab) {
            return false;
        }
    }
    return true;
}

/* Compare one window with its golden line; prints the first difference and returns false. */
static bool window_matches(const bq_features *f, int wi, const golden_line *g,
                           const bq_special_ids *sp) {
    const bq_window *w = &f->windows[wi];
    int S = f->max_seq_length;
    int n_tokens = atoi(g->n_tokens), first_seg1 = atoi(g->first_seg1);
    if (atoi(g->window) != wi || w->n_tokens != n_tokens) {
        fprintf(stderr, "%s window %d: n_tokens %d, golden %d (golden window %s)\n", g->qid, wi,
                w->n_tokens, n_tokens, g->window);
        return false;
    }
    char *p = g->ids;
    for (int t = 0; t < n_tokens; t++) {
        long id = strtol(p, &p, 10);
        if (w->input_ids[t] != id || w->input_mask[t] != 1 ||
            w->segment_ids[t] != (t >= first_seg1)) {
            fprintf(stderr, "%s window %d token %d: id %d mask %d seg %d, golden id %ld seg %d\n",
                    g->qid, wi, t, w->input_ids[t], w->input_mask[t], w->segment_ids[t], id,
                    t >= first_seg1);
            return false;
        }
    }
    for (int t = n_tokens; t < S; t++) {
        if (w->input_ids[t] != sp->pad || w->input_mask[t] != 0 || w->segment_ids[t] != 0) {
            fprintf(stderr, "%s window %d: padding at %d not zero\n", g->qid, wi, t);
            return false;
        }
    }
    int doc_len = (int)strlen(g->max_context);
    if (w->doc_offset != first_seg1 || w->doc_len != doc_len ||
        first_seg1 + doc_len + 1 != n_tokens) {
        fprintf(stderr, "%s window %d: doc_offset %d doc_len %d, golden %d %d\n", g->qid, wi,
                w->doc_offset, w->doc_len, first_seg1, doc_len);
        return false;
    }
    p = g->token_to_word;
    for (int t = 0; t < S; t++) {
        bool in_doc = t >= first_seg1 && t < first_seg1 + doc_len;
        int want_flag = in_doc ? g->max_context[t - first_seg1] == '1' : 0;
        long want_word = in_doc ? strtol(p, &p, 10) : -1;
        if (w->max_context[t] != want_flag || w->token_to_word[t] != want_word) {
            fprintf(stderr, "%s window %d token %d: max_context %d word %d, golden %d %ld\n",
                    g->qid, wi, t, w->max_context[t], w->token_to_word[t], want_flag, want_word);
            return false;
        }
        /* Each context piece's byte span lies inside its word. */
        if (in_doc && (w->span_start[t] < (int32_t)f->word_start[want_word] ||
                       w->span_end[t] > (int32_t)f->word_end[want_word] ||
                       w->span_start[t] >= w->span_end[t])) {
            fprintf(stderr, "%s window %d token %d: span [%d,%d) outside word %ld\n", g->qid, wi,
                    t, w->span_start[t], w->span_end[t], want_word);
            return false;
        }
    }
    return true;
}

/* Compare every feature of a golden file; returns the number of features compared. */
static size_t compare_golden(const char *name, size_t *n_questions_out) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/features/%s", name);
    char *text = bq_test_gunzip(rel, NULL);
    if (!text) fail_msg("cannot decompress %s", rel);

    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    assert_non_null(line);
    bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
    int n_golden_questions = 0;
    assert_int_equal(sscanf(line, "# max_seq_length=%d max_query_length=%d doc_stride=%d questions=%d",
                            &opt.max_seq_length, &opt.max_query_length, &opt.doc_stride,
                            &n_golden_questions),
                     4);
    const bq_special_ids *sp = bq_vocab_special(g_vocab);
    size_t cursor = 0, n_features = 0, n_questions = 0, n_bad = 0;
    golden_line g;
    line = strtok_r(NULL, "\n", &save);
    bool have = line && split_line(line, &g);
    while (have) {
        while (cursor < g_n_questions && strcmp(g_questions[cursor].qid, g.qid) != 0) cursor++;
        assert_true(cursor < g_n_questions); /* golden questions come in dev-set order */
        const dev_question *q = &g_questions[cursor++];
        bq_features f;
        bq_err err = {0};
        bq_status st = bq_features_build(g_vocab, &opt, q->question, strlen(q->question),
                                         q->context, strlen(q->context), &f, &err);
        if (st != BQ_OK) fail_msg("%s: %s", q->qid, err.message);
        n_questions++;
        int wi = 0;
        bool ok = true;
        while (have && strcmp(g.qid, q->qid) == 0) {
            if (ok && (wi >= f.n_windows || !window_matches(&f, wi, &g, sp))) ok = false;
            wi++;
            n_features++;
            line = strtok_r(NULL, "\n", &save);
            have = line != NULL;
            if (have) assert_true(split_line(line, &g));
        }
        if (ok && wi != f.n_windows) {
            fprintf(stderr, "%s: %d windows, golden %d\n", q->qid, f.n_windows, wi);
            ok = false;
        }
        if (!ok) n_bad++;
        bq_features_free(&f);
    }
    free(text);
    printf("%s: %zu questions, %zu features compared, %zu questions differ\n", name, n_questions,
           n_features, n_bad);
    assert_int_equal(n_bad, 0);
    assert_int_equal(n_questions, n_golden_questions);
    *n_questions_out = n_questions;
    return n_features;
}

static void test_golden_dev_default(void **state) {
    (void)state;
    size_t n_questions = 0;
    size_t n = compare_golden("dev_default.tsv.gz", &n_questions);
    assert_int_equal(n_questions, 10570);
    assert_int_equal(n, 10833); /* the count the original run_squad gives on dev v1.1 */
}

static void test_golden_dev_small_windows(void **state) {
    (void)state;
    size_t n_questions = 0;
    size_t n = compare_golden("dev_small.tsv.gz", &n_questions); /* 128 / 16 / stride 64 */
    assert_true(n > n_questions);                              /* many multi-window questions */
}

static void test_golden_dev_stride_past_window(void **state) {
    (void)state;
    size_t n_questions = 0;
    size_t n = compare_golden("dev_nooverlap.tsv.gz", &n_questions); /* 96 / 24 / stride 200 */
    assert_true(n > n_questions);
}

/* ---- hand-checked cases ----------------------------------------------------------------------- */

static int32_t id_of(const char *token) {
    int32_t id = bq_vocab_find(g_vocab, token, strlen(token));
    assert_true(id >= 0);
    return id;
}

/* Words split on space, tab, CR, LF and U+202F only (not on U+00A0); bytes spans recorded. */
static void test_word_split_and_layout(void **state) {
    (void)state;
    /* "the  fox\tran\u202Fhome\xc2\xa0now" */
    const char *context = "the  fox\tran\xe2\x80\xafhome\xc2\xa0now";
    bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
    bq_features f;
    bq_err err = {0};
    assert_int_equal(bq_features_build(g_vocab, &opt, "who?", 4, context, strlen(context), &f, &err),
                     BQ_OK);
    assert_int_equal(f.n_words, 4);
    const uint32_t starts[4] = {0, 5, 9, 15}, ends[4] = {3, 8, 12, 24};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(f.word_start[i], starts[i]);
        assert_int_equal(f.word_end[i], ends[i]);
    }
    assert_int_equal(f.n_windows, 1);
    assert_int_equal(f.n_question_pieces, 2);
    const bq_window *w = &f.windows[0];
    /* [CLS] who ? [SEP] the fox ran home now [SEP]: U+00A0 is whitespace to the basic tokenizer. */
    const char *tokens[] = {"[CLS]", "who", "?", "[SEP]", "the", "fox", "ran", "home", "now", "[SEP]"};
    const int words[] = {-1, -1, -1, -1, 0, 1, 2, 3, 3, -1};
    assert_int_equal(w->n_tokens, 10);
    assert_int_equal(w->doc_offset, 4);
    assert_int_equal(w->doc_len, 5);
    for (int t = 0; t < 10; t++) {
        assert_int_equal(w->input_ids[t], id_of(tokens[t]));
        assert_int_equal(w->segment_ids[t], t >= 4);
        assert_int_equal(w->input_mask[t], 1);
        assert_int_equal(w->token_to_word[t], words[t]);
        assert_int_equal(w->max_context[t], t >= 4 && t < 9);
    }
    assert_int_equal(w->span_start[7], 15); /* "home" */
    assert_int_equal(w->span_end[7], 19);
    assert_int_equal(w->span_start[8], 21); /* "now" after the no-break space */
    assert_int_equal(w->span_end[8], 24);
    assert_int_equal(w->input_ids[10], 0);
    assert_int_equal(w->input_mask[10], 0);
    bq_features_free(&f);
}

/* Windows by hand: 13 one-piece words, 2 question pieces, max_seq_length 12 (room 7), stride 2. */
static void test_windows_and_max_context(void **state) {
    (void)state;
    const char *context = "0 1 2 3 4 5 6 7 8 9 10 11 12";
    bq_squad_options opt = {12, 64, 2, 20, 30, 0, 0};
    bq_features f;
    bq_err err = {0};
    assert_int_equal(bq_features_build(g_vocab, &opt, "what?", 5, context, strlen(context), &f, &err),
                     BQ_OK);
    /* 13 pieces, room 7: windows [0,6] [2,8] [4,10] [6,12] (6 + 7 = 13 reaches the end). */
    assert_int_equal(f.n_windows, 4);
    const int doc_start[4] = {0, 2, 4, 6}, doc_len[4] = {7, 7, 7, 7};
    /* Owner of each piece by min(left, right) + 0.01 * 7, the first window winning ties:
     * 3: w0 3, w1 1 -> w0; 4: w0 2, w1 2 (tie), w2 0 -> w0; 5: w0 1, w1 3, w2 1 -> w1;
     * 6: w1 2, w2 2 (tie) -> w1; 7: w1 1, w2 3, w3 1 -> w2; 8: w2 2, w3 2 (tie) -> w2;
     * 9: w2 1, w3 3 -> w3. */
    const int owner[13] = {0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3};
    for (int wi = 0; wi < 4; wi++) {
        const bq_window *w = &f.windows[wi];
        assert_int_equal(w->doc_start, doc_start[wi]);
        assert_int_equal(w->doc_len, doc_len[wi]);
        assert_int_equal(w->n_tokens, 2 + 2 + 7 + 1);
        for (int i = 0; i < w->doc_len; i++) {
            int piece = w->doc_start + i;
            char word[4];
            snprintf(word, sizeof word, "%d", piece);
            assert_int_equal(w->input_ids[w->doc_offset + i], id_of(word));
            assert_int_equal(w->token_to_word[w->doc_offset + i], piece);
            assert_int_equal(w->max_context[w->doc_offset + i], owner[piece] == wi);
        }
    }
    bq_features_free(&f);
}

/* Small strides (each piece in up to 24 windows, the last window short): every context piece has
 * exactly one max-context window, and it is the one min(left, right) + 0.01 * len ranks first,
 * the first winning ties, looked for among all windows. */
static void test_max_context_small_strides(void **state) {
    (void)state;
    char context[400] = "";
    for (int i = 0; i < 100; i++) snprintf(context + strlen(context), sizeof context - strlen(context), "%d ", i);
    for (int stride = 1; stride <= 7; stride += 3) {
        bq_squad_options opt = {30, 64, stride, 20, 30, 0, 0}; /* room for 24 pieces a window */
        bq_features f;
        bq_err err = {0};
        assert_int_equal(bq_features_build(g_vocab, &opt, "what?", 5, context, strlen(context), &f,
                                           &err), BQ_OK);
        assert_true(f.n_windows >= (100 - 24) / stride); /* 24 pieces fit a window */
        int owners[100] = {0}, checked = 0;
        for (int wi = 0; wi < f.n_windows; wi++) {
            const bq_window *w = &f.windows[wi];
            for (int i = 0; i < w->doc_len; i++) {
                const int piece = w->doc_start + i;
                assert_in_range(piece, 0, 99);
                owners[piece] += w->max_context[w->doc_offset + i];
                /* the expected owner, over every window */
                int best = -1;
                double best_score = 0.0;
                for (int oi = 0; oi < f.n_windows; oi++) {
                    const bq_window *o = &f.windows[oi];
                    if (piece < o->doc_start || piece >= o->doc_start + o->doc_len) continue;
                    const int left = piece - o->doc_start, right = o->doc_start + o->doc_len - 1 - piece;
                    const double score = (left < right ? left : right) + 0.01 * o->doc_len;
                    if (best < 0 || score > best_score) best = oi, best_score = score;
                }
                assert_int_equal(w->max_context[w->doc_offset + i], best == wi);
                checked++;
            }
        }
        for (int p = 0; p < 100; p++) assert_int_equal(owners[p], 1);
        assert_true(checked > 100);
        bq_features_free(&f);
    }
}

static void test_question_truncated(void **state) {
    (void)state;
    bq_squad_options opt = {32, 3, 128, 20, 30, 0, 0};
    bq_features f;
    bq_err err = {0};
    const char *q = "who ran the fox home?";
    assert_int_equal(bq_features_build(g_vocab, &opt, q, strlen(q), "a b", 3, &f, &err), BQ_OK);
    assert_int_equal(f.n_question_pieces, 3);
    const bq_window *w = &f.windows[0];
    assert_int_equal(w->input_ids[1], id_of("who"));
    assert_int_equal(w->input_ids[3], id_of("the"));
    assert_int_equal(w->input_ids[4], id_of("[SEP]"));
    assert_int_equal(w->doc_offset, 5);
    bq_features_free(&f);
}

static void test_errors(void **state) {
    (void)state;
    bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
    bq_features f;
    bq_err err = {0};
    /* Invalid UTF-8 in the context and in the question. */
    assert_int_equal(bq_features_build(g_vocab, &opt, "q", 1, "ab\xff", 3, &f, &err), BQ_ERR_UTF8);
    assert_non_null(strstr(err.message, "byte 2"));
    assert_int_equal(bq_features_build(g_vocab, &opt, "q\xc3", 2, "ab", 2, &f, &err), BQ_ERR_UTF8);
    assert_int_equal(bq_features_build(g_vocab, &opt, "q", 1, "a\xed\xa0\x80", 4, &f, &err),
                     BQ_ERR_UTF8); /* a surrogate */
    /* A NUL in the context (valid UTF-8, but answers are NUL-terminated copies of the context:
     * found by tests/fuzz/fuzz_features_decode); a NUL in the question is dropped as a control
     * character, as BERT's tokenizer drops it. */
    assert_int_equal(bq_features_build(g_vocab, &opt, "q", 1, "ab\0cd", 5, &f, &err), BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "NUL character at byte 2"));
    assert_int_equal(bq_features_build(g_vocab, &opt, "do\0g", 4, "ab", 2, &f, &err), BQ_OK);
    assert_int_equal(f.n_question_pieces, 1); /* "dog" */
    assert_int_equal(f.windows[0].input_ids[1], id_of("dog"));
    bq_features_free(&f);
    /* No room: 8 question pieces + 3 specials fill max_seq_length 11. */
    bq_squad_options tight = {11, 64, 128, 20, 30, 0, 0};
    const char *q = "one two three four five six seven eight";
    assert_int_equal(bq_features_build(g_vocab, &tight, q, strlen(q), "a", 1, &f, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "max_seq_length"));
    tight.max_seq_length = 12; /* one piece of room works */
    assert_int_equal(bq_features_build(g_vocab, &tight, q, strlen(q), "a b", 3, &f, &err), BQ_OK);
    assert_int_equal(f.n_windows, 2);
    bq_features_free(&f);
    bq_squad_options bad = {384, 64, 0, 20, 30, 0, 0};
    assert_int_equal(bq_features_build(g_vocab, &bad, "q", 1, "a", 1, &f, &err),
                     BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "doc_stride"));
    /* A context of whitespace only has nothing to window. */
    assert_int_equal(bq_features_build(g_vocab, &opt, "q", 1, " \n ", 3, &f, &err),
                     BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_features_build(NULL, &opt, "q", 1, "a", 1, &f, &err), BQ_ERR_INVALID_ARG);
    bq_features_free(NULL);
    bq_features zero = {0};
    bq_features_free(&zero);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_word_split_and_layout),
        cmocka_unit_test(test_max_context_small_strides),
        cmocka_unit_test(test_windows_and_max_context),
        cmocka_unit_test(test_question_truncated),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_golden_dev_default),
        cmocka_unit_test(test_golden_dev_small_windows),
        cmocka_unit_test(test_golden_dev_stride_past_window),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
