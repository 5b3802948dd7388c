#!/usr/bin/env python3
"""Merge one device run's outputs into OUTDIR/results.json and OUTDIR/results.md.

    python3 bench/merge_results.py OUTDIR [--archive bench/results] [--commit SHA]
    python3 bench/merge_results.py --retarget bench/results/RUN.json   (an archived run's targets
                                                                       under today's rules)

Reads (missing optional files are noted, not fatal):
  OUTDIR/bench.json      ours, from `bertqa-gpu bench --json`
  OUTDIR/peer.json       bench/peer_pytorch.py --json (optional)
  OUTDIR/parity*.json    parity summaries (optional): each {"label": precision, and
                         "rel_err_vs_hf" and/or "rel_err_vs_cpu", ...} (bench/parity.py)
  OUTDIR/bench-profile.json, OUTDIR/bench-cudnn.json
                         `bertqa-gpu bench --profile` with our attention / cuDNN's (optional):
                         time per stage of one forward pass
  OUTDIR/bench-safe.json (optional) the 16-bit benchmark again on more conservative kernels (no
                         wgmma attention; if that failed too, WMMA attention and no fused GELU),
                         run when bench.json's run failed; it fills the configurations bench.json
                         lacks or has an error for (each such row says so in "source")
  OUTDIR/bench-heuristic.json
                         `bertqa-gpu bench` with BQ_GEMM_AUTOTUNE=0 (optional): what timing
                         cuBLASLt's candidates gains over its heuristic's first choice
  OUTDIR/steps.tsv       gpu-check's step, status, seconds (optional): copied into results.json
                         with, for each failed step, the FAIL / error lines of OUTDIR/STEP.log
  OUTDIR/squad-large.log `bertqa-gpu squad` on the dev set at BERT-large shape (optional): its
                         summary line gives the end-to-end rate and the engine / host seconds
  OUTDIR/nvidia-smi.txt  output of `nvidia-smi --query-gpu=name,driver_version --format=csv,noheader`
                         or plain `nvidia-smi` (optional; else nvidia-smi is run if present)
Writes OUTDIR/results.json, OUTDIR/results.md (also printed); with --archive DIR, a copy of
results.json as DIR/DATE_CARD_COMMIT.json. results.json's "targets" checks the numbers issue 5 sets
and, for a missed one, names the stages that take the most time in the matching profile.
Standard library only.
"""
import argparse
import datetime
import glob
import json
import os
import re
import subprocess
import statistics
import sys


# Step outputs that exist but could not be read (a step killed while writing, say): each is left
# out of the merge and named in its notes, so that one bad file costs only its own numbers.
UNREADABLE = []


def read_json(path, strict=False):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        if strict:
            raise SystemExit(f"merge_results: {path}: {e}")
        note = f"{os.path.basename(path)} could not be read ({one_line(str(e))[:160]}): left out"
        if note not in UNREADABLE:  # some files are read by two parts of the merge
            UNREADABLE.append(note)
        return None


def parse_nvidia_smi(text):
    """(card name, driver) from csv query output or the plain nvidia-smi table."""
    if not text:
        return None, None
    for line in text.splitlines():  # csv: "NVIDIA H100 80GB HBM3, 570.124.06"
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and re.fullmatch(r"\d+(\.\d+)+", parts[-1]) and parts[0]:
            return parts[0], parts[-1]
    driver = re.search(r"Driver Version:\s*([\d.]+)", text)
    name = re.search(r"^\|\s+\d+\s+(.+?)\s+(On|Off)\s+\|", text, re.M)
    return (name.group(1).strip() if name else None), (driver.group(1) if driver else None)


def nvidia_smi(outdir):
    path = os.path.join(outdir, "nvidia-smi.txt")
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            return parse_nvidia_smi(f.read())
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            return parse_nvidia_smi(out.stdout)
    except (OSError, subprocess.TimeoutExpired):
        pass
    return None, None


def git_commit(outdir):
    path = os.path.join(outdir, "commit.txt")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip() or None
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=30, cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def config_key(cfg):
    """(precision, batch, seq_len): how a configuration is matched across the run's files."""
    return cfg["precision"], int(cfg["batch"]), int(cfg["seq_len"])


def one_line(text):
    """text on one line with no table-cell separator: what goes into a results.md table cell or
    note (a failed compile's reason carries its stderr)."""
    return " ".join(str(text).split()).replace("|", "/")


def best_peer(peer):
    """{(precision, batch, seq_len): {"eager": cfg, "compile": cfg}} from peer.json."""
    table = {}
    for cfg in (peer or {}).get("configs", []):
        key = config_key(cfg)
        table.setdefault(key, {})[cfg.get("mode", "eager")] = cfg
    return table


# bench.json's per-layer attention timing of each candidate, by the name of the choice, in the
# order results.md lists them.
ATTENTION_CHOICE_MS = {"own": "attention_own_ms", "own-128": "attention_own_128_ms",
                       "own-32": "attention_own_32_ms", "own-64k3": "attention_own_64k3_ms",
                       "own-wgmma": "attention_own_wgmma_ms",
                       "own-wgmma-overlap": "attention_own_wgmma_overlap_ms",
                       "cudnn": "attention_cudnn_ms"}
ATTENTION_TIMES = tuple(ATTENTION_CHOICE_MS.values())


def with_short_windows(ours, outdir):
    """bench.json's configurations and bench-seq192.json's: fp16 at 192 tokens, the length a
    typical SQuAD window runs at with length buckets of 64 (rows of their own; the targets read
    the 384-token rows only)."""
    short = read_json(os.path.join(outdir, "bench-seq192.json")) or {}
    return dict(ours, configs=ours.get("configs", []) + short.get("configs", []))


def share_of_recorded_ceiling(results):
    """Every row's ceiling_share against the ceiling results.json records (bench.json's): a row
    from another bench run (bench-seq192.json, bench-safe.json) came with a share of that run's own
    ceiling measurement. bf16 takes fp16's where a bench before the bf16 ceiling recorded none."""
    ceiling = results.get("gemm_ceiling_tflops") or {}
    for row in results["configs"]:
        peak = ceiling.get(row["precision"]) or (ceiling.get("fp16") if row["precision"] == "bf16" else None)
        row["ceiling_share"] = row["tflops"] / peak if row.get("tflops") and peak else None


def merge_configs(ours, peer, safe=None):
    """One row per (precision, batch, seq_len) in either file; ours may be missing (None). `safe`
    (bench-safe.json) fills our configurations that are missing or failed."""
    peers = best_peer(peer)
    skipped = {}  # the peer's modes that did not run, per configuration, with why
    for s in (peer or {}).get("skipped", []):
        if {"precision", "batch", "seq_len"} <= set(s):
            skipped.setdefault(config_key(s), {})[s.get("mode", "eager")] = one_line(s.get("reason"))
    own = {config_key(c): c for c in ours.get("configs", [])}
    for c in (safe or {}).get("configs", []):
        key = config_key(c)
        if "error" not in c and (key not in own or "error" in own[key]):
            own[key] = dict(c, source="bench-safe.json",
                            replaced_error=own.get(key, {}).get("error"))
    merged = []
    for key in list(own) + [k for k in peers if k not in own]:
        cfg = own.get(key, {})
        lat = cfg.get("latency_ms", {})
        row = {
            "precision": key[0], "batch": key[1], "seq_len": key[2],
            "latency_ms_p50": lat.get("p50"), "latency_ms_p99": lat.get("p99"),
            "latency_total_ms_p50": cfg.get("latency_total_ms", {}).get("p50"),
            "throughput_seq_s": cfg.get("throughput_seq_s"),
            "tflops": cfg.get("tflops"), "ceiling_share": cfg.get("ceiling_share"),
            "source": cfg.get("source", "bench.json") if cfg else None,
            "attention": cfg.get("attention"),
            **{name: cfg.get(name) for name in ATTENTION_TIMES},
            # every candidate's output against the 64-row tiling's, before the timing: the
            # largest difference (normwise or of the worst element), and those left out for
            # differing by more than 2e-2
            "attention_check_worst_diff": cfg.get("attention_check_worst_diff"),
            "attention_disagreeing": cfg.get("attention_disagreeing"),
            "error": cfg.get("replaced_error") or cfg.get("error"),
            "device_memory_bytes": cfg.get("device_memory_bytes"),
            "first_pass_ms": cfg.get("first_pass_ms"),
            "gemm_choice": cfg.get("gemm_choice"),
            "gemm_pass_timed_ms": cfg.get("gemm_pass_timed_ms"),
            "gemm_pass_first_ms": cfg.get("gemm_pass_first_ms"),
        }
        modes = peers.get(key, {})
        # The peer's best mode is the fair comparison: compile where it worked, else eager.
        best_mode = max(modes, key=lambda m: modes[m]["throughput_seq_s"]) if modes else None
        for mode in ("eager", "graph", "compile"):
            row[f"pytorch_{mode}_throughput_seq_s"] = modes.get(mode, {}).get("throughput_seq_s")
        row["pytorch_mode"] = best_mode
        row["pytorch_skipped_modes"] = skipped.get(key) or None
        # one profiled eager pass (the peer's kernel profile, fp16 and fp32): its device time by
        # kind, and its longest ops and kernels
        eager = modes.get("eager", {})
        row["pytorch_eager_kernel_ms"] = eager.get("kernel_ms")
        row["pytorch_eager_top_ops"] = eager.get("top_ops")
        row["pytorch_eager_top_kernels"] = eager.get("top_kernels")
        row["pytorch_throughput_seq_s"] = modes[best_mode]["throughput_seq_s"] if best_mode else None
        row["pytorch_latency_ms_p50"] = (modes[best_mode]["latency_ms"]["p50"]
                                         if best_mode else None)
        ours_tp, peer_tp = row["throughput_seq_s"], row["pytorch_throughput_seq_s"]
        row["ratio_vs_pytorch"] = ours_tp / peer_tp if ours_tp and peer_tp else None
        merged.append(row)
    order = {"fp16": 0, "bf16": 1, "tf32": 2, "fp32": 3}
    merged.sort(key=lambda r: (order.get(r["precision"], 9), r["seq_len"], r["batch"]))
    return merged


def merge_parity(outdir):
    """{precision: {"rel_err_vs_cpu": x, "rel_err_vs_hf": y, ...}} from OUTDIR/parity*.json."""
    parity = {}
    for path in sorted(glob.glob(os.path.join(outdir, "parity*.json"))):
        doc = read_json(path)
        entries = doc if isinstance(doc, list) else [doc]
        for e in entries:
            if not isinstance(e, dict):
                continue
            label = e.get("label") or e.get("precision") or "unknown"
            slot = parity.setdefault(label, {})
            for key, value in e.items():
                if key.startswith("rel_err") or key.startswith("argmax") or key == "passed":
                    slot[key] = value
            slot.setdefault("sources", []).append(os.path.basename(path))
    return parity


def merge_profiles(outdir):
    """{attention: {"fp16 batch 128": {"throughput_seq_s": x, "stages_ms": {stage: ms}}}} from
    bench-profile.json (our attention), bench-cudnn.json (cuDNN's) and bench-heuristic.json
    (untimed GEMM choices; "heuristic" columns)."""
    profiles = {}
    for attention, name in (("own", "bench-profile.json"), ("cudnn", "bench-cudnn.json"),
                            ("heuristic", "bench-heuristic.json")):
        for cfg in (read_json(os.path.join(outdir, name)) or {}).get("configs", []):
            if cfg.get("profile_ms"):
                key = f"{cfg['precision']} batch {cfg['batch']}"
                profiles.setdefault(attention, {})[key] = {
                    "throughput_seq_s": cfg.get("throughput_seq_s"),
                    "latency_ms_p50": cfg.get("latency_ms", {}).get("p50"),
                    "stages_ms": cfg["profile_ms"]}
    return profiles


def gemm_choices(ours):
    """Per configuration of bench.json: what the GEMM layer chose per shape (gemm_plans), and the
    per-layer GEMM time with the chosen algorithms vs the heuristic's first choices."""
    out = []
    for cfg in ours.get("configs", []):
        plans = cfg.get("gemm_plans") or []
        if not plans:
            continue
        first = sum(p.get("first_ms") or 0 for p in plans)
        chosen = sum(p.get("chosen_ms") or 0 for p in plans)
        # gemm.cu's output check before the timing: each candidate against its stage's reference
        # (a difference that is not finite reaches the JSON as null)
        checked = [p for p in plans if p.get("checked")]
        diffs = [p.get("check_worst_diff") for p in checked]
        out.append({"precision": cfg["precision"], "batch": cfg["batch"],
                    "seq_len": cfg["seq_len"], "plans": plans,
                    "layer_gemm_ms_first_choice": first, "layer_gemm_ms_chosen": chosen,
                    "gelu_path": [p["gelu_path"] for p in plans if p.get("gelu_path")],
                    "checked_plans": len(checked),
                    "check_worst_diff": (None if not checked or None in diffs
                                         else max(diffs)),
                    "check_disagreeing": sum(p.get("check_disagreeing") or 0 for p in checked)})
    return out


GELU_PATH_MS = {"unfused": "unfused_ms", "fused-large": "fused_large_ms",
                "fused-small": "fused_small_ms", "fused-pingpong": "fused_pingpong_ms",
                "fused-pingpong-small": "fused_pingpong_small_ms"}


def kernels_alone(ours):
    """Per configuration of bench.json: what the engine's own timings of the kernels it kept (each
    timed alone, in a burst, at the card's clocks then) add up to for one pass: the layer's GEMMs
    (FFN-in with its GELU path) and attention, times the layers; layernorms, embeddings and the
    head not counted. A lower bound on the pass those kernels allow, next to what a target allows.
    Where the engine timed no attention candidates (fp32, tf32: one kernel, never timed alone),
    the GEMMs alone (attention_ms None)."""
    layers = ours.get("layers")
    out = {}
    for cfg in ours.get("configs", []):
        plans = cfg.get("gemm_plans") or []
        if not layers or not plans:
            continue
        attention = cfg.get(ATTENTION_CHOICE_MS.get(cfg.get("attention"), ""))
        gemm = 0.0
        for p in plans:
            ms = p.get(GELU_PATH_MS.get(p.get("gelu_path"), ""), p.get("chosen_ms"))
            if ms is None:
                break
            gemm += ms
        else:
            out[config_key(cfg)] = {"layers": layers, "gemm_ms": gemm * layers,
                                    "attention_ms": attention * layers if attention else None,
                                    "pass_ms": (gemm + (attention or 0.0)) * layers}
    return out


def merge_autotune(outdir, configs):
    """Per configuration in bench-heuristic.json: our p50 latency with the GEMM algorithms timed
    (bench.json) and with the heuristic's first choice, and the speed-up."""
    rows = {(r["precision"], r["batch"], r["seq_len"]): r for r in configs}
    out = []
    for cfg in (read_json(os.path.join(outdir, "bench-heuristic.json")) or {}).get("configs", []):
        key = config_key(cfg)
        tuned = rows.get(key, {}).get("latency_ms_p50")
        heuristic = cfg.get("latency_ms", {}).get("p50")
        out.append({"precision": key[0], "batch": key[1], "seq_len": key[2],
                    "latency_ms_p50_tuned": tuned, "latency_ms_p50_heuristic": heuristic,
                    "speedup": heuristic / tuned if tuned and heuristic else None})
    return out


SQUAD_SUMMARY = re.compile(r"bertqa-gpu squad: (\d+) questions, (\d+) windows in ([\d.]+) s "
                           r"\(([\d.]+) questions/s\); engine ([\d.]+) s, host work ([\d.]+) s"
                           r"(?: \(overlapped\); (\d+) engine batches, (\d+) partial)?"
                           r"(?:; (\d+) token positions \(([\d.]+)% of padded\))?"
                           r"(?:; first passes of (\d+) shapes ([\d.]+) s)?")


def merge_end_to_end(outdir, configs, precision="fp16", batch=128, log="squad-large.log"):
    """The dev set end to end (squad-large.log) against the forward-pass rate of the same
    precision and batch from the benchmark."""
    path = os.path.join(outdir, log)
    if not os.path.exists(path):
        return None
    with open(path, errors="replace") as f:
        m = SQUAD_SUMMARY.search(f.read())
    if not m:
        return {"error": f"no summary line in {log}"}
    questions, windows = int(m.group(1)), int(m.group(2))
    wall, engine, host = float(m.group(3)), float(m.group(5)), float(m.group(6))
    e2e = {"precision": precision, "batch": batch, "questions": questions, "windows": windows,
           "wall_s": wall, "questions_per_s": questions / wall if wall else None,
           "windows_per_s": windows / wall if wall else None, "engine_s": engine,
           "host_work_s": host, "engine_idle_share": 1 - engine / wall if wall else None,
           "engine_batches": int(m.group(7)) if m.group(7) else None,
           "partial_batches": int(m.group(8)) if m.group(8) else None,
           "token_positions": int(m.group(9)) if m.group(9) else None,
           "share_of_padded_positions": float(m.group(10)) / 100 if m.group(10) else None,
           "first_pass_shapes": int(m.group(11)) if m.group(11) else None,
           "first_pass_s": float(m.group(12)) if m.group(12) else None}
    # the steady rate: a long run pays each shape's one-time timing and capture once
    steady = wall - e2e["first_pass_s"] if e2e["first_pass_s"] is not None else None
    e2e["questions_per_s_after_first_passes"] = (questions / steady
                                                 if steady and steady > 0 else None)
    forward = next((r["throughput_seq_s"] for r in configs if r["precision"] == precision
                    and r["batch"] == batch and r["seq_len"] == 384), None)
    e2e["forward_seq_s"] = forward
    e2e["share_of_forward_rate"] = (e2e["windows_per_s"] / forward
                                    if forward and e2e["windows_per_s"] else None)
    return e2e


def merge_trimmed(outdir, configs, padded, name, compare_with):
    """The dev set end to end again without most of its padding (squad-large-NAME.log,
    pred-large-NAME.json): its rate against the padded run's, and how many answers match those
    of each run in compare_with ("padded", "buckets": pred-large.json, pred-large-buckets.json;
    they may differ where the padded run ranked padding positions among a window's 20 best, and
    in the last bits of fp16 sums)."""
    e2e = merge_end_to_end(outdir, configs, log=f"squad-large-{name}.log")
    if not e2e or "error" in e2e:
        return e2e
    base = (padded or {}).get("questions_per_s")
    e2e["speedup_vs_padded"] = (e2e["questions_per_s"] / base
                                if base and e2e.get("questions_per_s") else None)
    def predictions(file):  # a missing or cut-off file compares nothing, and stops nothing
        try:
            with open(os.path.join(outdir, file)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None
    mine = predictions(f"pred-large-{name}.json")
    for other in compare_with:
        theirs = predictions("pred-large.json" if other == "padded" else f"pred-large-{other}.json")
        if isinstance(mine, dict) and isinstance(theirs, dict):
            both = set(mine) & set(theirs)
            e2e["answers_compared"] = len(both)
            e2e[f"answers_same_as_{other}"] = sum(1 for k in both if mine[k] == theirs[k])
    return e2e


def merge_buckets(outdir, configs, padded):
    """Length buckets of 64 (squad-large-buckets): windows sorted by length, each batch cut to
    its longest window rounded up to 64; answers compared with the padded run's."""
    e2e = merge_trimmed(outdir, configs, padded, "buckets", ["padded"])
    if e2e and "error" not in e2e:
        e2e["length_bucket"] = 64
    return e2e


def merge_packed(outdir, configs, padded):
    """Packed windows (squad-large-packed): back to back with no padding, each attending to
    itself; answers compared with the padded and the length-bucket runs' (the latter exclude
    padding the same way)."""
    return merge_trimmed(outdir, configs, padded, "packed", ["padded", "buckets"])


def merge_packed_cached(outdir, configs, padded):
    """The packed run again (squad-large-packed-cached), taking the GEMM and attention decisions
    the first packed run kept in its tuning cache; answers compared with that run's."""
    return merge_trimmed(outdir, configs, padded, "packed-cached", ["packed"])


def merge_clocks(outdir):
    """SM clock, power and temperature sampled by nvidia-smi while the timed phase ran
    (clocks.csv: timestamp, SM MHz, memory MHz, power W, temperature C, clock event reasons;
    csv, no header, no units): whether the card held its clocks under sustained load."""
    path = os.path.join(outdir, "clocks.csv")
    if not os.path.exists(path):
        return None
    sm, power, temp, reasons = [], [], [], {}
    with open(path, errors="replace") as f:
        for line in f:
            cells = [c.strip() for c in line.split(",")]
            if len(cells) < 6:
                continue
            try:
                sm.append(float(cells[1]))
                power.append(float(cells[3]))
                temp.append(float(cells[4]))
            except ValueError:
                continue
            reasons[cells[5]] = reasons.get(cells[5], 0) + 1
    if not sm:
        return {"error": "no samples in clocks.csv"}
    return {"samples": len(sm), "sm_mhz_median": statistics.median(sm), "sm_mhz_min": min(sm),
            "sm_mhz_max": max(sm), "power_w_median": statistics.median(power),
            "power_w_max": max(power), "temperature_c_max": max(temp),
            "clock_event_reasons": reasons}


def merge_fp32x3(outdir, configs):
    """fp32 with CUTLASS's 3xTF32 GEMM timed against SGEMM (bench-fp32x3.json, BQ_FP32_3XTF32=1):
    per batch our p50 and seq/s, against our SGEMM fp32 row and PyTorch fp32's, and how many of
    the GEMM shapes chose 3xTF32."""
    doc = read_json(os.path.join(outdir, "bench-fp32x3.json"))
    if not doc:
        return None
    rows = {(c.get("precision"), c.get("batch"), c.get("seq_len")): c for c in configs}
    out = []
    for cfg in doc.get("configs", []):
        if cfg.get("error") or not cfg.get("throughput_seq_s"):
            out.append({"batch": cfg.get("batch"), "error": cfg.get("error") or "no result"})
            continue
        sgemm = rows.get(("fp32", cfg.get("batch"), cfg.get("seq_len"))) or {}
        plans = cfg.get("gemm_plans") or []
        entry = {"batch": cfg["batch"], "latency_ms_p50": (cfg.get("latency_ms") or {}).get("p50"),
                 "throughput_seq_s": cfg["throughput_seq_s"],
                 "gemms_3xtf32": sum(1 for g in plans if g.get("runs_fp32x3")),
                 "gemms": len(plans)}
        if sgemm.get("throughput_seq_s"):
            entry["vs_sgemm"] = cfg["throughput_seq_s"] / sgemm["throughput_seq_s"]
        if sgemm.get("pytorch_throughput_seq_s"):
            entry["ratio_vs_pytorch"] = cfg["throughput_seq_s"] / sgemm["pytorch_throughput_seq_s"]
        out.append(entry)
    return out


FP32_PROBE_LINE = re.compile(
    r"^(\S+)\s+(\d+) x\s+(\d+) ->\s+(\d+)\s+(?:([\d.]+) ms\s+([\d.]+) TFLOP/s\s+rel error vs "
    r"fp64 (\S+)|refused \((.*)\))")


def merge_fp32_probe(outdir):
    """The fp32 GEMM alternatives (gemm-fp32.log, bench/gemm_fp32_probe.cu): per kernel and
    shape its time, TFLOP/s and normwise error against fp64, or why it was refused."""
    path = os.path.join(outdir, "gemm-fp32.log")
    if not os.path.exists(path):
        return None
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            m = FP32_PROBE_LINE.match(line.strip())
            if not m:
                continue
            row = {"kernel": m.group(1), "rows": int(m.group(2)), "in": int(m.group(3)),
                   "out": int(m.group(4))}
            if m.group(8) is not None:
                row["refused"] = m.group(8)
            else:
                row.update(ms=float(m.group(5)), tflops=float(m.group(6)),
                           rel_error_vs_fp64=float(m.group(7)))
                if "same result as sgemm" in line:  # cuBLAS ran SGEMM for the emulation
                    row["same_as_sgemm"] = True
            rows.append(row)
    return rows


def top_stages(profiles, key, n=3):
    """'gemm 5.10 ms (61%), ...' for the profile of configuration `key` with our attention."""
    stages = profiles.get("own", {}).get(key, {}).get("stages_ms")
    if not stages:
        return None
    total = sum(stages.values()) or 1.0
    ranked = sorted(stages.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} {ms:.3f} ms ({ms / total:.0%})" for name, ms in ranked)


# The peer's modes a ratio must have been measured against before it counts as met: fp16's fair
# peer is torch.compile where it compiles (issue 5), and an eager-only fp16 ratio overstates ours
# (an H200 run: 1.73x eager at batch 8, where compiled runs gave 1.02-1.06x). fp32's peer is eager:
# the peer compiles fp16 only within its time budget.
PEER_MODES_NEEDED = {"fp16": ("eager", "compile"), "fp32": ("eager",)}


def check_targets(configs, profiles, e2e, alone=None):
    """Issue 5's numbers: each with its value, whether it is met (None: not measured) and, when
    missed, the stages that take the most time in the matching profile, the pass the target
    allows (pass_allowed_ms: for a ratio, PyTorch's pass over the ratio) and what the kept
    kernels, timed alone, add up to (kernels_alone_ms); for a ratio also PyTorch's own pass
    (pytorch_pass_ms, its best mode) and, where the peer profiled one eager pass, its GEMM
    kernels' share of it (pytorch_kernel_ms)."""
    rows = {(r["precision"], r["batch"]): r for r in configs if r["seq_len"] == 384}
    targets = []

    def add(name, value, met, profile_key, allowed_ms=None, key=None, peer=None):
        t = {"target": name, "value": value, "met": met}
        if met is False:
            t["held_back_by"] = top_stages(profiles, profile_key) or "no profile for this configuration"
            if allowed_ms:
                t["pass_allowed_ms"] = allowed_ms
                floor = (alone or {}).get(key)
                if floor:
                    t["kernels_alone_ms"] = floor
                # our mean pass, as the allowed one is a mean (a rate's, or PyTorch's over the
                # bound), except for the latency target, which is a p50
                r_own = rows.get(key[:2], {}) if key else {}
                if name.endswith("(p50)"):
                    ours_ms = r_own.get("latency_ms_p50")
                else:
                    tp_own = r_own.get("throughput_seq_s")
                    ours_ms = key[1] * 1000 / tp_own if tp_own else None
                if ours_ms:
                    t["pass_ms"] = ours_ms
            if peer:
                t.update(peer)
        targets.append(t)

    r = rows.get(("fp16", 128), {})
    tp = r.get("throughput_seq_s")
    add("fp16 batch 128 >= 2600 seq/s", tp, None if tp is None else tp >= 2600, "fp16 batch 128",
        128 / 2600 * 1000, ("fp16", 128, 384))
    r = rows.get(("fp16", 1), {})
    lat = r.get("latency_ms_p50")
    add("fp16 batch 1 <= 0.8 ms (p50)", lat, None if lat is None else lat <= 0.8, "fp16 batch 1",
        0.8, ("fp16", 1, 384))
    # every batch size the benchmark runs, measured or not, and any other batch it did run
    for precision, bound in (("fp16", 1.5), ("fp32", 1.2)):
        batches = sorted({1, 8, 32, 128} | {b for p, b in rows if p == precision})
        for batch in batches:
            r = rows.get((precision, batch), {})
            ratio, peer_tp = r.get("ratio_vs_pytorch"), r.get("pytorch_throughput_seq_s")
            # a ratio of throughputs: PyTorch's mean pass (batch / its rate) over the bound is
            # the pass ours may take
            peer_pass = batch * 1000 / peer_tp if peer_tp else None
            peer = {"pytorch_pass_ms": peer_pass, "pytorch_mode": r.get("pytorch_mode")}
            if r.get("pytorch_eager_kernel_ms"):
                peer["pytorch_kernel_ms"] = r["pytorch_eager_kernel_ms"]
            met = None if ratio is None else ratio >= bound
            # a ratio over the bound against a peer one of whose modes did not run is not
            # settled (the faster mode might have been the one skipped, or never started: fp16's
            # peer is torch.compile where it compiles); under the bound it is a miss whatever the
            # missing mode would have done
            unsettled = dict(r.get("pytorch_skipped_modes") or {}) if met else {}
            for mode in PEER_MODES_NEEDED.get(precision, ()):
                if met and mode not in unsettled and not r.get(f"pytorch_{mode}_throughput_seq_s"):
                    unsettled[mode] = "not run"
            add(f"{precision} batch {batch} >= {bound}x PyTorch", ratio,
                None if unsettled else met, f"{precision} batch {batch}",
                peer_pass / bound if peer_pass else None, (precision, batch, 384),
                peer if peer_pass else None)
            if unsettled:
                targets[-1]["unsettled"] = (
                    f"against PyTorch {r.get('pytorch_mode')} only: its "
                    + ", ".join(f"{mode} run was {'not run' if why == 'not run' else f'skipped ({why})'}"
                                for mode, why in sorted(unsettled.items())))
            if r.get("error") and ratio is None:  # ours failed: a miss, not a gap in the data
                targets[-1].update(met=False, held_back_by=f"our run failed: {one_line(r['error'])}")
    share = (e2e or {}).get("share_of_forward_rate")
    add("SQuAD dev end to end >= 90% of the forward-pass rate (fp16 batch 128)", share,
        None if share is None else share >= 0.9, None)
    return targets


def target_floor_text(t):
    """What a missed target allows against what our kept kernels, and PyTorch's own GEMMs,
    take: the results.md words after the held-back stages ('' when nothing is known)."""
    text = ""
    k = t.get("kernels_alone_ms")
    if t.get("pass_allowed_ms"):
        peer = (f" (PyTorch's, {t['pytorch_mode']}: {t['pytorch_pass_ms']:.2f})"
                if t.get("pytorch_pass_ms") else "")
        text += f"; the pass may take {t['pass_allowed_ms']:.2f} ms{peer}"
    if k and t.get("pass_allowed_ms"):
        if k.get("attention_ms") is not None:
            text += (f", and the kept GEMMs and attention, each timed alone, add up to "
                     f"{k['pass_ms']:.2f} ({k['gemm_ms']:.2f} + {k['attention_ms']:.2f}) before "
                     "layernorms")
        else:
            text += (f", and the kept GEMMs, each timed alone, add up to {k['gemm_ms']:.2f} "
                     "before attention and layernorms")
    pk = t.get("pytorch_kernel_ms")
    if pk and pk.get("total"):
        text += (f"; PyTorch's own GEMM kernels take {pk['gemm']:.2f} ms of its "
                 f"{pk['total']:.2f} ms of kernels (one profiled eager pass)")
    return text + target_move_text(t)


def target_move_text(t):
    """What would move a missed target, read off its numbers: the kept GEMMs alone over the pass
    it allows (only faster GEMMs can), GEMMs + attention over it (those first), or the kernels
    within it and the rest of our pass (its p50 for the latency target, else its mean, as the
    allowed pass is) over (what lies outside them). '' when the numbers are not there."""
    k, allowed, ours = t.get("kernels_alone_ms"), t.get("pass_allowed_ms"), t.get("pass_ms")
    if not k or not allowed:
        return ""
    # timed alone on a warm card the kept kernels can add up to more than the whole pass
    outside_ms = ours - k["pass_ms"] if ours else 0.0
    rest = f", and the {outside_ms:.2f} ms of our pass outside them on top" if outside_ms >= 0.005 else ""
    if k["gemm_ms"] > allowed:
        return (f"; what would move it: GEMMs faster than the kept ones, whose {k['gemm_ms']:.2f} ms "
                f"alone exceed the {allowed:.2f} allowed, so nothing else can{rest}")
    if k["pass_ms"] > allowed:
        return (f"; what would move it: faster GEMMs or attention, {k['pass_ms'] - allowed:.2f} ms "
                f"over the allowed between them{rest}")
    if ours and ours > allowed:
        outside = ("attention, " if k.get("attention_ms") is None else "") + \
            "layernorms, embeddings, the head, the gaps between kernels and the clocks under load"
        return (f"; what would move it: the kept kernels fit, so the {outside_ms:.2f} ms of our "
                f"pass outside them ({outside}), {ours - allowed:.2f} ms too many")
    return ""


# A failed step's lines worth quoting: FAIL / FAILED / timeouts first, then other error lines. A
# passing check's line ("ok ... rel error 2e-06") mentions "error" too and is never quoted.
FAILURE_LINE = re.compile(r"^\s*(FAIL\b|\[  FAILED  \]|ERROR\b|.*timed out)")
ERROR_LINE = re.compile(r"^(?!\s*ok\b).*\b(error|Error)\b")


def merge_steps(outdir, max_lines=12):
    """[{step, status, seconds, lines}] from steps.tsv; lines: a failed step's FAIL / error lines
    (the first max_lines, else its last lines)."""
    path = os.path.join(outdir, "steps.tsv")
    if not os.path.exists(path):
        return None
    steps = []
    with open(path) as f:
        for line in f.read().splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) != 3:
                continue
            name, status, seconds = parts
            entry = {"step": name, "status": status,
                     "seconds": int(seconds) if seconds.isdigit() else None}
            if status not in ("0", "77", "skipped"):
                log = os.path.join(outdir, f"{name}.log")
                text = open(log, errors="replace").read().splitlines() if os.path.exists(log) else []
                hits = ([l.strip() for l in text if FAILURE_LINE.match(l)] +
                        [l.strip() for l in text if not FAILURE_LINE.match(l) and ERROR_LINE.match(l)])
                entry["lines"] = (hits or [l.strip() for l in text[-max_lines:]])[:max_lines]
            steps.append(entry)
    return steps


# Column names of the stage table, per profile source (merge_profiles).
PROFILE_LABELS = {"own": "own attention", "cudnn": "cudnn attention",
                  "heuristic": "untimed GEMM choices"}

# What the configuration table appends for the attention the engine ran (bench.json "attention").
ATTENTION_LABELS = {"cudnn": ", cuDNN attention", "own-128": ", own attention in 128-row blocks",
                    "own-32": ", own attention in 32-row blocks, keys split",
                    "own-64k3": ", own attention in 64-row blocks, keys split in three",
                    "own-wgmma": ", own attention on wgmma in 128-row blocks",
                    "own-wgmma-overlap": ", own attention on wgmma in 128-row blocks, softmax "
                                         "overlapping P V"}


def fmt(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def batch_label(row):
    """'batch 8', or 'batch 8 seq 192' for a row at another length than the targets' 384."""
    return f"batch {row['batch']}" + ("" if row["seq_len"] == 384 else f" seq {row['seq_len']}")


def first_passes(e2e):
    """', of which the first passes of N shapes X s' (their one-time timing and graph capture),
    or nothing for a summary line without them."""
    if e2e.get("first_pass_shapes") is None:
        return ""
    steady = e2e.get("questions_per_s_after_first_passes")
    return (f" (of which the first passes of its {e2e['first_pass_shapes']} pass shapes "
            f"{e2e['first_pass_s']:.2f} s" +
            (f"; {steady:.1f} questions/s without them" if steady else "") + ")")


def targets_markdown(targets):
    """The targets table of results.md, as lines."""
    lines = ["| target | value | met |", "|---|---:|---|"]
    for t in targets:
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        if t.get("unsettled"):
            met = f"not settled: {t['unsettled']}"
        if t.get("held_back_by"):
            met += f": {t['held_back_by']}"
        met += target_floor_text(t)
        lines.append(f"| {t['target']} | {fmt(t['value'], '.3g')} | {met} |")
    return lines


# results.md's note on a skipped peer run (main), read back by retarget
SKIPPED_NOTE = re.compile(r"^PyTorch (\S+) (\S+) batch (\d+) skipped: (.*)$")


def retarget(archived):
    """The targets of an archived results.json under this merger's rules, from what it kept: its
    rows, profiles, end-to-end rate, GEMM plans (gemm_choices) and attention timings (for
    kernels_alone, BERT-large's 24 layers), and the peer's skipped runs from its notes (rows at
    384 tokens only)."""
    skipped = {}
    for note in archived.get("notes") or []:
        m = SKIPPED_NOTE.match(note)
        if m:
            mode, precision, batch, why = m.groups()
            skipped.setdefault((precision, int(batch)), {})[mode] = why
    configs = []
    for row in archived.get("configs") or []:
        row = dict(row)
        row.setdefault("pytorch_skipped_modes",
                       skipped.get((row["precision"], row["batch"])) if row["seq_len"] == 384
                       else None)
        configs.append(row)
    plans = {config_key(g): g["plans"] for g in archived.get("gemm_choices") or []}
    ours = {"layers": 24, "configs": [dict(c, gemm_plans=plans[config_key(c)])
                                      for c in configs if config_key(c) in plans]}
    return check_targets(configs, archived.get("profiles") or {}, archived.get("end_to_end"),
                         kernels_alone(ours))


def markdown(results):
    lines = [f"# bertqa-gpu vs PyTorch on {results['device'] or 'unknown device'}", "",
             f"driver {results['driver'] or '-'}, commit {results['commit'] or '-'}, "
             f"{results['date']}; PyTorch {results.get('pytorch_version') or '-'}", "",
             "| configuration | ours p50 ms | ours p99 ms | ours seq/s | PyTorch seq/s (mode) "
             "| ratio |", "|---|---:|---:|---:|---:|---:|"]
    for r in results["configs"]:
        mode = f" ({r['pytorch_mode']})" if r["pytorch_mode"] else ""
        safe = " (conservative kernels)" if r.get("source") == "bench-safe.json" else ""
        safe += ATTENTION_LABELS.get(r.get("attention"), "")
        lines.append(f"| {r['precision']} batch {r['batch']} seq {r['seq_len']}{safe} "
                     f"| {fmt(r['latency_ms_p50'], '.3f')} | {fmt(r['latency_ms_p99'], '.3f')} "
                     f"| {fmt(r['throughput_seq_s'], '.1f')} "
                     f"| {fmt(r['pytorch_throughput_seq_s'], '.1f')}{mode} "
                     f"| {fmt(r['ratio_vs_pytorch'], '.2f')}{'x' if r['ratio_vs_pytorch'] else ''} |")
    # A CPU run reports zeros: no GEMM ceiling was measured.
    ceiling = {k: v for k, v in (results.get("gemm_ceiling_tflops") or {}).items() if v}
    if ceiling:
        lines += ["", "GEMM ceiling (TFLOP/s): " +
                  ", ".join(f"{k} {fmt(v, '.1f')}" for k, v in sorted(ceiling.items()))]
    if results["parity"]:
        # the last column: Hugging Face's own logits at that precision against its fp32 ones,
        # what the precision costs any implementation (bench/parity.py)
        lines += ["", "| parity | rel err vs CPU reference | rel err vs Hugging Face "
                  "| Hugging Face's own, same precision, vs its fp32 |", "|---|---:|---:|---:|"]
        for label, p in sorted(results["parity"].items()):
            lines.append(f"| {label} | {fmt(p.get('rel_err_vs_cpu'), '.2e')} "
                         f"| {fmt(p.get('rel_err_vs_hf'), '.2e')} "
                         f"| {fmt(p.get('rel_err_hf_at_precision'), '.2e')} |")
    e2e = results.get("end_to_end")
    if e2e and "error" not in e2e:
        lines += ["", f"SQuAD dev end to end ({e2e['precision']}, batch {e2e['batch']}): "
                  f"{e2e['questions']} questions, {e2e['windows']} windows in {e2e['wall_s']:.2f} s = "
                  f"{fmt(e2e['questions_per_s'], '.1f')} questions/s, "
                  f"{fmt(e2e['windows_per_s'], '.1f')} windows/s "
                  f"({fmt(e2e['share_of_forward_rate'], '.0%')} of the forward-pass rate); engine "
                  f"{e2e['engine_s']:.2f} s{first_passes(e2e)}, host work {e2e['host_work_s']:.2f} s "
                  f"(overlapped)"]
    trimmed = [("end_to_end_buckets", ("padded",), lambda r: f"with length buckets of "
                f"{r['length_bucket']} (windows sorted by length, each batch cut to its longest)"),
               ("end_to_end_packed", ("padded", "buckets"), lambda r: "packed (windows back to "
                "back with no padding, each attending to itself)"),
               ("end_to_end_packed_cached", ("packed",), lambda r: "packed again, with the "
                "decisions the packed run kept in its tuning cache")]
    for key, others, how in trimmed:
        r = results.get(key)
        if not r or "error" in r:
            continue
        same = "".join(f"; answers as the {other} run's on {r[f'answers_same_as_{other}']} of "
                       f"{r['answers_compared']} questions" for other in others
                       if r.get(f"answers_same_as_{other}") is not None)
        lines += ["", f"The same {how(r)}: {r['wall_s']:.2f} s = "
                  f"{fmt(r['questions_per_s'], '.1f')} questions/s "
                  f"({fmt(r['speedup_vs_padded'], '.2f')}x the padded run), "
                  f"{fmt(r['share_of_padded_positions'], '.1%')} of the padded token positions; "
                  f"engine {r['engine_s']:.2f} s{first_passes(r)}{same}"]
    clk = results.get("clocks")
    if clk and "error" not in clk:
        reasons = ", ".join(f"{k} x{v}" for k, v in sorted(clk["clock_event_reasons"].items()))
        lines += ["", f"Clocks while the timed steps ran ({clk['samples']} nvidia-smi samples): SM "
                  f"median {clk['sm_mhz_median']:.0f} MHz (min {clk['sm_mhz_min']:.0f}, max "
                  f"{clk['sm_mhz_max']:.0f}), power median {clk['power_w_median']:.0f} W (max "
                  f"{clk['power_w_max']:.0f}), up to {clk['temperature_c_max']:.0f} C; clock event "
                  f"reasons: {reasons}"]
    profiled = [r for r in results["configs"] if (r.get("pytorch_eager_kernel_ms") or {}).get("total")]
    if profiled:  # peer_pytorch.py's kernel profile: where PyTorch's own pass spends its time
        lines += ["", "PyTorch's kernels in one profiled eager pass, by kind (ms; GEMM / attention / "
                  "other, of the kernels' total): " + ", ".join(
                      f"{r['precision']} {batch_label(r)} "
                      + " / ".join(f"{r['pytorch_eager_kernel_ms'][kind]:.3f}"
                                   for kind in ("gemm", "attention", "other"))
                      + f" of {r['pytorch_eager_kernel_ms']['total']:.3f}" for r in profiled)]
    passes = [r for r in results["configs"] if r.get("gemm_pass_timed_ms")]
    if passes:  # engine_cuda.cu's whole-pass check of the GEMM choices timed one by one
        lines += ["", "Whole pass with the timed GEMM choices vs cuBLASLt's first choices (kept): " +
                  ", ".join(f"{r['precision']} batch {r['batch']} {r['gemm_pass_timed_ms']:.3f} vs "
                            f"{fmt(r['gemm_pass_first_ms'], '.3f')} ms ({r['gemm_choice']})"
                            for r in passes)]
    timed = [r for r in results["configs"] if r.get("attention_own_ms")]
    if timed:  # engine_cuda.cu's choose_attention: the candidates it timed on the first pass
        lines += ["", "Attention per layer as the engine timed it (ms; 64-row blocks / 128-row "
                  "blocks / 32-row blocks with the keys split in two / 64-row blocks split in "
                  "three / wgmma in 128-row blocks / the same with the softmax overlapping P V / cuDNN, "
                  "- not a candidate) and what it kept: " + ", ".join(
                      f"{r['precision']} {batch_label(r)} "
                      + " / ".join(fmt(r.get(n) or None, ".3f") for n in ATTENTION_TIMES)
                      + f" ({r['attention']})" for r in timed)]
        # check_attention_candidates: outputs vs the 64-row tiling's, before timing (a difference
        # that is not finite reaches the JSON as null, with the candidate named as left out)
        checked = [r for r in timed if r.get("attention_check_worst_diff") is not None
                   or r.get("attention_disagreeing")]
        if checked:
            lines += ["", "Attention candidates' outputs vs the 64-row tiling's on the first pass "
                      "(largest difference, normwise or of the worst element; left out for differing by more than 2e-2): "
                      + ", ".join(f"{r['precision']} {batch_label(r)} "
                                  + (fmt(r['attention_check_worst_diff'], '.1e')
                                     if r.get("attention_check_worst_diff") is not None
                                     else "not finite")
                                  + (f" (left out: {r['attention_disagreeing']})"
                                     if r.get("attention_disagreeing") else "")
                                  for r in checked)]
    setup = [r for r in results["configs"] if r.get("first_pass_ms") and r["precision"] == "fp16"]
    if setup:  # what a new batch size costs a long run: its first pass (tuning, graph capture)
        lines += ["", "First pass of a batch size (fp16; setup included) vs its p50: " + ", ".join(
            f"{batch_label(r)} {r['first_pass_ms']:.1f} ms vs {fmt(r['latency_ms_p50'], '.2f')} ms"
            for r in setup)]
    if results.get("gemm_autotune"):
        lines.append("")
    for a in results.get("gemm_autotune") or []:
        lines.append(f"- GEMM algorithms timed vs cuBLASLt's first choice, {a['precision']} batch "
                     f"{a['batch']}: p50 {fmt(a['latency_ms_p50_tuned'], '.3f')} ms vs "
                     f"{fmt(a['latency_ms_p50_heuristic'], '.3f')} ms "
                     f"({fmt(a['speedup'], '.3f')}x)")
    for c in results.get("gemm_choices") or []:
        if c["precision"] == "fp16" and c["batch"] in (1, 128) and c["layer_gemm_ms_first_choice"]:
            lines.append(f"- GEMMs of one layer, {c['precision']} batch {c['batch']}: "
                         f"{c['layer_gemm_ms_chosen']:.4f} ms with the timed choices vs "
                         f"{c['layer_gemm_ms_first_choice']:.4f} ms with cuBLASLt's first; bias + "
                         f"GELU: {', '.join(c['gelu_path']) or '-'}")
    checked = [c for c in results.get("gemm_choices") or [] if c.get("checked_plans")]
    if checked:
        lines += ["", "GEMM candidates' outputs vs their stage's reference on the first call, before "
                  "the timing (largest difference, normwise or of the worst element; left out for differing by more than "
                  "1e-4 in fp32, 2e-2 else): " + ", ".join(
                      f"{c['precision']} batch {c['batch']} "
                      + (fmt(c['check_worst_diff'], '.1e') if c.get("check_worst_diff") is not None
                         else "not finite")
                      + (f" ({c['check_disagreeing']} left out)" if c.get("check_disagreeing")
                         else "")
                      for c in checked)]
    profiles = results.get("profiles") or {}
    columns = [(a, k) for a in ("own", "cudnn", "heuristic")
               for k in sorted(profiles.get(a, {}))]
    if columns:
        stages = sorted({s for a, k in columns for s in profiles[a][k]["stages_ms"]})
        lines += ["", "| stage (ms, one pass) | " +
                  " | ".join(f"{k}, {PROFILE_LABELS.get(a, a)}" for a, k in columns) + " |",
                  "|---|" + "---:|" * len(columns)]
        for st in stages:
            lines.append(f"| {st} | " + " | ".join(
                fmt(profiles[a][k]["stages_ms"].get(st), ".3f") for a, k in columns) + " |")
    if results.get("fp32x3"):
        parts = []
        for r in results["fp32x3"]:
            if "error" in r:
                parts.append(f"batch {r['batch']}: {r['error']}")
                continue
            text = f"batch {r['batch']} {r['throughput_seq_s']:.1f} seq/s"
            if r.get("vs_sgemm"):
                text += f" ({r['vs_sgemm']:.2f}x our SGEMM fp32"
                text += f", {r['ratio_vs_pytorch']:.2f}x PyTorch fp32)" if r.get("ratio_vs_pytorch") else ")"
            parts.append(text + f", {r['gemms_3xtf32']} of {r['gemms']} GEMM shapes on 3xTF32")
        lines += ["", "fp32 with CUTLASS's 3xTF32 GEMM timed against SGEMM (BQ_FP32_3XTF32=1; its "
                  "parity is the fp32x3 row above): " + "; ".join(parts)]
    probe = results.get("fp32_gemm_probe")
    if probe:
        lines += ["", "fp32 GEMMs, alternatives to SGEMM (bench/gemm_fp32_probe.cu; error: normwise "
                  "vs an fp64 GEMM of the same inputs):", "",
                  "| kernel | rows x in -> out | ms | TFLOP/s | rel error vs fp64 |",
                  "|---|---|---:|---:|---:|"]
        for p in probe:
            shape = f"{p['rows']} x {p['in']} -> {p['out']}"
            if "refused" in p:
                lines.append(f"| {p['kernel']} | {shape} | refused: {p['refused']} | - | - |")
            else:
                kernel = p["kernel"] + (" (the same result as sgemm: SGEMM itself?)"
                                        if p.get("same_as_sgemm") else "")
                lines.append(f"| {kernel} | {shape} | {p['ms']:.4f} | {p['tflops']:.1f} | "
                             f"{p['rel_error_vs_fp64']:.2e} |")
    if results.get("targets"):
        lines += [""] + targets_markdown(results["targets"])
    failed = [st for st in results.get("steps") or [] if "lines" in st]
    if results.get("steps"):
        lines += ["", f"Steps: {len(results['steps'])}, failed: "
                  f"{', '.join(st['step'] + ' (' + st['status'] + ')' for st in failed) or 'none'}"]
        for st in failed:
            lines += [f"- {st['step']}: " + " / ".join(st["lines"][:3])]
    if results["notes"]:
        lines += [""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir")
    p.add_argument("--archive", help="also write DIR/DATE_CARD_COMMIT.json")
    p.add_argument("--commit", help="commit id (default OUTDIR/commit.txt, else git HEAD)")
    p.add_argument("--retarget", action="store_true",
                   help="OUTDIR is an archived results.json instead: print its targets table "
                        "under this merger's rules (retarget), write nothing")
    args = p.parse_args(argv)
    if args.retarget:
        archived = read_json(args.outdir, strict=True)
        if archived is None:
            p.error(f"{args.outdir}: not a readable results.json")
        sys.stdout.write("\n".join(targets_markdown(retarget(archived))) + "\n")
        return 0

    del UNREADABLE[:]
    ours = read_json(os.path.join(args.outdir, "bench.json"))
    peer = read_json(os.path.join(args.outdir, "peer.json"))
    notes = []
    if ours is None:  # still merge what the peer measured: a failed run of ours is news too
        notes.append("no bench.json: our columns empty")
        ours = {}
    if ours.get("complete") is False:  # rewritten after each configuration; stopped before the end
        notes.append(f"bench.json is incomplete: the bench was stopped after "
                     f"{len(ours.get('configs') or [])} configuration(s); the rest are missing")
    if peer is None:
        notes.append("no peer.json: PyTorch columns empty")
    if os.path.exists(os.path.join(args.outdir, "bench-safe.json")):
        # gpu-check's second fallback (step bench-safer) writes the same file
        steps_tsv = os.path.join(args.outdir, "steps.tsv")
        safer = os.path.exists(steps_tsv) and any(
            line.split("\t")[0] == "bench-safer" for line in open(steps_tsv))
        paths = "BQ_ATTENTION_KERNEL=wmma BQ_FUSED_GELU=0" if safer else "BQ_ATTENTION_KERNEL=mma"
        notes.append("bench.json's run failed: rows with source bench-safe.json were measured "
                     f"with {paths} (see each row's error)")
    if (peer or {}).get("pending"):  # written before its last runs, which never reported
        notes.append(f"peer.json is the peer's report from before its {peer['pending']}, which "
                     "did not finish (the step was stopped): those runs are missing")
    for s in (peer or {}).get("skipped", []):
        notes.append(f"PyTorch {s.get('mode')} {s.get('precision')} batch {s.get('batch')} "
                     f"skipped: {one_line(s.get('reason'))}")
    for c in (peer or {}).get("configs", []):  # its kernel profile: failed, or doubtful
        for key, what in (("kernel_profile_error", "failed"), ("kernel_profile_warning", "warns")):
            if c.get(key):
                notes.append(f"PyTorch kernel profile {c.get('precision')} batch {c.get('batch')} "
                             f"{what}: {one_line(c[key])}")
    smi_name, smi_driver = nvidia_smi(args.outdir)
    now = datetime.datetime.now(datetime.timezone.utc)
    results = {
        # The card name as the driver reports it: nvidia-smi first, then our bench's own report.
        "device": smi_name or ours.get("device") or (peer or {}).get("device"),
        "driver": smi_driver or ours.get("driver"),
        "commit": args.commit or git_commit(args.outdir),
        # what the benchmarked binary says of itself (git describe at its build; "-dirty" where
        # the device's copy of .git is older than the tree it was sent with)
        "build_commit": ours.get("build_commit"),
        "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gemm_ceiling_tflops": ours.get("gemm_ceiling_tflops"),
        "pytorch_version": (peer or {}).get("torch"),
        "transformers_version": (peer or {}).get("transformers"),
        "pytorch_device": (peer or {}).get("device"),
        "configs": merge_configs(with_short_windows(ours, args.outdir), peer,
                                 read_json(os.path.join(args.outdir, "bench-safe.json"))),
        "parity": merge_parity(args.outdir),
        "notes": notes,
    }
    share_of_recorded_ceiling(results)
    results["profiles"] = merge_profiles(args.outdir)
    results["end_to_end"] = merge_end_to_end(args.outdir, results["configs"])
    results["end_to_end_buckets"] = merge_buckets(args.outdir, results["configs"],
                                                  results["end_to_end"])
    results["end_to_end_packed"] = merge_packed(args.outdir, results["configs"],
                                                results["end_to_end"])
    results["end_to_end_packed_cached"] = merge_packed_cached(args.outdir, results["configs"],
                                                              results["end_to_end"])
    results["gemm_autotune"] = merge_autotune(args.outdir, results["configs"])
    results["gemm_choices"] = gemm_choices(ours)
    results["clocks"] = merge_clocks(args.outdir)
    results["fp32_gemm_probe"] = merge_fp32_probe(args.outdir)
    results["fp32x3"] = merge_fp32x3(args.outdir, results["configs"])
    results["steps"] = merge_steps(args.outdir)
    results["targets"] = check_targets(results["configs"], results["profiles"],
                                       results["end_to_end"], kernels_alone(ours))
    notes.extend(UNREADABLE)  # the notes list is results["notes"]
    md = markdown(results)
    with open(os.path.join(args.outdir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.outdir, "results.md"), "w") as f:
        f.write(md)
    sys.stdout.write(md)
    if args.archive:
        os.makedirs(args.archive, exist_ok=True)
        card = re.sub(r"[^A-Za-z0-9]+", "-", results["device"] or "unknown").strip("-")
        name = f"{now.strftime('%Y-%m-%d')}_{card}_{(results['commit'] or 'nocommit')[:12]}.json"
        with open(os.path.join(args.archive, name), "w") as f:
            json.dump(results, f, indent=1)
        print(f"archived as {os.path.join(args.archive, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
