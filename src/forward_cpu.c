/* forward_cpu.c - placeholder until the module lands. */
typedef int bq_placeholder_forward_cpu;
