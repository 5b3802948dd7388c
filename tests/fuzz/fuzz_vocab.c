/* fuzz_vocab.c - a vocabulary from any bytes (bq_vocab_from_tokens, as vocab.txt is read): a failure
 * with a message, or a vocabulary in which every id's token is found again under that id and the
 * special ids point at their tokens. */
#include "fuzz_common.h"

static void check_special(const bq_vocab *v, int32_t id, const char *token) {
    if (id < 0) return;
    const char *t = bq_vocab_token(v, id);
    FUZZ_ASSERT(t && strcmp(t, token) == 0, "special id %d is '%s', not %s", id, t ? t : "(none)", token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bq_vocab *v = NULL;
    bq_err err = {0};
    bq_status s = bq_vocab_from_tokens(fuzz_strndup(data, size), size, "vocab.txt", &v, &err);
    if (s != BQ_OK) {
        FUZZ_ASSERT(err.message[0] != '\0', "status %s without a message", bq_status_string(s));
        return 0;
    }
    const int32_t n = bq_vocab_size(v);
    FUZZ_ASSERT(n > 0, "an empty vocabulary was accepted");
    for (int32_t id = 0; id < n; id++) {
        const char *t = bq_vocab_token(v, id);
        FUZZ_ASSERT(t != NULL, "id %d has no token", id);
        FUZZ_ASSERT(bq_vocab_find(v, t, strlen(t)) == id, "token '%s' of id %d found as %d", t, id,
                    bq_vocab_find(v, t, strlen(t)));
    }
    FUZZ_ASSERT(bq_vocab_token(v, n) == NULL && bq_vocab_token(v, -1) == NULL, "ids out of range");
    const bq_special_ids *sp = bq_vocab_special(v);
    check_special(v, sp->pad, "[PAD]");
    check_special(v, sp->unk, "[UNK]");
    check_special(v, sp->cls, "[CLS]");
    check_special(v, sp->sep, "[SEP]");
    check_special(v, sp->mask, "[MASK]");
    bq_vocab_free(v);
    return 0;
}
