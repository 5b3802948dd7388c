/* attention_cudnn.cu - cuDNN fused attention behind the bq_cudnn_attention interface.
 *
 * Status: not implemented. The cuDNN 9 backend (graph) API for SDPA needs some dozens of
 * descriptors whose every attribute must be right, and this code could not be run while it was
 * written (no GPU), so rather than ship an unverified plan, create() reports BQ_ERR_UNSUPPORTED with
 * a message saying so, and the engine offers only its own fused attention kernel. */
#include "attention_cudnn.cuh"

#include <stdlib.h>

struct bq_cudnn_attention {
    int max_batch, seq_len, hidden, heads;
    bq_cuda_dtype dt;
};

extern "C" int bq_cudnn_mask_is_prefix(const int32_t *mask, int batch, int seq_len) {
    for (int b = 0; b < batch; b++) {
        const int32_t *row = mask + (size_t)b * seq_len;
        int t = 0;
        while (t < seq_len && row[t] == 1) t++;
        if (t == 0) return 0;
        for (; t < seq_len; t++)
            if (row[t] != 0) return 0;
    }
    return 1;
}

extern "C" bq_status bq_cudnn_attention_create(int max_batch, int seq_len, int hidden, int heads,
                                               bq_cuda_dtype dt, bq_cudnn_attention **out,
                                               bq_err *err) {
    *out = NULL;
    (void)max_batch, (void)seq_len, (void)hidden, (void)heads;
    if (dt == BQ_CUDA_F32)
        return bq_fail(err, BQ_ERR_UNSUPPORTED,
                       "cuDNN fused attention needs fp16 or bf16 (got fp32/tf32); use --attention own "
                       "or --precision fp16|bf16");
#ifndef BQ_HAVE_CUDNN
    return bq_fail(err, BQ_ERR_UNSUPPORTED,
                   "this bertqa-gpu was built without cuDNN; use --attention own");
#else
    return bq_fail(err, BQ_ERR_UNSUPPORTED,
                   "--attention cudnn is not implemented yet in this build (cuDNN %d found); use "
                   "--attention own",
                   (int)CUDNN_VERSION);
#endif
}

extern "C" void bq_cudnn_attention_free(bq_cudnn_attention *a) { free(a); }

extern "C" bq_status bq_cudnn_attention_run(bq_cudnn_attention *a, const void *qkv,
                                            const int32_t *mask, int batch, void *ctx,
                                            cudaStream_t stream, bq_err *err) {
    (void)a, (void)qkv, (void)mask, (void)batch, (void)ctx, (void)stream;
    return bq_fail(err, BQ_ERR_UNSUPPORTED, "--attention cudnn is not implemented; use --attention own");
}
