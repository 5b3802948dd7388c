/* squad_data.c - SQuAD v1.1 dataset and predictions JSON (cJSON), with errors that name the JSON
 * path of the offending field. Behaviour follows Python's json module where the official
 * evaluate-v1.1.py depends on it: the file must be UTF-8, trailing data is an error, and when an
 * object repeats a key the last value wins. */
#include "squad_data.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static const char *json_type_name(const cJSON *item) {
    if (!item) return "missing";
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsArray(item)) return "an array";
    if (cJSON_IsObject(item)) return "an object";
    return "invalid";
}

/* Line and column (1-based) of byte `offset`, for parse error messages. */
static void line_col(const char *text, size_t offset, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* The whole text must be valid UTF-8 (Python's json.load decodes the file before parsing). */
static bq_status check_utf8(const char *text, size_t len, const char *name, bq_err *err) {
    size_t pos = 0;
    while (pos < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)text + pos,
                                              (utf8proc_ssize_t)(len - pos), &cp);
        if (n <= 0) {
            int line, col;
            line_col(text, pos, &line, &col);
            return bq_fail(err, BQ_ERR_UTF8, "%s: invalid UTF-8 at byte %zu (line %d, column %d)",
                           name, pos, line, col);
        }
        pos += (size_t)n;
    }
    return BQ_OK;
}

/* Does the text stop inside a string or an open array/object (with the brackets seen so far
 * properly matched)? cJSON reports both a truncated file and an error in the last byte at the
 * last byte, so this tells them apart for the message. */
static bool looks_truncated(const char *text, size_t len) {
    char open[1100]; /* cJSON refuses nesting deeper than 1000 anyway */
    size_t depth = 0;
    bool in_string = false, any_value = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
        any_value = true;
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (depth == sizeof open) return false;
            open[depth++] = c;
        } else if (c == '}' || c == ']') {
            if (depth == 0 || open[depth - 1] != (c == '}' ? '{' : '[')) return false;
            depth--;
        }
    }
    return !any_value || in_string || depth > 0;
}

/* Parse `len` bytes as exactly one JSON value (whitespace around it allowed). */
static bq_status parse_json(const char *text, size_t len, const char *name, cJSON **out,
                            bq_err *err) {
    *out = NULL;
    bq_status st = check_utf8(text, len, name, err);
    if (st != BQ_OK) return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t offset = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
        int line, col;
        line_col(text, offset, &line, &col);
        if (looks_truncated(text, len))
            return bq_fail(err, BQ_ERR_FORMAT, "%s: malformed JSON: unexpected end of input "
                           "(truncated file?) at line %d, column %d", name, line, col);
        return bq_fail(err, BQ_ERR_FORMAT, "%s: malformed JSON at line %d, column %d", name, line,
                       col);
    }
    size_t offset = (size_t)(end - text);
    while (offset < len && (text[offset] == ' ' || text[offset] == '\t' || text[offset] == '\n' ||
                            text[offset] == '\r'))
        offset++;
    if (offset < len) {
        int line, col;
        line_col(text, offset, &line, &col);
        cJSON_Delete(root);
        return bq_fail(err, BQ_ERR_FORMAT,
                       "%s: extra data after the JSON value at line %d, column %d", name, line,
                       col);
    }
    /* checked on parsed text only, where the quotes pair up as the scan assumes */
    const char *fault = NULL;
    offset = bq_json_string_fault(text, len, &fault);
    if (offset != (size_t)-1) {
        int line, col;
        line_col(text, offset, &line, &col);
        cJSON_Delete(root);
        return bq_fail(err, BQ_ERR_FORMAT, "%s: %s, at line %d, column %d", name, fault, line, col);
    }
    *out = root;
    return BQ_OK;
}

static bool push_string(char ***arr, size_t *cap, int *count, const char *s) { /* s NULL: a NULL */
    if (!bq_grow((void **)arr, cap, (size_t)*count + 1, sizeof(char *))) return false;
    char *copy = s ? bq_strndup(s, strlen(s)) : NULL;
    if (s && !copy) return false;
    (*arr)[(*count)++] = copy;
    return true;
}

/* ---- dataset -------------------------------------------------------------------------------- */

void bq_squad_free(bq_squad_dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n_contexts; i++) free(ds->contexts[i]);
    free(ds->contexts);
    for (int i = 0; i < ds->n_questions; i++) {
        bq_squad_question *q = &ds->questions[i];
        free(q->id);
        free(q->question);
        for (int a = 0; a < q->n_answers; a++) free(q->answers[a]);
        free(q->answers);
        free(q->problem);
    }
    free(ds->questions);
    for (int i = 0; i < ds->n_damaged; i++) free(ds->damaged[i]);
    free(ds->damaged);
    free(ds);
}

typedef struct {
    bq_squad_dataset *ds;
    size_t contexts_cap, questions_cap, damaged_cap;
    const char *name;
    bq_squad_mode mode;
    bq_err *err;
} dataset_builder;

static bq_status oom(dataset_builder *b) {
    return bq_fail(b->err, BQ_ERR_NOMEM, "%s: out of memory while reading the dataset", b->name);
}

/* A new question of the current paragraph, zeroed but for its id and paragraph; NULL when out of
 * memory (then the caller frees nothing: the dataset owns what was made). */
static bq_squad_question *new_question(dataset_builder *b, const char *id) {
    bq_squad_dataset *ds = b->ds;
    if (ds->n_questions == INT32_MAX ||
        !bq_grow((void **)&ds->questions, &b->questions_cap, (size_t)ds->n_questions + 1,
                 sizeof *ds->questions))
        return NULL;
    bq_squad_question *q = &ds->questions[ds->n_questions++];
    memset(q, 0, sizeof *q);
    q->paragraph = ds->n_contexts - 1;
    q->id = bq_strndup(id, strlen(id));
    return q->id ? q : NULL;
}

/* A record that breaks SQuAD's format, its fault given printf-style with the file's name first.
 * BQ_SQUAD_STRICT: the read fails with it (BQ_ERR_FORMAT). BQ_SQUAD_KEEP_GOING: it is kept, as the
 * problem of a question where the record has a string id (then `id`), else in `damaged`, and the
 * read goes on (BQ_OK; BQ_ERR_NOMEM when out of memory). */
static bq_status __attribute__((format(printf, 3, 4)))
damaged(dataset_builder *b, const char *id, const char *fmt, ...) {
    char fault[sizeof b->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fault, sizeof fault, fmt, ap);
    va_end(ap);
    if (b->mode == BQ_SQUAD_STRICT) return bq_fail(b->err, BQ_ERR_FORMAT, "%s", fault);
    if (!id) {
        bq_squad_dataset *ds = b->ds;
        if (ds->n_damaged == INT32_MAX || !push_string(&ds->damaged, &b->damaged_cap, &ds->n_damaged, fault))
            return oom(b);
        return BQ_OK;
    }
    bq_squad_question *q = new_question(b, id);
    if (!q || !(q->problem = bq_strndup(fault, strlen(fault)))) return oom(b);
    return BQ_OK;
}

/* One record of a paragraph's 'qas'. context_fault: NULL, or (BQ_SQUAD_KEEP_GOING) the fault of
 * the paragraph's context, which then becomes the problem of a record with a string id. */
static bq_status add_question(dataset_builder *b, const cJSON *qa, int article, int para, int k,
                              const char *context_fault) {
    const char *name = b->name;
    if (!cJSON_IsObject(qa))
        return damaged(b, NULL, "%s: data[%d].paragraphs[%d].qas[%d] is %s, expected an object", name,
                       article, para, k, json_type_name(qa));
    const cJSON *id = bq_json_member(qa, "id");
    if (!cJSON_IsString(id))
        return damaged(b, NULL, "%s: data[%d].paragraphs[%d].qas[%d]: 'id' is %s, expected a string",
                       name, article, para, k, json_type_name(id));
    if (context_fault) return damaged(b, id->valuestring, "%s", context_fault);
    const cJSON *question = bq_json_member(qa, "question");
    if (!cJSON_IsString(question))
        return damaged(b, id->valuestring, "%s: data[%d].paragraphs[%d].qas[%d] (id '%s'): "
                       "'question' is %s, expected a string", name, article, para, k,
                       id->valuestring, json_type_name(question));
    const cJSON *answers = bq_json_member(qa, "answers");
    /* No "answers" at all: a prediction-only input, the question simply has no gold answers. */
    if (answers && !cJSON_IsArray(answers))
        return damaged(b, id->valuestring, "%s: data[%d].paragraphs[%d].qas[%d] (id '%s'): "
                       "'answers' is %s, expected an array", name, article, para, k,
                       id->valuestring, json_type_name(answers));
    int m = 0;
    for (const cJSON *ans = answers ? answers->child : NULL; ans; ans = ans->next, m++) {
        const cJSON *text = cJSON_IsObject(ans) ? bq_json_member(ans, "text") : NULL;
        if (!cJSON_IsObject(ans))
            return damaged(b, id->valuestring, "%s: data[%d].paragraphs[%d].qas[%d].answers[%d] "
                           "is %s, expected an object", name, article, para, k, m,
                           json_type_name(ans));
        if (!cJSON_IsString(text))
            return damaged(b, id->valuestring,
                           "%s: data[%d].paragraphs[%d].qas[%d].answers[%d]: 'text' is %s, "
                           "expected a string", name, article, para, k, m,
                           json_type_name(text));
    }

    bq_squad_question *q = new_question(b, id->valuestring);
    if (!q) return oom(b);
    q->question = bq_strndup(question->valuestring, strlen(question->valuestring));
    if (!q->question) return oom(b);
    q->impossible = cJSON_IsTrue(bq_json_member(qa, "is_impossible"));
    size_t answers_cap = 0;
    for (const cJSON *ans = answers ? answers->child : NULL; ans; ans = ans->next)
        if (!push_string(&q->answers, &answers_cap, &q->n_answers,
                         bq_json_member(ans, "text")->valuestring))
            return oom(b);
    return BQ_OK;
}

static bq_status add_paragraph(dataset_builder *b, const cJSON *paragraph, int article, int para) {
    const char *name = b->name;
    if (!cJSON_IsObject(paragraph))
        return damaged(b, NULL, "%s: data[%d].paragraphs[%d] is %s, expected an object", name, article,
                       para, json_type_name(paragraph));
    const cJSON *context = bq_json_member(paragraph, "context");
    char context_fault[sizeof b->err->message] = "";
    if (!cJSON_IsString(context)) {
        snprintf(context_fault, sizeof context_fault, "%s: data[%d].paragraphs[%d]: 'context' is %s, "
                 "expected a string", name, article, para, json_type_name(context));
        if (b->mode == BQ_SQUAD_STRICT) return damaged(b, NULL, "%s", context_fault);
    }
    const cJSON *qas = bq_json_member(paragraph, "qas");
    if (!cJSON_IsArray(qas)) {
        if (context_fault[0]) return damaged(b, NULL, "%s", context_fault);
        return damaged(b, NULL, "%s: data[%d].paragraphs[%d]: 'qas' is %s, expected an array", name,
                       article, para, json_type_name(qas));
    }
    bq_squad_dataset *ds = b->ds;
    if (ds->n_contexts == INT32_MAX ||
        !push_string(&ds->contexts, &b->contexts_cap, &ds->n_contexts,
                     context_fault[0] ? "" : context->valuestring))
        return oom(b);
    const int questions_before = ds->n_questions;
    int k = 0;
    for (const cJSON *qa = qas->child; qa; qa = qa->next, k++) {
        bq_status st = add_question(b, qa, article, para, k, context_fault[0] ? context_fault : NULL);
        if (st != BQ_OK) return st;
    }
    /* a bad context that no question's problem reports is reported alone, and its empty
     * stand-in, which no question needs, goes */
    if (context_fault[0] && ds->n_questions == questions_before) {
        free(ds->contexts[--ds->n_contexts]);
        return damaged(b, NULL, "%s", context_fault);
    }
    return BQ_OK;
}

bq_status bq_squad_parse(const char *json, size_t len, const char *name, bq_squad_mode mode,
                         bq_squad_dataset **out, bq_err *err) {
    if (out) *out = NULL;
    if (!json || !out) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_squad_parse: NULL argument");
    if (!name) name = "<dataset>";
    cJSON *root = NULL;
    bq_status st = parse_json(json, len, name, &root, err);
    if (st != BQ_OK) return st;

    dataset_builder b = {.ds = calloc(1, sizeof(bq_squad_dataset)), .name = name, .mode = mode,
                         .err = err};
    if (!b.ds) {
        cJSON_Delete(root);
        return oom(&b);
    }
    const cJSON *data = cJSON_IsObject(root) ? bq_json_member(root, "data") : NULL;
    if (!cJSON_IsObject(root)) {
        st = bq_fail(err, BQ_ERR_FORMAT, "%s: the top-level JSON value is %s, expected an object "
                     "with a 'data' array", name, json_type_name(root));
    } else if (!cJSON_IsArray(data)) {
        st = bq_fail(err, BQ_ERR_FORMAT, "%s: 'data' is %s, expected an array", name,
                     json_type_name(data));
    } else {
        int article = 0;
        for (const cJSON *art = data->child; art && st == BQ_OK; art = art->next, article++) {
            const cJSON *paragraphs = cJSON_IsObject(art) ? bq_json_member(art, "paragraphs") : NULL;
            if (!cJSON_IsObject(art)) {
                st = damaged(&b, NULL, "%s: data[%d] is %s, expected an object", name, article,
                             json_type_name(art));
            } else if (!cJSON_IsArray(paragraphs)) {
                st = damaged(&b, NULL, "%s: data[%d]: 'paragraphs' is %s, expected an array", name,
                             article, json_type_name(paragraphs));
            } else {
                int para = 0;
                for (const cJSON *p = paragraphs->child; p && st == BQ_OK; p = p->next, para++)
                    st = add_paragraph(&b, p, article, para);
            }
        }
    }
    cJSON_Delete(root);
    if (st != BQ_OK) {
        bq_squad_free(b.ds);
        return st;
    }
    *out = b.ds;
    return BQ_OK;
}

bq_status bq_squad_load(const char *path, bq_squad_mode mode, bq_squad_dataset **out, bq_err *err) {
    if (out) *out = NULL;
    if (!path || !out) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_squad_load: NULL argument");
    char *text = NULL;
    size_t len = 0;
    bq_status st = bq_read_file_max(path, BQ_MAX_INPUT_BYTES, &text, &len, err);
    if (st != BQ_OK) return st;
    st = bq_squad_parse(text, len, path, mode, out, err);
    free(text);
    return st;
}

/* ---- predictions ---------------------------------------------------------------------------- */

void bq_predictions_free(bq_predictions *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        free(p->ids[i]);
        free(p->answers[i]);
    }
    free(p->ids);
    free(p->answers);
    free(p);
}

bq_status bq_predictions_load(const char *path, bq_predictions **out, bq_err *err) {
    if (out) *out = NULL;
    if (!path || !out)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_predictions_load: NULL argument");
    char *text = NULL;
    size_t len = 0;
    bq_status st = bq_read_file_max(path, BQ_MAX_INPUT_BYTES, &text, &len, err);
    if (st != BQ_OK) return st;
    cJSON *root = NULL;
    st = parse_json(text, len, path, &root, err);
    free(text);
    if (st != BQ_OK) return st;
    if (!cJSON_IsObject(root)) {
        st = bq_fail(err, BQ_ERR_FORMAT,
                     "%s: predictions must be a JSON object mapping question id to answer text, "
                     "found %s", path, json_type_name(root));
        cJSON_Delete(root);
        return st;
    }
    bq_predictions *p = calloc(1, sizeof *p);
    size_t ids_cap = 0, answers_cap = 0;
    int n_answers = 0;
    if (!p) st = bq_fail(err, BQ_ERR_NOMEM, "%s: out of memory", path);
    /* Entries are kept in file order, repeats included; evaluation lets the last one win. A value
     * that is not a string is kept as a NULL answer: the official script reads only a dataset
     * id's last value, so only such a one is refused (by bq_squad_evaluate). */
    for (const cJSON *item = root->child; item && st == BQ_OK; item = item->next) {
        if (p->n == INT32_MAX || !push_string(&p->ids, &ids_cap, &p->n, item->string)) {
            st = bq_fail(err, BQ_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        if (!push_string(&p->answers, &answers_cap, &n_answers, cJSON_IsString(item) ? item->valuestring : NULL)) {
            /* keep ids and answers paired so that bq_predictions_free stays correct */
            free(p->ids[--p->n]);
            st = bq_fail(err, BQ_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    cJSON_Delete(root);
    if (st != BQ_OK) {
        bq_predictions_free(p);
        return st;
    }
    *out = p;
    return BQ_OK;
}
