/* cuda_emu_stream.cpp - the emulator's streams, events, stream capture and CUDA graphs, async
 * copies and device queries: what the engine (cuda/engine_cuda.cu, gemm.cu, tuning.cu) calls
 * beyond kernel launches.
 *
 * There is one device queue and it runs work at submission, so a stream is a handle and an event
 * is the host time at which the work before it had finished. Stream capture follows the CUDA
 * rules that matter for a forward pass recorded once and replayed: while a stream is captured,
 * work submitted to it (launches, async copies, cuBLASLt calls, event records) is recorded with
 * its arguments as they were at submission and does not run; cudaGraphLaunch replays the record
 * in order. Calls that a real capture forbids on the capturing thread (cudaMalloc, cudaMemcpy,
 * cudaMemset, synchronizing the device, the capturing stream or an event) fail with
 * cudaErrorStreamCaptureUnsupported and invalidate the capture, so cudaStreamEndCapture fails as
 * it would on a GPU. One capture at a time (the engine captures one stream). */
#include "cuda_emu.h"
#include "cuda_emu_runtime.h"

#include <stdio.h>
#include <stdlib.h>

#include <chrono>
#include <vector>

namespace {

using Work = std::function<void()>;

struct EmuGraph {
    std::vector<Work> nodes;
};

struct EmuEvent {
    bool recorded = false;
    std::chrono::steady_clock::time_point when;
};

struct Capture {
    cudaStream_t stream = nullptr; /* being captured; nullptr: no capture */
    EmuGraph *graph = nullptr;
    bool invalidated = false;
    const char *why = nullptr; /* the forbidden call that invalidated it */
};

Capture g_capture;

bool capturing(cudaStream_t stream) { return g_capture.stream && stream == g_capture.stream; }

/* cudaStreamLegacy / cudaStreamPerThread and 0 are not streams one can capture */
bool is_default_stream(cudaStream_t s) {
    return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread;
}

} // namespace

namespace bq_emu {

void enqueue(cudaStream_t stream, std::function<void()> work) {
    if (capturing(stream)) {
        if (!g_capture.invalidated) g_capture.graph->nodes.push_back(std::move(work));
        return;
    }
    work();
}

cudaError_t capture_forbids(const char *api) {
    if (!g_capture.stream) return cudaSuccess;
    fprintf(stderr, "bq-emu: %s while a stream is being captured (not permitted: the capture is "
                    "invalidated)\n", api);
    if (!g_capture.invalidated) g_capture.why = api;
    g_capture.invalidated = true;
    return cudaErrorStreamCaptureUnsupported;
}

} // namespace bq_emu

using bq_emu::record_error;
using bq_emu::sticky_error;

/* ---- streams ---------------------------------------------------------------------------------- */

/* A distinct non-null handle per stream (work runs at submission). */
cudaError_t CUDARTAPI cudaStreamCreate(cudaStream_t *stream) {
    if (sticky_error() != cudaSuccess) return sticky_error();
    if (!stream) return record_error(cudaErrorInvalidValue);
    if (bq_emu::injected_failure("cudaStreamCreate")) return record_error(cudaErrorMemoryAllocation);
    *stream = reinterpret_cast<cudaStream_t>(malloc(1));
    return *stream ? cudaSuccess : record_error(cudaErrorMemoryAllocation);
}

cudaError_t CUDARTAPI cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
    (void)flags;
    return cudaStreamCreate(stream);
}

cudaError_t CUDARTAPI cudaStreamDestroy(cudaStream_t stream) {
    if (capturing(stream)) return record_error(cudaErrorIllegalState);
    if (!is_default_stream(stream)) free(reinterpret_cast<void *>(stream));
    return sticky_error();
}

cudaError_t CUDARTAPI cudaStreamSynchronize(cudaStream_t stream) {
    if (capturing(stream) || (g_capture.stream && is_default_stream(stream)))
        return record_error(bq_emu::capture_forbids("cudaStreamSynchronize"));
    return sticky_error();
}

cudaError_t CUDARTAPI cudaDeviceSynchronize(void) {
    if (cudaError_t rc = bq_emu::capture_forbids("cudaDeviceSynchronize")) return record_error(rc);
    return sticky_error();
}

/* ---- async copies ----------------------------------------------------------------------------- */

cudaError_t CUDARTAPI cudaMemcpyAsync(void *dst, const void *src, size_t count,
                                      enum cudaMemcpyKind kind, cudaStream_t stream) {
    if (sticky_error() != cudaSuccess) return sticky_error();
    if ((int)kind < (int)cudaMemcpyHostToHost || (int)kind > (int)cudaMemcpyDefault)
        return record_error(cudaErrorInvalidMemcpyDirection);
    if (count == 0) return cudaSuccess;
    if (!dst || !src) return record_error(cudaErrorInvalidValue);
    bq_emu::enqueue(stream, [=]() { memmove(dst, src, count); });
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaMemsetAsync(void *ptr, int value, size_t count, cudaStream_t stream) {
    if (sticky_error() != cudaSuccess) return sticky_error();
    if (count == 0) return cudaSuccess;
    if (!ptr) return record_error(cudaErrorInvalidValue);
    bq_emu::enqueue(stream, [=]() { memset(ptr, value, count); });
    return cudaSuccess;
}

/* ---- stream capture and graphs ------------------------------------------------------------- */

cudaError_t CUDARTAPI cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
    (void)mode; /* one thread: global and thread-local capture forbid the same calls here */
    if (sticky_error() != cudaSuccess) return sticky_error();
    if (is_default_stream(stream)) return record_error(cudaErrorStreamCaptureUnsupported);
    if (g_capture.stream) return record_error(cudaErrorIllegalState);
    if (bq_emu::injected_failure("cudaStreamBeginCapture"))
        return record_error(cudaErrorStreamCaptureUnsupported);
    g_capture = Capture();
    g_capture.stream = stream;
    g_capture.graph = new EmuGraph();
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    if (!graph) return record_error(cudaErrorInvalidValue);
    *graph = nullptr;
    if (!capturing(stream)) return record_error(cudaErrorIllegalState);
    Capture c = g_capture;
    g_capture = Capture();
    if (c.invalidated) {
        fprintf(stderr, "bq-emu: stream capture invalidated by %s\n", c.why);
        delete c.graph;
        return record_error(cudaErrorStreamCaptureInvalidated);
    }
    *graph = reinterpret_cast<cudaGraph_t>(c.graph);
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaStreamIsCapturing(cudaStream_t stream,
                                            enum cudaStreamCaptureStatus *status) {
    if (!status) return record_error(cudaErrorInvalidValue);
    *status = !capturing(stream)     ? cudaStreamCaptureStatusNone
              : g_capture.invalidated ? cudaStreamCaptureStatusInvalidated
                                      : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                           unsigned long long flags) {
    (void)flags;
    if (!exec || !graph) return record_error(cudaErrorInvalidValue);
    if (bq_emu::injected_failure("cudaGraphInstantiate")) return record_error(cudaErrorMemoryAllocation);
    /* an executable graph is a copy: destroying the graph afterwards must not affect it */
    *exec = reinterpret_cast<cudaGraphExec_t>(new EmuGraph(*reinterpret_cast<EmuGraph *>(graph)));
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaGraphDestroy(cudaGraph_t graph) {
    delete reinterpret_cast<EmuGraph *>(graph);
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete reinterpret_cast<EmuGraph *>(exec);
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    if (sticky_error() != cudaSuccess) return sticky_error();
    if (!exec) return record_error(cudaErrorInvalidValue);
    if (bq_emu::injected_failure("cudaGraphLaunch")) return record_error(cudaErrorLaunchOutOfResources);
    const EmuGraph *g = reinterpret_cast<const EmuGraph *>(exec);
    bq_emu::enqueue(stream, [g]() {
        for (const Work &w : g->nodes) w();
    });
    return cudaSuccess; /* a failed kernel shows at the next synchronization, as on a GPU */
}

/* ---- events ----------------------------------------------------------------------------------- */

cudaError_t CUDARTAPI cudaEventCreate(cudaEvent_t *event) {
    if (!event) return record_error(cudaErrorInvalidValue);
    if (bq_emu::injected_failure("cudaEventCreate")) return record_error(cudaErrorMemoryAllocation);
    *event = reinterpret_cast<cudaEvent_t>(new EmuEvent());
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaEventDestroy(cudaEvent_t event) {
    if (!event) return record_error(cudaErrorInvalidResourceHandle);
    delete reinterpret_cast<EmuEvent *>(event);
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    if (!event) return record_error(cudaErrorInvalidResourceHandle);
    EmuEvent *e = reinterpret_cast<EmuEvent *>(event);
    bq_emu::enqueue(stream, [e]() {
        e->recorded = true;
        e->when = std::chrono::steady_clock::now();
    });
    return sticky_error();
}

cudaError_t CUDARTAPI cudaEventSynchronize(cudaEvent_t event) {
    if (!event) return record_error(cudaErrorInvalidResourceHandle);
    if (cudaError_t rc = bq_emu::capture_forbids("cudaEventSynchronize")) return record_error(rc);
    return sticky_error();
}

cudaError_t CUDARTAPI cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    if (!ms || !start || !end) return record_error(cudaErrorInvalidValue);
    const EmuEvent *a = reinterpret_cast<const EmuEvent *>(start);
    const EmuEvent *b = reinterpret_cast<const EmuEvent *>(end);
    if (!a->recorded || !b->recorded) return record_error(cudaErrorInvalidResourceHandle);
    *ms = std::chrono::duration<float, std::milli>(b->when - a->when).count();
    return cudaSuccess;
}

/* ---- the device ------------------------------------------------------------------------------- */

namespace {
constexpr int kMultiprocessors = 132;
constexpr int kSharedOptin = 227 * 1024;
} // namespace

cudaError_t CUDARTAPI cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    if (!prop) return record_error(cudaErrorInvalidValue);
    if (device != 0) return record_error(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "bq-emu (CPU emulation of an sm_90 device)");
    prop->major = 9;
    prop->minor = 0;
    prop->totalGlobalMem = bq_emu::device_memory();
    prop->multiProcessorCount = kMultiprocessors;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->sharedMemPerBlockOptin = kSharedOptin;
    prop->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
    if (!value) return record_error(cudaErrorInvalidValue);
    if (device != 0) return record_error(cudaErrorInvalidDevice);
    switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = kMultiprocessors; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = kSharedOptin; return cudaSuccess;
    default: return record_error(cudaErrorInvalidValue); /* not emulated: say so loudly */
    }
}

cudaError_t CUDARTAPI cudaDriverGetVersion(int *version) {
    if (!version) return record_error(cudaErrorInvalidValue);
    *version = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    if (!free_bytes || !total_bytes) return record_error(cudaErrorInvalidValue);
    *total_bytes = bq_emu::device_memory();
    *free_bytes = bq_emu::device_bytes_free();
    return cudaSuccess;
}
