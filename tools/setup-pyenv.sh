#!/usr/bin/env bash
# Create .venv-tools with the pinned Python packages used to regenerate golden files and to run the
# host-side benchmarks (Hugging Face tokenizer and `tokenizers`, numpy). Tests do not need it: they
# read the committed goldens under tests/data/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv-tools"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  "transformers==4.57.1" "tokenizers==0.22.1" "numpy==2.2.6"
echo "$venv/bin/python"
