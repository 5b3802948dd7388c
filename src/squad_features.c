/* squad_features.c - SQuAD windows as the original run_squad.py convert_examples_to_features builds
 * them (see /work/shared/notes/squad-pipeline.md): context split into words on whitespace, each word
 * tokenized on its own, windows advancing by doc_stride, max-context flags per piece. */
#include "squad_features.h"

#include <stdlib.h>
#include <string.h>

/* Largest max_seq_length accepted: keeps every size computation far from overflow. */
#define MAX_SEQ_LIMIT (1 << 20)

/* run_squad's is_whitespace: the only separators of context words. */
static bool is_context_space(uint32_t cp) {
    return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' || cp == 0x202F;
}

void bq_features_free(bq_features *f) {
    if (!f) return;
    for (int w = 0; f->windows && w < f->n_windows; w++) {
        bq_window *win = &f->windows[w];
        free(win->input_ids);
        free(win->input_mask);
        free(win->segment_ids);
        free(win->token_to_word);
        free(win->span_start);
        free(win->span_end);
        free(win->max_context);
    }
    free(f->windows);
    free(f->context);
    free(f->word_start);
    free(f->word_end);
    memset(f, 0, sizeof *f);
}

/* Split the context into words (byte spans), validating UTF-8 on the way. */
static bq_status split_words(bq_features *f, bq_err *err) {
    size_t start_cap = 0, end_cap = 0, pos = 0;
    bool in_word = false;
    while (pos < f->context_len) {
        size_t at = pos;
        uint32_t cp;
        if (!bq_utf8_next(f->context, f->context_len, &pos, &cp))
            return bq_fail(err, BQ_ERR_UTF8, "context: invalid UTF-8 at byte %zu", at);
        /* answers are NUL-terminated copies of the context: a NUL inside one would cut it short
         * (the JSON readers refuse "\u0000" for the same reason) */
        if (cp == 0)
            return bq_fail(err, BQ_ERR_INVALID_ARG, "context: a NUL character at byte %zu, which would "
                           "cut an answer short", at);
        if (is_context_space(cp)) {
            in_word = false;
            continue;
        }
        if (!in_word) {
            size_t need = (size_t)f->n_words + 1;
            if (!bq_grow((void **)&f->word_start, &start_cap, need, sizeof(uint32_t)) ||
                !bq_grow((void **)&f->word_end, &end_cap, need, sizeof(uint32_t)))
                return bq_fail(err, BQ_ERR_NOMEM, "context: out of memory for %zu words", need);
            f->word_start[f->n_words] = (uint32_t)at;
            f->n_words++;
            in_word = true;
        }
        f->word_end[f->n_words - 1] = (uint32_t)pos;
    }
    return BQ_OK;
}

static bq_status check_options(const bq_squad_options *opt, bq_err *err) {
    if (opt->max_seq_length < 4 || opt->max_seq_length > MAX_SEQ_LIMIT)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "max_seq_length %d out of range [4, %d]",
                       opt->max_seq_length, MAX_SEQ_LIMIT);
    if (opt->max_query_length < 1)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "max_query_length %d must be at least 1",
                       opt->max_query_length);
    if (opt->doc_stride < 1)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "doc_stride %d must be at least 1",
                       opt->doc_stride);
    return BQ_OK;
}

/* min(left, right) + 0.01 * window length, in double as Python computes it. */
static double context_score(const bq_window *w, int piece) {
    int left = piece - w->doc_start, right = w->doc_start + w->doc_len - 1 - piece;
    return (double)(left < right ? left : right) + 0.01 * (double)w->doc_len;
}

static bq_status alloc_window(bq_window *w, int seq, bq_err *err) {
    size_t n = (size_t)seq;
    w->input_ids = calloc(n, sizeof(int32_t));
    w->input_mask = calloc(n, sizeof(int32_t));
    w->segment_ids = calloc(n, sizeof(int32_t));
    w->token_to_word = malloc(n * sizeof(int32_t));
    w->span_start = malloc(n * sizeof(int32_t));
    w->span_end = malloc(n * sizeof(int32_t));
    w->max_context = calloc(n, 1);
    if (!w->input_ids || !w->input_mask || !w->segment_ids || !w->token_to_word ||
        !w->span_start || !w->span_end || !w->max_context)
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory for a window of %d tokens", seq);
    for (size_t i = 0; i < n; i++) w->token_to_word[i] = w->span_start[i] = w->span_end[i] = -1;
    return BQ_OK;
}

bq_status bq_features_build(const bq_vocab *vocab, const bq_squad_options *opt,
                            const char *question, size_t question_len, const char *context,
                            size_t context_len, bq_features *out, bq_err *err) {
    if (!out) return bq_fail(err, BQ_ERR_INVALID_ARG, "features: NULL output");
    memset(out, 0, sizeof *out);
    if (!vocab || !opt || (!question && question_len) || (!context && context_len))
        return bq_fail(err, BQ_ERR_INVALID_ARG, "features: NULL vocab, options or text");
    if (context_len > (size_t)INT32_MAX)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "features: context of %zu bytes is too long",
                       context_len);
    bq_status st = check_options(opt, err);
    if (st != BQ_OK) return st;
    const bq_special_ids *sp = bq_vocab_special(vocab);
    if (sp->cls < 0 || sp->sep < 0 || sp->pad < 0)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "features: vocabulary lacks [CLS], [SEP] or [PAD]");

    bq_features *f = out;
    bq_pieces question_pieces = {0}, doc_pieces = {0};
    int32_t *piece_word = NULL; /* [doc_pieces.n] word index of each context piece */
    size_t piece_word_cap = 0;

    f->max_seq_length = opt->max_seq_length;
    f->context_len = context_len;
    f->context = bq_strndup(context ? context : "", context_len);
    if (!f->context) {
        st = bq_fail(err, BQ_ERR_NOMEM, "features: out of memory copying the context");
        goto done;
    }
    if ((st = split_words(f, err)) != BQ_OK) goto done;

    if ((st = bq_tokenize(vocab, question ? question : "", question_len, &question_pieces, err)) !=
        BQ_OK) {
        bq_err_prefix(err, "question");
        goto done;
    }
    int n_q = question_pieces.n < (size_t)opt->max_query_length ? (int)question_pieces.n
                                                                 : opt->max_query_length;
    f->n_question_pieces = n_q;
    int room = opt->max_seq_length - n_q - 3; /* document pieces per window */
    if (room < 1) {
        st = bq_fail(err, BQ_ERR_INVALID_ARG,
                     "max_seq_length %d leaves no room for the context after %d question pieces "
                     "and 3 special tokens",
                     opt->max_seq_length, n_q);
        goto done;
    }

    for (int w = 0; w < f->n_words; w++) {
        size_t before = doc_pieces.n;
        uint32_t ws = f->word_start[w], we = f->word_end[w];
        if ((st = bq_tokenize(vocab, f->context + ws, we - ws, &doc_pieces, err)) != BQ_OK) {
            bq_err_prefix(err, "context word %d at byte %u", w, ws);
            goto done;
        }
        if (!bq_grow((void **)&piece_word, &piece_word_cap, doc_pieces.n, sizeof(int32_t))) {
            st = bq_fail(err, BQ_ERR_NOMEM, "features: out of memory for context pieces");
            goto done;
        }
        for (size_t p = before; p < doc_pieces.n; p++) {
            doc_pieces.pieces[p].start += ws;
            doc_pieces.pieces[p].end += ws;
            piece_word[p] = w;
        }
    }
    if (doc_pieces.n == 0) {
        st = bq_fail(err, BQ_ERR_INVALID_ARG, "features: the context has no tokens");
        goto done;
    }
    if (doc_pieces.n > (size_t)INT32_MAX / 2) {
        st = bq_fail(err, BQ_ERR_INVALID_ARG, "features: context of %zu pieces is too long",
                     doc_pieces.n);
        goto done;
    }
    int n_doc = (int)doc_pieces.n;

    /* Windows: each takes min(remaining, room) pieces; the next starts min(length, stride) later. */
    size_t win_cap = 0;
    for (int start = 0; start < n_doc;) {
        int len = n_doc - start < room ? n_doc - start : room;
        if (!bq_grow((void **)&f->windows, &win_cap, (size_t)f->n_windows + 1, sizeof(bq_window))) {
            st = bq_fail(err, BQ_ERR_NOMEM, "features: out of memory for windows");
            goto done;
        }
        bq_window *w = &f->windows[f->n_windows++];
        memset(w, 0, sizeof *w);
        w->doc_start = start;
        w->doc_len = len;
        if (start + len == n_doc) break;
        start += len < opt->doc_stride ? len : opt->doc_stride;
    }

    for (int wi = 0; wi < f->n_windows; wi++) {
        bq_window *w = &f->windows[wi];
        if ((st = alloc_window(w, opt->max_seq_length, err)) != BQ_OK) goto done;
        int t = 0;
        w->input_ids[t++] = sp->cls;
        for (int q = 0; q < n_q; q++) w->input_ids[t++] = question_pieces.pieces[q].id;
        w->input_ids[t++] = sp->sep;
        w->doc_offset = t;
        for (int i = 0; i < w->doc_len; i++, t++) {
            int p = w->doc_start + i;
            w->input_ids[t] = doc_pieces.pieces[p].id;
            w->segment_ids[t] = 1;
            w->token_to_word[t] = piece_word[p];
            w->span_start[t] = (int32_t)doc_pieces.pieces[p].start;
            w->span_end[t] = (int32_t)doc_pieces.pieces[p].end;
            /* Max context: the window with the best score; the first one wins ties. Window
             * starts and ends both grow with the index (every window but the last is full), so
             * the windows holding p are a run around wi: scanning only that run keeps a small
             * --doc-stride linear in the context, not quadratic. */
            int lo = wi;
            while (lo > 0 && f->windows[lo - 1].doc_start + f->windows[lo - 1].doc_len > p) lo--;
            int best = -1;
            double best_score = 0.0;
            for (int oi = lo; oi < f->n_windows && f->windows[oi].doc_start <= p; oi++) {
                const bq_window *o = &f->windows[oi];
                if (p >= o->doc_start + o->doc_len) continue;
                double score = context_score(o, p);
                if (best < 0 || score > best_score) best = oi, best_score = score;
            }
            w->max_context[t] = best == wi;
        }
        w->input_ids[t] = sp->sep;
        w->segment_ids[t] = 1;
        t++;
        w->n_tokens = t;
        for (int i = 0; i < t; i++) w->input_mask[i] = 1;
        for (int i = t; i < opt->max_seq_length; i++) w->input_ids[i] = sp->pad;
    }

done:
    bq_pieces_free(&question_pieces);
    bq_pieces_free(&doc_pieces);
    free(piece_word);
    if (st != BQ_OK) bq_features_free(f);
    return st;
}
