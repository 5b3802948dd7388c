#!/usr/bin/env bash
# bench/merge_results.py on a made-up device run (the numbers below are test inputs, not
# measurements): ours vs PyTorch's best mode, a failed configuration filled from the rerun on the
# conservative kernels, parity, stage profiles, GEMM autotuning vs the heuristic, the SQuAD
# end-to-end summary lines (padded and length-bucketed) and issue 5's targets with the stages
# that hold a missed one back; then an empty folder, a peer stopped mid-run and files cut off.
#
#   bash tests/cli_merge_results.sh BERTQA_GPU BERTQA_MAKE_MODEL SRCDIR
# Prints "N passed, N failed"; exit 0 when all pass, 1 otherwise.
set -u
src=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli_merge.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
check_scratch=$tmp
. "$(dirname "$0")/check_lib.sh"

run=$tmp/run
mkdir -p "$run"
cat >"$run/bench.json" <<'EOF'
{"device": "NVIDIA H100 80GB HBM3", "driver": "580.65.06", "gemm_ceiling_tflops": {"fp16": 700, "fp32": 50},
 "layers": 24, "configs": [
  {"precision": "fp16", "batch": 1, "seq_len": 384, "latency_ms": {"p50": 0.70, "p99": 0.75},
   "throughput_seq_s": 1400, "attention": "own-64k3", "attention_own_ms": 0.0140,
   "attention_own_128_ms": 0.0150, "attention_own_32_ms": 0.0090, "attention_own_64k3_ms": 0.0080,
   "attention_own_wgmma_ms": 0.0120, "attention_cudnn_ms": 0,
   "attention_check_worst_diff": 0.0021, "attention_disagreeing": "",
   "gemm_plans": [
    {"rows": 384, "in": 1024, "out": 3072, "dtype": "fp16", "epilogue": "bias", "candidates": 8,
     "chosen": 2, "first_ms": 0.010, "chosen_ms": 0.008, "checked": true,
     "check_worst_diff": 0.0004, "check_disagreeing": 0},
    {"rows": 384, "in": 1024, "out": 4096, "dtype": "fp16", "epilogue": "bias_gelu",
     "candidates": 8, "chosen": 0, "first_ms": 0.012, "chosen_ms": 0.012, "gelu_path": "unfused",
     "checked": true, "check_worst_diff": 0.0007, "check_disagreeing": 0,
     "unfused_ms": 0.014, "fused_large_ms": 0.016, "fused_small_ms": 0.015,
     "fused_pingpong_ms": 0.015}]},
  {"precision": "fp16", "batch": 8, "seq_len": 384, "error": "made-up launch failure"},
  {"precision": "fp16", "batch": 128, "seq_len": 384, "latency_ms": {"p50": 52.2, "p99": 53.0},
   "throughput_seq_s": 2450, "attention": "cudnn", "attention_own_ms": 0.30,
   "attention_own_128_ms": 0.25, "attention_own_32_ms": 0.33, "attention_cudnn_ms": 0.21,
   "attention_check_worst_diff": 0.93, "attention_disagreeing": "own-wgmma",
   "gemm_plans": [
    {"rows": 49152, "in": 1024, "out": 3072, "dtype": "fp16", "epilogue": "bias", "candidates": 8,
     "chosen": 0, "first_ms": 0.40, "chosen_ms": 0.40, "checked": true, "check_worst_diff": null,
     "check_disagreeing": 2},
    {"rows": 49152, "in": 1024, "out": 4096, "dtype": "fp16", "epilogue": "bias_gelu",
     "candidates": 8, "chosen": 1, "first_ms": 0.55, "chosen_ms": 0.50, "checked": true,
     "check_worst_diff": 0.03, "check_disagreeing": 1, "gelu_path": "fused-pingpong", "unfused_ms": 0.70, "fused_large_ms": 0.65,
     "fused_small_ms": 0.80, "fused_pingpong_ms": 0.60, "fused_pingpong_small_ms": 0.90}]},
  {"precision": "fp32", "batch": 8, "seq_len": 384, "latency_ms": {"p50": 80, "p99": 81},
   "throughput_seq_s": 100},
  {"precision": "fp32", "batch": 128, "seq_len": 384, "latency_ms": {"p50": 426, "p99": 430},
   "throughput_seq_s": 300, "attention": "own",
   "gemm_plans": [
    {"rows": 49152, "in": 1024, "out": 3072, "dtype": "fp32", "epilogue": "bias", "candidates": 8,
     "chosen": 0, "first_ms": 6.0, "chosen_ms": 6.0},
    {"rows": 49152, "in": 1024, "out": 4096, "dtype": "fp32", "epilogue": "bias_gelu",
     "candidates": 8, "chosen": 0, "first_ms": 8.0, "chosen_ms": 8.0, "gelu_path": "unfused",
     "unfused_ms": 8.5}]}]}
EOF
cat >"$run/bench-seq192.json" <<'EOF'
{"configs": [{"precision": "fp16", "batch": 1, "seq_len": 192, "latency_ms": {"p50": 0.55, "p99": 0.60},
   "throughput_seq_s": 1800, "attention": "own-32", "first_pass_ms": 120.5}]}
EOF
cat >"$run/peer.json" <<'EOF'
{"torch": "2.9.0", "device": "NVIDIA H100 80GB HBM3", "configs": [
  {"precision": "fp16", "batch": 1, "seq_len": 384, "mode": "eager", "throughput_seq_s": 500,
   "latency_ms": {"p50": 2.0},
   "kernel_ms": {"gemm": 0.0, "attention": 0.0, "other": 0.0, "total": 0.0, "ops": 0}},
  {"precision": "fp16", "batch": 1, "seq_len": 384, "mode": "compile", "throughput_seq_s": 560,
   "latency_ms": {"p50": 1.8}},
  {"precision": "fp16", "batch": 8, "seq_len": 384, "mode": "eager", "throughput_seq_s": 1000,
   "latency_ms": {"p50": 8.0}},
  {"precision": "fp16", "batch": 128, "seq_len": 384, "mode": "eager", "throughput_seq_s": 1800,
   "latency_ms": {"p50": 71.1},
   "kernel_ms": {"gemm": 40.0, "attention": 9.0, "other": 12.0, "total": 61.0, "ops": 800},
   "kernel_profile_warning": "kernels 61.500 ms, charged to ops 61.000",
   "top_ops": [{"name": "aten::addmm", "kind": "gemm", "ms": 40.0, "calls": 144}],
   "top_kernels": [{"name": "nvjet_hsh_256x128_64x4_2x1_v_bz_coopA_TNN", "ms": 20.0,
                    "calls": 48}]},
  {"precision": "fp16", "batch": 128, "seq_len": 384, "mode": "compile", "throughput_seq_s": 2000,
   "latency_ms": {"p50": 64.0}},
  {"precision": "fp32", "batch": 8, "seq_len": 384, "mode": "eager", "throughput_seq_s": 150,
   "latency_ms": {"p50": 53.0}, "kernel_profile_error": "RuntimeError: CUPTI unavailable"},
  {"precision": "fp32", "batch": 128, "seq_len": 384, "mode": "eager", "throughput_seq_s": 280,
   "latency_ms": {"p50": 457}}],
 "skipped": [{"precision": "fp16", "mode": "compile", "batch": 8, "seq_len": 384,
              "reason": "torch.compile child failed (exit 1): Traceback (most recent call last):\n  File \"x.py\" | y\nRuntimeError: boom"},
             {"precision": "fp32", "mode": "graph", "batch": 128, "seq_len": 384,
              "reason": "not tried after a failed capture"}]}
EOF
cat >"$run/bench-fp32x3.json" <<'EOF'
{"configs": [{"precision": "fp32", "batch": 8, "seq_len": 384, "error": "made-up failure"},
 {"precision": "fp32", "batch": 128, "seq_len": 384, "latency_ms": {"p50": 284.4},
  "throughput_seq_s": 450, "gemm_plans": [
   {"rows": 49152, "in": 1024, "out": 3072, "runs_fp32x3": true, "fp32x3_ms": 5.0, "sgemm_ms": 9.0},
   {"rows": 49152, "in": 1024, "out": 1024, "runs_fp32x3": false, "fp32x3_ms": 3.2, "sgemm_ms": 3.0}]}]}
EOF
cat >"$run/bench-profile.json" <<'EOF'
{"configs": [{"precision": "fp16", "batch": 128, "seq_len": 384, "throughput_seq_s": 2440,
  "latency_ms": {"p50": 52.5},
  "profile_ms": {"gemm": 30, "attention": 10, "layernorm": 5, "gemm_gelu": 6, "embeddings": 0.5,
                 "head": 0.5}}]}
EOF
cat >"$run/bench-safe.json" <<'EOF'
{"configs": [{"precision": "fp16", "batch": 8, "seq_len": 384, "latency_ms": {"p50": 3.0},
  "throughput_seq_s": 2666},
 {"precision": "fp16", "batch": 128, "seq_len": 384, "latency_ms": {"p50": 60}, "throughput_seq_s": 2133}]}
EOF
cat >"$run/bench-heuristic.json" <<'EOF'
{"configs": [{"precision": "fp16", "batch": 1, "seq_len": 384, "latency_ms": {"p50": 0.84}}]}
EOF
cat >"$run/parity-fp32.json" <<'EOF'
{"label": "fp32", "rel_err_vs_cpu": 1e-6, "rel_err_vs_hf": 2e-6, "argmax_agree": 30,
 "argmax_total": 30, "passed": true}
EOF
cat >"$run/parity-fp16.json" <<'EOF'
{"label": "fp16", "passed": false, "error": "exit 1: the CPU backend computes in fp32 only",
 "rel_err_hf_at_precision": 9.1e-3, "argmax_hf_at_precision_agree": 28,
 "argmax_hf_at_precision_total": 28}
EOF
cat >"$run/parity-bf16.json" <<'EOF'
{"label": "bf16", "rel_err_vs_cpu": 3.9e-2, "rel_err_vs_hf": 3.8e-2, "argmax_agree": 30,
 "argmax_total": 30, "rel_err_hf_at_precision": 3.7e-2, "argmax_hf_at_precision_agree": 29,
 "passed": false}
EOF
printf 'bertqa-gpu squad: 10570 questions on cuda:0 fp16, batch 128\nbertqa-gpu squad: 10570 questions, 10833 windows in 4.80 s (2202.1 questions/s); engine 4.50 s, host work 3.10 s (overlapped)\n' \
  >"$run/squad-large.log"
printf 'bertqa-gpu squad: 10570 questions, 10833 windows in 3.20 s (3303.1 questions/s); engine 2.90 s, host work 3.00 s (overlapped); 85 engine batches, 1 partial; 2378112 token positions (57.2%% of padded); first passes of 7 shapes 0.90 s\n' \
  >"$run/squad-large-buckets.log"
echo '{"q1": "Romans", "q2": "1987", "q3": "Avon"}' >"$run/pred-large.json"
echo '{"q1": "Romans", "q2": "in 1987", "q3": "Avon"}' >"$run/pred-large-buckets.json"
printf 'bertqa-gpu squad: 10570 questions, 10833 windows in 2.40 s (4404.2 questions/s); engine 2.20 s, host work 2.90 s (overlapped); 84 engine batches, 10 partial; 1956864 token positions (47.0%% of padded); first passes of 4 shapes 0.50 s\n' \
  >"$run/squad-large-packed.log"
echo '{"q1": "the Romans", "q2": "in 1987", "q3": "Avon"}' >"$run/pred-large-packed.json"
printf 'bertqa-gpu squad: 10570 questions, 10833 windows in 2.00 s (5285.0 questions/s); engine 1.80 s, host work 2.90 s (overlapped); 79 engine batches, 0 partial; 1941504 token positions (46.7%% of padded); first passes of 5 shapes 0.10 s\n' \
  >"$run/squad-large-packed-cached.log"
echo '{"q1": "the Romans", "q2": "in 1987", "q3": "Avon"}' >"$run/pred-large-packed-cached.json"
printf 'step\tstatus\tseconds\nbuild\t0\t95\nctest\t8\t61\nsanitizer-racecheck\t124\t100\nparity-large\t77\t1\n' \
  >"$run/steps.tsv"
printf 'ok   attention f16 B=2\nFAIL attention bf16 B=2 S=384: rel_err 3.1e-02 (tol 1e-02)\n[  FAILED  ] test_attention\n' \
  >"$run/ctest.log"
printf 'racecheck output\n(timed out after 100s)\n' >"$run/sanitizer-racecheck.log"
printf '2026/11/27 07:00:00.000, 1980, 2619, 310.5, 41, 0x0000000000000000\n2026/11/27 07:00:00.200, 1755, 2619, 699.0, 55, 0x0000000000000004\n2026/11/27 07:00:00.400, 1830, 2619, 640.0, 57, 0x0000000000000004\n[N/A], garbage\n' \
  >"$run/clocks.csv"
printf 'gemm_fp32_probe on NVIDIA H100 80GB HBM3\nsgemm            49152 x  1024 ->  3072    6.0000 ms    51.5 TFLOP/s  rel error vs fp64 1.10e-07 (1.00x sgemm'"'"'s)\nbf16x9           49152 x  1024 ->  3072   refused (operation not supported when using the device)\ncutlass-3xtf32   49152 x  1024 ->  3072    3.0000 ms   103.1 TFLOP/s  rel error vs fp64 1.65e-07 (1.50x sgemm'"'"'s)\n' \
  >"$run/gemm-fp32.log"
echo "NVIDIA H100 80GB HBM3, 580.65.06" >"$run/nvidia-smi.txt"
echo "0123456789abcdef" >"$run/commit.txt"

check "merge a full run" python3 "$src/bench/merge_results.py" "$run" --archive "$tmp/archive"
check "results.json: rows, ratios, parity, profile, end to end, targets" python3 - "$run/results.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
rows = {(c["precision"], c["batch"]): c for c in r["configs"]}
assert r["device"] == "NVIDIA H100 80GB HBM3" and r["driver"] == "580.65.06", r["device"]
assert r["commit"] == "0123456789abcdef"
short = [c for c in r["configs"] if c["seq_len"] == 192]
assert len(short) == 1 and short[0]["latency_ms_p50"] == 0.55 and short[0]["ratio_vs_pytorch"] is None, short
rows = {(c["precision"], c["batch"]): c for c in r["configs"] if c["seq_len"] == 384}
b128 = rows[("fp16", 128)]
assert b128["source"] == "bench.json" and b128["throughput_seq_s"] == 2450  # a good row stays
assert b128["attention"] == "cudnn" and b128["attention_cudnn_ms"] == 0.21
assert b128["attention_own_128_ms"] == 0.25 and b128["attention_own_32_ms"] == 0.33
b8 = rows[("fp16", 8)]
assert b8["source"] == "bench-safe.json" and b8["throughput_seq_s"] == 2666, b8
assert b8["error"] == "made-up launch failure", b8
assert any("bench-safe.json" in n and "BQ_ATTENTION_KERNEL=mma" in n for n in r["notes"]), r["notes"]
assert b128["pytorch_mode"] == "compile" and b128["pytorch_throughput_seq_s"] == 2000
assert abs(b128["ratio_vs_pytorch"] - 1.225) < 1e-12, b128["ratio_vs_pytorch"]
assert abs(rows[("fp16", 1)]["ratio_vs_pytorch"] - 2.5) < 1e-12 and rows[("fp16", 1)]["pytorch_mode"] == "compile"
assert r["parity"]["fp32"]["rel_err_vs_hf"] == 2e-6 and r["parity"]["fp32"]["passed"] is True
assert r["parity"]["bf16"]["rel_err_hf_at_precision"] == 3.7e-2
assert r["parity"]["bf16"]["argmax_hf_at_precision_agree"] == 29
assert "rel_err_hf_at_precision" not in r["parity"]["fp32"]
assert r["profiles"]["own"]["fp16 batch 128"]["stages_ms"]["gemm"] == 30
e2e = r["end_to_end"]
assert e2e["questions"] == 10570 and e2e["windows"] == 10833 and e2e["forward_seq_s"] == 2450
assert abs(e2e["share_of_forward_rate"] - 10833 / 4.8 / 2450) < 1e-12
assert abs(e2e["engine_idle_share"] - (1 - 4.5 / 4.8)) < 1e-12
lb = r["end_to_end_buckets"]
assert lb["token_positions"] == 2378112 and abs(lb["share_of_padded_positions"] - 0.572) < 1e-12, lb
assert abs(lb["speedup_vs_padded"] - (10570 / 3.2) / (10570 / 4.8)) < 1e-12, lb
assert lb["answers_compared"] == 3 and lb["answers_same_as_padded"] == 2, lb
assert lb["first_pass_shapes"] == 7 and lb["first_pass_s"] == 0.9, lb
assert abs(lb["questions_per_s_after_first_passes"] - 10570 / 2.3) < 1e-9, lb
assert e2e["questions_per_s_after_first_passes"] is None, e2e
assert e2e["token_positions"] is None, e2e  # an older summary line without positions
pk = r["end_to_end_packed"]
assert abs(pk["share_of_padded_positions"] - 0.47) < 1e-12 and pk["engine_batches"] == 84, pk
assert abs(pk["speedup_vs_padded"] - 2.0) < 1e-12, pk
assert pk["answers_same_as_padded"] == 1 and pk["answers_same_as_buckets"] == 2, pk
pc = r["end_to_end_packed_cached"]
assert pc["first_pass_shapes"] == 5 and pc["first_pass_s"] == 0.1, pc
assert pc["answers_compared"] == 3 and pc["answers_same_as_packed"] == 3, pc
t = {x["target"]: x for x in r["targets"]}
assert t["fp16 batch 128 >= 2600 seq/s"]["met"] is False
assert t["fp16 batch 128 >= 2600 seq/s"]["held_back_by"].startswith(
    "gemm 30.000 ms (58%), attention 10.000 ms (19%), gemm_gelu 6.000 ms (12%)"), t
assert t["fp16 batch 1 <= 0.8 ms (p50)"]["met"] is True and "held_back_by" not in t["fp16 batch 1 <= 0.8 ms (p50)"]
assert t["fp16 batch 1 >= 1.5x PyTorch"]["met"] is True
assert t["fp16 batch 128 >= 1.5x PyTorch"]["met"] is False
assert t["fp32 batch 128 >= 1.2x PyTorch"]["met"] is False
assert t["fp32 batch 128 >= 1.2x PyTorch"]["held_back_by"] == "no profile for this configuration"
# a ratio over the bound against eager alone, its compile run skipped: not settled either way
u = t["fp16 batch 8 >= 1.5x PyTorch"]
assert u["met"] is None and abs(u["value"] - 2.666) < 1e-12, u
why = ('torch.compile child failed (exit 1): Traceback (most recent call last): File "x.py" / y '
       'RuntimeError: boom')  # one line, no table-cell separator
assert u["unsettled"] == f"against PyTorch eager only: its compile run was skipped ({why})", u
assert rows[("fp16", 8)]["pytorch_skipped_modes"] == {"compile": why}, rows[("fp16", 8)]
# under the bound it is a miss, whatever mode was skipped
assert rows[("fp32", 128)]["pytorch_skipped_modes"] == {"graph": "not tried after a failed capture"}
assert t["fp32 batch 128 >= 1.2x PyTorch"]["met"] is False and "unsettled" not in t["fp32 batch 128 >= 1.2x PyTorch"]
# a missed ratio without our kernels' sums still says the pass it allows
e = t["fp32 batch 8 >= 1.2x PyTorch"]
assert e["met"] is False and abs(e["pass_allowed_ms"] - 8000 / 150 / 1.2) < 1e-9, e
assert "kernels_alone_ms" not in e and "pytorch_kernel_ms" not in e, e
assert f"PyTorch compile fp16 batch 8 skipped: {why}" in r["notes"], r["notes"]
assert "PyTorch kernel profile fp32 batch 8 failed: RuntimeError: CUPTI unavailable" in r["notes"], r["notes"]
assert "PyTorch kernel profile fp16 batch 128 warns: kernels 61.500 ms, charged to ops 61.000" in r["notes"], r["notes"]
# a missed ratio: the pass the ratio allows, our kernels alone, PyTorch's own GEMM kernels
m = t["fp16 batch 128 >= 1.5x PyTorch"]
assert abs(m["pytorch_pass_ms"] - 64.0) < 1e-9 and m["pytorch_mode"] == "compile", m
assert abs(m["pass_allowed_ms"] - 64.0 / 1.5) < 1e-9, m
assert abs(m["kernels_alone_ms"]["pass_ms"] - 29.04) < 1e-9, m
assert m["pytorch_kernel_ms"]["gemm"] == 40.0 and m["pytorch_kernel_ms"]["total"] == 61.0, m
assert rows[("fp16", 128)]["pytorch_eager_top_ops"][0]["kind"] == "gemm"
assert rows[("fp16", 128)]["pytorch_eager_top_kernels"][0]["calls"] == 48
# fp32: no attention timed alone, so the GEMMs alone (14.5 ms a layer x 24)
f = t["fp32 batch 128 >= 1.2x PyTorch"]["kernels_alone_ms"]
assert f["attention_ms"] is None and abs(f["gemm_ms"] - 348.0) < 1e-9 and abs(f["pass_ms"] - 348.0) < 1e-9, f
assert abs(t["fp32 batch 128 >= 1.2x PyTorch"]["pass_allowed_ms"] - 128000 / 280 / 1.2) < 1e-9
assert t["SQuAD dev end to end >= 90% of the forward-pass rate (fp16 batch 128)"]["met"] is True
st = {x["step"]: x for x in r["steps"]}
assert st["build"]["status"] == "0" and "lines" not in st["build"] and "lines" not in st["parity-large"]
assert st["ctest"]["lines"] == ["FAIL attention bf16 B=2 S=384: rel_err 3.1e-02 (tol 1e-02)",
                                "[  FAILED  ] test_attention"], st["ctest"]
assert st["sanitizer-racecheck"]["lines"] == ["(timed out after 100s)"], st["sanitizer-racecheck"]
g = r["gemm_choices"]
assert len(g) == 3 and g[0]["batch"] == 1 and g[0]["gelu_path"] == ["unfused"], g
assert g[1]["batch"] == 128 and g[1]["gelu_path"] == ["fused-pingpong"], g
assert g[2]["precision"] == "fp32" and g[2]["gelu_path"] == ["unfused"], g
assert abs(g[0]["layer_gemm_ms_first_choice"] - 0.022) < 1e-12 and abs(g[0]["layer_gemm_ms_chosen"] - 0.020) < 1e-12
# the GEMM candidates' output check: largest difference and how many were left out, per config
assert g[0]["checked_plans"] == 2 and g[0]["check_worst_diff"] == 0.0007 and g[0]["check_disagreeing"] == 0, g[0]
assert g[1]["checked_plans"] == 2 and g[1]["check_worst_diff"] is None and g[1]["check_disagreeing"] == 3, g[1]
assert g[2]["checked_plans"] == 0 and g[2]["check_worst_diff"] is None, g[2]
x = r["fp32x3"]
assert x[0] == {"batch": 8, "error": "made-up failure"}, x
assert x[1]["batch"] == 128 and x[1]["latency_ms_p50"] == 284.4 and x[1]["gemms_3xtf32"] == 1, x
assert x[1]["gemms"] == 2 and abs(x[1]["vs_sgemm"] - 1.5) < 1e-12, x
assert abs(x[1]["ratio_vs_pytorch"] - 450 / 280) < 1e-12, x
p = r["fp32_gemm_probe"]
assert [x["kernel"] for x in p] == ["sgemm", "bf16x9", "cutlass-3xtf32"], p
assert p[0]["rows"] == 49152 and p[0]["in"] == 1024 and p[0]["out"] == 3072 and p[0]["ms"] == 6.0, p
assert p[2]["tflops"] == 103.1 and p[2]["rel_error_vs_fp64"] == 1.65e-07, p
assert p[1]["refused"] == "operation not supported when using the device" and "ms" not in p[1], p
c = r["clocks"]
assert c["samples"] == 3 and c["sm_mhz_median"] == 1830 and c["sm_mhz_min"] == 1755, c
assert c["power_w_max"] == 699.0 and c["temperature_c_max"] == 57, c
assert c["clock_event_reasons"] == {"0x0000000000000000": 1, "0x0000000000000004": 2}, c
a = r["gemm_autotune"]
assert len(a) == 1 and a[0]["batch"] == 1 and abs(a[0]["speedup"] - 1.2) < 1e-12, a
t = {x["target"]: x for x in r["targets"]}["fp16 batch 128 >= 2600 seq/s"]
k = t["kernels_alone_ms"]
assert abs(k["gemm_ms"] - 24.0) < 1e-9 and abs(k["attention_ms"] - 5.04) < 1e-9, t
assert abs(k["pass_ms"] - 29.04) < 1e-9 and abs(t["pass_allowed_ms"] - 128 / 2.6) < 1e-9, t
assert "kernels_alone_ms" not in {x["target"]: x for x in r["targets"]}["fp16 batch 1 <= 0.8 ms (p50)"]
print("ok")
EOF
check "results.md: table, targets, profile" grep -q -e '| fp16 batch 128 >= 2600 seq/s | 2.45e+03 | \*\*no\*\*: gemm 30.000 ms' "$run/results.md"
check "results.md: parity beside Hugging Face's own precision" grep -q -e '^| bf16 | 3.90e-02 | 3.80e-02 | 3.70e-02 |$' "$run/results.md"
check "results.md: Hugging Face's own where ours failed" grep -q -e '^| fp16 | - | - | 9.10e-03 |$' "$run/results.md"
check "results.md: parity without it" grep -q -e '^| fp32 | 1.00e-06 | 2.00e-06 | - |$' "$run/results.md"
check "results.md: attention choice" grep -q -e '^| fp16 batch 128 seq 384, cuDNN attention | 52.200 ' "$run/results.md"
check "results.md: our 64-row tiling with split keys" grep -q -e '^| fp16 batch 1 seq 384, own attention in 64-row blocks, keys split in three | 0.700 ' "$run/results.md"
check "results.md: attention timings" grep -q -e 'fp16 batch 1 0.014 / 0.015 / 0.009 / 0.008 / 0.012 / - / - (own-64k3), fp16 batch 128 0.300 / 0.250 / 0.330 / - / - / - / 0.210 (cudnn)$' "$run/results.md"
check "results.md: attention outputs checked" grep -q -e '^Attention candidates. outputs vs the 64-row tiling.s on the first pass (largest difference, normwise or of the worst element; left out for differing by more than 2e-2): fp16 batch 1 2.1e-03, fp16 batch 128 9.3e-01 (left out: own-wgmma)$' "$run/results.md"
check "results.md: GEMM outputs checked" grep -q -e '^GEMM candidates. outputs vs their stage.s reference on the first call, before the timing (largest difference, normwise or of the worst element; left out for differing by more than 1e-4 in fp32, 2e-2 else): fp16 batch 1 7.0e-04, fp16 batch 128 not finite (3 left out)$' "$run/results.md"
check "results.md: GEMM choices" grep -q -e '- GEMMs of one layer, fp16 batch 1: 0.0200 ms with the timed choices vs 0.0220 ms .*GELU: unfused$' "$run/results.md"
check "results.md: kernels timed alone vs the target" grep -q -e '| fp16 batch 128 >= 2600 seq/s | 2.45e+03 | \*\*no\*\*: gemm 30.000 ms .*; the pass may take 49.23 ms, and the kept GEMMs and attention, each timed alone, add up to 29.04 (24.00 + 5.04) before layernorms; what would move it: the kept kernels fit, so the 23.20 ms of our pass outside them (layernorms, embeddings, the head, the gaps between kernels and the clocks under load), 3.01 ms too many |$' "$run/results.md"
check "results.md: a ratio not settled" grep -q -e '^| fp16 batch 8 >= 1.5x PyTorch | 2.67 | not settled: against PyTorch eager only: its compile run was skipped (torch.compile child failed (exit 1): Traceback (most recent call last): File "x.py" / y RuntimeError: boom) |$' "$run/results.md"
check "results.md: a missed ratio without our kernels' sums" grep -q -e '^| fp32 batch 8 >= 1.2x PyTorch | 0.667 | \*\*no\*\*: no profile for this configuration; the pass may take 44.44 ms (PyTorch.s, eager: 53.33) |$' "$run/results.md"
check "results.md: a missed ratio, against PyTorch's pass and GEMMs" grep -q -e '^| fp16 batch 128 >= 1.5x PyTorch | 1.23 | \*\*no\*\*: gemm 30.000 ms .*; the pass may take 42.67 ms (PyTorch.s, compile: 64.00), and the kept GEMMs and attention, each timed alone, add up to 29.04 (24.00 + 5.04) before layernorms; PyTorch.s own GEMM kernels take 40.00 ms of its 61.00 ms of kernels (one profiled eager pass); what would move it: the kept kernels fit, so the 23.20 ms of our pass outside them (layernorms, embeddings, the head, the gaps between kernels and the clocks under load), 9.58 ms too many |$' "$run/results.md"
check "results.md: fp32, GEMMs alone" grep -q -e '^| fp32 batch 128 >= 1.2x PyTorch | 1.07 | \*\*no\*\*: no profile for this configuration; the pass may take 380.95 ms (PyTorch.s, eager: 457.14), and the kept GEMMs, each timed alone, add up to 348.00 before attention and layernorms; what would move it: the kept kernels fit, so the 78.67 ms of our pass outside them (attention, layernorms, embeddings, the head, the gaps between kernels and the clocks under load), 45.71 ms too many |$' "$run/results.md"
check "results.md: PyTorch's kernels by kind" grep -q -e '^PyTorch.s kernels in one profiled eager pass, by kind (ms; GEMM / attention / other, of the kernels. total): fp16 batch 128 40.000 / 9.000 / 12.000 of 61.000$' "$run/results.md"
check "results.md: length buckets" grep -q -e '^The same with length buckets of 64 (windows sorted by length, each batch cut to its longest): 3.20 s = 3303.1 questions/s (1.50x the padded run), 57.2% of the padded token positions; engine 2.90 s (of which the first passes of its 7 pass shapes 0.90 s; 4595.7 questions/s without them); answers as the padded run.s on 2 of 3 questions$' "$run/results.md"
check "results.md: packed" grep -q -e '^The same packed (windows back to back with no padding, each attending to itself): 2.40 s = 4404.2 questions/s (2.00x the padded run), 47.0% of the padded token positions; engine 2.20 s (of which the first passes of its 4 pass shapes 0.50 s; 5563.2 questions/s without them); answers as the padded run.s on 1 of 3 questions; answers as the buckets run.s on 2 of 3 questions$' "$run/results.md"
check "results.md: packed again with the tuning cache" grep -q -e '^The same packed again, with the decisions the packed run kept in its tuning cache: 2.00 s = 5285.0 questions/s (2.40x the padded run), 46.7% of the padded token positions; engine 1.80 s (of which the first passes of its 5 pass shapes 0.10 s; 5563.2 questions/s without them); answers as the packed run.s on 3 of 3 questions$' "$run/results.md"
check "results.md: first passes, a 192-token row labelled" grep -q -e '^First pass of a batch size (fp16; setup included) vs its p50: batch 1 seq 192 120.5 ms vs 0.55 ms$' "$run/results.md"
check "results.md: fp32 with 3xTF32" grep -q -e '^fp32 with CUTLASS.s 3xTF32 GEMM timed against SGEMM (BQ_FP32_3XTF32=1; its parity is the fp32x3 row above): batch 8: made-up failure; batch 128 450.0 seq/s (1.50x our SGEMM fp32, 1.61x PyTorch fp32), 1 of 2 GEMM shapes on 3xTF32$' "$run/results.md"
check "results.md: fp32 GEMM probe" grep -q -e '^| cutlass-3xtf32 | 49152 x 1024 -> 3072 | 3.0000 | 103.1 | 1.65e-07 |$' "$run/results.md"
check "results.md: fp32 GEMM probe, refused" grep -q -e '^| bf16x9 | 49152 x 1024 -> 3072 | refused: operation not supported when using the device | - | - |$' "$run/results.md"
check "results.md: clocks" grep -q -e '^Clocks while the timed steps ran (3 nvidia-smi samples): SM median 1830 MHz (min 1755, max 1980), power median 640 W (max 699)' "$run/results.md"
check "results.md: failed steps" grep -q -e '^Steps: 4, failed: ctest (8), sanitizer-racecheck (124)$' "$run/results.md"
# what would move a missed target, in its other two cases: GEMMs alone over the pass allowed, and
# GEMMs + attention over it (a p50 under the kept kernels' sum adds nothing)
check "what would move it: GEMMs, or GEMMs and attention" python3 - "$src/bench" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from merge_results import target_move_text
t = {"pass_allowed_ms": 0.8, "pass_ms": 1.2,
     "kernels_alone_ms": {"gemm_ms": 0.97, "attention_ms": 0.25, "pass_ms": 1.22}}
assert target_move_text(t) == ("; what would move it: GEMMs faster than the kept ones, whose 0.97 "
                               "ms alone exceed the 0.80 allowed, so nothing else can"), target_move_text(t)
t = {"pass_allowed_ms": 49.23, "pass_ms": 64.05,
     "kernels_alone_ms": {"gemm_ms": 43.01, "attention_ms": 9.31, "pass_ms": 52.32}}
assert target_move_text(t) == ("; what would move it: faster GEMMs or attention, 3.09 ms over the "
                               "allowed between them, and the 11.73 ms of our pass outside them on "
                               "top"), target_move_text(t)
assert target_move_text({"pass_allowed_ms": 0.8}) == ""
EOF
# an archived results.json read back under today's rules gives the same targets table
check "retarget an archived run" sh -c 'python3 "$1/bench/merge_results.py" --retarget "$2/results.json" >"$2/retarget.md" &&
  awk "/^\| target \| value \| met \|\$/ {on = 1} on && /^\$/ {exit} on" "$2/results.md" >"$2/targets.md" &&
  [ -s "$2/targets.md" ] && diff "$2/targets.md" "$2/retarget.md"' sh "$src" "$run"
# an archive from before rows kept the peer's skipped modes: they come back from its notes
check "retarget an older archive (skips from the notes)" sh -c 'python3 - "$2/results.json" "$2/old.json" <<EOF4 &&
import json, sys
r = json.load(open(sys.argv[1]))
for row in r["configs"]:
    row.pop("pytorch_skipped_modes", None)
json.dump(r, open(sys.argv[2], "w"))
EOF4
  python3 "$1/bench/merge_results.py" --retarget "$2/old.json" >"$2/retarget-old.md" &&
  diff "$2/targets.md" "$2/retarget-old.md"' sh "$src" "$run"
check "archive named date_card_commit" sh -c 'ls "$1"/*_NVIDIA-H100-80GB-HBM3_0123456789ab.json' sh "$tmp/archive"

# A run that produced nothing still merges, with every target "not measured".
mkdir -p "$tmp/empty"
echo "unknown" >"$tmp/empty/commit.txt"
check "merge an empty run" python3 "$src/bench/merge_results.py" "$tmp/empty"
check "empty run: notes and unmeasured targets" python3 - "$tmp/empty/results.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["configs"] == [] and r["end_to_end"] is None and r["end_to_end_buckets"] is None, r
assert r["end_to_end_packed"] is None and r["end_to_end_packed_cached"] is None, r
assert "no bench.json: our columns empty" in r["notes"]
assert all(t["met"] is None for t in r["targets"]) and r["targets"], r["targets"]
EOF

# A peer that ran eager only, with nothing skipped (compile off, or a peer killed before it): an
# fp16 ratio over the bound is not settled (fp16's peer is torch.compile where it compiles), an
# fp32 one is met against eager; our failed configuration is a miss that says so, not a gap; a row
# from another bench run (bench-seq192.json) gets its share of the ceiling this results.json
# records; a bench.json written before its run ended ("complete": false) is said to be partial
mkdir -p "$tmp/eager"
cat >"$tmp/eager/bench.json" <<'EOF'
{"device": "NVIDIA H100 80GB HBM3", "gemm_ceiling_tflops": {"fp16": 800, "tf32": 400, "fp32": 50}, "complete": false,
 "layers": 24, "configs": [
  {"precision": "fp16", "batch": 1, "seq_len": 384, "latency_ms": {"p50": 0.70, "p99": 0.75},
   "throughput_seq_s": 1400, "tflops": 345.0, "ceiling_share": 0.43},
  {"precision": "fp16", "batch": 8, "seq_len": 384, "error": "made-up launch failure"},
  {"precision": "fp32", "batch": 1, "seq_len": 384, "latency_ms": {"p50": 7.0, "p99": 7.5},
   "throughput_seq_s": 140, "tflops": 34.5, "ceiling_share": 0.69}]}
EOF
cat >"$tmp/eager/bench-seq192.json" <<'EOF'
{"configs": [{"precision": "fp16", "batch": 1, "seq_len": 192, "latency_ms": {"p50": 0.55, "p99": 0.60},
   "throughput_seq_s": 1800, "tflops": 200.0, "ceiling_share": 0.25}]}
EOF
cat >"$tmp/eager/peer.json" <<'EOF'
{"torch": "2.9.0", "configs": [
  {"precision": "fp16", "batch": 1, "seq_len": 384, "mode": "eager", "throughput_seq_s": 500, "latency_ms": {"p50": 2.0}},
  {"precision": "fp16", "batch": 8, "seq_len": 384, "mode": "eager", "throughput_seq_s": 1000, "latency_ms": {"p50": 8.0}},
  {"precision": "fp32", "batch": 1, "seq_len": 384, "mode": "eager", "throughput_seq_s": 100, "latency_ms": {"p50": 10.0}}],
 "skipped": []}
EOF
check "merge a run whose peer ran eager only" python3 "$src/bench/merge_results.py" "$tmp/eager"
check "eager-only peer: fp16 not settled, fp32 met, our failure a miss, shares of one ceiling" python3 - "$tmp/eager/results.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
t = {x["target"]: x for x in r["targets"]}
u = t["fp16 batch 1 >= 1.5x PyTorch"]
assert u["met"] is None and abs(u["value"] - 2.8) < 1e-12, u
assert u["unsettled"] == "against PyTorch eager only: its compile run was not run", u
assert t["fp32 batch 1 >= 1.2x PyTorch"]["met"] is True and "unsettled" not in t["fp32 batch 1 >= 1.2x PyTorch"]
f = t["fp16 batch 8 >= 1.5x PyTorch"]
assert f["met"] is False and f["held_back_by"] == "our run failed: made-up launch failure", f
rows = {(c["precision"], c["batch"], c["seq_len"]): c for c in r["configs"]}
assert abs(rows[("fp16", 1, 192)]["ceiling_share"] - 200 / 800) < 1e-12, rows[("fp16", 1, 192)]
assert abs(rows[("fp16", 1, 384)]["ceiling_share"] - 345 / 800) < 1e-12, rows[("fp16", 1, 384)]
assert abs(rows[("fp32", 1, 384)]["ceiling_share"] - 34.5 / 50) < 1e-12, rows[("fp32", 1, 384)]
assert "bench.json is incomplete: the bench was stopped after 3 configuration(s); the rest are missing" in r["notes"], r["notes"]
EOF

# A peer stopped during its compile runs left the report it wrote before them: merged, and said
mkdir -p "$tmp/stopped"
echo '{"torch": "2.9.0", "pending": "torch.compile runs", "configs": [{"precision": "fp16", "batch": 1, "seq_len": 384, "mode": "eager", "throughput_seq_s": 500, "latency_ms": {"p50": 2.0}}], "skipped": []}' \
  >"$tmp/stopped/peer.json"
check "merge a run whose peer was stopped" python3 "$src/bench/merge_results.py" "$tmp/stopped"
check "stopped peer: its rows kept, the missing runs said" python3 - "$tmp/stopped/results.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert [(c["precision"], c["batch"], c["pytorch_throughput_seq_s"]) for c in r["configs"]] == [("fp16", 1, 500)], r["configs"]
assert any(n.startswith("peer.json is the peer's report from before its torch.compile runs") for n in r["notes"]), r["notes"]
EOF

# A step output cut off while written (a step killed at its limit): left out and named, the rest
# merged (before, one bad file ended the whole merge)
mkdir -p "$tmp/cut"
cp "$tmp/stopped/peer.json" "$tmp/cut/peer.json"
printf '{"label": "fp16", "rel_err_vs_cpu": 0.0' >"$tmp/cut/parity-fp16.json"
printf '{"configs": [' >"$tmp/cut/bench-heuristic.json"
check "merge a run with files cut off" python3 "$src/bench/merge_results.py" "$tmp/cut"
check "cut-off files: named in the notes, the rest merged" python3 - "$tmp/cut/results.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert [(c["precision"], c["batch"]) for c in r["configs"]] == [("fp16", 1)], r["configs"]
assert r["parity"] == {}, r["parity"]
cut = sorted(n.split()[0] for n in r["notes"] if "could not be read" in n)
assert cut == ["bench-heuristic.json", "parity-fp16.json"], r["notes"]
EOF

check_summary
