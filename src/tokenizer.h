/* tokenizer.h - uncased BERT tokenizer, exactly as Hugging Face BertTokenizer(do_lower_case=True):
 * basic tokenization (clean, CJK split, whitespace split, lower-case, NFD + strip Mn, punctuation
 * split) followed by WordPiece. Every output keeps the byte span of the original text it came from. */
#ifndef BQ_TOKENIZER_H
#define BQ_TOKENIZER_H

#include "common.h"
#include "vocab.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One basic-tokenizer word: its normalized UTF-8 text lives at buf[off .. off+len) of the owning
 * bq_words; [start, end) is the byte span of the original text it came from. */
typedef struct {
    size_t off, len;
    uint32_t start, end;
} bq_word;

typedef struct {
    char *buf;        /* normalized text of all words, back to back (not NUL-separated) */
    size_t buf_len, buf_cap;
    bq_word *words;
    size_t n, cap;
} bq_words;

/* One WordPiece token: vocabulary id and byte span [start, end) of the original text. A piece from
 * the middle of a word spans the original characters its normalized characters came from. */
typedef struct {
    int32_t id;
    uint32_t start, end;
} bq_piece;

typedef struct {
    bq_piece *pieces;
    size_t n, cap;
} bq_pieces;

/* Basic tokenization of `text` (len bytes, need not be NUL-terminated). Appends to `out` (left as
 * it was on error).
 * Invalid UTF-8 -> BQ_ERR_UTF8 with the byte offset in the message; nothing is read past len. */
bq_status bq_basic_tokenize(const char *text, size_t len, bq_words *out, bq_err *err);
/* HF BasicTokenizer lower-cases each whitespace token whole (str.lower()), so a capital sigma at
 * a word's end becomes final sigma there; bq_basic_tokenize lower-cases character by character,
 * as BertTokenizer.tokenize does. Rewrites text (len bytes of UTF-8) in place: each U+03A3 that
 * BasicTokenizer would lower to U+03C2 becomes U+03C2 (also two bytes), the tokens formed as it
 * forms them (dropped characters removed, whitespace and CJK characters between). Returns BQ_OK
 * (text without a capital sigma is not read further), BQ_ERR_UTF8 or BQ_ERR_NOMEM. */
bq_status bq_basic_final_sigmas(char *text, size_t len, bq_err *err);
void bq_words_clear(bq_words *w); /* keeps buffers for reuse */
void bq_words_free(bq_words *w);

/* Full tokenization (basic + WordPiece). Appends to `out`. Spans are offsets into `text`.
 * Like HF BertTokenizer.tokenize / __call__, the exact strings [CLS] [SEP] [PAD] [MASK] [UNK] in the
 * text (case-sensitive, anywhere, even inside a word) become their special ids, spanning their own
 * bytes; "[sep]" is ordinary text. (bq_basic_tokenize, like HF BasicTokenizer, never does this.)
 * A dropped accent (category Mn) stays inside the span of the letter it follows. On error `out` is
 * left as it was. */
bq_status bq_tokenize(const bq_vocab *vocab, const char *text, size_t len, bq_pieces *out,
                      bq_err *err);
/* WordPiece of one already-normalized word (as produced by bq_basic_tokenize), appending pieces
 * whose spans are all set to [start, end). Words over 100 code points become one [UNK]. */
bq_status bq_wordpiece(const bq_vocab *vocab, const char *word, size_t len, uint32_t start,
                       uint32_t end, bq_pieces *out, bq_err *err);
void bq_pieces_clear(bq_pieces *p);
void bq_pieces_free(bq_pieces *p);

#ifdef __cplusplus
}
#endif
#endif
