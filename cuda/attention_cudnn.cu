/* attention_cudnn.cu - multi-head self-attention through cuDNN's fused scaled-dot-product
 * attention, built with the cuDNN 9 backend (graph) API.
 *
 * The operation graph is the composite SDPA pattern that cuDNN's fused flash-attention engines
 * recognise (the same one cudnn-frontend lowers its sdpa node to), per batch size B:
 *
 *   S0 = Q . K^T                      matmul    [B, nh, S, S]  fp32 (virtual)
 *   S1 = S0 * scale                   pointwise scale = 1/sqrt(d), a by-value fp32 scalar
 *   S2 = S1 + bias                    pointwise bias [B, 1, S, S] in dt: 0 real key, -10000 padding
 *   M  = max_k S2                     reduction [B, nh, S, 1]  fp32
 *   E  = exp(S2 - M)                  pointwise x2
 *   Z  = sum_k E                      reduction [B, nh, S, 1]  fp32
 *   P  = E / Z                        pointwise [B, nh, S, S]  in dt (the second matmul's A type)
 *  (stats = M + log Z                 only in the fallback variant, fp32 [B, nh, S, 1])
 *   O  = P . V                        matmul    [B, nh, S, d]  written straight into ctx
 *
 * Q, K, V are strided views of the packed qkv buffer [B*S, 3H] (rows Q | K | V, head h at columns
 * h*d .. h*d+d-1 of each part), so no transpose kernel runs: Q and V are [B, nh, S, d] with strides
 * (S*3H, d, 3H, 1), K^T is [B, nh, d, S] with strides (S*3H, d, 1, 3H); O is ctx [B*S, H] seen as
 * [B, nh, S, d] with strides (S*H, d, H, 1).
 *
 * The mask enters as an additive bias, exactly the reference's bq_mask_bias, so any 0/1 mask is
 * handled exactly (not only prefix masks); a tiny kernel expands mask [B, S] to bias [B, 1, S, S]
 * (cuDNN's documented bias shapes all carry the full S_q x S_kv plane) once per forward pass
 * (bq_cudnn_attention_set_mask), and every layer's execution reads it.
 *
 * Plans: one execution plan per batch size, the max_batch one built at create (so an unsupported
 * configuration fails there), the others on first use of that batch size; the workspace is sized
 * at create and later plans must fit in it (engine configs that need more are skipped), so that
 * graphs captured earlier keep valid pointers. Execution allocates nothing and does not
 * synchronize: the bias kernel (once per forward) and cudnnBackendExecute on the caller's stream. */
#include "attention_cudnn.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bq_math.h"

#ifndef BQ_HAVE_CUDNN

struct bq_cudnn_attention {
    int unused;
};

extern "C" bq_status bq_cudnn_attention_create(int max_batch, int seq_len, int hidden, int heads,
                                               bq_cuda_dtype dt, bq_cudnn_attention **out,
                                               bq_err *err) {
    (void)max_batch, (void)seq_len, (void)hidden, (void)heads;
    if (out) *out = NULL;
    if (dt == BQ_CUDA_F32)
        return bq_fail(err, BQ_ERR_UNSUPPORTED,
                       "cuDNN fused attention needs fp16 or bf16 (got fp32/tf32); use --attention own "
                       "or --precision fp16|bf16");
    return bq_fail(err, BQ_ERR_UNSUPPORTED,
                   "this bertqa-gpu was built without cuDNN; use --attention own");
}

extern "C" void bq_cudnn_attention_free(bq_cudnn_attention *a) { free(a); }

extern "C" bq_status bq_cudnn_attention_set_mask(bq_cudnn_attention *a, const int32_t *mask,
                                                 int batch, cudaStream_t stream, bq_err *err) {
    (void)a, (void)mask, (void)batch, (void)stream;
    return bq_fail(err, BQ_ERR_UNSUPPORTED, "this bertqa-gpu was built without cuDNN");
}

extern "C" bq_status bq_cudnn_attention_run(bq_cudnn_attention *a, const void *qkv, int batch,
                                            void *ctx, cudaStream_t stream, bq_err *err) {
    (void)a, (void)qkv, (void)batch, (void)ctx, (void)stream;
    return bq_fail(err, BQ_ERR_UNSUPPORTED, "this bertqa-gpu was built without cuDNN");
}

#else /* BQ_HAVE_CUDNN */

/* ---- mask -> additive bias ---------------------------------------------------------------- */

__device__ inline void store_as(float v, __half *p) { *p = __float2half_rn(v); }
__device__ inline void store_as(float v, __nv_bfloat16 *p) { *p = __float2bfloat16_rn(v); }

/* bias[b, 0, q, k] = bq_mask_bias(mask[b, k]) for every query row q; one element per thread
 * (grid-stride). total = batch * S * S. */
template <typename T>
__global__ void padding_mask_bias_kernel(const int32_t *mask, int seq_len, size_t total, T *bias) {
    size_t plane = (size_t)seq_len * seq_len;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t b = i / plane;
        size_t key = i % (size_t)seq_len;
        store_as(bq_mask_bias(mask[b * seq_len + key]), bias + i);
    }
}

static cudaError_t launch_padding_mask_bias(const int32_t *mask, int batch, int seq_len, void *bias,
                                            bq_cuda_dtype dt, cudaStream_t stream) {
    size_t total = (size_t)batch * seq_len * seq_len;
    const int threads = 256;
    size_t blocks = (total + threads - 1) / threads;
    if (blocks > 4096) blocks = 4096;
    if (dt == BQ_CUDA_F16)
        padding_mask_bias_kernel<__half>
            <<<(unsigned)blocks, threads, 0, stream>>>(mask, seq_len, total, (__half *)bias);
    else if (dt == BQ_CUDA_BF16)
        padding_mask_bias_kernel<__nv_bfloat16>
            <<<(unsigned)blocks, threads, 0, stream>>>(mask, seq_len, total, (__nv_bfloat16 *)bias);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}

/* ---- plans -------------------------------------------------------------------------------- */

/* Tensor unique ids: the real tensors the variant pack binds, then the graph's virtual ones. */
enum {
    UID_Q = 1,
    UID_K = 2,
    UID_V = 3,
    UID_O = 4,
    UID_BIAS = 5,
    UID_SCALE = 6,
    UID_STATS = 7,
    UID_VIRTUAL = 100
};

#define PLAN_MAX_DESCS 64

/* Everything one batch size's execution needs. descs owns every descriptor the plan refers to
 * (tensors, operations, graph, engine config, the plan itself), destroyed together at free. */
typedef struct {
    int built;
    int with_stats;          /* the graph variant that produced the plan */
    cudnnBackendDescriptor_t descs[PLAN_MAX_DESCS];
    int n_descs;
    cudnnBackendDescriptor_t plan;
    int64_t workspace_bytes; /* what the plan needs */
    /* variant pack, rebuilt when the caller's buffers change (host-side only) */
    cudnnBackendDescriptor_t variant_pack;
    const void *pack_qkv;
    const void *pack_ctx;
} sdpa_plan;

struct bq_cudnn_attention {
    int max_batch, seq_len, hidden, heads, head_size;
    bq_cuda_dtype dt;
    float scale;            /* 1/sqrt(head_size), bound by value */
    cudnnHandle_t handle;
    void *bias;             /* [max_batch, 1, S, S] in dt */
    float *stats;           /* [max_batch, heads, S]: only written by the stats variant */
    void *workspace;        /* cuDNN workspace, sized by the max_batch plan */
    size_t workspace_bytes;
    sdpa_plan *plans;       /* [max_batch + 1], index = batch size */
};

static void plan_release(sdpa_plan *p) {
    if (p->variant_pack) cudnnBackendDestroyDescriptor(p->variant_pack);
    for (int i = p->n_descs - 1; i >= 0; i--) cudnnBackendDestroyDescriptor(p->descs[i]);
    memset(p, 0, sizeof *p);
}

/* cuDNN's own explanation of the last failure, for messages ("" if none). */
static void last_cudnn_error(char *buf, size_t size) {
    buf[0] = '\0';
    cudnnGetLastErrorString(buf, size);
    buf[size - 1] = '\0';
}

static bq_status new_desc(sdpa_plan *p, cudnnBackendDescriptorType_t type,
                          cudnnBackendDescriptor_t *out, bq_err *err) {
    *out = NULL;
    if (p->n_descs >= PLAN_MAX_DESCS)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cuDNN attention: more than %d descriptors in a plan",
                       PLAN_MAX_DESCS);
    BQ_CUDNN_TRY(cudnnBackendCreateDescriptor(type, out), err);
    p->descs[p->n_descs++] = *out;
    return BQ_OK;
}

/* A 4-d tensor descriptor. by_value: a host scalar passed in the variant pack. */
static bq_status new_tensor(sdpa_plan *p, int64_t uid, cudnnDataType_t type, const int64_t dims[4],
                            const int64_t strides[4], bool is_virtual, bool by_value,
                            cudnnBackendDescriptor_t *out, bq_err *err) {
    cudnnBackendDescriptor_t t;
    bq_status s = new_desc(p, CUDNN_BACKEND_TENSOR_DESCRIPTOR, &t, err);
    if (s != BQ_OK) return s;
    int64_t alignment = 16;
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                                          &type), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4,
                                          dims), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4,
                                          strides), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid),
                 err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1,
                                          &alignment), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1,
                                          &is_virtual), err);
    if (by_value)
        BQ_CUDNN_TRY(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1,
                                              &by_value), err);
    BQ_CUDNN_TRY(cudnnBackendFinalize(t), err);
    *out = t;
    return BQ_OK;
}

/* y = mode(x [, b]) with fp32 math; b NULL for unary modes. */
static bq_status new_pointwise(sdpa_plan *p, cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                               cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t y,
                               cudnnBackendDescriptor_t *op, bq_err *err) {
    cudnnBackendDescriptor_t pw;
    bq_status s = new_desc(p, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw, err);
    if (s != BQ_OK) return s;
    cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1,
                                          &mode), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1,
                                          &prec), err);
    BQ_CUDNN_TRY(cudnnBackendFinalize(pw), err);

    s = new_desc(p, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op, err);
    if (s != BQ_OK) return s;
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x), err);
    if (b)
        BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y), err);
    BQ_CUDNN_TRY(cudnnBackendFinalize(*op), err);
    return BQ_OK;
}

/* y = reduce(x) over the axes where y has extent 1 (here: the key axis), fp32. */
static bq_status new_reduction(sdpa_plan *p, cudnnReduceTensorOp_t how, cudnnBackendDescriptor_t x,
                               cudnnBackendDescriptor_t y, cudnnBackendDescriptor_t *op, bq_err *err) {
    cudnnBackendDescriptor_t red;
    bq_status s = new_desc(p, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, &red, err);
    if (s != BQ_OK) return s;
    cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(red, CUDNN_ATTR_REDUCTION_OPERATOR,
                                          CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &how), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(red, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                                          &comp), err);
    BQ_CUDNN_TRY(cudnnBackendFinalize(red), err);

    s = new_desc(p, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, op, err);
    if (s != BQ_OK) return s;
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_REDUCTION_DESC,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &red), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y), err);
    BQ_CUDNN_TRY(cudnnBackendFinalize(*op), err);
    return BQ_OK;
}

/* c[..., m, n] = sum_k a[..., m, k] b[..., k, n], fp32 accumulation. */
static bq_status new_matmul(sdpa_plan *p, cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b,
                            cudnnBackendDescriptor_t c, cudnnBackendDescriptor_t *op, bq_err *err) {
    cudnnBackendDescriptor_t mm;
    bq_status s = new_desc(p, CUDNN_BACKEND_MATMUL_DESCRIPTOR, &mm, err);
    if (s != BQ_OK) return s;
    cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                                          &comp), err);
    BQ_CUDNN_TRY(cudnnBackendFinalize(mm), err);

    s = new_desc(p, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, op, err);
    if (s != BQ_OK) return s;
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_MATMUL_ADESC,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_MATMUL_BDESC,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_MATMUL_CDESC,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_MATMUL_DESC,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm), err);
    BQ_CUDNN_TRY(cudnnBackendFinalize(*op), err);
    return BQ_OK;
}

/* Build and finalize the operation graph for `batch` sequences into p (descs recorded in p). */
static bq_status build_graph(const bq_cudnn_attention *a, int batch, int with_stats, sdpa_plan *p,
                             cudnnBackendDescriptor_t *graph_out, bq_err *err) {
    const int64_t B = batch, NH = a->heads, S = a->seq_len, D = a->head_size, H = a->hidden;
    const int64_t row3 = 3 * H; /* elements between consecutive token rows of qkv */
    cudnnDataType_t io = a->dt == BQ_CUDA_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
    cudnnDataType_t f32 = CUDNN_DATA_FLOAT;

    const int64_t qv_dims[4] = {B, NH, S, D}, qv_strides[4] = {S * row3, D, row3, 1};
    const int64_t kt_dims[4] = {B, NH, D, S}, kt_strides[4] = {S * row3, D, 1, row3};
    const int64_t o_dims[4] = {B, NH, S, D}, o_strides[4] = {S * H, D, H, 1};
    const int64_t sc_dims[4] = {B, NH, S, S}, sc_strides[4] = {NH * S * S, S * S, S, 1};
    const int64_t bias_dims[4] = {B, 1, S, S}, bias_strides[4] = {S * S, S * S, S, 1};
    const int64_t row_dims[4] = {B, NH, S, 1}, row_strides[4] = {NH * S, S, 1, 1};
    const int64_t one[4] = {1, 1, 1, 1};

    cudnnBackendDescriptor_t q, kt, v, o, bias, scale, stats = NULL;
    cudnnBackendDescriptor_t s0, s1, s2, mx, centred, ex, sum, prob, logsum = NULL;
    int64_t vuid = UID_VIRTUAL;
    bq_status s;
#define TENSOR(uid, type, dims, strides, virt, byval, out)                                     \
    do {                                                                                   \
        s = new_tensor(p, (uid), (type), (dims), (strides), (virt), (byval), &(out), err); \
        if (s != BQ_OK) return s;                                                          \
    } while (0)
    TENSOR(UID_Q, io, qv_dims, qv_strides, false, false, q);
    TENSOR(UID_K, io, kt_dims, kt_strides, false, false, kt);
    TENSOR(UID_V, io, qv_dims, qv_strides, false, false, v);
    TENSOR(UID_O, io, o_dims, o_strides, false, false, o);
    TENSOR(UID_BIAS, io, bias_dims, bias_strides, false, false, bias);
    TENSOR(UID_SCALE, f32, one, one, false, true, scale);
    TENSOR(vuid++, f32, sc_dims, sc_strides, true, false, s0);
    TENSOR(vuid++, f32, sc_dims, sc_strides, true, false, s1);
    TENSOR(vuid++, f32, sc_dims, sc_strides, true, false, s2);
    TENSOR(vuid++, f32, row_dims, row_strides, true, false, mx);
    TENSOR(vuid++, f32, sc_dims, sc_strides, true, false, centred);
    TENSOR(vuid++, f32, sc_dims, sc_strides, true, false, ex);
    TENSOR(vuid++, f32, row_dims, row_strides, true, false, sum);
    TENSOR(vuid++, io, sc_dims, sc_strides, true, false, prob);
    if (with_stats) {
        TENSOR(vuid++, f32, row_dims, row_strides, true, false, logsum);
        TENSOR(UID_STATS, f32, row_dims, row_strides, false, false, stats);
    }
#undef TENSOR

    cudnnBackendDescriptor_t ops[12];
    int n = 0;
#define OP(call)                     \
    do {                             \
        s = (call);                  \
        if (s != BQ_OK) return s;    \
        n++;                         \
    } while (0)
    OP(new_matmul(p, q, kt, s0, &ops[n], err));
    OP(new_pointwise(p, CUDNN_POINTWISE_MUL, s0, scale, s1, &ops[n], err));
    OP(new_pointwise(p, CUDNN_POINTWISE_ADD, s1, bias, s2, &ops[n], err));
    OP(new_reduction(p, CUDNN_REDUCE_TENSOR_MAX, s2, mx, &ops[n], err));
    OP(new_pointwise(p, CUDNN_POINTWISE_SUB, s2, mx, centred, &ops[n], err));
    OP(new_pointwise(p, CUDNN_POINTWISE_EXP, centred, NULL, ex, &ops[n], err));
    OP(new_reduction(p, CUDNN_REDUCE_TENSOR_ADD, ex, sum, &ops[n], err));
    if (with_stats) {
        OP(new_pointwise(p, CUDNN_POINTWISE_LOG, sum, NULL, logsum, &ops[n], err));
        OP(new_pointwise(p, CUDNN_POINTWISE_ADD, mx, logsum, stats, &ops[n], err));
    }
    OP(new_pointwise(p, CUDNN_POINTWISE_DIV, ex, sum, prob, &ops[n], err));
    OP(new_matmul(p, prob, v, o, &ops[n], err));
#undef OP

    cudnnBackendDescriptor_t graph;
    s = new_desc(p, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph, err);
    if (s != BQ_OK) return s;
    cudnnHandle_t handle = a->handle;
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, n, ops), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE,
                                          1, &handle), err);
    BQ_CUDNN_TRY(cudnnBackendFinalize(graph), err);
    *graph_out = graph;
    return BQ_OK;
}

/* Ask the heuristics (mode A, then the fallback list) for engine configs and finalize the first
 * one that builds a plan needing at most workspace_limit bytes. */
static bq_status choose_plan(const bq_cudnn_attention *a, cudnnBackendDescriptor_t graph,
                             int64_t workspace_limit, sdpa_plan *p, bq_err *err) {
    const cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
    int tried = 0, too_big = 0;
    cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
    char detail[512] = "";
    for (int m = 0; m < 2; m++) {
        cudnnBackendDescriptor_t heur;
        bq_status s = new_desc(p, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur, err);
        if (s != BQ_OK) return s;
        BQ_CUDNN_TRY(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph), err);
        BQ_CUDNN_TRY(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE,
                                              1, &modes[m]), err);
        cudnnStatus_t rc = cudnnBackendFinalize(heur);
        if (rc != CUDNN_STATUS_SUCCESS) { /* no engine at all for this mode */
            last = rc;
            last_cudnn_error(detail, sizeof detail);
            continue;
        }
        int64_t count = 0;
        BQ_CUDNN_TRY(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, NULL), err);
        if (count <= 0) continue;
        if (count > 64) count = 64;
        cudnnBackendDescriptor_t cfgs[64];
        int64_t made = 0;
        for (; made < count; made++) {
            rc = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[made]);
            if (rc != CUDNN_STATUS_SUCCESS) break;
        }
        int64_t got = 0;
        if (made == count)
            rc = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, cfgs);
        int chosen = -1;
        for (int64_t i = 0; rc == CUDNN_STATUS_SUCCESS && i < got && chosen < 0; i++) {
            cudnnBackendDescriptor_t plan = NULL;
            cudnnHandle_t handle = a->handle;
            tried++;
            cudnnStatus_t prc = cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR,
                                                             &plan);
            if (prc == CUDNN_STATUS_SUCCESS)
                prc = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                                               CUDNN_TYPE_HANDLE, 1, &handle);
            if (prc == CUDNN_STATUS_SUCCESS)
                prc = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i]);
            if (prc == CUDNN_STATUS_SUCCESS) prc = cudnnBackendFinalize(plan);
            int64_t ws = 0, ws_count = 0;
            if (prc == CUDNN_STATUS_SUCCESS)
                prc = cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                               CUDNN_TYPE_INT64, 1, &ws_count, &ws);
            if (prc == CUDNN_STATUS_SUCCESS && ws > workspace_limit) {
                too_big++;
                prc = CUDNN_STATUS_NOT_SUPPORTED;
            } else if (prc != CUDNN_STATUS_SUCCESS) {
                last = prc;
                last_cudnn_error(detail, sizeof detail);
            }
            if (prc != CUDNN_STATUS_SUCCESS) {
                if (plan) cudnnBackendDestroyDescriptor(plan);
                continue;
            }
            chosen = (int)i;
            p->plan = plan;
            p->workspace_bytes = ws;
        }
        /* keep the chosen config (the plan refers to it) with the plan, destroy the rest; the
         * table has room: a graph uses at most ~41 of its PLAN_MAX_DESCS entries */
        for (int64_t i = 0; i < made; i++)
            if (i != chosen) cudnnBackendDestroyDescriptor(cfgs[i]);
        if (chosen >= 0) {
            if (p->n_descs + 2 > PLAN_MAX_DESCS) {
                cudnnBackendDestroyDescriptor(cfgs[chosen]);
                cudnnBackendDestroyDescriptor(p->plan);
                p->plan = NULL;
                return bq_fail(err, BQ_ERR_INVALID_ARG, "cuDNN attention: descriptor table full");
            }
            p->descs[p->n_descs++] = cfgs[chosen];
            p->descs[p->n_descs++] = p->plan;
            return BQ_OK;
        }
    }
    if (too_big)
        return bq_fail(err, BQ_ERR_UNSUPPORTED,
                       "cuDNN attention: %d engine configs tried, %d needed more than the %lld "
                       "bytes of workspace planned at the engine's max batch",
                       tried, too_big, (long long)workspace_limit);
    return bq_fail(err, BQ_ERR_UNSUPPORTED,
                   "cuDNN attention: no engine supports the graph (%d configs tried; last status "
                   "%s%s%s)",
                   tried, cudnnGetErrorString(last), detail[0] ? ": " : "", detail);
}

/* Build the plan for `batch`: the stats-free inference graph first, then (if no engine takes it)
 * the variant that also writes softmax stats, which is the training-forward pattern. */
static bq_status build_plan(bq_cudnn_attention *a, int batch, int64_t workspace_limit,
                            bq_err *err) {
    sdpa_plan *p = &a->plans[batch];
    bq_status s = BQ_ERR_UNSUPPORTED;
    char first[sizeof err->message];
    first[0] = '\0';
    for (int with_stats = 0; with_stats <= 1; with_stats++) {
        plan_release(p);
        cudnnBackendDescriptor_t graph = NULL;
        s = build_graph(a, batch, with_stats, p, &graph, err);
        if (s == BQ_OK) s = choose_plan(a, graph, workspace_limit, p, err);
        if (s == BQ_OK) {
            p->with_stats = with_stats;
            p->built = 1;
            return BQ_OK;
        }
        if (s != BQ_ERR_UNSUPPORTED) break;
        if (!with_stats && err) snprintf(first, sizeof first, "%s", err->message);
    }
    plan_release(p);
    if (s == BQ_ERR_UNSUPPORTED && err) {
        char second[sizeof err->message];
        snprintf(second, sizeof second, "%s", err->message);
        return bq_fail(err, BQ_ERR_UNSUPPORTED,
                       "cuDNN %d fused attention is not available for batch %d x seq %d, %d heads "
                       "of %d, %s (inference graph: %.400s; with stats: %.400s); use --attention own",
                       (int)cudnnGetVersion(), batch, a->seq_len, a->heads, a->head_size,
                       bq_cuda_dtype_name(a->dt), first, second);
    }
    return s;
}

/* (Re)build p's variant pack for these buffers: host-side descriptors only. */
static bq_status bind_buffers(bq_cudnn_attention *a, sdpa_plan *p, const void *qkv, void *ctx,
                              bq_err *err) {
    if (p->variant_pack && p->pack_qkv == qkv && p->pack_ctx == ctx) return BQ_OK;
    if (p->variant_pack) cudnnBackendDestroyDescriptor(p->variant_pack);
    p->variant_pack = NULL;
    /* not bound until finalized: a failure below must not leave a pack that looks bound */
    p->pack_qkv = NULL;
    p->pack_ctx = NULL;
    size_t elem = bq_cuda_dtype_size(a->dt);
    char *base = (char *)qkv; /* cuDNN only reads the inputs */
    int64_t uids[6] = {UID_Q, UID_K, UID_V, UID_O, UID_BIAS, UID_SCALE};
    void *ptrs[6] = {base, base + (size_t)a->hidden * elem, base + 2 * (size_t)a->hidden * elem,
                     ctx, a->bias, &a->scale};
    int64_t n = 6;
    int64_t uids_stats[7];
    void *ptrs_stats[7];
    if (p->with_stats) {
        memcpy(uids_stats, uids, sizeof uids);
        memcpy(ptrs_stats, ptrs, sizeof ptrs);
        uids_stats[6] = UID_STATS;
        ptrs_stats[6] = a->stats;
        n = 7;
    }
    cudnnBackendDescriptor_t pack;
    BQ_CUDNN_TRY(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack), err);
    p->variant_pack = pack; /* owned from here on, so a failure below cannot leak it */
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                          n, p->with_stats ? uids_stats : uids), err);
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                          CUDNN_TYPE_VOID_PTR, n,
                                          p->with_stats ? ptrs_stats : ptrs), err);
    void *ws = a->workspace;
    BQ_CUDNN_TRY(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR,
                                          1, &ws), err);
    BQ_CUDNN_TRY(cudnnBackendFinalize(pack), err);
    p->pack_qkv = qkv;
    p->pack_ctx = ctx;
    return BQ_OK;
}

extern "C" void bq_cudnn_attention_free(bq_cudnn_attention *a) {
    if (!a) return;
    if (a->plans)
        for (int b = 0; b <= a->max_batch; b++) plan_release(&a->plans[b]);
    free(a->plans);
    if (a->handle) cudnnDestroy(a->handle);
    cudaFree(a->bias);
    cudaFree(a->stats);
    cudaFree(a->workspace);
    free(a);
}

static bq_status create_inner(bq_cudnn_attention *a, bq_err *err) {
    a->plans = (sdpa_plan *)calloc((size_t)a->max_batch + 1, sizeof *a->plans);
    if (!a->plans) return bq_fail(err, BQ_ERR_NOMEM, "cuDNN attention: out of host memory");
    BQ_CUDNN_TRY(cudnnCreate(&a->handle), err);
    size_t elem = bq_cuda_dtype_size(a->dt);
    size_t plane = (size_t)a->seq_len * a->seq_len;
    BQ_CUDA_TRY(cudaMalloc(&a->bias, (size_t)a->max_batch * plane * elem), err);
    BQ_CUDA_TRY(cudaMalloc((void **)&a->stats,
                           (size_t)a->max_batch * a->heads * a->seq_len * sizeof(float)), err);
    /* the largest batch decides the workspace; smaller batches must fit in it */
    bq_status s = build_plan(a, a->max_batch, INT64_MAX, err);
    if (s != BQ_OK) return s;
    size_t ws = (size_t)a->plans[a->max_batch].workspace_bytes;
    a->workspace_bytes = ws > 256 ? ws : 256;
    BQ_CUDA_TRY(cudaMalloc(&a->workspace, a->workspace_bytes), err);
    return BQ_OK;
}

extern "C" bq_status bq_cudnn_attention_create(int max_batch, int seq_len, int hidden, int heads,
                                               bq_cuda_dtype dt, bq_cudnn_attention **out,
                                               bq_err *err) {
    if (!out) return bq_fail(err, BQ_ERR_INVALID_ARG, "cuDNN attention: out is NULL");
    *out = NULL;
    if (dt == BQ_CUDA_F32)
        return bq_fail(err, BQ_ERR_UNSUPPORTED,
                       "cuDNN fused attention needs fp16 or bf16 (got fp32/tf32); use --attention own "
                       "or --precision fp16|bf16");
    if (dt != BQ_CUDA_F16 && dt != BQ_CUDA_BF16)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cuDNN attention: unknown dtype %d", (int)dt);
    if (max_batch < 1 || seq_len < 1 || hidden < 1 || heads < 1 || hidden % heads != 0)
        return bq_fail(err, BQ_ERR_INVALID_ARG,
                       "cuDNN attention: bad shape (max_batch %d, seq_len %d, hidden %d, heads %d)",
                       max_batch, seq_len, hidden, heads);
    int head_size = hidden / heads;
    /* cuDNN's fp16/bf16 SDPA needs the head size to be a multiple of 8 (which also keeps every
     * Q/K/V base 16-byte aligned); 128 is the limit on every architecture */
    if (head_size % 8 != 0 || head_size > 128)
        return bq_fail(err, BQ_ERR_UNSUPPORTED,
                       "cuDNN fused attention needs a head size that is a multiple of 8 and at most "
                       "128 (got %d); use --attention own",
                       head_size);
    bq_cudnn_attention *a = (bq_cudnn_attention *)calloc(1, sizeof *a);
    if (!a) return bq_fail(err, BQ_ERR_NOMEM, "cuDNN attention: out of host memory");
    a->max_batch = max_batch;
    a->seq_len = seq_len;
    a->hidden = hidden;
    a->heads = heads;
    a->head_size = head_size;
    a->dt = dt;
    a->scale = 1.0f / sqrtf((float)head_size);
    bq_status s = create_inner(a, err);
    if (s != BQ_OK) {
        bq_cudnn_attention_free(a);
        return s;
    }
    *out = a;
    return BQ_OK;
}

extern "C" bq_status bq_cudnn_attention_set_mask(bq_cudnn_attention *a, const int32_t *mask,
                                                 int batch, cudaStream_t stream, bq_err *err) {
    if (!a || !mask) return bq_fail(err, BQ_ERR_INVALID_ARG, "cuDNN attention: NULL argument");
    if (batch < 1 || batch > a->max_batch)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cuDNN attention: batch %d outside 1..%d", batch,
                       a->max_batch);
    BQ_CUDA_TRY(launch_padding_mask_bias(mask, batch, a->seq_len, a->bias, a->dt, stream), err);
    return BQ_OK;
}

extern "C" bq_status bq_cudnn_attention_run(bq_cudnn_attention *a, const void *qkv, int batch,
                                            void *ctx, cudaStream_t stream, bq_err *err) {
    if (!a || !qkv || !ctx)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cuDNN attention: NULL argument");
    if (batch < 1 || batch > a->max_batch)
        return bq_fail(err, BQ_ERR_INVALID_ARG, "cuDNN attention: batch %d outside 1..%d", batch,
                       a->max_batch);
    sdpa_plan *p = &a->plans[batch];
    if (!p->built) {
        /* building compiles kernels and may touch the device: never inside a stream capture */
        cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
        BQ_CUDA_TRY(cudaStreamIsCapturing(stream, &capture), err);
        if (capture != cudaStreamCaptureStatusNone)
            return bq_fail(err, BQ_ERR_INVALID_ARG,
                           "cuDNN attention: no plan for batch %d yet; run that batch size once "
                           "outside graph capture first",
                           batch);
        bq_status s = build_plan(a, batch, (int64_t)a->workspace_bytes, err);
        if (s != BQ_OK) return s;
    }
    bq_status s = bind_buffers(a, p, qkv, ctx, err);
    if (s != BQ_OK) return s;
    BQ_CUDNN_TRY(cudnnSetStream(a->handle, stream), err);
    BQ_CUDNN_TRY(cudnnBackendExecute(a->handle, p->plan, p->variant_pack), err);
    return BQ_OK;
}

#endif /* BQ_HAVE_CUDNN */
