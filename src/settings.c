/* settings.c - the named run settings shared by the command line and the public API. */
#include "settings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bq_settings_defaults(bq_engine_options *engine, bq_squad_options *squad) {
    bq_engine_options_default(engine);
    engine->max_batch = 0;
    const bq_squad_options defaults = BQ_SQUAD_OPTIONS_DEFAULT;
    *squad = defaults;
}

bq_status bq_parse_int_range(const char *label, const char *s, int lo, int hi, int *out, bq_err *err) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end != '\0' || v < lo || v > hi)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "%s expects an integer in [%d, %d], got '%s'", label, lo, hi,
                       s ? s : "(null)");
    *out = (int)v;
    return BQ_OK;
}

/* The integer settings and their ranges. */
typedef struct {
    const char *name;
    int lo, hi;
    size_t offset; /* in the engine options (engine == 1) or the window options */
    int engine;
} int_setting;

#define SQUAD_INT(name, lo, hi, field) {name, lo, hi, offsetof(bq_squad_options, field), 0}
#define ENGINE_INT(name, lo, hi, field) {name, lo, hi, offsetof(bq_engine_options, field), 1}
static const int_setting int_settings[] = {
    SQUAD_INT("max-seq-length", 8, 4096, max_seq_length),
    SQUAD_INT("max-query-length", 1, 4096, max_query_length),
    SQUAD_INT("doc-stride", 1, 4096, doc_stride),
    SQUAD_INT("n-best", 1, 1000, n_best),
    SQUAD_INT("max-answer-length", 1, 4096, max_answer_length),
    SQUAD_INT("length-bucket", 0, 4096, length_bucket),
    SQUAD_INT("pack", 0, 1, pack),
    ENGINE_INT("threads", 1, 1024, threads),
    ENGINE_INT("batch", 1, 4096, max_batch),
};

bq_status bq_settings_apply(const char *name, const char *value, const char *prefix,
                            bq_engine_options *engine, bq_squad_options *squad, bq_err *err) {
    if (!name || !value) return bq_fail(err, BQ_ERR_INVALID_ARG, "a setting needs a name and a value");
    for (size_t i = 0; i < sizeof int_settings / sizeof *int_settings; i++) {
        const int_setting *s = &int_settings[i];
        if (strcmp(name, s->name) != 0) continue;
        char label[64];
        snprintf(label, sizeof label, "%s%s", prefix, name);
        char *base = s->engine ? (char *)engine : (char *)squad;
        return bq_parse_int_range(label, value, s->lo, s->hi, (int *)(base + s->offset), err);
    }
    bq_status st = BQ_OK;
    if (strcmp(name, "device") == 0) {
        bq_device_kind kind;
        int index;
        if ((st = bq_parse_device(value, &kind, &index, err)) == BQ_OK) {
            engine->device = kind;
            engine->device_index = index;
        }
    } else if (strcmp(name, "precision") == 0) {
        st = bq_parse_precision(value, &engine->precision, err);
    } else if (strcmp(name, "attention") == 0) {
        st = bq_parse_attention(value, &engine->attention, err);
    } else if (strcmp(name, "tuning-cache") == 0) {
        if (!value[0]) return bq_fail(err, BQ_ERR_INVALID_ARG, "%stuning-cache needs a file name", prefix);
        engine->tuning_cache = value;
    } else {
        return bq_fail(err, BQ_ERR_INVALID_ARG, "unknown setting '%s%s'", prefix, name);
    }
    return st;
}

bq_status bq_settings_finish(bq_engine_options *engine, bq_squad_options *squad, const char *prefix,
                             bq_err *err) {
    if (engine->max_batch == 0) engine->max_batch = engine->device == BQ_DEVICE_CUDA ? 64 : 8;
    engine->seq_len = squad->max_seq_length;
    const char *p = prefix;
    if (squad->max_query_length + 3 >= squad->max_seq_length)
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "%smax-query-length %d leaves no room for the context in %smax-seq-length %d", p,
                       squad->max_query_length, p, squad->max_seq_length);
    if (squad->length_bucket > squad->max_seq_length)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "%slength-bucket %d exceeds %smax-seq-length %d", p,
                       squad->length_bucket, p, squad->max_seq_length);
    if (squad->pack && squad->length_bucket > 0)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "%spack and %slength-bucket are alternatives: give one", p, p);
    const int cudnn = engine->device == BQ_DEVICE_CUDA && engine->attention == BQ_ATTENTION_CUDNN;
    if (squad->pack && cudnn)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "%spack needs our attention kernel (cuDNN's is planned "
                       "for padded batches): use %sattention auto or own with it", p, p);
    if (squad->length_bucket > 0 && squad->length_bucket < squad->max_seq_length && cudnn)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "%slength-bucket trims batches, and cuDNN's attention is "
                       "planned for the full length only: use %sattention auto or own with it", p, p);
    return BQ_OK;
}
