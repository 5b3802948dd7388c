#!/usr/bin/env bash
# bench/gpu-check.sh, the device run, on stand-in programs and no GPU: a build folder whose
# bertqa-gpu answers at once, except `bench`, which runs until it is stopped and then takes 2 s to
# die (as a step cut at its limit may). With a 45 s budget the benchmark is cut to the time left,
# the PyTorch peer and the steps after the benchmark are recorded as "no-time", and the merge
# still runs: results.md and results.json beside steps.tsv, everything else packed into
# gpu-check.tgz (the device tool brings back 8 files), no program left running, and the exit
# status the number of failed steps. (Run cf3337d lost its merge to the deadline; before stop 31
# a step cut at its limit could leave the merge less than its 20 s.)
#
#   bash tests/cli_gpu_check.sh BERTQA_GPU BERTQA_MAKE_MODEL SRCDIR
# Prints "N passed, N failed"; exit 0 when all pass, 1 otherwise, 77 to skip.
set -u
src=$3
command -v python3 >/dev/null && command -v timeout >/dev/null || { echo "skip: python3 or timeout missing"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli_gpu_check.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
check_scratch=$tmp
. "$(dirname "$0")/check_lib.sh"

mkdir -p "$tmp/build"
cat >"$tmp/build/bertqa-gpu" <<'STUB'
#!/usr/bin/env bash
# stand-in: `bench` runs until stopped, then takes 2 s to exit; everything else succeeds at once
if [ "$1" = bench ]; then
  trap 'kill "$child" 2>/dev/null; sleep 2; exit 143' TERM
  sleep 1000 & child=$!
  wait "$child"
fi
exit 0
STUB
cat >"$tmp/build/bertqa-make-model" <<'STUB'
#!/usr/bin/env bash
while [ $# -gt 0 ]; do [ "$1" = --out ] && { mkdir -p "$2"; touch "$2/model.safetensors"; }; shift; done
STUB
chmod +x "$tmp/build/bertqa-gpu" "$tmp/build/bertqa-make-model"

t0=$(date +%s)
BQ_PREBUILT="$tmp/build" BQ_DEADLINE_S=45 TMPDIR="$tmp" bash "$src/bench/gpu-check.sh" "$tmp/out" \
  >"$tmp/run.log" 2>&1
rc=$?
elapsed=$(( $(date +%s) - t0 ))
steps=$tmp/out/steps.tsv
status_of() { awk -F'\t' -v s="$1" '$1 == s { print $2 }' "$steps"; }

check "the run ended inside its budget and the stop grace ($elapsed s)" test "$elapsed" -le 58
check "bench cut at its limit (status 124)" test "$(status_of bench)" = 124
check "the peer and the steps after the benchmark: no-time" sh -c \
  '[ "$(awk -F"\t" "\$1 == \"peer\" || \$1 == \"squad-large\" || \$1 == \"bench-cudnn\" { print \$2 }" "$1" | sort -u)" = no-time ]' \
  sh "$steps"
check "the merge ran (status 0)" test "$(status_of merge)" = 0
check "results.md, results.json, steps.tsv and gpu-check.tgz, nothing else" sh -c \
  '[ "$(cd "$1" && ls | tr "\n" " ")" = "gpu-check.tgz results.json results.md steps.tsv " ]' sh "$tmp/out"
check "the logs packed" sh -c 'tar tzf "$1" | grep -qx "bench.log" && tar tzf "$1" | grep -qx "merge.log"' \
  sh "$tmp/out/gpu-check.tgz"
check "exit status = failed steps ($rc)" test "$rc" -eq "$(awk -F'\t' 'NR > 1 && $2 != "0" && $2 != "77" && $2 != "skipped"' "$steps" | wc -l)"
# (through /proc, not pgrep: procps need not be installed; the bracket keeps grep from finding
# its own command line)
check "no stand-in left running" sh -c '! grep -aqs "$1" /proc/[0-9]*/cmdline' sh "[${tmp:0:1}]${tmp:1}/build/"

check_summary
