/* bench_tokenizer.c - single-thread throughput of bq_tokenize over every SQuAD v1.1 dev context.
 *
 * Usage: bench_tokenizer [repeats=20] [dev-v1.1.json.gz] [vocab.txt]
 * Defaults read tests/data/squad/dev-v1.1.json.gz and vocab/vocab.txt under the source tree given by
 * BQ_SOURCE_DIR at build time or the current directory. Prints one line "bertqa ... MB/s tokens/s". */
#include "tokenizer.h"
#include "vocab.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of this process: the fair single-core measure on a shared, busy machine. */
static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_gzip(const char *path, size_t *len) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 20, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 4096) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger) free(buf);
            buf = bigger;
        }
    }
    int st = pclose(p);
    if (!buf || st != 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 20;
    const char *data_path = argc > 2 ? argv[2] : "tests/data/squad/dev-v1.1.json.gz";
    const char *vocab_path = argc > 3 ? argv[3] : "vocab/vocab.txt";
    if (repeats < 1) repeats = 1;

    bq_err err;
    bq_err_clear(&err);
    bq_vocab *vocab = NULL;
    if (bq_vocab_load(vocab_path, &vocab, &err) != BQ_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.message);
        return 1;
    }
    size_t json_len = 0;
    char *json = read_gzip(data_path, &json_len);
    cJSON *root = json ? cJSON_ParseWithLength(json, json_len) : NULL;
    free(json);
    if (!root) {
        fprintf(stderr, "bench_tokenizer: cannot read SQuAD JSON from '%s'\n", data_path);
        bq_vocab_free(vocab);
        return 1;
    }
    /* contexts as (pointer, length) pairs into the cJSON tree */
    size_t n_ctx = 0, cap = 0, len_cap = 0, bytes = 0;
    const char **ctx = NULL;
    size_t *ctx_len = NULL;
    cJSON *article, *para;
    cJSON_ArrayForEach(article, cJSON_GetObjectItemCaseSensitive(root, "data")) {
        cJSON_ArrayForEach(para, cJSON_GetObjectItemCaseSensitive(article, "paragraphs")) {
            const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(para, "context"));
            if (!c) continue;
            if (!bq_grow((void **)&ctx, &cap, n_ctx + 1, sizeof *ctx) ||
                !bq_grow((void **)&ctx_len, &len_cap, n_ctx + 1, sizeof *ctx_len)) {
                fprintf(stderr, "bench_tokenizer: out of memory\n");
                return 1;
            }
            ctx[n_ctx] = c;
            ctx_len[n_ctx] = strlen(c);
            bytes += ctx_len[n_ctx++];
        }
    }

    bq_pieces pieces = {0};
    size_t tokens = 0;
    /* one warm-up pass, untimed */
    for (size_t i = 0; i < n_ctx; i++) {
        bq_pieces_clear(&pieces);
        if (bq_tokenize(vocab, ctx[i], ctx_len[i], &pieces, &err) != BQ_OK) {
            fprintf(stderr, "bench_tokenizer: context %zu: %s\n", i, err.message);
            return 1;
        }
        tokens += pieces.n;
    }
    double t0 = now_seconds();
    for (int r = 0; r < repeats; r++) {
        for (size_t i = 0; i < n_ctx; i++) {
            bq_pieces_clear(&pieces);
            bq_tokenize(vocab, ctx[i], ctx_len[i], &pieces, &err);
        }
    }
    double seconds = now_seconds() - t0;
    double mb = (double)bytes * repeats / 1e6;
    printf("bertqa bq_tokenize: %zu contexts, %.2f MB, %zu tokens per pass, %d passes, %.3f s CPU: "
           "%.1f MB/s, %.0f tokens/s\n",
           n_ctx, (double)bytes / 1e6, tokens, repeats, seconds, mb / seconds,
           (double)tokens * repeats / seconds);
    bq_pieces_free(&pieces);
    free(ctx);
    free(ctx_len);
    cJSON_Delete(root);
    bq_vocab_free(vocab);
    return 0;
}
