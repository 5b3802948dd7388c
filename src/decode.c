/* decode.c - answers from start/end logits, as the original run_squad.py write_predictions and
 * get_final_text do it (see /work/shared/notes/squad-pipeline.md).
 *
 * Ties: candidates are ordered as Python's sorted(..., reverse=True) orders them, which is stable:
 * equal start (end) logits keep position order (lower index first), and pairs with equal
 * start+end scores keep the order they were generated in (window, then start rank, then end rank).
 * Scores are summed in double, as Python does with the float32 logits. NaN logits rank lowest. */
#include "decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int window, start, end; /* token positions in the window */
    double score;           /* start + end logit */
    int order;              /* generation order, for a stable sort */
} candidate;

typedef struct {
    double logit; /* NaN mapped to -inf */
    int index;
} ranked;

static double rank_key(double x) { return isnan(x) ? -INFINITY : x; }

static int by_logit_desc(const void *a, const void *b) {
    const ranked *ra = a, *rb = b;
    if (ra->logit != rb->logit) return ra->logit > rb->logit ? -1 : 1;
    return (ra->index > rb->index) - (ra->index < rb->index);
}

static int by_score_desc(const void *a, const void *b) {
    const candidate *ca = a, *cb = b;
    if (ca->score != cb->score) return ca->score > cb->score ? -1 : 1;
    return (ca->order > cb->order) - (ca->order < cb->order);
}

/* Positions ordered by logit, largest first (stable: equal logits in index order).
 * scratch: [count]; idx receives the order. */
static void best_indexes(const float *logits, int count, ranked *scratch, int *idx) {
    for (int i = 0; i < count; i++) scratch[i] = (ranked){rank_key((double)logits[i]), i};
    qsort(scratch, (size_t)count, sizeof(ranked), by_logit_desc);
    for (int i = 0; i < count; i++) idx[i] = scratch[i].index;
}

/* Growable UTF-8 string. */
typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

static bool sb_put(strbuf *b, const char *s, size_t len) {
    if (!bq_grow((void **)&b->s, &b->cap, b->n + len + 1, 1)) return false;
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = '\0';
    return true;
}

/* Growable code-point array. */
typedef struct {
    uint32_t *cp;
    int32_t *byte; /* optional: context byte offset of each code point, -1 for inserted spaces */
    uint8_t *width;  /* optional: UTF-8 length of each code point in the context */
    size_t n, cap, byte_cap, width_cap;
} cpbuf;

static bool cp_put(cpbuf *b, uint32_t cp, int32_t byte, uint8_t width, bool with_bytes) {
    if (!bq_grow((void **)&b->cp, &b->cap, b->n + 1, sizeof(uint32_t))) return false;
    if (with_bytes && (!bq_grow((void **)&b->byte, &b->byte_cap, b->n + 1, sizeof(int32_t)) ||
                       !bq_grow((void **)&b->width, &b->width_cap, b->n + 1, 1)))
        return false;
    b->cp[b->n] = cp;
    if (with_bytes) b->byte[b->n] = byte, b->width[b->n] = width;
    b->n++;
    return true;
}

/* Decode s into code points (s is known-valid UTF-8). */
static bool cp_from_utf8(cpbuf *b, const char *s, size_t len) {
    size_t pos = 0;
    uint32_t cp;
    while (pos < len) {
        if (!bq_utf8_next(s, len, &pos, &cp)) return false;
        if (!cp_put(b, cp, -1, 0, false)) return false;
    }
    return true;
}

static void cp_free(cpbuf *b) {
    free(b->cp);
    free(b->byte);
    free(b->width);
}

/* Scratch shared by all candidates of one decode. */
typedef struct {
    strbuf pred;      /* piece text, '##' glued */
    strbuf orig;      /* covered original words joined by single spaces */
    strbuf lowered;   /* orig with word-final capital sigmas final, as BasicTokenizer lowers them */
    cpbuf orig_cp;    /* orig as code points, with context byte offsets */
    cpbuf tok_cp;     /* basic-tokenized orig joined by spaces */
    cpbuf pred_cp;
    bq_words words;
} final_text_scratch;

/* get_final_text for the window tokens [s, e]: the answer's byte span [*byte_start, *byte_end) in the
 * context, and in *orig_a and *orig_b the kept code points of the single-space-joined original text
 * (the original's result, used to drop duplicates). */
static bq_status final_text(const bq_vocab *vocab, const bq_features *f, const bq_window *w,
                            int s, int e, final_text_scratch *x, int32_t *byte_start,
                            int32_t *byte_end, size_t *orig_a, size_t *orig_b, bq_err *err) {
    /* Piece text: " ".join(tokens), drop " ##" then "##", collapse whitespace. */
    x->pred.n = 0;
    strbuf joined = {0};
    bool ok = true;
    for (int t = s; t <= e && ok; t++) {
        const char *tok = bq_vocab_token(vocab, w->input_ids[t]);
        if (!tok) {
            free(joined.s);
            return bq_fail(err, BQ_ERR_INVALID_ARG, "decode: token id %d at window position %d "
                           "is not in the vocabulary", w->input_ids[t], t);
        }
        if (t > s) ok = sb_put(&joined, " ", 1);
        ok = ok && sb_put(&joined, tok, strlen(tok));
    }
    if (ok && !joined.s) ok = sb_put(&joined, "", 0);
    /* Removing " ##" then "##" is the same as removing every "##" along with a space before it. */
    size_t n = 0;
    for (size_t i = 0; ok && i < joined.n;) {
        if (joined.n - i >= 3 && memcmp(joined.s + i, " ##", 3) == 0) {
            i += 3;
        } else if (joined.n - i >= 2 && memcmp(joined.s + i, "##", 2) == 0) {
            i += 2;
        } else {
            joined.s[n++] = joined.s[i++];
        }
    }
    if (ok) joined.n = n;
    /* Whitespace collapse (vocabulary tokens hold no whitespace but the joining spaces). */
    for (size_t i = 0; ok && i < joined.n;) {
        while (i < joined.n && joined.s[i] == ' ') i++;
        size_t j = i;
        while (j < joined.n && joined.s[j] != ' ') j++;
        if (j > i) {
            if (x->pred.n) ok = sb_put(&x->pred, " ", 1);
            ok = ok && sb_put(&x->pred, joined.s + i, j - i);
        }
        i = j;
    }
    free(joined.s);

    /* Original words covered by the span, joined by single spaces. */
    int w0 = w->token_to_word[s], w1 = w->token_to_word[e];
    x->orig.n = 0;
    x->orig_cp.n = 0;
    for (int wi = w0; wi <= w1 && ok; wi++) {
        if (wi > w0) ok = sb_put(&x->orig, " ", 1) && cp_put(&x->orig_cp, ' ', -1, 0, true);
        size_t pos = f->word_start[wi], end = f->word_end[wi];
        ok = ok && sb_put(&x->orig, f->context + pos, end - pos);
        while (ok && pos < end) {
            size_t at = pos;
            uint32_t cp;
            if (!bq_utf8_next(f->context, end, &pos, &cp))
                return bq_fail(err, BQ_ERR_UTF8, "decode: invalid UTF-8 in context at byte %zu", at);
            ok = cp_put(&x->orig_cp, cp, (int32_t)at, (uint8_t)(pos - at), true);
        }
    }
    if (!ok) return bq_fail(err, BQ_ERR_NOMEM, "decode: out of memory building answer text");

    /* Fallback: the whole original words. */
    size_t a = 0, b = x->orig_cp.n - 1;
    bq_words_clear(&x->words);
    /* as BasicTokenizer lower-cases them: word by word, a word-final capital sigma to final sigma */
    x->lowered.n = 0;
    if (!sb_put(&x->lowered, x->orig.s, x->orig.n))
        return bq_fail(err, BQ_ERR_NOMEM, "decode: out of memory building answer text");
    bq_status st = bq_basic_final_sigmas(x->lowered.s, x->lowered.n, err);
    if (st == BQ_OK) st = bq_basic_tokenize(x->lowered.s, x->lowered.n, &x->words, err);
    if (st != BQ_OK) {
        bq_err_prefix(err, "decode: basic-tokenizing the answer's words");
        return st;
    }
    x->tok_cp.n = 0;
    x->pred_cp.n = 0;
    for (size_t i = 0; i < x->words.n && ok; i++) {
        if (i) ok = cp_put(&x->tok_cp, ' ', -1, 0, false);
        ok = ok && cp_from_utf8(&x->tok_cp, x->words.buf + x->words.words[i].off,
                                x->words.words[i].len);
    }
    ok = ok && cp_from_utf8(&x->pred_cp, x->pred.s ? x->pred.s : "", x->pred.n);
    if (!ok) return bq_fail(err, BQ_ERR_NOMEM, "decode: out of memory mapping answer text");

    /* tok_text.find(pred_text): first occurrence, in code points. */
    size_t tn = x->tok_cp.n, pn = x->pred_cp.n;
    long found = -1;
    for (size_t i = 0; pn <= tn && i + pn <= tn; i++) {
        if (pn == 0 || memcmp(x->tok_cp.cp + i, x->pred_cp.cp, pn * sizeof(uint32_t)) == 0) {
            found = (long)i;
            break;
        }
    }
    size_t orig_ns = 0, tok_ns = 0;
    for (size_t i = 0; i < x->orig_cp.n; i++) orig_ns += x->orig_cp.cp[i] != ' ';
    for (size_t i = 0; i < tn; i++) tok_ns += x->tok_cp.cp[i] != ' ';
    /* pn == 0 gives end = start - 1, which the original never finds in its map: fallback. */
    if (found >= 0 && pn > 0 && orig_ns == tok_ns) {
        size_t start = (size_t)found, end = start + pn - 1;
        if (x->tok_cp.cp[start] != ' ' && x->tok_cp.cp[end] != ' ') {
            /* Non-space index of start/end in tok_text, then the same non-space char in orig. */
            size_t ns_start = 0, ns_end = 0;
            for (size_t i = 0; i < end; i++) {
                if (x->tok_cp.cp[i] == ' ') continue;
                if (i < start) ns_start++;
                ns_end++;
            }
            size_t ns = 0, oa = SIZE_MAX, ob = SIZE_MAX;
            for (size_t i = 0; i < x->orig_cp.n; i++) {
                if (x->orig_cp.cp[i] == ' ') continue;
                if (ns == ns_start) oa = i;
                if (ns == ns_end) ob = i;
                ns++;
            }
            if (oa != SIZE_MAX && ob != SIZE_MAX && oa <= ob) a = oa, b = ob;
        }
    }
    *orig_a = a;
    *orig_b = b;
    *byte_start = x->orig_cp.byte[a];
    *byte_end = x->orig_cp.byte[b] + x->orig_cp.width[b];
    return BQ_OK;
}

void bq_answers_free(bq_answers *a) {
    if (!a) return;
    for (int i = 0; a->items && i < a->n; i++) free(a->items[i].text);
    free(a->items);
    a->items = NULL;
    a->n = 0;
}

/* Code points in context[0, byte). */
static int32_t char_offset(const bq_features *f, int32_t byte) {
    int32_t n = 0;
    for (int32_t i = 0; i < byte; i++) n += ((unsigned char)f->context[i] & 0xC0) != 0x80;
    return n;
}

/* exp(score - max), the limits taken where logits are infinite: a +inf best score takes all the
 * probability (shared among the answers that reach it, 0 for the rest); when every score is -inf
 * (NaN or -inf logits) the answers share it evenly. */
static double softmax_weight(double score, double max_score) {
    if (isfinite(max_score)) return exp(score - max_score);
    if (max_score > 0) return score == max_score ? 1.0 : 0.0;
    return 1.0;
}

bq_status bq_decode(const bq_vocab *vocab, const bq_features *f, const float *start_logits,
                    const float *end_logits, const bq_squad_options *opt, bq_answers *out,
                    bq_err *err) {
    if (!out) return bq_fail(err, BQ_ERR_INVALID_ARG, "decode: NULL output");
    memset(out, 0, sizeof *out);
    if (!vocab || !f || !opt || (f->n_windows > 0 && (!start_logits || !end_logits)))
        return bq_fail(err, BQ_ERR_INVALID_ARG, "decode: NULL vocab, features, options or logits");
    if (opt->n_best < 1 || opt->max_answer_length < 1)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "decode: n_best %d and max_answer_length %d must "
                       "be at least 1", opt->n_best, opt->max_answer_length);
    int seq = f->max_seq_length, n_best = opt->n_best;
    int k = n_best < seq ? n_best : seq; /* candidates per window and side */

    bq_status st = BQ_OK;
    size_t seq_alloc = (size_t)(seq > 0 ? seq : 1);
    int *start_idx = malloc(seq_alloc * sizeof(int)); /* [seq] positions by start logit */
    int *end_idx = malloc(seq_alloc * sizeof(int));   /* [seq] positions by end logit */
    ranked *scratch = malloc(seq_alloc * sizeof(ranked));
    candidate *cands = NULL;
    size_t n_cands = 0, cands_cap = 0;
    final_text_scratch x = {0};
    char **kept_orig = calloc((size_t)n_best, sizeof(char *));
    out->items = calloc((size_t)n_best, sizeof(bq_answer));
    if (!start_idx || !end_idx || !scratch || !kept_orig || !out->items) {
        st = bq_fail(err, BQ_ERR_NOMEM, "decode: out of memory");
        goto done;
    }

    for (int wi = 0; wi < f->n_windows; wi++) {
        const bq_window *w = &f->windows[wi];
        const float *sl = start_logits + (size_t)wi * (size_t)seq;
        const float *el = end_logits + (size_t)wi * (size_t)seq;
        best_indexes(sl, seq, scratch, start_idx);
        best_indexes(el, seq, scratch, end_idx);
        int doc_end = w->doc_offset + w->doc_len; /* one past the last document position */
        for (int i = 0; i < k; i++) {
            int s = start_idx[i];
            if (s < w->doc_offset || s >= doc_end || !w->max_context[s]) continue;
            for (int j = 0; j < k; j++) {
                int e = end_idx[j];
                if (e < w->doc_offset || e >= doc_end || e < s) continue;
                if (e - s + 1 > opt->max_answer_length) continue;
                if (!bq_grow((void **)&cands, &cands_cap, n_cands + 1, sizeof(candidate))) {
                    st = bq_fail(err, BQ_ERR_NOMEM, "decode: out of memory for candidates");
                    goto done;
                }
                cands[n_cands] = (candidate){wi, s, e, rank_key((double)sl[s] + (double)el[e]),
                                             (int)n_cands};
                n_cands++;
            }
        }
    }
    if (n_cands > 1) qsort(cands, n_cands, sizeof(candidate), by_score_desc);

    for (size_t c = 0; c < n_cands && out->n < n_best; c++) {
        const candidate *cd = &cands[c];
        const bq_window *w = &f->windows[cd->window];
        int32_t bs = 0, be = 0;
        size_t oa = 0, ob = 0;
        st = final_text(vocab, f, w, cd->start, cd->end, &x, &bs, &be, &oa, &ob, err);
        if (st != BQ_OK) goto done;
        /* The original's text: code points oa..ob of the single-space-joined words. */
        size_t ba = 0, bb = 0, cpi = 0;
        for (size_t i = 0; i <= x.orig.n; i++) {
            if (i < x.orig.n && ((unsigned char)x.orig.s[i] & 0xC0) == 0x80) continue;
            if (cpi == oa) ba = i;
            if (cpi == ob + 1) bb = i;
            cpi++;
        }
        bool seen = false;
        for (int i = 0; i < out->n && !seen; i++)
            seen = strlen(kept_orig[i]) == bb - ba && memcmp(kept_orig[i], x.orig.s + ba, bb - ba) == 0;
        if (seen) continue;
        kept_orig[out->n] = bq_strndup(x.orig.s + ba, bb - ba);
        bq_answer *ans = &out->items[out->n];
        ans->text = bq_strndup(f->context + bs, (size_t)(be - bs));
        if (!kept_orig[out->n] || !ans->text) {
            free(ans->text);
            ans->text = NULL;
            st = bq_fail(err, BQ_ERR_NOMEM, "decode: out of memory for answer text");
            goto done;
        }
        const float *sl = start_logits + (size_t)cd->window * (size_t)seq;
        const float *el = end_logits + (size_t)cd->window * (size_t)seq;
        ans->start_logit = sl[cd->start];
        ans->end_logit = el[cd->end];
        ans->score = cd->score;
        ans->byte_start = bs;
        ans->byte_end = be;
        ans->char_start = char_offset(f, bs);
        ans->char_end = ans->char_start + char_offset(f, be) - char_offset(f, bs);
        out->n++;
    }
    if (out->n == 0) {
        bq_answer *ans = &out->items[0];
        ans->text = bq_strndup("empty", 5);
        if (!ans->text) {
            st = bq_fail(err, BQ_ERR_NOMEM, "decode: out of memory");
            goto done;
        }
        ans->byte_start = ans->byte_end = ans->char_start = ans->char_end = -1;
        out->n = 1;
    }

    /* Softmax over the kept scores, in double, shifted by the maximum for stability. */
    double max_score = -INFINITY, total = 0.0;
    for (int i = 0; i < out->n; i++) {
        double sc = rank_key((double)out->items[i].start_logit + (double)out->items[i].end_logit);
        if (sc > max_score) max_score = sc;
    }
    for (int i = 0; i < out->n; i++) {
        double sc = rank_key((double)out->items[i].start_logit + (double)out->items[i].end_logit);
        total += softmax_weight(sc, max_score);
    }
    for (int i = 0; i < out->n; i++) {
        double sc = rank_key((double)out->items[i].start_logit + (double)out->items[i].end_logit);
        out->items[i].probability = (float)(softmax_weight(sc, max_score) / total);
    }

done:
    free(start_idx);
    free(end_idx);
    free(cands);
    free(scratch);
    for (int i = 0; kept_orig && i < n_best; i++) free(kept_orig[i]);
    free(kept_orig);
    free(x.pred.s);
    free(x.orig.s);
    free(x.lowered.s);
    cp_free(&x.orig_cp);
    cp_free(&x.tok_cp);
    cp_free(&x.pred_cp);
    bq_words_free(&x.words);
    if (st != BQ_OK) bq_answers_free(out);
    return st;
}
