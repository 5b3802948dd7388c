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
 * conflict-free for wgmma's reads, ldmatrix and our 16-byte copies.
 * Two schedules, two tilings the engine times against each other:
 *   - plain (BQ_ATTENTION_WGMMA128): each wgmma group is waited for at once; the two warpgroups
 *     of a block and the two blocks an SM overlap one another's softmax and MMAs. 125 registers
 *     (ptxas, sm_90a), 48 KB of tiles;
 *   - overlapped (BQ_ATTENTION_WGMMA128_OVERLAP, FlashAttention-3's intra-warpgroup overlap): the
 *     next tile's S is issued with this tile's P V, the next tile's softmax is placed before P V's
 *     wait, and only O's rescale comes after it; K/V in 3 buffers (64 KB), so the tile after next
 *     loads during a step. 128 registers, no ptxas serialization warning (a wgmma issued under a
 *     condition inside the loop, or one fence for both groups, drew C7514). In the SASS only the
 *     softmax's scaling and row max stay before the wait (see the kernel).
 *   Both keep two blocks an SM (__launch_bounds__(256, 2): 128 registers at most).
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

/* dynamic shared memory: q [128 rows] (16 KB), then k [STAGES buffers][64 keys] and v the same
 * (8 KB a buffer each) */
template <int STAGES> constexpr size_t wg_smem_bytes() {
    return (size_t)(WG_QROWS + 2 * STAGES * ATTN_MMA_KEYS) * WG_ROW_BYTES;
}

constexpr int WG_TILE_BYTES = ATTN_MMA_KEYS * WG_ROW_BYTES; /* one K or V tile, 8 KB */
constexpr float WG_LOG2E = 1.4426950408889634f;

/* The block's query rows (zero past seq_len) into q_s by cp.async; block-strided. */
template <typename T>
__device__ __forceinline__ void wg_stage_queries(const T *qkv, size_t batch_row0, size_t qkv_stride,
                                                 int head_col, int seq_len, int query0,
                                                 unsigned char *q_s) {
    for (int c = threadIdx.x; c < WG_QROWS * 8; c += blockDim.x) {
        int r, part;
        wg_copy_index(c, r, part);
        const int query = query0 + r;
        const bool valid = query < seq_len;
        bq_cp_async_16(q_s + wg_tile_offset(r, part),
                       qkv + (batch_row0 + (valid ? query : 0)) * qkv_stride + head_col + part * 8,
                       valid);
    }
}

/* Key tile t's K and V rows (zero past seq_len) into k_dst / v_dst by cp.async, its mask biases
 * (times log2 e; -inf past the end) into bias by plain stores; block-strided. Both are published
 * by the barrier after the matching cp.async wait. */
template <typename T>
__device__ __forceinline__ void wg_stage_tile(const T *qkv, const int32_t *mask, size_t batch_row0,
                                              size_t qkv_stride, int hidden, int head_col,
                                              int seq_len, int t, unsigned char *k_dst,
                                              unsigned char *v_dst, float *bias) {
    constexpr int KT = ATTN_MMA_KEYS;
    for (int c = threadIdx.x; c < KT * 8; c += blockDim.x) {
        int j, part;
        wg_copy_index(c, j, part);
        const int key = t * KT + j;
        const bool valid = key < seq_len;
        const T *row = qkv + (batch_row0 + (valid ? key : 0)) * qkv_stride + head_col + part * 8;
        bq_cp_async_16(k_dst + wg_tile_offset(j, part), row + hidden, valid);
        bq_cp_async_16(v_dst + wg_tile_offset(j, part), row + 2 * (size_t)hidden, valid);
    }
    if (threadIdx.x < KT) {
        const int key = t * KT + threadIdx.x;
        bias[threadIdx.x] =
            key < seq_len ? bq_mask_bias(key_mask(mask, batch_row0 + key)) * WG_LOG2E : -INFINITY;
    }
}

/* This warp's 16 query rows as wgmma A fragments, one per 16-dim k-step (ldmatrix from the
 * blocked layout: matrix i = rows + 8 (i & 1), chunk 2 ks + (i >> 1)). */
__device__ __forceinline__ void wg_query_fragments(uint32_t (&q_frag)[ATTN_MMA_HEAD / 16][4],
                                                   const unsigned char *q_s) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int ld_row = lane & 7, ld_matrix = lane >> 3;
    const int row = (warp / 4) * 64 + (warp % 4) * 16 + ld_row + 8 * (ld_matrix & 1);
#pragma unroll
    for (int ks = 0; ks < ATTN_MMA_HEAD / 16; ks++)
        bq_ldmatrix_x4(q_frag[ks], q_s + wg_tile_offset(row, 2 * ks + (ld_matrix >> 1)));
}

/* Pin 4 A fragments across the asynchronous MMA (bq_wgmma_fence_operands on each). */
__device__ __forceinline__ void wg_fence_fragments(uint32_t (&f)[4][4]) {
#pragma unroll
    for (int i = 0; i < 4; i++) bq_wgmma_fence_operands(f[i]);
}

/* Issue the 4 wgmma of a 64-deep product: d (+)= sum over k-steps k of a[k] . B_k, B_k at
 * tile + k * step_bytes with the given LBO / SBO (TransB: B MN-major). accumulate_first 0: the
 * first step overwrites d (wgmma's scale-d). The caller fences before and commits after. */
template <typename T, int TransB>
__device__ __forceinline__ void wg_issue_k64(float (&d)[8][4], uint32_t (&a)[4][4],
                                             const unsigned char *tile, int step_bytes,
                                             uint32_t lbo, uint32_t sbo, int accumulate_first) {
#pragma unroll
    for (int k = 0; k < 4; k++)
        bq_wgmma_64x64x16_rs<T, TransB>(d, a[k], bq_wgmma_desc(tile + k * step_bytes, lbo, sbo),
                                        k > 0 || accumulate_first);
}

/* S = Q K^T: k-step ks = dims 16 ks .. +15 = chunks 2 ks, 2 ks + 1 of K (K-major). */
template <typename T>
__device__ __forceinline__ void wg_issue_scores(float (&s)[ATTN_MMA_KEYS / 8][4],
                                                uint32_t (&q_frag)[ATTN_MMA_HEAD / 16][4],
                                                const unsigned char *k_tile) {
    wg_issue_k64<T, 0>(s, q_frag, k_tile, 2 * WG_CORE_BYTES, WG_CORE_BYTES, WG_GROUP_BYTES, 0);
}

/* O += P V: k-step j = keys 16 j .. +15, V's 8-row groups 2 j, 2 j + 1, read transposed. */
template <typename T>
__device__ __forceinline__ void wg_issue_pv(float (&o)[ATTN_MMA_HEAD / 8][4],
                                            uint32_t (&p)[ATTN_MMA_KEYS / 16][4],
                                            const unsigned char *v_tile) {
    wg_issue_k64<T, 1>(o, p, v_tile, 2 * WG_GROUP_BYTES, WG_GROUP_BYTES, WG_CORE_BYTES, 1);
}

/* The probabilities as A fragments: k-step j = n-tiles 2 j, 2 j + 1 of S (the C layout of two
 * neighbouring n-tiles is the A layout of one k-step), rounded to T. */
template <typename T>
__device__ __forceinline__ void wg_pack_probabilities(uint32_t (&p)[ATTN_MMA_KEYS / 16][4],
                                                      const float (&s)[ATTN_MMA_KEYS / 8][4]) {
#pragma unroll
    for (int j = 0; j < ATTN_MMA_KEYS / 16; j++) {
        p[j][0] = bq_pack2<T>(s[2 * j][0], s[2 * j][1]);
        p[j][1] = bq_pack2<T>(s[2 * j][2], s[2 * j][3]);
        p[j][2] = bq_pack2<T>(s[2 * j + 1][0], s[2 * j + 1][1]);
        p[j][3] = bq_pack2<T>(s[2 * j + 1][2], s[2 * j + 1][3]);
    }
}

/* One block: 2 warpgroups of 64 query rows of one (batch, head). OVERLAP false (2 K/V buffers):
 * per live key tile, S = Q K^T, wait, softmax, O += P V, wait. OVERLAP true (3 buffers,
 * FlashAttention-3's intra-warpgroup overlap): the next tile's S is issued together with this
 * tile's P V, and the next tile's softmax is written to run while P V is in flight; only the
 * rescale of O waits for it. ptxas (CUDA 13.0) keeps only the scaling and the row max there
 * (about 50 FFMA / FMNMX) and sinks the shuffles and exps below P V's wait; neither a second
 * probability register set (no copy: unrolled by two) nor one block an SM changed that, so the
 * device's timing, not the schedule on paper, says whether this tiling earns its place.
 * Registers (ptxas, sm_90a): 125 and 128, two blocks an SM. */
template <typename T, bool OVERLAP>
__global__ void __launch_bounds__(WG_GROUPS *WG_THREADS, 2)
attention_wgmma_kernel(const T *qkv, const int32_t *mask, const int32_t *seq_offsets, int seq_len,
                       int hidden, float scale, T *ctx) {
    constexpr int D = ATTN_MMA_HEAD, KT = ATTN_MMA_KEYS;
    constexpr int STAGES = OVERLAP ? 3 : 2;
    static_assert(D * 2 == WG_ROW_BYTES, "a tile row is one head's 64 dims");
    extern __shared__ __align__(128) unsigned char wg_smem[];
    unsigned char *const q_s = wg_smem;
    unsigned char *const k_s = wg_smem + WG_QROWS * WG_ROW_BYTES; /* [STAGES][64 keys] */
    unsigned char *const v_s = k_s + STAGES * WG_TILE_BYTES;
    __shared__ float key_bias[STAGES][KT]; /* mask bias * log2(e), -inf past the end */
    __shared__ uint64_t live_words[2];

    const int warp = threadIdx.x >> 5;
    const int quad_col = threadIdx.x & 3;
    const int head = blockIdx.y;
    const int query0 = blockIdx.x * WG_QROWS;
    const int batch_row0 = attention_sequence(seq_offsets, seq_len);
    if (query0 >= seq_len) return; /* past a packed sequence's end */
    const size_t qkv_stride = (size_t)3 * hidden;
    const int head_col = head * D;
    auto stage = [&](int t, int b) {
        wg_stage_tile(qkv, mask, batch_row0, qkv_stride, hidden, head_col, seq_len, t,
                      k_s + b * WG_TILE_BYTES, v_s + b * WG_TILE_BYTES, key_bias[b]);
    };

    /* the queries first in cp.async group 0, so that they load while the mask is scanned */
    wg_stage_queries(qkv, batch_row0, qkv_stride, head_col, seq_len, query0, q_s);
    const attention_key_tiles key_tiles =
        attention_scan_key_tiles(mask, batch_row0, seq_len, live_words);
    int tile = key_tiles.next_live(-1); /* tile 0 unless skipped; one always exists */
    stage(tile, 0);
    bq_cp_async_commit();

    float o[D / 8][4]; /* this thread's share of the warpgroup's 64 x 64 output (C layout) */
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f}; /* rows g, g + 8 */
#pragma unroll
    for (int n = 0; n < D / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    const float scale_log2 = scale * WG_LOG2E;
    uint32_t q_frag[D / 16][4]; /* this warp's 16 query rows, per k-step, from the first tile on */
    float s[KT / 8][4];
    uint32_t p[KT / 16][4];

    if (!OVERLAP) {
        int buf = 0;
        bool first = true;
        while (tile < key_tiles.n) {
            const int next = key_tiles.next_live(tile);
            if (next < key_tiles.n) {
                stage(next, buf ^ 1); /* its buffer was released by the last barrier */
                bq_cp_async_commit();
                bq_cp_async_wait<1>();
            } else {
                bq_cp_async_wait<0>();
            }
            bq_fence_proxy_async(); /* this thread's copies, visible to wgmma (async proxy) */
            __syncthreads();        /* everyone's: this tile (the first time, the queries) ready */
            if (first) { /* the queries, in registers from now on: wgmma then reads only K from
                          * shared memory (at N = 64 reading A too takes all of its bandwidth) */
                wg_query_fragments(q_frag, q_s);
                first = false;
            }
#pragma unroll
            for (int n = 0; n < KT / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            /* every register the MMAs use written before the fence (wgmma.fence's rule) */
            bq_wgmma_fence_operands(s);
            wg_fence_fragments(q_frag);
            bq_wgmma_fence();
            wg_issue_scores<T>(s, q_frag, k_s + buf * WG_TILE_BYTES);
            bq_wgmma_commit();
            bq_wgmma_wait<0>();
            bq_wgmma_fence_operands(s);
            wg_fence_fragments(q_frag);
            /* online softmax in log2 units, scores -> probabilities in place; o rescaled */
            mma_online_softmax(s, key_bias[buf], scale_log2, quad_col, row_max, row_sum, o);
            wg_pack_probabilities<T>(p, s);
            bq_wgmma_fence_operands(o);
            wg_fence_fragments(p);
            bq_wgmma_fence();
            wg_issue_pv<T>(o, p, v_s + buf * WG_TILE_BYTES);
            bq_wgmma_commit();
            bq_wgmma_wait<0>();
            bq_wgmma_fence_operands(o);
            wg_fence_fragments(p);
            __syncthreads(); /* every warpgroup done with this buffer before it is refilled */
            buf ^= 1;
            tile = next;
        }
    } else {
        /* Live tile i (in walking order) sits in buffer i % 3. One cp.async group is in flight
         * at each step's start: the next tile's, issued a step before. */
        float alpha[2];
        int next = key_tiles.next_live(tile);
        if (next < key_tiles.n) stage(next, 1);
        bq_cp_async_commit(); /* possibly empty: the count stays one a step */
        bq_cp_async_wait<1>(); /* the queries and the first tile */
        bq_fence_proxy_async();
        __syncthreads();
        wg_query_fragments(q_frag, q_s);
        /* the first tile's S and softmax (o is 0: nothing to rescale) */
#pragma unroll
        for (int n = 0; n < KT / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
        bq_wgmma_fence_operands(s);
        wg_fence_fragments(q_frag);
        bq_wgmma_fence();
        wg_issue_scores<T>(s, q_frag, k_s);
        bq_wgmma_commit();
        bq_wgmma_wait<0>();
        bq_wgmma_fence_operands(s);
        wg_fence_fragments(q_frag);
        mma_softmax_max(s, key_bias[0], scale_log2, quad_col, row_max, row_sum, alpha);
        mma_softmax_exp(s, row_max, row_sum);
        wg_pack_probabilities<T>(p, s);
        /* step by step while there is a next tile; the last tile's P V after the loop (no
         * wgmma under a condition inside the loop: ptxas then cannot tell which group a wait
         * completes, and serializes) */
        int cur_buf = 0;
        while (next < key_tiles.n) {
            const int next_buf = cur_buf == 2 ? 0 : cur_buf + 1;
            bq_cp_async_wait<0>(); /* the next tile */
            bq_fence_proxy_async();
            /* the next tile visible to all; every warpgroup is past the step before, so the
             * buffer of the tile before this one is free for the one after the next */
            __syncthreads();
            const int after = key_tiles.next_live(next);
            if (after < key_tiles.n) stage(after, next_buf == 2 ? 0 : next_buf + 1);
            bq_cp_async_commit();
#pragma unroll
            for (int n = 0; n < KT / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            bq_wgmma_fence_operands(s);
            bq_wgmma_fence_operands(o);
            wg_fence_fragments(q_frag);
            wg_fence_fragments(p);
            bq_wgmma_fence();
            wg_issue_scores<T>(s, q_frag, k_s + next_buf * WG_TILE_BYTES); /* the next tile's S */
            bq_wgmma_commit();
            bq_wgmma_fence(); /* a fence per group, as CUTLASS and FlashAttention-3 do */
            wg_issue_pv<T>(o, p, v_s + cur_buf * WG_TILE_BYTES); /* this tile's P V */
            bq_wgmma_commit();
            bq_wgmma_wait<1>(); /* S done; P V may still run */
            bq_wgmma_fence_operands(s);
            wg_fence_fragments(q_frag);
            mma_softmax_max(s, key_bias[next_buf], scale_log2, quad_col, row_max, row_sum, alpha);
            mma_softmax_exp(s, row_max, row_sum);
            bq_wgmma_wait<0>(); /* P V done: o and p are ours again */
            bq_wgmma_fence_operands(o);
            wg_fence_fragments(p);
            mma_rescale_output(o, alpha);
            wg_pack_probabilities<T>(p, s);
            next = after;
            cur_buf = next_buf;
        }
        bq_wgmma_fence_operands(o);
        wg_fence_fragments(p);
        bq_wgmma_fence();
        wg_issue_pv<T>(o, p, v_s + cur_buf * WG_TILE_BYTES);
        bq_wgmma_commit();
        bq_wgmma_wait<0>();
        bq_wgmma_fence_operands(o);
        wg_fence_fragments(p);
    }

    attention_store_m_tile<T>(ctx, batch_row0, query0 + (warp / 4) * 64 + (warp % 4) * 16,
                              seq_len, hidden, head_col, o, row_sum);
}

template <typename T, bool OVERLAP>
static cudaError_t launch_attention_wgmma(const void *qkv, const int32_t *mask,
                                          const int32_t *seq_offsets, int batch, int seq_len,
                                          int hidden, int heads, void *ctx, cudaStream_t stream) {
    constexpr size_t smem = wg_smem_bytes<OVERLAP ? 3 : 2>();
    /* 48 or 64 KB dynamic plus the static biases pass the default 48 KB a block: opt in */
    const cudaError_t rc = cudaFuncSetAttribute(attention_wgmma_kernel<T, OVERLAP>,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                (int)smem);
    if (rc != cudaSuccess) return rc;
    const dim3 grid = attention_grid(seq_len, WG_QROWS, heads, batch);
    attention_wgmma_kernel<T, OVERLAP><<<grid, WG_GROUPS * WG_THREADS, smem, stream>>>(
        (const T *)qkv, mask, seq_offsets, seq_len, hidden, 1.0f / sqrtf((float)ATTN_MMA_HEAD),
        (T *)ctx);
    return cudaGetLastError();
}

extern "C" int bq_attention_wgmma_built(void) { return 1; }

extern "C" cudaError_t bq_attention_wgmma_launch(const void *qkv, const int32_t *mask,
                                                 const int32_t *seq_offsets, int batch, int seq_len,
                                                 int hidden, int heads, void *ctx, bq_cuda_dtype dt,
                                                 int overlap, cudaStream_t stream) {
    if (!bq_cuda_device_is_sm90()) return cudaErrorNotSupported;
    if (heads <= 0 || hidden != heads * ATTN_MMA_HEAD) return cudaErrorInvalidValue;
    if (dt == BQ_CUDA_F16)
        return overlap ? launch_attention_wgmma<__half, true>(qkv, mask, seq_offsets, batch,
                                                               seq_len, hidden, heads, ctx, stream)
                       : launch_attention_wgmma<__half, false>(qkv, mask, seq_offsets, batch,
                                                                seq_len, hidden, heads, ctx, stream);
    if (dt == BQ_CUDA_BF16)
        return overlap ? launch_attention_wgmma<__nv_bfloat16, true>(qkv, mask, seq_offsets, batch,
                                                                      seq_len, hidden, heads, ctx,
                                                                      stream)
                       : launch_attention_wgmma<__nv_bfloat16, false>(qkv, mask, seq_offsets,
                                                                       batch, seq_len, hidden,
                                                                       heads, ctx, stream);
    return cudaErrorInvalidValue;
}

#else /* not built for sm_90a */

extern "C" int bq_attention_wgmma_built(void) { return 0; }

extern "C" cudaError_t bq_attention_wgmma_launch(const void *qkv, const int32_t *mask,
                                                 const int32_t *seq_offsets, int batch, int seq_len,
                                                 int hidden, int heads, void *ctx, bq_cuda_dtype dt,
                                                 int overlap, cudaStream_t stream) {
    (void)qkv, (void)mask, (void)seq_offsets, (void)batch, (void)seq_len, (void)hidden;
    (void)heads, (void)ctx, (void)dt, (void)overlap, (void)stream;
    return cudaErrorNotSupported;
}

#endif
