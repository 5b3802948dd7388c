/* engine_cuda.cu - placeholder until the kernel lands. */
