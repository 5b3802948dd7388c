/* bias_residual_layernorm.cu - placeholder until the kernel lands. */
