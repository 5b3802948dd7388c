/* jsonl.c - the jsonl command's records (jsonl.h). */
#include "jsonl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void set_error(bq_jsonl_record *rec, const char *message) {
    snprintf(rec->error, sizeof rec->error, "%s", message);
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
    rec->id = id && id_ok ? cJSON_Duplicate(id, 1) : cJSON_CreateNull();
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
