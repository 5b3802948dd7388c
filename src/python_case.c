/* python_case.c - the context rule of Python's str.lower() (CPython: Final_Sigma, the only one it
 * implements) and the Unicode properties it reads, shared by the SQuAD metric (squad_eval.c) and
 * decoding's get_final_text (tokenizer.c's bq_basic_final_sigmas). Unicode 15, from utf8proc and
 * PropList.txt. */
#include "python_case.h"

#include <utf8proc.h>

typedef struct {
    int32_t lo, hi;
} cp_range;

static bool in_ranges(int32_t c, const cp_range *r, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (c >= r[i].lo && c <= r[i].hi) return true;
    return false;
}

/* Unicode Cased = Lu | Ll | Lt | Other_Lowercase | Other_Uppercase (PropList.txt, Unicode 15). */
bool bq_py_is_cased(int32_t c) {
    static const cp_range other_case[] = {
        {0xAA, 0xAA}, {0xBA, 0xBA}, {0x2B0, 0x2B8}, {0x2C0, 0x2C1}, {0x2E0, 0x2E4},
        {0x345, 0x345}, {0x37A, 0x37A}, {0x10FC, 0x10FC}, {0x1D2C, 0x1D6A}, {0x1D78, 0x1D78},
        {0x1D9B, 0x1DBF}, {0x2071, 0x2071}, {0x207F, 0x207F}, {0x2090, 0x209C}, {0x2160, 0x217F},
        {0x24B6, 0x24E9}, {0x2C7C, 0x2C7D}, {0xA69C, 0xA69D}, {0xA770, 0xA770}, {0xA7F2, 0xA7F4},
        {0xA7F8, 0xA7F9}, {0xAB5C, 0xAB5F}, {0xAB69, 0xAB69}, {0x10780, 0x10780},
        {0x10783, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA}, {0x1E030, 0x1E06D},
        {0x1F130, 0x1F149}, {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
    };
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
           cat == UTF8PROC_CATEGORY_LT ||
           in_ranges(c, other_case, sizeof other_case / sizeof other_case[0]);
}

/* Unicode Case_Ignorable = Mn | Me | Cf | Lm | Sk | Word_Break in {MidLetter, MidNumLet,
 * Single_Quote}. */
bool bq_py_is_case_ignorable(int32_t c) {
    static const cp_range word_break_mid[] = {
        {0x27, 0x27}, {0x2E, 0x2E}, {0x3A, 0x3A}, {0xB7, 0xB7}, {0x387, 0x387}, {0x55F, 0x55F},
        {0x5F4, 0x5F4}, {0x2018, 0x2019}, {0x2024, 0x2024}, {0x2027, 0x2027}, {0xFE13, 0xFE13},
        {0xFE52, 0xFE52}, {0xFE55, 0xFE55}, {0xFF07, 0xFF07}, {0xFF0E, 0xFF0E}, {0xFF1A, 0xFF1A},
    };
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_SK:
        return true;
    default:
        return in_ranges(c, word_break_mid, sizeof word_break_mid / sizeof word_break_mid[0]);
    }
}

/* CPython's rule: U+03A3 lowers to final sigma U+03C2 when preceded by a cased letter and not
 * followed by one, skipping case-ignorable characters in both directions. */
int32_t bq_py_lower_capital_sigma(const int32_t *text, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && bq_py_is_case_ignorable(text[j - 1])) j--;
    if (j == 0 || !bq_py_is_cased(text[j - 1])) return 0x3C3;
    j = i + 1;
    while (j < n && bq_py_is_case_ignorable(text[j])) j++;
    return (j < n && bq_py_is_cased(text[j])) ? 0x3C3 : 0x3C2;
}
