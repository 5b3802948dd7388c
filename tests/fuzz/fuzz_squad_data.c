/* fuzz_squad_data.c - reading a SQuAD file (bq_squad_parse) from any bytes, strictly and keeping
 * going past damaged records, then scoring what was read (bq_squad_evaluate) with each answerable
 * question's first gold answer as its prediction: a parse failure has a message; the two reads
 * agree (a clean file reads the same both ways; a file the strict read fails on a record of is
 * read past it, with the strict read's message among what was set aside; any other failure is
 * both reads'); a parsed dataset has its questions pointing at its contexts; the scoring never
 * crashes, and with distinct ids it gives EM = 100 x the answerable share. */
#include <math.h>

#include "fuzz_common.h"
#include "squad_data.h"
#include "squad_eval.h"

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bq_squad_dataset *strict = NULL, *ds = NULL;
    bq_err strict_err = {0}, err = {0};
    const bq_status strict_status =
        bq_squad_parse((const char *)data, size, "dev.json", BQ_SQUAD_STRICT, &strict, &strict_err);
    FUZZ_ASSERT(strict_status == BQ_OK || (strict_err.message[0] != '\0' && !strict), "status %s without a message",
                bq_status_string(strict_status));
    bq_status s = bq_squad_parse((const char *)data, size, "dev.json", BQ_SQUAD_KEEP_GOING, &ds, &err);
    if (s != BQ_OK) {
        FUZZ_ASSERT(err.message[0] != '\0' && !ds, "status %s without a message", bq_status_string(s));
        FUZZ_ASSERT(s == BQ_ERR_NOMEM || (s == strict_status && strcmp(err.message, strict_err.message) == 0 &&
                                          !strstr(err.message, "dev.json: data[")),
                    "kept going: %s '%s'; strictly: %s '%s'", bq_status_string(s), err.message,
                    bq_status_string(strict_status), strict_err.message);
        bq_squad_free(strict);
        return 0;
    }
    int faults = ds->n_damaged;
    bool strict_fault_seen = false;
    for (int d = 0; d < ds->n_damaged; d++) {
        FUZZ_ASSERT(strstr(ds->damaged[d], "dev.json: data[") == ds->damaged[d], "damaged %d: '%s'", d, ds->damaged[d]);
        strict_fault_seen |= strcmp(ds->damaged[d], strict_err.message) == 0;
    }
    for (int q = 0; q < ds->n_questions; q++) {
        const bq_squad_question *question = &ds->questions[q];
        if (!question->problem) continue;
        faults++;
        strict_fault_seen |= strcmp(question->problem, strict_err.message) == 0;
        FUZZ_ASSERT(!question->question && question->n_answers == 0, "question %d: damaged ('%s') but read", q,
                    question->problem);
    }
    if (strict_status == BQ_OK) {
        FUZZ_ASSERT(faults == 0 && ds->n_questions == strict->n_questions && ds->n_contexts == strict->n_contexts,
                    "a clean file: %d faults, %d/%d questions, %d/%d contexts", faults, ds->n_questions,
                    strict->n_questions, ds->n_contexts, strict->n_contexts);
        for (int q = 0; q < ds->n_questions; q++)
            FUZZ_ASSERT(strcmp(ds->questions[q].id, strict->questions[q].id) == 0 &&
                            strcmp(ds->questions[q].question, strict->questions[q].question) == 0 &&
                            ds->questions[q].n_answers == strict->questions[q].n_answers,
                        "question %d read differently", q);
    } else {
        FUZZ_ASSERT(strict_status == BQ_ERR_NOMEM || (strict_status == BQ_ERR_FORMAT && strict_fault_seen),
                    "strictly %s '%s', not among the %d faults set aside", bq_status_string(strict_status),
                    strict_err.message, faults);
    }
    bq_squad_free(strict);
    const int n = ds->n_questions;
    bq_predictions pred = {0};
    pred.ids = malloc(((size_t)n + 1) * sizeof *pred.ids);
    pred.answers = malloc(((size_t)n + 1) * sizeof *pred.answers);
    char **ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (!pred.ids || !pred.answers || !ids) abort();
    int answerable = 0;
    for (int q = 0; q < n; q++) {
        const bq_squad_question *question = &ds->questions[q];
        FUZZ_ASSERT(question->id && (question->question != NULL) == (question->problem == NULL), "question %d", q);
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
