#!/usr/bin/env bash
# fetch-cutlass.sh - put NVIDIA CUTLASS (header-only; BSD-3-Clause) where the build finds it:
# .deps/nvidia_cutlass-4.2.0.0-py3-none-any.whl, from PyPI (the only package index these machines
# reach), checked against a pinned SHA-256. CMake extracts the headers from the wheel into the build
# directory at configure time, so the 6 MB wheel (not 28 MB of headers) is what travels to the GPU
# machine inside .deps. Without the wheel the build still works: the fused GEMM + bias + erf-GELU
# (cuda/gemm_bias_gelu.cu) is then left out and the engine uses cuBLASLt + our GELU kernel.
# Idempotent; exits 0 with a warning when the download fails (offline), so it never blocks a build.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version=4.2.0.0
wheel="nvidia_cutlass-${version}-py3-none-any.whl"
sha256=f9599ada45c7bcb6bf53f7d3f0a7d154183e53451c01bfa59eecd37dd4a693f6
dest="$repo/.deps"
mkdir -p "$dest"

verify() { [ -f "$dest/$wheel" ] && echo "$sha256  $dest/$wheel" | sha256sum -c --status; }

if verify; then echo "cutlass: $dest/$wheel present" >&2; exit 0; fi
rm -f "$dest/$wheel"
pip_cmd=()
trap 'rm -rf "$dest/pip-venv"' EXIT # never leave a venv in .deps: it travels to the GPU machine
if python3 -m pip --version >/dev/null 2>&1; then
    pip_cmd=(python3 -m pip)
else
    # Debian's python3 has no pip module; python3-venv brings ensurepip
    python3 -m venv "$dest/pip-venv" >/dev/null 2>&1 && pip_cmd=("$dest/pip-venv/bin/python" -m pip)
fi
if [ ${#pip_cmd[@]} -eq 0 ] ||
   ! "${pip_cmd[@]}" download --quiet --no-deps --only-binary=:all: "nvidia-cutlass==$version" -d "$dest" ||
   ! verify; then
    rm -f "$dest/$wheel"
    echo "cutlass: could not fetch $wheel (offline?): building without the fused GEMM + GELU" >&2
    exit 0
fi
echo "cutlass: fetched $dest/$wheel" >&2
