/* attention_common.cuh - the device pieces the fused attention kernels share (attention.cu's
 * mma.sync kernels and attention_wgmma.cu's wgmma one): which rows a block's sequence has, the
 * scan for key tiles of padding only, the online softmax of one 16-row m-tile in registers and
 * the store of its output. CUDA C++ only. */
#ifndef BQ_ATTENTION_COMMON_CUH
#define BQ_ATTENTION_COMMON_CUH

#include "kernel_common.cuh"
#include "tensor_core.cuh"

#define ATTN_MMA_HEAD 64 /* the tensor-core kernels' one head size */
#define ATTN_MMA_KEYS 64 /* keys per tile */
#define ATTN_MMA_MAX_TILES 64 /* skip bookkeeping for up to 64 key tiles (4,096 keys) */
#define ATTN_MMA_CHAINS 4      /* partial max / sum chains a row in the online softmax */

/* The rows of the block's sequence: batch blockIdx.z of seq_len rows, or with seq_offsets (packed
 * sequences) rows [seq_offsets[z], seq_offsets[z + 1]), seq_len becoming its length. Per block,
 * so the padded path pays one uniform branch. */
__device__ __forceinline__ int attention_sequence(const int32_t *seq_offsets, int &seq_len) {
    if (!seq_offsets) return blockIdx.z * seq_len;
    const int row0 = seq_offsets[blockIdx.z];
    seq_len = seq_offsets[blockIdx.z + 1] - row0;
    return row0;
}

/* mask[index], or 1 (a real key) without a mask: packed sequences have no padding. */
__device__ __forceinline__ int32_t key_mask(const int32_t *mask, size_t index) {
    return mask ? mask[index] : 1;
}

/* Every path's grid: x = blocks of `rows_per_block` query rows (the last one partial), y = head,
 * z = batch (packed: seq_len = the longest sequence, batch = the number of sequences). */
static inline dim3 attention_grid(int seq_len, int rows_per_block, int heads, int batch) {
    return dim3((unsigned)((seq_len + rows_per_block - 1) / rows_per_block), (unsigned)heads,
                (unsigned)batch);
}

/* OR of a 64-bit word over the 32 lanes of a warp (every lane gets it). */
__device__ __forceinline__ uint64_t warp_or_u64(uint64_t bits) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        const uint32_t lo = __shfl_xor_sync(BQ_FULL_WARP, (uint32_t)bits, offset);
        const uint32_t hi = __shfl_xor_sync(BQ_FULL_WARP, (uint32_t)(bits >> 32), offset);
        bits |= ((uint64_t)hi << 32) | lo;
    }
    return bits;
}

/* One 64-key step of the online softmax for one m-tile (16 query rows), in log2 units: s holds
 * the raw scores q.k (element e of s[n]: row g + 8 (e >> 1), key 8n + 2t + (e & 1)) and leaves
 * with the probabilities exp2(x - m) of x = score * scale_log2 + bias, where m is the running max
 * of the row (rows g, g + 8); the row's partial sum and output accumulators are rescaled by
 * exp2(m_old - m_new) (0 on the first tile: ex2(-inf)). The bare ex2 (bq_exp2_ftz) skips
 * exp2f's denormal fix-up (three more instructions a score): a probability under 2^-126 next to
 * a row sum >= 1 is 0 either way. (Stop 14 tried skipping the biases on all-real tiles and the
 * rescale while the max grew by under 2^8; run a7fdcdb timed that slower at every batch size and
 * tiling, 0.395 vs 0.388 ms a layer at batch 128, so it went.) */
/* The first half of a step: scores to x = score * scale_log2 + bias in place, the rows' new running
 * max, and alpha = exp2(m_old - m_new) by which the row sums (here) and the output accumulators
 * (mma_rescale_output) are rescaled. */
__device__ __forceinline__ void mma_softmax_max(float (&s)[ATTN_MMA_KEYS / 8][4], const float *bias,
                                                float scale_log2, int quad_col,
                                                float (&row_max)[2], float (&row_sum)[2],
                                                float (&alpha)[2]) {
    constexpr int NT = ATTN_MMA_KEYS / 8;
    /* The row max and sum over a lane's 16 scores a row in ATTN_MMA_CHAINS partial chains, not one
     * chain of 16 dependent FMNMX / FADD: fewer cycles waiting on a fixed-latency dependency (what
     * ncu found the warps of this kernel waiting on most, runs a7fdcdb and 1aa4dcc). */
    constexpr int CH = ATTN_MMA_CHAINS;
    float part[2][CH];
#pragma unroll
    for (int r = 0; r < 2; r++)
#pragma unroll
        for (int c = 0; c < CH; c++) part[r][c] = -INFINITY;
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            s[n][e] = fmaf(s[n][e], scale_log2, bias[n * 8 + 2 * quad_col + (e & 1)]);
            part[e >> 1][n % CH] = fmaxf(part[e >> 1][n % CH], s[n][e]);
        }
    float tile_max[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        tile_max[r] = part[r][0];
#pragma unroll
        for (int c = 1; c < CH; c++) tile_max[r] = fmaxf(tile_max[r], part[r][c]);
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(BQ_FULL_WARP, tile_max[r], 1));
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(BQ_FULL_WARP, tile_max[r], 2));
        /* finite: a staged tile has key tile*64 < seq_len; m is -inf before the first tile */
        const float new_max = fmaxf(row_max[r], tile_max[r]);
        alpha[r] = bq_exp2_ftz(row_max[r] - new_max);
        row_max[r] = new_max;
        row_sum[r] *= alpha[r];
    }
}

/* The output accumulators of rows g, g + 8 times alpha (mma_softmax_max). */
__device__ __forceinline__ void mma_rescale_output(float (&o)[ATTN_MMA_HEAD / 8][4],
                                                   const float (&alpha)[2]) {
#pragma unroll
    for (int n = 0; n < ATTN_MMA_HEAD / 8; n++) {
        o[n][0] *= alpha[0], o[n][1] *= alpha[0];
        o[n][2] *= alpha[1], o[n][3] *= alpha[1];
    }
}

/* The second half: x to probabilities exp2(x - m) in place, added to the row sums. */
__device__ __forceinline__ void mma_softmax_exp(float (&s)[ATTN_MMA_KEYS / 8][4],
                                                const float (&row_max)[2], float (&row_sum)[2]) {
    constexpr int NT = ATTN_MMA_KEYS / 8, CH = ATTN_MMA_CHAINS;
    float part[2][CH];
#pragma unroll
    for (int r = 0; r < 2; r++)
#pragma unroll
        for (int c = 0; c < CH; c++) part[r][c] = 0.0f;
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const float p = bq_exp2_ftz(s[n][e] - row_max[e >> 1]); /* 0 past the end (-inf) */
            s[n][e] = p;
            part[e >> 1][n % CH] += p;
        }
#pragma unroll
    for (int r = 0; r < 2; r++)
#pragma unroll
        for (int c = 0; c < CH; c++) row_sum[r] += part[r][c];
}

/* A whole step, in the mma.sync kernel's order: max, rescale, exp. */
__device__ __forceinline__ void mma_online_softmax(float (&s)[ATTN_MMA_KEYS / 8][4],
                                                   const float *bias, float scale_log2,
                                                   int quad_col, float (&row_max)[2],
                                                   float (&row_sum)[2],
                                                   float (&o)[ATTN_MMA_HEAD / 8][4]) {
    float alpha[2];
    mma_softmax_max(s, bias, scale_log2, quad_col, row_max, row_sum, alpha);
    mma_rescale_output(o, alpha);
    mma_softmax_exp(s, row_max, row_sum);
}


/* The key tiles (ATTN_MMA_KEYS keys each) of one sequence that hold a real key, so that tiles of
 * padding only can be skipped: their probabilities would be exactly 0 (exp2(-10000 log2 e - m)
 * underflows next to a real key's). Without any real key every tile counts, as in the CPU twin
 * (softmax over all keys at -10000); beyond ATTN_MMA_MAX_TILES tiles nothing is skipped.
 * Block-uniform. */
struct attention_key_tiles {
    uint64_t live; /* bit t: tile t holds a real key */
    bool skip;     /* whether tiles without one are skipped */
    int n;         /* tiles of the sequence */
    __device__ __forceinline__ bool is_live(int t) const { return !skip || ((live >> t) & 1); }
    /* the first live tile after t, or n */
    __device__ __forceinline__ int next_live(int t) const {
        do t++;
        while (t < n && !is_live(t));
        return t;
    }
};

/* Scan the mask of the sequence starting at row batch_row0. Thread tid < 64 reads key tid of
 * every tile (independent loads, not one barrier per tile: at batch 1 the block's start is on the
 * critical path); its warp ORs the bits by shuffles and one barrier publishes the two warps' words
 * through `words` (2 in shared memory). Every thread of the block (at least 64) calls it. */
__device__ __forceinline__ attention_key_tiles attention_scan_key_tiles(const int32_t *mask,
                                                                        size_t batch_row0,
                                                                        int seq_len,
                                                                        uint64_t *words) {
    static_assert(ATTN_MMA_KEYS == 64, "two warps scan the 64 keys of a tile");
    const int tid = threadIdx.x;
    attention_key_tiles tiles;
    tiles.n = (seq_len + ATTN_MMA_KEYS - 1) / ATTN_MMA_KEYS;
    if (tid < ATTN_MMA_KEYS) {
        uint64_t bits = 0;
        const int scan_tiles = tiles.n < ATTN_MMA_MAX_TILES ? tiles.n : ATTN_MMA_MAX_TILES;
#pragma unroll 8
        for (int t = 0; t < scan_tiles; t++) {
            const int key = t * ATTN_MMA_KEYS + tid;
            if (key < seq_len && key_mask(mask, batch_row0 + key) != 0) bits |= (uint64_t)1 << t;
        }
        bits = warp_or_u64(bits);
        if ((tid & 31) == 0) words[tid >> 5] = bits;
    }
    __syncthreads();
    tiles.live = words[0] | words[1];
    tiles.skip = tiles.live != 0 && tiles.n <= ATTN_MMA_MAX_TILES;
    return tiles;
}

/* The end of an m-tile (16 query rows, rows g and g + 8 in this lane) of a tensor-core kernel:
 * the row sums of the quad summed, O / sum rounded to T and stored as pairs of dims 8n + 2t,
 * +1, rows at or past seq_len skipped. row0: the m-tile's first query row in the sequence. */
template <typename T>
__device__ __forceinline__ void attention_store_m_tile(T *ctx, size_t batch_row0, int row0,
                                                       int seq_len, int hidden, int head_col,
                                                       const float (&o)[ATTN_MMA_HEAD / 8][4],
                                                       const float (&row_sum)[2]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float sum = row_sum[r];
        sum += __shfl_xor_sync(BQ_FULL_WARP, sum, 1);
        sum += __shfl_xor_sync(BQ_FULL_WARP, sum, 2);
        const int query = row0 + (lane >> 2) + 8 * r;
        if (query >= seq_len) continue;
        const float inv_sum = 1.0f / sum;
        T *out = ctx + (batch_row0 + query) * (size_t)hidden + head_col + 2 * (lane & 3);
#pragma unroll
        for (int n = 0; n < ATTN_MMA_HEAD / 8; n++)
            *reinterpret_cast<uint32_t *>(out + 8 * n) =
                bq_pack2<T>(o[n][2 * r] * inv_sum, o[n][2 * r + 1] * inv_sum);
    }
}

#endif
