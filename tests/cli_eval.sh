#!/usr/bin/env bash
# `bertqa-gpu eval` end to end: every prediction file in tests/data/eval/ against the SQuAD v1.1
# dev set must score what tools/squad_eval_reference.py gave (tests/data/eval/expected_scores.txt,
# to 1e-9), stdout must be exactly one JSON line {"exact_match": x, "f1": y}, written as the
# official script writes it, and bad inputs must fail with a message on stderr.
#
#   bash tests/cli_eval.sh BERTQA_GPU BERTQA_MAKE_MODEL SRCDIR
# Prints "N passed, N failed"; exit 0 when all pass, 1 otherwise.
set -u
cli=$1 src=$3
data=$src/tests/data/eval
passed=0 failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli_eval.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
gzip -dc "$src/tests/data/squad/dev-v1.1.json.gz" > "$tmp/dev.json" || exit 1

# Compare "{"exact_match": x, "f1": y}" with expected numbers, 1e-9 absolute.
check_scores() { # name stdout_file em f1
  awk -v name="$1" -v em="$3" -v f1="$4" '
    NR == 1 {
      line = $0
      if (match(line, /^\{"exact_match": [-+0-9.eE]+, "f1": [-+0-9.eE]+\}$/) == 0) {
        print name ": stdout is not {\"exact_match\": x, \"f1\": y}: " line > "/dev/stderr"; bad = 1; next
      }
      gsub(/[{}",:]|exact_match|f1/, " ", line)
      split(line, v, " ")
      dem = v[1] - em; if (dem < 0) dem = -dem
      df1 = v[2] - f1; if (df1 < 0) df1 = -df1
      if (dem > 1e-9 || df1 > 1e-9) {
        printf "%s: got EM %s F1 %s, reference EM %s F1 %s\n", name, v[1], v[2], em, f1 > "/dev/stderr"; bad = 1
      }
    }
    END { if (NR != 1) { print name ": expected exactly one line on stdout, got " NR > "/dev/stderr"; bad = 1 }
          exit bad }' "$2"
}

while read -r name em f1 answered; do
  case $name in '#'*|'') continue ;; esac
  gzip -dc "$data/$name" > "$tmp/pred.json" || { fail "$name: cannot decompress"; continue; }
  if "$cli" eval --data "$tmp/dev.json" --predictions "$tmp/pred.json" > "$tmp/out" 2> "$tmp/err"; then
    if check_scores "$name" "$tmp/out" "$em" "$f1"; then pass; else fail "$name"; fi
  else
    fail "$name: exit status $? ($(head -c 300 "$tmp/err"))"
  fi
done < "$data/expected_scores.txt"

# The line itself as the official script prints it (json.dumps: 100.0, 0.0, the shortest digits
# that read back), byte for byte, against tools/squad_eval_reference.py on a few of the files
if command -v python3 > /dev/null; then
  for name in pred_exact_first.json.gz pred_empty.json.gz pred_mix_seed1.json.gz; do
    gzip -dc "$data/$name" > "$tmp/pred.json"
    "$cli" eval --data "$tmp/dev.json" --predictions "$tmp/pred.json" > "$tmp/ours.txt" 2> /dev/null
    python3 "$src/tools/squad_eval_reference.py" "$tmp/dev.json" "$tmp/pred.json" > "$tmp/reference.txt"
    if cmp -s "$tmp/ours.txt" "$tmp/reference.txt"; then pass; else
      fail "$name: stdout $(cat "$tmp/ours.txt") is not the reference's $(cat "$tmp/reference.txt")"; fi
  done
fi

# Failures: non-zero exit and a message on stderr that names the problem.
expect_failure() { # label needle args...
  local label=$1 needle=$2
  shift 2
  if "$cli" eval "$@" > "$tmp/out" 2> "$tmp/err"; then
    fail "$label: exit status 0"
  elif [ ! -s "$tmp/err" ]; then
    fail "$label: nothing on stderr"
  elif ! grep -q -- "$needle" "$tmp/err"; then
    fail "$label: stderr does not mention '$needle': $(head -c 300 "$tmp/err")"
  else
    pass
  fi
}
printf '{"x": "a"' > "$tmp/truncated.json"
printf '["a"]' > "$tmp/array.json"
printf '{"x": "a"}' > "$tmp/good.json"
expect_failure "missing predictions file" "no-such-pred.json" \
  --data "$tmp/dev.json" --predictions "$tmp/no-such-pred.json"
expect_failure "missing dataset file" "no-such-dev.json" \
  --data "$tmp/no-such-dev.json" --predictions "$tmp/good.json"
# a value that is not a string fails where the official script reads it (a dataset id's last
# value), and only there: an unknown id's, or one a later repeat replaces, is not read
dev_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"][0]["paragraphs"][0]["qas"][0]["id"])' "$tmp/dev.json")
printf '{"%s": 5}' "$dev_id" > "$tmp/bad_value.json"
expect_failure "non-string prediction" "'$dev_id'" --data "$tmp/dev.json" --predictions "$tmp/bad_value.json"
printf '{"%s": 5, "%s": "Denver Broncos", "zz": null}' "$dev_id" "$dev_id" > "$tmp/ignored_values.json"
printf '{"%s": "Denver Broncos"}' "$dev_id" > "$tmp/one_answer.json"
"$cli" eval --data "$tmp/dev.json" --predictions "$tmp/ignored_values.json" > "$tmp/ignored.txt" 2> /dev/null
"$cli" eval --data "$tmp/dev.json" --predictions "$tmp/one_answer.json" > "$tmp/one.txt" 2> /dev/null
if [ -s "$tmp/one.txt" ] && cmp -s "$tmp/ignored.txt" "$tmp/one.txt"; then pass; else
  fail "values the official script never reads: $(cat "$tmp/ignored.txt") vs $(cat "$tmp/one.txt")"; fi
expect_failure "truncated predictions" "truncated.json" --data "$tmp/dev.json" --predictions "$tmp/truncated.json"
expect_failure "predictions not an object" "array.json" --data "$tmp/dev.json" --predictions "$tmp/array.json"
expect_failure "dataset is not SQuAD" "data" --data "$tmp/array.json" --predictions "$tmp/good.json"
expect_failure "no --predictions" "predictions" --data "$tmp/dev.json"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
