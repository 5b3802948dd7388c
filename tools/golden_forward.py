#!/usr/bin/env python3
"""Golden data for the CPU forward pass: tiny random BERT-QA checkpoints + float64 numpy logits.

Rerun (from the repository root):
    .venv-tools/bin/python tools/golden_forward.py
It rewrites tests/data/forward/<case>/ for every case below, deterministically (fixed seeds):
    <case>/inputs.txt            "batch seq_len", then input_ids, input_mask, segment_ids (batch*seq each)
    <case>/<dtype>/              a Hugging Face checkpoint folder for dtype f32, f16, bf16:
                                 config.json, vocab.txt, model.safetensors (BertForQuestionAnswering names)
    <case>/<dtype>/logits.txt    batch*seq start logits then batch*seq end logits, float64 reference
                                 computed from exactly the weights stored in that dtype.

The reference is an independent float64 numpy implementation of BertForQuestionAnswering (post-LN
encoder, exact erf GELU, additive mask bias -10000 as in the original BERT / model card). The
safetensors file is written by the minimal writer below (no torch / safetensors package needed).
"""
import json
import math
import os
import struct

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "forward")

# Odd sizes on purpose: head sizes 8, 8 and 4, hidden not a multiple of 32, a single-layer model.
CASES = [
    dict(name="h24_l2_s7", hidden=24, heads=3, inter=40, layers=2, vocab=97, max_pos=12, seq=7,
         lengths=[1, 7, 4], eps=1e-12, weight_std=0.02, extras=False, seed=1),
    # Larger weights so attention is far from uniform (a mis-scaled or mis-masked softmax shows);
    # also carries the tensors real checkpoints have that are not part of the QA model.
    dict(name="h32_l3_s16", hidden=32, heads=4, inter=64, layers=3, vocab=97, max_pos=20, seq=16,
         lengths=[16, 1, 9, 12], eps=1e-12, weight_std=0.15, extras=True, seed=2),
    dict(name="h20_l1_s33", hidden=20, heads=5, inter=36, layers=1, vocab=61, max_pos=40, seq=33,
         lengths=[33, 17, 1], eps=1e-5, weight_std=0.05, extras=False, seed=3),
]


# ---- float64 reference ------------------------------------------------------------------------

_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x, g, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # biased, as torch.nn.LayerNorm
    return (x - mean) / np.sqrt(var + eps) * g + b


def forward(w, c, ids, mask, seg):
    """w: name -> float64 array (HF names); ids/mask/seg: [B, S] ints. Returns start, end [B, S]."""
    B, S = ids.shape
    H, nh = c["hidden"], c["heads"]
    d = H // nh
    p = "bert.embeddings."
    x = w[p + "word_embeddings.weight"][ids] + w[p + "position_embeddings.weight"][np.arange(S)][None] \
        + w[p + "token_type_embeddings.weight"][seg]
    x = layer_norm(x, w[p + "LayerNorm.weight"], w[p + "LayerNorm.bias"], c["eps"])
    bias = (1.0 - mask.astype(np.float64)) * -10000.0  # [B, S] over keys
    for l in range(c["layers"]):
        p = f"bert.encoder.layer.{l}."

        def lin(t, name):
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(t):  # [B, S, H] -> [B, heads, S, d]
            return t.reshape(B, S, nh, d).transpose(0, 2, 1, 3)

        q = split(lin(x, "attention.self.query"))
        k = split(lin(x, "attention.self.key"))
        v = split(lin(x, "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias[:, None, None, :]
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(B, S, H)
        h = layer_norm(x + lin(ctx, "attention.output.dense"),
                       w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"], c["eps"])
        x = layer_norm(h + lin(gelu(lin(h, "intermediate.dense")), "output.dense"),
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], c["eps"])
    logits = x @ w["qa_outputs.weight"].T + w["qa_outputs.bias"]
    return logits[..., 0], logits[..., 1]


# ---- random weights ---------------------------------------------------------------------------

def make_weights(c, rng):
    H, I, V, P = c["hidden"], c["inter"], c["vocab"], c["max_pos"]
    std = c["weight_std"]
    w = {}

    def normal(*shape):
        return rng.normal(0.0, std, size=shape).astype(np.float32)

    def gain(n):  # LayerNorm gains near 1, biases near 0
        return (1.0 + rng.normal(0.0, 0.1, size=n)).astype(np.float32)

    def small(n):
        return rng.normal(0.0, 0.05, size=n).astype(np.float32)

    p = "bert.embeddings."
    w[p + "word_embeddings.weight"] = normal(V, H)
    w[p + "position_embeddings.weight"] = normal(P, H)
    w[p + "token_type_embeddings.weight"] = normal(2, H)
    w[p + "LayerNorm.weight"] = gain(H)
    w[p + "LayerNorm.bias"] = small(H)
    for l in range(c["layers"]):
        p = f"bert.encoder.layer.{l}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            w[p + name + ".weight"] = normal(H, H)
            w[p + name + ".bias"] = small(H)
        w[p + "attention.output.LayerNorm.weight"] = gain(H)
        w[p + "attention.output.LayerNorm.bias"] = small(H)
        w[p + "intermediate.dense.weight"] = normal(I, H)
        w[p + "intermediate.dense.bias"] = small(I)
        w[p + "output.dense.weight"] = normal(H, I)
        w[p + "output.dense.bias"] = small(H)
        w[p + "output.LayerNorm.weight"] = gain(H)
        w[p + "output.LayerNorm.bias"] = small(H)
    w["qa_outputs.weight"] = normal(2, H)
    w["qa_outputs.bias"] = small(2)
    return w


def to_bf16_bits(a):
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even (values are finite)."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_bits_to_f64(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


# ---- writers ----------------------------------------------------------------------------------

def write_safetensors(path, tensors):
    """tensors: list of (name, dtype string, shape, raw little-endian bytes)."""
    header, offset = {}, 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # data section 8-byte aligned, as the HF writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)


def write_config(path, c):
    cfg = {
        "architectures": ["BertForQuestionAnswering"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": c["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": c["inter"],
        "layer_norm_eps": c["eps"],
        "max_position_embeddings": c["max_pos"],
        "num_attention_heads": c["heads"],
        "num_hidden_layers": c["layers"],
        "pad_token_id": 0,
        "type_vocab_size": 2,
        "vocab_size": c["vocab"],
    }
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def vocab_tokens(n):
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(ord("a") + i) for i in range(26)]
    toks += letters + ["##" + ch for ch in letters]
    i = 0
    while len(toks) < n:
        toks.append(f"word{i}")
        i += 1
    return toks[:n]


def make_inputs(c, rng):
    B, S = len(c["lengths"]), c["seq"]
    ids = np.zeros((B, S), np.int64)
    mask = np.zeros((B, S), np.int64)
    seg = np.zeros((B, S), np.int64)
    for b, n in enumerate(c["lengths"]):
        ids[b, :n] = rng.integers(5, c["vocab"], size=n)
        ids[b, 0] = 2  # [CLS]
        if n > 2:
            q = max(1, n // 3)  # [CLS] question [SEP] context [SEP]
            ids[b, q] = 3
            ids[b, n - 1] = 3
            seg[b, q + 1:n] = 1
        mask[b, :n] = 1
    return ids, mask, seg


def write_ints(f, a):
    f.write(" ".join(str(int(v)) for v in a.ravel()) + "\n")


def main():
    for c in CASES:
        rng = np.random.default_rng(c["seed"])
        w32 = make_weights(c, rng)
        ids, mask, seg = make_inputs(c, rng)
        if c["extras"]:  # the pooler of BertModel: stored in real checkpoints, unused for QA
            H = c["hidden"]
            w32["bert.pooler.dense.weight"] = rng.normal(0, 0.02, size=(H, H)).astype(np.float32)
            w32["bert.pooler.dense.bias"] = np.zeros(H, np.float32)
        case_dir = os.path.join(OUT, c["name"])
        os.makedirs(case_dir, exist_ok=True)
        with open(os.path.join(case_dir, "inputs.txt"), "w") as f:
            f.write(f"{ids.shape[0]} {ids.shape[1]}\n")
            write_ints(f, ids)
            write_ints(f, mask)
            write_ints(f, seg)
        for dtype in ("f32", "f16", "bf16"):
            tensors, w64 = [], {}
            for name, a in w32.items():
                if dtype == "f32":
                    raw, ref, st = a.astype("<f4").tobytes(), a.astype(np.float64), "F32"
                elif dtype == "f16":
                    h = a.astype(np.float16)  # round to nearest even
                    raw, ref, st = h.astype("<f2").tobytes(), h.astype(np.float64), "F16"
                else:
                    bits = to_bf16_bits(a)
                    raw, ref, st = bits.astype("<u2").tobytes(), bf16_bits_to_f64(bits), "BF16"
                tensors.append((name, st, a.shape, raw))
                w64[name] = ref
            if c["extras"]:  # a buffer real checkpoints carry, not a weight
                pos_ids = np.arange(c["max_pos"], dtype="<i8").reshape(1, -1)
                tensors.append(("bert.embeddings.position_ids", "I64", pos_ids.shape, pos_ids.tobytes()))
            d = os.path.join(case_dir, dtype)
            os.makedirs(d, exist_ok=True)
            write_safetensors(os.path.join(d, "model.safetensors"), tensors)
            write_config(os.path.join(d, "config.json"), c)
            with open(os.path.join(d, "vocab.txt"), "w") as f:
                f.write("\n".join(vocab_tokens(c["vocab"])) + "\n")
            start, end = forward(w64, c, ids, mask, seg)
            with open(os.path.join(d, "logits.txt"), "w") as f:
                f.write(" ".join(repr(float(v)) for v in start.ravel()) + "\n")
                f.write(" ".join(repr(float(v)) for v in end.ravel()) + "\n")
            print(f"{c['name']}/{dtype}: max|start| {np.abs(start).max():.4g} "
                  f"max|end| {np.abs(end).max():.4g}")


if __name__ == "__main__":
    main()
