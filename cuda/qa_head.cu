/* qa_head.cu - placeholder until the kernel lands. */
