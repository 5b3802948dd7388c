/* fuzz_config.c - config.json parsing (bq_config_parse): any bytes give BQ_OK with sizes in range
 * and dividing, or a failure with a message; never a crash. */
#include "fuzz_common.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bq_config c;
    bq_err err = {0};
    bq_status s = bq_config_parse((const char *)data, size, "config.json", &c, &err);
    if (s != BQ_OK) {
        FUZZ_ASSERT(err.message[0] != '\0', "status %s without a message", bq_status_string(s));
        return 0;
    }
    FUZZ_ASSERT(c.hidden_size > 0 && c.num_heads > 0 && c.hidden_size % c.num_heads == 0,
                "hidden %d heads %d", c.hidden_size, c.num_heads);
    FUZZ_ASSERT(c.num_layers > 0 && c.intermediate_size > 0 && c.vocab_size > 0 &&
                    c.max_position_embeddings > 0 && c.type_vocab_size > 0,
                "layers %d intermediate %d vocab %d positions %d types %d", c.num_layers,
                c.intermediate_size, c.vocab_size, c.max_position_embeddings, c.type_vocab_size);
    FUZZ_ASSERT(c.layer_norm_eps > 0.0f, "eps %g", (double)c.layer_norm_eps);
    FUZZ_ASSERT(memchr(c.architecture, '\0', sizeof c.architecture) != NULL, "architecture not terminated");
    return 0;
}
