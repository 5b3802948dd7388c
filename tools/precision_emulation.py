#!/usr/bin/env python3
"""precision_emulation.py - host emulation of the CUDA engine's rounding at the BERT-large shape.

Predicts, per precision, the whole-model error that tests/test_gpu_model.c measures
(test_large_every_precision), and what an engine change would buy. numpy only.

WHAT IT EMULATES
  Model and inputs: exactly the test's (random_model_create(1024, 16, 4096, 24, 30522, 512,
  seed 14), make_batch(lengths 384 and 171, seed 8)): the same splitmix64 stream in the same
  tensor order, so the weights and token ids are bit for bit the test's. Other seeds draw other
  models from the same generator. The float32 reference follows src/forward_cpu.c (erf GELU,
  LayerNorm eps 1e-12, score scale 1/8, mask bias -10000, softmax sum in double, QA head dots in
  double). Metric: the test's, ||got - ref|| / ||ref|| over the start and end logits of the real
  tokens: of both rows (the test's batch-2 runs) and of row 0 alone (its batch-1 run). Also the
  relative error of the final hidden states (the QA head input) over the real tokens.

  Engine rounding (dt = storage type, rnd = round to nearest even to dt); the bracketed names are
  the rounding points a variant may turn off:
    weights, biases, LayerNorm gamma/beta, embedding tables stored in dt                  [w]
    x = rnd(LN(word + pos + type)), the three dt rows summed in fp32, LN in fp32           [emb]
    qkv = rnd(x Wqkv^T + bqkv), fp32 accumulate, bias added in fp32                        [qkv]
    attention (cuda/attention.cu, attention_mma_head64_kernel): fp32 scores from dt q, k in
      log2 units, keys in tiles of 64 with a running row max m_t (online softmax); each
      p = exp2(x - m_t) is rounded to dt for P V (fp32 accumulate)                          [p]
      and summed unrounded; rescaled by exp2(m_old - m_new); ctx = rnd(O / sum)            [ctx]
    tmp = rnd(ctx Wo^T)                                                                    [ao]
    h = rnd(LN(tmp + bo + x)), in fp32 from the dt values                                  [h]
    f = rnd(h Wi^T)                                                                        [f1]
      (absent where the FFN-in GEMM, bias and GELU are fused: CUTLASS on Hopper, rows >= 512,
      i.e. the test's batch-2 runs; variants *-fused-gelu)
    f = rnd(gelu(f + bi)), fp32                                                            [f2]
    tmp = rnd(f Wf^T)                                                                      [fo]
    x = rnd(LN(tmp + bf + h))                                                              [x]
    logits = x . w_qa + b_qa, fp32, from the dt values
  tf32: storage and attention in plain fp32; inside the four layer GEMMs both operands are
  converted to tf32 (10 explicit mantissa bits) by round to nearest (even; cuBLAS's cvt.rna has
  ties away, which differs only on exact ties) or by truncation (the low 13 bits dropped); fp32
  accumulate. The QA head is an fp32 kernel. bf16 rounding is nearest-even on the float32 bits
  (uint32 ops); fp16 is numpy's IEEE half conversion (nearest-even, subnormals included). GELU's
  erf is Numerical Recipes' erfc fit (relative error < 1.2e-7), the same function everywhere.
  fp32x3 (fp32 with BQ_FP32_3XTF32=force): everything as fp32, but each layer GEMM operand x is
  split into big = x truncated to tf32 and small = (x - big) rounded to tf32, and the GEMM is
  small*big + big*small + big*big (the small*small term dropped), fp32 accumulate. The tensor
  cores' own accumulation (not IEEE: products aligned and truncated) is not emulated.

  Each sequence is computed over its real tokens only. For real query rows this is exactly the
  padded computation: everything but attention is row-wise, and a padded key scores s - 10000
  while every |s| < 1000 (checked in every run; the script stops otherwise), so its exp(score -
  max) underflows to exactly 0.0 in fp32 and it adds exact zeros to the softmax sum and to P V.
  `--check-padding` runs the float32 reference both ways (2 x 384 padded with the mask bias, and
  real tokens only; padded keys are checked to get probability exactly 0) and prints the
  difference, which is summation-order noise (5e-7 for the test seed).

  All variants of a seed advance layer by layer together, so each layer's weights are drawn and
  rounded once per representation. Memory: about 1.5 GB per job.

HOW TO RUN
  python tools/precision_emulation.py [--seeds test 1] [--variants A B C D E F] [--jobs N]
  python tools/precision_emulation.py --collapse [--seeds test 1 2] [--dist v=0.0346 ...]
  Seeds: "test" = the test's model (seed 14) and inputs (seed 8); an integer N = model seed N and
  input seed N. Variants: group letters, "all", or names (--list). --jobs runs seeds in parallel
  processes (default: one per seed, at most one per core); BLAS gets one thread per process
  unless OPENBLAS_NUM_THREADS is set and --jobs is 1 (small threaded GEMMs just spin).
  Cost: a variant pass is about 7 s per seed on a free core (13-16 s when the cores are shared
  with other work; ref64 and fp32-acc64 about twice that). Default (groups A-F, 22 passes a
  seed, 2 seeds, 2 jobs): 3.3 minutes on 2 free cores, about 6 when they are shared; "all"
  (47 passes a seed) about twice that.

WHAT IT PRINTS
  Per seed and row: the test metric over both rows ("both") and over row 0 ("row0"), the
  final-hidden-state error ("hidden"), the test bound of that precision (fp32 1e-5, tf32 3e-3,
  fp16 2e-2, bf16 2e-2), the larger logits error as a fraction of the bound, and the variant's
  seconds.
  Groups:
    A  the engine: fp64 reference (check of the float32 one), fp32 with another summation order
       (GEMMs and attention products accumulated in float64), tf32 rounded / truncated, fp16,
       bf16, and fp16 / bf16 with the fused GELU (no rounding of the FFN-in GEMM output)
    B  fp16 / bf16 with an fp32 residual stream: LayerNorm outputs kept in fp32 for the residual
       add and the QA head; their rounded copies only feed the GEMMs
    C  fp16 / bf16 with fp32 GEMM outputs into the LayerNorms (attn-out and FFN-out GEMMs write
       an fp32 D from 16-bit A / B)
    D  B and C together
    E  bf16 with the attention probabilities unrounded (P rounding's share of the error)
    F  tf32 (round to nearest) with one GEMM (or the FFN pair) in full fp32
    G  diagnostics: bf16 with one rounding point off at a time, P rounded after a full softmax
       instead of online, fp16 / bf16 weights without any activation rounding
    W  fp16 / bf16 with the weights kept more precise (two-term split W = W_hi + W_lo, emulated
       as unrounded weights, biases, LN parameters and embeddings)
    T  tf32 changes: weights pre-rounded on the host (for truncating hardware), weights exact
       (2xTF32 split) in all / some GEMMs, and diagnostics; fp32x3 (3xTF32 GEMMs, the fp32
       bound)
    R  the engine against a reference whose weights are rounded the way the engine stores them
       (a test-side change: measures the engine's arithmetic, not the model's quantization)
  Then a summary: per row, each seed's "both" error and the mean hidden error.
  Per seed, a non-degeneracy line: per row, the mean and max cosine between the final hidden
  states of distinct real tokens, and the std across tokens of the start / end logits over their
  mean magnitude (near 0: one constant per sequence).
  Why a hidden-state column: the test metric sees only 2 x tokens numbers, the projection of the
  hidden-state error onto w_qa; the hidden error is the steadier measure of what a change buys
  (the logits error scatters around it, 0.7x to 1.8x, between seeds and variants). The test's
  model used to be degenerate (matrices U(-0.05, 0.05), embeddings U(-0.1, 0.1): every sequence
  collapsed onto one vector, token cosine 1.0000 from layer ~16, so the logits were one constant
  per sequence and the metric the projection of one common error vector, seeds 5x apart). Its
  weights are now near BERT's initialisation with smaller value / attention-output matrices
  (DIST); the final token cosine is about 0.63 mean, 0.80 max, on the test seed and seeds 1, 2.
  --collapse prints the cosine after every layer (float32 reference only, ~20 s a seed), and
  --dist NAME=R tries another distribution, e.g. to check that a change keeps the model alive.
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass

# ---- shape and constants ----------------------------------------------------------------------

H, HEADS, HEAD_DIM, FFN, LAYERS = 1024, 16, 64, 4096, 24
VOCAB, MAX_POS, TYPE_VOCAB = 30522, 512, 2
EPS = 1e-12
MASK_BIAS = -10000.0
SCORE_LIMIT = 1000.0  # |score| below this => a -10000-biased key gets probability exactly 0
ATTN_KEYS = 64  # key tile of the engine's 16-bit attention kernel (online softmax)
BOUNDS = {"fp32": 1e-5, "tf32": 3e-3, "fp16": 2e-2, "bf16": 2e-2}
TEST_SEEDS = (14, 8)  # test_large_every_precision: model seed, make_batch seed

GEMMS = frozenset({"qkv", "ao", "fi", "fo"})  # the four layer GEMMs
POINTS = ("w", "emb", "qkv", "p", "ctx", "ao", "h", "f1", "f2", "fo", "x")

# random_model_create's distributions (tests/test_gpu_model.c), all uniform: a half-width r is
# U(-r, r), a pair U(lo, hi); the C code's float literals. --dist NAME=R or NAME=LO,HI overrides
# one (exploration; the test uses these values).
DIST = {
    "emb": 0.0346,  # word, position and token-type embeddings
    "emb_ln_b": 0.05, "emb_ln_g": (0.9, 1.1),  # embedding LayerNorm beta, gamma
    "qk": 0.0346,  # query and key matrices
    "v": 0.025,  # value matrix
    "ao": 0.025,  # attention output projection
    "fi": 0.0346, "fo": 0.0346,  # FFN in / out matrices
    "bias": 0.02,  # every layer bias
    "ln_b": 0.05, "ln_g": (0.9, 1.1),  # layer LayerNorm beta, gamma
    "qa": 0.0346, "qa_b": 0.02,  # QA head weight and bias
}


@dataclass(frozen=True)
class Variant:
    name: str
    group: str
    precision: str  # which test bound applies: fp32, tf32, fp16, bf16
    desc: str
    dt: str = "f32"  # storage type: f32, f16, bf16
    off: frozenset = frozenset()  # rounding points (POINTS) not rounded
    resid32: bool = False  # LayerNorm outputs kept fp32 for the residual add and the QA head
    tf32: str = ""  # "" | "rn" | "rz": GEMM operand conversion; "x3": 3xTF32 (both operands
    #                 split in a truncated tf32 big part and a rounded tf32 small part, the three
    #                 products small*big + big*small + big*big: cuda/gemm_3xtf32.cu's CUTLASS
    #                 OpMultiplyAddFastF32); the other tf32 fields do not apply to "x3"
    tf32_gemms: frozenset = GEMMS  # the GEMMs that convert their operands
    tf32_w: str = ""  # weight operand: "" converted as above, "rn" pre-rounded to tf32 (nearest)
    #                   on the host, "exact" not converted (a 2xTF32 split W = W_hi + W_lo, or
    #                   a diagnostic)
    tf32_w_gemms: frozenset = GEMMS  # the GEMMs tf32_w applies to (the others: "")
    tf32_a: str = ""  # activation operand, the same choices ("rn": the producing kernel writes
    #                   a tf32-rounded copy for the GEMM)
    compute: str = "f32"  # f32 | f64 (whole pass in float64) | acc64 (GEMMs etc. in float64)
    same: str = ""  # a comparison row: the results of variant `same` ...
    vs: str = ""  # ... measured against variant `vs` instead of the float32 reference
    attn: str = "online"  # 16-bit attention: "online" (the engine's 64-key tiles, P rounded
    #                       relative to the running max) or "full" (one softmax, then P rounded)


def _v(name, group, precision, desc, **k):
    for key in ("off", "tf32_gemms", "tf32_w_gemms"):
        if key in k:
            k[key] = frozenset(k[key])
    return Variant(name, group, precision, desc, **k)


VARIANTS = [
    _v("ref64", "A", "fp32", "float64 pass (check of the float32 reference)", compute="f64"),
    _v("fp32-acc64", "A", "fp32", "fp32, GEMMs / attention products accumulated in float64",
       compute="acc64"),
    _v("tf32-rn", "A", "tf32", "engine tf32, GEMM operands rounded to nearest", tf32="rn"),
    _v("tf32-rz", "A", "tf32", "engine tf32, GEMM operands truncated", tf32="rz"),
    _v("fp16", "A", "fp16", "engine fp16 (GEMM + separate bias-GELU kernel)", dt="f16"),
    _v("bf16", "A", "bf16", "engine bf16 (GEMM + separate bias-GELU kernel)", dt="bf16"),
    _v("fp16-fused-gelu", "A", "fp16", "engine fp16, CUTLASS fused GEMM+bias+GELU (Hopper)",
       dt="f16", off={"f1"}),
    _v("bf16-fused-gelu", "A", "bf16", "engine bf16, CUTLASS fused GEMM+bias+GELU (Hopper)",
       dt="bf16", off={"f1"}),
    _v("fp16-resid32", "B", "fp16", "fp16, fp32 residual stream", dt="f16", resid32=True),
    _v("bf16-resid32", "B", "bf16", "bf16, fp32 residual stream", dt="bf16", resid32=True),
    _v("bf16-fused-resid32", "B", "bf16",
       "bf16, fp32 residual stream, CUTLASS fused GEMM+bias+GELU (Hopper)", dt="bf16",
       off={"f1"}, resid32=True),
    _v("fp16-gemmout32", "C", "fp16", "fp16, attn-out / FFN-out GEMMs write fp32", dt="f16",
       off={"ao", "fo"}),
    _v("bf16-gemmout32", "C", "bf16", "bf16, attn-out / FFN-out GEMMs write fp32", dt="bf16",
       off={"ao", "fo"}),
    _v("fp16-B+C", "D", "fp16", "fp16, fp32 residual + fp32 GEMM outputs", dt="f16",
       resid32=True, off={"ao", "fo"}),
    _v("bf16-B+C", "D", "bf16", "bf16, fp32 residual + fp32 GEMM outputs", dt="bf16",
       resid32=True, off={"ao", "fo"}),
    _v("bf16-P32", "E", "bf16", "bf16, attention probabilities not rounded", dt="bf16",
       off={"p"}),
    _v("tf32-rn-qkv32", "F", "tf32", "tf32-rn, QKV GEMM in fp32", tf32="rn",
       tf32_gemms=GEMMS - {"qkv"}),
    _v("tf32-rn-ao32", "F", "tf32", "tf32-rn, attn-out GEMM in fp32", tf32="rn",
       tf32_gemms=GEMMS - {"ao"}),
    _v("tf32-rn-fi32", "F", "tf32", "tf32-rn, FFN-in GEMM in fp32", tf32="rn",
       tf32_gemms=GEMMS - {"fi"}),
    _v("tf32-rn-fo32", "F", "tf32", "tf32-rn, FFN-out GEMM in fp32", tf32="rn",
       tf32_gemms=GEMMS - {"fo"}),
    _v("tf32-rn-ffn32", "F", "tf32", "tf32-rn, both FFN GEMMs in fp32", tf32="rn",
       tf32_gemms={"qkv", "ao"}),
]
VARIANTS += [_v(f"bf16-no-{p}", "G", "bf16", f"bf16 with rounding point '{p}' off", dt="bf16",
                off={p}) for p in POINTS if p not in ("w", "f1")]  # = bf16-wsplit / -fused-gelu
VARIANTS += [
    _v("bf16-attn-full", "G", "bf16", "bf16, P rounded after one full softmax (not online)",
       dt="bf16", attn="full"),
    _v("fp16-weights-only", "G", "fp16", "fp16 weights, no activation rounding (diagnostic)",
       dt="f16", off=set(POINTS) - {"w"}),
    _v("bf16-weights-only", "G", "bf16", "bf16 weights, no activation rounding (diagnostic)",
       dt="bf16", off=set(POINTS) - {"w"}),
    _v("bf16-wsplit", "W", "bf16", "bf16, weights split in two (bf16x2: W = W_hi + W_lo)",
       dt="bf16", off={"w"}),
    _v("fp16-wsplit", "W", "fp16", "fp16, weights split in two (fp16x2)", dt="f16",
       off={"w"}),
    _v("bf16-wsplit-resid32", "W", "bf16", "bf16x2 weights + fp32 residual stream", dt="bf16",
       off={"w"}, resid32=True),
    _v("tf32-rz-wrn", "T", "tf32", "tf32 truncating, weights pre-rounded to tf32 (nearest)",
       tf32="rz", tf32_w="rn"),
    _v("tf32-rz-wrn-arn", "T", "tf32",
       "tf32 truncating, weights and GEMM-input copies pre-rounded (nearest)", tf32="rz",
       tf32_w="rn", tf32_a="rn"),
    _v("tf32-rn-wexact", "T", "tf32", "tf32-rn, weights exact (2xTF32: W = W_hi + W_lo)",
       tf32="rn", tf32_w="exact"),
    _v("tf32-rn-wexact-ffn", "T", "tf32", "tf32-rn, FFN weights exact (2xTF32 there)",
       tf32="rn", tf32_w="exact", tf32_w_gemms={"fi", "fo"}),
    _v("tf32-rn-wexact-attn", "T", "tf32", "tf32-rn, QKV / attn-out weights exact (2xTF32)",
       tf32="rn", tf32_w="exact", tf32_w_gemms={"qkv", "ao"}),
    _v("tf32-rn-wexact-fi", "T", "tf32", "tf32-rn, FFN-in weights exact (2xTF32 there)",
       tf32="rn", tf32_w="exact", tf32_w_gemms={"fi"}),
    _v("tf32-rn-aexact", "T", "tf32", "tf32-rn, activations not converted (diagnostic)",
       tf32="rn", tf32_a="exact"),
    _v("fp32x3", "T", "fp32", "fp32 with every layer GEMM on 3xTF32 (BQ_FP32_3XTF32=force)",
       tf32="x3"),
]
VARIANTS += [
    _v("bf16/wref", "R", "bf16", "bf16 vs a reference with the weights in bf16",
       same="bf16", vs="bf16-weights-only"),
    _v("bf16-fused/wref", "R", "bf16", "bf16-fused-gelu vs a reference with bf16 weights",
       same="bf16-fused-gelu", vs="bf16-weights-only"),
    _v("fp16/wref", "R", "fp16", "fp16 vs a reference with the weights in fp16",
       same="fp16", vs="fp16-weights-only"),
    _v("tf32-rn/wref", "R", "tf32", "tf32-rn vs a reference with tf32 (nearest) GEMM weights",
       same="tf32-rn", vs="tf32-rn-aexact"),
]
BY_NAME = {v.name: v for v in VARIANTS}
REF = Variant("ref32", "-", "fp32", "float32 reference (src/forward_cpu.c formulas)")
DEFAULT_GROUPS = ["A", "B", "C", "D", "E", "F"]


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Host emulation of the CUDA engine's rounding at the BERT-large shape "
                    "(see the module docstring).")
    ap.add_argument("--seeds", nargs="+", default=["test", "1"],
                    help="'test' (the GPU test's model and inputs) or integers")
    ap.add_argument("--variants", nargs="+", default=DEFAULT_GROUPS,
                    help="group letters (A-G, W, T, R), 'all', or names (see --list)")
    ap.add_argument("--jobs", type=int, default=0,
                    help="parallel processes, one seed each (default: min(seeds, cores))")
    ap.add_argument("--layers", type=int, default=LAYERS)
    ap.add_argument("--lengths", type=int, nargs="+", default=[384, 171])
    ap.add_argument("--seq-len", type=int, default=384, help="padded length (--check-padding)")
    ap.add_argument("--check-padding", action="store_true",
                    help="only compare the padded and the real-token-only float32 reference")
    ap.add_argument("--list", action="store_true", help="list the variants and exit")
    ap.add_argument("--dist", nargs="+", default=[], metavar="NAME=R|NAME=LO,HI",
                    help="override a weight distribution of DIST (exploration only: the test "
                         "uses the defaults)")
    ap.add_argument("--collapse", action="store_true",
                    help="only the float32 reference: token cosine after every layer, logit "
                         "spread (is the model degenerate?)")
    args = ap.parse_args(argv)
    for item in args.dist:
        name, _, val = item.partition("=")
        if name not in DIST:
            ap.error(f"--dist: unknown name '{name}' (one of {', '.join(DIST)})")
        vals = [float(x) for x in val.split(",")]
        DIST[name] = vals[0] if len(vals) == 1 else tuple(vals)
    return args


ARGS = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
if __name__ == "__main__":
    _jobs = ARGS.jobs or min(len(ARGS.seeds), os.cpu_count() or 1)
    if _jobs > 1 or "OPENBLAS_NUM_THREADS" not in os.environ:
        for _k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[_k] = "1"  # one thread per process: BLAS threads of small GEMMs only spin

import numpy as np  # noqa: E402  (after the thread setting)

F32, F64 = np.float32, np.float64

# ---- the test's random numbers (tests/test_support.c) -----------------------------------------

_GAMMA = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def splitmix_uniform(seed, start, n, lo, hi):
    """Draws start .. start+n-1 of bq_test_fill_uniform's stream from `seed`, as float32:
    lo + (float)u * (hi - lo), u = (splitmix64 >> 11) * 2^-53; splitmix64's k-th state (from 1)
    is seed + k * 0x9E3779B97F4A7C15, so any draw is computed directly."""
    out = np.empty(n, F32)
    lo32, span = F32(lo), F32(F32(hi) - F32(lo))
    chunk = 1 << 22
    for c0 in range(0, n, chunk):
        m = min(chunk, n - c0)
        k = np.arange(start + c0 + 1, start + c0 + 1 + m, dtype=np.uint64)
        z = k * np.uint64(_GAMMA)  # wraps modulo 2^64
        z += np.uint64(seed & _MASK64)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
        u = (z >> np.uint64(11)).astype(F64) * (1.0 / 9007199254740992.0)
        out[c0:c0 + m] = lo32 + u.astype(F32) * span
    return out


def _u(name):
    r = DIST[name]
    return tuple(r) if isinstance(r, tuple) else (-r, r)


def _layer_layout():
    """(name, shape, lo, hi) of one layer's tensors in random_model_create's order."""
    b = _u("bias")
    return [("q_w", (H, H)) + _u("qk"), ("q_b", (H,)) + b, ("k_w", (H, H)) + _u("qk"),
            ("k_b", (H,)) + b, ("v_w", (H, H)) + _u("v"), ("v_b", (H,)) + b,
            ("ao_w", (H, H)) + _u("ao"), ("ao_b", (H,)) + b,
            ("ln1_g", (H,)) + _u("ln_g"), ("ln1_b", (H,)) + _u("ln_b"),
            ("fi_w", (FFN, H)) + _u("fi"), ("fi_b", (FFN,)) + b, ("fo_w", (H, FFN)) + _u("fo"),
            ("fo_b", (H,)) + b, ("ln2_g", (H,)) + _u("ln_g"), ("ln2_b", (H,)) + _u("ln_b")]


_GLOBAL_DRAWS = (VOCAB + MAX_POS + TYPE_VOCAB) * H + 2 * H
_LAYER_DRAWS = sum(int(np.prod(s)) for _, s, _, _ in _layer_layout())


def make_globals(model_seed):
    """Embedding tables, embedding LayerNorm and QA head of random_model_create."""
    g, pos = {}, 0
    e = _u("emb")
    for name, shape, lo, hi in [("word", (VOCAB, H)) + e, ("pos", (MAX_POS, H)) + e,
                                ("type", (TYPE_VOCAB, H)) + e, ("emb_g", (H,)) + _u("emb_ln_g"),
                                ("emb_b", (H,)) + _u("emb_ln_b")]:
        n = int(np.prod(shape))
        g[name] = splitmix_uniform(model_seed, pos, n, lo, hi).reshape(shape)
        pos += n
    pos = _GLOBAL_DRAWS + LAYERS * _LAYER_DRAWS  # the QA head comes after all 24 layers
    g["qa_w"] = splitmix_uniform(model_seed, pos, 2 * H, *_u("qa")).reshape(2, H)
    g["qa_b"] = splitmix_uniform(model_seed, pos + 2 * H, 2, *_u("qa_b"))
    return g


def make_layer(model_seed, l):
    w, pos = {}, _GLOBAL_DRAWS + l * _LAYER_DRAWS
    for name, shape, lo, hi in _layer_layout():
        n = int(np.prod(shape))
        w[name] = splitmix_uniform(model_seed, pos, n, lo, hi).reshape(shape)
        pos += n
    w["qkv_w"] = np.concatenate([w.pop("q_w"), w.pop("k_w"), w.pop("v_w")])
    w["qkv_b"] = np.concatenate([w.pop("q_b"), w.pop("k_b"), w.pop("v_b")])
    return w


def make_inputs(batch_seed, lengths):
    """make_batch: one draw per real token, id = 1 + (int)(u * (V - 1)) % (V - 1), segment 1
    for t > len / 3; positions t."""
    seqs, pos = [], 0
    for n in lengths:
        u = splitmix_uniform(batch_seed, pos, n, 0.0, 1.0)
        pos += n
        ids = 1 + (u * F32(VOCAB - 1)).astype(np.int64) % (VOCAB - 1)
        t = np.arange(n)
        seqs.append({"ids": ids, "pos": t, "seg": (t > n // 3).astype(np.int64)})
    return seqs


# ---- rounding ----------------------------------------------------------------------------------


def rnd_bf16(a):
    """float32 -> bfloat16 (nearest, ties to even), returned as float32."""
    b = np.ascontiguousarray(a, dtype=F32).view(np.uint32)
    r = (b >> 16) & 1
    r += 0x7FFF
    r += b
    r &= 0xFFFF0000
    return r.view(F32)


def rnd_f16(a):
    return a.astype(np.float16).astype(F32)


def rnd_tf32(a, mode):
    """float32 -> tf32 (10 explicit mantissa bits): 'rn' nearest-even, 'rz' truncation, 'ra'
    half an ulp added, then truncated (nearest, ties away: CUTLASS's round_half_ulp_truncate)."""
    b = np.ascontiguousarray(a, dtype=F32).view(np.uint32)
    if mode == "rz":
        return (b & 0xFFFFE000).view(F32)
    if mode == "ra":
        return ((b + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(F32)
    r = (b >> 13) & 1
    r += 0xFFF
    r += b
    r &= 0xFFFFE000
    return r.view(F32)


ROUND = {"f16": rnd_f16, "bf16": rnd_bf16}

# ---- element-wise math (src/bq_math.h) --------------------------------------------------------

_ERFC_NR = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
            0.09678418, 0.37409196, 1.00002368, -1.26551223)


def erf(u):
    """erf in u's dtype from Numerical Recipes' erfc fit (relative error of erfc < 1.2e-7)."""
    T = u.dtype.type
    z = np.abs(u)
    t = z * T(0.5)
    t += T(1.0)
    np.divide(T(1.0), t, out=t)
    poly = np.full_like(z, _ERFC_NR[0])
    for c in _ERFC_NR[1:]:
        poly *= t
        poly += T(c)
    z *= z
    poly -= z
    np.exp(poly, out=poly)
    poly *= t  # erfc(|u|)
    np.subtract(T(1.0), poly, out=poly)
    return np.copysign(poly, u, out=poly)


def gelu(x):
    """bq_gelu_erf: 0.5 x (1 + erf(x / sqrt 2)) in x's dtype."""
    T = x.dtype.type
    e = erf(x * T(0.70710678118654752440))
    e += T(1.0)
    e *= x
    e *= T(0.5)
    return e


def layernorm(v, g, b):
    """Population variance, eps 1e-12 (two-pass statistics; the engine's Welford differs by
    fp32 noise only)."""
    mean = v.mean(axis=-1, keepdims=True)
    d = v - mean
    var = (d * d).mean(axis=-1, keepdims=True)
    rstd = v.dtype.type(1.0) / np.sqrt(var + v.dtype.type(EPS))
    return d * rstd * g + b


# ---- one variant's pass -----------------------------------------------------------------------


class WeightCache:
    """One layer's (or the globals') tensors in each representation the variants ask for."""

    def __init__(self, w):
        self.w, self.cache = w, {}

    def get(self, name, kind):
        """kind: f32 | f64 | f16 | bf16 | tf32rn | tf32rz | x3 (a (big, small) tf32 pair)."""
        key = (name, kind)
        if key not in self.cache:
            a = self.w[name]
            if kind == "f32":
                r = a
            elif kind == "f64":
                r = a.astype(F64)
            elif kind in ROUND:
                r = ROUND[kind](a)
            elif kind == "x3":  # 3xTF32's (big, small) split of the weight
                big = rnd_tf32(a, "rz")
                r = (big, rnd_tf32(a - big, "ra"))
            else:
                r = rnd_tf32(a, kind[4:])
            self.cache[key] = r
        return self.cache[key]


class Run:
    """The state of one variant's forward pass over the real tokens of all sequences."""

    def __init__(self, v, segs):
        self.v, self.segs = v, segs  # segs: (first row, rows, key bias or None) per sequence
        self.wd = F64 if v.compute == "f64" else F32
        self.x_res = self.x_in = None  # residual stream and its GEMM-input copy
        self.logits = self.hidden = None  # real-token results
        self.seconds, self.max_score = 0.0, 0.0

    def R(self, point, a):
        """Round activation `a` at rounding point `point` to the storage type."""
        if self.v.dt == "f32" or point in self.v.off:
            return a
        return ROUND[self.v.dt](a)

    def param(self, wc, name):
        v = self.v
        if v.compute == "f64":
            return wc.get(name, "f64")
        return wc.get(name, v.dt if v.dt != "f32" and "w" not in v.off else "f32")

    def matmul(self, a, b):
        if self.v.compute == "acc64":
            return (a.astype(F64) @ b.astype(F64)).astype(F32)
        return a @ b

    def gemm(self, wc, name, a):
        """a @ W^T for the layer GEMM `name`, with the variant's operand conversion."""
        v = self.v
        if v.tf32 == "x3":
            w_big, w_small = wc.get(name + "_w", "x3")
            a_big = rnd_tf32(a, "rz")
            a_small = rnd_tf32(a - a_big, "ra")
            # CUTLASS adds the three into one fp32 accumulator per k step (small*big, big*small,
            # big*big); here the three whole products, the two small ones first: fp32 noise apart
            return (a_small @ w_big.T + a_big @ w_small.T) + a_big @ w_big.T
        if v.tf32 and name in v.tf32_gemms:
            # converting an already tf32 value (pre-rounded weights / copies) changes nothing
            w_mode = v.tf32_w if name in v.tf32_w_gemms else ""
            kind = {"": "tf32" + v.tf32, "rn": "tf32rn", "exact": "f32"}[w_mode]
            if v.tf32_a != "exact":
                a = rnd_tf32(a, v.tf32_a or v.tf32)
            return a @ wc.get(name + "_w", kind).T
        return self.matmul(a, self.param(wc, name + "_w").T)

    def attention(self, qkv):
        wd = self.wd
        out = np.empty((qkv.shape[0], H), wd)
        scale = wd(1.0 / np.sqrt(HEAD_DIM))
        for r0, n, kb in self.segs:
            blk = qkv[r0:r0 + n].reshape(n, 3, HEADS, HEAD_DIM)
            q = np.ascontiguousarray(blk[:, 0].transpose(1, 0, 2))  # (heads, n, d)
            k = np.ascontiguousarray(blk[:, 1].transpose(1, 2, 0))  # (heads, d, n)
            vv = np.ascontiguousarray(blk[:, 2].transpose(1, 0, 2))
            s = self.matmul(q, k)
            self.max_score = max(self.max_score, float(np.abs(s).max()) * float(scale))
            if self.v.dt == "f32" or self.v.attn == "full":
                o = self.softmax_pv(s * scale, kb, vv)
            else:
                o = self.online_softmax_pv(s, scale, kb, vv)
            out[r0:r0 + n] = o.transpose(1, 0, 2).reshape(n, H)
        return out

    def softmax_pv(self, s, kb, vv):
        """Softmax over all keys at once, then P V."""
        if kb is not None:
            s += kb
        s -= s.max(axis=-1, keepdims=True)
        e = np.exp(s)
        if kb is not None and not np.all(e[:, :, kb < 0] == 0):
            sys.exit("a padded key got a nonzero probability")
        if self.v is REF:
            # src/forward_cpu.c: double sum, p *= (float)(1 / sum), then P V
            inv = (1.0 / e.sum(axis=-1, keepdims=True, dtype=F64)).astype(F32)
            return self.matmul(e * inv, vv)
        # (rounded P) V over the fp32 sum of the unrounded probabilities
        return self.matmul(self.R("p", e), vv) / e.sum(axis=-1, keepdims=True)

    def online_softmax_pv(self, s, scale, kb, vv):
        """The 16-bit engine kernel (attention_mma_head64_kernel): keys in tiles of 64, scores
        in log2 units (fma(q.k, scale * log2 e, bias * log2 e)), running row max m_t after tile
        t, p = exp2(x - m_t) rounded to dt for P V and summed unrounded; earlier tiles' O and sum
        rescaled by exp2(m_old - m_new). Equivalent: O = sum_j rnd(p_j) 2^(m_t(j) - m_last) V_j,
        l = sum_j p_j 2^(m_t(j) - m_last), ctx = O * (1 / l)."""
        log2e = F32(1.4426950408889634)
        x = s * F32(scale * log2e)
        if kb is not None:
            x += kb * log2e
        n = x.shape[-1]
        nt = -(-n // ATTN_KEYS)
        pad = nt * ATTN_KEYS - n
        xt = np.pad(x, ((0, 0), (0, 0), (0, pad)), constant_values=-np.inf) if pad else x
        m = np.maximum.accumulate(xt.reshape(*x.shape[:2], nt, ATTN_KEYS).max(axis=-1), axis=-1)
        m_key = np.repeat(m, ATTN_KEYS, axis=-1)[..., :n]  # running max when key j was used
        p = np.exp2(x - m_key)
        if kb is not None and not np.all(p[:, :, kb < 0] == 0):
            sys.exit("a padded key got a nonzero probability")
        c = np.exp2(m_key - m[..., -1:])  # the later tiles' alpha factors
        l = (p * c).sum(axis=-1, keepdims=True)
        o = self.matmul(self.R("p", p) * c, vv)
        return o * (F32(1.0) / l)

    def embeddings(self, gc, ids, pos, seg):
        t0 = time.perf_counter()
        word, posw, typ = (self.param(gc, k) for k in ("word", "pos", "type"))
        x = layernorm(word[ids] + posw[pos] + typ[seg], self.param(gc, "emb_g"),
                      self.param(gc, "emb_b"))
        self.x_in = self.R("emb", x)
        self.x_res = x if self.v.resid32 else self.x_in
        self.seconds += time.perf_counter() - t0

    def layer(self, wc):
        t0 = time.perf_counter()
        P = lambda n: self.param(wc, n)  # noqa: E731
        qkv = self.R("qkv", self.gemm(wc, "qkv", self.x_in) + P("qkv_b"))
        ctx = self.R("ctx", self.attention(qkv))
        tmp = self.R("ao", self.gemm(wc, "ao", ctx))
        h = layernorm(tmp + P("ao_b") + self.x_res, P("ln1_g"), P("ln1_b"))
        h_in = self.R("h", h)
        h_res = h if self.v.resid32 else h_in
        f = self.R("f1", self.gemm(wc, "fi", h_in))
        f = self.R("f2", gelu(f + P("fi_b")))
        tmp = self.R("fo", self.gemm(wc, "fo", f))
        x = layernorm(tmp + P("fo_b") + h_res, P("ln2_g"), P("ln2_b"))
        self.x_in = self.R("x", x)
        self.x_res = x if self.v.resid32 else self.x_in
        self.seconds += time.perf_counter() - t0

    def qa_head(self, gc):
        t0 = time.perf_counter()
        w, b = self.param(gc, "qa_w"), self.param(gc, "qa_b")
        # fp32 dot products on the GPU, double in the CPU reference: ~1e-7 apart either way
        self.logits = (self.x_res.astype(F64) @ w.T.astype(F64)).astype(self.wd) + b
        self.seconds += time.perf_counter() - t0


def parse_seed(token):
    if token == "test":
        return TEST_SEEDS
    return int(token), int(token)


def run_seed(token, variants, args, padded=False):
    """The reference and every variant for one seed, layer-synchronously."""
    model_seed, batch_seed = parse_seed(token)
    seqs = make_inputs(batch_seed, args.lengths)
    g = make_globals(model_seed)
    if padded:  # every row padded to seq_len with id 0, segment 0, mask bias -10000
        S = args.seq_len
        cols = {k: [] for k in ("ids", "pos", "seg")}
        segs, real = [], []
        for i, s in enumerate(seqs):
            n = len(s["ids"])
            cols["ids"].append(np.concatenate([s["ids"], np.zeros(S - n, np.int64)]))
            cols["pos"].append(np.arange(S))
            cols["seg"].append(np.concatenate([s["seg"], np.zeros(S - n, np.int64)]))
            segs.append((i * S, S, np.where(np.arange(S) < n, 0.0, MASK_BIAS).astype(F32)))
            real.append(np.arange(i * S, i * S + n))
        ids, pos, seg = (np.concatenate(cols[k]) for k in ("ids", "pos", "seg"))
        real = np.concatenate(real)
    else:
        ids, pos, seg = (np.concatenate([s[k] for s in seqs]) for k in ("ids", "pos", "seg"))
        segs, r0 = [], 0
        for s in seqs:
            segs.append((r0, len(s["ids"]), None))
            r0 += len(s["ids"])
        real = np.arange(r0)
    runs = [Run(v, segs) for v in [REF] + list(variants)]
    gc = WeightCache(g)
    for r in runs:
        r.embeddings(gc, ids, pos, seg)
    for l in range(args.layers):
        wc = WeightCache(make_layer(model_seed, l))
        for r in runs:
            r.layer(wc)
        del wc
    for r in runs:
        r.qa_head(gc)
        r.logits, r.hidden = r.logits[real], r.x_res[real]
        if not r.max_score < SCORE_LIMIT:
            sys.exit(f"{r.v.name}: |score| reached {r.max_score:.1f}; the real-token-only "
                     f"shortcut is no longer exact")
    return runs


def token_stats(hidden, lengths):
    """Per sequence: mean and max cosine between the final hidden states of distinct real tokens
    (1.0: every token the same vector, i.e. a degenerate model)."""
    out, r0 = [], 0
    for n in lengths:
        x = hidden[r0:r0 + n].astype(F64)
        r0 += n
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        c = x @ x.T
        off = c[~np.eye(n, dtype=bool)]
        out.append((float(off.mean()), float(off.max())))
    return out


def logit_spread(logits, lengths):
    """Per sequence: std across tokens / mean |logit| of the start and of the end logits (near 0:
    one constant per sequence, the test metric then sees two numbers per row; about 1.25 for
    zero-mean normal logits)."""
    out, r0 = [], 0
    for n in lengths:
        z = logits[r0:r0 + n].astype(F64)
        r0 += n
        out.append(z.std(axis=0) / np.abs(z).mean(axis=0))
    return out


def collapse_seed(token, args):
    """The float32 reference alone, with the token cosine after the embeddings and every layer."""
    model_seed, batch_seed = parse_seed(token)
    seqs = make_inputs(batch_seed, args.lengths)
    ids, pos, seg = (np.concatenate([s[k] for s in seqs]) for k in ("ids", "pos", "seg"))
    segs, r0 = [], 0
    for s in seqs:
        segs.append((r0, len(s["ids"]), None))
        r0 += len(s["ids"])
    ref, gc = Run(REF, segs), WeightCache(make_globals(model_seed))
    ref.embeddings(gc, ids, pos, seg)
    per_layer = [token_stats(ref.x_res, args.lengths)]
    for l in range(args.layers):
        ref.layer(WeightCache(make_layer(model_seed, l)))
        per_layer.append(token_stats(ref.x_res, args.lengths))
    ref.qa_head(gc)
    return token, per_layer, logit_spread(ref.logits, args.lengths), ref.max_score


def rel_error(got, ref):
    got, ref = np.asarray(got, F64).ravel(), np.asarray(ref, F64).ravel()
    if not np.all(np.isfinite(got)):
        return float("nan")
    return float(np.linalg.norm(got - ref) / np.linalg.norm(ref))


def computed(rows):
    """The variants whose passes the rows need (comparison rows reuse other variants' runs)."""
    out = []
    for v in rows:
        for n in ([v.same, v.vs] if v.same else [v.name]):
            if n and BY_NAME[n] not in out:
                out.append(BY_NAME[n])
    return out


def evaluate_seed(token, rows, args):
    """Errors of every row for one seed (what a worker process returns)."""
    t0 = time.time()
    runs = run_seed(token, computed(rows), args)
    ref = runs[0]
    by_name = {r.v.name: r for r in runs[1:]}
    n0 = args.lengths[0]
    res = {}
    for v in rows:
        r = by_name[v.same or v.name]
        b = by_name[v.vs] if v.vs else ref
        res[v.name] = {
            "both": rel_error(r.logits, b.logits),
            "row0": rel_error(r.logits[:n0], b.logits[:n0]),
            "hidden": rel_error(r.hidden, b.hidden),
            "seconds": 0.0 if v.same else r.seconds,
        }
    info = {
        "wall": time.time() - t0,
        "ref_seconds": ref.seconds,
        "max_score": max(r.max_score for r in runs),
        "logit_mean": ref.logits.astype(F64).mean(axis=0),
        "logit_std": ref.logits.astype(F64).std(axis=0),
        "cosine": token_stats(ref.hidden, args.lengths),
        "spread": logit_spread(ref.logits, args.lengths),
    }
    return token, res, info


def select(names):
    out = []
    for n in names:
        if n == "all":
            chosen = VARIANTS
        elif n in BY_NAME:
            chosen = [BY_NAME[n]]
        else:
            chosen = [v for v in VARIANTS if v.group == n]
            if not chosen:
                sys.exit(f"unknown variant or group '{n}' (see --list)")
        out += [v for v in chosen if v not in out]
    return out


def _worker(job):
    token, names, args = job
    return evaluate_seed(token, [BY_NAME[n] for n in names], args)


def format_stats(cosine, spread):
    return "; ".join(f"row {i}: token cosine mean {c[0]:.3f} max {c[1]:.3f}, logit std/mean|.| "
                     f"start {sp[0]:.2f} end {sp[1]:.2f}"
                     for i, (c, sp) in enumerate(zip(cosine, spread)))


def _collapse_worker(job):
    token, args = job
    return collapse_seed(token, args)


def main(args):
    if args.list:
        for v in VARIANTS:
            print(f"{v.group}  {v.name:19s} {v.desc}")
        return
    t_start = time.time()
    if args.check_padding:
        for token in args.seeds:
            a = run_seed(token, [], args, padded=False)[0]
            b = run_seed(token, [], args, padded=True)[0]
            print(f"seed {token}, {args.layers} layers: float32 reference, real tokens only vs "
                  f"padded to {args.seq_len}: max |logit diff| "
                  f"{np.abs(a.logits - b.logits).max():.3e}, rel error "
                  f"{rel_error(a.logits, b.logits):.3e}, max |score| "
                  f"{max(a.max_score, b.max_score):.2f}", flush=True)
        print(f"wall time {time.time() - t_start:.1f} s")
        return
    if args.collapse:
        jobs = args.jobs or min(len(args.seeds), os.cpu_count() or 1)
        work = [(t, args) for t in args.seeds]
        if jobs > 1:
            import multiprocessing as mp
            with mp.get_context("fork").Pool(jobs) as pool:
                results = pool.map(_collapse_worker, work, chunksize=1)
        else:
            results = [_collapse_worker(w) for w in work]
        dist = ", ".join(f"{k} {v}" for k, v in DIST.items())
        print(f"float32 reference, lengths {args.lengths}, {args.layers} layers; weights: {dist}")
        for token, per_layer, spread, max_score in results:
            print(f"seed {token}: token cosine mean / max per row after the embeddings (0) and "
                  f"each layer; max |score| {max_score:.2f}")
            for l, st in enumerate(per_layer):
                print(f"  {l:2d} " + "  ".join(f"{m:.3f} / {x:.3f}" for m, x in st))
            print("  final: " + format_stats(per_layer[-1], spread))
        print(f"wall time {time.time() - t_start:.1f} s")
        return
    variants = select(args.variants)
    names = [v.name for v in variants]
    jobs = args.jobs or min(len(args.seeds), os.cpu_count() or 1)
    work = [(t, names, args) for t in args.seeds]
    if jobs > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(jobs) as pool:
            results = pool.map(_worker, work, chunksize=1)
    else:
        results = [_worker(w) for w in work]

    print(f"BERT-large emulation: lengths {args.lengths}, {args.layers} layers; error = "
          f"||got - ref|| / ||ref|| vs the float32 reference")
    print("  both / row0: start+end logits of the real tokens of both rows / of row 0 (the "
          "test's batch-2 / batch-1 runs); hidden: final hidden states")
    for token, res, info in results:
        ms, bs = parse_seed(token)
        print(f"\nseed {token} (model seed {ms}, input seed {bs}): ref logits mean "
              f"{np.array2string(info['logit_mean'], precision=3)} std across tokens "
              f"{np.array2string(info['logit_std'], precision=3)}, max |score| "
              f"{info['max_score']:.2f}, {info['wall']:.0f} s (ref32 {info['ref_seconds']:.1f} s)")
        print("  non-degeneracy (ref, per row): " + format_stats(info["cosine"], info["spread"]))
        print(f"{'grp':3s} {'variant':19s} {'both':>9s} {'row0':>9s} {'hidden':>9s} "
              f"{'bound':>7s} {'/bound':>6s} {'s':>5s}  description")
        for v in variants:
            e = res[v.name]
            worst = max(e["both"], e["row0"]) / BOUNDS[v.precision]
            print(f"{v.group:3s} {v.name:19s} {e['both']:9.2e} {e['row0']:9.2e} "
                  f"{e['hidden']:9.2e} {BOUNDS[v.precision]:7.0e} {worst:6.2f} "
                  f"{e['seconds']:5.1f}  {v.desc}")
    if len(results) > 1:
        toks = [t for t, _, _ in results]
        print("\nsummary: test metric over both rows per seed, and the mean final-hidden-state "
              "error")
        head = " ".join(f"{'both ' + t:>11s}" for t in toks)
        print(f"{'grp':3s} {'variant':19s} {head} {'hidden':>9s}")
        for v in variants:
            cols = " ".join(f"{res[v.name]['both']:11.2e}" for _, res, _ in results)
            hid = np.mean([res[v.name]["hidden"] for _, res, _ in results])
            print(f"{v.group:3s} {v.name:19s} {cols} {hid:9.2e}")
    print(f"\nlargest |attention score| {max(i['max_score'] for _, _, i in results):.2f} (< "
          f"{SCORE_LIMIT:.0f}: padded keys would get probability exactly 0)")
    print(f"wall time {time.time() - t_start:.1f} s ({jobs} job(s), BLAS threads "
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')})")


if __name__ == "__main__":
    main(ARGS)
