/* test_safetensors.c - the safetensors reader against crafted files (every rejection names the file and
 * the tensor), and the f16/bf16 conversions against a reference computed with plain double arithmetic
 * (frexp/ldexp/rint), independent of the bit manipulation in the library. */
#include "test_support.h"

#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmpdir;
static int file_counter;

static int setup(void **state) {
    (void)state;
    tmpdir = bq_test_tmpdir("safetensors");
    return tmpdir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(tmpdir);
    return 0;
}

/* Write u64 LE `header_len` + `header` (header_len may lie) + `data`; returns a static path. */
static const char *write_raw(uint64_t header_len, const char *header, const void *data, size_t data_len) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/file%03d.safetensors", tmpdir, file_counter++);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)(header_len >> (8 * i));
    assert_int_equal(fwrite(len_bytes, 1, 8, f), 8);
    size_t hl = header ? strlen(header) : 0;
    if (hl) assert_int_equal(fwrite(header, 1, hl, f), hl);
    if (data_len) assert_int_equal(fwrite(data, 1, data_len, f), data_len);
    fclose(f);
    return path;
}

static const char *write_file(const char *header, size_t data_len) {
    static unsigned char zeros[4096];
    assert_true(data_len <= sizeof zeros);
    return write_raw(strlen(header), header, zeros, data_len);
}

/* Open must fail with `want`; the message must name the file and contain each of `needles`. */
static void expect_reject(const char *path, bq_status want, const char *n1, const char *n2) {
    bq_safetensors *st = (bq_safetensors *)0x1;
    bq_err err;
    bq_err_clear(&err);
    bq_status s = bq_safetensors_open(path, &st, &err);
    if (s != want || !strstr(err.message, path) || (n1 && !strstr(err.message, n1)) ||
        (n2 && !strstr(err.message, n2)))
        print_error("status %d (want %d), message: %s\n", s, want, err.message);
    assert_int_equal(s, want);
    assert_null(st);
    assert_int_equal(err.status, want);
    assert_non_null(strstr(err.message, path));
    if (n1) assert_non_null(strstr(err.message, n1));
    if (n2) assert_non_null(strstr(err.message, n2));
}

/* ---- rejections ------------------------------------------------------------------------------ */

static void test_reject_file_level(void **state) {
    (void)state;
    /* shorter than the 8-byte length prefix */
    static char path[4096];
    snprintf(path, sizeof path, "%s/short.safetensors", tmpdir);
    FILE *f = fopen(path, "wb");
    fwrite("abcde", 1, 5, f);
    fclose(f);
    expect_reject(path, BQ_ERR_FORMAT, "shorter", NULL);

    expect_reject(write_raw(1000, "{}", NULL, 0), BQ_ERR_FORMAT, "1000", "beyond");
    expect_reject(write_raw(200000000, "{}", NULL, 0), BQ_ERR_FORMAT, "100 MB", NULL);
    expect_reject(write_raw(UINT64_MAX, "{}", NULL, 0), BQ_ERR_FORMAT, "100 MB", NULL);
    expect_reject(write_file("{not json", 0), BQ_ERR_FORMAT, "JSON", NULL);
    expect_reject(write_file("{\"a\":1} trailing", 0), BQ_ERR_FORMAT, "JSON", NULL);
    expect_reject(write_file("[1, 2]", 0), BQ_ERR_FORMAT, "object", NULL);
    expect_reject(write_file("\"text\"", 0), BQ_ERR_FORMAT, "object", NULL);
    expect_reject(write_file("{\"caf\xe9\":5}", 0), BQ_ERR_FORMAT, "UTF-8", NULL);
    /* a NUL inside the header must not silently end it */
    const char with_nul[] = "{}\0{\"a\":1}";
    snprintf(path, sizeof path, "%s/nul.safetensors", tmpdir);
    f = fopen(path, "wb");
    unsigned char len_bytes[8] = {sizeof with_nul - 1, 0, 0, 0, 0, 0, 0, 0};
    fwrite(len_bytes, 1, 8, f);
    fwrite(with_nul, 1, sizeof with_nul - 1, f);
    fclose(f);
    expect_reject(path, BQ_ERR_FORMAT, "NUL", NULL);

    bq_safetensors *st = NULL;
    bq_err err;
    snprintf(path, sizeof path, "%s/does-not-exist.safetensors", tmpdir);
    assert_int_equal(bq_safetensors_open(path, &st, &err), BQ_ERR_IO);
    assert_non_null(strstr(err.message, path));
    assert_int_equal(bq_safetensors_open(tmpdir, &st, &err), BQ_ERR_IO); /* a directory */
}

static void test_reject_entries(void **state) {
    (void)state;
    expect_reject(write_file("{\"w\":5}", 0), BQ_ERR_FORMAT, "'w'", "not a JSON object");
    expect_reject(write_file("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), BQ_ERR_FORMAT, "'w'", "dtype");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                  BQ_ERR_FORMAT, "'w'", "F17");
    expect_reject(write_file("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4), BQ_ERR_FORMAT,
                  "'w'", "dtype");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), BQ_ERR_FORMAT, "'w'",
                  "shape");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,12]}}", 12),
                  BQ_ERR_FORMAT, "'w'", "shape");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4),
                  BQ_ERR_FORMAT, "'w'", "shape[0]");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,12]}}", 12),
                  BQ_ERR_FORMAT, "'w'", "shape[1]");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8),
                  BQ_ERR_FORMAT, "'w'", "shape[0]");
    expect_reject(write_file("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,16],"
                             "\"data_offsets\":[0,0]}}", 0),
                  BQ_ERR_FORMAT, "'w'", "overflow");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F64\",\"shape\":[1152921504606846976,1],"
                             "\"data_offsets\":[0,0]}}", 0),
                  BQ_ERR_FORMAT, "'w'", NULL); /* 2^60 elements of 8 bytes: byte count overflows */
    expect_reject(write_file("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1),
                  BQ_ERR_FORMAT, "'w'", "dimensions");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), BQ_ERR_FORMAT, "'w'", "data_offsets");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4), BQ_ERR_FORMAT,
                  "'w'", "data_offsets");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8),
                  BQ_ERR_FORMAT, "'w'", "data_offsets");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4),
                  BQ_ERR_FORMAT, "'w'", "data_offsets");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", 4),
                  BQ_ERR_FORMAT, "'w'", "data_offsets");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8), BQ_ERR_FORMAT,
                  "'w'", "greater than end");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
                  BQ_ERR_FORMAT, "'w'", "beyond the data section");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16),
                  BQ_ERR_FORMAT, "'w'", "need 12");
    expect_reject(write_file("{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2), BQ_ERR_FORMAT,
                  "'w'", "whole bytes");
}

static void test_reject_layout(void **state) {
    (void)state;
    /* overlap: b starts inside a */
    expect_reject(write_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24),
                  BQ_ERR_FORMAT, "'b'", "overlaps");
    /* two tensors on the same bytes */
    expect_reject(write_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
                  BQ_ERR_FORMAT, "overlaps", NULL);
    /* gap before b */
    expect_reject(write_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 24),
                  BQ_ERR_FORMAT, "'b'", "gap");
    /* gap at the very start */
    expect_reject(write_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16),
                  BQ_ERR_FORMAT, "'a'", "gap");
    /* bytes after the last tensor */
    expect_reject(write_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16),
                  BQ_ERR_FORMAT, "'a'", "trailing");
    expect_reject(write_file("{}", 4), BQ_ERR_FORMAT, "trailing", NULL);
    /* duplicate names: cJSON keeps both */
    expect_reject(write_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16),
                  BQ_ERR_FORMAT, "'a'", "more than once");
    /* metadata */
    expect_reject(write_file("{\"__metadata__\":{\"format\":\"pt\",\"n\":1},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
                  BQ_ERR_FORMAT, "__metadata__", "\"n\"");
    expect_reject(write_file("{\"__metadata__\":[\"pt\"]}", 0), BQ_ERR_FORMAT, "__metadata__", NULL);
    expect_reject(write_file("{\"__metadata__\":{},\"__metadata__\":{}}", 0), BQ_ERR_FORMAT, "__metadata__", NULL);
}

/* ---- valid files ------------------------------------------------------------------------------ */

static void test_valid_file(void **state) {
    (void)state;
    /* data order differs from header order; includes a scalar and an empty tensor; header padded */
    const char *header = "{\"__metadata__\":{\"format\":\"pt\"},"
                         "\"half\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[24,28]},"
                         "\"weights\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                         "\"brain\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[28,32]},"
                         "\"scalar\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]},"
                         "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[40,40]},"
                         "\"fp8\":{\"dtype\":\"F8_E4M3\",\"shape\":[3],\"data_offsets\":[40,43]},"
                         "\"fnuz\":{\"dtype\":\"F8_E4M3FNUZ\",\"shape\":[2],\"data_offsets\":[43,45]},"
                         "\"fnuz2\":{\"dtype\":\"F8_E5M2FNUZ\",\"shape\":[1],\"data_offsets\":[45,46]}}";
    char padded[1024];
    size_t hl = strlen(header);
    memcpy(padded, header, hl);
    while (hl % 8) padded[hl++] = ' ';
    padded[hl] = '\0';
    unsigned char data[46] = {0};
    const float w[6] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f};
    memcpy(data, w, sizeof w); /* little-endian host assumed (x86-64, aarch64) */
    const uint16_t h[2] = {0x3c00 /* 1.0 */, 0xc000 /* -2.0 */};
    memcpy(data + 24, h, 4);
    const uint16_t b[2] = {0x3fc0 /* 1.5 */, 0xc2f7 /* -123.5 */};
    memcpy(data + 28, b, 4);
    int64_t scalar = -42;
    memcpy(data + 32, &scalar, 8);
    const char *path = write_raw(hl, padded, data, sizeof data);

    bq_safetensors *st = NULL;
    bq_err err;
    bq_status s = bq_safetensors_open(path, &st, &err);
    if (s != BQ_OK) print_error("%s\n", err.message);
    assert_int_equal(s, BQ_OK);
    assert_int_equal(bq_safetensors_count(st), 8);
    assert_string_equal(bq_safetensors_path(st), path);
    assert_null(bq_safetensors_find(st, "__metadata__"));
    assert_null(bq_safetensors_find(st, "missing"));
    assert_null(bq_safetensors_at(st, 8));
    assert_null(bq_safetensors_at(st, -1));

    const bq_tensor *t = bq_safetensors_find(st, "weights");
    assert_non_null(t);
    assert_int_equal(t->dtype, BQ_DTYPE_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->n_elements, 6);
    assert_int_equal(t->n_bytes, 24);
    assert_memory_equal(t->data, w, sizeof w);

    t = bq_safetensors_find(st, "half");
    assert_int_equal(t->dtype, BQ_DTYPE_F16);
    const uint16_t *hv = t->data;
    assert_true(bq_f16_to_f32(hv[0]) == 1.0f && bq_f16_to_f32(hv[1]) == -2.0f);
    t = bq_safetensors_find(st, "brain");
    assert_int_equal(t->dtype, BQ_DTYPE_BF16);
    const uint16_t *bv = t->data;
    assert_true(bq_bf16_to_f32(bv[0]) == 1.5f && bq_bf16_to_f32(bv[1]) == -123.5f);
    t = bq_safetensors_find(st, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->n_elements, 1);
    int64_t got;
    memcpy(&got, t->data, 8);
    assert_int_equal(got, -42);
    t = bq_safetensors_find(st, "empty");
    assert_int_equal(t->n_elements, 0);
    assert_int_equal(t->n_bytes, 0);
    t = bq_safetensors_find(st, "fp8");
    assert_int_equal(t->dtype, BQ_DTYPE_OTHER);
    assert_int_equal(t->n_bytes, 3);
    t = bq_safetensors_find(st, "fnuz"); /* safetensors 0.8's float8s: read past, not refused */
    assert_int_equal(t->dtype, BQ_DTYPE_OTHER);
    assert_int_equal(t->n_bytes, 2);
    assert_int_equal(bq_safetensors_find(st, "fnuz2")->n_bytes, 1);
    bq_safetensors_close(st);
    bq_safetensors_close(NULL);

    /* "__metadata__": null is no metadata, as the safetensors library reads it */
    s = bq_safetensors_open(write_file("{\"__metadata__\":null}", 0), &st, &err);
    assert_int_equal(s, BQ_OK);
    assert_int_equal(bq_safetensors_count(st), 0);
    bq_safetensors_close(st);

    /* an empty file body is valid: no tensors */
    s = bq_safetensors_open(write_file("{}", 0), &st, &err);
    assert_int_equal(s, BQ_OK);
    assert_int_equal(bq_safetensors_count(st), 0);
    bq_safetensors_close(st);
}

static void test_dtype_names(void **state) {
    (void)state;
    assert_string_equal(bq_dtype_name(BQ_DTYPE_F32), "F32");
    assert_string_equal(bq_dtype_name(BQ_DTYPE_BF16), "BF16");
    assert_int_equal(bq_dtype_size(BQ_DTYPE_F32), 4);
    assert_int_equal(bq_dtype_size(BQ_DTYPE_F16), 2);
    assert_int_equal(bq_dtype_size(BQ_DTYPE_I64), 8);
    assert_int_equal(bq_dtype_size(BQ_DTYPE_BOOL), 1);
    assert_int_equal(bq_dtype_size(BQ_DTYPE_OTHER), 0);
}

/* ---- conversions ------------------------------------------------------------------------------ */

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Reference f16 -> value by the IEEE 754 definition. */
static double ref_f16_value(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v = exp == 0 ? ldexp(mant, -24) : exp == 31 ? (mant ? NAN : INFINITY) : ldexp(1024 + mant, exp - 25);
    return sign ? -v : v;
}

static double ref_bf16_value(uint16_t b) {
    int sign = b >> 15, exp = (b >> 7) & 255, mant = b & 127;
    double v = exp == 0 ? ldexp(mant, -133) : exp == 255 ? (mant ? NAN : INFINITY) : ldexp(128 + mant, exp - 134);
    return sign ? -v : v;
}

/* Reference rounding of a finite/infinite (non-NaN) float to a format with `mant_bits` stored mantissa
 * bits and minimum normal exponent `emin`, round-half-even (rint in the default rounding mode),
 * giving the rounded value as a double (+-inf on overflow past `max_finite`). */
static double ref_round(float f, int mant_bits, int emin, double max_finite) {
    double a = fabs((double)f);
    if (isinf(a)) return f;
    int e;
    frexp(a, &e); /* a = m * 2^e, m in [0.5, 1): unbiased exponent e-1 */
    int exp = e - 1 < emin ? emin : e - 1;
    double ulp = ldexp(1.0, exp - mant_bits);
    double r = rint(a / ulp) * ulp; /* a / ulp is exact in double */
    if (r > max_finite) r = INFINITY;
    return f < 0 || (f == 0 && signbit(f)) ? -r : r;
}

static void test_f16_to_f32_all(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bq_f16_to_f32((uint16_t)h);
        double ref = ref_f16_value((uint16_t)h);
        if (isnan(ref)) {
            assert_true(isnan(f));
            assert_int_equal(signbit(f) != 0, (h >> 15) != 0);
            continue;
        }
        if ((double)f != ref || (signbit(f) != 0) != ((h >> 15) != 0)) print_error("f16 %04x\n", h);
        assert_true((double)f == ref);
        assert_int_equal(signbit(f) != 0, (h >> 15) != 0);
        assert_int_equal(bq_f32_to_f16(f), h); /* exact round trip */
    }
}

static void test_bf16_to_f32_all(void **state) {
    (void)state;
    for (uint32_t b = 0; b < 65536; b++) {
        float f = bq_bf16_to_f32((uint16_t)b);
        double ref = ref_bf16_value((uint16_t)b);
        if (isnan(ref)) {
            assert_true(isnan(f));
            assert_true(isnan(bq_bf16_to_f32(bq_f32_to_bf16(f))));
            continue;
        }
        assert_true((double)f == ref);
        assert_int_equal(signbit(f) != 0, (b >> 15) != 0);
        assert_int_equal(bq_f32_to_bf16(f), b);
    }
}

static void check_f32_to_f16(float f) {
    uint16_t h = bq_f32_to_f16(f);
    if (isnan(f)) {
        assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
        assert_int_equal(h >> 15, bits_of(f) >> 31);
        return;
    }
    double want = ref_round(f, 10, -14, 65504.0);
    double got = ref_f16_value(h);
    if (got != want || signbit(got) != signbit(want))
        print_error("f32 %a (%08x) -> f16 %04x = %a, want %a\n", (double)f, bits_of(f), h, got, want);
    assert_true(got == want);
    assert_int_equal(signbit(got) != 0, signbit(want) != 0);
#ifdef __FLT16_MAX__
    /* the compiler's own conversion (libgcc / F16C) agrees too */
    _Float16 c = (_Float16)f;
    uint16_t cb;
    memcpy(&cb, &c, 2);
    assert_int_equal(h, cb);
#endif
}

static void check_f32_to_bf16(float f) {
    uint16_t b = bq_f32_to_bf16(f);
    if (isnan(f)) {
        assert_true((b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0);
        assert_int_equal(b >> 15, bits_of(f) >> 31);
        return;
    }
    double want = ref_round(f, 7, -126, ldexp(255.0, 120) /* (2 - 2^-7) * 2^127 */);
    double got = ref_bf16_value(b);
    if (got != want) print_error("f32 %a -> bf16 %04x = %a, want %a\n", (double)f, b, got, want);
    assert_true(got == want);
    assert_int_equal(signbit(got) != 0, signbit(want) != 0);
}

static void test_f32_to_half_rounding(void **state) {
    (void)state;
    /* every f16 value, the midpoints to its neighbour (ties to even) and one float either side */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        for (int sign = 0; sign < 2; sign++) {
            float lo = (float)ref_f16_value((uint16_t)h);
            float hi = h + 1 == 0x7c00 ? 65536.0f : (float)ref_f16_value((uint16_t)(h + 1));
            float mid = (float)(((double)lo + (double)hi) / 2); /* exact in f32 */
            float cases[5] = {lo, mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY), nextafterf(lo, INFINITY)};
            for (int i = 0; i < 5; i++) check_f32_to_f16(sign ? -cases[i] : cases[i]);
        }
    }
    /* every bf16 value the same way */
    for (uint32_t b = 0; b < 0x7f80; b++) {
        float lo = bq_bf16_to_f32((uint16_t)b);
        float hi = b + 1 == 0x7f80 ? INFINITY : bq_bf16_to_f32((uint16_t)(b + 1));
        float mid = b + 1 == 0x7f80 ? float_of(0x7f7f8000) : (float)(((double)lo + (double)hi) / 2);
        float cases[4] = {mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY), nextafterf(lo, INFINITY)};
        for (int i = 0; i < 4; i++) {
            check_f32_to_bf16(cases[i]);
            check_f32_to_bf16(-cases[i]);
        }
    }
    /* specials and edges */
    const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 65504.0f, 65519.99f, 65520.0f,
                              1e10f, 5.9604645e-8f /* 2^-24 */, 2.9802322e-8f /* 2^-25: tie to 0 */,
                              2.9802326e-8f, 1e-40f /* f32 subnormal */, float_of(0x7f7fffff), float_of(0x7fa00000)};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        check_f32_to_f16(specials[i]);
        check_f32_to_bf16(specials[i]);
    }
    assert_int_equal(bq_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(bq_f32_to_f16(2.9802322e-8f), 0x0000);
    assert_int_equal(bq_f32_to_f16(-2.9802326e-8f), 0x8001);
    assert_int_equal(bq_f32_to_bf16(float_of(0x7f7fffff)), 0x7f80);
    /* 4M random bit patterns */
    uint64_t s = 12345;
    for (int i = 0; i < 1 << 22; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float f = float_of((uint32_t)(s >> 32));
        check_f32_to_f16(f);
        check_f32_to_bf16(f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_file_level),
        cmocka_unit_test(test_reject_entries),
        cmocka_unit_test(test_reject_layout),
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_dtype_names),
        cmocka_unit_test(test_f16_to_f32_all),
        cmocka_unit_test(test_bf16_to_f32_all),
        cmocka_unit_test(test_f32_to_half_rounding),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
