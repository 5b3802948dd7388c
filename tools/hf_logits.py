#!/usr/bin/env python3
"""Compare bertqa-gpu's logits with Hugging Face's on the same inputs (an independent reference).

    python3 tools/hf_logits.py --model DIR --ours LOGITS.json [--device cpu|cuda]
        [--label fp32] [--max-rel-err 1e-5] [--json-out parity.json]
        [--question Q --context-file F]

LOGITS.json is what `bertqa-gpu logits --model DIR --question Q --context-file F` prints:
{"windows": [{"input_ids": [...], "input_mask": [...], "segment_ids": [...],
              "start_logits": [...], "end_logits": [...], ...}, ...]}.
Hugging Face's BertForQuestionAnswering (SDPA attention, fp32, tf32 off) runs on exactly those ids,
mask and segments. Only real tokens (input_mask == 1) are compared:
  - normwise relative error ||ours - hf||_2 / ||hf||_2 over all windows, start and end together,
    must be <= --max-rel-err;
  - per window, the argmax of start and of end logits must agree (unless Hugging Face scores our
    argmax within the error bound of its own best: a tie, reported but not failed).
With --question/--context-file and a single window, the ids and segment ids of the real tokens are
also checked against Hugging Face's BertTokenizer (uncased, vocab.txt from DIR or --vocab).
Prints one line per check and exits 0 when all pass, 1 otherwise, 2 on bad input.
bench/parity.py also takes Hugging Face's logits at tf32, fp16 and bf16 (hf_logits_at), to set
beside ours what each precision costs the reference implementation itself.
Needs torch, transformers, numpy (e.g. the .venv-peer venv).
"""
import argparse
import json
import os
import sys

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only, never the hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def load_ours(path):
    with open(path) as f:
        doc = json.load(f)
    windows = doc.get("windows") if isinstance(doc, dict) else None
    if not windows:
        raise ValueError(f"{path}: no 'windows' list")
    for i, w in enumerate(windows):
        for key in ("input_ids", "input_mask", "segment_ids", "start_logits", "end_logits"):
            if key not in w:
                raise ValueError(f"{path}: window {i} has no '{key}'")
        n = len(w["input_ids"])
        if any(len(w[k]) != n for k in ("input_mask", "segment_ids", "start_logits", "end_logits")):
            raise ValueError(f"{path}: window {i}: arrays of different lengths")
    return windows


# Hugging Face's model at each precision our engine runs: fp32 (TF32 off), tf32 (TF32 allowed for
# matmuls and cuDNN), fp16 and bf16 (a converted copy of the weights, as peer_pytorch.py times it)
HF_PRECISIONS = ("fp32", "tf32", "fp16", "bf16")


def hf_logits(model_dir, windows, device_name):
    """fp32 start/end logits [windows, S] from Hugging Face on the windows' own inputs."""
    return hf_logits_at(model_dir, windows, device_name, ("fp32",))["fp32"]


def set_tf32(allow):
    """fp32 vs tf32: both switches, matmul and cuDNN (tf32 only matters on CUDA)."""
    import torch
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow


def load_model(model_dir, device):
    """Hugging Face's BertForQuestionAnswering from a checkpoint folder: fp32, SDPA attention, in
    eval mode on `device` (bench/peer_pytorch.py times this same model)."""
    import torch
    from transformers import BertForQuestionAnswering
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    try:
        model = BertForQuestionAnswering.from_pretrained(model_dir, attn_implementation="sdpa",
                                                         dtype=torch.float32)
    except TypeError:  # transformers 4.x spells the dtype argument torch_dtype
        model = BertForQuestionAnswering.from_pretrained(model_dir, attn_implementation="sdpa",
                                                         torch_dtype=torch.float32)
    return model.eval().to(device)


def precision_model(base_model, precision):
    """The model to run at a precision (HF_PRECISIONS); sets the tf32 switches. fp16/bf16 get a
    converted copy, fp32 and tf32 the model itself."""
    import copy
    import torch
    set_tf32(precision == "tf32")
    if precision == "fp16":
        return copy.deepcopy(base_model).half()
    if precision == "bf16":
        return copy.deepcopy(base_model).to(torch.bfloat16)
    return base_model


def hf_logits_at(model_dir, windows, device_name, precisions, errors=None):
    """{precision: (starts, ends)} from Hugging Face on the windows' own inputs, the checkpoint
    loaded once and converted for each precision (HF_PRECISIONS); logits as float64 arrays.
    With `errors` (a dict), a precision whose run raises is left out and its error kept there,
    so that one precision the device lacks does not lose the others; without it, it raises."""
    import torch
    unknown = [p for p in precisions if p not in HF_PRECISIONS]
    if unknown:
        raise ValueError(f"no Hugging Face precision {unknown[0]} ({', '.join(HF_PRECISIONS)})")
    device = torch.device(device_name)
    model = load_model(model_dir, device)
    results = {}
    try:
        for precision in precisions:
            run = None
            try:
                run = precision_model(model, precision)
                starts, ends = [], []
                with torch.inference_mode():
                    for w in windows:  # one at a time: windows may differ in length
                        t = [torch.tensor([w[k]], dtype=torch.long, device=device)
                             for k in ("input_ids", "input_mask", "segment_ids")]
                        out = run(input_ids=t[0], attention_mask=t[1], token_type_ids=t[2])
                        starts.append(out.start_logits[0].float().cpu().numpy().astype(np.float64))
                        ends.append(out.end_logits[0].float().cpu().numpy().astype(np.float64))
                results[precision] = (starts, ends)
            except Exception as e:  # noqa: BLE001  (torch raises many kinds)
                if errors is None:
                    raise
                errors[precision] = f"{type(e).__name__}: {e}"
            del run
    finally:
        set_tf32(False)
    return results


def compare(windows, hf_starts, hf_ends, max_rel_err):
    """Returns (checks: list of (name, ok, detail), rel_err)."""
    checks = []
    diff_sq = ref_sq = 0.0
    for i, w in enumerate(windows):
        real = np.asarray(w["input_mask"]) == 1
        if not real.any():
            checks.append((f"window {i} has real tokens", False, "input_mask is all zeros"))
            continue
        for name, ours_list, ref in (("start", w["start_logits"], hf_starts[i]),
                                     ("end", w["end_logits"], hf_ends[i])):
            ours = np.asarray(ours_list, dtype=np.float64)[real]
            ref = ref[real]
            diff_sq += float(np.sum((ours - ref) ** 2))
            ref_sq += float(np.sum(ref ** 2))
            ours_arg, ref_arg = int(np.argmax(ours)), int(np.argmax(ref))
            # a tie: Hugging Face scores our choice within the bound of its own best
            tie = ours_arg != ref_arg and ref[ours_arg] >= ref[ref_arg] - max_rel_err * max(np.linalg.norm(ref), 1e-30)
            ok = ours_arg == ref_arg or tie
            detail = f"ours {ours_arg}, hf {ref_arg}" + (" (a tie within the bound)" if tie else "")
            checks.append((f"window {i} {name} argmax", ok, detail))
    rel_err = float(np.sqrt(diff_sq) / np.sqrt(ref_sq)) if ref_sq > 0 else (0.0 if diff_sq == 0 else float("inf"))
    ok = bool(np.isfinite(rel_err) and rel_err <= max_rel_err)
    checks.insert(0, ("normwise relative error", ok, f"{rel_err:.3e} (limit {max_rel_err:.1e})"))
    return checks, rel_err


def check_tokens(windows, question, context, vocab):
    """Real-token ids and segments of a single window against Hugging Face's BertTokenizer."""
    from transformers import BertTokenizer
    if len(windows) != 1:
        return [("tokens vs BertTokenizer", True, f"skipped: {len(windows)} windows")]
    tok = BertTokenizer(vocab, do_lower_case=True)
    enc = tok(question, context)
    w = windows[0]
    real = [i for i, m in enumerate(w["input_mask"]) if m == 1]
    ids = [w["input_ids"][i] for i in real]
    segs = [w["segment_ids"][i] for i in real]
    checks = [("input_ids vs BertTokenizer", ids == enc["input_ids"],
               f"{len(ids)} ours, {len(enc['input_ids'])} hf")]
    checks.append(("segment_ids vs BertTokenizer", segs == enc["token_type_ids"], ""))
    return checks


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--ours", required=True, help="JSON printed by `bertqa-gpu logits`")
    p.add_argument("--device", default="cpu")
    p.add_argument("--label", default="fp32", help="precision of our run, for --json-out")
    p.add_argument("--max-rel-err", type=float, default=1e-5)
    p.add_argument("--json-out", help="write {label, rel_err_vs_hf, argmax_agree, ...} here")
    p.add_argument("--question")
    p.add_argument("--context-file")
    p.add_argument("--vocab", help="vocab.txt for the token check (default DIR/vocab.txt)")
    args = p.parse_args(argv)
    try:
        windows = load_ours(args.ours)
    except (OSError, ValueError) as e:
        print(f"hf_logits: {e}", file=sys.stderr)
        return 2

    hf_starts, hf_ends = hf_logits(args.model, windows, args.device)
    checks, rel_err = compare(windows, hf_starts, hf_ends, args.max_rel_err)
    if args.question is not None and args.context_file:
        with open(args.context_file, encoding="utf-8") as f:
            context = f.read()
        vocab = args.vocab or os.path.join(args.model, "vocab.txt")
        checks += check_tokens(windows, args.question, context, vocab)

    for name, ok, detail in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    failed = sum(1 for _, ok, _ in checks if not ok)
    if args.json_out:
        argmax_checks = [ok for name, ok, _ in checks if name.endswith("argmax")]
        with open(args.json_out, "w") as f:
            json.dump({"label": args.label, "reference": "huggingface", "device": args.device,
                       "windows": len(windows), "rel_err_vs_hf": rel_err,
                       "max_rel_err": args.max_rel_err,
                       "argmax_agree": sum(argmax_checks), "argmax_total": len(argmax_checks),
                       "passed": failed == 0}, f, indent=1)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
