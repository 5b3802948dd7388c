/* fuzz_jsonl_record.c - one line of the jsonl command's stream (bq_jsonl_record_parse) from any
 * bytes: either an error with a message and no texts, or a question and a context (their UTF-8 is
 * checked by the pipeline, which answers a bad one with an error line); the id is JSON null, a
 * number (as the line wrote it: a raw item holding a finite number) or a string of valid UTF-8;
 * and the error line written back is one line of JSON with that id and the message, so every line
 * in gets one line out. And the same bytes as a stream through bq_line_reader: its lines, joined
 * with '\n', are the bytes again (a last '\n' ends a line, it does not begin an empty one), none
 * holds a '\n', each is NUL-terminated. */
#include "fuzz_common.h"
#include "jsonl.h"

#include <math.h>

/* Whether line[0..len) holds s[0..n) somewhere. */
static int contains(const uint8_t *line, size_t len, const char *s, size_t n) {
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(line + i, s, n) == 0) return 1;
    return 0;
}

/* A raw id's text read back as JSON: a finite number, written as JSON writes one, and found as
 * such in the line (NULL otherwise; the caller frees it). */
static cJSON *raw_number(const cJSON *id, const uint8_t *line, size_t len) {
    if (!cJSON_IsRaw(id)) return NULL;
    const size_t n = strlen(id->valuestring);
    if (!bq_json_number_is_strict(id->valuestring, n) || !contains(line, len, id->valuestring, n))
        return NULL;
    cJSON *v = cJSON_Parse(id->valuestring);
    if (v && cJSON_IsNumber(v) && isfinite(v->valuedouble)) return v;
    cJSON_Delete(v);
    return NULL;
}

/* data[0..size) as a file read by bq_line_reader: the lines give the bytes back. */
static void check_line_reader(const uint8_t *data, size_t size) {
    FILE *f = tmpfile();
    FUZZ_ASSERT(f != NULL, "tmpfile");
    FUZZ_ASSERT(fwrite(data, 1, size, f) == size && fflush(f) == 0 && fseek(f, 0, SEEK_SET) == 0, "writing");
    bq_line_reader *r = bq_line_reader_create(fileno(f));
    FUZZ_ASSERT(r != NULL, "reader");
    size_t at = 0; /* bytes of data given back so far */
    char *line;
    size_t len;
    int got;
    while ((got = bq_line_reader_next(r, &line, &len)) == 1) {
        FUZZ_ASSERT(at + len <= size && memcmp(line, data + at, len) == 0 && line[len] == '\0' &&
                        !memchr(line, '\n', len),
                    "line at byte %zu (%zu bytes) is not the input's", at, len);
        at += len;
        if (at < size) {
            FUZZ_ASSERT(data[at] == '\n', "line at byte %zu ends without its newline", at - len);
            at++;
        }
    }
    FUZZ_ASSERT(got == 0 && at == size, "reader %d after %zu of %zu bytes", got, at, size);
    bq_line_reader_free(r);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_line_reader(data, size);
    /* the command reads lines: a newline ends one, so none is inside */
    const uint8_t *nl = memchr(data, '\n', size);
    const size_t len = nl ? (size_t)(nl - data) : size;
    bq_jsonl_record rec;
    bq_jsonl_record_parse((const char *)data, len, &rec);
    FUZZ_ASSERT(rec.id != NULL, "no id, not even null");
    cJSON *raw = raw_number(rec.id, data, len);
    FUZZ_ASSERT(cJSON_IsNull(rec.id) || cJSON_IsNumber(rec.id) || raw || (cJSON_IsString(rec.id) && bq_utf8_valid(rec.id->valuestring, strlen(rec.id->valuestring))),
                "an id that cannot be echoed");
    if (rec.error[0]) {
        FUZZ_ASSERT(!rec.question && !rec.context, "error '%s' with texts", rec.error);
    } else {
        /* (the texts' UTF-8 is the pipeline's to check: a bad one gets its error line there) */
        FUZZ_ASSERT(rec.question && rec.context, "a good record without texts");
    }
    char *line = bq_jsonl_error_line(rec.id, rec.error[0] ? rec.error : "x");
    FUZZ_ASSERT(line && !strchr(line, '\n'), "the error line is not one line");
    cJSON *back = cJSON_Parse(line);
    FUZZ_ASSERT(back && cJSON_IsObject(back), "the error line is not a JSON object: %s", line);
    const cJSON *back_id = cJSON_GetObjectItemCaseSensitive(back, "id");
    FUZZ_ASSERT(raw ? cJSON_IsNumber(back_id) && back_id->valuedouble == raw->valuedouble
                    : cJSON_Compare(back_id, rec.id, 1),
                "id not echoed: %s", line);
    cJSON_Delete(raw);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(back, "error");
    FUZZ_ASSERT(cJSON_IsString(msg) && strcmp(msg->valuestring, rec.error[0] ? rec.error : "x") == 0,
                "message not echoed: %s", line);
    cJSON_Delete(back);
    free(line);
    bq_jsonl_record_clear(&rec);
    return 0;
}
