/* squad_eval.c - placeholder until the module lands. */
typedef int bq_placeholder_squad_eval;
