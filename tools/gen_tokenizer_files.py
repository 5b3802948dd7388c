#!/usr/bin/env python3
"""Write the tokenizer files Hugging Face transformers 5 saves for BERT uncased (it writes
tokenizer.json and tokenizer_config.json, and no vocab.txt), for tests/test_model.c.

Rerun (from the repository root; needs transformers >= 5, e.g. the peer venv of bench/README.md):
    python tools/gen_tokenizer_files.py

Reads  vocab/vocab.txt
Writes tests/data/tokenizer_files/tokenizer.json.gz      (BertTokenizer(vocab, do_lower_case=True)
                                                          .save_pretrained, gzip -n)
       tests/data/tokenizer_files/tokenizer_config.json
       tests/data/tokenizer_files/VERSION               (the transformers version that wrote them)
"""
import gzip
import os
import shutil
import tempfile

import transformers
from transformers import BertTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "tokenizer_files")


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        BertTokenizer(os.path.join(ROOT, "vocab", "vocab.txt"), do_lower_case=True).save_pretrained(tmp)
        saved = sorted(os.listdir(tmp))
        assert "vocab.txt" not in saved, f"this transformers ({transformers.__version__}) saves vocab.txt: use 5.x"
        with open(os.path.join(tmp, "tokenizer.json"), "rb") as src, \
                gzip.GzipFile(os.path.join(OUT, "tokenizer.json.gz"), "wb", mtime=0) as dst:
            shutil.copyfileobj(src, dst)
        shutil.copy(os.path.join(tmp, "tokenizer_config.json"), os.path.join(OUT, "tokenizer_config.json"))
    with open(os.path.join(OUT, "VERSION"), "w") as f:
        f.write(f"transformers {transformers.__version__}\n")
    print(f"wrote {OUT} ({', '.join(saved)})")


if __name__ == "__main__":
    main()
