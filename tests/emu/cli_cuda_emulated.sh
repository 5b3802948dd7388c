#!/usr/bin/env bash
# cli_cuda_emulated.sh - the command line with `--device cuda` on the CPU-emulated engine
# (bertqa-gpu-emulated: engine_cuda.cu, the GEMM layer on the emulated cuBLASLt, our kernels as
# host code): SQuAD questions answered exactly as `--device cpu` answers them in fp32 (padded, with
# length buckets, packed; a partial batch rounded up), every question answered in fp16, engine
# batches whole but the last, a tuning cache written and read back, one `ask`, `check` against the
# CPU reference, `bench` with its JSON merged as the device run merges it, `squad` keeping the
# predictions made before an engine failure, a `jsonl` stream that goes on past one, and a clean
# error for a device that is not there. Short windows (64 tokens) keep the emulator to seconds.
# usage: bash tests/emu/cli_cuda_emulated.sh <bertqa-gpu-emulated> <bertqa-make-model> <source dir>
# exit 0 pass, 77 skip, 1 fail.
set -u
emu=${1:?bertqa-gpu-emulated path}
make_model=${2:?bertqa-make-model path}
src=${3:?source dir}

if [ ! -x "$emu" ] || [ ! -x "$make_model" ] || ! command -v python3 >/dev/null; then
    echo "skip: $emu, $make_model or python3 missing"
    exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
check() { # check NAME CONDITION-EXIT-STATUS
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else echo "FAIL: $1"; failed=$((failed + 1)); fi
}

"$make_model" --out "$tmp/tiny" --preset tiny --seed 5 --vocab "$src/vocab/vocab.txt" >"$tmp/make.log" 2>&1 ||
    { cat "$tmp/make.log"; echo "FAIL: bertqa-make-model"; exit 1; }
# the first two paragraphs of the dev set's first article
python3 - "$src/tests/data/squad/dev-v1.1.json.gz" "$tmp/dev.json" <<'EOF'
import gzip, json, sys
d = json.load(gzip.open(sys.argv[1]))
a = d["data"][0]
a["paragraphs"] = a["paragraphs"][:2]
d["data"] = [a]
json.dump(d, open(sys.argv[2], "w"))
EOF
questions=$(python3 -c 'import json,sys; print(sum(len(p["qas"]) for a in json.load(open(sys.argv[1]))["data"] for p in a["paragraphs"]))' "$tmp/dev.json")
short=(--max-seq-length 64 --doc-stride 32 --max-query-length 16 --batch 8)

"$emu" squad --model "$tmp/tiny" --input "$tmp/dev.json" --output "$tmp/cpu.json" --device cpu \
    "${short[@]}" --quiet >"$tmp/cpu.out" 2>"$tmp/cpu.err"
check "squad --device cpu (exit $?)" $?
"$emu" squad --model "$tmp/tiny" --input "$tmp/dev.json" --output "$tmp/cuda.json" --device cuda \
    "${short[@]}" --quiet >"$tmp/cuda.out" 2>"$tmp/cuda.err"
rc=$?
check "squad --device cuda fp32 (exit $rc): $(tail -n 2 "$tmp/cuda.err")" $rc
cmp -s "$tmp/cpu.json" "$tmp/cuda.json"
check "fp32 predictions on the emulated engine differ from the cpu's" $?
# whole batches but the last, as the pipeline cuts its chunks (src/qa.c)
grep -Eq "engine batches, [01] partial" "$tmp/cuda.err"
check "more than one partial engine batch: $(grep 'engine batches' "$tmp/cuda.err")" $?

# squad_both NAME ARGS...: the short dev file on the cpu and on the emulated engine (fp32), into
# $tmp/NAME-cpu.json / NAME-cuda.json and their .err
squad_both() {
    local name=$1 dev rc
    shift
    for dev in cpu cuda; do
        "$emu" squad --model "$tmp/tiny" --input "$tmp/dev.json" --output "$tmp/$name-$dev.json" \
            --device "$dev" "${short[@]}" "$@" --quiet >/dev/null 2>"$tmp/$name-$dev.err"
        rc=$?
        check "squad --device $dev $* (exit $rc): $(tail -n 2 "$tmp/$name-$dev.err")" $rc
    done
}

# a partial batch on the tuning engine runs rounded up (bq_qa_batch_rows): five questions' 25
# windows at --batch 32 run as 28 rows (a multiple of 4 below the power of two), the cpu runs 25;
# the answers are the same
python3 - "$tmp/dev.json" "$tmp/five.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["data"][0]["paragraphs"][0]
p["qas"] = p["qas"][:5]
d["data"][0]["paragraphs"] = [p]
json.dump(d, open(sys.argv[2], "w"))
EOF
for dev in cpu cuda; do
    "$emu" squad --model "$tmp/tiny" --input "$tmp/five.json" --output "$tmp/five-$dev.json" \
        --device "$dev" "${short[@]}" --batch 32 >/dev/null 2>"$tmp/five-$dev.err"
    check "squad --device $dev --batch 32, five questions (exit $?): $(tail -n 1 "$tmp/five-$dev.err")" $?
done
cmp -s "$tmp/five-cpu.json" "$tmp/five-cuda.json"
check "answers of a rounded-up partial batch differ from the cpu's" $?
python3 - "$tmp/five-cpu.err" "$tmp/five-cuda.err" <<'EOF'
import re, sys
def summary(path):
    m = re.search(r"(\d+) windows in .*; (\d+) token positions", open(path).read())
    return int(m.group(1)), int(m.group(2))
(w_cpu, p_cpu), (w_cuda, p_cuda) = summary(sys.argv[1]), summary(sys.argv[2])
rows = lambda b: min(1 << (b - 1).bit_length(), -(-b // 4) * 4, 32)
assert w_cpu == w_cuda and p_cpu == w_cpu * 64, (w_cpu, p_cpu)
assert p_cuda == rows(w_cuda) * 64 and p_cuda > p_cpu, (w_cuda, p_cuda, rows(w_cuda))
EOF
check "the partial batch did not run rounded up: $(grep -h 'token positions' "$tmp"/five-*.err)" $?

# length buckets of 16: batches trimmed to 16, 32, 48 or 64 positions, each a shape of its own on
# the engine; the same answers as the cpu's with the same buckets
squad_both buckets --length-bucket 16
cmp -s "$tmp/buckets-cpu.json" "$tmp/buckets-cuda.json"
check "fp32 predictions with length buckets differ between the emulated engine and the cpu" $?
grep -Eq "\(([0-8][0-9]|9[0-8])\.[0-9]% of padded\)" "$tmp/buckets-cuda.err"
check "length buckets ran no fewer positions: $(grep 'of padded' "$tmp/buckets-cuda.err")" $?

# packed: windows back to back, our attention over each; the same answers as the cpu's packed, and
# (fp32) as the buckets' (both keep padding out of decoding), in fp16 too: every question answered
squad_both packed --pack
cmp -s "$tmp/packed-cpu.json" "$tmp/packed-cuda.json"
check "fp32 packed predictions differ between the emulated engine and the cpu" $?
cmp -s "$tmp/buckets-cpu.json" "$tmp/packed-cpu.json"
check "packed predictions differ from the length buckets' on the cpu" $?
"$emu" squad --model "$tmp/tiny" --input "$tmp/dev.json" --output "$tmp/packed-f16.json" --device cuda \
    --precision fp16 "${short[@]}" --pack --quiet >/dev/null 2>"$tmp/packed-f16.err"
rc=$?
check "squad --device cuda fp16 --pack (exit $rc): $(tail -n 2 "$tmp/packed-f16.err")" $rc
python3 -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1]))) != int(sys.argv[2]))' \
    "$tmp/packed-f16.json" "$questions"
check "fp16 packed: not every question answered" $?

# --tuning-cache: the first fp16 packed run writes its decisions, the second takes them (its
# summary says how many) and answers the same
for run in 1 2; do
    "$emu" squad --model "$tmp/tiny" --input "$tmp/dev.json" --output "$tmp/cached-$run.json" \
        --device cuda --precision fp16 "${short[@]}" --pack --tuning-cache "$tmp/tuning.txt" \
        >/dev/null 2>"$tmp/cached-$run.err"
    check "squad --tuning-cache, run $run (exit $?): $(tail -n 2 "$tmp/cached-$run.err")" $?
done
head -n 1 "$tmp/tuning.txt" | grep -q '^bertqa-gpu tuning cache' && grep -q '^gemm ' "$tmp/tuning.txt" &&
    grep -q '^shape [0-9]* 64 1 ' "$tmp/tuning.txt"
check "the tuning cache holds no GEMM or packed shape decision: $(head -c 400 "$tmp/tuning.txt")" $?
grep -q 'tuning cache .*: none yet' "$tmp/cached-1.err" &&
    grep -Eq 'tuning cache .*: [1-9][0-9]* GEMM and [1-9][0-9]* shape decisions' "$tmp/cached-2.err"
check "the second run did not read the first's decisions: $(grep -h 'tuning' "$tmp"/cached-*.err)" $?
cmp -s "$tmp/cached-1.json" "$tmp/cached-2.json"
check "answers with the cached decisions differ from the timed run's" $?
printf 'my notes\n' >"$tmp/notes.txt"
"$emu" squad --model "$tmp/tiny" --input "$tmp/dev.json" --output "$tmp/foreign.json" --device cuda \
    "${short[@]}" --tuning-cache "$tmp/notes.txt" --quiet >/dev/null 2>"$tmp/foreign.err"
rc=$?
[ "$rc" -eq 0 ] && grep -q 'warning: .*not a bertqa-gpu tuning cache' "$tmp/foreign.err" &&
    [ "$(cat "$tmp/notes.txt")" = "my notes" ]
check "--tuning-cache on a file that is not one (exit $rc): $(cat "$tmp/foreign.err")" $?

"$emu" squad --model "$tmp/tiny" --input "$tmp/dev.json" --output "$tmp/f16.json" --device cuda \
    --precision fp16 "${short[@]}" --quiet >"$tmp/f16.out" 2>"$tmp/f16.err"
rc=$?
check "squad --device cuda fp16 (exit $rc): $(tail -n 2 "$tmp/f16.err")" $rc
answered=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/f16.json" 2>/dev/null || echo 0)
[ "$answered" -eq "$questions" ]
check "fp16 answered $answered of $questions questions" $?

context="The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in France."
for dev in cpu cuda; do
    "$emu" ask --model "$tmp/tiny" --device "$dev" --question "Who gave their name to Normandy?" \
        --context "$context" --json "${short[@]}" >"$tmp/ask-$dev.out" 2>"$tmp/ask-$dev.err"
    check "ask --device $dev (exit $?): $(tail -n 1 "$tmp/ask-$dev.err")" $?
done
cmp -s "$tmp/ask-cpu.out" "$tmp/ask-cuda.out"
check "ask: the emulated engine's answer differs from the cpu's ($(head -c 200 "$tmp/ask-cuda.out"))" $?

# check: the card's logits against the CPU reference; passes at the bound, fails below the error
# it measures (exit 1), and a JSON report that says which
"$emu" check --model "$tmp/tiny" --precision fp32,fp16 --question "Who gave their name to Normandy?" \
    --context "$context" "${short[@]}" >"$tmp/check.out" 2>"$tmp/check.err"
rc=$?
[ "$rc" -eq 0 ] && grep -Eq '^fp32 +[0-9.e+-]+ +1e-05 +2/2 +ok ' "$tmp/check.out" &&
    grep -Eq '^fp16 +[0-9.e+-]+ +2e-02 +2/2 +ok ' "$tmp/check.out"
check "check fp32,fp16 within their bounds (exit $rc): $(cat "$tmp/check.out" "$tmp/check.err")" $?
"$emu" check --model "$tmp/tiny" --precision fp16 --max-rel-err 1e-9 --json --question "Who gave their name to Normandy?" \
    --context "$context" "${short[@]}" >"$tmp/check-strict.json" 2>"$tmp/check-strict.err"
rc=$?
[ "$rc" -eq 1 ] && python3 - "$tmp/check-strict.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
row = r["precisions"][0]
assert not r["passed"] and not row["passed"] and row["precision"] == "fp16", r
assert row["bound"] == 1e-9 and 1e-9 < row["rel_err"] < 2e-2, row
PY
check "check --max-rel-err 1e-9: fp16 fails it (exit $rc): $(cat "$tmp/check-strict.err")" $?
"$emu" check --model "$tmp/tiny" --device cuda:7 >"$tmp/check-bad.out" 2>"$tmp/check-bad.err"
rc=$?
[ "$rc" -eq 3 ] && grep -q "no CUDA device 7" "$tmp/check-bad.err"
check "check --device cuda:7: exit $rc (want 3): $(cat "$tmp/check-bad.err")" $?

# bench on the emulated engine, its JSON through bench/merge_results.py as the device run's merge
# step reads it (as bench.json and as the profile step's bench-profile.json): a change to either
# side that breaks the other shows here, before a card's time is spent on it
mkdir -p "$tmp/run"
"$emu" bench --model "$tmp/tiny" --device cuda --precision fp32,fp16 --batch 1,2 --seq-len 32 --iters 2 \
    --profile --json "$tmp/run/bench.json" >"$tmp/bench.out" 2>"$tmp/bench.err"
rc=$?
check "bench --device cuda --profile (exit $rc): $(tail -n 2 "$tmp/bench.err")" $rc
cp "$tmp/run/bench.json" "$tmp/run/bench-profile.json" 2>/dev/null
printf 'step\tstatus\tseconds\nbench\t0\t1\nbench-profile\t0\t1\n' >"$tmp/run/steps.tsv"
python3 "$src/bench/merge_results.py" "$tmp/run" >"$tmp/merge.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && python3 - "$tmp/run" <<'PY'
import json, os, sys
r = json.load(open(os.path.join(sys.argv[1], "results.json")))
assert json.load(open(os.path.join(sys.argv[1], "bench.json")))["complete"] is True  # every config ran
assert not any("incomplete" in n for n in r["notes"]), r["notes"]
got = sorted((c["precision"], c["batch"]) for c in r["configs"])
assert got == [("fp16", 1), ("fp16", 2), ("fp32", 1), ("fp32", 2)], got
for c in r["configs"]:
    assert c["seq_len"] == 32 and c["latency_ms_p50"] > 0 and c["throughput_seq_s"] > 0, c
    assert c["gemm_choice"] in ("timed", "first") and c["first_pass_ms"] > 0, c
assert all(r["gemm_ceiling_tflops"][p] > 0 for p in ("fp32", "tf32", "fp16", "bf16")), r["gemm_ceiling_tflops"]
assert all(c["ceiling_share"] > 0 for c in r["configs"]), r["configs"]  # each against its precision's
assert len(r["profiles"]["own"]) == 4 and len(r["gemm_choices"]) == 4, (r["profiles"], r["gemm_choices"])
md = open(os.path.join(sys.argv[1], "results.md")).read()
for part in ("| fp16 batch 2 seq 32 |", "| stage (ms, one pass) |", "GEMMs of one layer, fp16 batch 1"):
    assert part in md, (part, md[:3000])
PY
check "merge_results on the emulated bench's JSON (exit $rc): $(tail -n 3 "$tmp/merge.out")" $?

# squad with the engine failing partway (its 24th graph replay refused, once: in the second of the
# two pipeline chunks): exit 1, the failure named, and the predictions made before it kept, each as
# the run without it made it (the chunk decoded while the engine failed on the next one included)
BQ_EMU_FAIL_CALL=cudaGraphLaunch:24 "$emu" squad --model "$tmp/tiny" --input "$tmp/dev.json" \
    --output "$tmp/cut.json" --device cuda "${short[@]}" --quiet >"$tmp/cut.out" 2>"$tmp/cut.err"
rc=$?
[ "$rc" -eq 1 ] && grep -q "cudaGraphLaunch" "$tmp/cut.err" &&
    grep -q "holds the predictions made before the failure: [0-9]* of the $questions questions" "$tmp/cut.err" &&
    python3 - "$tmp/cuda.json" "$tmp/cut.json" <<'EOF'
import json, sys
whole, cut = (json.load(open(p)) for p in sys.argv[1:3])
assert 0 < len(cut) < len(whole), (len(cut), len(whole))
assert list(cut) == list(whole)[:len(cut)], "not the first questions"
assert all(whole[k] == v for k, v in cut.items()), "a kept prediction differs"
EOF
check "squad with a refused graph replay (exit $rc): $(grep -v RANDOM "$tmp/cut.err" | tail -n 2)" $?

# jsonl with the engine failing partway (the emulator refuses its 28th CUDA graph replay, once: in
# the first read's second pipeline chunk, records 16..31; the first chunk takes ~17 passes): one
# line out per line in, in order; the records that failure left unanswered get an error line naming
# it, every other line is the one a run without it prints (the first chunk's too, decoded while the
# engine failed on the second), the stream goes on past it (the next read is answered), and the
# exit status is 1
python3 - "$tmp/dev.json" "$tmp/q.jsonl" <<'EOF'
import json, sys
qs = [(q["question"], p["context"]) for a in json.load(open(sys.argv[1]))["data"] for p in a["paragraphs"]
      for q in p["qas"]]
with open(sys.argv[2], "w") as f:
    for i in range(40):
        q, c = qs[i % len(qs)]
        f.write(json.dumps({"id": "q%d" % i, "question": q, "context": c}) + "\n")
EOF
jsonl_run() { # jsonl_run NAME: $tmp/q.jsonl through jsonl at batch 4 (reads of 32 records)
    # one tuning cache: the second run takes the first one's kernels (timed choices differ from
    # process to process on a busy machine, and with them the scores' last bits)
    "$emu" jsonl --model "$tmp/tiny" --device cuda --max-seq-length 64 --doc-stride 32 \
        --max-query-length 16 --batch 4 --tuning-cache "$tmp/jsonl-tuning.txt" \
        <"$tmp/q.jsonl" >"$tmp/$1.jsonl" 2>"$tmp/$1.err"
}
jsonl_run jsonl-ok
check "jsonl --device cuda (exit $?): $(tail -n 2 "$tmp/jsonl-ok.err")" $?
BQ_EMU_FAIL_CALL=cudaGraphLaunch:28 jsonl_run jsonl-fail
rc=$?
[ "$rc" -eq 1 ] && grep -q "cudaGraphLaunch.*reading goes on" "$tmp/jsonl-fail.err" &&
    grep -q "16 record(s) not answered (the engine's failure)" "$tmp/jsonl-fail.err" &&
    ! grep -q "answered with an error" "$tmp/jsonl-fail.err" &&
    python3 - "$tmp/jsonl-ok.jsonl" "$tmp/jsonl-fail.jsonl" <<'EOF'
import json, sys
ok, got = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(ok) == len(got) == 40, (len(ok), len(got))
assert [r["id"] for r in got] == ["q%d" % i for i in range(40)], [r["id"] for r in got]
failed = [i for i, r in enumerate(got) if "error" in r]
assert failed and all("not answered" in got[i]["error"] and "cudaGraphLaunch" in got[i]["error"]
                      for i in failed), [got[i] for i in failed]
assert all(got[i] == ok[i] for i in range(40) if i not in failed), "an answered line differs"
assert min(failed) > 0, failed  # what the pipeline answered before the failure went out
assert max(failed) < 32, failed  # the second read (records 32..39) answered
EOF
check "jsonl with a refused graph replay (exit $rc): $(tail -n 3 "$tmp/jsonl-fail.err")" $?

# a device that is not there: a message and a clean non-zero exit, no crash
"$emu" ask --model "$tmp/tiny" --device cuda:7 --question "Who?" --context "$context" \
    >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && [ -s "$tmp/bad.err" ]
check "--device cuda:7: exit $rc, stderr: $(head -c 300 "$tmp/bad.err")" $?

echo "$passed passed, $failed failed ($questions questions)"
[ "$failed" -eq 0 ]
