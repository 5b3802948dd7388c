/* tensor_core.cuh (emulator) - host stand-ins for cuda/tensor_core.cuh, which it shadows on the
 * include path of the translated kernels (tests/emu comes before cuda/). Same functions, same
 * signatures, and exactly the fragment layouts documented in cuda/tensor_core.cuh (PTX ISA,
 * mma.m16n8k16 and ldmatrix); the include guard is the real header's, so the two never mix.
 *
 * ldmatrix and mma are warp-collective, as on the device: each lane deposits its row address or
 * its fragments at a warp rendezvous, and once all 32 lanes are there the operation runs for the
 * whole warp (reading shared memory at that moment) and every lane gets its own registers. mma
 * converts the 16-bit inputs exactly to fp32 and accumulates in fp32, k in order, onto C.
 * cp.async is asynchronous the way that exposes a kernel which does not wait: a copy (or zero
 * fill) is only recorded when issued; commit closes the thread's group of them, and wait<N> copies
 * every group but the newest N, reading global memory and writing shared memory at that moment.
 * Shared memory is poisoned at the start of every block, so a thread that reads a tile before the
 * copying thread's wait and the barrier after it gets garbage and the tests fail. Copies a block
 * leaves unwaited for fail the next block's first cp.async operation of that thread. Bytes a
 * copy writes are generic-proxy writes: wgmma (async proxy) may read them only after the
 * copying thread's fence.proxy.async (see the wgmma section). */
#ifndef BQ_TENSOR_CORE_CUH
#define BQ_TENSOR_CORE_CUH

#include "cuda_emu.h"

#include <stdio.h>

#include <unordered_map>
#include <vector>

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

/* Lane `lane`'s A fragment (4 registers, 16 x 16 row-major, the layout below) into A. */
template <typename T> void a_fragment_to_rows(const uint32_t *a, int lane, float (&A)[16][16]) {
    const int g = lane / 4, t = lane % 4;
    for (int reg = 0; reg < 4; reg++) {
        const int row = g + 8 * (reg & 1), col = 2 * t + 8 * (reg >> 1);
        A[row][col] = b16_to_float<T>((uint16_t)(a[reg] & 0xffffu));
        A[row][col + 1] = b16_to_float<T>((uint16_t)(a[reg] >> 16));
    }
}

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
        a_fragment_to_rows<T>(m->a, lane, A);
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

/* ---- cp.async ---- */

struct CpAsyncCopy {
    unsigned char *dst;
    const unsigned char *src; /* NULL: zero fill */
};
/* One thread's copies in flight: `groups` closed by commit, `open` since; a queue belongs to
 * the block whose block_serial() it carries. */
struct CpAsyncThreadQueue {
    std::vector<std::vector<CpAsyncCopy>> groups;
    std::vector<CpAsyncCopy> open;
    uint64_t serial = 0;
};
inline CpAsyncThreadQueue g_cp_async_queues[1024]; /* by linear thread index */

/* 16-byte shared chunks written by a completed cp.async and not yet fenced for the async proxy
 * by the thread that copied them: chunk address -> that thread (this block's only). */
struct ProxyShadow {
    std::unordered_map<uintptr_t, int> unfenced;
    uint64_t serial = 0;
};
inline ProxyShadow g_proxy_shadow;

inline ProxyShadow &proxy_shadow() {
    if (g_proxy_shadow.serial != block_serial()) {
        g_proxy_shadow.unfenced.clear();
        g_proxy_shadow.serial = block_serial();
    }
    return g_proxy_shadow;
}

inline CpAsyncThreadQueue &cp_async_queue() {
    CpAsyncThreadQueue &q = g_cp_async_queues[g_thread->linear];
    if (q.serial != block_serial()) {
        bool leftover = !q.open.empty(); /* empty groups left in flight are no copies */
        for (const auto &group : q.groups) leftover = leftover || !group.empty();
        q = CpAsyncThreadQueue();
        q.serial = block_serial();
        if (leftover)
            fail(cudaErrorLaunchFailure, "cp.async: thread %d of an earlier block left copies it never "
                 "waited for", g_thread->linear);
    }
    return q;
}

inline void cp_async_perform(const CpAsyncCopy &c) {
    if (c.src) memcpy(c.dst, c.src, 16);
    else memset(c.dst, 0, 16);
    proxy_shadow().unfenced[(uintptr_t)c.dst] = g_thread->linear;
}

/* fence.proxy.async by the calling thread: its completed copies become visible to the async
 * proxy (to the other threads' wgmma too, once a barrier orders them). */
inline void proxy_fence_async() {
    auto &m = proxy_shadow().unfenced;
    for (auto it = m.begin(); it != m.end();)
        it = it->second == g_thread->linear ? m.erase(it) : std::next(it);
}

/* Fails the launch if an async-proxy read of the 16-byte chunk holding p would see a cp.async
 * write that its thread never fenced. */
inline void proxy_check_async_read(const void *p, const char *what) {
    const auto &m = proxy_shadow().unfenced;
    if (m.empty()) return;
    const auto it = m.find((uintptr_t)p & ~(uintptr_t)15);
    if (it != m.end())
        fail(cudaErrorLaunchFailure, "%s reads shared %p, written by thread %d's cp.async (generic "
             "proxy) with no fence.proxy.async by that thread since", what, p, it->second);
}

#ifdef BQ_WGMMA_ATTENTION
/* ---- wgmma (sm_90a) ----
 * wgmma.mma_async is warpgroup-collective on the device, but warp i of the group brings only A's
 * rows 16i .. 16i + 15 (from registers, the only form the kernels use) and gets only D's, so each
 * warp is emulated alone at its own warp rendezvous (that all four warps issue it alike is
 * checked separately, below). Descriptors: the start address is
 * the offset into the launch's dynamic shared memory (bq_wgmma_desc below), where every operand
 * must lie; only the no-swizzle layout (type 0, base offset 0) is accepted, as the kernels use
 * only that.
 * The asynchrony is emulated the way that exposes a kernel which does not wait: an MMA is only
 * recorded when issued; commit closes a group of them, and wait<N> runs every group but the
 * newest N, reading A, B and D at that moment. A kernel that reads its accumulators before the
 * wait sees them unchanged, and one that overwrites an operand (registers or shared memory)
 * before it computes with the new values: either way its results go wrong and the tests fail.
 * A block may not leave MMAs unwaited for: the next block's first wgmma operation in that warp
 * fails. And a
 * wgmma needs a wgmma.fence since its warp's last wait (registers are always touched between a
 * wait and the next MMAs). B bytes a cp.async wrote must have been fenced by the copying
 * thread's fence.proxy.async (cp.async above). The four warps of a warpgroup (warps 4i .. 4i + 3)
 * must issue the same sequence of wgmma operations: the n-th fence, commit, wait<N> or MMA (its
 * B descriptor and flags) of each warp is compared with the group's first warp to get there.
 * Not checked: the compiler-level operand fences. */
struct WgmmaArg {
    const uint32_t *a;     /* A from registers (4 a lane) */
    uint64_t b_desc;
    float (*d)[4];         /* 8 x 4 accumulators */
    int accumulate;
    int trans_b;
    int warp;              /* in the block */
};

/* Shared address of element (mn, k) of a no-swizzle operand (mn_major: transposed B). */
inline const unsigned char *wgmma_element(uint64_t desc, int mn, int k, bool mn_major, const char *what) {
    if ((desc >> 62) != 0 || ((desc >> 49) & 7) != 0)
        fail(cudaErrorLaunchFailure, "wgmma %s descriptor 0x%016llx: only the no-swizzle layout with base "
             "offset 0 is emulated", what, (unsigned long long)desc);
    const size_t start = (size_t)(desc & 0x3FFF) << 4;
    const size_t lbo = (size_t)((desc >> 16) & 0x3FFF) << 4, sbo = (size_t)((desc >> 32) & 0x3FFF) << 4;
    const size_t offset = mn_major ? start + (mn / 8) * sbo + (k / 8) * lbo + (k % 8) * 16 + (mn % 8) * 2
                                   : start + (mn / 8) * sbo + (k / 8) * lbo + (mn % 8) * 16 + (k % 8) * 2;
    const unsigned char *p = static_cast<const unsigned char *>(dynamic_shared()) + offset;
    if (!is_shared(p, 2))
        fail(cudaErrorIllegalAddress, "wgmma %s element (%d, %d) at dynamic shared offset %zu: outside the "
             "launch's dynamic shared memory", what, mn, k, offset);
    proxy_check_async_read(p, "wgmma");
    return p;
}

/* wgmma.mma_async.m64n64k16.f32.{f16,bf16} with A from registers, for one warp's 16 rows:
 * D = A . B (+ D), run now. */
template <typename T> void wgmma_64x64x16_run(const WgmmaArg (&lanes)[32]) {
    const WgmmaArg &first = lanes[0];
    float A[16][16], B[16][64], C[16][64];
    for (int lane = 0; lane < 32; lane++) {
        const WgmmaArg &w = lanes[lane];
        const int g = lane / 4, t = lane % 4;
        a_fragment_to_rows<T>(w.a, lane, A); /* the mma.sync A layout */
        for (int n = 0; n < 8; n++)
            for (int e = 0; e < 4; e++)
                C[g + 8 * (e >> 1)][8 * n + 2 * t + (e & 1)] = first.accumulate ? w.d[n][e] : 0.0f;
    }
    for (int n = 0; n < 64; n++)
        for (int k = 0; k < 16; k++)
            B[k][n] = b16_to_float<T>(load_b16(wgmma_element(first.b_desc, n, k, first.trans_b != 0, "B")));
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 64; n++) {
            float acc = C[m][n];
            for (int k = 0; k < 16; k++) acc += A[m][k] * B[k][n];
            C[m][n] = acc;
        }
    for (int lane = 0; lane < 32; lane++) {
        float (*d)[4] = lanes[lane].d;
        const int g = lane / 4, t = lane % 4;
        for (int n = 0; n < 8; n++)
            for (int e = 0; e < 4; e++) d[n][e] = C[g + 8 * (e >> 1)][8 * n + 2 * t + (e & 1)];
    }
}

/* The MMAs a warp has issued and not yet run, each with its 32 lanes' arguments: `groups` closed
 * by commit, `open` since; and whether it has fenced since its last wait. Blocks run one at a
 * time; a queue belongs to the block whose block_serial() it carries. */
struct WgmmaPending {
    WgmmaArg lanes[32];
    void (*run)(const WgmmaArg (&)[32]);
};
struct WgmmaWarpQueue {
    std::vector<std::vector<WgmmaPending>> groups;
    std::vector<WgmmaPending> open;
    bool fenced = false;
    uint64_t serial = 0;
};
inline WgmmaWarpQueue g_wgmma_queues[32]; /* by warp of the block (at most 1024 threads) */

/* Warp `warp`'s queue for the running block: one an earlier block left is emptied, and fails
 * the launch if it still held MMAs (a block that ended without waiting for them; or a launch
 * that failed, after which a real context is dead too). */
inline WgmmaWarpQueue &wgmma_queue(int warp) {
    WgmmaWarpQueue &q = g_wgmma_queues[warp];
    if (q.serial != block_serial()) {
        const bool leftover = !q.groups.empty() || !q.open.empty();
        q = WgmmaWarpQueue();
        q.serial = block_serial();
        if (leftover)
            fail(cudaErrorLaunchFailure, "wgmma: warp %d of an earlier block never waited for its MMAs", warp);
    }
    return q;
}

/* The wgmma operations of one warpgroup in the running block, in the order its warps issue them:
 * entry n is the n-th operation of the first warp to get there; `done[w]` counts warp w's. */
constexpr int WGMMA_RECORD_MMA = 1000; /* WgmmaOpRecord::keep of an MMA */
struct WgmmaOpRecord {
    int keep; /* as WgmmaSyncArg::keep (a wait's count, -1 commit, -2 fence), or WGMMA_RECORD_MMA */
    uint64_t b_desc;
    int accumulate, trans_b;
    bool operator==(const WgmmaOpRecord &o) const {
        return keep == o.keep && b_desc == o.b_desc && accumulate == o.accumulate && trans_b == o.trans_b;
    }
};
struct WarpgroupLog {
    std::vector<WgmmaOpRecord> ops;
    size_t done[4] = {0, 0, 0, 0};
    uint64_t serial = 0;
};
inline WarpgroupLog g_warpgroup_logs[8]; /* by warpgroup of the block */

inline const char *wgmma_op_name(const WgmmaOpRecord &r, char *buf, size_t size) {
    if (r.keep == WGMMA_RECORD_MMA)
        snprintf(buf, size, "an MMA (B descriptor 0x%016llx, accumulate %d, B %s)", (unsigned long long)r.b_desc,
                 r.accumulate, r.trans_b ? "MN-major" : "K-major");
    else if (r.keep == -2) snprintf(buf, size, "wgmma.fence");
    else if (r.keep == -1) snprintf(buf, size, "wgmma.commit_group");
    else snprintf(buf, size, "wgmma.wait_group %d", r.keep);
    return buf;
}

/* Record warp `warp`'s next wgmma operation; fails the launch where it differs from what another
 * warp of its warpgroup issued at the same point, or where the block has no whole warpgroup there. */
inline void warpgroup_uniform(int warp, const WgmmaOpRecord &op) {
    const int group = warp / 4;
    if ((int)(blockDim.x * blockDim.y * blockDim.z) < 128 * (group + 1))
        fail(cudaErrorLaunchFailure, "wgmma by warp %d: the block's %d threads hold no whole warpgroup "
             "(warps %d .. %d) there", warp, (int)(blockDim.x * blockDim.y * blockDim.z), 4 * group, 4 * group + 3);
    WarpgroupLog &log = g_warpgroup_logs[group];
    if (log.serial != block_serial()) {
        log = WarpgroupLog();
        log.serial = block_serial();
    }
    const size_t n = log.done[warp % 4]++;
    if (n == log.ops.size()) {
        log.ops.push_back(op);
        return;
    }
    if (!(log.ops[n] == op)) {
        char mine[96], theirs[96];
        fail(cudaErrorLaunchFailure, "wgmma operation %zu of warp %d is %s, but another warp of warpgroup %d "
             "issued %s there: all four warps of a warpgroup must issue the same", n, warp,
             wgmma_op_name(op, mine, sizeof mine), group, wgmma_op_name(log.ops[n], theirs, sizeof theirs));
    }
}

template <typename T> void wgmma_issue_complete(void *const args[32], unsigned participants) {
    if (participants != 0xffffffffu)
        fail(cudaErrorLaunchFailure, "wgmma with lanes 0x%08x: all 32 lanes must take part", participants);
    WgmmaPending op;
    for (int lane = 0; lane < 32; lane++) {
        op.lanes[lane] = *static_cast<const WgmmaArg *>(args[lane]);
        const WgmmaArg &w = op.lanes[lane], &first = op.lanes[0];
        if (w.b_desc != first.b_desc || w.accumulate != first.accumulate ||
            w.trans_b != first.trans_b || w.warp != first.warp)
            fail(cudaErrorLaunchFailure, "wgmma: lane %d's descriptors or flags differ from lane 0's", lane);
    }
    op.run = &wgmma_64x64x16_run<T>;
    warpgroup_uniform(op.lanes[0].warp, {WGMMA_RECORD_MMA, op.lanes[0].b_desc, op.lanes[0].accumulate, op.lanes[0].trans_b});
    WgmmaWarpQueue &q = wgmma_queue(op.lanes[0].warp);
    if (!q.fenced)
        fail(cudaErrorLaunchFailure, "wgmma issued by warp %d without a wgmma.fence since its last wait "
             "(the fence orders the register writes before it with the MMA)", op.lanes[0].warp);
    q.open.push_back(op);
}

struct WgmmaSyncArg {
    int warp;
    int keep; /* wait: groups that may stay in flight; -1: commit; -2: fence */
};

inline void wgmma_sync_complete(void *const args[32], unsigned participants) {
    if (participants != 0xffffffffu)
        fail(cudaErrorLaunchFailure, "wgmma commit / wait with lanes 0x%08x: all 32 lanes must take part",
             participants);
    const WgmmaSyncArg *s = static_cast<const WgmmaSyncArg *>(args[0]);
    warpgroup_uniform(s->warp, {s->keep, 0, 0, 0});
    WgmmaWarpQueue &q = wgmma_queue(s->warp);
    if (s->keep == -2) { /* fence */
        q.fenced = true;
        return;
    }
    if (s->keep < 0) { /* commit: an empty group is a group too */
        q.groups.push_back(std::move(q.open));
        q.open.clear();
        return;
    }
    while (q.groups.size() > (size_t)s->keep) {
        for (const WgmmaPending &op : q.groups.front()) op.run(op.lanes);
        q.groups.erase(q.groups.begin());
    }
    q.fenced = false;
}

template <typename T> struct WgmmaOp {
    static const WarpOp op;
};
template <typename T>
const WarpOp WgmmaOp<T>::op = {std::is_same<T, __half>::value ? "wgmma.m64n64k16.f16"
                                                              : "wgmma.m64n64k16.bf16",
                               &wgmma_issue_complete<T>};
inline const WarpOp k_wgmma_sync_op = {"wgmma.fence / commit_group / wait_group", &wgmma_sync_complete};
#endif /* BQ_WGMMA_ATTENTION */

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

/* cp.async.cg 16 bytes (zero-filled when !valid): checked now, copied at the wait that covers it. */
inline void bq_cp_async_16(void *shared_dst, const void *global_src, bool valid) {
    if ((uintptr_t)shared_dst % 16 != 0 || (valid && (uintptr_t)global_src % 16 != 0))
        bq_emu::fail(cudaErrorMisalignedAddress, "cp.async 16 bytes from %p to %p: not 16-byte aligned",
                     global_src, shared_dst);
    if (!bq_emu::is_shared(shared_dst, 16))
        bq_emu::fail(cudaErrorIllegalAddress, "cp.async destination %p is not in shared memory", shared_dst);
    bq_emu::cp_async_queue().open.push_back(
        {static_cast<unsigned char *>(shared_dst), valid ? static_cast<const unsigned char *>(global_src) : nullptr});
}

/* An empty group is a group too. */
inline void bq_cp_async_commit() {
    bq_emu::CpAsyncThreadQueue &q = bq_emu::cp_async_queue();
    q.groups.push_back(std::move(q.open));
    q.open.clear();
}

/* Copies every committed group but the newest `pending` (copies not yet committed stay). */
template <int pending> inline void bq_cp_async_wait() {
    static_assert(pending >= 0, "cp.async.wait_group takes a count >= 0");
    bq_emu::CpAsyncThreadQueue &q = bq_emu::cp_async_queue();
    while (q.groups.size() > (size_t)pending) {
        for (const bq_emu::CpAsyncCopy &c : q.groups.front()) bq_emu::cp_async_perform(c);
        q.groups.erase(q.groups.begin());
    }
}

#ifdef BQ_WGMMA_ATTENTION
/* The descriptor as on the device, except that the start address is the offset into the
 * launch's dynamic shared memory (the emulated wgmma's only operand space). */
inline uint64_t bq_wgmma_desc(const void *smem, uint32_t lbo_bytes, uint32_t sbo_bytes) {
    const unsigned char *p = static_cast<const unsigned char *>(smem);
    const unsigned char *base = static_cast<const unsigned char *>(bq_emu::dynamic_shared());
    if (!bq_emu::is_shared(p, 16) || p < base || (size_t)(p - base) >= ((size_t)1 << 18) ||
        (uintptr_t)p % 16 != 0)
        bq_emu::fail(cudaErrorIllegalAddress, "wgmma descriptor of %p: not a 16-byte aligned address in "
                     "the launch's dynamic shared memory", smem);
    return (uint64_t)(((size_t)(p - base) >> 4) & 0x3FFFu) | (uint64_t)((lbo_bytes >> 4) & 0x3FFFu) << 16 |
           (uint64_t)((sbo_bytes >> 4) & 0x3FFFu) << 32;
}

inline void bq_wgmma_fence() {
    bq_emu::WgmmaSyncArg arg = {(int)(threadIdx.x / 32), -2};
    bq_emu::warp_collective(&bq_emu::k_wgmma_sync_op, 0xffffffffu, &arg);
}
inline void bq_wgmma_commit() {
    bq_emu::WgmmaSyncArg arg = {(int)(threadIdx.x / 32), -1};
    bq_emu::warp_collective(&bq_emu::k_wgmma_sync_op, 0xffffffffu, &arg);
}
template <int pending> inline void bq_wgmma_wait() {
    static_assert(pending >= 0, "wgmma.wait_group takes a count >= 0");
    bq_emu::WgmmaSyncArg arg = {(int)(threadIdx.x / 32), pending};
    bq_emu::warp_collective(&bq_emu::k_wgmma_sync_op, 0xffffffffu, &arg);
}
inline void bq_fence_proxy_async() { bq_emu::proxy_fence_async(); }
inline void bq_wgmma_fence_operands(float (&)[8][4]) {}
inline void bq_wgmma_fence_operands(uint32_t (&)[4]) {}

template <typename T, int TransB>
inline void bq_wgmma_64x64x16_rs(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b_desc, int accumulate) {
    bq_emu::WgmmaArg arg = {a, b_desc, d, accumulate, TransB, (int)(threadIdx.x / 32)};
    bq_emu::warp_collective(&bq_emu::WgmmaOp<T>::op, 0xffffffffu, &arg);
}
#endif

#endif
