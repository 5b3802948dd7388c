#!/usr/bin/env bash
# gpu-check.sh OUTDIR - the one prepared device run: build for sm_90; then a correctness phase
# whose steps share the GPU in parallel (the whole test suite with the GPU tests, BERT-large parity
# vs the CPU reference in every precision, bench/parity.py vs the CPU reference and Hugging Face,
# compute-sanitizer racecheck, memcheck, initcheck and synccheck, SQuAD dev with a tiny random
# model on cuda vs cpu); then
# a timed phase, one step at a time, most important first (our benchmark, the PyTorch peer, our
# stage profile, the whole SQuAD dev set end to end at BERT-large shape, the profile with cuDNN's
# attention, GEMM autotuning against cuBLASLt's heuristic, Nsight Compute counters of the main
# kernels); then the merged results. Each step logs
# to OUTDIR/<step>.log under its own `timeout`; the script goes on past failures and
# OUTDIR/steps.tsv lists step, exit status, seconds. Exit status: the number of failed steps (0 =
# all passed; skipped steps do not count).
# At the end everything but results.json, results.md and steps.tsv is packed into
# OUTDIR/gpu-check.tgz: the device tool returns at most 8 files from $OUT (the first run lost its
# logs and the peer's and parity's JSON that way). Unpack it beside them before merging again.
#
# Run from the repository root on the GPU machine, with .deps carried (tools/device-deps.sh):
#   bash bench/gpu-check.sh "$OUT"
# Environment: BQ_PREBUILT=DIR   use an existing build directory instead of building
#              BQ_NO_CUDNN=1     build without cuDNN even if found
#              BQ_SKIP="a b"     step names to skip (e.g. "peer sanitizer-racecheck")
#              BQ_ONLY="a b"     run only these steps (a short follow-up call on a warm machine;
#                                name configure and build too unless BQ_PREBUILT is set)
#              BQ_BENCH_PRECISION=LIST  the bench step's precisions (default fp32,tf32,fp16,bf16)
#              BQ_BUILD_TARGETS="a b"   build only these targets (a follow-up that benches: e.g.
#                                       "bertqa-gpu bertqa-make-model", 100 s in run 2ed4429
#                                       where everything took 131 s in run 8035cee)
#              BQ_PEER_ARGS="..."       extra peer_pytorch.py arguments, after the defaults (later
#                                       ones win: "--precision fp16 --compile off --batch 8,128")
#              BQ_SQUAD_DEV=F    SQuAD dev file (default: tests/data/squad/dev-v1.1.json.gz)
#              BQ_DEADLINE_S=N   whole-run budget in seconds (default 560: run cf3337d's steps took
#                                555 s; 460, the default before stop 31, left every step after the
#                                PyTorch peer without time); each step's limit is cut to what is
#                                left, and a step with < 20 s left does not start; the last 20 s
#                                are the merge's alone (it starts with 5 s left)
#              BQ_COMMIT=SHA     the commit the tree is (the device's copy of .git can be older
#                                than the tree it was sent with); default git rev-parse HEAD
# Whole run is designed for < 10 minutes on an H100 with 16 cores (deadline 560 s + the last
# step's kill grace, inside the device tool's 600 s a call), so that a 15-minute device session
# keeps room for a machine start; follow-ups are short BQ_ONLY calls.
# The steps of the parallel phase get a few OpenBLAS threads each: with every CPU reference
# spinning 16 threads on 16 shared cores, the first run's CPU SQuAD step did not finish in 90 s.
set -u

out="${1:?usage: bash bench/gpu-check.sh OUTDIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
work="${TMPDIR:-/tmp}/bq-gpu-check.$$"
mkdir -p "$work"
t_start=$(date +%s)
deadline=$(( t_start + ${BQ_DEADLINE_S:-560} ))
printf 'step\tstatus\tseconds\n' > "$out/steps.tsv"

# wanted NAME: whether BQ_SKIP and BQ_ONLY let step NAME run
wanted() {
    case " ${BQ_SKIP:-} " in *" $1 "*) return 1 ;; esac
    [ -z "${BQ_ONLY:-}" ] && return 0
    case " $BQ_ONLY " in *" $1 "*) return 0 ;; esac
    return 1
}

# step NAME TIMEOUT_S COMMAND... : run under timeout, log to OUTDIR/NAME.log, record the outcome.
# Steps of the correctness phase run in parallel (background subshells), so a step reports in one
# write and the failure count is taken from steps.tsv at the end.
step() {
    local name="$1" limit="$2"
    shift 2
    if ! wanted "$name"; then
        printf '%s\tskipped\t0\n' "$name" >> "$out/steps.tsv"; echo "== $name: skipped"; return 0
    fi
    local t0=$(date +%s)
    # never run past the whole-run deadline (the device tool allows 600 s per call); the last
    # 20 s belong to the merge, so that a run that reaches its deadline still merges its logs
    local end=$(( deadline - 20 ))
    [ "$name" = merge ] && end=$deadline
    local left=$(( end - t0 )) least=20
    [ "$name" = merge ] && least=5 # its own reserve: a step cut at its limit may take a moment to die
    if [ "$left" -lt "$least" ]; then
        printf '%s\tno-time\t0\n' "$name" >> "$out/steps.tsv"; echo "== $name: no time left"
        return 1
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    local dt=$(( $(date +%s) - t0 ))
    [ $rc -eq 124 ] && echo "(timed out after ${limit}s)" >> "$out/$name.log"
    printf '%s\t%s\t%s\n' "$name" "$rc" "$dt" >> "$out/steps.tsv"
    printf '   %s -> status %s in %ss\n%s\n' "$name" "$rc" "$dt" \
        "$(tail -n 5 "$out/$name.log" | sed 's/^/   | /')"
    return $rc
}

note() { echo "$*" | tee -a "$out/notes.txt"; }

# Pack every output but the merged results into one archive (the device tool brings back 8 files
# at most). On EXIT, so that a failure half-way still packs what there is.
pack() {
    # the SM clock sampler, if a failure ended the run while it ran
    [ -n "${smi_pid:-}" ] && kill "$smi_pid" 2>/dev/null
    # tar's status 1 ("file changed as we read it": a log still written by a step's orphan) still
    # made the archive: the files go, or only 8 of them would come back
    (cd "$out" && find . -mindepth 1 -maxdepth 1 ! -name results.json ! -name results.md \
        ! -name steps.tsv ! -name gpu-check.tgz -printf '%P\n' > "$work/pack.list" &&
        { tar czf gpu-check.tgz -T "$work/pack.list"; [ $? -le 1 ]; } && xargs rm -rf < "$work/pack.list")
    rm -rf "$work"
}
trap pack EXIT

# ---- the machine -----------------------------------------------------------------------------
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/nvidia-smi.txt" 2>&1
nvidia-smi > "$out/nvidia-smi-full.txt" 2>&1
if [ -n "${BQ_COMMIT:-}" ]; then echo "$BQ_COMMIT" > "$out/commit.txt"
else git -C "$repo" rev-parse HEAD > "$out/commit.txt" 2>/dev/null || echo unknown > "$out/commit.txt"; fi
nproc > "$out/nproc.txt"
export PATH="/usr/local/cuda/bin:$PATH"

# ---- dependencies: our Debian libraries from .deps, cuDNN from the toolkit or torch's wheel -----
deps_args=""
if [ -d "$repo/.deps/root" ]; then
    # (set -u: a .deps/root that device-deps.sh cannot read must not end the run here)
    eval "$(bash "$repo/tools/device-deps.sh" env)" || note "deps: tools/device-deps.sh env failed"
    deps_args="${BQ_DEPS_CMAKE_ARGS:-}"
    note "deps: .deps/root (PKG_CONFIG_LIBDIR=${PKG_CONFIG_LIBDIR:-unset})"
else
    note "deps: no .deps/root, relying on system libraries"
fi
cudnn_args=""
if [ "${BQ_NO_CUDNN:-0}" = 1 ]; then
    cudnn_args="-DCUDNN_LIBRARY=CUDNN_LIBRARY-NOTFOUND"
    note "cudnn: disabled by BQ_NO_CUDNN=1"
elif ls /usr/local/cuda/lib64/libcudnn.so >/dev/null 2>&1 && [ -f /usr/local/cuda/include/cudnn.h ]; then
    note "cudnn: CUDA toolkit's ($(ls /usr/local/cuda/lib64/libcudnn.so.* 2>/dev/null | head -1))"
else
    cudnn_dir=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null \
        || python3 -c 'import nvidia.cudnn, os; print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null || true)
    lib=$(ls "$cudnn_dir"/lib/libcudnn.so* 2>/dev/null | head -1)
    if [ -n "$cudnn_dir" ] && [ -n "$lib" ] && [ -f "$cudnn_dir/include/cudnn.h" ]; then
        cudnn_args="-DCUDNN_LIBRARY=$lib -DCUDNN_INCLUDE_DIR=$cudnn_dir/include"
        export LD_LIBRARY_PATH="$cudnn_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        note "cudnn: torch wheel's ($lib)"
    else
        cudnn_args="-DCUDNN_LIBRARY=CUDNN_LIBRARY-NOTFOUND"
        note "cudnn: not found, building without it"
    fi
fi

# ---- build -----------------------------------------------------------------------------------
# -k 0: one target that fails to build must not keep the others (and their checks) from running.
# The CPU emulation of the kernels is left to CI (BQ_EMULATOR=OFF): here the real kernels run.
build="${BQ_PREBUILT:-$repo/build-gpu}"
if [ -z "${BQ_PREBUILT:-}" ]; then
    # shellcheck disable=SC2086
    step configure 120 cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DBQ_EMULATOR=OFF -DBQ_PROBE_IN_ALL=OFF $deps_args $cudnn_args
    # shellcheck disable=SC2086
    step build 300 cmake --build "$build" -j 16 ${BQ_BUILD_TARGETS:+--target $BQ_BUILD_TARGETS} -- -k 0
fi
bin="$build/bertqa-gpu"
mk="$build/bertqa-make-model"
grep -E "CUDA backend|CUDNN|CUTLASS|emulation" "$out/configure.log" 2>/dev/null | head -5 >> "$out/notes.txt"
dev="${BQ_SQUAD_DEV:-$repo/tests/data/squad/dev-v1.1.json.gz}"
case "$dev" in *.gz) gzip -dc "$dev" > "$work/dev.json" 2>/dev/null && dev="$work/dev.json" ;; esac
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)

# ---- correctness phase: checks that time nothing share the GPU and the cores, in parallel ------
# The CUTLASS probe (gemm-epilogue below), left out of the build step (BQ_PROBE_IN_ALL=OFF): its
# nine kernels in one unit are the build's longest compile, and nothing needs it before the timed
# phase. (The build step took 131 s of 16 cores with it in run 8035cee.)
# Only gemm_fp32_probe unless a step of the epilogue probe is named in BQ_ONLY: its nine kernels
# took 147 s of the parallel phase in run cf3337d, the phase's last step, for steps that no
# longer run by default.
if [ -z "${BQ_PREBUILT:-}" ] && grep -q 'gemm_fp32_probe:' "$build/build.ninja" 2>/dev/null; then
    probes=gemm_fp32_probe
    case " ${BQ_ONLY:-} " in *" gemm-epilogue "*|*" ncu-epilogue "*) probes="$probes gemm_epilogue_probe" ;; esac
    # shellcheck disable=SC2086
    step build-probe 300 cmake --build "$build" -j 2 --target $probes &
fi
# BQ_CLI_QUICK=1: cli_answer answers 2 dev articles instead of all 48 on the CPU; the whole dev set
# runs on the GPU in squad-large below.
step ctest 150 env BQ_CLI_QUICK=1 OPENBLAS_NUM_THREADS=2 ctest --test-dir "$build" --output-on-failure -j 6 --timeout 140 \
    -E 'emulated|_emu|emu_' &
# whole-model logits vs the CPU reference at BERT-large shape, every precision (issue 4)
step parity-large 150 env OPENBLAS_NUM_THREADS=4 BQ_TEST_LARGE=1 BQ_TEST_FILTER='test_large*' "$build/test_gpu_model" &
# racecheck on the head-size-64 attention op test: the tensor-core (mma.sync) and WMMA kernels,
# the ones with the most shared-memory hand-offs between warps, over every length around their
# tiles and every mask, every tiling (BQ_TEST_QUICK=1: 3 lengths instead of 10, so that it ends in
# time: 100 s for 4 lengths and two tilings in run c50aca4; on the whole head-64 model test
# racecheck did not finish fp32 in 100 s). The mma.sync tilings only (BQ_ATTENTION_KERNEL=mma): the
# step took 144 s of its 150 in run cf3337d, and a fifth tiling would push it past; the wgmma
# tiling's hand-offs are the same cp.async double buffer and barriers, and its MMAs read shared
# memory through the async proxy.
step sanitizer-racecheck 150 env BQ_TEST_QUICK=1 BQ_TEST_FILTER='test_attention_head64' \
    BQ_ATTENTION_KERNEL=mma "$sanitizer" --tool racecheck --error-exitcode 9 "$build/test_gpu_ops" &
# memcheck: out-of-bounds reads (the op tests' guard bytes already catch stray writes)
if [ -x "$build/test_gpu_ops" ]; then
    # (not cuDNN's attention: a library's kernels, and its plan building is slow under memcheck;
    # 83 s in run a7fdcdb, before the packed-sequence attention and embeddings tests joined)
    step sanitizer-memcheck-ops 140 env BQ_TEST_SKIP='test_attention_cudnn' "$sanitizer" \
        --tool memcheck --error-exitcode 9 "$build/test_gpu_ops" &
fi
step sanitizer-memcheck 80 env BQ_TEST_FILTER='test_tiny*' "$sanitizer" --tool memcheck \
    --error-exitcode 9 "$build/test_gpu_model" &
# initcheck: device memory read before anything wrote it (workspace, padding rows, graph replays),
# the tiny model in fp32 and tf32. In fp16 (runs c50aca4 and 91c41e6) initcheck reported our
# attention reading the QKV GEMM's output, every element of which that GEMM writes (the logits
# match the CPU reference), and --check-bulk-copy yes did not change it. Run 349ae86 settled it
# (step sanitizer-initcheck-gemm, now run only when named in BQ_ONLY): our GEMM layer's outputs,
# left unwritten before the GEMM and copied back whole, are "uninitialized" to initcheck in fp16
# though every element is written and right, so initcheck does not see the 16-bit kernels' TMA
# bulk stores; the step only ever timed out on its reports.
step sanitizer-initcheck 100 env BQ_TEST_FILTER='test_tiny*' BQ_TEST_PRECISION=fp32,tf32 \
    "$sanitizer" --tool initcheck --check-bulk-copy yes --error-exitcode 9 \
    "$build/test_gpu_model" &
case " ${BQ_ONLY:-} " in *" sanitizer-initcheck-gemm "*)
    step sanitizer-initcheck-gemm 60 env BQ_TEST_FILTER='test_gemm_linear' BQ_TEST_NO_POISON=1 \
        "$sanitizer" --tool initcheck --check-bulk-copy yes --print-limit 10 --error-exitcode 9 \
        "$build/test_gpu_model" & ;;
esac
# synccheck: barriers and warp-synchronous calls reached by a thread set they do not expect
step sanitizer-synccheck 100 env BQ_TEST_QUICK=1 BQ_TEST_FILTER='test_attention_head64' "$sanitizer" \
    --tool synccheck --error-exitcode 9 "$build/test_gpu_ops" &
if [ -x "$bin" ] && [ -x "$mk" ]; then
    # the random BERT-large checkpoint for everything below; then every precision's logits vs the
    # CPU reference and Hugging Face on ~15 windows of a dev article (issue 5: parity-*.json)
    ( step make-large 90 "$mk" --out "$work/large" --preset large --seed 1 &&
      step parity 200 env OPENBLAS_NUM_THREADS=4 python3 "$repo/bench/parity.py" --cli "$bin" --model "$work/large" \
          --squad "$dev" --out "$out" --device cuda --precision fp32,tf32,fp16,bf16,fp32x3 ) &
    # SQuAD dev with a tiny random model: cuda against cpu, answer by answer
    if [ -s "$dev" ]; then
        ( step make-tiny 30 "$mk" --out "$work/tiny" --preset tiny --seed 1
          step squad-cuda 90 "$bin" squad --model "$work/tiny" --input "$dev" \
              --output "$out/pred-cuda.json" --device cuda --batch 64 --quiet
          # the cpu reference on the first article only (810 questions), compared by id
          python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["data"]=d["data"][:1]; json.dump(d,open(sys.argv[2],"w"))' \
              "$dev" "$work/dev-head.json"
          step squad-cpu 90 env OPENBLAS_NUM_THREADS=2 "$bin" squad --model "$work/tiny" --input "$work/dev-head.json" \
              --output "$out/pred-cpu.json" --device cpu --quiet
          step squad-compare 30 python3 - "$out/pred-cuda.json" "$out/pred-cpu.json" <<'EOF2'
import json, os, sys
missing = [p for p in sys.argv[1:3] if not os.path.exists(p)]
if missing:
    sys.exit(f"no predictions to compare: {', '.join(missing)} missing (see the squad steps' logs)")
gpu, cpu = (json.load(open(p)) for p in sys.argv[1:3])
same = sum(1 for k in cpu if gpu.get(k) == cpu[k])
print(f"{len(gpu)} questions answered on cuda; of the {len(cpu)} answered on cpu, {same} identical "
      f"({same / max(len(cpu), 1):.2%})")
sys.exit(0 if len(cpu) > 0 and same >= 0.99 * len(cpu) else 1)
EOF2
          # the user's own check (bertqa-gpu check): every precision against the CPU, on this card
          step check-tiny 60 env OPENBLAS_NUM_THREADS=2 "$bin" check --model "$work/tiny"
        ) &
    fi
fi
wait

# ---- timed phase: one thing at a time on the GPU --------------------------------------------------
if [ -x "$bin" ] && [ -f "$work/large/model.safetensors" ]; then
    # If the benchmark fails (a sticky CUDA error ends the process's later configurations too),
    # the 16-bit numbers are taken again without the wgmma attention tilings (the newest kernels,
    # first run on a card in the run after stop 20), which keeps them comparable with the runs
    # before; if that fails too, on the conservative paths (the WMMA attention kernel, cuBLASLt +
    # the GELU kernel, our attention). The steps after it run on the paths that worked.
    # SM clock, power and temperature every 200 ms while the timed steps run (merge_results's
    # "clocks"): the whole pass runs slower than the sum of its kernels timed alone (c50aca4:
    # 66.7 ms against ~59.5 at fp16 batch 128); a card that drops its clocks under sustained
    # tensor-core load would explain it. "clocks_event_reasons" is the newer drivers' name.
    smi_fields=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active
    nvidia-smi --query-gpu="$smi_fields" --format=csv,noheader,nounits -i 0 >/dev/null 2>&1 ||
        smi_fields=${smi_fields/clocks_event_reasons/clocks_throttle_reasons}
    nvidia-smi --query-gpu="$smi_fields" --format=csv,noheader,nounits -i 0 -lms 200 \
        >"$out/clocks.csv" 2>/dev/null &
    smi_pid=$!
    safe=()
    attention=auto
    if ! step bench 150 "$bin" bench --model "$work/large" --device cuda \
        --precision "${BQ_BENCH_PRECISION:-fp32,tf32,fp16,bf16}" --batch 1,8,32,128 --iters 20 \
        --json "$out/bench.json"; then
        # bench_16bit STEP: the 16-bit benchmark again with ${safe[@]} and $attention
        bench_16bit() {
            step "$1" 60 env ${safe[@]+"${safe[@]}"} "$bin" bench --model "$work/large" \
                --device cuda --precision fp16,bf16 --attention "$attention" --batch 1,8,32,128 \
                --iters 10 --json "$out/bench-safe.json"
        }
        safe=(BQ_ATTENTION_KERNEL=mma)
        note "bench failed: 16-bit benchmark rerun and later steps with ${safe[*]}"
        if ! bench_16bit bench-safe; then
            safe=(BQ_ATTENTION_KERNEL=wmma BQ_FUSED_GELU=0)
            attention=own
            note "bench-safe failed too: rerun and later steps with ${safe[*]} --attention own"
            bench_16bit bench-safer
        fi
    fi
    # the PyTorch peer right after ours: the ratios are the numbers issue 5 is judged on
    # its budget from the time left (a step's limit is cut to it, and a peer killed by that limit
    # loses its compile runs' numbers; run cf3337d's took 156 s of its 160)
    peer_budget=$(( deadline - 20 - $(date +%s) - 15 ))
    [ "$peer_budget" -gt 150 ] && peer_budget=150
    if [ -f "$repo/bench/peer_pytorch.py" ] && [ "$peer_budget" -ge 30 ]; then
        # eager, the eager model replayed from a CUDA graph (fp32 at batch 1 only: its fp16
        # replays ran 3.4x slower than eager, and its fp32 ones from batch 8 up 10-12% slower),
        # and torch.compile with CUDA graphs (reduce-overhead) as far as the time allows: at small
        # batches eager PyTorch waits on its own kernel launches, so compile is the fair fp16 peer
        # there, and it compiles batches 1 and 8 first (run cf3337d's got through 128, 1 and 32,
        # and its batch 8 ratio, 2.76x against eager, was against the wrong peer: runs 349ae86
        # and a7fdcdb, which compiled batch 8, measured 1.02x and 1.06x). Each fp16 and fp32
        # eager timing is followed by one pass under torch.profiler: PyTorch's own GEMM kernels'
        # time, next to ours in results.md's targets
        step peer $(( peer_budget + 10 )) python3 "$repo/bench/peer_pytorch.py" --model "$work/large" --device cuda \
            --batch 1,8,32,128 --json "$out/peer.json" --max-seconds "$peer_budget" \
            --compile-mode reduce-overhead ${BQ_PEER_ARGS:-}
    elif [ -f "$repo/bench/peer_pytorch.py" ] && wanted peer; then
        printf 'peer\tno-time\t0\n' >> "$out/steps.tsv"; echo "== peer: no time left (${peer_budget}s)"
    fi
    # where the time goes, stage by stage, with our attention kernel
    step bench-profile 60 env ${safe[@]+"${safe[@]}"} "$bin" bench --model "$work/large" --device cuda \
        --precision fp16,fp32 --attention own --batch 1,128 --iters 5 --profile \
        --json "$out/bench-profile.json"
    # 192 tokens: where a typical SQuAD window runs with length buckets of 64 (its real length
    # averages 178.5), batch 1 (ask) and 128 (squad)
    step bench-seq192 40 env ${safe[@]+"${safe[@]}"} "$bin" bench --model "$work/large" --device cuda \
        --precision fp16 --attention "$attention" --batch 1,128 --seq-len 192 --iters 20 \
        --json "$out/bench-seq192.json"
    # fp32 with CUTLASS's 3xTF32 GEMM timed against SGEMM per shape (BQ_FP32_3XTF32=1, an
    # experiment: issue 5's fp32 1.2x, which SGEMM cannot reach; its parity is parity's fp32x3)
    step bench-fp32x3 60 env ${safe[@]+"${safe[@]}"} BQ_FP32_3XTF32=1 "$bin" bench --model "$work/large" \
        --device cuda --precision fp32 --attention "$attention" --batch 8,128 --iters 5 \
        --json "$out/bench-fp32x3.json"
    # the whole dev set end to end at BERT-large shape (issue 5: >= 90% of the forward-pass rate);
    # its summary line (questions/s, engine and host seconds) is what merge_results reads
    if [ -s "$dev" ]; then
        step squad-large 90 env ${safe[@]+"${safe[@]}"} "$bin" squad --model "$work/large" --input "$dev" \
            --output "$out/pred-large.json" --device cuda --precision fp16 --batch 128 \
            --attention "$attention" --quiet
        step squad-large-answered 20 python3 - "$dev" "$out/pred-large.json" <<'EOF3'
import json, sys
data = json.load(open(sys.argv[1]))["data"]
ids = {q["id"] for a in data for p in a["paragraphs"] for q in p["qas"]}
pred = json.load(open(sys.argv[2]))
missing = ids - set(pred)
print(f"{len(pred)} predictions for {len(ids)} questions; {len(missing)} missing")
sys.exit(1 if missing else 0)
EOF3
        # again with length buckets (windows sorted by length, each batch cut to its longest
        # rounded up to 64): the rate real SQuAD text allows; merge_results compares its answers
        # with the padded run's
        step squad-large-buckets 90 env ${safe[@]+"${safe[@]}"} "$bin" squad --model "$work/large" \
            --input "$dev" --output "$out/pred-large-buckets.json" --device cuda --precision fp16 \
            --batch 128 --attention "$attention" --length-bucket 64 --quiet
        # and packed (windows back to back, no padding; our attention over each window, no
        # graph): what is left once the padding is gone; merge_results compares its answers
        # with both runs'
        step squad-large-packed 90 env ${safe[@]+"${safe[@]}"} "$bin" squad --model "$work/large" \
            --input "$dev" --output "$out/pred-large-packed.json" --device cuda --precision fp16 \
            --batch 128 --attention "$attention" --pack --tuning-cache "$work/tuning.txt" --quiet
        # packed again, taking the decisions the run before kept in its tuning cache: what a
        # second run on this card pays for its pass shapes' first passes (graph capture only)
        step squad-large-packed-cached 90 env ${safe[@]+"${safe[@]}"} "$bin" squad --model "$work/large" \
            --input "$dev" --output "$out/pred-large-packed-cached.json" --device cuda --precision fp16 \
            --batch 128 --attention "$attention" --pack --tuning-cache "$work/tuning.txt" --quiet
        cp "$work/tuning.txt" "$out/tuning-cache.txt" 2>/dev/null
    fi
    # cuBLASLt's heuristic first choice and the 512-row rule for the fused GELU instead of the
    # timed choices (gemm.cu), stage by stage: in the first run the timed choices were slower in
    # the whole pass (fp16 batch 1 1.335 ms vs 1.260, batch 128 67.8 vs 66.5) though each GEMM
    # timed faster alone; the profiles show which stage loses
    step bench-heuristic 60 env ${safe[@]+"${safe[@]}"} BQ_GEMM_AUTOTUNE=0 "$bin" bench \
        --model "$work/large" --device cuda --precision fp16 --attention "$attention" \
        --batch 1,128 --iters 10 --profile --json "$out/bench-heuristic.json"
    # our attention (mma.sync) against its peer, cuDNN's fused attention, stage by stage
    step bench-cudnn 60 env ${safe[@]+"${safe[@]}"} "$bin" bench --model "$work/large" --device cuda --precision fp16 \
        --attention cudnn --batch 1,128 --iters 5 --profile --json "$out/bench-cudnn.json"
    # what the fused bias + erf GELU epilogue costs: cuBLAS's plain GEMM vs the CUTLASS kernel
    # with no activation, erf GELU and tanh GELU, on the FFN-in shapes of batches 128 and 1 and
    # the batch-128 QKV and FFN-out shapes (bench/gemm_epilogue_probe.cu)
    # (only when named in BQ_ONLY since this step's commit: its answer has held since run
    # 8035cee, and gemm-fp32 below took its place)
    if [ -x "$build/gemm_epilogue_probe" ] &&
        case " ${BQ_ONLY:-} " in *" gemm-epilogue "*) true ;; *) false ;; esac; then
        step gemm-epilogue 40 "$build/gemm_epilogue_probe" 49152 1024 4096 384 1024 4096 \
            49152 1024 3072 49152 4096 1024
    fi
    # can the fp32 precision's GEMMs beat SGEMM and stay fp32-accurate (issue 5's fp32 1.2x)?
    # SGEMM, TF32, cuBLAS's BF16x9 emulation and CUTLASS's TF32 and 3xTF32 kernels on the
    # batch-128 shapes and batch 8's FFN-in, each against an fp64 GEMM (bench/gemm_fp32_probe.cu)
    if [ -x "$build/gemm_fp32_probe" ]; then
        step gemm-fp32 40 "$build/gemm_fp32_probe"
    fi
    kill "$smi_pid" 2>/dev/null
    smi_pid= # stopped: pack must not kill the number again (another process may have it by then)
    # hardware counters of the kernels that hold fp16 batch 128 back (issue 5's profile says
    # GEMMs, attention, layernorm): speed of light, occupancy, warp stalls; Nsight Compute works on
    # the Firecracker machines (not gVisor: the step then fails alone). Clocks left alone.
    ncu_bin=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
    if [ -n "$ncu_bin" ]; then
        step ncu 60 env BQ_GEMM_AUTOTUNE=0 "$ncu_bin" --clock-control none \
            --kernel-name 'regex:attention_mma|attention_wgmma|layernorm|device_kernel|xmma|gemm|bias_gelu' \
            --launch-skip 60 --launch-count 8 --section SpeedOfLight --section Occupancy \
            --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
            "$bin" bench --model "$work/large" --device cuda --precision fp16 --attention own \
            --batch 128 --iters 1
        # one launch of an attention kernel under ncu, with the sections that say what bounds it
        # (memory, barriers, too few warps, tensor cores or the exp unit):
        # ncu_attention STEP KERNEL-REGEX LAUNCH-SKIP LAUNCH-COUNT BATCH ITERS
        ncu_attention() {
            step "$1" 45 env BQ_GEMM_AUTOTUNE=0 "$ncu_bin" --clock-control none \
                --kernel-name "regex:$2" --launch-skip "$3" --launch-count "$4" \
                --section SpeedOfLight --section Occupancy --section LaunchStats \
                --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
                --section ComputeWorkloadAnalysis --section InstructionStats \
                "$bin" bench --model "$work/large" --device cuda --precision fp16 --attention own \
                --batch "$5" --iters "$6"
        }
        # first of the attention profiles (never run on a card; ahead of batch 1's, so that a run
        # short of time keeps it): the wgmma attention at batch 128 (stop 20), both schedules: the
        # first pass checks each candidate's output once (engine_cuda.cu's
        # check_attention_candidates: wgmma launches 0 and 1), then times them (tuning.cu: a
        # warm-up launch each, 2-3, then 3 timed launches each per round), so wgmma launches 4-6
        # are the plain schedule's first timed ones and 7-9 the overlapped one's
        ncu_attention ncu-attention-wgmma attention_wgmma 4 6 128 1
        # batch 1: how long each kernel of a layer takes on the device (no counters but the
        # duration, so one replay each): their sum over the pass against the graph's p50 says how
        # much of the 0.8 ms target the gaps between kernels cost. Kernel 400 onwards lies in the
        # graph replays, past the first pass and its timing runs; 9 in a row cover every kernel of
        # one layer.
        step ncu-b1 45 env BQ_GEMM_AUTOTUNE=0 "$ncu_bin" --clock-control none \
            --metrics gpu__time_duration.sum --launch-skip 400 --launch-count 9 \
            "$bin" bench --model "$work/large" --device cuda --precision fp16 --attention own \
            --batch 1 --iters 20
        # batch 1's attention (own, 32-row blocks with split keys: 11 us a layer in run a7fdcdb,
        # 22% of the pass, for 0.6 GFLOP): a graph-replayed launch
        ncu_attention ncu-attention-b1 attention_mma_head64 200 1 1 20
        # what the erf GELU epilogue costs inside the kernel (run 8035cee's probe call: 22
        # instructions per element, issue slots under 40% busy, nothing overlapping them): the 9
        # CUTLASS kernels of the probe (large / ping-pong x bias only, erf, fast erf, fast erf
        # with 64-column epilogue sub-tiles; large with tanh), one launch each: issue slots, pipe
        # use (FMA vs the special-function unit), warp stalls. ptxas: 168 registers, no spills.
        # Only when named in BQ_ONLY since run cf3337d: its answer has not changed since 8035cee,
        # and the full run (555 s there) needs its 14 s for the packed run on the tuning cache
        # and the merge.
        if [ -x "$build/gemm_epilogue_probe" ] && case " ${BQ_ONLY:-} " in *" ncu-epilogue "*) true ;; *) false ;; esac; then
            step ncu-epilogue 60 "$ncu_bin" --clock-control none --kernel-name regex:device_kernel \
                --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
                --section InstructionStats --section LaunchStats --section Occupancy \
                "$build/gemm_epilogue_probe" --once 49152 1024 4096
        fi
    fi
fi
if [ -f "$repo/bench/merge_results.py" ]; then
    step merge 30 python3 "$repo/bench/merge_results.py" "$out"
    cat "$out/merge.log"
fi

# failed steps: any status but 0, 77 (the test skipped itself) and "skipped"
failed=$(awk -F'\t' 'NR > 1 && $2 != "0" && $2 != "77" && $2 != "skipped"' "$out/steps.tsv" | wc -l)
echo "== done in $(( $(date +%s) - t_start ))s, $failed failed step(s); see $out/steps.tsv"
cat "$out/steps.tsv"
exit "$failed"
