/* decode.h - answers from start/end logits, as the original run_squad.py write_predictions and
 * get_final_text do it: n-best candidates per window, ranking by start+end logit, softmax over the
 * kept n-best, answer text cut from the original context. */
#ifndef BQ_DECODE_H
#define BQ_DECODE_H

#include "common.h"
#include "squad_features.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *text;          /* NUL-terminated answer, exact substring of the context ("empty" if none) */
    double score;        /* start logit + end logit, summed in double (two floats near FLT_MAX overflow a float) */
    float probability;   /* softmax over the kept n-best scores */
    float start_logit, end_logit;
    int32_t byte_start;  /* byte span of the answer in the context, -1 for "empty" */
    int32_t byte_end;
    int32_t char_start;  /* same span in Unicode code points (as Python counts) */
    int32_t char_end;
} bq_answer;

typedef struct {
    bq_answer *items;    /* best first */
    int n;
} bq_answers;

/* Decode. start_logits/end_logits: [f->n_windows, f->max_seq_length] row-major. Keeps at most
 * opt->n_best answers with distinct texts. Always yields at least one answer ("empty" when no
 * span qualifies). */
bq_status bq_decode(const bq_vocab *vocab, const bq_features *f, const float *start_logits,
                    const float *end_logits, const bq_squad_options *opt, bq_answers *out,
                    bq_err *err);
void bq_answers_free(bq_answers *a); /* accepts a zeroed struct */

#ifdef __cplusplus
}
#endif
#endif
