/* common.c - status strings, error messages, file reading, growable arrays. */
/* realpath() is XSI */
#define _XOPEN_SOURCE 700
#include "common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Read the rest of stream f (opened from path) into a NUL-terminated buffer of at most
 * max_bytes bytes (0: no limit). Closes f. */
static bq_status read_stream(FILE *f, const char *path, size_t max_bytes, char **out_data,
                             size_t *out_len, bq_err *err) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    for (;;) {
        if (max_bytes && len > max_bytes) {
            free(buf);
            fclose(f);
            return bq_fail(err, BQ_ERR_FORMAT, "'%s' is larger than the %zu bytes such a file may have",
                           path, max_bytes);
        }
        if (len + 1 >= cap) {
            if (!bq_grow((void **)&buf, &cap, cap * 2, 1)) {
                free(buf);
                fclose(f);
                return bq_fail(err, BQ_ERR_NOMEM, "out of memory reading '%s'", path);
            }
        }
        errno = 0;
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    const int failed = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (failed) {
        free(buf);
        return bq_fail(err, BQ_ERR_IO, "error reading '%s': %s", path, strerror(failed));
    }
    buf[len] = '\0';
    *out_data = buf;
    if (out_len) *out_len = len;
    return BQ_OK;
}

bq_status bq_read_file(const char *path, char **out_data, size_t *out_len, bq_err *err) {
    return bq_read_file_max(path, 0, out_data, out_len, err);
}

bq_status bq_read_file_max(const char *path, size_t max_bytes, char **out_data, size_t *out_len, bq_err *err) {
    *out_data = NULL;
    if (out_len) *out_len = 0;
    if (strcmp(path, "-") == 0) {
        /* a stream of its own over a copy of descriptor 0: read_stream closes it, not stdin */
        const int fd = dup(STDIN_FILENO);
        FILE *in = fd >= 0 ? fdopen(fd, "rb") : NULL;
        if (!in) {
            const int e = errno;
            if (fd >= 0) close(fd);
            return bq_fail(err, BQ_ERR_IO, "cannot read standard input: %s", strerror(e));
        }
        return read_stream(in, "standard input", max_bytes, out_data, out_len, err);
    }
    FILE *f = fopen(path, "rb");
    if (!f) return bq_fail(err, BQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    return read_stream(f, path, max_bytes, out_data, out_len, err);
}

int bq_open_regular_file(const char *path, struct stat *sb, bq_err *err) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore the flag) */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return bq_fail(err, BQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno)), -1;
    if (fstat(fd, sb) != 0) {
        int e = errno;
        close(fd);
        return bq_fail(err, BQ_ERR_IO, "cannot stat '%s': %s", path, strerror(e)), -1;
    }
    if (!S_ISREG(sb->st_mode)) {
        close(fd);
        return bq_fail(err, BQ_ERR_IO, "'%s' is not a regular file", path), -1;
    }
    return fd;
}

bq_status bq_read_regular_file(const char *path, size_t max_bytes, char **out_data, size_t *out_len,
                               bq_err *err) {
    *out_data = NULL;
    if (out_len) *out_len = 0;
    struct stat sb;
    int fd = bq_open_regular_file(path, &sb, err);
    if (fd < 0) return BQ_ERR_IO;
    if (max_bytes && (uint64_t)sb.st_size > (uint64_t)max_bytes) {
        close(fd);
        return bq_fail(err, BQ_ERR_FORMAT, "'%s' is %lld bytes, more than the %zu such a file may have",
                       path, (long long)sb.st_size, max_bytes);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return bq_fail(err, BQ_ERR_IO, "cannot read '%s': %s", path, strerror(e));
    }
    return read_stream(f, path, max_bytes, out_data, out_len, err);
}

struct bq_output_file {
    FILE *stream; /* NULL until the first bq_output_stream of a file written beside its target */
    bool is_stdout; /* "-": stream is stdout, flushed at commit, never closed */
    char *path;   /* as given, for messages */
    char *target; /* where the file ends: the path with its folder (and a symlink) resolved */
    char *tmp;    /* written here and renamed over target; NULL: stream is the target itself */
    mode_t mode;  /* the existing target's mode, kept by the replacement */
    bool keep_mode;
    int open_errno; /* why the temporary file could not be created */
};

static void output_free(bq_output_file *o) {
    free(o->tmp);
    free(o->target);
    free(o->path);
    free(o);
}

/* The path with its folder resolved (the file itself need not exist), or NULL with errno. */
static char *resolve_new_file(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = slash ? bq_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    char *real_dir = dir ? realpath(dir, NULL) : NULL;
    const int e = errno;
    free(dir);
    if (!real_dir) return errno = e, NULL;
    const size_t n = strlen(real_dir) + strlen(base) + 2;
    char *full = malloc(n);
    if (full) snprintf(full, n, "%s%s%s", real_dir, strcmp(real_dir, "/") == 0 ? "" : "/", base);
    free(real_dir);
    return full;
}

static int create_temporary(const bq_output_file *o) {
    /* O_EXCL: never write through a link someone left at the temporary name */
    return open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
}

bq_status bq_output_open(const char *path, bq_output_file **out, bq_err *err) {
    *out = NULL;
    struct stat sb;
    /* /dev/stdout too: resolved, it would name the file stdout is (a log opened with >>), and
     * the temporary renamed over it would replace that file instead of writing to it */
    const bool to_stdout = strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0;
    const bool exists = !to_stdout && stat(path, &sb) == 0;
    if (exists && S_ISDIR(sb.st_mode)) return bq_fail(err, BQ_ERR_IO, "cannot write '%s': it is a folder", path);
    bq_output_file *o = calloc(1, sizeof *o);
    if (o) o->path = strdup(to_stdout ? "standard output" : path); /* for messages */
    if (!o || !o->path) {
        free(o);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory opening '%s'", path);
    }
    if (to_stdout) {
        o->stream = stdout;
        o->is_stdout = true;
        *out = o;
        return BQ_OK;
    }
    if (exists && !S_ISREG(sb.st_mode)) { /* a device, pipe or terminal: no rename there */
        o->stream = fopen(path, "wb");
        if (!o->stream) {
            const int e = errno;
            output_free(o);
            return bq_fail(err, BQ_ERR_IO, "cannot write '%s': %s", path, strerror(e));
        }
        *out = o;
        return BQ_OK;
    }
    o->target = exists ? realpath(path, NULL) : resolve_new_file(path);
    if (!o->target) {
        const int e = errno;
        output_free(o);
        return bq_fail(err, BQ_ERR_IO, "cannot write '%s': %s", path, strerror(e));
    }
    const size_t cap = strlen(o->target) + 32;
    o->tmp = malloc(cap);
    if (!o->tmp) {
        output_free(o);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory opening '%s'", path);
    }
    /* the process and a count: two threads writing one target do not meet at the temporary */
    static atomic_uint outputs_opened;
    snprintf(o->tmp, cap, "%s.%ld.%u.tmp", o->target, (long)getpid(), atomic_fetch_add(&outputs_opened, 1u));
    o->mode = exists ? sb.st_mode & 07777 : 0; /* sb is unset for a new file */
    o->keep_mode = exists;
    /* can it be written? Ask now, not after the work, but leave nothing there until the end
     * (an interrupted run leaves no temporary file) */
    const int fd = create_temporary(o);
    if (fd < 0) {
        const int e = errno;
        bq_fail(err, BQ_ERR_IO, "cannot write '%s': %s%s%s", path, strerror(e),
                e == EEXIST ? ": a file is left at " : "", e == EEXIST ? o->tmp : "");
        output_free(o);
        return BQ_ERR_IO;
    }
    close(fd);
    remove(o->tmp);
    *out = o;
    return BQ_OK;
}

const char *bq_output_target(const bq_output_file *out) {
    return !out ? NULL : out->target ? out->target : out->path;
}

bool bq_output_replaces(const bq_output_file *out) { return out && out->tmp; }

FILE *bq_output_stream(bq_output_file *out) {
    if (!out) return NULL;
    if (!out->stream && out->tmp && !out->open_errno) {
        const int fd = create_temporary(out);
        if (fd < 0) {
            out->open_errno = errno;
            return NULL;
        }
        if (out->keep_mode) (void)fchmod(fd, out->mode);
        out->stream = fdopen(fd, "wb");
        if (!out->stream) {
            out->open_errno = errno;
            close(fd);
            remove(out->tmp);
        }
    }
    return out->stream;
}

bq_status bq_output_commit(bq_output_file *out, bq_err *err) {
    if (!out) return BQ_OK;
    const char *name = out->path;
    const int earlier = errno; /* a caller's failed write leaves only ferror() and errno */
    if (!bq_output_stream(out)) { /* never written, and the file cannot be created now */
        const bq_status st = bq_fail(err, BQ_ERR_IO, "cannot write '%s': %s", name,
                                     strerror(out->open_errno ? out->open_errno : EIO));
        output_free(out);
        return st;
    }
    errno = 0;
    const bool flush_failed = fflush(out->stream) != 0;
    int e = flush_failed ? errno : 0;
    const bool write_failed = flush_failed || ferror(out->stream);
    if (write_failed && !e) e = earlier;
    errno = 0;
    const bool close_failed = !out->is_stdout && fclose(out->stream) != 0;
    if (close_failed && !e) e = errno;
    bq_status st = BQ_OK;
    if (write_failed || close_failed) {
        st = bq_fail(err, BQ_ERR_IO, "cannot write '%s': %s", name, e ? strerror(e) : "write error");
        if (out->tmp) remove(out->tmp);
    } else if (out->tmp && rename(out->tmp, out->target) != 0) {
        e = errno;
        remove(out->tmp);
        st = bq_fail(err, BQ_ERR_IO, "cannot put '%s' in place: %s", out->target, strerror(e));
    }
    output_free(out);
    return st;
}

bq_status bq_output_commit_text(bq_output_file *out, char *text, bq_err *err) {
    if (!text) {
        bq_fail(err, BQ_ERR_NOMEM, "out of memory printing what goes to '%s'", out ? out->path : "the output");
        bq_output_discard(out);
        return BQ_ERR_NOMEM;
    }
    FILE *f = bq_output_stream(out);
    if (f) { /* a failed write shows at commit, through ferror */
        fputs(text, f);
        fputc('\n', f);
    }
    free(text);
    return bq_output_commit(out, err);
}

void bq_output_discard(bq_output_file *out) {
    if (!out) return;
    if (out->stream && !out->is_stdout) {
        fclose(out->stream);
        if (out->tmp) remove(out->tmp);
    }
    output_free(out);
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

char *bq_join_path(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, file);
    return p;
}

char *bq_strndup(const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

const cJSON *bq_json_member(const cJSON *object, const char *key) {
    const cJSON *found = NULL;
    for (const cJSON *item = object ? object->child : NULL; item; item = item->next)
        if (item->string && strcmp(item->string, key) == 0) found = item;
    return found;
}

bq_status bq_json_read_object(const char *path, size_t max_bytes, cJSON **out, bq_err *err) {
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    bq_status st = bq_read_regular_file(path, max_bytes, &text, &len, err);
    if (st) return st;
    const char *fault = NULL;
    const size_t fault_at = bq_json_string_fault(text, len, &fault);
    cJSON *root = cJSON_ParseWithOpts(text, NULL, 1);
    free(text);
    if (!root) return bq_fail(err, BQ_ERR_FORMAT, "'%s': not valid JSON", path);
    if (fault_at != (size_t)-1) st = bq_fail(err, BQ_ERR_FORMAT, "'%s': %s, at byte %zu", path, fault, fault_at);
    else if (!cJSON_IsObject(root)) st = bq_fail(err, BQ_ERR_FORMAT, "'%s': not a JSON object", path);
    if (st) cJSON_Delete(root);
    else *out = root;
    return st;
}

static int is_hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

size_t bq_json_string_fault(const char *text, size_t len, const char **what) {
    const char *found = NULL;
    bool in_string = false;
    size_t i = 0;
    for (; i < len; i++) {
        const unsigned char c = (unsigned char)text[i];
        if (c == '\0') found = "a NUL character, which would cut the string short";
        else if (c == '"') in_string = !in_string;
        else if (in_string && c < 0x20) found = "a raw control character inside a string (JSON needs it escaped)";
        else if (in_string && c == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u') {
                size_t hex = 0;
                while (hex < 4 && i + 2 + hex < len && is_hex_digit(text[i + 2 + hex])) hex++;
                if (hex < 4)
                    found = "a \\u escape without 4 hex digits (cJSON reads it as a NUL character, "
                            "which would cut the string short)";
                else if (memcmp(text + i + 2, "0000", 4) == 0)
                    found = "a NUL character (\\u0000), which would cut the string short";
            }
            if (!found) i++; /* the escaped character: "\\\"" does not end the string */
        }
        if (found) break;
    }
    if (what) *what = found;
    return found ? i : (size_t)-1;
}

/* Strict UTF-8: the tokenizer, the features and the decoder all read text through this. */
size_t bq_utf8_decode(const char *text, size_t len, size_t pos, int32_t *cp, bq_err *err) {
    const unsigned char *s = (const unsigned char *)text;
    if (pos >= len) return bq_fail(err, BQ_ERR_UTF8, "invalid UTF-8: read at byte offset %zu past the end", pos), 0;
    unsigned char b0 = s[pos];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 < 0xC2) {
        return bq_fail(err, BQ_ERR_UTF8, "invalid UTF-8 at byte offset %zu: %s 0x%02X", pos,
                       b0 < 0xC0 ? "unexpected continuation byte" : "overlong lead byte", b0),
               0;
    } else if (b0 < 0xE0) {
        need = 1;
        *cp = b0 & 0x1F;
    } else if (b0 < 0xF0) {
        need = 2;
        *cp = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;      /* overlong */
        else if (b0 == 0xED) hi = 0x9F; /* surrogates */
    } else if (b0 < 0xF5) {
        need = 3;
        *cp = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;      /* overlong */
        else if (b0 == 0xF4) hi = 0x8F; /* beyond U+10FFFF */
    } else {
        return bq_fail(err, BQ_ERR_UTF8, "invalid UTF-8 at byte offset %zu: byte 0x%02X cannot start a sequence",
                       pos, b0),
               0;
    }
    if (len - pos - 1 < need)
        return bq_fail(err, BQ_ERR_UTF8, "invalid UTF-8 at byte offset %zu: truncated %zu-byte sequence",
                       pos, need + 1),
               0;
    for (size_t k = 1; k <= need; k++) {
        unsigned char b = s[pos + k];
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (b < l || b > h)
            return bq_fail(err, BQ_ERR_UTF8,
                           "invalid UTF-8 at byte offset %zu: byte 0x%02X at offset %zu is not a valid "
                           "continuation (overlong, surrogate, beyond U+10FFFF or truncated sequence)",
                           pos, b, pos + k),
                   0;
        *cp = (*cp << 6) | (b & 0x3F);
    }
    return need + 1;
}

bool bq_utf8_next(const char *s, size_t len, size_t *pos, uint32_t *cp) {
    int32_t c;
    size_t n = bq_utf8_decode(s, len, *pos, &c, NULL);
    if (n == 0) return false;
    *cp = (uint32_t)c;
    *pos += n;
    return true;
}

bool bq_utf8_valid(const char *s, size_t len) {
    size_t pos = 0;
    uint32_t cp;
    while (pos < len)
        if (!bq_utf8_next(s, len, &pos, &cp)) return false;
    return true;
}

bq_status bq_packed_positions(const int32_t *seq_offsets, int n_seqs, long rows, int max_len,
                              int32_t *positions, bq_err *err) {
    if (!seq_offsets || n_seqs < 1)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "packed batch: no sequence offsets (n_seqs %d)", n_seqs);
    if (seq_offsets[0] != 0)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "packed batch: seq_offsets[0] = %d, not 0",
                       (int)seq_offsets[0]);
    if (seq_offsets[n_seqs] != rows)
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "packed batch: the sequences end at %d, not at the batch's %ld positions",
                       (int)seq_offsets[n_seqs], rows);
    for (int i = 0; i < n_seqs; i++) {
        const long len = (long)seq_offsets[i + 1] - seq_offsets[i];
        if (len < 1 || len > max_len)
            return bq_fail(err, BQ_ERR_INVALID_ARG,
                           "packed batch: sequence %d is %ld positions long, outside 1..%d", i, len,
                           max_len);
        if (positions)
            for (long t = 0; t < len; t++) positions[seq_offsets[i] + t] = (int32_t)t;
    }
    return BQ_OK;
}

const char *bq_default_vocab_path(const char *build_path) {
    static char path[PATH_MAX];
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return build_path;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return build_path;
    *slash = '\0';
    char candidate[sizeof exe + 64];
    snprintf(candidate, sizeof candidate, "%s/../share/bertqa-gpu/vocab.txt", exe);
    struct stat sb;
    if (stat(candidate, &sb) == 0 && S_ISREG(sb.st_mode) && realpath(candidate, path)) return path;
    return build_path;
}
