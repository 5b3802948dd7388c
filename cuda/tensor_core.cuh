/* tensor_core.cuh - the few warp-level PTX instructions our tensor-core kernels use, one small
 * function each, so that kernels read as plain C++ and the CPU emulator (tests/emu) can stand in
 * for exactly these functions with the layouts the PTX ISA documents (sm_80 and later).
 *
 * Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"), with g = lane / 4 and
 * t = lane % 4; a register holds two 16-bit values, the lower-numbered column (or k) in its low half:
 *   A (16 x 16, row-major):  a[0] = (row g,   k 2t..2t+1)   a[1] = (row g+8, k 2t..2t+1)
 *                            a[2] = (row g,   k 2t+8..+9)   a[3] = (row g+8, k 2t+8..+9)
 *   B (16 x 8, "col"):       b[0] = (k 2t..2t+1, col g)     b[1] = (k 2t+8..+9, col g)
 *   C / D (16 x 8, fp32):    c[0], c[1] = (row g, cols 2t, 2t+1)   c[2], c[3] = (row g+8, same)
 * ldmatrix .x4 loads four 8 x 8 matrices of 16-bit values: lanes 8i..8i+7 give the shared addresses
 * of rows 0..7 of matrix i, and register i of lane L receives row L/4, columns 2(L%4), 2(L%4)+1 of
 * matrix i (with .trans: row and column exchanged, i.e. rows 2(L%4), 2(L%4)+1 of column L/4). */
#ifndef BQ_TENSOR_CORE_CUH
#define BQ_TENSOR_CORE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

__device__ __forceinline__ uint32_t bq_shared_address(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* Four 8x8 b16 matrices from shared memory (row addresses from lanes 8i..8i+7 for matrix i). */
__device__ __forceinline__ void bq_ldmatrix_x4(uint32_t r[4], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(bq_shared_address(row)));
}

/* The same, each matrix transposed on the way to registers. */
__device__ __forceinline__ void bq_ldmatrix_x4_trans(uint32_t r[4], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(bq_shared_address(row)));
}

/* d += a . b for one 16x8x16 tile, 16-bit inputs of type T (__half or __nv_bfloat16), fp32
 * accumulators. */
template <typename T>
__device__ __forceinline__ void bq_mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2]);

template <>
__device__ __forceinline__ void bq_mma_16816<__half>(float d[4], const uint32_t a[4],
                                                     const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <>
__device__ __forceinline__ void bq_mma_16816<__nv_bfloat16>(float d[4], const uint32_t a[4],
                                                            const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* Two floats rounded to nearest into one register of T pairs: lo in bits 0..15, hi in 16..31. */
template <typename T> __device__ __forceinline__ uint32_t bq_pack2(float lo, float hi);

template <> __device__ __forceinline__ uint32_t bq_pack2<__half>(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

template <> __device__ __forceinline__ uint32_t bq_pack2<__nv_bfloat16>(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* Asynchronous 16-byte global -> shared copy; when `valid` is false nothing is read and the 16
 * shared bytes are zero-filled. Both addresses 16-byte aligned. */
__device__ __forceinline__ void bq_cp_async_16(void *shared_dst, const void *global_src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
                 :
                 : "r"(bq_shared_address(shared_dst)), "l"(global_src), "r"(valid ? 16 : 0));
}

/* Close the group of cp.async issued so far by this thread. */
__device__ __forceinline__ void bq_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

/* Wait until at most `pending` of this thread's committed groups are still in flight. Other
 * threads' copies become visible only after a barrier that follows their wait. */
template <int pending> __device__ __forceinline__ void bq_cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(pending));
}

#endif
