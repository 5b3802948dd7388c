#!/usr/bin/env python3
"""Peer benchmark: Hugging Face `tokenizers` (Rust) BertWordPieceTokenizer on the same texts.

Usage: .venv-tools/bin/python bench/tokenizer_peer.py [repeats=5] [dev-v1.1.json.gz] [vocab.txt]
Tokenizes every SQuAD v1.1 dev context `repeats` times on one thread (RAYON_NUM_THREADS=1,
TOKENIZERS_PARALLELISM=false), once calling encode() per context and once with encode_batch(),
without special tokens. Times are process CPU time (fair on a busy machine; one thread). Prints lines "peer <mode>: ... MB/s, tokens/s" like bench_tokenizer.
"""
import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["RAYON_RS_NUM_CPUS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import gzip  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from tokenizers import BertWordPieceTokenizer  # noqa: E402


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    data_path = sys.argv[2] if len(sys.argv) > 2 else "tests/data/squad/dev-v1.1.json.gz"
    vocab_path = sys.argv[3] if len(sys.argv) > 3 else "vocab/vocab.txt"
    with gzip.open(data_path, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    contexts = [p["context"] for a in data for p in a["paragraphs"]]
    nbytes = sum(len(c.encode("utf-8")) for c in contexts)
    tok = BertWordPieceTokenizer(vocab_path, lowercase=True, clean_text=True, handle_chinese_chars=True,
                                 strip_accents=None)
    tokens = sum(len(e.ids) for e in tok.encode_batch(contexts, add_special_tokens=False))  # warm-up

    t0 = time.process_time()
    for _ in range(repeats):
        for c in contexts:
            tok.encode(c, add_special_tokens=False)
    loop_s = time.process_time() - t0

    t0 = time.process_time()
    for _ in range(repeats):
        tok.encode_batch(contexts, add_special_tokens=False)
    batch_s = time.process_time() - t0

    mb = nbytes * repeats / 1e6
    for mode, s in (("encode loop", loop_s), ("encode_batch", batch_s)):
        print(f"peer tokenizers {mode}: {len(contexts)} contexts, {nbytes / 1e6:.2f} MB, {tokens} tokens per pass, "
              f"{repeats} passes, {s:.3f} s CPU: {mb / s:.1f} MB/s, {tokens * repeats / s:.0f} tokens/s")


if __name__ == "__main__":
    main()
