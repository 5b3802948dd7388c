/* settings.h - the named run settings: the command line's model and window options and the public
 * API's bq_settings_set take the same names, values and ranges from here. */
#ifndef BQ_SETTINGS_H
#define BQ_SETTINGS_H

#include "common.h"
#include "engine.h"
#include "squad_options.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The engine and window options a run starts from: engine_options's defaults but max_batch 0
 * (the device's default, chosen by bq_settings_finish) and the SQuAD defaults. */
void bq_settings_defaults(bq_engine_options *engine, bq_squad_options *squad);

/* Parse `s` as a decimal integer in [lo, hi] into *out. `label` names it in the message
 * ("--batch expects an integer in [1, 4096], got 'x'"). Returns BQ_OK or BQ_ERR_INVALID_ARG. */
bq_status bq_parse_int_range(const char *label, const char *s, int lo, int hi, int *out, bq_err *err);

/* Set the setting `name` (device, precision, attention, threads, batch, tuning-cache,
 * max-seq-length, max-query-length, doc-stride, n-best, max-answer-length, length-bucket, pack:
 * the command line's options without "--"; pack takes "0" or "1") from `value`. `value` is kept by
 * reference for tuning-cache. `prefix` is how messages name settings ("--" on the command line).
 * Returns BQ_OK, or BQ_ERR_INVALID_ARG for an unknown name or a bad value (nothing changed). */
bq_status bq_settings_apply(const char *name, const char *value, const char *prefix,
                            bq_engine_options *engine, bq_squad_options *squad, bq_err *err);

/* After the settings are applied: give max_batch 0 the device's default (64 windows on cuda, 8
 * on cpu), make the engine's sequence length the window length, and check the settings against
 * each other (room for the context after the question, a length bucket within the window, packing
 * or length buckets but not both, and neither with cuDNN's attention). Returns BQ_OK or
 * BQ_ERR_INVALID_ARG naming the settings (with `prefix`, as above). */
bq_status bq_settings_finish(bq_engine_options *engine, bq_squad_options *squad, const char *prefix,
                             bq_err *err);

#ifdef __cplusplus
}
#endif
#endif
