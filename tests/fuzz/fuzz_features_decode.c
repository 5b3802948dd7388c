/* fuzz_features_decode.c - SQuAD windows (bq_features_build) and answer decoding (bq_decode) on any
 * question and context with the shipped vocabulary, small windows and drawn logits.
 * Input: 6 option bytes (window length, question cut, stride, n-best, answer length, flags), a
 * seed byte, then the question up to the first NUL and the context after it.
 * Windows: [CLS] question [SEP] context [SEP] with the question cut, ids in the vocabulary, masks
 * and segments that match, context pieces covered in order by windows that advance by the stride,
 * each piece the max-context piece of exactly one window, spans on character boundaries.
 * Answers: at least one; each "empty" or exactly the context's bytes at its byte span, with code-point
 * offsets that count those bytes; distinct texts, scores non-increasing, probabilities that sum to 1. */
#include <math.h>

#include "decode.h"
#include "fuzz_common.h"
#include "squad_features.h"

/* Logits from a few values so that ties are common; with `extremes`, also infinities and NaN. */
static float draw_logit(uint64_t *state, int extremes) {
    static const float values[] = {-3.0f, -1.0f, 0.0f, 0.5f, 1.0f, 2.0f, 7.25f, -1e30f, 1e30f};
    const uint64_t r = bq_splitmix64(state);
    if (extremes && (r & 15) == 0) {
        static const float special[] = {INFINITY, -INFINITY, NAN, 3.4e38f};
        return special[(r >> 4) & 3];
    }
    return values[(r >> 8) % (sizeof values / sizeof values[0])];
}

static void check_windows(const bq_vocab *vocab, const bq_squad_options *opt, const bq_features *f) {
    const bq_special_ids *sp = bq_vocab_special(vocab);
    FUZZ_ASSERT(f->n_windows >= 1, "no window");
    FUZZ_ASSERT(f->n_question_pieces <= opt->max_query_length, "%d question pieces, cut at %d",
                f->n_question_pieces, opt->max_query_length);
    int next_piece = 0, max_context_total = 0, total_pieces = -1;
    for (int wi = 0; wi < f->n_windows; wi++) {
        const bq_window *w = &f->windows[wi];
        const int S = f->max_seq_length;
        FUZZ_ASSERT(w->n_tokens <= S && w->doc_offset == f->n_question_pieces + 2 &&
                        w->n_tokens == w->doc_offset + w->doc_len + 1,
                    "window %d: %d tokens of %d, document at %d, %d long", wi, w->n_tokens, S, w->doc_offset,
                    w->doc_len);
        FUZZ_ASSERT(w->input_ids[0] == sp->cls && w->input_ids[w->doc_offset - 1] == sp->sep &&
                        w->input_ids[w->n_tokens - 1] == sp->sep,
                    "window %d: [CLS] / [SEP] misplaced", wi);
        /* run_squad.py: the next window starts min(length, stride) pieces later */
        const bq_window *prev = wi > 0 ? &f->windows[wi - 1] : NULL;
        const int advance = prev ? (prev->doc_len < opt->doc_stride ? prev->doc_len : opt->doc_stride) : 0;
        FUZZ_ASSERT(prev ? w->doc_start == prev->doc_start + advance : w->doc_start == 0,
                    "window %d starts at piece %d", wi, w->doc_start);
        FUZZ_ASSERT(w->doc_start <= next_piece, "window %d starts at %d, after the uncovered piece %d", wi,
                    w->doc_start, next_piece);
        if (w->doc_start + w->doc_len > next_piece) next_piece = w->doc_start + w->doc_len;
        for (int t = 0; t < S; t++) {
            const int real = t < w->n_tokens, doc = t >= w->doc_offset && t < w->doc_offset + w->doc_len;
            FUZZ_ASSERT(w->input_ids[t] >= 0 && w->input_ids[t] < bq_vocab_size(vocab), "window %d token %d: id %d",
                        wi, t, w->input_ids[t]);
            FUZZ_ASSERT(w->input_mask[t] == real, "window %d token %d: mask %d", wi, t, w->input_mask[t]);
            FUZZ_ASSERT(w->segment_ids[t] == (real && t >= w->doc_offset), "window %d token %d: segment %d", wi, t,
                        w->segment_ids[t]);
            if (!real) FUZZ_ASSERT(w->input_ids[t] == 0, "window %d: padding %d is id %d", wi, t, w->input_ids[t]);
            if (!doc) {
                FUZZ_ASSERT(w->span_start[t] == -1 && w->span_end[t] == -1 && w->token_to_word[t] == -1 &&
                                !w->max_context[t],
                            "window %d token %d: a span outside the document", wi, t);
                continue;
            }
            const int32_t a = w->span_start[t], b = w->span_end[t], word = w->token_to_word[t];
            FUZZ_ASSERT(a >= 0 && a < b && (size_t)b <= f->context_len, "window %d token %d: span [%d, %d) of %zu",
                        wi, t, a, b, f->context_len);
            FUZZ_ASSERT(fuzz_utf8_boundary(f->context, f->context_len, (size_t)a) &&
                            fuzz_utf8_boundary(f->context, f->context_len, (size_t)b),
                        "window %d token %d: span [%d, %d) cuts a character", wi, t, a, b);
            FUZZ_ASSERT(word >= 0 && word < f->n_words && f->word_start[word] <= (uint32_t)a &&
                            (uint32_t)b <= f->word_end[word],
                        "window %d token %d: span [%d, %d) outside its word %d", wi, t, a, b, word);
            max_context_total += w->max_context[t];
        }
        if (wi == f->n_windows - 1) total_pieces = w->doc_start + w->doc_len;
    }
    FUZZ_ASSERT(next_piece == total_pieces, "pieces up to %d covered of %d", next_piece, total_pieces);
    FUZZ_ASSERT(max_context_total == total_pieces, "%d max-context flags for %d pieces", max_context_total,
                total_pieces);
}

static void check_answers(const bq_squad_options *opt, const bq_features *f, const bq_answers *ans) {
    FUZZ_ASSERT(ans->n >= 1 && ans->n <= opt->n_best, "%d answers, n-best %d", ans->n, opt->n_best);
    double sum = 0.0;
    for (int i = 0; i < ans->n; i++) {
        const bq_answer *a = &ans->items[i];
        FUZZ_ASSERT(a->text != NULL, "answer %d without text", i);
        if (a->byte_start < 0) {
            FUZZ_ASSERT(ans->n == 1 && strcmp(a->text, "empty") == 0 && a->byte_end == -1 && a->char_start == -1 &&
                            a->char_end == -1,
                        "answer %d: '%s' without a span", i, a->text);
        } else {
            const size_t bs = (size_t)a->byte_start, be = (size_t)a->byte_end;
            FUZZ_ASSERT(bs < be && be <= f->context_len, "answer %d: bytes [%zu, %zu) of %zu", i, bs, be,
                        f->context_len);
            FUZZ_ASSERT(strlen(a->text) == be - bs && memcmp(a->text, f->context + bs, be - bs) == 0,
                        "answer %d: '%s' is not the context's bytes [%zu, %zu)", i, a->text, bs, be);
            FUZZ_ASSERT((size_t)a->char_start == fuzz_utf8_count(f->context, bs) &&
                            (size_t)a->char_end == fuzz_utf8_count(f->context, be),
                        "answer %d: code points [%d, %d) for bytes [%zu, %zu)", i, a->char_start, a->char_end,
                        bs, be);
        }
        for (int j = 0; j < i; j++)
            FUZZ_ASSERT(strcmp(ans->items[j].text, a->text) != 0, "answers %d and %d are both '%s'", j, i, a->text);
        if (i > 0 && !isnan(a->score) && !isnan(ans->items[i - 1].score))
            FUZZ_ASSERT(a->score <= ans->items[i - 1].score, "answer %d scores %g, above answer %d's %g", i,
                        a->score, i - 1, ans->items[i - 1].score);
        /* infinite scores share the probability evenly (decode.c): never NaN */
        FUZZ_ASSERT(a->probability >= 0.0f && a->probability <= 1.0f, "answer %d: probability %g", i,
                    (double)a->probability);
        sum += a->probability;
    }
    FUZZ_ASSERT(fabs(sum - 1.0) < 1e-5, "probabilities sum to %.9g", sum);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { HEAD = 7 };
    bq_squad_options opt = BQ_SQUAD_OPTIONS_DEFAULT;
    opt.max_seq_length = 8 + fuzz_byte(data, size, 0) % 57;   /* 8..64 */
    opt.max_query_length = 1 + fuzz_byte(data, size, 1) % 16; /* 1..16 */
    opt.doc_stride = 1 + fuzz_byte(data, size, 2) % 32;       /* 1..32 */
    opt.n_best = 1 + fuzz_byte(data, size, 3) % 8;
    opt.max_answer_length = 1 + fuzz_byte(data, size, 4) % 8;
    const int extremes = fuzz_byte(data, size, 5) & 1;
    uint64_t state = fuzz_byte(data, size, 6);
    const uint8_t *text = data + (size < HEAD ? size : HEAD);
    const size_t text_len = size < HEAD ? 0 : size - HEAD;
    const uint8_t *cut = memchr(text, '\0', text_len);
    const size_t question_len = cut ? (size_t)(cut - text) : text_len;
    const char *question = (const char *)text;
    const char *context = cut ? (const char *)cut + 1 : "";
    const size_t context_len = cut ? text_len - question_len - 1 : 0;

    const bq_vocab *vocab = fuzz_vocab();
    bq_features f = {0};
    bq_err err = {0};
    bq_status s = bq_features_build(vocab, &opt, question, question_len, context, context_len, &f, &err);
    if (s != BQ_OK) {
        FUZZ_ASSERT(s == BQ_ERR_UTF8 || s == BQ_ERR_INVALID_ARG, "features: %s: %s", bq_status_string(s),
                    err.message);
        FUZZ_ASSERT(err.message[0] != '\0', "features: %s without a message", bq_status_string(s));
        bq_features_free(&f);
        return 0;
    }
    FUZZ_ASSERT(f.context_len == context_len && memcmp(f.context, context, context_len) == 0, "context copy");
    check_windows(vocab, &opt, &f);

    const size_t n_logits = (size_t)f.n_windows * (size_t)f.max_seq_length;
    float *start = malloc(n_logits * sizeof *start), *end = malloc(n_logits * sizeof *end);
    if (!start || !end) abort();
    for (size_t i = 0; i < n_logits; i++) start[i] = draw_logit(&state, extremes), end[i] = draw_logit(&state, extremes);
    bq_answers ans = {0};
    s = bq_decode(vocab, &f, start, end, &opt, &ans, &err);
    FUZZ_ASSERT(s == BQ_OK, "decode: %s: %s", bq_status_string(s), err.message);
    check_answers(&opt, &f, &ans);
    bq_answers_free(&ans);
    free(start);
    free(end);
    bq_features_free(&f);
    return 0;
}
