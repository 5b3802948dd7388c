/* test_squad_data.c - SQuAD dataset and predictions JSON: what a valid file yields, and that
 * malformed files give the right status with a message naming the problem (never a crash). */
#include "common.h"
#include "squad_data.h"
#include "test_support.h"

#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tmp_dir;

static int setup(void **state) {
    (void)state;
    tmp_dir = bq_test_tmpdir("squad_data");
    return tmp_dir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rmdir(tmp_dir);
    free(tmp_dir);
    return 0;
}

/* Write `len` bytes to a fresh file in tmp_dir; returns a static path. */
static const char *write_tmp(const char *name, const char *data, size_t len) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

/* ---- valid datasets ------------------------------------------------------------------------- */

static void test_valid_dataset(void **state) {
    (void)state;
    const char *json =
        "{\"version\": \"1.1\", \"data\": [\n"
        " {\"title\": \"T\", \"paragraphs\": [\n"
        "  {\"context\": \"Caf\\u00e9 \\ud83d\\ude00 one\", \"qas\": [\n"
        "    {\"id\": \"q1\", \"question\": \"Who?\", \"answers\": [\n"
        "       {\"text\": \"one\", \"answer_start\": 7},\n"
        "       {\"text\": \"Caf\\u00e9\", \"answer_start\": 0}]},\n"
        "    {\"id\": \"q2\", \"question\": \"What?\", \"answers\": []}]},\n"
        /* an escaped quote, an escaped backslash before "u0000" (text, not a NUL), a \t escape */
        "  {\"context\": \"s\\\"e\\\\u0000c\\\\\\tond\", \"qas\": [{\"id\": \"q3\", \"question\": \"x\"}]}]},\n"
        " {\"title\": \"U\", \"paragraphs\": [{\"context\": \"third\", \"qas\": [\n"
        "    {\"id\": \"q4\", \"id\": \"q4-last\", \"question\": \"y\",\n"
        "     \"answers\": [{\"text\": \"t\"}]}]}]}]}\n";
    bq_squad_dataset *ds = NULL;
    bq_err err;
    assert_int_equal(bq_squad_parse(json, strlen(json), "inline", BQ_SQUAD_STRICT, &ds, &err), BQ_OK);
    assert_int_equal(ds->n_contexts, 3);
    assert_int_equal(ds->n_questions, 4);
    assert_string_equal(ds->contexts[0], "Caf\xc3\xa9 \xf0\x9f\x98\x80 one");
    assert_string_equal(ds->contexts[1], "s\"e\\u0000c\\\tond");
    assert_string_equal(ds->contexts[2], "third");
    assert_string_equal(ds->questions[0].id, "q1");
    assert_string_equal(ds->questions[0].question, "Who?");
    assert_int_equal(ds->questions[0].paragraph, 0);
    assert_int_equal(ds->questions[0].n_answers, 2);
    assert_string_equal(ds->questions[0].answers[1], "Caf\xc3\xa9");
    assert_int_equal(ds->questions[1].n_answers, 0);
    assert_int_equal(ds->questions[2].paragraph, 1);
    assert_int_equal(ds->questions[2].n_answers, 0); /* no "answers": prediction-only input */
    /* A repeated key keeps its last value, as Python's json does. */
    assert_string_equal(ds->questions[3].id, "q4-last");
    assert_int_equal(ds->questions[3].paragraph, 2);
    bq_squad_free(ds);
    bq_squad_free(NULL);

    /* through a file */
    const char *path = write_tmp("ok.json", json, strlen(json));
    assert_int_equal(bq_squad_load(path, BQ_SQUAD_STRICT, &ds, &err), BQ_OK);
    assert_int_equal(ds->n_questions, 4);
    bq_squad_free(ds);
    remove(path);
}

/* ---- malformed datasets --------------------------------------------------------------------- */

typedef struct {
    const char *json;
    bq_status status;
    const char *message_part; /* must appear in the error message */
} bad_case;

static const bad_case bad_datasets[] = {
    {"{\"data\": [{\"paragraphs\": [", BQ_ERR_FORMAT, "unexpected end of input"},
    {"", BQ_ERR_FORMAT, "unexpected end of input"},
    {"{\"data\": [] ", BQ_ERR_FORMAT, "unexpected end of input"},
    {"{\"data\": [\"abc\\\"", BQ_ERR_FORMAT, "unexpected end of input"},
    {"{\"data\": [}", BQ_ERR_FORMAT, "malformed JSON at line 1, column 11"},
    {"{\"data\": []} {}", BQ_ERR_FORMAT, "extra data"},
    {"[1, 2]", BQ_ERR_FORMAT, "top-level JSON value is an array"},
    {"\"data\"", BQ_ERR_FORMAT, "top-level JSON value is a string"},
    {"{}", BQ_ERR_FORMAT, "'data' is missing"},
    {"{\"data\": {}}", BQ_ERR_FORMAT, "'data' is an object, expected an array"},
    {"{\"data\": [\"x\"]}", BQ_ERR_FORMAT, "data[0] is a string"},
    {"{\"data\": [{}]}", BQ_ERR_FORMAT, "data[0]: 'paragraphs' is missing"},
    {"{\"data\": [{\"paragraphs\": [{\"qas\": []}]}]}", BQ_ERR_FORMAT,
     "data[0].paragraphs[0]: 'context' is missing"},
    {"{\"data\": [{\"paragraphs\": []}, {\"paragraphs\": [null]}]}", BQ_ERR_FORMAT,
     "data[1].paragraphs[0] is null"},
    {"{\"data\": [{\"paragraphs\": [{\"context\": 5, \"qas\": []}]}]}", BQ_ERR_FORMAT,
     "'context' is a number"},
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": {}}]}]}", BQ_ERR_FORMAT,
     "data[0].paragraphs[0]: 'qas' is an object"},
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [\n"
     "{\"id\": \"a\", \"question\": \"q\"}, {\"id\": 7, \"question\": \"q\"}]}]}]}",
     BQ_ERR_FORMAT, "data[0].paragraphs[0].qas[1]: 'id' is a number"},
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [{\"id\": \"a\"}]}]}]}",
     BQ_ERR_FORMAT, "(id 'a'): 'question' is missing"},
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [\n"
     "{\"id\": \"a\", \"question\": \"q\", \"answers\": \"x\"}]}]}]}",
     BQ_ERR_FORMAT, "'answers' is a string, expected an array"},
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [\n"
     "{\"id\": \"a\", \"question\": \"q\", \"answers\": [{\"text\": \"t\"},\n"
     " {\"answer_start\": 0}]}]}]}]}",
     BQ_ERR_FORMAT, "data[0].paragraphs[0].qas[0].answers[1]: 'text' is missing"},
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [\n"
     "{\"id\": \"a\", \"question\": \"q\", \"answers\": [[\"t\"]]}]}]}]}",
     BQ_ERR_FORMAT, "answers[0] is an array, expected an object"},
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"caf\xe9\", \"qas\": []}]}]}", BQ_ERR_UTF8,
     "invalid UTF-8 at byte 42"},
    /* strings cJSON accepts but would cut short, or that JSON forbids (Python's json refuses) */
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"a\\u0000b\", \"qas\": []}]}]}", BQ_ERR_FORMAT,
     "a NUL character (\\u0000), which would cut the string short, at line 1, column 41"},
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"a\\uzzzzb\", \"qas\": []}]}]}", BQ_ERR_FORMAT,
     "a \\u escape without 4 hex digits"},
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"a\\u00e\", \"qas\": []}]}]}", BQ_ERR_FORMAT,
     "malformed JSON at line 1, column 41"}, /* too short for cJSON too */
    {"{\"data\": [{\"paragraphs\": [{\"context\": \"a\tb\", \"qas\": []}]}]}", BQ_ERR_FORMAT,
     "a raw control character inside a string (JSON needs it escaped), at line 1, column 41"},
};

static void test_bad_datasets(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_datasets / sizeof bad_datasets[0]; i++) {
        const bad_case *c = &bad_datasets[i];
        bq_squad_dataset *ds = (bq_squad_dataset *)&ds; /* must be reset to NULL */
        bq_err err = {BQ_OK, ""};
        bq_status st = bq_squad_parse(c->json, strlen(c->json), "bad.json", BQ_SQUAD_STRICT, &ds, &err);
        if (st != c->status || !strstr(err.message, c->message_part) ||
            !strstr(err.message, "bad.json") || ds != NULL)
            fail_msg("case %zu: status %d message '%s'; want status %d and '%s'", i, (int)st,
                     err.message, (int)c->status, c->message_part);

        /* BQ_SQUAD_KEEP_GOING: a record's fault (its JSON path starts at data[) is set aside,
         * once, with the message the strict read failed with, and the read goes on; a fault of
         * the file itself fails it the same way */
        char strict_message[sizeof err.message];
        snprintf(strict_message, sizeof strict_message, "%s", err.message);
        ds = (bq_squad_dataset *)&ds;
        st = bq_squad_parse(c->json, strlen(c->json), "bad.json", BQ_SQUAD_KEEP_GOING, &ds, &err);
        if (!strstr(strict_message, "bad.json: data[")) {
            if (st != c->status || ds != NULL || strcmp(err.message, strict_message) != 0)
                fail_msg("case %zu kept going: status %d message '%s'", i, (int)st, err.message);
            continue;
        }
        if (st != BQ_OK) fail_msg("case %zu kept going: status %d message '%s'", i, (int)st, err.message);
        int seen = 0;
        for (int d = 0; d < ds->n_damaged; d++) seen += strcmp(ds->damaged[d], strict_message) == 0;
        for (int q = 0; q < ds->n_questions; q++) {
            const bq_squad_question *question = &ds->questions[q];
            if (question->problem) {
                seen += strcmp(question->problem, strict_message) == 0;
                assert_null(question->question);
                assert_int_equal(question->n_answers, 0);
            } else {
                assert_non_null(question->question);
            }
        }
        if (seen != 1) fail_msg("case %zu kept going: '%s' reported %d times", i, strict_message, seen);
        bq_squad_free(ds);
    }
}

/* One pass over a file with good and damaged records: every good question is read as a clean
 * file would give it, every damaged one is reported where it lies, nothing twice. */
static void test_keep_going(void **state) {
    (void)state;
    const char *json =
        "{\"data\": [\n"
        " {\"paragraphs\": [\n"
        "  {\"context\": \"first\", \"qas\": [\n"
        "    {\"id\": \"good1\", \"question\": \"q1\", \"answers\": [{\"text\": \"first\"}]},\n"
        "    {\"id\": \"noq\"},\n"
        "    {\"id\": 7, \"question\": \"q\"},\n"
        "    \"text\",\n"
        "    {\"id\": \"badans\", \"question\": \"q\", \"answers\": [{\"answer_start\": 0}]},\n"
        "    {\"id\": \"good2\", \"question\": \"q2\"}]},\n"
        "  {\"context\": 5, \"qas\": [{\"id\": \"ctx1\", \"question\": \"q\"}, {\"question\": \"q\"},\n"
        "                           {\"id\": \"ctx2\", \"question\": \"q\"}]},\n"
        "  {\"qas\": []},\n"
        "  {\"context\": \"no qas\"},\n"
        "  null]},\n"
        " \"article\",\n"
        " {\"title\": \"no paragraphs\"},\n"
        " {\"paragraphs\": [{\"context\": \"last\", \"qas\": [{\"id\": \"good3\", \"question\": \"q3\"}]}]}]}\n";
    bq_squad_dataset *ds = NULL;
    bq_err err;
    assert_int_equal(bq_squad_parse(json, strlen(json), "mixed.json", BQ_SQUAD_KEEP_GOING, &ds, &err), BQ_OK);

    /* questions in file order: those with a string id, damaged or not */
    static const struct {
        const char *id, *question, *problem; /* problem: part of the message, or NULL */
        int paragraph;
    } want[] = {
        {"good1", "q1", NULL, 0},
        {"noq", NULL, "mixed.json: data[0].paragraphs[0].qas[1] (id 'noq'): 'question' is missing", 0},
        {"badans", NULL, "mixed.json: data[0].paragraphs[0].qas[4].answers[0]: 'text' is missing", 0},
        {"good2", "q2", NULL, 0},
        {"ctx1", NULL, "mixed.json: data[0].paragraphs[1]: 'context' is a number", 1},
        {"ctx2", NULL, "mixed.json: data[0].paragraphs[1]: 'context' is a number", 1},
        {"good3", "q3", NULL, 2},
    };
    assert_int_equal(ds->n_questions, (int)(sizeof want / sizeof want[0]));
    for (int q = 0; q < ds->n_questions; q++) {
        const bq_squad_question *question = &ds->questions[q];
        assert_string_equal(question->id, want[q].id);
        assert_int_equal(question->paragraph, want[q].paragraph);
        if (want[q].problem) {
            assert_null(question->question);
            assert_non_null(question->problem);
            if (!strstr(question->problem, want[q].problem))
                fail_msg("question %d: problem '%s', want '%s'", q, question->problem, want[q].problem);
            assert_int_equal(question->n_answers, 0);
        } else {
            assert_null(question->problem);
            assert_string_equal(question->question, want[q].question);
        }
    }
    assert_int_equal(ds->questions[0].n_answers, 1);
    assert_string_equal(ds->questions[0].answers[0], "first");
    /* a paragraph whose context is damaged keeps its place, empty, for its questions */
    assert_int_equal(ds->n_contexts, 3);
    assert_string_equal(ds->contexts[0], "first");
    assert_string_equal(ds->contexts[1], "");
    assert_string_equal(ds->contexts[2], "last");

    /* records with no question id to report them under, file order */
    static const char *const want_damaged[] = {
        "mixed.json: data[0].paragraphs[0].qas[2]: 'id' is a number, expected a string",
        "mixed.json: data[0].paragraphs[0].qas[3] is a string, expected an object",
        "mixed.json: data[0].paragraphs[1].qas[1]: 'id' is missing, expected a string",
        "mixed.json: data[0].paragraphs[2]: 'context' is missing, expected a string",
        "mixed.json: data[0].paragraphs[3]: 'qas' is missing, expected an array",
        "mixed.json: data[0].paragraphs[4] is null, expected an object",
        "mixed.json: data[1] is a string, expected an object",
        "mixed.json: data[2]: 'paragraphs' is missing, expected an array",
    };
    assert_int_equal(ds->n_damaged, (int)(sizeof want_damaged / sizeof want_damaged[0]));
    for (int d = 0; d < ds->n_damaged; d++) assert_string_equal(ds->damaged[d], want_damaged[d]);
    bq_squad_free(ds);

    /* the same file read strictly fails at its first damaged record */
    assert_int_equal(bq_squad_parse(json, strlen(json), "mixed.json", BQ_SQUAD_STRICT, &ds, &err),
                     BQ_ERR_FORMAT);
    assert_null(ds);
    assert_non_null(strstr(err.message, "data[0].paragraphs[0].qas[1] (id 'noq'): 'question' is missing"));
}

static void test_dataset_files(void **state) {
    (void)state;
    bq_squad_dataset *ds = NULL;
    bq_err err;
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/no-such-file.json", tmp_dir);
    assert_int_equal(bq_squad_load(missing, BQ_SQUAD_STRICT, &ds, &err), BQ_ERR_IO);
    assert_non_null(strstr(err.message, "no-such-file.json"));
    assert_null(ds);

    /* truncated copy of a real-looking file, through the path API */
    const char *json =
        "{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [{\"id\": \"a\"";
    const char *path = write_tmp("truncated.json", json, strlen(json));
    assert_int_equal(bq_squad_load(path, BQ_SQUAD_STRICT, &ds, &err), BQ_ERR_FORMAT);
    assert_non_null(strstr(err.message, "truncated.json"));
    assert_non_null(strstr(err.message, "unexpected end of input"));
    remove(path);

    assert_int_equal(bq_squad_load(NULL, BQ_SQUAD_STRICT, &ds, &err), BQ_ERR_INVALID_ARG);
    assert_int_equal(bq_squad_parse(NULL, 0, "x", BQ_SQUAD_STRICT, &ds, &err), BQ_ERR_INVALID_ARG);
}

/* ---- output files, written whole or not at all ------------------------------------------------- */

static char *slurp(const char *path) {
    char *data = NULL;
    size_t len;
    bq_err err;
    return bq_read_file(path, &data, &len, &err) == BQ_OK ? data : NULL;
}

/* How many files match a glob pattern. */
static int count_files(const char *pattern) {
    glob_t g;
    const int rc = glob(pattern, 0, NULL, &g);
    const int n = rc == 0 ? (int)g.gl_pathc : 0;
    if (rc == 0) globfree(&g);
    return n;
}

/* Two threads writing one target at once: each its own temporary, both commits succeed (the
 * later rename wins), nothing left beside it. */
typedef struct {
    const char *target;
    const char *text;
    int failures;
} writer_job;

static void *write_many(void *arg) {
    writer_job *j = arg;
    for (int i = 0; i < 200; i++) {
        bq_output_file *out = NULL;
        bq_err err;
        if (bq_output_open(j->target, &out, &err) != BQ_OK) {
            j->failures++;
            continue;
        }
        fputs(j->text, bq_output_stream(out));
        j->failures += bq_output_commit(out, &err) != BQ_OK;
    }
    return NULL;
}

static void test_output_file_two_threads(void **state) {
    (void)state;
    const char *path = write_tmp("shared.txt", "earlier", 7);
    char target[4200], pattern[4300];
    snprintf(target, sizeof target, "%s", path);
    snprintf(pattern, sizeof pattern, "%s.*.tmp", target);
    writer_job jobs[2] = {{target, "first", 0}, {target, "second", 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, write_many, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(jobs[0].failures, 0);
    assert_int_equal(jobs[1].failures, 0);
    char *text = slurp(target);
    assert_non_null(text);
    assert_true(strcmp(text, "first") == 0 || strcmp(text, "second") == 0);
    free(text);
    assert_int_equal(count_files(pattern), 0);
}

static void test_output_file(void **state) {
    (void)state;
    bq_err err;
    bq_output_file *out = NULL;
    const char *path = write_tmp("out.json", "earlier", 7);
    char target[4200];
    snprintf(target, sizeof target, "%s", path);

    /* discarded: the earlier file as it was, nothing left beside it; the temporary exists only
     * from the first write on (an interrupted run leaves nothing) */
    char tmp_pattern[4300];
    snprintf(tmp_pattern, sizeof tmp_pattern, "%s.%ld.*.tmp", target, (long)getpid());
    assert_int_equal(bq_output_open(target, &out, &err), BQ_OK);
    assert_int_equal(count_files(tmp_pattern), 0);
    fputs("half", bq_output_stream(out));
    assert_int_equal(count_files(tmp_pattern), 1);
    bq_output_discard(out);
    char *text = slurp(target);
    assert_non_null(text);
    assert_string_equal(text, "earlier");
    free(text);
    assert_int_equal(count_files(tmp_pattern), 0);

    /* the target with its folder resolved: two spellings of one file compare equal */
    char other_name[4300];
    const char *base = strrchr(tmp_dir, '/');
    snprintf(other_name, sizeof other_name, "%s/../%s/out.json", tmp_dir, base ? base + 1 : tmp_dir);
    bq_output_file *other = NULL;
    assert_int_equal(bq_output_open(target, &out, &err), BQ_OK);
    assert_int_equal(bq_output_open(other_name, &other, &err), BQ_OK);
    assert_string_equal(bq_output_target(out), bq_output_target(other));
    bq_output_discard(other);
    bq_output_discard(out);

    /* committed: replaced whole, and until then untouched */
    assert_int_equal(bq_output_open(target, &out, &err), BQ_OK);
    fputs("{\"q\": \"a\"}", bq_output_stream(out));
    text = slurp(target);
    assert_string_equal(text, "earlier");
    free(text);
    assert_int_equal(bq_output_commit(out, &err), BQ_OK);
    text = slurp(target);
    assert_string_equal(text, "{\"q\": \"a\"}");
    free(text);
    assert_int_equal(count_files(tmp_pattern), 0);

    /* what cannot be written fails at open, naming the path and the reason */
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/no-folder/out.json", tmp_dir);
    assert_int_equal(bq_output_open(missing, &out, &err), BQ_ERR_IO);
    assert_null(out);
    assert_non_null(strstr(err.message, "no-folder/out.json"));
    assert_non_null(strstr(err.message, "No such file or directory"));
    assert_int_equal(bq_output_open(tmp_dir, &out, &err), BQ_ERR_IO);
    assert_non_null(strstr(err.message, "it is a folder"));

    /* a device is written directly; a full one fails at commit with the system's reason */
    if (access("/dev/full", W_OK) == 0) {
        assert_int_equal(bq_output_open("/dev/full", &out, &err), BQ_OK);
        fputs("x", bq_output_stream(out));
        assert_int_equal(bq_output_commit(out, &err), BQ_ERR_IO);
        assert_non_null(strstr(err.message, "/dev/full"));
        assert_non_null(strstr(err.message, "No space left on device"));
    }
    /* commit_text: text and a newline; a NULL text (printing out of memory) leaves the target */
    assert_int_equal(bq_output_open(target, &out, &err), BQ_OK);
    assert_int_equal(bq_output_commit_text(out, strdup("{}"), &err), BQ_OK);
    text = slurp(target);
    assert_string_equal(text, "{}\n");
    free(text);
    assert_int_equal(bq_output_open(target, &out, &err), BQ_OK);
    assert_int_equal(bq_output_commit_text(out, NULL, &err), BQ_ERR_NOMEM);
    text = slurp(target);
    assert_string_equal(text, "{}\n");
    free(text);
    assert_int_equal(bq_output_commit(NULL, &err), BQ_OK);
    bq_output_discard(NULL);
    remove(target);
}

/* ---- predictions ---------------------------------------------------------------------------- */

static void test_valid_predictions(void **state) {
    (void)state;
    const char *json = "{\"q1\": \"Denver Broncos\", \"q2\": \"\","
                       " \"q\\u00e9\": \"\\u00e9t\\u00e9\", \"q1\": \"again\"}";
    const char *path = write_tmp("pred.json", json, strlen(json));
    bq_predictions *p = NULL;
    bq_err err;
    assert_int_equal(bq_predictions_load(path, &p, &err), BQ_OK);
    /* kept in file order, repeats included (evaluation lets the last one win) */
    assert_int_equal(p->n, 4);
    assert_string_equal(p->ids[0], "q1");
    assert_string_equal(p->answers[0], "Denver Broncos");
    assert_string_equal(p->answers[1], "");
    assert_string_equal(p->ids[2], "q\xc3\xa9");
    assert_string_equal(p->answers[2], "\xc3\xa9t\xc3\xa9");
    assert_string_equal(p->answers[3], "again");
    bq_predictions_free(p);
    bq_predictions_free(NULL);
    remove(path);

    /* values that are not strings are kept as NULL answers: evaluation refuses one only where
     * the official script reads it (a dataset id's last value; test_eval, cli_eval.sh) */
    const char *mixed = "{\"q1\": \"a\", \"q2\": 3, \"q3\": null, \"q4\": [\"a\"], \"q5\": {\"t\": 1}}";
    path = write_tmp("mixed.json", mixed, strlen(mixed));
    assert_int_equal(bq_predictions_load(path, &p, &err), BQ_OK);
    assert_int_equal(p->n, 5);
    assert_string_equal(p->answers[0], "a");
    for (int i = 1; i < 5; i++) assert_null(p->answers[i]);
    assert_string_equal(p->ids[4], "q5");
    bq_predictions_free(p);
    remove(path);

    path = write_tmp("empty_object.json", "{ }\n", 4);
    assert_int_equal(bq_predictions_load(path, &p, &err), BQ_OK);
    assert_int_equal(p->n, 0);
    bq_predictions_free(p);
    remove(path);
}

static const bad_case bad_predictions[] = {
    {"[\"a\", \"b\"]", BQ_ERR_FORMAT, "must be a JSON object"},
    {"\"a\"", BQ_ERR_FORMAT, "must be a JSON object"},
    {"{\"q1\": \"a\"", BQ_ERR_FORMAT, "unexpected end of input"},
    {"{\"q1\": \"a\",}", BQ_ERR_FORMAT, "malformed JSON at line 1"},
    {"{\"q1\": \"a\"}\n]", BQ_ERR_FORMAT, "extra data after the JSON value at line 2, column 1"},
    {"{\"q1\": \"\xc3\x28\"}", BQ_ERR_UTF8, "invalid UTF-8 at byte 8"},
    {"", BQ_ERR_FORMAT, "unexpected end of input"},
};

static void test_bad_predictions(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_predictions / sizeof bad_predictions[0]; i++) {
        const bad_case *c = &bad_predictions[i];
        const char *path = write_tmp("bad_pred.json", c->json, strlen(c->json));
        bq_predictions *p = (bq_predictions *)&p; /* must be reset to NULL */
        bq_err err = {BQ_OK, ""};
        bq_status st = bq_predictions_load(path, &p, &err);
        if (st != c->status || !strstr(err.message, c->message_part) ||
            !strstr(err.message, "bad_pred.json") || p != NULL)
            fail_msg("case %zu: status %d message '%s'; want status %d and '%s'", i, (int)st,
                     err.message, (int)c->status, c->message_part);
        remove(path);
    }
    bq_predictions *p = NULL;
    bq_err err;
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/absent.json", tmp_dir);
    assert_int_equal(bq_predictions_load(missing, &p, &err), BQ_ERR_IO);
    assert_non_null(strstr(err.message, "absent.json"));
    assert_int_equal(bq_predictions_load(NULL, &p, &err), BQ_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_dataset),
        cmocka_unit_test(test_bad_datasets),
        cmocka_unit_test(test_keep_going),
        cmocka_unit_test(test_dataset_files),
        cmocka_unit_test(test_output_file),
        cmocka_unit_test(test_output_file_two_threads),
        cmocka_unit_test(test_valid_predictions),
        cmocka_unit_test(test_bad_predictions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
