#!/usr/bin/env bash
# bench/kernel_kinds.py, the peer's kernel profile arithmetic: aten op names as PyTorch's profiler
# reports them (HF BertForQuestionAnswering with SDPA, eager: the ops seen in a CPU profile of
# bench/peer_pytorch.py, plus the CUDA SDPA backends' ops) sorted into GEMM / attention / other,
# and device time summed per kind.
#
#   bash tests/cli_kernel_kinds.sh BERTQA_GPU BERTQA_MAKE_MODEL SRCDIR
# exit 0 pass, 1 fail.
set -u
src=${3:?source dir}
python3 - "$src/bench" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import kernel_kinds as k

kinds = {
    # nn.Linear (Q, K, V, output, FFN, QA head) and the matmul paths
    "aten::addmm": "gemm", "aten::mm": "gemm", "aten::bmm": "gemm", "aten::baddbmm": "gemm",
    "aten::linear": "gemm", "aten::matmul": "gemm", "aten::_addmm_activation": "gemm",
    # SDPA's fused backends and their wrappers
    "aten::scaled_dot_product_attention": "attention",
    "aten::_scaled_dot_product_flash_attention": "attention",
    "aten::_flash_attention_forward": "attention",
    "aten::_scaled_dot_product_efficient_attention": "attention",
    "aten::_efficient_attention_forward": "attention",
    "aten::_scaled_dot_product_cudnn_attention": "attention",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "attention",
    # everything else a BERT pass runs
    "aten::native_layer_norm": "other", "aten::gelu": "other", "aten::add": "other",
    "aten::embedding": "other", "aten::index_select": "other", "aten::copy_": "other",
    "aten::softmax": "other", "aten::_softmax": "other", "aten::split": "other",
    "aten::contiguous": "other", "aten::mul": "other", "aten::to": "other",
    # a kernel name is not an op name: never matched as one
    "ampere_sgemm_128x64_tn": "other", "Kernel2": "other",
}
bad = {name: (k.op_kind(name), want) for name, want in kinds.items() if k.op_kind(name) != want}
assert not bad, f"op_kind (got, want): {bad}"

# one pass: 24 layers x 6 addmm of 10 us, 24 flash calls of 7 us, layernorms, an op with no
# device time (not counted as an op that took time)
ops = [("aten::addmm", 10.0)] * 144 + [("aten::_flash_attention_forward", 7.0)] * 24
ops += [("aten::native_layer_norm", 2.5)] * 48 + [("aten::view", 0.0)] * 100
ms, top = k.time_by_kind(ops, top=2)
assert abs(ms["gemm"] - 1.44) < 1e-12 and abs(ms["attention"] - 0.168) < 1e-12, ms
assert abs(ms["other"] - 0.12) < 1e-12 and abs(ms["total"] - 1.728) < 1e-12, ms
assert ms["ops"] == 216, ms
assert [t["name"] for t in top] == ["aten::addmm", "aten::_flash_attention_forward"], top
assert top[0]["calls"] == 144 and abs(top[0]["ms"] - 1.44) < 1e-12 and top[0]["kind"] == "gemm", top

# GEMMs run: the ops that took time, not the wrappers around them (on a CPU linear has self time)
assert k.gemm_calls([("aten::linear", 3.0), ("aten::addmm", 9.0), ("aten::matmul", 1.0),
                     ("aten::mm", 4.0), ("aten::bmm", 0.0), ("aten::gelu", 2.0)]) == 2

kern = [("nvjet_sm90_hsh_128x96_64x7_1x2_h_bz_TNT", 9.0)] * 3 + [("x" * 300, 30.0)]
longest = k.longest_kernels(kern)
assert longest[0] == {"name": "x" * 200, "ms": 0.03, "calls": 1}, longest
assert longest[1]["calls"] == 3 and abs(longest[1]["ms"] - 0.027) < 1e-12, longest
print("ok: kernel_kinds")
EOF
