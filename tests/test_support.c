/* test_support.c - helpers shared by the CMocka tests. */
#include "test_support.h"

#include "vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *bq_test_src_path(const char *relative) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", BQ_SOURCE_DIR, relative);
    return buf;
}

char *bq_test_tmpdir(const char *tag) {
    char base[4096];
    snprintf(base, sizeof base, "%s/test-tmp", BQ_BINARY_DIR);
    mkdir(base, 0755);
    size_t n = strlen(base) + strlen(tag) + 16;
    char *tmpl = malloc(n);
    snprintf(tmpl, n, "%s/%s-XXXXXX", base, tag);
    if (!mkdtemp(tmpl)) {
        free(tmpl);
        return NULL;
    }
    return tmpl;
}

void bq_test_fill_uniform(float *x, size_t n, uint64_t *state, float lo, float hi) {
    for (size_t i = 0; i < n; i++) {
        double u = (double)(bq_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
        x[i] = lo + (float)u * (hi - lo);
    }
}

double bq_test_rel_error(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den == 0) return num == 0 ? 0.0 : INFINITY;
    return sqrt(num / den);
}

void bq_test_max_diff(const float *a, const float *b, size_t n, double *max_diff, double *max_ref) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d; /* NaN propagates as a huge diff */
        if (fabs((double)b[i]) > mr) mr = fabs((double)b[i]);
    }
    *max_diff = md;
    *max_ref = mr;
}

static char *run_capture(const char *cmd, size_t *out_len, int *exit_status) {
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t got;
    while ((got = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 1024) {
            cap *= 2;
            out = realloc(out, cap);
        }
    }
    out[len] = '\0';
    int st = pclose(p);
    if (exit_status) *exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (out_len) *out_len = len;
    return out;
}

char *bq_test_run(const char *cmd, int *exit_status) { return run_capture(cmd, NULL, exit_status); }


char *bq_test_gunzip(const char *relative, size_t *len) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s'", bq_test_src_path(relative));
    int status = -1;
    char *out = run_capture(cmd, len, &status);
    if (out && status != 0) {
        free(out);
        out = NULL;
    }
    return out;
}

bq_vocab *bq_test_load_vocab(void) {
    bq_vocab *vocab = NULL;
    bq_err err;
    bq_err_clear(&err);
    if (bq_vocab_load(bq_test_src_path("vocab/vocab.txt"), &vocab, &err) != BQ_OK) {
        fprintf(stderr, "vocab: %s\n", err.message);
        return NULL;
    }
    return vocab;
}

void bq_test_filter_from_env(void) {
    const char *filter = getenv("BQ_TEST_FILTER");
    if (filter && filter[0]) cmocka_set_test_filter(filter);
    const char *skip = getenv("BQ_TEST_SKIP");
    if (skip && skip[0]) cmocka_set_skip_filter(skip);
}
