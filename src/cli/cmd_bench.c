/* cmd_bench.c - bertqa-gpu bench: latency and throughput of the forward pass per precision and batch.
 * On CUDA the times come from CUDA events (compute only, and including the host<->device copies);
 * on the CPU from the wall clock. Inputs: random token ids (never zeros), rotated among several
 * input sets, all tokens real, segment 0 for the first 64 positions and 1 after (a question-sized
 * first segment). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "bq_version.h"
#include "cli.h"
#include "engine_cuda.h"

#include <cjson/cJSON.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* where the readable table goes: stdout, or stderr when the JSON goes to stdout (--json -) */
static FILE *table_out;

#define MAX_LIST 16
#define INPUT_SETS 4

typedef struct {
    double mean, p50, p90, p99;
} latency_stats;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static latency_stats summarize(double *ms, int n) {
    latency_stats s = {0};
    if (n <= 0) return s;
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += ms[i];
    s.mean = sum / n;
    /* nearest-rank percentiles */
    s.p50 = ms[(int)ceil(0.50 * n) - 1];
    s.p90 = ms[(int)ceil(0.90 * n) - 1];
    s.p99 = ms[(int)ceil(0.99 * n) - 1];
    return s;
}

/* What the GEMM layer chose per shape (gemm.cu's timing of cuBLASLt's candidates, fused GELU or
 * not), as "gemm_plans" in the configuration's JSON. */
static void add_gemm_plans(cJSON *config, const bq_gemm_plan_info *plans, int n) {
    cJSON *list = cJSON_AddArrayToObject(config, "gemm_plans");
    for (int i = 0; list && i < n; i++) {
        const bq_gemm_plan_info *p = &plans[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rows", p->rows);
        cJSON_AddNumberToObject(o, "in", p->in);
        cJSON_AddNumberToObject(o, "out", p->out);
        cJSON_AddStringToObject(o, "dtype", p->dtype);
        cJSON_AddStringToObject(o, "epilogue", p->epilogue);
        cJSON_AddNumberToObject(o, "candidates", p->candidates);
        cJSON_AddNumberToObject(o, "chosen", p->chosen);
        cJSON_AddNumberToObject(o, "chosen_splitk", p->chosen_splitk);
        cJSON_AddBoolToObject(o, "runs_first", p->runs_first != 0);
        cJSON_AddBoolToObject(o, "from_tuning_cache", p->from_cache != 0);
        if (p->shared_from_rows > 0) cJSON_AddNumberToObject(o, "shared_from_rows", p->shared_from_rows);
        if (p->runs_fp32x3 || p->fp32x3_ms > 0 || p->sgemm_ms > 0) { /* BQ_FP32_3XTF32 set */
            cJSON_AddBoolToObject(o, "runs_fp32x3", p->runs_fp32x3 != 0);
            cJSON_AddNumberToObject(o, "fp32x3_ms", p->fp32x3_ms);
            cJSON_AddNumberToObject(o, "sgemm_ms", p->sgemm_ms);
        }
        cJSON_AddNumberToObject(o, "first_ms", p->first_ms);
        cJSON_AddNumberToObject(o, "chosen_ms", p->chosen_ms);
        /* the candidates' outputs against their stage's reference, before the timing (a
         * difference that is not finite reaches the JSON as null) */
        cJSON_AddBoolToObject(o, "checked", p->checked != 0);
        if (p->checked) {
            cJSON_AddNumberToObject(o, "check_worst_diff", p->worst_diff);
            cJSON_AddNumberToObject(o, "check_disagreeing", p->disagreeing);
        }
        if (p->gelu_path[0]) {
            cJSON_AddStringToObject(o, "gelu_path", p->gelu_path);
            cJSON_AddNumberToObject(o, "unfused_ms", p->unfused_ms);
            cJSON_AddNumberToObject(o, "fused_large_ms", p->fused_large_ms);
            cJSON_AddNumberToObject(o, "fused_small_ms", p->fused_small_ms);
            cJSON_AddNumberToObject(o, "fused_pingpong_ms", p->fused_pingpong_ms);
            cJSON_AddNumberToObject(o, "fused_pingpong_small_ms", p->fused_pingpong_small_ms);
        }
        cJSON_AddItemToArray(list, o);
    }
}

static void print_gemm_plans(const bq_gemm_plan_info *plans, int n) {
    for (int i = 0; i < n; i++) {
        const bq_gemm_plan_info *p = &plans[i];
        fprintf(table_out, "       gemm %6d x %5d -> %5d %-4s %-9s algorithm %d of %d", p->rows, p->in,
                p->out, p->dtype, p->epilogue, p->chosen, p->candidates);
        /* BQ_GEMM_AUTOTUNE=0: nothing was timed, and zeros would read as measurements */
        if (p->chosen_ms <= 0 && p->first_ms <= 0) {
            if (p->shared_from_rows > 0)
                fprintf(table_out, ": taken from the %d-row shape", p->shared_from_rows);
            else
                fprintf(table_out, ": %s", p->from_cache ? "from the tuning cache" : "not timed");
            fprintf(table_out, "%s%s\n", p->gelu_path[0] ? "; " : "", p->gelu_path);
            continue;
        }
        if (p->chosen_splitk > 1) fprintf(table_out, ", split-K %d", p->chosen_splitk);
        fprintf(table_out, ": %.4f ms (first choice %.4f)", p->chosen_ms, p->first_ms);
        if (p->runs_fp32x3 || p->fp32x3_ms > 0 || p->sgemm_ms > 0)
            fprintf(table_out, "; %s (SGEMM path %.4f ms, 3xTF32 %.4f)",
                    p->runs_fp32x3 ? "3xTF32" : "SGEMM", p->sgemm_ms, p->fp32x3_ms);
        if (p->gelu_path[0])
            fprintf(table_out, "; %s (GEMM + GELU kernel %.4f ms, fused large tiles %.4f, small %.4f, "
                    "pingpong %.4f, pingpong small %.4f)",
                    p->gelu_path, p->unfused_ms, p->fused_large_ms, p->fused_small_ms,
                    p->fused_pingpong_ms, p->fused_pingpong_small_ms);
        if (p->checked)
            fprintf(table_out, "; outputs vs the reference: largest difference %.1e", p->worst_diff);
        if (p->disagreeing)
            fprintf(table_out, ", %d candidate(s) left out for differing", p->disagreeing);
        fprintf(table_out, "\n");
    }
}

static cJSON *stats_json(latency_stats s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mean", s.mean);
    cJSON_AddNumberToObject(o, "p50", s.p50);
    cJSON_AddNumberToObject(o, "p90", s.p90);
    cJSON_AddNumberToObject(o, "p99", s.p99);
    return o;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

/* Comma-separated batch sizes; false (after an error message) on bad input. */
static bool parse_batches(const char *s, int *out, int *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 4096 || *n >= MAX_LIST || (*end != ',' && *end != '\0')) {
            cli_error("bench", "--batch expects a comma-separated list of sizes in [1, 4096], got '%s'", s);
            return false;
        }
        out[(*n)++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && !*p) break; /* a trailing comma: reported below */
    }
    if (*n == 0 || (*s && s[strlen(s) - 1] == ','))
        return cli_error("bench", "--batch expects a comma-separated list of sizes in [1, 4096], got '%s'", s), false;
    return true;
}

static void remove_folder(const char *dir);

static bool preset_known(const char *preset) {
    return strcmp(preset, "tiny") == 0 || strcmp(preset, "base") == 0 || strcmp(preset, "large") == 0;
}

/* --preset (cmd_bench checked it is a known one): a random model written by bertqa-make-model
 * (next to this executable) into a temp dir; dir gets the model folder. The tool runs without a
 * shell (its arguments are never parsed as a command line). On failure nothing is left behind. */
static bool make_preset_model(const char *preset, bool quiet, char *dir, size_t dir_len) {
    char exe[PATH_MAX], tool[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return cli_error("bench", "cannot locate the bertqa-gpu executable"), false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(tool, sizeof tool, "%s/bertqa-make-model", exe);
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, dir_len, "%s/bertqa-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return cli_error("bench", "cannot create a temporary folder under %s", tmp ? tmp : "/tmp"), false;
    char out[PATH_MAX];
    if (snprintf(out, sizeof out, "%s/model", dir) >= (int)sizeof out || strlen(out) >= dir_len) {
        remove_folder(dir);
        return cli_error("bench", "temporary folder path too long: %s", dir), false;
    }
    if (!quiet) fprintf(stderr, "bertqa-gpu bench: writing a random %s model to %s\n", preset, out);
    fflush(NULL); /* the child inherits stdio's buffers otherwise */
    char *const argv[] = {tool, "--out", out, "--preset", (char *)preset, "--seed", "1", NULL};
    int status = -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO); /* the tool's progress goes where ours does */
        execv(tool, argv);
        _exit(127);
    }
    if (pid > 0) waitpid(pid, &status, 0);
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        remove_folder(dir);
        if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 127)
            return cli_error("bench", "cannot run %s", tool), false;
        return cli_error("bench", "bertqa-make-model failed for preset '%s'", preset), false;
    }
    memcpy(dir, out, strlen(out) + 1); /* fits: checked above */
    return true;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/* Removes dir and everything under it (depth first, links not followed). */
static void remove_folder(const char *dir) {
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "bertqa-gpu bench: could not remove %s\n", dir);
}

/* The preset's model folder and the temp folder around it. */
static void remove_preset_model(const char *model_dir) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", model_dir);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    remove_folder(dir);
}

static void fill_inputs(int32_t *ids, int32_t *mask, int32_t *seg, size_t rows, int S, int vocab, uint64_t *state) {
    for (size_t r = 0; r < rows; r++) {
        for (int t = 0; t < S; t++) {
            *state = *state * 6364136223846793005ull + 1442695040888963407ull;
            int lo = vocab > 2000 ? 1000 : 1; /* skip [PAD] and the reserved/special region */
            ids[r * S + t] = lo + (int)((*state >> 33) % (uint64_t)(vocab - lo));
            mask[r * S + t] = 1;
            seg[r * S + t] = t < 64 ? 0 : 1;
        }
    }
}

int cmd_bench(const cli_args *a) {
    if (a->given[OPT_MODEL] == a->given[OPT_PRESET])
        return cli_error("bench", "give exactly one of --model DIR or --preset tiny|base|large"), 2;
    if (a->given[OPT_PRESET] && !preset_known(a->value[OPT_PRESET]))
        return cli_error("bench", "--preset expects tiny, base or large, got '%s'", a->value[OPT_PRESET]), 2;
    int batches[MAX_LIST], n_batches;
    bq_precision precs[MAX_LIST];
    int n_precs;
    if (!parse_batches(a->given[OPT_BATCH] ? a->value[OPT_BATCH] : "1,8,32,128", batches, &n_batches)) return 2;
    if (!cli_parse_precisions("bench", a->given[OPT_PRECISION] ? a->value[OPT_PRECISION]
                                      : (a->engine.device == BQ_DEVICE_CUDA ? "fp32,tf32,fp16,bf16" : "fp32"),
                              precs, MAX_LIST, &n_precs))
        return 2;
    const int seq_len = a->seq_len; /* checked by cli_parse, as --iters */
    bool cuda = a->engine.device == BQ_DEVICE_CUDA;
    const int iters = a->iters ? a->iters : cuda ? 50 : 3;
    bq_err err;
    bq_err_clear(&err);
    /* opened first: a --json path that cannot be written fails before minutes of timing */
    bq_output_file *json_out = NULL;
    table_out = a->given[OPT_JSON_FILE] && cli_is_stdout(a->value[OPT_JSON_FILE]) ? stderr : stdout;
    if (a->given[OPT_JSON_FILE] && bq_output_open(a->value[OPT_JSON_FILE], &json_out, &err) != BQ_OK)
        return cli_error("bench", "%s", err.message), cli_exit_status(err.status);
    const bool quiet = a->given[OPT_QUIET]; /* no progress lines (warnings and errors still) */
    char device_name[256] = "cpu";
    int driver = 0;
    double ceiling_tflops[BQ_PRECISION_COUNT] = {0}; /* by bq_precision */
    if (cuda) {
        if (bq_cuda_device_info(a->engine.device_index, device_name, sizeof device_name, &driver, &err) != BQ_OK ||
            ((quiet ? 0 : fprintf(stderr, "bertqa-gpu bench: measuring the GEMM ceiling of %s\n", device_name)),
             bq_cuda_gemm_ceiling(a->engine.device_index, ceiling_tflops, &err) != BQ_OK)) {
            bq_output_discard(json_out);
            return cli_error("bench", "%s", err.message), cli_exit_status(err.status);
        }
    }

    char model_dir[PATH_MAX];
    bool temp_model = a->given[OPT_PRESET];
    if (temp_model) {
        if (!make_preset_model(a->value[OPT_PRESET], quiet, model_dir, sizeof model_dir)) {
            bq_output_discard(json_out);
            return 1;
        }
    } else {
        snprintf(model_dir, sizeof model_dir, "%s", a->value[OPT_MODEL]);
    }
    bq_model *model = NULL;
    bq_status st = bq_model_load(model_dir, cli_vocab_path(a), &model, &err);
    if (temp_model) remove_preset_model(model_dir);
    if (st != BQ_OK) {
        bq_output_discard(json_out);
        return cli_error("bench", "%s", err.message), cli_exit_status(st);
    }
    if (!temp_model) cli_note_model_folder("bench", model_dir, model);
    const double flops_per_seq = bq_model_flops(&model->config, seq_len);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "device", device_name);
    cJSON_AddStringToObject(root, "bertqa_version", BQ_VERSION);
    cJSON_AddStringToObject(root, "build_commit", BQ_GIT_COMMIT); /* the binary's (bertqa-gpu --version) */
    char drv[32];
    snprintf(drv, sizeof drv, "%d.%d", driver / 1000, (driver % 1000) / 10);
    cJSON_AddStringToObject(root, "driver", cuda ? drv : "");
    cJSON *ceil = cJSON_AddObjectToObject(root, "gemm_ceiling_tflops");
    for (int p = 0; p < BQ_PRECISION_COUNT; p++)
        cJSON_AddNumberToObject(ceil, bq_precision_name((bq_precision)p), ceiling_tflops[p]);
    cJSON_AddStringToObject(root, "model", a->given[OPT_PRESET] ? a->value[OPT_PRESET] : model_dir);
    cJSON_AddNumberToObject(root, "gflop_per_sequence", flops_per_seq / 1e9);
    cJSON_AddNumberToObject(root, "layers", model->config.num_layers);
    cJSON_AddBoolToObject(root, "complete", 0); /* true once every configuration ran */
    cJSON *configs = cJSON_AddArrayToObject(root, "configs");

    fprintf(table_out, "%-6s %6s %6s %10s %10s %10s %12s %9s %8s\n", "prec", "batch", "seq", "p50 ms",
            "p99 ms", "total ms", "seq/s", "TFLOP/s", "ceiling");
    int failures = 0;
    /* the JSON rewritten after each configuration: into a file replaced whole each time (a pipe
     * or stdout would get several documents); off after a failed write */
    bool json_incremental = bq_output_replaces(json_out);
    for (int pi = 0; pi < n_precs; pi++) {
        for (int bi = 0; bi < n_batches; bi++) {
            int B = batches[bi];
            if (!quiet) fprintf(stderr, "bertqa-gpu bench: %s batch %d ...\n", bq_precision_name(precs[pi]), B);
            bq_engine_options eo = a->engine;
            eo.precision = precs[pi];
            eo.max_batch = B;
            eo.seq_len = seq_len;
            bq_engine *engine = NULL;
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "precision", bq_precision_name(precs[pi]));
            cJSON_AddNumberToObject(c, "batch", B);
            cJSON_AddNumberToObject(c, "seq_len", seq_len);
            cJSON_AddItemToArray(configs, c);
            size_t cells = (size_t)INPUT_SETS * B * seq_len;
            int32_t *ids = malloc(cells * sizeof *ids), *mask = malloc(cells * sizeof *mask),
                    *seg = malloc(cells * sizeof *seg);
            float *start = malloc((size_t)B * seq_len * sizeof *start), *end = malloc((size_t)B * seq_len * sizeof *end);
            double *compute = calloc((size_t)iters, sizeof *compute), *total = calloc((size_t)iters, sizeof *total);
            uint64_t rng = 12345u + (uint64_t)B;
            st = ids && mask && seg && start && end && compute && total ? BQ_OK : BQ_ERR_NOMEM;
            if (st == BQ_OK) {
                fill_inputs(ids, mask, seg, (size_t)INPUT_SETS * B, seq_len, model->config.vocab_size, &rng);
                st = bq_engine_create(model, &eo, &engine, &err);
            } else {
                bq_fail(&err, st, "out of memory for batch %d", B);
            }
            bq_cuda_engine *ce = engine ? bq_engine_cuda_backend(engine) : NULL;
            double stage_ms[BQ_STAGE_COUNT];
            bq_gemm_plan_info plans[16]; /* 4 GEMM shapes per engine; the rest is headroom */
            const int max_plans = (int)(sizeof plans / sizeof plans[0]);
            int n_plans = 0;
            bool profiled = false;
            if (st == BQ_OK && ce) {
                /* The first pass of a batch size pays for its setup (GEMM timing, the attention
                 * choice, graph capture): what a new batch size costs a long run like squad's. */
                double t0 = now_ms();
                st = bq_engine_forward(engine, B, ids, mask, seg, start, end, &err);
                if (st == BQ_OK) cJSON_AddNumberToObject(c, "first_pass_ms", now_ms() - t0);
            }
            if (st == BQ_OK && ce) {
                bq_cuda_timing *t = calloc((size_t)iters, sizeof *t);
                st = t ? bq_cuda_engine_time(ce, B, ids, mask, seg, 5, iters, INPUT_SETS, t, &err) : BQ_ERR_NOMEM;
                for (int i = 0; st == BQ_OK && i < iters; i++) {
                    compute[i] = t[i].compute_ms;
                    total[i] = t[i].total_ms;
                }
                free(t);
                size_t wb = 0, ws = 0;
                if (st == BQ_OK && bq_cuda_engine_memory(ce, &wb, &ws, &err) == BQ_OK) {
                    cJSON_AddNumberToObject(c, "device_memory_bytes", (double)(wb + ws));
                    cJSON_AddNumberToObject(c, "weights_bytes", (double)wb);
                    cJSON_AddNumberToObject(c, "workspace_bytes", (double)ws);
                }
                if (st == BQ_OK) {
                    bq_attention_times at;
                    const char *attn = bq_cuda_engine_attention_choice(ce, B, &at);
                    cJSON_AddStringToObject(c, "attention", attn);
                    double timed_ms = 0, first_ms = 0;
                    cJSON_AddStringToObject(c, "gemm_choice",
                                            bq_cuda_engine_gemm_choice(ce, B, &timed_ms, &first_ms));
                    if (timed_ms > 0 || first_ms > 0) {
                        cJSON_AddNumberToObject(c, "gemm_pass_timed_ms", timed_ms);
                        cJSON_AddNumberToObject(c, "gemm_pass_first_ms", first_ms);
                    }
                    if (at.own_ms > 0 || at.cudnn_ms > 0) {
                        cJSON_AddNumberToObject(c, "attention_own_ms", at.own_ms);
                        cJSON_AddNumberToObject(c, "attention_own_128_ms", at.own128_ms);
                        cJSON_AddNumberToObject(c, "attention_own_32_ms", at.own32_ms);
                        cJSON_AddNumberToObject(c, "attention_own_64k3_ms", at.own64k3_ms);
                        cJSON_AddNumberToObject(c, "attention_own_wgmma_ms", at.own_wgmma_ms);
                        cJSON_AddNumberToObject(c, "attention_own_wgmma_overlap_ms",
                                                at.own_wgmma_overlap_ms);
                        cJSON_AddNumberToObject(c, "attention_cudnn_ms", at.cudnn_ms);
                        /* every candidate's output against the 64-row tiling's, before timing */
                        cJSON_AddNumberToObject(c, "attention_check_worst_diff", at.worst_diff);
                        cJSON_AddStringToObject(c, "attention_disagreeing", at.disagreeing);
                    }
                }
                n_plans = st == BQ_OK ? bq_cuda_engine_gemm_plans(ce, plans, max_plans) : 0;
                if (n_plans > 0) add_gemm_plans(c, plans, n_plans);
                if (st == BQ_OK && a->given[OPT_PROFILE]) {
                    /* a failed profile is the run's failure, but the timings above stand */
                    bq_err perr;
                    bq_err_clear(&perr);
                    profiled = bq_cuda_engine_profile(ce, B, ids, mask, seg, stage_ms, &perr) == BQ_OK;
                    if (profiled) {
                        cJSON *p = cJSON_AddObjectToObject(c, "profile_ms");
                        for (int s = 0; s < BQ_STAGE_COUNT; s++)
                            cJSON_AddNumberToObject(p, bq_stage_name((bq_stage)s), stage_ms[s]);
                    } else {
                        failures++;
                        cJSON_AddStringToObject(c, "profile_error", perr.message);
                        fprintf(stderr, "bertqa-gpu bench: %s batch %d: profile failed: %s\n",
                                bq_precision_name(precs[pi]), B, perr.message);
                    }
                }
            } else if (st == BQ_OK) {
                /* CPU: wall clock; one warm-up pass */
                st = bq_engine_forward(engine, B, ids, mask, seg, start, end, &err);
                for (int i = 0; st == BQ_OK && i < iters; i++) {
                    size_t at = (size_t)(i % INPUT_SETS) * B * seq_len;
                    double t0 = now_ms();
                    st = bq_engine_forward(engine, B, ids + at, mask + at, seg + at, start, end, &err);
                    compute[i] = total[i] = now_ms() - t0;
                }
            }
            if (st != BQ_OK) {
                failures++;
                cJSON_AddStringToObject(c, "error", err.message);
                fprintf(table_out, "%-6s %6d %6d  error: %s\n", bq_precision_name(precs[pi]), B, seq_len,
                        err.message);
            } else {
                latency_stats lc = summarize(compute, iters), lt = summarize(total, iters);
                double seq_s = B * 1e3 / lc.mean;
                double tflops = flops_per_seq * seq_s / 1e12;
                const double ceiling = ceiling_tflops[precs[pi]]; /* the same precision's */
                cJSON_AddNumberToObject(c, "iters", iters);
                cJSON_AddItemToObject(c, "latency_ms", stats_json(lc));
                cJSON_AddItemToObject(c, "latency_total_ms", stats_json(lt));
                cJSON_AddNumberToObject(c, "throughput_seq_s", seq_s);
                cJSON_AddNumberToObject(c, "tflops", tflops);
                if (ceiling > 0)
                    cJSON_AddNumberToObject(c, "ceiling_share", tflops / ceiling);
                else
                    cJSON_AddNullToObject(c, "ceiling_share");
                char share[16] = "-";
                if (ceiling > 0) snprintf(share, sizeof share, "%.0f%%", 100 * tflops / ceiling);
                fprintf(table_out, "%-6s %6d %6d %10.3f %10.3f %10.3f %12.1f %9.1f %8s\n",
                        bq_precision_name(precs[pi]), B, seq_len, lc.p50, lc.p99, lt.p50, seq_s, tflops, share);
                if (profiled) {
                    fprintf(table_out, "       stages (ms, one pass without graph):");
                    for (int s = 0; s < BQ_STAGE_COUNT; s++)
                        fprintf(table_out, " %s %.3f", bq_stage_name((bq_stage)s), stage_ms[s]);
                    fprintf(table_out, "\n");
                    print_gemm_plans(plans, n_plans);
                }
            }
            fflush(stdout);
            bq_err serr;
            bq_err_clear(&serr);
            if (engine && bq_engine_save_tuning(engine, &serr) != BQ_OK)
                fprintf(stderr, "bertqa-gpu bench: warning: %s\n", serr.message);
            bq_engine_free(engine);
            free(ids), free(mask), free(seg), free(start), free(end), free(compute), free(total);
            /* the configurations so far, in place now: a run stopped later (a device step's time
             * limit) leaves them, marked "complete": false */
            if (json_incremental) {
                bq_status w = bq_output_commit_text(json_out, cJSON_Print(root), &err);
                json_out = NULL; /* committed (or discarded): opened again for the next rewrite */
                if (w == BQ_OK) w = bq_output_open(a->value[OPT_JSON_FILE], &json_out, &err);
                if (w != BQ_OK) {
                    json_incremental = false;
                    failures++, cli_error("bench", "%s", err.message);
                }
            }
        }
    }
    cJSON_ReplaceItemInObject(root, "complete", cJSON_CreateBool(1));
    if (json_out && bq_output_commit_text(json_out, cJSON_Print(root), &err) != BQ_OK)
        failures++, cli_error("bench", "%s", err.message);
    cJSON_Delete(root);
    bq_model_free(model);
    return failures ? 1 : 0;
}
