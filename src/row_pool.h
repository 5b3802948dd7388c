/* row_pool.h - a few persistent threads that split work by rows: the CPU backend's row-wise ops
 * (softmax, LayerNorm, GELU), whose GEMMs OpenBLAS spreads over its own threads (without the pool
 * those ops ran on one core while the others waited), and the QA pipeline's features and decoding,
 * a request a row. Rows are cut into contiguous parts and each row is computed exactly as on one
 * thread, so the results do not depend on the thread count. */
#ifndef BQ_ROW_POOL_H
#define BQ_ROW_POOL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bq_row_pool bq_row_pool;

/* fn(ctx, begin, end) computes rows [begin, end). */
typedef void (*bq_row_fn)(void *ctx, int begin, int end);

/* A pool for `threads` threads in all: the caller's and threads - 1 workers (threads <= 1: none).
 * Returns BQ_OK, or BQ_ERR_NOMEM when memory or a thread could not be had. */
bq_status bq_row_pool_create(int threads, bq_row_pool **out, bq_err *err);
void bq_row_pool_free(bq_row_pool *pool); /* accepts NULL */

/* Run fn over rows [0, n), cut into one contiguous part per thread, at most one part a row (the
 * calling thread takes the first); returns when every part is done. A NULL pool, a single row, or
 * a pool used in a child forked from its process (which has none of its threads) runs
 * fn(ctx, 0, n) on the caller. One caller at a time. */
void bq_row_pool_run(bq_row_pool *pool, int n, bq_row_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
