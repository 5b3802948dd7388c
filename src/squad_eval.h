/* squad_eval.h - the official SQuAD v1.1 EM / F1 rules (see docs/ and EVAL_NOTES). */
#ifndef BQ_SQUAD_EVAL_H
#define BQ_SQUAD_EVAL_H

#include "common.h"
#include "squad_data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* normalize_answer: Python str.lower(), delete ASCII punctuation, articles a/an/the as whole words
 * (Unicode word boundaries) -> space, collapse Unicode whitespace. Returns a heap string (NULL on
 * allocation failure or invalid UTF-8). */
char *bq_squad_normalize(const char *text, size_t len);

/* Per-pair metrics on raw (unnormalized) strings. */
int bq_squad_exact(const char *prediction, const char *gold);
double bq_squad_f1(const char *prediction, const char *gold);

typedef struct {
    double exact_match; /* percent, 0..100 */
    double f1;          /* percent, 0..100 */
    int n_questions;
    int n_answered;     /* questions with a prediction */
} bq_squad_scores;

/* Score predictions against every question of the dataset (missing predictions count 0).
 * A repeated prediction id uses its last value (as Python's json does). Fails with
 * BQ_ERR_INVALID_ARG for a dataset without questions, and BQ_ERR_FORMAT (naming the id) when a
 * question that has a prediction has no gold answers, or whose prediction is not a string (the
 * official script fails there too). */
bq_status bq_squad_evaluate(const bq_squad_dataset *ds, const bq_predictions *pred,
                            bq_squad_scores *out, bq_err *err);

#ifdef __cplusplus
}
#endif
#endif
