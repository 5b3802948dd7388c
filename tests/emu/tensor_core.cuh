/* tensor_core.cuh (emulator) - host stand-ins for cuda/tensor_core.cuh, which it shadows on the
 * include path of the translated kernels (tests/emu comes before cuda/). Same functions, same
 * signatures, and exactly the fragment layouts documented in cuda/tensor_core.cuh (PTX ISA,
 * mma.m16n8k16 and ldmatrix); the include guard is the real header's, so the two never mix.
 *
 * ldmatrix and mma are warp-collective, as on the device: each lane deposits its row address or
 * its fragments at a warp rendezvous, and once all 32 lanes are there the operation runs for the
 * whole warp (reading shared memory at that moment) and every lane gets its own registers. mma
 * converts the 16-bit inputs exactly to fp32 and accumulates in fp32, k in order, onto C.
 * cp.async copies at once (or zero-fills), so commit / wait are no-ops: the emulator checks the
 * data flow (addresses, alignment, which thread copies what), not the asynchrony. */
#ifndef BQ_TENSOR_CORE_CUH
#define BQ_TENSOR_CORE_CUH

#include "cuda_emu.h"

namespace bq_emu {

template <typename T> inline float b16_to_float(uint16_t bits);
template <> inline float b16_to_float<__half>(uint16_t bits) {
    __half_raw raw;
    raw.x = bits;
    return __half2float(__half(raw));
}
template <> inline float b16_to_float<__nv_bfloat16>(uint16_t bits) {
    const uint32_t u = (uint32_t)bits << 16; /* bf16 is the top half of an fp32 */
    float f;
    memcpy(&f, &u, 4);
    return f;
}

inline uint16_t load_b16(const unsigned char *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

struct LdmatrixArg {
    const unsigned char *row; /* this lane's row address */
    uint32_t *regs;           /* this lane's 4 destination registers */
};

/* ldmatrix.x4: lanes 8i..8i+7 address rows 0..7 of 8x8 matrix i (16 bytes each, 16-byte aligned,
 * in shared memory). Register i of lane L: row L/4, columns 2(L%4) and +1 (low, high half);
 * transposed: rows 2(L%4) and +1 of column L/4. */
template <bool Trans> void ldmatrix_x4_complete(void *const args[32], unsigned participants) {
    if (participants != 0xffffffffu)
        fail(cudaErrorLaunchFailure, "ldmatrix with lanes 0x%08x: all 32 lanes must take part", participants);
    const unsigned char *rows[32];
    for (int lane = 0; lane < 32; lane++) {
        rows[lane] = static_cast<LdmatrixArg *>(args[lane])->row;
        if ((uintptr_t)rows[lane] % 16 != 0)
            fail(cudaErrorMisalignedAddress, "ldmatrix: lane %d row address %p is not 16-byte aligned",
                 lane, (const void *)rows[lane]);
        if (!is_shared(rows[lane], 16))
            fail(cudaErrorIllegalAddress, "ldmatrix: lane %d row address %p is not in shared memory",
                 lane, (const void *)rows[lane]);
    }
    for (int lane = 0; lane < 32; lane++) {
        uint32_t *r = static_cast<LdmatrixArg *>(args[lane])->regs;
        const int g = lane / 4, t = lane % 4;
        for (int i = 0; i < 4; i++) {
            uint16_t lo, hi;
            if (!Trans) {
                lo = load_b16(rows[8 * i + g] + 2 * (2 * t));
                hi = load_b16(rows[8 * i + g] + 2 * (2 * t + 1));
            } else {
                lo = load_b16(rows[8 * i + 2 * t] + 2 * g);
                hi = load_b16(rows[8 * i + 2 * t + 1] + 2 * g);
            }
            r[i] = (uint32_t)lo | (uint32_t)hi << 16;
        }
    }
}

inline const WarpOp k_ldmatrix_x4_op = {"ldmatrix.x4", &ldmatrix_x4_complete<false>};
inline const WarpOp k_ldmatrix_x4_trans_op = {"ldmatrix.x4.trans", &ldmatrix_x4_complete<true>};

struct MmaArg {
    const uint32_t *a; /* 4 registers: A fragment */
    const uint32_t *b; /* 2 registers: B fragment */
    float *d;          /* 4 accumulators: C in, D out */
};

/* mma.m16n8k16.row.col.f32.{f16,bf16}: D = A (16x16) . B (16x8) + C, fp32. With g = lane / 4,
 * t = lane % 4: A a[0] = (g, 2t..2t+1), a[1] = (g+8, 2t..), a[2] = (g, 2t+8..), a[3] = (g+8, 2t+8..);
 * B b[0] = (k 2t..2t+1, n g), b[1] = (k 2t+8..2t+9, n g); C c[0..1] = (g, 2t..2t+1),
 * c[2..3] = (g+8, 2t..2t+1). */
template <typename T> void mma_16816_complete(void *const args[32], unsigned participants) {
    if (participants != 0xffffffffu)
        fail(cudaErrorLaunchFailure, "mma.sync with lanes 0x%08x: all 32 lanes must take part", participants);
    float A[16][16], B[16][8], C[16][8];
    for (int lane = 0; lane < 32; lane++) {
        const MmaArg *m = static_cast<const MmaArg *>(args[lane]);
        const int g = lane / 4, t = lane % 4;
        for (int reg = 0; reg < 4; reg++) {
            const int row = g + 8 * (reg & 1), col = 2 * t + 8 * (reg >> 1);
            A[row][col] = b16_to_float<T>((uint16_t)(m->a[reg] & 0xffffu));
            A[row][col + 1] = b16_to_float<T>((uint16_t)(m->a[reg] >> 16));
        }
        for (int reg = 0; reg < 2; reg++) {
            const int k = 2 * t + 8 * reg;
            B[k][g] = b16_to_float<T>((uint16_t)(m->b[reg] & 0xffffu));
            B[k + 1][g] = b16_to_float<T>((uint16_t)(m->b[reg] >> 16));
        }
        C[g][2 * t] = m->d[0];
        C[g][2 * t + 1] = m->d[1];
        C[g + 8][2 * t] = m->d[2];
        C[g + 8][2 * t + 1] = m->d[3];
    }
    /* every input is read before any lane's d is overwritten */
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 8; n++) {
            float acc = C[m][n];
            for (int k = 0; k < 16; k++) acc += A[m][k] * B[k][n]; /* products exact in fp32 */
            C[m][n] = acc;
        }
    for (int lane = 0; lane < 32; lane++) {
        float *d = static_cast<MmaArg *>(args[lane])->d;
        const int g = lane / 4, t = lane % 4;
        d[0] = C[g][2 * t];
        d[1] = C[g][2 * t + 1];
        d[2] = C[g + 8][2 * t];
        d[3] = C[g + 8][2 * t + 1];
    }
}

template <typename T> struct MmaOp {
    static const WarpOp op;
};
template <typename T>
const WarpOp MmaOp<T>::op = {std::is_same<T, __half>::value ? "mma.sync.m16n8k16.f16"
                                                            : "mma.sync.m16n8k16.bf16",
                             &mma_16816_complete<T>};

} // namespace bq_emu

inline uint32_t bq_shared_address(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

inline void bq_ldmatrix_x4(uint32_t r[4], const void *row) {
    bq_emu::LdmatrixArg arg = {static_cast<const unsigned char *>(row), r};
    bq_emu::warp_collective(&bq_emu::k_ldmatrix_x4_op, 0xffffffffu, &arg);
}

inline void bq_ldmatrix_x4_trans(uint32_t r[4], const void *row) {
    bq_emu::LdmatrixArg arg = {static_cast<const unsigned char *>(row), r};
    bq_emu::warp_collective(&bq_emu::k_ldmatrix_x4_trans_op, 0xffffffffu, &arg);
}

template <typename T> inline void bq_mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    static_assert(std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value,
                  "mma.m16n8k16 takes __half or __nv_bfloat16");
    bq_emu::MmaArg arg = {a, b, d};
    bq_emu::warp_collective(&bq_emu::MmaOp<T>::op, 0xffffffffu, &arg);
}

/* Two floats rounded to nearest (even) into one register: lo in bits 0..15, hi in 16..31. */
template <typename T> inline uint32_t bq_pack2(float lo, float hi);
template <> inline uint32_t bq_pack2<__half>(float lo, float hi) {
    const __half2 v = __floats2half2_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}
template <> inline uint32_t bq_pack2<__nv_bfloat16>(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

/* cp.async.cg 16 bytes: copied (or zero-filled when !valid) at once. */
inline void bq_cp_async_16(void *shared_dst, const void *global_src, bool valid) {
    if ((uintptr_t)shared_dst % 16 != 0 || (valid && (uintptr_t)global_src % 16 != 0))
        bq_emu::fail(cudaErrorMisalignedAddress, "cp.async 16 bytes from %p to %p: not 16-byte aligned",
                     global_src, shared_dst);
    if (!bq_emu::is_shared(shared_dst, 16))
        bq_emu::fail(cudaErrorIllegalAddress, "cp.async destination %p is not in shared memory", shared_dst);
    if (valid) memcpy(shared_dst, global_src, 16);
    else memset(shared_dst, 0, 16);
}

inline void bq_cp_async_commit() {}

template <int pending> inline void bq_cp_async_wait() {
    static_assert(pending >= 0, "cp.async.wait_group takes a count >= 0");
}

#endif
