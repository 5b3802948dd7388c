/* vocab.c - WordPiece vocabulary: token bytes -> id through an open-addressing hash table.
 *
 * A token is keyed as (is_continuation, text without the "##" prefix) so WordPiece can look up a
 * "##"-piece straight from the word's bytes without building the prefixed string. The mapping is a
 * bijection on strings ("##x" <-> (1, "x"), "x" <-> (0, "x")), so bq_vocab_find stays exact. */
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

typedef struct {
    uint32_t hash;    /* full hash of the key: most probes end here without touching the text */
    uint32_t id1;     /* token id + 1; 0 = empty slot */
    uint32_t key_off; /* the key's bytes in text (after any "##"), compared on a hash match */
    uint32_t key_len; /* bit 31: continuation ("##") */
} vocab_slot;

enum { CONT_BIT = 1u << 31 };

struct bq_vocab {
    char *text;        /* all tokens, NUL-terminated, back to back */
    uint32_t *offsets; /* [size] start of token id in text */
    uint32_t *lengths; /* [size] byte length of token id (with any "##") */
    int32_t size;
    vocab_slot *slots; /* [slot_mask+1] open addressing, linear probing, load <= 1/2 */
    size_t slot_mask;
    size_t max_key_len; /* longest key in bytes ("##" not counted) */
    bq_special_ids special;
};

static uint32_t key_hash(int continuation, const char *s, size_t len) {
    uint32_t h = continuation ? 0x9747b28cu : 2166136261u; /* FNV-1a, separate seed per kind */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h ^ (h >> 15);
}

static void split_key(const char *tok, size_t len, int *continuation, const char **key, size_t *key_len) {
    *continuation = len >= 2 && tok[0] == '#' && tok[1] == '#';
    *key = tok + (*continuation ? 2 : 0);
    *key_len = len - (*continuation ? 2 : 0);
}

int32_t bq_vocab_find_key(const bq_vocab *v, int continuation, const char *key, size_t key_len) {
    if (!v || key_len > v->max_key_len) return -1;
    uint32_t h = key_hash(continuation, key, key_len);
    for (size_t i = h & v->slot_mask;; i = (i + 1) & v->slot_mask) {
        vocab_slot slot = v->slots[i];
        if (!slot.id1) return -1;
        if (slot.hash == h && slot.key_len == ((uint32_t)key_len | (continuation ? CONT_BIT : 0)) &&
            memcmp(v->text + slot.key_off, key, key_len) == 0)
            return (int32_t)slot.id1 - 1;
    }
}

size_t bq_vocab_max_key_len(const bq_vocab *v) { return v ? v->max_key_len : 0; }

int32_t bq_vocab_find(const bq_vocab *v, const char *tok, size_t len) {
    if (!v || (!tok && len)) return -1;
    int c;
    const char *k;
    size_t kl;
    split_key(tok, len, &c, &k, &kl);
    return bq_vocab_find_key(v, c, k, kl);
}

int32_t bq_vocab_size(const bq_vocab *v) { return v ? v->size : 0; }

const char *bq_vocab_token(const bq_vocab *v, int32_t id) {
    if (!v || id < 0 || id >= v->size) return NULL;
    return v->text + v->offsets[id];
}

const bq_special_ids *bq_vocab_special(const bq_vocab *v) { return v ? &v->special : NULL; }

void bq_vocab_free(bq_vocab *v) {
    if (!v) return;
    free(v->text);
    free(v->offsets);
    free(v->lengths);
    free(v->slots);
    free(v);
}

/* Token id k sits on line k+1 of a vocab.txt (empty lines are rejected, so lines and ids
 * coincide); in a vocabulary from tokenizer.json the place is the id itself. */
typedef struct {
    const char *name; /* the file, for messages */
    const char *unit; /* "line" or "token id" */
    long first;       /* the number of id 0 in that unit */
} vocab_source;

static bq_status load_fail(bq_vocab *v, bq_err *err, bq_status st, const vocab_source *src, long id,
                           const char *what) {
    bq_vocab_free(v);
    return bq_fail(err, st, "vocab '%s' %s %ld: %s", src->name, src->unit, id + src->first, what);
}

static bq_status vocab_parse(char *data, size_t len, const vocab_source *src, bq_vocab **out, bq_err *err);

bq_status bq_vocab_load(const char *path, bq_vocab **out, bq_err *err) {
    if (!out) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_vocab_load: out is NULL");
    *out = NULL;
    if (!path) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_vocab_load: path is NULL");
    char *data = NULL;
    size_t len = 0;
    /* BERT vocabularies are 0.2-2 MB; the cap stops a device file read without end */
    bq_status st = bq_read_regular_file(path, 64u << 20, &data, &len, err);
    if (st != BQ_OK) return st;
    if (len == 0) {
        free(data);
        return bq_fail(err, BQ_ERR_FORMAT, "vocab '%s' line 1: file is empty", path);
    }
    /* Hugging Face reads vocab.txt as plain UTF-8, so a byte-order mark would become part of the
     * first token and [PAD] (or whatever is first) would go missing */
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        free(data);
        return bq_fail(err, BQ_ERR_FORMAT, "vocab '%s' line 1: starts with a UTF-8 byte-order mark, "
                       "which would become part of the first token: save it without one", path);
    }
    const vocab_source src = {path, "line", 1};
    return vocab_parse(data, len, &src, out, err);
}

bq_status bq_vocab_from_tokens(char *tokens, size_t len, const char *name, bq_vocab **out, bq_err *err) {
    if (!out || !tokens || !name) {
        free(tokens);
        return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_vocab_from_tokens: NULL argument");
    }
    *out = NULL;
    if (len == 0) {
        free(tokens);
        return bq_fail(err, BQ_ERR_FORMAT, "vocab '%s': no tokens", name);
    }
    const vocab_source src = {name, "token id", 0};
    return vocab_parse(tokens, len, &src, out, err);
}

/* Tokens separated by "\n" (or "\r\n") in data (heap; owned from here on). */
static bq_status vocab_parse(char *data, size_t len, const vocab_source *src, bq_vocab **out, bq_err *err) {
    const char *path = src->name;
    bq_vocab *v = calloc(1, sizeof *v);
    if (!v) {
        free(data);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory loading vocab '%s'", path);
    }
    /* Tokens are rewritten in place: each line end ("\n" or "\r\n") becomes a NUL. */
    v->text = data;
    size_t cap = 0;
    long token_id = -1; /* the id being read (its line is token_id + 1) */
    for (size_t pos = 0; pos < len;) {
        token_id++;
        size_t end = pos;
        while (end < len && data[end] != '\n') end++;
        size_t next = end < len ? end + 1 : end;
        size_t tok_end = end;
        if (tok_end > pos && data[tok_end - 1] == '\r') tok_end--;
        if (tok_end == pos) return load_fail(v, err, BQ_ERR_FORMAT, src, token_id, "empty token");
        if (memchr(data + pos, '\0', tok_end - pos))
            return load_fail(v, err, BQ_ERR_FORMAT, src, token_id, "NUL byte in token");
        for (size_t i = pos; i < tok_end;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)data + i,
                                                  (utf8proc_ssize_t)(tok_end - i), &cp);
            if (n <= 0) return load_fail(v, err, BQ_ERR_FORMAT, src, token_id, "invalid UTF-8");
            i += (size_t)n;
        }
        if (tok_end - pos > UINT32_MAX || pos > UINT32_MAX || token_id > INT32_MAX - 1)
            return load_fail(v, err, BQ_ERR_FORMAT, src, token_id, "vocabulary too large");
        if ((size_t)v->size == cap) {
            size_t lengths_cap = cap;
            if (!bq_grow((void **)&v->offsets, &cap, cap + 1, sizeof *v->offsets) ||
                !bq_grow((void **)&v->lengths, &lengths_cap, cap, sizeof *v->lengths))
                return load_fail(v, err, BQ_ERR_NOMEM, src, token_id, "out of memory");
        }
        v->offsets[v->size] = (uint32_t)pos;
        v->lengths[v->size] = (uint32_t)(tok_end - pos);
        v->size++;
        data[tok_end] = '\0';
        pos = next;
    }

    size_t nslots = 1;
    while (nslots < (size_t)v->size * 2) nslots <<= 1;
    v->slot_mask = nslots - 1;
    v->slots = calloc(nslots, sizeof *v->slots);
    if (!v->slots) {
        bq_vocab_free(v);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory loading vocab '%s'", path);
    }
    for (int32_t id = 0; id < v->size; id++) {
        int c;
        const char *k;
        size_t kl;
        split_key(v->text + v->offsets[id], v->lengths[id], &c, &k, &kl);
        uint32_t h = key_hash(c, k, kl);
        size_t i = h & v->slot_mask;
        for (; v->slots[i].id1; i = (i + 1) & v->slot_mask) {
            uint32_t other = v->slots[i].id1 - 1;
            if (v->lengths[other] == v->lengths[id] &&
                memcmp(v->text + v->offsets[other], v->text + v->offsets[id], v->lengths[id]) == 0) {
                char what[160];
                snprintf(what, sizeof what, "duplicate token (first at %s %ld)", src->unit, (long)other + src->first);
                return load_fail(v, err, BQ_ERR_FORMAT, src, (long)id, what);
            }
        }
        v->slots[i] = (vocab_slot){h, (uint32_t)id + 1, (uint32_t)(k - v->text),
                                   (uint32_t)kl | (c ? CONT_BIT : 0)};
        if (kl > v->max_key_len) v->max_key_len = kl;
    }

    struct {
        const char *name;
        int32_t *id;
        int required;
    } specials[] = {{"[PAD]", &v->special.pad, 1}, {"[UNK]", &v->special.unk, 1},
                    {"[CLS]", &v->special.cls, 1}, {"[SEP]", &v->special.sep, 1},
                    {"[MASK]", &v->special.mask, 0}};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        *specials[i].id = bq_vocab_find(v, specials[i].name, strlen(specials[i].name));
        if (*specials[i].id < 0 && specials[i].required) {
            char what[96];
            snprintf(what, sizeof what, "(the end) required token %s is missing", specials[i].name);
            return load_fail(v, err, BQ_ERR_FORMAT, src, token_id, what);
        }
    }
    *out = v;
    return BQ_OK;
}
