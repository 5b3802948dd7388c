/* mma.h (emulator) - nvcuda::wmma for the CPU emulator; shadows the toolkit's <mma.h> on the
 * include path of the translated kernels (tests/emu comes first).
 *
 * Only what our kernels use: the 16x16x16 shape with __half / __nv_bfloat16 inputs and float
 * accumulators, row- or column-major. The fragment layout is the emulator's own (the real one is
 * unspecified): lane L holds elements 8L..8L+7 of the tile in row-major order, so element-wise
 * code over frag.x[0..num_elements) works as on the device. load_matrix_sync, store_matrix_sync
 * and mma_sync are warp-collective like on the device: all 32 lanes must call them with the same
 * pointer, leading dimension and layout, and the operation runs once they are all there.
 * fill_fragment is per lane (as on the device, it needs no rendezvous). Pointers must be 32-byte
 * aligned and ldm a multiple of 16 bytes, as the CUDA programming guide requires. mma_sync
 * accumulates in fp32, k in order, from exactly converted inputs. */
#ifndef BQ_EMU_MMA_H
#define BQ_EMU_MMA_H

#include "cuda_emu.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

namespace detail {

template <typename Use, int M, int N, int K> struct Shape;
template <int M, int N, int K> struct Shape<matrix_a, M, N, K> {
    static constexpr int rows = M, cols = K;
};
template <int M, int N, int K> struct Shape<matrix_b, M, N, K> {
    static constexpr int rows = K, cols = N;
};
template <int M, int N, int K> struct Shape<accumulator, M, N, K> {
    static constexpr int rows = M, cols = N;
};

inline float to_float(float v) { return v; }
inline float to_float(__half v) { return __half2float(v); }
inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> inline T from_float(float v);
template <> inline float from_float<float>(float v) { return v; }
template <> inline __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

constexpr int kElementsPerLane = 16 * 16 / 32;

struct MemArg {
    void *mem; /* tile pointer (const for loads) */
    unsigned ldm;
    bool col_major;
    void *elements; /* this lane's fragment elements */
};

/* The warp's common tile pointer, leading dimension and layout, checked: uniform across lanes,
 * 32-byte aligned pointer, ldm a multiple of 16 bytes. */
template <typename MemT> inline const MemArg &uniform_tile(void *const args[32], unsigned participants,
                                                          const char *what) {
    if (participants != 0xffffffffu)
        bq_emu::fail(cudaErrorLaunchFailure, "%s with lanes 0x%08x: all 32 lanes must take part", what,
                     participants);
    const MemArg &a0 = *static_cast<const MemArg *>(args[0]);
    for (int lane = 1; lane < 32; lane++) {
        const MemArg &a = *static_cast<const MemArg *>(args[lane]);
        if (a.mem != a0.mem || a.ldm != a0.ldm || a.col_major != a0.col_major)
            bq_emu::fail(cudaErrorLaunchFailure,
                         "%s: lane %d passes (%p, ldm %u, %s) but lane 0 (%p, ldm %u, %s); the "
                         "arguments must be warp-uniform", what, lane, a.mem, a.ldm,
                         a.col_major ? "col" : "row", a0.mem, a0.ldm, a0.col_major ? "col" : "row");
    }
    if ((uintptr_t)a0.mem % 32 != 0)
        bq_emu::fail(cudaErrorMisalignedAddress, "%s: pointer %p is not 32-byte aligned", what, a0.mem);
    if ((a0.ldm * sizeof(MemT)) % 16 != 0)
        bq_emu::fail(cudaErrorMisalignedAddress, "%s: ldm %u is not a multiple of 16 bytes", what, a0.ldm);
    return a0;
}

/* Offset of logical element (r, c) in a tile stored with leading dimension ldm. */
inline size_t tile_offset(int r, int c, unsigned ldm, bool col_major) {
    return col_major ? (size_t)c * ldm + r : (size_t)r * ldm + c;
}

template <typename MemT, typename ElemT, int Rows, int Cols>
void load_complete(void *const args[32], unsigned participants) {
    const MemArg &t = uniform_tile<MemT>(args, participants, "wmma::load_matrix_sync");
    const MemT *mem = static_cast<const MemT *>(t.mem);
    for (int lane = 0; lane < 32; lane++) {
        ElemT *x = static_cast<ElemT *>(static_cast<MemArg *>(args[lane])->elements);
        for (int i = 0; i < kElementsPerLane; i++) {
            const int e = lane * kElementsPerLane + i;
            x[i] = from_float<ElemT>(to_float(mem[tile_offset(e / Cols, e % Cols, t.ldm, t.col_major)]));
        }
    }
}

template <typename MemT, typename ElemT, int Rows, int Cols>
void store_complete(void *const args[32], unsigned participants) {
    const MemArg &t = uniform_tile<MemT>(args, participants, "wmma::store_matrix_sync");
    MemT *mem = static_cast<MemT *>(t.mem);
    for (int lane = 0; lane < 32; lane++) {
        const ElemT *x = static_cast<const ElemT *>(static_cast<MemArg *>(args[lane])->elements);
        for (int i = 0; i < kElementsPerLane; i++) {
            const int e = lane * kElementsPerLane + i;
            mem[tile_offset(e / Cols, e % Cols, t.ldm, t.col_major)] = from_float<MemT>(to_float(x[i]));
        }
    }
}

template <typename MemT, typename ElemT, int Rows, int Cols> struct LoadOp {
    static const bq_emu::WarpOp op;
};
template <typename MemT, typename ElemT, int Rows, int Cols>
const bq_emu::WarpOp LoadOp<MemT, ElemT, Rows, Cols>::op = {"wmma::load_matrix_sync",
                                                            &load_complete<MemT, ElemT, Rows, Cols>};
template <typename MemT, typename ElemT, int Rows, int Cols> struct StoreOp {
    static const bq_emu::WarpOp op;
};
template <typename MemT, typename ElemT, int Rows, int Cols>
const bq_emu::WarpOp StoreOp<MemT, ElemT, Rows, Cols>::op = {"wmma::store_matrix_sync",
                                                             &store_complete<MemT, ElemT, Rows, Cols>};

struct MmaArg {
    const void *a, *b, *c; /* this lane's fragment elements */
    float *d;
};

template <typename AT, typename BT> void mma_complete(void *const args[32], unsigned participants) {
    if (participants != 0xffffffffu)
        bq_emu::fail(cudaErrorLaunchFailure, "wmma::mma_sync with lanes 0x%08x: all 32 lanes must take part",
                     participants);
    float A[16][16], B[16][16], C[16][16];
    for (int lane = 0; lane < 32; lane++) {
        const MmaArg *m = static_cast<const MmaArg *>(args[lane]);
        for (int i = 0; i < kElementsPerLane; i++) {
            const int e = lane * kElementsPerLane + i, r = e / 16, c = e % 16;
            A[r][c] = to_float(static_cast<const AT *>(m->a)[i]);
            B[r][c] = to_float(static_cast<const BT *>(m->b)[i]);
            C[r][c] = static_cast<const float *>(m->c)[i];
        }
    }
    float D[16][16];
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) {
            float acc = C[r][c];
            for (int k = 0; k < 16; k++) acc += A[r][k] * B[k][c];
            D[r][c] = acc;
        }
    for (int lane = 0; lane < 32; lane++) {
        float *d = static_cast<MmaArg *>(args[lane])->d; /* may be c itself: written after reading */
        for (int i = 0; i < kElementsPerLane; i++) {
            const int e = lane * kElementsPerLane + i;
            d[i] = D[e / 16][e % 16];
        }
    }
}

template <typename AT, typename BT> struct MmaOp {
    static const bq_emu::WarpOp op;
};
template <typename AT, typename BT>
const bq_emu::WarpOp MmaOp<AT, BT>::op = {"wmma::mma_sync", &mma_complete<AT, BT>};

template <typename Layout> struct IsColMajor;
template <> struct IsColMajor<row_major> {
    static constexpr bool value = false;
};
template <> struct IsColMajor<col_major> {
    static constexpr bool value = true;
};

} // namespace detail

template <typename Use, int M, int N, int K, typename T, typename Layout = void> class fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the emulated WMMA has the 16x16x16 shape only");
    static_assert(std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value ||
                      std::is_same<T, float>::value,
                  "the emulated WMMA takes __half, __nv_bfloat16 or float elements");

  public:
    typedef T element_type;
    static constexpr int rows = detail::Shape<Use, M, N, K>::rows;
    static constexpr int cols = detail::Shape<Use, M, N, K>::cols;
    enum { num_elements = detail::kElementsPerLane };
    T x[num_elements];
};

template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, float value) {
    for (int i = 0; i < f.num_elements; i++) f.x[i] = detail::from_float<T>(value);
}

/* matrix_a / matrix_b: the layout is part of the fragment type. */
template <typename Use, int M, int N, int K, typename T, typename Layout, typename MemT>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout> &f, const MemT *p, unsigned ldm) {
    static_assert(!std::is_same<Use, accumulator>::value, "accumulator loads take a layout_t");
    typedef fragment<Use, M, N, K, T, Layout> F;
    detail::MemArg arg = {const_cast<MemT *>(p), ldm, detail::IsColMajor<Layout>::value, f.x};
    bq_emu::warp_collective(&detail::LoadOp<MemT, T, F::rows, F::cols>::op, 0xffffffffu, &arg);
}

template <int M, int N, int K, typename T, typename MemT>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T> &f, const MemT *p, unsigned ldm,
                             layout_t layout) {
    detail::MemArg arg = {const_cast<MemT *>(p), ldm, layout == mem_col_major, f.x};
    bq_emu::warp_collective(&detail::LoadOp<MemT, T, M, N>::op, 0xffffffffu, &arg);
}

template <int M, int N, int K, typename T, typename MemT>
inline void store_matrix_sync(MemT *p, const fragment<accumulator, M, N, K, T> &f, unsigned ldm,
                              layout_t layout) {
    detail::MemArg arg = {p, ldm, layout == mem_col_major, const_cast<T *>(f.x)};
    bq_emu::warp_collective(&detail::StoreOp<MemT, T, M, N>::op, 0xffffffffu, &arg);
}

template <int M, int N, int K, typename AT, typename LA, typename BT, typename LB>
inline void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, AT, LA> &a,
                     const fragment<matrix_b, M, N, K, BT, LB> &b,
                     const fragment<accumulator, M, N, K, float> &c) {
    detail::MmaArg arg = {a.x, b.x, c.x, d.x};
    bq_emu::warp_collective(&detail::MmaOp<AT, BT>::op, 0xffffffffu, &arg);
}

} // namespace wmma
} // namespace nvcuda

#endif
