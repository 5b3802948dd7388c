/* test_tokenizer.c - vocabulary and uncased BERT tokenizer against Hugging Face BertTokenizer.
 *
 * Goldens (tests/data/tokenizer/, written by tools/golden_tokens.py with transformers 4.57.1):
 *   squad_dev_ids.txt.gz  HF ids of every SQuAD v1.1 dev context and question (context, then its
 *                         questions, paragraph by paragraph), read with tests/data/squad/dev-v1.1.json.gz
 *   hard_strings.jsonl / hard_strings.ids   hand-picked hard inputs and their HF ids
 *   codepoint_sweep_ids.txt.gz   HF ids of every code point in three contexts (texts rebuilt here) */
#include "test_support.h"
#include "tokenizer.h"
#include "vocab.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bq_vocab *g_vocab;

static int setup_vocab(void **state) {
    (void)state;
    g_vocab = bq_test_load_vocab();
    return g_vocab ? 0 : -1;
}

static int teardown_vocab(void **state) {
    (void)state;
    bq_vocab_free(g_vocab);
    g_vocab = NULL;
    return 0;
}

/* ---- small helpers ---------------------------------------------------------------------------- */

static void append_utf8(char *out, size_t *n, uint32_t cp) {
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xC0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xE0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*n)++] = (char)(0xF0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* Decode one JSON string literal (the whole line) into bytes; handles \u0000, which cJSON cannot
 * (its strings are NUL-terminated). Returns heap bytes and their length. */
static char *json_string(const char *line, size_t line_len, size_t *out_len) {
    char *out = malloc(line_len + 1);
    assert_non_null(out);
    size_t n = 0, i = 0;
    assert_true(line_len >= 2 && line[0] == '"');
    for (i = 1; i < line_len && line[i] != '"'; i++) {
        if (line[i] != '\\') {
            out[n++] = line[i];
            continue;
        }
        char e = line[++i];
        switch (e) {
        case 'n': out[n++] = '\n'; break;
        case 't': out[n++] = '\t'; break;
        case 'r': out[n++] = '\r'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'u': {
            uint32_t cp = (uint32_t)strtoul((char[5]){line[i + 1], line[i + 2], line[i + 3], line[i + 4], 0}, NULL, 16);
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && line[i + 1] == '\\' && line[i + 2] == 'u') {
                uint32_t lo = (uint32_t)strtoul((char[5]){line[i + 3], line[i + 4], line[i + 5], line[i + 6], 0}, NULL, 16);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            append_utf8(out, &n, cp);
            break;
        }
        default: out[n++] = e; break; /* \" \\ \/ */
        }
    }
    assert_true(i < line_len);
    *out_len = n;
    return out;
}

/* Compare our ids for `text` with a golden line of space-separated ids; prints the first few
 * mismatches. Returns 1 on mismatch. */
static int compare_ids(const char *what, size_t index, const char *text, size_t len, const char *golden,
                       bq_pieces *pieces) {
    bq_err err;
    bq_err_clear(&err);
    bq_pieces_clear(pieces);
    bq_status st = bq_tokenize(g_vocab, text, len, pieces, &err);
    int bad = st != BQ_OK;
    const char *p = golden;
    size_t k = 0;
    for (; !bad; k++) {
        char *end;
        long id = strtol(p, &end, 10);
        if (end == p) break;
        p = end;
        if (k >= pieces->n || pieces->pieces[k].id != id) bad = 1;
    }
    if (!bad && k != pieces->n) bad = 1;
    static int reported;
    if (bad && reported++ < 20) {
        fprintf(stderr, "%s #%zu mismatch (status %s %s)\n  text: %.*s\n  want: %.300s\n  got: ", what, index,
                bq_status_string(st), err.message, (int)(len > 300 ? 300 : len), text, golden);
        for (size_t i = 0; i < pieces->n && i < 60; i++) fprintf(stderr, " %d", (int)pieces->pieces[i].id);
        fprintf(stderr, "\n");
    }
    return bad;
}

/* ---- vocabulary ------------------------------------------------------------------------------- */

static void test_vocab_lookup(void **state) {
    (void)state;
    assert_int_equal(bq_vocab_size(g_vocab), 30522);
    const bq_special_ids *sp = bq_vocab_special(g_vocab);
    /* ids of bert-base/large-uncased vocab.txt (line number - 1) */
    assert_int_equal(sp->pad, 0);
    assert_int_equal(sp->unk, 100);
    assert_int_equal(sp->cls, 101);
    assert_int_equal(sp->sep, 102);
    assert_int_equal(sp->mask, 103);
    assert_int_equal(bq_vocab_find(g_vocab, "the", 3), 1996);
    assert_int_equal(bq_vocab_find(g_vocab, "##s", 3), 2015);
    assert_int_equal(bq_vocab_find(g_vocab, "#", 1), 1001);
    assert_int_equal(bq_vocab_find(g_vocab, "###", 3), 29614);
    assert_int_equal(bq_vocab_find(g_vocab, "thex", 3), 1996); /* length, not NUL, ends the key */
    assert_int_equal(bq_vocab_find(g_vocab, "qqqzzz", 6), -1);
    assert_int_equal(bq_vocab_find(g_vocab, "", 0), -1);
    assert_string_equal(bq_vocab_token(g_vocab, 1996), "the");
    assert_string_equal(bq_vocab_token(g_vocab, 2015), "##s");
    assert_null(bq_vocab_token(g_vocab, 30522));
    assert_null(bq_vocab_token(g_vocab, -1));
    /* every token finds itself */
    for (int32_t id = 0; id < bq_vocab_size(g_vocab); id++) {
        const char *t = bq_vocab_token(g_vocab, id);
        assert_int_equal(bq_vocab_find(g_vocab, t, strlen(t)), id);
    }
    assert_int_equal(bq_vocab_size(NULL), 0);
    bq_vocab_free(NULL);
}

static bq_status load_text(const char *dir, const char *name, const char *content, size_t len, bq_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(content, 1, len, f);
    fclose(f);
    bq_vocab *v = (bq_vocab *)0x1;
    bq_status st = bq_vocab_load(path, &v, err);
    if (st == BQ_OK) bq_vocab_free(v);
    else assert_null(v);
    return st;
}

static void expect_load_error(const char *dir, const char *name, const char *content, size_t len, bq_status want,
                              const char *needle) {
    bq_err err;
    bq_err_clear(&err);
    bq_status st = load_text(dir, name, content, len, &err);
    if (st != want || !strstr(err.message, needle) || !strstr(err.message, name))
        fprintf(stderr, "%s: status %d, message '%s' (want '%s')\n", name, st, err.message, needle);
    assert_int_equal(st, want);
    assert_non_null(strstr(err.message, needle));
    assert_non_null(strstr(err.message, name)); /* the path */
}

static void test_vocab_errors(void **state) {
    (void)state;
    char *dir = bq_test_tmpdir("vocab");
    assert_non_null(dir);
    const char ok[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##lo\n";
    bq_err err;
    bq_err_clear(&err);
    assert_int_equal(load_text(dir, "ok.txt", ok, sizeof ok - 1, &err), BQ_OK);
    const char crlf[] = "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]"; /* CRLF and no final newline are fine */
    assert_int_equal(load_text(dir, "crlf.txt", crlf, sizeof crlf - 1, &err), BQ_OK);

    expect_load_error(dir, "empty.txt", "", 0, BQ_ERR_FORMAT, "line 1");
    const char bad_utf8[] = "[PAD]\n[UNK]\nab\xC3(\n[CLS]\n[SEP]\n";
    expect_load_error(dir, "badutf8.txt", bad_utf8, sizeof bad_utf8 - 1, BQ_ERR_FORMAT, "line 3");
    const char overlong[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n\xC0\xAF\n";
    expect_load_error(dir, "overlong.txt", overlong, sizeof overlong - 1, BQ_ERR_FORMAT, "line 5");
    const char dup[] = "[PAD]\n[UNK]\nfoo\n[CLS]\nfoo\n[SEP]\n";
    expect_load_error(dir, "dup.txt", dup, sizeof dup - 1, BQ_ERR_FORMAT, "line 5");
    const char blank[] = "[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n";
    expect_load_error(dir, "blank.txt", blank, sizeof blank - 1, BQ_ERR_FORMAT, "line 3");
    const char nul[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\0b\n";
    expect_load_error(dir, "nul.txt", nul, sizeof nul - 1, BQ_ERR_FORMAT, "line 5");
    const char no_unk[] = "[PAD]\n[CLS]\n[SEP]\n";
    expect_load_error(dir, "nounk.txt", no_unk, sizeof no_unk - 1, BQ_ERR_FORMAT, "[UNK]");
    const char no_sep[] = "[PAD]\n[UNK]\n[CLS]\n";
    expect_load_error(dir, "nosep.txt", no_sep, sizeof no_sep - 1, BQ_ERR_FORMAT, "[SEP]");

    bq_vocab *v = (bq_vocab *)0x1;
    assert_int_equal(bq_vocab_load("/nonexistent/dir/vocab.txt", &v, &err), BQ_ERR_IO);
    assert_null(v);
    assert_non_null(strstr(err.message, "/nonexistent/dir/vocab.txt"));
    free(dir);
}

/* ---- parity with Hugging Face ------------------------------------------------------------------ */

/* Parity over a JSON-lines file of inputs and its file of HF id lines. */
static void check_jsonl_parity(const char *inputs_path, const char *ids_path, size_t *count, size_t *mismatches) {
    char *inputs, *goldens;
    size_t in_len, gold_len;
    assert_int_equal(bq_read_file(inputs_path, &inputs, &in_len, NULL), BQ_OK);
    assert_int_equal(bq_read_file(ids_path, &goldens, &gold_len, NULL), BQ_OK);
    bq_pieces pieces = {0};
    *count = *mismatches = 0;
    char *in = inputs, *gold = goldens;
    while (*in) {
        char *in_end = strchr(in, '\n'), *gold_end = strchr(gold, '\n');
        assert_non_null(in_end);
        assert_non_null(gold_end); /* one golden line per input line */
        *gold_end = '\0';
        size_t text_len;
        char *text = json_string(in, (size_t)(in_end - in), &text_len);
        *mismatches += (size_t)compare_ids(inputs_path, *count + 1, text, text_len, gold, &pieces);
        free(text);
        ++*count;
        in = in_end + 1;
        gold = gold_end + 1;
    }
    assert_true(*gold == '\0');
    bq_pieces_free(&pieces);
    free(inputs);
    free(goldens);
}

static void test_hard_strings_parity(void **state) {
    (void)state;
    size_t count, mismatches;
    char inputs[4096];
    snprintf(inputs, sizeof inputs, "%s", bq_test_src_path("tests/data/tokenizer/hard_strings.jsonl"));
    check_jsonl_parity(inputs, bq_test_src_path("tests/data/tokenizer/hard_strings.ids"), &count, &mismatches);
    printf("hard strings: %zu checked, %zu mismatches\n", count, mismatches);
    assert_true(count >= 60);
    assert_int_equal(mismatches, 0);
}

/* Every code point U+0001..U+10FFFF (no surrogates), 16 per chunk, in three contexts: built here
 * exactly as sweep_texts() in tools/golden_tokens.py builds them. */
static size_t sweep_text(int kind, const uint32_t *chunk, size_t n, char *out) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) out[len++] = ' ';
        if (kind == 1) {
            memcpy(out + len, "Ab", 2);
            len += 2;
        } else if (kind == 2) {
            append_utf8(out, &len, 0xC9); /* É */
        }
        append_utf8(out, &len, chunk[i]);
        if (kind == 1) {
            memcpy(out + len, "cD", 2);
            len += 2;
        } else if (kind == 2) {
            append_utf8(out, &len, 0x301); /* combining acute */
            append_utf8(out, &len, chunk[i]);
            out[len++] = '.';
        }
    }
    return len;
}

static void test_codepoint_sweep(void **state) {
    (void)state;
    size_t gold_len;
    char *gold = bq_test_gunzip("tests/data/tokenizer/codepoint_sweep_ids.txt.gz", &gold_len);
    if (!gold) fail_msg("cannot decompress the code point sweep goldens");
    char *line = gold;
    bq_pieces pieces = {0};
    uint32_t chunk[16];
    char text[16 * 16];
    size_t n = 0, lines = 0, mismatches = 0;
    for (uint32_t cp = 1; cp <= 0x110000; cp++) {
        if (cp < 0x110000) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            chunk[n++] = cp;
            if (n < 16) continue;
        }
        if (n == 0) break;
        for (int kind = 0; kind < 3; kind++) {
            size_t len = sweep_text(kind, chunk, n, text);
            char *end = strchr(line, '\n');
            assert_non_null(end);
            *end = '\0';
            mismatches += (size_t)compare_ids("code point sweep", lines + 1, text, len, line, &pieces);
            line = end + 1;
            lines++;
        }
        n = 0;
    }
    printf("code point sweep: %zu texts, %zu mismatches\n", lines, mismatches);
    assert_true(*line == '\0');
    assert_int_equal(lines, 208512); /* 1,112,062 code points / 16, three texts each */
    assert_int_equal(mismatches, 0);
    bq_pieces_free(&pieces);
    free(gold);
}

static cJSON *load_dev_set(void) {
    size_t len;
    char *json = bq_test_gunzip("tests/data/squad/dev-v1.1.json.gz", &len);
    if (!json) fail_msg("cannot decompress the dev set");
    cJSON *root = cJSON_ParseWithLength(json, len);
    free(json);
    assert_non_null(root);
    return root;
}

/* Calls fn for every context and question of the dev set, in golden order. */
typedef void (*text_fn)(void *ctx, int is_question, const char *text, size_t len);

static void for_each_dev_text(cJSON *root, text_fn fn, void *ctx) {
    cJSON *article, *para, *qa;
    cJSON_ArrayForEach(article, cJSON_GetObjectItemCaseSensitive(root, "data")) {
        cJSON_ArrayForEach(para, cJSON_GetObjectItemCaseSensitive(article, "paragraphs")) {
            const char *context = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(para, "context"));
            assert_non_null(context);
            fn(ctx, 0, context, strlen(context));
            cJSON_ArrayForEach(qa, cJSON_GetObjectItemCaseSensitive(para, "qas")) {
                const char *q = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(qa, "question"));
                assert_non_null(q);
                fn(ctx, 1, q, strlen(q));
            }
        }
    }
}

typedef struct {
    char *gold;
    size_t contexts, questions, mismatches;
    bq_pieces pieces;
} dev_parity;

static void check_dev_text(void *ctx, int is_question, const char *text, size_t len) {
    dev_parity *d = ctx;
    char *end = strchr(d->gold, '\n');
    assert_non_null(end); /* golden has a line for every text */
    *end = '\0';
    size_t index = d->contexts + d->questions + 1;
    d->mismatches += (size_t)compare_ids(is_question ? "dev question" : "dev context", index, text, len, d->gold,
                                         &d->pieces);
    d->gold = end + 1;
    if (is_question) d->questions++;
    else d->contexts++;
}

static void test_squad_dev_parity(void **state) {
    (void)state;
    cJSON *root = load_dev_set();
    size_t gold_len;
    char *gold = bq_test_gunzip("tests/data/tokenizer/squad_dev_ids.txt.gz", &gold_len);
    if (!gold) fail_msg("cannot decompress the dev-set goldens");
    dev_parity d = {.gold = gold};
    for_each_dev_text(root, check_dev_text, &d);
    printf("SQuAD dev: %zu contexts, %zu questions, %zu mismatches\n", d.contexts, d.questions, d.mismatches);
    assert_int_equal(d.contexts, 2067);
    assert_int_equal(d.questions, 10570);
    assert_true(*d.gold == '\0');
    assert_int_equal(d.mismatches, 0);
    bq_pieces_free(&d.pieces);
    free(gold);
    cJSON_Delete(root);
}

/* ---- byte spans ------------------------------------------------------------------------------- */

typedef struct {
    bq_pieces pieces;
    bq_words words;
    char *norm;
    size_t norm_cap, checked;
} span_check;

/* Every piece's span lies in the text, spans never go backwards, and the basic-normalized text of
 * the span contains the piece text without "##" (a special token's span is its own spelling). */
static void check_spans(void *ctx, int is_question, const char *text, size_t len) {
    (void)is_question;
    span_check *c = ctx;
    bq_err err;
    bq_pieces_clear(&c->pieces);
    assert_int_equal(bq_tokenize(g_vocab, text, len, &c->pieces, &err), BQ_OK);
    uint32_t prev_start = 0;
    for (size_t i = 0; i < c->pieces.n; i++) {
        const bq_piece *p = &c->pieces.pieces[i];
        assert_true(p->start < p->end && p->end <= len);
        assert_true(p->start >= prev_start);
        prev_start = p->start;
        if (p->id == bq_vocab_special(g_vocab)->unk) continue;
        const char *tok = bq_vocab_token(g_vocab, p->id);
        if (tok[0] == '#' && tok[1] == '#' && tok[2]) tok += 2;
        bq_words_clear(&c->words);
        assert_int_equal(bq_basic_tokenize(text + p->start, p->end - p->start, &c->words, &err), BQ_OK);
        if (c->norm_cap < c->words.buf_len + 1) {
            c->norm_cap = c->words.buf_len + 1;
            c->norm = realloc(c->norm, c->norm_cap);
        }
        memcpy(c->norm, c->words.buf, c->words.buf_len);
        c->norm[c->words.buf_len] = '\0';
        if (!strstr(c->norm, tok))
            fprintf(stderr, "span [%u,%u) '%.*s' -> '%s' lacks piece '%s'\n", p->start, p->end,
                    (int)(p->end - p->start), text + p->start, c->norm, tok);
        assert_non_null(strstr(c->norm, tok));
        c->checked++;
    }
}

static void test_spans_dev_set(void **state) {
    (void)state;
    cJSON *root = load_dev_set();
    span_check c = {0};
    for_each_dev_text(root, check_spans, &c);
    printf("spans: %zu pieces checked\n", c.checked);
    assert_true(c.checked > 400000); /* ~160 pieces x 2,067 contexts + questions */
    bq_pieces_free(&c.pieces);
    bq_words_free(&c.words);
    free(c.norm);
    cJSON_Delete(root);
}

typedef struct {
    const char *text;
    size_t n;
    struct {
        const char *token;
        uint32_t start, end;
    } want[8];
} span_case;

static void test_spans_exact(void **state) {
    (void)state;
    /* Expected spans worked out by hand from the bytes of the original text. */
    static const span_case cases[] = {
        {"Hello, World!", 4, {{"hello", 0, 5}, {",", 5, 6}, {"world", 7, 12}, {"!", 12, 13}}},
        /* ï and é are 2 bytes each */
        {"na\xC3\xAFve caf\xC3\xA9", 2, {{"naive", 0, 6}, {"cafe", 7, 12}}},
        /* decomposed e + U+0301: the mark is dropped but stays inside the word's span */
        {"cafe\xCC\x81!", 2, {{"cafe", 0, 6}, {"!", 6, 7}}},
        {"Stra\xC3\x9F" "e Ba\xCC\x81n", 3, {{"st", 0, 2}, {"##raße", 2, 7}, {"ban", 8, 13}}},
        /* İ (2 bytes) lower-cases to i + combining dot, which is dropped */
        {"\xC4\xB0stanbul", 1, {{"istanbul", 0, 9}}},
        /* control and zero-width characters are dropped without splitting the word */
        {"ab\x01\xE2\x80\x8B" "cd", 2, {{"abc", 0, 7}, {"##d", 7, 8}}},
        /* CJK ideographs are words of their own; U+3000 is a space */
        {"\xE4\xB8\xAD\xE3\x80\x80x\xE6\x96\x87", 3, {{"\xE4\xB8\xAD", 0, 3}, {"x", 6, 7}, {"\xE6\x96\x87", 7, 10}}},
        /* literal special tokens keep their spelling as span */
        {"a [SEP]b", 3, {{"a", 0, 1}, {"[SEP]", 2, 7}, {"b", 7, 8}}},
        {"  ", 0, {{0}}},
    };
    bq_pieces pieces = {0};
    bq_err err;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bq_pieces_clear(&pieces);
        assert_int_equal(bq_tokenize(g_vocab, cases[c].text, strlen(cases[c].text), &pieces, &err), BQ_OK);
        assert_int_equal(pieces.n, cases[c].n);
        for (size_t i = 0; i < cases[c].n; i++) {
            assert_string_equal(bq_vocab_token(g_vocab, pieces.pieces[i].id), cases[c].want[i].token);
            assert_int_equal(pieces.pieces[i].start, cases[c].want[i].start);
            assert_int_equal(pieces.pieces[i].end, cases[c].want[i].end);
        }
    }
    /* a word of 101 characters is one [UNK] spanning the whole word */
    char longword[120];
    memset(longword, 'a', 101);
    memcpy(longword + 101, " b", 3);
    bq_pieces_clear(&pieces);
    assert_int_equal(bq_tokenize(g_vocab, longword, strlen(longword), &pieces, &err), BQ_OK);
    assert_int_equal(pieces.n, 2);
    assert_int_equal(pieces.pieces[0].id, bq_vocab_special(g_vocab)->unk);
    assert_int_equal(pieces.pieces[0].start, 0);
    assert_int_equal(pieces.pieces[0].end, 101);
    assert_int_equal(pieces.pieces[1].start, 102);
    bq_pieces_free(&pieces);
}

/* ---- basic tokenizer and WordPiece on their own ------------------------------------------------ */

static void test_basic_tokenize(void **state) {
    (void)state;
    /* HF BasicTokenizer(do_lower_case=True).tokenize gives:
     * "Héllo [SEP] x\u00a0Y." -> ['hello', '[', 'sep', ']', 'x', 'y', '.'] (no special-token handling) */
    const char text[] = "H\xC3\xA9llo [SEP] x\xC2\xA0Y.";
    static const char *const want[] = {"hello", "[", "sep", "]", "x", "y", "."};
    static const uint32_t spans[][2] = {{0, 6}, {7, 8}, {8, 11}, {11, 12}, {13, 14}, {16, 17}, {17, 18}};
    bq_words w = {0};
    bq_err err;
    assert_int_equal(bq_basic_tokenize(text, sizeof text - 1, &w, &err), BQ_OK);
    assert_int_equal(w.n, 7);
    for (size_t i = 0; i < w.n; i++) {
        assert_int_equal(w.words[i].len, strlen(want[i]));
        assert_memory_equal(w.buf + w.words[i].off, want[i], strlen(want[i]));
        assert_int_equal(w.words[i].start, spans[i][0]);
        assert_int_equal(w.words[i].end, spans[i][1]);
    }
    /* appends; clear keeps buffers */
    assert_int_equal(bq_basic_tokenize("z", 1, &w, &err), BQ_OK);
    assert_int_equal(w.n, 8);
    bq_words_clear(&w);
    assert_int_equal(w.n, 0);
    assert_non_null(w.buf);
    bq_words_free(&w);
    bq_words_free(NULL);
}

static void test_wordpiece(void **state) {
    (void)state;
    bq_pieces p = {0};
    bq_err err;
    /* HF WordpieceTokenizer with this vocab: "unaffable" -> una ##ffa ##ble */
    assert_int_equal(bq_wordpiece(g_vocab, "unaffable", 9, 10, 19, &p, &err), BQ_OK);
    assert_int_equal(p.n, 3);
    assert_string_equal(bq_vocab_token(g_vocab, p.pieces[0].id), "una");
    assert_string_equal(bq_vocab_token(g_vocab, p.pieces[1].id), "##ffa");
    assert_string_equal(bq_vocab_token(g_vocab, p.pieces[2].id), "##ble");
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(p.pieces[i].start, 10);
        assert_int_equal(p.pieces[i].end, 19);
    }
    char word[101];
    memset(word, 'a', sizeof word);
    bq_pieces_clear(&p);
    assert_int_equal(bq_wordpiece(g_vocab, word, 100, 0, 100, &p, &err), BQ_OK); /* exactly 100: pieces */
    assert_int_equal(p.n, 50); /* HF: 'aa' then 49 x '##aa' */
    bq_pieces_clear(&p);
    assert_int_equal(bq_wordpiece(g_vocab, word, 101, 0, 101, &p, &err), BQ_OK); /* 101: [UNK] */
    assert_int_equal(p.n, 1);
    assert_int_equal(p.pieces[0].id, bq_vocab_special(g_vocab)->unk);
    bq_pieces_free(&p);
    bq_pieces_free(NULL);
}

/* ---- invalid UTF-8 ---------------------------------------------------------------------------- */

static void test_invalid_utf8(void **state) {
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        size_t offset;
    } cases[] = {
        {"ab\x80", 3, 2},                 /* lone continuation byte */
        {"abc \xC3", 5, 4},               /* truncated 2-byte sequence at the end */
        {"\xE2\x82", 2, 0},               /* truncated 3-byte sequence */
        {"x\xF0\x9F\x98", 4, 1},          /* truncated 4-byte sequence */
        {"\xE2(\xA1 ok", 6, 0},           /* bad continuation */
        {"\xC0\xAF", 2, 0},               /* overlong '/' */
        {"\xC1\xBF", 2, 0},               /* overlong */
        {"ok \xE0\x80\xAF", 6, 3},        /* overlong 3-byte */
        {"\xF0\x80\x80\xAF", 4, 0},       /* overlong 4-byte */
        {"a\xED\xA0\x80", 4, 1},          /* surrogate U+D800 */
        {"\xED\xBF\xBF", 3, 0},           /* surrogate U+DFFF */
        {"\xF4\x90\x80\x80", 4, 0},       /* U+110000 */
        {"\xF5\x80\x80\x80", 4, 0},       /* lead byte beyond U+10FFFF */
        {"\xFF", 1, 0},
        {"caf\xC3\xA9 \xFE", 7, 6},
    };
    bq_pieces pieces = {0};
    bq_words words = {0};
    bq_err err;
    assert_int_equal(bq_tokenize(g_vocab, "keep", 4, &pieces, &err), BQ_OK);
    assert_int_equal(bq_basic_tokenize("keep", 4, &words, &err), BQ_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* exact-size heap copy, no NUL: a read past the end would show under ASan */
        char *buf = malloc(cases[i].len);
        memcpy(buf, cases[i].bytes, cases[i].len);
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu", cases[i].offset);
        bq_err_clear(&err);
        assert_int_equal(bq_tokenize(g_vocab, buf, cases[i].len, &pieces, &err), BQ_ERR_UTF8);
        if (!strstr(err.message, want)) fprintf(stderr, "case %zu: %s\n", i, err.message);
        assert_non_null(strstr(err.message, want));
        assert_int_equal(pieces.n, 1); /* output left as it was */
        bq_err_clear(&err);
        assert_int_equal(bq_basic_tokenize(buf, cases[i].len, &words, &err), BQ_ERR_UTF8);
        assert_non_null(strstr(err.message, want));
        assert_int_equal(words.n, 1);
        assert_int_equal(words.buf_len, 4);
        free(buf);
    }
    /* the text need not be NUL-terminated: a valid prefix cut mid-character is an error */
    assert_int_equal(bq_tokenize(g_vocab, "caf\xC3\xA9", 4, &pieces, &err), BQ_ERR_UTF8);
    assert_int_equal(bq_tokenize(g_vocab, "caf\xC3\xA9", 3, &pieces, &err), BQ_OK);
    assert_int_equal(bq_tokenize(g_vocab, NULL, 0, &pieces, &err), BQ_OK);
    assert_int_equal(bq_tokenize(NULL, "x", 1, &pieces, &err), BQ_ERR_INVALID_ARG);
    bq_pieces_free(&pieces);
    bq_words_free(&words);
}

/* bq_basic_final_sigmas against Hugging Face's BasicTokenizer(do_lower_case=True).tokenize, whose
 * per-token str.lower() gave (transformers 5.24): "ΑΣ-Β" -> ας - β, "ΑΣΑ x" -> ασα x,
 * "Α\x01Σ Σ" -> ας σ (the control character dropped first), "ΑΣ東" -> ας 東, "Α東Σ" -> α 東 σ,
 * "ΑΣ\u2028Β" -> ας β, "Α\u00adΣ" -> ας, "ΑΣ\u0301" -> ας. */
static void test_final_sigmas(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"\xce\x91\xce\xa3-\xce\x92", "\xce\x91\xcf\x82-\xce\x92"},
        {"\xce\x91\xce\xa3\xce\x91 x", "\xce\x91\xce\xa3\xce\x91 x"},
        {"\xce\x91\x01\xce\xa3 \xce\xa3", "\xce\x91\x01\xcf\x82 \xce\xa3"},
        {"\xce\x91\xce\xa3\xe6\x9d\xb1", "\xce\x91\xcf\x82\xe6\x9d\xb1"},
        {"\xce\x91\xe6\x9d\xb1\xce\xa3", "\xce\x91\xe6\x9d\xb1\xce\xa3"},
        {"\xce\x91\xce\xa3\xe2\x80\xa8\xce\x92", "\xce\x91\xcf\x82\xe2\x80\xa8\xce\x92"},
        {"\xce\x91\xc2\xad\xce\xa3", "\xce\x91\xc2\xad\xcf\x82"},
        {"\xce\x91\xce\xa3\xcc\x81", "\xce\x91\xcf\x82\xcc\x81"},
        {"no sigma", "no sigma"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[64];
        bq_err err = {0};
        snprintf(text, sizeof text, "%s", cases[i].in);
        assert_int_equal(bq_basic_final_sigmas(text, strlen(text), &err), BQ_OK);
        assert_string_equal(text, cases[i].out);
    }
    char bad[] = "\xce\xa3\xff";
    bq_err err = {0};
    assert_int_equal(bq_basic_final_sigmas(bad, 3, &err), BQ_ERR_UTF8);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_lookup),        cmocka_unit_test(test_vocab_errors),
        cmocka_unit_test(test_basic_tokenize),      cmocka_unit_test(test_wordpiece),
        cmocka_unit_test(test_invalid_utf8),        cmocka_unit_test(test_spans_exact),
        cmocka_unit_test(test_hard_strings_parity), cmocka_unit_test(test_squad_dev_parity),
        cmocka_unit_test(test_spans_dev_set),       cmocka_unit_test(test_codepoint_sweep),
        cmocka_unit_test(test_final_sigmas),
    };
    return cmocka_run_group_tests(tests, setup_vocab, teardown_vocab);
}
