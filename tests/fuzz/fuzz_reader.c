/* fuzz_reader.c - the public interface end to end (bertqa.h: bq_reader_answer on the CPU with a tiny
 * random model, 32-token windows): any requests, cut from the input as question NUL context NUL ...
 * (up to 4), are each answered or refused alone with a message; an answer is "empty" or exactly the
 * context's bytes at its byte span, with code-point offsets that count those bytes. Requests that are
 * valid UTF-8 are answered. The model is made once, by bertqa-make-model, in fuzz_temp_dir(). */
#include "bertqa.h"
#include "common.h" /* bq_utf8_valid: the rule the pipeline applies */
#include "fuzz_common.h"

static bq_reader *reader;
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *model_dir = fuzz_temp_dir();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' --out '%s' --preset tiny --seed 5 >/dev/null", BQ_MAKE_MODEL, model_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "fuzz: could not make the model: %s\n", cmd);
        abort();
    }
    bq_settings *s = bq_settings_create();
    bq_err err = {0};
    static const char *settings[][2] = {{"device", "cpu"}, {"max-seq-length", "32"}, {"max-query-length", "8"},
                                        {"doc-stride", "8"}, {"batch", "4"},          {"n-best", "5"},
                                        {"threads", "1"}};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (bq_settings_set(s, settings[i][0], settings[i][1], &err) != BQ_OK) {
            fprintf(stderr, "fuzz: %s\n", err.message);
            abort();
        }
    if (bq_reader_create(model_dir, s, &reader, &err) != BQ_OK) {
        fprintf(stderr, "fuzz: %s\n", err.message);
        abort();
    }
    bq_settings_free(s);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { MAX_REQUESTS = 4 };
    bq_request req[MAX_REQUESTS];
    size_t n = 0, pos = 0;
    while (n < MAX_REQUESTS && pos < size) {
        const uint8_t *q = data + pos, *qe = memchr(q, '\0', size - pos);
        if (!qe) break;
        const uint8_t *c = qe + 1, *ce = memchr(c, '\0', size - (size_t)(c - data));
        if (!ce) ce = data + size;
        req[n++] = (bq_request){(const char *)q, (size_t)(qe - q), (const char *)c, (size_t)(ce - c)};
        pos = (size_t)(ce - data) + 1;
    }
    if (n == 0) return 0;
    bq_result res[MAX_REQUESTS];
    bq_err err = {0};
    bq_status s = bq_reader_answer(reader, req, n, res, &err);
    FUZZ_ASSERT(s == BQ_OK, "bq_reader_answer: %s: %s", bq_status_string(s), err.message);
    for (size_t r = 0; r < n; r++) {
        const bq_result *x = &res[r];
        /* (a NUL in the context is refused: answers are NUL-terminated copies of it) */
        const int valid = bq_utf8_valid(req[r].question, req[r].question_len) &&
                          bq_utf8_valid(req[r].context, req[r].context_len) &&
                          !memchr(req[r].context, '\0', req[r].context_len);
        if (x->status != BQ_OK) {
            FUZZ_ASSERT(x->error && x->error[0], "request %zu: %s without a message", r, bq_status_string(x->status));
            /* valid text is refused only for an empty context or a question of separators only */
            if (valid) FUZZ_ASSERT(x->status == BQ_ERR_INVALID_ARG, "request %zu: %s: %s", r,
                                   bq_status_string(x->status), x->error);
            continue;
        }
        FUZZ_ASSERT(valid, "request %zu: text that is not UTF-8 was answered", r);
        FUZZ_ASSERT(x->n_answers >= 1 && x->n_answers <= 5 && x->n_windows >= 1, "request %zu: %d answers, %d windows",
                    r, x->n_answers, x->n_windows);
        for (int i = 0; i < x->n_answers; i++) {
            const bq_span *a = &x->answers[i];
            if (a->byte_start < 0) {
                FUZZ_ASSERT(strcmp(a->text, "empty") == 0 && a->char_start == -1, "request %zu answer %d", r, i);
                continue;
            }
            const size_t bs = (size_t)a->byte_start, be = (size_t)a->byte_end;
            FUZZ_ASSERT(bs < be && be <= req[r].context_len && strlen(a->text) == be - bs &&
                            memcmp(a->text, req[r].context + bs, be - bs) == 0,
                        "request %zu answer %d: '%s' at bytes [%zu, %zu)", r, i, a->text, bs, be);
            FUZZ_ASSERT((size_t)a->char_start == fuzz_utf8_count(req[r].context, bs) &&
                            (size_t)a->char_end == fuzz_utf8_count(req[r].context, be),
                        "request %zu answer %d: code points [%d, %d)", r, i, a->char_start, a->char_end);
        }
    }
    bq_results_clear(res, n);
    return 0;
}
