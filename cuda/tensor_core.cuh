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

/* ---- Hopper warpgroup MMA (wgmma), sm_90a only ---------------------------------------------
 * A warpgroup is 4 consecutive warps (threads 128w .. 128w + 127 of a block); wgmma.mma_async
 * is issued by all 128 threads together and computes D (64 x N, fp32) (+)= A (64 x 16) . B
 * (16 x N). Warp i of the group owns D rows 16i .. 16i + 15 in exactly the mma.sync C layout,
 * repeated per 8 columns: d[4j + e] = (row g + 8 (e >> 1), column 8j + 2t + (e & 1)); A from
 * registers uses the mma.sync A layout for its 16 rows. Operands in shared memory are given by a
 * matrix descriptor; we use only the no-swizzle layout, whose unit is the core matrix: 8 rows of
 * 16 contiguous bytes (128 bytes). PTX ISA, "Matrix Descriptor Format" and the canonical layouts
 * (CUTLASS cute/atom/mma_traits_sm90_gmma.hpp spells the same out):
 *   K-major (the row's 16-byte chunks run along K): element (mn, k) at start + (mn / 8) SBO +
 *     (k / 8) LBO + (mn % 8) * 16 + (k % 8) * 2;
 *   MN-major (transposed B; chunks run along N): element (k, n) at start + (n / 8) SBO +
 *     (k / 8) LBO + (k % 8) * 16 + (n % 8) * 2.
 * Descriptor bits: 0-13 start address >> 4, 16-29 LBO >> 4, 32-45 SBO >> 4, 62-63 layout (0: no
 * swizzle). The MMA runs asynchronously: bq_wgmma_fence before the first wgmma that reads
 * registers written since (accumulators, A), bq_wgmma_commit to close a group, bq_wgmma_wait<N>
 * before reading its results; shared memory written by ordinary stores or cp.async must be made
 * visible to the async proxy (bq_fence_proxy_async) before the barrier that precedes the wgmma. */
/* Declared only where the build compiles for sm_90a (BQ_WGMMA_ATTENTION, set by CMake for
 * attention_wgmma.cu): elsewhere a use is a compile error, not a kernel that cannot load. */
#ifdef BQ_WGMMA_ATTENTION
#include <type_traits>

__device__ __forceinline__ uint64_t bq_wgmma_desc(const void *smem, uint32_t lbo_bytes,
                                                  uint32_t sbo_bytes) {
    return (uint64_t)((bq_shared_address(smem) >> 4) & 0x3FFFu) |
           (uint64_t)((lbo_bytes >> 4) & 0x3FFFu) << 16 | (uint64_t)((sbo_bytes >> 4) & 0x3FFFu) << 32;
}

__device__ __forceinline__ void bq_wgmma_fence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

__device__ __forceinline__ void bq_wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

template <int pending> __device__ __forceinline__ void bq_wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(pending) : "memory");
}

__device__ __forceinline__ void bq_fence_proxy_async() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

/* Pin an MMA's register operands in place across the asynchronous MMA: the compiler may not move
 * their reads or writes over this point. Before bq_wgmma_fence (their last writes stay before
 * it, as wgmma.fence requires) and after the wait (no read moves before it); CUTLASS's
 * warpgroup_fence_operand does the same. 32 accumulators, or 4 registers of an A fragment. */
__device__ __forceinline__ void bq_wgmma_fence_operands(float (&d)[8][4]) {
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) asm volatile("" : "+f"(d[n][e])::"memory");
}

__device__ __forceinline__ void bq_wgmma_fence_operands(uint32_t (&a)[4]) {
#pragma unroll
    for (int i = 0; i < 4; i++) asm volatile("" : "+r"(a[i])::"memory");
}

#define BQ_WGMMA_D32                                                                              \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
    "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define BQ_WGMMA_D32_OPERANDS(d)   \
        "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),    \
        "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),    \
        "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),    \
        "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),    \
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),    \
        "+f"(d[7][2]), "+f"(d[7][3])

/* D (64 x 64) = A . B (+ D when accumulate != 0): A 64 x 16 from registers (this thread's 4
 * registers of its warp's 16 rows, the mma.sync A layout), B 16 x 64 in shared memory, K-major
 * (TransB 0) or MN-major (TransB 1); T __half or __nv_bfloat16. d[n][e]: this thread's
 * accumulators of columns 8n .. 8n + 7, e as in the mma.sync C layout. (The form with A in shared
 * memory too is left out: at N = 64 it would need all of shared memory's bandwidth.) */
template <typename T, int TransB>
__device__ __forceinline__ void bq_wgmma_64x64x16_rs(float (&d)[8][4], const uint32_t (&a)[4],
                                                     uint64_t b_desc, int accumulate) {
    if constexpr (std::is_same<T, __half>::value)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " BQ_WGMMA_D32
                     ", {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
                     : BQ_WGMMA_D32_OPERANDS(d)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(accumulate),
                       "n"(TransB));
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " BQ_WGMMA_D32
                     ", {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
                     : BQ_WGMMA_D32_OPERANDS(d)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(accumulate),
                       "n"(TransB));
}

#undef BQ_WGMMA_D32
#undef BQ_WGMMA_D32_OPERANDS
#endif /* BQ_WGMMA_ATTENTION */

#endif
