/* test_jsonl.c - the jsonl command's records (src/jsonl.c): a numeric "id" comes back exactly as
 * the line wrote it, whatever its length, found as the last top-level "id" however the members
 * before it nest, quote or escape; what is not a strict JSON number comes back as cJSON's number. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numeric_id_exact),
        cmocka_unit_test(test_last_top_level_id),
        cmocka_unit_test(test_loose_numbers_as_cjson_reads_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
