/* cuda_check.cuh - the element dtypes our kernels handle and the checked-call helpers that turn
 * CUDA / cuBLAS / cuDNN status codes into bq_status + a message naming the statement, file, line. */
#ifndef BQ_CUDA_CHECK_CUH
#define BQ_CUDA_CHECK_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#ifdef BQ_HAVE_CUDNN
#include <cudnn.h>
#endif

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Storage type of activations and weight vectors on the device. Statistics, softmax and
 * accumulation are always fp32. */
typedef enum { BQ_CUDA_F32 = 0, BQ_CUDA_F16 = 1, BQ_CUDA_BF16 = 2 } bq_cuda_dtype;

/* Bytes per element of `dt` (0 for an unknown value). */
size_t bq_cuda_dtype_size(bq_cuda_dtype dt);
const char *bq_cuda_dtype_name(bq_cuda_dtype dt);

/* cudaSuccess -> BQ_OK. cudaErrorMemoryAllocation -> BQ_ERR_DEVICE_OOM; cudaErrorNoDevice /
 * cudaErrorInsufficientDriver -> BQ_ERR_NO_DEVICE (message suggests --device cpu); other errors
 * -> BQ_ERR_DEVICE. The message carries `stmt`, `file`, `line` and the CUDA error string. */
bq_status bq_cuda_check(cudaError_t rc, const char *stmt, const char *file, int line, bq_err *err);

/* 1 when the current device is compute capability 9.0, the only one sm_90a code (the CUTLASS
 * kernels) runs on; asked once per device. */
int bq_cuda_device_is_sm90(void);
/* CUBLAS_STATUS_SUCCESS -> BQ_OK; CUBLAS_STATUS_ALLOC_FAILED -> BQ_ERR_DEVICE_OOM;
 * CUBLAS_STATUS_NOT_SUPPORTED -> BQ_ERR_UNSUPPORTED; others BQ_ERR_DEVICE. */
bq_status bq_cublas_check(cublasStatus_t rc, const char *stmt, const char *file, int line,
                          bq_err *err);
#ifdef BQ_HAVE_CUDNN
/* CUDNN_STATUS_SUCCESS -> BQ_OK; device allocation failure -> BQ_ERR_DEVICE_OOM; host -> BQ_ERR_NOMEM;
 * CUDNN_STATUS_NOT_SUPPORTED* -> BQ_ERR_UNSUPPORTED; others BQ_ERR_DEVICE. */
bq_status bq_cudnn_check(cudnnStatus_t rc, const char *stmt, const char *file, int line,
                         bq_err *err);
#endif

#ifdef __cplusplus
}
#endif

/* Evaluate `stmt`; on failure fill `err` and return the bq_status from the enclosing function. */
#define BQ_CUDA_TRY(stmt, err)                                                        \
    do {                                                                              \
        bq_status s_ = bq_cuda_check((stmt), #stmt, __FILE__, __LINE__, (err));       \
        if (s_ != BQ_OK) return s_;                                                   \
    } while (0)

#define BQ_CUBLAS_TRY(stmt, err)                                                      \
    do {                                                                              \
        bq_status s_ = bq_cublas_check((stmt), #stmt, __FILE__, __LINE__, (err));     \
        if (s_ != BQ_OK) return s_;                                                   \
    } while (0)

#ifdef BQ_HAVE_CUDNN
#define BQ_CUDNN_TRY(stmt, err)                                                       \
    do {                                                                              \
        bq_status s_ = bq_cudnn_check((stmt), #stmt, __FILE__, __LINE__, (err));      \
        if (s_ != BQ_OK) return s_;                                                   \
    } while (0)
#endif

#endif
