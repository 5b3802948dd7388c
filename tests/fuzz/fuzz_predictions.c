/* fuzz_predictions.c - reading a predictions file (bq_predictions_load) from any bytes and scoring
 * it (bq_squad_evaluate) against a small fixed dataset: a failure has a message; scores stay in
 * [0, 100] with at most every question answered. */
#include "fuzz_common.h"
#include "squad_data.h"
#include "squad_eval.h"

static const char dataset_json[] =
    "{\"version\": \"1.1\", \"data\": [{\"title\": \"t\", \"paragraphs\": ["
    "{\"context\": \"The Normans gave their name to Normandy, a region in France.\", \"qas\": ["
    "{\"id\": \"a\", \"question\": \"Who gave their name to Normandy?\","
    " \"answers\": [{\"text\": \"The Normans\", \"answer_start\": 0}, {\"text\": \"Normans\", \"answer_start\": 4}]},"
    "{\"id\": \"b\", \"question\": \"Where is Normandy?\", \"answers\": [{\"text\": \"France\", \"answer_start\": 54}]},"
    "{\"id\": \"\\u00e9\", \"question\": \"?\", \"answers\": [{\"text\": \"r\\u00e9gion\", \"answer_start\": 0}]}]}]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bq_squad_dataset *ds;
    bq_err err = {0};
    if (!ds && bq_squad_parse(dataset_json, sizeof dataset_json - 1, "fixed", BQ_SQUAD_STRICT, &ds, &err) != BQ_OK) {
        fprintf(stderr, "fuzz: %s\n", err.message);
        abort();
    }
    const char *path = fuzz_file(data, size);
    bq_predictions *pred = NULL;
    bq_status s = bq_predictions_load(path, &pred, &err);
    if (s != BQ_OK) {
        FUZZ_ASSERT(err.message[0] != '\0', "status %s without a message", bq_status_string(s));
        return 0;
    }
    for (int i = 0; i < pred->n; i++) FUZZ_ASSERT(pred->ids[i], "prediction %d has no id", i);
    bq_squad_scores scores;
    s = bq_squad_evaluate(ds, pred, &scores, &err);
    if (s == BQ_OK) {
        FUZZ_ASSERT(scores.exact_match >= 0 && scores.exact_match <= 100 && scores.f1 >= scores.exact_match - 1e-9 &&
                        scores.f1 <= 100 + 1e-9,
                    "EM %.17g F1 %.17g", scores.exact_match, scores.f1);
        FUZZ_ASSERT(scores.n_questions == ds->n_questions && scores.n_answered <= ds->n_questions,
                    "%d questions, %d answered", scores.n_questions, scores.n_answered);
    } else {
        FUZZ_ASSERT(err.message[0] != '\0', "evaluation %s without a message", bq_status_string(s));
    }
    bq_predictions_free(pred);
    return 0;
}
