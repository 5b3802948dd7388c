#!/usr/bin/env bash
# Line and function coverage of the host code (src/, src/cli/) by the test suite, with clang's
# source-based coverage, in a build of its own (build-cov/, CUDA off: the GPU paths are the
# CUDA build's and the device run's). Prints llvm-cov's per-file table; `--show FILE...` then
# prints those files with each line's count (0: never run).
#   bash tools/coverage.sh [--show src/decode.c ...]
# Tests run as in tools/test.sh's sanitizer pass (BQ_CLI_QUICK=1), the emulated ones left out.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BQ_COVERAGE_BUILD:-$root/build-cov}
command -v clang >/dev/null || { echo "coverage.sh: needs clang (apt-get install clang)" >&2; exit 2; }
profdata=$(command -v llvm-profdata || command -v llvm-profdata-14 || true)
cov=$(command -v llvm-cov || command -v llvm-cov-14 || true)
[ -n "$profdata" ] && [ -n "$cov" ] || { echo "coverage.sh: needs llvm-profdata and llvm-cov (package llvm)" >&2; exit 2; }
flags="-fprofile-instr-generate -fcoverage-mapping"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBQ_ENABLE_CUDA=OFF \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS=-fprofile-instr-generate \
  -DCMAKE_SHARED_LINKER_FLAGS=-fprofile-instr-generate >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
rm -rf "$build/profiles" && mkdir -p "$build/profiles"
LLVM_PROFILE_FILE="$build/profiles/%p-%m.profraw" BQ_CLI_QUICK=1 \
  ctest --test-dir "$build" -j"$(nproc)" -E emulated --output-on-failure >"$build/ctest.log" 2>&1 ||
  { tail -20 "$build/ctest.log"; echo "coverage.sh: tests failed (log: $build/ctest.log)" >&2; exit 1; }
"$profdata" merge -sparse "$build"/profiles/*.profraw -o "$build/coverage.profdata"
# the command line and every other program and library the tests ran, so that each one's copy of
# the code is counted
programs=("$build/bertqa-gpu")
for f in "$build"/bertqa-make-model "$build"/libbertqa.so "$build"/test_* "$build"/fuzz_replay_*; do
  [ -f "$f" ] && [ -x "$f" ] && [[ $f != *emulated* ]] && programs+=(-object "$f")
done
sources=("$root"/src/*.c "$root"/src/cli/*.c)
"$cov" report "${programs[@]}" -instr-profile="$build/coverage.profdata" "${sources[@]}" | sed "s|$root/||"
if [ "${1:-}" = "--show" ]; then
  shift
  for f in "$@"; do "$cov" show "${programs[@]}" -instr-profile="$build/coverage.profdata" "$root/$f"; done
fi
