#!/usr/bin/env bash
# `bertqa-gpu features` end to end: for questions of the SQuAD dev set, the windows it prints
# (128 tokens, 16 question tokens, stride 64) are the golden ones Hugging Face's BertTokenizer gave
# (tests/data/features/dev_small.tsv.gz, written by tools/golden_features.py): token ids, lengths,
# document offsets, max-context flags. Each printed token text is the vocabulary's for its id, each
# byte span lies in the context, and the windows advance by the stride.
#
#   bash tests/cli_features.sh BERTQA_GPU BERTQA_MAKE_MODEL SRCDIR
# Prints "N passed, N failed"; exit 0 when all pass, 1 otherwise.
set -u
cli=$1 src=$3
command -v python3 >/dev/null || { echo "python3 not found: skipping"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli_features.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
gzip -dc "$src/tests/data/squad/dev-v1.1.json.gz" > "$tmp/dev.json" || exit 1
gzip -dc "$src/tests/data/features/dev_small.tsv.gz" > "$tmp/golden.tsv" || exit 1

python3 - "$cli" "$tmp" "$src/vocab/vocab.txt" <<'PY'
import json, subprocess, sys

cli, tmp, vocab_path = sys.argv[1:4]
vocab = open(vocab_path, encoding="utf-8").read().split("\n")
header = open(f"{tmp}/golden.tsv").readline()
opts = dict(kv.split("=") for kv in header[1:].split())
seq, query, stride = int(opts["max_seq_length"]), int(opts["max_query_length"]), int(opts["doc_stride"])

golden = {}  # id -> [(n_tokens, ids, doc_offset, max_context flags)]
for line in open(f"{tmp}/golden.tsv"):
    if line.startswith("#"):
        continue
    f = line.rstrip("\n").split("\t")
    golden.setdefault(f[0], []).append((int(f[2]), [int(x) for x in f[3].split()], int(f[4]), f[5]))

# questions spread over the file, some with several windows
questions = []
for article in json.load(open(f"{tmp}/dev.json"))["data"]:
    for p in article["paragraphs"]:
        for qa in p["qas"]:
            if qa["id"] in golden:
                questions.append((qa["id"], qa["question"], p["context"]))
picked = questions[::len(questions) // 12][:12]
picked += [q for q in questions if len(golden[q[0]]) >= 4][:2]

passed = failed = 0
def check(ok, label):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", label, file=sys.stderr)

for qid, question, context in picked:
    with open(f"{tmp}/context.txt", "w", encoding="utf-8") as fh:
        fh.write(context)
    r = subprocess.run([cli, "features", "--question", question, "--context-file", f"{tmp}/context.txt",
                        "--max-seq-length", str(seq), "--max-query-length", str(query), "--doc-stride", str(stride)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        check(False, f"{qid}: exit status {r.returncode}: {r.stderr[:200]}")
        continue
    out = json.loads(r.stdout)
    wins, gold = out["windows"], golden[qid]
    check(out["max_seq_length"] == seq, f"{qid}: max_seq_length {out['max_seq_length']}")
    check(len(wins) == len(gold), f"{qid}: {len(wins)} windows, golden {len(gold)}")
    context_bytes = context.encode("utf-8")
    for k, (w, (n, ids, doc_offset, flags)) in enumerate(zip(wins, gold)):
        real = w["input_ids"][:w["tokens"]]
        check(w["tokens"] == n and real == ids, f"{qid} window {k}: token ids differ from Hugging Face's")
        check(w["input_ids"][n:] == [0] * (seq - n) and w["input_mask"] == [1] * n + [0] * (seq - n),
              f"{qid} window {k}: padding or mask")
        check(w["segment_ids"] == [0] * doc_offset + [1] * (n - doc_offset) + [0] * (seq - n),
              f"{qid} window {k}: segment ids")
        check(w["doc_offset"] == doc_offset, f"{qid} window {k}: doc_offset {w['doc_offset']}, golden {doc_offset}")
        got_flags = "".join("1" if m else "0" for m in w["max_context"][doc_offset:n - 1])
        check(got_flags == flags[:len(got_flags)] and len(got_flags) == n - 1 - doc_offset,
              f"{qid} window {k}: max-context flags")
        check(w["tokens_text"] == [vocab[i] for i in real], f"{qid} window {k}: token texts")
        spans = w["byte_spans"]
        check(all(s is None for s in spans[:doc_offset] + spans[n - 1:n]), f"{qid} window {k}: spans outside the document")
        doc_spans = spans[doc_offset:n - 1]
        check(all(s is not None and 0 <= s[0] < s[1] <= len(context_bytes) for s in doc_spans),
              f"{qid} window {k}: document spans inside the context")
        # a piece's span is its own characters: lower-cased and stripped of "##", the piece's
        # text starts the span's (accents aside, checked on ASCII spans only)
        for tok, s in zip(w["tokens_text"][doc_offset:n - 1], doc_spans):
            if s is None:
                continue
            text = context_bytes[s[0]:s[1]].decode("utf-8").lower()
            if text.isascii() and tok != "[UNK]":
                check(tok.removeprefix("##") in text, f"{qid} window {k}: '{tok}' not in its span '{text}'")
        if k > 0:
            check(w["doc_start"] == wins[k - 1]["doc_start"] + stride, f"{qid} window {k}: doc_start")
print(f"{passed} passed, {failed} failed ({len(picked)} questions)")
sys.exit(1 if failed else 0)
PY
