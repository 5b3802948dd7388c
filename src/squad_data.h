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
    char *question;       /* NULL where problem is set */
    int paragraph;        /* index into bq_squad_dataset.contexts */
    int n_answers;
    char **answers;       /* gold answer texts (may be 0 of them; 0 where problem is set) */
    bool impossible;      /* SQuAD 2.0's "is_impossible": true (no answer in the context) */
    char *problem;        /* NULL, or (BQ_SQUAD_KEEP_GOING) why this question cannot be answered:
                           * its record's fault with its JSON path, the message BQ_SQUAD_STRICT
                           * fails with ("data[0].paragraphs[2].qas[1] (id 'a'): 'question' is
                           * missing, expected a string") */
} bq_squad_question;

typedef struct {
    char **contexts;      /* [n_contexts] paragraph texts ("" for a paragraph without one) */
    int n_contexts;
    bq_squad_question *questions; /* [n_questions], file order */
    int n_questions;
    char **damaged;       /* [n_damaged] (BQ_SQUAD_KEEP_GOING) faults of records that hold no
                           * question id to report them under (an article, a paragraph, a
                           * question record without a string id), with their JSON paths, file
                           * order */
    int n_damaged;
} bq_squad_dataset;

/* What a record that breaks SQuAD's format does to the read. */
typedef enum {
    BQ_SQUAD_STRICT,      /* the whole file fails with the first one's fault (gold data for
                           * evaluation must be whole) */
    BQ_SQUAD_KEEP_GOING,  /* it is set aside and the rest read: a question record with a string id
                           * stays a question with its `problem`, anything else goes to `damaged`
                           * (answering a file: every readable question still gets its answer) */
} bq_squad_mode;

/* Parse a SQuAD v1.1-format file. A file that is not one JSON object with a 'data' array (or not
 * UTF-8) is BQ_ERR_FORMAT (BQ_ERR_UTF8) in either mode; so, under BQ_SQUAD_STRICT, is the first
 * record that breaks the format. The message names the path and what is missing or wrong (e.g.
 * "data[3].paragraphs[0].qas[2]: 'id' is a number, expected a string"). BQ_ERR_NOMEM when out of
 * memory. */
bq_status bq_squad_load(const char *path, bq_squad_mode mode, bq_squad_dataset **out, bq_err *err);
bq_status bq_squad_parse(const char *json, size_t len, const char *name, bq_squad_mode mode,
                         bq_squad_dataset **out, bq_err *err);
void bq_squad_free(bq_squad_dataset *ds); /* accepts NULL */

/* Predictions: id -> answer text. */
typedef struct {
    char **ids;
    char **answers; /* NULL where the file's value is not a string */
    int n;
} bq_predictions;

/* Read a predictions JSON object, its entries in file order (repeats included). A value that is
 * not a string is kept as a NULL answer: bq_squad_evaluate refuses it only where it would score
 * it (the last value of a dataset id), since the official script reads nothing else. */
bq_status bq_predictions_load(const char *path, bq_predictions **out, bq_err *err);
void bq_predictions_free(bq_predictions *p); /* accepts NULL */

#ifdef __cplusplus
}
#endif
#endif
