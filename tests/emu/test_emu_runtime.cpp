/* test_emu_runtime.cpp - the emulator's execution model and runtime API (tests/emu), checked on
 * small kernels written for the purpose:
 *   - warp shuffles (idx / up / down / xor, widths), votes and __syncthreads_or / and / count give
 *     the documented results, in thread order and in reverse order (BQ_EMU_REVERSE);
 *   - the scheduling really is adversarial: a kernel missing a __syncthreads (or a __syncwarp)
 *     reads poisoned shared memory, or a value overwritten too early, and its result is wrong; the
 *     same kernel with the barrier is right;
 *   - a barrier some threads never reach (exited, or waiting at another __syncthreads) and a
 *     shuffle with an exited lane fail the launch with cudaErrorLaunchFailure instead of hanging,
 *     the error is sticky until cudaDeviceReset, and the next launch runs normally;
 *   - launch configuration and shared-memory limits are enforced as on an H100;
 *   - device memory has a size and can be made full on purpose, and a runtime call can be made
 *     to fail once (emu_faults.h).
 * Kernels here are plain C++ using the emulator directly: bq_emu::launch instead of <<<>>>, and
 * the shared_decl registration that translate_cu.py adds in kernel sources. */
#include "cuda_emu.h"

#include <stdio.h>
#include <stdlib.h>

#include "emu_check.h"
#include "emu_faults.h"

#define CUDA_CHECK(stmt)                                                                           \
    do {                                                                                           \
        const cudaError_t rc_ = (stmt);                                                            \
        CHECK(rc_ == cudaSuccess, "%s: %s", #stmt, cudaGetErrorName(rc_));                         \
    } while (0)

template <typename T> static T *device_alloc(size_t n) {
    T *p = nullptr;
    CUDA_CHECK(cudaMalloc((void **)&p, n * sizeof(T)));
    CUDA_CHECK(cudaMemset(p, 0, n * sizeof(T)));
    return p;
}

template <typename T> static void download(T *host, const T *dev, size_t n) {
    CUDA_CHECK(cudaMemcpy(host, dev, n * sizeof(T), cudaMemcpyDeviceToHost));
}

/* ---- warp and block collectives ----------------------------------------------------------------- */

enum { OUT_IDX, OUT_UP, OUT_DOWN, OUT_XOR, OUT_XOR_W8, OUT_BALLOT, OUT_ANY, OUT_ALL, OUT_SUM, N_OUT };

/* 64 threads = 2 warps; out[k * 64 + tid] for each quantity k. */
static void collectives_kernel(int *out) {
    const int tid = threadIdx.x, lane = tid & 31;
    const int v = 100 * tid;
    out[OUT_IDX * 64 + tid] = __shfl_sync(0xffffffffu, v, (lane * 7 + 3) % 32);
    out[OUT_UP * 64 + tid] = __shfl_up_sync(0xffffffffu, v, 3, 16);
    out[OUT_DOWN * 64 + tid] = __shfl_down_sync(0xffffffffu, v, 5);
    out[OUT_XOR * 64 + tid] = __shfl_xor_sync(0xffffffffu, v, 13);
    out[OUT_XOR_W8 * 64 + tid] = __shfl_xor_sync(0xffffffffu, v, 9, 8);
    out[OUT_BALLOT * 64 + tid] = (int)__ballot_sync(0xffffffffu, lane % 3 == 0);
    out[OUT_ANY * 64 + tid] = __any_sync(0xffffffffu, tid == 40);
    out[OUT_ALL * 64 + tid] = __all_sync(0xffffffffu, tid < 32);
    float s = (float)tid;
    for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_xor_sync(0xffffffffu, s, offset);
    out[OUT_SUM * 64 + tid] = (int)s;
}

static int expected_collective(int k, int tid) {
    const int lane = tid & 31, warp0 = tid - lane;
    switch (k) {
    case OUT_IDX: return 100 * (warp0 + (lane * 7 + 3) % 32);
    case OUT_UP: return 100 * ((lane % 16) >= 3 ? tid - 3 : tid);
    case OUT_DOWN: return 100 * (lane + 5 < 32 ? tid + 5 : tid);
    case OUT_XOR: return 100 * (warp0 + (lane ^ 13));
    case OUT_XOR_W8: {
        /* width 8: lane ^ 9 lies in a later group of 8 for half the lanes -> own value */
        const int src = lane ^ 9, base = lane & ~7;
        return 100 * (src >= base + 8 ? tid : warp0 + src);
    }
    case OUT_BALLOT: return (int)0x49249249u;
    case OUT_ANY: return tid >= 32;
    case OUT_ALL: return tid < 32;
    case OUT_SUM: return warp0 * 32 + 31 * 32 / 2;
    }
    return -1;
}

static void block_votes_kernel(int *out) {
    const int tid = threadIdx.x;
    out[tid] = __syncthreads_or(tid == 77);
    out[96 + tid] = __syncthreads_and(tid != 77);
    out[192 + tid] = __syncthreads_count(tid % 5 == 0);
}

static void test_collectives(const char *order) {
    int *d = device_alloc<int>(N_OUT * 64);
    bq_emu::launch(collectives_kernel, "collectives_kernel", 1, 64)(d);
    CUDA_CHECK(cudaGetLastError());
    int got[N_OUT * 64];
    download(got, d, N_OUT * 64);
    int bad = 0;
    for (int k = 0; k < N_OUT; k++)
        for (int t = 0; t < 64; t++)
            if (got[k * 64 + t] != expected_collective(k, t)) {
                if (bad++ < 5)
                    printf("  quantity %d thread %d: %d, expected %d\n", k, t, got[k * 64 + t],
                           expected_collective(k, t));
            }
    CHECK(bad == 0, "collectives (%s order): %d wrong value(s)", order, bad);

    int *v = device_alloc<int>(3 * 96);
    bq_emu::launch(block_votes_kernel, "block_votes_kernel", 1, 96)(v);
    CUDA_CHECK(cudaGetLastError());
    int votes[3 * 96];
    download(votes, v, 3 * 96);
    bad = 0;
    for (int t = 0; t < 96; t++)
        bad += votes[t] != 1 || votes[96 + t] != 0 || votes[192 + t] != 20;
    CHECK(bad == 0, "__syncthreads_or / and / count (%s order): %d thread(s) wrong", order, bad);
    if (!g_failures) printf("ok   shuffles, votes, block reductions (%s order)\n", order);
    cudaFree(d), cudaFree(v);
}

/* ---- the scheduling exposes missing barriers -------------------------------------------------------- */

/* Each thread publishes tid + 1 and reads its neighbour a warp away (block of 128). */
static void neighbour_kernel(int *out, int with_barrier) {
    __shared__ int s[128];
    bq_emu::shared_decl(&s, sizeof s);
    const int tid = threadIdx.x;
    s[tid] = tid + 1;
    if (with_barrier) __syncthreads();
    out[tid] = s[(tid + 32) % 128];
}

/* Lane pairs exchange through shared memory, within one warp. */
static void pair_kernel(int *out, int with_syncwarp) {
    __shared__ int s[32];
    bq_emu::shared_decl(&s, sizeof s);
    const int lane = threadIdx.x;
    s[lane] = lane + 1;
    if (with_syncwarp) __syncwarp();
    out[lane] = s[lane ^ 1];
}

/* Two rounds through one shared buffer. Without the barrier that starts each round (everyone has
 * read the previous round: write-after-read), the first warp overwrites values that a later warp
 * has not read yet. */
static void reuse_kernel(int *out, int with_barrier) {
    __shared__ int s[128];
    bq_emu::shared_decl(&s, sizeof s);
    const int tid = threadIdx.x;
    int acc = 0;
    for (int round = 0; round < 2; round++) {
        if (with_barrier) __syncthreads();
        s[tid] = 1000 * round + tid;
        __syncthreads();
        acc += s[(tid + 32) % 128];
    }
    out[tid] = acc;
}

static int count_wrong(const int *got, int n, int (*expected)(int)) {
    int bad = 0;
    for (int i = 0; i < n; i++) bad += got[i] != expected(i);
    return bad;
}
static int neighbour_expected(int tid) { return (tid + 32) % 128 + 1; }
static int pair_expected(int lane) { return (lane ^ 1) + 1; }
static int reuse_expected(int tid) { return 1000 + 2 * ((tid + 32) % 128); }

/* Launch `kernel` on one block of `threads` (<= 128) with or without its barrier and count the
 * outputs that differ from `expected`. */
static int wrong_outputs(void (*kernel)(int *, int), const char *name, int threads, int *d,
                         int with_barrier, int (*expected)(int)) {
    int got[128];
    bq_emu::launch(kernel, name, 1, threads)(d, with_barrier);
    CUDA_CHECK(cudaGetLastError());
    download(got, d, threads);
    return count_wrong(got, threads, expected);
}

static void test_missing_barriers(const char *order) {
    int *d = device_alloc<int>(128);
    CHECK(wrong_outputs(neighbour_kernel, "neighbour_kernel", 128, d, 1, neighbour_expected) == 0,
          "with __syncthreads (%s order): wrong", order);
    const int wrong_block = wrong_outputs(neighbour_kernel, "neighbour_kernel", 128, d, 0, neighbour_expected);
    CHECK(wrong_block > 0, "missing __syncthreads (%s order) went unnoticed", order);

    CHECK(wrong_outputs(pair_kernel, "pair_kernel", 32, d, 1, pair_expected) == 0,
          "with __syncwarp (%s order): wrong", order);
    const int wrong_warp = wrong_outputs(pair_kernel, "pair_kernel", 32, d, 0, pair_expected);
    CHECK(wrong_warp > 0, "missing __syncwarp (%s order) went unnoticed", order);

    CHECK(wrong_outputs(reuse_kernel, "reuse_kernel", 128, d, 1, reuse_expected) == 0,
          "reuse with both barriers (%s order): wrong", order);
    const int wrong_reuse = wrong_outputs(reuse_kernel, "reuse_kernel", 128, d, 0, reuse_expected);
    CHECK(wrong_reuse > 0, "missing write-after-read __syncthreads (%s order) went unnoticed", order);
    printf("ok   missing __syncthreads: read-after-write %d/128 wrong, write-after-read %d/128 wrong; "
           "missing __syncwarp: %d/32 wrong (%s order)\n", wrong_block, wrong_reuse, wrong_warp, order);
    cudaFree(d);
}

/* ---- failures: deadlock, divergence, exited lanes ----------------------------------------------------- */

static void exit_before_barrier_kernel(int *out) {
    if (threadIdx.x == 5) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

static void divergent_barrier_kernel(int *out) {
    if (threadIdx.x < 32) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1;
}

static void exited_lane_shuffle_kernel(int *out) {
    if (threadIdx.x == 3) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}

static void global_pointer_cvta_kernel(int *out) { out[0] = (int)__cvta_generic_to_shared(out); }

static void plain_kernel(int *out) { out[threadIdx.x] = (int)threadIdx.x + 1; }

static void expect_launch_failure(const char *what, void (*kernel)(int *), int threads,
                                  cudaError_t expected) {
    int *d = device_alloc<int>(256);
    printf("---- expected emulator report (%s):\n", what);
    fflush(stdout);
    bq_emu::launch(kernel, what, 1, threads)(d);
    fflush(stderr);
    const cudaError_t rc = cudaGetLastError();
    CHECK(rc == expected, "%s: launch returned %s, expected %s", what, cudaGetErrorName(rc),
          cudaGetErrorName(expected));
    /* sticky, like a device fault, until the "context" is reset */
    CHECK(cudaDeviceSynchronize() == expected, "%s: error not sticky", what);
    CHECK(cudaMemset(d, 0, 4) == expected, "%s: error not sticky for later calls", what);
    CUDA_CHECK(cudaDeviceReset());
    /* fibers left inside the failed kernel are restarted: a normal launch works */
    bq_emu::launch(plain_kernel, "plain_kernel", 1, threads)(d);
    CUDA_CHECK(cudaGetLastError());
    int got[256];
    download(got, d, (size_t)threads);
    int bad = 0;
    for (int i = 0; i < threads; i++) bad += got[i] != i + 1;
    CHECK(bad == 0, "%s: the launch after the failure computed %d wrong value(s)", what, bad);
    cudaFree(d);
}

/* ---- launch configuration and shared-memory limits ------------------------------------------------- */

static void static_shared_kernel(int *out) {
    __shared__ float big[10000]; /* 40,000 bytes */
    bq_emu::shared_decl(&big, sizeof big);
    big[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = (int)big[(threadIdx.x + 1) % blockDim.x];
}

static void dynamic_shared_kernel(int *out) {
    int *s = static_cast<int *>(bq_emu::dynamic_shared());
    s[threadIdx.x] = (int)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

static void test_launch_limits() {
    int *d = device_alloc<int>(2048);
    struct {
        const char *what;
        dim3 grid, block;
        size_t smem;
        cudaError_t expected;
    } cases[] = {
        {"1024 threads", dim3(2), dim3(32, 32), 4096, cudaSuccess},
        {"1025 threads", dim3(1), dim3(1025), 0, cudaErrorInvalidConfiguration},
        {"block.z 65", dim3(1), dim3(1, 1, 65), 0, cudaErrorInvalidConfiguration},
        {"grid.x 0", dim3(0), dim3(32), 0, cudaErrorInvalidConfiguration},
        {"grid.y 65536", dim3(1, 65536), dim3(32), 0, cudaErrorInvalidConfiguration},
        {"48 KB dynamic", dim3(1), dim3(32), 48 * 1024, cudaSuccess},
        {"48 KB + 4 dynamic without opt-in", dim3(1), dim3(32), 48 * 1024 + 4, cudaErrorInvalidValue},
    };
    for (const auto &c : cases) {
        bq_emu::launch(dynamic_shared_kernel, c.what, c.grid, c.block, c.smem)(d);
        const cudaError_t rc = cudaGetLastError();
        CHECK(rc == c.expected, "%s: %s, expected %s", c.what, cudaGetErrorName(rc),
              cudaGetErrorName(c.expected));
        CHECK(cudaGetLastError() == cudaSuccess, "%s: the launch error is not cleared", c.what);
    }
    /* opt-in: up to 227 KB */
    CHECK(cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               228 * 1024) == cudaErrorInvalidValue, "opt-in above 227 KB accepted");
    cudaGetLastError();
    CUDA_CHECK(cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    100 * 1024));
    bq_emu::launch(dynamic_shared_kernel, "100 KB with opt-in", 1, 32, 100 * 1024)(d);
    CUDA_CHECK(cudaGetLastError());
    bq_emu::launch(dynamic_shared_kernel, "101 KB with a 100 KB opt-in", 1, 32, 101 * 1024)(d);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue, "dynamic shared above the opt-in accepted");
    /* static (40,000 bytes, learnt from the first block) + dynamic above 48 KB */
    bq_emu::launch(static_shared_kernel, "static only", 1, 64, 0)(d);
    CUDA_CHECK(cudaGetLastError());
    bq_emu::launch(static_shared_kernel, "static + 9 KB dynamic", 1, 64, 9 * 1024)(d);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue, "static + dynamic above 48 KB accepted");
    printf("ok   launch configuration and shared-memory limits\n");
    cudaFree(d);
}

static void test_api() {
    int n = 0;
    CUDA_CHECK(cudaGetDeviceCount(&n));
    CHECK(n == 1, "cudaGetDeviceCount: %d", n);
    CHECK(cudaSetDevice(1) == cudaErrorInvalidDevice, "cudaSetDevice(1) accepted");
    CHECK(cudaGetLastError() == cudaErrorInvalidDevice, "cudaGetLastError after a failed call");
    CHECK(cudaGetLastError() == cudaSuccess, "cudaGetLastError does not clear");
    CHECK(strcmp(cudaGetErrorName(cudaErrorInvalidValue), "cudaErrorInvalidValue") == 0, "error name");
    int x = 0;
    CHECK(cudaFree(&x) == cudaErrorInvalidValue, "cudaFree of a non-allocation accepted");
    cudaGetLastError();
    printf("ok   runtime API basics\n");
}

/* The device's memory (emu_faults.h): cudaMalloc fails past its size, cudaMemGetInfo follows the
 * live allocations, and a device made full from the n-th cudaMalloc on fails that one and every
 * later one (not stickily), reporting nothing free, until the fault is turned off. */
static void test_device_memory() {
    bq_emu_set_device_memory(1 << 20);
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    CHECK(total_b == (1 << 20) && free_b == total_b, "a 1 MB device: %zu of %zu free", free_b, total_b);
    void *a = nullptr, *b = nullptr, *c = nullptr;
    CUDA_CHECK(cudaMalloc(&a, 600 << 10));
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    CHECK(free_b == (424 << 10), "after 600 KB: %zu free", free_b);
    CHECK(cudaMalloc(&b, 600 << 10) == cudaErrorMemoryAllocation, "600 KB more fit in 424 KB");
    CHECK(cudaGetLastError() == cudaErrorMemoryAllocation && cudaGetLastError() == cudaSuccess,
          "out of memory is reported once, not sticky");
    CUDA_CHECK(cudaMalloc(&b, 400 << 10));
    CUDA_CHECK(cudaFree(a));
    CUDA_CHECK(cudaFree(b));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    CHECK(prop.totalGlobalMem == (1 << 20), "totalGlobalMem %zu", prop.totalGlobalMem);
    bq_emu_set_device_memory(0);
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    CHECK(prop.totalGlobalMem == (size_t)80 << 30, "totalGlobalMem %zu after the reset", prop.totalGlobalMem);

    const long live = bq_emu_live_device_allocations();
    bq_emu_fail_device_alloc_from(2);
    CUDA_CHECK(cudaMalloc(&a, 64));
    CHECK(!bq_emu_device_alloc_failed(), "failed before the second allocation");
    CHECK(cudaMalloc(&b, 64) == cudaErrorMemoryAllocation, "the second allocation went through");
    CHECK(cudaMalloc(&c, 64) == cudaErrorMemoryAllocation, "the third allocation went through");
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    CHECK(bq_emu_device_alloc_failed() && free_b == 0, "full device: %zu free", free_b);
    CHECK(bq_emu_live_device_allocations() == live + 1, "%ld live allocations, want %ld",
          bq_emu_live_device_allocations(), live + 1);
    bq_emu_fail_device_alloc_from(0);
    cudaGetLastError();
    CUDA_CHECK(cudaMalloc(&b, 64));
    CUDA_CHECK(cudaFree(a));
    CUDA_CHECK(cudaFree(b));
    CHECK(bq_emu_live_device_allocations() == live, "allocations left behind");
    printf("ok   device memory: size, out of memory, a device made full\n");
}

/* A runtime call made to fail on purpose (emu_faults.h): the chosen call alone, once, not sticky. */
static void test_failing_call() {
    bq_emu_fail_call("cudaEventCreate", 2);
    cudaEvent_t first = nullptr, second = nullptr, third = nullptr;
    CUDA_CHECK(cudaEventCreate(&first));
    CHECK(!bq_emu_call_failed(), "the first cudaEventCreate counted as failed");
    CHECK(cudaEventCreate(&second) == cudaErrorMemoryAllocation && bq_emu_call_failed(),
          "the second cudaEventCreate went through");
    CHECK(cudaGetLastError() == cudaErrorMemoryAllocation && cudaGetLastError() == cudaSuccess,
          "a failed call is reported once, not sticky");
    CUDA_CHECK(cudaEventCreate(&third));
    cudaStream_t stream = nullptr;
    CUDA_CHECK(cudaStreamCreate(&stream)); /* another function: untouched */
    bq_emu_fail_call(nullptr, 0);
    CUDA_CHECK(cudaEventDestroy(first));
    CUDA_CHECK(cudaEventDestroy(third));
    CUDA_CHECK(cudaStreamDestroy(stream));
    printf("ok   a runtime call made to fail once\n");
}

int main() {
    test_api();
    test_device_memory();
    test_failing_call();
    unsetenv("BQ_EMU_REVERSE");
    test_collectives("thread");
    test_missing_barriers("thread");
    setenv("BQ_EMU_REVERSE", "1", 1);
    test_collectives("reverse");
    test_missing_barriers("reverse");
    unsetenv("BQ_EMU_REVERSE");
    expect_launch_failure("thread exits before __syncthreads", exit_before_barrier_kernel, 64,
                          cudaErrorLaunchFailure);
    expect_launch_failure("two different __syncthreads", divergent_barrier_kernel, 64,
                          cudaErrorLaunchFailure);
    expect_launch_failure("shuffle with an exited lane", exited_lane_shuffle_kernel, 32,
                          cudaErrorLaunchFailure);
    expect_launch_failure("__cvta_generic_to_shared of a global pointer", global_pointer_cvta_kernel, 32,
                          cudaErrorIllegalAddress);
    test_launch_limits();
    printf("test_emu_runtime: %d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}
