/* launch.cu - the streams that launch our kernels with programmatic dependent launch: a small
 * table under a mutex (looked up once per launch; a graph replay makes no lookups). */
#include <pthread.h>

#include "launch.cuh"

static pthread_mutex_t pdl_lock = PTHREAD_MUTEX_INITIALIZER;
static cudaStream_t pdl_streams[BQ_PDL_MAX_STREAMS];
static int pdl_count;

static int find_stream(cudaStream_t stream) {
    for (int i = 0; i < pdl_count; i++)
        if (pdl_streams[i] == stream) return i;
    return -1;
}

extern "C" cudaError_t bq_cuda_stream_set_pdl(cudaStream_t stream, int on) {
    cudaError_t rc = cudaSuccess;
    pthread_mutex_lock(&pdl_lock);
    const int at = find_stream(stream);
    if (on && at < 0) {
        if (pdl_count < BQ_PDL_MAX_STREAMS)
            pdl_streams[pdl_count++] = stream;
        else
            rc = cudaErrorInvalidValue;
    } else if (!on && at >= 0) {
        pdl_streams[at] = pdl_streams[--pdl_count];
    }
    pthread_mutex_unlock(&pdl_lock);
    return rc;
}

extern "C" int bq_cuda_stream_pdl(cudaStream_t stream) {
    pthread_mutex_lock(&pdl_lock);
    const int on = find_stream(stream) >= 0;
    pthread_mutex_unlock(&pdl_lock);
    return on;
}
