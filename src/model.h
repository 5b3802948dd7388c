/* model.h - a BERT question-answering model loaded from a Hugging Face checkpoint folder
 * (config.json, model.safetensors, vocab.txt), held as fp32 host tensors in Hugging Face layout:
 * Linear weights [out, in] row-major, y = x W^T + b. */
#ifndef BQ_MODEL_H
#define BQ_MODEL_H

#include "common.h"
#include "vocab.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int hidden_size;             /* H: 1024 for BERT-large */
    int num_layers;              /* 24 */
    int num_heads;               /* 16 (head size H / heads = 64) */
    int intermediate_size;       /* I: 4096 */
    int max_position_embeddings; /* 512 */
    int type_vocab_size;         /* 2 */
    int vocab_size;              /* 30522 */
    float layer_norm_eps;        /* 1e-12 */
    char architecture[64];       /* config.json's first "architectures" entry ("" if none) */
    int random_weights;          /* 1 when config.json carries bertqa-make-model's
                                    "bertqa_random_weights" mark: the weights mean nothing */
} bq_config;

/* Parse config.json text; rejects hidden_act other than erf GELU ("gelu") and sizes that do not
 * divide (hidden % heads) or are out of range, naming the field. */
bq_status bq_config_parse(const char *json, size_t len, const char *name, bq_config *out, bq_err *err);

typedef struct {
    const float *q_w, *q_b;       /* [H,H], [H] */
    const float *k_w, *k_b;
    const float *v_w, *v_b;
    const float *attn_out_w, *attn_out_b;  /* [H,H], [H] */
    const float *attn_ln_g, *attn_ln_b;    /* [H] */
    const float *ffn_in_w, *ffn_in_b;      /* [I,H], [I] */
    const float *ffn_out_w, *ffn_out_b;    /* [H,I], [H] */
    const float *ffn_ln_g, *ffn_ln_b;      /* [H] */
} bq_layer_weights;

typedef struct bq_model bq_model;

struct bq_model {
    bq_config config;
    bq_vocab *vocab;                /* from the folder's vocab.txt, else the fallback given */
    char *vocab_fallback;           /* the fallback's path where the folder has neither vocab.txt
                                       nor tokenizer.json, else NULL */
    char checkpoint_dtype[8];       /* "F32" / "F16" / "BF16" (the dtype of the weight tensors);
                                       "MIXED" when they differ */
    const float *word_emb;          /* [vocab, H] */
    const float *pos_emb;           /* [max_pos, H] */
    const float *type_emb;          /* [type_vocab, H] */
    const float *emb_ln_g, *emb_ln_b; /* [H] */
    bq_layer_weights *layers;       /* [num_layers] */
    const float *qa_w, *qa_b;       /* [2,H], [2]: row 0 start, row 1 end */
    char *dir;                      /* the folder loaded: as given, or the Hugging Face cache's
                                       snapshot of a repo id (bq_model_locate) */
    void *internal;                 /* loader-owned storage (mapping, converted copies) */
};

/* Where the checkpoint `name` lies: `name` itself when it exists (or is no Hugging Face repo id);
 * else, for a repo id ("org/model" or "model": letters, digits, '_', '-', '.', at most 96
 * characters, no "--" or ".."), the snapshot of its main revision in the local Hugging Face cache,
 * found as huggingface_hub finds it offline: the cache is $HF_HUB_CACHE, else
 * $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub; the repo's folder there is models--org--model, its refs/main names the
 * commit and snapshots/COMMIT is the checkpoint folder. "org/model@REVISION" takes another
 * revision (a branch, a tag, "refs/pr/N": refs/REVISION names the commit; or a commit itself) as
 * huggingface_hub's try_to_load_from_cache(revision=...) does. Nothing is downloaded.
 * Returns BQ_OK with *dir_out (heap; the caller frees it), BQ_ERR_IO when a repo id has no such
 * folder and no cache entry (the message names where it looked), or BQ_ERR_NOMEM. */
bq_status bq_model_locate(const char *name, char **dir_out, bq_err *err);

/* Load a checkpoint folder, or a repo id from the Hugging Face cache (bq_model_locate). The
 * weights are model.safetensors or, where that is absent, the shards model.safetensors.index.json
 * lists (Hugging Face's sharded layout; each shard must be a file in the folder and hold every
 * tensor the index puts in it). The vocabulary is vocab.txt, else tokenizer.json's, else
 * `fallback_vocab` (may be NULL); the folder's tokenizer files must describe BERT uncased
 * (bq_tokenizer_files_load). Errors name the file and the tensor (missing, wrong shape, wrong
 * dtype) or the tokenizer setting.
 * Accepts F32/F16/BF16 weights, names with or without the "bert." prefix, LayerNorm gamma/beta;
 * ignores bert.embeddings.position_ids, bert.pooler.* and other unknown tensors, but rejects encoder
 * layers beyond num_hidden_layers. The vocabulary may have fewer tokens than vocab_size (padded
 * embeddings, as Hugging Face allows) but not more (ids would index past word_embeddings). */
bq_status bq_model_load(const char *dir, const char *fallback_vocab, bq_model **out, bq_err *err);
void bq_model_free(bq_model *m); /* accepts NULL */

/* FLOPs of one forward pass of one sequence of `seq_len` tokens (2 per multiply-add). */
double bq_model_flops(const bq_config *c, int seq_len);

#ifdef __cplusplus
}
#endif
#endif
