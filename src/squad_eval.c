/* squad_eval.c - the official SQuAD v1.1 exact-match and F1 rules (evaluate-v1.1.py), reproduced
 * with Python 3 string semantics:
 *   1. str.lower(): full lower-casing, i.e. simple case mapping plus U+0130 -> "i\u0307" and the
 *      Final_Sigma rule for U+03A3 (the only context rule Python implements);
 *   2. delete the 32 characters of string.punctuation (ASCII only);
 *   3. re.sub(r'\b(a|an|the)\b', ' ', s) with Unicode word characters (str.isalnum() or '_');
 *   4. ' '.join(s.split()) with Python's Unicode whitespace.
 * Character classes come from utf8proc (Unicode 15); they were checked against CPython for every
 * code point (tests/data/eval/unicode_classes.txt). */
#include "squad_eval.h"

#include "python_case.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

typedef utf8proc_int32_t codepoint;

/* ---- character classes ---------------------------------------------------------------------- */

/* Python str.isspace(): bidi class WS/B/S or category Zs. */
static bool is_python_space(codepoint c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python re's \w for str patterns: str.isalnum() (categories L* and N*) or '_'. */
static bool is_word(codepoint c) {
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '_';
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return true;
    default:
        return false;
    }
}

static bool is_ascii_punctuation(codepoint c) {
    return c < 0x80 && c != 0 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", (int)c) != NULL;
}

/* ---- normalization -------------------------------------------------------------------------- */

static bool is_article(const codepoint *w, size_t n) {
    return (n == 1 && w[0] == 'a') || (n == 2 && w[0] == 'a' && w[1] == 'n') ||
           (n == 3 && w[0] == 't' && w[1] == 'h' && w[2] == 'e');
}

char *bq_squad_normalize(const char *text, size_t len) {
    if (!text && len) return NULL;
    /* Decode; every code point lowers to at most 2 (only U+0130 expands). */
    codepoint *src = malloc((len + 1) * sizeof *src);
    codepoint *low = malloc((2 * len + 1) * sizeof *low);
    char *out = malloc(4 * (2 * len) + 1);
    if (!src || !low || !out) goto fail;
    size_t n = 0;
    for (size_t pos = 0; pos < len;) {
        utf8proc_ssize_t step = utf8proc_iterate((const utf8proc_uint8_t *)text + pos,
                                                 (utf8proc_ssize_t)(len - pos), &src[n]);
        if (step <= 0) goto fail;
        pos += (size_t)step;
        n++;
    }

    /* 1-2: lower-case, then drop ASCII punctuation. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        codepoint c = src[i];
        if (c == 0x130) { /* SpecialCasing: LATIN CAPITAL LETTER I WITH DOT ABOVE */
            low[m++] = 'i';
            low[m++] = 0x307;
            continue;
        }
        c = c == 0x3A3 ? bq_py_lower_capital_sigma(src, n, i) : utf8proc_tolower(c);
        if (!is_ascii_punctuation(c)) low[m++] = c;
    }

    /* 3-4: articles that are whole words become a space; then split on whitespace and rejoin. */
    size_t out_len = 0;
    bool pending_space = false;
    for (size_t i = 0; i < m;) {
        size_t run = 0;
        while (i + run < m && is_word(low[i + run])) run++;
        if (run > 0 && is_article(low + i, run)) {
            i += run;
            pending_space = out_len > 0;
            continue;
        }
        if (run == 0) run = 1; /* a single non-word character */
        for (size_t k = i; k < i + run; k++) {
            if (is_python_space(low[k])) {
                pending_space = out_len > 0;
                continue;
            }
            if (pending_space) {
                out[out_len++] = ' ';
                pending_space = false;
            }
            out_len += (size_t)utf8proc_encode_char(low[k], (utf8proc_uint8_t *)out + out_len);
        }
        i += run;
    }
    out[out_len] = '\0';
    free(src);
    free(low);
    return out;
fail:
    free(src);
    free(low);
    free(out);
    return NULL;
}

/* ---- per-pair metrics ----------------------------------------------------------------------- */

/* Split a normalized string (tokens separated by single spaces) in place. */
typedef struct {
    char **tokens;
    size_t n;
} token_list;

static bool tokenize(char *normalized, token_list *out) {
    out->n = 0;
    out->tokens = NULL;
    size_t count = 0;
    for (char *p = normalized; *p;) {
        count++;
        char *space = strchr(p, ' ');
        if (!space) break;
        p = space + 1;
    }
    if (count == 0) return true;
    out->tokens = malloc(count * sizeof *out->tokens);
    if (!out->tokens) return false;
    for (char *p = normalized; p && *p;) {
        out->tokens[out->n++] = p;
        char *space = strchr(p, ' ');
        if (space) *space = '\0';
        p = space ? space + 1 : NULL;
    }
    return true;
}

static int compare_tokens(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Bag-of-tokens F1 on sorted token lists, with the official script's arithmetic order. */
static double f1_sorted(const token_list *pred, const token_list *gold) {
    size_t i = 0, j = 0, same = 0;
    while (i < pred->n && j < gold->n) {
        int c = strcmp(pred->tokens[i], gold->tokens[j]);
        if (c == 0) {
            same++;
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    if (same == 0) return 0.0;
    double precision = 1.0 * (double)same / (double)pred->n;
    double recall = 1.0 * (double)same / (double)gold->n;
    return (2 * precision * recall) / (precision + recall);
}

/* A normalized answer: its text and its sorted tokens (pointing into a second copy). */
typedef struct {
    char *text;
    char *token_storage;
    token_list tokens;
} normalized_answer;

static bool normalize_answer(const char *raw, normalized_answer *out) {
    memset(out, 0, sizeof *out);
    out->text = bq_squad_normalize(raw, raw ? strlen(raw) : 0);
    if (!out->text) return false;
    out->token_storage = bq_strndup(out->text, strlen(out->text));
    if (!out->token_storage || !tokenize(out->token_storage, &out->tokens)) return false;
    if (out->tokens.n > 1)
        qsort(out->tokens.tokens, out->tokens.n, sizeof(char *), compare_tokens);
    return true;
}

static void normalized_answer_free(normalized_answer *a) {
    free(a->text);
    free(a->token_storage);
    free(a->tokens.tokens);
}

int bq_squad_exact(const char *prediction, const char *gold) {
    if (!prediction || !gold) return 0;
    char *p = bq_squad_normalize(prediction, strlen(prediction));
    char *g = bq_squad_normalize(gold, strlen(gold));
    int same = p && g && strcmp(p, g) == 0;
    free(p);
    free(g);
    return same;
}

double bq_squad_f1(const char *prediction, const char *gold) {
    if (!prediction || !gold) return 0.0;
    normalized_answer p, g;
    bool ok_p = normalize_answer(prediction, &p);
    bool ok_g = normalize_answer(gold, &g);
    double f1 = ok_p && ok_g ? f1_sorted(&p.tokens, &g.tokens) : 0.0;
    normalized_answer_free(&p);
    normalized_answer_free(&g);
    return f1;
}

/* ---- whole-dataset evaluation --------------------------------------------------------------- */

typedef struct {
    const char *id;
    int index;
} id_entry;

static int compare_id_entries(const void *a, const void *b) {
    const id_entry *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return (x->index > y->index) - (x->index < y->index);
}

static int compare_id_key(const void *key, const void *entry) {
    return strcmp((const char *)key, ((const id_entry *)entry)->id);
}

bq_status bq_squad_evaluate(const bq_squad_dataset *ds, const bq_predictions *pred,
                            bq_squad_scores *out, bq_err *err) {
    if (!ds || !pred || !out)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_squad_evaluate: NULL argument");
    memset(out, 0, sizeof *out);
    if (ds->n_questions <= 0)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cannot evaluate: the dataset has no questions");

    /* Index predictions by id; like a Python dict built from JSON, a repeated id keeps its last
     * value. Sorted by (id, file position), then each run of equal ids is reduced to its last. */
    id_entry *index = malloc(((size_t)pred->n + 1) * sizeof *index);
    if (!index) return bq_fail(err, BQ_ERR_NOMEM, "out of memory indexing predictions");
    for (int i = 0; i < pred->n; i++) index[i] = (id_entry){pred->ids[i], i};
    qsort(index, (size_t)pred->n, sizeof *index, compare_id_entries);
    size_t n_unique = 0;
    for (int i = 0; i < pred->n; i++) {
        if (i + 1 < pred->n && strcmp(index[i].id, index[i + 1].id) == 0) continue;
        index[n_unique++] = index[i];
    }

    long exact_total = 0; /* the official script sums booleans into an int */
    double f1_total = 0.0;
    int answered = 0;
    bq_status st = BQ_OK;
    for (int q = 0; q < ds->n_questions && st == BQ_OK; q++) {
        const bq_squad_question *question = &ds->questions[q];
        const id_entry *hit = bsearch(question->id, index, n_unique, sizeof *index, compare_id_key);
        if (!hit) continue; /* unanswered: scores 0 but still counts */
        answered++;
        if (question->n_answers == 0) {
            if (question->impossible)
                st = bq_fail(err, BQ_ERR_UNSUPPORTED, "cannot score question '%s': it is unanswerable "
                             "(SQuAD 2.0's \"is_impossible\"), and this is SQuAD v1.1's evaluation, in which "
                             "every question has an answer", question->id);
            else
                st = bq_fail(err, BQ_ERR_FORMAT, "cannot score question '%s': the dataset has no gold "
                             "answers for it (prediction-only input?)", question->id);
            break;
        }
        if (!pred->answers[hit->index]) { /* the official script would fail on it (.lower()) */
            st = bq_fail(err, BQ_ERR_FORMAT, "cannot score question '%s': its prediction is not a string",
                         question->id);
            break;
        }
        normalized_answer p;
        if (!normalize_answer(pred->answers[hit->index], &p)) {
            normalized_answer_free(&p);
            st = bq_fail(err, BQ_ERR_INVALID_ARG, "cannot score question '%s': the prediction is "
                         "not valid UTF-8 (or out of memory)", question->id);
            break;
        }
        int best_exact = 0;
        double best_f1 = 0.0;
        for (int a = 0; a < question->n_answers; a++) {
            normalized_answer g;
            if (!normalize_answer(question->answers[a], &g)) {
                normalized_answer_free(&g);
                st = bq_fail(err, BQ_ERR_INVALID_ARG, "cannot score question '%s': gold answer %d "
                             "is not valid UTF-8 (or out of memory)", question->id, a);
                break;
            }
            if (strcmp(p.text, g.text) == 0) best_exact = 1;
            double f1 = f1_sorted(&p.tokens, &g.tokens);
            if (f1 > best_f1) best_f1 = f1;
            normalized_answer_free(&g);
        }
        normalized_answer_free(&p);
        exact_total += best_exact;
        f1_total += best_f1;
    }
    free(index);
    if (st != BQ_OK) return st;
    out->n_questions = ds->n_questions;
    out->n_answered = answered;
    out->exact_match = 100.0 * (double)exact_total / (double)ds->n_questions;
    out->f1 = 100.0 * f1_total / (double)ds->n_questions;
    return BQ_OK;
}
