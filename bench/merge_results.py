#!/usr/bin/env python3
"""Merge one device run's outputs into OUTDIR/results.json and OUTDIR/results.md.

    python3 bench/merge_results.py OUTDIR [--archive bench/results] [--commit SHA]

Reads (missing optional files are noted, not fatal):
  OUTDIR/bench.json      ours, from `bertqa-gpu bench --json`
  OUTDIR/peer.json       bench/peer_pytorch.py --json (optional)
  OUTDIR/parity*.json    parity summaries (optional): each {"label": precision, and
                         "rel_err_vs_hf" and/or "rel_err_vs_cpu", ...}
  OUTDIR/nvidia-smi.txt  output of `nvidia-smi --query-gpu=name,driver_version --format=csv,noheader`
                         or plain `nvidia-smi` (optional; else nvidia-smi is run if present)
Writes OUTDIR/results.json, OUTDIR/results.md (also printed); with --archive DIR, a copy of
results.json as DIR/DATE_CARD_COMMIT.json. Standard library only.
"""
import argparse
import datetime
import glob
import json
import os
import re
import subprocess
import sys


def read_json(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"merge_results: {path}: {e}")


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


def best_peer(peer):
    """{(precision, batch, seq_len): {"eager": cfg, "compile": cfg}} from peer.json."""
    table = {}
    for cfg in (peer or {}).get("configs", []):
        key = (cfg["precision"], int(cfg["batch"]), int(cfg["seq_len"]))
        table.setdefault(key, {})[cfg.get("mode", "eager")] = cfg
    return table


def merge_configs(ours, peer):
    """One row per (precision, batch, seq_len) in either file; ours may be missing (None)."""
    peers = best_peer(peer)
    own = {(c["precision"], int(c["batch"]), int(c["seq_len"])): c for c in ours.get("configs", [])}
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
            "device_memory_bytes": cfg.get("device_memory_bytes"),
        }
        modes = peers.get(key, {})
        # The peer's best mode is the fair comparison: compile where it worked, else eager.
        best_mode = max(modes, key=lambda m: modes[m]["throughput_seq_s"]) if modes else None
        for mode in ("eager", "compile"):
            row[f"pytorch_{mode}_throughput_seq_s"] = modes.get(mode, {}).get("throughput_seq_s")
        row["pytorch_mode"] = best_mode
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


def fmt(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def markdown(results):
    lines = [f"# bertqa-gpu vs PyTorch on {results['device'] or 'unknown device'}", "",
             f"driver {results['driver'] or '-'}, commit {results['commit'] or '-'}, "
             f"{results['date']}; PyTorch {results.get('pytorch_version') or '-'}", "",
             "| configuration | ours p50 ms | ours p99 ms | ours seq/s | PyTorch seq/s (mode) "
             "| ratio |", "|---|---:|---:|---:|---:|---:|"]
    for r in results["configs"]:
        mode = f" ({r['pytorch_mode']})" if r["pytorch_mode"] else ""
        lines.append(f"| {r['precision']} batch {r['batch']} seq {r['seq_len']} "
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
        lines += ["", "| parity | rel err vs CPU reference | rel err vs Hugging Face |",
                  "|---|---:|---:|"]
        for label, p in sorted(results["parity"].items()):
            lines.append(f"| {label} | {fmt(p.get('rel_err_vs_cpu'), '.2e')} "
                         f"| {fmt(p.get('rel_err_vs_hf'), '.2e')} |")
    if results["notes"]:
        lines += [""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir")
    p.add_argument("--archive", help="also write DIR/DATE_CARD_COMMIT.json")
    p.add_argument("--commit", help="commit id (default OUTDIR/commit.txt, else git HEAD)")
    args = p.parse_args(argv)

    ours = read_json(os.path.join(args.outdir, "bench.json"))
    peer = read_json(os.path.join(args.outdir, "peer.json"))
    notes = []
    if ours is None:  # still merge what the peer measured: a failed run of ours is news too
        notes.append("no bench.json: our columns empty")
        ours = {}
    if peer is None:
        notes.append("no peer.json: PyTorch columns empty")
    for s in (peer or {}).get("skipped", []):
        notes.append(f"PyTorch {s.get('mode')} {s.get('precision')} batch {s.get('batch')} "
                     f"skipped: {s.get('reason')}")
    smi_name, smi_driver = nvidia_smi(args.outdir)
    now = datetime.datetime.now(datetime.timezone.utc)
    results = {
        # The card name as the driver reports it: nvidia-smi first, then our bench's own report.
        "device": smi_name or ours.get("device") or (peer or {}).get("device"),
        "driver": smi_driver or ours.get("driver"),
        "commit": args.commit or git_commit(args.outdir),
        "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gemm_ceiling_tflops": ours.get("gemm_ceiling_tflops"),
        "pytorch_version": (peer or {}).get("torch"),
        "transformers_version": (peer or {}).get("transformers"),
        "pytorch_device": (peer or {}).get("device"),
        "configs": merge_configs(ours, peer),
        "parity": merge_parity(args.outdir),
        "notes": notes,
    }
    if ours.get("profile") is not None:
        results["profile"] = ours["profile"]
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
