/* cuda_emu_runtime.cpp - the CPU emulator's execution model and the CUDA runtime API it stands in
 * for (no libcudart is linked into emulated programs).
 *
 * Execution: the blocks of a launch run one after another; the threads of a block are cooperative
 * fibers. A fiber runs until it reaches a barrier or a warp collective (or exits), then the next
 * fiber runs: the next lane of the same warp, and once the whole warp waits at __syncthreads the
 * next warp (descending order with BQ_EMU_REVERSE=1). That order is deliberately adversarial:
 * warp 0 runs all the way to its next __syncthreads before warp 1 has started, so a missing
 * __syncthreads lets it read shared data nobody has written yet (shared memory is poisoned with
 * 0xFF bytes, NaN in every float type, at the start of each block) or overwrite data the other
 * warps have not read yet; within a warp lane 0 runs its whole stretch before lane 1 begins,
 * which exposes a missing __syncwarp.
 * Warp collectives complete when every lane of the mask has arrived; __syncthreads when every
 * thread of the block has. A rendezvous that can never complete (a thread exited or waits at
 * another barrier) fails the launch with a description instead of hanging.
 *
 * Environment: BQ_EMU_REVERSE=1 reverses the order; BQ_EMU_VERBOSE=1 prints each kernel's static
 * shared memory and launch shape at its first launch.
 *
 * Fibers are created once with makecontext (one mmap'ed stack each, a guard page below) and then
 * switched with _setjmp / _longjmp: glibc's swapcontext makes a sigprocmask system call per switch
 * (~350 ns here), _longjmp does not (~20 ns), and a warp collective costs 32 switches. */
#undef _FORTIFY_SOURCE /* the fortified longjmp refuses to jump to another stack; before any include */

#include "cuda_emu.h"
#include "cuda_emu_runtime.h"
#include "emu_faults.h"

#include <cublas_api.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

namespace bq_emu {

Thread *g_thread;
Grid g_grid;

namespace {

/* Limits of the emulated device: an H100 (sm_90). */
constexpr int kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDim[3] = {1024, 1024, 64};
constexpr unsigned kMaxGridDim[3] = {0x7fffffffu, 65535, 65535};
constexpr size_t kDefaultSharedBytes = 48 * 1024;  /* static + dynamic without the opt-in */
constexpr size_t kMaxSharedBytes = 227 * 1024;     /* per block with the opt-in */
constexpr size_t kStackBytes = 256 * 1024;         /* per fiber */

enum class State : unsigned char { kRunnable, kWaitWarp, kWaitBlock, kDone };

struct Fiber : Thread {
    jmp_buf jb;         /* where to resume it */
    State state;
    bool parked;        /* waiting at the top of its loop for a new block (else: mid-kernel) */
    char *stack_base;   /* mmap'ed: guard page, then the stack */
    const char *wait_what; /* for deadlock reports */
    const char *wait_file;
    int wait_line;
};

struct Warp {
    const WarpOp *op;  /* pending collective, NULL when none */
    unsigned expected; /* lanes that must arrive */
    unsigned arrived;
    unsigned exists;   /* lanes of this warp that exist (the last warp may be partial) */
    unsigned exited;
    void *args[32];
};

struct Barrier {
    int arrived; /* threads waiting at the pending __syncthreads (0: none pending) */
    BarrierKind kind;
    const char *file;
    int line;
    int count_true;
    int result; /* of the last completed barrier */
};

struct Block {
    int nthreads;
    int alive;  /* threads that have not exited */
    int exited;
    bool reverse;
    uint64_t serial; /* increments per block: shared-memory registrations are per block */
    size_t static_shared; /* bytes of __shared__ arrays registered in this block */
    std::vector<Warp> warps;
    Barrier barrier;
};

struct SharedRegistration {
    void *p;
    size_t bytes;
    uint64_t serial; /* block in which it was last poisoned */
};

struct KernelInfo {
    long max_dynamic_shared = -1; /* cudaFuncAttributeMaxDynamicSharedMemorySize; -1: not set */
    long static_shared = -1;      /* learnt from its first block; -1: not yet launched */
};

struct LaunchState {
    const char *name;
    void (*body)(void *);
    void *ctx;
    size_t dynamic_bytes;
    cudaError_t error; /* set by fail() */
};

std::vector<Fiber *> g_fibers; /* the pool; fiber i runs thread i of every block */
Fiber *g_init_fiber;           /* handed to fiber_main by init_fiber */
jmp_buf g_sched_jb;            /* the scheduler, on the host thread's own stack */
Block g_block;
LaunchState g_launch;
bool g_in_kernel;
std::vector<SharedRegistration> g_shared;
unsigned char *g_dynamic_shared; /* kMaxSharedBytes, 1024-byte aligned, allocated once */
std::map<const void *, KernelInfo> g_kernels;

cudaError_t g_last_error = cudaSuccess; /* cleared by cudaGetLastError */
cudaError_t g_sticky_error = cudaSuccess; /* a failed kernel: every later call reports it */
std::map<void *, size_t> g_allocations; /* cudaMalloc'ed: base -> bytes asked for */

Fiber *current() { return static_cast<Fiber *>(g_thread); }

std::string where() {
    char buf[256];
    if (!g_in_kernel || !g_thread) return "bq-emu";
    snprintf(buf, sizeof buf, "bq-emu: kernel %s block (%u,%u,%u) thread (%u,%u,%u)", g_launch.name,
             g_grid.block_idx.x, g_grid.block_idx.y, g_grid.block_idx.z, g_thread->idx.x,
             g_thread->idx.y, g_thread->idx.z);
    return buf;
}

/* ---- fibers ---- */

/* Next fiber to run after fiber `from` (possibly `from` itself), or -1 when none is runnable.
 * Warp-greedy: the lanes of `from`'s warp go on, in lane order and round again, until every one
 * of them waits at __syncthreads or has exited; only then does the next warp (lowest runnable
 * lane first) get to run. So a warp runs as far ahead of the others as the barriers allow: it
 * reads what later warps have not written yet, and overwrites what they have not read yet. With
 * BQ_EMU_REVERSE=1 lanes and warps go in descending order. */
int next_runnable(int from) {
    const int n = g_block.nthreads;
    const int step = g_block.reverse ? -1 : 1;
    const int warp0 = from / 32 * 32;
    const int lanes = n - warp0 < 32 ? n - warp0 : 32;
    for (int k = 1; k <= lanes; k++) { /* this warp, cyclically after `from` */
        const int i = warp0 + ((from - warp0 + step * k) % lanes + lanes) % lanes;
        if (g_fibers[i]->state == State::kRunnable) return i;
    }
    const int warps = (n + 31) / 32;
    for (int k = 1; k < warps; k++) { /* the other warps, in order */
        const int w = ((from / 32 + step * k) % warps + warps) % warps;
        const int first = w * 32, last = first + 32 < n ? first + 32 : n;
        if (!g_block.reverse) {
            for (int i = first; i < last; i++)
                if (g_fibers[i]->state == State::kRunnable) return i;
        } else {
            for (int i = last - 1; i >= first; i--)
                if (g_fibers[i]->state == State::kRunnable) return i;
        }
    }
    return -1;
}

/* Save the running context in `save` and continue at `target`; returns when resumed through
 * `save`. No local lives across the _setjmp. */
__attribute__((noinline)) void save_and_jump(jmp_buf save, jmp_buf target) {
    if (!_setjmp(save)) _longjmp(target, 1);
}

/* Let the next fiber run; returns when `self` is resumed. With nothing runnable control goes
 * back to the scheduler (block finished, or deadlock). */
void switch_away(Fiber *self) {
    const int next = next_runnable(self->linear);
    if (next == self->linear) return; /* the only runnable fiber: keep going */
    if (next < 0) {
        save_and_jump(self->jb, g_sched_jb);
        return;
    }
    g_thread = g_fibers[next]; /* whoever resumes us sets it back to us */
    save_and_jump(self->jb, g_fibers[next]->jb);
}

void thread_exit(Fiber *self);

/* Entry of every fiber: park, then run the kernel body once per block it is resumed for. */
void fiber_main() {
    Fiber *self = g_init_fiber;
    self->parked = true;
    if (!_setjmp(self->jb)) _longjmp(g_sched_jb, 1);
    for (;;) {
        self->parked = false;
        g_launch.body(g_launch.ctx);
        thread_exit(self); /* returns when resumed for the next block */
    }
}

/* (Re)start fiber `f` on its stack and let it park: a fresh fiber, or one left mid-kernel by a
 * failed launch. */
void init_fiber(Fiber *f) {
    static ucontext_t uc;
    if (getcontext(&uc) != 0) abort();
    uc.uc_stack.ss_sp = f->stack_base + getpagesize();
    uc.uc_stack.ss_size = kStackBytes;
    uc.uc_link = nullptr;
    makecontext(&uc, fiber_main, 0);
    g_init_fiber = f;
    if (!_setjmp(g_sched_jb)) setcontext(&uc);
}

Fiber *fiber(int i) {
    while ((int)g_fibers.size() <= i) {
        Fiber *f = new Fiber();
        const size_t page = (size_t)getpagesize();
        void *mem = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mem == MAP_FAILED) {
            perror("bq-emu: fiber stack");
            abort();
        }
        mprotect(mem, page, PROT_NONE); /* a stack overflow faults instead of corrupting */
        f->stack_base = (char *)mem;
        f->parked = false;
        f->linear = (int)g_fibers.size();
        g_fibers.push_back(f);
    }
    return g_fibers[i];
}

const char *barrier_name(BarrierKind k) {
    switch (k) {
    case BARRIER_SYNC: return "__syncthreads";
    case BARRIER_OR: return "__syncthreads_or";
    case BARRIER_AND: return "__syncthreads_and";
    case BARRIER_COUNT: return "__syncthreads_count";
    }
    return "?";
}

void thread_exit(Fiber *self) {
    self->state = State::kDone;
    g_block.alive--;
    g_block.exited++;
    Warp &w = g_block.warps[self->warp];
    const unsigned bit = 1u << self->lane;
    w.exited |= bit;
    if (w.op && (w.expected & bit))
        fail(cudaErrorLaunchFailure, "exited while lanes 0x%08x of its warp wait in %s", w.arrived,
             w.op->name);
    if (g_block.barrier.arrived > 0)
        fail(cudaErrorLaunchFailure, "exited while %d thread(s) wait at %s (%s:%d)",
             g_block.barrier.arrived, barrier_name(g_block.barrier.kind), g_block.barrier.file,
             g_block.barrier.line);
    self->parked = true;
    switch_away(self);
}

/* ---- collectives ---- */

void shuffle_complete(void *const args[32], unsigned participants) {
    for (int lane = 0; lane < 32; lane++) {
        if (!args[lane]) continue;
        ShuffleArg *a = static_cast<ShuffleArg *>(args[lane]);
        if (a->src < 0 || a->src > 31 || !(participants & (1u << a->src)))
            fail(cudaErrorLaunchFailure, "lane %d shuffles from lane %d, which is not in the mask 0x%08x",
                 lane, a->src, participants);
    }
    for (int lane = 0; lane < 32; lane++) {
        if (!args[lane]) continue;
        ShuffleArg *a = static_cast<ShuffleArg *>(args[lane]);
        a->result = static_cast<ShuffleArg *>(args[a->src])->value;
    }
}

void vote_complete(void *const args[32], unsigned participants) {
    unsigned ballot = 0;
    for (int lane = 0; lane < 32; lane++)
        if (args[lane] && static_cast<VoteArg *>(args[lane])->predicate) ballot |= 1u << lane;
    for (int lane = 0; lane < 32; lane++) {
        if (!args[lane]) continue;
        static_cast<VoteArg *>(args[lane])->ballot = ballot;
        static_cast<VoteArg *>(args[lane])->participants = participants;
    }
}

void nothing_complete(void *const[32], unsigned) {}

} // namespace

const WarpOp k_shuffle_op = {"__shfl*_sync", &shuffle_complete};
const WarpOp k_vote_op = {"__ballot_sync / __any_sync / __all_sync", &vote_complete};
const WarpOp k_syncwarp_op = {"__syncwarp", &nothing_complete};

void fail(cudaError_t code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", where().c_str(), msg);
    if (!g_in_kernel) abort(); /* a device function called from host code */
    g_launch.error = code;
    _longjmp(g_sched_jb, 1); /* the fibers of this block are abandoned and restarted later */
}

void warp_collective(const WarpOp *op, unsigned mask, void *arg) {
    Fiber *self = current();
    Warp &w = g_block.warps[self->warp];
    const unsigned bit = 1u << self->lane;
    if (!(mask & bit))
        fail(cudaErrorLaunchFailure, "%s with mask 0x%08x, which does not include the calling lane %d",
             op->name, mask, self->lane);
    const unsigned expected = mask & w.exists;
    if (!w.op) {
        w.op = op;
        w.expected = expected;
        w.arrived = 0;
    } else if (w.op != op || w.expected != expected) {
        fail(cudaErrorLaunchFailure,
             "divergent warp collective: lane %d calls %s (mask 0x%08x) while lanes 0x%08x wait in %s "
             "(mask 0x%08x)", self->lane, op->name, mask, w.arrived, w.op->name, w.expected);
    }
    if (expected & w.exited)
        fail(cudaErrorLaunchFailure, "%s with mask 0x%08x: lanes 0x%08x of it have exited", op->name,
             mask, expected & w.exited);
    w.args[self->lane] = arg;
    w.arrived |= bit;
    if (w.arrived != expected) {
        self->state = State::kWaitWarp;
        self->wait_what = op->name;
        self->wait_file = nullptr;
        switch_away(self);
        return;
    }
    /* last to arrive: run the operation for the whole warp, release the others, then yield like
     * everyone else (the next fiber in order runs) */
    void *args[32];
    for (int lane = 0; lane < 32; lane++) args[lane] = (expected & (1u << lane)) ? w.args[lane] : nullptr;
    w.op = nullptr;
    op->complete(args, expected);
    const int base = self->warp * 32;
    for (int lane = 0; lane < 32; lane++)
        if (expected & (1u << lane)) g_fibers[base + lane]->state = State::kRunnable;
    switch_away(self);
}

unsigned active_lanes() {
    const Warp &w = g_block.warps[current()->warp];
    return w.exists & ~w.exited;
}

int block_barrier(BarrierKind kind, int predicate, const char *file, int line) {
    Fiber *self = current();
    Barrier &b = g_block.barrier;
    if (g_block.exited > 0)
        fail(cudaErrorLaunchFailure, "%s (%s:%d) reached after %d thread(s) of the block exited",
             barrier_name(kind), file, line, g_block.exited);
    if (b.arrived == 0) {
        b.kind = kind;
        b.file = file;
        b.line = line;
        b.count_true = 0;
    } else if (b.kind != kind || b.line != line || strcmp(b.file, file) != 0) {
        fail(cudaErrorLaunchFailure, "divergent barrier: %s (%s:%d) while %d thread(s) wait at %s (%s:%d)",
             barrier_name(kind), file, line, b.arrived, barrier_name(b.kind), b.file, b.line);
    }
    b.arrived++;
    b.count_true += predicate != 0;
    if (b.arrived < g_block.nthreads) {
        self->state = State::kWaitBlock;
        self->wait_what = barrier_name(kind);
        self->wait_file = file;
        self->wait_line = line;
        switch_away(self);
        return b.result;
    }
    switch (kind) {
    case BARRIER_SYNC: b.result = 0; break;
    case BARRIER_OR: b.result = b.count_true > 0; break;
    case BARRIER_AND: b.result = b.count_true == g_block.nthreads; break;
    case BARRIER_COUNT: b.result = b.count_true; break;
    }
    b.arrived = 0;
    for (int i = 0; i < g_block.nthreads; i++)
        if (g_fibers[i]->state == State::kWaitBlock) g_fibers[i]->state = State::kRunnable;
    switch_away(self);
    return b.result; /* not overwritten before we read it: the next barrier needs us too */
}

/* ---- shared memory ---- */

void *dynamic_shared() { return g_dynamic_shared; }

void shared_decl(void *p, size_t bytes) {
    for (SharedRegistration &r : g_shared) {
        if (r.p != p) continue;
        if (r.serial != g_block.serial) {
            r.serial = g_block.serial;
            memset(p, 0xFF, bytes);
            g_block.static_shared += bytes;
        }
        return;
    }
    g_shared.push_back({p, bytes, g_block.serial});
    memset(p, 0xFF, bytes);
    g_block.static_shared += bytes;
}

bool is_shared(const void *p, size_t bytes) {
    const unsigned char *c = static_cast<const unsigned char *>(p);
    if (c >= g_dynamic_shared && c + bytes <= g_dynamic_shared + g_launch.dynamic_bytes) return true;
    for (const SharedRegistration &r : g_shared) {
        const unsigned char *base = static_cast<const unsigned char *>(r.p);
        if (r.serial == g_block.serial && c >= base && c + bytes <= base + r.bytes) return true;
    }
    return false;
}

namespace {

/* ---- launches ---- */

cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) g_last_error = e;
    return e;
}

/* Run the fibers of the prepared block until none is runnable; returns when the block is done,
 * deadlocked or failed. Separate from the block loop so that no local of the loop lives across
 * the _setjmp. */
__attribute__((noinline)) void enter_fibers(int first) {
    if (!_setjmp(g_sched_jb)) {
        g_thread = g_fibers[first];
        _longjmp(g_fibers[first]->jb, 1);
    }
}

std::string describe_deadlock() {
    std::string out = "deadlock:";
    char buf[256];
    /* group consecutive threads in the same wait */
    int i = 0;
    const int n = g_block.nthreads;
    while (i < n) {
        const Fiber *f = g_fibers[i];
        int j = i + 1;
        while (j < n && g_fibers[j]->state == f->state && g_fibers[j]->wait_what == f->wait_what &&
               g_fibers[j]->wait_line == f->wait_line)
            j++;
        switch (f->state) {
        case State::kDone: snprintf(buf, sizeof buf, " threads %d..%d exited;", i, j - 1); break;
        case State::kWaitBlock:
            snprintf(buf, sizeof buf, " threads %d..%d wait at %s (%s:%d);", i, j - 1, f->wait_what,
                     f->wait_file, f->wait_line);
            break;
        case State::kWaitWarp:
            snprintf(buf, sizeof buf, " threads %d..%d wait in %s;", i, j - 1, f->wait_what);
            break;
        case State::kRunnable: snprintf(buf, sizeof buf, " threads %d..%d runnable?;", i, j - 1); break;
        }
        out += buf;
        i = j;
    }
    return out;
}

/* The shared-memory checks a real launch makes; static_bytes < 0 when not known yet. */
cudaError_t check_shared(const char *name, const KernelInfo &k, long static_bytes, size_t dynamic) {
    if (static_bytes < 0) static_bytes = 0;
    if ((size_t)static_bytes > kDefaultSharedBytes) {
        fprintf(stderr, "bq-emu: kernel %s: %ld bytes of static shared memory (ptxas allows 48 KB)\n",
                name, static_bytes);
        return cudaErrorInvalidValue;
    }
    const size_t total = (size_t)static_bytes + dynamic;
    if (k.max_dynamic_shared >= 0 ? dynamic > (size_t)k.max_dynamic_shared : total > kDefaultSharedBytes) {
        fprintf(stderr,
                "bq-emu: kernel %s: %zu bytes of dynamic + %ld static shared memory exceed the limit "
                "(%s)\n", name, dynamic, static_bytes,
                k.max_dynamic_shared >= 0 ? "cudaFuncAttributeMaxDynamicSharedMemorySize"
                                          : "48 KB without the opt-in");
        return cudaErrorInvalidValue;
    }
    if (total > kMaxSharedBytes) {
        fprintf(stderr, "bq-emu: kernel %s: %zu bytes of shared memory (the device has 227 KB)\n",
                name, total);
        return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

bool env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

} // namespace

void run_kernel(const void *kernel, const char *name, dim3 grid, dim3 block, size_t dynamic_smem,
                cudaStream_t stream, void (*body)(void *), void *ctx) {
    (void)stream; /* one device queue, executed at launch: every launch is synchronous */
    if (g_sticky_error != cudaSuccess) return;
    if (g_in_kernel) {
        fprintf(stderr, "bq-emu: kernel %s launched from device code (not supported)\n", name);
        abort();
    }
    const unsigned bdim[3] = {block.x, block.y, block.z}, gdim[3] = {grid.x, grid.y, grid.z};
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    for (int d = 0; d < 3; d++) {
        if (bdim[d] == 0 || bdim[d] > kMaxBlockDim[d] || gdim[d] == 0 || gdim[d] > kMaxGridDim[d]) {
            fprintf(stderr, "bq-emu: kernel %s: invalid configuration grid (%u,%u,%u) block (%u,%u,%u)\n",
                    name, grid.x, grid.y, grid.z, block.x, block.y, block.z);
            set_error(cudaErrorInvalidConfiguration);
            return;
        }
    }
    if (threads > (unsigned long long)kMaxThreadsPerBlock) {
        fprintf(stderr, "bq-emu: kernel %s: %llu threads per block (at most 1024)\n", name, threads);
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    KernelInfo &info = g_kernels[kernel];
    if (info.static_shared >= 0 || dynamic_smem > 0) {
        const cudaError_t rc = check_shared(name, info, info.static_shared, dynamic_smem);
        if (rc != cudaSuccess) {
            set_error(rc);
            return;
        }
    }
    if (!g_dynamic_shared) {
        g_dynamic_shared = static_cast<unsigned char *>(aligned_alloc(1024, kMaxSharedBytes));
        if (!g_dynamic_shared) abort();
    }

    g_launch.name = name;
    g_launch.body = body;
    g_launch.ctx = ctx;
    g_launch.dynamic_bytes = dynamic_smem;
    g_launch.error = cudaSuccess;
    g_grid.block_dim = block;
    g_grid.grid_dim = grid;
    const int n = (int)threads;
    g_block.nthreads = n;
    g_block.reverse = env_flag("BQ_EMU_REVERSE");
    g_block.warps.assign((size_t)(n + 31) / 32, Warp());
    for (int i = 0; i < n; i++) fiber(i);
    g_in_kernel = true;
    bool first_block = true;
    for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
    for (unsigned x = 0; x < grid.x; x++) {
        g_grid.block_idx = make_uint3(x, y, z);
        g_block.serial++;
        g_block.static_shared = 0;
        g_block.alive = n;
        g_block.exited = 0;
        g_block.barrier = Barrier();
        for (size_t w = 0; w < g_block.warps.size(); w++) {
            Warp &warp = g_block.warps[w];
            warp = Warp();
            const int lanes = n - (int)w * 32 >= 32 ? 32 : n - (int)w * 32;
            warp.exists = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
        }
        for (int i = 0; i < n; i++) {
            Fiber *f = g_fibers[i];
            if (!f->parked) init_fiber(f);
            f->idx = make_uint3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
            f->lane = i % 32;
            f->warp = i / 32;
            f->state = State::kRunnable;
            f->wait_what = nullptr;
            f->wait_file = nullptr;
            f->wait_line = 0;
        }
        memset(g_dynamic_shared, 0xFF, dynamic_smem);

        enter_fibers(g_block.reverse ? n - 1 : 0);

        g_thread = nullptr;
        cudaError_t rc = g_launch.error;
        if (rc == cudaSuccess && g_block.alive > 0) {
            fprintf(stderr, "bq-emu: kernel %s block (%u,%u,%u): %s\n", name, x, y, z,
                    describe_deadlock().c_str());
            rc = cudaErrorLaunchFailure;
        }
        if (rc != cudaSuccess) {
            g_in_kernel = false;
            g_sticky_error = rc;
            set_error(rc);
            return;
        }
        if (first_block) {
            /* now the static shared size is known: the checks a real launch makes up front
             * (after this block has run, the first time a kernel is launched) */
            first_block = false;
            if (info.static_shared < 0 && env_flag("BQ_EMU_VERBOSE"))
                fprintf(stderr, "bq-emu: kernel %s: %zu bytes of static shared memory, %zu dynamic, "
                        "grid (%u,%u,%u) block (%u,%u,%u)\n", name, g_block.static_shared,
                        dynamic_smem, grid.x, grid.y, grid.z, block.x, block.y, block.z);
            info.static_shared = (long)g_block.static_shared;
            rc = check_shared(name, info, info.static_shared, dynamic_smem);
            if (rc != cudaSuccess) {
                g_in_kernel = false;
                set_error(rc);
                return;
            }
        }
    }
    g_in_kernel = false;
}

cudaError_t sticky_error() { return g_sticky_error; }

uint64_t block_serial() { return g_block.serial; }

cudaError_t record_error(cudaError_t e) { return set_error(e); }

bool in_device_allocation(const void *p, size_t bytes) {
    const unsigned char *c = static_cast<const unsigned char *>(p);
    auto it = g_allocations.upper_bound(const_cast<void *>(p)); /* first base above p */
    if (it == g_allocations.begin()) return false;
    --it;
    const unsigned char *base = static_cast<const unsigned char *>(it->first);
    return c >= base && bytes <= it->second && (size_t)(c - base) <= it->second - bytes;
}

size_t device_bytes_allocated() {
    size_t total = 0;
    for (const auto &a : g_allocations) total += a.second;
    return total;
}

constexpr size_t kDefaultDeviceMemory = (size_t)80 << 30; /* an H100's 80 GB */
size_t g_device_memory = kDefaultDeviceMemory;

size_t device_memory() { return g_device_memory; }

} // namespace bq_emu

/* ---- the CUDA runtime API, as much of it as our code calls ------------------------------------ */

using bq_emu::g_last_error;
using bq_emu::g_sticky_error;
using bq_emu::set_error;

static const struct {
    cudaError_t code;
    const char *name;
    const char *text;
} k_errors[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration", "invalid configuration argument"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidDevicePointer, "cudaErrorInvalidDevicePointer", "invalid device pointer"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection", "invalid copy direction"},
    {cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver", "driver older than the runtime"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorNotSupported, "cudaErrorNotSupported", "operation not supported"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress", "an illegal memory access was encountered"},
    {cudaErrorMisalignedAddress, "cudaErrorMisalignedAddress", "misaligned address"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorLaunchOutOfResources, "cudaErrorLaunchOutOfResources", "too many resources requested for launch"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorStreamCaptureUnsupported, "cudaErrorStreamCaptureUnsupported", "operation not permitted when stream is capturing"},
    {cudaErrorStreamCaptureInvalidated, "cudaErrorStreamCaptureInvalidated", "operation failed due to a previous error during capture"},
    {cudaErrorIllegalState, "cudaErrorIllegalState", "the operation is not permitted in the current state"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

const char *CUDARTAPI cudaGetErrorName(cudaError_t error) {
    for (const auto &e : k_errors)
        if (e.code == error) return e.name;
    return "unrecognized error code";
}

const char *CUDARTAPI cudaGetErrorString(cudaError_t error) {
    for (const auto &e : k_errors)
        if (e.code == error) return e.text;
    return "unrecognized error code";
}

cudaError_t CUDARTAPI cudaGetLastError(void) {
    if (g_sticky_error != cudaSuccess) return g_sticky_error;
    const cudaError_t e = g_last_error;
    g_last_error = cudaSuccess;
    return e;
}

cudaError_t CUDARTAPI cudaPeekAtLastError(void) {
    return g_sticky_error != cudaSuccess ? g_sticky_error : g_last_error;
}

cudaError_t CUDARTAPI cudaGetDeviceCount(int *count) {
    if (!count) return set_error(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaSetDevice(int device) {
    if (g_sticky_error != cudaSuccess) return g_sticky_error;
    return set_error(device == 0 ? cudaSuccess : cudaErrorInvalidDevice);
}

cudaError_t CUDARTAPI cudaGetDevice(int *device) {
    if (!device) return set_error(cudaErrorInvalidValue);
    *device = 0;
    return cudaSuccess;
}

/* Ends the "context": clears every error, the sticky one included (allocations are kept). */
cudaError_t CUDARTAPI cudaDeviceReset(void) {
    g_sticky_error = cudaSuccess;
    g_last_error = cudaSuccess;
    return cudaSuccess;
}

/* emu_faults.h: a device of another size, and one that runs out of memory from a chosen cudaMalloc
 * on */
extern "C" void bq_emu_set_device_memory(size_t bytes) {
    bq_emu::g_device_memory = bytes ? bytes : bq_emu::kDefaultDeviceMemory;
}

static long g_alloc_fail_from; /* 0: never */
static long g_alloc_calls;     /* cudaMalloc calls since bq_emu_fail_device_alloc_from */
static bool g_alloc_failed;

size_t bq_emu::device_bytes_free() {
    if (g_alloc_failed && g_alloc_fail_from > 0) return 0; /* full */
    const size_t used = device_bytes_allocated(), total = device_memory();
    return used < total ? total - used : 0;
}

extern "C" void bq_emu_fail_device_alloc_from(long n) {
    g_alloc_fail_from = n > 0 ? n : 0;
    g_alloc_calls = 0;
    g_alloc_failed = false;
}

extern "C" int bq_emu_device_alloc_failed(void) { return g_alloc_failed; }

extern "C" long bq_emu_live_device_allocations(void) { return (long)bq_emu::g_allocations.size(); }

static std::string g_fail_api; /* the runtime function bq_emu_fail_call picked */
static long g_fail_at, g_fail_calls;
static bool g_fail_fired;
static bool g_fail_env_read; /* BQ_EMU_FAIL_CALL read, or a bq_emu_fail_call made */

extern "C" void bq_emu_fail_call(const char *api, long n) {
    g_fail_env_read = true; /* the caller's choice, whatever the environment says */
    g_fail_api = api && n > 0 ? api : "";
    g_fail_at = n > 0 ? n : 0;
    g_fail_calls = 0;
    g_fail_fired = false;
}

extern "C" int bq_emu_call_failed(void) { return g_fail_fired; }

/* BQ_EMU_FAIL_CALL=api:n, for programs that cannot call bq_emu_fail_call (the command line's
 * tests): read before the first call that could fail so. */
static void fail_call_from_environment() {
    if (g_fail_env_read) return;
    g_fail_env_read = true;
    const char *v = getenv("BQ_EMU_FAIL_CALL");
    const char *colon = v ? strrchr(v, ':') : nullptr;
    if (!colon) return;
    bq_emu_fail_call(std::string(v, (size_t)(colon - v)).c_str(), atol(colon + 1));
}

bool bq_emu::injected_failure(const char *api) {
    fail_call_from_environment();
    if (g_fail_at <= 0 || g_fail_api != api || ++g_fail_calls != g_fail_at) return false;
    g_fail_fired = true;
    return true;
}

cudaError_t CUDARTAPI cudaMalloc(void **ptr, size_t size) {
    if (g_sticky_error != cudaSuccess) return g_sticky_error;
    if (cudaError_t rc = bq_emu::capture_forbids("cudaMalloc")) return set_error(rc);
    if (!ptr) return set_error(cudaErrorInvalidValue);
    if (g_alloc_fail_from > 0 && ++g_alloc_calls >= g_alloc_fail_from) {
        g_alloc_failed = true;
        return set_error(cudaErrorMemoryAllocation);
    }
    if (size > bq_emu::device_bytes_free()) return set_error(cudaErrorMemoryAllocation);
    const size_t rounded = ((size ? size : 1) + 255) / 256 * 256; /* cudaMalloc aligns to 256 */
    void *p = aligned_alloc(256, rounded);
    if (!p) return set_error(cudaErrorMemoryAllocation);
    bq_emu::g_allocations[p] = size;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaFree(void *ptr) {
    if (g_sticky_error != cudaSuccess) return g_sticky_error;
    if (cudaError_t rc = bq_emu::capture_forbids("cudaFree")) return set_error(rc);
    if (!ptr) return cudaSuccess;
    if (!bq_emu::g_allocations.erase(ptr)) return set_error(cudaErrorInvalidValue);
    free(ptr);
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaMallocHost(void **ptr, size_t size) {
    if (cudaError_t rc = bq_emu::capture_forbids("cudaMallocHost")) return set_error(rc);
    if (!ptr) return set_error(cudaErrorInvalidValue);
    *ptr = malloc(size ? size : 1);
    return *ptr ? cudaSuccess : set_error(cudaErrorMemoryAllocation);
}

cudaError_t CUDARTAPI cudaHostAlloc(void **ptr, size_t size, unsigned int flags) {
    (void)flags; /* host memory is all the emulated device has */
    if (bq_emu::injected_failure("cudaHostAlloc")) return set_error(cudaErrorMemoryAllocation);
    return cudaMallocHost(ptr, size);
}

cudaError_t CUDARTAPI cudaFreeHost(void *ptr) {
    if (cudaError_t rc = bq_emu::capture_forbids("cudaFreeHost")) return set_error(rc);
    free(ptr);
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind) {
    if (g_sticky_error != cudaSuccess) return g_sticky_error;
    if (cudaError_t rc = bq_emu::capture_forbids("cudaMemcpy")) return set_error(rc);
    if ((int)kind < (int)cudaMemcpyHostToHost || (int)kind > (int)cudaMemcpyDefault)
        return set_error(cudaErrorInvalidMemcpyDirection);
    if (count == 0) return cudaSuccess;
    if (!dst || !src) return set_error(cudaErrorInvalidValue);
    memmove(dst, src, count);
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaMemset(void *ptr, int value, size_t count) {
    if (g_sticky_error != cudaSuccess) return g_sticky_error;
    if (cudaError_t rc = bq_emu::capture_forbids("cudaMemset")) return set_error(rc);
    if (count == 0) return cudaSuccess;
    if (!ptr) return set_error(cudaErrorInvalidValue);
    memset(ptr, value, count);
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value) {
    if (g_sticky_error != cudaSuccess) return g_sticky_error;
    if (!func) return set_error(cudaErrorInvalidDeviceFunction);
    bq_emu::KernelInfo &info = bq_emu::g_kernels[func];
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        const long static_bytes = info.static_shared > 0 ? info.static_shared : 0;
        if (value < 0 || (size_t)value + (size_t)static_bytes > bq_emu::kMaxSharedBytes)
            return set_error(cudaErrorInvalidValue);
        info.max_dynamic_shared = value;
    }
    return cudaSuccess; /* carve-out and other hints: accepted, no effect */
}

/* cuda_check.cu maps cuBLAS statuses too; the emulated build links no cuBLAS. */
const char *CUBLASWINAPI cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "unknown cuBLAS status";
}
