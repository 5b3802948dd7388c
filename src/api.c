/* api.c - the public interface of include/bertqa.h over the internal modules: named settings
 * (settings.c), a reader = model + engine + question-answering pipeline (qa.c), and results that
 * own their answers. */
#include "bertqa.h"
#include "qa.h"
#include "settings.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BQ_STRINGIFY_(x) #x
#define BQ_STRINGIFY(x) BQ_STRINGIFY_(x)

const char *bq_version_string(void) {
    return BQ_STRINGIFY(BQ_VERSION_MAJOR) "." BQ_STRINGIFY(BQ_VERSION_MINOR) "." BQ_STRINGIFY(BQ_VERSION_PATCH);
}

/* ---- settings ---------------------------------------------------------------------------------- */

struct bq_settings {
    bq_engine_options engine; /* engine.tuning_cache points at tuning_cache */
    bq_squad_options squad;
    char *tuning_cache;       /* heap copies of the string settings (NULL: unset) */
    char *vocab;
};

bq_settings *bq_settings_create(void) {
    bq_settings *s = calloc(1, sizeof *s);
    if (s) bq_settings_defaults(&s->engine, &s->squad);
    return s;
}

void bq_settings_free(bq_settings *s) {
    if (!s) return;
    free(s->tuning_cache);
    free(s->vocab);
    free(s);
}

bq_status bq_settings_set(bq_settings *s, const char *name, const char *value, bq_err *err) {
    if (!s || !name || !value)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_settings_set needs settings, a name and a value");
    const int is_vocab = strcmp(name, "vocab") == 0;
    char *copy = NULL;
    if (is_vocab || strcmp(name, "tuning-cache") == 0) {
        if (!value[0]) return bq_fail(err, BQ_ERR_INVALID_ARG, "%s needs a file name", name);
        if (!(copy = bq_strndup(value, strlen(value)))) return bq_fail(err, BQ_ERR_NOMEM, "out of memory");
    }
    if (is_vocab) {
        free(s->vocab);
        s->vocab = copy;
        return BQ_OK;
    }
    /* on a copy, so that a bad value changes nothing */
    bq_engine_options engine = s->engine;
    bq_squad_options squad = s->squad;
    bq_status st = bq_settings_apply(name, copy ? copy : value, "", &engine, &squad, err);
    if (st != BQ_OK) {
        free(copy);
        return st;
    }
    if (copy) {
        free(s->tuning_cache);
        s->tuning_cache = copy;
    }
    s->engine = engine;
    s->squad = squad;
    return BQ_OK;
}

/* ---- the reader -------------------------------------------------------------------------------- */

struct bq_reader {
    bq_model *model;
    bq_engine *engine;
    bq_qa *qa;
    char *tuning_cache; /* the engine options point here: settings may be freed after create */
    char description[1024];
    pthread_mutex_t lock; /* calls from several threads run one at a time */
    bq_progress_fn progress; /* bq_reader_set_progress (NULL: none); set and read under lock */
    void *progress_user;
};

void bq_reader_free(bq_reader *r) {
    if (!r) return;
    if (r->engine) bq_engine_save_tuning(r->engine, NULL);
    bq_qa_free(r->qa);
    bq_engine_free(r->engine);
    bq_model_free(r->model);
    free(r->tuning_cache);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

bq_status bq_reader_create(const char *model, const bq_settings *settings, bq_reader **out, bq_err *err) {
    if (!out) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_reader_create needs somewhere to put the reader");
    *out = NULL;
    if (!model || !model[0]) return bq_fail(err, BQ_ERR_INVALID_ARG, "no model folder given");
    bq_settings defaults = {0};
    if (!settings) {
        bq_settings_defaults(&defaults.engine, &defaults.squad);
        settings = &defaults;
    }
    bq_engine_options engine = settings->engine;
    bq_squad_options squad = settings->squad;
    engine.tune = 1; /* a reader is made to answer many questions */
    bq_status st = bq_settings_finish(&engine, &squad, "", err);
    if (st != BQ_OK) return st;
    bq_reader *r = calloc(1, sizeof *r);
    if (!r) return bq_fail(err, BQ_ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return bq_fail(err, BQ_ERR_NOMEM, "cannot create the reader's lock");
    }
    if (settings->tuning_cache && !(r->tuning_cache = bq_strndup(settings->tuning_cache, strlen(settings->tuning_cache)))) {
        bq_reader_free(r);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory");
    }
    engine.tuning_cache = r->tuning_cache;
    if ((st = bq_model_load(model, settings->vocab, &r->model, err)) == BQ_OK &&
        (st = bq_engine_create(r->model, &engine, &r->engine, err)) == BQ_OK)
        st = bq_qa_create(r->model, r->engine, &squad, &r->qa, err);
    if (st != BQ_OK) {
        bq_reader_free(r);
        return st;
    }
    const bq_config *c = &r->model->config;
    snprintf(r->description, sizeof r->description, "%s; %s: %d layers, hidden %d, %d heads%s",
             bq_engine_describe(r->engine), r->model->dir, c->num_layers, c->hidden_size, c->num_heads,
             c->random_weights ? "; RANDOM weights made by bertqa-make-model: its answers mean nothing" : "");
    *out = r;
    return BQ_OK;
}

bq_status bq_reader_save_tuning(bq_reader *r, bq_err *err) {
    if (!r) return bq_fail(err, BQ_ERR_INVALID_ARG, "no reader");
    pthread_mutex_lock(&r->lock);
    const bq_status st = bq_engine_save_tuning(r->engine, err);
    pthread_mutex_unlock(&r->lock);
    return st;
}

void bq_reader_set_progress(bq_reader *r, bq_progress_fn fn, void *user) {
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    r->progress = fn;
    r->progress_user = user;
    pthread_mutex_unlock(&r->lock);
}

const char *bq_reader_describe(const bq_reader *r) {
    return r ? r->description : "no reader";
}

/* ---- results ----------------------------------------------------------------------------------- */

/* Fill *out from a status, a message and answers (copied into one block it owns). */
static void result_fill(bq_result *out, bq_status status, const char *error, const bq_answers *answers,
                        int n_windows) {
    memset(out, 0, sizeof *out);
    out->status = status;
    out->error = "";
    out->n_windows = n_windows;
    const int n = answers ? answers->n : 0;
    size_t bytes = (size_t)n * sizeof(bq_span) + (status != BQ_OK ? strlen(error) + 1 : 0);
    for (int i = 0; i < n; i++) bytes += strlen(answers->items[i].text) + 1;
    char *block = bytes ? malloc(bytes) : NULL;
    if (bytes && !block) {
        out->status = BQ_ERR_NOMEM;
        out->error = "out of memory for this request's answers";
        return;
    }
    out->storage_ = block;
    bq_span *spans = (bq_span *)block;
    char *text = block + (size_t)n * sizeof(bq_span);
    for (int i = 0; i < n; i++) {
        const bq_answer *a = &answers->items[i];
        size_t len = strlen(a->text) + 1;
        memcpy(text, a->text, len);
        spans[i] = (bq_span){text, a->char_start, a->char_end, a->byte_start, a->byte_end, a->score,
                             a->probability};
        text += len;
    }
    if (n) {
        out->answers = spans;
        out->n_answers = n;
    }
    if (status != BQ_OK) {
        memcpy(text, error, strlen(error) + 1);
        out->error = text;
    }
}

void bq_results_clear(bq_result *results, size_t n) {
    if (!results) return;
    for (size_t i = 0; i < n; i++) {
        free(results[i].storage_);
        memset(&results[i], 0, sizeof results[i]);
    }
}

typedef struct {
    bq_result *results; /* this slice's */
    int emitted;
    bq_progress_fn progress; /* the reader's when the call started (NULL: none) */
    void *progress_user;
    size_t before, total;    /* the call's requests answered before this slice, and in all */
} answer_sink;

static void emit_result(void *ctx, int index, const bq_qa_result *r) {
    answer_sink *sink = ctx;
    result_fill(&sink->results[index], r->status, r->error, r->status == BQ_OK ? &r->answers : NULL,
                r->n_windows);
    sink->emitted = index + 1;
    if (sink->progress) sink->progress(sink->progress_user, sink->before + (size_t)index + 1, sink->total);
}

/* requests per pipeline call: its counts are ints */
#define SLICE (1 << 20)

bq_status bq_reader_answer(bq_reader *r, const bq_request *requests, size_t n, bq_result *results,
                           bq_err *err) {
    if (!r || (n && (!requests || !results)))
        return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_reader_answer needs a reader, requests and results");
    bq_status st = BQ_OK;
    size_t done = 0;
    bq_qa_request *slice = NULL;
    pthread_mutex_lock(&r->lock); /* the callback the call reports to, whatever is set meanwhile */
    const bq_progress_fn progress = r->progress;
    void *const progress_user = r->progress_user;
    pthread_mutex_unlock(&r->lock);
    if (n) slice = malloc((n < SLICE ? n : SLICE) * sizeof *slice);
    if (n && !slice) st = bq_fail(err, BQ_ERR_NOMEM, "out of memory");
    while (st == BQ_OK && done < n) {
        const int count = (int)(n - done < SLICE ? n - done : SLICE);
        for (int i = 0; i < count; i++) {
            /* a NULL text of length 0 is an empty one; of any other length it is refused below */
            const bq_request *q = &requests[done + (size_t)i];
            slice[i] = (bq_qa_request){q->question ? q->question : "", q->question ? q->question_len : 0,
                                       q->context ? q->context : "", q->context ? q->context_len : 0};
        }
        answer_sink sink = {results + done, 0, progress, progress_user, done, n};
        pthread_mutex_lock(&r->lock);
        st = bq_qa_pipeline(r->qa, slice, count, emit_result, &sink, NULL, err);
        pthread_mutex_unlock(&r->lock);
        for (int i = 0; i < sink.emitted; i++) {
            const bq_request *q = &requests[done + (size_t)i];
            if ((!q->question && q->question_len) || (!q->context && q->context_len)) {
                bq_results_clear(&results[done + (size_t)i], 1);
                result_fill(&results[done + (size_t)i], BQ_ERR_INVALID_ARG,
                            "the request's question or context is NULL with a nonzero length", NULL, 0);
            }
        }
        done += (size_t)sink.emitted;
        if (st == BQ_OK && sink.emitted != count)
            st = bq_fail(err, BQ_ERR_DEVICE, "the pipeline answered %d of %d requests", sink.emitted, count);
    }
    free(slice);
    /* what an engine failure left unanswered carries that failure */
    for (size_t i = done; i < n; i++)
        result_fill(&results[i], st, err && err->status == st ? err->message : bq_status_string(st), NULL, 0);
    return st;
}
