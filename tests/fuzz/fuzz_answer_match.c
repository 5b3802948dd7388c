/* fuzz_answer_match.c - the official SQuAD answer comparison (bq_squad_normalize, bq_squad_exact,
 * bq_squad_f1) on two strings cut from the input at its first NUL: no crash on any bytes; for UTF-8
 * text, a string matches itself, both metrics are symmetric, F1 lies in [0, 1] and is 1 on an
 * exact match with words left after normalization. */
#include <math.h>

#include "fuzz_common.h"
#include "squad_eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *cut = memchr(data, '\0', size);
    const size_t len_a = cut ? (size_t)(cut - data) : size;
    char *a = fuzz_strndup(data, len_a);
    char *b = cut ? fuzz_strndup(cut + 1, size - len_a - 1) : fuzz_strndup(NULL, 0);
    char *norm_a = bq_squad_normalize(a, strlen(a));
    char *norm_b = bq_squad_normalize(b, strlen(b));

    const int exact = bq_squad_exact(a, b);
    const double f1 = bq_squad_f1(a, b);
    FUZZ_ASSERT(exact == bq_squad_exact(b, a), "exact not symmetric");
    FUZZ_ASSERT(f1 == bq_squad_f1(b, a), "F1 not symmetric: %.17g vs %.17g", f1, bq_squad_f1(b, a));
    FUZZ_ASSERT(f1 >= 0.0 && f1 <= 1.0, "F1 %.17g", f1);
    if (norm_a && norm_b) {
        FUZZ_ASSERT(exact == (strcmp(norm_a, norm_b) == 0), "exact %d for '%s' vs '%s'", exact, norm_a,
                    norm_b);
        if (exact && strspn(norm_a, " ") < strlen(norm_a))
            FUZZ_ASSERT(fabs(f1 - 1.0) < 1e-12, "exact match with F1 %.17g ('%s')", f1, norm_a);
    } else {
        FUZZ_ASSERT(exact == 0, "text that cannot be normalized matched");
    }
    if (norm_a) {
        FUZZ_ASSERT(bq_squad_exact(a, a) == 1, "'%s' does not match itself", a);
        /* normalized text has no ASCII punctuation, no upper-case ASCII, no doubled spaces */
        for (const char *p = norm_a; *p; p++) {
            FUZZ_ASSERT(!(*p >= 'A' && *p <= 'Z'), "upper case left in '%s'", norm_a);
            FUZZ_ASSERT(!strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", *p), "punctuation left in '%s'", norm_a);
            FUZZ_ASSERT(!(p[0] == ' ' && p[1] == ' '), "doubled space in '%s'", norm_a);
        }
    }
    free(norm_a);
    free(norm_b);
    free(a);
    free(b);
    return 0;
}
