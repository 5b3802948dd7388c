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

#ifdef __cplusplus
}
#endif
#endif /* BERTQA_H */
