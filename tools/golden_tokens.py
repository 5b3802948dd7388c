#!/usr/bin/env python3
"""Write the tokenizer goldens from Hugging Face BertTokenizer (slow, do_lower_case=True).

Rerun (from the repository root, after tools/setup-pyenv.sh):
    .venv-tools/bin/python tools/golden_tokens.py

Reads  tests/data/squad/dev-v1.1.json.gz        (SQuAD v1.1 dev, CC BY-SA 4.0)
       tests/data/tokenizer/hard_strings.jsonl   (one JSON string per line, hand-written)
       vocab/vocab.txt
Writes tests/data/tokenizer/squad_dev_ids.txt.gz: one line of space-separated token ids per text, in
       this order: for each article, for each paragraph: the context, then each of its questions.
       tests/data/tokenizer/hard_strings.ids: one line of ids per line of hard_strings.jsonl.
       tests/data/tokenizer/codepoint_sweep_ids.txt.gz: ids of the code point sweep texts (see
       sweep_texts(); the test rebuilds the texts itself), one line per text.
The ids are tokenizer(text, add_special_tokens=False)["input_ids"]: no [CLS]/[SEP] added; literal
special-token strings in the text ("[SEP]") map to their ids, as HF does.
"""
import gzip
import json
import os

from transformers import BertTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ids_line(tok, text):
    return " ".join(str(i) for i in tok(text, add_special_tokens=False)["input_ids"])


def sweep_texts():
    """Every code point U+0001..U+10FFFF except surrogates, 16 per chunk, each chunk in three
    contexts. tests/test_tokenizer.c builds the same texts in C: keep the two in step."""
    cps = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(cps), 16):
        chunk = [chr(c) for c in cps[i:i + 16]]
        yield " ".join(chunk)                                            # alone
        yield " ".join("Ab" + ch + "cD" for ch in chunk)                 # inside a word
        yield " ".join("\u00c9" + ch + "\u0301" + ch + "." for ch in chunk)  # next to marks, punctuation


def main():
    tok = BertTokenizer(os.path.join(ROOT, "vocab", "vocab.txt"), do_lower_case=True)
    out_dir = os.path.join(ROOT, "tests", "data", "tokenizer")
    with gzip.GzipFile(os.path.join(out_dir, "codepoint_sweep_ids.txt.gz"), "wb", 9, mtime=0) as raw:
        for text in sweep_texts():
            raw.write((ids_line(tok, text) + "\n").encode())
    with gzip.open(os.path.join(ROOT, "tests", "data", "squad", "dev-v1.1.json.gz"), "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    n_ctx = n_q = 0
    with gzip.GzipFile(os.path.join(out_dir, "squad_dev_ids.txt.gz"), "wb", 9, mtime=0) as raw:
        for article in data:
            for para in article["paragraphs"]:
                raw.write((ids_line(tok, para["context"]) + "\n").encode())
                n_ctx += 1
                for qa in para["qas"]:
                    raw.write((ids_line(tok, qa["question"]) + "\n").encode())
                    n_q += 1
    n_hard = 0
    with open(os.path.join(out_dir, "hard_strings.jsonl"), encoding="utf-8") as f, \
            open(os.path.join(out_dir, "hard_strings.ids"), "w") as g:
        for line in f:
            g.write(ids_line(tok, json.loads(line)) + "\n")
            n_hard += 1
    print(f"contexts {n_ctx}, questions {n_q}, hard strings {n_hard}, sweep done")


if __name__ == "__main__":
    main()
