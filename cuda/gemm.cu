/* gemm.cu - placeholder until the kernel lands. */
