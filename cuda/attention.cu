/* attention.cu - placeholder until the kernel lands. */
