/* cli_common.c - pieces every subcommand shares: vocabulary path, context input, model + engine. */
#include "cli.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>

#ifndef BQ_DEFAULT_VOCAB
#define BQ_DEFAULT_VOCAB "vocab/vocab.txt"
#endif

const char *cli_vocab_path(const cli_args *a) {
    return a->given[OPT_VOCAB] ? a->value[OPT_VOCAB] : bq_default_vocab_path(BQ_DEFAULT_VOCAB);
}

int cli_context(const char *cmd, const cli_args *a, const char **text, size_t *len, char **owned) {
    *owned = NULL;
    if (a->given[OPT_CONTEXT]) {
        *text = a->value[OPT_CONTEXT];
        *len = strlen(*text);
        return 0;
    }
    if (a->given[OPT_CONTEXT_FILE]) {
        bq_err err;
        bq_err_clear(&err);
        /* a file that cannot be read is the input's failure (1), not a usage error */
        if (bq_read_file_max(a->value[OPT_CONTEXT_FILE], BQ_MAX_INPUT_BYTES, owned, len, &err) != BQ_OK) {
            cli_error(cmd, "%s", err.message);
            return 1;
        }
        *text = *owned;
        return 0;
    }
    cli_error(cmd, "a context is required: --context TEXT or --context-file FILE");
    return 2;
}

bool cli_parse_precisions(const char *cmd, const char *s, bq_precision *out, int max, int *n) {
    *n = 0;
    char buf[256];
    if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf)
        return cli_error(cmd, "--precision: list too long"), false;
    for (char *tok = buf;;) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = '\0';
        bq_err err;
        if (!*tok)
            return cli_error(cmd, "--precision expects a comma-separated list of fp32, tf32, fp16, bf16, "
                             "got '%s'", s), false;
        if (*n >= max || bq_parse_precision(tok, &out[*n], &err) != BQ_OK)
            return cli_error(cmd, "--precision: %s", *n >= max ? "too many entries" : err.message), false;
        (*n)++;
        if (!comma) return true;
        tok = comma + 1;
    }
}

bool cli_is_stdout(const char *path) {
    return path && (strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0);
}

void cli_note_model_folder(const char *cmd, const char *given, const bq_model *model) {
    if (strcmp(given, model->dir) != 0)
        fprintf(stderr, "bertqa-gpu %s: %s: the Hugging Face cache's snapshot %s\n", cmd, given, model->dir);
    /* a folder without its tokenizer: its ids are another file's, which had better be the one the
     * model was trained with */
    if (model->vocab_fallback)
        fprintf(stderr, "bertqa-gpu %s: note: %s has no vocab.txt or tokenizer.json: tokenizing with %s "
                "(--vocab names another)\n", cmd, model->dir, model->vocab_fallback);
}

int cli_load_model(const char *cmd, const cli_args *a, bq_model **model, bq_engine **engine) {
    *model = NULL;
    *engine = NULL;
    bq_err err;
    bq_err_clear(&err);
    bq_status st = bq_model_load(a->value[OPT_MODEL], cli_vocab_path(a), model, &err);
    if (st != BQ_OK) {
        cli_error(cmd, "%s", err.message);
        return cli_exit_status(st);
    }
    cli_note_model_folder(cmd, a->value[OPT_MODEL], *model);
    st = bq_engine_create(*model, &a->engine, engine, &err);
    if (st != BQ_OK) {
        cli_error(cmd, "%s", err.message);
        bq_model_free(*model);
        *model = NULL;
        return cli_exit_status(st);
    }
    return 0;
}

/* x as Python's repr(float) writes it. */
static void python_float(double x, char *buf, size_t size) {
    if (!isfinite(x)) { /* json.dumps writes these as Python names (not JSON, but what it prints) */
        snprintf(buf, size, "%s", isnan(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity");
        return;
    }
    /* the fewest significant digits that read back as x, as repr(float) chooses them */
    int digits = 1;
    char e[40];
    for (; digits < 17; digits++) {
        snprintf(e, sizeof e, "%.*e", digits - 1, x);
        if (strtod(e, NULL) == x) break;
    }
    snprintf(e, sizeof e, "%.*e", digits - 1, x);
    const int exponent = atoi(strchr(e, 'e') + 1);
    if (exponent < -4 || exponent >= 16) { /* 1e-05, 1.5e+16: two exponent digits at least */
        char mantissa[32];
        snprintf(mantissa, sizeof mantissa, "%.*s", (int)(strchr(e, 'e') - e), e);
        snprintf(buf, size, "%se%c%02d", mantissa, exponent < 0 ? '-' : '+', abs(exponent));
        return;
    }
    const int decimals = digits - 1 - exponent > 0 ? digits - 1 - exponent : 0;
    snprintf(buf, size, "%.*f%s", decimals, x, decimals ? "" : ".0");
}

void cli_print_scores(FILE *to, double exact_match, double f1) {
    char em_text[64], f1_text[64]; /* a mantissa of 17 digits and an exponent fit with room */
    python_float(exact_match, em_text, sizeof em_text);
    python_float(f1, f1_text, sizeof f1_text);
    fprintf(to, "{\"exact_match\": %s, \"f1\": %s}\n", em_text, f1_text);
}
