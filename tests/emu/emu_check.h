/* emu_check.h - the failure counter and CHECK macro of the emulator's own tests
 * (test_emu_runtime.cpp, test_tensor_core_emu.cpp): every check runs and prints, main returns the
 * count. */
#ifndef BQ_EMU_CHECK_H
#define BQ_EMU_CHECK_H

#include <stdio.h>

static int g_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            g_failures++;                                                                          \
        }                                                                                          \
    } while (0)

#endif
