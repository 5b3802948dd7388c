#!/usr/bin/env bash
# The model-running subcommands end to end on a tiny random model (CPU backend): ask (text, --json,
# --top-k), logits, jsonl (malformed lines mixed in: exactly one output line per input line, in
# order), squad (the whole SQuAD v1.1 dev set: one prediction per question, EM/F1 printed; set
# BQ_CLI_QUICK=1 for the first 2 articles only, as the sanitizer run does; then its first 3 articles
# with --length-bucket 64 and 384), bench on the CPU, and the error paths (no model, bad options,
# --device cuda without a GPU).
#
#   bash tests/cli_answer.sh BERTQA_GPU BERTQA_MAKE_MODEL SRCDIR
# Prints "N passed, N failed"; exit 0 when all pass, 1 otherwise.
set -u
cli=$1 mk=$2 src=$3
passed=0 failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { # label command...: passes when the command succeeds
  local label=$1
  shift
  if "$@"; then pass; else fail "$label"; fi
}
command -v python3 >/dev/null || { echo "python3 not found: skipping"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli_answer.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
model=$tmp/tiny
"$mk" --out "$model" --preset tiny --seed 5 > /dev/null 2>&1 || { echo "bertqa-make-model failed"; exit 1; }

# Long enough to fill most of the 384 positions: a random model's best start/end candidates then
# fall on context tokens rather than on padding, so real spans come out.
sentence='Zürich (German: Zürich) is the largest city in Switzerland. The café "Odéon" opened in 1911; Lenin, James Joyce and Albert Einstein were guests. 東京 is far away.'
context="$sentence"
for _ in 1 2 3 4 5 6 7 8 9; do context="$context $sentence"; done
question='Who were guests at the café?'

# ---- --version ---------------------------------------------------------------------------------
if "$cli" --version > "$tmp/version.txt" 2> "$tmp/version.err"; then
  check "--version: 'bertqa-gpu X.Y.Z (commit C)' first" grep -Eq '^bertqa-gpu [0-9]+\.[0-9]+\.[0-9]+ \(commit [^)]+\)$' "$tmp/version.txt"
  check "--version: the CUDA line and the OpenBLAS line" sh -c \
    "grep -q '^cuda: ' '$tmp/version.txt' && grep -q '^cpu: OpenBLAS ' '$tmp/version.txt'"
  # built from a git checkout: the commit is the checkout's (the build may be newer than the last
  # configure: the header is written at every build)
  if head=$(git -C "$src" rev-parse --short=7 HEAD 2>/dev/null); then
    check "--version: the commit is the checkout's ($head)" grep -q "(commit $head" "$tmp/version.txt"
  fi
else
  fail "--version exit status $?: $(head -c 300 "$tmp/version.err")"
fi

# ---- ask ---------------------------------------------------------------------------------------
if "$cli" ask --model "$model" --context "$context" --question "$question" > "$tmp/ask.txt" 2> "$tmp/ask.err"; then
  check "ask prints an answer line" test -s "$tmp/ask.txt"
  check "ask says the weights are random" grep -q "RANDOM weights" "$tmp/ask.err"
else
  fail "ask exit status $?: $(head -c 300 "$tmp/ask.err")"
fi

# --json: the answer is exactly the context's code points [start, end)
if "$cli" ask --model "$model" --context "$context" --question "$question" --json > "$tmp/ask.json" 2>/dev/null; then
  check "ask --json: answer == context[start:end]" python3 - "$tmp/ask.json" "$context" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); ctx = sys.argv[2]
assert isinstance(a, dict), a
assert set(a) >= {"answer", "start", "end", "score", "probability"}, a
assert ctx[a["start"]:a["end"]] == a["answer"], (ctx[a["start"]:a["end"]], a["answer"])
assert 0 < a["probability"] <= 1
PY
else
  fail "ask --json exit status"
fi

# --top-k 3 --json: a list, best first, distinct texts, each an exact substring at its span
if "$cli" ask --model "$model" --context "$context" --question "$question" --top-k 3 --json > "$tmp/topk.json" 2>/dev/null; then
  check "ask --top-k --json: ranked list of exact spans" python3 - "$tmp/topk.json" "$context" <<'PY'
import json, sys
lst = json.load(open(sys.argv[1])); ctx = sys.argv[2]
assert isinstance(lst, list) and 1 <= len(lst) <= 3, lst
scores = [a["score"] for a in lst]
assert scores == sorted(scores, reverse=True), scores
assert len({a["answer"] for a in lst}) == len(lst)
for a in lst:
    assert ctx[a["start"]:a["end"]] == a["answer"]
assert sum(a["probability"] for a in lst) <= 1 + 1e-6
PY
else
  fail "ask --top-k --json exit status"
fi

# ---- logits: windows of a long context, full-length arrays, [CLS]/[SEP] from the vocabulary ------
long_context=$(python3 -c "print(' '.join(['The river Rhine flows through Basel and Strasbourg.'] * 90))")
if "$cli" logits --model "$model" --question "Which river?" --context "$long_context" > "$tmp/logits.json" 2>/dev/null; then
  check "logits: several windows, 384 values each" python3 - "$tmp/logits.json" "$src/vocab/vocab.txt" <<'PY'
import json, math, sys
j = json.load(open(sys.argv[1]))
vocab = [l.rstrip("\n") for l in open(sys.argv[2], encoding="utf-8")]
cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
assert len(j["windows"]) >= 2, len(j["windows"])
for w in j["windows"]:
    for k in ("input_ids", "input_mask", "segment_ids", "start_logits", "end_logits"):
        assert len(w[k]) == 384, (k, len(w[k]))
    n = sum(w["input_mask"])
    assert w["input_ids"][0] == cls and w["input_ids"][n - 1] == sep
    assert all(math.isfinite(x) for x in w["start_logits"] + w["end_logits"])
PY
else
  fail "logits exit status"
fi

# ---- jsonl: one line out per line in, in order, errors as records --------------------------------
python3 - "$tmp/in.jsonl" <<'PY'
import json, sys
lines = [
    json.dumps({"id": "a", "question": "Where is Basel?", "context": " ".join(["Basel is in Switzerland, on the Rhine."] * 40)}),
    '{"id": "b", "question": "broken',                                   # malformed JSON
    json.dumps({"id": "c", "context": "No question here."}),              # missing question
    json.dumps({"id": 4, "question": "Q?", "context": 17}),              # context not a string
    "",                                                                   # empty line
    json.dumps({"id": "e", "question": "Wer?", "context": " ".join(["Müller und Søren aßen Crème brûlée."] * 50)}),
    "[1, 2, 3]",                                                          # not an object
    json.dumps({"id": "g", "question": "What?", "context": "   "}),     # no context tokens
    json.dumps({"id": "h", "question": "When?", "context": "In 1911."}),
    json.dumps({"id": "i", "question": "Q?", "context": "x"}) + " ]]] trailing",  # data after it
    json.dumps({"id": "j", "question": "Who?", "context": "John\u0000 lives here."}),  # a NUL
    json.dumps({"id": "k", "question": "Who?", "context": "John \\u0000 lives here."}),  # text
    '{"id": "l", "question": "Who?", "context": "John \\uzzzz lives here."}',  # cJSON: a NUL
    json.dumps({"id": "m\udcff", "question": "Who?", "context": "John lives here."}, ensure_ascii=False),
    json.dumps({"id": [1], "question": "Who?", "context": "John lives here."}),  # id not echoable
    '{"id": "n", "question": "Who?", "context": "John \\u12G4 lives here."}',
    '{"id": "first", "id": "last", "question": 7, "question": "Who?", "context": "John lives here."}',
    '{"id": "o", "question": "Who?", "context": "John\tlives here."}',  # a raw tab: not JSON
    '{"id": 1e400, "question": "Who?", "context": "John lives here."}',  # would come back null
    '{"id": 123456789012345678901, "question": "When?", "context": "In 1911."}',  # past a double
    '{"id": 98765432109876543210, "question": 5, "context": "x"}',  # the same on an error line
]
# surrogateescape: "\udcff" is written as the lone byte 0xFF (invalid UTF-8 in the id)
open(sys.argv[1], "w", encoding="utf-8", errors="surrogateescape").write("\n".join(lines) + "\n")
PY
# some records fail: every line still answered, exit status 1 (as squad with failed questions)
"$cli" jsonl --model "$model" < "$tmp/in.jsonl" > "$tmp/out.jsonl" 2> "$tmp/jsonl.err"
jsonl_status=$?
if [ "$jsonl_status" -eq 1 ]; then
  check "jsonl: one output line per input line, in order" python3 - "$tmp/in.jsonl" "$tmp/out.jsonl" <<'PY'
import json, sys
inp = open(sys.argv[1], encoding="utf-8", errors="surrogateescape").read().split("\n")[:-1]
# strict UTF-8 and strict JSON: every output line is valid whatever bytes came in
out = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8").read().split("\n")[:-1]]
assert len(out) == len(inp), (len(out), len(inp))
expect_ok = [True, False, False, False, False, True, False, False, True, False, False, True,
             False, False, False, False, True, False, False, True, False]
# a repeated key: the last one counts, as in Python's json (and the squad and eval commands)
ids = ["a", None, "c", 4, None, "e", None, "g", "h", None, "j", "k", "l", None, None, "n", "last", "o", None,
       123456789012345678901, 98765432109876543210]  # numbers come back exactly as written
for o, ok, i, line in zip(out, expect_ok, ids, inp):
    assert o["id"] == i, (o, i)
    if ok:
        assert "error" not in o and {"answer", "start", "end", "score"} <= set(o), o
        ctx = json.loads(line)["context"]
        if o["start"] is None:  # "empty": no span qualified
            assert o["answer"] == "empty", o
        else:
            assert ctx[o["start"]:o["end"]] == o["answer"], o
    else:
        assert set(o) == {"id", "error"} and o["error"], o
assert any(o.get("start") is not None for o in out), "no record got a real span"
assert "extra data" in out[9]["error"] and "NUL" in out[10]["error"], (out[9], out[10])
assert "4 hex digits" in out[12]["error"] and "4 hex digits" in out[15]["error"], (out[12], out[15])
assert "not valid UTF-8" in out[13]["error"], out[13]
assert "string or a finite number" in out[14]["error"], out[14]
assert "raw control character" in out[17]["error"], out[17]
assert "finite number" in out[18]["error"], out[18]
PY
else
  fail "jsonl exit status $jsonl_status (expected 1): $(head -c 300 "$tmp/jsonl.err")"
fi
check "jsonl: every record answered: exit status 0" sh -c \
  'head -1 "$2" | "$1" jsonl --model "$3" >/dev/null 2>&1' sh "$cli" "$tmp/in.jsonl" "$model"

# ---- squad: every question of the dev set gets a prediction; EM/F1 printed -------------------------
gzip -dc "$src/tests/data/squad/dev-v1.1.json.gz" > "$tmp/dev.json" || exit 1
if [ "${BQ_CLI_QUICK:-0}" = 1 ]; then
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['data']=d['data'][:2]; json.dump(d, open(sys.argv[1],'w'))" "$tmp/dev.json"
fi
if "$cli" squad --model "$model" --input "$tmp/dev.json" --output "$tmp/pred.json" --nbest "$tmp/nbest.json" \
     > "$tmp/squad.out" 2> "$tmp/squad.err"; then
  check "squad: one prediction per question, EM/F1 printed and matching eval" python3 - "$tmp/dev.json" "$tmp/pred.json" "$tmp/nbest.json" "$tmp/squad.out" <<'PY'
import json, sys
ds = json.load(open(sys.argv[1]))
ids = [q["id"] for a in ds["data"] for p in a["paragraphs"] for q in p["qas"]]
pred = json.load(open(sys.argv[2]))
nbest = json.load(open(sys.argv[3]))
assert sorted(pred) == sorted(ids), (len(pred), len(ids))
assert all(isinstance(v, str) for v in pred.values())
assert sorted(nbest) == sorted(ids)
for qid, lst in nbest.items():
    assert lst and lst[0]["answer"] == pred[qid], qid
scores = json.loads(open(sys.argv[4]).read().strip().splitlines()[-1])
assert set(scores) == {"exact_match", "f1"} and 0 <= scores["exact_match"] <= scores["f1"] <= 100, scores
print(f"squad: {len(ids)} questions, {len(pred)} predictions, {scores}")
PY
  "$cli" eval --data "$tmp/dev.json" --predictions "$tmp/pred.json" > "$tmp/eval.out" 2>/dev/null
  check "squad's EM/F1 equal eval's on the written predictions" cmp -s <(tail -n 1 "$tmp/squad.out") "$tmp/eval.out"
else
  fail "squad exit status $?: $(tail -c 300 "$tmp/squad.err")"
fi

# ---- squad with length buckets: windows sorted by length, batches cut to a multiple of 64 ----------
# Against buckets of 384 (nothing cut, padding excluded from decoding alike): the same answers for
# fewer positions. (Against the padded run they differ wherever a random model's padding logits
# rank among a window's 20 best: 37 of 10,570 answers with seed 3, 8,058 with this seed 5.)
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['data']=d['data'][:3]; json.dump(d, open(sys.argv[2],'w'))" \
  "$tmp/dev.json" "$tmp/dev3.json"
for lb in 384 64; do
  "$cli" squad --model "$model" --input "$tmp/dev3.json" --output "$tmp/pred-lb$lb.json" --length-bucket $lb \
    --quiet > /dev/null 2> "$tmp/squad-lb$lb.err" || fail "squad --length-bucket $lb exit status $?: $(tail -c 300 "$tmp/squad-lb$lb.err")"
done
check "squad --length-bucket 64: the answers of buckets of 384, for fewer positions" \
  python3 - "$tmp/pred-lb384.json" "$tmp/pred-lb64.json" "$tmp/squad-lb384.err" "$tmp/squad-lb64.err" <<'PY'
import json, re, sys
full, cut = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert full and full == cut, sum(full.get(k) != v for k, v in cut.items())
share = [float(re.search(r"\(([\d.]+)% of padded\)", open(f).read()).group(1)) for f in sys.argv[3:5]]
assert share[0] == 100.0 and share[1] < 75.0, share
print(f"length buckets: {len(cut)} questions, {share[1]}% of the padded positions")
PY
# Packed (windows back to back, no padding, each attending to itself): the same answers again, for
# fewer positions than the buckets of 64.
"$cli" squad --model "$model" --input "$tmp/dev3.json" --output "$tmp/pred-pack.json" --pack \
  --quiet > /dev/null 2> "$tmp/squad-pack.err" || fail "squad --pack exit status $?: $(tail -c 300 "$tmp/squad-pack.err")"
check "squad --pack: the answers of buckets of 384, for fewer positions than buckets of 64" \
  python3 - "$tmp/pred-lb384.json" "$tmp/pred-pack.json" "$tmp/squad-lb64.err" "$tmp/squad-pack.err" <<'PY'
import json, re, sys
full, packed = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert full and full == packed, sum(full.get(k) != v for k, v in packed.items())
share = [float(re.search(r"\(([\d.]+)% of padded\)", open(f).read()).group(1)) for f in sys.argv[3:5]]
assert share[1] < share[0], share
print(f"packed: {len(packed)} questions, {share[1]}% of the padded positions (buckets of 64: {share[0]}%)")
PY

# ---- bench on the CPU: a JSON file with one measured configuration per batch ----------------------
if "$cli" bench --preset tiny --device cpu --batch 1,2 --iters 2 --seq-len 64 --json "$tmp/bench.json" \
     > "$tmp/bench.out" 2> "$tmp/bench.err"; then
  check "bench --json: measured configs" python3 - "$tmp/bench.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert [c["batch"] for c in j["configs"]] == [1, 2], j["configs"]
for c in j["configs"]:
    assert c["latency_ms"]["p50"] > 0 and c["throughput_seq_s"] > 0 and c["tflops"] > 0, c
PY
else
  fail "bench exit status $?: $(tail -c 300 "$tmp/bench.err")"
fi

# ---- "-": standard input and output, as Unix tools take it --------------------------------------
printf '%s' "$context" > "$tmp/context.txt"
"$cli" ask --model "$model" --context-file "$tmp/context.txt" --question "$question" > "$tmp/ask-file.txt" 2>/dev/null
check "ask --context-file - reads stdin: the file's answer" sh -c \
  '"$1" ask --model "$2" --context-file - --question "$3" < "$4" 2>/dev/null | cmp -s - "$5"' sh \
  "$cli" "$model" "$question" "$tmp/context.txt" "$tmp/ask-file.txt"
# predictions on stdout: the file's bytes; the EM/F1 line goes to stderr then
check "squad --input - --output -: the predictions file's bytes on stdout, EM/F1 on stderr" sh -c \
  '"$1" squad --model "$2" --input - --output - --length-bucket 384 --quiet < "$3" > "$5" 2> "$6" &&
   cmp -s "$5" "$4" && grep -q "exact_match" "$6"' sh \
  "$cli" "$model" "$tmp/dev3.json" "$tmp/pred-lb384.json" "$tmp/stdout-pred.json" "$tmp/stdout-pred.err"
if [ -w /dev/full ]; then
  "$cli" squad --model "$model" --input "$tmp/dev3.json" --output - --length-bucket 384 --quiet \
    > /dev/full 2> "$tmp/full.err"
  rc=$?
  check "squad --output - into a full disk: exit 1 (was $rc), the reason named" sh -c \
    '[ "$1" -eq 1 ] && grep -q "cannot write .standard output.: No space left on device" "$2"' sh "$rc" "$tmp/full.err"
fi
check "eval --predictions - reads stdin" sh -c \
  '"$1" eval --data "$2" --predictions - < "$3" > "$4" 2>/dev/null &&
   "$1" eval --data "$2" --predictions "$3" 2>/dev/null | cmp -s - "$4"' sh \
  "$cli" "$tmp/dev3.json" "$tmp/pred-lb384.json" "$tmp/eval-stdin.out"
check "bench --json -: the JSON alone on stdout" sh -c \
  '"$1" bench --preset tiny --device cpu --batch 1 --iters 2 --seq-len 64 --json - 2>/dev/null |
   python3 -c "import json, sys; assert json.load(sys.stdin)[\"configs\"][0][\"batch\"] == 1"' sh "$cli"

# ---- errors: non-zero exit (not a crash), a message on stderr, nothing on stdout -------------------
expect_failure() { # label needle args...
  local label=$1 needle=$2 rc
  shift 2
  "$cli" "$@" > "$tmp/e.out" 2> "$tmp/e.err"
  rc=$?
  if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then fail "$label: exit status $rc"
  elif [ -s "$tmp/e.out" ]; then fail "$label: printed on stdout"
  elif ! grep -q -- "$needle" "$tmp/e.err"; then fail "$label: stderr lacks '$needle': $(head -c 300 "$tmp/e.err")"
  else pass; fi
}
expect_failure "ask without --model" "--model" ask --context x --question y
# a missing required option is a usage error: exit status 2, as every bad option
usage_error() { # args...: exit status 2 and a message naming what is missing
  "$cli" "$@" < /dev/null > /dev/null 2> "$tmp/e.err"
  local rc=$?
  if [ $rc -eq 2 ] && grep -q "required\|give exactly one" "$tmp/e.err"; then pass
  else fail "$*: exit status $rc (expected 2): $(head -c 200 "$tmp/e.err")"; fi
}
usage_error ask --context x --question y
usage_error ask --model "$model" --context x
usage_error eval
usage_error squad --model "$model" --input x
exit_two() { # label needle args...: exit status 2 and the needle on stderr
  local label=$1 needle=$2
  shift 2
  "$cli" "$@" < /dev/null > /dev/null 2> "$tmp/e.err"
  local rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$needle" "$tmp/e.err"; then pass
  else fail "$label: exit status $rc (expected 2): $(head -c 200 "$tmp/e.err")"; fi
}
exit_two "eval: two files from stdin" "only one file can be -" eval --data - --predictions -
exit_two "squad: --output and --nbest both stdout" "name the same file" \
  squad --model "$model" --input "$tmp/dev3.json" --output - --nbest -
usage_error jsonl
# --option=value is the same as --option value
if "$cli" ask --model="$model" --question="$question" --context="$context" --top-k=2 --json > "$tmp/eq.json" 2>/dev/null &&
   "$cli" ask --model "$model" --question "$question" --context "$context" --top-k 2 --json > "$tmp/sp.json" 2>/dev/null; then
  check "ask --opt=value answers as --opt value" cmp -s "$tmp/eq.json" "$tmp/sp.json"
else
  fail "ask with --opt=value options failed"
fi
exit_two "an option without its value" "--question needs a value" ask --model "$model" --context x --question
exit_two "an empty --opt= value" "--top-k expects" ask --model "$model" --context x --question y --top-k=
# a window longer than the model's position table (max_position_embeddings 64 here)
"$mk" --out "$tmp/pos64" --preset tiny --max-pos 64 --seed 2 > /dev/null 2>&1 || fail "bertqa-make-model --max-pos 64"
exit_two "windows past max_position_embeddings" "exceeds the model's max_position_embeddings 64" \
  ask --model "$tmp/pos64" --max-seq-length 128 --question y --context x
usage_error logits --model "$model" --context x
usage_error features --context x
usage_error bench
# --device cuda: answers on a GPU machine, exit status 3 where the runtime finds no GPU or the
# build has no CUDA
"$cli" ask --model "$model" --device cuda --question y --context x > /dev/null 2> "$tmp/e.err"
rc=$?
if [ $rc -eq 0 ] || { [ $rc -eq 3 ] && grep -q "no usable CUDA device\|built without CUDA" "$tmp/e.err"; }; then pass
else fail "ask --device cuda: exit status $rc: $(head -c 200 "$tmp/e.err")"; fi
# bench --preset runs bertqa-make-model with the preset as one argument, never through a shell
expect_failure "bench with an unknown preset" "--preset expects tiny, base or large" bench \
  --preset "tiny'; touch '$tmp/injected" --device cpu --batch 1 --iters 1 --seq-len 16
check "bench --preset: nothing of it ran as a command" test ! -e "$tmp/injected"
expect_failure "bench with an empty batch list" "--batch expects" bench --preset tiny --device cpu --batch ""
expect_failure "bench with an empty precision" "--precision expects" bench --preset tiny --device cpu \
  --precision fp32,
# a SQuAD file with a NUL inside a string (cJSON would cut it short there)
printf '{"data":[{"paragraphs":[{"context":"John lives in Paris.\\u0000 tail","qas":[]}]}]}' > "$tmp/nul.json"
expect_failure "squad file with a NUL" "NUL character" squad --model "$model" --input "$tmp/nul.json" \
  --output "$tmp/nul-pred.json"
# a \u escape without 4 hex digits: cJSON decodes it to a NUL, so it is refused the same way
printf '{"data":[{"paragraphs":[{"context":"John lives in Paris.\\uzzzz tail","qas":[]}]}]}' > "$tmp/badu.json"
expect_failure "squad file with a bad \\u escape" "without 4 hex digits" squad --model "$model" \
  --input "$tmp/badu.json" --output "$tmp/badu-pred.json"
# a raw line break inside a string: Python's json (the official evaluator's) refuses it, and so do we
printf '{"data":[{"paragraphs":[{"context":"John lives\nin Paris.","qas":[]}]}]}' > "$tmp/rawnl.json"
expect_failure "squad file with a raw control character" "raw control character inside a string.*, at line 1, column 47" \
  squad --model "$model" --input "$tmp/rawnl.json" --output "$tmp/rawnl-pred.json"
# two questions with one id: both answered, the predictions keep the first, exit status 1
printf '%s' '{"data":[{"paragraphs":[{"context":"John lives in Paris with Mary.","qas":[{"id":"q1","question":"Where?","answers":[{"text":"Paris","answer_start":14}]},{"id":"q1","question":"Who?","answers":[{"text":"John","answer_start":0}]},{"id":"q2","question":"Who?","answers":[{"text":"Mary","answer_start":25}]}]}]}]}' > "$tmp/dup.json"
printf '{"q1": "Par\\u12G4s", "q2": "Mary"}' > "$tmp/badu-pred-in.json"
expect_failure "eval with a bad \\u escape in the predictions" "without 4 hex digits.* at line 1, column 12" \
  eval --data "$tmp/dup.json" --predictions "$tmp/badu-pred-in.json"
"$cli" squad --model "$model" --input "$tmp/dup.json" --output "$tmp/dup-pred.json" --quiet \
  > "$tmp/dup.out" 2> "$tmp/dup.err"
dup_status=$?
"$cli" eval --data "$tmp/dup.json" --predictions "$tmp/dup-pred.json" > "$tmp/dup-eval.out" 2> /dev/null
check "squad with a repeated id: its EM/F1 are eval's on its predictions file" \
  cmp "$tmp/dup.out" "$tmp/dup-eval.out"
check "squad with a repeated id: exit 1, named" sh -c '[ "$1" -eq 1 ] && grep -q "q1: its id repeats" "$2"' \
  sh "$dup_status" "$tmp/dup.err"
check "squad with a repeated id: one prediction per id" python3 -c '
import sys
pairs = __import__("json").load(open(sys.argv[1]), object_pairs_hook=lambda p: p)
assert [k for k, _ in pairs] == ["q1", "q2"], pairs' "$tmp/dup-pred.json"
# damaged records among good ones: the good questions answered as in the file without them, a
# damaged question with an id predicted "", every damaged record named, exit 1, not scored
printf '%s' '{"data":[{"paragraphs":[{"context":"John lives in Paris with Mary.","qas":[{"id":"g1","question":"Where?","answers":[{"text":"Paris"}]},{"id":"noq"},{"id":7,"question":"Who?"},{"id":"g2","question":"Who?","answers":[{"text":"Mary"}]}]},{"context":5,"qas":[{"id":"ctx","question":"What?"}]}]},"article",{"paragraphs":[{"context":"Ann met Bob in Rome.","qas":[{"id":"g3","question":"Where did they meet?","answers":[{"text":"Rome"}]}]}]}]}' > "$tmp/mixed.json"
printf '%s' '{"data":[{"paragraphs":[{"context":"John lives in Paris with Mary.","qas":[{"id":"g1","question":"Where?","answers":[{"text":"Paris"}]},{"id":"g2","question":"Who?","answers":[{"text":"Mary"}]}]}]},{"paragraphs":[{"context":"Ann met Bob in Rome.","qas":[{"id":"g3","question":"Where did they meet?","answers":[{"text":"Rome"}]}]}]}]}' > "$tmp/clean.json"
"$cli" squad --model "$model" --input "$tmp/mixed.json" --output "$tmp/mixed-pred.json" --quiet \
  > "$tmp/mixed.out" 2> "$tmp/mixed.err"
mixed_status=$?
"$cli" squad --model "$model" --input "$tmp/clean.json" --output "$tmp/clean-pred.json" --quiet > /dev/null 2>&1
check "squad with damaged records: the good ones answered as without them, the damaged question \"\"" python3 -c '
import json, sys
mixed, clean = (json.load(open(p), object_pairs_hook=lambda p: p) for p in sys.argv[1:3])
assert [k for k, _ in mixed] == ["g1", "noq", "g2", "ctx", "g3"], mixed
assert dict(mixed)["noq"] == dict(mixed)["ctx"] == "", mixed
assert all(dict(mixed)[k] == v for k, v in clean) and len(clean) == 3, (mixed, clean)' \
  "$tmp/mixed-pred.json" "$tmp/clean-pred.json"
check "squad with damaged records: exit 1, each named, not scored" sh -c '[ "$1" -eq 1 ] && [ ! -s "$3" ] &&
  grep -q "question noq: .*data\[0\]\.paragraphs\[0\]\.qas\[1\] (id .noq.): .question. is missing" "$2" &&
  grep -q "data\[0\]\.paragraphs\[0\]\.qas\[2\]: .id. is a number.*no question id: skipped" "$2" &&
  grep -q "question ctx: .*data\[0\]\.paragraphs\[1\]: .context. is a number" "$2" &&
  grep -q "data\[1\] is a string.*skipped" "$2" && grep -q "not scored: 4 damaged record" "$2"' \
  sh "$mixed_status" "$tmp/mixed.err" "$tmp/mixed.out"
expect_failure "eval with damaged gold records" "qas\[1\] (id 'noq'): 'question' is missing" \
  eval --data "$tmp/mixed.json" --predictions "$tmp/mixed-pred.json"
# input that cannot be read, answers that cannot be written: a message and a non-zero exit
expect_failure "jsonl reading a folder" "reading standard input failed" jsonl --model "$model" < "$tmp"
expect_failure "tokenize reading a folder" "reading standard input failed" tokenize < "$tmp"
if [ -w /dev/full ]; then
  for sub in jsonl tokenize; do
    if [ $sub = jsonl ]; then args=(jsonl --model "$model"); else args=(tokenize); fi
    head -2 "$tmp/in.jsonl" | "$cli" "${args[@]}" > /dev/full 2> "$tmp/e.err"
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "writing standard output failed: No space left on device" "$tmp/e.err"; then pass
    else fail "$sub into a full disk: exit status $rc: $(head -c 300 "$tmp/e.err")"; fi
  done
fi
# one question: for the checks below that need a run, not its answers
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); p=d['data'][0]['paragraphs'][0]; p['qas']=p['qas'][:1]; d['data']=[{'title':'t','paragraphs':[p]}]; json.dump(d, open(sys.argv[2],'w'))" \
  "$tmp/dev3.json" "$tmp/one.json"
# progress into a log (stderr not a terminal): whole lines, no carriage returns; none with --quiet
BQ_PROGRESS_SECONDS=0 "$cli" squad --model "$model" --input "$tmp/dev3.json" --output "$tmp/pred-log.json" \
  > /dev/null 2> "$tmp/progress.err" || fail "squad with progress lines: exit status $?"
check "squad into a log: progress lines, the last at the question count" python3 - "$tmp/progress.err" "$tmp/dev3.json" <<'PY'
import json, re, sys
err = open(sys.argv[1], newline="").read()
assert "\r" not in err, "carriage return in a log"
n = sum(len(p["qas"]) for a in json.load(open(sys.argv[2]))["data"] for p in a["paragraphs"])
done = [int(m.group(1)) for m in re.finditer(r"^bertqa-gpu squad: (\d+)/%d questions \([\d.]+%%\), [\d.]+ questions/s, about \d+:\d\d left$" % n, err, re.M)]
assert done and done == sorted(done) and done[-1] == n, (done[:5], n)
PY
BQ_PROGRESS_SECONDS=0 "$cli" squad --model "$model" --input "$tmp/one.json" --output "$tmp/pred-log.json" --quiet \
  > /dev/null 2> "$tmp/progress-quiet.err" || fail "squad --quiet: exit status $?"
check "squad --quiet: no progress lines" sh -c '! grep -q "questions/s, about" "$1"' sh "$tmp/progress-quiet.err"
# OpenBLAS kernels: on a CPU with AVX2 + FMA never the SSE3 ones OpenBLAS 0.3.21 falls back to for
# a CPU model it does not know (the CLI starts itself again naming better ones); a user's own
# OPENBLAS_CORETYPE is kept
kernels_of() { # env assignments...: the OpenBLAS kernels the squad run names
  env "$@" "$cli" squad --model "$model" --input "$tmp/one.json" --output "$tmp/one-pred.json" 2>&1 >/dev/null |
    sed -n 's/.*on cpu fp32 reference (OpenBLAS \([A-Za-z0-9]*\)).*/\1/p'
}
check "squad on the CPU names its OpenBLAS kernels" test -n "$(kernels_of)"
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  check "OpenBLAS kernels on a CPU with AVX2: not Prescott's ($(kernels_of))" \
    sh -c '[ "$1" != Prescott ] && [ -n "$1" ]' sh "$(kernels_of)"
fi
check "a user's OPENBLAS_CORETYPE is kept" test "$(kernels_of OPENBLAS_CORETYPE=Prescott)" = Prescott
# started through the dynamic loader: /proc/self/exe is the loader, which must not be started again
loader=$(ls /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1 2> /dev/null | head -1)
if [ -n "$loader" ]; then
  "$loader" "$cli" squad --model "$model" --input "$tmp/one.json" --output "$tmp/one-loader.json" --quiet \
    > /dev/null 2> "$tmp/loader.err"
  check "squad started through $loader: runs and answers" sh -c '[ "$1" -eq 0 ] && [ -s "$2" ]' sh $? "$tmp/one-loader.json"
fi
# an output path that cannot be written fails before the model loads, not after the answering
expect_failure "squad into a missing folder: refused before any answering" \
  "cannot write '$tmp/none/pred.json': No such file or directory" \
  squad --model "$model" --input "$tmp/dev3.json" --output "$tmp/none/pred.json"
check "squad into a missing folder: nothing answered first" sh -c '! grep -q "questions on" "$1"' sh "$tmp/e.err"
"$cli" squad --model "$model" --input "$tmp/dev3.json" --output "$tmp/same.json" --nbest "$tmp/same.json" 2> "$tmp/e.err"
check "squad --output and --nbest the same file: a usage error" \
  sh -c '[ "$1" -eq 2 ] && grep -q "name the same file" "$2"' sh $? "$tmp/e.err"
expect_failure "squad --output and --nbest the same file through another name" "name the same file ($(cd "$tmp" && pwd -P)/same.json)" \
  squad --model "$model" --input "$tmp/dev3.json" --output "$tmp/same.json" --nbest "$tmp/../$(basename "$tmp")/same.json"
expect_failure "squad --nbest into a folder" "cannot write '$tmp': it is a folder" \
  squad --model "$model" --input "$tmp/dev3.json" --output "$tmp/pred-kept.json" --nbest "$tmp"
check "squad with a bad --nbest: --output not created" test ! -e "$tmp/pred-kept.json"
expect_failure "bench --json into a missing folder: refused before any timing" "cannot write '$tmp/none/b.json'" \
  bench --preset tiny --device cpu --batch 1 --iters 1 --seq-len 64 --json "$tmp/none/b.json"
check "bench --json into a missing folder: nothing timed first" sh -c '! grep -q "batch 1" "$1"' sh "$tmp/e.err"
# a run that fails leaves an earlier predictions file as it was; one that succeeds replaces it whole
printf 'earlier\n' > "$tmp/pred-old.json"
chmod 640 "$tmp/pred-old.json"
expect_failure "squad --nbest into a full disk" "cannot write '/dev/full': No space left on device" \
  squad --model "$model" --input "$tmp/one.json" --output "$tmp/pred-old.json" --nbest /dev/full --quiet
if [ -w /dev/full ]; then
  # --output is put in place before --nbest is written
  check "squad: --output written before the failed --nbest" python3 -c '
import json, sys; assert len(json.load(open(sys.argv[1]))) > 0' "$tmp/pred-old.json"
fi
printf 'earlier\n' > "$tmp/pred-old.json"
expect_failure "squad with a model that does not load" "$tmp/no-model" \
  squad --model "$tmp/no-model" --input "$tmp/dev3.json" --output "$tmp/pred-old.json"
# an interrupted run leaves no temporary file: it is created only when the answers are written
"$cli" squad --model "$model" --input "$tmp/dev.json" --output "$tmp/pred-int.json" --quiet > /dev/null 2>&1 &
int_pid=$!
sleep 1
kill -TERM $int_pid 2> /dev/null
wait $int_pid 2> /dev/null
check "squad interrupted: no temporary file, no predictions file" sh -c '! ls "$1"/pred-int.json* > /dev/null 2>&1' sh "$tmp"
check "squad that failed: the earlier predictions file untouched, no temporary left" \
  sh -c 'grep -qx earlier "$1/pred-old.json" && ! ls "$1"/*.tmp > /dev/null 2>&1' sh "$tmp"
ln -s pred-old.json "$tmp/pred-link.json"
"$cli" squad --model "$model" --input "$tmp/one.json" --output "$tmp/pred-link.json" --quiet > /dev/null 2>&1 \
  || fail "squad through a symlink: exit status $?"
check "squad through a symlink: the link kept, its target replaced, the mode kept, no temporary left" sh -c '
  [ -L "$1/pred-link.json" ] && [ "$(stat -c %a "$1/pred-old.json")" = 640 ] &&
  python3 -c "import json,sys; assert len(json.load(open(sys.argv[1]))) > 0" "$1/pred-old.json" &&
  ! ls "$1"/*.tmp > /dev/null 2>&1' sh "$tmp"
expect_failure "ask without a context" "context" ask --model "$model" --question y
expect_failure "ask with both contexts" "not both" ask --model "$model" --question y --context a --context-file b
expect_failure "missing context file" "cannot open" ask --model "$model" --question y --context-file "$tmp/none.txt"
expect_failure "unknown option" "unknown option" ask --model "$model" --bogus
expect_failure "bad precision" "precision" ask --model "$model" --question y --context x --precision fp8
expect_failure "cpu refuses fp16" "fp32" ask --model "$model" --question y --context x --precision fp16
expect_failure "bad device" "device" ask --model "$model" --question y --context x --device tpu
expect_failure "bad doc stride" "doc-stride" ask --model "$model" --question y --context x --doc-stride 0
expect_failure "length bucket past the window" "--length-bucket 400" squad --model "$model" --input x --output y --length-bucket 400
expect_failure "length buckets with cuDNN attention" "cuDNN" squad --model "$model" --input x --output y --length-bucket 64 --device cuda --precision fp16 --attention cudnn
expect_failure "packing with length buckets" "alternatives" squad --model "$model" --input x --output y --pack --length-bucket 64
expect_failure "packing with cuDNN attention" "cuDNN" jsonl --model "$model" --pack --device cuda --precision fp16 --attention cudnn
expect_failure "empty tuning cache name" "--tuning-cache needs a file name" ask --model "$model" --question y --context x --tuning-cache ""
expect_failure "unknown command" "unknown command" frobnicate
expect_failure "invalid UTF-8 question" "UTF-8" ask --model "$model" --question "$(printf 'caf\xe9?')" --context x
if ! command -v nvidia-smi > /dev/null || ! nvidia-smi > /dev/null 2>&1; then
  expect_failure "--device cuda without a GPU" "--device cpu" ask --model "$model" --question y --context x --device cuda
  # check needs a card: it says so, exit status 3, and does not send the user to --device cpu,
  # which check refuses
  "$cli" check --model "$model" > "$tmp/e.out" 2> "$tmp/e.err"
  rc=$?
  if [ $rc -eq 3 ] && grep -q "no usable CUDA device\|built without CUDA\|no CUDA device" "$tmp/e.err" &&
     grep -q "needs one" "$tmp/e.err" && ! grep -q -- "--device cpu" "$tmp/e.err" && [ ! -s "$tmp/e.out" ]; then pass
  else fail "check without a GPU: exit status $rc: $(head -c 300 "$tmp/e.err")"; fi
  expect_failure "check --device cpu" "give --device cuda" check --model "$model" --device cpu
fi
# exit statuses as the README gives them: a context file that cannot be read is the input's
# failure (1), its absence a usage error (2); help and --version into a full device fail (1)
exit_status() { # want label args...: the command's exit status is `want`
  local want=$1 label=$2 rc
  shift 2
  "$cli" "$@" > /dev/null 2> "$tmp/x.err" < /dev/null
  rc=$?
  if [ $rc -eq "$want" ]; then pass; else fail "$label: exit status $rc, want $want: $(head -c 200 "$tmp/x.err")"; fi
}
exit_status 1 "--context-file that does not exist" ask --model "$model" --question y --context-file "$tmp/absent.txt"
exit_status 1 "--context-file that is a folder" ask --model "$model" --question y --context-file "$tmp"
grep -q "Is a directory" "$tmp/x.err" && pass || fail "--context-file folder: $(cat "$tmp/x.err")"
exit_status 2 "no context at all" ask --model "$model" --question y
if [ -w /dev/full ]; then
  for args in "--version" "--help" "ask --help"; do
    # shellcheck disable=SC2086
    "$cli" $args > /dev/full 2> "$tmp/x.err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "writing standard output failed" "$tmp/x.err"; then pass; else
      fail "$args > /dev/full: exit status $rc: $(head -c 200 "$tmp/x.err")"; fi
  done
fi
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); a=d['data'][0]; a['paragraphs']=a['paragraphs'][:1]; d['data']=[a]; json.dump(d, open(sys.argv[2],'w'))" "$tmp/dev.json" "$tmp/dev-head.json"
# --output /dev/stdout writes to what stdout is (a log appended to keeps its lines), and with
# --nbest - it is the same output, refused
printf 'LOG HEADER\n' > "$tmp/log.txt"
"$cli" squad --model "$model" --input "$tmp/dev-head.json" --output /dev/stdout --quiet >> "$tmp/log.txt" 2> "$tmp/x.err"
check "squad --output /dev/stdout appends to stdout's file" python3 -c '
import json, sys
lines = open(sys.argv[1]).read().split("\n", 1)
assert lines[0] == "LOG HEADER" and len(json.loads(lines[1])) > 0, lines[:1]' "$tmp/log.txt"
exit_status 2 "--output - and --nbest /dev/stdout" squad --model "$model" --input "$tmp/dev-head.json" --output - --nbest /dev/stdout --quiet
# bench --quiet: no progress lines, the table still
"$cli" bench --preset tiny --device cpu --batch 1 --seq-len 32 --iters 2 --quiet > "$tmp/bench-quiet.out" 2> "$tmp/bench-quiet.err"
check "bench --quiet: the table, no progress on stderr" sh -c "grep -q '^fp32 ' '$tmp/bench-quiet.out' && ! grep -q 'batch 1 \.\.\.\|writing a random' '$tmp/bench-quiet.err'"

for sub in tokenize features eval ask squad jsonl logits bench; do
  if "$cli" "$sub" --help | grep -q "usage: bertqa-gpu $sub"; then pass; else fail "$sub --help"; fi
done
# a command's help gives its own defaults where they differ from the other commands'
"$cli" bench --help | grep -q -- "--batch N .*default 1,8,32,128" && pass || fail "bench --help: --batch's default"
"$cli" check --help | grep -q -- "--device DEV .*default cuda" && pass || fail "check --help: --device's default"
"$cli" ask --help | grep -q -- "--device DEV .*default cpu" && pass || fail "ask --help: --device's default"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
