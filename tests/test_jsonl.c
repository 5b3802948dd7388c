/* test_jsonl.c - the jsonl command's records (src/jsonl.c): a numeric "id" comes back exactly as
 * the line wrote it, whatever its length, found as the last top-level "id" however the members
 * before it nest, quote or escape; what is not a strict JSON number comes back as cJSON's number.
 * And its line reader: lines already read in count as input that is there, lines of any length
 * and at the buffer's edges, NULs inside, a last line without '\n', a read that fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "jsonl.h"
#include "test_support.h"

/* The id of `line` as the error line written back for it carries it ("id": ... up to the comma
 * before "error"); the record must parse without error. */
static void assert_id_echoed(const char *line, const char *expected) {
    bq_jsonl_record rec;
    bq_jsonl_record_parse(line, strlen(line), &rec);
    if (rec.error[0]) fail_msg("%s: %s", line, rec.error);
    char *out = bq_jsonl_error_line(rec.id, "x");
    assert_non_null(out);
    char want[512];
    snprintf(want, sizeof want, "{\"id\":%s,\"error\":\"x\"}", expected);
    if (strcmp(out, want) != 0) fail_msg("%s\n  gave %s\n  want %s", line, out, want);
    free(out);
    bq_jsonl_record_clear(&rec);
}

#define QC ", \"question\": \"Q?\", \"context\": \"C.\""

static void test_numeric_id_exact(void **state) {
    (void)state;
    /* past double precision: 2^53 + 1, and 23 digits */
    assert_id_echoed("{\"id\": 9007199254740993" QC "}", "9007199254740993");
    assert_id_echoed("{\"id\": 12345678901234567890123" QC "}", "12345678901234567890123");
    assert_id_echoed("{\"id\": -0.000000000000000000012345678901234567" QC "}",
                     "-0.000000000000000000012345678901234567");
    assert_id_echoed("{\"id\": 1.50E+3" QC "}", "1.50E+3");
    assert_id_echoed("{\"id\":7" QC "}", "7");
    assert_id_echoed("{" "\"question\": \"Q?\", \"context\": \"C.\", \"id\" :\t42 }", "42");
}

static void test_last_top_level_id(void **state) {
    (void)state;
    /* a repeated key: the last counts (as cJSON and Python's json take it) */
    assert_id_echoed("{\"id\": 1, \"id\": 98765432109876543210" QC "}", "98765432109876543210");
    assert_id_echoed("{\"id\": 98765432109876543210, \"id\": \"s\"" QC "}", "\"s\"");
    /* "id" inside nested values, inside strings, behind escaped quotes: not the record's id */
    assert_id_echoed("{\"meta\": {\"id\": 5, \"x\": [1, {\"id\": 6}]}, \"note\": \"\\\"id\\\": 7\", "
                     "\"id\": 123456789012345678901" QC "}", "123456789012345678901");
    assert_id_echoed("{\"id\": 123456789012345678901, \"meta\": {\"id\": 5}, \"tags\": [\"id\"]" QC "}",
                     "123456789012345678901");
    /* white space as cJSON skips it (any byte up to 0x20, so a form feed or a vertical tab after a
     * value), and a byte-order mark before the object */
    assert_id_echoed("{\"id\":9007199254740993,\"x\":\"s\"\f,\"id\":9007199254740995" QC "}",
                     "9007199254740995");
    assert_id_echoed("{\"id\":1,\"x\":\"s\"\v,\"id\":1.0" QC "}", "1.0");
    assert_id_echoed("\xEF\xBB\xBF{\"id\": 9007199254740993" QC "}", "9007199254740993");
    /* an escaped key that says "id" is the id, as cJSON decodes it */
    assert_id_echoed("{\"\\u0069d\": 123456789012345678901" QC "}", "123456789012345678901");
    assert_id_echoed("{\"i\\u0064\": 1, \"\\u0069\\u0064\": 24680246802468024680" QC "}",
                     "24680246802468024680");
}

static void test_loose_numbers_as_cjson_reads_them(void **state) {
    (void)state;
    /* what cJSON accepts beyond JSON's grammar must not reach an output line as written: it comes
     * back as cJSON's number */
    assert_id_echoed("{\"id\": 007" QC "}", "7");
    assert_id_echoed("{\"id\": 1." QC "}", "1");
    /* strings and null stay as they were */
    assert_id_echoed("{\"id\": \"12345678901234567890123\"" QC "}", "\"12345678901234567890123\"");
    assert_id_echoed("{\"question\": \"Q?\", \"context\": \"C.\"}", "null");
}

/* The next line must be `want` (n bytes). */
static void expect_line(bq_line_reader *r, const char *want, size_t n) {
    char *line = NULL;
    size_t len = 0;
    assert_int_equal(bq_line_reader_next(r, &line, &len), 1);
    assert_int_equal(len, n);
    assert_memory_equal(line, want, n);
    assert_int_equal(line[len], '\0');
}

static void write_all(int fd, const char *s, size_t n) { assert_int_equal(write(fd, s, n), (ssize_t)n); }

/* A burst written into a pipe that stays open: every line of it is ready once the first is read
 * (the stdio reader's buffer hid them from poll, and each became a pipeline call of its own). */
static void test_line_reader_pipe(void **state) {
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    bq_line_reader *r = bq_line_reader_create(fds[0]);
    assert_non_null(r);
    assert_false(bq_line_reader_ready(r)); /* nothing written yet */
    write_all(fds[1], "a\nbb\n\nc\0c\nccc", 13);
    assert_true(bq_line_reader_ready(r));
    expect_line(r, "a", 1);
    assert_true(bq_line_reader_ready(r)); /* read in, not in the pipe */
    expect_line(r, "bb", 2);
    assert_true(bq_line_reader_ready(r));
    expect_line(r, "", 0);
    expect_line(r, "c\0c", 3);
    assert_false(bq_line_reader_ready(r)); /* "ccc" waits for its end */
    write_all(fds[1], "c\nx", 3);
    assert_true(bq_line_reader_ready(r));
    expect_line(r, "cccc", 4);
    close(fds[1]);
    expect_line(r, "x", 1); /* the last line, without '\n' */
    char *line;
    size_t len;
    assert_int_equal(bq_line_reader_next(r, &line, &len), 0);
    assert_true(bq_line_reader_ready(r)); /* the end is there now */
    assert_int_equal(bq_line_reader_next(r, &line, &len), 0);
    bq_line_reader_free(r);
    bq_line_reader_free(NULL);
    close(fds[0]);
}

/* Lines around the reader's first buffer (64 KiB, one byte kept for a last line's NUL) and far
 * past it, with and without a last '\n', from a file. */
static void test_line_reader_lengths(void **state) {
    (void)state;
    char *dir = bq_test_tmpdir("jsonl");
    assert_non_null(dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/lines", dir);
    const size_t lengths[] = {0, 1, 65534, 65535, 65536, 65537, 131071, 200000};
    char *text = malloc(2 * 200001);
    assert_non_null(text);
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        for (int newline = 0; newline <= 1; newline++) {
            /* one line of lengths[i] bytes, then (with newline) a second, short one */
            const size_t n = lengths[i];
            for (size_t k = 0; k < n; k++) text[k] = (char)('a' + k % 26);
            size_t total = n;
            if (newline) {
                memcpy(text + n, "\nzz\n", 4);
                total += 4;
            }
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(text, 1, total, f), total);
            fclose(f);
            int fd = open(path, O_RDONLY);
            assert_true(fd >= 0);
            bq_line_reader *r = bq_line_reader_create(fd);
            assert_non_null(r);
            char *line;
            size_t len;
            if (n > 0 || newline) expect_line(r, text, n);
            if (newline) expect_line(r, "zz", 2);
            assert_int_equal(bq_line_reader_next(r, &line, &len), 0);
            bq_line_reader_free(r);
            close(fd);
        }
    }
    remove(path);
    rmdir(dir);
    free(dir);
    free(text);
}

/* A read that fails (a folder): -1 with errno set, again on the next call. */
static void test_line_reader_error(void **state) {
    (void)state;
    int fd = open(".", O_RDONLY);
    assert_true(fd >= 0);
    bq_line_reader *r = bq_line_reader_create(fd);
    char *line;
    size_t len;
    errno = 0;
    assert_int_equal(bq_line_reader_next(r, &line, &len), -1);
    assert_int_equal(errno, EISDIR);
    assert_true(bq_line_reader_ready(r));
    assert_int_equal(bq_line_reader_next(r, &line, &len), -1);
    bq_line_reader_free(r);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numeric_id_exact),
        cmocka_unit_test(test_last_top_level_id),
        cmocka_unit_test(test_loose_numbers_as_cjson_reads_them),
        cmocka_unit_test(test_line_reader_pipe),
        cmocka_unit_test(test_line_reader_lengths),
        cmocka_unit_test(test_line_reader_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
