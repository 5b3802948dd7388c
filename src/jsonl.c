/* jsonl.c - the jsonl command's records (jsonl.h). */
#include "jsonl.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void set_error(bq_jsonl_record *rec, const char *message) {
    snprintf(rec->error, sizeof rec->error, "%s", message);
}

/* ---- the id's own text: a number is echoed as written, not as cJSON's double ---------------- */

/* White space as cJSON skips it: every byte up to 0x20 (JSON's own four among them). */
static size_t skip_space(const char *s, size_t len, size_t i) {
    while (i < len && (unsigned char)s[i] <= 0x20) i++;
    return i;
}

/* Past the JSON string that starts at s[i] ('"'); len when it does not end. */
static size_t skip_string(const char *s, size_t len, size_t i) {
    for (i++; i < len; i++) {
        if (s[i] == '\\') i++; /* the escaped character: "\\\"" does not end it */
        else if (s[i] == '"') return i + 1;
    }
    return len;
}

/* Past the JSON value that starts at s[i]: a string, an object or array (brackets counted outside
 * strings), else a literal or number (up to the next delimiter or white space). */
static size_t skip_value(const char *s, size_t len, size_t i) {
    if (i >= len) return len;
    if (s[i] == '"') return skip_string(s, len, i);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        while (i < len) {
            if (s[i] == '"') {
                i = skip_string(s, len, i);
                continue;
            }
            if (s[i] == '{' || s[i] == '[') depth++;
            else if ((s[i] == '}' || s[i] == ']') && --depth == 0) return i + 1;
            i++;
        }
        return len;
    }
    while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && (unsigned char)s[i] > 0x20) i++;
    return i;
}

/* Whether the JSON string token s[0..n) (quotes included) says "id", escapes decoded. */
static bool key_is_id(const char *s, size_t n) {
    if (n == 4 && memcmp(s, "\"id\"", 4) == 0) return true;
    if (!memchr(s, '\\', n)) return false;
    cJSON *key = cJSON_ParseWithLength(s, n);
    const bool id = cJSON_IsString(key) && strcmp(key->valuestring, "id") == 0;
    cJSON_Delete(key);
    return id;
}

bool bq_json_number_is_strict(const char *s, size_t n) {
    size_t i = 0, digits;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        for (i++, digits = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) digits++;
        if (!digits) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        for (digits = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) digits++;
        if (!digits) return false;
    }
    return i == n;
}

/* The text of the last top-level "id" member's value in the JSON object line[0..len) (which cJSON
 * has parsed), as the line writes it: *n bytes from the returned pointer; NULL when not found, or
 * when the scan does not end at the object's closing brace (it then lost its way, and nothing it
 * found is trusted). */
static const char *raw_id(const char *line, size_t len, size_t *n) {
    const char *found = NULL;
    size_t i = len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* cJSON skips a BOM */
    i = skip_space(line, len, i);
    if (i >= len || line[i] != '{') return NULL;
    i = skip_space(line, len, i + 1);
    while (i < len && line[i] == '"') {
        const size_t key = i, key_end = skip_string(line, len, i);
        i = skip_space(line, len, key_end);
        if (i >= len || line[i] != ':') return NULL;
        const size_t value = skip_space(line, len, i + 1);
        i = skip_value(line, len, value);
        if (key_is_id(line + key, key_end - key)) {
            found = line + value;
            *n = i - value;
        }
        i = skip_space(line, len, i);
        if (i >= len || line[i] != ',') break;
        i = skip_space(line, len, i + 1);
    }
    return i < len && line[i] == '}' ? found : NULL;
}

/* A numeric id as the line wrote it (cJSON's double would round an id of more than 15 digits, and
 * a program joins answers to questions by it): a raw item with the digits, when they are a strict
 * JSON number of the value cJSON read; else a copy of cJSON's number. NULL on no memory. */
static cJSON *number_id(const char *line, size_t len, const cJSON *id) {
    size_t n = 0;
    const char *raw = raw_id(line, len, &n);
    if (raw && bq_json_number_is_strict(raw, n)) {
        cJSON *check = cJSON_ParseWithLength(raw, n);
        const bool same = cJSON_IsNumber(check) && check->valuedouble == id->valuedouble;
        cJSON_Delete(check);
        char *text = same ? bq_strndup(raw, n) : NULL;
        if (text) {
            cJSON *item = cJSON_CreateRaw(text);
            free(text);
            if (item) return item;
        }
    }
    return cJSON_Duplicate(id, 1);
}

void bq_jsonl_record_parse(const char *line, size_t len, bq_jsonl_record *rec) {
    memset(rec, 0, sizeof *rec);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    size_t rest = j && end ? (size_t)(end - line) : len;
    while (rest < len && (line[rest] == ' ' || line[rest] == '\t' || line[rest] == '\r')) rest++;
    if (!j || rest < len) {
        cJSON_Delete(j);
        rec->id = cJSON_CreateNull();
        set_error(rec, j ? "extra data after the JSON record" : "malformed JSON");
        return;
    }
    const cJSON *id = bq_json_member(j, "id");
    /* the id is echoed into the output line, so it must be a string of valid UTF-8 or a finite
     * number (1e400 would come back as null: cJSON writes infinity so) */
    const bool id_ok = !id || (cJSON_IsNumber(id) && isfinite(id->valuedouble)) ||
                       (cJSON_IsString(id) && bq_utf8_valid(id->valuestring, strlen(id->valuestring)));
    rec->id = !id || !id_ok      ? cJSON_CreateNull()
              : cJSON_IsNumber(id) ? number_id(line, len, id)
                                   : cJSON_Duplicate(id, 1);
    const cJSON *q = bq_json_member(j, "question");
    const cJSON *c = bq_json_member(j, "context");
    const char *fault = NULL;
    if (!cJSON_IsObject(j))
        set_error(rec, "a record must be a JSON object");
    else if (!id_ok)
        set_error(rec, cJSON_IsString(id) ? "\"id\" is not valid UTF-8" : "\"id\" must be a string or a finite number");
    else if (!cJSON_IsString(q))
        set_error(rec, "\"question\" must be a string");
    else if (!cJSON_IsString(c))
        set_error(rec, "\"context\" must be a string");
    else if (bq_json_string_fault(line, len, &fault) != (size_t)-1) /* cJSON let it through */
        snprintf(rec->error, sizeof rec->error, "%s in the record", fault);
    else {
        rec->question = bq_strndup(q->valuestring, strlen(q->valuestring));
        rec->context = bq_strndup(c->valuestring, strlen(c->valuestring));
        if (!rec->question || !rec->context) {
            free(rec->question);
            free(rec->context);
            rec->question = rec->context = NULL;
            set_error(rec, "out of memory");
        }
    }
    cJSON_Delete(j);
}

char *bq_jsonl_error_line(const cJSON *id, const char *message) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddItemToObject(o, "id", id ? cJSON_Duplicate(id, 1) : cJSON_CreateNull());
    cJSON_AddStringToObject(o, "error", message);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void bq_jsonl_record_clear(bq_jsonl_record *rec) {
    cJSON_Delete(rec->id);
    free(rec->question);
    free(rec->context);
    free(rec->out_line);
    memset(rec, 0, sizeof *rec);
}

/* ---- lines from a descriptor ------------------------------------------------------------------ */

struct bq_line_reader {
    int fd;
    char *buf;      /* [cap]: bytes read, of which [start, end) are not yet given */
    size_t cap, start, end;
    size_t scanned; /* [start, scanned) holds no '\n': a long line is not searched again */
    bool eof;       /* read gave 0 */
    int read_errno; /* read failed: reported once the lines before it are given */
};

bq_line_reader *bq_line_reader_create(int fd) {
    bq_line_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fd = fd;
    r->cap = 1 << 16;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        free(r);
        return NULL;
    }
    return r;
}

void bq_line_reader_free(bq_line_reader *r) {
    if (!r) return;
    free(r->buf);
    free(r);
}

/* Give [start, start + n) as a line (buf[start + n] is the '\n' or the byte past the input, where
 * the caller made room) and move past it and its '\n'. */
static int give_line(bq_line_reader *r, size_t n, char **line, size_t *len) {
    r->buf[r->start + n] = '\0';
    *line = r->buf + r->start;
    *len = n;
    r->start = r->start + n < r->end ? r->start + n + 1 : r->end;
    r->scanned = r->start;
    return 1;
}

int bq_line_reader_next(bq_line_reader *r, char **line, size_t *len) {
    for (;;) {
        const char *nl = memchr(r->buf + r->scanned, '\n', r->end - r->scanned);
        if (nl) return give_line(r, (size_t)(nl - (r->buf + r->start)), line, len);
        r->scanned = r->end;
        if ((r->eof || r->read_errno) && r->end > r->start && r->end < r->cap)
            return give_line(r, r->end - r->start, line, len); /* the last line, without '\n' */
        if (r->read_errno) {
            errno = r->read_errno;
            return -1;
        }
        if (r->eof && r->end == r->start) return 0;
        /* the partial line to the front, and the buffer larger when it fills it (one byte is kept
         * for the NUL after a last line without '\n') */
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->scanned -= r->start;
            r->start = 0;
        }
        if (r->end + 1 >= r->cap) {
            char *grown = r->cap <= SIZE_MAX / 2 ? realloc(r->buf, 2 * r->cap) : NULL;
            if (!grown) {
                errno = ENOMEM;
                return -1;
            }
            r->buf = grown;
            r->cap *= 2;
        }
        if (r->eof || r->read_errno) continue; /* only the room for the last line's NUL was missing */
        const ssize_t got = read(r->fd, r->buf + r->end, r->cap - r->end - 1);
        if (got > 0) r->end += (size_t)got;
        else if (got == 0) r->eof = true;
        else if (errno != EINTR) r->read_errno = errno ? errno : EIO;
    }
}

bool bq_line_reader_ready(const bq_line_reader *r) {
    if (memchr(r->buf + r->scanned, '\n', r->end - r->scanned) || r->eof || r->read_errno) return true;
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}
