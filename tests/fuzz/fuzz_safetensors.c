/* fuzz_safetensors.c - the safetensors reader (bq_safetensors_open) on any file: a failure with a
 * message, or tensors whose every byte lies inside the file (each is read through here, so ASan
 * sees an out-of-range one), with byte counts equal to elements x dtype size, found by name. */
#include "fuzz_common.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    bq_safetensors *st = NULL;
    bq_err err = {0};
    bq_status s = bq_safetensors_open(path, &st, &err);
    if (s != BQ_OK) {
        FUZZ_ASSERT(err.message[0] != '\0', "status %s without a message", bq_status_string(s));
        FUZZ_ASSERT(st == NULL, "a failed open handed out a reader");
        return 0;
    }
    size_t total = 0;
    for (int i = 0; i < bq_safetensors_count(st); i++) {
        const bq_tensor *t = bq_safetensors_at(st, i);
        FUZZ_ASSERT(t && t->name, "tensor %d", i);
        FUZZ_ASSERT(bq_safetensors_find(st, t->name) == t, "'%s' not found by its name", t->name);
        FUZZ_ASSERT(t->ndim >= 0 && t->ndim <= BQ_MAX_DIMS, "'%s': %d dimensions", t->name, t->ndim);
        int64_t elements = 1;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_ASSERT(t->shape[d] >= 0, "'%s': dimension %d is %lld", t->name, d, (long long)t->shape[d]);
            elements *= t->shape[d];
        }
        FUZZ_ASSERT(elements == t->n_elements, "'%s': %lld elements, shape says %lld", t->name,
                    (long long)t->n_elements, (long long)elements);
        if (t->dtype != BQ_DTYPE_OTHER)
            FUZZ_ASSERT(t->n_bytes == (size_t)t->n_elements * bq_dtype_size(t->dtype),
                        "'%s': %zu bytes for %lld elements of %s", t->name, t->n_bytes,
                        (long long)t->n_elements, t->dtype_name);
        const uint8_t *p = t->data;
        unsigned sum = 0;
        for (size_t k = 0; k < t->n_bytes; k++) sum += p[k]; /* every byte readable */
        (void)sum;
        total += t->n_bytes;
    }
    FUZZ_ASSERT(total <= size, "tensors hold %zu bytes of a %zu-byte file", total, size);
    bq_safetensors_close(st);
    return 0;
}
