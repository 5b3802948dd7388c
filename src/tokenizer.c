/* tokenizer.c - uncased BERT tokenizer, token-for-token what Hugging Face BertTokenizer
 * (do_lower_case=True, transformers 4.57.1 on Python 3.11) produces, with byte spans.
 *
 * One pass over the text. Each code point is classified once:
 *   dropped    U+0000, U+FFFD, category C* except \t \n \r (never splits a word: "a\x01b" -> "ab")
 *   separator  space \t \n \r, Zs, and U+2028 / U+2029 (Python's str.split() splits on those)
 *   CJK        ideograph ranges below: a word of its own
 *   otherwise  lower-cased, NFD-decomposed, Mn dropped; each resulting punctuation character
 *              (ASCII 33-47, 58-64, 91-96, 123-126 or category P*) is a word of its own, the rest
 *              is appended to the current word.
 * Doing lower-case + NFD per character equals HF's per-word lower() / NFC / NFD except for canonical
 * reordering of combining marks, which is redone here for the few kept (non-Mn) marks that need it.
 * Lower-casing is per character, like HF (its tokenize() lower-cases character by character before
 * the basic tokenizer runs), so a final capital sigma becomes "σ", not "ς".
 *
 * Special tokens: bq_tokenize, like BertTokenizer.tokenize / __call__, recognises the exact
 * strings [CLS] [SEP] [PAD] [MASK] [UNK] (case-sensitive, anywhere in the raw text, even inside a
 * word) and emits their ids; "[sep]" or "[SEP\x01]" are ordinary text. bq_basic_tokenize, like
 * HF's BasicTokenizer (used by get_final_text), treats them as ordinary text: "[", "sep", "]".
 *
 * Unicode version: Python 3.11's unicodedata is Unicode 14.0, utf8proc 2.8 is 15.0. Code points
 * first assigned in 15.0 are unassigned (Cn) to Python, hence dropped by HF; we drop them too. */
#include "tokenizer.h"

#include "python_case.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

enum { MAX_WORD_CHARS = 100 };
/* A word is stored only while it can still be WordPiece'd: 100 code points of at most 4 bytes. */
enum { WORD_BUF = MAX_WORD_CHARS * 4 + 8 };

/* ---- character classes ---------------------------------------------------------------------- */

enum { C_WORD, C_SPACE, C_DROP, C_PUNCT, C_HIGH };

static const unsigned char ascii_class[128] = {
    /* 0x00-0x1f: controls dropped, \t \n \r separate */
    C_DROP, C_DROP, C_DROP, C_DROP, C_DROP, C_DROP, C_DROP, C_DROP,
    C_DROP, C_SPACE, C_SPACE, C_DROP, C_DROP, C_SPACE, C_DROP, C_DROP,
    C_DROP, C_DROP, C_DROP, C_DROP, C_DROP, C_DROP, C_DROP, C_DROP,
    C_DROP, C_DROP, C_DROP, C_DROP, C_DROP, C_DROP, C_DROP, C_DROP,
    /* 0x20-0x2f: space, then ! " # $ % & ' ( ) * + , - . / */
    C_SPACE, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT,
    C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT,
    /* 0x30-0x3f: digits, : ; < = > ? */
    C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD,
    C_WORD, C_WORD, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT,
    /* 0x40-0x5f: @ A-Z [ \ ] ^ _ */
    C_PUNCT, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD,
    C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD,
    C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD,
    C_WORD, C_WORD, C_WORD, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT,
    /* 0x60-0x7f: ` a-z { | } ~ DEL */
    C_PUNCT, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD,
    C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD,
    C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD, C_WORD,
    C_WORD, C_WORD, C_WORD, C_PUNCT, C_PUNCT, C_PUNCT, C_PUNCT, C_DROP,
};

/* Class of a byte; bytes >= 0x80 start (or continue) a multi-byte sequence. */
static inline int byte_class(unsigned char c) { return c < 0x80 ? ascii_class[c] : C_HIGH; }

static inline char ascii_lower(unsigned char c) { return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c); }

static bool is_cjk(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* Code points assigned in Unicode 15.0: unassigned (Cn) to Python 3.11, so HF drops them. Checked
 * against HF over every code point (tools/golden_tokens.py --sweep, see tests/test_tokenizer.c). */
static const int32_t unicode15_new[][2] = {
    {0x0CF3, 0x0CF3},   {0x0ECE, 0x0ECE},   {0x10EFD, 0x10EFF}, {0x1123F, 0x11241},
    {0x11B00, 0x11B09}, {0x11F00, 0x11F10}, {0x11F12, 0x11F3A}, {0x11F3E, 0x11F59},
    {0x1342F, 0x1342F}, {0x13439, 0x13455}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155},
    {0x1D2C0, 0x1D2D3}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D}, {0x1E08F, 0x1E08F},
    {0x1E4D0, 0x1E4F9}, {0x1F6DC, 0x1F6DC}, {0x1F774, 0x1F776}, {0x1F77B, 0x1F77F},
    {0x1F7D9, 0x1F7D9}, {0x1FA75, 0x1FA77}, {0x1FA87, 0x1FA88}, {0x1FAAD, 0x1FAAF},
    {0x1FABB, 0x1FABD}, {0x1FABF, 0x1FABF}, {0x1FACE, 0x1FACF}, {0x1FADA, 0x1FADB},
    {0x1FAE8, 0x1FAE8}, {0x1FAF7, 0x1FAF8}, {0x2B739, 0x2B739}, {0x31350, 0x323AF},
};

static bool new_in_unicode15(int32_t cp) {
    if (cp < 0x0CF3) return false;
    size_t lo = 0, hi = sizeof unicode15_new / sizeof unicode15_new[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < unicode15_new[mid][0]) hi = mid;
        else if (cp > unicode15_new[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

static bool is_punct_cp(int32_t cp, utf8proc_category_t cat) {
    if (cp < 0x80) return ascii_class[cp] == C_PUNCT;
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

/* How BasicTokenizer's clean-up and whitespace split treat a code point: dropped (U+0000, U+FFFD,
 * control and format characters, unassigned ones: every C* category but \t \n \r), a token
 * boundary (whitespace; Python's str.split() splits on U+2028 / U+2029 too), a CJK character (a
 * token of its own), or kept. */
typedef enum { CP_KEEP, CP_DROP, CP_BREAK, CP_CJK } cp_role;

static cp_role basic_role(int32_t cp) {
    if (cp < 0x80) return ascii_class[cp] == C_DROP ? CP_DROP : ascii_class[cp] == C_SPACE ? CP_BREAK : CP_KEEP;
    utf8proc_category_t cat = utf8proc_category(cp);
    if (cp == 0xFFFD || cat == UTF8PROC_CATEGORY_CN || cat >= UTF8PROC_CATEGORY_CC || new_in_unicode15(cp))
        return CP_DROP;
    if (cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP) return CP_BREAK;
    return is_cjk(cp) ? CP_CJK : CP_KEEP;
}



static size_t encode_utf8(int32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- the word builder ------------------------------------------------------------------------ */

typedef struct {
    /* tokenize mode (vocab != NULL): words go through WordPiece into pieces */
    const bq_vocab *vocab;
    bq_pieces *pieces;
    int32_t unk;
    /* basic mode: words are appended to `words` */
    bq_words *words;

    bool active;             /* a word is open */
    uint32_t wstart, wend;   /* its span in the original text */
    size_t nchars;           /* its code points so far */
    bool too_long;           /* tokenize mode: over MAX_WORD_CHARS, bytes no longer kept */
    bool reordered;          /* a combining mark was moved: piece spans need min/max */
    size_t run_start;        /* byte offset in the word of the current run of kept marks (ccc > 0) */
    bool run_open;
    /* tokenize mode word: bytes and, per byte, the span of the original character it came from */
    char buf[WORD_BUF];
    uint32_t ostart[WORD_BUF], oend[WORD_BUF];
    size_t len;
} builder;

static bq_status oom(bq_err *err) { return bq_fail(err, BQ_ERR_NOMEM, "out of memory while tokenizing"); }

static bq_status push_piece(bq_pieces *p, int32_t id, uint32_t start, uint32_t end, bq_err *err) {
    if (p->n == p->cap && !bq_grow((void **)&p->pieces, &p->cap, p->n + 1, sizeof *p->pieces))
        return oom(err);
    p->pieces[p->n++] = (bq_piece){id, start, end};
    return BQ_OK;
}

/* Greedy longest-match-first WordPiece over word bytes [0, len). ostart/oend give per-byte origin
 * spans (NULL: every piece spans [start, end)). Words over 100 code points become one [UNK]. */
static bq_status wordpiece(const bq_vocab *vocab, int32_t unk, const char *w, size_t len, size_t nchars,
                           const uint32_t *ostart, const uint32_t *oend, bool minmax, uint32_t start,
                           uint32_t end, bq_pieces *out, bq_err *err) {
    if (nchars > MAX_WORD_CHARS) return push_piece(out, unk, start, end, err);
    size_t first = out->n, max_key = bq_vocab_max_key_len(vocab);
    for (size_t pos = 0; pos < len;) {
        size_t stop = len - pos > max_key ? pos + max_key : len;
        while (stop < len && ((unsigned char)w[stop] & 0xC0) == 0x80) stop--; /* code point boundary */
        int32_t id = -1;
        while (stop > pos) {
            id = bq_vocab_find_key(vocab, pos > 0, w + pos, stop - pos);
            if (id >= 0) break;
            do stop--;
            while (stop > pos && ((unsigned char)w[stop] & 0xC0) == 0x80);
        }
        if (id < 0) {
            out->n = first; /* no match somewhere: the whole word is one [UNK] */
            return push_piece(out, unk, start, end, err);
        }
        uint32_t ps = start, pe = end;
        if (ostart) {
            ps = ostart[pos];
            pe = oend[stop - 1];
            if (minmax) {
                for (size_t k = pos; k < stop; k++) {
                    if (ostart[k] < ps) ps = ostart[k];
                    if (oend[k] > pe) pe = oend[k];
                }
            }
        }
        bq_status st = push_piece(out, id, ps, pe, err);
        if (st != BQ_OK) return st;
        pos = stop;
    }
    return BQ_OK;
}

static bq_status end_word(builder *b, bq_err *err) {
    if (!b->active) return BQ_OK;
    b->active = false;
    b->run_open = false;
    if (b->words) {
        bq_word *w = &b->words->words[b->words->n - 1];
        w->len = b->words->buf_len - w->off;
        w->start = b->wstart;
        w->end = b->wend;
        return BQ_OK;
    }
    return wordpiece(b->vocab, b->unk, b->buf, b->len, b->too_long ? MAX_WORD_CHARS + 1 : b->nchars,
                     b->ostart, b->oend, b->reordered, b->wstart, b->wend, b->pieces, err);
}

static bq_status begin_word(builder *b, uint32_t start, bq_err *err) {
    b->active = true;
    b->wstart = start;
    b->wend = start;
    b->nchars = 0;
    b->len = 0;
    b->too_long = false;
    b->reordered = false;
    b->run_open = false;
    if (b->words) {
        bq_words *ws = b->words;
        if (ws->n == ws->cap && !bq_grow((void **)&ws->words, &ws->cap, ws->n + 1, sizeof *ws->words))
            return oom(err);
        ws->words[ws->n++] = (bq_word){ws->buf_len, 0, start, start};
    }
    return BQ_OK;
}

/* Append the bytes of one normalized character coming from original bytes [os, oe). */
static bq_status put_bytes(builder *b, const char *bytes, size_t n, uint32_t os, uint32_t oe, bq_err *err) {
    if (!b->active) {
        bq_status st = begin_word(b, os, err);
        if (st != BQ_OK) return st;
    }
    if (os < b->wstart) b->wstart = os;
    if (oe > b->wend) b->wend = oe;
    b->nchars++;
    if (b->words) {
        bq_words *ws = b->words;
        if (!bq_grow((void **)&ws->buf, &ws->buf_cap, ws->buf_len + n, 1)) return oom(err);
        memcpy(ws->buf + ws->buf_len, bytes, n);
        ws->buf_len += n;
    } else if (!b->too_long) {
        if (b->nchars > MAX_WORD_CHARS) {
            b->too_long = true;
        } else {
            for (size_t k = 0; k < n; k++) {
                b->buf[b->len + k] = bytes[k];
                b->ostart[b->len + k] = os;
                b->oend[b->len + k] = oe;
            }
            b->len += n;
        }
    }
    return BQ_OK;
}

/* Word bytes so far (either mode). */
static char *word_bytes(builder *b, size_t *len) {
    if (b->words) {
        bq_word *w = &b->words->words[b->words->n - 1];
        *len = b->words->buf_len - w->off;
        return b->words->buf + w->off;
    }
    *len = b->len;
    return b->buf;
}

static int32_t decode_simple(const char *s, size_t *n) {
    utf8proc_int32_t cp;
    *n = (size_t)utf8proc_iterate((const utf8proc_uint8_t *)s, 4, &cp);
    return cp;
}

/* Canonical reordering (part of NFD) for a kept mark of class ccc just appended at byte `at`:
 * move it before the kept marks of the current run with a higher class. Rare: only a few non-Mn
 * characters have ccc > 0; Mn ones are dropped anyway. */
static void reorder_last(builder *b, size_t at, int ccc) {
    size_t wlen;
    char *w = word_bytes(b, &wlen);
    if (b->too_long && !b->words) return;
    size_t pos = at;
    while (pos > b->run_start) {
        size_t prev = pos - 1;
        while (prev > b->run_start && ((unsigned char)w[prev] & 0xC0) == 0x80) prev--;
        size_t n;
        int32_t pcp = decode_simple(w + prev, &n);
        if (utf8proc_get_property(pcp)->combining_class <= ccc) break;
        pos = prev;
    }
    if (pos == at) return;
    size_t n = wlen - at; /* the moved character's bytes */
    char tmp[4];
    memcpy(tmp, w + at, n);
    memmove(w + pos + n, w + pos, at - pos);
    memcpy(w + pos, tmp, n);
    if (!b->words) {
        uint32_t os = b->ostart[at], oe = b->oend[at];
        memmove(b->ostart + pos + n, b->ostart + pos, (at - pos) * sizeof *b->ostart);
        memmove(b->oend + pos + n, b->oend + pos, (at - pos) * sizeof *b->oend);
        for (size_t k = 0; k < n; k++) {
            b->ostart[pos + k] = os;
            b->oend[pos + k] = oe;
        }
        b->reordered = true;
    }
}

/* Stretch the span of the word's last character (and the word) to end at oe. */
static void extend_last(builder *b, uint32_t oe) {
    if (oe <= b->wend) return;
    b->wend = oe;
    if (b->words || b->too_long || b->len == 0) return;
    uint32_t last_start = b->ostart[b->len - 1];
    for (size_t k = b->len; k > 0 && b->ostart[k - 1] == last_start; k--) b->oend[k - 1] = oe;
}

static bq_status emit_single(builder *b, const char *bytes, size_t n, uint32_t os, uint32_t oe, bq_err *err) {
    bq_status st = end_word(b, err);
    if (st == BQ_OK) st = put_bytes(b, bytes, n, os, oe, err);
    if (st == BQ_OK) st = end_word(b, err);
    return st;
}

/* One non-ASCII code point (already known not to be dropped or a separator) from bytes [os, oe). */
static bq_status put_cp(builder *b, int32_t cp, uint32_t os, uint32_t oe, bq_err *err) {
    utf8proc_int32_t dec[32];
    int32_t lower = utf8proc_tolower(cp);
    int boundclass = 0;
    utf8proc_ssize_t nd = utf8proc_decompose_char(lower, dec, 32, UTF8PROC_DECOMPOSE, &boundclass);
    if (nd < 0 || nd > 32) {
        dec[0] = lower;
        nd = 1;
    }
    for (utf8proc_ssize_t i = 0; i < nd; i++) {
        int32_t c = dec[i];
        const utf8proc_property_t *prop = utf8proc_get_property(c);
        utf8proc_category_t cat = (utf8proc_category_t)prop->category;
        int ccc = prop->combining_class;
        if (cat == UTF8PROC_CATEGORY_MN) {
            if (ccc == 0) b->run_open = false;
            if (b->active) extend_last(b, oe); /* a dropped accent still belongs to its letter */
            continue;
        }
        char bytes[4];
        size_t n = encode_utf8(c, bytes);
        bq_status st;
        if (is_punct_cp(c, cat)) {
            st = emit_single(b, bytes, n, os, oe, err);
            if (st != BQ_OK) return st;
            continue;
        }
        st = put_bytes(b, bytes, n, os, oe, err);
        if (st != BQ_OK) return st;
        size_t at; /* byte offset of this character in the word */
        word_bytes(b, &at);
        at -= at >= n ? n : at;
        if (ccc == 0) {
            b->run_open = false;
        } else {
            if (b->run_open) reorder_last(b, at, ccc);
            else {
                b->run_open = true;
                b->run_start = at;
            }
        }
    }
    return BQ_OK;
}

/* The special token spelled at text[pos..] (bq_tokenize only), or -1. */
static int32_t special_at(const bq_vocab *vocab, const char *text, size_t len, size_t pos, size_t *n) {
    static const char *const names[] = {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"};
    const bq_special_ids *sp = bq_vocab_special(vocab);
    const int32_t ids[] = {sp->cls, sp->sep, sp->pad, sp->mask, sp->unk};
    for (size_t i = 0; i < 5; i++) {
        size_t l = strlen(names[i]);
        if (ids[i] >= 0 && len - pos >= l && memcmp(text + pos, names[i], l) == 0) {
            *n = l;
            return ids[i];
        }
    }
    return -1;
}

static bq_status run(builder *b, const char *text, size_t len, bq_err *err) {
    if (!text && len) return bq_fail(err, BQ_ERR_INVALID_ARG, "tokenize: text is NULL");
    if (len > UINT32_MAX) return bq_fail(err, BQ_ERR_INVALID_ARG, "tokenize: text of %zu bytes is over 4 GiB", len);
    const unsigned char *s = (const unsigned char *)text;
    bq_status st = BQ_OK;
    size_t pos = 0;
    while (pos < len) {
        unsigned char c = s[pos];
        switch (byte_class(c)) {
        case C_WORD: {
            /* ASCII fast path: copy the run of word characters, lower-cased */
            if (!b->active && (st = begin_word(b, (uint32_t)pos, err)) != BQ_OK) return st;
            size_t run_end = pos + 1;
            while (run_end < len && byte_class(s[run_end]) == C_WORD) run_end++;
            size_t n = run_end - pos;
            b->run_open = false;
            if (b->words) {
                bq_words *ws = b->words;
                if (!bq_grow((void **)&ws->buf, &ws->buf_cap, ws->buf_len + n, 1)) return oom(err);
                for (size_t k = 0; k < n; k++) ws->buf[ws->buf_len + k] = ascii_lower(s[pos + k]);
                ws->buf_len += n;
            } else if (!b->too_long) {
                if (b->nchars + n > MAX_WORD_CHARS) {
                    b->too_long = true;
                } else {
                    for (size_t k = 0; k < n; k++) {
                        b->buf[b->len + k] = ascii_lower(s[pos + k]);
                        b->ostart[b->len + k] = (uint32_t)(pos + k);
                        b->oend[b->len + k] = (uint32_t)(pos + k + 1);
                    }
                    b->len += n;
                }
            }
            b->nchars += n;
            if (run_end > b->wend) b->wend = (uint32_t)run_end;
            pos = run_end;
            break;
        }
        case C_SPACE:
            if ((st = end_word(b, err)) != BQ_OK) return st;
            pos++;
            break;
        case C_DROP:
            pos++;
            break;
        case C_PUNCT: {
            size_t n;
            int32_t id;
            if (c == '[' && b->vocab && (id = special_at(b->vocab, text, len, pos, &n)) >= 0) {
                if ((st = end_word(b, err)) != BQ_OK) return st;
                if ((st = push_piece(b->pieces, id, (uint32_t)pos, (uint32_t)(pos + n), err)) != BQ_OK)
                    return st;
                pos += n;
                break;
            }
            if ((st = emit_single(b, text + pos, 1, (uint32_t)pos, (uint32_t)pos + 1, err)) != BQ_OK)
                return st;
            pos++;
            break;
        }
        default: {
            int32_t cp;
            size_t n = bq_utf8_decode((const char *)s, len, pos, &cp, err);
            if (!n) return BQ_ERR_UTF8;
            uint32_t os = (uint32_t)pos, oe = (uint32_t)(pos + n);
            pos += n;
            switch (basic_role(cp)) {
            case CP_DROP:
                break;
            case CP_BREAK:
                st = end_word(b, err);
                break;
            case CP_CJK:
                if ((st = end_word(b, err)) == BQ_OK && (st = put_cp(b, cp, os, oe, err)) == BQ_OK)
                    st = end_word(b, err);
                break;
            case CP_KEEP:
                st = put_cp(b, cp, os, oe, err);
                break;
            }
            if (st != BQ_OK) return st;
            break;
        }
        }
    }
    return end_word(b, err);
}

bq_status bq_basic_final_sigmas(char *text, size_t len, bq_err *err) {
    bool sigma = false; /* no capital sigma (UTF-8 CE A3): nothing to do */
    for (size_t i = 0; i + 1 < len && !sigma; i++) sigma = (unsigned char)text[i] == 0xCE && (unsigned char)text[i + 1] == 0xA3;
    if (!sigma) return BQ_OK;
    int32_t *token = malloc((len + 1) * sizeof *token); /* a token's kept code points */
    size_t *at = malloc((len + 1) * sizeof *at);         /* and their byte offsets */
    if (!token || !at) {
        free(token), free(at);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory lower-casing an answer's words");
    }
    bq_status st = BQ_OK;
    size_t n = 0;
    for (size_t pos = 0; pos <= len;) {
        int32_t cp = ' '; /* past the end: a boundary that ends the last token */
        size_t step = 1;
        if (pos < len && !(step = bq_utf8_decode(text, len, pos, &cp, err))) {
            st = BQ_ERR_UTF8;
            break;
        }
        const cp_role role = basic_role(cp);
        if (role == CP_KEEP) {
            token[n] = cp;
            at[n++] = pos;
        } else if (role != CP_DROP) { /* the token ends: its capital sigmas lowered as str.lower() does */
            for (size_t k = 0; k < n; k++) /* bytes already read: what is decoded next is not touched */
                if (token[k] == 0x3A3 && bq_py_lower_capital_sigma(token, n, k) == 0x3C2)
                    memcpy(text + at[k], "\xCF\x82", 2);
            n = 0;
        }
        pos += step;
    }
    free(token);
    free(at);
    return st;
}

/* ---- public interface ------------------------------------------------------------------------ */

bq_status bq_basic_tokenize(const char *text, size_t len, bq_words *out, bq_err *err) {
    if (!out) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_basic_tokenize: out is NULL");
    size_t n0 = out->n, buf0 = out->buf_len;
    builder b;
    memset(&b, 0, offsetof(builder, buf)); /* basic mode never touches the word arrays */
    b.words = out;
    bq_status st = run(&b, text, len, err);
    if (st != BQ_OK) {
        out->n = n0;
        out->buf_len = buf0;
    }
    return st;
}

bq_status bq_tokenize(const bq_vocab *vocab, const char *text, size_t len, bq_pieces *out, bq_err *err) {
    if (!vocab || !out) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_tokenize: vocab or out is NULL");
    size_t n0 = out->n;
    builder b;
    b.vocab = vocab;
    b.pieces = out;
    b.unk = bq_vocab_special(vocab)->unk;
    b.words = NULL;
    b.active = false;
    b.run_open = false;
    bq_status st = run(&b, text, len, err);
    if (st != BQ_OK) out->n = n0;
    return st;
}

bq_status bq_wordpiece(const bq_vocab *vocab, const char *word, size_t len, uint32_t start, uint32_t end,
                       bq_pieces *out, bq_err *err) {
    if (!vocab || !out || (!word && len))
        return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_wordpiece: vocab, word or out is NULL");
    size_t nchars = 0;
    for (size_t i = 0; i < len; i++) nchars += ((unsigned char)word[i] & 0xC0) != 0x80;
    if (len == 0) return BQ_OK;
    return wordpiece(vocab, bq_vocab_special(vocab)->unk, word, len, nchars, NULL, NULL, false, start, end,
                     out, err);
}

void bq_words_clear(bq_words *w) {
    if (!w) return;
    w->n = 0;
    w->buf_len = 0;
}

void bq_words_free(bq_words *w) {
    if (!w) return;
    free(w->buf);
    free(w->words);
    *w = (bq_words){0};
}

void bq_pieces_clear(bq_pieces *p) {
    if (p) p->n = 0;
}

void bq_pieces_free(bq_pieces *p) {
    if (!p) return;
    free(p->pieces);
    *p = (bq_pieces){0};
}
