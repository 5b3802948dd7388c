/* vocab.h - the WordPiece vocabulary (vocab.txt: one token per line, id = line number from 0). */
#ifndef BQ_VOCAB_H
#define BQ_VOCAB_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bq_vocab bq_vocab;

/* Special-token ids, looked up by name in the vocabulary (never constants in code). */
typedef struct {
    int32_t pad, unk, cls, sep, mask; /* [PAD] [UNK] [CLS] [SEP] [MASK]; -1 where absent */
} bq_special_ids;

/* Load vocab.txt. Fails with BQ_ERR_IO / BQ_ERR_FORMAT (empty file, invalid UTF-8, duplicate token,
 * missing [UNK]/[CLS]/[SEP]/[PAD]) with the path and line in the message. */
bq_status bq_vocab_load(const char *path, bq_vocab **out, bq_err *err);
/* The same from tokens in memory, one per line in id order (`tokens`: heap, taken over and freed
 * on every path); messages name `name` and the token id. */
bq_status bq_vocab_from_tokens(char *tokens, size_t len, const char *name, bq_vocab **out, bq_err *err);
void bq_vocab_free(bq_vocab *vocab); /* accepts NULL */

int32_t bq_vocab_size(const bq_vocab *vocab);
/* Id of the token spelled by bytes [tok, tok+len), or -1. */
int32_t bq_vocab_find(const bq_vocab *vocab, const char *tok, size_t len);
/* Text of token `id` (NUL-terminated), or NULL when out of range. */
const char *bq_vocab_token(const bq_vocab *vocab, int32_t id);
const bq_special_ids *bq_vocab_special(const bq_vocab *vocab);

/* Lookup by WordPiece key: `continuation` nonzero means the token "##" + key. Saves building the
 * prefixed string in the WordPiece inner loop. Returns the id or -1. */
int32_t bq_vocab_find_key(const bq_vocab *vocab, int continuation, const char *key, size_t key_len);
/* Longest key in bytes over the vocabulary ("##" not counted): no longer match can exist. */
size_t bq_vocab_max_key_len(const bq_vocab *vocab);

#ifdef __cplusplus
}
#endif
#endif
