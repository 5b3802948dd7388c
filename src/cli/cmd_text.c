/* cmd_text.c - the text-side subcommands: tokenize and features. */
#include "cli.h"
#include "squad_features.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cmd_tokenize(const cli_args *a) {
    bq_err err;
    bq_err_clear(&err);
    bq_vocab *vocab = NULL;
    if (bq_vocab_load(cli_vocab_path(a), &vocab, &err) != BQ_OK) return cli_error("tokenize", "%s", err.message);
    bq_pieces pieces = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long line_no = 0;
    int failures = 0;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        line_no++;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        bq_pieces_clear(&pieces);
        bq_status st = bq_tokenize(vocab, line, len, &pieces, &err);
        if (st != BQ_OK) {
            /* keep one output line per input line; the error goes to stderr */
            fprintf(stderr, "bertqa-gpu tokenize: line %ld: %s\n", line_no, err.message);
            putchar('\n');
            failures++;
            continue;
        }
        for (size_t i = 0; i < pieces.n; i++) {
            if (i) putchar(' ');
            if (a->given[OPT_TOKENS])
                fputs(bq_vocab_token(vocab, pieces.pieces[i].id), stdout);
            else
                printf("%d", (int)pieces.pieces[i].id);
        }
        putchar('\n');
    }
    const int read_errno = ferror(stdin) ? (errno ? errno : EIO) : 0;
    free(line);
    bq_pieces_free(&pieces);
    bq_vocab_free(vocab);
    if (read_errno) return cli_error("tokenize", "reading standard input failed: %s", strerror(read_errno));
    return failures ? 1 : 0;
}

static cJSON *int_array(const int32_t *v, int n) { return cJSON_CreateIntArray((const int *)v, n); }

int cmd_features(const cli_args *a) {
    const char *context;
    size_t context_len;
    char *owned;
    const int context_status = cli_context("features", a, &context, &context_len, &owned);
    if (context_status) return context_status;
    bq_err err;
    bq_err_clear(&err);
    bq_vocab *vocab = NULL;
    bq_features f;
    memset(&f, 0, sizeof f);
    bq_status st = bq_vocab_load(cli_vocab_path(a), &vocab, &err);
    if (st == BQ_OK)
        st = bq_features_build(vocab, &a->squad, a->value[OPT_QUESTION], strlen(a->value[OPT_QUESTION]), context,
                               context_len, &f, &err);
    if (st != BQ_OK) {
        cli_error("features", "%s", err.message);
    } else {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddNumberToObject(root, "max_seq_length", f.max_seq_length);
        cJSON_AddNumberToObject(root, "question_tokens", f.n_question_pieces);
        cJSON *wins = cJSON_AddArrayToObject(root, "windows");
        for (int w = 0; w < f.n_windows; w++) {
            const bq_window *win = &f.windows[w];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "doc_start", win->doc_start);
            cJSON_AddNumberToObject(o, "doc_offset", win->doc_offset);
            cJSON_AddNumberToObject(o, "tokens", win->n_tokens);
            cJSON_AddItemToObject(o, "input_ids", int_array(win->input_ids, f.max_seq_length));
            cJSON_AddItemToObject(o, "input_mask", int_array(win->input_mask, f.max_seq_length));
            cJSON_AddItemToObject(o, "segment_ids", int_array(win->segment_ids, f.max_seq_length));
            cJSON *pieces = cJSON_AddArrayToObject(o, "tokens_text");
            cJSON *spans = cJSON_AddArrayToObject(o, "byte_spans"); /* [start, end) in the context */
            cJSON *maxc = cJSON_AddArrayToObject(o, "max_context");
            for (int t = 0; t < win->n_tokens; t++) {
                cJSON_AddItemToArray(pieces, cJSON_CreateString(bq_vocab_token(vocab, win->input_ids[t])));
                if (win->span_start[t] >= 0) {
                    int pair[2] = {win->span_start[t], win->span_end[t]};
                    cJSON_AddItemToArray(spans, cJSON_CreateIntArray(pair, 2));
                    cJSON_AddItemToArray(maxc, cJSON_CreateBool(win->max_context[t]));
                } else {
                    cJSON_AddItemToArray(spans, cJSON_CreateNull());
                    cJSON_AddItemToArray(maxc, cJSON_CreateNull());
                }
            }
            cJSON_AddItemToArray(wins, o);
        }
        char *text = cJSON_PrintUnformatted(root);
        if (text) puts(text);
        free(text);
        cJSON_Delete(root);
    }
    bq_features_free(&f);
    bq_vocab_free(vocab);
    free(owned);
    return cli_exit_status(st);
}
