/* attention.cu - fused multi-head self-attention, four paths:
 *
 * generic (any dtype, head size <= 128, any seq_len): one warp per query row, 8 query rows of one
 *   (batch, head) per block. Keys/values are staged 32 at a time in shared memory (fp32); lane j
 *   scores key j of the tile, the warp runs an online softmax (running max m, running sum l, fp32)
 *   and each lane accumulates output dims lane, lane+32, ... in registers.
 *
 * mma.sync (fp16/bf16, head size 64, any seq_len; the default for 16-bit): FlashAttention-2 style.
 *   4 warps of 16 query rows, 64-key tiles double-buffered by cp.async; scores, probabilities and
 *   the output accumulator stay in registers (mma.sync m16n8k16, fp32 accumulate); P rounded to
 *   the storage type for P V. Padding-only key tiles skipped as in the fp32 path.
 *
 * WMMA (fp16/bf16, head size 64, any seq_len): 4 warps per block, 16 query rows per warp,
 *   64 query rows of one (batch, head) per block. Per tile of 32 keys: S = Q K^T with WMMA 16x16x16
 *   (fp32 accumulate) into shared, online softmax in fp32 (a lane pair per query row), P rounded to
 *   the storage type in shared, O = O * alpha + P V with WMMA on an fp32 accumulator kept in
 *   shared. Query rows and keys beyond seq_len are zero-filled; such keys get score -inf and such
 *   rows are not stored.
 *
 * fp32 (head size 64, any seq_len, 16-byte aligned qkv / ctx): 8 warps, 128 query rows of one
 *   (batch, head) per block, 64-key tiles of K and V in shared memory; each lane computes a 4 x 8
 *   register tile of scores and a 4 x 8 tile of the output with fp32 FMAs on the CUDA cores,
 *   online softmax in fp32 (details at the kernel). Key tiles of padding only are skipped when
 *   the sequence has a real token (exactly the same result).
 *
 * The tilings BQ_ATTENTION_WGMMA128 and _OVERLAP of the 16-bit head-64 path are the same
 * algorithm on Hopper's wgmma, in attention_wgmma.cu (sm_90a only); the shared pieces are in
 * attention_common.cuh.
 *
 * All: score = (q . k) / sqrt(d) + bq_mask_bias(mask[b, key]); the score matrix stays on chip.
 * Packed sequences (bq_cuda_attention_varlen) run the same kernels: with seq_offsets, grid.z
 * indexes sequences, each block takes its sequence's rows and length from the offsets (blocks
 * past its end return), and the mask is NULL: every key real. */
#include <mma.h>
#include <stdlib.h>
#include <string.h>

#include "attention.cuh"
#include "attention_common.cuh"
#include "attention_wgmma.cuh"
#include "kernel_common.cuh"
#include "tensor_core.cuh"

#define ATTN_MAX_HEAD 128    /* generic path: largest head size */
#define ATTN_KEY_TILE 32     /* keys per shared tile, both paths (generic: one key per lane) */
#define ATTN_GENERIC_WARPS 8 /* generic path: query rows per block */
#define ATTN_WMMA_HEAD 64    /* tensor-core path: the one head size it handles */
#define ATTN_WMMA_WARPS 4
#define ATTN_WMMA_ROWS 16 /* query rows per warp (one WMMA tile) */

/* Stage the keys and values [tile0, tile0 + tile) of one (batch, head) in shared memory, as `S`
 * (fp32 for the generic path, the activation type for the tensor-core path), zeros past seq_len,
 * and their mask bias (-inf past seq_len, so the softmax ignores them). Block-strided; the caller
 * synchronizes before and after. k_dst / v_dst rows are k_ld / v_ld elements apart. */
template <typename S, typename T>
__device__ __forceinline__ void stage_key_tile(const T *qkv, const int32_t *mask, size_t batch_row0,
                                               size_t qkv_stride, int head_col, int hidden,
                                               int head_size, int seq_len, int tile0, int tile,
                                               S *k_dst, int k_ld, S *v_dst, int v_ld,
                                               float *key_bias) {
    for (int idx = threadIdx.x; idx < tile * head_size; idx += blockDim.x) {
        const int j = idx / head_size, c = idx % head_size;
        const int key = tile0 + j;
        S kv = S(0.0f), vv = S(0.0f);
        if (key < seq_len) {
            const size_t row = (batch_row0 + key) * qkv_stride + head_col + c;
            kv = S(qkv[row + hidden]);
            vv = S(qkv[row + 2 * (size_t)hidden]);
        }
        k_dst[(size_t)j * k_ld + c] = kv;
        v_dst[(size_t)j * v_ld + c] = vv;
    }
    for (int j = threadIdx.x; j < tile; j += blockDim.x) {
        const int key = tile0 + j;
        key_bias[j] = key < seq_len ? bq_mask_bias(key_mask(mask, batch_row0 + key)) : -INFINITY;
    }
}

/* ---- generic path ------------------------------------------------------------------------- */

template <typename T>
__global__ void attention_generic_kernel(const T *qkv, const int32_t *mask,
                                         const int32_t *seq_offsets, int seq_len, int hidden,
                                         int head_size, float scale, T *ctx) {
    __shared__ float k_tile[ATTN_KEY_TILE][ATTN_MAX_HEAD + 1]; /* +1: lane j reads row j conflict-free */
    __shared__ float v_tile[ATTN_KEY_TILE][ATTN_MAX_HEAD];
    __shared__ float key_bias[ATTN_KEY_TILE];       /* mask bias, -inf past seq_len */
    __shared__ float q_rows[ATTN_GENERIC_WARPS][ATTN_MAX_HEAD]; /* scaled query per warp */

    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int head = blockIdx.y;
    const int batch_row0 = attention_sequence(seq_offsets, seq_len);
    const int query0 = blockIdx.x * ATTN_GENERIC_WARPS;
    if (query0 >= seq_len) return; /* past a packed sequence's end */
    const int query = query0 + warp;
    const bool active = query < seq_len; /* inactive warps still help load tiles */
    const size_t qkv_stride = (size_t)3 * hidden;
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
        stage_key_tile<float>(qkv, mask, batch_row0, qkv_stride, head_col, hidden, head_size, seq_len,
                              tile0, ATTN_KEY_TILE, &k_tile[0][0], ATTN_MAX_HEAD + 1, &v_tile[0][0],
                              ATTN_MAX_HEAD, key_bias);
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
static cudaError_t launch_attention_generic(const void *qkv, const int32_t *mask,
                                            const int32_t *seq_offsets, int batch, int seq_len,
                                            int hidden, int heads, void *ctx, cudaStream_t stream) {
    const int head_size = hidden / heads;
    const dim3 grid = attention_grid(seq_len, ATTN_GENERIC_WARPS, heads, batch);
    attention_generic_kernel<T><<<grid, ATTN_GENERIC_WARPS * 32, 0, stream>>>(
        (const T *)qkv, mask, seq_offsets, seq_len, hidden, head_size,
        1.0f / sqrtf((float)head_size), (T *)ctx);
    return cudaGetLastError();
}

/* ---- tensor-core path (fp16 / bf16, head size 64) ----------------------------------------- */

namespace wmma = nvcuda::wmma;

template <typename T>
__global__ void attention_wmma_kernel(const T *qkv, const int32_t *mask, const int32_t *seq_offsets,
                                      int seq_len, int hidden, float scale, T *ctx) {
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
    const int query0 = blockIdx.x * QROWS;
    const int batch_row0 = attention_sequence(seq_offsets, seq_len);
    if (query0 >= seq_len) return; /* past a packed sequence's end */
    const size_t qkv_stride = (size_t)3 * hidden;
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
        stage_key_tile<T>(qkv, mask, batch_row0, qkv_stride, head_col, hidden, D, seq_len, tile0, KT,
                          &k_s[0][0], LD, &v_s[0][0], LD, key_bias);
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
static cudaError_t launch_attention_wmma(const void *qkv, const int32_t *mask,
                                         const int32_t *seq_offsets, int batch, int seq_len,
                                         int hidden, int heads, void *ctx, cudaStream_t stream) {
    const dim3 grid = attention_grid(seq_len, ATTN_WMMA_WARPS * ATTN_WMMA_ROWS, heads, batch);
    attention_wmma_kernel<T><<<grid, ATTN_WMMA_WARPS * 32, 0, stream>>>(
        (const T *)qkv, mask, seq_offsets, seq_len, hidden, 1.0f / sqrtf((float)ATTN_WMMA_HEAD),
        (T *)ctx);
    return cudaGetLastError();
}

/* ---- mma.sync path (fp16 / bf16, head size 64): FlashAttention-2 style, registers only ------ */

#define ATTN_MMA_WARPS 4 /* warps of a block without a key split (64- and 128-row tilings) */
/* Shared rows are 72 16-bit elements (144 bytes): 16-byte aligned for cp.async and ldmatrix, and
 * the 8 row addresses of one ldmatrix matrix start 4 banks apart, so each phase of it touches all
 * 32 banks once. */
#define ATTN_MMA_LD 72

/* One block on one (batch, head): KS slots of WPS warps each; every warp of a slot has MT x 16
 * query rows, and the slots hold the same rows. With KS = 1 (4 warps) each warp walks every key:
 * 64 rows a block (MT = 1, the default) or 128 (MT = 2: each K and V fragment a warp loads from
 * shared memory feeds two m-tiles, and a block's K/V tiles serve twice the rows;
 * FlashAttention-2's choice for head size 64, at about twice the registers). With KS > 1 the slots
 * take every KS-th live key tile, so a block walks 1/KS of the steps: 32 rows with the keys split
 * in two (2 slots of 2 warps), or 64 rows split in three (3 slots of 4 warps, 384 threads). That
 * is for small batches, where 64-row blocks of 4 warps leave SMs idle or one warp a scheduler: at
 * batch 1, S = 384, 16 heads give 96 blocks of 64 rows for 132 SMs, 192 of 32. The 64-row split
 * keeps the K/V traffic of 64-row blocks (each block reads its head's keys once) with 12 warps an
 * SM and two steps. The slots' online-softmax states merge through shared memory at the end
 * (exact up to rounding: max, rescale, add). The engine times the tilings per batch size: on the
 * H200, 128 rows won at batch 128, 32 rows split in two at batch 1 (run a7fdcdb).
 * Per 64-key tile, each warp computes S = Q K^T (16 x 64 per m-tile, fp32) with mma.sync m16n8k16
 * into registers, updates its online softmax there (the four lanes of a quad hold one row pair,
 * so row max is two xor-shuffles), turns P into A fragments without leaving registers (the C
 * layout of two neighbouring n-tiles is the A layout of one k-step) and accumulates O += P V, also
 * in registers. K and V tiles are double-buffered in shared memory with cp.async so that the next
 * step's tiles load while this step's compute. Tiles whose keys are all padding are skipped when
 * the sequence has a real key (their probabilities would be exactly 0; see the fp32 path). Scores
 * use exp2 with log2(e) folded in. Layouts of the fragments: cuda/tensor_core.cuh. Needs qkv
 * 16-byte aligned and hidden % 8 == 0 (16-byte rows for cp.async) and ctx 4-byte aligned; the
 * dispatcher checks. Dynamic shared memory: attention_mma_smem_bytes<T, MT, KS, WPS>(). */
template <int MT, int WPS> constexpr int attention_mma_qrows() { return WPS * 16 * MT; }

template <typename T, int MT, int KS, int WPS> constexpr size_t attention_mma_smem_bytes() {
    /* q rows, then K and V: [2 buffers][KS slots][64 keys][LD] each */
    return ((size_t)attention_mma_qrows<MT, WPS>() + 2 * 2 * KS * ATTN_MMA_KEYS) * ATTN_MMA_LD *
           sizeof(T);
}

/* Blocks an SM for __launch_bounds__: 4 for the 64-row tiling (<= 128 registers, a few bytes
 * spilled; its shared memory allows 4, and batches 8-32 have the blocks to fill them), 2 for the
 * 128-row one (254 registers, ptxas for sm_90) and the 32-row split (151; its few blocks need
 * registers, not occupancy), 1 for the 384-thread 64-row split (152; its 120 KB of shared memory
 * allow no more). */
template <int MT, int KS, int WPS> constexpr int attention_mma_min_blocks() {
    return KS * WPS > ATTN_MMA_WARPS ? 1 : MT == 1 && KS == 1 ? 4 : 2;
}

template <typename T, int MT, int KS, int WPS>
__global__ void __launch_bounds__(KS * WPS * 32, (attention_mma_min_blocks<MT, KS, WPS>()))
attention_mma_head64_kernel(const T *qkv, const int32_t *mask, const int32_t *seq_offsets,
                            int seq_len, int hidden, float scale, T *ctx) {
    constexpr int D = ATTN_MMA_HEAD, KT = ATTN_MMA_KEYS, LD = ATTN_MMA_LD;
    constexpr int QROWS = attention_mma_qrows<MT, WPS>();
    constexpr int CHUNKS = D * 2 / 16; /* 16-byte chunks per head row */
    constexpr float LOG2E = 1.4426950408889634f;
    static_assert(KS == 1 || MT == 1, "keys split among slots with one m-tile per warp");
    /* dynamic shared memory: q_s [QROWS][LD] (9 KB per 64 rows), then k_s and v_s
     * [2 buffers][KS][KT][LD] (18 KB per slot each); at the end (KS > 1) the K/V space carries the
     * other slots' softmax states to slot 0 */
    extern __shared__ __align__(128) unsigned char attn_mma_smem[];
    T(*q_s)[LD] = reinterpret_cast<T(*)[LD]>(attn_mma_smem);
    T(*k_s)[KS][KT][LD] =
        reinterpret_cast<T(*)[KS][KT][LD]>(attn_mma_smem + sizeof(T) * QROWS * LD);
    T(*v_s)[KS][KT][LD] = k_s + 2;
    __shared__ float key_bias[2][KS][KT]; /* mask bias * log2(e), -inf past end */

    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int slot = warp / WPS; /* which of a step's KS key tiles this warp takes */
    const int quad_col = lane & 3;          /* t */
    const int head = blockIdx.y;
    const int query0 = blockIdx.x * QROWS;
    const int batch_row0 = attention_sequence(seq_offsets, seq_len);
    if (query0 >= seq_len) return; /* past a packed sequence's end */
    /* m-tile m of this warp: rows warp_row0 + 16 m .. +15 */
    const int warp_row0 = (warp % WPS) * 16 * MT;
    const size_t qkv_stride = (size_t)3 * hidden;
    const int head_col = head * D;
    const int n_tiles = (seq_len + KT - 1) / KT;

    /* group 0 begins with the block's query rows (zero past seq_len): issued first, so that
     * their loads overlap the mask scan below */
    for (int c = tid; c < QROWS * CHUNKS; c += blockDim.x) {
        const int r = c / CHUNKS, part = c % CHUNKS;
        const int query = query0 + r;
        const bool valid = query < seq_len;
        bq_cp_async_16(&q_s[r][part * 8],
                       qkv + (batch_row0 + (valid ? query : 0)) * qkv_stride + head_col + part * 8,
                       valid);
    }

    /* which key tiles hold a real key: tiles of padding only are skipped */
    __shared__ uint64_t live_words[2];
    static_assert(KS * WPS * 32 >= KT, "the block scans a tile's keys with a thread each");
    const attention_key_tiles key_tiles =
        attention_scan_key_tiles(mask, batch_row0, seq_len, live_words);
    auto next_live = [&](int t) { return key_tiles.next_live(t); };

    /* Stage key tile t into buffer b, slot s: K and V rows (zero past seq_len) by cp.async, the
     * biases by plain stores (both published by the barrier after the matching wait). */
    auto stage_tile = [&](int t, int b, int s) {
        for (int c = tid; c < KT * CHUNKS; c += blockDim.x) {
            const int j = c / CHUNKS, part = c % CHUNKS;
            const int key = t * KT + j;
            const bool valid = key < seq_len;
            const T *row = qkv + (batch_row0 + (valid ? key : 0)) * qkv_stride + head_col + part * 8;
            bq_cp_async_16(&k_s[b][s][j][part * 8], row + hidden, valid);
            bq_cp_async_16(&v_s[b][s][j][part * 8], row + 2 * (size_t)hidden, valid);
        }
        if (tid < KT) {
            const int key = t * KT + tid;
            key_bias[b][s][tid] = key < seq_len
                                      ? bq_mask_bias(key_mask(mask, batch_row0 + key)) * LOG2E
                                      : -INFINITY;
        }
    };
    /* A step's tiles: the next KS live tiles after `after` (n_tiles where they run out); staged
     * into buffer b. */
    auto next_step = [&](int after, int b, int (&tiles)[KS]) {
        int t = after;
#pragma unroll
        for (int s = 0; s < KS; s++) {
            t = t < n_tiles ? next_live(t) : n_tiles;
            tiles[s] = t;
            if (t < n_tiles) stage_tile(t, b, s);
        }
    };

    /* the rest of group 0: the first step's tiles (tile 0 exists, and a live tile when skipping) */
    int tiles[KS];
    int buf = 0;
    next_step(-1, buf, tiles);
    bq_cp_async_commit();

    uint32_t q_frag[MT][D / 16][4]; /* A fragments of each m-tile's 16 rows, per 16-wide k-step */
    float o[MT][D / 8][4];          /* output accumulators: n-tile n holds dims 8n + 2t, +1 */
    float row_max[MT][2], row_sum[MT][2]; /* rows g and g + 8 (log2 units); this lane's sums */
#pragma unroll
    for (int m = 0; m < MT; m++) {
        row_max[m][0] = row_max[m][1] = -INFINITY;
        row_sum[m][0] = row_sum[m][1] = 0.0f;
#pragma unroll
        for (int n = 0; n < D / 8; n++) o[m][n][0] = o[m][n][1] = o[m][n][2] = o[m][n][3] = 0.0f;
    }
    const float scale_log2 = scale * LOG2E;
    const int ld_row = lane & 7, ld_matrix = lane >> 3; /* ldmatrix: this lane's row address */
    bool first = true;

    while (tiles[0] < n_tiles) {
        int next[KS];
        next_step(tiles[KS - 1], buf ^ 1, next); /* its buffer was released by the last barrier */
        if (next[0] < n_tiles) {
            bq_cp_async_commit();
            bq_cp_async_wait<1>();
        } else {
            bq_cp_async_wait<0>();
        }
        __syncthreads(); /* this step's tiles (and, the first time, the query rows) visible */
        if (first) {
#pragma unroll
            for (int m = 0; m < MT; m++)
#pragma unroll
                for (int ks = 0; ks < D / 16; ks++)
                    bq_ldmatrix_x4(q_frag[m][ks],
                                   &q_s[warp_row0 + 16 * m + ld_row + 8 * (ld_matrix & 1)]
                                       [ks * 16 + 8 * (ld_matrix >> 1)]);
            first = false;
        }

        /* (KS > 1: a later slot may have no tile on the last step; the selection by value keeps
         * tiles[] in registers) */
        int my_tile = tiles[0];
#pragma unroll
        for (int s = 1; s < KS; s++)
            if (slot == s) my_tile = tiles[s];
        if (my_tile < n_tiles) {
            const T(*k_tile)[LD] = k_s[buf][slot];
            const T(*v_tile)[LD] = v_s[buf][slot];
            const float *bias = key_bias[buf][slot];
            /* S = Q K^T: n-tile n covers keys 8n..8n+7; one ldmatrix_x4 brings the B fragments
             * of two k-steps (32 head dims) of one n-tile: matrices = (keys, dims d0 + 8m); every
             * m-tile uses them. */
            float s[MT][KT / 8][4];
#pragma unroll
            for (int n = 0; n < KT / 8; n++) {
#pragma unroll
                for (int m = 0; m < MT; m++)
                    s[m][n][0] = s[m][n][1] = s[m][n][2] = s[m][n][3] = 0.0f;
#pragma unroll
                for (int half = 0; half < 2; half++) {
                    uint32_t kb[4];
                    bq_ldmatrix_x4(kb, &k_tile[n * 8 + ld_row][half * 32 + 8 * ld_matrix]);
#pragma unroll
                    for (int m = 0; m < MT; m++) {
                        bq_mma_16816<T>(s[m][n], q_frag[m][2 * half], &kb[0]);
                        bq_mma_16816<T>(s[m][n], q_frag[m][2 * half + 1], &kb[2]);
                    }
                }
            }

            /* online softmax in log2 units, scores -> probabilities in place */
#pragma unroll
            for (int m = 0; m < MT; m++)
                mma_online_softmax(s[m], bias, scale_log2, quad_col, row_max[m], row_sum[m], o[m]);

            /* O += P V: k-step j = keys 16j..16j+15 = n-tiles 2j, 2j+1 of S, repacked as A
             * fragments; one ldmatrix_x4_trans brings the B fragments of two 8-dim n-tiles of V:
             * matrices = (keys 16j + 8 (m & 1), dims 16dp + 8 (m >> 1)); every m-tile uses them. */
#pragma unroll
            for (int j = 0; j < KT / 16; j++) {
                uint32_t p_frag[MT][4];
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    p_frag[m][0] = bq_pack2<T>(s[m][2 * j][0], s[m][2 * j][1]);
                    p_frag[m][1] = bq_pack2<T>(s[m][2 * j][2], s[m][2 * j][3]);
                    p_frag[m][2] = bq_pack2<T>(s[m][2 * j + 1][0], s[m][2 * j + 1][1]);
                    p_frag[m][3] = bq_pack2<T>(s[m][2 * j + 1][2], s[m][2 * j + 1][3]);
                }
#pragma unroll
                for (int dp = 0; dp < D / 16; dp++) {
                    uint32_t vb[4];
                    bq_ldmatrix_x4_trans(vb, &v_tile[j * 16 + ld_row + 8 * (ld_matrix & 1)]
                                                    [dp * 16 + 8 * (ld_matrix >> 1)]);
#pragma unroll
                    for (int m = 0; m < MT; m++) {
                        bq_mma_16816<T>(o[m][2 * dp], p_frag[m], &vb[0]);
                        bq_mma_16816<T>(o[m][2 * dp + 1], p_frag[m], &vb[2]);
                    }
                }
            }
        }
        __syncthreads(); /* every warp is done with this buffer before it is refilled */
        buf ^= 1;
#pragma unroll
        for (int s = 0; s < KS; s++) tiles[s] = next[s];
    }

    if (KS > 1) {
        /* Slots 1 .. KS-1 hand their state to slot 0, lane for lane (lane l of warp w of every slot
         * holds the same rows and dims): 32 accumulators, 2 maxima, 2 partial sums each. The K/V
         * space is free after the loop's last barrier. */
        constexpr int STATE = D / 8 * 4 + 4;
        static_assert((size_t)(KS - 1) * WPS * 32 * STATE * sizeof(float) <=
                          (size_t)2 * 2 * KS * KT * LD * sizeof(T),
                      "the hand-off fits in the K/V space");
        float *handoff = reinterpret_cast<float *>(k_s);
        const int in_slot = (warp % WPS) * 32 + lane;
        if (slot > 0) {
            float *mine = handoff + ((slot - 1) * WPS * 32 + in_slot) * STATE;
#pragma unroll
            for (int n = 0; n < D / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) mine[4 * n + e] = o[0][n][e];
            mine[D / 2 + 0] = row_max[0][0], mine[D / 2 + 1] = row_max[0][1];
            mine[D / 2 + 2] = row_sum[0][0], mine[D / 2 + 3] = row_sum[0][1];
        }
        __syncthreads();
        if (slot > 0) return;
#pragma unroll
        for (int other = 1; other < KS; other++) {
            const float *theirs = handoff + ((other - 1) * WPS * 32 + in_slot) * STATE;
            float a_mine[2], a_other[2];
#pragma unroll
            for (int r = 0; r < 2; r++) {
                /* slot 0 walked the first live tile, so its maximum is finite; another slot's is
                 * -inf when it got no tile (its sums and accumulators are then 0, scaled by 0) */
                const float other_max = theirs[D / 2 + r];
                const float new_max = fmaxf(row_max[0][r], other_max);
                a_mine[r] = bq_exp2_ftz(row_max[0][r] - new_max);
                a_other[r] = bq_exp2_ftz(other_max - new_max);
                row_max[0][r] = new_max;
                row_sum[0][r] = row_sum[0][r] * a_mine[r] + theirs[D / 2 + 2 + r] * a_other[r];
            }
#pragma unroll
            for (int n = 0; n < D / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    o[0][n][e] = o[0][n][e] * a_mine[e >> 1] + theirs[4 * n + e] * a_other[e >> 1];
        }
    }

#pragma unroll
    for (int m = 0; m < MT; m++)
        attention_store_m_tile<T>(ctx, batch_row0, query0 + warp_row0 + 16 * m, seq_len, hidden,
                                  head_col, o[m], row_sum[m]);
}

template <typename T, int MT, int KS, int WPS>
static cudaError_t launch_mma_tiles(const void *qkv, const int32_t *mask,
                                    const int32_t *seq_offsets, int batch, int seq_len, int hidden,
                                    int heads, void *ctx, cudaStream_t stream) {
    constexpr size_t smem = attention_mma_smem_bytes<T, MT, KS, WPS>();
    if (smem > 48 * 1024) { /* past 48 KB needs the opt-in (sm_90: up to 227 KB a block) */
        const cudaError_t rc = cudaFuncSetAttribute(attention_mma_head64_kernel<T, MT, KS, WPS>,
                                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                    (int)smem);
        if (rc != cudaSuccess) return rc;
    }
    const dim3 grid = attention_grid(seq_len, attention_mma_qrows<MT, WPS>(), heads, batch);
    attention_mma_head64_kernel<T, MT, KS, WPS><<<grid, KS * WPS * 32, smem, stream>>>(
        (const T *)qkv, mask, seq_offsets, seq_len, hidden, 1.0f / sqrtf((float)ATTN_MMA_HEAD),
        (T *)ctx);
    return cudaGetLastError();
}

template <typename T>
static cudaError_t launch_attention_mma_head64(const void *qkv, const int32_t *mask,
                                               const int32_t *seq_offsets, int batch, int seq_len,
                                               int hidden, int heads, void *ctx,
                                               bq_attention_tiling tiling, cudaStream_t stream) {
    switch (tiling) {
    case BQ_ATTENTION_ROWS128:
        return launch_mma_tiles<T, 2, 1, 4>(qkv, mask, seq_offsets, batch, seq_len, hidden, heads,
                                             ctx, stream);
    case BQ_ATTENTION_ROWS32_KEYS2:
        return launch_mma_tiles<T, 1, 2, 2>(qkv, mask, seq_offsets, batch, seq_len, hidden, heads,
                                             ctx, stream);
    case BQ_ATTENTION_ROWS64_KEYS3:
        return launch_mma_tiles<T, 1, 3, 4>(qkv, mask, seq_offsets, batch, seq_len, hidden, heads,
                                             ctx, stream);
    default:
        return launch_mma_tiles<T, 1, 1, 4>(qkv, mask, seq_offsets, batch, seq_len, hidden, heads,
                                             ctx, stream);
    }
}

/* ---- fp32 path (head size 64): register-tiled online softmax on CUDA cores ----------------- */

#define ATTN_F32_HEAD 64
#define ATTN_F32_WARPS 8
#define ATTN_F32_WARP_ROWS 16                                  /* query rows per warp */
#define ATTN_F32_QROWS (ATTN_F32_WARPS * ATTN_F32_WARP_ROWS)   /* 128 query rows per block */
#define ATTN_F32_KEYS 64                                       /* keys per tile */
/* Row strides (floats) of the shared tiles. Every row starts 16-byte aligned (float4 access) and
 * each warp-wide access below touches each bank at most the minimum number of times:
 *   q_s rows ty + 4i (ty = 0..3):  (ty * 68) % 32 = 4 ty  -> 4 distinct float4 bank groups
 *   k_s rows tx + 8j (tx = 0..7):  (tx * 68) % 32 = 4 tx  -> 8 distinct float4 bank groups
 *   p_s element [ty + 4i][tx + 8j]: (ty * 72 + tx) % 32 = 8 ty + tx -> 32 distinct banks
 *   p_s float4 rows ty + 4i:       (ty * 72) % 32 = 8 ty  -> 4 distinct float4 bank groups
 *   v_s: each access is 8 consecutive float4 of one row. */
#define ATTN_F32_LDQ 68
#define ATTN_F32_LDK 68
#define ATTN_F32_LDV 64
#define ATTN_F32_LDP 72
/* dynamic shared memory, in floats: q_s [128][68] | k_s [64][68] | v_s [64][64] |
 * p_s [8 warps][16][72] | key_bias [64]  = 105,728 bytes (opt-in above 48 KB; 2 blocks per SM) */
#define ATTN_F32_Q_FLOATS (ATTN_F32_QROWS * ATTN_F32_LDQ)
#define ATTN_F32_K_FLOATS (ATTN_F32_KEYS * ATTN_F32_LDK)
#define ATTN_F32_V_FLOATS (ATTN_F32_KEYS * ATTN_F32_LDV)
#define ATTN_F32_P_FLOATS (ATTN_F32_WARPS * ATTN_F32_WARP_ROWS * ATTN_F32_LDP)
#define ATTN_F32_SMEM_BYTES                                                                    \
    ((ATTN_F32_Q_FLOATS + ATTN_F32_K_FLOATS + ATTN_F32_V_FLOATS + ATTN_F32_P_FLOATS +          \
      ATTN_F32_KEYS) * sizeof(float))

/* One block: 128 query rows of one (batch, head); 8 warps of 16 rows. Lane = 8 ty + tx
 * (ty = 0..3, tx = 0..7) owns, within its warp's rows, query rows ty + 4i (i = 0..3), and per
 * 64-key tile the scores of keys tx + 8j (j = 0..7): a 4 x 8 register tile. Its output registers
 * are the same 4 rows x dims tx*4 + e and 32 + tx*4 + e (e = 0..3). The 8 lanes that share a
 * ty hold the whole of those rows, so row max and row sum are 3 xor-shuffles.
 * Per key tile: stage K and V (zero past seq_len, key bias -inf there), S = Q K^T * scale + bias
 * in registers, online softmax in fp32 (running max per row; running sums kept per lane and added
 * across the 8 lanes at the end), P into the warp's slice of p_s, O = O * alpha + P V.
 * Key tiles whose keys are all padding are skipped when the sequence has a real token: their
 * probabilities underflow to exactly 0 (bias -10000) and a skipped tile before the first real
 * one would only have been rescaled by exp(-10000) = 0, so the result is unchanged. A sequence
 * without real tokens processes every tile (softmax over all keys, as the CPU twin does).
 * Needs qkv and ctx 16-byte aligned (the dispatcher checks); hidden = 64 * heads keeps every
 * row offset a multiple of 4 floats. */
__global__ void __launch_bounds__(ATTN_F32_WARPS * 32, 2)
attention_f32_head64_kernel(const float *qkv, const int32_t *mask, const int32_t *seq_offsets,
                            int seq_len, int hidden, float scale, float *ctx) {
    constexpr int D = ATTN_F32_HEAD;
    constexpr int KT = ATTN_F32_KEYS;
    constexpr int LDQ = ATTN_F32_LDQ, LDK = ATTN_F32_LDK, LDV = ATTN_F32_LDV, LDP = ATTN_F32_LDP;
    extern __shared__ float4 attn_f32_smem[];
    float *q_s = (float *)attn_f32_smem;          /* [128][LDQ] query rows of the block */
    float *k_s = q_s + ATTN_F32_Q_FLOATS;         /* [64][LDK]  key tile */
    float *v_s = k_s + ATTN_F32_K_FLOATS;         /* [64][LDV]  value tile */
    float *p_s = v_s + ATTN_F32_V_FLOATS;         /* [8][16][LDP] probabilities, per warp */
    float *key_bias = p_s + ATTN_F32_P_FLOATS;    /* [64] mask bias, -inf past seq_len */

    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int ty = lane >> 3, tx = lane & 7;
    const int head = blockIdx.y;
    const int query0 = blockIdx.x * ATTN_F32_QROWS;
    const int batch_row0 = attention_sequence(seq_offsets, seq_len);
    if (query0 >= seq_len) return; /* past a packed sequence's end */
    const size_t qkv_stride = (size_t)3 * hidden;
    const int head_col = head * D;
    const float4 zero4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    /* query rows -> q_s (zero past seq_len), one float4 per thread and step */
    for (int idx = tid; idx < ATTN_F32_QROWS * (D / 4); idx += blockDim.x) {
        const int r = idx / (D / 4), c4 = idx % (D / 4);
        const int query = query0 + r;
        float4 qv = zero4;
        if (query < seq_len)
            qv = *(const float4 *)(qkv + (batch_row0 + query) * qkv_stride + head_col + 4 * c4);
        *(float4 *)(q_s + r * LDQ + 4 * c4) = qv;
    }
    int any_real = 0;
    for (int key = tid; key < seq_len; key += blockDim.x)
        any_real |= key_mask(mask, batch_row0 + key) != 0;
    const int sequence_has_real = __syncthreads_or(any_real);

    const float *q_rows = q_s + (warp * ATTN_F32_WARP_ROWS + ty) * LDQ; /* + 4i rows: row i */
    float *p_rows = p_s + (warp * ATTN_F32_WARP_ROWS + ty) * LDP;      /* + 4i rows: row i */
    float out[4][8];  /* [row i][e + 4g]: output dim 32g + 4tx + e, unnormalised */
    float row_max[4], row_sum[4]; /* row_sum: this lane's share (its keys) */
#pragma unroll
    for (int i = 0; i < 4; i++) {
        row_max[i] = -INFINITY;
        row_sum[i] = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) out[i][e] = 0.0f;
    }

    for (int tile0 = 0; tile0 < seq_len; tile0 += KT) {
        /* barrier: every warp is done with the previous k_s / v_s / key_bias / p_s */
        int key_real = 0;
        if (tid < KT && tile0 + tid < seq_len)
            key_real = key_mask(mask, batch_row0 + tile0 + tid) != 0;
        const int tile_has_real = __syncthreads_or(key_real);
        if (sequence_has_real && !tile_has_real) continue; /* uniform across the block */

        for (int idx = tid; idx < KT * (D / 4); idx += blockDim.x) {
            const int j = idx / (D / 4), c4 = idx % (D / 4);
            const int key = tile0 + j;
            float4 kv = zero4, vv = zero4;
            if (key < seq_len) {
                const float *row = qkv + (batch_row0 + key) * qkv_stride + head_col + 4 * c4;
                kv = *(const float4 *)(row + hidden);
                vv = *(const float4 *)(row + 2 * (size_t)hidden);
            }
            *(float4 *)(k_s + j * LDK + 4 * c4) = kv;
            *(float4 *)(v_s + j * LDV + 4 * c4) = vv;
        }
        if (tid < KT) {
            const int key = tile0 + tid;
            key_bias[tid] =
                key < seq_len ? bq_mask_bias(key_mask(mask, batch_row0 + key)) : -INFINITY;
        }
        __syncthreads();

        /* scores of rows ty + 4i, keys tx + 8j */
        float score[4][8];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 8; j++) score[i][j] = 0.0f;
#pragma unroll 2 /* unrolled by 4 it spills (72 bytes) at the 128-register cap of 2 blocks per SM */
        for (int c = 0; c < D; c += 4) {
            float4 q[4];
#pragma unroll
            for (int i = 0; i < 4; i++) q[i] = *(const float4 *)(q_rows + 4 * i * LDQ + c);
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const float4 k = *(const float4 *)(k_s + (tx + 8 * j) * LDK + c);
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    float acc = score[i][j];
                    acc = fmaf(q[i].x, k.x, acc);
                    acc = fmaf(q[i].y, k.y, acc);
                    acc = fmaf(q[i].z, k.z, acc);
                    acc = fmaf(q[i].w, k.w, acc);
                    score[i][j] = acc;
                }
            }
        }

        /* online softmax per row; scores -> probabilities in place */
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float tile_max = -INFINITY;
#pragma unroll
            for (int j = 0; j < 8; j++) {
                score[i][j] = fmaf(score[i][j], scale, key_bias[tx + 8 * j]); /* -inf past end */
                tile_max = fmaxf(tile_max, score[i][j]);
            }
            tile_max = fmaxf(tile_max, __shfl_xor_sync(BQ_FULL_WARP, tile_max, 1));
            tile_max = fmaxf(tile_max, __shfl_xor_sync(BQ_FULL_WARP, tile_max, 2));
            tile_max = fmaxf(tile_max, __shfl_xor_sync(BQ_FULL_WARP, tile_max, 4));
            const float new_max = fmaxf(row_max[i], tile_max); /* finite: key tile0 exists */
            const float alpha = expf(row_max[i] - new_max);    /* 0 on the first tile */
            row_max[i] = new_max;
            float tile_sum = 0.0f;
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const float p = expf(score[i][j] - new_max);
                p_rows[4 * i * LDP + tx + 8 * j] = p;
                tile_sum += p;
            }
            row_sum[i] = row_sum[i] * alpha + tile_sum;
#pragma unroll
            for (int e = 0; e < 8; e++) out[i][e] *= alpha;
        }
        __syncwarp(); /* the warp's p_s rows are complete */

        /* out[rows ty + 4i][dims] += P[rows][64 keys] . V[64 keys][dims] */
#pragma unroll 2
        for (int k = 0; k < KT; k += 4) {
            float4 p[4];
#pragma unroll
            for (int i = 0; i < 4; i++) p[i] = *(const float4 *)(p_rows + 4 * i * LDP + k);
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                const float4 v_lo = *(const float4 *)(v_s + (k + kk) * LDV + 4 * tx);
                const float4 v_hi = *(const float4 *)(v_s + (k + kk) * LDV + 32 + 4 * tx);
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const float pk = kk == 0 ? p[i].x : kk == 1 ? p[i].y : kk == 2 ? p[i].z : p[i].w;
                    out[i][0] = fmaf(pk, v_lo.x, out[i][0]);
                    out[i][1] = fmaf(pk, v_lo.y, out[i][1]);
                    out[i][2] = fmaf(pk, v_lo.z, out[i][2]);
                    out[i][3] = fmaf(pk, v_lo.w, out[i][3]);
                    out[i][4] = fmaf(pk, v_hi.x, out[i][4]);
                    out[i][5] = fmaf(pk, v_hi.y, out[i][5]);
                    out[i][6] = fmaf(pk, v_hi.z, out[i][6]);
                    out[i][7] = fmaf(pk, v_hi.w, out[i][7]);
                }
            }
        }
    }

#pragma unroll
    for (int i = 0; i < 4; i++) {
        float sum = row_sum[i];
        sum += __shfl_xor_sync(BQ_FULL_WARP, sum, 1);
        sum += __shfl_xor_sync(BQ_FULL_WARP, sum, 2);
        sum += __shfl_xor_sync(BQ_FULL_WARP, sum, 4);
        const int query = query0 + warp * ATTN_F32_WARP_ROWS + ty + 4 * i;
        if (query < seq_len) {
            const float inv_sum = 1.0f / sum; /* >= 1: the row maximum contributes exp(0) */
            float *out_row = ctx + (batch_row0 + query) * (size_t)hidden + head_col + 4 * tx;
            *(float4 *)out_row = make_float4(out[i][0] * inv_sum, out[i][1] * inv_sum,
                                             out[i][2] * inv_sum, out[i][3] * inv_sum);
            *(float4 *)(out_row + 32) = make_float4(out[i][4] * inv_sum, out[i][5] * inv_sum,
                                                    out[i][6] * inv_sum, out[i][7] * inv_sum);
        }
    }
}

static cudaError_t launch_attention_f32_head64(const void *qkv, const int32_t *mask,
                                               const int32_t *seq_offsets, int batch, int seq_len,
                                               int hidden, int heads, void *ctx,
                                               cudaStream_t stream) {
    /* 103 KB of dynamic shared memory needs the opt-in (sm_90 allows up to 227 KB per block) */
    cudaError_t rc = cudaFuncSetAttribute(attention_f32_head64_kernel,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          (int)ATTN_F32_SMEM_BYTES);
    if (rc != cudaSuccess) return rc;
    const dim3 grid = attention_grid(seq_len, ATTN_F32_QROWS, heads, batch);
    attention_f32_head64_kernel<<<grid, ATTN_F32_WARPS * 32, ATTN_F32_SMEM_BYTES, stream>>>(
        (const float *)qkv, mask, seq_offsets, seq_len, hidden, 1.0f / sqrtf((float)ATTN_F32_HEAD),
        (float *)ctx);
    return cudaGetLastError();
}


/* ---- entry points --------------------------------------------------------------------------- */

/* rows: the mask, or for packed sequences the offsets (batch then counts sequences, seq_len is
 * the longest). */
static bool attention_args_ok(const void *qkv, const int32_t *rows, int batch, int seq_len,
                              int hidden, int heads, const void *ctx) {
    if (!qkv || !rows || !ctx) return false;
    if (batch <= 0 || seq_len <= 0 || hidden <= 0 || heads <= 0) return false;
    if (hidden % heads != 0 || hidden / heads > ATTN_MAX_HEAD) return false;
    if (heads > 65535 || batch > 65535) return false; /* grid y / z limits */
    return true;
}

/* A padded batch also needs its rows to fit the kernels' int row index (packed offsets are int32
 * already). */
static bool padded_args_ok(const void *qkv, const int32_t *mask, int batch, int seq_len,
                           int hidden, int heads, const void *ctx) {
    return attention_args_ok(qkv, mask, batch, seq_len, hidden, heads, ctx) &&
           (long long)batch * seq_len <= 0x7fffffffLL;
}

/* BQ_ATTENTION_KERNEL=wmma: 16-bit attention at head size 64 on the WMMA kernel instead of the
 * mma.sync one (a diagnostic switch: the device run falls back to it when the fast path fails). */
static bool mma_path_allowed() {
    const char *v = getenv("BQ_ATTENTION_KERNEL");
    return !(v && strcmp(v, "wmma") == 0);
}

/* The 16-bit tensor-core path, where `tiling` chooses among its tilings. */
static bool mma_path_applies(bq_cuda_dtype dt, int hidden, int heads) {
    const bool half_dtype = dt == BQ_CUDA_F16 || dt == BQ_CUDA_BF16;
    return half_dtype && heads > 0 && hidden % heads == 0 && hidden / heads == ATTN_MMA_HEAD &&
           hidden % 8 == 0 && mma_path_allowed();
}

/* The dispatch behind the entry points, arguments already checked: either a mask (seq_offsets
 * NULL: batch padded sequences of seq_len rows) or seq_offsets (mask NULL: batch packed
 * sequences, seq_len the longest). */
static cudaError_t attention_generic(const void *qkv, const int32_t *mask,
                                     const int32_t *seq_offsets, int batch, int seq_len, int hidden,
                                     int heads, void *ctx, bq_cuda_dtype dt, cudaStream_t stream) {
    switch (dt) {
    case BQ_CUDA_F32:
        return launch_attention_generic<float>(qkv, mask, seq_offsets, batch, seq_len, hidden,
                                               heads, ctx, stream);
    case BQ_CUDA_F16:
        return launch_attention_generic<__half>(qkv, mask, seq_offsets, batch, seq_len, hidden,
                                                heads, ctx, stream);
    case BQ_CUDA_BF16:
        return launch_attention_generic<__nv_bfloat16>(qkv, mask, seq_offsets, batch, seq_len,
                                                       hidden, heads, ctx, stream);
    }
    return cudaErrorInvalidValue;
}

static cudaError_t attention_wmma(const void *qkv, const int32_t *mask, const int32_t *seq_offsets,
                                  int batch, int seq_len, int hidden, int heads, void *ctx,
                                  bq_cuda_dtype dt, cudaStream_t stream) {
    const bool tensor_core_shape = hidden / heads == ATTN_WMMA_HEAD;
    if (tensor_core_shape && dt == BQ_CUDA_F16)
        return launch_attention_wmma<__half>(qkv, mask, seq_offsets, batch, seq_len, hidden, heads,
                                             ctx, stream);
    if (tensor_core_shape && dt == BQ_CUDA_BF16)
        return launch_attention_wmma<__nv_bfloat16>(qkv, mask, seq_offsets, batch, seq_len, hidden,
                                                    heads, ctx, stream);
    return attention_generic(qkv, mask, seq_offsets, batch, seq_len, hidden, heads, ctx, dt,
                             stream);
}

static cudaError_t attention_dispatch(const void *qkv, const int32_t *mask,
                                      const int32_t *seq_offsets, int batch, int seq_len,
                                      int hidden, int heads, void *ctx, bq_cuda_dtype dt,
                                      bq_attention_tiling tiling, cudaStream_t stream) {
    if ((int)tiling < 0 || (int)tiling >= BQ_ATTENTION_TILINGS) return cudaErrorInvalidValue;
    if (dt == BQ_CUDA_F32 && hidden / heads == ATTN_F32_HEAD && bq_aligned16(qkv) &&
        bq_aligned16(ctx))
        return launch_attention_f32_head64(qkv, mask, seq_offsets, batch, seq_len, hidden, heads,
                                           ctx, stream);
    if (mma_path_applies(dt, hidden, heads) && bq_aligned16(qkv) && ((uintptr_t)ctx & 3u) == 0) {
        if (tiling == BQ_ATTENTION_WGMMA128 || tiling == BQ_ATTENTION_WGMMA128_OVERLAP)
            return bq_attention_wgmma_launch(qkv, mask, seq_offsets, batch, seq_len, hidden, heads,
                                             ctx, dt, tiling == BQ_ATTENTION_WGMMA128_OVERLAP,
                                             stream);
        if (dt == BQ_CUDA_F16)
            return launch_attention_mma_head64<__half>(qkv, mask, seq_offsets, batch, seq_len,
                                                       hidden, heads, ctx, tiling, stream);
        return launch_attention_mma_head64<__nv_bfloat16>(qkv, mask, seq_offsets, batch, seq_len,
                                                          hidden, heads, ctx, tiling, stream);
    }
    return attention_wmma(qkv, mask, seq_offsets, batch, seq_len, hidden, heads, ctx, dt, stream);
}

extern "C" int bq_cuda_attention_has_tilings(bq_cuda_dtype dt, int hidden, int heads) {
    return mma_path_applies(dt, hidden, heads) ? 1 : 0;
}

/* BQ_ATTENTION_KERNEL=mma: the mma.sync tilings only, no wgmma (a diagnostic switch, for a card
 * where the wgmma kernel misbehaves). */
static bool wgmma_allowed() {
    const char *v = getenv("BQ_ATTENTION_KERNEL");
    return !(v && strcmp(v, "mma") == 0);
}

extern "C" int bq_cuda_attention_tiling_available(bq_attention_tiling tiling) {
    if ((int)tiling < 0 || (int)tiling >= BQ_ATTENTION_TILINGS) return 0;
    if (tiling == BQ_ATTENTION_WGMMA128 || tiling == BQ_ATTENTION_WGMMA128_OVERLAP)
        return bq_attention_wgmma_built() && bq_cuda_device_is_sm90() && wgmma_allowed();
    return 1;
}

extern "C" cudaError_t bq_cuda_attention(const void *qkv, const int32_t *mask, int batch,
                                         int seq_len, int hidden, int heads, void *ctx,
                                         bq_cuda_dtype dt, bq_attention_tiling tiling,
                                         cudaStream_t stream) {
    if (!padded_args_ok(qkv, mask, batch, seq_len, hidden, heads, ctx))
        return cudaErrorInvalidValue;
    return attention_dispatch(qkv, mask, NULL, batch, seq_len, hidden, heads, ctx, dt, tiling,
                              stream);
}

extern "C" cudaError_t bq_cuda_attention_varlen(const void *qkv, const int32_t *seq_offsets,
                                                int n_seqs, int max_len, int hidden, int heads,
                                                void *ctx, bq_cuda_dtype dt,
                                                bq_attention_tiling tiling, cudaStream_t stream) {
    if (!attention_args_ok(qkv, seq_offsets, n_seqs, max_len, hidden, heads, ctx))
        return cudaErrorInvalidValue;
    return attention_dispatch(qkv, NULL, seq_offsets, n_seqs, max_len, hidden, heads, ctx, dt,
                              tiling, stream);
}

extern "C" cudaError_t bq_cuda_attention_wmma(const void *qkv, const int32_t *mask, int batch,
                                              int seq_len, int hidden, int heads, void *ctx,
                                              bq_cuda_dtype dt, cudaStream_t stream) {
    if (!padded_args_ok(qkv, mask, batch, seq_len, hidden, heads, ctx))
        return cudaErrorInvalidValue;
    return attention_wmma(qkv, mask, NULL, batch, seq_len, hidden, heads, ctx, dt, stream);
}

extern "C" cudaError_t bq_cuda_attention_generic(const void *qkv, const int32_t *mask, int batch,
                                                 int seq_len, int hidden, int heads, void *ctx,
                                                 bq_cuda_dtype dt, cudaStream_t stream) {
    if (!padded_args_ok(qkv, mask, batch, seq_len, hidden, heads, ctx))
        return cudaErrorInvalidValue;
    return attention_generic(qkv, mask, NULL, batch, seq_len, hidden, heads, ctx, dt, stream);
}
