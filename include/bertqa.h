/*
 * bertqa.h - public interface of bertqa-gpu, a BERT-large question-answering runtime.
 *
 * Conventions (after zstd): opaque handles with create/free pairs (free accepts NULL);
 * every fallible function returns a bq_status and, when given a bq_err, fills it with a
 * human-readable message naming what went wrong. Library code never exits or aborts.
 */
#ifndef BERTQA_H
#define BERTQA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status and errors ------------------------------------------------------------------ */

typedef enum {
    BQ_OK = 0,
    BQ_ERR_INVALID_ARG,  /* a caller passed something out of range or NULL */
    BQ_ERR_IO,           /* a file could not be opened, read, mapped or written */
    BQ_ERR_FORMAT,       /* a file's content is malformed (JSON, safetensors, vocab, ...) */
    BQ_ERR_UTF8,         /* input text is not valid UTF-8 */
    BQ_ERR_NOMEM,        /* host allocation failed */
    BQ_ERR_UNSUPPORTED,  /* valid but not supported (e.g. hidden_act other than erf gelu) */
    BQ_ERR_NO_DEVICE,    /* no usable GPU (none present, driver too old, built without CUDA) */
    BQ_ERR_DEVICE,       /* a CUDA / cuBLAS / cuDNN call failed */
    BQ_ERR_DEVICE_OOM,   /* device memory exhausted */
    BQ_STATUS_COUNT
} bq_status;

/* Short fixed description of a status ("ok", "invalid argument", ...). Never NULL. */
const char *bq_status_string(bq_status status);

/* Error details. Functions that take a `bq_err *` (may be NULL) write the message there on failure. */
typedef struct {
    bq_status status;
    char message[1024];
} bq_err;

/* ---- version ------------------------------------------------------------------------------- */

/* The library's version; CMakeLists.txt reads the project version from these three lines. */
#define BQ_VERSION_MAJOR 0
#define BQ_VERSION_MINOR 1
#define BQ_VERSION_PATCH 0

/* The version of the library actually linked, "MAJOR.MINOR.PATCH". Never NULL. */
const char *bq_version_string(void);

/* ---- settings ------------------------------------------------------------------------------ */

/* How a reader runs and cuts its windows. Opaque, set by name, so that new settings never change
 * the layout a program was compiled against. */
typedef struct bq_settings bq_settings;

/* Settings at their defaults (cpu, fp32, the SQuAD defaults 384/64/128, 20 best, answers of at
 * most 30 pieces). Returns NULL only when out of memory. */
bq_settings *bq_settings_create(void);
void bq_settings_free(bq_settings *settings); /* accepts NULL */

/* Set one setting. The names and values are the bertqa-gpu command line's options without the
 * leading "--" (see `bertqa-gpu ask --help`):
 *   device            "cpu", "cuda" or "cuda:N" (default cpu)
 *   precision         "fp32", "tf32", "fp16" or "bf16" (default fp32; cpu runs fp32 only)
 *   attention         "auto", "own" or "cudnn" (cuda only; default auto)
 *   threads           CPU threads of the cpu backend, 1..1024 (default: all cores, or
 *                     OPENBLAS_NUM_THREADS). The GEMMs run on OpenBLAS's thread count, which
 *                     is the whole process's: the last cpu reader created sets it (default
 *                     included) for every cpu reader, at most OpenBLAS's own limit; each
 *                     reader's row-wise work has threads of its own, as many
 *   batch             windows per forward pass, 1..4096 (default 8 on cpu, 64 on cuda)
 *   tuning-cache      a file that keeps the cuda engine's kernel timings between runs
 *   vocab             a vocabulary for a model folder that has neither vocab.txt nor tokenizer.json
 *   max-seq-length    window length in tokens, 8..4096 (default 384)
 *   max-query-length  question tokens kept, 1..4096 (default 64)
 *   doc-stride        step between window starts, 1..4096 (default 128)
 *   n-best            answers kept per question, 1..1000 (default 20)
 *   max-answer-length longest answer in tokens, 1..4096 (default 30)
 *   length-bucket     0..max-seq-length: run length-sorted windows cut to a multiple of N (0: pad)
 *   pack              "1" to run windows packed without padding, "0" not to (default 0)
 * The cpu backend runs OpenBLAS's kernels for this CPU; where Debian's OpenBLAS does not know the
 * CPU it falls back to slow SSE3 ones (bq_reader_describe names them): start the program with
 * OPENBLAS_CORETYPE=Haswell (or SkylakeX) then, as the command line does by itself.
 * Strings are copied. Returns BQ_OK, BQ_ERR_INVALID_ARG for an unknown name or a value out of
 * range (the message names the setting and what it accepts), or BQ_ERR_NOMEM; the settings are
 * then unchanged.
 * Settings that contradict each other are reported by bq_reader_create. */
bq_status bq_settings_set(bq_settings *settings, const char *name, const char *value, bq_err *err);

/* ---- answering questions ------------------------------------------------------------------- */

/* A model loaded onto one device, ready to answer. Readers are independent of each other, each
 * with its own device memory and stream; threads may share one reader, and their calls then run
 * one at a time (a call batches all its requests: one call with many beats many calls). */
typedef struct bq_reader bq_reader;

/* Load `model` (a Hugging Face checkpoint folder: config.json, model.safetensors or its shards,
 * vocab.txt or tokenizer.json; or a repo id, "org/name" or "org/name@revision", found in the
 * local Hugging Face cache, as huggingface_hub finds it offline) and create its
 * engine as `settings` say (NULL: the defaults). `settings` may be freed afterwards.
 * Returns BQ_OK with *out set; else *out is NULL and the status says why: BQ_ERR_IO (a file is
 * missing or unreadable), BQ_ERR_FORMAT (a malformed checkpoint), BQ_ERR_UNSUPPORTED (a model or
 * tokenizer this runtime does not implement, or a precision the device lacks),
 * BQ_ERR_INVALID_ARG (settings that contradict each other), BQ_ERR_NO_DEVICE (cuda asked for and
 * no usable GPU), BQ_ERR_DEVICE, BQ_ERR_DEVICE_OOM or BQ_ERR_NOMEM. */
bq_status bq_reader_create(const char *model, const bq_settings *settings, bq_reader **out,
                           bq_err *err);

/* Free the reader and its device memory, first writing the tuning cache if one was set (errors
 * are then lost: call bq_reader_save_tuning to see them). Accepts NULL. */
void bq_reader_free(bq_reader *reader);

/* Write the engine's kernel timings to the tuning-cache file (nothing to do without one).
 * Returns BQ_OK, BQ_ERR_IO (the message names the file and why; a file that is not a tuning
 * cache, or could not be read, is never overwritten) or BQ_ERR_INVALID_ARG (a NULL reader). */
bq_status bq_reader_save_tuning(bq_reader *reader, bq_err *err);

/* One line naming the device and how it runs, then the model's folder and shape ("cpu fp32
 * reference (OpenBLAS SkylakeX); /models/bert-large-squad: 24 layers, hidden 1024, 16 heads"), and
 * a warning where the weights are bertqa-make-model's random ones. Valid while the reader lives;
 * never NULL. */
const char *bq_reader_describe(const bq_reader *reader);

/* A question about a context, both UTF-8 (need not be NUL-terminated). */
typedef struct {
    const char *question;
    size_t question_len;
    const char *context;
    size_t context_len;
} bq_request;

/* One answer: a span of the context. */
typedef struct {
    const char *text;     /* NUL-terminated: exactly the context's characters [char_start, char_end),
                             or "empty" (and the offsets -1) when no span qualifies */
    int32_t char_start;   /* in Unicode code points, as Python indexes a str */
    int32_t char_end;
    int32_t byte_start;   /* the same span in bytes of the UTF-8 context */
    int32_t byte_end;
    double score;         /* start logit + end logit */
    double probability;   /* softmax over the answers kept (n-best) */
} bq_span;

/* A request's outcome. Owns its storage: release it with bq_results_clear. */
typedef struct {
    bq_status status;        /* this request's own outcome: one bad request fails alone */
    const char *error;       /* "" when status is BQ_OK, else what was wrong with the request */
    const bq_span *answers;  /* [n_answers], best first; at least one when status is BQ_OK */
    int n_answers;
    int n_windows;           /* windows (max-seq-length tokens each) the context was cut into */
    void *storage_;          /* private */
} bq_result;

/* Answer requests[0..n) into results[0..n): batched across requests, with the host's work
 * (tokenizing, windows, decoding) overlapping the device's. Unless `reader`, or with n > 0
 * `requests` or `results`, is NULL, every result is filled, even on failure (then with the
 * failure's status), and must be released with bq_results_clear. A request with bad input
 * (text that is not UTF-8, no context, a context with a NUL character) gets its own status and
 * message, and the others are answered. Where the engine fails partway, the requests answered
 * before the failure keep their answers. Returns BQ_OK, or the first failure of the engine itself
 * (BQ_ERR_DEVICE, BQ_ERR_DEVICE_OOM, BQ_ERR_NOMEM) or BQ_ERR_INVALID_ARG (NULL arguments). */
bq_status bq_reader_answer(bq_reader *reader, const bq_request *requests, size_t n, bq_result *results,
                           bq_err *err);

/* How far a bq_reader_answer call has come: `done` of its `total` requests are answered. */
typedef void (*bq_progress_fn)(void *user, size_t done, size_t total);

/* Have the reader's later bq_reader_answer calls report their progress to fn(user, done, total)
 * (fn NULL: no reports, the default); a call keeps the fn set when it started. A call reports
 * after each request it answers, in order (requests come out a few engine batches at a time, so
 * reports come in bursts), the last time with done == total unless the engine failed; a call
 * with no requests reports nothing. Only the count is final: read the results after the call
 * returns. fn runs on the thread that called bq_reader_answer, while that call holds the reader:
 * it must not call this reader's functions. With threads sharing a reader, every call reports
 * to the fn set when it started, so `user` must stay valid until the calls started before a
 * change have returned. reader NULL: nothing. */
void bq_reader_set_progress(bq_reader *reader, bq_progress_fn fn, void *user);

/* Release results[0..n) and zero them. Accepts NULL and zeroed results. */
void bq_results_clear(bq_result *results, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* BERTQA_H */
