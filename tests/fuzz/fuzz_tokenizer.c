/* fuzz_tokenizer.c - the BERT uncased tokenizer (bq_basic_tokenize, bq_tokenize, and
 * bq_basic_final_sigmas) on any bytes with the shipped vocabulary: BQ_ERR_UTF8 for text that is
 * not UTF-8, else pieces with ids in the vocabulary and byte spans inside the text, on character
 * boundaries, in order; a failure leaves the output as it was. */
#include "fuzz_common.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const bq_vocab *vocab = fuzz_vocab();
    const char *text = (const char *)data;
    bq_err err = {0};

    bq_words words = {0};
    bq_status ws = bq_basic_tokenize(text, size, &words, &err);
    FUZZ_ASSERT(ws == BQ_OK || ws == BQ_ERR_UTF8, "basic tokenizer: %s", bq_status_string(ws));
    if (ws != BQ_OK) FUZZ_ASSERT(words.n == 0, "a failure left %zu words", words.n);
    bq_words_free(&words);

    /* final sigmas: the same length, only capital sigmas (CE A3) changed, and only to CF 82; the
     * basic tokenizer reads the result as it read the text */
    char *sigmas = malloc(size ? size : 1);
    FUZZ_ASSERT(sigmas != NULL, "out of memory");
    if (size) memcpy(sigmas, text, size);
    bq_status fs = bq_basic_final_sigmas(sigmas, size, &err);
    FUZZ_ASSERT(fs == BQ_OK || fs == BQ_ERR_UTF8, "final sigmas: %s", bq_status_string(fs));
    if (fs != BQ_OK) FUZZ_ASSERT(ws == BQ_ERR_UTF8, "final sigmas refused text the basic tokenizer read");
    for (size_t i = 0; fs == BQ_OK && i < size; i++) {
        if (sigmas[i] == text[i]) continue;
        FUZZ_ASSERT(i + 1 < size && memcmp(text + i, "\xce\xa3", 2) == 0 && memcmp(sigmas + i, "\xcf\x82", 2) == 0,
                    "byte %zu changed, not a capital sigma made final", i);
        i++; /* the sigma's second byte */
    }
    free(sigmas);

    bq_pieces pieces = {0};
    bq_status s = bq_tokenize(vocab, text, size, &pieces, &err);
    FUZZ_ASSERT(s == ws, "tokenize says %s, basic tokenize %s", bq_status_string(s), bq_status_string(ws));
    if (s != BQ_OK) {
        FUZZ_ASSERT(pieces.n == 0 && err.message[0], "a failure left %zu pieces", pieces.n);
        bq_pieces_free(&pieces);
        return 0;
    }
    const int32_t n_vocab = bq_vocab_size(vocab);
    uint32_t last_start = 0;
    for (size_t i = 0; i < pieces.n; i++) {
        const bq_piece *p = &pieces.pieces[i];
        FUZZ_ASSERT(p->id >= 0 && p->id < n_vocab, "piece %zu: id %d", i, p->id);
        FUZZ_ASSERT(p->start < p->end && p->end <= size, "piece %zu: span [%u, %u) of %zu bytes", i,
                    p->start, p->end, size);
        FUZZ_ASSERT(fuzz_utf8_boundary(text, size, p->start) && fuzz_utf8_boundary(text, size, p->end),
                    "piece %zu: span [%u, %u) cuts a character", i, p->start, p->end);
        FUZZ_ASSERT(p->start >= last_start, "piece %zu starts at %u, before piece %zu's %u", i, p->start,
                    i - 1, last_start);
        last_start = p->start;
    }
    /* appending: a second call adds the same pieces again after the first ones */
    const size_t first = pieces.n;
    FUZZ_ASSERT(bq_tokenize(vocab, text, size, &pieces, &err) == BQ_OK, "second call: %s", err.message);
    FUZZ_ASSERT(pieces.n == 2 * first, "second call gave %zu pieces, first %zu", pieces.n - first, first);
    FUZZ_ASSERT(first == 0 || memcmp(pieces.pieces, pieces.pieces + first, first * sizeof *pieces.pieces) == 0,
                "second call's pieces differ");
    bq_pieces_free(&pieces);
    return 0;
}
