#!/usr/bin/env bash
# The README's second command (and what .ci/run calls): install the Debian packages, build, run the
# whole test suite, then build the host code again under AddressSanitizer + UBSan and run it again,
# then fuzz every input parser and the pipeline briefly (tools/fuzz.sh, BQ_FUZZ_SECONDS each, default
# 15; 0 skips it). GPU tests report themselves skipped on a machine without a GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
bash "$root/tools/install-deps.sh"

echo "== build (CUDA backend compiled when nvcc is present)"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j"$jobs"
echo "== tests"
ctest --test-dir "$root/build" --output-on-failure -j"$jobs"

echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer (host code)"
cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBQ_SANITIZE=ON \
      -DBQ_ENABLE_CUDA=OFF >/dev/null
cmake --build "$root/build-asan" -j"$jobs"
# the sanitized CLI run answers 2 articles of the dev set instead of all 48 (BQ_CLI_QUICK)
BQ_CLI_QUICK=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j"$jobs"

fuzz_seconds=${BQ_FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" -gt 0 ]; then
  echo "== fuzzing (libFuzzer + ASan + UBSan): every target ${fuzz_seconds} s"
  bash "$root/tools/fuzz.sh" "$fuzz_seconds"
fi
