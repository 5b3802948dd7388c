/* fuzz_model_load.c - loading a checkpoint folder (bq_model_load): the input is config.json, a NUL,
 * vocab.txt, a NUL, model.safetensors (a part left out: that file is absent), written into a folder
 * of their own (fuzz_temp_dir). A failure has a message; a loaded model has every weight its
 * config's shapes call for, each element readable (ASan sees one outside its tensor), and a
 * vocabulary no larger than vocab_size. */
#include "fuzz_common.h"
#include "model.h"

static const char *const files[] = {"config.json", "vocab.txt", "model.safetensors"};

/* Reads n floats (so that ASan checks the whole tensor lies in memory we own). */
static void touch(const float *p, size_t n, const char *what) {
    FUZZ_ASSERT(p != NULL || n == 0, "%s missing", what);
    volatile float sink = 0.0f;
    for (size_t i = 0; i < n; i++) sink += p[i];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part = data, *end = data + size;
    for (int i = 0; i < 3; i++) {
        fuzz_remove_file(files[i]);
        if (!part) continue;
        const uint8_t *cut = i < 2 ? memchr(part, '\0', (size_t)(end - part)) : NULL;
        const uint8_t *stop = cut ? cut : end;
        fuzz_write_file(files[i], part, (size_t)(stop - part));
        part = cut ? cut + 1 : NULL;
    }

    bq_model *m = NULL;
    bq_err err = {0};
    bq_status s = bq_model_load(fuzz_temp_dir(), NULL, &m, &err);
    if (s != BQ_OK) {
        FUZZ_ASSERT(err.message[0] != '\0', "status %s without a message", bq_status_string(s));
        FUZZ_ASSERT(m == NULL, "a failed load handed out a model");
        return 0;
    }
    const bq_config *c = &m->config;
    const size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    FUZZ_ASSERT(bq_vocab_size(m->vocab) <= c->vocab_size, "%d tokens for vocab_size %d", bq_vocab_size(m->vocab),
                c->vocab_size);
    touch(m->word_emb, (size_t)c->vocab_size * H, "word embeddings");
    touch(m->pos_emb, (size_t)c->max_position_embeddings * H, "position embeddings");
    touch(m->type_emb, (size_t)c->type_vocab_size * H, "type embeddings");
    touch(m->emb_ln_g, H, "embeddings LayerNorm");
    touch(m->emb_ln_b, H, "embeddings LayerNorm bias");
    for (int l = 0; l < c->num_layers; l++) {
        const bq_layer_weights *w = &m->layers[l];
        const float *hh[] = {w->q_w, w->k_w, w->v_w, w->attn_out_w};
        const float *h[] = {w->q_b, w->k_b, w->v_b, w->attn_out_b, w->attn_ln_g, w->attn_ln_b,
                            w->ffn_out_b, w->ffn_ln_g, w->ffn_ln_b};
        for (size_t k = 0; k < sizeof hh / sizeof hh[0]; k++) touch(hh[k], H * H, "an H x H weight");
        for (size_t k = 0; k < sizeof h / sizeof h[0]; k++) touch(h[k], H, "an H vector");
        touch(w->ffn_in_w, I * H, "FFN-in weight");
        touch(w->ffn_in_b, I, "FFN-in bias");
        touch(w->ffn_out_w, H * I, "FFN-out weight");
    }
    touch(m->qa_w, 2 * H, "QA head");
    touch(m->qa_b, 2, "QA head bias");
    bq_model_free(m);
    return 0;
}
