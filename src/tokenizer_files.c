/* tokenizer_files.c - tokenizer.json / tokenizer_config.json of a checkpoint folder: the settings
 * src/tokenizer.c implements are the only ones accepted, and tokenizer.json's WordPiece vocabulary
 * stands in for a missing vocab.txt. */
#include "tokenizer_files.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A setting that differs from ours: name it, with its value as the file spells it. */
static bq_status unsupported(bq_err *err, const char *path, const char *key, const cJSON *value,
                             const char *ours) {
    char *text = value ? cJSON_PrintUnformatted(value) : NULL;
    bq_status st = bq_fail(err, BQ_ERR_UNSUPPORTED, "'%s': %s %.60s is not supported: %s", path, key,
                           text ? text : "(absent)", ours);
    free(text);
    return st;
}

/* The special token as a string or as an AddedToken object {"content": ...}; NULL otherwise. */
static const char *token_text(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *content = bq_json_member(v, "content");
    return cJSON_IsObject(v) && cJSON_IsString(content) ? content->valuestring : NULL;
}

static const struct {
    const char *key, *token;
} special_tokens[] = {{"cls_token", "[CLS]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"},
                      {"unk_token", "[UNK]"}, {"mask_token", "[MASK]"}};

/* Whether text is one of the five special tokens src/tokenizer.c finds in raw text. */
static bool builtin_special(const char *text) {
    for (size_t i = 0; i < sizeof special_tokens / sizeof special_tokens[0]; i++)
        if (text && strcmp(text, special_tokens[i].token) == 0) return true;
    return false;
}

/* Transformers finds every added token in the raw text and keeps it whole; src/tokenizer.c does
 * so for the five specials only, so a checkpoint that adds any other would be tokenized otherwise
 * ("[unused0]" is one token there, five pieces here): refused, naming it. */
static bq_status other_added_token(bq_err *err, const char *path, const char *where, const char *text) {
    return bq_fail(err, BQ_ERR_UNSUPPORTED, "'%s': %s adds the token \"%.40s\": added tokens other than "
                   "[CLS] [SEP] [PAD] [UNK] [MASK] are not supported (this runtime's tokenizer would split "
                   "it where transformers keeps it whole)", path, where, text ? text : "?");
}

/* tokenizer_config.json: what transformers' BertTokenizer is built with. */
static bq_status check_tokenizer_config(const char *path, const cJSON *root, bq_err *err) {
    const cJSON *v;
    /* transformers 4.x's list, 5.x's list or {name: token}: any token in them is an added one */
    static const char *const added_lists[] = {"additional_special_tokens", "extra_special_tokens"};
    for (size_t i = 0; i < sizeof added_lists / sizeof added_lists[0]; i++) {
        v = bq_json_member(root, added_lists[i]);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
            return unsupported(err, path, added_lists[i], v, "a list of added tokens is expected");
        for (const cJSON *t = v->child; t; t = t->next)
            if (!builtin_special(token_text(t))) return other_added_token(err, path, added_lists[i], token_text(t));
    }
    /* transformers 4.x: {"id": {"content": ...}} of every added token, the five specials among them */
    if ((v = bq_json_member(root, "added_tokens_decoder")) && cJSON_IsObject(v))
        for (const cJSON *t = v->child; t; t = t->next)
            if (!builtin_special(token_text(t))) return other_added_token(err, path, "added_tokens_decoder", token_text(t));
    if ((v = bq_json_member(root, "do_lower_case")) && !cJSON_IsTrue(v))
        return unsupported(err, path, "do_lower_case", v, "this runtime's tokenizer is BERT uncased (it lower-cases)");
    /* null: strip accents when lower-casing, as true does */
    if ((v = bq_json_member(root, "strip_accents")) && !cJSON_IsNull(v) && !cJSON_IsTrue(v))
        return unsupported(err, path, "strip_accents", v, "this runtime's tokenizer strips accents (BERT uncased)");
    if ((v = bq_json_member(root, "do_basic_tokenize")) && !cJSON_IsTrue(v))
        return unsupported(err, path, "do_basic_tokenize", v, "this runtime's tokenizer splits words and punctuation "
                           "first");
    /* words kept whole by the basic tokenizer: ours splits every word alike */
    if ((v = bq_json_member(root, "never_split")) && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && !v->child))
        return unsupported(err, path, "never_split", v, "this runtime's tokenizer keeps no word whole");
    if ((v = bq_json_member(root, "tokenize_chinese_chars")) && !cJSON_IsTrue(v))
        return unsupported(err, path, "tokenize_chinese_chars", v, "this runtime's tokenizer splits CJK characters");
    if ((v = bq_json_member(root, "tokenizer_class")) &&
        !(cJSON_IsString(v) && (strcmp(v->valuestring, "BertTokenizer") == 0 ||
                                strcmp(v->valuestring, "BertTokenizerFast") == 0)))
        return unsupported(err, path, "tokenizer_class", v, "this runtime implements BertTokenizer");
    for (size_t i = 0; i < sizeof special_tokens / sizeof special_tokens[0]; i++) {
        v = bq_json_member(root, special_tokens[i].key);
        const char *text = v && !cJSON_IsNull(v) ? token_text(v) : special_tokens[i].token;
        if (!text || strcmp(text, special_tokens[i].token) != 0) {
            char ours[64];
            snprintf(ours, sizeof ours, "this runtime's is %s", special_tokens[i].token);
            return unsupported(err, path, special_tokens[i].key, v, ours);
        }
    }
    return BQ_OK;
}

/* A member that must be absent or a string equal to `want`. */
static bool string_or_absent(const cJSON *object, const char *key, const char *want) {
    const cJSON *v = bq_json_member(object, key);
    return !v || (cJSON_IsString(v) && strcmp(v->valuestring, want) == 0);
}

/* tokenizer.json: the `tokenizers` pipeline (normalizer, pre-tokenizer, model). */
static bq_status check_tokenizer_json(const char *path, const cJSON *root, bq_err *err) {
    const cJSON *norm = bq_json_member(root, "normalizer");
    if (!cJSON_IsObject(norm) || !string_or_absent(norm, "type", "BertNormalizer") || !bq_json_member(norm, "type"))
        return unsupported(err, path, "normalizer", norm, "this runtime implements BertNormalizer");
    static const char *const must_be_true[] = {"lowercase", "clean_text", "handle_chinese_chars"};
    for (size_t i = 0; i < sizeof must_be_true / sizeof must_be_true[0]; i++) {
        const cJSON *v = bq_json_member(norm, must_be_true[i]);
        if (v && !cJSON_IsTrue(v)) {
            char key[64];
            snprintf(key, sizeof key, "normalizer.%s", must_be_true[i]);
            return unsupported(err, path, key, v, "this runtime's tokenizer is BERT uncased");
        }
    }
    const cJSON *strip = bq_json_member(norm, "strip_accents");
    if (strip && !cJSON_IsNull(strip) && !cJSON_IsTrue(strip))
        return unsupported(err, path, "normalizer.strip_accents", strip, "this runtime's tokenizer strips accents");
    const cJSON *pre = bq_json_member(root, "pre_tokenizer");
    if (!cJSON_IsObject(pre) || !bq_json_member(pre, "type") || !string_or_absent(pre, "type", "BertPreTokenizer"))
        return unsupported(err, path, "pre_tokenizer", pre, "this runtime implements BertPreTokenizer");
    const cJSON *model = bq_json_member(root, "model");
    const cJSON *type = bq_json_member(model, "type");
    /* files from before `tokenizers` wrote model.type hold WordPiece's fields alone (one with
     * "merges" is BPE's, as `tokenizers` reads it) */
    if (!cJSON_IsObject(model) || (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "WordPiece") == 0)) ||
        (!type && bq_json_member(model, "merges")))
        return unsupported(err, path, "model.type", type, "this runtime implements WordPiece");
    if (!string_or_absent(model, "continuing_subword_prefix", "##"))
        return unsupported(err, path, "model.continuing_subword_prefix",
                           bq_json_member(model, "continuing_subword_prefix"), "this runtime's is \"##\"");
    if (!string_or_absent(model, "unk_token", "[UNK]"))
        return unsupported(err, path, "model.unk_token", bq_json_member(model, "unk_token"), "this runtime's is [UNK]");
    const cJSON *max_chars = bq_json_member(model, "max_input_chars_per_word");
    if (max_chars && !(cJSON_IsNumber(max_chars) && max_chars->valuedouble == 100))
        return unsupported(err, path, "model.max_input_chars_per_word", max_chars, "this runtime's is 100");
    return BQ_OK;
}

/* model.vocab ({token: id}) as a table by id: every id in [0, n) exactly once. *by_id: heap. */
static bq_status vocab_by_id(const char *path, const cJSON *root, const char ***by_id, int *n_out, bq_err *err) {
    *by_id = NULL;
    const cJSON *vocab = bq_json_member(bq_json_member(root, "model"), "vocab");
    if (!cJSON_IsObject(vocab)) return bq_fail(err, BQ_ERR_FORMAT, "'%s': no model.vocab object", path);
    int n = cJSON_GetArraySize(vocab);
    if (n <= 0) return bq_fail(err, BQ_ERR_FORMAT, "'%s': model.vocab is empty", path);
    const char **table = calloc((size_t)n, sizeof *table);
    if (!table) return bq_fail(err, BQ_ERR_NOMEM, "out of memory reading '%s'", path);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        double id = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!(id >= 0 && id < n && id == (double)(int)id) || table[(int)id]) {
            free(table);
            return bq_fail(err, BQ_ERR_FORMAT, "'%s': model.vocab gives token \"%.40s\" the id %.20g, which is "
                           "not one of 0..%d or is given twice", path, e->string, cJSON_IsNumber(e) ? id : -1.0,
                           n - 1);
        }
        table[(int)id] = e->string;
    }
    *by_id = table;
    *n_out = n;
    return BQ_OK;
}

/* The vocabulary built from the table: tokens joined by "\n" for bq_vocab_from_tokens. */
static bq_status vocab_from_table(const char *path, const char **by_id, int n, bq_vocab **out, bq_err *err) {
    size_t len = 0;
    for (int id = 0; id < n; id++) {
        if (strpbrk(by_id[id], "\r\n"))
            return bq_fail(err, BQ_ERR_FORMAT, "'%s': token id %d holds a line break", path, id);
        len += strlen(by_id[id]) + 1;
    }
    char *text = malloc(len);
    if (!text) return bq_fail(err, BQ_ERR_NOMEM, "out of memory reading '%s'", path);
    size_t at = 0;
    for (int id = 0; id < n; id++) {
        size_t k = strlen(by_id[id]);
        memcpy(text + at, by_id[id], k);
        text[at + k] = '\n';
        at += k + 1;
    }
    return bq_vocab_from_tokens(text, len, path, out, err);
}

/* added_tokens must be the five specials, each the vocabulary's token at its id (BERT's are): one
 * outside the vocabulary would be a token this runtime never produces, and another one inside it
 * is found in raw text by transformers only. */
static bq_status check_added_tokens(const char *path, const cJSON *root, const bq_vocab *vocab, bq_err *err) {
    const cJSON *added = bq_json_member(root, "added_tokens");
    if (!added) return BQ_OK;
    if (!cJSON_IsArray(added)) return bq_fail(err, BQ_ERR_FORMAT, "'%s': added_tokens is not a list", path);
    for (const cJSON *t = added->child; t; t = t->next) {
        const cJSON *id = bq_json_member(t, "id");
        const char *content = token_text(t);
        /* range first: converting a double outside int32_t is undefined */
        const bool in_range = cJSON_IsNumber(id) && id->valuedouble >= 0 && id->valuedouble < bq_vocab_size(vocab);
        const char *at = in_range ? bq_vocab_token(vocab, (int32_t)id->valuedouble) : NULL;
        if (content && at && strcmp(at, content) == 0 && !builtin_special(content))
            return other_added_token(err, path, "added_tokens", content);
        if (!content || !at || strcmp(at, content) != 0)
            return bq_fail(err, BQ_ERR_UNSUPPORTED, "'%s': added token \"%.40s\" (id %.20g) is not the vocabulary's "
                           "token of that id: tokens beyond the WordPiece vocabulary are not supported", path,
                           content ? content : "?", cJSON_IsNumber(id) ? id->valuedouble : -1.0);
    }
    return BQ_OK;
}

bq_status bq_tokenizer_files_load(const char *dir, bq_vocab **vocab, char **path_out, bq_err *err) {
    if (!dir || !vocab) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_tokenizer_files_load: NULL argument");
    if (path_out) *path_out = NULL;
    char *config_path = bq_join_path(dir, "tokenizer_config.json");
    char *json_path = bq_join_path(dir, "tokenizer.json");
    cJSON *root = NULL;
    const char **by_id = NULL;
    bq_vocab *built = NULL;
    bq_status st = BQ_OK;
    if (!config_path || !json_path) {
        st = bq_fail(err, BQ_ERR_NOMEM, "out of memory reading the tokenizer files of '%s'", dir);
        goto done;
    }
    if (access(config_path, F_OK) == 0) {
        /* a few kB; the cap stops a device file read without end */
        if ((st = bq_json_read_object(config_path, 16u << 20, &root, err)) ||
            (st = check_tokenizer_config(config_path, root, err)))
            goto done;
        cJSON_Delete(root);
        root = NULL;
    }
    if (access(json_path, F_OK) != 0) goto done;
    /* 0.7 MB for BERT's 30,522 tokens */
    int n = 0;
    if ((st = bq_json_read_object(json_path, 256u << 20, &root, err)) ||
        (st = check_tokenizer_json(json_path, root, err)) || (st = vocab_by_id(json_path, root, &by_id, &n, err)))
        goto done;
    if (!*vocab) {
        if ((st = vocab_from_table(json_path, by_id, n, &built, err))) goto done;
    } else {
        /* both files: Hugging Face's fast tokenizer reads tokenizer.json, the slow one vocab.txt */
        if (bq_vocab_size(*vocab) != n) {
            st = bq_fail(err, BQ_ERR_FORMAT, "'%s' has %d tokens, the folder's vocab.txt %d: the two disagree",
                         json_path, n, (int)bq_vocab_size(*vocab));
            goto done;
        }
        for (int id = 0; id < n; id++)
            if (strcmp(bq_vocab_token(*vocab, id), by_id[id]) != 0) {
                st = bq_fail(err, BQ_ERR_FORMAT, "'%s' and the folder's vocab.txt disagree at token id %d "
                             "(\"%.40s\" vs \"%.40s\")", json_path, id, by_id[id], bq_vocab_token(*vocab, id));
                goto done;
            }
    }
    if ((st = check_added_tokens(json_path, root, built ? built : *vocab, err))) goto done;
    if (built) {
        *vocab = built;
        built = NULL;
        if (path_out) {
            *path_out = json_path;
            json_path = NULL;
        }
    }
done:
    bq_vocab_free(built);
    free(by_id);
    cJSON_Delete(root);
    free(config_path);
    free(json_path);
    return st;
}
