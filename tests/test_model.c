/* test_model.c - config.json parsing and checkpoint loading. Checkpoints come from bertqa-make-model;
 * the f32 weights are checked against statistics computed by Hugging Face's safetensors reader
 * (tests/data/tiny_model_seed7.txt, tools/gen_model_golden.py), the f16/bf16 ones against the f32
 * weights rounded to nearest even (conversions tested in test_safetensors). */
#include "test_support.h"

#include "model.h"
#include "safetensors.h"
#include "tokenizer_files.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef BQ_MAKE_MODEL
#error "BQ_MAKE_MODEL (path of bertqa-make-model) must be defined by the build"
#endif

static char *tmpdir;
static char dir_f32[4096], dir_f16[4096], dir_bf16[4096], dir_legacy[4096], dir_bare[4096], dir_sharded[4096];

static int make_model(const char *out, const char *extra) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --out '%s' --preset tiny --seed 7 %s 2>&1", BQ_MAKE_MODEL, out, extra);
    int status = -1;
    char *output = bq_test_run(cmd, &status);
    if (status != 0) print_error("%s failed (%d): %s\n", cmd, status, output ? output : "");
    free(output);
    return status == 0 ? 0 : -1;
}

static int setup(void **state) {
    (void)state;
    tmpdir = bq_test_tmpdir("model");
    if (!tmpdir) return -1;
    snprintf(dir_f32, sizeof dir_f32, "%s/f32", tmpdir);
    snprintf(dir_f16, sizeof dir_f16, "%s/f16", tmpdir);
    snprintf(dir_bf16, sizeof dir_bf16, "%s/bf16", tmpdir);
    snprintf(dir_legacy, sizeof dir_legacy, "%s/legacy", tmpdir);
    snprintf(dir_bare, sizeof dir_bare, "%s/bare", tmpdir);
    snprintf(dir_sharded, sizeof dir_sharded, "%s/sharded", tmpdir);
    if (make_model(dir_f32, "") || make_model(dir_f16, "--dtype f16") || make_model(dir_bf16, "--dtype bf16") ||
        make_model(dir_legacy, "--legacy-layernorm-names") ||
        make_model(dir_bare, "--no-bert-prefix --legacy-layernorm-names") || make_model(dir_sharded, "--shards 3"))
        return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    free(tmpdir);
    return 0;
}

/* Run a shell command that must succeed. */
static void shell(const char *cmd) {
    int status = -1;
    char *output = bq_test_run(cmd, &status);
    if (status != 0) print_error("%s: %s\n", cmd, output ? output : "");
    free(output);
    assert_int_equal(status, 0);
}

/* Copy a checkpoint folder to `name` under tmpdir; returns a static path. */
static const char *copy_model(const char *from, const char *name) {
    static char to[4096];
    snprintf(to, sizeof to, "%s/%s", tmpdir, name);
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    shell(cmd);
    return to;
}

/* Replace every `old` in dir/file (at least one must be there). */
static void replace_in_file(const char *dir, const char *file, const char *old, const char *new_text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *text;
    size_t len;
    bq_err err;
    assert_int_equal(bq_read_file(path, &text, &len, &err), BQ_OK);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    /* binary-safe search: model.safetensors starts with NUL bytes */
    size_t old_len = strlen(old), done = 0, found = 0;
    for (size_t at = 0; at + old_len <= len; at++) {
        if (memcmp(text + at, old, old_len) != 0) continue;
        fwrite(text + done, 1, at - done, f);
        fputs(new_text, f);
        done = at + old_len;
        at = done - 1;
        found++;
    }
    fwrite(text + done, 1, len - done, f);
    fclose(f);
    free(text);
    if (!found) print_error("'%s' not found in %s\n", old, path);
    assert_true(found > 0);
}

static void remove_file(const char *dir, const char *file) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    assert_int_equal(remove(path), 0);
}

static bq_model *load_ok(const char *dir, const char *fallback) {
    bq_model *m = NULL;
    bq_err err;
    bq_status s = bq_model_load(dir, fallback, &m, &err);
    if (s != BQ_OK) print_error("loading %s: %s\n", dir, err.message);
    assert_int_equal(s, BQ_OK);
    assert_non_null(m);
    return m;
}

static void load_fails(const char *dir, const char *fallback, bq_status want, const char *n1, const char *n2) {
    bq_model *m = (bq_model *)0x1;
    bq_err err;
    bq_err_clear(&err);
    bq_status s = bq_model_load(dir, fallback, &m, &err);
    if (s != want || (n1 && !strstr(err.message, n1)) || (n2 && !strstr(err.message, n2)))
        print_error("status %d (want %d): %s\n", s, want, err.message);
    assert_int_equal(s, want);
    assert_null(m);
    if (n1) assert_non_null(strstr(err.message, n1));
    if (n2) assert_non_null(strstr(err.message, n2));
}

/* A copy of `from` named `name` with one edit (every `old` in `file` becomes `new_text`) must fail
 * to load with `want` and a message holding n1 and n2. */
static void edited_fails(const char *from, const char *name, const char *file, const char *old,
                         const char *new_text, bq_status want, const char *n1, const char *n2) {
    const char *d = copy_model(from, name);
    replace_in_file(d, file, old, new_text);
    load_fails(d, NULL, want, n1, n2);
}

/* The model's tensor called `name` (modern Hugging Face name) and its element count. */
static const float *model_tensor(const bq_model *m, const char *name, size_t *n) {
    const bq_config *c = &m->config;
    size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    struct {
        const char *name;
        const float *p;
        size_t n;
    } top[] = {
        {"bert.embeddings.word_embeddings.weight", m->word_emb, (size_t)c->vocab_size * H},
        {"bert.embeddings.position_embeddings.weight", m->pos_emb, (size_t)c->max_position_embeddings * H},
        {"bert.embeddings.token_type_embeddings.weight", m->type_emb, (size_t)c->type_vocab_size * H},
        {"bert.embeddings.LayerNorm.weight", m->emb_ln_g, H},
        {"bert.embeddings.LayerNorm.bias", m->emb_ln_b, H},
        {"qa_outputs.weight", m->qa_w, 2 * H},
        {"qa_outputs.bias", m->qa_b, 2},
    };
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
        if (strcmp(name, top[i].name) == 0) {
            *n = top[i].n;
            return top[i].p;
        }
    }
    int layer;
    char suffix[128];
    if (sscanf(name, "bert.encoder.layer.%d.%127s", &layer, suffix) != 2 || layer < 0 || layer >= c->num_layers)
        return NULL;
    const bq_layer_weights *w = &m->layers[layer];
    struct {
        const char *suffix;
        const float *p;
        size_t n;
    } parts[] = {
        {"attention.self.query.weight", w->q_w, H * H},       {"attention.self.query.bias", w->q_b, H},
        {"attention.self.key.weight", w->k_w, H * H},         {"attention.self.key.bias", w->k_b, H},
        {"attention.self.value.weight", w->v_w, H * H},       {"attention.self.value.bias", w->v_b, H},
        {"attention.output.dense.weight", w->attn_out_w, H * H}, {"attention.output.dense.bias", w->attn_out_b, H},
        {"attention.output.LayerNorm.weight", w->attn_ln_g, H}, {"attention.output.LayerNorm.bias", w->attn_ln_b, H},
        {"intermediate.dense.weight", w->ffn_in_w, I * H},    {"intermediate.dense.bias", w->ffn_in_b, I},
        {"output.dense.weight", w->ffn_out_w, H * I},         {"output.dense.bias", w->ffn_out_b, H},
        {"output.LayerNorm.weight", w->ffn_ln_g, H},          {"output.LayerNorm.bias", w->ffn_ln_b, H},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (strcmp(suffix, parts[i].suffix) == 0) {
            *n = parts[i].n;
            return parts[i].p;
        }
    }
    return NULL;
}

#define N_TENSORS_TINY (5 + 16 * 2 + 2)

/* Every weight of `got` equals the matching weight of `ref` passed through `round_trip`. */
static void compare_models(const bq_model *got, const bq_model *ref, uint16_t (*to)(float), float (*from)(uint16_t)) {
    FILE *f = fopen(bq_test_src_path("tests/data/tiny_model_seed7.txt"), "r");
    assert_non_null(f);
    char line[4096];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256];
        if (line[0] == '#' || sscanf(line, "%255s", name) != 1) continue;
        size_t n_got = 0, n_ref = 0;
        const float *a = model_tensor(got, name, &n_got), *b = model_tensor(ref, name, &n_ref);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(n_got, n_ref);
        for (size_t i = 0; i < n_got; i++) {
            float want = to ? from(to(b[i])) : b[i];
            if (a[i] != want) print_error("%s[%zu]: %.9g, want %.9g\n", name, i, a[i], want);
            assert_true(a[i] == want);
        }
        seen++;
    }
    fclose(f);
    assert_int_equal(seen, N_TENSORS_TINY);
}

/* ---- config.json -------------------------------------------------------------------------------- */

static const char *large_config =
    "{\"hidden_size\": 1024, \"num_hidden_layers\": 24, \"num_attention_heads\": 16, "
    "\"intermediate_size\": 4096, \"max_position_embeddings\": 512, \"type_vocab_size\": 2, "
    "\"vocab_size\": 30522, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\"}";

static bq_status parse(const char *json, bq_config *c, bq_err *err) {
    return bq_config_parse(json, strlen(json), "cfg.json", c, err);
}

/* Replace the first `old` in the large config and expect a failure naming `needle`. */
static void config_fails(const char *old, const char *new_text, bq_status want, const char *needle) {
    char json[2048];
    const char *at = strstr(large_config, old);
    assert_non_null(at);
    snprintf(json, sizeof json, "%.*s%s%s", (int)(at - large_config), large_config, new_text, at + strlen(old));
    bq_config c;
    bq_err err;
    bq_status s = parse(json, &c, &err);
    if (s != want || !strstr(err.message, needle) || !strstr(err.message, "cfg.json"))
        print_error("%s -> %d: %s\n", json, s, err.message);
    assert_int_equal(s, want);
    assert_non_null(strstr(err.message, needle));
    assert_non_null(strstr(err.message, "cfg.json"));
}

static void test_config_parse(void **state) {
    (void)state;
    bq_config c;
    bq_err err;
    assert_int_equal(parse(large_config, &c, &err), BQ_OK);
    assert_int_equal(c.hidden_size, 1024);
    assert_int_equal(c.num_layers, 24);
    assert_int_equal(c.num_heads, 16);
    assert_int_equal(c.intermediate_size, 4096);
    assert_int_equal(c.max_position_embeddings, 512);
    assert_int_equal(c.type_vocab_size, 2);
    assert_int_equal(c.vocab_size, 30522);
    assert_true(c.layer_norm_eps == 1e-12f);

    config_fails("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"gelu_new\"", BQ_ERR_UNSUPPORTED, "gelu_new");
    config_fails("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"relu\"", BQ_ERR_UNSUPPORTED, "relu");
    config_fails("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"gelu_pytorch_tanh\"", BQ_ERR_UNSUPPORTED,
                 "gelu_pytorch_tanh");
    config_fails("\"hidden_act\": \"gelu\"", "\"hidden_act\": 3", BQ_ERR_FORMAT, "hidden_act");
    config_fails("\"num_attention_heads\": 16", "\"num_attention_heads\": 15", BQ_ERR_FORMAT, "num_attention_heads");
    config_fails("\"hidden_size\": 1024, ", "", BQ_ERR_FORMAT, "hidden_size");
    config_fails("\"vocab_size\": 30522", "\"vocab_size\": \"30522\"", BQ_ERR_FORMAT, "vocab_size");
    config_fails("\"intermediate_size\": 4096", "\"intermediate_size\": 40.5", BQ_ERR_FORMAT, "intermediate_size");
    config_fails("\"num_hidden_layers\": 24", "\"num_hidden_layers\": 0", BQ_ERR_FORMAT, "num_hidden_layers");
    config_fails("\"type_vocab_size\": 2", "\"type_vocab_size\": -2", BQ_ERR_FORMAT, "type_vocab_size");
    config_fails("\"max_position_embeddings\": 512", "\"max_position_embeddings\": 1e30", BQ_ERR_FORMAT,
                 "max_position_embeddings");
    config_fails("\"layer_norm_eps\": 1e-12", "\"layer_norm_eps\": -1", BQ_ERR_FORMAT, "layer_norm_eps");
    /* in (0, 1) as a double, but 0 in float: every constant row would be 0/0 */
    config_fails("\"layer_norm_eps\": 1e-12", "\"layer_norm_eps\": 1e-50", BQ_ERR_FORMAT, "smallest normal float");
    config_fails("{", "[", BQ_ERR_FORMAT, "JSON");
    config_fails("\"vocab_size\"", "\"model_type\": \"roberta\", \"vocab_size\"", BQ_ERR_UNSUPPORTED, "roberta");
    config_fails("\"vocab_size\"", "\"position_embedding_type\": \"relative_key\", \"vocab_size\"",
                 BQ_ERR_UNSUPPORTED, "position_embedding_type");
    assert_int_equal(parse("{\"hidden_size\": 8} x", &c, &err), BQ_ERR_FORMAT);
    /* "gelu" then a NUL: cJSON would read "gelu"; Hugging Face would refuse the activation */
    config_fails("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"gelu\\u0000x\"", BQ_ERR_FORMAT, "NUL character");
    config_fails("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"gelu\\uq000\"", BQ_ERR_FORMAT, "4 hex digits");
    /* a repeated key: the last counts, as in Python's json */
    config_fails("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"gelu\", \"hidden_act\": \"relu\"",
                 BQ_ERR_UNSUPPORTED, "relu");

    /* absent optional fields take Hugging Face's defaults */
    const char *minimal = "{\"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                          "\"intermediate_size\": 64, \"max_position_embeddings\": 40, \"type_vocab_size\": 2, "
                          "\"vocab_size\": 100}";
    assert_int_equal(parse(minimal, &c, &err), BQ_OK);
    assert_true(c.layer_norm_eps == 1e-12f);
    assert_int_equal(c.max_position_embeddings, 40);
}

static void test_flops(void **state) {
    (void)state;
    bq_config c;
    bq_err err;
    assert_int_equal(parse(large_config, &c, &err), BQ_OK);
    double flops = bq_model_flops(&c, 384);
    /* model-facts.md: 246.9 GFLOP per padded 384 sequence (rounded figures); counted here term by term:
     * 2*384*(24*(4*1024^2 + 2*1024*4096) + 2*1024) + 24*4*384^2*1024 */
    assert_true(fabs(flops - 246.9e9) / 246.9e9 < 0.005);
    assert_true(flops == 246425321472.0);
    assert_true(bq_model_flops(&c, 0) == 0.0);
}

/* ---- loading ------------------------------------------------------------------------------------ */

static void test_load_f32(void **state) {
    (void)state;
    bq_model *m = load_ok(dir_f32, NULL);
    assert_int_equal(m->config.hidden_size, 32);
    assert_int_equal(m->config.num_layers, 2);
    assert_int_equal(m->config.num_heads, 4);
    assert_int_equal(m->config.intermediate_size, 64);
    assert_int_equal(m->config.max_position_embeddings, 512);
    assert_int_equal(m->config.type_vocab_size, 2);
    assert_int_equal(m->config.vocab_size, 30522);
    assert_true(m->config.layer_norm_eps == 1e-12f);
    assert_string_equal(m->checkpoint_dtype, "F32");
    assert_non_null(m->vocab);
    assert_int_equal(bq_vocab_size(m->vocab), 30522);

    /* every tensor against statistics from Hugging Face's reader */
    FILE *f = fopen(bq_test_src_path("tests/data/tiny_model_seed7.txt"), "r");
    assert_non_null(f);
    char line[4096];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char name[256], shape[64];
        double sum, sumsq, first[4];
        int got = sscanf(line, "%255s %63s %lf %lf %lf %lf %lf %lf", name, shape, &sum, &sumsq, &first[0],
                         &first[1], &first[2], &first[3]);
        assert_true(got >= 5);
        size_t n = 0;
        const float *t = model_tensor(m, name, &n);
        if (!t) print_error("no model tensor for %s\n", name);
        assert_non_null(t);
        size_t want_n = 1;
        for (char *p = shape; p;) {
            want_n *= strtoull(p, &p, 10);
            p = *p == 'x' ? p + 1 : NULL;
        }
        assert_int_equal(n, want_n);
        double s = 0, sq = 0;
        for (size_t i = 0; i < n; i++) {
            s += t[i];
            sq += (double)t[i] * t[i];
        }
        if (fabs(s - sum) > 1e-9 * (1 + sqrt(sumsq)) || fabs(sq - sumsq) > 1e-9 * (1 + sumsq))
            print_error("%s: sum %.17g / %.17g, sumsq %.17g / %.17g\n", name, s, sum, sq, sumsq);
        assert_true(fabs(s - sum) <= 1e-9 * (1 + sqrt(sumsq)));
        assert_true(fabs(sq - sumsq) <= 1e-9 * (1 + sumsq));
        for (int i = 0; i < got - 4; i++) assert_true((double)t[i] == first[i]);
        seen++;
    }
    fclose(f);
    assert_int_equal(seen, N_TENSORS_TINY);
    bq_model_free(m);
    bq_model_free(NULL);
}

static void test_load_half(void **state) {
    (void)state;
    bq_model *ref = load_ok(dir_f32, NULL);
    bq_model *h = load_ok(dir_f16, NULL);
    bq_model *b = load_ok(dir_bf16, NULL);
    assert_string_equal(h->checkpoint_dtype, "F16");
    assert_string_equal(b->checkpoint_dtype, "BF16");
    assert_memory_equal(&h->config, &ref->config, sizeof ref->config);
    compare_models(h, ref, bq_f32_to_f16, bq_f16_to_f32);
    compare_models(b, ref, bq_f32_to_bf16, bq_bf16_to_f32);
    bq_model_free(ref);
    bq_model_free(h);
    bq_model_free(b);
}

static void test_load_alternative_names(void **state) {
    (void)state;
    /* the files really use the other names */
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir_legacy);
    bq_safetensors *st = NULL;
    bq_err err;
    assert_int_equal(bq_safetensors_open(path, &st, &err), BQ_OK);
    assert_non_null(bq_safetensors_find(st, "bert.encoder.layer.1.output.LayerNorm.gamma"));
    assert_null(bq_safetensors_find(st, "bert.encoder.layer.1.output.LayerNorm.weight"));
    bq_safetensors_close(st);
    snprintf(path, sizeof path, "%s/model.safetensors", dir_bare);
    assert_int_equal(bq_safetensors_open(path, &st, &err), BQ_OK);
    assert_non_null(bq_safetensors_find(st, "embeddings.LayerNorm.beta"));
    assert_non_null(bq_safetensors_find(st, "qa_outputs.bias"));
    assert_null(bq_safetensors_find(st, "bert.embeddings.word_embeddings.weight"));
    bq_safetensors_close(st);

    bq_model *ref = load_ok(dir_f32, NULL);
    bq_model *legacy = load_ok(dir_legacy, NULL);
    bq_model *bare = load_ok(dir_bare, NULL);
    compare_models(legacy, ref, NULL, NULL);
    compare_models(bare, ref, NULL, NULL);
    bq_model_free(ref);
    bq_model_free(legacy);
    bq_model_free(bare);
}

/* Weights in shards listed by model.safetensors.index.json, as save_pretrained writes them with a
 * max_shard_size (tests/cli_hf_parity.sh loads one that Hugging Face itself wrote). */
static void test_load_sharded(void **state) {
    (void)state;
    static const char *shard3 = "model-00003-of-00003.safetensors";
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir_sharded);
    assert_int_not_equal(access(path, F_OK), 0);
    /* the tensors really are spread over the files */
    bq_safetensors *st = NULL;
    bq_err err;
    snprintf(path, sizeof path, "%s/%s", dir_sharded, shard3);
    assert_int_equal(bq_safetensors_open(path, &st, &err), BQ_OK);
    assert_non_null(bq_safetensors_find(st, "qa_outputs.bias"));
    assert_null(bq_safetensors_find(st, "bert.embeddings.word_embeddings.weight"));
    bq_safetensors_close(st);

    bq_model *ref = load_ok(dir_f32, NULL);
    bq_model *sharded = load_ok(dir_sharded, NULL);
    compare_models(sharded, ref, NULL, NULL);
    assert_string_equal(sharded->checkpoint_dtype, "F32");
    bq_model_free(sharded);
    bq_model_free(ref);

    /* a shard the index names is missing */
    const char *d = copy_model(dir_sharded, "shard-missing");
    remove_file(d, shard3);
    load_fails(d, NULL, BQ_ERR_IO, shard3, "model.safetensors.index.json");
    /* the index puts a tensor in a shard that does not hold it */
    edited_fails(dir_sharded, "shard-wrong", "model.safetensors.index.json",
                 "\"qa_outputs.bias\": \"model-00003", "\"qa_outputs.bias\": \"model-00001", BQ_ERR_FORMAT,
                 "'qa_outputs.bias' in", "does not hold it");
    /* a shard outside the model folder */
    edited_fails(dir_sharded, "shard-outside", "model.safetensors.index.json",
                 "\"qa_outputs.bias\": \"model-00003", "\"qa_outputs.bias\": \"../sharded/model-00003",
                 BQ_ERR_FORMAT, "qa_outputs.bias", "a file in the model folder");
    /* no weight_map, and an index that is not JSON */
    edited_fails(dir_sharded, "shard-no-map", "model.safetensors.index.json", "weight_map", "weight_mop",
                 BQ_ERR_FORMAT, "model.safetensors.index.json", "weight_map");
    edited_fails(dir_sharded, "shard-bad-json", "model.safetensors.index.json", "\"metadata\"", "metadata",
                 BQ_ERR_FORMAT, "model.safetensors.index.json", "not valid JSON");
    /* a tensor the index does not list is missing, though a shard holds one of that name: the index
     * decides, as in Hugging Face's loader */
    d = copy_model(dir_sharded, "shard-unlisted");
    replace_in_file(d, "model.safetensors.index.json", "\"qa_outputs.bias\"", "\"qa_outputs.biaz\"");
    replace_in_file(d, shard3, "\"qa_outputs.bias\"", "\"qa_outputs.biaz\"");
    load_fails(d, NULL, BQ_ERR_FORMAT, "missing tensor 'qa_outputs.bias'", "model.safetensors.index.json");
    /* encoder layers beyond the config's are found in any shard */
    edited_fails(dir_sharded, "shard-one-layer", "config.json", "\"num_hidden_layers\": 2",
                 "\"num_hidden_layers\": 1", BQ_ERR_FORMAT, "bert.encoder.layer.1.", shard3);
    /* model.safetensors beside an index is taken first (as Hugging Face does): the index, broken
     * here, is never read */
    d = copy_model(dir_sharded, "shard-and-single");
    replace_in_file(d, "model.safetensors.index.json", "weight_map", "weight_mop");
    {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "cp '%s/model.safetensors' '%s/'", dir_f32, d);
        shell(cmd);
    }
    bq_model_free(load_ok(d, NULL));
}

static void unset_cache_variables(void) {
    static const char *names[] = {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unsetenv(names[i]);
}

/* A repo id that is no folder is looked up in the Hugging Face cache, where huggingface_hub keeps it
 * (tests/cli_hf_parity.sh has huggingface_hub itself find the same snapshot). */
static void test_locate_hub_cache(void **state) {
    (void)state;
    char hub[4200], cmd[16384], want[4400];
    snprintf(hub, sizeof hub, "%s/cache/huggingface/hub", tmpdir);
    /* models--acme--tiny-qa/{blobs/, refs/main, snapshots/COMMIT/ -> ../../blobs/} */
    snprintf(cmd, sizeof cmd, "r='%s/models--acme--tiny-qa' && mkdir -p \"$r/blobs\" \"$r/refs\" "
             "\"$r/snapshots/c0ffee42\" && for f in config.json model.safetensors vocab.txt; do "
             "cp '%s'/$f \"$r/blobs/$f.b\" && ln -s ../../blobs/$f.b \"$r/snapshots/c0ffee42/$f\"; done && "
             "printf 'c0ffee42\\n' > \"$r/refs/main\" && mkdir -p \"$r/snapshots/0ldc0mm1t\"", hub, dir_f32);
    shell(cmd);
    snprintf(want, sizeof want, "%s/models--acme--tiny-qa/snapshots/c0ffee42", hub);
    bq_model *ref = load_ok(dir_f32, NULL);
    assert_string_equal(ref->dir, dir_f32);

    /* each variable in huggingface_hub's order, the earlier ones pointing nowhere useful */
    unset_cache_variables();
    char value[4300];
    const char *old_home = getenv("HOME");
    char *saved_home = old_home ? bq_strndup(old_home, strlen(old_home)) : NULL;
    setenv("HOME", tmpdir, 1);
    for (int way = 0; way < 5; way++) {
        unset_cache_variables();
        if (way == 0) setenv("HF_HUB_CACHE", hub, 1), setenv("HF_HOME", "/nonexistent", 1);
        if (way == 1) setenv("HUGGINGFACE_HUB_CACHE", hub, 1), setenv("XDG_CACHE_HOME", "/nonexistent", 1);
        if (way == 2) {
            snprintf(value, sizeof value, "%s/cache/huggingface", tmpdir);
            setenv("HF_HOME", value, 1);
        }
        if (way == 3) {
            snprintf(value, sizeof value, "%s/cache", tmpdir);
            setenv("XDG_CACHE_HOME", value, 1);
        }
        if (way == 4) setenv("HF_HUB_CACHE", "~/cache/huggingface/hub", 1); /* expanded as expanduser does */
        bq_model *m = load_ok("acme/tiny-qa", NULL);
        assert_string_equal(m->dir, want);
        compare_models(m, ref, NULL, NULL);
        bq_model_free(m);
    }
    /* ~/.cache/huggingface/hub when nothing is set */
    unset_cache_variables();
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/.cache/huggingface' && ln -sfn '%s' '%s/.cache/huggingface/hub'",
             tmpdir, hub, tmpdir);
    shell(cmd);
    char *dir = NULL;
    bq_err err;
    assert_int_equal(bq_model_locate("acme/tiny-qa", &dir, &err), BQ_OK);
    snprintf(want, sizeof want, "%s/.cache/huggingface/hub/models--acme--tiny-qa/snapshots/c0ffee42", tmpdir);
    assert_string_equal(dir, want);
    free(dir);

    setenv("HF_HUB_CACHE", hub, 1);
    /* other revisions, "@" after the id: a tag in refs/, a PR ref (refs/refs/pr/N), a commit itself */
    snprintf(cmd, sizeof cmd, "r='%s/models--acme--tiny-qa' && mkdir -p \"$r/refs/tags\" \"$r/refs/refs/pr\" && "
             "printf 'c0ffee42' > \"$r/refs/tags/v1\" && printf 'c0ffee42\\n' > \"$r/refs/refs/pr/3\" && "
             "printf 'c0ffee42' > \"$r/refs/v2\"", hub);
    shell(cmd);
    snprintf(want, sizeof want, "%s/models--acme--tiny-qa/snapshots/c0ffee42", hub);
    const char *revisions[] = {"acme/tiny-qa@v2", "acme/tiny-qa@tags/v1", "acme/tiny-qa@refs/pr/3",
                               "acme/tiny-qa@c0ffee42"};
    for (size_t i = 0; i < sizeof revisions / sizeof revisions[0]; i++) {
        assert_int_equal(bq_model_locate(revisions[i], &dir, &err), BQ_OK);
        assert_string_equal(dir, want);
        free(dir);
    }
    bq_model *tagged = load_ok("acme/tiny-qa@v2", NULL);
    compare_models(tagged, ref, NULL, NULL);
    bq_model_free(tagged);
    /* the other snapshot by its commit; a revision with no ref and no snapshot; one through a
     * '/' with no ref file (a snapshot is a single name) */
    snprintf(want, sizeof want, "%s/models--acme--tiny-qa/snapshots/0ldc0mm1t", hub);
    assert_int_equal(bq_model_locate("acme/tiny-qa@0ldc0mm1t", &dir, &err), BQ_OK);
    assert_string_equal(dir, want);
    free(dir);
    load_fails("acme/tiny-qa@v3", NULL, BQ_ERR_IO, "no snapshot of its revision v3", "snapshots/v3");
    load_fails("acme/tiny-qa@refs/pr/4", NULL, BQ_ERR_IO, "no snapshot of its revision refs/pr/4", "snapshots/");
    load_fails("acme/other-qa@v1", NULL, BQ_ERR_IO, "no such folder", "--revision v1");
    /* not a revision: the name is a path */
    const char *not_revisions[] = {"acme/tiny-qa@", "acme/tiny-qa@../x", "acme/tiny-qa@/v", "acme/tiny-qa@v/",
                                   "acme/tiny-qa@a b", "acme/tiny-qa@a//b"};
    for (size_t i = 0; i < sizeof not_revisions / sizeof not_revisions[0]; i++) {
        assert_int_equal(bq_model_locate(not_revisions[i], &dir, &err), BQ_OK);
        assert_string_equal(dir, not_revisions[i]);
        free(dir);
    }
    /* not in the cache: the message says where it looked */
    load_fails("acme/other-qa", NULL, BQ_ERR_IO, "no such folder", "models--acme--other-qa");
    /* refs/main names a commit with no snapshot */
    snprintf(cmd, sizeof cmd, "printf 'deadbeef' > '%s/models--acme--tiny-qa/refs/main'", hub);
    shell(cmd);
    load_fails("acme/tiny-qa", NULL, BQ_ERR_IO, "no snapshot", "snapshots/deadbeef");
    /* no refs/main: revision "main" itself, as huggingface_hub takes it (no guessing among snapshots) */
    snprintf(cmd, sizeof cmd, "rm '%s/models--acme--tiny-qa/refs/main'", hub);
    shell(cmd);
    load_fails("acme/tiny-qa", NULL, BQ_ERR_IO, "no snapshot", "snapshots/main");
    /* names that are no repo id are paths, never looked up */
    const char *paths[] = {"acme/../tiny-qa", "./acme/tiny-qa", "acme/tiny-qa/", "acme--x/tiny", "a/b/c", "-x"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        assert_int_equal(bq_model_locate(paths[i], &dir, &err), BQ_OK);
        assert_string_equal(dir, paths[i]);
        free(dir);
    }
    /* a file given for the folder */
    snprintf(value, sizeof value, "%s/model.safetensors", dir_f32);
    load_fails(value, NULL, BQ_ERR_IO, "is a file, not a checkpoint folder", "model.safetensors");
    /* a folder of that name wins over the cache */
    snprintf(cmd, sizeof cmd, "cd '%s' && mkdir -p acme && cp -r '%s' acme/tiny-qa", tmpdir, dir_f32);
    shell(cmd);
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    bq_model *local = load_ok("acme/tiny-qa", NULL);
    assert_string_equal(local->dir, "acme/tiny-qa");
    bq_model_free(local);
    assert_int_equal(chdir(cwd), 0);
    unset_cache_variables();
    if (saved_home) setenv("HOME", saved_home, 1);
    else unsetenv("HOME");
    free(saved_home);
    bq_model_free(ref);
}

static void write_file(const char *dir, const char *name, const char *data, size_t len) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A folder as transformers 5 saves it: tokenizer.json + tokenizer_config.json and no vocab.txt
 * (tests/data/tokenizer_files, written by Hugging Face: tools/gen_tokenizer_files.py). */
static void test_tokenizer_files(void **state) {
    (void)state;
    const char *d = copy_model(dir_f32, "hf-tokenizer");
    remove_file(d, "vocab.txt");
    size_t len = 0;
    char *json = bq_test_gunzip("tests/data/tokenizer_files/tokenizer.json.gz", &len);
    assert_non_null(json);
    write_file(d, "tokenizer.json", json, len);
    free(json);
    char *config = NULL;
    bq_err err;
    assert_int_equal(bq_read_file(bq_test_src_path("tests/data/tokenizer_files/tokenizer_config.json"), &config,
                                  &len, &err), BQ_OK);
    write_file(d, "tokenizer_config.json", config, len);
    free(config);
    char hf_dir[4200];
    snprintf(hf_dir, sizeof hf_dir, "%s", d);

    /* no fallback given: the vocabulary is tokenizer.json's, token for token the shipped vocab.txt */
    bq_model *m = load_ok(hf_dir, NULL);
    struct bq_vocab *shipped = bq_test_load_vocab();
    assert_non_null(shipped);
    assert_int_equal(bq_vocab_size(m->vocab), bq_vocab_size(shipped));
    for (int32_t id = 0; id < bq_vocab_size(shipped); id++)
        assert_string_equal(bq_vocab_token(m->vocab, id), bq_vocab_token(shipped, id));
    const bq_special_ids *a = bq_vocab_special(m->vocab), *b = bq_vocab_special(shipped);
    assert_true(a->cls == b->cls && a->sep == b->sep && a->pad == b->pad && a->unk == b->unk && a->mask == b->mask);
    bq_model_free(m);

    /* settings our tokenizer does not implement are refused, naming the file and the setting */
    static const struct {
        const char *file, *old, *new_text, *n1;
    } refused[] = {
        {"tokenizer_config.json", "\"do_lower_case\": true", "\"do_lower_case\": false", "do_lower_case false"},
        {"tokenizer_config.json", "\"strip_accents\": null", "\"strip_accents\": false", "strip_accents false"},
        {"tokenizer_config.json", "\"tokenize_chinese_chars\": true", "\"tokenize_chinese_chars\": false",
         "tokenize_chinese_chars"},
        {"tokenizer_config.json", "\"BertTokenizer\"", "\"RobertaTokenizer\"", "tokenizer_class"},
        {"tokenizer_config.json", "\"backend\": \"tokenizers\"", "\"never_split\": [\"C++\"]", "never_split"},
        {"tokenizer_config.json", "\"cls_token\": \"[CLS]\"", "\"cls_token\": \"<s>\"", "cls_token \"<s>\""},
        {"tokenizer.json", "\"lowercase\": true", "\"lowercase\": false", "normalizer.lowercase"},
        {"tokenizer.json", "\"strip_accents\": null", "\"strip_accents\": false", "normalizer.strip_accents"},
        {"tokenizer.json", "\"BertNormalizer\"", "\"NFC\"", "normalizer"},
        {"tokenizer.json", "\"BertPreTokenizer\"", "\"Whitespace\"", "pre_tokenizer"},
        {"tokenizer.json", "\"type\": \"WordPiece\",\n    \"unk_token\"", "\"type\": \"BPE\",\n    \"unk_token\"",
         "model.type \"BPE\""},
        {"tokenizer.json", "\"continuing_subword_prefix\": \"##\"", "\"continuing_subword_prefix\": \"@@\"",
         "continuing_subword_prefix"},
        {"tokenizer.json", "\"max_input_chars_per_word\": 100", "\"max_input_chars_per_word\": 200",
         "max_input_chars_per_word"},
        {"tokenizer.json", "\"content\": \"[MASK]\"", "\"content\": \"[MASQ]\"", "added token \"[MASQ]\""},
        {"tokenizer.json", "\"id\": 103,", "\"id\": 1e300,", "added token \"[MASK]\""},
        /* tokens added beyond the five specials: transformers keeps them whole in raw text */
        {"tokenizer.json", "\"id\": 0,\n      \"content\": \"[PAD]\"", "\"id\": 1,\n      \"content\": \"[unused0]\"",
         "added_tokens adds the token \"[unused0]\""},
        {"tokenizer_config.json", "\"backend\": \"tokenizers\"", "\"extra_special_tokens\": [\"[unused0]\"]",
         "extra_special_tokens adds the token \"[unused0]\""},
        {"tokenizer_config.json", "\"backend\": \"tokenizers\"",
         "\"additional_special_tokens\": [{\"content\": \"<q>\"}]", "additional_special_tokens adds the token \"<q>\""},
        {"tokenizer_config.json", "\"backend\": \"tokenizers\"",
         "\"added_tokens_decoder\": {\"0\": {\"content\": \"[PAD]\"}, \"1\": {\"content\": \"[unused0]\"}}",
         "added_tokens_decoder adds the token \"[unused0]\""},
        /* a model without a type but with BPE's merges is BPE to `tokenizers` */
        {"tokenizer.json", "\"type\": \"WordPiece\",\n    \"unk_token\"", "\"merges\": [],\n    \"unk_token\"",
         "model.type"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        edited_fails(hf_dir, "hf-tokenizer-edited", refused[i].file, refused[i].old, refused[i].new_text,
                     BQ_ERR_UNSUPPORTED, refused[i].n1, refused[i].file);
    /* the five specials in those lists, or empty lists, add nothing: loaded */
    {
        const char *ok_d = copy_model(hf_dir, "hf-tokenizer-added-specials");
        replace_in_file(ok_d, "tokenizer_config.json", "\"backend\": \"tokenizers\"",
                        "\"extra_special_tokens\": {}, \"additional_special_tokens\": [\"[MASK]\"], "
                        "\"added_tokens_decoder\": {\"0\": {\"content\": \"[PAD]\"}, \"103\": {\"content\": \"[MASK]\"}}");
        bq_model_free(load_ok(ok_d, NULL));
    }
    /* a vocabulary with a hole in its ids */
    edited_fails(hf_dir, "hf-tokenizer-edited", "tokenizer.json", "\"hello\": 7592", "\"hello\": 99999",
                 BQ_ERR_FORMAT, "\"hello\"", "not one of 0..30521");

    /* both files, as on the Hugging Face hub: they must agree */
    d = copy_model(hf_dir, "hf-tokenizer-and-vocab");
    {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "cp '%s/vocab.txt' '%s/'", dir_f32, d);
        shell(cmd);
    }
    bq_model_free(load_ok(d, NULL));
    replace_in_file(d, "tokenizer.json", "\"hello\": 7592", "\"hellp\": 7592");
    load_fails(d, NULL, BQ_ERR_FORMAT, "disagree at token id 7592", "tokenizer.json");

    /* neither file and no fallback */
    d = copy_model(hf_dir, "hf-no-tokenizer");
    remove_file(d, "tokenizer.json");
    load_fails(d, NULL, BQ_ERR_IO, "no vocab.txt or tokenizer.json", NULL);
    bq_vocab *v = NULL;
    assert_int_equal(bq_tokenizer_files_load(d, &v, NULL, &err), BQ_OK); /* the config alone is fine */
    assert_null(v);
    bq_vocab_free(shipped);
}

static void test_checkpoint_mismatches(void **state) {
    (void)state;
    /* config says 3 layers, the file has 2: the first missing tensor is named */
    const char *d = copy_model(dir_f32, "three-layers");
    replace_in_file(d, "config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    load_fails(d, NULL, BQ_ERR_FORMAT, "missing tensor 'bert.encoder.layer.2.attention.self.query.weight'",
               "model.safetensors");
    /* config says 1 layer, the file has 2 */
    edited_fails(dir_f32, "one-layer", "config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1",
                 BQ_ERR_FORMAT, "bert.encoder.layer.1.", "num_hidden_layers");
    /* a BERT checkpoint of another task: the message says what it is */
    d = copy_model(dir_f32, "masked-lm");
    replace_in_file(d, "config.json", "\"BertForQuestionAnswering\"", "\"BertForMaskedLM\"");
    replace_in_file(d, "model.safetensors", "\"qa_outputs.weight\"", "\"qa_outputz.weight\""); /* same length */
    load_fails(d, NULL, BQ_ERR_FORMAT, "a BertForMaskedLM checkpoint, not BertForQuestionAnswering",
               "missing tensor 'qa_outputs.weight'");
    /* ... or has it under a negative index (it was once taken for layer -1 < 1, and ignored) */
    d = copy_model(dir_f32, "negative-layer");
    replace_in_file(d, "config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
    replace_in_file(d, "model.safetensors", "layer.1.", "layer.-1");
    load_fails(d, NULL, BQ_ERR_FORMAT, "bert.encoder.layer.-1", "no layer of the 1");
    /* a tensor name cut short by \u0000 would load as another tensor */
    d = copy_model(dir_f32, "nul-name");
    replace_in_file(d, "model.safetensors", "\"qa_outputs.bias\"", "\"qa_out\\u0000ias\""); /* same length */
    load_fails(d, NULL, BQ_ERR_FORMAT, "NUL character", "model.safetensors");
    /* a vocabulary saved with a byte-order mark */
    edited_fails(dir_f32, "bom-vocab", "vocab.txt", "[PAD]", "\xEF\xBB\xBF[PAD]", BQ_ERR_FORMAT,
                 "byte-order mark", "vocab.txt");
    /* wrong shape for the config */
    edited_fails(dir_f32, "wide-ffn", "config.json", "\"intermediate_size\": 64",
                 "\"intermediate_size\": 128", BQ_ERR_FORMAT,
                 "bert.encoder.layer.0.intermediate.dense.weight", "[64, 32]");
    edited_fails(dir_f32, "short-positions", "config.json", "\"max_position_embeddings\": 512",
                 "\"max_position_embeddings\": 384", BQ_ERR_FORMAT,
                 "bert.embeddings.position_embeddings.weight", "[384, 32]");
    /* the vocabulary has more tokens than the embedding has rows */
    edited_fails(dir_f32, "small-vocab", "config.json", "\"vocab_size\": 30522", "\"vocab_size\": 30000",
                 BQ_ERR_FORMAT, "30522", "30000");
    /* unsupported activation */
    edited_fails(dir_f32, "gelu-new", "config.json", "\"hidden_act\": \"gelu\"",
                 "\"hidden_act\": \"gelu_new\"", BQ_ERR_UNSUPPORTED, "gelu_new", "config.json");
    /* a weight in an unsupported dtype */
    d = copy_model(dir_f32, "f64");
    /* same byte count: 2 F32 -> 1 F64 would change the shape, so relabel I32 instead */
    replace_in_file(d, "model.safetensors", "\"qa_outputs.bias\":{\"dtype\":\"F32\"", "\"qa_outputs.bias\":{\"dtype\":\"I32\"");
    load_fails(d, NULL, BQ_ERR_UNSUPPORTED, "qa_outputs.bias", "I32");
    /* a dtype with no enum of its own is named as the header spells it */
    edited_fails(dir_f32, "u32", "model.safetensors", "\"qa_outputs.bias\":{\"dtype\":\"F32\"",
                 "\"qa_outputs.bias\":{\"dtype\":\"U32\"", BQ_ERR_UNSUPPORTED, "qa_outputs.bias",
                 "dtype U32");
}

static void test_missing_files(void **state) {
    (void)state;
    const char *d = copy_model(dir_f32, "no-config");
    remove_file(d, "config.json");
    load_fails(d, NULL, BQ_ERR_IO, "config.json", NULL);

    d = copy_model(dir_f32, "no-weights");
    remove_file(d, "model.safetensors");
    load_fails(d, NULL, BQ_ERR_IO, "model.safetensors", NULL);

    d = copy_model(dir_f32, "no-vocab");
    remove_file(d, "vocab.txt");
    load_fails(d, NULL, BQ_ERR_IO, "vocab.txt", NULL);
    load_fails(d, "/nonexistent/vocab.txt", BQ_ERR_IO, "/nonexistent/vocab.txt", NULL);
    bq_model *m = load_ok(d, bq_test_src_path("vocab/vocab.txt"));
    assert_int_equal(bq_vocab_size(m->vocab), 30522);
    bq_model_free(m);

    /* a FIFO or a device in place of a checkpoint file: refused at once, never waited on or read
     * without end */
    d = copy_model(dir_f32, "special-files");
    const char *specials[][2] = {{"config.json", "mkfifo"}, {"vocab.txt", "ln -s /dev/zero"},
                                 {"model.safetensors", "mkfifo"}};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "cd '%s' && mv %s %s.real && %s %s", d, specials[i][0], specials[i][0],
                 specials[i][1], specials[i][0]);
        shell(cmd);
        load_fails(d, NULL, BQ_ERR_IO, specials[i][0], "not a regular file");
        snprintf(cmd, sizeof cmd, "cd '%s' && rm %s && mv %s.real %s", d, specials[i][0], specials[i][0],
                 specials[i][0]);
        shell(cmd);
    }

    /* symlinks to regular files, as in a Hugging Face hub cache (snapshots/REV/x -> blobs/HASH), load */
    d = copy_model(dir_f32, "hub-cache");
    {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "cd '%s' && mkdir blobs snap && for f in config.json model.safetensors "
                 "vocab.txt; do mv $f blobs/$f.blob && ln -s ../blobs/$f.blob snap/$f; done", d);
        shell(cmd);
        char snap[4200];
        snprintf(snap, sizeof snap, "%s/snap", d);
        bq_model_free(load_ok(snap, NULL));
    }

    d = copy_model(dir_f32, "truncated");
    char cmd[12000];
    snprintf(cmd, sizeof cmd, "truncate -s -4 '%s/model.safetensors'", d);
    shell(cmd);
    load_fails(d, NULL, BQ_ERR_FORMAT, "model.safetensors", "beyond the data section");

    load_fails("/nonexistent-model-dir", NULL, BQ_ERR_IO, "/nonexistent-model-dir", NULL);
    bq_err err;
    assert_int_equal(bq_model_load(NULL, NULL, &m, &err), BQ_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_parse),
        cmocka_unit_test(test_flops),
        cmocka_unit_test(test_load_f32),
        cmocka_unit_test(test_load_half),
        cmocka_unit_test(test_load_alternative_names),
        cmocka_unit_test(test_load_sharded),
        cmocka_unit_test(test_locate_hub_cache),
        cmocka_unit_test(test_tokenizer_files),
        cmocka_unit_test(test_checkpoint_mismatches),
        cmocka_unit_test(test_missing_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
