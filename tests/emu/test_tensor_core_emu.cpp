/* test_tensor_core_emu.cpp - the emulator's tensor-core stand-ins (tests/emu/tensor_core.cuh and
 * the WMMA of tests/emu/mma.h) against a naive matmul, so that a layout mistake in the emulator
 * cannot make a wrong kernel pass (or a right one fail) in test_gpu_ops_emulated.
 *
 * One warp stages random 16x16 tiles into shared memory with cp.async and then, exactly as the
 * mma.sync attention kernel addresses them:
 *   S  = A . K^T  A by ldmatrix_x4 from row-major A[m][k], B by ldmatrix_x4 from row-major K[n][k];
 *   SV = A . V    B by ldmatrix_x4_trans from row-major V[k][n];
 *   PV = P . V    P = S repacked from C fragments to an A fragment with bq_pack2, FlashAttention-2
 *                 style: a[0] = pack(c0, c1) of n-tile 0, a[1] = pack(c2, c3) of n-tile 0,
 *                 a[2] = pack(c0, c1) of n-tile 1, a[3] = pack(c2, c3) of n-tile 1.
 * Products of 16-bit values are exact in fp32 and both sides add k in order, so the results must
 * match the reference exactly. The same for wmma::load / mma / store (row- and col-major), and for
 * wgmma m64n64k16 (one warpgroup, A from registers, B through no-swizzle descriptors in the
 * K-major and MN-major canonical layouts, with other LBO / SBO than the attention kernel uses):
 * its results, that accumulators are untouched until the wait, and that an MMA without a
 * wgmma.fence fails the launch.
 * Also the asynchrony rules the kernels must keep: a cp.async lands only at the wait_group that
 * covers it (wait<1> leaves the newest group in flight); a block that leaves copies unwaited
 * fails the next block; wgmma may not read cp.async bytes their thread never passed through
 * fence.proxy.async; and the four warps of a warpgroup must issue the same wgmma operations.
 * Each launch meant to fail runs in a child process, since a failed launch leaves the
 * (emulated) context with a sticky error, as on a device. */
#include "cuda_emu.h"
#include "mma.h"
#include "tensor_core.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu_check.h"

static uint64_t g_seed = 0x7e57c0de;
static float uniform(float lo, float hi) {
    g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((g_seed >> 40) & 0xffffff) / (float)(1 << 24);
}

/* x rounded to nearest (even) in T, back as fp32 */
template <typename T> static float round_to(float x);
template <> float round_to<__half>(float x) { return __half2float(__float2half_rn(x)); }
template <> float round_to<__nv_bfloat16>(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

constexpr int LD = 24; /* shared row stride (elements): rows 48 bytes apart, 16-byte aligned */

/* Store the two 16x8 C fragments c[0] (columns 0..7) and c[1] (8..15) as a row-major 16x16. */
static void store_c(const float c[2][4], float *out) {
    const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    for (int j = 0; j < 2; j++) {
        out[g * 16 + 8 * j + 2 * t] = c[j][0];
        out[g * 16 + 8 * j + 2 * t + 1] = c[j][1];
        out[(g + 8) * 16 + 8 * j + 2 * t] = c[j][2];
        out[(g + 8) * 16 + 8 * j + 2 * t + 1] = c[j][3];
    }
}

static uint16_t raw_bits(const void *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* async_ok[lane]: 1 when this lane's copies landed exactly at their waits (shared memory is
 * poisoned with 0xFF bytes per block, and 0xFFFF is a NaN no input holds). */
template <typename T>
static void mma_kernel(const T *a_g, const T *k_g, const T *v_g, float *s_out, float *sv_out,
                       float *pv_out, unsigned *pad_bits, int *async_ok) {
    __shared__ __align__(128) T a_s[16][LD];
    __shared__ __align__(128) T k_s[16][LD];
    __shared__ __align__(128) T v_s[16][LD];
    bq_emu::shared_decl(&a_s, sizeof a_s); /* what translate_cu.py adds in kernel sources */
    bq_emu::shared_decl(&k_s, sizeof k_s);
    bq_emu::shared_decl(&v_s, sizeof v_s);
    const int lane = threadIdx.x;

    /* one 16-byte chunk per lane and tile, plus a zero-filled (invalid) chunk in the padding */
    const int r = lane / 2, part = lane % 2;
    bq_cp_async_16(&a_s[r][8 * part], a_g + 16 * r + 8 * part, true);
    if (part == 0) bq_cp_async_16(&a_s[r][16], nullptr, false);
    bq_cp_async_commit(); /* group 0: A */
    bq_cp_async_16(&k_s[r][8 * part], k_g + 16 * r + 8 * part, true);
    bq_cp_async_16(&v_s[r][8 * part], v_g + 16 * r + 8 * part, true);
    bq_cp_async_commit(); /* group 1: K, V */
    const bool a_early = raw_bits(&a_s[r][8 * part]) == 0xFFFF;
    bq_cp_async_wait<1>(); /* group 0 only */
    const bool a_landed = raw_bits(&a_s[r][8 * part]) == raw_bits(a_g + 16 * r + 8 * part);
    const bool k_early = raw_bits(&k_s[r][8 * part]) == 0xFFFF;
    bq_cp_async_wait<0>();
    const bool k_landed = raw_bits(&k_s[r][8 * part]) == raw_bits(k_g + 16 * r + 8 * part);
    async_ok[lane] = a_early && a_landed && k_early && k_landed;
    __syncthreads();

    const int ld_row = lane & 7, ld_matrix = lane >> 3;
    uint32_t a[4];
    bq_ldmatrix_x4(a, &a_s[ld_row + 8 * (ld_matrix & 1)][8 * (ld_matrix >> 1)]);
    /* K^T operand from K[n][k]: matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), ... */
    uint32_t kb[4];
    bq_ldmatrix_x4(kb, &k_s[8 * (ld_matrix >> 1) + ld_row][8 * (ld_matrix & 1)]);
    /* V operand from V[k][n], transposed: matrices (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), ... */
    uint32_t vb[4];
    bq_ldmatrix_x4_trans(vb, &v_s[ld_row + 8 * (ld_matrix & 1)][8 * (ld_matrix >> 1)]);

    float s[2][4] = {}, sv[2][4] = {}, pv[2][4] = {};
    bq_mma_16816<T>(s[0], a, &kb[0]);
    bq_mma_16816<T>(s[1], a, &kb[2]);
    bq_mma_16816<T>(sv[0], a, &vb[0]);
    bq_mma_16816<T>(sv[1], a, &vb[2]);
    const uint32_t p[4] = {bq_pack2<T>(s[0][0], s[0][1]), bq_pack2<T>(s[0][2], s[0][3]),
                           bq_pack2<T>(s[1][0], s[1][1]), bq_pack2<T>(s[1][2], s[1][3])};
    bq_mma_16816<T>(pv[0], p, &vb[0]);
    bq_mma_16816<T>(pv[1], p, &vb[2]);
    store_c(s, s_out);
    store_c(sv, sv_out);
    store_c(pv, pv_out);
    /* the zero-filled chunk: columns 16..23 of rows 0..15 */
    if (lane < 16) {
        unsigned bits = 0;
        for (int c = 16; c < 24; c++) {
            uint16_t v;
            memcpy(&v, &a_s[lane][c], 2);
            bits |= v;
        }
        pad_bits[lane] = bits;
    }
}

namespace wmma = nvcuda::wmma;

template <typename T>
static void wmma_kernel(const T *a_g, const T *b_g, const float *c_g, float *d_row, float *d_col) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b; /* b_g holds B^T row-major */
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
    wmma::load_matrix_sync(a, a_g, 16);
    wmma::load_matrix_sync(b, b_g, 16);
    wmma::load_matrix_sync(c, c_g, 16, wmma::mem_row_major);
    wmma::mma_sync(c, a, b, c);
    wmma::store_matrix_sync(d_row, c, 16, wmma::mem_row_major);
    wmma::store_matrix_sync(d_col, c, 16, wmma::mem_col_major);
}

template <typename T> static T *device_copy(const float *x, size_t n) {
    T *h = (T *)malloc(n * sizeof(T));
    for (size_t i = 0; i < n; i++) h[i] = T(x[i]);
    T *d = nullptr;
    cudaMalloc((void **)&d, n * sizeof(T));
    cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice);
    free(h);
    return d;
}

static void expect_equal(const char *what, const float *got, const float *ref, int n, int cols = 16) {
    double max_diff = 0.0;
    int first_bad = -1;
    for (int i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d == 0.0) && first_bad < 0) first_bad = i;
        if (d > max_diff || d != d) max_diff = d;
    }
    CHECK(first_bad < 0, "%s: element %d (row %d col %d) = %g, reference %g (max |diff| %g)", what,
          first_bad, first_bad / cols, first_bad % cols, first_bad < 0 ? 0.0 : (double)got[first_bad],
          first_bad < 0 ? 0.0 : (double)ref[first_bad], max_diff);
    if (first_bad < 0) printf("ok   %s\n", what);
}

template <typename T> static void run_mma_case(const char *type_name) {
    float A[256], K[256], V[256]; /* A[m][k], K[n][k], V[k][n], rounded to T */
    for (int i = 0; i < 256; i++) {
        A[i] = round_to<T>(uniform(-2.0f, 2.0f));
        K[i] = round_to<T>(uniform(-2.0f, 2.0f));
        V[i] = round_to<T>(uniform(-2.0f, 2.0f));
    }
    float S[256], SV[256], PV[256];
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float s = 0.0f, sv = 0.0f;
            for (int k = 0; k < 16; k++) {
                s += A[m * 16 + k] * K[n * 16 + k];
                sv += A[m * 16 + k] * V[k * 16 + n];
            }
            S[m * 16 + n] = s;
            SV[m * 16 + n] = sv;
        }
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float pv = 0.0f;
            for (int k = 0; k < 16; k++) pv += round_to<T>(S[m * 16 + k]) * V[k * 16 + n];
            PV[m * 16 + n] = pv;
        }

    T *dA = device_copy<T>(A, 256), *dK = device_copy<T>(K, 256), *dV = device_copy<T>(V, 256);
    float *dOut = nullptr;
    unsigned *dPad = nullptr;
    int *dAsync = nullptr;
    cudaMalloc((void **)&dOut, 3 * 256 * sizeof(float));
    cudaMalloc((void **)&dPad, 16 * sizeof(unsigned));
    cudaMalloc((void **)&dAsync, 32 * sizeof(int));
    bq_emu::launch(mma_kernel<T>, "mma_kernel", 1, 32)(dA, dK, dV, dOut, dOut + 256, dOut + 512, dPad,
                                                       dAsync);
    const cudaError_t rc = cudaGetLastError();
    CHECK(rc == cudaSuccess, "%s mma kernel: %s", type_name, cudaGetErrorName(rc));
    float out[3 * 256];
    cudaMemcpy(out, dOut, sizeof out, cudaMemcpyDeviceToHost);
    char what[96];
    snprintf(what, sizeof what, "%s ldmatrix_x4 + mma: A . K^T", type_name);
    expect_equal(what, out, S, 256);
    snprintf(what, sizeof what, "%s ldmatrix_x4_trans + mma: A . V", type_name);
    expect_equal(what, out + 256, SV, 256);
    snprintf(what, sizeof what, "%s C fragments repacked with bq_pack2: P . V", type_name);
    expect_equal(what, out + 512, PV, 256);
    unsigned pad[16];
    cudaMemcpy(pad, dPad, sizeof pad, cudaMemcpyDeviceToHost);
    unsigned any = 0;
    for (int i = 0; i < 16; i++) any |= pad[i];
    CHECK(any == 0, "%s cp.async with valid = false did not zero-fill (bits 0x%04x)", type_name, any);
    int async_ok[32];
    cudaMemcpy(async_ok, dAsync, sizeof async_ok, cudaMemcpyDeviceToHost);
    int lanes_ok = 0;
    for (int i = 0; i < 32; i++) lanes_ok += async_ok[i] == 1;
    CHECK(lanes_ok == 32, "%s cp.async: on %d of 32 lanes the copies did not land exactly at their "
          "wait_group (wait<1> copies the older group only)", type_name, 32 - lanes_ok);
    if (lanes_ok == 32) printf("ok   %s cp.async lands at the covering wait_group\n", type_name);
    cudaFree(dA), cudaFree(dK), cudaFree(dV), cudaFree(dOut), cudaFree(dPad), cudaFree(dAsync);
}

template <typename T> static void run_wmma_case(const char *type_name) {
    float A[256], Bt[256], C[256]; /* A[m][k], Bt[n][k] (B column-major), C[m][n] */
    for (int i = 0; i < 256; i++) {
        A[i] = round_to<T>(uniform(-2.0f, 2.0f));
        Bt[i] = round_to<T>(uniform(-2.0f, 2.0f));
        C[i] = uniform(-1.0f, 1.0f);
    }
    float D[256], Dt[256];
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float acc = C[m * 16 + n];
            for (int k = 0; k < 16; k++) acc += A[m * 16 + k] * Bt[n * 16 + k];
            D[m * 16 + n] = acc;
            Dt[n * 16 + m] = acc;
        }
    T *dA = device_copy<T>(A, 256), *dB = device_copy<T>(Bt, 256);
    float *dC = nullptr, *dOut = nullptr;
    cudaMalloc((void **)&dC, sizeof C);
    cudaMalloc((void **)&dOut, 2 * sizeof C);
    cudaMemcpy(dC, C, sizeof C, cudaMemcpyHostToDevice);
    bq_emu::launch(wmma_kernel<T>, "wmma_kernel", 1, 32)(dA, dB, dC, dOut, dOut + 256);
    const cudaError_t rc = cudaGetLastError();
    CHECK(rc == cudaSuccess, "%s wmma kernel: %s", type_name, cudaGetErrorName(rc));
    float out[512];
    cudaMemcpy(out, dOut, sizeof out, cudaMemcpyDeviceToHost);
    char what[96];
    snprintf(what, sizeof what, "%s wmma row x col + C, stored row-major", type_name);
    expect_equal(what, out, D, 256);
    snprintf(what, sizeof what, "%s wmma stored col-major", type_name);
    expect_equal(what, out + 256, Dt, 256);
    cudaFree(dA), cudaFree(dB), cudaFree(dC), cudaFree(dOut);
}

/* ---- wgmma ---- */

/* Byte offsets of the canonical no-swizzle layouts (PTX ISA "Shared Memory Matrix Layout";
 * CuTe's mma_traits_sm90_gmma.hpp), written out here independently of the emulator: core
 * matrices of 8 rows x 16 bytes; K-major: (mn, k) at (mn/8) SBO + (k/8) LBO + (mn%8) 16 +
 * (k%8) 2; MN-major: (k, n) at (n/8) SBO + (k/8) LBO + (k%8) 16 + (n%8) 2. */
constexpr uint32_t KMAJOR_LBO = 1024, KMAJOR_SBO = 128; /* core matrices column by column */
constexpr uint32_t MNMAJOR_LBO = 128, MNMAJOR_SBO = 256;
constexpr size_t WG_B_OFFSET = 0, WG_V_OFFSET = 4096, WG_SMEM = 8192;

static size_t kmajor_offset(int n, int k) {
    return (n / 8) * KMAJOR_SBO + (k / 8) * KMAJOR_LBO + (n % 8) * 16 + (k % 8) * 2;
}
static size_t mnmajor_offset(int k, int n) {
    return (n / 8) * MNMAJOR_SBO + (k / 8) * MNMAJOR_LBO + (k % 8) * 16 + (n % 8) * 2;
}

/* What a wgmma_kernel launch leaves out or does wrong (the fault cases must fail the launch). */
enum WgmmaFault { WG_CORRECT, WG_NO_WGMMA_FENCE, WG_NO_PROXY_FENCE, WG_WARP_DIVERGES };

/* One warpgroup: D = A . Bt^T (B K-major), then D += A . V (V MN-major); A 64x16 row-major from
 * global into the mma.sync A layout per warp; Bt and V staged by cp.async, 16 bytes a thread
 * each (a core-matrix row). d_early: lane 0 of warp 0's first accumulator right after the first
 * MMA is issued (before its wait). */
template <typename T>
static void wgmma_kernel(const T *a_g, const T *bt_g, const T *v_g, float *d_out, float *d_early,
                         int fault) {
    unsigned char *smem = static_cast<unsigned char *>(bq_emu::dynamic_shared());
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane / 4, t = lane % 4;
    { /* Bt[n][8c .. 8c + 7] and V[k][8c .. 8c + 7]: 16 contiguous bytes on both sides */
        const int n = tid / 2, c = tid % 2;
        bq_cp_async_16(smem + WG_B_OFFSET + kmajor_offset(n, 8 * c), &bt_g[n * 16 + 8 * c], true);
        const int k = tid / 8, cv = tid % 8;
        bq_cp_async_16(smem + WG_V_OFFSET + mnmajor_offset(k, 8 * cv), &v_g[k * 64 + 8 * cv], true);
    }
    bq_cp_async_commit();
    bq_cp_async_wait<0>();
    if (fault != WG_NO_PROXY_FENCE || tid != 77) bq_fence_proxy_async(); /* one thread forgets */
    __syncthreads();
    uint32_t a[4];
    for (int r = 0; r < 4; r++) {
        const int row = 16 * warp + g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
        uint16_t lo, hi;
        memcpy(&lo, &a_g[row * 16 + col], 2);
        memcpy(&hi, &a_g[row * 16 + col + 1], 2);
        a[r] = (uint32_t)lo | (uint32_t)hi << 16;
    }
    float d[8][4];
    for (int n = 0; n < 8; n++)
        for (int e = 0; e < 4; e++) d[n][e] = -7.0f; /* overwritten: accumulate 0 */
    if (fault != WG_NO_WGMMA_FENCE) bq_wgmma_fence();
    /* the diverging warp describes B with another (still in-bounds) stride */
    const uint32_t sbo = fault == WG_WARP_DIVERGES && warp == 2 ? 2 * KMAJOR_SBO : KMAJOR_SBO;
    bq_wgmma_64x64x16_rs<T, 0>(d, a, bq_wgmma_desc(smem + WG_B_OFFSET, KMAJOR_LBO, sbo), 0);
    bq_wgmma_commit();
    if (tid == 0) *d_early = d[0][0];
    bq_wgmma_wait<0>();
    bq_wgmma_fence();
    bq_wgmma_64x64x16_rs<T, 1>(d, a, bq_wgmma_desc(smem + WG_V_OFFSET, MNMAJOR_LBO, MNMAJOR_SBO), 1);
    bq_wgmma_commit();
    bq_wgmma_wait<0>();
    for (int n = 0; n < 8; n++)
        for (int e = 0; e < 4; e++)
            d_out[(16 * warp + g + 8 * (e >> 1)) * 64 + 8 * n + 2 * t + (e & 1)] = d[n][e];
}

/* wgmma_kernel on A [64][16], Bt [64][16], V [16][64] (rounded to T): the launch's status, and
 * D [64][64] then the early accumulator in out [64 * 64 + 1]. */
template <typename T>
static cudaError_t launch_wgmma(const float *A, const float *Bt, const float *V, WgmmaFault fault,
                                float *out) {
    T *dA = device_copy<T>(A, 64 * 16), *dB = device_copy<T>(Bt, 64 * 16);
    T *dV = device_copy<T>(V, 16 * 64);
    float *dOut = nullptr;
    cudaMalloc((void **)&dOut, (64 * 64 + 1) * sizeof(float));
    bq_emu::launch(wgmma_kernel<T>, "wgmma_kernel", 1, 128, WG_SMEM)(dA, dB, dV, dOut,
                                                                     dOut + 64 * 64, (int)fault);
    const cudaError_t rc = cudaGetLastError();
    cudaMemcpy(out, dOut, (64 * 64 + 1) * sizeof(float), cudaMemcpyDeviceToHost);
    cudaFree(dA), cudaFree(dB), cudaFree(dV), cudaFree(dOut);
    return rc;
}

template <typename T> static void run_wgmma_case(const char *type_name) {
    static float A[64 * 16], Bt[64 * 16], V[16 * 64], D[64 * 64], out[64 * 64 + 1];
    for (int i = 0; i < 64 * 16; i++) {
        A[i] = round_to<T>(uniform(-2.0f, 2.0f));
        Bt[i] = round_to<T>(uniform(-2.0f, 2.0f));
        V[i] = round_to<T>(uniform(-2.0f, 2.0f));
    }
    for (int m = 0; m < 64; m++)
        for (int n = 0; n < 64; n++) {
            float acc = 0.0f;
            for (int k = 0; k < 16; k++) acc += A[m * 16 + k] * Bt[n * 16 + k];
            for (int k = 0; k < 16; k++) acc += A[m * 16 + k] * V[k * 64 + n];
            D[m * 64 + n] = acc;
        }
    const cudaError_t rc = launch_wgmma<T>(A, Bt, V, WG_CORRECT, out);
    CHECK(rc == cudaSuccess, "%s wgmma kernel: %s", type_name, cudaGetErrorName(rc));
    char what[128];
    snprintf(what, sizeof what, "%s wgmma m64n64k16: A . B (K-major) + A . V (MN-major)", type_name);
    expect_equal(what, out, D, 64 * 64, 64);
    CHECK(out[64 * 64] == -7.0f, "%s wgmma: accumulator changed before the wait (%g)", type_name,
          (double)out[64 * 64]);
}

/* Runs `launch` in a child process and expects cudaErrorLaunchFailure from it; the emulator's
 * message (stderr) says why. */
static void expect_launch_failure(const char *what, cudaError_t (*launch)()) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) _exit(launch() == cudaErrorLaunchFailure ? 0 : 1);
    int status = 0;
    const bool ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                    WEXITSTATUS(status) == 0;
    CHECK(ok, "%s: the launch did not fail", what);
    if (ok) printf("ok   %s fails the launch\n", what);
}

static float g_zeros[64 * 64], g_out[64 * 64 + 1];
template <WgmmaFault Fault> static cudaError_t launch_wgmma_fault() {
    return launch_wgmma<__half>(g_zeros, g_zeros, g_zeros, Fault, g_out);
}

/* Two blocks; each copies and commits, but never waits. */
static void cp_async_unwaited_kernel(const __half *g) {
    __shared__ __align__(16) __half buf[8];
    bq_emu::shared_decl(&buf, sizeof buf);
    bq_cp_async_16(buf, g, true);
    bq_cp_async_commit();
}
static cudaError_t launch_cp_async_unwaited() {
    __half *d = nullptr;
    cudaMalloc((void **)&d, 16);
    bq_emu::launch(cp_async_unwaited_kernel, "cp_async_unwaited_kernel", 2, 32)(d);
    return cudaGetLastError();
}

int main() {
    run_mma_case<__half>("f16");
    run_mma_case<__nv_bfloat16>("bf16");
    run_wmma_case<__half>("f16");
    run_wmma_case<__nv_bfloat16>("bf16");
    run_wgmma_case<__half>("f16");
    run_wgmma_case<__nv_bfloat16>("bf16");
    expect_launch_failure("wgmma without wgmma.fence", launch_wgmma_fault<WG_NO_WGMMA_FENCE>);
    expect_launch_failure("wgmma reading cp.async bytes one thread never fenced for the async proxy",
                          launch_wgmma_fault<WG_NO_PROXY_FENCE>);
    expect_launch_failure("one warp of a warpgroup issuing another wgmma than the others",
                          launch_wgmma_fault<WG_WARP_DIVERGES>);
    expect_launch_failure("a block leaving its cp.async copies unwaited", launch_cp_async_unwaited);
    printf("test_tensor_core_emu: %d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}
