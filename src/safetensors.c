/* safetensors.c - a validating, memory-mapping reader of the safetensors format.
 * Nothing in the file is trusted: the header is bounds-checked, parsed from a NUL-terminated copy,
 * and every tensor entry is checked (dtype, shape, offsets, byte count) before the tensors are
 * checked to tile the data section exactly. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Same limit as the reference implementation (safetensors' MAX_HEADER_SIZE). */
#define ST_MAX_HEADER_BYTES 100000000ull
/* Largest integer a JSON number (parsed as a double by cJSON) represents exactly. */
#define ST_MAX_EXACT_INT 9007199254740992.0

struct bq_safetensors {
    char *path;
    void *map;          /* whole file, read-only */
    size_t map_len;
    bq_tensor *tensors; /* [count], in header order */
    int count;
};

typedef struct {
    const char *name;
    bq_dtype dtype;
    unsigned bits; /* per element; sub-byte types exist (F4, F6_*) */
} dtype_info;

/* Every dtype the safetensors format defines (0.8: the FNUZ float8s too). */
static const dtype_info dtype_table[] = {
    {"F32", BQ_DTYPE_F32, 32},      {"F16", BQ_DTYPE_F16, 16},          {"BF16", BQ_DTYPE_BF16, 16},
    {"F64", BQ_DTYPE_F64, 64},      {"I64", BQ_DTYPE_I64, 64},          {"I32", BQ_DTYPE_I32, 32},
    {"I16", BQ_DTYPE_I16, 16},      {"I8", BQ_DTYPE_I8, 8},             {"U8", BQ_DTYPE_U8, 8},
    {"BOOL", BQ_DTYPE_BOOL, 8},     {"U16", BQ_DTYPE_OTHER, 16},        {"U32", BQ_DTYPE_OTHER, 32},
    {"U64", BQ_DTYPE_OTHER, 64},    {"F8_E4M3", BQ_DTYPE_OTHER, 8},     {"F8_E5M2", BQ_DTYPE_OTHER, 8},
    {"F8_E8M0", BQ_DTYPE_OTHER, 8}, {"C64", BQ_DTYPE_OTHER, 64},        {"F6_E2M3", BQ_DTYPE_OTHER, 6},
    {"F6_E3M2", BQ_DTYPE_OTHER, 6}, {"F4", BQ_DTYPE_OTHER, 4},    {"F8_E4M3FNUZ", BQ_DTYPE_OTHER, 8},
    {"F8_E5M2FNUZ", BQ_DTYPE_OTHER, 8},
};

const char *bq_dtype_name(bq_dtype d) {
    switch (d) {
    case BQ_DTYPE_F32: return "F32";
    case BQ_DTYPE_F16: return "F16";
    case BQ_DTYPE_BF16: return "BF16";
    case BQ_DTYPE_F64: return "F64";
    case BQ_DTYPE_I64: return "I64";
    case BQ_DTYPE_I32: return "I32";
    case BQ_DTYPE_I16: return "I16";
    case BQ_DTYPE_I8: return "I8";
    case BQ_DTYPE_U8: return "U8";
    case BQ_DTYPE_BOOL: return "BOOL";
    case BQ_DTYPE_OTHER: break;
    }
    return "other";
}

size_t bq_dtype_size(bq_dtype d) {
    switch (d) {
    case BQ_DTYPE_F64: case BQ_DTYPE_I64: return 8;
    case BQ_DTYPE_F32: case BQ_DTYPE_I32: return 4;
    case BQ_DTYPE_F16: case BQ_DTYPE_BF16: case BQ_DTYPE_I16: return 2;
    case BQ_DTYPE_I8: case BQ_DTYPE_U8: case BQ_DTYPE_BOOL: return 1;
    case BQ_DTYPE_OTHER: break;
    }
    return 0;
}

static const dtype_info *find_dtype(const char *name) {
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++)
        if (strcmp(dtype_table[i].name, name) == 0) return &dtype_table[i];
    return NULL;
}

/* ---- scalar conversions ------------------------------------------------------------------- */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float bq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13)); /* Inf, NaN (payload kept) */
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        /* subnormal: normalise into an f32 normal */
        exp = 127 - 15 + 1;
        while (!(mant & 0x400u)) {
            mant <<= 1;
            exp--;
        }
        mant &= 0x3ffu;
        return bits_f32(sign | (exp << 23) | (mant << 13));
    }
    return bits_f32(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

float bq_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

uint16_t bq_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xffu;
    uint32_t mant = u & 0x7fffffu;
    if (exp == 0xff) {
        if (mant == 0) return sign | 0x7c00u;
        /* NaN: keep the top payload bits, force quiet so it cannot turn into Inf */
        return (uint16_t)(sign | 0x7e00u | (mant >> 13));
    }
    int32_t e = (int32_t)exp - 127 + 15; /* biased f16 exponent */
    if (e >= 0x1f) return sign | 0x7c00u; /* overflow to Inf */
    if (e <= 0) {
        /* f16 subnormal (or zero): value = mant_with_implicit * 2^(e-1-10-13) in f16 ulps */
        if (e < -10) return sign; /* below half the smallest subnormal: rounds to zero */
        uint32_t m = mant | 0x800000u;
        unsigned shift = (unsigned)(14 - e); /* 14..24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q); /* q == 0x400 carries into the smallest normal correctly */
    }
    uint32_t q = ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++; /* carry may reach Inf: correct */
    return (uint16_t)(sign | q);
}

uint16_t bq_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu))
        return (uint16_t)((u >> 16) | 0x40u); /* NaN stays a (quiet) NaN */
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)((u + rounding) >> 16);
}

/* ---- validation helpers -------------------------------------------------------------------- */

/* A JSON number that is an integer in [0, 2^53]; false otherwise. */
static bool json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!(v >= 0) || v > ST_MAX_EXACT_INT || v != floor(v)) return false;
    *out = (uint64_t)v;
    return true;
}

typedef struct {
    uint64_t begin, end;
    int index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(((const bq_tensor *)a)->name, ((const bq_tensor *)b)->name);
}

/* Validate one header entry into `t` (name already set). */
static bq_status parse_entry(const char *path, const cJSON *entry, uint64_t data_size, bq_tensor *t,
                             uint64_t *begin_out, uint64_t *end_out, bq_err *err) {
    const char *name = t->name;
    if (!cJSON_IsObject(entry))
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s': header entry is not a JSON object", path,
                       name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype))
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s': missing or non-string \"dtype\"", path, name);
    const dtype_info *info = find_dtype(dtype->valuestring);
    if (!info)
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s': unknown dtype \"%.40s\"", path, name,
                       dtype->valuestring);
    t->dtype = info->dtype;
    t->dtype_name = info->name;

    if (!cJSON_IsArray(shape))
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s': missing or non-array \"shape\"", path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > BQ_MAX_DIMS)
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s': shape has %d dimensions (at most %d supported)",
                       path, name, ndim, BQ_MAX_DIMS);
    t->ndim = ndim;
    uint64_t elements = 1;
    int d = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t v;
        if (!json_uint(dim, &v))
            return bq_fail(err, BQ_ERR_FORMAT,
                           "'%s': tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
        if (v != 0 && elements > (uint64_t)INT64_MAX / v)
            return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s': shape element count overflows", path,
                           name);
        elements *= v;
        t->shape[d++] = (int64_t)v;
    }
    t->n_elements = (int64_t)elements;

    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return bq_fail(err, BQ_ERR_FORMAT,
                       "'%s': tensor '%s': \"data_offsets\" is not an array of two integers", path, name);
    uint64_t begin, end;
    if (!json_uint(cJSON_GetArrayItem(offsets, 0), &begin) || !json_uint(cJSON_GetArrayItem(offsets, 1), &end))
        return bq_fail(err, BQ_ERR_FORMAT,
                       "'%s': tensor '%s': \"data_offsets\" are not non-negative integers", path, name);
    if (begin > end)
        return bq_fail(err, BQ_ERR_FORMAT,
                       "'%s': tensor '%s': data_offsets begin %llu is greater than end %llu", path, name,
                       (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return bq_fail(err, BQ_ERR_FORMAT,
                       "'%s': tensor '%s': data_offsets end %llu is beyond the data section (%llu bytes)",
                       path, name, (unsigned long long)end, (unsigned long long)data_size);
    /* elements <= INT64_MAX and bits <= 64: compute bits in two steps to avoid overflow */
    if (elements > UINT64_MAX / info->bits)
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s': byte size overflows", path, name);
    uint64_t bits = elements * info->bits;
    if (bits % 8 != 0)
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s': %llu elements of %s do not fill whole bytes",
                       path, name, (unsigned long long)elements, info->name);
    if (end - begin != bits / 8)
        return bq_fail(err, BQ_ERR_FORMAT,
                       "'%s': tensor '%s': data_offsets span %llu bytes but shape and dtype %s need %llu",
                       path, name, (unsigned long long)(end - begin), info->name,
                       (unsigned long long)(bits / 8));
    t->n_bytes = (size_t)(end - begin);
    *begin_out = begin;
    *end_out = end;
    return BQ_OK;
}

static bq_status parse_header(bq_safetensors *st, const char *header, size_t header_len,
                              const unsigned char *data, uint64_t data_size, bq_err *err) {
    const char *path = st->path;
    const char *nul = memchr(header, '\0', header_len);
    if (nul)
        return bq_fail(err, BQ_ERR_FORMAT,
                       "'%s': header contains a NUL byte at byte %zu of its %zu (is the 8-byte header "
                       "length right?)", path, (size_t)(nul - header), header_len);
    if (!bq_utf8_valid(header, header_len))
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': header is not valid UTF-8", path);
    char *text = bq_strndup(header, header_len);
    if (!text) return bq_fail(err, BQ_ERR_NOMEM, "'%s': out of memory copying the header", path);
    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &parse_end, 1);
    if (!root) {
        size_t at = parse_end ? (size_t)(parse_end - text) : 0;
        if (!parse_end) {
            const char *ep = cJSON_GetErrorPtr();
            if (ep >= text && ep <= text + header_len) at = (size_t)(ep - text);
        }
        free(text);
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': header is not valid JSON (error near byte %zu)", path, at);
    }
    bq_status status = BQ_OK;
    span *spans = NULL;
    const char *fault = NULL;
    const size_t fault_at = bq_json_string_fault(header, header_len, &fault);
    if (fault_at != (size_t)-1) { /* a tensor name cut at a \u0000 would load as another name */
        status = bq_fail(err, BQ_ERR_FORMAT, "'%s': header: %s, at byte %zu", path, fault, fault_at);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        status = bq_fail(err, BQ_ERR_FORMAT, "'%s': header is not a JSON object", path);
        goto done;
    }
    int n_items = cJSON_GetArraySize(root);
    st->tensors = calloc(n_items > 0 ? (size_t)n_items : 1, sizeof *st->tensors);
    spans = calloc(n_items > 0 ? (size_t)n_items : 1, sizeof *spans);
    if (!st->tensors || !spans) {
        status = bq_fail(err, BQ_ERR_NOMEM, "'%s': out of memory for %d header entries", path, n_items);
        goto done;
    }
    int seen_metadata = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        const char *key = item->string;
        if (strcmp(key, "__metadata__") == 0) {
            if (seen_metadata++) {
                status = bq_fail(err, BQ_ERR_FORMAT, "'%s': \"__metadata__\" appears twice", path);
                goto done;
            }
            if (cJSON_IsNull(item)) continue; /* no metadata, as the safetensors library reads it */
            if (!cJSON_IsObject(item)) {
                status = bq_fail(err, BQ_ERR_FORMAT, "'%s': \"__metadata__\" is not a JSON object", path);
                goto done;
            }
            const cJSON *kv;
            cJSON_ArrayForEach(kv, item) {
                if (!cJSON_IsString(kv)) {
                    status = bq_fail(err, BQ_ERR_FORMAT,
                                     "'%s': \"__metadata__\" value of \"%.100s\" is not a string", path,
                                     kv->string);
                    goto done;
                }
            }
            continue;
        }
        bq_tensor *t = &st->tensors[st->count];
        t->name = strdup(key);
        if (!t->name) {
            status = bq_fail(err, BQ_ERR_NOMEM, "'%s': out of memory", path);
            goto done;
        }
        span *s = &spans[st->count];
        st->count++;
        status = parse_entry(path, item, data_size, t, &s->begin, &s->end, err);
        if (status != BQ_OK) goto done;
        s->index = st->count - 1;
    }

    /* cJSON keeps duplicate keys; the format forbids them. */
    if (st->count > 1) {
        bq_tensor *sorted = malloc((size_t)st->count * sizeof *sorted);
        if (!sorted) {
            status = bq_fail(err, BQ_ERR_NOMEM, "'%s': out of memory", path);
            goto done;
        }
        memcpy(sorted, st->tensors, (size_t)st->count * sizeof *sorted);
        qsort(sorted, (size_t)st->count, sizeof *sorted, name_cmp);
        for (int i = 1; i < st->count; i++) {
            if (strcmp(sorted[i - 1].name, sorted[i].name) == 0) {
                status = bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s': name appears more than once", path,
                                 sorted[i].name);
                break;
            }
        }
        free(sorted);
        if (status != BQ_OK) goto done;
    }

    /* The tensors must cover the data section exactly, in some order, without gaps or overlaps. */
    qsort(spans, (size_t)st->count, sizeof *spans, span_cmp);
    uint64_t expected = 0;
    for (int i = 0; i < st->count; i++) {
        const char *name = st->tensors[spans[i].index].name;
        if (spans[i].begin < expected) {
            status = bq_fail(err, BQ_ERR_FORMAT,
                             "'%s': tensor '%s': data [%llu, %llu) overlaps the previous tensor (ends at %llu)",
                             path, name, (unsigned long long)spans[i].begin,
                             (unsigned long long)spans[i].end, (unsigned long long)expected);
            goto done;
        }
        if (spans[i].begin > expected) {
            status = bq_fail(err, BQ_ERR_FORMAT,
                             "'%s': tensor '%s': gap of %llu unused bytes before its data (at %llu)", path,
                             name, (unsigned long long)(spans[i].begin - expected),
                             (unsigned long long)expected);
            goto done;
        }
        expected = spans[i].end;
        st->tensors[spans[i].index].data = data + spans[i].begin;
    }
    if (expected != data_size) {
        const char *last = st->count ? st->tensors[spans[st->count - 1].index].name : "(none)";
        status = bq_fail(err, BQ_ERR_FORMAT,
                         "'%s': %llu trailing bytes after the last tensor '%s' (data section is %llu bytes)",
                         path, (unsigned long long)(data_size - expected), last,
                         (unsigned long long)data_size);
        goto done;
    }
done:
    free(spans);
    cJSON_Delete(root);
    free(text);
    return status;
}

bq_status bq_safetensors_open(const char *path, bq_safetensors **out, bq_err *err) {
    if (!out) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_safetensors_open: out is NULL");
    *out = NULL;
    if (!path) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_safetensors_open: path is NULL");
    struct stat sb;
    int fd = bq_open_regular_file(path, &sb, err);
    if (fd < 0) return BQ_ERR_IO;
    if (sb.st_size < 8) {
        close(fd);
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': file is %lld bytes, shorter than the 8-byte header length",
                       path, (long long)sb.st_size);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return bq_fail(err, BQ_ERR_IO, "'%s': file too large to map", path);
    }
    size_t file_size = (size_t)sb.st_size;
    void *map = mmap(NULL, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED) return bq_fail(err, BQ_ERR_IO, "cannot map '%s': %s", path, strerror(map_errno));

    bq_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        munmap(map, file_size);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory opening '%s'", path);
    }
    st->map = map;
    st->map_len = file_size;

    const unsigned char *bytes = map;
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | bytes[i];
    bq_status status;
    if (header_len > ST_MAX_HEADER_BYTES) {
        status = bq_fail(err, BQ_ERR_FORMAT, "'%s': header length %llu exceeds the 100 MB limit", path,
                         (unsigned long long)header_len);
    } else if (header_len > file_size - 8) {
        status = bq_fail(err, BQ_ERR_FORMAT, "'%s': header length %llu is beyond the end of the file (%zu bytes)",
                         path, (unsigned long long)header_len, file_size);
    } else {
        status = parse_header(st, (const char *)bytes + 8, (size_t)header_len, bytes + 8 + header_len,
                              file_size - 8 - header_len, err);
    }
    if (status != BQ_OK) {
        bq_safetensors_close(st);
        return status;
    }
    *out = st;
    return BQ_OK;
}

void bq_safetensors_close(bq_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->count; i++) free(st->tensors[i].name);
    free(st->tensors);
    if (st->map) munmap(st->map, st->map_len);
    free(st->path);
    free(st);
}

int bq_safetensors_count(const bq_safetensors *st) { return st ? st->count : 0; }

const bq_tensor *bq_safetensors_at(const bq_safetensors *st, int i) {
    if (!st || i < 0 || i >= st->count) return NULL;
    return &st->tensors[i];
}

const bq_tensor *bq_safetensors_find(const bq_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    for (int i = 0; i < st->count; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *bq_safetensors_path(const bq_safetensors *st) { return st ? st->path : NULL; }
