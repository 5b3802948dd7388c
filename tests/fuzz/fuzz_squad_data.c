/* fuzz_squad_data.c - reading a SQuAD file (bq_squad_parse) from any bytes, then scoring it
 * (bq_squad_evaluate) with each answerable question's first gold answer as its prediction: a parse
 * failure has a message; a parsed dataset has its questions pointing at its contexts; the scoring
 * never crashes, and with distinct ids it gives EM = 100 x the answerable share. */
#include <math.h>

#include "fuzz_common.h"
#include "squad_data.h"
#include "squad_eval.h"

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bq_squad_dataset *ds = NULL;
    bq_err err = {0};
    bq_status s = bq_squad_parse((const char *)data, size, "dev.json", &ds, &err);
    if (s != BQ_OK) {
        FUZZ_ASSERT(err.message[0] != '\0', "status %s without a message", bq_status_string(s));
        return 0;
    }
    const int n = ds->n_questions;
    bq_predictions pred = {0};
    pred.ids = malloc(((size_t)n + 1) * sizeof *pred.ids);
    pred.answers = malloc(((size_t)n + 1) * sizeof *pred.answers);
    char **ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (!pred.ids || !pred.answers || !ids) abort();
    int answerable = 0;
    for (int q = 0; q < n; q++) {
        const bq_squad_question *question = &ds->questions[q];
        FUZZ_ASSERT(question->id && question->question, "question %d", q);
        FUZZ_ASSERT(question->paragraph >= 0 && question->paragraph < ds->n_contexts, "question %d: paragraph %d of %d",
                    q, question->paragraph, ds->n_contexts);
        FUZZ_ASSERT(ds->contexts[question->paragraph] != NULL, "question %d: no context", q);
        for (int a = 0; a < question->n_answers; a++) FUZZ_ASSERT(question->answers[a], "question %d answer %d", q, a);
        ids[q] = question->id;
        if (question->n_answers > 0) {
            pred.ids[pred.n] = question->id;
            pred.answers[pred.n++] = question->answers[0];
            answerable++;
        }
    }
    qsort(ids, (size_t)n, sizeof *ids, by_string);
    int distinct = 1;
    for (int q = 0; q + 1 < n; q++) distinct &= strcmp(ids[q], ids[q + 1]) != 0;

    bq_squad_scores scores;
    s = bq_squad_evaluate(ds, &pred, &scores, &err);
    if (s == BQ_OK) {
        FUZZ_ASSERT(scores.exact_match >= 0 && scores.exact_match <= 100 && scores.f1 >= 0 && scores.f1 <= 100,
                    "EM %g F1 %g", scores.exact_match, scores.f1);
        FUZZ_ASSERT(scores.n_questions == n && scores.n_answered <= n, "%d questions, %d answered of %d",
                    scores.n_questions, scores.n_answered, n);
        if (distinct)
            FUZZ_ASSERT(fabs(scores.exact_match - 100.0 * answerable / n) < 1e-9,
                        "EM %.17g with %d of %d questions given their own gold answer", scores.exact_match,
                        answerable, n);
    } else {
        FUZZ_ASSERT(err.message[0] != '\0', "evaluation %s without a message", bq_status_string(s));
        /* a question without gold answers only fails when another question of its id has a
         * prediction, or the dataset is empty; gold text that is not UTF-8 fails too */
        FUZZ_ASSERT(!distinct || n == 0 || s == BQ_ERR_INVALID_ARG, "evaluation failed (%s) with distinct ids: %s",
                    bq_status_string(s), err.message);
    }
    free(ids);
    free(pred.ids);
    free(pred.answers);
    bq_squad_free(ds);
    return 0;
}
