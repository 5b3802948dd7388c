/* fuzz_common.h - what the fuzz targets share. Each tests/fuzz/fuzz_*.c defines libFuzzer's
 * LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize); it is linked either with libFuzzer
 * (-DBQ_FUZZ=ON, clang: tools/fuzz.sh) or with replay.c, which runs the committed corpus
 * (tests/fuzz/corpus/<target>/) under ctest on every build.
 * A broken invariant aborts with a message: that is the fuzzer's signal, and the replay's failure. */
#ifndef BQ_FUZZ_COMMON_H
#define BQ_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vocab.h"

#define FUZZ_ASSERT(cond, ...)                                                              \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fputc('\n', stderr);                                                            \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* The shipped vocabulary (vocab/vocab.txt), loaded once. */
const bq_vocab *fuzz_vocab(void);

/* `data` as a file: the path of fuzz_temp_dir()'s "input", now holding exactly those bytes
 * (static storage; the next call rewrites the file). */
const char *fuzz_file(const uint8_t *data, size_t size);

/* A folder of this process's own (bq-fuzz-XXXXXX in /dev/shm, else /tmp), made at the first
 * call; it and the files in it are removed at exit. */
const char *fuzz_temp_dir(void);

/* Write data[0..size) as the file `name` of fuzz_temp_dir(), or remove that file (aborts when it
 * cannot be written). */
void fuzz_write_file(const char *name, const uint8_t *data, size_t size);
void fuzz_remove_file(const char *name);

/* A heap copy of data[0..size) with a NUL after it. Never NULL (aborts on no memory). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Byte `k` of data, 0 past the end: for option bytes at the head of an input. */
static inline uint8_t fuzz_byte(const uint8_t *data, size_t size, size_t k) {
    return k < size ? data[k] : 0;
}

/* Whether byte i of s (length len) starts a UTF-8 character (or is len itself). */
static inline int fuzz_utf8_boundary(const char *s, size_t len, size_t i) {
    return i == len || (i < len && ((unsigned char)s[i] & 0xC0) != 0x80);
}

/* Code points in s[0..len): UTF-8 lead bytes. */
static inline size_t fuzz_utf8_count(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

#endif
