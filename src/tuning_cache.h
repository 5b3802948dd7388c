/* tuning_cache.h - the file that keeps the CUDA engine's one-time kernel decisions between runs
 * (bq_engine_options.tuning_cache, --tuning-cache FILE): its text format, read and written here on
 * the host so that it is tested and fuzzed without a GPU. What the numbers mean (GEMM candidates,
 * attention tilings) is the engine's: cuda/engine_cuda.cu checks their ranges and applies them.
 *
 * The file: a magic line, then a section per key. A section is a line "key <text>" and one
 * decision a line:
 *   gemm rows in out dtype tf32 epilogue candidates chosen gelu-path gelu-disagreed  (10 integers)
 *   shape batch len packed attention gemm                              (5 integers)
 * Blank lines are allowed. An engine reads its own key's section when it starts; when it saves,
 * it reads the file again and writes it back with the other sections as they are then, so engines
 * share a file, one process's (alive at once or not) or several processes' that save one after
 * another (two saving at the same moment: the later rename wins). */
#ifndef BQ_TUNING_CACHE_H
#define BQ_TUNING_CACHE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BQ_TUNING_CACHE_MAGIC "bertqa-gpu tuning cache 1"

enum { BQ_TUNING_GEMM_FIELDS = 10, BQ_TUNING_SHAPE_FIELDS = 5, BQ_TUNING_MAX_FIELDS = 10 };

typedef enum { BQ_TUNING_GEMM, BQ_TUNING_SHAPE } bq_tuning_kind;

/* One decision line of the key's section. */
typedef struct {
    bq_tuning_kind kind;
    int line;                        /* its line number in the file (1 = the magic line) */
    int field[BQ_TUNING_MAX_FIELDS]; /* BQ_TUNING_GEMM_FIELDS or _SHAPE_FIELDS of them */
} bq_tuning_record;

/* What reading a cache file found. Zero it before the first read; release with
 * bq_tuning_cache_clear. */
typedef struct {
    int missing;      /* no such file yet (a first run) */
    int open_errno;   /* the file exists but could not be opened: its errno (0 otherwise) */
    int not_regular;  /* a FIFO, a device: never read (nor waited on) nor overwritten */
    int read_errno;   /* reading failed partway: its errno; nothing of the file is kept (records
                         and `other` empty), so it must not be overwritten either */
    int foreign;      /* the first line is not the magic: something else, never to be overwritten */
    int found;        /* the key's section is there */
    int bad_line;     /* the first line of the key's section that does not parse (0: none); it
                         and the rest of the section are left out of `records` */
    bq_tuning_record *records; /* [n_records] the key's decisions before bad_line, in file order */
    size_t n_records, records_cap;
    char *other;      /* the other keys' sections, lines as read, each ending in '\n' (NULL: none) */
    size_t other_len, other_cap;
} bq_tuning_cache;

/* Read the cache at `path` for `key` into *out (cleared first). A missing, unreadable, foreign
 * or not regular file and one whose read failed partway are reported in *out, not as failures: a
 * cache only saves time. A second section of
 * the same key (not one this module writes) is dropped with its lines. Returns BQ_OK, or
 * BQ_ERR_NOMEM (*out then cleared) or BQ_ERR_INVALID_ARG (a NULL argument). */
bq_status bq_tuning_cache_read(const char *path, const char *key, bq_tuning_cache *out, bq_err *err);

/* Release what a read holds and zero *c. Accepts NULL. */
void bq_tuning_cache_clear(bq_tuning_cache *c);

/* Write the file at `path` whole or not at all (bq_output_open: beside it, then renamed over
 * it): the magic line, `other` (the other keys' sections as read; may be NULL), then "key <key>"
 * and records[0..n) (line numbers ignored). Returns BQ_OK, BQ_ERR_IO (the message names the file
 * and why; the file is then as it was), BQ_ERR_NOMEM or BQ_ERR_INVALID_ARG (a NULL path or key,
 * or a record of an unknown kind). */
bq_status bq_tuning_cache_write(const char *path, const char *other, const char *key,
                                const bq_tuning_record *records, size_t n, bq_err *err);

#ifdef __cplusplus
}
#endif
#endif /* BQ_TUNING_CACHE_H */
