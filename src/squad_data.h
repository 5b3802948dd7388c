/* squad_data.h - reading SQuAD-format datasets and writing/reading the official predictions format
 * ({"id": "answer", ...}). All JSON goes through cJSON. */
#ifndef BQ_SQUAD_DATA_H
#define BQ_SQUAD_DATA_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *id;
    char *question;
    int paragraph;        /* index into bq_squad_dataset.contexts */
    int n_answers;
    char **answers;       /* gold answer texts (may be 0 of them) */
    bool impossible;      /* SQuAD 2.0's "is_impossible": true (no answer in the context) */
} bq_squad_question;

typedef struct {
    char **contexts;      /* [n_contexts] paragraph texts */
    int n_contexts;
    bq_squad_question *questions; /* [n_questions], file order */
    int n_questions;
} bq_squad_dataset;

/* Parse a SQuAD v1.1-format file. BQ_ERR_FORMAT names the path and what is missing/wrong
 * (e.g. "data[3].paragraphs[0].qas[2]: 'id' is not a string"). */
bq_status bq_squad_load(const char *path, bq_squad_dataset **out, bq_err *err);
bq_status bq_squad_parse(const char *json, size_t len, const char *name, bq_squad_dataset **out,
                         bq_err *err);
void bq_squad_free(bq_squad_dataset *ds); /* accepts NULL */

/* Predictions: id -> answer text. */
typedef struct {
    char **ids;
    char **answers;
    int n;
} bq_predictions;

/* Read a predictions JSON object. Values that are not strings are a BQ_ERR_FORMAT naming the id. */
bq_status bq_predictions_load(const char *path, bq_predictions **out, bq_err *err);
void bq_predictions_free(bq_predictions *p); /* accepts NULL */

#ifdef __cplusplus
}
#endif
#endif
