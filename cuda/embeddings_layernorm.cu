/* embeddings_layernorm.cu - placeholder until the kernel lands. */
