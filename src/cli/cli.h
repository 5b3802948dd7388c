/* cli.h - the bertqa-gpu command line: options shared by every subcommand, parsed in one place. */
#ifndef BQ_CLI_H
#define BQ_CLI_H

#include "engine.h"
#include "model.h"
#include "squad_options.h"
#include "vocab.h"

#include <stdbool.h>
#include <stdio.h>

/* Every option of every subcommand; a subcommand lists the ones it accepts. */
typedef enum {
    OPT_HELP, OPT_VOCAB, OPT_TOKENS, OPT_QUESTION, OPT_CONTEXT, OPT_CONTEXT_FILE, OPT_DATA,
    OPT_PREDICTIONS, OPT_MODEL, OPT_DEVICE, OPT_PRECISION, OPT_ATTENTION, OPT_THREADS, OPT_BATCH,
    OPT_TOP_K, OPT_JSON, OPT_INPUT, OPT_OUTPUT, OPT_NBEST_FILE, OPT_PRESET, OPT_SEQ_LEN, OPT_ITERS,
    OPT_JSON_FILE, OPT_PROFILE, OPT_MAX_SEQ_LENGTH, OPT_MAX_QUERY_LENGTH, OPT_DOC_STRIDE, OPT_N_BEST,
    OPT_MAX_ANSWER_LENGTH, OPT_QUIET, OPT_LENGTH_BUCKET, OPT_PACK, OPT_TUNING_CACHE, OPT_MAX_REL_ERR,
    OPT_COUNT
} cli_option_id;

typedef struct {
    bool given[OPT_COUNT];
    const char *value[OPT_COUNT];
    bq_squad_options squad;
    bq_engine_options engine;
    int top_k;
    int seq_len, iters; /* bench: --seq-len (default 384), --iters (0: by device) */
} cli_args;

typedef struct {
    const char *name;
    const char *summary;
    const char *usage;
    const cli_option_id *options; /* terminated by OPT_COUNT */
    int (*run)(const cli_args *args);
    const cli_option_id *required; /* options that must be given, terminated by OPT_COUNT; may be NULL */
} cli_command;

/* Parse argv (after the subcommand name). Prints the error and returns false on bad input (a
 * required option missing included: a usage error, exit status 2 like the others). */
bool cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *out);
void cli_print_help(const cli_command *cmd, FILE *to);

/* Report an error on stderr as "bertqa-gpu <cmd>: message" and return the exit status for it. */
int cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int cli_exit_status(bq_status st);
/* The line {"exact_match": EM, "f1": F1} to `to`, the numbers as Python's json.dumps writes them
 * (the shortest digits that read back: 100.0, 66.66666666666667, 1e-05), so that it reads as the
 * official script's line byte for byte. */
void cli_print_scores(FILE *to, double exact_match, double f1);
/* The errno of a command's own failed flush of stdout (0: none), for main's message: main's later
 * flush then has nothing left to fail with. */
extern int cli_stdout_errno;

/* A comma-separated --precision list into out[0..*n) (at most max); false after a message. */
bool cli_parse_precisions(const char *cmd, const char *s, bq_precision *out, int max, int *n);
/* An output path that is standard output: "-" (bq_output_open) or /dev/stdout. */
bool cli_is_stdout(const char *path);
/* Vocabulary from --vocab, else the shipped one (bq_default_vocab_path). */
const char *cli_vocab_path(const cli_args *a);
/* Context from --context or --context-file (heap copy in *owned when read from a file). Returns 0,
 * or the exit status after a message: 1 for a file that cannot be read (or is over
 * BQ_MAX_INPUT_BYTES), 2 when neither option was given. */
int cli_context(const char *cmd, const cli_args *a, const char **text, size_t *len, char **owned);
/* Say on stderr which folder a model name led to, where it was a repo id found in the Hugging
 * Face cache (bq_model_locate), and which vocabulary file tokenizes for a folder without its own. */
void cli_note_model_folder(const char *cmd, const char *given, const bq_model *model);
/* Load --model (which cli_parse requires of the commands that call this) and create the engine
 * from --device/--precision/--attention/--threads/--batch.
 * Returns 0, or the exit status for the failure (after its message): 3 without a usable GPU. */
int cli_load_model(const char *cmd, const cli_args *a, bq_model **model, bq_engine **engine);

int cmd_tokenize(const cli_args *a);
int cmd_features(const cli_args *a);
int cmd_eval(const cli_args *a);
int cmd_ask(const cli_args *a);
int cmd_check(const cli_args *a);
int cmd_squad(const cli_args *a);
int cmd_jsonl(const cli_args *a);
int cmd_logits(const cli_args *a);
int cmd_bench(const cli_args *a);

#endif
