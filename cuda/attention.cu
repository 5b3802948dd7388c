/* attention.cu - fused multi-head self-attention, two paths:
 *
 * generic (any dtype, head size <= 128, any seq_len): one warp per query row, 8 query rows of one
 *   (batch, head) per block. Keys/values are staged 32 at a time in shared memory (fp32); lane j
 *   scores key j of the tile, the warp runs an online softmax (running max m, running sum l, fp32)
 *   and each lane accumulates output dims lane, lane+32, ... in registers.
 *
 * tensor cores (fp16/bf16, head size 64, any seq_len): 4 warps per block, 16 query rows per warp,
 *   64 query rows of one (batch, head) per block. Per tile of 32 keys: S = Q K^T with WMMA 16x16x16
 *   (fp32 accumulate) into shared, online softmax in fp32 (a lane pair per query row), P rounded to
 *   the storage type in shared, O = O * alpha + P V with WMMA on an fp32 accumulator kept in
 *   shared. Query rows and keys beyond seq_len are zero-filled; such keys get score -inf and such
 *   rows are not stored.
 *
 * Both: score = (q . k) / sqrt(d) + bq_mask_bias(mask[b, key]); the score matrix stays on chip. */
#include <mma.h>

#include "attention.cuh"
#include "kernel_common.cuh"

#define ATTN_MAX_HEAD 128    /* generic path: largest head size */
#define ATTN_KEY_TILE 32     /* keys per shared tile, both paths (generic: one key per lane) */
#define ATTN_GENERIC_WARPS 8 /* generic path: query rows per block */
#define ATTN_WMMA_HEAD 64    /* tensor-core path: the one head size it handles */
#define ATTN_WMMA_WARPS 4
#define ATTN_WMMA_ROWS 16 /* query rows per warp (one WMMA tile) */

/* ---- generic path ------------------------------------------------------------------------- */

template <typename T>
__global__ void attention_generic_kernel(const T *qkv, const int32_t *mask, int seq_len,
                                         int hidden, int head_size, float scale, T *ctx) {
    __shared__ float k_tile[ATTN_KEY_TILE][ATTN_MAX_HEAD + 1]; /* +1: lane j reads row j conflict-free */
    __shared__ float v_tile[ATTN_KEY_TILE][ATTN_MAX_HEAD];
    __shared__ float key_bias[ATTN_KEY_TILE];       /* mask bias, -inf past seq_len */
    __shared__ float q_rows[ATTN_GENERIC_WARPS][ATTN_MAX_HEAD]; /* scaled query per warp */

    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int head = blockIdx.y;
    const int batch = blockIdx.z;
    const int query = blockIdx.x * ATTN_GENERIC_WARPS + warp;
    const bool active = query < seq_len; /* inactive warps still help load tiles */
    const size_t qkv_stride = (size_t)3 * hidden;
    const size_t batch_row0 = (size_t)batch * seq_len;
    const int head_col = head * head_size;

    for (int c = lane; c < head_size; c += 32)
        q_rows[warp][c] =
            active ? bq_load_f32(qkv, (batch_row0 + query) * qkv_stride + head_col + c) * scale : 0.0f;

    float acc[ATTN_MAX_HEAD / 32]; /* output dims lane + 32*i */
#pragma unroll
    for (int i = 0; i < ATTN_MAX_HEAD / 32; i++) acc[i] = 0.0f;
    float running_max = -INFINITY, running_sum = 0.0f;

    for (int tile0 = 0; tile0 < seq_len; tile0 += ATTN_KEY_TILE) {
        __syncthreads(); /* previous tile fully consumed (and q_rows written, first time) */
        for (int idx = threadIdx.x; idx < ATTN_KEY_TILE * head_size; idx += blockDim.x) {
            const int j = idx / head_size, c = idx % head_size;
            const int key = tile0 + j;
            float kv = 0.0f, vv = 0.0f;
            if (key < seq_len) {
                const size_t row = (batch_row0 + key) * qkv_stride + head_col + c;
                kv = bq_load_f32(qkv, row + hidden);
                vv = bq_load_f32(qkv, row + 2 * (size_t)hidden);
            }
            k_tile[j][c] = kv;
            v_tile[j][c] = vv;
        }
        for (int j = threadIdx.x; j < ATTN_KEY_TILE; j += blockDim.x) {
            const int key = tile0 + j;
            key_bias[j] = key < seq_len ? bq_mask_bias(mask[batch_row0 + key]) : -INFINITY;
        }
        __syncthreads();
        if (!active) continue;

        /* lane j: score of key tile0 + j */
        float score = 0.0f;
        for (int c = 0; c < head_size; c++) score += q_rows[warp][c] * k_tile[lane][c];
        score += key_bias[lane]; /* -inf for keys past the end */

        const float tile_max = bq_warp_max(score); /* finite: key tile0 < seq_len always exists */
        const float new_max = fmaxf(running_max, tile_max);
        const float p = expf(score - new_max);
        const float alpha = expf(running_max - new_max); /* 0 on the first tile */
        running_sum = running_sum * alpha + bq_warp_sum(p);
        running_max = new_max;
#pragma unroll
        for (int i = 0; i < ATTN_MAX_HEAD / 32; i++) acc[i] *= alpha;
        for (int j = 0; j < ATTN_KEY_TILE; j++) {
            const float pj = __shfl_sync(BQ_FULL_WARP, p, j);
#pragma unroll
            for (int i = 0; i < ATTN_MAX_HEAD / 32; i++) {
                const int c = lane + 32 * i;
                if (c < head_size) acc[i] += pj * v_tile[j][c];
            }
        }
    }
    if (!active) return;
    const float inv_sum = 1.0f / running_sum;
    const size_t out_row = (batch_row0 + query) * (size_t)hidden + head_col;
#pragma unroll
    for (int i = 0; i < ATTN_MAX_HEAD / 32; i++) {
        const int c = lane + 32 * i;
        if (c < head_size) bq_store_f32(ctx, out_row + c, acc[i] * inv_sum);
    }
}

template <typename T>
static cudaError_t launch_attention_generic(const void *qkv, const int32_t *mask, int batch,
                                            int seq_len, int hidden, int heads, void *ctx,
                                            cudaStream_t stream) {
    const int head_size = hidden / heads;
    dim3 grid((unsigned)((seq_len + ATTN_GENERIC_WARPS - 1) / ATTN_GENERIC_WARPS), (unsigned)heads,
              (unsigned)batch);
    attention_generic_kernel<T><<<grid, ATTN_GENERIC_WARPS * 32, 0, stream>>>(
        (const T *)qkv, mask, seq_len, hidden, head_size, 1.0f / sqrtf((float)head_size), (T *)ctx);
    return cudaGetLastError();
}

/* ---- tensor-core path (fp16 / bf16, head size 64) ----------------------------------------- */

namespace wmma = nvcuda::wmma;

template <typename T>
__global__ void attention_wmma_kernel(const T *qkv, const int32_t *mask, int seq_len, int hidden,
                                      float scale, T *ctx) {
    constexpr int D = ATTN_WMMA_HEAD;
    constexpr int R = ATTN_WMMA_ROWS;
    constexpr int KT = ATTN_KEY_TILE;
    constexpr int QROWS = ATTN_WMMA_WARPS * R; /* 64 query rows per block */
    /* Rows of the 16-bit Q/K/V tiles are padded to LD = 72 elements (144 bytes) so that the 16
     * rows a WMMA load reads start in different banks; LD stays a multiple of 8 (WMMA's ldm rule
     * for 16-bit types). All tiles row-major; WMMA needs 32-byte aligned pointers: every pointer
     * handed to it is a tile base plus a multiple of 16 rows (16 * LD * 2 = 2304 bytes) and of 16
     * columns (32 bytes), or of 16 rows of s_s / p_s / o_s. Static total 47.2 KB (limit 48 KB). */
    constexpr int LD = D + 8;
    __shared__ __align__(128) T q_s[QROWS][LD];                       /* 9 KB (16-bit) */
    __shared__ __align__(128) T k_s[KT][LD];                          /* 4.5 KB */
    __shared__ __align__(128) T v_s[KT][LD];                          /* 4.5 KB */
    __shared__ __align__(128) float s_s[ATTN_WMMA_WARPS][R][KT];      /* 8 KB scores */
    __shared__ __align__(128) T p_s[ATTN_WMMA_WARPS][R][KT];          /* 4 KB probabilities */
    __shared__ __align__(128) float o_s[ATTN_WMMA_WARPS][R][D];       /* 16 KB output accum */
    __shared__ float key_bias[KT];

    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int head = blockIdx.y;
    const int batch = blockIdx.z;
    const int query0 = blockIdx.x * QROWS;
    const size_t qkv_stride = (size_t)3 * hidden;
    const size_t batch_row0 = (size_t)batch * seq_len;
    const int head_col = head * D;
    const T zero = T(0.0f);

    for (int idx = threadIdx.x; idx < QROWS * D; idx += blockDim.x) {
        const int r = idx / D, c = idx % D;
        const int query = query0 + r;
        q_s[r][c] = query < seq_len ? qkv[(batch_row0 + query) * qkv_stride + head_col + c] : zero;
    }
    for (int idx = lane; idx < R * D; idx += 32) o_s[warp][idx / D][idx % D] = 0.0f;
    __syncthreads();

    /* Softmax bookkeeping: lanes 2r and 2r+1 own row r of this warp's 16 rows; each handles half
     * of the row's key columns (KT/2) and half of its output columns (D/2). Both lanes of a pair
     * hold identical running max / sum (a max is exact and a + b == b + a). */
    const int my_row = lane >> 1;
    const int my_half = lane & 1;
    float running_max = -INFINITY, running_sum = 0.0f;

    /* this warp's 16 query rows as A operands, one per 16-wide slice of the head dims */
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> q_frag[D / 16];
#pragma unroll
    for (int ks = 0; ks < D / 16; ks++) wmma::load_matrix_sync(q_frag[ks], &q_s[warp * R][ks * 16], LD);

    for (int tile0 = 0; tile0 < seq_len; tile0 += KT) {
        __syncthreads(); /* every warp is done with the previous k_s / v_s / key_bias */
        for (int idx = threadIdx.x; idx < KT * D; idx += blockDim.x) {
            const int j = idx / D, c = idx % D;
            const int key = tile0 + j;
            T kv = zero, vv = zero;
            if (key < seq_len) {
                const size_t row = (batch_row0 + key) * qkv_stride + head_col + c;
                kv = qkv[row + hidden];
                vv = qkv[row + 2 * (size_t)hidden];
            }
            k_s[j][c] = kv;
            v_s[j][c] = vv;
        }
        for (int j = threadIdx.x; j < KT; j += blockDim.x) {
            const int key = tile0 + j;
            key_bias[j] = key < seq_len ? bq_mask_bias(mask[batch_row0 + key]) : -INFINITY;
        }
        __syncthreads();

        /* S[16 x 32] = Q[16 x 64] . K^T[64 x 32]; K^T read as col-major from row-major k_s */
#pragma unroll
        for (int n = 0; n < KT / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> s_frag;
            wmma::fill_fragment(s_frag, 0.0f);
#pragma unroll
            for (int ks = 0; ks < D / 16; ks++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> k_frag;
                wmma::load_matrix_sync(k_frag, &k_s[n * 16][ks * 16], LD);
                wmma::mma_sync(s_frag, q_frag[ks], k_frag, s_frag);
            }
            wmma::store_matrix_sync(&s_s[warp][0][n * 16], s_frag, KT, wmma::mem_row_major);
        }
        __syncwarp();

        /* online softmax of row my_row over this tile's keys. The loops start each lane at a
         * different column (rotated by its row / lane): rows of s_s are 32 floats and rows of
         * o_s 64 floats apart, so an unrotated j / c would put all 16 rows (or all 32 lanes) in
         * one bank; rotated, each step touches 32 different banks. */
        {
            constexpr int HALF_KT = KT / 2, HALF_D = D / 2;
            const float *scores = &s_s[warp][my_row][my_half * HALF_KT];
            const float *bias = &key_bias[my_half * HALF_KT];
            float tile_max = -INFINITY;
            for (int j = 0; j < HALF_KT; j++) {
                const int col = (j + my_row) % HALF_KT;
                tile_max = fmaxf(tile_max, scores[col] * scale + bias[col]);
            }
            tile_max = fmaxf(tile_max, __shfl_xor_sync(BQ_FULL_WARP, tile_max, 1));
            const float new_max = fmaxf(running_max, tile_max); /* finite: key tile0 exists */
            const float alpha = expf(running_max - new_max);    /* 0 on the first tile */
            T *probs = &p_s[warp][my_row][my_half * HALF_KT];
            float tile_sum = 0.0f;
            for (int j = 0; j < HALF_KT; j++) {
                const int col = (j + my_row) % HALF_KT;
                const float p = expf(scores[col] * scale + bias[col] - new_max); /* 0 past the end */
                probs[col] = T(p);
                tile_sum += p;
            }
            tile_sum += __shfl_xor_sync(BQ_FULL_WARP, tile_sum, 1);
            running_sum = running_sum * alpha + tile_sum;
            running_max = new_max;
            float *o_row = &o_s[warp][my_row][my_half * HALF_D];
            for (int c = 0; c < HALF_D; c++) o_row[(c + lane) % HALF_D] *= alpha;
        }
        __syncwarp();

        /* O[16 x 64] += P[16 x 32] . V[32 x 64] */
#pragma unroll
        for (int n = 0; n < D / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> o_frag;
            wmma::load_matrix_sync(o_frag, &o_s[warp][0][n * 16], D, wmma::mem_row_major);
#pragma unroll
            for (int ks = 0; ks < KT / 16; ks++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> p_frag;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> v_frag;
                wmma::load_matrix_sync(p_frag, &p_s[warp][0][ks * 16], KT);
                wmma::load_matrix_sync(v_frag, &v_s[ks * 16][n * 16], LD);
                wmma::mma_sync(o_frag, p_frag, v_frag, o_frag);
            }
            wmma::store_matrix_sync(&o_s[warp][0][n * 16], o_frag, D, wmma::mem_row_major);
        }
        __syncwarp();
    }

    const int query = query0 + warp * R + my_row;
    if (query < seq_len) {
        const float inv_sum = 1.0f / running_sum;
        const size_t out_row = (batch_row0 + query) * (size_t)hidden + head_col + my_half * (D / 2);
        for (int c = 0; c < D / 2; c++) {
            const int col = (c + lane) % (D / 2); /* rotated: conflict-free, as above */
            bq_store_f32(ctx, out_row + col, o_s[warp][my_row][my_half * (D / 2) + col] * inv_sum);
        }
    }
}

template <typename T>
static cudaError_t launch_attention_wmma(const void *qkv, const int32_t *mask, int batch,
                                         int seq_len, int hidden, int heads, void *ctx,
                                         cudaStream_t stream) {
    const int rows_per_block = ATTN_WMMA_WARPS * ATTN_WMMA_ROWS;
    dim3 grid((unsigned)((seq_len + rows_per_block - 1) / rows_per_block), (unsigned)heads,
              (unsigned)batch);
    attention_wmma_kernel<T><<<grid, ATTN_WMMA_WARPS * 32, 0, stream>>>(
        (const T *)qkv, mask, seq_len, hidden, 1.0f / sqrtf((float)ATTN_WMMA_HEAD), (T *)ctx);
    return cudaGetLastError();
}

/* ---- entry points --------------------------------------------------------------------------- */

static bool attention_args_ok(const void *qkv, const int32_t *mask, int batch, int seq_len,
                              int hidden, int heads, const void *ctx) {
    if (!qkv || !mask || !ctx) return false;
    if (batch <= 0 || seq_len <= 0 || hidden <= 0 || heads <= 0) return false;
    if (hidden % heads != 0 || hidden / heads > ATTN_MAX_HEAD) return false;
    if (heads > 65535 || batch > 65535) return false; /* grid y / z limits */
    return true;
}

extern "C" cudaError_t bq_cuda_attention_generic(const void *qkv, const int32_t *mask, int batch,
                                                 int seq_len, int hidden, int heads, void *ctx,
                                                 bq_cuda_dtype dt, cudaStream_t stream) {
    if (!attention_args_ok(qkv, mask, batch, seq_len, hidden, heads, ctx))
        return cudaErrorInvalidValue;
    switch (dt) {
    case BQ_CUDA_F32:
        return launch_attention_generic<float>(qkv, mask, batch, seq_len, hidden, heads, ctx, stream);
    case BQ_CUDA_F16:
        return launch_attention_generic<__half>(qkv, mask, batch, seq_len, hidden, heads, ctx, stream);
    case BQ_CUDA_BF16:
        return launch_attention_generic<__nv_bfloat16>(qkv, mask, batch, seq_len, hidden, heads,
                                                       ctx, stream);
    }
    return cudaErrorInvalidValue;
}

extern "C" cudaError_t bq_cuda_attention(const void *qkv, const int32_t *mask, int batch,
                                         int seq_len, int hidden, int heads, void *ctx,
                                         bq_cuda_dtype dt, cudaStream_t stream) {
    if (!attention_args_ok(qkv, mask, batch, seq_len, hidden, heads, ctx))
        return cudaErrorInvalidValue;
    const bool tensor_core_shape = hidden / heads == ATTN_WMMA_HEAD;
    if (tensor_core_shape && dt == BQ_CUDA_F16)
        return launch_attention_wmma<__half>(qkv, mask, batch, seq_len, hidden, heads, ctx, stream);
    if (tensor_core_shape && dt == BQ_CUDA_BF16)
        return launch_attention_wmma<__nv_bfloat16>(qkv, mask, batch, seq_len, hidden, heads, ctx,
                                                    stream);
    return bq_cuda_attention_generic(qkv, mask, batch, seq_len, hidden, heads, ctx, dt, stream);
}
