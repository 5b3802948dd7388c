/* cmd_check.c - bertqa-gpu check: the CUDA engine against the fp32 CPU reference on this card, for
 * a user who wants to see that the answers they get are the reference's: the logits of a
 * question's windows in each precision, the normwise relative error over the real tokens, held to
 * the precision's bound, and the start/end argmax of every window (as bench/parity.py compares). */
#include "cli.h"
#include "engine_cuda.h"
#include "qa.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Several windows at the default settings (384 positions, doc stride 128): text of our own. */
static const char default_question[] = "When was the stone bridge over the river rebuilt?";
static const char default_paragraph[] =
    "The town grew up where an old trade road crossed the river at a ford. A wooden bridge "
    "replaced the ford in the twelfth century, and a stone bridge of nine arches followed in "
    "1342; floods carried away two of its arches in 1784, and the town rebuilt them in 1791 with "
    "money raised by the guilds. The market square lies on the east bank, below the castle hill, "
    "and the cathedral, begun in 1211 and finished only in 1880, faces it from the north. In the "
    "nineteenth century the railway reached the town, the walls came down, and the suburbs spread "
    "along the valley towards the hills, where vineyards had been planted since Roman times. ";

enum { MAX_PRECISIONS = 8 };

typedef struct {
    double rel_err;         /* normwise, start and end logits of the real tokens of every window */
    int argmax_same, argmax_total;
} comparison;

/* Argmax of v[0..n) where keep[i]; -1 when none is kept. */
static int argmax_kept(const float *v, const int32_t *keep, int n, double *top, double *second) {
    int best = -1;
    *top = *second = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!keep[i]) continue;
        if (v[i] > *top) {
            *second = *top;
            *top = v[i];
            best = i;
        } else if (v[i] > *second) {
            *second = v[i];
        }
    }
    return best;
}

/* As tools/hf_logits.py compare(): a different argmax is forgiven where the reference scores the
 * card's choice within bound x its norm of its own best (a tie that rounding may break either way;
 * a third position is not one). */
static comparison compare(const bq_qa_logits *ref, const bq_qa_logits *got, double bound) {
    comparison c = {0.0, 0, 0};
    const int S = ref->features.max_seq_length;
    double diff_sq = 0.0, ref_sq = 0.0;
    for (int w = 0; w < ref->features.n_windows; w++) {
        const int32_t *mask = ref->features.windows[w].input_mask;
        const float *pairs[2][2] = {{ref->start_logits + (size_t)w * S, got->start_logits + (size_t)w * S},
                                    {ref->end_logits + (size_t)w * S, got->end_logits + (size_t)w * S}};
        for (int k = 0; k < 2; k++) {
            const float *r = pairs[k][0], *g = pairs[k][1];
            double norm_sq = 0.0;
            for (int i = 0; i < S; i++) {
                if (!mask[i]) continue;
                const double d = (double)g[i] - (double)r[i];
                diff_sq += d * d;
                norm_sq += (double)r[i] * r[i];
            }
            ref_sq += norm_sq;
            double top, second, got_top, got_second;
            const int ref_arg = argmax_kept(r, mask, S, &top, &second);
            const int got_arg = argmax_kept(g, mask, S, &got_top, &got_second);
            const bool tie = got_arg >= 0 && r[got_arg] >= top - bound * fmax(sqrt(norm_sq), 1e-30);
            c.argmax_same += ref_arg == got_arg || tie;
            c.argmax_total++;
        }
    }
    /* NaN or infinite logits fail every bound */
    c.rel_err = !isfinite(diff_sq) ? INFINITY : ref_sq > 0 ? sqrt(diff_sq / ref_sq) : diff_sq == 0 ? 0.0 : INFINITY;
    return c;
}

/* The no-device message without its advice to run on the CPU instead: check needs a card, and
 * `check --device cpu` is refused. */
static const char *no_device_message(char *message) {
    static const char hint[] = "; " BQ_USE_CPU_HINT;
    const size_t n = strlen(message), h = sizeof hint - 1;
    if (n >= h && strcmp(message + n - h, hint) == 0) message[n - h] = '\0';
    return message;
}

/* The logits of `req` on an engine made with `opt`; the engine's description into `engine_line`. */
static bq_status run_logits(const bq_model *model, const bq_engine_options *opt, const bq_squad_options *squad,
                            const bq_qa_request *req, bq_qa_logits *out, char *engine_line, size_t line_len,
                            bq_err *err) {
    bq_engine *engine = NULL;
    bq_qa *qa = NULL;
    memset(out, 0, sizeof *out);
    bq_status st = bq_engine_create(model, opt, &engine, err);
    if (st == BQ_OK) {
        snprintf(engine_line, line_len, "%s", bq_engine_describe(engine));
        st = bq_qa_create(model, engine, squad, &qa, err);
    }
    if (st == BQ_OK) st = bq_qa_compute_logits(qa, req, out, err);
    bq_qa_free(qa);
    bq_engine_free(engine);
    return st;
}

int cmd_check(const cli_args *a) {
    bq_precision precisions[MAX_PRECISIONS];
    int n_precisions = 0;
    if (!cli_parse_precisions("check", a->given[OPT_PRECISION] ? a->value[OPT_PRECISION] : "fp32,tf32,fp16,bf16",
                              precisions, MAX_PRECISIONS, &n_precisions))
        return 2;
    double max_rel_err = 0.0; /* 0: each precision's own bound */
    if (a->given[OPT_MAX_REL_ERR]) {
        char *end;
        max_rel_err = strtod(a->value[OPT_MAX_REL_ERR], &end);
        if (*end || end == a->value[OPT_MAX_REL_ERR] || !(max_rel_err > 0) || !isfinite(max_rel_err))
            return cli_error("check", "--max-rel-err needs a positive number, got '%s'", a->value[OPT_MAX_REL_ERR]), 2;
    }
    bq_err err;
    bq_err_clear(&err);
    int devices = 0;
    if (bq_cuda_device_count(&devices, &err) != BQ_OK || devices <= a->engine.device_index) {
        if (devices > 0 && devices <= a->engine.device_index)
            bq_fail(&err, BQ_ERR_NO_DEVICE, "no CUDA device %d (%d found)", a->engine.device_index, devices);
        return cli_error("check", "%s; check compares a CUDA device with the CPU reference and needs one",
                         no_device_message(err.message)), 3;
    }
    const char *context = default_paragraph, *question = default_question;
    size_t context_len;
    char *owned = NULL, *built = NULL;
    if (a->given[OPT_CONTEXT] || a->given[OPT_CONTEXT_FILE]) {
        const int context_status = cli_context("check", a, &context, &context_len, &owned);
        if (context_status) return context_status;
    } else { /* the paragraph three times: windows that overlap, as long contexts make */
        const size_t one = strlen(default_paragraph);
        built = malloc(3 * one + 1);
        if (!built) return cli_error("check", "out of memory"), 1;
        for (int i = 0; i < 3; i++) memcpy(built + i * one, default_paragraph, one);
        built[3 * one] = '\0';
        context = built;
        context_len = 3 * one;
    }
    if (a->given[OPT_QUESTION]) question = a->value[OPT_QUESTION];
    const bq_qa_request req = {question, strlen(question), context, context_len};

    bq_model *model = NULL;
    bq_status st = bq_model_load(a->value[OPT_MODEL], cli_vocab_path(a), &model, &err);
    if (st != BQ_OK) {
        free(owned);
        free(built);
        return cli_error("check", "%s", err.message), cli_exit_status(st);
    }
    cli_note_model_folder("check", a->value[OPT_MODEL], model);

    /* the reference: fp32 on the CPU */
    bq_engine_options cpu = a->engine;
    cpu.device = BQ_DEVICE_CPU;
    cpu.precision = BQ_PRECISION_FP32;
    cpu.tuning_cache = NULL;
    bq_qa_logits ref;
    char cpu_line[512] = "", line[512] = "";
    st = run_logits(model, &cpu, &a->squad, &req, &ref, cpu_line, sizeof cpu_line, &err);
    if (st != BQ_OK) {
        cli_error("check", "the CPU reference: %s", err.message);
        bq_qa_logits_free(&ref);
        bq_model_free(model);
        free(owned);
        free(built);
        return cli_exit_status(st);
    }
    fprintf(stderr, "bertqa-gpu check: %d windows of %d positions; reference: %s\n", ref.features.n_windows,
            ref.features.max_seq_length, cpu_line);
    cJSON *root = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(root, "precisions");
    cJSON_AddStringToObject(root, "reference", cpu_line);
    cJSON_AddNumberToObject(root, "windows", ref.features.n_windows);
    if (!a->given[OPT_JSON])
        printf("%-9s %14s %9s %13s  %s\n", "precision", "rel err vs CPU", "bound", "argmax same", "result");
    int failed = 0, exit_status = 0;
    for (int p = 0; p < n_precisions; p++) {
        bq_engine_options opt = a->engine;
        opt.precision = precisions[p];
        const double bound = max_rel_err > 0 ? max_rel_err : bq_precision_parity_bound(precisions[p]);
        bq_qa_logits got;
        bq_err_clear(&err);
        line[0] = '\0';
        st = run_logits(model, &opt, &a->squad, &req, &got, line, sizeof line, &err);
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "precision", bq_precision_name(precisions[p]));
        cJSON_AddNumberToObject(row, "bound", bound);
        if (st == BQ_ERR_NO_DEVICE) { /* no card: nothing else can run either */
            cli_error("check", "%s", no_device_message(err.message));
            bq_qa_logits_free(&got);
            cJSON_Delete(row);
            exit_status = 3;
            break;
        }
        if (st != BQ_OK) {
            failed++;
            cJSON_AddStringToObject(row, "error", err.message);
            if (!a->given[OPT_JSON])
                printf("%-9s %14s %9.0e %13s  FAIL: %s\n", bq_precision_name(precisions[p]), "-", bound, "-",
                       err.message);
        } else {
            const comparison c = compare(&ref, &got, bound);
            const bool ok = c.rel_err <= bound && c.argmax_same == c.argmax_total;
            failed += !ok;
            cJSON_AddStringToObject(row, "engine", line);
            cJSON_AddNumberToObject(row, "rel_err", isfinite(c.rel_err) ? c.rel_err : -1.0);
            cJSON_AddNumberToObject(row, "argmax_same", c.argmax_same);
            cJSON_AddNumberToObject(row, "argmax_total", c.argmax_total);
            cJSON_AddBoolToObject(row, "passed", ok);
            if (!a->given[OPT_JSON]) {
                char same[32];
                snprintf(same, sizeof same, "%d/%d", c.argmax_same, c.argmax_total);
                printf("%-9s %14.3e %9.0e %13s  %s  %s\n", bq_precision_name(precisions[p]), c.rel_err, bound, same,
                       ok ? "ok  " : "FAIL", line);
            }
        }
        cJSON_AddItemToArray(rows, row);
        bq_qa_logits_free(&got);
    }
    if (exit_status == 0 && a->given[OPT_JSON]) {
        cJSON_AddBoolToObject(root, "passed", failed == 0);
        char *text = cJSON_Print(root);
        if (text) printf("%s\n", text);
        free(text);
    }
    if (exit_status == 0 && failed)
        fprintf(stderr, "bertqa-gpu check: %d of %d precisions outside their bounds or failed\n", failed,
                n_precisions);
    cJSON_Delete(root);
    bq_qa_logits_free(&ref);
    bq_model_free(model);
    free(owned);
    free(built);
    return exit_status ? exit_status : failed ? 1 : 0;
}
