/* test_tuning_cache.c - the CUDA engine's tuning cache file (src/tuning_cache.c) on the host: its
 * sections, its damaged, foreign and unreadable files, and what a write puts back. The engine's use of it (what
 * the decisions mean, taken on a second run) is test_gpu_model's test_tuning_cache and
 * test_api's, on a card or the emulator. */
#include "tuning_cache.h"
#include "test_support.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY "NVIDIA H200 | sm_90 | cublasLt 130000 | fp16 | attention auto of 7 | hidden 1024"
static const char key[] = KEY;

/* dir/name (heap). */
static char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

/* Remove the test's cache file and folder, and free their names. */
static void remove_test_files(char *dir, char *path) {
    remove(path);
    rmdir(dir);
    free(path);
    free(dir);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path) {
    char *text = NULL;
    bq_err err;
    if (bq_read_file(path, &text, NULL, &err) != BQ_OK) fail_msg("%s", err.message);
    return text;
}

static bq_tuning_cache read_cache(const char *path) {
    bq_tuning_cache c;
    memset(&c, 0, sizeof c);
    bq_err err;
    if (bq_tuning_cache_read(path, key, &c, &err) != BQ_OK) fail_msg("read: %s", err.message);
    return c;
}

static bq_tuning_record record(bq_tuning_kind kind, const int *fields) {
    bq_tuning_record r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    memcpy(r.field, fields, sizeof(int) * (kind == BQ_TUNING_GEMM ? BQ_TUNING_GEMM_FIELDS : BQ_TUNING_SHAPE_FIELDS));
    return r;
}

static void test_missing_and_foreign(void **state) {
    (void)state;
    char *dir = bq_test_tmpdir("tuning_missing");
    char *path = path_in(dir, "cache.txt");
    bq_tuning_cache c = read_cache(path);
    assert_true(c.missing && !c.foreign && !c.found && c.n_records == 0 && c.other == NULL);

    /* something else: foreign, nothing read from it */
    write_text(path, "my notes\nkey " KEY "\n"
                     "gemm 1 2 3 4 5 6 7 8 9 10\n");
    bq_tuning_cache_clear(&c);
    c = read_cache(path);
    assert_true(c.foreign && !c.missing && !c.found && c.n_records == 0 && c.other == NULL);

    /* an empty file: a cache with nothing in it */
    write_text(path, "");
    bq_tuning_cache_clear(&c);
    c = read_cache(path);
    assert_true(!c.foreign && !c.missing && !c.found && c.n_records == 0);

    /* a folder cannot be read as one */
    bq_tuning_cache_clear(&c);
    c = read_cache(dir);
    assert_int_equal(c.open_errno, EISDIR);
    assert_false(c.found || c.missing);
    assert_int_equal(c.n_records, 0);
    bq_tuning_cache_clear(&c);

    /* a FIFO is not waited on (alarm: a read that waits fails the test), nor a device read
     * without end: neither is a file to read or to overwrite */
    char *fifo = path_in(dir, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(20);
    c = read_cache(fifo);
    alarm(0);
    assert_true(c.not_regular && !c.missing && !c.found && !c.open_errno && c.n_records == 0);
    bq_tuning_cache_clear(&c);
    remove(fifo);
    free(fifo);
    c = read_cache("/dev/zero");
    assert_true(c.not_regular && c.other == NULL);
    bq_tuning_cache_clear(&c);

    /* a regular file whose read fails at once (/proc/self/mem at address 0: EIO): nothing kept,
     * and the failure said, so that no save replaces what could not be read */
    struct stat sb;
    if (stat("/proc/self/mem", &sb) == 0 && S_ISREG(sb.st_mode)) {
        c = read_cache("/proc/self/mem");
        assert_int_equal(c.read_errno, EIO);
        assert_true(!c.foreign && !c.found && c.n_records == 0 && c.other == NULL);
        bq_tuning_cache_clear(&c);
    }
    bq_tuning_cache_clear(NULL);
    remove_test_files(dir, path);
}

/* Sections of other keys kept as they were, in order; this key's decisions read with their line
 * numbers; blank lines and CRLF allowed; a repeated section of this key dropped. */
static void test_sections(void **state) {
    (void)state;
    char *dir = bq_test_tmpdir("tuning_sections");
    char *path = path_in(dir, "cache.txt");
    char text[2048];
    snprintf(text, sizeof text,
             "bertqa-gpu tuning cache 1\r\n"          /* 1 */
             "key another card\n"                     /* 2 */
             "gemm 384 1024 3072 1 0 1 24 3 1 0\n"    /* 3 */
             "key %s\n"                               /* 4 */
             "gemm  49152 1024   4096 1 0 2 24 5 2 1\r\n" /* 5: runs of spaces */
             "\n"                                     /* 6 */
             "shape 128 384 0 3 1\n"                  /* 7 */
             "shape 1 192 1 -1 0\n"                   /* 8 */
             "key yet another\n"                      /* 9 */
             "shape 8 384 0 1 2\n"                    /* 10 */
             "key %s\n"                               /* 11: the same key again */
             "shape 2 2 2 2 2\n",                     /* 12 */
             key, key);
    write_text(path, text);
    bq_tuning_cache c = read_cache(path);
    assert_true(c.found && !c.foreign && !c.missing);
    assert_int_equal(c.bad_line, 0);
    assert_int_equal(c.n_records, 3);
    assert_int_equal(c.records[0].kind, BQ_TUNING_GEMM);
    assert_int_equal(c.records[0].line, 5);
    const int gemm[10] = {49152, 1024, 4096, 1, 0, 2, 24, 5, 2, 1};
    assert_memory_equal(c.records[0].field, gemm, sizeof gemm);
    assert_int_equal(c.records[1].kind, BQ_TUNING_SHAPE);
    assert_int_equal(c.records[1].line, 7);
    const int shape[5] = {1, 192, 1, -1, 0};
    assert_memory_equal(c.records[2].field, shape, sizeof shape);
    assert_string_equal(c.other, "key another card\ngemm 384 1024 3072 1 0 1 24 3 1 0\nkey yet another\nshape 8 384 0 1 2\n");
    assert_int_equal(c.other_len, strlen(c.other));
    bq_tuning_cache_clear(&c);
    remove_test_files(dir, path);
}

/* The first line of this key's section that does not parse ends it: that line and the rest are
 * left out, and later sections of other keys are still kept. */
static void test_damaged_lines(void **state) {
    (void)state;
    static const char *const damaged[] = {
        "gemm 1 2 3 4 5 6 7 8 9",             /* too few (the 9 of the lines before the output check) */
        "gemm 1 2 3 4 5 6 7 8 9 10 11",       /* too many */
        "gemm 1 2 3 4 5 6 7 8 9 10x",         /* trailing characters */
        "gemm 99999999999 2 3 4 5 6 7 8 9 0", /* past an int */
        "shape 1 2 3 4 -2147483649",        /* below an int */
        "shape1 2 3 4 5",                   /* no space after the word */
        "shape 1 2 3 4 5 ",                 /* a trailing space */
        "gemm 1 2 3 4 5 6 7 8 9 +",           /* a sign without digits */
        "frobnicate 1",                     /* an unknown line */
        " ",                                /* not blank: a space */
    };
    char *dir = bq_test_tmpdir("tuning_damaged");
    char *path = path_in(dir, "cache.txt");
    for (size_t i = 0; i < sizeof damaged / sizeof *damaged; i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "bertqa-gpu tuning cache 1\nkey %s\nshape 1 384 0 1 1\n%s\nshape 2 384 0 1 1\nkey other\nshape 3 3 0 0 0\n",
                 key, damaged[i]);
        write_text(path, text);
        bq_tuning_cache c = read_cache(path);
        if (c.bad_line != 4 || c.n_records != 1 || c.records[0].field[0] != 1)
            fail_msg("'%s': bad line %d, %zu records", damaged[i], c.bad_line, c.n_records);
        assert_string_equal(c.other, "key other\nshape 3 3 0 0 0\n");
        bq_tuning_cache_clear(&c);
    }
    /* the extremes of an int parse */
    write_text(path, "bertqa-gpu tuning cache 1\nkey " KEY "\n"
                     "shape 2147483647 -2147483648 0 0 0\n");
    bq_tuning_cache c = read_cache(path);
    assert_int_equal(c.bad_line, 0);
    assert_int_equal(c.n_records, 1);
    assert_int_equal(c.records[0].field[0], 2147483647);
    assert_int_equal(c.records[0].field[1], -2147483647 - 1);
    bq_tuning_cache_clear(&c);
    remove_test_files(dir, path);
}

/* What a write puts down reads back the same: the other sections first, then this key's. */
static void test_write_round_trip(void **state) {
    (void)state;
    char *dir = bq_test_tmpdir("tuning_write");
    char *path = path_in(dir, "cache.txt");
    const int g[10] = {384, 1024, 3072, 1, 0, 1, 24, 0, 1, 4}, s1[5] = {1, 384, 0, 3, 2}, s2[5] = {128, 96, 1, 4, 0};
    const bq_tuning_record records[3] = {record(BQ_TUNING_GEMM, g), record(BQ_TUNING_SHAPE, s1),
                                         record(BQ_TUNING_SHAPE, s2)};
    bq_err err;
    const char *other = "key another card\nshape 8 384 0 1 2\n";
    assert_int_equal(bq_tuning_cache_write(path, other, key, records, 3, &err), BQ_OK);
    char *text = read_text(path);
    char expected[1024];
    snprintf(expected, sizeof expected,
             "bertqa-gpu tuning cache 1\nkey another card\nshape 8 384 0 1 2\nkey %s\n"
             "gemm 384 1024 3072 1 0 1 24 0 1 4\nshape 1 384 0 3 2\nshape 128 96 1 4 0\n", key);
    assert_string_equal(text, expected);
    free(text);
    bq_tuning_cache c = read_cache(path);
    assert_true(c.found && c.bad_line == 0 && c.n_records == 3);
    assert_string_equal(c.other, other);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c.records[i].kind, records[i].kind);
        assert_memory_equal(c.records[i].field, records[i].field, sizeof records[i].field);
    }
    /* written again from what was read: the same file */
    assert_int_equal(bq_tuning_cache_write(path, c.other, key, c.records, c.n_records, &err), BQ_OK);
    text = read_text(path);
    assert_string_equal(text, expected);
    free(text);
    bq_tuning_cache_clear(&c);

    /* nothing to keep: the magic and the key */
    assert_int_equal(bq_tuning_cache_write(path, NULL, key, NULL, 0, &err), BQ_OK);
    text = read_text(path);
    snprintf(expected, sizeof expected, "bertqa-gpu tuning cache 1\nkey %s\n", key);
    assert_string_equal(text, expected);
    free(text);

    /* a record of no known kind is refused, the file left as it was */
    bq_tuning_record bad = records[0];
    bad.kind = (bq_tuning_kind)7;
    assert_int_equal(bq_tuning_cache_write(path, NULL, "another key", &bad, 1, &err), BQ_ERR_INVALID_ARG);
    text = read_text(path);
    assert_string_equal(text, expected);
    free(text);
    assert_int_equal(bq_tuning_cache_write(NULL, NULL, key, NULL, 0, &err), BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_tuning_cache_write(path, NULL, NULL, NULL, 0, &err), BQ_ERR_INVALID_ARG);
    remove(path);
    free(path);

    /* a folder that does not exist: an I/O error naming the path, nothing left behind */
    path = path_in(dir, "no such folder/cache.txt");
    assert_int_equal(bq_tuning_cache_write(path, NULL, key, records, 3, &err), BQ_ERR_IO);
    assert_non_null(strstr(err.message, "no such folder"));
    free(path);

    /* "-" is a file of that name, as the reader opens it, never standard output */
    char *cwd = getcwd(NULL, 0);
    assert_non_null(cwd);
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(bq_tuning_cache_write("-", NULL, key, records, 1, &err), BQ_OK);
    c = read_cache("-");
    assert_true(c.found && c.n_records == 1);
    bq_tuning_cache_clear(&c);
    remove("-");
    assert_int_equal(chdir(cwd), 0);
    free(cwd);
    rmdir(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_and_foreign),
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_damaged_lines),
        cmocka_unit_test(test_write_round_trip),
    };
    bq_test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
