/* cuda_check.cu - status translation for CUDA runtime, cuBLAS and cuDNN calls. */
#include "cuda_check.cuh"

extern "C" size_t bq_cuda_dtype_size(bq_cuda_dtype dt) {
    switch (dt) {
    case BQ_CUDA_F32: return 4;
    case BQ_CUDA_F16: return 2;
    case BQ_CUDA_BF16: return 2;
    }
    return 0;
}

extern "C" const char *bq_cuda_dtype_name(bq_cuda_dtype dt) {
    switch (dt) {
    case BQ_CUDA_F32: return "f32";
    case BQ_CUDA_F16: return "f16";
    case BQ_CUDA_BF16: return "bf16";
    }
    return "unknown";
}

extern "C" bq_status bq_cuda_check(cudaError_t rc, const char *stmt, const char *file, int line,
                                   bq_err *err) {
    if (rc == cudaSuccess) return BQ_OK;
    /* reported here, so not again: a failed call that is not sticky (out of memory, a refused
     * capture or launch) also sets the thread's last error, which the next kernel launch's
     * cudaGetLastError would otherwise blame on itself; a sticky error stays */
    (void)cudaGetLastError();
    const char *name = cudaGetErrorName(rc);
    const char *text = cudaGetErrorString(rc);
    if (rc == cudaErrorMemoryAllocation)
        return bq_fail(err, BQ_ERR_DEVICE_OOM, "%s:%d: %s: out of device memory (%s: %s)", file,
                       line, stmt, name, text);
    if (rc == cudaErrorNoDevice || rc == cudaErrorInsufficientDriver)
        return bq_fail(err, BQ_ERR_NO_DEVICE,
                       "%s:%d: %s: no usable CUDA device (%s: %s); " BQ_USE_CPU_HINT, file, line,
                       stmt, name, text);
    return bq_fail(err, BQ_ERR_DEVICE, "%s:%d: %s failed: %s: %s", file, line, stmt, name, text);
}

extern "C" bq_status bq_cublas_check(cublasStatus_t rc, const char *stmt, const char *file,
                                     int line, bq_err *err) {
    if (rc == CUBLAS_STATUS_SUCCESS) return BQ_OK;
    (void)cudaGetLastError(); /* as bq_cuda_check: what the library left is reported here, once */
    const char *text = cublasGetStatusString(rc);
    bq_status status = BQ_ERR_DEVICE;
    if (rc == CUBLAS_STATUS_ALLOC_FAILED) status = BQ_ERR_DEVICE_OOM;
    else if (rc == CUBLAS_STATUS_NOT_SUPPORTED) status = BQ_ERR_UNSUPPORTED;
    return bq_fail(err, status, "%s:%d: %s failed: cuBLAS status %d (%s)", file, line, stmt,
                   (int)rc, text ? text : "unknown");
}

#ifdef BQ_HAVE_CUDNN
extern "C" bq_status bq_cudnn_check(cudnnStatus_t rc, const char *stmt, const char *file, int line,
                                    bq_err *err) {
    if (rc == CUDNN_STATUS_SUCCESS) return BQ_OK;
    (void)cudaGetLastError(); /* as bq_cuda_check: what the library left is reported here, once */
    const char *text = cudnnGetErrorString(rc);
    bq_status status = BQ_ERR_DEVICE;
    if (rc == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED) status = BQ_ERR_DEVICE_OOM;
    else if (rc == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED) status = BQ_ERR_NOMEM;
    /* cuDNN 9 groups codes by thousands: 3000..3999 are all "not supported" variants. */
    else if ((int)rc / 1000 == (int)CUDNN_STATUS_NOT_SUPPORTED / 1000) status = BQ_ERR_UNSUPPORTED;
    return bq_fail(err, status, "%s:%d: %s failed: cuDNN status %d (%s)", file, line, stmt, (int)rc,
                   text ? text : "unknown");
}
#endif

extern "C" int bq_cuda_device_is_sm90(void) {
    static int known[64]; /* 0 unknown, 1 yes, 2 no; a benign race writes the same value */
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) {
        cudaGetLastError();
        return 0;
    }
    if (!known[device]) {
        int major = 0, minor = 0;
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
        known[device] = major == 9 && minor == 0 ? 1 : 2;
    }
    return known[device] == 1;
}
