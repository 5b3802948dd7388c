/* engine_cuda_stub.c - placeholder until the module lands. */
typedef int bq_placeholder_engine_cuda_stub;
