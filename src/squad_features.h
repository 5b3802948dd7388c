/* squad_features.h - SQuAD features as the original BERT run_squad.py builds them:
 * [CLS] question [SEP] context-window [SEP], windows advancing by doc_stride, max-context flags. */
#ifndef BQ_SQUAD_FEATURES_H
#define BQ_SQUAD_FEATURES_H

#include "common.h"
#include "squad_options.h"
#include "tokenizer.h"
#include "vocab.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One window (one model input row). All arrays have max_seq_length entries. */
typedef struct {
    int32_t *input_ids;    /* [S] token ids, zero-padded */
    int32_t *input_mask;   /* [S] 1 on real tokens */
    int32_t *segment_ids;  /* [S] 0 through the first [SEP], 1 after (final [SEP] included) */
    int32_t *token_to_word;/* [S] context word index of each context token, -1 elsewhere */
    int32_t *span_start;   /* [S] byte span in the context of each context token, -1 elsewhere */
    int32_t *span_end;     /* [S] */
    uint8_t *max_context;  /* [S] 1 where this window is the token's max-context window */
    int n_tokens;          /* real tokens (rest is padding) */
    int doc_offset;        /* position of the first context token = question pieces + 2 */
    int doc_start;         /* index of the window's first piece among all context pieces */
    int doc_len;           /* context pieces in the window */
} bq_window;

/* Features of one (question, context) pair. Holds a copy of the context. */
typedef struct {
    char *context;         /* NUL-terminated copy of the original context */
    size_t context_len;
    int n_words;           /* context words (split on space, \t, \r, \n, U+202F) */
    uint32_t *word_start;  /* [n_words] byte span of each word in context */
    uint32_t *word_end;
    int n_question_pieces; /* after truncation to max_query_length */
    int n_windows;
    int max_seq_length;
    bq_window *windows;    /* [n_windows] */
} bq_features;

/* Build all windows. Fails with BQ_ERR_UTF8 on invalid text, BQ_ERR_INVALID_ARG when the options
 * leave no room for the context (max_seq_length - question - 3 < 1) or are out of range, and for a
 * context without tokens or with a NUL character (answers are NUL-terminated copies of it). */
bq_status bq_features_build(const bq_vocab *vocab, const bq_squad_options *opt,
                            const char *question, size_t question_len, const char *context,
                            size_t context_len, bq_features *out, bq_err *err);
void bq_features_free(bq_features *f); /* accepts a zeroed struct */

#ifdef __cplusplus
}
#endif
#endif
