/* qa.h - question answering end to end: text -> features (windows) -> padded engine batches ->
 * start/end logits -> decoded answers. Host work (features, decoding) of one chunk overlaps the
 * engine's work on the next one in bq_qa_pipeline. */
#ifndef BQ_QA_H
#define BQ_QA_H

#include "common.h"
#include "decode.h"
#include "engine.h"
#include "model.h"
#include "squad_features.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *question;
    size_t question_len;
    const char *context;
    size_t context_len;
} bq_qa_request;

typedef struct {
    bq_status status;      /* this request's own outcome: a bad request fails alone */
    char error[1024];      /* message when status != BQ_OK (as bq_err.message) */
    bq_answers answers;    /* best first; at least one when status == BQ_OK */
    int n_windows;
} bq_qa_result;

void bq_qa_result_free(bq_qa_result *r); /* frees the answers; accepts a zeroed struct */

typedef struct bq_qa bq_qa;

/* The engine's max_batch and seq_len govern batching; opt->max_seq_length must equal seq_len;
 * opt->length_bucket (0 .. seq_len) trims batches to their windows' lengths, opt->pack packs
 * windows without padding (squad_options.h; not both, and neither with cuDNN's attention). */
bq_status bq_qa_create(const bq_model *model, bq_engine *engine, const bq_squad_options *opt,
                       bq_qa **out, bq_err *err);
void bq_qa_free(bq_qa *qa); /* accepts NULL */

/* Answer n requests into results[0..n). Returns non-OK only for failures of the engine itself (or
 * no memory); a request with bad input gets its own status and message in its result. The
 * results are set on every return (free them with bq_qa_result_free). */
bq_status bq_qa_answer(bq_qa *qa, const bq_qa_request *requests, int n, bq_qa_result *results,
                       bq_err *err);

/* The features and raw logits of one request, for comparison with other implementations: always
 * padded at the full max_seq_length, whatever opt->length_bucket and opt->pack say. */
typedef struct {
    bq_features features;
    float *start_logits; /* [features.n_windows, max_seq_length] */
    float *end_logits;
} bq_qa_logits;
bq_status bq_qa_compute_logits(bq_qa *qa, const bq_qa_request *request, bq_qa_logits *out, bq_err *err);
void bq_qa_logits_free(bq_qa_logits *l);

/* Pipelined answering of many requests: requests are cut into chunks; while the engine runs one
 * chunk, a host thread builds the next chunk's features and decodes the previous chunk's answers.
 * `emit` is called once per request, in request order, on the calling thread; after a failure,
 * for the requests answered before it (a prefix: the rest were not answered). */
typedef void (*bq_qa_emit_fn)(void *ctx, int index, const bq_qa_result *result);
typedef struct {
    double host_seconds;    /* wall time of the host stages (features, decoding; spread over host threads) */
    double engine_seconds;  /* time spent in the engine's forward calls */
    double wall_seconds;
    long windows;           /* engine rows run */
    long positions;         /* token positions the engine ran (rows run x their batches' lengths;
                             * a partial batch rounded up counts its extra rows) */
    long batches;           /* engine forward calls */
    long partial_batches;   /* of those, calls for fewer windows than the engine's max batch */
} bq_qa_stats;
/* Chunks are cut at whole engine batches where the windows allow (bq_qa_whole_batch_prefix; when
 * packing, at whole packed passes, bq_qa_whole_pack_prefix): a partial batch is a new batch size
 * for the engine, and each new size costs it a first eager pass (GEMM timing, attention choice,
 * graph capture). Returns BQ_OK, or the first engine / memory error
 * (bad requests are not errors: their results carry their status). A chunk decoded while the engine
 * failed on the next one is still emitted: a decoded chunk is never dropped. */
bq_status bq_qa_pipeline(bq_qa *qa, const bq_qa_request *requests, int n, bq_qa_emit_fn emit,
                         void *emit_ctx, bq_qa_stats *stats, bq_err *err);

/* The rows a CUDA engine that tunes runs for a partial batch of `rows` windows (1 <= rows <=
 * max_batch): the next power of two or multiple of max_batch / 8, whichever is smaller, at most
 * max_batch. Each new batch size costs such an engine a first pass (GEMM and attention timing,
 * graph capture), so a stream whose reads end in partial batches of every size meets at most a
 * dozen sizes this way (the rows past the windows repeat the last one; their logits are dropped).
 * The packed planner rounds a run's last pass the same way. */
int bq_qa_batch_rows(int rows, int max_batch);

/* Length-bucketed batches: order[0..n) receives the rows 0..n-1 sorted by n_tokens[row] (stable),
 * and lengths[k] the length batch k (rows order[k*max_batch ..]) runs at: its longest window
 * rounded up to a multiple of bucket, at most seq_len. Returns the number of batches. */
int bq_qa_plan_buckets(const int *n_tokens, int n, int max_batch, int bucket, int seq_len, int *order,
                       int *lengths);

/* Packed passes: rows 0..n-1 (n_tokens[row] real tokens each, <= seq_len) laid back to back in
 * row order, at most max_batch x seq_len positions a pass. first[k] receives pass k's first row
 * (first[passes] = n), batches[k] and lengths[k] the engine rows it runs and their length: a pass
 * cut because the next row would not fit runs ceil(its tokens / seq_len) rows; the last pass
 * rounds that up to the next power of two or multiple of max_batch / 8, whichever is smaller (few
 * new pass shapes, and one short request still runs one row), or with `more` (windows follow in a
 * later plan: the pass is no run's last) to max_batch, as if closed. The length is seq_len, but a pass
 * of one row runs its tokens rounded up to a multiple of BQ_PACK_LENGTH_STEP (at most seq_len),
 * as a length bucket would. first needs n + 1 entries, batches and lengths n. Returns the number
 * of passes. */
#define BQ_PACK_LENGTH_STEP 64
int bq_qa_plan_packs(const int *n_tokens, int n, int max_batch, int seq_len, int more, int *first,
                     int *batches, int *lengths);

/* How many leading requests of a chunk to keep so that their windows end where a packed pass
 * closes (bq_qa_plan_packs: the next window would not fit), so that the chunk runs no partial pass:
 * windows[i] is request i's window count (0 for a request that failed), n_tokens the windows'
 * tokens in request order. Returns the requests before the last pass that starts at a request's
 * first window, or n when no pass does (the chunk holds less than two passes, or multi-window
 * requests straddle every cut). The requests after it go to the next chunk. */
int bq_qa_whole_pack_prefix(const int *windows, const int *n_tokens, int n, int max_batch, int seq_len);

/* How many leading requests of a chunk to keep so that their windows fill whole engine batches:
 * windows[i] is request i's window count (0 for a request that failed), n >= 1, max_batch >= 1.
 * Returns the largest k whose first k requests hold exactly the most whole batches any prefix
 * fills exactly; when no prefix does (multi-window requests straddle every cut), the largest k
 * whose requests fit in the chunk's whole batches (at least 1). When the chunk holds fewer than
 * max_batch windows it returns n: cutting gains nothing. The requests after k go to the next
 * chunk. */
int bq_qa_whole_batch_prefix(const int *windows, int n, int max_batch);

#ifdef __cplusplus
}
#endif
#endif
