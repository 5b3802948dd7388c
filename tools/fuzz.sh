#!/usr/bin/env bash
# Fuzz every parser of outside input and the answering pipeline with libFuzzer (clang, with
# AddressSanitizer + UBSan), SECONDS each (default 60), in a build of its own (build-fuzz/).
#   bash tools/fuzz.sh [SECONDS] [TARGET...]      targets: tests/fuzz/fuzz_<target>.c (default all)
# Each target starts from its committed corpus (tests/fuzz/corpus/<target>/) plus what earlier runs
# found (build-fuzz/corpus/<target>/). An input that breaks something is written to
# build-fuzz/crashes/<target>/; once the fix is in, copy it into tests/fuzz/corpus/<target>/ so that
# ctest's fuzz_replay_<target> keeps trying it. Exits 1 when any target found a failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
build=${BQ_FUZZ_BUILD:-$root/build-fuzz}
command -v clang >/dev/null || { echo "fuzz.sh: needs clang (apt-get install clang)" >&2; exit 2; }
if [ $# -eq 0 ]; then
  for f in "$root"/tests/fuzz/fuzz_*.c; do
    t=$(basename "$f" .c); t=${t#fuzz_}
    [ "$t" = common ] || set -- "$@" "$t"
  done
fi
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBQ_FUZZ=ON \
  -DBQ_ENABLE_CUDA=OFF >/dev/null
if ! cmake --build "$build" --target $(printf 'fuzz_%s ' "$@") >"$build/build.log" 2>&1; then
  tail -30 "$build/build.log"
  echo "fuzz.sh: the build failed (whole log: $build/build.log)" >&2
  exit 2
fi
failed=()
for t in "$@"; do
  mkdir -p "$build/corpus/$t" "$build/crashes/$t"
  dict=()
  case $t in config|squad_data|predictions|safetensors|tokenizer_files|model_load|jsonl_record) dict=(-dict="$root/tests/fuzz/json.dict") ;; esac
  echo "== fuzz_$t: ${seconds} s"
  # -rss_limit_mb: the reader target holds a model; -timeout: one input may take at most 10 s
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$build/fuzz_$t" "$build/corpus/$t" "$root/tests/fuzz/corpus/$t" "${dict[@]}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$build/crashes/$t/" 2>"$build/fuzz_$t.log"; then
    failed+=("$t")
    grep -E "ERROR|invariant|SUMMARY|Test unit written" "$build/fuzz_$t.log" | head -8
  fi
  grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$build/fuzz_$t.log" | tr '\n' ' '
  echo
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failures in ${failed[*]} (inputs in $build/crashes/, logs $build/fuzz_<target>.log)"
  exit 1
fi
echo "fuzz.sh: no failure in $# targets, ${seconds} s each"
