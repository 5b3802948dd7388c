/* tuning_cache.c - the CUDA engine's tuning cache file: see tuning_cache.h. */
#include "tuning_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void bq_tuning_cache_clear(bq_tuning_cache *c) {
    if (!c) return;
    free(c->records);
    free(c->other);
    memset(c, 0, sizeof *c);
}

/* Append a line (and its '\n') to the other keys' sections. */
static bool keep_other_line(bq_tuning_cache *c, const char *line) {
    const size_t n = strlen(line);
    if (!bq_grow((void **)&c->other, &c->other_cap, c->other_len + n + 2, 1)) return false;
    memcpy(c->other + c->other_len, line, n);
    c->other_len += n + 1;
    c->other[c->other_len - 1] = '\n';
    c->other[c->other_len] = '\0';
    return true;
}

/* line = word, then exactly n integers that fit an int, each after one or more spaces; 1 when it
 * is, with the integers in out (sscanf's %d would be undefined past INT_MAX). */
static int parse_fields(const char *line, const char *word, int *out, int n) {
    const size_t w = strlen(word);
    if (strncmp(line, word, w) != 0) return 0;
    const char *p = line + w;
    for (int i = 0; i < n; i++) {
        if (*p != ' ') return 0;
        while (*p == ' ') p++;
        char *end = NULL;
        errno = 0;
        const long v = strtol(p, &end, 10);
        if (end == p || errno == ERANGE || v < INT_MIN || v > INT_MAX) return 0;
        out[i] = (int)v;
        p = end;
    }
    return *p == '\0';
}

/* One line of the key's section: a record appended (1), a blank line (1), or a line that does
 * not parse (0). -1 out of memory. */
static int parse_record(bq_tuning_cache *c, const char *line, int line_no) {
    bq_tuning_record r;
    memset(&r, 0, sizeof r);
    r.line = line_no;
    if (parse_fields(line, "gemm", r.field, BQ_TUNING_GEMM_FIELDS))
        r.kind = BQ_TUNING_GEMM;
    else if (parse_fields(line, "shape", r.field, BQ_TUNING_SHAPE_FIELDS))
        r.kind = BQ_TUNING_SHAPE;
    else
        return line[0] == '\0';
    if (!bq_grow((void **)&c->records, &c->records_cap, c->n_records + 1, sizeof *c->records)) return -1;
    c->records[c->n_records++] = r;
    return 1;
}

/* The lines of an open cache file into *out (cleared by the caller). */
static bq_status read_lines(FILE *f, const char *key, bq_tuning_cache *out, bq_err *err) {
    char *line = NULL;
    size_t line_cap = 0;
    int line_no = 0, ours = 0, repeat = 0;
    bool ok = true;
    while (ok && getline(&line, &line_cap, f) >= 0) { /* lines of any length */
        line_no++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line_no == 1) {
            if (strcmp(line, BQ_TUNING_CACHE_MAGIC) != 0) {
                out->foreign = 1;
                break;
            }
        } else if (strncmp(line, "key ", 4) == 0) {
            /* a second section of this key (not one we write) is dropped with its lines */
            const int same = strcmp(line + 4, key) == 0;
            repeat = same && out->found;
            ours = same && !out->found;
            out->found |= ours;
            if (!same) ok = keep_other_line(out, line);
        } else if (repeat) {
            continue;
        } else if (!ours) {
            ok = keep_other_line(out, line);
        } else if (!out->bad_line) {
            const int parsed = parse_record(out, line, line_no);
            ok = parsed >= 0;
            if (parsed == 0) out->bad_line = line_no;
        }
    }
    /* getline's -1 before the end: a read error, or no memory for a line (errno says which) */
    const int read_errno = ok && !out->foreign && !feof(f) ? (errno ? errno : EIO) : 0;
    free(line);
    if (!ok) {
        bq_tuning_cache_clear(out);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory for the tuning cache");
    }
    if (read_errno) { /* only part of the file was read: none of it is kept */
        bq_tuning_cache_clear(out);
        out->read_errno = read_errno;
    }
    return BQ_OK;
}

bq_status bq_tuning_cache_read(const char *path, const char *key, bq_tuning_cache *out, bq_err *err) {
    if (!path || !key || !out) return bq_fail(err, BQ_ERR_INVALID_ARG, "tuning cache: NULL argument");
    bq_tuning_cache_clear(out);
    /* O_NONBLOCK: a FIFO must not wait for a writer (it is refused below, as a device is) */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            out->missing = 1;
        else
            out->open_errno = errno ? errno : EIO;
        return BQ_OK;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        out->open_errno = errno ? errno : EIO;
        close(fd);
        return BQ_OK;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        if (S_ISDIR(sb.st_mode))
            out->open_errno = EISDIR;
        else
            out->not_regular = 1;
        return BQ_OK;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        out->open_errno = errno ? errno : EIO;
        close(fd);
        return BQ_OK;
    }
    const bq_status s = read_lines(f, key, out, err);
    fclose(f);
    return s;
}

bq_status bq_tuning_cache_write(const char *path, const char *other, const char *key,
                                const bq_tuning_record *records, size_t n, bq_err *err) {
    if (!path || !key || (n && !records)) return bq_fail(err, BQ_ERR_INVALID_ARG, "tuning cache: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (records[i].kind != BQ_TUNING_GEMM && records[i].kind != BQ_TUNING_SHAPE)
            return bq_fail(err, BQ_ERR_INVALID_ARG, "tuning cache: record %zu of unknown kind %d", i,
                           (int)records[i].kind);
    /* a whole file or none (common.h's output file: beside it, then renamed over it) */
    bq_output_file *out = NULL;
    /* "-" is a file of that name here, as fopen reads it, not standard output */
    bq_status s = bq_output_open(strcmp(path, "-") == 0 ? "./-" : path, &out, err);
    if (s != BQ_OK) return s;
    FILE *f = bq_output_stream(out);
    if (f) {
        fprintf(f, "%s\n%skey %s\n", BQ_TUNING_CACHE_MAGIC, other ? other : "", key);
        for (size_t i = 0; i < n; i++) {
            const bq_tuning_record *r = &records[i];
            const int gemm = r->kind == BQ_TUNING_GEMM;
            fputs(gemm ? "gemm" : "shape", f);
            for (int k = 0; k < (gemm ? BQ_TUNING_GEMM_FIELDS : BQ_TUNING_SHAPE_FIELDS); k++)
                fprintf(f, " %d", r->field[k]);
            fputc('\n', f);
        }
    }
    return bq_output_commit(out, err); /* reports a stream that could not be made, too */
}
