/* attention_cudnn.cu - placeholder until the kernel lands. */
