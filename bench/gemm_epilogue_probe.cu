/* gemm_epilogue_probe.cu - what the fused bias + erf GELU epilogue costs, and why.
 *
 * The FFN-in GEMM with bias + erf GELU (49152 x 1024 -> 4096 at fp16 batch 128) took 0.78 ms on an
 * H200 fused (CUTLASS, cuda/gemm_bias_gelu.cu) against 0.53 ms for cuBLASLt's plain GEMM: a quarter
 * of a millisecond a layer, ~6 ms of a 67 ms pass. This times, on one shape at a time and the same
 * random operands:
 *   cublas          cuBLAS's plain GEMM (no bias), the floor the fused kernel is measured from;
 *   cublas-zeros    the same on all-zero operands (tensor cores draw less power on zeros: the
 *                   difference shows how far power, not the schedule, sets the time);
 *   gelu-kernel     our bias + erf GELU pass alone (cuda/bias_gelu.cu), over y in place;
 *   <tiling>-<act>  the CUTLASS kernel of cuda/cutlass_fused_gemm.cuh, tilings large (cooperative
 *                   128 x 256) and pingpong (64 x 256), with the activation identity (bias only),
 *                   gelu (CUTLASS's, through erff), gelu-fast (bq_gelu_erf_fast: the same erf
 *                   GELU to 3e-7, branch-free) and gelu-tanh (the tanh approximation, never used
 *                   by the engine: it only shows how much of the cost is the erf itself);
 *                   the -e64 kinds: gelu-fast with 64-column epilogue sub-tiles (128 x 64 and
 *                   64 x 64) instead of CUTLASS's choice (128 x 32 for the large tiles).
 * If large-identity is close to cublas and large-gelu is not, the math in the epilogue is the
 * cost; if large-identity is already slow, the CUTLASS tiling is.
 *
 * Usage: gemm_epilogue_probe [--once] [rows in out ...]   (default: 49152 1024 4096 384 1024 4096)
 * --once runs each kind once, untimed, for Nsight Compute.
 * Prints one line per kernel and shape (mean ms over timed runs after a warm-up, TFLOP/s), then
 * each fused GELU kernel's output checked against cuBLAS + our GELU kernel.
 * Exit status: 0 when every kernel ran and every erf kernel agreed, 1 otherwise, 77 when there
 * is no usable GPU or it is not compute capability 9.0 (the CUTLASS kernels are sm_90a only). */
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bias_gelu.cuh"
#include "cutlass_fused_gemm.cuh"
#define PROBE_NAME "gemm_epilogue_probe"
#include "probe_common.cuh"

namespace {

struct Operands {
    int rows, in, out;
    __half *x, *w, *bias, *y;  /* x [rows, in], w [out, in], bias [out], y [rows, out] */
    void *workspace;
    size_t workspace_bytes;
};

template <typename Gemm>
cudaError_t run_cutlass(const Operands &o, cudaStream_t stream) {
    return bq_cutlass::run_fused<cutlass::half_t, Gemm>(o.x, o.w, o.bias, o.rows, o.in, o.out, o.y,
                                                        o.workspace, o.workspace_bytes, stream);
}

cudaError_t run_cublas(cublasHandle_t h, const Operands &o) {
    const float one = 1.0f, zero = 0.0f;
    /* row-major y[rows, out] = x[rows, in] w[out, in]^T, seen column-major: y^T = w x^T */
    cublasStatus_t s = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, o.out, o.rows, o.in, &one, o.w,
                                    CUDA_R_16F, o.in, o.x, CUDA_R_16F, o.in, &zero, o.y, CUDA_R_16F,
                                    o.out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return s == CUBLAS_STATUS_SUCCESS ? cudaSuccess : cudaErrorUnknown;
}

enum Kind {
    CUBLAS, GELU_KERNEL, LARGE_IDENTITY, LARGE_GELU, LARGE_GELU_FAST, LARGE_GELU_FAST_E64,
    LARGE_GELU_TANH, PINGPONG_IDENTITY, PINGPONG_GELU, PINGPONG_GELU_FAST, PINGPONG_GELU_FAST_E64,
    KIND_COUNT
};
const char *const kind_names[KIND_COUNT] = {
    "cublas",          "gelu-kernel",          "large-identity",    "large-gelu",
    "large-gelu-fast", "large-gelu-fast-e64",  "large-gelu-tanh",   "pingpong-identity",
    "pingpong-gelu",   "pingpong-gelu-fast",   "pingpong-gelu-fast-e64"};

cudaError_t run_kind(Kind k, cublasHandle_t h, const Operands &o, cudaStream_t stream) {
    using cutlass::epilogue::thread::GELU;
    using cutlass::epilogue::thread::GELU_taylor;
    using cutlass::epilogue::thread::Identity;
    using cutlass::half_t;
    switch (k) {
    case CUBLAS: return run_cublas(h, o);
    case GELU_KERNEL: return bq_cuda_bias_gelu(o.y, o.bias, o.rows, o.out, BQ_CUDA_F16, stream);
    case LARGE_IDENTITY: return run_cutlass<bq_cutlass::LargeTileGemm<half_t, Identity>>(o, stream);
    case LARGE_GELU: return run_cutlass<bq_cutlass::LargeTileGemm<half_t, GELU>>(o, stream);
    case LARGE_GELU_FAST:
        return run_cutlass<bq_cutlass::LargeTileGemm<half_t, bq_cutlass::GeluErfFast>>(o, stream);
    case LARGE_GELU_FAST_E64:
        return run_cutlass<bq_cutlass::LargeTileGemm<half_t, bq_cutlass::GeluErfFast,
                                                     cute::Shape<cute::_128, cute::_64>>>(o, stream);
    case LARGE_GELU_TANH:
        return run_cutlass<bq_cutlass::LargeTileGemm<half_t, GELU_taylor>>(o, stream);
    case PINGPONG_IDENTITY:
        return run_cutlass<bq_cutlass::PingpongTileGemm<half_t, Identity>>(o, stream);
    case PINGPONG_GELU: return run_cutlass<bq_cutlass::PingpongTileGemm<half_t, GELU>>(o, stream);
    case PINGPONG_GELU_FAST:
        return run_cutlass<bq_cutlass::PingpongTileGemm<half_t, bq_cutlass::GeluErfFast>>(o,
                                                                                        stream);
    case PINGPONG_GELU_FAST_E64:
        return run_cutlass<bq_cutlass::PingpongTileGemm<half_t, bq_cutlass::GeluErfFast,
                                                        cute::Shape<cute::_64, cute::_64>>>(o,
                                                                                           stream);
    default: return cudaErrorInvalidValue;
    }
}

/* Mean ms of one run of kind k over `reps` runs after 3 warm-ups; *ms = -1 when the kernel
 * refuses the shape (cudaErrorNotSupported). */
bool time_kind(Kind k, cublasHandle_t h, const Operands &o, cudaStream_t stream, int reps,
               float *ms) {
    const cudaError_t first = run_kind(k, h, o, stream);
    *ms = -1.0f;
    if (first == cudaErrorNotSupported) return true;
    PROBE_CHECK(first);
    cudaEvent_t start, stop;
    PROBE_CHECK(cudaEventCreate(&start));
    PROBE_CHECK(cudaEventCreate(&stop));
    for (int r = 1; r < 3; r++) PROBE_CHECK(run_kind(k, h, o, stream));
    PROBE_CHECK(cudaEventRecord(start, stream));
    for (int r = 0; r < reps; r++) PROBE_CHECK(run_kind(k, h, o, stream));
    PROBE_CHECK(cudaEventRecord(stop, stream));
    PROBE_CHECK(cudaEventSynchronize(stop));
    float total = 0.0f;
    PROBE_CHECK(cudaEventElapsedTime(&total, start, stop));
    *ms = total / (float)reps;
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return true;
}

bool fill(Operands &o, bool zeros, cudaStream_t stream) {
    const size_t nx = (size_t)o.rows * o.in, nw = (size_t)o.out * o.in;
    if (zeros) {
        PROBE_CHECK(cudaMemsetAsync(o.x, 0, nx * sizeof(__half), stream));
        PROBE_CHECK(cudaMemsetAsync(o.w, 0, nw * sizeof(__half), stream));
        return true;
    }
    /* activations ~U(-1, 1), weights ~U(-0.06, 0.06): pre-activations of order 1, both GELU
     * branches taken */
    probe_fill_uniform<<<1024, 256, 0, stream>>>(o.x, nx, 1.0f, 1u);
    probe_fill_uniform<<<1024, 256, 0, stream>>>(o.w, nw, 0.06f, 2u);
    probe_fill_uniform<<<16, 256, 0, stream>>>(o.bias, (size_t)o.out, 0.1f, 3u);
    PROBE_CHECK(cudaGetLastError());
    return true;
}

/* The first `rows` rows of y as floats (host). */
bool download_rows(const Operands &o, int rows, cudaStream_t stream, float *host) {
    const size_t n = (size_t)rows * o.out;
    __half *tmp = (__half *)malloc(n * sizeof(__half));
    if (!tmp) return false;
    cudaError_t rc = cudaMemcpyAsync(tmp, o.y, n * sizeof(__half), cudaMemcpyDeviceToHost, stream);
    if (rc == cudaSuccess) rc = cudaStreamSynchronize(stream);
    for (size_t i = 0; rc == cudaSuccess && i < n; i++) host[i] = __half2float(tmp[i]);
    free(tmp);
    PROBE_CHECK(rc);
    return true;
}

/* Each fused GELU kernel's output against cuBLAS + our bias + erf GELU kernel on the same
 * operands (first rows only): normwise relative error and the largest difference. The erf kinds
 * must agree to 2e-3 (both round to fp16; the unfused path rounds twice); the tanh one is shown
 * for scale only. *failed is set when an erf kind does not. */
bool check_outputs(cublasHandle_t h, const Operands &o, cudaStream_t stream, bool *failed) {
    const int rows = o.rows < 2048 ? o.rows : 2048;
    const size_t n = (size_t)rows * o.out;
    float *ref = (float *)malloc(n * sizeof(float)), *got = (float *)malloc(n * sizeof(float));
    bool ok = ref && got;
    if (ok) ok = run_kind(CUBLAS, h, o, stream) == cudaSuccess &&
                 run_kind(GELU_KERNEL, h, o, stream) == cudaSuccess &&
                 download_rows(o, rows, stream, ref);
    const Kind kinds[] = {LARGE_GELU,         LARGE_GELU_FAST,    LARGE_GELU_FAST_E64,
                          PINGPONG_GELU,      PINGPONG_GELU_FAST, PINGPONG_GELU_FAST_E64,
                          LARGE_GELU_TANH};
    for (size_t k = 0; ok && k < sizeof kinds / sizeof kinds[0]; k++) {
        const cudaError_t rc = run_kind(kinds[k], h, o, stream);
        if (rc == cudaErrorNotSupported) {
            printf("check %-18s %6d x %5d -> %5d  refused the shape\n", kind_names[kinds[k]],
                   o.rows, o.in, o.out);
            continue;
        }
        ok = rc == cudaSuccess && download_rows(o, rows, stream, got);
        double diff2 = 0.0, ref2 = 0.0, worst = 0.0;
        for (size_t i = 0; ok && i < n; i++) {
            const double d = (double)got[i] - ref[i];
            diff2 += d * d, ref2 += (double)ref[i] * ref[i];
            if (!(fabs(d) <= worst)) worst = fabs(d); /* NaN propagates */
        }
        const double rel = ref2 > 0.0 ? sqrt(diff2 / ref2) : sqrt(diff2);
        const bool erf_kind = kinds[k] != LARGE_GELU_TANH;
        const bool pass = !erf_kind || rel <= 2e-3;
        if (!pass) *failed = true;
        if (ok)
            printf("check %-18s %6d x %5d -> %5d  rel err %.2e, max |diff| %.2e  %s\n",
                   kind_names[kinds[k]], o.rows, o.in, o.out, rel, worst,
                   erf_kind ? (pass ? "ok" : "FAIL (bound 2e-3)") : "(tanh: for scale)");
    }
    free(ref);
    free(got);
    return ok;
}

/* One timing line: kind, shape, mean ms and TFLOP/s (none for the GELU pass alone). */
void print_time(const char *name, int rows, int in, int out, float ms, double flop) {
    printf("%-18s %6d x %5d -> %5d  %9.4f ms  %7.1f TFLOP/s\n", name, rows, in, out, ms,
           flop / (ms * 1e-3) / 1e12);
}

/* --once: every kind run once, in Kind order, untimed and unchecked: for Nsight Compute, whose
 * replays then profile one launch of each (gpu-check's ncu-epilogue step). */
bool once_mode = false;

bool probe_shape(cublasHandle_t h, cudaStream_t stream, int rows, int in, int out,
                 bool *failed) {
    Operands o = {rows, in, out, nullptr, nullptr, nullptr, nullptr, nullptr, 32u << 20};
    PROBE_CHECK(cudaMalloc(&o.x, (size_t)rows * in * sizeof(__half)));
    PROBE_CHECK(cudaMalloc(&o.w, (size_t)out * in * sizeof(__half)));
    PROBE_CHECK(cudaMalloc(&o.bias, (size_t)out * sizeof(__half)));
    PROBE_CHECK(cudaMalloc(&o.y, (size_t)rows * out * sizeof(__half)));
    PROBE_CHECK(cudaMalloc(&o.workspace, o.workspace_bytes));
    const double flop = 2.0 * rows * (double)in * out;
    /* ~50 ms of timed runs a kernel */
    const int reps = flop > 1e11 ? 60 : flop > 1e10 ? 300 : 2000;
    bool ok = fill(o, false, stream);
    for (int k = 0; ok && once_mode && k < KIND_COUNT; k++) {
        const cudaError_t rc = run_kind((Kind)k, h, o, stream);
        ok = (rc == cudaSuccess || rc == cudaErrorNotSupported) &&
             cudaStreamSynchronize(stream) == cudaSuccess;
        printf("ran %-18s %6d x %5d -> %5d%s\n", kind_names[k], rows, in, out,
               rc == cudaErrorNotSupported ? ": refused the shape" : ok ? "" : ": failed");
    }
    for (int k = 0; ok && !once_mode && k < KIND_COUNT; k++) {
        float ms = 0.0f;
        ok = time_kind((Kind)k, h, o, stream, reps, &ms);
        if (ok && ms < 0.0f)
            printf("%-18s %6d x %5d -> %5d  refused the shape\n", kind_names[k], rows, in, out);
        else if (ok)
            print_time(kind_names[k], rows, in, out, ms, k == GELU_KERNEL ? 0.0 : flop);
    }
    if (ok && !once_mode) ok = check_outputs(h, o, stream, failed);
    float zero_ms = 0.0f;
    if (ok && !once_mode)
        ok = fill(o, true, stream) && time_kind(CUBLAS, h, o, stream, reps, &zero_ms);
    if (ok && !once_mode) print_time("cublas-zeros", rows, in, out, zero_ms, flop);
    cudaFree(o.x), cudaFree(o.w), cudaFree(o.bias), cudaFree(o.y), cudaFree(o.workspace);
    fflush(stdout);
    return ok;
}

} // namespace

int main(int argc, char **argv) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        fprintf(stderr, "gemm_epilogue_probe: no usable CUDA device; nothing to time\n");
        return 77;
    }
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess || prop.major != 9 || prop.minor != 0) {
        fprintf(stderr, "gemm_epilogue_probe: the CUTLASS kernels need compute capability 9.0\n");
        return 77;
    }
    int shapes[3 * 8] = {49152, 1024, 4096, 384, 1024, 4096};
    int n_shapes = 2, first = 1;
    if (argc > 1 && strcmp(argv[1], "--once") == 0) once_mode = true, first = 2;
    const int n_args = argc - first;
    if (n_args > 0) {
        if (n_args % 3 != 0 || n_args > 3 * 8) {
            fprintf(stderr, "usage: %s [--once] [rows in out ...] (up to 8 shapes)\n", argv[0]);
            return 2;
        }
        n_shapes = n_args / 3;
        for (int i = 0; i < n_args; i++) {
            shapes[i] = atoi(argv[first + i]);
            if (shapes[i] <= 0 || (i % 3 != 0 && shapes[i] % 8 != 0)) {
                fprintf(stderr, "gemm_epilogue_probe: bad size '%s' (in and out: multiples of 8)\n",
                        argv[first + i]);
                return 2;
            }
        }
    }
    printf("gemm_epilogue_probe on %s (fp16, fp32 accumulation)\n", prop.name);
    cublasHandle_t handle;
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "gemm_epilogue_probe: cublasCreate failed\n");
        return 1;
    }
    cudaStream_t stream;
    if (cudaStreamCreate(&stream) != cudaSuccess) return 1;
    cublasSetStream(handle, stream);
    bool ok = true, failed = false;
    for (int s = 0; ok && s < n_shapes; s++)
        ok = probe_shape(handle, stream, shapes[3 * s], shapes[3 * s + 1], shapes[3 * s + 2],
                         &failed);
    cublasDestroy(handle);
    cudaStreamDestroy(stream);
    return ok && !failed ? 0 : 1;
}
