/* python_case.h - Python's str.lower() context rule for U+03A3 (see python_case.c). */
#ifndef BQ_PYTHON_CASE_H
#define BQ_PYTHON_CASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Unicode Cased and Case_Ignorable. */
bool bq_py_is_cased(int32_t c);
bool bq_py_is_case_ignorable(int32_t c);
/* What str.lower() makes of the capital sigma at text[i] (of text[0..n), the string lowered):
 * U+03C2 (final) when a cased letter precedes it and none follows, skipping case-ignorable
 * characters both ways; else U+03C3. */
int32_t bq_py_lower_capital_sigma(const int32_t *text, size_t n, size_t i);

#ifdef __cplusplus
}
#endif
#endif
