/* cuda_emu_runtime.h - what the emulator's runtime files (cuda_emu_runtime.cpp, cuda_emu_stream.cpp,
 * cublaslt_emu.cpp) share; kernel code sees only cuda_emu.h. */
#ifndef BQ_CUDA_EMU_RUNTIME_H
#define BQ_CUDA_EMU_RUNTIME_H

#include <cuda_runtime.h>
#include <stddef.h>

namespace bq_emu {

/* The error a failed kernel left (every later call reports it), or cudaSuccess. */
cudaError_t sticky_error();
/* Remember `e` for cudaGetLastError (not sticky); returns e. */
cudaError_t record_error(cudaError_t e);
/* Whether [p, p + bytes) lies inside one live cudaMalloc allocation. */
bool in_device_allocation(const void *p, size_t bytes);
/* Bytes held by live cudaMalloc allocations. */
size_t device_bytes_allocated();
/* The device's memory: an H100's 80 GB unless a test set another (emu_faults.h); cudaMalloc fails
 * past it. */
size_t device_memory();
/* What cudaMemGetInfo calls free: device_memory() less the live allocations, 0 while emu_faults.h
 * keeps the device full. */
size_t device_bytes_free();
/* Whether this call of `api` is the one emu_faults.h's bq_emu_fail_call picked to fail (counts
 * the call). */
bool injected_failure(const char *api);

} // namespace bq_emu

#endif
