/* tokenizer_files.h - a checkpoint folder's Hugging Face tokenizer files (tokenizer.json, which
 * transformers 5 saves instead of vocab.txt, and tokenizer_config.json): the vocabulary where the
 * folder has no vocab.txt, and a check that the tokenizer they describe is the one src/tokenizer.c
 * implements (BertTokenizer, uncased: lower-case, accents stripped, CJK split, "##" WordPiece
 * with [UNK] and 100-character words), so that a cased or otherwise different checkpoint is
 * refused instead of answered through the wrong tokens. */
#ifndef BQ_TOKENIZER_FILES_H
#define BQ_TOKENIZER_FILES_H

#include "common.h"
#include "vocab.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read dir/tokenizer_config.json and dir/tokenizer.json, each where present.
 * *vocab NULL: when tokenizer.json is there, *vocab becomes its WordPiece vocabulary (token ->
 * id, ids 0..n-1) and *path_out (may be NULL) its path (heap); else *vocab stays NULL.
 * *vocab given (from vocab.txt): tokenizer.json's vocabulary, where present, must be the same.
 * Returns BQ_OK; BQ_ERR_UNSUPPORTED naming the file and the setting (do_lower_case false,
 * strip_accents false, another tokenizer class or model type, special tokens spelled otherwise);
 * BQ_ERR_FORMAT for a file that is not such JSON or a vocabulary that disagrees; BQ_ERR_IO;
 * BQ_ERR_NOMEM. */
bq_status bq_tokenizer_files_load(const char *dir, bq_vocab **vocab, char **path_out, bq_err *err);

#ifdef __cplusplus
}
#endif
#endif
