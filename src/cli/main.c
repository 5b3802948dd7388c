/* main.c - bertqa-gpu: subcommand dispatch, option table and the option parser shared by all. */
#include "bq_version.h"
#include "cli.h"
#include "engine_cuda.h"
#include "forward_cpu.h"
#include "settings.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *flag;
    const char *arg; /* NULL for a switch */
    const char *help;
} option_spec;

static const option_spec option_specs[OPT_COUNT] = {
    [OPT_HELP] = {"--help", NULL, "show this help"},
    [OPT_VOCAB] = {"--vocab", "FILE", "WordPiece vocabulary (default: the shipped vocab/vocab.txt)"},
    [OPT_TOKENS] = {"--tokens", NULL, "print wordpieces instead of ids"},
    [OPT_QUESTION] = {"--question", "TEXT", "the question"},
    [OPT_CONTEXT] = {"--context", "TEXT", "the context passage"},
    [OPT_CONTEXT_FILE] = {"--context-file", "FILE", "read the context passage from FILE (- reads stdin)"},
    [OPT_DATA] = {"--data", "FILE", "SQuAD-format dataset (e.g. dev-v1.1.json; - reads stdin)"},
    [OPT_PREDICTIONS] = {"--predictions", "FILE", "predictions JSON ({\"id\": \"answer\", ...}; - reads stdin)"},
    [OPT_MODEL] = {"--model", "DIR", "checkpoint folder (config.json, model.safetensors or shards, vocab.txt), "
                                  "or a repo id (ORG/NAME[@REVISION]) in the local Hugging Face cache"},
    [OPT_DEVICE] = {"--device", "DEV", "cpu, cuda or cuda:N (default cpu)"},
    [OPT_PRECISION] = {"--precision", "P", "fp32, tf32, fp16 or bf16 (default fp32; cpu: fp32 only)"},
    [OPT_ATTENTION] = {"--attention", "IMPL", "auto, own or cudnn (cuda; default auto: the faster one per batch size)"},
    [OPT_THREADS] = {"--threads", "N", "CPU threads for the cpu backend (default: all cores)"},
    [OPT_BATCH] = {"--batch", "N", "sequences per forward pass (default 8 on cpu, 64 on cuda)"},
    [OPT_TOP_K] = {"--top-k", "N", "print the N best answers"},
    [OPT_JSON] = {"--json", NULL, "print JSON"},
    [OPT_INPUT] = {"--input", "FILE", "SQuAD-format input file (- reads stdin)"},
    [OPT_OUTPUT] = {"--output", "FILE", "write predictions ({\"id\": \"answer\"}) to FILE (- for stdout)"},
    [OPT_NBEST_FILE] = {"--nbest", "FILE", "also write the n-best answers per question to FILE (- for stdout)"},
    [OPT_PRESET] = {"--preset", "NAME", "benchmark a random model of this shape: tiny, base or large"},
    [OPT_SEQ_LEN] = {"--seq-len", "N", "padded sequence length (default 384)"},
    [OPT_ITERS] = {"--iters", "N", "timed iterations per configuration"},
    [OPT_JSON_FILE] = {"--json", "FILE",
                       "write the full results as JSON to FILE (- for stdout; the table then to stderr)"},
    [OPT_PROFILE] = {"--profile", NULL, "time each stage of one forward pass"},
    [OPT_MAX_SEQ_LENGTH] = {"--max-seq-length", "N", "window length in tokens (default 384)"},
    [OPT_MAX_QUERY_LENGTH] = {"--max-query-length", "N", "question tokens kept (default 64)"},
    [OPT_DOC_STRIDE] = {"--doc-stride", "N", "step between window starts (default 128)"},
    [OPT_N_BEST] = {"--n-best", "N", "start/end candidates and answers kept (default 20)"},
    [OPT_MAX_ANSWER_LENGTH] = {"--max-answer-length", "N", "longest answer in tokens (default 30)"},
    [OPT_QUIET] = {"--quiet", NULL, "no progress output"},
    [OPT_LENGTH_BUCKET] = {"--length-bucket", "N",
                           "run batches of length-sorted windows cut to a multiple of N "
                           "(padding is then never an answer; default 0: pad every window)"},
    [OPT_PACK] = {"--pack", NULL,
                  "run windows packed back to back with no padding, each attending to itself "
                  "(padding is then never an answer; an alternative to --length-bucket)"},
    [OPT_TUNING_CACHE] = {"--tuning-cache", "FILE",
                          "cuda: reuse the GEMM and attention timings kept in FILE for this card, "
                          "precision and model, and keep this run's there (default: time afresh)"},
    [OPT_MAX_REL_ERR] = {"--max-rel-err", "X", "hold every precision to this normwise relative error (default: "
                                             "fp32 1e-5, tf32 3e-3, fp16 and bf16 2e-2)"},
};

#define END OPT_COUNT
#define SQUAD_OPTS OPT_MAX_SEQ_LENGTH, OPT_MAX_QUERY_LENGTH, OPT_DOC_STRIDE, OPT_N_BEST, OPT_MAX_ANSWER_LENGTH
#define MODEL_OPTS OPT_MODEL, OPT_DEVICE, OPT_PRECISION, OPT_ATTENTION, OPT_THREADS, OPT_BATCH, \
                   OPT_TUNING_CACHE

static const cli_option_id tokenize_opts[] = {OPT_HELP, OPT_VOCAB, OPT_TOKENS, END};
static const cli_option_id features_opts[] = {OPT_HELP, OPT_VOCAB, OPT_QUESTION, OPT_CONTEXT, OPT_CONTEXT_FILE,
                                              SQUAD_OPTS, END};
static const cli_option_id eval_opts[] = {OPT_HELP, OPT_DATA, OPT_PREDICTIONS, END};
static const cli_option_id ask_opts[] = {OPT_HELP, MODEL_OPTS, OPT_VOCAB, OPT_QUESTION, OPT_CONTEXT,
                                         OPT_CONTEXT_FILE, OPT_TOP_K, OPT_JSON, SQUAD_OPTS,
                                         OPT_LENGTH_BUCKET, OPT_PACK, END};
static const cli_option_id squad_opts[] = {OPT_HELP, MODEL_OPTS, OPT_VOCAB, OPT_INPUT, OPT_OUTPUT,
                                           OPT_NBEST_FILE, OPT_QUIET, SQUAD_OPTS, OPT_LENGTH_BUCKET,
                                           OPT_PACK, END};
static const cli_option_id jsonl_opts[] = {OPT_HELP, MODEL_OPTS, OPT_VOCAB, SQUAD_OPTS,
                                           OPT_LENGTH_BUCKET, OPT_PACK, END};
static const cli_option_id logits_opts[] = {OPT_HELP, MODEL_OPTS, OPT_VOCAB, OPT_QUESTION, OPT_CONTEXT,
                                            OPT_CONTEXT_FILE, SQUAD_OPTS, END};
static const cli_option_id bench_opts[] = {OPT_HELP, OPT_MODEL, OPT_PRESET, OPT_DEVICE, OPT_PRECISION,
                                           OPT_ATTENTION, OPT_THREADS, OPT_BATCH, OPT_SEQ_LEN, OPT_ITERS,
                                           OPT_JSON_FILE, OPT_PROFILE, OPT_QUIET, OPT_TUNING_CACHE,
                                           END};

static const cli_option_id check_opts[] = {OPT_HELP, MODEL_OPTS, OPT_VOCAB, OPT_QUESTION, OPT_CONTEXT,
                                           OPT_CONTEXT_FILE, OPT_MAX_REL_ERR, OPT_JSON, SQUAD_OPTS, END};

static const cli_option_id features_required[] = {OPT_QUESTION, END};
static const cli_option_id check_required[] = {OPT_MODEL, END};
static const cli_option_id eval_required[] = {OPT_DATA, OPT_PREDICTIONS, END};
static const cli_option_id ask_required[] = {OPT_MODEL, OPT_QUESTION, END};
static const cli_option_id squad_required[] = {OPT_MODEL, OPT_INPUT, OPT_OUTPUT, END};
static const cli_option_id jsonl_required[] = {OPT_MODEL, END};
static const cli_option_id logits_required[] = {OPT_MODEL, OPT_QUESTION, END};

static const cli_command commands[] = {
    {"tokenize", "tokenize stdin, one line of text in, one line of token ids out",
     "bertqa-gpu tokenize [--vocab FILE] [--tokens] < text", tokenize_opts, cmd_tokenize, NULL},
    {"features", "print a question's SQuAD windows as JSON",
     "bertqa-gpu features --question Q (--context TEXT | --context-file F) [--vocab FILE]", features_opts,
     cmd_features, features_required},
    {"eval", "score predictions with the official SQuAD v1.1 EM/F1",
     "bertqa-gpu eval --data DEV.json --predictions PRED.json", eval_opts, cmd_eval, eval_required},
    {"ask", "answer one question about a context",
     "bertqa-gpu ask --model DIR (--context TEXT | --context-file F) --question Q [--top-k N] [--json]",
     ask_opts, cmd_ask, ask_required},
    {"squad", "answer every question of a SQuAD-format file",
     "bertqa-gpu squad --model DIR --input DEV.json --output PRED.json [--nbest NBEST.json] [--batch N]",
     squad_opts, cmd_squad, squad_required},
    {"jsonl", "answer JSON lines {\"id\",\"question\",\"context\"} from stdin, one line out per line in",
     "bertqa-gpu jsonl --model DIR < questions.jsonl", jsonl_opts, cmd_jsonl, jsonl_required},
    {"logits", "print the windows' features and start/end logits as JSON",
     "bertqa-gpu logits --model DIR --question Q (--context TEXT | --context-file F)", logits_opts,
     cmd_logits, logits_required},
    {"check", "compare the CUDA engine's logits with the CPU reference, every precision, on this card",
     "bertqa-gpu check --model DIR [--device cuda[:N]] [--precision fp32,tf32,fp16,bf16]\n"
     "                  [--question Q (--context TEXT | --context-file F)] [--max-rel-err X] [--json]",
     check_opts, cmd_check, check_required},
    {"bench", "measure latency and throughput of the forward pass",
     "bertqa-gpu bench (--model DIR | --preset tiny|base|large) [--device cuda[:N]|cpu]\n"
     "                  [--precision fp32,tf32,fp16,bf16] [--batch 1,8,32,128] [--seq-len 384]\n"
     "                  [--iters N] [--json FILE] [--profile]",
     bench_opts, cmd_bench, NULL},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

int cli_error(const char *cmd, const char *fmt, ...) {
    fprintf(stderr, "bertqa-gpu %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_exit_status(bq_status st) {
    switch (st) {
    case BQ_OK: return 0;
    case BQ_ERR_INVALID_ARG: return 2;
    case BQ_ERR_NO_DEVICE: return 3;
    default: return 1;
    }
}

/* Where a command reads an option otherwise than option_specs says: its own words for --help. */
static const struct {
    const char *command;
    cli_option_id option;
    const char *help;
} help_overrides[] = {
    {"check", OPT_DEVICE, "cuda or cuda:N (default cuda: check compares a card with the CPU)"},
    {"check", OPT_PRECISION, "comma-separated list of fp32, tf32, fp16, bf16 (default all four)"},
    {"bench", OPT_PRECISION, "comma-separated list of fp32, tf32, fp16, bf16 (default all four on "
                             "cuda, fp32 on cpu)"},
    {"bench", OPT_BATCH, "comma-separated batch sizes (default 1,8,32,128)"},
    {"bench", OPT_ITERS, "timed iterations per configuration (default 50 on cuda, 3 on cpu)"},
};

void cli_print_help(const cli_command *cmd, FILE *to) {
    fprintf(to, "%s\n\nusage: %s\n\noptions:\n", cmd->summary, cmd->usage);
    for (const cli_option_id *o = cmd->options; *o != OPT_COUNT; o++) {
        const option_spec *s = &option_specs[*o];
        const char *help = s->help;
        for (size_t k = 0; k < sizeof help_overrides / sizeof help_overrides[0]; k++)
            if (help_overrides[k].option == *o && strcmp(help_overrides[k].command, cmd->name) == 0)
                help = help_overrides[k].help;
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", s->flag, s->arg ? " " : "", s->arg ? s->arg : "");
        fprintf(to, "  %-26s %s\n", left, help);
    }
}

static bool parse_int(const char *cmd, const char *flag, const char *s, int lo, int hi, int *out) {
    bq_err err;
    if (bq_parse_int_range(flag, s, lo, hi, out, &err) == BQ_OK) return true;
    cli_error(cmd, "%s", err.message);
    return false;
}

bool cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *a) {
    memset(a, 0, sizeof *a);
    bq_settings_defaults(&a->engine, &a->squad);
    a->top_k = 1;
    a->seq_len = 384;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *inline_value = NULL;
        size_t name_len = strlen(arg);
        const char *eq = strchr(arg, '=');
        if (eq && strncmp(arg, "--", 2) == 0) {
            name_len = (size_t)(eq - arg);
            inline_value = eq + 1;
        }
        /* look only among this command's options: bench's --json takes a file, ask's is a switch */
        int found = -1;
        for (const cli_option_id *o = cmd->options; *o != OPT_COUNT; o++) {
            const char *flag = option_specs[*o].flag;
            if (strlen(flag) == name_len && strncmp(flag, arg, name_len) == 0) {
                found = *o;
                break;
            }
        }
        if (found < 0 && strcmp(arg, "-h") == 0) found = OPT_HELP;
        if (found < 0) {
            cli_error(cmd->name, "unknown option '%s' (see bertqa-gpu %s --help)", arg, cmd->name);
            return false;
        }
        const option_spec *s = &option_specs[found];
        if (s->arg) {
            if (!inline_value) {
                if (i + 1 >= argc) {
                    cli_error(cmd->name, "%s needs a value (%s)", s->flag, s->arg);
                    return false;
                }
                inline_value = argv[++i];
            }
        } else if (inline_value) {
            cli_error(cmd->name, "%s takes no value", s->flag);
            return false;
        }
        a->given[found] = true;
        a->value[found] = inline_value;
    }
    if (a->given[OPT_HELP]) return true;
    for (const cli_option_id *r = cmd->required; r && *r != END; r++)
        if (!a->given[*r]) {
            const option_spec *o = &option_specs[*r];
            cli_error(cmd->name, "%s%s%s is required: %s", o->flag, o->arg ? " " : "",
                      o->arg ? o->arg : "", o->help);
            return false;
        }

    const char *n = cmd->name;
    bq_err err;
    bq_err_clear(&err);
    /* the model and window options are the library's named settings (settings.h); bench takes
     * lists for --precision and --batch and parses them itself, check a list of precisions */
    static const cli_option_id settings[] = {
        OPT_DEVICE, OPT_PRECISION, OPT_ATTENTION, OPT_THREADS, OPT_BATCH, OPT_TUNING_CACHE,
        OPT_MAX_SEQ_LENGTH, OPT_MAX_QUERY_LENGTH, OPT_DOC_STRIDE, OPT_N_BEST, OPT_MAX_ANSWER_LENGTH,
        OPT_LENGTH_BUCKET, OPT_PACK};
    const bool bench = strcmp(n, "bench") == 0, check = strcmp(n, "check") == 0;
    for (size_t k = 0; k < sizeof settings / sizeof *settings; k++) {
        const cli_option_id id = settings[k];
        if (!a->given[id] || ((bench || check) && id == OPT_PRECISION) || (bench && id == OPT_BATCH))
            continue;
        const char *value = id == OPT_PACK ? "1" : a->value[id];
        if (bq_settings_apply(option_specs[id].flag + 2, value, "--", &a->engine, &a->squad, &err) != BQ_OK) {
            cli_error(n, "%s", err.message);
            return false;
        }
    }
    struct { cli_option_id id; int lo, hi; int *dst; } ints[] = {
        {OPT_TOP_K, 1, 1000, &a->top_k},
        {OPT_SEQ_LEN, 1, 4096, &a->seq_len},
        {OPT_ITERS, 1, 100000, &a->iters},
    };
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
        if (a->given[ints[k].id] &&
            !parse_int(n, option_specs[ints[k].id].flag, a->value[ints[k].id], ints[k].lo, ints[k].hi, ints[k].dst))
            return false;
    /* check compares a card with the CPU: it runs on cuda unless told which card */
    if (check) {
        if (a->engine.device != BQ_DEVICE_CUDA && a->given[OPT_DEVICE]) {
            cli_error(n, "check compares a CUDA device with the CPU reference: give --device cuda[:N]");
            return false;
        }
        a->engine.device = BQ_DEVICE_CUDA;
    }
    /* ask makes one forward pass: timing kernels and capturing a graph for it would cost more
     * than they save. (logits makes one too, but it is how bench/parity.py compares our logits
     * with the CPU's and Hugging Face's: it runs the tuned path that squad and jsonl run.) */
    a->engine.tune = strcmp(n, "ask") != 0;
    if (bq_settings_finish(&a->engine, &a->squad, "--", &err) != BQ_OK) {
        cli_error(n, "%s", err.message);
        return false;
    }
    if (a->given[OPT_TUNING_CACHE] && a->engine.device == BQ_DEVICE_CPU) /* the CPU backend times nothing */
        fprintf(stderr, "bertqa-gpu %s: note: --tuning-cache has no effect with --device cpu\n", n);
    if (a->given[OPT_CONTEXT] && a->given[OPT_CONTEXT_FILE]) {
        cli_error(n, "give either --context or --context-file, not both");
        return false;
    }
    /* "-" reads standard input, which only one file can be */
    static const int stdin_options[] = {OPT_INPUT, OPT_DATA, OPT_PREDICTIONS, OPT_CONTEXT_FILE};
    int from_stdin = 0;
    for (size_t i = 0; i < sizeof stdin_options / sizeof *stdin_options; i++)
        from_stdin += a->given[stdin_options[i]] && strcmp(a->value[stdin_options[i]], "-") == 0;
    if (from_stdin > 1) {
        cli_error(n, "only one file can be - (standard input)");
        return false;
    }
    return true;
}

static void print_usage(FILE *to) {
    fprintf(to,
            "bertqa-gpu - BERT-large question answering on NVIDIA GPUs (and a CPU reference)\n\n"
            "usage: bertqa-gpu <command> [options]   (bertqa-gpu <command> --help for its options)\n"
            "       bertqa-gpu --version\n\n"
            "commands:\n");
    for (int i = 0; i < n_commands; i++) fprintf(to, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int cli_stdout_errno;

/* bertqa-gpu --version: the version and commit, what the CUDA side was built with and finds now
 * (cards and driver), and the CPU side's OpenBLAS: what a bug report needs. */
static int print_version(void) {
    printf("bertqa-gpu %s (commit %s)\n", BQ_VERSION, BQ_GIT_COMMIT);
    if (!BQ_BUILD_CUDA[0]) {
        printf("cuda: not built (no nvcc at build time): --device cpu only\n");
    } else {
        printf("cuda: %s\n", BQ_BUILD_CUDA);
        int devices = 0;
        bq_err err;
        bq_err_clear(&err);
        if (bq_cuda_device_count(&devices, &err) != BQ_OK || devices == 0)
            printf("  no usable device now: %s\n", err.message[0] ? err.message : "none found");
        for (int d = 0; d < devices; d++) {
            char name[256];
            int driver = 0;
            if (bq_cuda_device_info(d, name, sizeof name, &driver, &err) == BQ_OK)
                printf("  device %d: %s, driver CUDA %d.%d\n", d, name, driver / 1000, driver % 1000 / 10);
            else
                printf("  device %d: %s\n", d, err.message);
        }
    }
    printf("vocabulary: %s (for a model folder without its own)\n", bq_default_vocab_path(BQ_DEFAULT_VOCAB));
    const char *better = bq_cpu_blas_better_kernels();
    printf("cpu: %s", bq_cpu_blas_config());
    if (better && !getenv("OPENBLAS_CORETYPE")) printf(" (model commands start again on its %s kernels)", better);
    printf("\n");
    return 0;
}

/* What was written to stdout reached it: answers (or help) written into a full disk or a closed
 * file are lost, so say so and never exit 0. Returns the status to exit with. */
static int stdout_status(const char *what, int status) {
    errno = 0;
    const int flush_failed = fflush(stdout) != 0;
    const int flush_errno = flush_failed ? errno : cli_stdout_errno;
    if (flush_failed || ferror(stdout)) {
        fprintf(stderr, "bertqa-gpu%s%s: writing standard output failed%s%s\n", what[0] ? " " : "", what,
                flush_errno ? ": " : "", flush_errno ? strerror(flush_errno) : "");
        if (status == 0) status = 1;
    }
    return status;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_usage(stdout);
        return stdout_status("", 0);
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)
        return stdout_status("", print_version());
    for (int i = 0; i < n_commands; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        cli_args args;
        if (!cli_parse(&commands[i], argc - 2, argv + 2, &args)) return 2;
        if (args.given[OPT_HELP]) {
            cli_print_help(&commands[i], stdout);
            return stdout_status(argv[1], 0);
        }
        /* check runs the CPU reference beside the card */
        if ((args.engine.device == BQ_DEVICE_CPU || commands[i].run == cmd_check) &&
            (args.given[OPT_MODEL] || args.given[OPT_PRESET]))
            bq_cpu_blas_restart_if_weak(argv); /* returns where it did not restart */
        return stdout_status(argv[1], commands[i].run(&args));
    }
    fprintf(stderr, "bertqa-gpu: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
