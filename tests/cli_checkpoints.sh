#!/usr/bin/env bash
# cli_checkpoints.sh - malformed checkpoint folders must make `bertqa-gpu logits` fail cleanly: a
# non-zero exit that is not a crash (< 128), a message on stderr naming the problem, nothing on stdout.
# usage: bash tests/cli_checkpoints.sh <bertqa-gpu> <bertqa-make-model> <source dir>
# exit 0 pass, 77 skip, 1 fail.
set -u
gpu=${1:?bertqa-gpu path}
make_model=${2:?bertqa-make-model path}
src=${3:?source dir}
export LC_ALL=C # byte-wise sed on the binary model file

if [ ! -x "$gpu" ] || [ ! -x "$make_model" ]; then
    echo "skip: $gpu or $make_model not built"
    exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}

if ! "$make_model" --out "$tmp/good" --preset tiny --seed 3 --vocab "$src/vocab/vocab.txt" >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log"
    echo "FAIL: bertqa-make-model could not write the base checkpoint"
    echo "0 passed, 1 failed"
    exit 1
fi

# The unmodified checkpoint must work, or the failures below prove nothing.
if "$gpu" logits --model "$tmp/good" --question "Who?" --context "Someone did." >"$tmp/out" 2>"$tmp/err" &&
    [ -s "$tmp/out" ]; then
    passed=$((passed + 1))
else
    fail "good checkpoint: exit $?, stderr: $(head -c 500 "$tmp/err")"
fi

# fresh copy of the good checkpoint named $1; prints its path
variant() {
    rm -rf "$tmp/$1"
    cp -r "$tmp/good" "$tmp/$1"
    echo "$tmp/$1"
}

# expect_failure NAME DIR STDERR_REGEX [extra CLI args...]
expect_failure() {
    local name=$1 dir=$2 pattern=$3
    shift 3
    "$gpu" logits --model "$dir" --question "Who?" --context "Someone did." "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -eq 0 ]; then
        fail "$name: exit 0"
    elif [ "$rc" -ge 128 ]; then
        fail "$name: crashed (exit $rc): $(head -c 500 "$tmp/err")"
    elif [ -s "$tmp/out" ]; then
        fail "$name: wrote to stdout: $(head -c 200 "$tmp/out")"
    elif ! grep -qiE -- "$pattern" "$tmp/err"; then
        fail "$name: stderr does not match /$pattern/: $(head -c 500 "$tmp/err")"
    else
        passed=$((passed + 1))
    fi
}

# replace the first occurrence of a literal (same-length where binary) in a file
edit() { sed -i "0,/$2/s//$3/" "$1"; }

weights=model.safetensors

# ---- folder and config.json ----
expect_failure "missing folder" "$tmp/does-not-exist" "does-not-exist"
d=$(variant no-config); rm "$d/config.json"
expect_failure "no config.json" "$d" "config\.json"
d=$(variant bad-json); echo "{ \"hidden_size\": " >"$d/config.json"
expect_failure "config.json not JSON" "$d" "config\.json.*JSON|JSON.*config\.json"
d=$(variant gelu-new); edit "$d/config.json" '"hidden_act": "gelu"' '"hidden_act": "gelu_new"'
expect_failure "hidden_act gelu_new" "$d" "gelu_new"
d=$(variant relu); edit "$d/config.json" '"hidden_act": "gelu"' '"hidden_act": "relu"'
expect_failure "hidden_act relu" "$d" "relu"
d=$(variant heads); edit "$d/config.json" '"num_attention_heads": 4' '"num_attention_heads": 5'
expect_failure "hidden not divisible by heads" "$d" "num_attention_heads"
d=$(variant no-hidden); sed -i '/"hidden_size"/d' "$d/config.json"
expect_failure "missing hidden_size" "$d" "hidden_size"
d=$(variant text-layers); edit "$d/config.json" '"num_hidden_layers": 2' '"num_hidden_layers": "two"'
expect_failure "num_hidden_layers not a number" "$d" "num_hidden_layers"

# ---- model.safetensors as a file ----
d=$(variant no-weights); rm "$d/$weights"
expect_failure "no model.safetensors" "$d" "model\.safetensors"
d=$(variant tiny-file); head -c 5 "$tmp/good/$weights" >"$d/$weights"
expect_failure "file shorter than 8 bytes" "$d" "model\.safetensors.*shorter"
d=$(variant empty-file); : >"$d/$weights"
expect_failure "empty file" "$d" "model\.safetensors.*shorter"
d=$(variant truncated); truncate -s -4 "$d/$weights"
expect_failure "truncated data" "$d" "model\.safetensors.*beyond"
d=$(variant huge-header); printf '\377\377\377\377\377\377\377\177' | dd of="$d/$weights" bs=1 count=8 conv=notrunc status=none
expect_failure "header length over 100 MB" "$d" "model\.safetensors.*100 MB"
d=$(variant header-past-end); printf '\000\000\000\001\000\000\000\000' | dd of="$d/$weights" bs=1 count=8 conv=notrunc status=none
expect_failure "header length past the end" "$d" "model\.safetensors.*beyond the end"
d=$(variant broken-json); printf 'x' | dd of="$d/$weights" bs=1 seek=8 count=1 conv=notrunc status=none
expect_failure "header not JSON" "$d" "model\.safetensors.*JSON"
d=$(variant trailing); printf 'tail' >>"$d/$weights"
expect_failure "trailing bytes" "$d" "model\.safetensors.*trailing"

# ---- header entries ----
d=$(variant unknown-dtype); edit "$d/$weights" '"qa_outputs.bias":{"dtype":"F32"' '"qa_outputs.bias":{"dtype":"F33"'
expect_failure "unknown dtype" "$d" "qa_outputs\.bias.*F33"
d=$(variant int-dtype); edit "$d/$weights" '"qa_outputs.bias":{"dtype":"F32"' '"qa_outputs.bias":{"dtype":"I32"'
expect_failure "integer weights" "$d" "qa_outputs\.bias.*I32"
d=$(variant byte-count); edit "$d/$weights" '"qa_outputs.bias":{"dtype":"F32"' '"qa_outputs.bias":{"dtype":"F64"'
expect_failure "byte count does not match the shape" "$d" "qa_outputs\.bias"
d=$(variant duplicate); edit "$d/$weights" 'bert.encoder.layer.0.output.dense.bias' 'bert.encoder.layer.1.output.dense.bias'
expect_failure "duplicate tensor name" "$d" "bert\.encoder\.layer\.1\.output\.dense\.bias.*more than once"
d=$(variant renamed); edit "$d/$weights" '"qa_outputs.weight"' '"qa_outputs.weighs"'
expect_failure "missing tensor" "$d" "qa_outputs\.weight"

# ---- checkpoint against its config ----
d=$(variant more-layers); edit "$d/config.json" '"num_hidden_layers": 2' '"num_hidden_layers": 3'
expect_failure "config has more layers than the file" "$d" "bert\.encoder\.layer\.2\."
d=$(variant fewer-layers); edit "$d/config.json" '"num_hidden_layers": 2' '"num_hidden_layers": 1'
expect_failure "file has more layers than the config" "$d" "bert\.encoder\.layer\.1\."
d=$(variant wide-ffn); edit "$d/config.json" '"intermediate_size": 64' '"intermediate_size": 128'
expect_failure "wrong shape" "$d" "intermediate\.dense\.weight.*shape"
d=$(variant small-vocab); edit "$d/config.json" '"vocab_size": 30522' '"vocab_size": 30000'
expect_failure "vocab.txt larger than vocab_size" "$d" "30000"
d=$(variant no-vocab); rm "$d/vocab.txt"
expect_failure "no vocab.txt, missing --vocab file" "$d" "nonexistent-vocab\.txt" --vocab "$tmp/nonexistent-vocab.txt"
# with the shipped vocabulary (or --vocab) it answers, and says which file tokenized
if "$gpu" logits --model "$d" --question "Who?" --context "Someone did." >"$tmp/out" 2>"$tmp/err" &&
    grep -q "note: .*no-vocab has no vocab.txt or tokenizer.json: tokenizing with .*vocab.txt" "$tmp/err"; then
    passed=$((passed + 1))
else
    fail "no vocab.txt: the fallback vocabulary named: $(head -c 500 "$tmp/err")"
fi
d=$(variant one-segment)
python3 - "$d" <<'PY'
import json, struct, sys
folder = sys.argv[1]
config = json.load(open(folder + "/config.json"))
config["type_vocab_size"] = 1
json.dump(config, open(folder + "/config.json", "w"))
path = folder + "/model.safetensors"
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
name = "bert.embeddings.token_type_embeddings.weight"
begin, end = header[name]["data_offsets"]
keep = (end - begin) // header[name]["shape"][0]
header[name]["shape"][0] = 1
body = bytearray(data[8 + n:])
del body[begin + keep:end]
for k, v in header.items():
    if k != "__metadata__" and v["data_offsets"][0] >= end:
        v["data_offsets"] = [v["data_offsets"][0] - (end - begin - keep), v["data_offsets"][1] - (end - begin - keep)]
header[name]["data_offsets"][1] = begin + keep
text = json.dumps(header).encode()
open(path, "wb").write(struct.pack("<Q", len(text)) + text + bytes(body))
PY
expect_failure "one token type" "$d" "type_vocab_size is 1"
d=$(variant nan-weight)
python3 - "$d/$weights" <<'PY'
import json, struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
header_len = struct.unpack("<Q", data[:8])[0]
begin = json.loads(data[8:8 + header_len])["qa_outputs.bias"]["data_offsets"][0]
data[8 + header_len + begin + 4:8 + header_len + begin + 8] = struct.pack("<f", float("nan"))
open(path, "wb").write(bytes(data))
PY
expect_failure "a NaN weight" "$d" "qa_outputs\.bias.*nan at element 1"

# ---- bertqa-make-model refuses a vocabulary bertqa-gpu would refuse ----
: > "$tmp/empty-vocab.txt"
printf 'hello\nworld\n' > "$tmp/plain-vocab.txt"
for v in empty plain; do
    if "$make_model" --out "$tmp/from-$v" --vocab "$tmp/$v-vocab.txt" > /dev/null 2> "$tmp/err"; then
        fail "make-model with the $v vocabulary: exit 0"
    elif [ -e "$tmp/from-$v/config.json" ]; then
        fail "make-model with the $v vocabulary wrote a checkpoint"
    elif ! grep -q "vocabulary" "$tmp/err"; then
        fail "make-model with the $v vocabulary: $(head -c 300 "$tmp/err")"
    else
        passed=$((passed + 1))
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
