/* squad_features.c - placeholder until the module lands. */
typedef int bq_placeholder_squad_features;
