#!/usr/bin/env bash
# Install the Debian packages bertqa-gpu builds and tests with (idempotent; needs root or sudo).
# The CUDA toolkit (nvcc, cuBLAS, cuDNN) is expected under /usr/local/cuda where present; without it
# the CPU backend is built alone.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config
      libcmocka-dev libutf8proc-dev libcjson-dev libopenblas-dev
      python3 python3-venv
      clang) # libFuzzer for tools/fuzz.sh
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# CUTLASS headers for the fused GEMM + bias + erf-GELU (optional: a failed download only leaves
# that kernel out)
bash "$(dirname "${BASH_SOURCE[0]}")/fetch-cutlass.sh"
