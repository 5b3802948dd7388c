/* make_model.c - bertqa-make-model: write a seeded random BertForQuestionAnswering checkpoint folder
 * (config.json, model.safetensors, vocab.txt) in exactly the layout Hugging Face saves, for tests
 * and benchmarks without downloading a real model.
 *
 *   bertqa-make-model --out DIR [--preset tiny|base|large] [--hidden N --layers N --heads N
 *       --intermediate N --vocab-size N --max-pos N --type-vocab N] [--dtype f32|f16|bf16] [--seed N]
 *       [--vocab FILE] [--legacy-layernorm-names] [--no-bert-prefix]
 *
 * Every tensor's values depend only on the seed and the tensor's (modern) name, so the same seed gives
 * the same weights in every dtype (f16/bf16 files hold the f32 values rounded to nearest even).
 * Random numbers: splitmix64 seeded per tensor from the seed and an FNV-1a hash of the name. */
#include "safetensors.h"
#include "vocab.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef BQ_DEFAULT_VOCAB
#define BQ_DEFAULT_VOCAB "vocab/vocab.txt"
#endif

#define MAX_WORKERS 32

typedef enum { INIT_WEIGHT, INIT_BIAS, INIT_LN_GAIN, INIT_LN_BIAS, INIT_POSITION_IDS } init_kind;

typedef struct {
    char name[128];      /* as written (may use gamma/beta) */
    char seed_name[128]; /* modern name: keys the random stream */
    int ndim;
    int64_t shape[2];
    init_kind init;
    uint64_t begin, end;
} tensor_spec;

typedef struct {
    int hidden, layers, heads, intermediate, vocab_size, max_pos, type_vocab;
    bq_dtype dtype;
    uint64_t seed;
    bool legacy_names; /* LayerNorm gamma/beta instead of weight/bias, as older checkpoints */
    bool no_prefix;    /* names without "bert.", as a bare BertModel saves them */
    const char *out_dir;
    const char *vocab_path;
    int shards; /* > 1: model-0000K-of-0000N.safetensors + model.safetensors.index.json */
} options;

static void usage(FILE *f) {
    fprintf(f,
            "usage: bertqa-make-model --out DIR [--preset tiny|base|large] [--hidden N] [--layers N]\n"
            "         [--heads N] [--intermediate N] [--vocab-size N] [--max-pos N] [--type-vocab N]\n"
            "         [--dtype f32|f16|bf16] [--seed N] [--vocab FILE] [--legacy-layernorm-names]\n"
            "         [--no-bert-prefix] [--shards N]\n"
            "Writes DIR/config.json, DIR/model.safetensors and DIR/vocab.txt: a seeded random\n"
            "BertForQuestionAnswering checkpoint. Default preset tiny (hidden 32, 2 layers, 4 heads,\n"
            "intermediate 64); base = 768/12/12/3072; large = 1024/24/16/4096. vocab-size defaults to\n"
            "the number of tokens in the vocabulary file (default %s).\n"
            "--shards N (N > 1) writes the weights as N files model-0000K-of-0000N.safetensors listed\n"
            "by model.safetensors.index.json, as Hugging Face's save_pretrained with a max_shard_size.\n",
            bq_default_vocab_path(BQ_DEFAULT_VOCAB));
}

/* ---- deterministic random numbers: splitmix64 + Box-Muller -------------------------------------- */

typedef struct {
    uint64_t state;
    bool has_spare;
    double spare;
} rng;

/* Uniform in [-1, 1). */
static double rng_uniform_signed(rng *r) {
    return (double)(bq_splitmix64(&r->state) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* Standard normal, Marsaglia's polar form of Box-Muller (no trigonometry: fast enough for BERT-large). */
static double rng_normal(rng *r) {
    if (r->has_spare) {
        r->has_spare = false;
        return r->spare;
    }
    double u, v, s;
    do {
        u = rng_uniform_signed(r);
        v = rng_uniform_signed(r);
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double scale = sqrt(-2.0 * log(s) / s);
    r->spare = v * scale;
    r->has_spare = true;
    return u * scale;
}

/* Values are generated in independent blocks so that blocks can be filled in parallel; block b of a
 * tensor has its own stream, keyed by the seed, the tensor's name and b. */
#define BLOCK_ELEMS 65536

static uint64_t name_hash(const char *name) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

static rng rng_for_block(uint64_t seed, uint64_t hash, uint64_t block) {
    uint64_t s = seed ^ hash;
    s = bq_splitmix64(&s) ^ (block * 0xD1B54A32D192ED03ull);
    rng r = {bq_splitmix64(&s), false, 0.0};
    return r;
}

/* ---- the tensor list -------------------------------------------------------------------------- */

static void add_tensor(tensor_spec *list, int *n, const options *o, const char *name, int64_t d0, int64_t d1,
                       init_kind init) {
    tensor_spec *t = &list[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->seed_name, sizeof t->seed_name, "%s", name);
    snprintf(t->name, sizeof t->name, "%s", name);
    const char *ln = strstr(name, "LayerNorm.");
    if (o->legacy_names && ln) {
        const char *suffix = ln + strlen("LayerNorm.");
        snprintf(t->name, sizeof t->name, "%.*sLayerNorm.%s", (int)(ln - name), name,
                 strcmp(suffix, "weight") == 0 ? "gamma" : "beta");
    }
    if (o->no_prefix && strncmp(t->name, "bert.", 5) == 0) memmove(t->name, t->name + 5, strlen(t->name + 5) + 1);
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->init = init;
}

static int build_tensor_list(const options *o, tensor_spec **out) {
    int cap = 8 + 16 * o->layers;
    tensor_spec *list = calloc((size_t)cap, sizeof *list);
    if (!list) return -1;
    int n = 0;
    int64_t H = o->hidden, I = o->intermediate;
    add_tensor(list, &n, o, "bert.embeddings.position_ids", 1, o->max_pos, INIT_POSITION_IDS);
    add_tensor(list, &n, o, "bert.embeddings.word_embeddings.weight", o->vocab_size, H, INIT_WEIGHT);
    add_tensor(list, &n, o, "bert.embeddings.position_embeddings.weight", o->max_pos, H, INIT_WEIGHT);
    add_tensor(list, &n, o, "bert.embeddings.token_type_embeddings.weight", o->type_vocab, H, INIT_WEIGHT);
    add_tensor(list, &n, o, "bert.embeddings.LayerNorm.weight", H, 0, INIT_LN_GAIN);
    add_tensor(list, &n, o, "bert.embeddings.LayerNorm.bias", H, 0, INIT_LN_BIAS);
    static const struct {
        const char *suffix;
        char rows, cols; /* 'H' or 'I'; cols 0 for vectors */
        init_kind init;
    } parts[] = {
        {"attention.self.query.weight", 'H', 'H', INIT_WEIGHT},
        {"attention.self.query.bias", 'H', 0, INIT_BIAS},
        {"attention.self.key.weight", 'H', 'H', INIT_WEIGHT},
        {"attention.self.key.bias", 'H', 0, INIT_BIAS},
        {"attention.self.value.weight", 'H', 'H', INIT_WEIGHT},
        {"attention.self.value.bias", 'H', 0, INIT_BIAS},
        {"attention.output.dense.weight", 'H', 'H', INIT_WEIGHT},
        {"attention.output.dense.bias", 'H', 0, INIT_BIAS},
        {"attention.output.LayerNorm.weight", 'H', 0, INIT_LN_GAIN},
        {"attention.output.LayerNorm.bias", 'H', 0, INIT_LN_BIAS},
        {"intermediate.dense.weight", 'I', 'H', INIT_WEIGHT},
        {"intermediate.dense.bias", 'I', 0, INIT_BIAS},
        {"output.dense.weight", 'H', 'I', INIT_WEIGHT},
        {"output.dense.bias", 'H', 0, INIT_BIAS},
        {"output.LayerNorm.weight", 'H', 0, INIT_LN_GAIN},
        {"output.LayerNorm.bias", 'H', 0, INIT_LN_BIAS},
    };
    for (int l = 0; l < o->layers; l++) {
        for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
            char name[128];
            snprintf(name, sizeof name, "bert.encoder.layer.%d.%s", l, parts[p].suffix);
            int64_t rows = parts[p].rows == 'H' ? H : I;
            int64_t cols = parts[p].cols == 0 ? 0 : parts[p].cols == 'H' ? H : I;
            add_tensor(list, &n, o, name, rows, cols, parts[p].init);
        }
    }
    add_tensor(list, &n, o, "qa_outputs.weight", 2, H, INIT_WEIGHT);
    add_tensor(list, &n, o, "qa_outputs.bias", 2, 0, INIT_BIAS);
    *out = list;
    return n;
}

static int64_t elements_of(const tensor_spec *t) { return t->ndim == 2 ? t->shape[0] * t->shape[1] : t->shape[0]; }

/* Bytes of the tensor's data: position_ids are I64, the weights the --dtype. */
static uint64_t bytes_of(const tensor_spec *t, const options *o) {
    return (uint64_t)elements_of(t) * (t->init == INIT_POSITION_IDS ? 8 : bq_dtype_size(o->dtype));
}

/* The safetensors serializer orders data by dtype (wider first) and then by name. */
static int spec_cmp(const void *a, const void *b) {
    const tensor_spec *x = a, *y = b;
    bool xi = x->init == INIT_POSITION_IDS, yi = y->init == INIT_POSITION_IDS;
    if (xi != yi) return xi ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ---- writing ------------------------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

static bool sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool sb_printf(strbuf *sb, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(sb->buf ? sb->buf + sb->len : NULL, sb->buf ? sb->cap - sb->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return false;
        if (sb->buf && sb->len + (size_t)n < sb->cap) {
            sb->len += (size_t)n;
            return true;
        }
        if (!bq_grow((void **)&sb->buf, &sb->cap, sb->len + (size_t)n + 1, 1)) return false;
    }
}

static int write_all(FILE *f, const void *p, size_t n, const char *path) {
    if (fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "bertqa-make-model: error writing '%s': %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

typedef struct {
    const tensor_spec *t;
    const options *o;
    uint64_t hash;
    int64_t first_block, n_blocks; /* blocks of this round */
    int worker, n_workers;
    unsigned char *out; /* n_blocks * BLOCK_ELEMS elements of the output dtype */
} fill_job;

static void *fill_blocks(void *arg) {
    const fill_job *job = arg;
    const tensor_spec *t = job->t;
    int64_t n = elements_of(t);
    size_t esize = bq_dtype_size(job->o->dtype);
    for (int64_t b = job->worker; b < job->n_blocks; b += job->n_workers) {
        int64_t block = job->first_block + b;
        int64_t begin = block * BLOCK_ELEMS, end = begin + BLOCK_ELEMS < n ? begin + BLOCK_ELEMS : n;
        rng r = rng_for_block(job->o->seed, job->hash, (uint64_t)block);
        unsigned char *dst = job->out + (size_t)b * BLOCK_ELEMS * esize;
        for (int64_t i = begin; i < end; i++, dst += esize) {
            double z = rng_normal(&r);
            float v = (float)(t->init == INIT_LN_GAIN ? 1.0 + 0.02 * z : 0.02 * z);
            uint32_t bits;
            if (job->o->dtype == BQ_DTYPE_F32) memcpy(&bits, &v, 4);
            else if (job->o->dtype == BQ_DTYPE_F16) bits = bq_f32_to_f16(v);
            else bits = bq_f32_to_bf16(v);
            for (size_t k = 0; k < esize; k++) dst[k] = (unsigned char)(bits >> (8 * k)); /* little-endian */
        }
    }
    return NULL;
}

/* `chunk` holds `chunk_blocks` blocks of BLOCK_ELEMS elements of up to 8 bytes. */
static int write_tensor_data(FILE *f, const char *path, const tensor_spec *t, const options *o,
                             unsigned char *chunk, int64_t chunk_blocks, int n_workers) {
    int64_t n = elements_of(t);
    if (t->init == INIT_POSITION_IDS) {
        for (int64_t i = 0; i < n;) {
            size_t k = 0;
            for (; k < (size_t)BLOCK_ELEMS && i < n; k++, i++)
                for (int b = 0; b < 8; b++) chunk[8 * k + (size_t)b] = (unsigned char)((uint64_t)i >> (8 * b));
            if (write_all(f, chunk, 8 * k, path)) return -1;
        }
        return 0;
    }
    size_t esize = bq_dtype_size(o->dtype);
    int64_t total_blocks = (n + BLOCK_ELEMS - 1) / BLOCK_ELEMS;
    fill_job jobs[MAX_WORKERS];
    pthread_t threads[MAX_WORKERS];
    for (int64_t first = 0; first < total_blocks; first += chunk_blocks) {
        int64_t blocks = total_blocks - first < chunk_blocks ? total_blocks - first : chunk_blocks;
        int workers = blocks < n_workers ? (int)blocks : n_workers;
        int started = 0;
        for (int w = 0; w < workers; w++) {
            jobs[w] = (fill_job){t, o, name_hash(t->seed_name), first, blocks, w, workers, chunk};
            if (w > 0 && pthread_create(&threads[w], NULL, fill_blocks, &jobs[w]) != 0) break;
            started = w + 1;
        }
        if (started < workers) { /* could not start every thread: the rest run here */
            for (int w = started; w < workers; w++) fill_blocks(&jobs[w]);
        }
        fill_blocks(&jobs[0]);
        for (int w = 1; w < started; w++) pthread_join(threads[w], NULL);
        int64_t elems = first + blocks == total_blocks ? n - first * BLOCK_ELEMS : blocks * BLOCK_ELEMS;
        if (write_all(f, chunk, (size_t)elems * esize, path)) return -1;
    }
    return 0;
}

static int copy_file(const char *from, const char *to) {
    char *data;
    size_t len;
    bq_err err;
    if (bq_read_file(from, &data, &len, &err) != BQ_OK) {
        fprintf(stderr, "bertqa-make-model: vocabulary: %s\n", err.message);
        return -1;
    }
    FILE *f = fopen(to, "wb");
    if (!f) {
        fprintf(stderr, "bertqa-make-model: cannot create '%s': %s\n", to, strerror(errno));
        free(data);
        return -1;
    }
    int rc = write_all(f, data, len, to);
    if (fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "bertqa-make-model: error writing '%s': %s\n", to, strerror(errno));
        rc = -1;
    }
    free(data);
    return rc;
}

/* Number of tokens in vocab.txt: lines, counting a last line without a newline; -1 (after a
 * message) when bertqa-gpu would refuse the file (empty, no [PAD] / [UNK] / [CLS] / [SEP], ...),
 * so that no checkpoint is written that the program cannot load. */
static int count_vocab_lines(const char *path) {
    char *data;
    size_t len;
    bq_err err;
    bq_vocab *vocab = NULL;
    if (bq_vocab_load(path, &vocab, &err) != BQ_OK) {
        fprintf(stderr, "bertqa-make-model: vocabulary: %s\n", err.message);
        return -1;
    }
    bq_vocab_free(vocab);
    if (bq_read_file(path, &data, &len, &err) != BQ_OK) {
        fprintf(stderr, "bertqa-make-model: vocabulary: %s\n", err.message);
        return -1;
    }
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += data[i] == '\n';
    if (len > 0 && data[len - 1] != '\n') lines++;
    free(data);
    return lines;
}

static int write_config(const options *o, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bertqa-make-model: cannot create '%s': %s\n", path, strerror(errno));
        return -1;
    }
    const char *torch_dtype = o->dtype == BQ_DTYPE_F32 ? "float32" : o->dtype == BQ_DTYPE_F16 ? "float16" : "bfloat16";
    fprintf(f,
            "{\n"
            "  \"architectures\": [\n    \"BertForQuestionAnswering\"\n  ],\n"
            "  \"attention_probs_dropout_prob\": 0.1,\n"
            "  \"bertqa_random_weights\": {\"seed\": %llu},\n"
            "  \"classifier_dropout\": null,\n"
            "  \"hidden_act\": \"gelu\",\n"
            "  \"hidden_dropout_prob\": 0.1,\n"
            "  \"hidden_size\": %d,\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"intermediate_size\": %d,\n"
            "  \"layer_norm_eps\": 1e-12,\n"
            "  \"max_position_embeddings\": %d,\n"
            "  \"model_type\": \"bert\",\n"
            "  \"num_attention_heads\": %d,\n"
            "  \"num_hidden_layers\": %d,\n"
            "  \"pad_token_id\": 0,\n"
            "  \"position_embedding_type\": \"absolute\",\n"
            "  \"torch_dtype\": \"%s\",\n"
            "  \"transformers_version\": \"4.57.1\",\n"
            "  \"type_vocab_size\": %d,\n"
            "  \"use_cache\": true,\n"
            "  \"vocab_size\": %d\n"
            "}\n",
            (unsigned long long)o->seed, o->hidden, o->intermediate, o->max_pos, o->heads, o->layers,
            torch_dtype, o->type_vocab,
            o->vocab_size);
    if (ferror(f) | (fclose(f) != 0)) {
        fprintf(stderr, "bertqa-make-model: error writing '%s'\n", path);
        return -1;
    }
    return 0;
}

/* One safetensors file holding list[0..n), in that order. */
static int write_safetensors_file(const options *o, const char *path, tensor_spec *list, int n) {
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        list[i].begin = offset;
        offset += bytes_of(&list[i], o);
        list[i].end = offset;
    }
    uint64_t total = offset;

    strbuf header = {0};
    bool ok = sb_printf(&header, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n && ok; i++) {
        const tensor_spec *t = &list[i];
        const char *dtype = t->init == INIT_POSITION_IDS ? "I64" : bq_dtype_name(o->dtype);
        ok = sb_printf(&header, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", t->name, dtype, (long long)t->shape[0]);
        if (ok && t->ndim == 2) ok = sb_printf(&header, ",%lld", (long long)t->shape[1]);
        if (ok)
            ok = sb_printf(&header, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)t->begin,
                           (unsigned long long)t->end);
    }
    if (ok) ok = sb_printf(&header, "}");
    while (ok && header.len % 8 != 0) ok = sb_printf(&header, " "); /* data starts 8-byte aligned */
    if (!ok) {
        fprintf(stderr, "bertqa-make-model: out of memory building the header\n");
        free(header.buf);
        return -1;
    }

    size_t tmp_len = strlen(path) + 8;
    char *tmp_path = malloc(tmp_len);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n_workers = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
    int64_t chunk_blocks = 4 * n_workers;
    unsigned char *chunk = malloc((size_t)chunk_blocks * BLOCK_ELEMS * 8);
    FILE *f = NULL;
    int rc = -1;
    if (!tmp_path || !chunk) {
        fprintf(stderr, "bertqa-make-model: out of memory\n");
        goto done;
    }
    snprintf(tmp_path, tmp_len, "%s.tmp", path); /* renamed into place only when complete */
    f = fopen(tmp_path, "wb");
    if (!f) {
        fprintf(stderr, "bertqa-make-model: cannot create '%s': %s\n", tmp_path, strerror(errno));
        goto done;
    }
    unsigned char len_bytes[8];
    for (int b = 0; b < 8; b++) len_bytes[b] = (unsigned char)((uint64_t)header.len >> (8 * b));
    if (write_all(f, len_bytes, 8, tmp_path) || write_all(f, header.buf, header.len, tmp_path)) goto done;
    bool progress = total > (256ull << 20); /* only big models take long enough to need it */
    int shown = -1;
    for (int i = 0; i < n; i++) {
        if (write_tensor_data(f, tmp_path, &list[i], o, chunk, chunk_blocks, n_workers)) goto done;
        int percent = (int)(100.0 * (double)list[i].end / (double)total);
        if (progress && percent / 10 != shown / 10) {
            fprintf(stderr, "\rbertqa-make-model: writing %s: %3d%%", path, percent);
            shown = percent;
        }
    }
    if (progress) fprintf(stderr, "\n");
    if (fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "bertqa-make-model: error writing '%s': %s\n", tmp_path, strerror(errno));
        goto done;
    }
    f = NULL;
    if (rename(tmp_path, path) != 0) {
        fprintf(stderr, "bertqa-make-model: cannot rename '%s' to '%s': %s\n", tmp_path, path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (f) {
        fclose(f);
        remove(tmp_path);
    }
    free(chunk);
    free(tmp_path);
    free(header.buf);
    return rc;
}

static int shard_cmp_name(const void *a, const void *b) {
    return strcmp((*(const tensor_spec *const *)a)->name, (*(const tensor_spec *const *)b)->name);
}

/* DIR/model.safetensors, or with shards > 1 the layout of Hugging Face's save_pretrained with a
 * max_shard_size: DIR/model-0000K-of-0000N.safetensors, the tensors (in file order) cut into N runs
 * of about equal bytes, and DIR/model.safetensors.index.json mapping each tensor to its shard. */
static int write_weights(const options *o) {
    tensor_spec *list = NULL;
    int n = build_tensor_list(o, &list);
    if (n < 0) {
        fprintf(stderr, "bertqa-make-model: out of memory\n");
        return -1;
    }
    qsort(list, (size_t)n, sizeof *list, spec_cmp);
    size_t plen = strlen(o->out_dir) + 64;
    char *path = malloc(plen);
    int *shard_of = calloc((size_t)n, sizeof *shard_of);
    tensor_spec **by_name = calloc((size_t)n, sizeof *by_name);
    strbuf index = {0};
    int rc = -1;
    if (!path || !shard_of || !by_name) {
        fprintf(stderr, "bertqa-make-model: out of memory\n");
        goto done;
    }
    if (o->shards > n) {
        fprintf(stderr, "bertqa-make-model: --shards %d is more than the %d tensors\n", o->shards, n);
        goto done;
    }
    /* a stale file of the other layout would be loaded instead, or beside, the new one (Hugging
     * Face's loader, like ours, takes model.safetensors first) */
    snprintf(path, plen, "%s/%s", o->out_dir, o->shards == 1 ? "model.safetensors.index.json" : "model.safetensors");
    if (remove(path) != 0 && errno != ENOENT) {
        fprintf(stderr, "bertqa-make-model: cannot remove the stale '%s': %s\n", path, strerror(errno));
        goto done;
    }
    if (o->shards == 1) {
        snprintf(path, plen, "%s/model.safetensors", o->out_dir);
        rc = write_safetensors_file(o, path, list, n);
        goto done;
    }
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += bytes_of(&list[i], o);
    /* tensor i goes to the shard its first byte falls in, every shard keeping at least one tensor */
    uint64_t before = 0;
    for (int i = 0, shard = 0; i < n; i++) {
        int by_bytes = (int)(before * (uint64_t)o->shards / (total ? total : 1));
        /* the lowest shard that leaves a tensor after this one for each later shard */
        int room = o->shards - 1 - (n - 1 - i);
        shard = by_bytes > shard ? by_bytes : shard;
        if (shard < room) shard = room;
        if (shard > o->shards - 1) shard = o->shards - 1;
        if (i > 0 && shard > shard_of[i - 1] + 1) shard = shard_of[i - 1] + 1;
        shard_of[i] = shard;
        before += bytes_of(&list[i], o);
    }
    for (int first = 0; first < n;) {
        int last = first;
        while (last + 1 < n && shard_of[last + 1] == shard_of[first]) last++;
        snprintf(path, plen, "%s/model-%05d-of-%05d.safetensors", o->out_dir, shard_of[first] + 1, o->shards);
        if (write_safetensors_file(o, path, list + first, last + 1 - first)) goto done;
        first = last + 1;
    }
    for (int i = 0; i < n; i++) by_name[i] = &list[i];
    qsort(by_name, (size_t)n, sizeof *by_name, shard_cmp_name);
    bool ok = sb_printf(&index, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {",
                        (unsigned long long)total);
    for (int i = 0; i < n && ok; i++)
        ok = sb_printf(&index, "%s\n    \"%s\": \"model-%05d-of-%05d.safetensors\"", i ? "," : "", by_name[i]->name,
                       shard_of[by_name[i] - list] + 1, o->shards);
    if (ok) ok = sb_printf(&index, "\n  }\n}\n");
    if (!ok) {
        fprintf(stderr, "bertqa-make-model: out of memory building the index\n");
        goto done;
    }
    snprintf(path, plen, "%s/model.safetensors.index.json", o->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bertqa-make-model: cannot create '%s': %s\n", path, strerror(errno));
        goto done;
    }
    int werr = write_all(f, index.buf, index.len, path);
    if (fclose(f) != 0 && !werr) {
        fprintf(stderr, "bertqa-make-model: error writing '%s': %s\n", path, strerror(errno));
        werr = -1;
    }
    rc = werr ? -1 : 0;
done:
    free(index.buf);
    free(by_name);
    free(shard_of);
    free(path);
    free(list);
    return rc;
}

/* ---- arguments -------------------------------------------------------------------------------- */

static bool parse_int(const char *flag, const char *s, long max, int *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < 1 || v > max) {
        fprintf(stderr, "bertqa-make-model: %s needs an integer in [1, %ld], got '%s'\n", flag, max, s ? s : "");
        return false;
    }
    *out = (int)v;
    return true;
}

int main(int argc, char **argv) {
    options o = {32, 2, 4, 64, 0, 512, 2, BQ_DTYPE_F32, 0, false, false, NULL, bq_default_vocab_path(BQ_DEFAULT_VOCAB), 1};
    /* the preset first, so explicit sizes override it wherever they appear */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--preset") != 0) continue;
        const char *p = argv[i + 1];
        if (strcmp(p, "tiny") == 0) o.hidden = 32, o.layers = 2, o.heads = 4, o.intermediate = 64;
        else if (strcmp(p, "base") == 0) o.hidden = 768, o.layers = 12, o.heads = 12, o.intermediate = 3072;
        else if (strcmp(p, "large") == 0) o.hidden = 1024, o.layers = 24, o.heads = 16, o.intermediate = 4096;
        else {
            fprintf(stderr, "bertqa-make-model: unknown preset '%s' (tiny, base or large)\n", p);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes_value = true;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--legacy-layernorm-names") == 0) {
            o.legacy_names = true;
            takes_value = false;
        } else if (strcmp(a, "--no-bert-prefix") == 0) {
            o.no_prefix = true;
            takes_value = false;
        } else if (!v) {
            fprintf(stderr, "bertqa-make-model: %s needs a value (or is unknown)\n", a);
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--out") == 0) o.out_dir = v;
        else if (strcmp(a, "--preset") == 0) {
        } else if (strcmp(a, "--hidden") == 0) ok = parse_int(a, v, 1 << 16, &o.hidden);
        else if (strcmp(a, "--layers") == 0) ok = parse_int(a, v, 1024, &o.layers);
        else if (strcmp(a, "--heads") == 0) ok = parse_int(a, v, 1 << 16, &o.heads);
        else if (strcmp(a, "--intermediate") == 0) ok = parse_int(a, v, 1 << 20, &o.intermediate);
        else if (strcmp(a, "--vocab-size") == 0) ok = parse_int(a, v, 1 << 24, &o.vocab_size);
        else if (strcmp(a, "--max-pos") == 0) ok = parse_int(a, v, 1 << 20, &o.max_pos);
        else if (strcmp(a, "--type-vocab") == 0) ok = parse_int(a, v, 1 << 16, &o.type_vocab);
        else if (strcmp(a, "--vocab") == 0) o.vocab_path = v;
        else if (strcmp(a, "--shards") == 0) ok = parse_int(a, v, 100000, &o.shards);
        else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            o.seed = strtoull(v, &end, 0);
            ok = !errno && *end == '\0' && end != v && v[0] != '-';
            if (!ok) fprintf(stderr, "bertqa-make-model: --seed needs a non-negative integer, got '%s'\n", v);
        } else if (strcmp(a, "--dtype") == 0) {
            if (strcmp(v, "f32") == 0) o.dtype = BQ_DTYPE_F32;
            else if (strcmp(v, "f16") == 0) o.dtype = BQ_DTYPE_F16;
            else if (strcmp(v, "bf16") == 0) o.dtype = BQ_DTYPE_BF16;
            else {
                fprintf(stderr, "bertqa-make-model: --dtype must be f32, f16 or bf16, got '%s'\n", v);
                ok = false;
            }
        } else {
            fprintf(stderr, "bertqa-make-model: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) return 2;
        if (takes_value) i++;
    }
    if (!o.out_dir) {
        fprintf(stderr, "bertqa-make-model: --out DIR is required\n");
        usage(stderr);
        return 2;
    }
    if (o.hidden % o.heads != 0) {
        fprintf(stderr, "bertqa-make-model: hidden size %d is not a multiple of %d heads\n", o.hidden, o.heads);
        return 2;
    }
    int vocab_lines = count_vocab_lines(o.vocab_path);
    if (vocab_lines < 0) return 1;
    if (o.vocab_size == 0) o.vocab_size = vocab_lines;
    if (o.vocab_size < vocab_lines) {
        fprintf(stderr, "bertqa-make-model: --vocab-size %d is smaller than the %d tokens of '%s'\n", o.vocab_size,
                vocab_lines, o.vocab_path);
        return 2;
    }
    if (mkdir(o.out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "bertqa-make-model: cannot create '%s': %s\n", o.out_dir, strerror(errno));
        return 1;
    }
    size_t plen = strlen(o.out_dir) + 32;
    char *path = malloc(plen);
    if (!path) return 1;
    int rc = 0;
    snprintf(path, plen, "%s/config.json", o.out_dir);
    if (!rc) rc = write_config(&o, path);
    snprintf(path, plen, "%s/vocab.txt", o.out_dir);
    if (!rc) rc = copy_file(o.vocab_path, path);
    if (!rc) rc = write_weights(&o);
    free(path);
    return rc ? 1 : 0;
}
