/* model.c - load a BertForQuestionAnswering checkpoint folder (config.json, model.safetensors or
 * the shards model.safetensors.index.json lists, vocab.txt or tokenizer.json) into fp32 host
 * tensors. F32 tensors aligned in the mapping are used in place; F16 and BF16 tensors are converted
 * into owned fp32 copies. */
#include "model.h"

#include "safetensors.h"
#include "tokenizer_files.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- config.json ------------------------------------------------------------------------------ */

/* A required positive integer field within [1, max]. */
static bq_status config_int(const cJSON *root, const char *name, const char *field, int max, int *out,
                            bq_err *err) {
    const cJSON *item = bq_json_member(root, field);
    if (!item) return bq_fail(err, BQ_ERR_FORMAT, "'%s': missing field \"%s\"", name, field);
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) || item->valuedouble < 1 ||
        item->valuedouble > max)
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': field \"%s\" must be an integer in [1, %d]", name, field,
                       max);
    *out = (int)item->valuedouble;
    return BQ_OK;
}

bq_status bq_config_parse(const char *json, size_t len, const char *name, bq_config *out, bq_err *err) {
    if (!name) name = "config.json";
    if (!json || !out) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_config_parse: NULL argument");
    memset(out, 0, sizeof *out);
    /* a NUL-terminated copy so that trailing garbage after the object is rejected too */
    char *text = bq_strndup(json, len);
    if (!text) return bq_fail(err, BQ_ERR_NOMEM, "'%s': out of memory", name);
    cJSON *root = cJSON_ParseWithOpts(text, NULL, 1);
    free(text);
    if (!root) return bq_fail(err, BQ_ERR_FORMAT, "'%s': not valid JSON", name);
    bq_status st = BQ_OK;
    bq_config c;
    memset(&c, 0, sizeof c); /* padding and the unused tail of architecture too: configs compare bytewise */
    const char *fault = NULL;
    const size_t fault_at = bq_json_string_fault(json, len, &fault);
    if (fault_at != (size_t)-1) {
        st = bq_fail(err, BQ_ERR_FORMAT, "'%s': %s, at byte %zu", name, fault, fault_at);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        st = bq_fail(err, BQ_ERR_FORMAT, "'%s': not a JSON object", name);
        goto done;
    }
    if ((st = config_int(root, name, "hidden_size", 1 << 16, &c.hidden_size, err)) ||
        (st = config_int(root, name, "num_hidden_layers", 1024, &c.num_layers, err)) ||
        (st = config_int(root, name, "num_attention_heads", 1 << 16, &c.num_heads, err)) ||
        (st = config_int(root, name, "intermediate_size", 1 << 20, &c.intermediate_size, err)) ||
        (st = config_int(root, name, "max_position_embeddings", 1 << 20, &c.max_position_embeddings, err)) ||
        (st = config_int(root, name, "type_vocab_size", 1 << 16, &c.type_vocab_size, err)) ||
        (st = config_int(root, name, "vocab_size", 1 << 24, &c.vocab_size, err)))
        goto done;
    if (c.hidden_size % c.num_heads != 0) {
        st = bq_fail(err, BQ_ERR_FORMAT,
                     "'%s': hidden_size %d is not a multiple of num_attention_heads %d", name, c.hidden_size,
                     c.num_heads);
        goto done;
    }
    /* Absent fields take Hugging Face BertConfig's defaults (layer_norm_eps 1e-12, hidden_act "gelu"). */
    c.layer_norm_eps = 1e-12f;
    const cJSON *eps = bq_json_member(root, "layer_norm_eps");
    if (eps) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || !(eps->valuedouble < 1)) {
            st = bq_fail(err, BQ_ERR_FORMAT, "'%s': field \"layer_norm_eps\" must be a number in (0, 1)", name);
            goto done;
        }
        c.layer_norm_eps = (float)eps->valuedouble;
        /* the kernels add it in float: one that rounds to 0 (or to a subnormal a GPU flushes to 0)
         * would give a constant row 0/0 = NaN */
        if (!(c.layer_norm_eps >= FLT_MIN)) {
            st = bq_fail(err, BQ_ERR_FORMAT, "'%s': field \"layer_norm_eps\" %g is below the smallest normal "
                         "float (%g): in float it would be 0", name, eps->valuedouble, (double)FLT_MIN);
            goto done;
        }
    }
    const cJSON *act = bq_json_member(root, "hidden_act");
    if (act && !cJSON_IsString(act)) {
        st = bq_fail(err, BQ_ERR_FORMAT, "'%s': field \"hidden_act\" is not a string", name);
        goto done;
    }
    if (act && strcmp(act->valuestring, "gelu") != 0) {
        st = bq_fail(err, BQ_ERR_UNSUPPORTED,
                     "'%s': hidden_act \"%.40s\" is not supported (only \"gelu\", the exact erf form)", name,
                     act->valuestring);
        goto done;
    }
    /* Fields that would change the computation in ways this runtime does not implement. */
    const cJSON *pos_type = bq_json_member(root, "position_embedding_type");
    if (pos_type && (!cJSON_IsString(pos_type) || strcmp(pos_type->valuestring, "absolute") != 0)) {
        st = bq_fail(err, BQ_ERR_UNSUPPORTED,
                     "'%s': position_embedding_type other than \"absolute\" is not supported", name);
        goto done;
    }
    const cJSON *model_type = bq_json_member(root, "model_type");
    if (model_type && (!cJSON_IsString(model_type) || strcmp(model_type->valuestring, "bert") != 0)) {
        st = bq_fail(err, BQ_ERR_UNSUPPORTED, "'%s': model_type \"%.40s\" is not supported (only \"bert\")",
                     name, cJSON_IsString(model_type) ? model_type->valuestring : "?");
        goto done;
    }
    c.random_weights = bq_json_member(root, "bertqa_random_weights") != NULL;
    const cJSON *arch = bq_json_member(root, "architectures");
    if (cJSON_IsArray(arch) && cJSON_IsString(arch->child))
        snprintf(c.architecture, sizeof c.architecture, "%s", arch->child->valuestring);
    *out = c;
done:
    cJSON_Delete(root);
    return st;
}

/* ---- FLOPs ------------------------------------------------------------------------------------- */

double bq_model_flops(const bq_config *c, int seq_len) {
    if (!c || seq_len <= 0) return 0.0;
    double h = c->hidden_size, i = c->intermediate_size, s = seq_len;
    /* per token: Q, K, V, attention output (4 H*H) and the two FFN matrices (2 H*I) per layer, plus
     * the QA head (2 H); embeddings are lookups */
    double weight_macs = c->num_layers * (4.0 * h * h + 2.0 * h * i) + 2.0 * h;
    /* per layer: Q K^T and P V, each S*S*H multiply-adds */
    double attention = c->num_layers * 4.0 * s * s * h;
    return 2.0 * weight_macs * s + attention;
}

/* ---- the checkpoint ---------------------------------------------------------------------------- */

typedef struct {
    bq_safetensors *st;
    char *name; /* as the index spells it; NULL for model.safetensors */
} weight_file;

typedef struct {
    weight_file *files;     /* [n_files]: model.safetensors alone, or the shards an index names */
    int n_files;
    cJSON *index;           /* model.safetensors.index.json when the weights are sharded, else NULL */
    const cJSON *weight_map; /* the index's "weight_map": tensor name -> shard file name */
    char *index_path;
    float **owned; /* converted copies */
    int n_owned, cap_owned;
    bq_dtype weight_dtype;
    bool mixed;
    bool any_weight;
} model_storage;

static void model_storage_free(model_storage *s) {
    if (!s) return;
    for (int i = 0; i < s->n_owned; i++) free(s->owned[i]);
    free(s->owned);
    for (int i = 0; i < s->n_files; i++) {
        bq_safetensors_close(s->files[i].st);
        free(s->files[i].name);
    }
    free(s->files);
    cJSON_Delete(s->index);
    free(s->index_path);
    free(s);
}

void bq_model_free(bq_model *m) {
    if (!m) return;
    model_storage_free(m->internal);
    free(m->dir);
    free(m->vocab_fallback);
    bq_vocab_free(m->vocab);
    free(m->layers);
    free(m);
}

/* The tensor stored under exactly `name` and the file that holds it: in model.safetensors, or in
 * the shard the index names (every entry was checked against its shard at load). NULL if absent. */
static const bq_tensor *lookup(const model_storage *s, const char *name, const bq_safetensors **file) {
    if (!s->weight_map) {
        *file = s->files[0].st;
        return bq_safetensors_find(s->files[0].st, name);
    }
    const cJSON *shard = bq_json_member(s->weight_map, name);
    if (!shard) return NULL;
    for (int i = 0; i < s->n_files; i++)
        if (strcmp(s->files[i].name, shard->valuestring) == 0) {
            *file = s->files[i].st;
            return bq_safetensors_find(s->files[i].st, name);
        }
    return NULL;
}

/* Find `name`, trying the spellings Hugging Face also accepts: without the "bert." prefix, and
 * LayerNorm parameters under their older names gamma/beta. */
static const bq_tensor *find_tensor(const model_storage *s, const char *name, const bq_safetensors **file) {
    const bq_tensor *t = lookup(s, name, file);
    if (t) return t;
    char alt[256];
    const char *candidates[4];
    int n = 0;
    const char *bare = strncmp(name, "bert.", 5) == 0 ? name + 5 : NULL;
    if (bare) candidates[n++] = bare;
    const char *ln = strstr(name, "LayerNorm.");
    if (ln) {
        const char *suffix = ln + strlen("LayerNorm.");
        const char *old = strcmp(suffix, "weight") == 0 ? "gamma" : strcmp(suffix, "bias") == 0 ? "beta" : NULL;
        if (old) {
            int len = snprintf(alt, sizeof alt, "%.*sLayerNorm.%s", (int)(ln - name), name, old);
            if (len > 0 && (size_t)len < sizeof alt) {
                candidates[n++] = alt;
                if (bare) candidates[n++] = alt + 5;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if ((t = lookup(s, candidates[i], file))) return t;
    return NULL;
}

/* Fetch a weight of the expected shape as fp32 ([d0] when d1 == 0, else [d0, d1]). */
/* A NaN or infinite weight makes every logit NaN or infinite: reject the checkpoint at load,
 * naming the tensor, instead of answering with null scores. */
static bq_status check_finite(const char *path, const char *name, const float *w, size_t n,
                              bq_err *err) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(w[i]))
            return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s' holds %g at element %zu "
                           "(a damaged checkpoint?)", path, name, (double)w[i], i);
    return BQ_OK;
}

static bq_status get_weight(model_storage *s, const char *name, int64_t d0, int64_t d1, const float **out,
                            bq_err *err) {
    const bq_safetensors *file = NULL;
    const bq_tensor *t = find_tensor(s, name, &file);
    if (!t)
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': missing tensor '%s'",
                       s->index_path ? s->index_path : bq_safetensors_path(s->files[0].st), name);
    const char *path = bq_safetensors_path(file);
    char want[64], got[256] = ""; /* BQ_MAX_DIMS numbers of up to 20 characters each */
    int want_ndim = d1 ? 2 : 1;
    if (d1) snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
    else snprintf(want, sizeof want, "[%lld]", (long long)d0);
    bool ok = t->ndim == want_ndim && t->shape[0] == d0 && (!d1 || t->shape[1] == d1);
    if (!ok) {
        size_t used = 0;
        used += (size_t)snprintf(got + used, sizeof got - used, "[");
        for (int i = 0; i < t->ndim; i++)
            used += (size_t)snprintf(got + used, sizeof got - used, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        snprintf(got + used, sizeof got - used, "]");
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s' has shape %s, the config needs %s", path,
                       t->name, got, want);
    }
    if (t->dtype != BQ_DTYPE_F32 && t->dtype != BQ_DTYPE_F16 && t->dtype != BQ_DTYPE_BF16)
        return bq_fail(err, BQ_ERR_UNSUPPORTED, "'%s': tensor '%s' has dtype %s (F32, F16 or BF16 supported)",
                       path, t->name, t->dtype_name);
    if (!s->any_weight) {
        s->weight_dtype = t->dtype;
        s->any_weight = true;
    } else if (t->dtype != s->weight_dtype) {
        s->mixed = true;
    }
    size_t n = (size_t)t->n_elements;
    if (t->dtype == BQ_DTYPE_F32 && ((uintptr_t)t->data % _Alignof(float)) == 0) {
        *out = t->data; /* in place: the mapping outlives the model */
        return check_finite(path, t->name, *out, n, err);
    }
    if (s->n_owned == s->cap_owned) {
        int cap = s->cap_owned ? s->cap_owned * 2 : 64;
        float **p = realloc(s->owned, (size_t)cap * sizeof *p);
        if (!p) return bq_fail(err, BQ_ERR_NOMEM, "out of memory loading '%s'", t->name);
        s->owned = p;
        s->cap_owned = cap;
    }
    float *dst = malloc(n ? n * sizeof *dst : 1);
    if (!dst) return bq_fail(err, BQ_ERR_NOMEM, "out of memory converting '%s' (%zu elements)", t->name, n);
    const unsigned char *src = t->data;
    if (t->dtype == BQ_DTYPE_F32) {
        memcpy(dst, src, n * sizeof *dst);
    } else {
        bool half = t->dtype == BQ_DTYPE_F16;
        for (size_t i = 0; i < n; i++) {
            /* safetensors data is little-endian */
            uint16_t v = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
            dst[i] = half ? bq_f16_to_f32(v) : bq_bf16_to_f32(v);
        }
    }
    s->owned[s->n_owned++] = dst;
    *out = dst;
    return check_finite(path, t->name, dst, n, err);
}

/* Reject encoder layers beyond num_hidden_layers: such a checkpoint does not match its config. */
static bq_status check_layer_count(const bq_safetensors *st, int num_layers, bq_err *err) {
    for (int i = 0; i < bq_safetensors_count(st); i++) {
        const char *name = bq_safetensors_at(st, i)->name;
        const char *p = strstr(name, "encoder.layer.");
        if (!p) continue;
        char *end;
        errno = 0;
        long idx = strtol(p + strlen("encoder.layer."), &end, 10);
        if (end != p + strlen("encoder.layer.") && (errno != 0 || idx < 0 || idx >= num_layers))
            return bq_fail(err, BQ_ERR_FORMAT,
                           "'%s': tensor '%s' belongs to no layer of the %d (num_hidden_layers in config.json)",
                           bq_safetensors_path(st), name, num_layers);
    }
    return BQ_OK;
}

/* A shard's name as the index gives it must name a file in the model folder itself. */
static bool plain_file_name(const char *name) {
    return name[0] != '\0' && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Open a sharded checkpoint: model.safetensors.index.json ({"metadata": {...}, "weight_map":
 * {tensor name: shard file name}}, as Hugging Face's save_pretrained writes it) and every shard it
 * names, each once. Every entry is checked against its shard here, so a tensor is found where the
 * index says or the load fails naming both. */
static bq_status open_shards(model_storage *s, const char *dir, bq_err *err) {
    const char *path = s->index_path;
    /* an index is tens of kB (one line per tensor); the cap stops a device file read without end */
    bq_status st = bq_json_read_object(path, 64u << 20, &s->index, err);
    if (st) return st;
    s->weight_map = bq_json_member(s->index, "weight_map");
    if (!cJSON_IsObject(s->weight_map))
        return bq_fail(err, BQ_ERR_FORMAT, "'%s': no \"weight_map\" object (tensor name -> shard file)", path);
    size_t cap = 0;
    for (const cJSON *e = s->weight_map->child; e; e = e->next) {
        if (bq_json_member(s->weight_map, e->string) != e) continue; /* a repeated key counts the last time */
        if (!cJSON_IsString(e) || !plain_file_name(e->valuestring))
            return bq_fail(err, BQ_ERR_FORMAT, "'%s': tensor '%s': the shard must be the name of a file in "
                           "the model folder", path, e->string);
        int f = 0;
        while (f < s->n_files && strcmp(s->files[f].name, e->valuestring) != 0) f++;
        if (f == s->n_files) {
            if (!bq_grow((void **)&s->files, &cap, (size_t)f + 1, sizeof *s->files))
                return bq_fail(err, BQ_ERR_NOMEM, "out of memory opening the shards of '%s'", dir);
            char *shard_path = bq_join_path(dir, e->valuestring);
            s->files[f] = (weight_file){NULL, bq_strndup(e->valuestring, strlen(e->valuestring))};
            s->n_files++;
            if (!shard_path || !s->files[f].name) {
                free(shard_path);
                return bq_fail(err, BQ_ERR_NOMEM, "out of memory opening the shards of '%s'", dir);
            }
            st = bq_safetensors_open(shard_path, &s->files[f].st, err);
            free(shard_path);
            if (st) {
                bq_err_prefix(err, "a shard '%s' names", path);
                return st;
            }
        }
        if (!bq_safetensors_find(s->files[f].st, e->string))
            return bq_fail(err, BQ_ERR_FORMAT, "'%s' puts tensor '%s' in '%s', which does not hold it", path,
                           e->string, bq_safetensors_path(s->files[f].st));
    }
    if (s->n_files == 0) return bq_fail(err, BQ_ERR_FORMAT, "'%s': \"weight_map\" lists no tensor", path);
    return BQ_OK;
}

static bq_status load_weights(bq_model *m, model_storage *s, bq_err *err) {
    const bq_config *c = &m->config;
    int64_t H = c->hidden_size, I = c->intermediate_size;
    bq_status st;
    if ((st = get_weight(s, "bert.embeddings.word_embeddings.weight", c->vocab_size, H, &m->word_emb, err)) ||
        (st = get_weight(s, "bert.embeddings.position_embeddings.weight", c->max_position_embeddings, H,
                         &m->pos_emb, err)) ||
        (st = get_weight(s, "bert.embeddings.token_type_embeddings.weight", c->type_vocab_size, H, &m->type_emb,
                         err)) ||
        (st = get_weight(s, "bert.embeddings.LayerNorm.weight", H, 0, &m->emb_ln_g, err)) ||
        (st = get_weight(s, "bert.embeddings.LayerNorm.bias", H, 0, &m->emb_ln_b, err)))
        return st;
    for (int l = 0; l < c->num_layers; l++) {
        bq_layer_weights *w = &m->layers[l];
        struct {
            const char *suffix;
            int64_t d0, d1;
            const float **dst;
        } parts[] = {
            {"attention.self.query.weight", H, H, &w->q_w},
            {"attention.self.query.bias", H, 0, &w->q_b},
            {"attention.self.key.weight", H, H, &w->k_w},
            {"attention.self.key.bias", H, 0, &w->k_b},
            {"attention.self.value.weight", H, H, &w->v_w},
            {"attention.self.value.bias", H, 0, &w->v_b},
            {"attention.output.dense.weight", H, H, &w->attn_out_w},
            {"attention.output.dense.bias", H, 0, &w->attn_out_b},
            {"attention.output.LayerNorm.weight", H, 0, &w->attn_ln_g},
            {"attention.output.LayerNorm.bias", H, 0, &w->attn_ln_b},
            {"intermediate.dense.weight", I, H, &w->ffn_in_w},
            {"intermediate.dense.bias", I, 0, &w->ffn_in_b},
            {"output.dense.weight", H, I, &w->ffn_out_w},
            {"output.dense.bias", H, 0, &w->ffn_out_b},
            {"output.LayerNorm.weight", H, 0, &w->ffn_ln_g},
            {"output.LayerNorm.bias", H, 0, &w->ffn_ln_b},
        };
        for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
            char name[160];
            snprintf(name, sizeof name, "bert.encoder.layer.%d.%s", l, parts[p].suffix);
            if ((st = get_weight(s, name, parts[p].d0, parts[p].d1, parts[p].dst, err))) return st;
        }
    }
    if ((st = get_weight(s, "qa_outputs.weight", 2, H, &m->qa_w, err)) ||
        (st = get_weight(s, "qa_outputs.bias", 2, 0, &m->qa_b, err))) {
        /* a BERT checkpoint of another task: say so, not only which tensor is missing */
        const bq_safetensors *file = NULL;
        if (!find_tensor(s, "qa_outputs.weight", &file) && c->architecture[0] &&
            strcmp(c->architecture, "BertForQuestionAnswering") != 0)
            bq_err_prefix(err, "a %s checkpoint, not BertForQuestionAnswering (config.json's architectures)",
                          c->architecture);
        return st;
    }
    for (int f = 0; f < s->n_files; f++)
        if ((st = check_layer_count(s->files[f].st, c->num_layers, err))) return st;
    return BQ_OK;
}

/* ---- where the checkpoint lies ----------------------------------------------------------------- */

/* huggingface_hub's validate_repo_id: [namespace/]name of word characters, '-' and '.', each part
 * starting and ending with a word character, no "--" or "..", at most 96 characters. */
static bool is_repo_id(const char *id) {
    size_t len = strlen(id);
    if (len == 0 || len > 96 || strstr(id, "--") || strstr(id, "..")) return false;
    int slashes = 0;
    const char *part = id;
    for (const char *p = id;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t n = (size_t)(p - part);
            bool word_first = n > 0 && (isalnum((unsigned char)part[0]) || part[0] == '_');
            bool word_last = n > 0 && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
            if (!word_first || !word_last) return false;
            if (*p == '\0') break;
            if (++slashes > 1) return false;
            part = p + 1;
        } else if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') {
            return false;
        }
    }
    return true;
}

/* A revision after "org/name@": a branch, tag or commit name, or "refs/pr/N": letters, digits,
 * '.', '_', '-' and single '/' between names, no "..", at most 200 characters. */
static bool is_revision(const char *r) {
    const size_t len = strlen(r);
    if (len == 0 || len > 200 || r[0] == '/' || r[len - 1] == '/' || strstr(r, "..") || strstr(r, "//"))
        return false;
    for (const char *p = r; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-/", *p)) return false;
    return true;
}

/* "~/x" with $HOME (as Python's expanduser); other values as given. NULL for NULL or "". */
static char *expand_home(const char *value, const char *suffix) {
    if (!value || !*value) return NULL;
    const char *home = getenv("HOME");
    bool tilde = value[0] == '~' && (value[1] == '/' || value[1] == '\0') && home && *home;
    size_t n = (tilde ? strlen(home) : 0) + strlen(value) + strlen(suffix) + 1;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s%s%s", tilde ? home : "", tilde ? value + 1 : value, suffix);
    return out;
}

/* The hub cache folder, in huggingface_hub's order (constants.py): the first variable set. */
static char *hub_cache_dir(void) {
    static const struct {
        const char *variable, *suffix;
    } order[] = {{"HF_HUB_CACHE", ""}, {"HUGGINGFACE_HUB_CACHE", ""}, {"HF_HOME", "/hub"},
                 {"XDG_CACHE_HOME", "/huggingface/hub"}};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *value = getenv(order[i].variable);
        if (value && *value) return expand_home(value, order[i].suffix);
    }
    return expand_home("~", "/.cache/huggingface/hub");
}

bq_status bq_model_locate(const char *name, char **dir_out, bq_err *err) {
    if (!name || !dir_out) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_model_locate: NULL argument");
    *dir_out = NULL;
    struct stat sb;
    const bool exists = stat(name, &sb) == 0;
    const int stat_errno = errno;
    if (exists && !S_ISDIR(sb.st_mode))
        return bq_fail(err, BQ_ERR_IO, "'%s' is a file, not a checkpoint folder (config.json, "
                       "model.safetensors, vocab.txt)", name);
    /* "org/name@REVISION" (as huggingface_hub's hf:// paths write it): a branch, a tag, a commit
     * or "refs/pr/N" instead of main */
    const char *at_sign = strchr(name, '@');
    const size_t id_len = at_sign ? (size_t)(at_sign - name) : strlen(name);
    char id[128];
    const bool id_fits = id_len < sizeof id;
    if (id_fits) {
        memcpy(id, name, id_len);
        id[id_len] = '\0';
    }
    const char *wanted = at_sign ? at_sign + 1 : "main";
    if (exists || stat_errno != ENOENT || !id_fits || !is_repo_id(id) || !is_revision(wanted)) {
        /* a path: what is wrong with it is said when its files are read */
        *dir_out = bq_strndup(name, strlen(name));
        return *dir_out ? BQ_OK : bq_fail(err, BQ_ERR_NOMEM, "out of memory");
    }
    char *cache = hub_cache_dir();
    if (!cache)
        return bq_fail(err, BQ_ERR_IO, "'%s': no such folder (and no Hugging Face cache to look in: HOME is "
                       "not set)", name);
    /* models--org--name/refs/REVISION -> COMMIT, models--org--name/snapshots/COMMIT/ */
    size_t cap = strlen(cache) + strlen(name) * 2 + 128 + 256;
    char *repo = malloc(cap), *ref_path = malloc(cap), *snapshot = malloc(cap);
    char *ref = NULL;
    bq_status st = BQ_OK;
    if (!repo || !ref_path || !snapshot) {
        st = bq_fail(err, BQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* the repo's folder: "models--" + the id with '/' as "--" (a repo id is at most 96 characters) */
    size_t at = (size_t)snprintf(repo, cap, "%s/models--", cache);
    for (const char *p = id; *p; p++) {
        if (*p == '/') repo[at++] = '-';
        repo[at++] = *p == '/' ? '-' : *p;
    }
    repo[at] = '\0';
    if (stat(repo, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = bq_fail(err, BQ_ERR_IO, "'%s': no such folder, nor a Hugging Face cache entry for it (%s; "
                     "`hf download %s%s%s` fetches it, or give the checkpoint folder)", name, repo, id,
                     at_sign ? " --revision " : "", at_sign ? wanted : "");
        goto done;
    }
    /* as try_to_load_from_cache: refs/REVISION names the commit where that file exists, else the
     * revision is the commit itself (and a snapshot folder is one name, no '/') */
    snprintf(ref_path, cap, "%s/refs/%s", repo, wanted);
    const char *revision = wanted;
    size_t ref_len = 0;
    if (stat(ref_path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if ((st = bq_read_regular_file(ref_path, 256, &ref, &ref_len, err))) goto done;
        while (ref_len > 0 && isspace((unsigned char)ref[ref_len - 1])) ref[--ref_len] = '\0';
        if (ref_len == 0 || strchr(ref, '/') || strcmp(ref, "..") == 0) {
            st = bq_fail(err, BQ_ERR_FORMAT, "'%s': not a commit name", ref_path);
            goto done;
        }
        revision = ref;
    }
    snprintf(snapshot, cap, "%s/snapshots/%s", repo, revision);
    if (strchr(revision, '/') || stat(snapshot, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = bq_fail(err, BQ_ERR_IO, "'%s': the Hugging Face cache has no snapshot of its revision %s (%s)",
                     name, wanted, snapshot);
        goto done;
    }
    *dir_out = snapshot;
    snapshot = NULL;
done:
    free(cache);
    free(repo);
    free(ref_path);
    free(snapshot);
    free(ref);
    return st;
}

bq_status bq_model_load(const char *name, const char *fallback_vocab, bq_model **out, bq_err *err) {
    if (!out) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_model_load: out is NULL");
    *out = NULL;
    if (!name) return bq_fail(err, BQ_ERR_INVALID_ARG, "bq_model_load: model folder is NULL");
    char *dir = NULL;
    bq_status st = bq_model_locate(name, &dir, err);
    if (st) return st;
    char *config_path = bq_join_path(dir, "config.json");
    char *weights_path = bq_join_path(dir, "model.safetensors");
    char *vocab_path = bq_join_path(dir, "vocab.txt");
    char *config_text = NULL;
    char *tokenizer_json = NULL; /* the vocabulary's file where it came from tokenizer.json */
    bq_model *m = calloc(1, sizeof *m);
    model_storage *s = calloc(1, sizeof *s);
    if (!config_path || !weights_path || !vocab_path || !m || !s) {
        st = bq_fail(err, BQ_ERR_NOMEM, "out of memory loading '%s'", dir);
        goto fail;
    }
    m->internal = s;
    m->dir = dir;

    size_t config_len;
    /* a Hugging Face config.json is a few kB; the cap stops a device file read without end */
    if ((st = bq_read_regular_file(config_path, 16u << 20, &config_text, &config_len, err))) goto fail;
    if ((st = bq_config_parse(config_text, config_len, config_path, &m->config, err))) goto fail;

    /* One file, else shards listed by an index: the order Hugging Face's from_pretrained tries. */
    if (access(weights_path, F_OK) == 0) {
        if (!(s->files = calloc(1, sizeof *s->files))) {
            st = bq_fail(err, BQ_ERR_NOMEM, "out of memory loading '%s'", dir);
            goto fail;
        }
        s->n_files = 1;
        if ((st = bq_safetensors_open(weights_path, &s->files[0].st, err))) goto fail;
    } else {
        s->index_path = bq_join_path(dir, "model.safetensors.index.json");
        if (!s->index_path) {
            st = bq_fail(err, BQ_ERR_NOMEM, "out of memory loading '%s'", dir);
            goto fail;
        }
        if (access(s->index_path, F_OK) != 0) {
            char *bin_path = bq_join_path(dir, "pytorch_model.bin");
            bool has_bin = bin_path && access(bin_path, F_OK) == 0;
            free(bin_path);
            st = bq_fail(err, BQ_ERR_IO, "'%s': no model.safetensors (nor model.safetensors.index.json)%s", dir,
                         has_bin ? " (pytorch_model.bin is not supported: save the model with safetensors)" : "");
            goto fail;
        }
        if ((st = open_shards(s, dir, err))) goto fail;
    }

    /* vocab.txt, else tokenizer.json's vocabulary (transformers 5 saves only that), else the
     * fallback; the folder's tokenizer files must describe the tokenizer we implement */
    const char *vocab_file = NULL;
    if (access(vocab_path, F_OK) == 0) {
        vocab_file = vocab_path;
        if ((st = bq_vocab_load(vocab_path, &m->vocab, err))) goto fail;
    }
    if ((st = bq_tokenizer_files_load(dir, &m->vocab, &tokenizer_json, err))) goto fail;
    if (tokenizer_json) vocab_file = tokenizer_json;
    if (!m->vocab) {
        if (!fallback_vocab) {
            st = bq_fail(err, BQ_ERR_IO, "'%s': no vocab.txt or tokenizer.json in the model folder and no fallback "
                         "vocabulary given", dir);
            goto fail;
        }
        vocab_file = fallback_vocab;
        if ((st = bq_vocab_load(fallback_vocab, &m->vocab, err))) goto fail;
        if (!(m->vocab_fallback = strdup(fallback_vocab))) {
            st = bq_fail(err, BQ_ERR_NOMEM, "out of memory loading '%s'", dir);
            goto fail;
        }
    }
    /* The tokenizer's ids index word_embeddings, so the vocabulary may not have more tokens than the
     * embedding has rows. Fewer is allowed (Hugging Face pads vocab_size in some checkpoints). */
    if (bq_vocab_size(m->vocab) > m->config.vocab_size) {
        st = bq_fail(err, BQ_ERR_FORMAT, "'%s' has %d tokens but '%s' says vocab_size %d", vocab_file,
                     (int)bq_vocab_size(m->vocab), config_path, m->config.vocab_size);
        goto fail;
    }

    m->layers = calloc((size_t)m->config.num_layers, sizeof *m->layers);
    if (!m->layers) {
        st = bq_fail(err, BQ_ERR_NOMEM, "out of memory loading '%s'", dir);
        goto fail;
    }
    if ((st = load_weights(m, s, err))) goto fail;
    snprintf(m->checkpoint_dtype, sizeof m->checkpoint_dtype, "%s",
             s->mixed ? "MIXED" : bq_dtype_name(s->weight_dtype));

    free(config_path);
    free(weights_path);
    free(vocab_path);
    free(config_text);
    free(tokenizer_json);
    *out = m;
    return BQ_OK;
fail:
    if (m && m->dir) bq_model_free(m);
    else {
        free(m);
        model_storage_free(s);
        free(dir);
    }
    free(config_path);
    free(weights_path);
    free(vocab_path);
    free(config_text);
    free(tokenizer_json);
    return st;
}
