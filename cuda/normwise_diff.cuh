/* normwise_diff.cuh - how far one device tensor is from another: the sums behind the normwise
 * relative error ||a - ref|| / ||ref|| and the largest elements of a - ref and ref, accumulated on
 * the device. The engine uses it to check every attention tiling against the 64-row one, and the
 * GEMM layer every candidate against its stage's reference, on the real inputs before either may
 * keep it. */
#ifndef BQ_NORMWISE_DIFF_CUH
#define BQ_NORMWISE_DIFF_CUH

#include <math.h>

#include "cuda_check.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* How many doubles bq_cuda_normwise_diff accumulates into. */
#define BQ_NORMWISE_SUMS 4

/* a, ref: [n] in `dt` on the device; sums: BQ_NORMWISE_SUMS device doubles the caller has set
 * (zeros for a fresh measure). Adds sum (a[i] - ref[i])^2 to sums[0] and sum ref[i]^2 to sums[1],
 * and raises sums[2] to the largest |a[i] - ref[i]| and sums[3] to the largest |ref[i]|, in fp32
 * per element and double per sum. An element whose bits equal ref's adds 0 to sums[0] and sums[2]
 * (buffers both left untouched compare equal, even where they hold NaN bytes); a difference that
 * is not finite makes sums[0] and sums[2] infinite, a reference element that is not finite
 * sums[3]. Enqueued on `stream`; capturable.
 * Returns cudaErrorInvalidValue for a NULL pointer or n == 0, else the launch status. */
cudaError_t bq_cuda_normwise_diff(const void *a, const void *ref, size_t n, bq_cuda_dtype dt,
                                  double *sums, cudaStream_t stream);

/* An element's difference counts this many times less than the norm's: correct kernels that round
 * differently (the fused GEMM + GELU against the GEMM, then the GELU pass: two roundings of bf16
 * against one, 2^-8 each) can put the largest element off by a few of its roundings, about 1e-2 of
 * it in bf16, where a wrong element is off by about its own size. */
#define BQ_NORMWISE_ELEMENT_SLACK 4.0

/* How far a is from ref, from those sums (host): 0 where nothing differed; else the larger of the
 * normwise relative difference sqrt(sums[0] / sums[1]) and the largest element's difference
 * relative to the largest reference element, sums[2] / sums[3] / BQ_NORMWISE_ELEMENT_SLACK (it
 * sees an error confined to a few elements - a tile's edge, one row - which the norm dilutes by
 * the size of the output: one wrong element of a 384 x 1024 output moves it by about 1/627); or
 * INFINITY where the reference is all zeros or not finite: it cannot vouch for an output that
 * differs. */
static inline double bq_normwise_from_sums(const double *sums) {
    if (sums[0] == 0.0 && sums[2] == 0.0) return 0.0;
    /* a positive, finite sum of squares: every reference element finite and one not zero, so the
     * largest one (sums[3]) is positive and finite too */
    if (!(sums[1] > 0.0 && isfinite(sums[1]))) return INFINITY;
    const double normwise = sqrt(sums[0] / sums[1]);
    const double element = sums[2] / sums[3] / BQ_NORMWISE_ELEMENT_SLACK;
    return normwise > element ? normwise : element;
}

#ifdef __cplusplus
}
#endif
#endif
