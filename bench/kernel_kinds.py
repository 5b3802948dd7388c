"""kernel_kinds.py - where one profiled PyTorch pass spends its device time: GEMM, attention or
other, for bench/peer_pytorch.py's kernel profile (no torch needed here, so the CI tests it).

Time is attributed through the op that launched it, not through kernel names: torch.profiler
charges each CUDA kernel to the aten op whose launch it correlates with (that op's self device
time), and aten's op names are stable where cuBLAS's kernel names are not (nvjet_*, *xmma_gemm*,
cutlass3x_*, and SIMT SGEMMs named just "Kernel2"). On a CPU, each op's self CPU time.
"""
import re

# The ops whose kernels are the dense layers' GEMMs (nn.Linear lands on addmm; matmul and linear
# themselves launch nothing but are listed so a build that launches from them still counts).
GEMM_OP = re.compile(r"^aten::(addmm|mm|bmm|baddbmm|_addmm_activation|matmul|linear)$")
# SDPA's fused kernels: FlashAttention (_flash_attention_forward, ..._flash_attention_for_cpu),
# memory-efficient (_efficient_attention_forward), cuDNN (_scaled_dot_product_cudnn_attention).
# SDPA's math fallback is not fused: its bmm and softmax count as GEMM and other.
ATTENTION_OP = re.compile(r"^aten::.*(attention|sdpa)", re.I)
# GEMM-kind ops that only call another (their self CPU time is a wrapper's, never a GEMM's)
GEMM_WRAPPERS = frozenset({"aten::linear", "aten::matmul"})


def op_kind(name):
    """'attention', 'gemm' or 'other' for an aten op name."""
    if ATTENTION_OP.search(name):
        return "attention"
    return "gemm" if GEMM_OP.search(name) else "other"


def gemm_calls(op_times):
    """How many GEMMs a pass ran: calls of GEMM ops that took time, wrappers not counted."""
    return sum(1 for name, us in op_times
               if us > 0 and name not in GEMM_WRAPPERS and op_kind(name) == "gemm")


def _by_name(times):
    """{name: [microseconds, count]} over (name, microseconds) pairs."""
    by_name = {}
    for name, us in times:
        entry = by_name.setdefault(name, [0.0, 0])
        entry[0] += us
        entry[1] += 1
    return by_name


def _longest(by_name, top):
    return sorted(by_name.items(), key=lambda kv: -kv[1][0])[:top]


def time_by_kind(op_times, top=8):
    """op_times: (op name, self device microseconds) for every op of one pass. Returns
    ({"gemm", "attention", "other", "total": ms, "ops": ops that took time}, the `top` ops by
    time as {"name", "kind", "ms", "calls"})."""
    by_name = _by_name((name, us) for name, us in op_times if us > 0)
    ms = {"gemm": 0.0, "attention": 0.0, "other": 0.0}
    for name, (us, _) in by_name.items():
        ms[op_kind(name)] += us / 1e3
    ms["total"] = ms["gemm"] + ms["attention"] + ms["other"]
    ms["ops"] = sum(n for _, n in by_name.values())
    return ms, [{"name": name, "kind": op_kind(name), "ms": us / 1e3, "calls": n}
                for name, (us, n) in _longest(by_name, top)]


def longest_kernels(kernel_times, top=8):
    """kernel_times: (kernel name, microseconds) of one pass; the `top` names by time as
    {"name" (cut to 200 characters), "ms", "calls"}: which kernels the ops ran, for the reader."""
    return [{"name": name[:200], "ms": us / 1e3, "calls": n}
            for name, (us, n) in _longest(_by_name(kernel_times), top)]
