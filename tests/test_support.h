/* test_support.h - helpers shared by the CMocka tests. */
#ifndef BQ_TEST_SUPPORT_H
#define BQ_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Path under the source tree (static buffer, valid until the next call). */
const char *bq_test_src_path(const char *relative);
/* A fresh empty temporary directory (created under the build tree); caller frees. */
char *bq_test_tmpdir(const char *tag);
/* Seeded uniform floats in [lo, hi). */
void bq_test_fill_uniform(float *x, size_t n, uint64_t *state, float lo, float hi);
/* Normwise relative error ||a-b|| / ||b|| (0 when both are zero). */
double bq_test_rel_error(const float *a, const float *b, size_t n);
/* max |a-b| and max |b|. */
void bq_test_max_diff(const float *a, const float *b, size_t n, double *max_diff, double *max_ref);
/* The decompressed contents of a gzip file under the source tree (heap, NUL-terminated; *len
 * without the NUL, may be NULL), or NULL when gzip fails. */
char *bq_test_gunzip(const char *relative, size_t *len);
/* The shipped vocabulary (vocab/vocab.txt), or NULL after printing why. */
struct bq_vocab *bq_test_load_vocab(void);
/* Run a shell command, capture stdout (heap, NUL-terminated) and exit status. */
char *bq_test_run(const char *cmd, int *exit_status);
/* BQ_TEST_FILTER=pattern (cmocka wildcards, e.g. "test_attention*") runs only the matching tests
 * of the group run next, BQ_TEST_SKIP=pattern leaves the matching ones out: one test under
 * compute-sanitizer, or again after a failure. */
void bq_test_filter_from_env(void);

#endif
