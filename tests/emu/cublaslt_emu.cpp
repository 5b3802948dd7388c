/* cublaslt_emu.cpp - the part of cuBLASLt that cuda/gemm.cu uses, on the host, for the emulated
 * engine test (test_gpu_model_emulated). It follows cuBLASLt's documented semantics, not our
 * reading of them in gemm.cu: column-major matrices described by (type, rows, cols, ld);
 * D = alpha op(A) op(B) + beta C with op set by TRANSA / TRANSB; CUBLASLT_EPILOGUE_BIAS adds a
 * vector with one element per row of D to every column; the bias type is D's unless
 * BIAS_DATA_TYPE says otherwise; attribute buffers must have the documented size (cublasLt.h).
 * A call whose shapes do not chain (op(A) m x k, op(B) k x n, C and D m x n, ld >= rows) fails
 * with CUBLAS_STATUS_INVALID_VALUE and says why on stderr; so does an operand that does not lie
 * inside one cudaMalloc allocation (a wrong ld or size would read or write past it).
 *
 * Arithmetic: inputs widened to fp32 (TF32 compute: rounded to TF32, nearest-even), the product
 * by CBLAS sgemm (fp32 accumulation, like the tensor cores), + beta C + bias in fp32, one rounding
 * to D's type. The heuristic offers three "algorithms"; the second refuses every call at run time
 * with CUBLAS_STATUS_NOT_SUPPORTED (as a real candidate can), so gemm.cu's handling of a refused
 * candidate runs too. Split-K (CUBLASLT_ALGO_CONFIG_SPLITK_NUM, compute-type reduction only): the
 * K range in that many parts, each part's product in fp32, the parts added in fp32; it needs
 * parts x m x n floats of workspace (cublasLtMatmulAlgoCheck reports it, cublasLtMatmul refuses
 * less). Work goes through bq_emu::enqueue: recorded while the stream is captured. */
#include "cuda_emu.h"
#include "bq_math.h" /* bq_round_tf32 */
#include "cuda_emu_runtime.h"

#include <cblas.h>
#include <cublasLt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <new>
#include <vector>

namespace {

constexpr int kAlgorithms = 3;
constexpr uint64_t kRefusingAlgorithm = 2; /* algo.data[0] of the candidate that refuses */
/* algo.data[1]: K split (0 = not set = 1); data[2]: reduction scheme */

int algo_parts(const cublasLtMatmulAlgo_t *algo) {
    return algo->data[1] > 1 ? (int)algo->data[1] : 1;
}

struct Desc {
    cublasComputeType_t compute;
    cudaDataType_t scale;
    int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
    uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void *bias = nullptr;
    int32_t bias_type = -1; /* -1: D's type */
};

struct Layout {
    cudaDataType_t type;
    uint64_t rows, cols;
    int64_t ld;
};

struct Preference {
    uint64_t max_workspace = 0;
};

struct Handle {
    int unused;
};

size_t element_size(cudaDataType_t t) {
    switch (t) {
    case CUDA_R_32F: return 4;
    case CUDA_R_16F:
    case CUDA_R_16BF: return 2;
    default: return 0;
    }
}

const char *type_name(cudaDataType_t t) {
    switch (t) {
    case CUDA_R_32F: return "32F";
    case CUDA_R_16F: return "16F";
    case CUDA_R_16BF: return "16BF";
    default: return "unsupported type";
    }
}

float load(cudaDataType_t t, const void *p, size_t i) {
    switch (t) {
    case CUDA_R_16F: return __half2float(static_cast<const __half *>(p)[i]);
    case CUDA_R_16BF: return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
    default: return static_cast<const float *>(p)[i];
    }
}

void store(cudaDataType_t t, void *p, size_t i, float v) {
    switch (t) {
    case CUDA_R_16F: static_cast<__half *>(p)[i] = __float2half_rn(v); break;
    case CUDA_R_16BF: static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float *>(p)[i] = v; break;
    }
}

cublasStatus_t refuse(cublasStatus_t status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
cublasStatus_t refuse(cublasStatus_t status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bq-emu cuBLASLt: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return status;
}

/* The problem one descriptor set describes, after the checks cuBLASLt makes. */
struct Problem {
    uint64_t m, n, k;
    cudaDataType_t bias_type;
};

cublasStatus_t check_problem(const Desc *d, const Layout *a, const Layout *b, const Layout *c,
                             const Layout *dl, Problem *p) {
    if (!d || !a || !b || !c || !dl)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, "a descriptor is NULL");
    if (d->compute != CUBLAS_COMPUTE_32F && d->compute != CUBLAS_COMPUTE_32F_FAST_TF32)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "compute type %d not emulated", (int)d->compute);
    if (d->scale != CUDA_R_32F)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "scale type %d with fp32 compute", (int)d->scale);
    if (!element_size(a->type) || a->type != b->type || c->type != dl->type ||
        (dl->type != a->type && dl->type != CUDA_R_32F) ||
        (d->compute == CUBLAS_COMPUTE_32F_FAST_TF32 && a->type != CUDA_R_32F))
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "types A %s B %s C %s D %s with compute %d",
                      type_name(a->type), type_name(b->type), type_name(c->type),
                      type_name(dl->type), (int)d->compute);
    const bool ta = d->transa != CUBLAS_OP_N, tb = d->transb != CUBLAS_OP_N;
    if ((ta && d->transa != CUBLAS_OP_T) || (tb && d->transb != CUBLAS_OP_T))
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "only N and T operations are emulated");
    const uint64_t m = ta ? a->cols : a->rows, k = ta ? a->rows : a->cols;
    const uint64_t kb = tb ? b->cols : b->rows, n = tb ? b->rows : b->cols;
    if (kb != k || c->rows != m || c->cols != n || dl->rows != m || dl->cols != n)
        return refuse(CUBLAS_STATUS_INVALID_VALUE,
                      "shapes do not chain: op(A) %llux%llu, op(B) %llux%llu, C %llux%llu, "
                      "D %llux%llu", (unsigned long long)m, (unsigned long long)k,
                      (unsigned long long)kb, (unsigned long long)n, (unsigned long long)c->rows,
                      (unsigned long long)c->cols, (unsigned long long)dl->rows,
                      (unsigned long long)dl->cols);
    const Layout *all[4] = {a, b, c, dl};
    for (const Layout *l : all)
        if (l->rows == 0 || l->cols == 0 || l->ld < (int64_t)l->rows)
            return refuse(CUBLAS_STATUS_INVALID_VALUE, "layout %llux%llu with ld %lld",
                          (unsigned long long)l->rows, (unsigned long long)l->cols,
                          (long long)l->ld);
    if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && d->epilogue != CUBLASLT_EPILOGUE_BIAS)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "epilogue %u not emulated", d->epilogue);
    p->bias_type = d->bias_type < 0 ? dl->type : (cudaDataType_t)d->bias_type;
    if (d->epilogue == CUBLASLT_EPILOGUE_BIAS && p->bias_type != dl->type &&
        p->bias_type != CUDA_R_32F)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "bias type %s with D %s",
                      type_name(p->bias_type), type_name(dl->type));
    p->m = m, p->n = n, p->k = k;
    return CUBLAS_STATUS_SUCCESS;
}

/* Bytes a column-major (rows, cols, ld) matrix spans. */
size_t span_bytes(const Layout *l) {
    return ((size_t)(l->cols - 1) * (size_t)l->ld + l->rows) * element_size(l->type);
}

bool operand_ok(const char *what, const void *ptr, size_t bytes) {
    if (bq_emu::in_device_allocation(ptr, bytes)) return true;
    fprintf(stderr, "bq-emu cuBLASLt: operand %s (%p, %zu bytes) is not inside one cudaMalloc "
                    "allocation\n", what, ptr, bytes);
    return false;
}

/* A column-major stored matrix widened to fp32 (same ld), TF32-rounded when asked. */
/* An algorithm of the emulated heuristic, with a split-K it can run on problem p (at most K parts,
 * the compute-type reduction); *split_bytes: the workspace its fp32 partial products need (0
 * unsplit). Shared by cublasLtMatmulAlgoCheck and cublasLtMatmul. */
cublasStatus_t check_algo(const cublasLtMatmulAlgo_t *algo, const Problem &p, size_t *split_bytes) {
    if (algo->data[0] < 1 || algo->data[0] > (uint64_t)kAlgorithms)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, "algo %llu was not returned by the heuristic",
                      (unsigned long long)algo->data[0]);
    const int parts = algo_parts(algo);
    if (parts > 1 && (algo->data[2] != CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE || (uint64_t)parts > p.k))
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED,
                      "split-K in %d parts of K = %llu with reduction scheme %llu", parts,
                      (unsigned long long)p.k, (unsigned long long)algo->data[2]);
    *split_bytes = parts > 1 ? (size_t)parts * p.m * p.n * sizeof(float) : 0;
    return CUBLAS_STATUS_SUCCESS;
}

std::vector<float> widen(const Layout *l, const void *p, bool tf32) {
    std::vector<float> out((size_t)(l->cols - 1) * l->ld + l->rows, 0.0f);
    for (uint64_t j = 0; j < l->cols; j++)
        for (uint64_t i = 0; i < l->rows; i++) {
            const size_t at = i + j * (size_t)l->ld;
            const float v = load(l->type, p, at);
            out[at] = tf32 ? bq_round_tf32(v) : v;
        }
    return out;
}

template <typename T> T *make(cublasStatus_t *status) {
    T *t = new (std::nothrow) T();
    *status = t ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
    return t;
}

} // namespace

/* the emulator's own "version": a tuning cache made on it never matches a real cuBLASLt */
size_t CUBLASWINAPI cublasLtGetVersion(void) { return 1; }

cublasStatus_t CUBLASWINAPI cublasLtCreate(cublasLtHandle_t *handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t s;
    *handle = reinterpret_cast<cublasLtHandle_t>(make<Handle>(&s));
    return s;
}

cublasStatus_t CUBLASWINAPI cublasLtDestroy(cublasLtHandle_t handle) {
    delete reinterpret_cast<Handle *>(handle);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc,
                                                     cublasComputeType_t compute,
                                                     cudaDataType_t scale) {
    if (!desc) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t s;
    Desc *d = make<Desc>(&s);
    if (d) d->compute = compute, d->scale = scale;
    *desc = reinterpret_cast<cublasLtMatmulDesc_t>(d);
    return s;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    delete reinterpret_cast<Desc *>(desc);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                                           cublasLtMatmulDescAttributes_t attr,
                                                           const void *buf, size_t size) {
    Desc *d = reinterpret_cast<Desc *>(desc);
    if (!d || !buf) return CUBLAS_STATUS_INVALID_VALUE;
    void *field;
    size_t expected;
    switch (attr) { /* sizes as cublasLt.h documents them */
    case CUBLASLT_MATMUL_DESC_TRANSA: field = &d->transa, expected = sizeof(int32_t); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: field = &d->transb, expected = sizeof(int32_t); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: field = &d->epilogue, expected = sizeof(uint32_t); break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: field = &d->bias, expected = sizeof(void *); break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: field = &d->bias_type, expected = sizeof(int32_t); break;
    default: return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "matmul attribute %d not emulated", (int)attr);
    }
    if (size != expected)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, "matmul attribute %d: %zu bytes, expected %zu",
                      (int)attr, size, expected);
    memcpy(field, buf, size);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout,
                                                       cudaDataType type, uint64_t rows,
                                                       uint64_t cols, int64_t ld) {
    if (!layout) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t s;
    Layout *l = make<Layout>(&s);
    if (l) l->type = type, l->rows = rows, l->cols = cols, l->ld = ld;
    *layout = reinterpret_cast<cublasLtMatrixLayout_t>(l);
    return s;
}

cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    delete reinterpret_cast<Layout *>(layout);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    if (!pref) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t s;
    *pref = reinterpret_cast<cublasLtMatmulPreference_t>(make<Preference>(&s));
    return s;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    delete reinterpret_cast<Preference *>(pref);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceSetAttribute(
    cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
    size_t size) {
    Preference *p = reinterpret_cast<Preference *>(pref);
    if (!p || !buf) return CUBLAS_STATUS_INVALID_VALUE;
    if (attr != CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "preference %d not emulated", (int)attr);
    if (size != sizeof(uint64_t))
        return refuse(CUBLAS_STATUS_INVALID_VALUE, "preference %d: %zu bytes, expected 8", (int)attr,
                      size);
    memcpy(&p->max_workspace, buf, size);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
    cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
    cublasLtMatmulPreference_t pref, int requested, cublasLtMatmulHeuristicResult_t results[],
    int *returned) {
    if (!handle || !pref || !results || !returned || requested <= 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    *returned = 0;
    Problem p;
    cublasStatus_t s = check_problem(reinterpret_cast<Desc *>(desc), reinterpret_cast<Layout *>(a),
                                     reinterpret_cast<Layout *>(b), reinterpret_cast<Layout *>(c),
                                     reinterpret_cast<Layout *>(d), &p);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    const int n = requested < kAlgorithms ? requested : kAlgorithms;
    for (int i = 0; i < n; i++) {
        memset(&results[i], 0, sizeof results[i]);
        results[i].algo.data[0] = (uint64_t)i + 1; /* 0 = an algo nobody initialized */
        results[i].state = CUBLAS_STATUS_SUCCESS;
        results[i].wavesCount = 1.0f;
    }
    *returned = n;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoCapGetAttribute(const cublasLtMatmulAlgo_t *algo,
                                                              cublasLtMatmulAlgoCapAttributes_t attr,
                                                              void *buf, size_t size,
                                                              size_t *written) {
    if (!algo || !buf || !written) return CUBLAS_STATUS_INVALID_VALUE;
    if (attr == CUBLASLT_ALGO_CAP_SPLITK_SUPPORT) {
        if (size != sizeof(int32_t))
            return refuse(CUBLAS_STATUS_INVALID_VALUE, "SPLITK_SUPPORT is an int32_t, got %zu bytes",
                          size);
        const int32_t yes = 1;
        memcpy(buf, &yes, sizeof yes);
    } else if (attr == CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK) {
        if (size != sizeof(uint32_t))
            return refuse(CUBLAS_STATUS_INVALID_VALUE,
                          "REDUCTION_SCHEME_MASK is a uint32_t, got %zu bytes", size);
        const uint32_t mask = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
        memcpy(buf, &mask, sizeof mask);
    } else {
        return CUBLAS_STATUS_NOT_SUPPORTED; /* not emulated */
    }
    *written = size;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoConfigSetAttribute(
    cublasLtMatmulAlgo_t *algo, cublasLtMatmulAlgoConfigAttributes_t attr, const void *buf,
    size_t size) {
    if (!algo || !buf || size != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
    uint32_t v;
    memcpy(&v, buf, sizeof v);
    if (attr == CUBLASLT_ALGO_CONFIG_SPLITK_NUM) {
        if ((int32_t)v < 1) return CUBLAS_STATUS_INVALID_VALUE;
        algo->data[1] = v;
    } else if (attr == CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME) {
        algo->data[2] = v;
    } else {
        return CUBLAS_STATUS_NOT_SUPPORTED; /* not emulated */
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoConfigGetAttribute(
    const cublasLtMatmulAlgo_t *algo, cublasLtMatmulAlgoConfigAttributes_t attr, void *buf,
    size_t size, size_t *written) {
    if (!algo || !buf || !written || size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
    if (attr != CUBLASLT_ALGO_CONFIG_SPLITK_NUM) return CUBLAS_STATUS_NOT_SUPPORTED;
    const int32_t parts = algo_parts(algo);
    memcpy(buf, &parts, sizeof parts);
    *written = sizeof parts;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoCheck(cublasLtHandle_t handle,
                                                    cublasLtMatmulDesc_t desc,
                                                    cublasLtMatrixLayout_t a,
                                                    cublasLtMatrixLayout_t b,
                                                    cublasLtMatrixLayout_t c,
                                                    cublasLtMatrixLayout_t d,
                                                    const cublasLtMatmulAlgo_t *algo,
                                                    cublasLtMatmulHeuristicResult_t *result) {
    if (!handle || !algo || !result) return CUBLAS_STATUS_INVALID_VALUE;
    Problem p;
    cublasStatus_t s = check_problem(reinterpret_cast<Desc *>(desc), reinterpret_cast<Layout *>(a),
                                     reinterpret_cast<Layout *>(b), reinterpret_cast<Layout *>(c),
                                     reinterpret_cast<Layout *>(d), &p);
    size_t split_bytes = 0;
    if (s == CUBLAS_STATUS_SUCCESS) s = check_algo(algo, p, &split_bytes);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    const cublasLtMatmulAlgo_t kept = *algo; /* "algo field is never updated" */
    memset(result, 0, sizeof *result);
    result->algo = kept;
    result->workspaceSize = split_bytes;
    result->state = CUBLAS_STATUS_SUCCESS;
    result->wavesCount = 1.0f;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                           const void *alpha, const void *A,
                                           cublasLtMatrixLayout_t adesc, const void *B,
                                           cublasLtMatrixLayout_t bdesc, const void *beta,
                                           const void *C, cublasLtMatrixLayout_t cdesc, void *D,
                                           cublasLtMatrixLayout_t ddesc,
                                           const cublasLtMatmulAlgo_t *algo, void *workspace,
                                           size_t workspace_bytes, cudaStream_t stream) {
    if (!handle || !alpha || !beta || !A || !B || !D || !algo) return CUBLAS_STATUS_INVALID_VALUE;
    const Desc *d = reinterpret_cast<const Desc *>(desc);
    const Layout *la = reinterpret_cast<const Layout *>(adesc);
    const Layout *lb = reinterpret_cast<const Layout *>(bdesc);
    const Layout *lc = reinterpret_cast<const Layout *>(cdesc);
    const Layout *ld = reinterpret_cast<const Layout *>(ddesc);
    Problem p;
    cublasStatus_t s = check_problem(d, la, lb, lc, ld, &p);
    size_t split_bytes = 0;
    if (s == CUBLAS_STATUS_SUCCESS) s = check_algo(algo, p, &split_bytes);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (algo->data[0] == kRefusingAlgorithm) return CUBLAS_STATUS_NOT_SUPPORTED;
    const int parts = algo_parts(algo);
    if (split_bytes > workspace_bytes || (split_bytes && !operand_ok("workspace", workspace, split_bytes)))
        return refuse(CUBLAS_STATUS_INVALID_VALUE, "split-K %d needs %zu workspace bytes, got %zu",
                      parts, split_bytes, workspace_bytes);
    const bool with_bias = d->epilogue == CUBLASLT_EPILOGUE_BIAS;
    if (with_bias && !d->bias)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, "bias epilogue without a bias pointer");
    const float a_scale = *static_cast<const float *>(alpha); /* host pointer mode */
    const float b_scale = *static_cast<const float *>(beta);
    if (!operand_ok("A", A, span_bytes(la)) || !operand_ok("B", B, span_bytes(lb)) ||
        !operand_ok("D", D, span_bytes(ld)) ||
        (b_scale != 0.0f && (!C || !operand_ok("C", C, span_bytes(lc)))) ||
        (with_bias && !operand_ok("bias", d->bias, p.m * element_size(p.bias_type))))
        return CUBLAS_STATUS_INVALID_VALUE;

    /* the values that matter are taken now: a captured call keeps them, like the real one */
    const Layout a = *la, b = *lb, c = *lc, dl = *ld;
    const bool ta = d->transa != CUBLAS_OP_N, tb = d->transb != CUBLAS_OP_N;
    const bool tf32 = d->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    const void *bias = with_bias ? d->bias : nullptr;
    const cudaDataType_t bias_type = p.bias_type;
    const uint64_t m = p.m, n = p.n, k = p.k;
    bq_emu::enqueue(stream, [=]() {
        const std::vector<float> af = widen(&a, A, tf32), bf = widen(&b, B, tf32);
        std::vector<float> prod((size_t)m * n);
        /* part q: op(A)[:, k0..k1) op(B)[k0..k1, :]; a k offset moves along a stored row of a
         * transposed operand's column-major storage (by one) or along its columns (by ld) */
        for (int q = 0; q < parts; q++) {
            const uint64_t k0 = k * q / parts, k1 = k * (q + 1) / parts;
            const float *a0 = af.data() + (ta ? k0 : k0 * (uint64_t)a.ld);
            const float *b0 = bf.data() + (tb ? k0 * (uint64_t)b.ld : k0);
            cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans,
                        tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)(k1 - k0), a_scale,
                        a0, (int)a.ld, b0, (int)b.ld, q == 0 ? 0.0f : 1.0f, prod.data(), (int)m);
        }
        for (uint64_t j = 0; j < n; j++)
            for (uint64_t i = 0; i < m; i++) {
                float v = prod[i + j * m];
                if (b_scale != 0.0f) v += b_scale * load(c.type, C, i + j * (size_t)c.ld);
                if (bias) v += load(bias_type, bias, i);
                store(dl.type, D, i + j * (size_t)dl.ld, v);
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}
