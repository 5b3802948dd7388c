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

} // namespace bq_emu

#endif
