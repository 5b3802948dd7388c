#!/usr/bin/env python3
"""Golden statistics of the tiny seeded model, read with Hugging Face's own safetensors reader.

tests/test_model.c loads the same checkpoint with our loader and compares against this file, so the
loader is checked against an independent reader (safetensors.numpy), not against itself.

Rerun (after changing the random initialisation in tools/make_model.c):
    cmake --build build --target bertqa-make-model
    .venv-tools/bin/python tools/gen_model_golden.py build/bertqa-make-model > tests/data/tiny_model_seed7.txt
"""
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file


def main():
    tool = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([tool, "--out", tmp, "--preset", "tiny", "--seed", "7"], check=True)
        tensors = load_file(f"{tmp}/model.safetensors")
    print("# name shape(x-separated) sum sum_of_squares first_values... (tiny preset, seed 7, f32)")
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype != np.float32:
            continue
        flat = t.reshape(-1).astype(np.float64)
        shape = "x".join(str(d) for d in t.shape)
        first = " ".join(repr(float(v)) for v in t.reshape(-1)[:4])
        print(f"{name} {shape} {float(flat.sum())!r} {float((flat * flat).sum())!r} {first}")


if __name__ == "__main__":
    main()
