#!/usr/bin/env bash
# Run the tokenizer benchmark and its peer (HF `tokenizers`, Rust) in the same run, one core each,
# and print a side-by-side table.
# Usage: bench/run_tokenizer_bench.sh [build-dir=build] [repeats=20]
#   needs the bench_tokenizer target built in build-dir and .venv-tools (tools/setup-pyenv.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
repeats=${2:-20}
py=${PYTHON:-$root/.venv-tools/bin/python}
data=$root/tests/data/squad/dev-v1.1.json.gz
vocab=$root/vocab/vocab.txt
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)

ours=$("${pin[@]}" "$build/bench_tokenizer" "$repeats" "$data" "$vocab")
peer=$("${pin[@]}" "$py" "$root/bench/tokenizer_peer.py" "$repeats" "$data" "$vocab" 2>/dev/null)

echo "$ours"
echo "$peer"
echo
printf '%-34s %10s %14s %8s\n' "tokenizer (1 core, CPU time)" "MB/s" "tokens/s" "bertqa x"
{ echo "$ours"; echo "$peer"; } | awk '
  { name = $0; sub(/:.*/, "", name)
    mbs = $0; sub(/ MB\/s.*/, "", mbs); sub(/.*: /, "", mbs)
    tps = $0; sub(/ tokens\/s.*/, "", tps); sub(/.* MB\/s, /, "", tps)
    names[NR] = name; rate[NR] = mbs; toks[NR] = tps }
  END { for (i = 1; i <= NR; i++)
          printf "%-34s %10.1f %14.0f %7.2fx\n", names[i], rate[i], toks[i], rate[1] / rate[i] }'
