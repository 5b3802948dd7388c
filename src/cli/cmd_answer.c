/* cmd_answer.c - the subcommands that run the model: ask, squad, jsonl, logits. */
#include "cli.h"
#include "jsonl.h"
#include "qa.h"
#include "squad_data.h"
#include "squad_eval.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *cmd;
    bq_model *model;
    bq_engine *engine;
    bq_qa *qa;
} session;

/* 0 when the model, engine and pipeline are ready; else the exit status (after a message). */
static int session_open(const char *cmd, const cli_args *a, session *s) {
    memset(s, 0, sizeof *s);
    s->cmd = cmd;
    const int status = cli_load_model(cmd, a, &s->model, &s->engine);
    if (status) return status;
    bq_err err;
    bq_err_clear(&err);
    bq_status st = bq_qa_create(s->model, s->engine, &a->squad, &s->qa, &err);
    if (st != BQ_OK) {
        cli_error(cmd, "%s", err.message);
        return cli_exit_status(st);
    }
    /* bertqa-make-model marks its folders; say plainly that such answers mean nothing */
    if (s->model->config.random_weights)
        fprintf(stderr, "bertqa-gpu %s: note: %s holds RANDOM weights made by bertqa-make-model; "
                        "its answers are meaningless (use a real fine-tuned checkpoint for real answers)\n",
                cmd, a->value[OPT_MODEL]);
    return 0;
}

static void session_close(session *s) {
    bq_err err;
    bq_err_clear(&err);
    if (s->engine && bq_engine_save_tuning(s->engine, &err) != BQ_OK)
        fprintf(stderr, "bertqa-gpu %s: warning: %s\n", s->cmd, err.message);
    bq_qa_free(s->qa);
    bq_engine_free(s->engine);
    bq_model_free(s->model);
}

static cJSON *answer_json(const bq_answer *ans) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "answer", ans->text);
    if (ans->char_start >= 0) {
        cJSON_AddNumberToObject(o, "start", ans->char_start);
        cJSON_AddNumberToObject(o, "end", ans->char_end);
    } else {
        cJSON_AddNullToObject(o, "start");
        cJSON_AddNullToObject(o, "end");
    }
    cJSON_AddNumberToObject(o, "score", ans->score);
    cJSON_AddNumberToObject(o, "probability", ans->probability);
    return o;
}

static void print_json(cJSON *j) {
    char *text = cJSON_PrintUnformatted(j);
    if (text) puts(text);
    free(text);
}

int cmd_ask(const cli_args *a) {
    const char *context;
    size_t context_len;
    char *owned;
    const int context_status = cli_context("ask", a, &context, &context_len, &owned);
    if (context_status) return context_status;
    session s;
    const int open_status = session_open("ask", a, &s);
    if (open_status) {
        session_close(&s);
        free(owned);
        return open_status;
    }
    bq_qa_request req = {a->value[OPT_QUESTION], strlen(a->value[OPT_QUESTION]), context, context_len};
    bq_qa_result res = {0};
    bq_err err;
    bq_err_clear(&err);
    bq_status st = bq_qa_answer(s.qa, &req, 1, &res, &err);
    if (st != BQ_OK) {
        cli_error("ask", "%s", err.message);
    } else if (res.status != BQ_OK) {
        st = res.status;
        cli_error("ask", "%s", res.error);
    } else {
        int k = a->top_k < res.answers.n ? a->top_k : res.answers.n;
        if (a->given[OPT_JSON]) {
            if (a->given[OPT_TOP_K]) {
                cJSON *list = cJSON_CreateArray();
                for (int i = 0; i < k; i++) cJSON_AddItemToArray(list, answer_json(&res.answers.items[i]));
                print_json(list);
                cJSON_Delete(list);
            } else {
                cJSON *o = answer_json(&res.answers.items[0]);
                print_json(o);
                cJSON_Delete(o);
            }
        } else {
            for (int i = 0; i < k; i++) {
                const bq_answer *ans = &res.answers.items[i];
                if (k > 1) printf("%d. ", i + 1);
                printf("%s\n", ans->text);
                if (ans->char_start >= 0)
                    printf("   characters %d-%d of the context, score %.4f, probability %.4f\n", ans->char_start,
                           ans->char_end, ans->score, ans->probability);
                else
                    printf("   no answer span found in the context\n");
            }
        }
    }
    bq_qa_result_free(&res);
    session_close(&s);
    free(owned);
    return cli_exit_status(st);
}

/* ---- squad ------------------------------------------------------------------------------------ */

typedef struct {
    const bq_squad_dataset *ds;
    cJSON *predictions;
    cJSON *nbest;     /* NULL unless --nbest */
    char **answers;   /* [n_questions] for scoring */
    bool *repeated;   /* [n_questions]: the id of an earlier question again */
    const int *question_of; /* [requests] the question each pipeline request asks */
    int next;         /* the first question not yet recorded (file order) */
    bool out_of_memory; /* an answer could not be kept for scoring */
    int done, failed;
    bool progress;        /* a bar redrawn in place (stderr is a terminal) */
    double line_seconds;  /* else a progress line this often (-1: none, --quiet) */
    double t_start, t_last;
} squad_sink;

static const bq_squad_question *questions_to_sort;

static int by_id_then_index(const void *a, const void *b) {
    const int i = *(const int *)a, j = *(const int *)b;
    const int c = strcmp(questions_to_sort[i].id, questions_to_sort[j].id);
    return c ? c : (i > j) - (i < j);
}

/* Marks each question whose id an earlier question has (a predictions file holds one answer per
 * id); returns how many, or -1 when out of memory. */
static int mark_repeated_ids(const bq_squad_dataset *ds, bool *repeated) {
    const int n = ds->n_questions;
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) return -1;
    for (int i = 0; i < n; i++) order[i] = i;
    questions_to_sort = ds->questions;
    qsort(order, (size_t)n, sizeof *order, by_id_then_index);
    int count = 0;
    for (int k = 1; k < n; k++)
        if (strcmp(ds->questions[order[k]].id, ds->questions[order[k - 1]].id) == 0) {
            repeated[order[k]] = true;
            count++;
        }
    free(order);
    return count;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void show_progress(squad_sink *k, bool final) {
    double now = wall_now();
    if (!final && now - k->t_last < (k->progress ? 0.2 : k->line_seconds)) return;
    k->t_last = now;
    int n = k->ds->n_questions;
    double el = now - k->t_start, rate = el > 0 ? k->done / el : 0;
    double left = rate > 0 ? (n - k->done) / rate : 0;
    if (!k->progress) { /* a log file: whole lines, never a carriage return */
        fprintf(stderr, "bertqa-gpu squad: %d/%d questions (%.1f%%), %.1f questions/s, about %d:%02d left\n",
                k->done, n, n ? 100.0 * k->done / n : 100.0, rate, (int)left / 60, (int)left % 60);
        fflush(stderr);
        return;
    }
    int width = 30, fill = n ? (int)((long)width * k->done / n) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %d/%d questions  %.1f q/s  %d:%02d left ", bar, k->done, n, rate, (int)left / 60,
            (int)left % 60);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

/* Question `index`'s outcome into the predictions (file order: the caller records every question
 * before it first). */
static void squad_record(squad_sink *k, int index, const bq_qa_result *r) {
    const bq_squad_question *q = &k->ds->questions[index];
    const char *text = "";
    if (r->status != BQ_OK) {
        fprintf(stderr, "%sbertqa-gpu squad: question %s: %s (predicting \"\")\n", k->progress ? "\n" : "", q->id,
                r->error);
        k->failed++;
    } else {
        text = r->answers.items[0].text;
    }
    if (!(k->answers[index] = strdup(text))) k->out_of_memory = true;
    if (k->repeated[index]) { /* answered, but the predictions keep the id's first question */
        fprintf(stderr, "%sbertqa-gpu squad: question %s: its id repeats an earlier question's; "
                "the predictions keep the first\n", k->progress ? "\n" : "", q->id);
        k->failed += r->status == BQ_OK;
        k->done++;
        return;
    }
    cJSON_AddStringToObject(k->predictions, q->id, text);
    if (k->nbest) {
        cJSON *list = cJSON_CreateArray();
        for (int i = 0; r->status == BQ_OK && i < r->answers.n; i++) {
            const bq_answer *ans = &r->answers.items[i];
            cJSON *o = answer_json(ans);
            cJSON_AddNumberToObject(o, "start_logit", ans->start_logit);
            cJSON_AddNumberToObject(o, "end_logit", ans->end_logit);
            cJSON_AddItemToArray(list, o);
        }
        cJSON_AddItemToObject(k->nbest, q->id, list);
    }
    k->done++;
    if (k->progress || k->line_seconds >= 0) show_progress(k, false);
}

/* Record the questions before `until` that were never asked: damaged records, which fail with
 * their problem (a damaged question is never a pipeline request). */
static void squad_record_damaged(squad_sink *k, int until) {
    for (; k->next < until; k->next++) {
        bq_qa_result r = {.status = BQ_ERR_FORMAT};
        snprintf(r.error, sizeof r.error, "%s", k->ds->questions[k->next].problem);
        squad_record(k, k->next, &r);
    }
}

static void squad_emit(void *ctx, int request, const bq_qa_result *r) {
    squad_sink *k = ctx;
    const int index = k->question_of[request];
    squad_record_damaged(k, index);
    squad_record(k, index, r);
    k->next = index + 1;
}

/* Write j into out (opened before the work) and put the file in place; false after a message. */
static bool write_json_output(const char *cmd, bq_output_file *out, cJSON *j) {
    bq_err err;
    bq_err_clear(&err);
    if (bq_output_commit_text(out, cJSON_PrintUnformatted(j), &err) == BQ_OK) return true;
    cli_error(cmd, "%s", err.message);
    return false;
}

int cmd_squad(const cli_args *a) {
    bq_err err;
    bq_err_clear(&err);
    bq_squad_dataset *ds = NULL;
    /* a damaged record fails alone (its question predicted "", or reported where it has no id) */
    if (bq_squad_load(a->value[OPT_INPUT], BQ_SQUAD_KEEP_GOING, &ds, &err) != BQ_OK)
        return cli_error("squad", "%s", err.message);
    /* the outputs are opened before the model loads: a path that cannot be written fails now */
    bq_output_file *pred_out = NULL, *nbest_out = NULL;
    if (bq_output_open(a->value[OPT_OUTPUT], &pred_out, &err) != BQ_OK ||
        (a->given[OPT_NBEST_FILE] && bq_output_open(a->value[OPT_NBEST_FILE], &nbest_out, &err) != BQ_OK)) {
        bq_output_discard(pred_out);
        bq_squad_free(ds);
        return cli_error("squad", "%s", err.message);
    }
    /* predictions or n-best on standard output: the scores go to stderr instead */
    const bool writes_stdout = cli_is_stdout(a->value[OPT_OUTPUT]) ||
                               (a->given[OPT_NBEST_FILE] && cli_is_stdout(a->value[OPT_NBEST_FILE]));
    /* compared resolved, so one file under two names is caught too */
    if (nbest_out && strcmp(bq_output_target(pred_out), bq_output_target(nbest_out)) == 0) {
        cli_error("squad", "--output and --nbest name the same file (%s): give each its own",
                  bq_output_target(pred_out));
        bq_output_discard(pred_out);
        bq_output_discard(nbest_out);
        bq_squad_free(ds);
        return 2;
    }
    session s;
    const int open_status = session_open("squad", a, &s);
    if (open_status) {
        session_close(&s);
        bq_output_discard(pred_out);
        bq_output_discard(nbest_out);
        bq_squad_free(ds);
        return open_status;
    }
    int n = ds->n_questions;
    bq_qa_request *req = calloc(n ? (size_t)n : 1, sizeof *req);
    int *question_of = calloc(n ? (size_t)n : 1, sizeof *question_of);
    squad_sink sink = {.ds = ds, .predictions = cJSON_CreateObject(), .question_of = question_of};
    sink.answers = calloc(n ? (size_t)n : 1, sizeof *sink.answers);
    sink.repeated = calloc(n ? (size_t)n : 1, sizeof *sink.repeated);
    if (!req || !question_of || !sink.answers || !sink.repeated || mark_repeated_ids(ds, sink.repeated) < 0) {
        free(sink.answers), free(sink.repeated), free(req), free(question_of);
        cJSON_Delete(sink.predictions);
        bq_output_discard(pred_out);
        bq_output_discard(nbest_out);
        session_close(&s);
        bq_squad_free(ds);
        return cli_error("squad", "out of memory for %d questions", n);
    }
    if (a->given[OPT_NBEST_FILE]) sink.nbest = cJSON_CreateObject();
    sink.progress = !a->given[OPT_QUIET] && isatty(2);
    sink.line_seconds = -1;
    if (!a->given[OPT_QUIET] && !sink.progress) {
        /* not a terminal (a log, a CI job): a line every 30 s, so hours of CPU answering show life */
        const char *every = getenv("BQ_PROGRESS_SECONDS");
        const double seconds = every ? atof(every) : -1;
        sink.line_seconds = seconds >= 0 ? seconds : 30;
    }
    sink.t_start = sink.t_last = wall_now();
    int n_requests = 0, n_damaged_questions = 0;
    for (int i = 0; i < n; i++) {
        const bq_squad_question *q = &ds->questions[i];
        if (q->problem) {
            n_damaged_questions++;
            continue;
        }
        const char *ctx = ds->contexts[q->paragraph];
        question_of[n_requests] = i;
        req[n_requests++] = (bq_qa_request){q->question, strlen(q->question), ctx, strlen(ctx)};
    }
    fprintf(stderr, "bertqa-gpu squad: %d questions on %s, batch %d\n", n, bq_engine_describe(s.engine),
            bq_engine_get_options(s.engine)->max_batch);
    /* records that name no question: nothing to predict, but the run says so and fails */
    for (int i = 0; i < ds->n_damaged; i++)
        fprintf(stderr, "bertqa-gpu squad: %s (a record with no question id: skipped)\n", ds->damaged[i]);
    sink.failed += ds->n_damaged;
    bq_qa_stats stats;
    bq_status st = bq_qa_pipeline(s.qa, req, n_requests, squad_emit, &sink, &stats, &err);
    if (st == BQ_OK) squad_record_damaged(&sink, n); /* those after the last request */
    if (st == BQ_OK && sink.out_of_memory) st = bq_fail(&err, BQ_ERR_NOMEM, "out of memory keeping the answers");
    if (sink.progress) show_progress(&sink, true);
    if (st != BQ_OK) {
        cli_error("squad", "%s", err.message);
        /* the answers made before an engine failure are kept, in a file that says it is not whole
         * (no EM/F1; the exit status is the failure's); none made: the targets stay as they were */
        const int kept = cJSON_GetArraySize(sink.predictions);
        if (kept > 0 && !sink.out_of_memory) {
            char target[4096];
            snprintf(target, sizeof target, "%s", bq_output_target(pred_out));
            bool ok = write_json_output("squad", pred_out, sink.predictions);
            pred_out = NULL;
            if (ok && nbest_out) {
                ok = write_json_output("squad", nbest_out, sink.nbest);
                nbest_out = NULL;
            }
            if (ok)
                cli_error("squad", "%s holds the predictions made before the failure: %d of the %d "
                          "questions; the others have none", target, sink.done, n);
        }
    } else {
        bool ok = write_json_output("squad", pred_out, sink.predictions);
        pred_out = NULL;
        if (ok && nbest_out) {
            ok = write_json_output("squad", nbest_out, sink.nbest);
            nbest_out = NULL;
        }
        if (!ok) st = BQ_ERR_IO;
        /* the CUDA engine's one-time costs: each new (batch, length) times its kernels */
        int first_shapes;
        double first_seconds;
        bq_engine_first_passes(s.engine, &first_shapes, &first_seconds);
        char first_passes[96] = "";
        if (first_shapes > 0)
            snprintf(first_passes, sizeof first_passes, "; first passes of %d shapes %.2f s",
                     first_shapes, first_seconds);
        fprintf(stderr,
                "bertqa-gpu squad: %d questions, %ld windows in %.2f s (%.1f questions/s); engine %.2f s, "
                "host work %.2f s (overlapped); %ld engine batches, %ld partial; %ld token positions "
                "(%.1f%% of padded)%s%s\n",
                n, stats.windows, stats.wall_seconds, stats.wall_seconds > 0 ? n / stats.wall_seconds : 0.0,
                stats.engine_seconds, stats.host_seconds, stats.batches, stats.partial_batches,
                stats.positions,
                stats.windows > 0 ? 100.0 * (double)stats.positions /
                                        ((double)stats.windows * a->squad.max_seq_length)
                                  : 0.0,
                first_passes, sink.failed ? "; some questions failed" : "");
        int with_gold = 0;
        for (int i = 0; i < n; i++) with_gold += ds->questions[i].n_answers > 0;
        if (ok && with_gold > 0 && (ds->n_damaged > 0 || n_damaged_questions > 0)) {
            /* EM and F1 over a file whose gold cannot all be read would mislead */
            cli_error("squad", "not scored: %d damaged record(s) in %s (see above)",
                      ds->n_damaged + n_damaged_questions, a->value[OPT_INPUT]);
        } else if (ok && with_gold > 0) {
            /* scored as the predictions file reads: one answer per id, the first question's */
            bq_predictions pred = {.n = 0};
            pred.ids = malloc((size_t)(n ? n : 1) * sizeof *pred.ids);
            pred.answers = malloc((size_t)(n ? n : 1) * sizeof *pred.answers);
            for (int i = 0; pred.ids && pred.answers && i < n; i++)
                if (!sink.repeated[i]) {
                    pred.ids[pred.n] = ds->questions[i].id;
                    pred.answers[pred.n++] = sink.answers[i];
                }
            bq_squad_scores sc;
            if (!pred.ids || !pred.answers)
                cli_error("squad", "out of memory for scoring %d questions", n);
            else if (bq_squad_evaluate(ds, &pred, &sc, &err) == BQ_OK)
                /* stdout, unless the predictions went there (--output -) */
                cli_print_scores(writes_stdout ? stderr : stdout, sc.exact_match, sc.f1);
            else
                cli_error("squad", "%s", err.message);
            free(pred.ids);
            free(pred.answers);
        }
    }
    bq_output_discard(pred_out); /* still open where the run failed: the targets stay as they were */
    bq_output_discard(nbest_out);
    for (int i = 0; i < n; i++) free(sink.answers[i]);
    free(sink.answers);
    free(sink.repeated);
    free(question_of);
    cJSON_Delete(sink.predictions);
    cJSON_Delete(sink.nbest);
    free(req);
    session_close(&s);
    bq_squad_free(ds);
    if (st == BQ_OK && sink.failed) return 1;
    return cli_exit_status(st);
}

/* ---- jsonl ------------------------------------------------------------------------------------ */

typedef bq_jsonl_record jsonl_record; /* src/jsonl.h: parsing and error lines */

typedef struct {
    jsonl_record *rec;
    int *req_to_rec;
} jsonl_sink;

static void jsonl_emit(void *ctx, int index, const bq_qa_result *r) {
    jsonl_sink *k = ctx;
    jsonl_record *rec = &k->rec[k->req_to_rec[index]];
    if (r->status != BQ_OK) {
        rec->out_line = bq_jsonl_error_line(rec->id, r->error);
        rec->failed = true;
        return;
    }
    cJSON *o = answer_json(&r->answers.items[0]);
    cJSON *line = cJSON_CreateObject();
    if (!o || !line) {
        cJSON_Delete(o);
        cJSON_Delete(line);
        rec->out_line = bq_jsonl_error_line(rec->id, "out of memory for the answer");
        rec->failed = true;
        return;
    }
    cJSON_AddItemToObject(line, "id", cJSON_Duplicate(rec->id, 1));
    for (cJSON *it = o->child; it; it = it->next) cJSON_AddItemToObject(line, it->string, cJSON_Duplicate(it, 1));
    cJSON_Delete(o);
    rec->out_line = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
}

int cmd_jsonl(const cli_args *a) {
    session s;
    const int open_status = session_open("jsonl", a, &s);
    if (open_status) {
        session_close(&s);
        return open_status;
    }
    /* Read what is available (up to a few engine batches), answer it, print it, repeat: a file is
     * answered at full batch size, an interactive stream line by line. Length buckets sort what
     * was read by length: twice the batches, as the pipeline's chunks (src/qa.c). */
    const int max_records =
        bq_engine_get_options(s.engine)->max_batch * (a->squad.length_bucket > 0 || a->squad.pack ? 16 : 8);
    jsonl_record *rec = calloc((size_t)max_records, sizeof *rec);
    bq_qa_request *req = calloc((size_t)max_records, sizeof *req);
    int *req_to_rec = calloc((size_t)max_records, sizeof *req_to_rec);
    /* our own buffer, not stdio's: lines already read in count as input that is there now */
    bq_line_reader *reader = bq_line_reader_create(0);
    if (!rec || !req || !req_to_rec || !reader) {
        free(rec), free(req), free(req_to_rec);
        bq_line_reader_free(reader);
        session_close(&s);
        cli_error("jsonl", "out of memory for %d records", max_records);
        return cli_exit_status(BQ_ERR_NOMEM);
    }
    bool eof = false;
    bq_status st = BQ_OK;       /* stdin's and the first engine failure's */
    int engine_failures = 0;    /* reads whose pipeline call failed */
    bq_err err;
    bq_err_clear(&err);
    int bad = 0, not_answered = 0, read_errno = 0; /* records answered with an error; not reached */
    while (!eof) {
        int n = 0;
        while (n < max_records) {
            char *line;
            size_t len;
            const int got = bq_line_reader_next(reader, &line, &len);
            if (got <= 0) {
                eof = true;
                if (got < 0) read_errno = errno ? errno : EIO; /* what was read is answered */
                break;
            }
            bq_jsonl_record_parse(line, len, &rec[n++]);
            if (!bq_line_reader_ready(reader)) break;
        }
        if (n == 0) continue; /* the input ended where a read began */
        int n_req = 0;
        for (int i = 0; i < n; i++) {
            if (rec[i].error[0]) continue;
            req[n_req] = (bq_qa_request){rec[i].question, strlen(rec[i].question), rec[i].context,
                                         strlen(rec[i].context)};
            req_to_rec[n_req++] = i;
        }
        jsonl_sink sink = {rec, req_to_rec};
        bq_err call_err;
        bq_err_clear(&call_err);
        const bq_status call = bq_qa_pipeline(s.qa, req, n_req, jsonl_emit, &sink, NULL, &call_err);
        /* An engine failure (or no memory) costs this read the records it had not answered yet:
         * they get its error, what it answered before goes out, and the stream goes on (a failed
         * CUDA call may not recur; if the device is lost, every later record gets an error line
         * too). Said once on stderr; the exit status is the first failure's. */
        char unanswered[sizeof call_err.message + 32] = "";
        if (call != BQ_OK) {
            snprintf(unanswered, sizeof unanswered, "not answered: %s", call_err.message);
            if (engine_failures++ == 0) {
                cli_error("jsonl", "%s (the records it left unanswered get error lines; reading goes on)",
                          call_err.message);
                st = call;
                err = call_err;
            }
        }
        for (int i = 0; i < n; i++) {
            bool unreached = false; /* left unanswered by the engine's failure */
            if (!rec[i].out_line) {
                unreached = !rec[i].error[0] && call != BQ_OK;
                rec[i].out_line = bq_jsonl_error_line(rec[i].id, unreached ? unanswered : rec[i].error);
                rec[i].failed = true;
            }
            not_answered += unreached;
            bad += rec[i].failed && !unreached;
            /* one line out for every line in, even with no memory left for the record's own */
            puts(rec[i].out_line ? rec[i].out_line : "{\"id\":null,\"error\":\"out of memory\"}");
            bq_jsonl_record_clear(&rec[i]);
        }
        errno = 0;
        if (fflush(stdout) != 0 || ferror(stdout)) { /* nowhere to answer: main says so */
            cli_stdout_errno = errno;
            break;
        }
    }
    if (engine_failures > 1)
        cli_error("jsonl", "the engine failed on %d reads of the stream; the first: %s", engine_failures,
                  err.message);
    if (bad) fprintf(stderr, "bertqa-gpu jsonl: %d record(s) answered with an error\n", bad);
    if (not_answered)
        fprintf(stderr, "bertqa-gpu jsonl: %d record(s) not answered (the engine's failure)\n", not_answered);
    if (read_errno) {
        cli_error("jsonl", "reading standard input failed: %s", strerror(read_errno));
        if (st == BQ_OK) st = BQ_ERR_IO;
    }
    bq_line_reader_free(reader);
    free(rec);
    free(req);
    free(req_to_rec);
    session_close(&s);
    /* as squad: every record was answered, but some with an error record */
    if (st == BQ_OK && bad) return 1;
    return cli_exit_status(st);
}

/* ---- logits ----------------------------------------------------------------------------------- */

static cJSON *float_array(const float *v, int n) { return cJSON_CreateFloatArray(v, n); }

int cmd_logits(const cli_args *a) {
    const char *context;
    size_t context_len;
    char *owned;
    const int context_status = cli_context("logits", a, &context, &context_len, &owned);
    if (context_status) return context_status;
    session s;
    const int open_status = session_open("logits", a, &s);
    if (open_status) {
        session_close(&s);
        free(owned);
        return open_status;
    }
    bq_qa_request req = {a->value[OPT_QUESTION], strlen(a->value[OPT_QUESTION]), context, context_len};
    bq_qa_logits lg;
    bq_err err;
    bq_err_clear(&err);
    bq_status st = bq_qa_compute_logits(s.qa, &req, &lg, &err);
    if (st != BQ_OK) {
        cli_error("logits", "%s", err.message);
    } else {
        const int S = lg.features.max_seq_length;
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "engine", bq_engine_describe(s.engine));
        cJSON_AddNumberToObject(root, "max_seq_length", S);
        cJSON *wins = cJSON_AddArrayToObject(root, "windows");
        for (int w = 0; w < lg.features.n_windows; w++) {
            const bq_window *win = &lg.features.windows[w];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "doc_offset", win->doc_offset);
            cJSON_AddNumberToObject(o, "tokens", win->n_tokens);
            cJSON_AddItemToObject(o, "input_ids", cJSON_CreateIntArray((const int *)win->input_ids, S));
            cJSON_AddItemToObject(o, "input_mask", cJSON_CreateIntArray((const int *)win->input_mask, S));
            cJSON_AddItemToObject(o, "segment_ids", cJSON_CreateIntArray((const int *)win->segment_ids, S));
            cJSON_AddItemToObject(o, "start_logits", float_array(lg.start_logits + (size_t)w * S, S));
            cJSON_AddItemToObject(o, "end_logits", float_array(lg.end_logits + (size_t)w * S, S));
            cJSON_AddItemToArray(wins, o);
        }
        print_json(root);
        cJSON_Delete(root);
        bq_qa_logits_free(&lg);
    }
    session_close(&s);
    free(owned);
    return cli_exit_status(st);
}
