/* safetensors.h - a validating, memory-mapping reader of the safetensors format.
 * Layout: u64 little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the data section. Everything is checked before any tensor is handed out. */
#ifndef BQ_SAFETENSORS_H
#define BQ_SAFETENSORS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    BQ_DTYPE_F32, BQ_DTYPE_F16, BQ_DTYPE_BF16,
    BQ_DTYPE_F64, BQ_DTYPE_I64, BQ_DTYPE_I32, BQ_DTYPE_I16, BQ_DTYPE_I8, BQ_DTYPE_U8, BQ_DTYPE_BOOL,
    BQ_DTYPE_OTHER /* a dtype the format allows that we never read (e.g. F8_E4M3) */
} bq_dtype;

const char *bq_dtype_name(bq_dtype d);
size_t bq_dtype_size(bq_dtype d); /* bytes per element; 0 for BQ_DTYPE_OTHER */

#define BQ_MAX_DIMS 8

typedef struct {
    char *name;
    bq_dtype dtype;
    const char *dtype_name; /* as the header spells it ("F8_E4M3"), static */
    int ndim;
    int64_t shape[BQ_MAX_DIMS];
    int64_t n_elements;
    const void *data;  /* points into the mapping */
    size_t n_bytes;
} bq_tensor;

typedef struct bq_safetensors bq_safetensors;

/* Map and validate `path`: header length (8 <= file, <= 100 MB, inside the file), valid JSON object,
 * known dtypes, non-negative shapes without overflow, offsets inside the data section, byte counts
 * equal to elements * dtype size, tensors tiling the data section with no gap or overlap.
 * BQ_ERR_IO / BQ_ERR_FORMAT messages name the file, the tensor and the problem. */
bq_status bq_safetensors_open(const char *path, bq_safetensors **out, bq_err *err);
void bq_safetensors_close(bq_safetensors *st); /* accepts NULL */

int bq_safetensors_count(const bq_safetensors *st);
const bq_tensor *bq_safetensors_at(const bq_safetensors *st, int i);
const bq_tensor *bq_safetensors_find(const bq_safetensors *st, const char *name); /* NULL if absent */
const char *bq_safetensors_path(const bq_safetensors *st);

/* Scalar conversions used by loaders (round-trip exact for f16/bf16 -> f32). */
float bq_f16_to_f32(uint16_t h);
float bq_bf16_to_f32(uint16_t b);
uint16_t bq_f32_to_f16(float f);   /* round to nearest even */
uint16_t bq_f32_to_bf16(float f);  /* round to nearest even */

#ifdef __cplusplus
}
#endif
#endif
