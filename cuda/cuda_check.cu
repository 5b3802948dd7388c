/* cuda_check.cu - placeholder until the kernel lands. */
