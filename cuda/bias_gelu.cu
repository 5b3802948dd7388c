/* bias_gelu.cu - placeholder until the kernel lands. */
