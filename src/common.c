/* common.c - status strings, error messages, file reading, growable arrays. */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[BQ_STATUS_COUNT] = {
    [BQ_OK] = "ok",
    [BQ_ERR_INVALID_ARG] = "invalid argument",
    [BQ_ERR_IO] = "I/O error",
    [BQ_ERR_FORMAT] = "malformed input",
    [BQ_ERR_UTF8] = "invalid UTF-8",
    [BQ_ERR_NOMEM] = "out of host memory",
    [BQ_ERR_UNSUPPORTED] = "unsupported",
    [BQ_ERR_NO_DEVICE] = "no usable GPU",
    [BQ_ERR_DEVICE] = "GPU error",
    [BQ_ERR_DEVICE_OOM] = "out of GPU memory",
};

const char *bq_status_string(bq_status status) {
    if ((unsigned)status >= BQ_STATUS_COUNT) return "unknown status";
    return status_names[status];
}

bq_status bq_fail(bq_err *err, bq_status status, const char *fmt, ...) {
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

void bq_err_prefix(bq_err *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    int pl = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (pl < 0) return;
    size_t plen = strlen(prefix), cap = sizeof err->message;
    if (plen + 3 >= cap) return;
    /* shift the old message right, keeping the NUL inside the buffer */
    memmove(err->message + plen + 2, err->message, cap - plen - 3);
    err->message[cap - 1] = '\0';
    memcpy(err->message, prefix, plen);
    err->message[plen] = ':';
    err->message[plen + 1] = ' ';
}

void bq_err_clear(bq_err *err) {
    if (!err) return;
    err->status = BQ_OK;
    err->message[0] = '\0';
}

bq_status bq_read_file(const char *path, char **out_data, size_t *out_len, bq_err *err) {
    *out_data = NULL;
    if (out_len) *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return bq_fail(err, BQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (!bq_grow((void **)&buf, &cap, cap * 2, 1)) {
                free(buf);
                fclose(f);
                return bq_fail(err, BQ_ERR_NOMEM, "out of memory reading '%s'", path);
            }
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return bq_fail(err, BQ_ERR_IO, "error reading '%s'", path);
    }
    buf[len] = '\0';
    *out_data = buf;
    if (out_len) *out_len = len;
    return BQ_OK;
}

bool bq_grow(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2) return false;
        n *= 2;
    }
    if (elem && n > SIZE_MAX / elem) return false;
    void *p = realloc(*buf, n * elem);
    if (!p) return false;
    *buf = p;
    *cap = n;
    return true;
}

char *bq_strndup(const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}
