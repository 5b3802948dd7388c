/* attention_wgmma.cu - fused attention on Hopper's warpgroup MMA (fp16/bf16, head size 64).
 *
 * The mma.sync kernels of attention.cu reach about 200 TFLOP/s at batch 128 on an H200 (0.388 ms
 * a layer for 77 GFLOP, run cf3337d): mma.sync issues a 16 x 8 x 16 tile per warp instruction,
 * and Hopper's tensor cores are fed at full rate only by wgmma, which multiplies 64 x N x 16 per
 * warpgroup instruction straight from shared memory. This kernel is FlashAttention-2's algorithm
 * (online softmax, scores and output in registers) on wgmma:
 *   - a block is 2 warpgroups of 64 query rows each (wgmma's M), 256 threads, one (batch, head);
 *   - per 64-key tile, S (64 x 64) = Q K^T by 4 wgmma, Q from registers (loaded once by
 *     ldmatrix: at N = 64 a wgmma reading both operands from shared memory would need all of its
 *     128 bytes a clock) and K from shared memory, then
 *     the online softmax in registers (the accumulator layout is mma.sync's C layout per warp, so
 *     attention_common.cuh's softmax serves both kernels), then O += P V by 4 wgmma with P from
 *     registers (the C layout of two 8-key n-tiles is the A layout of one 16-key step) and V, read
 *     transposed (MN-major), from shared memory;
 *   - K and V tiles double-buffered by cp.async as in the mma.sync kernel, tiles of padding only
 *     skipped, the query rows loaded once.
 * Shared tiles use the no-swizzle core-matrix layout (tensor_core.cuh): simple to address and
 * conflict-free for wgmma's reads, ldmatrix and our 16-byte copies. 125 registers (ptxas, sm_90a),
 * two blocks an SM. Each wgmma group is waited for at once
 * (no overlap of one tile's softmax with the next tile's MMA inside a warpgroup); the two
 * warpgroups of a block and two blocks an SM overlap each other instead.
 *
 * Built only for sm_90a (CMake defines BQ_WGMMA_ATTENTION for this file there); elsewhere the
 * entry points say "not supported". */
#include <string.h>

#include "attention_wgmma.cuh"

#ifdef BQ_WGMMA_ATTENTION

#include "attention_common.cuh"
#include "kernel_common.cuh"
#include "tensor_core.cuh"

#define WG_THREADS 128            /* a warpgroup */
#define WG_GROUPS 2               /* warpgroups a block */
#define WG_QROWS (64 * WG_GROUPS) /* query rows a block: 64 a warpgroup (wgmma's M) */
#define WG_ROW_BYTES 128          /* one row of a tile: 64 dims of 2 bytes */
#define WG_CORE_BYTES 128         /* a core matrix: 8 rows of 16 bytes */
#define WG_GROUP_BYTES 1024       /* 8 rows of a tile: 8 core matrices, one per 16-byte chunk */

/* Byte offset of 16-byte chunk `chunk` (dims 8 chunk .. +7) of row `row` in a tile: 8-row groups
 * of 1 KB, chunk-major inside, so each core matrix (8 rows of one chunk) is 128 contiguous bytes.
 * Along the head dims (K-major: Q as A, K as B of S = Q K^T) the descriptor takes LBO 128 (next
 * chunk) and SBO 1024 (next 8 rows); along the keys (V as MN-major B of P V, K = keys) LBO 1024
 * (next 8 keys) and SBO 128 (next 8 dims). */
__device__ __forceinline__ int wg_tile_offset(int row, int chunk) {
    return (row >> 3) * WG_GROUP_BYTES + chunk * WG_CORE_BYTES + (row & 7) * 16;
}

/* Row and chunk of copy index c of a tile (rows x 8 chunks): eight consecutive c fill one core
 * matrix, so a warp's 16-byte cp.async writes 128 contiguous bytes a phase. */
__device__ __forceinline__ void wg_copy_index(int c, int &row, int &chunk) {
    row = (c >> 6) * 8 + (c & 7);
    chunk = (c >> 3) & 7;
}

/* dynamic shared memory: q [128 rows] (16 KB), k [2 buffers][64 keys] and v the same (16 KB each) */
constexpr size_t wg_smem_bytes() {
    return (size_t)(WG_QROWS + 4 * ATTN_MMA_KEYS) * WG_ROW_BYTES;
}

template <typename T>
__global__ void __launch_bounds__(WG_GROUPS *WG_THREADS, 2)
attention_wgmma_kernel(const T *qkv, const int32_t *mask, const int32_t *seq_offsets, int seq_len,
                       int hidden, float scale, T *ctx) {
    constexpr int D = ATTN_MMA_HEAD, KT = ATTN_MMA_KEYS;
    constexpr int CHUNKS = D * 2 / 16;        /* 16-byte chunks a row */
    constexpr int TILE_BYTES = KT * WG_ROW_BYTES; /* one K or V tile, 8 KB */
    constexpr float LOG2E = 1.4426950408889634f;
    static_assert(D * 2 == WG_ROW_BYTES, "a tile row is one head's 64 dims");
    extern __shared__ __align__(128) unsigned char wg_smem[];
    unsigned char *const q_s = wg_smem;
    unsigned char *const k_s = wg_smem + WG_QROWS * WG_ROW_BYTES;
    unsigned char *const v_s = k_s + 2 * TILE_BYTES;
    __shared__ float key_bias[2][KT]; /* mask bias * log2(e), -inf past the end */
    __shared__ uint64_t live_words[2];

    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int group = warp / 4; /* warpgroup: query rows 64 group .. +63 of the block */
    const int head = blockIdx.y;
    const int query0 = blockIdx.x * WG_QROWS;
    const int batch_row0 = attention_sequence(seq_offsets, seq_len);
    if (query0 >= seq_len) return; /* past a packed sequence's end */
    const size_t qkv_stride = (size_t)3 * hidden;
    const int head_col = head * D;

    /* the block's query rows (zero past seq_len), first in cp.async group 0 so that they load
     * while the mask is scanned */
    for (int c = tid; c < WG_QROWS * CHUNKS; c += blockDim.x) {
        int r, part;
        wg_copy_index(c, r, part);
        const int query = query0 + r;
        const bool valid = query < seq_len;
        bq_cp_async_16(q_s + wg_tile_offset(r, part),
                       qkv + (batch_row0 + (valid ? query : 0)) * qkv_stride + head_col + part * 8,
                       valid);
    }
    const attention_key_tiles key_tiles =
        attention_scan_key_tiles(mask, batch_row0, seq_len, live_words);

    /* K and V rows of key tile t into buffer b (zero past seq_len) by cp.async, their biases by
     * plain stores; both published by the barrier after the matching wait */
    auto stage_tile = [&](int t, int b) {
        unsigned char *k_dst = k_s + b * TILE_BYTES, *v_dst = v_s + b * TILE_BYTES;
        for (int c = tid; c < KT * CHUNKS; c += blockDim.x) {
            int j, part;
            wg_copy_index(c, j, part);
            const int key = t * KT + j;
            const bool valid = key < seq_len;
            const T *row = qkv + (batch_row0 + (valid ? key : 0)) * qkv_stride + head_col + part * 8;
            bq_cp_async_16(k_dst + wg_tile_offset(j, part), row + hidden, valid);
            bq_cp_async_16(v_dst + wg_tile_offset(j, part), row + 2 * (size_t)hidden, valid);
        }
        if (tid < KT) {
            const int key = t * KT + tid;
            key_bias[b][tid] = key < seq_len
                                   ? bq_mask_bias(key_mask(mask, batch_row0 + key)) * LOG2E
                                   : -INFINITY;
        }
    };

    int tile = key_tiles.next_live(-1); /* tile 0 unless skipped; one always exists */
    int buf = 0;
    bool first = true;
    stage_tile(tile, buf);
    bq_cp_async_commit();

    float o[D / 8][4]; /* this thread's share of the warpgroup's 64 x 64 output (C layout) */
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f}; /* rows g, g + 8 */
#pragma unroll
    for (int n = 0; n < D / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    const float scale_log2 = scale * LOG2E;
    uint32_t q_frag[D / 16][4]; /* this warp's 16 query rows as wgmma A fragments, per k-step */

    while (tile < key_tiles.n) {
        const int next = key_tiles.next_live(tile);
        if (next < key_tiles.n) {
            stage_tile(next, buf ^ 1); /* its buffer was released by the last barrier */
            bq_cp_async_commit();
            bq_cp_async_wait<1>();
        } else {
            bq_cp_async_wait<0>();
        }
        bq_fence_proxy_async(); /* this thread's copies, visible to wgmma's (async proxy) reads */
        __syncthreads();        /* everyone's: this tile (and the first time the queries) ready */
        const unsigned char *const k_tile = k_s + buf * TILE_BYTES;
        const unsigned char *const v_tile = v_s + buf * TILE_BYTES;

        if (first) { /* the queries, in registers from now on: wgmma then reads only K from
                      * shared memory (at N = 64 reading A too would take all of its bandwidth) */
            const int ld_row = lane & 7, ld_matrix = lane >> 3;
            const int row = group * 64 + (warp % 4) * 16 + ld_row + 8 * (ld_matrix & 1);
#pragma unroll
            for (int ks = 0; ks < D / 16; ks++)
                bq_ldmatrix_x4(q_frag[ks], q_s + wg_tile_offset(row, 2 * ks + (ld_matrix >> 1)));
            first = false;
        }

        /* S = Q K^T: k-step ks = dims 16 ks .. +15 = chunks 2 ks, 2 ks + 1 of K */
        float s[KT / 8][4];
#pragma unroll
        for (int n = 0; n < KT / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
        /* every register the MMAs use written before the fence (wgmma.fence's rule) */
        bq_wgmma_fence_operands(s);
#pragma unroll
        for (int ks = 0; ks < D / 16; ks++) bq_wgmma_fence_operands(q_frag[ks]);
        bq_wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < D / 16; ks++)
            bq_wgmma_64x64x16_rs<T, 0>(
                s, q_frag[ks],
                bq_wgmma_desc(k_tile + 2 * ks * WG_CORE_BYTES, WG_CORE_BYTES, WG_GROUP_BYTES),
                ks > 0);
        bq_wgmma_commit();
        bq_wgmma_wait<0>();
        bq_wgmma_fence_operands(s);
#pragma unroll
        for (int ks = 0; ks < D / 16; ks++) bq_wgmma_fence_operands(q_frag[ks]);

        /* online softmax in log2 units, scores -> probabilities in place; o rescaled */
        mma_online_softmax(s, key_bias[buf], scale_log2, lane & 3, row_max, row_sum, o);

        /* O += P V: k-step j = keys 16 j .. +15 = n-tiles 2 j, 2 j + 1 of S as an A fragment;
         * V's rows 16 j .. +15 are 8-row groups 2 j, 2 j + 1 */
        uint32_t p[KT / 16][4];
#pragma unroll
        for (int j = 0; j < KT / 16; j++) {
            p[j][0] = bq_pack2<T>(s[2 * j][0], s[2 * j][1]);
            p[j][1] = bq_pack2<T>(s[2 * j][2], s[2 * j][3]);
            p[j][2] = bq_pack2<T>(s[2 * j + 1][0], s[2 * j + 1][1]);
            p[j][3] = bq_pack2<T>(s[2 * j + 1][2], s[2 * j + 1][3]);
        }
        bq_wgmma_fence_operands(o);
#pragma unroll
        for (int j = 0; j < KT / 16; j++) bq_wgmma_fence_operands(p[j]);
        bq_wgmma_fence();
#pragma unroll
        for (int j = 0; j < KT / 16; j++)
            bq_wgmma_64x64x16_rs<T, 1>(
                o, p[j], bq_wgmma_desc(v_tile + 2 * j * WG_GROUP_BYTES, WG_GROUP_BYTES, WG_CORE_BYTES),
                1);
        bq_wgmma_commit();
        bq_wgmma_wait<0>();
        bq_wgmma_fence_operands(o);
#pragma unroll
        for (int j = 0; j < KT / 16; j++) bq_wgmma_fence_operands(p[j]);
        __syncthreads(); /* every warpgroup done with this buffer before it is refilled */
        buf ^= 1;
        tile = next;
    }

    attention_store_m_tile<T>(ctx, batch_row0, query0 + group * 64 + (warp % 4) * 16, seq_len,
                              hidden, head_col, o, row_sum);
}

template <typename T>
static cudaError_t launch_attention_wgmma(const void *qkv, const int32_t *mask,
                                          const int32_t *seq_offsets, int batch, int seq_len,
                                          int hidden, int heads, void *ctx, cudaStream_t stream) {
    constexpr size_t smem = wg_smem_bytes();
    /* 48 KB dynamic plus the static biases pass the default 48 KB a block: opt in */
    const cudaError_t rc = cudaFuncSetAttribute(
        attention_wgmma_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (rc != cudaSuccess) return rc;
    const dim3 grid = attention_grid(seq_len, WG_QROWS, heads, batch);
    attention_wgmma_kernel<T><<<grid, WG_GROUPS * WG_THREADS, smem, stream>>>(
        (const T *)qkv, mask, seq_offsets, seq_len, hidden, 1.0f / sqrtf((float)ATTN_MMA_HEAD),
        (T *)ctx);
    return cudaGetLastError();
}

extern "C" int bq_attention_wgmma_built(void) { return 1; }

extern "C" cudaError_t bq_attention_wgmma_launch(const void *qkv, const int32_t *mask,
                                                 const int32_t *seq_offsets, int batch, int seq_len,
                                                 int hidden, int heads, void *ctx, bq_cuda_dtype dt,
                                                 cudaStream_t stream) {
    if (!bq_cuda_device_is_sm90()) return cudaErrorNotSupported;
    if (heads <= 0 || hidden != heads * ATTN_MMA_HEAD) return cudaErrorInvalidValue;
    if (dt == BQ_CUDA_F16)
        return launch_attention_wgmma<__half>(qkv, mask, seq_offsets, batch, seq_len, hidden,
                                              heads, ctx, stream);
    if (dt == BQ_CUDA_BF16)
        return launch_attention_wgmma<__nv_bfloat16>(qkv, mask, seq_offsets, batch, seq_len,
                                                     hidden, heads, ctx, stream);
    return cudaErrorInvalidValue;
}

#else /* not built for sm_90a */

extern "C" int bq_attention_wgmma_built(void) { return 0; }

extern "C" cudaError_t bq_attention_wgmma_launch(const void *qkv, const int32_t *mask,
                                                 const int32_t *seq_offsets, int batch, int seq_len,
                                                 int hidden, int heads, void *ctx, bq_cuda_dtype dt,
                                                 cudaStream_t stream) {
    (void)qkv, (void)mask, (void)seq_offsets, (void)batch, (void)seq_len, (void)hidden;
    (void)heads, (void)ctx, (void)dt, (void)stream;
    return cudaErrorNotSupported;
}

#endif
