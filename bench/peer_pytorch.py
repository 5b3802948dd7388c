#!/usr/bin/env python3
"""PyTorch / Hugging Face peer for bertqa-gpu: the same BERT checkpoint timed side by side, and an
fp32 logits dump for parity checks.

Needs only torch, transformers (5.x; 4.x works too), safetensors and numpy; no network.

Timing (what our `bertqa-gpu bench` measures, same inputs):
    python3 bench/peer_pytorch.py --model DIR --json peer.json \
        [--device cuda|cpu] [--batch 1,8,32,128] [--seq-len 384] [--precision fp16,tf32,fp32] \
        [--compile auto|on|off] [--max-seconds 110]

  Inputs: token ids drawn uniformly (seeded) from [1000, vocab_size) so no id is 0 ([PAD]),
  input_mask all ones (every one of the seq_len tokens is real: padded-384 timing), segment ids 0 for
  the first 64 positions and 1 after. Inputs are created on the device once; a timed iteration is
  one forward pass (ids on device in, logits left on device), measured with CUDA events around the
  call (on CPU, perf_counter), so launch overhead counts. Precisions: fp32 = tf32 off for matmul and
  cuDNN; tf32 = tf32 allowed; fp16 = model.half(), bf16 (opt-in) = model.to(bfloat16). Attention is SDPA (attn_implementation="sdpa").
  Eager runs in this process; so do CUDA graph replays of the eager model (mode "graph", default
  on CUDA, fp32 only, since fp16 replays ran 3.4x slower than eager (see capture_graph), and at
  the smallest batch only: one capture per batch, no mask since every timing token is real), the
  fair peer at small batches; torch.compile runs (default on CUDA, fp16 only) run in a child
  process killed at the time budget, so a slow or failing compile is skipped cleanly.
  Kernel profile (default on, fp16 and fp32): after all the eager and graph timings (so none runs
  after the profiler has used CUPTI), one more pass per eager configuration under
  torch.profiler, its device time summed by kind (GEMM, attention, other; charged to the aten
  ops that launched it: bench/kernel_kinds.py) into the entry's "kernel_ms", with the longest
  ops in "top_ops" and kernels in "top_kernels": how much of PyTorch's own pass is the same
  cuBLAS GEMMs ours runs, the floor any ratio against it has to clear.

Parity dump:
    python3 bench/peer_pytorch.py --model DIR --dump-logits INPUTS.npz OUT.npz [--device cuda]
  INPUTS.npz holds input_ids, input_mask, segment_ids (integers, [B,S] or [S]); OUT.npz gets
  start_logits, end_logits (float32 [B,S]) computed in fp32 with tf32 off.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

import kernel_kinds  # this folder's; the script's folder is on sys.path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
# the same Hugging Face model as the parity checks, and its conversion per precision
from hf_logits import load_model, precision_model, set_tf32  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only, never the hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

FIRST_SEGMENT_LEN = 64  # segment ids: this many 0s (the question), then 1s (the context)
LOWEST_RANDOM_ID = 1000  # above [PAD]=0, [UNK]/[CLS]/[SEP]/[MASK] and the unused ids


def forward_logits(model, ids, mask, segments):
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=segments)
    return out.start_logits, out.end_logits


def flop_per_sequence(cfg, seq_len):
    """Matmul FLOP of one padded sequence: weight GEMMs + QK^T and PV (embeddings/LN/softmax ignored)."""
    h, inter, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    weight_macs_per_token = layers * (4 * h * h + 2 * h * inter) + 2 * h
    return 2.0 * weight_macs_per_token * seq_len + 4.0 * seq_len * seq_len * h * layers


def make_inputs(cfg, batch, seq_len, seed, device):
    """Timing inputs: [batch, seq_len] int64 ids/mask/segments (see the module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(LOWEST_RANDOM_ID, cfg.vocab_size, (batch, seq_len), generator=gen,
                        dtype=torch.long)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    segments = torch.ones(batch, seq_len, dtype=torch.long)
    segments[:, :min(FIRST_SEGMENT_LEN, seq_len)] = 0
    return ids.to(device), mask.to(device), segments.to(device)


def percentile(sorted_values, q):
    """Linear-interpolated percentile (numpy's default) of an already sorted list."""
    return float(np.percentile(np.asarray(sorted_values), q))


def profile_kernels(model, cfg, device, batch, seq_len, seed):
    """One forward pass (the timed inputs) under torch.profiler, after one unrecorded warm-up pass
    in the same session: its device time by kind, charged to the aten ops that launched it
    (kernel_kinds.time_by_kind), and its longest kernels by name. On CUDA the kernels' own
    durations (CUPTI), so launch gaps and host time are not in the total, and two checks: the
    kernels' own total next to what the ops were charged ("kernel_total", "unattributed": a
    kernel charged to no op, or to two, shows there), and the GEMM ops' calls (HF BERT: 6 a
    layer + the QA head). On a CPU each op's self CPU time."""
    from torch.profiler import ProfilerActivity, profile, schedule
    ids, mask, segments = make_inputs(cfg, batch, seq_len, seed, device)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch.inference_mode():
        if cuda:
            torch.cuda.synchronize(device)
        with profile(activities=activities,
                     schedule=schedule(wait=0, warmup=1, active=1, repeat=1)) as prof:
            for _ in range(2):  # the warm-up pass, then the recorded one
                forward_logits(model, ids, mask, segments)
                if cuda:
                    torch.cuda.synchronize(device)
                prof.step()
    ops, kernels = [], []
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CPU:
            # aten ops only: runtime and profiler records that alias an op's correlation id
            # would be charged a copy of its kernels
            if not e.name.startswith("aten::"):
                continue
            # self_device_time_total since PyTorch 2.4 (self_cuda_time_total before)
            us = (getattr(e, "self_device_time_total", None) if cuda else e.self_cpu_time_total)
            if us is None:
                us = e.self_cuda_time_total
            ops.append((e.name, us))
        elif cuda:
            kernels.append((e.name, e.time_range.elapsed_us()))
    by_kind, top_ops = kernel_kinds.time_by_kind(ops)
    by_kind["gemm_calls"] = kernel_kinds.gemm_calls(ops)
    if cuda:
        by_kind["kernel_total"] = sum(us for _, us in kernels) / 1e3
        by_kind["unattributed"] = by_kind["kernel_total"] - by_kind["total"]
    return by_kind, top_ops, kernel_kinds.longest_kernels(kernels)


def capture_graph(model, ids, segments, device, warmup):
    """One forward pass captured in a CUDA graph (torch.cuda.CUDAGraph); returns (graph, outputs).
    The timing inputs are all real tokens, so the pass runs without an attention mask: the same
    arithmetic, and no data-dependent check of the mask (a host sync) inside the capture. Warm-up
    on a side stream first, as PyTorch's CUDA graph notes ask, and the capture on that same
    (warmed) stream. In fp16 the replays ran 3.4x slower than eager at batch 128 on the H200
    (PyTorch 2.11: 241.8 ms vs 70.3 in run c50aca4, and 239.6 vs 69.5 in run 91c41e6, which
    captured on the warmed stream); cause not found, so fp16 is off the default graph
    precisions."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(max(warmup, 1)):
            forward_logits(model, ids, None, segments)
    side.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):
        outputs = forward_logits(model, ids, None, segments)
    torch.cuda.current_stream(device).wait_stream(side)
    return graph, outputs


def time_config(model, cfg, device, batch, seq_len, args, deadline, graphed=False):
    """Warm up, then time forward passes (with `graphed`, replays of one captured in a CUDA
    graph); returns the result dict (latencies in ms)."""
    ids, mask, segments = make_inputs(cfg, batch, seq_len, args.seed, device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        if graphed:
            graph, _ = capture_graph(model, ids, segments, device, args.warmup)
            step = graph.replay
        else:
            def step():
                forward_logits(model, ids, mask, segments)
        for _ in range(args.warmup):
            step()
        if cuda:
            torch.cuda.synchronize(device)
        # Size the run from one timed pass: at least --min-iters, at most --iters, about
        # --seconds-per-config, and never past the deadline.
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize(device)
        one = max(time.perf_counter() - t0, 1e-6)
        left = deadline - time.monotonic()
        iters = int(min(args.iters, args.seconds_per_config / one, left / one))
        iters = max(iters, args.min_iters)
        latencies = []
        if cuda:
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                      for _ in range(iters)]
            for start, end in events:
                start.record()
                step()
                end.record()
            torch.cuda.synchronize(device)
            latencies = [start.elapsed_time(end) for start, end in events]
        else:
            for _ in range(iters):
                t0 = time.perf_counter()
                step()
                latencies.append((time.perf_counter() - t0) * 1e3)
    latencies.sort()
    mean = sum(latencies) / len(latencies)
    result = {
        "batch": batch, "seq_len": seq_len, "iters": iters,
        "latency_ms": {"mean": mean, "min": latencies[0], "p50": percentile(latencies, 50),
                       "p90": percentile(latencies, 90), "p99": percentile(latencies, 99)},
        "throughput_seq_s": batch * 1e3 / mean,
        "tflops": flop_per_sequence(cfg, seq_len) * batch / (mean * 1e-3) / 1e12,
    }
    if cuda:
        result["device_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
    return result


def add_kernel_profile(entry, model, cfg, device, args):
    """entry["kernel_ms"], ["top_ops"] and ["top_kernels"] from one profiled pass; a profiler
    that fails leaves kernel_profile_error instead and never the timing."""
    try:
        entry["kernel_ms"], entry["top_ops"], entry["top_kernels"] = profile_kernels(
            model, cfg, device, entry["batch"], entry["seq_len"], args.seed)
        k = entry["kernel_ms"]
        expected = 6 * cfg.num_hidden_layers + 1  # Q, K, V, attention out, FFN in, out; head
        problems = []
        if k["gemm_calls"] != expected:
            problems.append(f"{k['gemm_calls']} GEMM op calls where BERT has {expected}")
        if abs(k.get("unattributed", 0.0)) > 0.01 * max(k.get("kernel_total", 0.0), 1e-9):
            problems.append(f"kernels {k['kernel_total']:.3f} ms, charged to ops {k['total']:.3f}")
        if problems:
            entry["kernel_profile_warning"] = "; ".join(problems)
        log(f"profiled eager {entry['precision']} batch {entry['batch']}: GEMM {k['gemm']:.3f} "
            f"ms, attention {k['attention']:.3f}, other {k['other']:.3f}, of {k['total']:.3f} ms "
            f"(device time of {k['ops']} ops)" + (f"; warning: {entry['kernel_profile_warning']}"
                                                  if problems else ""))
    except Exception as e:  # report and go on: the profile is evidence, the timing the result
        entry["kernel_profile_error"] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"
        log(f"profiled eager {entry['precision']} batch {entry['batch']}: failed: "
            f"{entry['kernel_profile_error']}")


def run_kernel_profiles(model, cfg, device, args, deadline, results):
    """The kernel profile of every eager entry of args.kernel_profile_precisions, after all the
    in-process timing (so that no timing runs after the profiler has touched CUPTI)."""
    for precision in args.kernel_profile_precisions:
        entries = [e for e in results if e["mode"] == "eager" and e["precision"] == precision]
        if not entries:
            continue
        timed = precision_model(model, precision)
        for entry in entries:
            if time.monotonic() >= deadline:
                entry["kernel_profile_error"] = "time budget (--max-seconds) spent"
                continue
            started = time.monotonic()
            add_kernel_profile(entry, timed, cfg, device, args)
            entry["kernel_profile_s"] = time.monotonic() - started
        if timed is not model:
            del timed
            if device.type == "cuda":
                torch.cuda.empty_cache()


def run_eager(model, cfg, device, args, deadline, results, skipped, graphed=False):
    """Eager runs of args.precision; with `graphed`, the same eager model replayed from a CUDA
    graph (mode "graph", args.graph_precision): no Python or launch overhead per pass, the fair
    peer at small batches, where eager PyTorch waits on its own kernel launches."""
    mode = "graph" if graphed else "eager"
    capture_failed = False  # after a refused capture nothing more is captured, all listed skipped
    for precision in (args.graph_precision if graphed else args.precision):
        timed = precision_model(model, precision)
        for batch in (args.graph_batch if graphed else args.batch):
            entry = {"precision": precision, "mode": mode, "batch": batch,
                     "seq_len": args.seq_len}
            if capture_failed:
                skipped.append(dict(entry, reason="not tried after a failed capture"))
                continue
            if time.monotonic() >= deadline:
                skipped.append(dict(entry, reason="time budget (--max-seconds) spent"))
                continue
            try:
                entry.update(time_config(timed, cfg, device, batch, args.seq_len, args, deadline,
                                         graphed=graphed))
                results.append(entry)
                log(f"{mode} {precision} batch {batch}: p50 {entry['latency_ms']['p50']:.3f} ms, "
                    f"{entry['throughput_seq_s']:.1f} seq/s")
            except torch.cuda.OutOfMemoryError as e:  # report, keep going with the others
                skipped.append(dict(entry, reason=f"out of memory: {str(e).splitlines()[0]}"))
                torch.cuda.empty_cache()
            except Exception as e:  # a capture PyTorch refuses: report it and stop capturing
                if not graphed:
                    raise
                reason = f"CUDA graph capture failed: {(str(e).splitlines() or [''])[0][:300]}"
                skipped.append(dict(entry, reason=reason))
                log(f"{mode} {precision} batch {batch}: skipped ({reason})")
                capture_failed = True
        if timed is not model:
            del timed
            if device.type == "cuda":
                torch.cuda.empty_cache()


def compile_child(args):
    """Child process: torch.compile one precision, one JSON line per timed batch appended to
    --compile-out (flushed at once: a parent killed mid-run still finds what was timed)."""
    device = torch.device(args.device)
    model = load_model(args.model, device)
    cfg = model.config
    model = precision_model(model, args.compile_child)
    compiled = torch.compile(model, mode=args.compile_mode, dynamic=False)
    deadline = time.monotonic() + 1e9  # the parent enforces the budget by killing us
    for batch in args.batch:
        t0 = time.monotonic()
        entry = {"precision": args.compile_child, "mode": "compile", "batch": batch,
                 "seq_len": args.seq_len}
        entry.update(time_config(compiled, cfg, device, batch, args.seq_len, args, deadline))
        entry["compile_and_time_s"] = time.monotonic() - t0
        with open(args.compile_out, "a") as out:
            out.write(json.dumps(entry) + "\n")


# The compile child now running, for the SIGTERM handler (main): {"proc", "lines", "precision",
# "pending"}, or empty between children; and the compile precisions not yet done.
_compile_child = {}
_compile_remaining = []


def collect_compiled(lines_path, precision, pending, results):
    """The child's timed batches from its file into results (and off pending)."""
    try:
        with open(lines_path) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by the kill
        if entry.get("batch") not in pending:
            continue  # collected before (the handler may run after the main path collected)
        results.append(entry)
        pending.remove(entry["batch"])
        log(f"compile {precision} batch {entry['batch']}: p50 "
            f"{entry['latency_ms']['p50']:.3f} ms, {entry['throughput_seq_s']:.1f} seq/s")


def run_compiled(args, deadline, results, skipped):
    """Each compile precision in a child process, killed when the budget runs out."""
    _compile_remaining[:] = list(args.compile_precision)
    for precision in args.compile_precision:
        pending = list(args.compile_batch)
        left = deadline - time.monotonic()
        reason = None
        if left < 10:
            reason = "time budget (--max-seconds) spent"
        else:
            cmd = [sys.executable, os.path.abspath(__file__), "--model", args.model,
                   "--device", args.device, "--seq-len", str(args.seq_len),
                   "--batch", ",".join(map(str, args.compile_batch)), "--compile-child", precision,
                   "--compile-mode", args.compile_mode, "--iters", str(args.iters),
                   "--min-iters", str(args.min_iters), "--warmup", str(args.warmup),
                   "--seconds-per-config", str(args.seconds_per_config), "--seed", str(args.seed)]
            with tempfile.TemporaryFile("w+") as err, \
                    tempfile.NamedTemporaryFile("w+", suffix=".jsonl") as lines:
                cmd += ["--compile-out", lines.name]
                # Own session, so a timeout also ends inductor's compile workers.
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True,
                                        start_new_session=True)
                _compile_child.update(proc=proc, lines=lines.name, precision=precision,
                                      pending=pending)
                try:
                    rc = proc.wait(timeout=left)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    rc, reason = None, f"torch.compile run passed the time budget ({left:.0f} s)"
                collect_compiled(lines.name, precision, pending, results)
                _compile_child.clear()
                err.seek(0)
                err_tail = err.read()[-400:]
            if rc not in (None, 0):
                # one line: the reason lands in a results.md table cell and note
                reason = f"torch.compile child failed (exit {rc}): {' '.join(err_tail.split())}"
        for batch in pending:
            skipped.append({"precision": precision, "mode": "compile", "batch": batch,
                            "seq_len": args.seq_len, "reason": reason or "not reached"})
            log(f"compile {precision} batch {batch}: skipped ({reason})")
        _compile_remaining.remove(precision)


def dump_logits(args):
    """fp32 (tf32 off) start/end logits for the given inputs."""
    inputs_path, out_path = args.dump_logits
    device = torch.device(args.device)
    set_tf32(False)
    model = load_model(args.model, device)
    arrays = np.load(inputs_path)
    tensors = []
    for name in ("input_ids", "input_mask", "segment_ids"):
        if name not in arrays:
            raise SystemExit(f"{inputs_path}: missing array '{name}'")
        a = np.asarray(arrays[name])
        tensors.append(torch.from_numpy(np.atleast_2d(a).astype(np.int64)))
    if not (tensors[0].shape == tensors[1].shape == tensors[2].shape):
        raise SystemExit(f"{inputs_path}: input_ids/input_mask/segment_ids shapes differ")
    starts, ends = [], []
    with torch.inference_mode():
        for lo in range(0, tensors[0].shape[0], args.dump_batch):
            chunk = [t[lo:lo + args.dump_batch].to(device) for t in tensors]
            start, end = forward_logits(model, *chunk)
            starts.append(start.float().cpu().numpy())
            ends.append(end.float().cpu().numpy())
    np.savez(out_path, start_logits=np.concatenate(starts), end_logits=np.concatenate(ends))
    log(f"wrote {out_path}: {tensors[0].shape[0]} x {tensors[0].shape[1]} logits")


_quiet = False  # set by the SIGTERM handler: a print it interrupted must not be re-entered


def log(msg):
    if not _quiet:
        print(f"[peer] {msg}", file=sys.stderr, flush=True)


def int_list(text):
    return [int(x) for x in text.split(",") if x]


def str_list(text):
    return [x for x in text.split(",") if x]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint folder (config.json, model.safetensors)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="write the timing results here")
    p.add_argument("--batch", type=int_list, default=[1, 8, 32, 128])
    p.add_argument("--seq-len", type=int, default=384)
    p.add_argument("--precision", type=str_list, default=["fp16", "tf32", "fp32"],
                   help="eager precisions, timed in this order (fp16,tf32,fp32; bf16 also works)")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help="torch.compile runs; auto = on when the device is CUDA")
    p.add_argument("--compile-precision", type=str_list, default=["fp16"])
    p.add_argument("--graph", choices=["auto", "on", "off"], default="auto",
                   help="eager model replayed from a CUDA graph; auto = on when the device is CUDA")
    p.add_argument("--graph-precision", type=str_list, default=["fp32"],
                   help="graph replay precisions (fp16 replays ran 3.4x slower than eager on "
                        "PyTorch 2.11; see capture_graph)")
    p.add_argument("--graph-batch", type=int_list,
                   help="batches for graph replays (default: the smallest of --batch; from batch 8 "
                        "up the fp32 replays ran 10-12%% slower than eager in every run so far)")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode")
    p.add_argument("--compile-batch", type=int_list,
                   help="batches for compile runs, in order (default: the two smallest, the "
                        "largest, then the rest ascending: eager PyTorch waits on its kernel "
                        "launches at small batches, so compile changes the peer most there; each "
                        "new batch size compiles anew)")
    p.add_argument("--kernel-profile", choices=["on", "off"], default="on",
                   help="after all the timings, one pass of each eager configuration of a "
                        "--kernel-profile-precision under torch.profiler: its device time by kind "
                        "(GEMM, attention, other)")
    p.add_argument("--kernel-profile-precision", type=str_list, default=["fp16", "fp32"],
                   help="precisions the kernel profile runs for (the targets' two)")
    p.add_argument("--iters", type=int, default=50, help="most timed iterations per config")
    p.add_argument("--min-iters", type=int, default=5, help="fewest timed iterations per config")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seconds-per-config", type=float, default=2.0,
                   help="aim for about this much timed work per config")
    p.add_argument("--max-seconds", type=float, default=110.0,
                   help="whole-run budget; configs not started by then are listed as skipped")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--dump-logits", nargs=2, metavar=("INPUTS_NPZ", "OUT_NPZ"))
    p.add_argument("--dump-batch", type=int, default=32)
    p.add_argument("--compile-child", help=argparse.SUPPRESS)
    p.add_argument("--compile-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for prec in args.precision + args.compile_precision + args.graph_precision:
        if prec not in ("fp32", "tf32", "fp16", "bf16"):
            p.error(f"unknown precision '{prec}' (fp32, tf32, fp16, bf16)")
    if args.compile_batch is None:
        ascending = sorted(set(args.batch))
        args.compile_batch = ascending[:2] + ascending[-1:] + ascending[2:-1] \
            if len(ascending) > 2 else ascending
    if args.graph_batch is None:
        args.graph_batch = [min(args.batch)] if args.batch else []
    args.kernel_profile_precisions = (args.kernel_profile_precision
                                      if args.kernel_profile == "on" else [])
    if not args.dump_logits and not args.compile_child and not args.json:
        p.error("give --json FILE for timing, or --dump-logits INPUTS.npz OUT.npz")
    return args


def write_report(args, device, cfg, results, skipped, started, pending=None):
    """The JSON report (--json): what has been timed so far; `pending` names what is still to
    run (written before the compile runs, so that a step killed during them keeps the rest)."""
    import transformers
    report = {
        "tool": "bench/peer_pytorch.py",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "model": os.path.abspath(args.model),
        "model_config": {k: getattr(cfg, k) for k in ("hidden_size", "num_hidden_layers",
                         "num_attention_heads", "intermediate_size", "vocab_size")},
        "attention": "sdpa",
        "inputs": {"ids": f"uniform random in [{LOWEST_RANDOM_ID}, vocab_size), seed {args.seed}",
                   "input_mask": "all ones",
                   "segment_ids": f"first {FIRST_SEGMENT_LEN} zeros, then ones"},
        "timing": "device-resident inputs and outputs; CUDA events per forward (perf_counter on CPU)",
        "gflop_per_sequence": flop_per_sequence(cfg, args.seq_len) / 1e9,
        "configs": results, "skipped": skipped,
        "wall_s": time.monotonic() - started,
    }
    if pending:
        report["pending"] = pending
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    tmp = args.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, args.json)  # a reader never sees half a file
    log(f"wrote {args.json}: {len(results)} configs, {len(skipped)} skipped, "
        f"{report['wall_s']:.1f} s" + (f" ({pending} still to run)" if pending else ""))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.compile_child:
        compile_child(args)
        return 0
    if args.dump_logits:
        dump_logits(args)
        return 0

    started = time.monotonic()
    deadline = started + args.max_seconds
    device = torch.device(args.device)
    if device.type == "cpu" and "fp16" in args.precision:
        log("note: fp16 on CPU is slow and only useful as a smoke test")
    model = load_model(args.model, device)
    cfg = model.config
    results, skipped = [], []
    use_compile = args.compile == "on" or (args.compile == "auto" and device.type == "cuda")
    use_graph = args.graph == "on" or (args.graph == "auto" and device.type == "cuda")
    # Eager first, keeping a share of the budget for compile runs when they are on; CUDA graph
    # replays (a few seconds: one capture per batch) right after.
    eager_deadline = deadline - (0.45 * args.max_seconds if use_compile else 0.0)
    run_eager(model, cfg, device, args, eager_deadline, results, skipped)
    # graph replays, then the kernel profiles, each with a share of the budget past eager's;
    # never past the whole budget (with compile off, eager's deadline is the whole budget)
    if use_graph:
        run_eager(model, cfg, device, args, min(eager_deadline + 0.1 * args.max_seconds, deadline),
                  results, skipped, graphed=True)
    run_kernel_profiles(model, cfg, device, args,
                        min(eager_deadline + 0.15 * args.max_seconds, deadline), results)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if use_compile:
        write_report(args, device, cfg, results, skipped, started, pending="torch.compile runs")

        def on_term(signum, frame):
            """The step's limit ended us (gpu-check's `timeout` sends SIGTERM first): end the
            compile child's session too, which would go on using the GPU, and keep what it timed."""
            global _quiet
            _quiet = True
            child = dict(_compile_child)
            reason = "the run's time limit ended it (SIGTERM)"
            if child:
                try:
                    os.killpg(child["proc"].pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                collect_compiled(child["lines"], child["precision"], child["pending"], results)
                try:
                    os.unlink(child["lines"])  # os._exit skips the temporary file's cleanup
                except OSError:
                    pass
            for precision in _compile_remaining:  # the one running, and those not begun
                timed = {r.get("batch") for r in results
                         if r.get("mode") == "compile" and r.get("precision") == precision}
                skipped.extend({"precision": precision, "mode": "compile", "batch": batch,
                                "seq_len": args.seq_len, "reason": reason}
                               for batch in args.compile_batch if batch not in timed)
            write_report(args, device, cfg, results, skipped, started)
            os._exit(128 + signum)

        signal.signal(signal.SIGTERM, on_term)
        run_compiled(args, deadline, results, skipped)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    write_report(args, device, cfg, results, skipped, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
