/* cuda_emu.h - the device side of CUDA C++ on the CPU, for the kernel emulator (tests/emu).
 *
 * Force-included (g++ -include) into every kernel source that translate_cu.py turned into host
 * C++, and included by the emulator's own tests. It maps the CUDA language features our kernels use
 * onto the emulator runtime (cuda_emu_runtime.cpp):
 *   - execution-space qualifiers vanish; __shared__ becomes function-static storage (blocks run one
 *     at a time, so one static per kernel instantiation is exactly one block's shared memory);
 *   - threadIdx / blockIdx / blockDim / gridDim read the state of the running fiber / block;
 *   - __syncthreads*, __syncwarp, shuffles and votes are rendezvous points of the fiber scheduler;
 *   - math intrinsics map to libm (no attempt at the GPU's special-function rounding);
 *   - bq_emu::launch stands for `kernel<<<grid, block, smem, stream>>>` (translate_cu.py rewrites
 *     launches into it).
 * Host-side CUDA types (dim3, float4, __half, __nv_bfloat16 and their conversions) come from the
 * toolkit headers, which are written to compile under a host compiler; no libcudart is linked: the
 * runtime API functions our code calls are defined by cuda_emu_runtime.cpp. */
#ifndef BQ_CUDA_EMU_H
#define BQ_CUDA_EMU_H

#ifndef __cplusplus
#error "cuda_emu.h is C++ (the emulated kernels are compiled as C++17)"
#endif

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#ifndef BQ_CUDA_EMULATED
#define BQ_CUDA_EMULATED 1
#endif

/* ---- language: qualifiers ------------------------------------------------------------------- */

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __constant__
#undef __managed__
#undef __grid_constant__
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __grid_constant__
/* Function-static: a kernel instantiation's __shared__ arrays exist once, and only one block runs
 * at a time. translate_cu.py also registers each one with the runtime (bq_emu::shared_decl), which
 * poisons it at the start of every block and counts it against the shared-memory limits. */
#define __shared__ static
#define __launch_bounds__(...)

/* ---- built-in variables ---------------------------------------------------------------------- */

namespace bq_emu {

/* What kernel code can see of the CUDA thread a fiber runs. */
struct Thread {
    uint3 idx;  /* threadIdx */
    int linear; /* x + y * blockDim.x + z * blockDim.x * blockDim.y */
    int lane;   /* linear % 32 */
    int warp;   /* linear / 32 */
};

struct Grid {
    uint3 block_idx;
    dim3 block_dim;
    dim3 grid_dim;
};

extern Thread *g_thread; /* the fiber running now (switched by the scheduler) */
extern Grid g_grid;      /* the block running now */

} // namespace bq_emu

#define threadIdx (::bq_emu::g_thread->idx)
#define blockIdx (::bq_emu::g_grid.block_idx)
#define blockDim (::bq_emu::g_grid.block_dim)
#define gridDim (::bq_emu::g_grid.grid_dim)
#ifndef warpSize
#define warpSize 32
#endif

/* ---- runtime entry points (cuda_emu_runtime.cpp) ---------------------------------------------- */

namespace bq_emu {

/* End the running launch with `code` (sticky, like a fault on the device) after printing the
 * message with the kernel, block and thread. Only valid inside a kernel. */
[[noreturn]] void fail(cudaError_t code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum BarrierKind { BARRIER_SYNC, BARRIER_OR, BARRIER_AND, BARRIER_COUNT };
/* __syncthreads and its reductions. Every thread of the block must reach the same call (file,
 * line, kind); a thread that has exited or waits elsewhere fails the launch. */
int block_barrier(BarrierKind kind, int predicate, const char *file, int line);

/* A kind of warp-collective operation. `complete` runs once per rendezvous, on the fiber of the
 * last lane to arrive, with each participating lane's argument (NULL for the other lanes). */
struct WarpOp {
    const char *name;
    void (*complete)(void *const args[32], unsigned participants);
};
/* Deposit `arg` and wait until every lane of `mask` (restricted to lanes that exist) has called
 * the same operation; then `op->complete` runs and every lane continues. */
void warp_collective(const WarpOp *op, unsigned mask, void *arg);
/* Lanes of the calling warp that have not exited. */
unsigned active_lanes();

/* The launch's dynamic shared memory (`extern __shared__`), poisoned (0xFF bytes) per block. */
void *dynamic_shared();
/* Register a __shared__ array at its declaration: poisoned once per block, counted as static
 * shared memory of the kernel. */
void shared_decl(void *p, size_t bytes);
/* Whether [p, p + bytes) lies in this block's shared memory (registered arrays or the dynamic
 * buffer); tensor-core loads and cp.async check their shared operands with it. */
bool is_shared(const void *p, size_t bytes);

/* A number for the running block, different for every block of every launch (state kept across
 * a block's warps, such as the wgmma queues of tensor_core.cuh, is tagged with it). */
uint64_t block_serial();

/* ---- warp shuffles and votes ---- */

struct ShuffleArg {
    uint64_t value;
    int src;         /* lane to read, already resolved for mode and width */
    uint64_t result; /* written by the completion */
};
extern const WarpOp k_shuffle_op;

template <typename T> inline T shuffle(unsigned mask, T var, int src) {
    static_assert(sizeof(T) <= 8, "the emulator shuffles values of at most 8 bytes");
    static_assert(std::is_trivially_copyable<T>::value, "shuffled values must be trivially copyable");
    ShuffleArg arg;
    arg.value = 0;
    memcpy(&arg.value, &var, sizeof var);
    arg.src = src;
    arg.result = 0;
    warp_collective(&k_shuffle_op, mask, &arg);
    T out;
    memcpy(&out, &arg.result, sizeof out);
    return out;
}

/* First lane of the calling lane's `width`-wide group; width must be a power of two <= 32. */
inline int shuffle_group_base(int width) {
    if (width < 1 || width > 32 || (width & (width - 1)) != 0)
        fail(cudaErrorLaunchFailure, "shuffle width %d is not a power of two <= 32", width);
    return g_thread->lane & ~(width - 1);
}

struct VoteArg {
    int predicate;
    unsigned ballot;       /* lanes whose predicate is true */
    unsigned participants; /* lanes that took part */
};
extern const WarpOp k_vote_op;
extern const WarpOp k_syncwarp_op;

inline VoteArg vote(unsigned mask, int predicate) {
    VoteArg arg = {predicate != 0, 0u, 0u};
    warp_collective(&k_vote_op, mask, &arg);
    return arg;
}

} // namespace bq_emu

#define __syncthreads() ((void)::bq_emu::block_barrier(::bq_emu::BARRIER_SYNC, 0, __FILE__, __LINE__))
#define __syncthreads_or(p) ::bq_emu::block_barrier(::bq_emu::BARRIER_OR, (p) != 0, __FILE__, __LINE__)
#define __syncthreads_and(p) ::bq_emu::block_barrier(::bq_emu::BARRIER_AND, (p) != 0, __FILE__, __LINE__)
#define __syncthreads_count(p)                                                                     \
    ::bq_emu::block_barrier(::bq_emu::BARRIER_COUNT, (p) != 0, __FILE__, __LINE__)

inline void __syncwarp(unsigned mask = 0xffffffffu) {
    ::bq_emu::warp_collective(&::bq_emu::k_syncwarp_op, mask, nullptr);
}

inline unsigned __activemask() { return ::bq_emu::active_lanes(); }

/* Source lane rules as in the CUDA programming guide: idx reads srcLane % width of the caller's
 * group; up / down read lane -/+ delta and keep their own value outside the group; xor may read
 * earlier groups but keeps its own value for lanes beyond the group. */
template <typename T> inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
    const int base = ::bq_emu::shuffle_group_base(width);
    return ::bq_emu::shuffle(mask, var, base + (src_lane & (width - 1)));
}
template <typename T> inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    const int base = ::bq_emu::shuffle_group_base(width), lane = ::bq_emu::g_thread->lane;
    const int src = lane - (int)delta;
    return ::bq_emu::shuffle(mask, var, src < base ? lane : src);
}
template <typename T> inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    const int base = ::bq_emu::shuffle_group_base(width), lane = ::bq_emu::g_thread->lane;
    const int src = lane + (int)delta;
    return ::bq_emu::shuffle(mask, var, src >= base + width ? lane : src);
}
template <typename T> inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
    const int base = ::bq_emu::shuffle_group_base(width), lane = ::bq_emu::g_thread->lane;
    const int src = lane ^ lane_mask;
    return ::bq_emu::shuffle(mask, var, src >= base + width ? lane : src);
}

inline unsigned __ballot_sync(unsigned mask, int predicate) {
    return ::bq_emu::vote(mask, predicate).ballot;
}
inline int __any_sync(unsigned mask, int predicate) {
    return ::bq_emu::vote(mask, predicate).ballot != 0;
}
inline int __all_sync(unsigned mask, int predicate) {
    const ::bq_emu::VoteArg v = ::bq_emu::vote(mask, predicate);
    return v.ballot == v.participants;
}

/* ---- memory: fences, read-only loads, atomics ---------------------------------------------------
 * Fibers switch only at barriers and warp collectives, so every read-modify-write below is atomic
 * with respect to the other threads; fences only have to stop the compiler. */

inline void __threadfence() { __asm__ __volatile__("" ::: "memory"); }
inline void __threadfence_block() { __asm__ __volatile__("" ::: "memory"); }
template <typename T> inline T __ldg(const T *p) { return *p; }

template <typename T> inline T atomicAdd(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
template <typename T> inline T atomicExch(T *p, T v) {
    T old = *p;
    *p = v;
    return old;
}
template <typename T> inline T atomicMax(T *p, T v) {
    T old = *p;
    if (v > old) *p = v;
    return old;
}
template <typename T> inline T atomicMin(T *p, T v) {
    T old = *p;
    if (v < old) *p = v;
    return old;
}
template <typename T> inline T atomicCAS(T *p, T compare, T v) {
    T old = *p;
    if (old == compare) *p = v;
    return old;
}

/* Generic -> shared window address. The emulator keeps host pointers; the value only has to be
 * unique and keep the pointer's low (alignment) bits. Non-shared pointers fail the launch, as
 * they would be garbage on the device. */
inline size_t __cvta_generic_to_shared(const void *p) {
    if (!::bq_emu::is_shared(p, 1))
        ::bq_emu::fail(cudaErrorIllegalAddress, "__cvta_generic_to_shared(%p): not shared memory", p);
    return (size_t)(uintptr_t)p;
}

/* ---- math intrinsics: libm stand-ins (host rounding, not the GPU's special-function units) ---- */

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanhf(float x) { return tanhf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; } /* NaN -> 0 */
/* the bit reinterpretations, through memcpy (defined behaviour in C++) */
template <typename To, typename From> inline To bq_emu_bit_cast(From from) {
    static_assert(sizeof(To) == sizeof(From), "bit cast between different sizes");
    To to;
    memcpy(&to, &from, sizeof to);
    return to;
}
inline int __float_as_int(float x) { return bq_emu_bit_cast<int>(x); }
inline float __int_as_float(int i) { return bq_emu_bit_cast<float>(i); }
inline unsigned __float_as_uint(float x) { return bq_emu_bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned u) { return bq_emu_bit_cast<float>(u); }
inline long long __double_as_longlong(double x) { return bq_emu_bit_cast<long long>(x); }
inline double __longlong_as_double(long long u) { return bq_emu_bit_cast<double>(u); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }

/* cuda_runtime.h declares the template overload only for nvcc. */
template <typename T>
inline cudaError_t cudaFuncSetAttribute(T *kernel, enum cudaFuncAttribute attr, int value) {
    return ::cudaFuncSetAttribute(reinterpret_cast<const void *>(kernel), attr, value);
}

/* ---- kernel launches ---------------------------------------------------------------------------- */

namespace bq_emu {

/* Run `body(ctx)` as every thread of every block of a launch; errors go to cudaGetLastError (and
 * are sticky when the kernel itself failed). */
void run_kernel(const void *kernel, const char *name, dim3 grid, dim3 block, size_t dynamic_smem,
                cudaStream_t stream, void (*body)(void *), void *ctx);

/* Work submitted to `stream` (a launch, an async copy, a cuBLASLt call, an event record): runs
 * now, or, while `stream` is being captured (cudaStreamBeginCapture), is appended to the graph
 * that cudaGraphLaunch replays later (cuda_emu_stream.cpp). */
void enqueue(cudaStream_t stream, std::function<void()> work);

/* For calls a real stream capture forbids on the capturing thread (allocation, synchronous copies,
 * synchronizing the device or the capturing stream): while a capture is active, prints `api`,
 * invalidates the capture (cudaStreamEndCapture then fails) and returns
 * cudaErrorStreamCaptureUnsupported; otherwise cudaSuccess. */
cudaError_t capture_forbids(const char *api);

/* `kernel<<<grid, block, smem, stream>>>(args...)` is spelled
 * `bq_emu::launch(kernel, "kernel", grid, block, smem, stream)(args...)`: the arguments are
 * converted to the parameter types once, as a real launch does, and every thread gets its own
 * copies (kernels may modify their parameters). */
template <typename... P> class Launch {
  public:
    Launch(void (*kernel)(P...), const char *name, dim3 grid, dim3 block, size_t smem,
           cudaStream_t stream)
        : kernel_(kernel), name_(name), grid_(grid), block_(block), smem_(smem), stream_(stream) {}

    template <typename... A> void operator()(A &&...args) const {
        static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
        /* converted now, as a real launch (or a graph capture of it) takes the values */
        auto params = std::make_shared<std::tuple<std::decay_t<P>...>>(std::forward<A>(args)...);
        void (*kernel)(P...) = kernel_;
        const char *name = name_;
        const dim3 grid = grid_, block = block_;
        const size_t smem = smem_;
        const cudaStream_t stream = stream_;
        enqueue(stream, [=]() {
            Call call = {kernel, params.get()};
            run_kernel(reinterpret_cast<const void *>(kernel), name, grid, block, smem, stream,
                       &Launch::invoke, &call);
        });
    }

  private:
    struct Call {
        void (*kernel)(P...);
        std::tuple<std::decay_t<P>...> *params;
    };
    static void invoke(void *p) {
        const Call *call = static_cast<const Call *>(p);
        std::apply(call->kernel, *call->params); /* copies: one set of parameters per thread */
    }

    void (*kernel_)(P...);
    const char *name_;
    dim3 grid_, block_;
    size_t smem_;
    cudaStream_t stream_;
};

template <typename... P>
inline Launch<P...> launch(void (*kernel)(P...), const char *name, dim3 grid, dim3 block,
                           size_t smem = 0, cudaStream_t stream = 0) {
    return Launch<P...>(kernel, name, grid, block, smem, stream);
}

} // namespace bq_emu

#endif
