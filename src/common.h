/* common.h - status helpers, checked allocation, whole-file reads. Shared by every module. */
#ifndef BQ_COMMON_H
#define BQ_COMMON_H

#include "bertqa.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The shipped vocabulary for a program of this project: <program's folder>/../share/bertqa-gpu/vocab.txt
 * where that file exists (an installed program, `cmake --install`), else `build_path` (the source
 * tree's vocab/vocab.txt, compiled in). Static storage. */
const char *bq_default_vocab_path(const char *build_path);

/* What a message about a missing GPU suggests, to command-line and library users alike. */
#define BQ_USE_CPU_HINT "run on the CPU instead (--device cpu; device=cpu in bq_settings)"

/* Record `status` and a printf-style message in `err` (may be NULL); returns `status`. */
bq_status bq_fail(bq_err *err, bq_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefix an existing message in `err` with more context ("loading X: <old message>"). */
void bq_err_prefix(bq_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clear `err` to BQ_OK / empty message. */
void bq_err_clear(bq_err *err);

/* Read a whole file into a NUL-terminated heap buffer ("-": standard input, to its end; name a
 * file called "-" as "./-"). *out_len excludes the NUL.
 * Returns BQ_ERR_IO (message names the path and errno text) or BQ_ERR_NOMEM. */
bq_status bq_read_file(const char *path, char **out_data, size_t *out_len, bq_err *err);
/* The same, but more than max_bytes bytes (0: no limit) is a BQ_ERR_FORMAT, read no further: a
 * device (/dev/zero) or an endless pipe ends there instead of filling memory. */
bq_status bq_read_file_max(const char *path, size_t max_bytes, char **out_data, size_t *out_len, bq_err *err);
/* What a JSON input (a SQuAD file, predictions) or a context file may hold: SQuAD v1.1's train set
 * is 40 MB. */
#define BQ_MAX_INPUT_BYTES ((size_t)1 << 30)
/* The same for a file that must be a regular file of at most max_bytes bytes (0: no limit), as
 * a checkpoint's files: a FIFO or a device (/dev/zero) is refused at once, never waited on or read
 * without end. Returns BQ_ERR_IO (cannot open, not a regular file), BQ_ERR_FORMAT (too large)
 * or BQ_ERR_NOMEM. */
bq_status bq_read_regular_file(const char *path, size_t max_bytes, char **out_data, size_t *out_len,
                               bq_err *err);
/* Open a file that must be a regular file, read-only, without waiting on a FIFO; fills *sb.
 * Returns the descriptor, or -1 with a BQ_ERR_IO message (cannot open or stat, not a regular file). */
struct stat;
int bq_open_regular_file(const char *path, struct stat *sb, bq_err *err);

/* An output file written whole or not at all, opened before the work that fills it so that a
 * path that cannot be written fails at once, not after hours of answering. A regular file (or a
 * new one) is written beside its target as TARGET.PID.N.tmp (N counts the process's output
 * files), created at the first bq_output_stream (so an interrupted run leaves nothing), and
 * renamed over the target at commit, so a failed run leaves an earlier file as it was (a symlink
 * is followed: its target is replaced); anything else (a pipe, a terminal, a device) is opened at
 * once and written directly; "-" and "/dev/stdout" are standard output (flushed at commit, never
 * closed). */
typedef struct bq_output_file bq_output_file;
/* Returns BQ_OK with *out set, or BQ_ERR_IO naming the path and the system's reason (a folder,
 * a missing folder, no permission) or BQ_ERR_NOMEM; *out is then NULL. */
bq_status bq_output_open(const char *path, bq_output_file **out, bq_err *err);
/* Where the file ends, with its folder and any symlink resolved (two outputs with the same
 * target are one file under two names); the path as given for a device or pipe. */
const char *bq_output_target(const bq_output_file *out);
/* Whether commit renames a whole file over the target (a regular or new file), so that the same
 * path can be written again and again, each time whole; false for standard output, a pipe, a
 * device. */
bool bq_output_replaces(const bq_output_file *out);
/* The stream to write to, or NULL when the temporary file cannot be created now (then
 * bq_output_commit reports why). */
FILE *bq_output_stream(bq_output_file *out);
/* Flush, close and put the file in place; frees `out` (NULL: BQ_OK). Returns BQ_ERR_IO where a
 * write, the close or the rename failed (full disk included), the target then untouched. */
bq_status bq_output_commit(bq_output_file *out, bq_err *err);
/* Write text and a newline, then commit; frees text (heap, e.g. from cJSON_Print) and out. A
 * NULL text (its printing ran out of memory) discards out and returns BQ_ERR_NOMEM. Returns as
 * bq_output_commit. */
bq_status bq_output_commit_text(bq_output_file *out, char *text, bq_err *err);
/* Close without putting the file in place (the temporary file is removed); frees `out`.
 * Accepts NULL. */
void bq_output_discard(bq_output_file *out);

/* Growable array helper: ensures capacity for `need` elements of `elem` bytes.
 * Returns false on overflow or allocation failure (the old buffer stays valid). */
bool bq_grow(void **buf, size_t *cap, size_t need, size_t elem);

/* splitmix64: the next of a seeded stream of 64-bit numbers (*state advances). The one generator
 * behind seeded checkpoints (bertqa-make-model), test data and fuzz inputs, and the same as
 * tools/golden_features.py's, so that goldens made there match. */
static inline uint64_t bq_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* "dir/file" (heap; NULL on allocation failure). */
char *bq_join_path(const char *dir, const char *file);

/* Duplicate `len` bytes as a NUL-terminated string (NULL on allocation failure). */
char *bq_strndup(const char *s, size_t len);

/* The member `key` of a JSON object, the last one where the key repeats (as Python's json keeps,
 * where cJSON's own lookup returns the first), or NULL when absent or `object` is NULL. */
struct cJSON;
const struct cJSON *bq_json_member(const struct cJSON *object, const char *key);

/* The first fault in JSON text's strings that cJSON lets through but must not: a raw NUL byte, a
 * \u0000 escape or a \u escape not followed by 4 hex digits (cJSON reads those as U+0000 and
 * ends the string there, cutting it short without a word), or a raw control character (below
 * U+0020) inside a string, which JSON forbids and Python's json refuses. Returns its byte offset,
 * or (size_t)-1 when there is none; when `what` is not NULL it is set to a phrase naming the
 * fault ("a NUL character (\u0000), which would cut the string short", ...), or NULL. */
size_t bq_json_string_fault(const char *text, size_t len, const char **what);

/* Read a JSON object from a regular file of at most max_bytes bytes: *out (free with cJSON_Delete)
 * on BQ_OK; BQ_ERR_FORMAT naming the path for text that is not valid JSON, has a string fault
 * (bq_json_string_fault, with its byte offset) or is not an object; else as bq_read_regular_file. */
bq_status bq_json_read_object(const char *path, size_t max_bytes, struct cJSON **out, bq_err *err);

/* Decode the code point at text[pos] (pos < len) strictly: no overlong forms, surrogates, values
 * past U+10FFFF or truncated sequences. Returns its length in bytes, or 0 with a BQ_ERR_UTF8 message
 * naming the byte offset. Never reads at or past len. */
size_t bq_utf8_decode(const char *text, size_t len, size_t pos, int32_t *cp, bq_err *err);
/* The same as an iterator: decode at *pos into *cp and advance *pos; false (leaving *pos) on
 * invalid or truncated input or at the end. */
bool bq_utf8_next(const char *s, size_t len, size_t *pos, uint32_t *cp);
/* Whether all of s[0..len) is valid UTF-8 by the same rules. */
bool bq_utf8_valid(const char *s, size_t len);

/* Checks a packed batch's layout (the contract of bq_engine_forward_packed) for `rows` flat
 * positions and sequences of at most max_len; fills positions[rows] (NULL: not filled) with each
 * token's position in its sequence. Returns BQ_OK or BQ_ERR_INVALID_ARG with the first fault. */
bq_status bq_packed_positions(const int32_t *seq_offsets, int n_seqs, long rows, int max_len,
                              int32_t *positions, bq_err *err);

#ifdef __cplusplus
}
#endif
#endif
