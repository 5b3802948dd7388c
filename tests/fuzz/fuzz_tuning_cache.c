/* fuzz_tuning_cache.c - the CUDA engine's tuning cache file (bq_tuning_cache_read / _write): any
 * bytes read as a cache give records of a known kind in file order inside the key's section, and
 * what was read, written back, reads back the same (the other sections as they were, this key's
 * decisions after them); never a crash. */
#include "fuzz_common.h"
#include "tuning_cache.h"

static const char key[] = "NVIDIA H200 | sm_90 | cublasLt 130000 | fp16 | attention auto of 7";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    bq_tuning_cache c;
    memset(&c, 0, sizeof c);
    bq_err err = {0};
    bq_status s = bq_tuning_cache_read(path, key, &c, &err);
    if (s != BQ_OK) {
        FUZZ_ASSERT(s == BQ_ERR_NOMEM && err.message[0], "status %s: %s", bq_status_string(s), err.message);
        return 0;
    }
    FUZZ_ASSERT(!c.missing && !c.open_errno, "missing %d, open errno %d", c.missing, c.open_errno);
    if (c.foreign)
        FUZZ_ASSERT(!c.found && c.n_records == 0 && !c.other, "a foreign file read: %zu records", c.n_records);
    if (!c.found) FUZZ_ASSERT(c.n_records == 0 && !c.bad_line, "records without the key's section");
    FUZZ_ASSERT(c.other == NULL || strlen(c.other) == c.other_len, "other's length %zu", c.other_len);
    for (size_t i = 0; i < c.n_records; i++) {
        const bq_tuning_record *r = &c.records[i];
        FUZZ_ASSERT(r->kind == BQ_TUNING_GEMM || r->kind == BQ_TUNING_SHAPE, "kind %d", (int)r->kind);
        FUZZ_ASSERT(r->line >= 3 && (i == 0 || r->line > c.records[i - 1].line), "line %d", r->line);
        FUZZ_ASSERT(!c.bad_line || r->line < c.bad_line, "record at line %d after bad line %d", r->line,
                    c.bad_line);
    }
    if (c.foreign) {
        bq_tuning_cache_clear(&c);
        return 0;
    }

    /* written back as the engine would, it reads back the same */
    char *out_path = bq_join_path(fuzz_temp_dir(), "written");
    FUZZ_ASSERT(out_path, "no memory");
    s = bq_tuning_cache_write(out_path, c.other, key, c.records, c.n_records, &err);
    FUZZ_ASSERT(s == BQ_OK, "write: %s", err.message);
    bq_tuning_cache again;
    memset(&again, 0, sizeof again);
    s = bq_tuning_cache_read(out_path, key, &again, &err);
    FUZZ_ASSERT(s == BQ_OK, "read again: %s", err.message);
    FUZZ_ASSERT(again.found && !again.foreign && !again.bad_line, "found %d foreign %d bad line %d",
                again.found, again.foreign, again.bad_line);
    FUZZ_ASSERT(again.n_records == c.n_records, "%zu records, then %zu", c.n_records, again.n_records);
    for (size_t i = 0; i < c.n_records; i++)
        FUZZ_ASSERT(again.records[i].kind == c.records[i].kind &&
                        memcmp(again.records[i].field, c.records[i].field, sizeof c.records[i].field) == 0,
                    "record %zu differs", i);
    FUZZ_ASSERT((!c.other && !again.other) || (c.other && again.other && strcmp(c.other, again.other) == 0),
                "the other sections changed");
    remove(out_path);
    free(out_path);
    bq_tuning_cache_clear(&again);
    bq_tuning_cache_clear(&c);
    return 0;
}
