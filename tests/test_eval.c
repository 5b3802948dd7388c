/* test_eval.c - the SQuAD v1.1 metric against tools/squad_eval_reference.py (CPython's own
 * str.lower / re \b / str.split), through goldens made by tools/make_eval_cases.py:
 *   pairs.jsonl          normalized strings, EM and F1 of tricky (prediction, gold) pairs;
 *   unicode_classes.txt  CPython's view of every assigned code point (word / space / lowering);
 *   expected_scores.txt  whole-dev-set scores of 15 prediction files. */
#include "squad_eval.h"
#include "test_support.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

static char *read_text(const char *relative) {
    char *text = NULL;
    bq_err err;
    if (bq_read_file(bq_test_src_path(relative), &text, NULL, &err) != BQ_OK)
        fail_msg("%s", err.message);
    return text;
}

/* gunzip tests/data/<relative> into dir/<basename without .gz>; returns the heap path. */
static char *gunzip_to(const char *dir, const char *relative) {
    const char *base = strrchr(relative, '/');
    base = base ? base + 1 : relative;
    size_t n = strlen(dir) + strlen(base) + 2;
    char *out = malloc(n);
    snprintf(out, n, "%s/%s", dir, base);
    out[strlen(out) - 3] = '\0'; /* drop ".gz" */
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s' > '%s'", bq_test_src_path(relative), out);
    int status = -1;
    free(bq_test_run(cmd, &status));
    if (status != 0) fail_msg("'%s' failed", cmd);
    return out;
}

/* ---- per-pair cases ------------------------------------------------------------------------- */

static void test_pairs(void **state) {
    (void)state;
    char *text = read_text("tests/data/eval/pairs.jsonl");
    int checked = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *row = cJSON_Parse(line);
        assert_non_null(row);
        assert_int_equal(cJSON_GetArraySize(row), 6);
        const char *pred = cJSON_GetArrayItem(row, 0)->valuestring;
        const char *gold = cJSON_GetArrayItem(row, 1)->valuestring;
        const char *norm_pred = cJSON_GetArrayItem(row, 2)->valuestring;
        const char *norm_gold = cJSON_GetArrayItem(row, 3)->valuestring;
        int em = cJSON_GetArrayItem(row, 4)->valueint;
        double f1 = cJSON_GetArrayItem(row, 5)->valuedouble;

        char *np = bq_squad_normalize(pred, strlen(pred));
        char *ng = bq_squad_normalize(gold, strlen(gold));
        assert_non_null(np);
        assert_non_null(ng);
        if (strcmp(np, norm_pred) != 0 || strcmp(ng, norm_gold) != 0)
            fail_msg("line %d: normalize(%s) = '%s' want '%s'; normalize(%s) = '%s' want '%s'",
                     checked + 1, pred, np, norm_pred, gold, ng, norm_gold);
        if (bq_squad_exact(pred, gold) != em || fabs(bq_squad_f1(pred, gold) - f1) > 1e-15)
            fail_msg("line %d ('%s' vs '%s'): em %d f1 %.17g, want em %d f1 %.17g", checked + 1,
                     pred, gold, bq_squad_exact(pred, gold), bq_squad_f1(pred, gold), em, f1);
        free(np);
        free(ng);
        cJSON_Delete(row);
        checked++;
    }
    assert_true(checked >= 100);
    free(text);
}

static void test_documented_examples(void **state) {
    (void)state;
    /* Examples from EVAL_NOTES.md, independent of the generated goldens. */
    char *s = bq_squad_normalize("The U.S. Army", 13);
    assert_string_equal(s, "us army");
    free(s);
    s = bq_squad_normalize("an apple, the\tpear", 18);
    assert_string_equal(s, "apple pear");
    free(s);
    assert_int_equal(bq_squad_exact("the", ""), 1);
    assert_true(bq_squad_f1("the", "") == 0.0);
    assert_true(fabs(bq_squad_f1("cat cat dog", "cat dog dog") - 2.0 / 3.0) < 1e-15);
    assert_int_equal(bq_squad_exact("state-of-the-art", "stateoftheart"), 1);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    assert_null(bq_squad_normalize("ab\xff", 3));
    assert_null(bq_squad_normalize("\xc3", 1));           /* truncated sequence */
    assert_null(bq_squad_normalize("\xed\xa0\x80", 3));   /* UTF-16 surrogate */
    assert_int_equal(bq_squad_exact("\xff", "\xff"), 0);
    char *empty = bq_squad_normalize("", 0);
    assert_string_equal(empty, "");
    free(empty);
}

/* ---- every code point ----------------------------------------------------------------------- */

typedef struct {
    unsigned char *assigned, *word, *space, *ignorable, *cased;
    char **lowered; /* UTF-8 of CPython's lowering of c after "the", or NULL when unchanged */
} unicode_table;

#define N_CODEPOINTS 0x110000

static void mark(unsigned char *set, unsigned long lo, unsigned long hi) {
    for (unsigned long c = lo; c <= hi && c < N_CODEPOINTS; c++) set[c] = 1;
}

static void load_unicode_table(unicode_table *t) {
    t->assigned = calloc(N_CODEPOINTS, 1);
    t->word = calloc(N_CODEPOINTS, 1);
    t->space = calloc(N_CODEPOINTS, 1);
    t->ignorable = calloc(N_CODEPOINTS, 1);
    t->cased = calloc(N_CODEPOINTS, 1);
    t->lowered = calloc(N_CODEPOINTS, sizeof(char *));
    char *text = read_text("tests/data/eval/unicode_classes.txt");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char kind[16];
        int used = 0;
        unsigned long a, b;
        assert_int_equal(sscanf(line, "%15s %lx%n", kind, &a, &used), 2);
        if (strcmp(kind, "lower") == 0) {
            char buf[64];
            size_t len = 0;
            char *p = line + used;
            unsigned long cp;
            int step;
            while (sscanf(p, " %lx%n", &cp, &step) == 1) {
                len += (size_t)utf8proc_encode_char((utf8proc_int32_t)cp,
                                                    (utf8proc_uint8_t *)buf + len);
                p += step;
            }
            t->lowered[a] = bq_strndup(buf, len);
            continue;
        }
        assert_int_equal(sscanf(line + used, " %lx", &b), 1);
        if (strcmp(kind, "assigned") == 0) mark(t->assigned, a, b);
        else if (strcmp(kind, "word") == 0) mark(t->word, a, b);
        else if (strcmp(kind, "space") == 0) mark(t->space, a, b);
        else if (strcmp(kind, "ignorable") == 0) mark(t->ignorable, a, b);
        else if (strcmp(kind, "cased") == 0) mark(t->cased, a, b);
        else fail_msg("unknown line '%s'", line);
    }
    free(text);
}

/* normalize("the" + c), and capital sigma around c, for every code point CPython 3.11
 * (Unicode 14) knows; utf8proc is Unicode 15, so code points new in 15 are outside the table
 * and not checked. Per tools/make_eval_cases.py, CPython gives "" for punctuation and
 * whitespace, "the" + lower(c) for word characters (no \b between them) and lower(c) alone
 * otherwise (article removed). */
static void test_every_codepoint(void **state) {
    (void)state;
    unicode_table t;
    load_unicode_table(&t);
    int checked = 0, failures = 0;
    for (long c = 1; c < N_CODEPOINTS; c++) {
        if (!t.assigned[c]) continue;
        char input[8] = "the", self[8] = {0}, expect[32];
        int n = (int)utf8proc_encode_char((utf8proc_int32_t)c, (utf8proc_uint8_t *)input + 3);
        memcpy(self, input + 3, (size_t)n);
        const char *lowered = t.lowered[c] ? t.lowered[c] : self;
        bool punct = c < 0x80 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", (int)c);
        if (punct || t.space[c]) snprintf(expect, sizeof expect, "%s", "");
        else if (t.word[c]) snprintf(expect, sizeof expect, "the%s", lowered);
        else snprintf(expect, sizeof expect, "%s", lowered);
        char *got = bq_squad_normalize(input, 3 + (size_t)n);
        if (!got || strcmp(got, expect) != 0) {
            if (failures++ < 20)
                print_error("U+%04lX: normalize(\"the\" + c) = '%s', CPython gives '%s'\n", c,
                            got ? got : "(null)", expect);
        }
        free(got);

        /* Capital sigma next to c: "\u0391" + c + "\u03a3" ends in final sigma when c is
         * case-ignorable or cased; "\u0391\u03a3" + c starts with alpha + final sigma when c is
         * case-ignorable or not cased (table rows checked against CPython by the generator). */
        bool final_before = t.ignorable[c] || t.cased[c];
        bool final_after = t.ignorable[c] || !t.cased[c];
        char before[16] = "\xce\x91", after[16] = "\xce\x91\xce\xa3";
        memcpy(before + 2, self, (size_t)n);
        memcpy(before + 2 + n, "\xce\xa3", 3);
        memcpy(after + 4, self, (size_t)n);
        after[4 + n] = '\0';
        char *got_before = bq_squad_normalize(before, strlen(before));
        char *got_after = bq_squad_normalize(after, strlen(after));
        const char *want_end = final_before ? "\xcf\x82" : "\xcf\x83";
        const char *want_start = final_after ? "\xce\xb1\xcf\x82" : "\xce\xb1\xcf\x83";
        size_t gb = got_before ? strlen(got_before) : 0;
        if (!got_before || gb < 2 || strcmp(got_before + gb - 2, want_end) != 0 || !got_after ||
            strncmp(got_after, want_start, 4) != 0) {
            if (failures++ < 20)
                print_error("U+%04lX: sigma context: got '%s' and '%s'; CPython ends '%s', starts "
                            "'%s'\n", c, got_before ? got_before : "(null)",
                            got_after ? got_after : "(null)", want_end, want_start);
        }
        free(got_before);
        free(got_after);
        checked++;
    }
    assert_true(checked > 140000);
    assert_int_equal(failures, 0);
    for (long c = 0; c < N_CODEPOINTS; c++) free(t.lowered[c]);
    free(t.lowered);
    free(t.assigned);
    free(t.word);
    free(t.space);
    free(t.ignorable);
    free(t.cased);
}

/* ---- whole prediction files ----------------------------------------------------------------- */

static void test_prediction_files(void **state) {
    (void)state;
    char *dir = bq_test_tmpdir("eval");
    assert_non_null(dir);
    char *dataset_path = gunzip_to(dir, "tests/data/squad/dev-v1.1.json.gz");
    bq_squad_dataset *ds = NULL;
    bq_err err;
    if (bq_squad_load(dataset_path, BQ_SQUAD_STRICT, &ds, &err) != BQ_OK) fail_msg("%s", err.message);
    assert_int_equal(ds->n_questions, 10570);
    assert_int_equal(ds->n_contexts, 2067);

    char *text = read_text("tests/data/eval/expected_scores.txt");
    int files = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char name[256], rel[512];
        double em, f1;
        int answered;
        assert_int_equal(sscanf(line, "%255s %lf %lf %d", name, &em, &f1, &answered), 4);
        snprintf(rel, sizeof rel, "tests/data/eval/%s", name);
        char *pred_path = gunzip_to(dir, rel);
        bq_predictions *pred = NULL;
        if (bq_predictions_load(pred_path, &pred, &err) != BQ_OK) fail_msg("%s", err.message);
        bq_squad_scores scores;
        if (bq_squad_evaluate(ds, pred, &scores, &err) != BQ_OK) fail_msg("%s", err.message);
        if (fabs(scores.exact_match - em) > 1e-9 || fabs(scores.f1 - f1) > 1e-9 ||
            scores.n_answered != answered || scores.n_questions != 10570)
            fail_msg("%s: EM %.17g F1 %.17g answered %d; reference EM %.17g F1 %.17g answered %d",
                     name, scores.exact_match, scores.f1, scores.n_answered, em, f1, answered);
        bq_predictions_free(pred);
        remove(pred_path);
        free(pred_path);
        files++;
    }
    assert_true(files >= 12);
    free(text);
    bq_squad_free(ds);
    remove(dataset_path);
    free(dataset_path);
    rmdir(dir);
    free(dir);
}

/* ---- edge cases of evaluate ----------------------------------------------------------------- */

static bq_squad_dataset *parse_or_fail(const char *json) {
    bq_squad_dataset *ds = NULL;
    bq_err err;
    if (bq_squad_parse(json, strlen(json), "inline", BQ_SQUAD_STRICT, &ds, &err) != BQ_OK)
        fail_msg("%s", err.message);
    return ds;
}

static void test_evaluate_edge_cases(void **state) {
    (void)state;
    bq_squad_dataset *ds = parse_or_fail(
        "{\"data\":[{\"paragraphs\":[{\"context\":\"c\",\"qas\":["
        "{\"id\":\"q1\",\"question\":\"?\",\"answers\":[{\"text\":\"Paris\"},"
        "{\"text\":\"the city of Paris\"}]},"
        "{\"id\":\"q2\",\"question\":\"?\",\"answers\":[{\"text\":\"two words\"}]},"
        "{\"id\":\"q3\",\"question\":\"?\"}]}]}]}");
    char *ids[] = {"q1", "unknown", "q2"};
    char *answers[] = {"city of Paris", "x", "words"};
    bq_predictions pred = {ids, answers, 3};
    bq_squad_scores s;
    bq_err err;
    assert_int_equal(bq_squad_evaluate(ds, &pred, &s, &err), BQ_OK);
    /* q1: EM 1 ("city of paris" == gold 2 normalized), F1 1; q2: EM 0, F1 2/3; q3 unanswered:
     * the official script skips it (0) before looking at its (absent) gold answers. */
    assert_int_equal(s.n_questions, 3);
    assert_int_equal(s.n_answered, 2);
    assert_true(fabs(s.exact_match - 100.0 / 3.0) < 1e-12);
    assert_true(fabs(s.f1 - 100.0 * (1.0 + 2.0 / 3.0) / 3.0) < 1e-12);

    /* EM and F1 maxima are taken independently over the gold answers. */
    char *ids2[] = {"q1"};
    char *answers2[] = {"Paris city"};
    bq_predictions pred2 = {ids2, answers2, 1};
    assert_int_equal(bq_squad_evaluate(ds, &pred2, &s, &err), BQ_OK);
    assert_true(s.exact_match == 0.0);
    assert_true(fabs(s.f1 - 100.0 * 0.8 / 3.0) < 1e-12); /* vs "city of paris": P 1, R 2/3 */

    /* A prediction for a question without gold answers cannot be scored (the official script
     * fails there too). */
    char *ids3[] = {"q3"};
    char *answers3[] = {"x"};
    bq_predictions pred3 = {ids3, answers3, 1};
    assert_int_equal(bq_squad_evaluate(ds, &pred3, &s, &err), BQ_ERR_FORMAT);
    assert_non_null(strstr(err.message, "q3"));

    /* Repeated ids: the last value wins, like a Python dict built by json.load. */
    char *ids4[] = {"q2", "q2", "q1", "q1"};
    char *answers4[] = {"nothing", "two words", "Paris", "nope"};
    bq_predictions pred4 = {ids4, answers4, 4};
    assert_int_equal(bq_squad_evaluate(ds, &pred4, &s, &err), BQ_OK);
    assert_true(fabs(s.exact_match - 100.0 / 3.0) < 1e-12);
    assert_int_equal(s.n_answered, 2);

    /* A value that is not a string (NULL, bq_predictions_load): refused where it is read, a
     * dataset id's last value, naming the id; not read for an unknown id or under a later repeat */
    char *ids_ns[] = {"q1", "unknown", "q2", "q2"};
    char *answers_ns[] = {NULL, NULL, NULL, "two words"};
    bq_predictions pred_ns = {ids_ns, answers_ns, 4};
    assert_int_equal(bq_squad_evaluate(ds, &pred_ns, &s, &err), BQ_ERR_FORMAT);
    assert_non_null(strstr(err.message, "'q1'"));
    assert_non_null(strstr(err.message, "not a string"));
    pred_ns.ids++, pred_ns.answers++, pred_ns.n--; /* without q1's */
    assert_int_equal(bq_squad_evaluate(ds, &pred_ns, &s, &err), BQ_OK);
    assert_int_equal(s.n_answered, 1);
    assert_true(fabs(s.exact_match - 100.0 / 3.0) < 1e-12);

    assert_int_equal(bq_squad_evaluate(NULL, &pred, &s, &err), BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_squad_evaluate(ds, NULL, &s, &err), BQ_ERR_INVALID_ARG);
    bq_squad_free(ds);

    /* A SQuAD 2.0 file's unanswerable question (empty answers, "is_impossible": true) is named as
     * such: v1.1's evaluation has no rule for it. */
    bq_squad_dataset *v2 = parse_or_fail(
        "{\"version\":\"v2.0\",\"data\":[{\"paragraphs\":[{\"context\":\"c\",\"qas\":["
        "{\"id\":\"n1\",\"question\":\"?\",\"answers\":[],\"is_impossible\":true,"
        "\"plausible_answers\":[{\"text\":\"c\",\"answer_start\":0}]}]}]}]}");
    assert_true(v2->questions[0].impossible);
    char *ids5[] = {"n1"};
    char *answers5[] = {"c"};
    bq_predictions pred5 = {ids5, answers5, 1};
    assert_int_equal(bq_squad_evaluate(v2, &pred5, &s, &err), BQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "n1"));
    assert_non_null(strstr(err.message, "is_impossible"));
    bq_squad_free(v2);

    bq_squad_dataset *empty = parse_or_fail("{\"data\":[]}");
    assert_int_equal(empty->n_questions, 0);
    assert_int_equal(bq_squad_evaluate(empty, &pred, &s, &err), BQ_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "no questions"));
    bq_squad_free(empty);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_examples),
        cmocka_unit_test(test_pairs),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_every_codepoint),
        cmocka_unit_test(test_evaluate_edge_cases),
        cmocka_unit_test(test_prediction_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
