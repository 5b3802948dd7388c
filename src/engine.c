/* engine.c - placeholder until the module lands. */
typedef int bq_placeholder_engine;
