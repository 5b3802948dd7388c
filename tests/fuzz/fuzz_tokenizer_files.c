/* fuzz_tokenizer_files.c - a checkpoint's Hugging Face tokenizer files (bq_tokenizer_files_load):
 * the input is tokenizer_config.json, a NUL, then tokenizer.json (no NUL: tokenizer.json alone),
 * written into a folder of their own. A failure has a message; a vocabulary taken from
 * tokenizer.json finds every id's token again under that id. */
#include "fuzz_common.h"
#include "tokenizer_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir = fuzz_temp_dir();
    const uint8_t *cut = memchr(data, '\0', size);
    fuzz_remove_file("tokenizer_config.json");
    if (cut) fuzz_write_file("tokenizer_config.json", data, (size_t)(cut - data));
    const uint8_t *tok = cut ? cut + 1 : data;
    fuzz_write_file("tokenizer.json", tok, size - (size_t)(tok - data));

    bq_vocab *vocab = NULL;
    char *path = NULL;
    bq_err err = {0};
    bq_status s = bq_tokenizer_files_load(dir, &vocab, &path, &err);
    if (s != BQ_OK) {
        FUZZ_ASSERT(err.message[0] != '\0', "status %s without a message", bq_status_string(s));
        FUZZ_ASSERT(vocab == NULL, "a failure handed out a vocabulary");
        free(path);
        return 0;
    }
    FUZZ_ASSERT(vocab != NULL && path != NULL, "tokenizer.json is there, and no vocabulary came from it");
    for (int32_t id = 0; id < bq_vocab_size(vocab); id++) {
        const char *t = bq_vocab_token(vocab, id);
        FUZZ_ASSERT(t && bq_vocab_find(vocab, t, strlen(t)) == id, "id %d: token '%s'", id, t ? t : "(none)");
    }
    /* the same files checked against the vocabulary they gave agree with it */
    bq_status again = bq_tokenizer_files_load(dir, &vocab, NULL, &err);
    FUZZ_ASSERT(again == BQ_OK, "tokenizer.json disagrees with its own vocabulary: %s", err.message);
    bq_vocab_free(vocab);
    free(path);
    return 0;
}
