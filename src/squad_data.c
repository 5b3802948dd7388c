/* squad_data.c - placeholder until the module lands. */
typedef int bq_placeholder_squad_data;
