/* emu_faults.h - fault injection into the emulated CUDA runtime, for the emulated build's C tests
 * (tests/test_gpu_model.c under BQ_CUDA_EMULATED): a device that runs out of memory at a chosen
 * cudaMalloc, and other runtime calls that fail on purpose, so that the engine's error paths run
 * on the CPU. */
#ifndef BQ_EMU_FAULTS_H
#define BQ_EMU_FAULTS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The emulated device's memory in bytes (cudaMemGetInfo, cudaGetDeviceProperties; cudaMalloc
 * fails past it); 0: an H100's 80 GB again. */
void bq_emu_set_device_memory(size_t bytes);
/* From the n-th cudaMalloc after this call on (1 = the next), every cudaMalloc fails with
 * cudaErrorMemoryAllocation, as on a device that is full; n <= 0 turns it off. */
void bq_emu_fail_device_alloc_from(long n);
/* Whether a cudaMalloc failed that way since the last bq_emu_fail_device_alloc_from. */
int bq_emu_device_alloc_failed(void);
/* How many cudaMalloc allocations are live (not yet cudaFree'd). */
long bq_emu_live_device_allocations(void);
/* The n-th call (1 = the next) of the runtime function named `api` after this call fails, once
 * and not stickily, as the real one can: "cudaStreamCreate", "cudaEventCreate", "cudaHostAlloc",
 * "cudaGraphInstantiate" (cudaErrorMemoryAllocation), "cudaStreamBeginCapture"
 * (cudaErrorStreamCaptureUnsupported), "cudaGraphLaunch" (cudaErrorLaunchOutOfResources). One
 * function at a time; api NULL or n <= 0 turns it off. A program that makes no such call takes
 * its choice from the environment, BQ_EMU_FAIL_CALL=api:n (bertqa-gpu-emulated in the command
 * line's tests). */
void bq_emu_fail_call(const char *api, long n);
/* Whether that call failed since the last bq_emu_fail_call. */
int bq_emu_call_failed(void);

#ifdef __cplusplus
}
#endif
#endif
