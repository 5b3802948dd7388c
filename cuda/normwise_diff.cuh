/* normwise_diff.cuh - how far one device tensor is from another: the sums behind the normwise
 * relative error ||a - ref|| / ||ref||, accumulated on the device. The engine uses it to check
 * every attention tiling against the 64-row one on the real inputs before it may keep it. */
#ifndef BQ_NORMWISE_DIFF_CUH
#define BQ_NORMWISE_DIFF_CUH

#include <math.h>

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* a, ref: [n] in `dt` on the device; sums: 2 device doubles the caller has set (zero for a fresh
 * measure). Adds sum (a[i] - ref[i])^2 to sums[0] and sum ref[i]^2 to sums[1], in fp32 per element
 * and double per sum. An element whose bits equal ref's adds 0 to sums[0] (buffers both left
 * untouched compare equal, even where they hold NaN bytes); a difference that is not finite makes
 * sums[0] infinite. Enqueued on `stream`; capturable.
 * Returns cudaErrorInvalidValue for a NULL pointer or n == 0, else the launch status. */
cudaError_t bq_cuda_normwise_diff(const void *a, const void *ref, size_t n, bq_cuda_dtype dt,
                                  double *sums, cudaStream_t stream);

/* The normwise relative difference from those two sums (host): 0 where nothing differed,
 * sqrt(diff2 / ref2), else INFINITY: a reference that is all zeros or not finite cannot vouch for
 * an output that differs. */
static inline double bq_normwise_from_sums(double diff2, double ref2) {
    if (diff2 == 0.0) return 0.0;
    return ref2 > 0.0 && isfinite(ref2) ? sqrt(diff2 / ref2) : INFINITY;
}

#ifdef __cplusplus
}
#endif
#endif
