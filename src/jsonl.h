/* jsonl.h - the records of the `jsonl` command's stream: one JSON object a line,
 * {"id": ..., "question": "...", "context": "..."}, read into a request or an error, and the
 * error line written back for a bad one. Every line in gets exactly one line out. */
#ifndef BQ_JSONL_H
#define BQ_JSONL_H

#include <cjson/cJSON.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    cJSON *id;               /* the record's "id": a string of valid UTF-8, a finite number (a
                                raw item with its digits as the line wrote them, so that an id
                                of any length comes back exactly; a cJSON number where the line
                                wrote it as only cJSON reads it, "007" or "1."), else JSON null */
    char error[256];         /* why the record cannot be answered ("" for a good one) */
    char *question, *context; /* a good record's texts (NULL for a bad one) */
    char *out_line;          /* the line written back (the CLI's emitter fills it) */
    bool failed;             /* answered with an error line */
} bq_jsonl_record;

/* Read one line (len bytes, no newline; need not be NUL-terminated) into *rec. Malformed JSON,
 * trailing data, a record that is not an object, an "id" that is neither a finite number nor a
 * string of valid UTF-8, a "question" or "context" that is not a string, and a NUL character (\u0000, which
 * would cut a string short) each give rec->error, and the id where there is one; so does no memory
 * for the texts. */
void bq_jsonl_record_parse(const char *line, size_t len, bq_jsonl_record *rec);

/* {"id": id, "error": message} on one line (heap; NULL on no memory). id NULL: JSON null. */
char *bq_jsonl_error_line(const cJSON *id, const char *message);

/* Whether s[0..n) is a number as JSON writes one: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
 * (cJSON also reads "007" or "1.", which must not be echoed into a JSON line as written). */
bool bq_json_number_is_strict(const char *s, size_t n);

/* Free what the record holds and zero it. */
void bq_jsonl_record_clear(bq_jsonl_record *rec);

/* Lines from a file descriptor, through a buffer of its own, so that whether more input is there
 * now counts the lines already read in as well as the descriptor's (a stdio reader's buffer hides
 * them from poll: a burst written into a pipe was answered a line at a time). */
typedef struct bq_line_reader bq_line_reader;

/* A reader of fd (not closed by it); NULL when out of memory. */
bq_line_reader *bq_line_reader_create(int fd);
void bq_line_reader_free(bq_line_reader *r); /* accepts NULL */

/* The next line, without its '\n' (the last may have none), in *line (the reader's, valid until
 * the next call; NUL-terminated, and may hold NULs: *len counts them). Waits for input. Returns
 * 1 for a line, 0 at the end of the input, -1 when reading failed (errno then says why; the lines
 * before it were all given) or out of memory (ENOMEM). */
int bq_line_reader_next(bq_line_reader *r, char **line, size_t *len);

/* Whether bq_line_reader_next would return without waiting for more input to arrive: a whole
 * line is buffered, the input has ended, or the descriptor has bytes to read now. */
bool bq_line_reader_ready(const bq_line_reader *r);

#ifdef __cplusplus
}
#endif
#endif
